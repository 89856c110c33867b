/*
 * hba.c
 *		pg_hba.conf as the server reads it: loading, matching a connection,
 *		and the rule audit.
 *
 * Lines are tokenized and parsed by the server's own code (the same calls
 * behind pg_hba_file_rules), so a line we accept is a line the server
 * accepts.  Matching follows check_hba(): first rule whose connection type,
 * address, database and role all match wins.
 *
 * pg_hba.conf may hold LDAP bind passwords and RADIUS secrets, and the audit
 * is open to pg_monitor: those values are masked in every line and message
 * we return.
 */
#include "pgtls_audit.h"
#include "pgtls_compat.h"

#include <netdb.h>
#include <netinet/in.h>

#include "catalog/pg_authid.h"
#include "common/hashfn.h"
#include "common/ip.h"
#include "lib/stringinfo.h"
#include "libpq/ifaddr.h"
#include "libpq/libpq.h"
#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#define MASK "********"

static const char *const secret_options[] = {"ldapbindpasswd=", "radiussecrets=", "radiussecret="};

/* Values of secret options found in a line's tokens. */
static List *
line_secrets(TokenizedAuthLine *tok)
{
	List	   *secrets = NIL;
	ListCell   *f;
	ListCell   *t;

	foreach(f, tok->fields)
	{
		foreach(t, (List *) lfirst(f))
		{
			AuthToken  *token = lfirst(t);
			int			i;

			for (i = 0; i < (int) lengthof(secret_options); i++)
			{
				size_t		n = strlen(secret_options[i]);

				if (strncmp(token->string, secret_options[i], n) == 0 && token->string[n] != '\0')
					secrets = lappend(secrets, token->string + n);
			}
		}
	}
	return secrets;
}

/* text with every occurrence of every secret replaced by MASK */
static char *
mask_values(const char *text, List *secrets)
{
	StringInfoData buf;
	const char *p = text;
	ListCell   *lc;

	if (secrets == NIL)
		return pstrdup(text);
	initStringInfo(&buf);
	while (*p)
	{
		bool		hit = false;

		foreach(lc, secrets)
		{
			const char *s = lfirst(lc);
			size_t		n = strlen(s);

			if (strncmp(p, s, n) == 0)
			{
				appendStringInfoString(&buf, MASK);
				p += n;
				hit = true;
				break;
			}
		}
		if (!hit)
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/*
 * Mask the value of each secret option in a raw line, quoted or not, up to
 * the next unquoted blank; then any remaining copy of a secret value.
 */
static char *
mask_line(const char *raw, List *secrets)
{
	StringInfoData buf;
	const char *p = raw;

	initStringInfo(&buf);
	while (*p)
	{
		int			i;
		bool		hit = false;

		for (i = 0; i < (int) lengthof(secret_options) && !hit; i++)
		{
			const char *q = (*p == '"') ? p + 1 : p;
			size_t		n = strlen(secret_options[i]);
			bool		in_quote = (*p == '"');

			if ((p != raw && !pg_isblank(p[-1])) || strncmp(q, secret_options[i], n) != 0)
				continue;
			appendBinaryStringInfo(&buf, p, (q - p) + n);
			p = q + n;
			while (*p && (in_quote || !pg_isblank(*p)))
			{
				if (*p == '"')
					in_quote = !in_quote;
				p++;
			}
			appendStringInfoString(&buf, MASK);
			hit = true;
		}
		if (!hit)
			appendStringInfoChar(&buf, *p++);
	}
	return mask_values(buf.data, secrets);
}

/*
 * Read and parse pg_hba.conf as it is on disk now (what pg_hba_file_rules
 * shows and what the next reload loads), in the current memory context.
 */
PgtlsHbaFile *
pgtls_hba_read(void)
{
	PgtlsHbaFile *result = palloc0(sizeof(PgtlsHbaFile));
	FILE	   *file;
	List	   *lines = NIL;
	ListCell   *lc;
	int			i = 0;

	result->path = pstrdup(HbaFileName);
	file = AllocateFile(HbaFileName, "r");
	if (file == NULL)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open configuration file \"%s\": %m", HbaFileName)));
	(void) pgtls_tokenize_hba(HbaFileName, file, &lines);
	FreeFile(file);

	result->rules = palloc0(sizeof(PgtlsHbaRule) * Max(list_length(lines), 1));
	foreach(lc, lines)
	{
		TokenizedAuthLine *tok = lfirst(lc);
		PgtlsHbaRule *rule = &result->rules[i++];
		List	   *secrets = line_secrets(tok);

		rule->line = tok->line_num;
		rule->raw = mask_line(tok->raw_line, secrets);
		if (tok->err_msg == NULL)
			rule->hba = parse_hba_line(tok, DEBUG3);
		if (tok->err_msg != NULL)
			rule->error = mask_values(tok->err_msg, secrets);
		else if (rule->hba == NULL)
			rule->error = pstrdup("the server rejects this line (its reason is logged at the next reload)");
		rule->warning = (rule->hba != NULL && rule->error != NULL);
		if (rule->hba == NULL)
			result->nerrors++;
	}
	result->nrules = i;
	return result;
}

