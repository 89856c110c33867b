/*
 * hba_match.c
 *		Which pg_hba.conf rule a connection hits, and what happens then.
 *
 * The matching is check_hba() and the functions it calls (check_db,
 * check_role, is_member, check_ip, check_same_host_or_net, check_hostname,
 * hostname_match) from src/backend/libpq/hba.c, PostgreSQL 15.x, which are
 * static there and judge only the current connection: re-done here, function
 * by function (each marked with the one it follows), for a connection
 * described by its arguments.  Re-sync this file with each new major.
 */
#include "pgtls_audit.h"

#include <netdb.h>
#include <netinet/in.h>

#include "access/htup_details.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "commands/dbcommands.h"
#include "common/ip.h"
#include "libpq/ifaddr.h"
#include "miscadmin.h"
#include "replication/walsender.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

/*
 * The connection's address from an inet; a Unix-domain socket when ip is
 * NULL.
 */
void
pgtls_connection_set_address(PgtlsConnection *conn, inet *ip)
{
	conn->local = (ip == NULL);
	if (conn->local)
	{
		conn->ssl = false;		/* Unix-domain sockets never use TLS */
		return;
	}
	if (ip_family(ip) == PGSQL_AF_INET)
	{
		struct sockaddr_in *sin = (struct sockaddr_in *) &conn->addr;

		sin->sin_family = AF_INET;
		memcpy(&sin->sin_addr, ip_addr(ip), 4);
		conn->addrlen = sizeof(*sin);
	}
	else
	{
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &conn->addr;

		sin6->sin6_family = AF_INET6;
		memcpy(&sin6->sin6_addr, ip_addr(ip), 16);
		conn->addrlen = sizeof(*sin6);
	}
}

/* Follows is_member() in hba.c (PostgreSQL 15.x): membership without superuser rights. */
static bool
is_member(Oid roleid, const char *group)
{
	Oid			groupid;

	if (!OidIsValid(roleid))
		return false;
	groupid = get_role_oid(group, true);
	return OidIsValid(groupid) && is_member_of_role_nosuper(roleid, groupid);
}

/* Follows check_db() in hba.c (PostgreSQL 15.x). */
static bool
match_database(PgtlsConnection *conn, List *tokens)
{
	ListCell   *lc;

	foreach(lc, tokens)
	{
		AuthToken  *t = lfirst(lc);

		if (conn->physical_replication)
		{
			if (pgtls_token_is_keyword(t, "replication"))
				return true;
		}
		else if (pgtls_token_is_keyword(t, "all"))
			return true;
		else if (pgtls_token_is_keyword(t, "sameuser"))
		{
			if (strcmp(conn->database, conn->role) == 0)
				return true;
		}
		else if (pgtls_token_is_keyword(t, "samegroup") || pgtls_token_is_keyword(t, "samerole"))
		{
			if (is_member(conn->roleid, conn->database))
				return true;
		}
		else if (pgtls_token_is_keyword(t, "replication"))
			continue;
		else if (strcmp(t->string, conn->database) == 0)
			return true;
	}
	return false;
}

/* Follows check_role() in hba.c (PostgreSQL 15.x). */
bool
pgtls_hba_match_role(PgtlsConnection *conn, List *tokens)
{
	ListCell   *lc;

	foreach(lc, tokens)
	{
		AuthToken  *t = lfirst(lc);

		if (!t->quoted && t->string[0] == '+')
		{
			if (is_member(conn->roleid, t->string + 1))
				return true;
		}
		else if (strcmp(t->string, conn->role) == 0 || pgtls_token_is_keyword(t, "all"))
			return true;
	}
	return false;
}

/* Follows check_ip() in hba.c (PostgreSQL 15.x). */
static bool
match_ip(const struct sockaddr_storage *client, const struct sockaddr_storage *addr,
		 const struct sockaddr_storage *mask)
{
	return client->ss_family == addr->ss_family &&
		pg_range_sockaddr(client, addr, mask);
}

