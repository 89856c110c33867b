/*
 * hba_ident_audit.c
 *		Findings about pg_ident.conf and the pg_hba.conf lines that use it:
 *		invalid lines, undefined maps, unanchored regular expressions,
 *		clientname=DN lines the default subjects cannot match, and live
 *		certificates that no line admits any more.
 */
#include "pgtls_audit.h"

#include "utils/acl.h"
#include "utils/hsearch.h"

/* Is the map used by a line that checks certificate names? */
static bool
map_used_by_cert_line(PgtlsHbaFile *hba, const char *usermap)
{
	int			i;

	for (i = 0; i < hba->nrules; i++)
	{
		HbaLine    *h = hba->rules[i].hba;

		if (h != NULL && h->usermap != NULL && strcmp(h->usermap, usermap) == 0 &&
			pgtls_hba_checks_cert_name(h))
			return true;
	}
	return false;
}

static void
check_regexes(PgtlsAudit *audit, PgtlsIdentFile *ident, PgtlsHbaFile *hba)
{
	ListCell   *lc;

	foreach(lc, ident->lines)
	{
		IdentLine  *il = lfirst(lc);
		const char *re = il->ident_user + 1;
		size_t		len = strlen(re);
		bool		cert;

		if (il->ident_user[0] != '/' || (len > 0 && re[0] == '^' && re[len - 1] == '$'))
			continue;
		cert = map_used_by_cert_line(hba, il->usermap);
		pgtls_finding(audit, cert ? PGTLS_SEV_MEDIUM : PGTLS_SEV_LOW, "ident.regex_unanchored",
					  ident->path, il->linenumber, NULL,
					  psprintf("pg_ident.conf line %d: the regular expression \"%s\" of map \"%s\" is not anchored with ^...$, so it also matches any %s that merely contains such a name%s",
							   il->linenumber, re, il->usermap, cert ? "certificate name" : "system user name",
							   cert ? " (a certificate for \"x-admin-x\" matches /admin)" : ""),
					  psprintf("Anchor it: \"/^%s%s\"", re[0] == '^' ? re + 1 : re,
							   len > 0 && re[len - 1] == '$' ? "" : "$"));
	}
}

/* a finding on a pg_hba.conf line, with what may be pieces of its secrets masked */
static void
map_finding(PgtlsAudit *audit, const char *file, PgtlsHbaRule *rule, PgtlsSeverity sev,
			const char *id, char *message, char *hint)
{
	pgtls_finding(audit, sev, id, file, rule->line, rule->raw,
				  pgtls_hba_mask(rule, message), pgtls_hba_mask(rule, hint));
}

static void
check_hba_maps(PgtlsAudit *audit, PgtlsIdentFile *ident, PgtlsHbaFile *hba)
{
	int			i;

	for (i = 0; i < hba->nrules; i++)
	{
		PgtlsHbaRule *r = &hba->rules[i];
		HbaLine    *h = r->hba;

		if (h == NULL || h->auth_method == uaReject)
			continue;
		if (h->usermap != NULL && h->usermap[0] != '\0' && !pgtls_usermap_exists(ident, h->usermap))
			map_finding(audit, hba->path, r, PGTLS_SEV_HIGH, "ident.map_missing",
						  psprintf("line %d uses map \"%s\", which pg_ident.conf does not define: every login through this line fails (\"no match in usermap\")",
								   r->line, h->usermap),
						  psprintf("Add the map \"%s\" to pg_ident.conf (%s) and reload, or remove map= from line %d.",
								   h->usermap, ident->path, r->line));
		if (!pgtls_hba_checks_cert_name(h) || h->clientcertname != clientCertDN)
			continue;
		if (h->usermap == NULL || h->usermap[0] == '\0')
			map_finding(audit, hba->path, r, PGTLS_SEV_MEDIUM, "hba.clientname_dn",
						  psprintf("line %d has clientname=DN without map=: the certificate's whole subject DN (such as \"CN=alice\") must equal the role name, so certificates from pgtls_issue_client() never log in here",
								   r->line),
						  psprintf("Add map=<name> to line %d with a pg_ident.conf map from DNs to roles (for example \"dnmap \\\"/^CN=([^,]+)$\\\" \\\\1\"), or use clientname=CN.", r->line));
		else if (pgtls_usermap_exists(ident, h->usermap))
		{
			int			line;
			char	   *why;

			if (!pgtls_usermap_check(ident, h->usermap, "pgtls_probe", "CN=pgtls_probe", &line, &why))
				map_finding(audit, hba->path, r, PGTLS_SEV_LOW, "hba.clientname_dn",
							  psprintf("line %d matches the certificate's whole subject DN through map \"%s\", which maps no \"CN=<role>\" subject to its role: certificates from pgtls_issue_client() with the default subject cannot log in here",
									   r->line, h->usermap),
							  pstrdup("Issue them with pgtls_issue_client(role, subject => '...') using a subject the map admits."));
		}
	}
}