/* ---------------------------------------------------------------------
 * Matching, as check_hba() does it
 * --------------------------------------------------------------------- */

static bool
token_is_keyword(AuthToken *t, const char *keyword)
{
	return !t->quoted && strcmp(t->string, keyword) == 0;
}

static bool
is_member(Oid roleid, const char *group)
{
	Oid			groupid;

	if (!OidIsValid(roleid))
		return false;
	groupid = get_role_oid(group, true);
	return OidIsValid(groupid) && is_member_of_role_nosuper(roleid, groupid);
}

static bool
match_database(PgtlsConnection *conn, List *tokens)
{
	ListCell   *lc;

	foreach(lc, tokens)
	{
		AuthToken  *t = lfirst(lc);

		if (conn->physical_replication)
		{
			if (token_is_keyword(t, "replication"))
				return true;
		}
		else if (token_is_keyword(t, "all"))
			return true;
		else if (token_is_keyword(t, "sameuser"))
		{
			if (strcmp(conn->database, conn->role) == 0)
				return true;
		}
		else if (token_is_keyword(t, "samegroup") || token_is_keyword(t, "samerole"))
		{
			if (is_member(conn->roleid, conn->database))
				return true;
		}
		else if (token_is_keyword(t, "replication"))
			continue;
		else if (strcmp(t->string, conn->database) == 0)
			return true;
	}
	return false;
}

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
		else if (strcmp(t->string, conn->role) == 0 || token_is_keyword(t, "all"))
			return true;
	}
	return false;
}

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

static bool
match_same_host_or_net(PgtlsConnection *conn, IPCompareMethod method)
{
	NetworkCheck nc = {method, &conn->addr, false};

	if (pg_foreach_ifaddr(network_callback, &nc) < 0)
		ereport(WARNING,
				(errmsg("could not enumerate network interfaces: %m")));
	return nc.result;
}

static bool
hostname_matches(const char *pattern, const char *actual)
{
	size_t		plen = strlen(pattern);
	size_t		hlen = strlen(actual);

	if (pattern[0] != '.')
		return pg_strcasecmp(pattern, actual) == 0;
	return hlen >= plen && pg_strcasecmp(pattern, actual + (hlen - plen)) == 0;
}

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
	return conn->hostname_state == 1 && hostname_matches(pattern, conn->hostname);
}

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

/* Index of the first rule the connection hits, or -1 (implicit reject). */
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

static bool
is_password_method(UserAuth m)
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
	base = is_password_method(hba->auth_method) ? "password" : hba_authname(hba->auth_method);
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
	add_option(&options, "ldapbindpasswd", hba->ldapbindpasswd ? MASK : NULL);
	add_option(&options, "ldapsearchattribute", hba->ldapsearchattribute);
	add_option(&options, "ldapsearchfilter", hba->ldapsearchfilter);
	add_option(&options, "radiusservers", hba->radiusservers_s);
	add_option(&options, "radiussecrets", hba->radiussecrets_s ? MASK : NULL);
	add_option(&options, "radiusidentifiers", hba->radiusidentifiers_s);
	add_option(&options, "radiusports", hba->radiusports_s);
	return options;
}

/* ---------------------------------------------------------------------
 * Does any rule let this role in with a certificate?  (NOTICE on issue)
 *
 * Cached per backend while pg_hba.conf and the last reload stay the same,
 * so issuing does not re-read the file each time.
 * --------------------------------------------------------------------- */

static MemoryContext hba_cache_cxt = NULL;
static PgtlsHbaFile *hba_cache = NULL;
static struct stat hba_cache_stat;
static TimestampTz hba_cache_reload;