typedef struct NetworkCheck
{
	IPCompareMethod method;
	const struct sockaddr_storage *client;
	bool		result;
} NetworkCheck;

/* Follows check_network_callback() in hba.c (PostgreSQL 15.x). */
static void
network_callback(struct sockaddr *addr, struct sockaddr *netmask, void *arg)
{
	NetworkCheck *nc = arg;
	struct sockaddr_storage a;
	struct sockaddr_storage m;

	if (nc->result)
		return;
	memset(&a, 0, sizeof(a));
	memcpy(&a, addr, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	if (nc->method == ipCmpSameHost)
		pg_sockaddr_cidr_mask(&m, NULL, addr->sa_family);
	else
	{
		memset(&m, 0, sizeof(m));
		memcpy(&m, netmask, addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in));
	}
	nc->result = match_ip(nc->client, &a, &m);
}

/* Follows check_same_host_or_net() in hba.c (PostgreSQL 15.x). */
static bool
match_same_host_or_net(PgtlsConnection *conn, IPCompareMethod method)
{
	NetworkCheck nc = {method, &conn->addr, false};

	if (pg_foreach_ifaddr(network_callback, &nc) < 0)
		ereport(WARNING,
				(errmsg("could not enumerate network interfaces: %m")));
	return nc.result;
}

/* Follows hostname_match() in hba.c (PostgreSQL 15.x). */
bool
pgtls_hostname_matches(const char *pattern, const char *actual)
{
	size_t		plen = strlen(pattern);
	size_t		hlen = strlen(actual);

	if (pattern[0] != '.')
		return pg_strcasecmp(pattern, actual) == 0;
	return hlen >= plen && pg_strcasecmp(pattern, actual + (hlen - plen)) == 0;
}