typedef struct Verdict
{
	char		key[NAMEDATALEN * 3];
	char	   *problem;
} Verdict;

/* Live certificates of the registry that no line admits any more, when maps or DNs are in play. */
static void
check_live_certs(PgtlsAudit *audit, PgtlsHbaFile *hba)
{
	HASHCTL		ctl;
	HTAB	   *seen;
	ListCell   *lc;
	bool		maps = false;
	int			i;

	for (i = 0; i < hba->nrules && !maps; i++)
	{
		HbaLine    *h = hba->rules[i].hba;

		maps = h != NULL && pgtls_hba_checks_cert_name(h) &&
			((h->usermap != NULL && h->usermap[0] != '\0') || h->clientcertname == clientCertDN);
	}
	if (!maps)
		return;
	ctl.keysize = NAMEDATALEN * 3;
	ctl.entrysize = sizeof(Verdict);
	ctl.hcxt = CurrentMemoryContext;
	seen = hash_create("pgtls_admin certificate identities", 64, &ctl, HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	foreach(lc, pgtls_registry_live_clients())
	{
		PgtlsLiveCert *c = lfirst(lc);
		X509	   *cert;
		X509_NAME  *subject;
		Oid			roleid;
		char	   *problem;
		char	   *cn;
		char	   *dn;
		char	   *key;
		Verdict    *v;
		bool		found;

		if (c->role == NULL || !OidIsValid(roleid = get_role_oid(c->role, true)))
			continue;
		cert = pgtls_parse_cert(c->pem, strlen(c->pem), "registry certificate", NULL);
		subject = X509_get_subject_name(cert);
		cn = pgtls_name_cn(subject, NULL);
		dn = pgtls_name_dn(subject, NULL);
		/* many certificates share a role and subject: judge each identity once */
		key = psprintf("%s\x01%s\x01%s", c->role, cn ? cn : "", dn);
		if (strlen(key) >= NAMEDATALEN * 3)
			problem = pgtls_hba_cert_problem(roleid, c->role, cn, dn);
		else
		{
			v = hash_search(seen, key, HASH_ENTER, &found);
			if (!found)
				v->problem = pgtls_hba_cert_problem(roleid, c->role, cn, dn);
			problem = v->problem;
		}
		if (problem != NULL)
			pgtls_finding(audit, PGTLS_SEV_MEDIUM, "ident.cert_not_admitted", NULL, 0, NULL,
						  psprintf("certificate %s of role \"%s\" (subject \"%s\") cannot log in: %s",
								   c->serial, c->role, pgtls_name_dn(subject, NULL), problem),
						  pstrdup("Map its name to the role in pg_ident.conf and reload, or revoke it and issue one the maps admit (pgtls_issue_client with subject =>)."));
	}
}

/* Findings about pg_ident.conf and the lines of pg_hba.conf that use it. */
void
pgtls_audit_ident(PgtlsAudit *audit, PgtlsHbaFile *hba)
{
	PgtlsIdentFile *ident = pgtls_ident_read_cached();

	audit->files_checked++;
	if (ident->error != NULL)
		pgtls_finding(audit, PGTLS_SEV_HIGH, "ident.parse_error", ident->path, ident->error_line, NULL,
					  psprintf("pg_ident.conf %s: the server rejects the whole file at a reload (keeping the maps it had) and has no maps after a restart",
							   ident->error),
					  pstrdup("Fix or delete the line, then reload."));
	check_regexes(audit, ident, hba);
	check_hba_maps(audit, ident, hba);
	check_live_certs(audit, hba);
}
