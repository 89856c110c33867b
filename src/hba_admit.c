/*
 * hba_admit.c
 *		Which lines let a certificate in as a role, following line order,
 *		clientname= and map=: the issuance NOTICE, the check behind
 *		pgtls_issue_client(subject => ...), and the audit of live
 *		certificates.
 */
#include "pgtls_audit.h"

#include "access/xact.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/memutils.h"

static AuthToken all_roles = {"all", false};

static bool
replication_only(HbaLine *hba)
{
	ListCell   *lc;

	foreach(lc, hba->databases)
		if (!pgtls_token_is_keyword(lfirst(lc), "replication"))
			return false;
	return true;
}

static char *cert_problem(Oid roleid, const char *role, const char *cn, const char *dn,
						  PgtlsHbaFile *file);

/*
 * The last answer, kept while the transaction, its command and the files
 * stay the same: a statement that issues many certificates for one role
 * asks once (role attributes and memberships may change with any command,
 * so no longer).
 */
static struct
{
	LocalTransactionId lxid;
	CommandId	command;
	TimestampTz reload;
	PgtlsHbaFile *file;
	PgtlsIdentFile *ident;
	Oid			roleid;
	char	   *cn;				/* TopMemoryContext */
	char	   *dn;
	char	   *answer;
}			last;

static bool
same_text(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static char *
keep(const char *s)
{
	return s ? MemoryContextStrdup(TopMemoryContext, s) : NULL;
}

/* cert_problem(), asked once per statement for the same question */
char *
pgtls_hba_cert_problem(Oid roleid, const char *role, const char *cn, const char *dn)
{
	PgtlsHbaFile *file = pgtls_hba_read_cached();
	PgtlsIdentFile *ident = file ? pgtls_ident_read_cached() : NULL;
	char	   *answer;

	if (last.lxid == MyProc->lxid && last.command == GetCurrentCommandId(false) &&
		last.reload == PgReloadTime && last.file == file && last.ident == ident &&
		last.roleid == roleid && same_text(last.cn, cn) && same_text(last.dn, dn))
		return last.answer ? pstrdup(last.answer) : NULL;
	answer = cert_problem(roleid, role, cn, dn, file);
	if (last.cn)
		pfree(last.cn);
	if (last.dn)
		pfree(last.dn);
	if (last.answer)
		pfree(last.answer);
	last.lxid = MyProc->lxid;
	last.command = GetCurrentCommandId(false);
	last.reload = PgReloadTime;
	last.file = file;
	last.ident = ident;
	last.roleid = roleid;
	last.cn = keep(cn);
	last.dn = keep(dn);
	last.answer = keep(answer);
	return answer;
}

/*
 * NULL when some pg_hba.conf line lets role in over TLS with a certificate
 * whose first CN is cn and whose subject DN is dn; otherwise why not.
 * Lines are taken in order: a line every connection of this role reaches
 * an earlier line for (over TLS, for any database and address it takes)
 * never counts, and a line that checks names must admit this CN or DN,
 * through its map when it has one.  NULL too when pg_hba.conf cannot be
 * read.
 */
static char *
cert_problem(Oid roleid, const char *role, const char *cn, const char *dn, PgtlsHbaFile *file)
{
	PgtlsIdentFile *ident;
	PgtlsShadow *shadow;
	PgtlsConnection conn = {0};
	char	   *first_reason = NULL;
	int			i;

	if (file == NULL)
		return NULL;			/* nothing to say if we cannot read it */
	ident = pgtls_ident_read_cached();
	shadow = pgtls_shadow_create(true);
	conn.role = role;
	conn.roleid = roleid;
	for (i = 0; i < file->nrules; i++)
	{
		HbaLine    *hba = file->rules[i].hba;
		HbaLine		copy;
		PgtlsRuleAddr addr;
		PgtlsReach	reach;
		int			ident_line;
		char	   *why;

		if (hba == NULL || hba->conntype == ctLocal || hba->conntype == ctHostNoSSL ||
			hba->conntype == ctHostGSS || !pgtls_hba_match_role(&conn, hba->roles))
			continue;
		/* this role's TLS connections only */
		copy = *hba;
		copy.conntype = ctHostSSL;
		copy.roles = list_make1(&all_roles);
		pgtls_rule_addr(hba, &addr);
		pgtls_shadow_reach(shadow, &copy, &addr, file->rules[i].line, &reach);
		if (reach.all_covered || hba->auth_method == uaReject ||
			(hba->auth_method != uaCert && hba->clientcert == clientCertOff))
			continue;
		/* a line only for physical replication lets in only roles that may replicate */
		if (replication_only(hba) && pgtls_refusal_after_auth(role, "", true) != NULL)
			continue;
		if (pgtls_hba_admits_identity(hba, ident, role, cn, dn, &ident_line, &why))
			return NULL;
		if (first_reason == NULL)
			first_reason = pgtls_hba_mask(&file->rules[i],
										  psprintf("Line %d checks the certificate's %s%s: %s.", file->rules[i].line,
												   hba->clientcertname == clientCertDN ? "subject DN" : "CN",
												   hba->usermap ? psprintf(" through map \"%s\"", hba->usermap) : "", why));
	}
	return first_reason ? first_reason :
		pstrdup("No hostssl or host line with method cert (or a clientcert option) that this role reaches.");
}

/*
 * Other existing roles a certificate with this CN and subject DN could log
 * in as: names it carries itself (lines without a map) and names any map
 * makes of them, each checked like the issuance NOTICE does.
 */
List *
pgtls_cert_other_roles(const char *role, const char *cn, const char *dn)
{
	PgtlsIdentFile *ident = pgtls_ident_read_cached();
	List	   *candidates = NIL;
	List	   *others = NIL;
	ListCell   *lc;

	if (cn != NULL)
		candidates = lappend(list_concat(candidates, pgtls_usermap_roles(ident, cn)), (char *) cn);
	candidates = lappend(list_concat(candidates, pgtls_usermap_roles(ident, dn)), (char *) dn);
	foreach(lc, candidates)
	{
		const char *name = lfirst(lc);
		Oid			oid;
		ListCell   *seen;
		bool		dup = false;

		if (strcmp(name, role) == 0 || strlen(name) >= NAMEDATALEN)
			continue;
		foreach(seen, others)
			dup |= strcmp(lfirst(seen), name) == 0;
		oid = dup ? InvalidOid : get_role_oid(name, true);
		if (OidIsValid(oid) && pgtls_hba_cert_problem(oid, name, cn, dn) == NULL)
			others = lappend(others, (char *) name);
	}
	return others;
}
