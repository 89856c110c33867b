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

#include "common/ip.h"
#include "libpq/ifaddr.h"
#include "utils/acl.h"

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
static bool
match_role(PgtlsConnection *conn, List *tokens)
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
			match_database(conn, hba->databases) && match_role(conn, hba->roles))
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

/* What happens to a connection that hits this rule. */
const char *
pgtls_hba_verdict(HbaLine *hba)
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

static void
add_option(List **options, const char *name, const char *value)
{
	if (value != NULL)
		*options = lappend(*options, psprintf("%s=%s", name, value));
}

/* The rule's options, as pg_hba_file_rules lists them, secrets masked. */
List *
pgtls_hba_options(HbaLine *hba)
{
	List	   *options = NIL;

	if (hba->auth_method != uaCert && hba->clientcert != clientCertOff)
		add_option(&options, "clientcert",
				   hba->clientcert == clientCertCA ? "verify-ca" : "verify-full");
	if (hba->clientcertname == clientCertDN)
		add_option(&options, "clientname", "DN");
	add_option(&options, "map", hba->usermap);
	add_option(&options, "krb_realm", hba->krb_realm);
	if (hba->include_realm)
		add_option(&options, "include_realm", "true");
	add_option(&options, "pamservice", hba->pamservice);
	add_option(&options, "ldapserver", hba->ldapserver);
	add_option(&options, "ldapscheme", hba->ldapscheme);
	if (hba->ldapport)
		add_option(&options, "ldapport", psprintf("%d", hba->ldapport));
	if (hba->ldaptls)
		add_option(&options, "ldaptls", "true");
	add_option(&options, "ldapprefix", hba->ldapprefix);
	add_option(&options, "ldapsuffix", hba->ldapsuffix);
	add_option(&options, "ldapbasedn", hba->ldapbasedn);
	add_option(&options, "ldapbinddn", hba->ldapbinddn);
	add_option(&options, "ldapbindpasswd", hba->ldapbindpasswd ? PGTLS_MASK : NULL);
	add_option(&options, "ldapsearchattribute", hba->ldapsearchattribute);
	add_option(&options, "ldapsearchfilter", hba->ldapsearchfilter);
	add_option(&options, "radiusservers", hba->radiusservers_s);
	add_option(&options, "radiussecrets", hba->radiussecrets_s ? PGTLS_MASK : NULL);
	add_option(&options, "radiusidentifiers", hba->radiusidentifiers_s);
	add_option(&options, "radiusports", hba->radiusports_s);
	return options;
}

/* ---------------------------------------------------------------------
 * Does any rule let this role in with a certificate?  (NOTICE on issue)
 * --------------------------------------------------------------------- */
bool
pgtls_hba_admits_cert(Oid roleid, const char *role)
{
	PgtlsHbaFile *file = pgtls_hba_read_cached();
	PgtlsConnection conn = {0};
	int			i;

	if (file == NULL)
		return true;			/* nothing to say if we cannot read it */
	conn.role = role;
	conn.roleid = roleid;
	for (i = 0; i < file->nrules; i++)
	{
		HbaLine    *hba = file->rules[i].hba;

		if (hba != NULL && hba->conntype == ctHostSSL && hba->auth_method != uaReject &&
			(hba->auth_method == uaCert || hba->clientcert != clientCertOff) &&
			match_role(&conn, hba->roles))
			return true;
	}
	return false;
}