static PgtlsHbaFile *
cached_hba(void)
{
	struct stat st;
	MemoryContext cxt;
	MemoryContext old;

	if (stat(HbaFileName, &st) < 0)
		return NULL;
	if (hba_cache != NULL && st.st_ino == hba_cache_stat.st_ino &&
		st.st_dev == hba_cache_stat.st_dev && st.st_size == hba_cache_stat.st_size &&
		st.st_mtim.tv_sec == hba_cache_stat.st_mtim.tv_sec &&
		st.st_mtim.tv_nsec == hba_cache_stat.st_mtim.tv_nsec &&
		hba_cache_reload == PgReloadTime)
		return hba_cache;

	cxt = AllocSetContextCreate(TopMemoryContext, "pgtls_admin pg_hba cache",
								ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		hba_cache = NULL;
		hba_cache = pgtls_hba_read();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	if (hba_cache_cxt != NULL)
		MemoryContextDelete(hba_cache_cxt);
	hba_cache_cxt = cxt;
	hba_cache_stat = st;
	hba_cache_reload = PgReloadTime;
	return hba_cache;
}

bool
pgtls_hba_admits_cert(Oid roleid, const char *role)
{
	PgtlsHbaFile *file = cached_hba();
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

/* ---------------------------------------------------------------------
 * Rule audit
 * --------------------------------------------------------------------- */

/* Connection kinds a rule can match; a rule's type is a set of them. */
#define KIND_LOCAL	0
#define KIND_SSL	1
#define KIND_GSS	2
#define KIND_PLAIN	3
#define NKINDS		4

static int
kinds_of(ConnType type)
{
	switch (type)
	{
		case ctLocal:
			return 1 << KIND_LOCAL;
		case ctHost:
			return (1 << KIND_SSL) | (1 << KIND_GSS) | (1 << KIND_PLAIN);
		case ctHostSSL:
			return EnableSSL ? (1 << KIND_SSL) : 0;
		case ctHostNoSSL:
			return (1 << KIND_GSS) | (1 << KIND_PLAIN);
		case ctHostGSS:
			return 1 << KIND_GSS;
		case ctHostNoGSS:
			return (1 << KIND_SSL) | (1 << KIND_PLAIN);
	}
	return 0;
}

/* An address of a rule, reduced to what containment needs. */
typedef enum AddrKind
{
	ADDR_ALL,					/* "all", and local rules */
	ADDR_SAMEHOST,
	ADDR_SAMENET,
	ADDR_HOSTNAME,
	ADDR_PREFIX,				/* address/contiguous mask */
	ADDR_ODDMASK				/* address with a non-contiguous netmask */
} AddrKind;

typedef struct RuleAddr
{
	AddrKind	kind;
	int			family;			/* 0 = v4, 1 = v6 */
	int			plen;			/* leading one bits of the mask */
	uint8		addr[16];
	uint8		mask[16];
	const char *hostname;
} RuleAddr;

static void
rule_addr(HbaLine *hba, RuleAddr *a)
{
	const uint8 *ab;
	const uint8 *mb;
	int			n;
	int			i;

	memset(a, 0, sizeof(*a));
	if (hba->conntype == ctLocal || hba->ip_cmp_method == ipCmpAll)
		return;
	if (hba->ip_cmp_method == ipCmpSameHost || hba->ip_cmp_method == ipCmpSameNet)
	{
		a->kind = hba->ip_cmp_method == ipCmpSameHost ? ADDR_SAMEHOST : ADDR_SAMENET;
		return;
	}
	if (hba->hostname)
	{
		a->kind = ADDR_HOSTNAME;
		a->hostname = hba->hostname;
		return;
	}
	if (hba->addr.ss_family == AF_INET6)
	{
		a->family = 1;
		n = 16;
		ab = (const uint8 *) &((struct sockaddr_in6 *) &hba->addr)->sin6_addr;
		mb = (const uint8 *) &((struct sockaddr_in6 *) &hba->mask)->sin6_addr;
	}
	else
	{
		n = 4;
		ab = (const uint8 *) &((struct sockaddr_in *) &hba->addr)->sin_addr;
		mb = (const uint8 *) &((struct sockaddr_in *) &hba->mask)->sin_addr;
	}
	for (i = 0; i < n; i++)
	{
		a->mask[i] = mb[i];
		a->addr[i] = ab[i] & mb[i];
	}
	a->kind = ADDR_PREFIX;
	for (i = 0; i < n * 8 && (mb[i / 8] & (0x80 >> (i % 8))); i++)
		a->plen++;
	for (; i < n * 8; i++)
		if (mb[i / 8] & (0x80 >> (i % 8)))
			a->kind = ADDR_ODDMASK;
}

static int
addr_bytes(const RuleAddr *a)
{
	return a->family ? 16 : 4;
}

static bool
addr_is_world(const RuleAddr *a)
{
	return a->kind == ADDR_ALL || (a->kind == ADDR_PREFIX && a->plen == 0);
}

/* Reachable only from this machine: loopback, samehost, "localhost". */
static bool
addr_is_local_only(HbaLine *hba, const RuleAddr *a)
{
	static const uint8 v6_loopback[16] = {[15] = 1};

	if (hba->conntype == ctLocal || a->kind == ADDR_SAMEHOST)
		return true;
	if (a->kind == ADDR_HOSTNAME)
		return pg_strcasecmp(a->hostname, "localhost") == 0;
	if (a->kind != ADDR_PREFIX)
		return false;
	if (a->family == 0)
		return a->plen >= 8 && a->addr[0] == 127;
	return a->plen == 128 && memcmp(a->addr, v6_loopback, 16) == 0;
}

/*
 * Shadowing.  Rule j can never match when, for every connection kind it
 * accepts, one earlier rule accepts that kind for a superset of its
 * databases, roles and addresses.  Earlier rules are grouped by (kind,
 * database set, role set); a group keeps its addresses in a hash keyed by
 * (prefix length, masked address), so a later rule's address is checked
 * with one probe per prefix length the group uses.  Candidate groups come
 * from an index of token -> groups, so the work per rule does not grow with
 * the number of earlier rules unless they share its names.
 */
typedef struct Interned
{
	const char *key;
	int			id;
} Interned;

static uint32
string_ptr_hash(const void *key, Size keysize)
{
	const char *s = *(const char *const *) key;

	return hash_bytes((const unsigned char *) s, strlen(s));
}

static int
string_ptr_match(const void *k1, const void *k2, Size keysize)
{
	return strcmp(*(const char *const *) k1, *(const char *const *) k2);
}

static HTAB *
string_table(const char *name)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(char *);
	ctl.entrysize = sizeof(Interned);
	ctl.hash = string_ptr_hash;
	ctl.match = string_ptr_match;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, 256, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

static int
intern(HTAB *table, const char *s, int *next_id, bool *created)
{
	bool		found;
	Interned   *e = hash_search(table, &s, HASH_ENTER, &found);

	if (!found)
	{
		e->key = pstrdup(s);
		e->id = (*next_id)++;
	}
	if (created)
		*created = !found;
	return e->id;
}

typedef struct TokenSet
{
	int			n;
	int		   *ids;			/* sorted, unique */
	bool		has_all;
	bool		has_replication;
} TokenSet;

typedef struct ShadowGroup
{
	TokenSet	db;
	TokenSet	role;
	int			all_line;
	int			samehost_line;
	int			samenet_line;
	uint64		plens[2][3];	/* prefix lengths present, per family */
	List	   *others;			/* RuleAddr * + line, compared one by one */
} ShadowGroup;

typedef struct OtherAddr
{
	RuleAddr	addr;
	int			line;
} OtherAddr;

typedef struct AddrKey
{
	int			group;
	int			family;
	int			plen;
	uint8		addr[16];
} AddrKey;

typedef struct AddrEntry
{
	AddrKey		key;
	int			line;
} AddrEntry;

typedef struct PostingKey
{
	int			kind;
	int			side;			/* 0 database, 1 role */
	int			token;
} PostingKey;

typedef struct Posting
{
	PostingKey	key;
	List	   *groups;			/* int list of group ids */
} Posting;

typedef struct Shadow
{
	HTAB	   *tokens;
	int			ntokens;
	int			kw_all;
	int			kw_replication;
	HTAB	   *signatures;
	int			ngroups;
	ShadowGroup	  **groups;
	int			groups_cap;
	HTAB	   *postings;
	HTAB	   *addrs;
} Shadow;

static HTAB *
blob_table(const char *name, Size keysize, Size entrysize)
{
	HASHCTL		ctl;

	ctl.keysize = keysize;
	ctl.entrysize = entrysize;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create(name, 1024, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

static int
cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

/* Tokens as ids: keywords (unquoted), +group (unquoted) and plain names differ. */
static void
token_set(Shadow *s, List *tokens, bool database, TokenSet *set)
{
	ListCell   *lc;
	int			n = 0;
	int			i;

	set->ids = palloc(sizeof(int) * Max(list_length(tokens), 1));
	set->has_all = set->has_replication = false;
	foreach(lc, tokens)
	{
		AuthToken  *t = lfirst(lc);
		char	   *key;

		if (token_is_keyword(t, "all"))
			key = "k:all";
		else if (database && token_is_keyword(t, "replication"))
			key = "k:replication";
		else if (database && token_is_keyword(t, "sameuser"))
			key = "k:sameuser";
		else if (database && (token_is_keyword(t, "samerole") || token_is_keyword(t, "samegroup")))
			key = "k:samerole";
		else if (!database && !t->quoted && t->string[0] == '+')
			key = psprintf("g:%s", t->string + 1);
		else
			key = psprintf("n:%s", t->string);
		set->ids[n++] = intern(s->tokens, key, &s->ntokens, NULL);
	}
	qsort(set->ids, n, sizeof(int), cmp_int);
	set->n = 0;
	for (i = 0; i < n; i++)
		if (set->n == 0 || set->ids[set->n - 1] != set->ids[i])
			set->ids[set->n++] = set->ids[i];
	for (i = 0; i < set->n; i++)
	{
		set->has_all |= set->ids[i] == s->kw_all;
		set->has_replication |= set->ids[i] == s->kw_replication;
	}
}

static bool
set_has(const TokenSet *set, int id)
{
	return bsearch(&id, set->ids, set->n, sizeof(int), cmp_int) != NULL;
}

/* Does the earlier group's set accept every name the later set accepts? */
static bool
set_covers(Shadow *s, const TokenSet *earlier, const TokenSet *later, bool database)
{
	int			i;

	for (i = 0; i < later->n; i++)
	{
		int			id = later->ids[i];

		if (set_has(earlier, id))
			continue;
		/* "all" takes any name but not the replication keyword (physical replication) */
		if (earlier->has_all && id != s->kw_all && !(database && id == s->kw_replication))
			continue;
		return false;
	}
	return true;
}

static void
addr_key(AddrKey *k, int group, const RuleAddr *a, int plen)
{
	int			i;

	memset(k, 0, sizeof(*k));
	k->group = group;
	k->family = a->family;
	k->plen = plen;
	for (i = 0; i < plen / 8; i++)
		k->addr[i] = a->addr[i];
	if (plen % 8)
		k->addr[plen / 8] = a->addr[plen / 8] & (uint8) (0xFF << (8 - plen % 8));
}

static void
min_line(int *best, int line)
{
	if (line < *best)
		*best = line;
}

/* Does the earlier address a cover every client the later address b accepts? */
static bool
addr_covers(const RuleAddr *a, const RuleAddr *b)
{
	int			i;

	if (a->kind == ADDR_ALL)
		return true;
	switch (b->kind)
	{
		case ADDR_ALL:
			return false;
		case ADDR_SAMEHOST:
			return a->kind == ADDR_SAMEHOST || a->kind == ADDR_SAMENET;
		case ADDR_SAMENET:
			return a->kind == ADDR_SAMENET;
		case ADDR_HOSTNAME:
			return a->kind == ADDR_HOSTNAME && hostname_matches(a->hostname, b->hostname) &&
				(a->hostname[0] == '.' || b->hostname[0] != '.');
		case ADDR_PREFIX:
		case ADDR_ODDMASK:
			if ((a->kind != ADDR_PREFIX && a->kind != ADDR_ODDMASK) || a->family != b->family)
				return false;
			for (i = 0; i < addr_bytes(a); i++)
				if ((a->mask[i] & ~b->mask[i]) || (b->addr[i] & a->mask[i]) != a->addr[i])
					return false;
			return true;
	}
	return false;
}

/* Earliest line in group g whose address covers b, or INT_MAX. */
static int
group_covers(Shadow *s, int gid, const RuleAddr *b)
{
	ShadowGroup	   *g = s->groups[gid];
	int			best = g->all_line;
	ListCell   *lc;

	if (b->kind == ADDR_SAMEHOST)
		min_line(&best, Min(g->samehost_line, g->samenet_line));
	else if (b->kind == ADDR_SAMENET)
		min_line(&best, g->samenet_line);
	else if (b->kind == ADDR_PREFIX || b->kind == ADDR_ODDMASK)
	{
		int			L;

		for (L = 0; L <= b->plen; L++)
		{
			AddrKey		k;
			AddrEntry  *e;

			if (!(g->plens[b->family][L / 64] & (UINT64CONST(1) << (L % 64))))
				continue;
			addr_key(&k, gid, b, L);
			e = hash_search(s->addrs, &k, HASH_FIND, NULL);
			if (e != NULL)
				min_line(&best, e->line);
		}
	}
	foreach(lc, g->others)
	{
		OtherAddr  *o = lfirst(lc);

		if (addr_covers(&o->addr, b))
			min_line(&best, o->line);
	}
	return best;
}

static List *
postings(Shadow *s, int kind, int side, int token)
{
	PostingKey	k = {kind, side, token};
	Posting    *p = hash_search(s->postings, &k, HASH_FIND, NULL);

	return p ? p->groups : NIL;
}

/* Earliest earlier line that takes every connection of this kind rule j takes. */
static int
shadow_line(Shadow *s, int kind, const TokenSet *db, const TokenSet *role, const RuleAddr *addr)
{
	List	   *cand[2][2];
	int			side;
	int			best = INT_MAX;
	int			i;

	cand[0][0] = postings(s, kind, 0, s->kw_all);
	cand[0][1] = db->n ? postings(s, kind, 0, db->ids[0]) : NIL;
	cand[1][0] = postings(s, kind, 1, s->kw_all);
	cand[1][1] = role->n ? postings(s, kind, 1, role->ids[0]) : NIL;
	side = (list_length(cand[0][0]) + list_length(cand[0][1]) <=
			list_length(cand[1][0]) + list_length(cand[1][1])) ? 0 : 1;
	for (i = 0; i < 2; i++)
	{
		ListCell   *lc;

		if (i == 1 && cand[side][1] == cand[side][0])
			break;
		foreach(lc, cand[side][i])
		{
			int			gid = lfirst_int(lc);
			ShadowGroup	   *g = s->groups[gid];

			if (set_covers(s, &g->db, db, true) && set_covers(s, &g->role, role, false))
				min_line(&best, group_covers(s, gid, addr));
		}
	}
	return best;
}

static char *
signature(int kind, const TokenSet *db, const TokenSet *role)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	appendStringInfo(&buf, "%d|", kind);
	for (i = 0; i < db->n; i++)
		appendStringInfo(&buf, "%d,", db->ids[i]);
	appendStringInfoChar(&buf, '|');
	for (i = 0; i < role->n; i++)
		appendStringInfo(&buf, "%d,", role->ids[i]);
	return buf.data;
}

static void
add_posting(Shadow *s, int kind, int side, int token, int gid)
{
	PostingKey	k = {kind, side, token};
	bool		found;
	Posting    *p = hash_search(s->postings, &k, HASH_ENTER, &found);

	if (!found)
		p->groups = NIL;
	p->groups = lappend_int(p->groups, gid);
}

static void
shadow_add(Shadow *s, int kind, const TokenSet *db, const TokenSet *role,
		   const RuleAddr *addr, int line)
{
	bool		created;
	int			gid = intern(s->signatures, signature(kind, db, role), &s->ngroups, &created);
	ShadowGroup	   *g;

	if (created)
	{
		int			i;

		if (gid >= s->groups_cap)
		{
			s->groups_cap = Max(64, s->groups_cap * 2);
			s->groups = s->groups ? repalloc(s->groups, sizeof(ShadowGroup *) * s->groups_cap)
				: palloc(sizeof(ShadowGroup *) * s->groups_cap);
		}
		g = s->groups[gid] = palloc0(sizeof(ShadowGroup));
		g->db = *db;
		g->role = *role;
		g->all_line = g->samehost_line = g->samenet_line = INT_MAX;
		for (i = 0; i < db->n; i++)
			add_posting(s, kind, 0, db->ids[i], gid);
		for (i = 0; i < role->n; i++)
			add_posting(s, kind, 1, role->ids[i], gid);
	}
	g = s->groups[gid];
	switch (addr->kind)
	{
		case ADDR_ALL:
			min_line(&g->all_line, line);
			break;
		case ADDR_SAMEHOST:
			min_line(&g->samehost_line, line);
			break;
		case ADDR_SAMENET:
			min_line(&g->samenet_line, line);
			break;
		case ADDR_PREFIX:
			{
				AddrKey		k;
				bool		found;
				AddrEntry  *e;

				addr_key(&k, gid, addr, addr->plen);
				e = hash_search(s->addrs, &k, HASH_ENTER, &found);
				if (!found)
					e->line = line;
				g->plens[addr->family][addr->plen / 64] |= UINT64CONST(1) << (addr->plen % 64);
				break;
			}
		case ADDR_HOSTNAME:
		case ADDR_ODDMASK:
			{
				OtherAddr  *o = palloc(sizeof(OtherAddr));

				o->addr = *addr;
				o->line = line;
				g->others = lappend(g->others, o);
				break;
			}
	}
}

static void
shadow_init(Shadow *s)
{
	memset(s, 0, sizeof(*s));
	s->tokens = string_table("pgtls_admin hba tokens");
	s->signatures = string_table("pgtls_admin hba groups");
	s->postings = blob_table("pgtls_admin hba postings", sizeof(PostingKey), sizeof(Posting));
	s->addrs = blob_table("pgtls_admin hba addresses", sizeof(AddrKey), sizeof(AddrEntry));
	s->kw_all = intern(s->tokens, "k:all", &s->ntokens, NULL);
	s->kw_replication = intern(s->tokens, "k:replication", &s->ntokens, NULL);
}

/* ---- per-rule findings ---- */

typedef struct RuleCtx
{
	PgtlsAudit *audit;
	const char *file;
	PgtlsHbaRule *rule;
	HbaLine    *hba;
	RuleAddr	addr;
	const char *type;
	const char *method;
} RuleCtx;

static void
rule_finding(RuleCtx *r, PgtlsSeverity sev, const char *id, char *message, char *hint)
{
	pgtls_finding(r->audit, sev, id, r->file, r->rule->line, r->rule->raw, message, hint);
}

static void
check_methods(RuleCtx *r)
{
	HbaLine    *hba = r->hba;
	bool		local_only = addr_is_local_only(hba, &r->addr);
	int			line = r->rule->line;

	if (hba->auth_method == uaTrust && hba->clientcert == clientCertOff)
	{
		if (hba->conntype == ctLocal)
			rule_finding(r, PGTLS_SEV_MEDIUM, "hba.trust_local",
						 psprintf("line %d lets any operating-system user on this machine log in as any role it names, without a password", line),
						 psprintf("Change the method on line %d to peer (local connections) or scram-sha-256.", line));
		else
			rule_finding(r, local_only ? PGTLS_SEV_HIGH : PGTLS_SEV_CRITICAL, "hba.trust_remote",
						 psprintf("line %d lets %s connections in as the role they name without any authentication",
								  line, local_only ? "local TCP" : "network"),
						 psprintf("Change the method on line %d to cert (hostssl) or scram-sha-256.", line));
	}
	if (hba->auth_method == uaPassword)
		rule_finding(r, (hba->conntype == ctHostSSL || hba->conntype == ctLocal) ? PGTLS_SEV_MEDIUM : PGTLS_SEV_HIGH,
					 "hba.password_cleartext",
					 psprintf("line %d uses method password: the password is sent to the server in clear text", line),
					 psprintf("Change the method on line %d to scram-sha-256 (with password_encryption = scram-sha-256), or to cert on a hostssl line.", line));
	if (hba->auth_method == uaMD5)
		rule_finding(r, PGTLS_SEV_MEDIUM, "hba.md5",
					 psprintf("line %d uses md5, a weak, deprecated password hash open to replay of stolen hashes", line),
					 psprintf("Set password_encryption = scram-sha-256, have each role set its password again, then change md5 to scram-sha-256 on line %d.", line));
	if (hba->auth_method == uaIdent && hba->conntype != ctLocal)
		rule_finding(r, PGTLS_SEV_MEDIUM, "hba.ident_remote",
					 psprintf("line %d trusts the ident server of the connecting machine, which that machine's owner controls", line),
					 psprintf("Use cert or scram-sha-256 on line %d.", line));
	if (hba->conntype == ctHostNoSSL && is_password_method(hba->auth_method))
		rule_finding(r, (hba->auth_method == uaMD5 || hba->auth_method == uaSCRAM) ? PGTLS_SEV_MEDIUM : PGTLS_SEV_HIGH,
					 "hba.hostnossl_password",
					 psprintf("line %d accepts %s logins only on connections without TLS, where the exchange can be read or tampered with",
							  line, r->method),
					 psprintf("Change line %d to hostssl, or to reject.", line));
	if ((hba->auth_method == uaCert || hba->clientcert != clientCertOff) &&
		(ssl_ca_file == NULL || ssl_ca_file[0] == '\0'))
		rule_finding(r, PGTLS_SEV_HIGH, "hba.cert_without_ssl_ca",
					 psprintf("line %d needs a client certificate but ssl_ca_file is not set, so every such login fails", line),
					 pstrdup("Set ssl_ca_file to the CA that signs client certificates (SELECT pgtls_enable_ssl() does), then reload."));
}

static void
check_scope(RuleCtx *r)
{
	HbaLine    *hba = r->hba;
	int			line = r->rule->line;
	ListCell   *lc;
	bool		replication = false;
	bool		all_roles = false;

	if (hba->conntype != ctLocal && addr_is_world(&r->addr))
		rule_finding(r, hba->auth_method == uaCert ? PGTLS_SEV_LOW : PGTLS_SEV_MEDIUM,
					 "hba.open_to_world",
					 psprintf("line %d accepts %s logins from any address", line, r->method),
					 psprintf("Replace the address on line %d with the networks clients really use (for example 10.0.0.0/8).", line));

	foreach(lc, hba->databases)
		replication |= token_is_keyword(lfirst(lc), "replication");
	foreach(lc, hba->roles)
		all_roles |= token_is_keyword(lfirst(lc), "all");
	if (replication)
	{
		bool		wide = hba->conntype != ctLocal &&
			(r->addr.kind == ADDR_ALL || r->addr.kind == ADDR_SAMENET ||
			 (r->addr.kind == ADDR_PREFIX && r->addr.plen < (r->addr.family ? 64 : 24)));

		if (all_roles || wide)
			rule_finding(r, PGTLS_SEV_MEDIUM, "hba.replication_broad",
						 psprintf("line %d allows physical replication connections%s%s%s", line,
								  all_roles ? " for every role" : "",
								  all_roles && wide ? " and" : "",
								  wide ? " from a wide address range" : ""),
						 psprintf("On line %d name only the replication role%s.", line,
								  hba->conntype == ctLocal ? "" : " and the standbys' addresses (/32 or /128)"));
	}
}

static char *
line_list(const int *lines, int n)
{
	StringInfoData buf;
	int			i;
	int			j;

	initStringInfo(&buf);
	for (i = 0; i < n; i++)
	{
		for (j = 0; j < i; j++)
			if (lines[j] == lines[i])
				break;
		if (j < i)
			continue;
		appendStringInfo(&buf, "%s%d", buf.len ? " and " : "", lines[i]);
	}
	return buf.data;
}

static void
check_reach(RuleCtx *r, Shadow *s, TokenSet *db, TokenSet *role)
{
	HbaLine    *hba = r->hba;
	int			line = r->rule->line;
	int			kinds = kinds_of(hba->conntype);
	int			by[NKINDS];
	int			nby = 0;
	bool		all_covered = true;
	int			plain_line = INT_MAX;
	int			k;

	if (kinds == 0)
		return;
	for (k = 0; k < NKINDS; k++)
	{
		int			l;

		if (!(kinds & (1 << k)))
			continue;
		l = shadow_line(s, k, db, role, &r->addr);
		if (k == KIND_PLAIN)
			plain_line = l;
		if (l == INT_MAX)
			all_covered = false;
		else
			by[nby++] = l;
	}
	if (all_covered)
	{
		char	   *lines = line_list(by, nby);

		rule_finding(r, PGTLS_SEV_MEDIUM, "hba.shadowed",
					 psprintf("line %d can never match: line%s %s %s every connection it would", line,
							  strchr(lines, ' ') ? "s" : "", lines, strchr(lines, ' ') ? "take" : "takes"),
					 psprintf("Move line %d above line %s, or delete it.", line, lines));
	}
	else if (hba->conntype == ctHost && plain_line == INT_MAX && hba->auth_method != uaReject)
	{
		bool		local_only = addr_is_local_only(hba, &r->addr);

		rule_finding(r, local_only ? PGTLS_SEV_LOW : PGTLS_SEV_HIGH, "hba.host_allows_non_ssl",
					 psprintf("line %d (host) lets connections without TLS log in with %s%s",
							  line, r->method, local_only ? " over loopback" : ""),
					 psprintf("Change host to hostssl on line %d, and end the file with \"host all all 0.0.0.0/0 reject\" and \"host all all ::/0 reject\".", line));
	}
	for (k = 0; k < NKINDS; k++)
		if (kinds & (1 << k))
			shadow_add(s, k, db, role, &r->addr, line);
}

void
pgtls_hba_audit(PgtlsHbaFile *file, PgtlsAudit *audit)
{
	Shadow		s;
	int			i;

	shadow_init(&s);
	for (i = 0; i < file->nrules; i++)
	{
		PgtlsHbaRule *rule = &file->rules[i];
		RuleCtx		r;
		TokenSet	db;
		TokenSet	role;

		memset(&r, 0, sizeof(r));
		r.audit = audit;
		r.file = file->path;
		r.rule = rule;
		r.hba = rule->hba;
		audit->rules_checked++;
		if (rule->error != NULL)
		{
			pgtls_finding(audit, rule->hba ? PGTLS_SEV_MEDIUM : PGTLS_SEV_CRITICAL,
						  rule->hba ? "hba.rule_warning" : "hba.parse_error",
						  file->path, rule->line, rule->raw,
						  psprintf("line %d: %s", rule->line, rule->error),
						  rule->hba ? pstrdup("Fix or delete the line.") :
						  psprintf("Fix or delete line %d: while any line is invalid the server ignores reloads of pg_hba.conf and will not start.",
								   rule->line));
			if (rule->hba == NULL)
				continue;
		}
		r.type = pgtls_hba_type_name(rule->hba->conntype);
		r.method = hba_authname(rule->hba->auth_method);
		rule_addr(rule->hba, &r.addr);
		if (rule->hba->auth_method != uaReject)
		{
			check_methods(&r);
			check_scope(&r);
		}
		token_set(&s, rule->hba->databases, true, &db);
		token_set(&s, rule->hba->roles, false, &role);
		check_reach(&r, &s, &db, &role);
	}
}
