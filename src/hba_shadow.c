/*
 * hba_shadow.c
 *		pg_hba.conf lines that can never match, and the address arithmetic
 *		behind it.
 */
#include "pgtls_audit.h"

#include <netinet/in.h>

#include "common/hashfn.h"
#include "lib/stringinfo.h"
#include "libpq/libpq.h"
#include "postmaster/postmaster.h"
#include "utils/hsearch.h"

/* Connection kinds a rule can match; a rule's type is a set of them. */
#define KIND_LOCAL	0
#define KIND_SSL	1
#define KIND_GSS	2
#define KIND_PLAIN	3

static int
kinds_of(ConnType type, bool ssl)
{
	switch (type)
	{
		case ctLocal:
			return 1 << KIND_LOCAL;
		case ctHost:
			return (1 << KIND_SSL) | (1 << KIND_GSS) | (1 << KIND_PLAIN);
		case ctHostSSL:
			return ssl ? (1 << KIND_SSL) : 0;
		case ctHostNoSSL:
			return (1 << KIND_GSS) | (1 << KIND_PLAIN);
		case ctHostGSS:
			return 1 << KIND_GSS;
		case ctHostNoGSS:
			return (1 << KIND_SSL) | (1 << KIND_PLAIN);
	}
	return 0;
}

void
pgtls_rule_addr(HbaLine *hba, PgtlsRuleAddr *a)
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
addr_bytes(const PgtlsRuleAddr *a)
{
	return a->family ? 16 : 4;
}

bool
pgtls_addr_is_world(const PgtlsRuleAddr *a)
{
	return a->kind == ADDR_ALL || (a->kind == ADDR_PREFIX && a->plen == 0);
}

/* Reachable only from this machine: loopback, samehost, "localhost". */
bool
pgtls_addr_is_local_only(HbaLine *hba, const PgtlsRuleAddr *a)
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

/* Tokens: keywords (k), +group names (g) and plain names (n), kept apart without building strings. */
typedef struct TokenKey
{
	char		type;
	const char *name;
} TokenKey;

typedef struct TokenEntry
{
	TokenKey	key;
	int			id;
} TokenEntry;

static uint32
token_hash(const void *key, Size keysize)
{
	const TokenKey *k = key;

	return hash_bytes((const unsigned char *) k->name, strlen(k->name)) ^ (uint32) k->type;
}

static int
token_match(const void *k1, const void *k2, Size keysize)
{
	const TokenKey *a = k1;
	const TokenKey *b = k2;

	return a->type != b->type || strcmp(a->name, b->name) != 0;
}