/* Follows ipv4eq()/ipv6eq() in hba.c (PostgreSQL 15.x). */
static bool
same_address(const struct sockaddr *a, const struct sockaddr_storage *b)
{
	if (a->sa_family != b->ss_family)
		return false;
	if (a->sa_family == AF_INET)
		return memcmp(&((const struct sockaddr_in *) a)->sin_addr,
					  &((const struct sockaddr_in *) b)->sin_addr, sizeof(struct in_addr)) == 0;
	return memcmp(&((const struct sockaddr_in6 *) a)->sin6_addr,
				  &((const struct sockaddr_in6 *) b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

/* Reverse lookup, then the forward lookup must give the address back. */
static bool
match_hostname(PgtlsConnection *conn, const char *pattern)
{
	if (conn->hostname_state == 0)
	{
		char		name[NI_MAXHOST];
		struct addrinfo *res = NULL;
		struct addrinfo *ai;

		conn->hostname_state = -1;
		if (pg_getnameinfo_all(&conn->addr, conn->addrlen, name, sizeof(name),
							   NULL, 0, NI_NAMEREQD) == 0 &&
			getaddrinfo(name, NULL, NULL, &res) == 0)
		{
			for (ai = res; ai != NULL; ai = ai->ai_next)
				if (same_address(ai->ai_addr, &conn->addr))
				{
					conn->hostname = pstrdup(name);
					conn->hostname_state = 1;
					break;
				}
			freeaddrinfo(res);
		}
	}
	return conn->hostname_state == 1 && pgtls_hostname_matches(pattern, conn->hostname);
}

/* The connection-type tests at the top of check_hba()'s loop (hba.c, PostgreSQL 15.x). */
static bool
match_connection_type(HbaLine *hba, PgtlsConnection *conn)
{
	if (hba->conntype == ctLocal)
		return conn->local;
	if (conn->local)
		return false;
	if (hba->conntype == ctHostSSL && !conn->ssl)
		return false;
	if (hba->conntype == ctHostNoSSL && conn->ssl)
		return false;
	/* we describe connections without GSSAPI encryption */
	return hba->conntype != ctHostGSS;
}

/* The address tests of check_hba()'s loop (hba.c, PostgreSQL 15.x). */
static bool
match_address(HbaLine *hba, PgtlsConnection *conn)
{
	if (hba->conntype == ctLocal)
		return true;
	switch (hba->ip_cmp_method)
	{
		case ipCmpAll:
			return true;
		case ipCmpSameHost:
		case ipCmpSameNet:
			return match_same_host_or_net(conn, hba->ip_cmp_method);
		case ipCmpMask:
			if (hba->hostname)
				return match_hostname(conn, hba->hostname);
			return match_ip(&conn->addr, &hba->addr, &hba->mask);
	}
	return false;
}

/* Index of the first rule the connection hits, or -1 (implicit reject): check_hba(). */
int
pgtls_hba_find(PgtlsHbaFile *file, PgtlsConnection *conn)
{
	int			i;

	for (i = 0; i < file->nrules; i++)
	{
		HbaLine    *hba = file->rules[i].hba;

		if (hba == NULL)
			continue;
		if (match_connection_type(hba, conn) && match_address(hba, conn) &&
			match_database(conn, hba->databases) && pgtls_hba_match_role(conn, hba->roles))
			return i;
	}
	return -1;
}

const char *
pgtls_hba_type_name(ConnType type)
{
	switch (type)
	{
		case ctLocal:
			return "local";
		case ctHost:
			return "host";
		case ctHostSSL:
			return "hostssl";
		case ctHostNoSSL:
			return "hostnossl";
		case ctHostGSS:
			return "hostgssenc";
		case ctHostNoGSS:
			return "hostnogssenc";
	}
	return "unknown";
}

bool
pgtls_hba_is_password_method(UserAuth m)
{
	return m == uaPassword || m == uaMD5 || m == uaSCRAM || m == uaLDAP ||
		m == uaRADIUS || m == uaPAM || m == uaBSD;
}

/* The method part of a verdict: "cert login", "password login", ... */
static const char *
method_words(HbaLine *hba)
{
	const char *base;

	switch (hba->auth_method)
	{
		case uaReject:
		case uaImplicitReject:
			return "rejected";
		case uaCert:
			return "cert login";
		case uaTrust:
			return hba->clientcert != clientCertOff ? "cert login" : "trust login";
		default:
			break;
	}
	base = pgtls_hba_is_password_method(hba->auth_method) ? "password" : hba_authname(hba->auth_method);
	if (hba->clientcert != clientCertOff)
		return psprintf("cert and %s login", base);
	return psprintf("%s login", base);
}

/* Does the line compare a certificate's name with the role (CheckCertAuth)? */
bool
pgtls_hba_checks_cert_name(HbaLine *hba)
{
	return hba->auth_method == uaCert ||
		(hba->auth_method != uaReject && hba->clientcert == clientCertFull);
}

/*
 * What a certificate must name to pass this line's name check, or NULL when
 * it is the plain "CN equals the role".  *impossible: no certificate can.
 */
static char *
identity_requirement(HbaLine *hba, PgtlsIdentFile *ident, const char *role, bool *impossible)
{
	const char *field = hba->clientcertname == clientCertDN ? "subject DN" : "CN";
	char	   *note = ident->error ?
		psprintf("; pg_ident.conf %s is invalid, so the server keeps the maps it loaded before", ident->error) : "";
	int			line;

	*impossible = false;
	if (!pgtls_hba_checks_cert_name(hba))
		return NULL;
	if (hba->usermap == NULL || hba->usermap[0] == '\0')
		return hba->clientcertname == clientCertDN ?
			psprintf("the certificate's subject DN must be exactly \"%s\"", role) : NULL;
	*impossible = true;
	if (ident->missing)
		return psprintf("pg_ident.conf does not exist, so map \"%s\" is empty", hba->usermap);
	if (!pgtls_usermap_exists(ident, hba->usermap))
		return psprintf("pg_ident.conf has no map \"%s\"%s", hba->usermap, note);
	line = pgtls_usermap_can_reach(ident, hba->usermap, role);
	if (line == 0)
		return psprintf("map \"%s\" in pg_ident.conf maps no certificate %s to role \"%s\"%s",
						hba->usermap, field, role, note);
	*impossible = false;
	return psprintf("the certificate's %s through map \"%s\", pg_ident.conf line %d%s",
					field, hba->usermap, line, note);
}

/*
 * Does this line's name check let a certificate with this CN and subject
 * DN in as role?  *ident_line: the pg_ident.conf line that decided; *why:
 * the server's log line when not.  Lines without a name check admit any.
 */
bool
pgtls_hba_admits_identity(HbaLine *hba, PgtlsIdentFile *ident, const char *role,
						  const char *cn, const char *dn, int *ident_line, char **why)
{
	const char *name = hba->clientcertname == clientCertDN ? dn : cn;

	*ident_line = 0;
	*why = NULL;
	if (!pgtls_hba_checks_cert_name(hba))
		return true;
	if (name == NULL || name[0] == '\0')
	{
		*why = psprintf("certificate authentication failed for user \"%s\": client certificate contains no user name", role);
		return false;
	}
	return pgtls_usermap_check(ident, hba->usermap, role, name, ident_line, why);
}

/*
 * What InitPostgres() refuses after a successful authentication
 * (postinit.c and miscinit.c, PostgreSQL 15.x), check by check in the
 * server's words; NULL where it passes.  Connection limits and reserved
 * slots depend on the moment and are not predicted.  The database checks
 * do not apply to a physical replication connection, nor the replication
 * checks to others.  One refusal comes before authentication: with
 * max_wal_senders = 0, InitProcess() turns every walsender away.
 */
void
pgtls_after_auth_checks(const char *role, const char *database, bool physical_replication,
						PgtlsAfterAuth *out)
{
	HeapTuple	tup = SearchSysCache1(AUTHNAME, CStringGetDatum(role));
	bool		super = false;
	bool		replication = false;
	Oid			roleid = InvalidOid;
	Oid			dbid;
	Form_pg_database d;

	memset(out, 0, sizeof(*out));
	if (physical_replication && max_wal_senders == 0)
		out->walsender = psprintf("number of requested standby connections exceeds max_wal_senders (currently %d)",
								  max_wal_senders);
	if (!HeapTupleIsValid(tup))
		out->role = psprintf("role \"%s\" does not exist", role);
	else
	{
		Form_pg_authid r = (Form_pg_authid) GETSTRUCT(tup);

		roleid = r->oid;
		super = r->rolsuper;
		replication = r->rolreplication;
		if (!r->rolcanlogin)
			out->role = psprintf("role \"%s\" is not permitted to log in", role);
		ReleaseSysCache(tup);
	}
	if (physical_replication)
	{
		if (OidIsValid(roleid) && !super && !replication)
			out->replication = pstrdup("must be superuser or replication role to start walsender");
		return;
	}

	dbid = get_database_oid(database, true);
	tup = OidIsValid(dbid) ? SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dbid)) : NULL;
	if (!HeapTupleIsValid(tup))
	{
		out->database = psprintf("database \"%s\" does not exist", database);
		return;
	}
	d = (Form_pg_database) GETSTRUCT(tup);
#ifdef DATCONNLIMIT_INVALID_DB
	if (d->datconnlimit == DATCONNLIMIT_INVALID_DB)
		out->database = psprintf("cannot connect to invalid database \"%s\"", database);
	else
#endif
	if (!d->datallowconn)
		out->database = psprintf("database \"%s\" is not currently accepting connections", database);
	ReleaseSysCache(tup);
	if (out->database == NULL && OidIsValid(roleid) && !super &&
		pg_database_aclcheck(dbid, roleid, ACL_CONNECT) != ACLCHECK_OK)
		out->database = psprintf("permission denied for database \"%s\"", database);
}

/* The first of them, or NULL. */
char *
pgtls_refusal_after_auth(const char *role, const char *database, bool physical_replication)
{
	PgtlsAfterAuth checks;

	pgtls_after_auth_checks(role, database, physical_replication, &checks);
	return checks.walsender ? checks.walsender : checks.role ? checks.role :
		checks.replication ? checks.replication : checks.database;
}

/*
 * What happens to a connection that hits this rule: the method, what a
 * certificate must name, and what the server refuses after authentication.
 */
char *
pgtls_hba_verdict(HbaLine *hba, PgtlsConnection *conn, PgtlsIdentFile *ident)
{
	StringInfoData buf;
	bool		impossible;
	char	   *requirement;
	char	   *refusal;

	if (hba->auth_method == uaReject || hba->auth_method == uaImplicitReject)
		return pstrdup("rejected");
	requirement = identity_requirement(hba, ident, conn->role, &impossible);
	if (impossible)
		return psprintf("no certificate can log in: %s", requirement);
	initStringInfo(&buf);
	appendStringInfoString(&buf, method_words(hba));
	if (requirement != NULL)
		appendStringInfo(&buf, " (%s)", requirement);
	refusal = pgtls_refusal_after_auth(conn->role, conn->database, conn->physical_replication);
	if (refusal != NULL)
		appendStringInfo(&buf, "; refused %s authentication: %s",
						 conn->physical_replication && max_wal_senders == 0 ? "before" : "after", refusal);
	return buf.data;
}

static void
add_option(List **options, const PgtlsHbaRule *rule, const char *name, const char *value)
{
	ListCell   *lc;

	if (value == NULL)
		return;
	foreach(lc, rule->masked_options)
	{
		if (strcmp(lfirst(lc), name) == 0)
			value = PGTLS_MASK;
	}
	*options = lappend(*options, pgtls_hba_mask(rule, psprintf("%s=%s", name, value)));
}

/*
 * The rule's options, as pg_hba_file_rules lists them, secrets masked, and
 * so are options written after a secret option (they may be pieces of it).
 */
List *
pgtls_hba_options(const PgtlsHbaRule *rule)
{
	HbaLine    *hba = rule->hba;
	List	   *options = NIL;

	if (hba->auth_method != uaCert && hba->clientcert != clientCertOff)
		add_option(&options, rule, "clientcert",
				   hba->clientcert == clientCertCA ? "verify-ca" : "verify-full");
	if (hba->clientcertname == clientCertDN)
		add_option(&options, rule, "clientname", "DN");
	add_option(&options, rule, "map", hba->usermap);
	add_option(&options, rule, "krb_realm", hba->krb_realm);
	if (hba->include_realm)
		add_option(&options, rule, "include_realm", "true");
	add_option(&options, rule, "pamservice", hba->pamservice);
	add_option(&options, rule, "ldapserver", hba->ldapserver);
	add_option(&options, rule, "ldapscheme", hba->ldapscheme);
	if (hba->ldapport)
		add_option(&options, rule, "ldapport", psprintf("%d", hba->ldapport));
	if (hba->ldaptls)
		add_option(&options, rule, "ldaptls", "true");
	add_option(&options, rule, "ldapprefix", hba->ldapprefix);
	add_option(&options, rule, "ldapsuffix", hba->ldapsuffix);
	add_option(&options, rule, "ldapbasedn", hba->ldapbasedn);
	add_option(&options, rule, "ldapbinddn", hba->ldapbinddn);
	add_option(&options, rule, "ldapbindpasswd", hba->ldapbindpasswd ? PGTLS_MASK : NULL);
	add_option(&options, rule, "ldapsearchattribute", hba->ldapsearchattribute);
	add_option(&options, rule, "ldapsearchfilter", hba->ldapsearchfilter);
	add_option(&options, rule, "radiusservers", hba->radiusservers_s);
	add_option(&options, rule, "radiussecrets", hba->radiussecrets_s ? PGTLS_MASK : NULL);
	add_option(&options, rule, "radiusidentifiers", hba->radiusidentifiers_s);
	add_option(&options, rule, "radiusports", hba->radiusports_s);
	return options;
}