static HTAB *
token_table(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(TokenKey);
	ctl.entrysize = sizeof(TokenEntry);
	ctl.hash = token_hash;
	ctl.match = token_match;
	ctl.hcxt = CurrentMemoryContext;
	return hash_create("pgtls_admin hba tokens", 256, &ctl,
					   HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
}

static int
token_in(HTAB *tokens, int *ntokens, char type, const char *name)
{
	TokenKey	key = {type, name};
	bool		found;
	TokenEntry *e = hash_search(tokens, &key, HASH_ENTER, &found);

	if (!found)
	{
		e->key.name = pstrdup(name);
		e->id = (*ntokens)++;
	}
	return e->id;
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
	List	   *others;			/* PgtlsRuleAddr * + line, compared one by one */
} ShadowGroup;

typedef struct OtherAddr
{
	PgtlsRuleAddr	addr;
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

/* Per (kind, side): an array indexed by token id of the groups holding that token. */
typedef struct PostingArray
{
	List	  **groups;			/* int lists of group ids */
	int			cap;
} PostingArray;

struct PgtlsShadow
{
	HTAB	   *tokens;
	int			ntokens;
	int			kw_all;
	int			kw_replication;
	HTAB	   *signatures;		/* (database set, role set) -> signature id */
	int			nsignatures;
	int		   *sig_groups;		/* [signature id * PGTLS_NKINDS + kind] -> group id or -1 */
	int			sig_cap;
	int			ngroups;
	ShadowGroup	  **groups;
	int			groups_cap;
	PostingArray postings[PGTLS_NKINDS][2];	/* side 0 database, 1 role */
	HTAB	   *addrs;
	bool		ssl;			/* hostssl lines can match (ssl on, or assumed) */
};

static int
token_id(PgtlsShadow *s, char type, const char *name)
{
	return token_in(s->tokens, &s->ntokens, type, name);
}

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
token_set(PgtlsShadow *s, List *tokens, bool database, TokenSet *set)
{
	ListCell   *lc;
	int			n = 0;
	int			i;

	set->ids = palloc(sizeof(int) * Max(list_length(tokens), 1));
	set->has_all = set->has_replication = false;
	foreach(lc, tokens)
	{
		AuthToken  *t = lfirst(lc);
		int			id;

		if (pgtls_token_is_keyword(t, "all"))
			id = s->kw_all;
		else if (database && pgtls_token_is_keyword(t, "replication"))
			id = s->kw_replication;
		else if (database && pgtls_token_is_keyword(t, "sameuser"))
			id = token_id(s, 'k', "sameuser");
		else if (database && (pgtls_token_is_keyword(t, "samerole") || pgtls_token_is_keyword(t, "samegroup")))
			id = token_id(s, 'k', "samerole");
		else if (!database && !t->quoted && t->string[0] == '+')
			id = token_id(s, 'g', t->string + 1);
		else
			id = token_id(s, 'n', t->string);
		set->ids[n++] = id;
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
set_covers(PgtlsShadow *s, const TokenSet *earlier, const TokenSet *later, bool database)
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
addr_key(AddrKey *k, int group, const PgtlsRuleAddr *a, int plen)
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
addr_covers(const PgtlsRuleAddr *a, const PgtlsRuleAddr *b)
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
			return a->kind == ADDR_HOSTNAME && pgtls_hostname_matches(a->hostname, b->hostname) &&
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
group_covers(PgtlsShadow *s, int gid, const PgtlsRuleAddr *b)
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
postings(PgtlsShadow *s, int kind, int side, int token)
{
	PostingArray *p = &s->postings[kind][side];

	return token < p->cap ? p->groups[token] : NIL;
}

/*
 * The candidate groups for a set: a covering group holds each of the set's
 * tokens or "all", so the groups holding any one token, plus those holding
 * "all", include every covering group.  The token with the fewest groups
 * keeps the work per rule independent of how many earlier rules share its
 * other names (a +group named on thousands of lines, say).
 */
static void
candidates(PgtlsShadow *s, int kind, int side, const TokenSet *set, List **all, List **some)
{
	int			i;

	*all = postings(s, kind, side, s->kw_all);
	*some = NIL;
	for (i = 0; i < set->n; i++)
	{
		List	   *p = postings(s, kind, side, set->ids[i]);

		if (i == 0 || list_length(p) < list_length(*some))
			*some = p;
		if (*some == NIL)
			break;
	}
}

/* Earliest earlier line that takes every connection of this kind rule j takes. */
static int
shadow_line(PgtlsShadow *s, int kind, const TokenSet *db, const TokenSet *role, const PgtlsRuleAddr *addr)
{
	List	   *cand[2][2];
	int			side;
	int			best = INT_MAX;
	int			i;

	candidates(s, kind, 0, db, &cand[0][0], &cand[0][1]);
	candidates(s, kind, 1, role, &cand[1][0], &cand[1][1]);
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

/* The (database set, role set) of a rule as a string, the same for every kind. */
static char *
signature(const TokenSet *db, const TokenSet *role)
{
	StringInfoData buf;
	int			i;

	initStringInfo(&buf);
	for (i = 0; i < db->n; i++)
		appendStringInfo(&buf, "%d,", db->ids[i]);
	appendStringInfoChar(&buf, '|');
	for (i = 0; i < role->n; i++)
		appendStringInfo(&buf, "%d,", role->ids[i]);
	return buf.data;
}

static void
add_posting(PgtlsShadow *s, int kind, int side, int token, int gid)
{
	PostingArray *p = &s->postings[kind][side];

	if (token >= p->cap)
	{
		int			cap = Max(256, Max(token + 1, p->cap * 2));

		p->groups = p->groups ? repalloc(p->groups, sizeof(List *) * cap) : palloc(sizeof(List *) * cap);
		memset(p->groups + p->cap, 0, sizeof(List *) * (cap - p->cap));
		p->cap = cap;
	}
	p->groups[token] = lappend_int(p->groups[token], gid);
}

/* The group of this signature and kind, created on first use. */
static int
group_of(PgtlsShadow *s, int kind, int sig, const TokenSet *db, const TokenSet *role)
{
	int			gid;
	ShadowGroup *g;
	int			i;

	if (sig >= s->sig_cap)
	{
		int			cap = Max(256, Max(sig + 1, s->sig_cap * 2));

		s->sig_groups = s->sig_groups ? repalloc(s->sig_groups, sizeof(int) * cap * PGTLS_NKINDS)
			: palloc(sizeof(int) * cap * PGTLS_NKINDS);
		for (i = s->sig_cap * PGTLS_NKINDS; i < cap * PGTLS_NKINDS; i++)
			s->sig_groups[i] = -1;
		s->sig_cap = cap;
	}
	gid = s->sig_groups[sig * PGTLS_NKINDS + kind];
	if (gid >= 0)
		return gid;
	gid = s->ngroups++;
	s->sig_groups[sig * PGTLS_NKINDS + kind] = gid;
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
	return gid;
}

static void
shadow_add(PgtlsShadow *s, int kind, int sig, const TokenSet *db, const TokenSet *role,
		   const PgtlsRuleAddr *addr, int line)
{
	int			gid = group_of(s, kind, sig, db, role);
	ShadowGroup	   *g = s->groups[gid];

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

PgtlsShadow *
pgtls_shadow_create(bool assume_ssl)
{
	PgtlsShadow *s = palloc0(sizeof(PgtlsShadow));

	s->ssl = assume_ssl || EnableSSL;

	s->tokens = token_table();
	s->signatures = string_table("pgtls_admin hba groups");
	s->addrs = blob_table("pgtls_admin hba addresses", sizeof(AddrKey), sizeof(AddrEntry));
	s->kw_all = token_id(s, 'k', "all");
	s->kw_replication = token_id(s, 'k', "replication");
	return s;
}

/*
 * How far earlier rules cover this one, kind by kind; then add it to the
 * index for the rules after it.
 */
void
pgtls_shadow_reach(PgtlsShadow *s, HbaLine *hba, const PgtlsRuleAddr *addr, int line,
				   PgtlsReach *reach)
{
	TokenSet	db;
	TokenSet	role;
	int			kinds = kinds_of(hba->conntype, s->ssl);
	int			k;
	int			sig;

	memset(reach, 0, sizeof(*reach));
	if (kinds == 0)
		return;
	token_set(s, hba->databases, true, &db);
	token_set(s, hba->roles, false, &role);
	reach->any_kind = true;
	reach->all_covered = true;
	for (k = 0; k < PGTLS_NKINDS; k++)
	{
		int			l;

		if (!(kinds & (1 << k)))
			continue;
		l = shadow_line(s, k, &db, &role, addr);
		if (k == KIND_PLAIN && l == INT_MAX)
			reach->plain_uncovered = true;
		if (l == INT_MAX)
			reach->all_covered = false;
		else
			reach->by[reach->nby++] = l;
	}
	sig = intern(s->signatures, signature(&db, &role), &s->nsignatures, NULL);
	for (k = 0; k < PGTLS_NKINDS; k++)
		if (kinds & (1 << k))
			shadow_add(s, k, sig, &db, &role, addr, line);
}
