/*
 * hba_audit.c
 *		Findings about pg_hba.conf rules: methods, scope, and rules that can
 *		never match or let connections in without TLS.
 */
#include "pgtls_audit.h"

#include "libpq/libpq.h"

typedef struct RuleCtx
{
	PgtlsAudit *audit;
	const char *file;
	PgtlsHbaRule *rule;
	HbaLine    *hba;
	PgtlsRuleAddr	addr;
	const char *type;
	const char *method;
} RuleCtx;

static void
rule_finding(RuleCtx *r, PgtlsSeverity sev, const char *id, char *message, char *hint)
{
	pgtls_finding(r->audit, sev, id, r->file, r->rule->line, r->rule->raw,
				  pgtls_hba_mask(r->rule, message), pgtls_hba_mask(r->rule, hint));
}

static void
check_methods(RuleCtx *r)
{
	HbaLine    *hba = r->hba;
	bool		local_only = pgtls_addr_is_local_only(hba, &r->addr);
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
	if (hba->conntype == ctHostNoSSL && pgtls_hba_is_password_method(hba->auth_method))
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

	if (hba->conntype != ctLocal && pgtls_addr_is_world(&r->addr))
		rule_finding(r, hba->auth_method == uaCert ? PGTLS_SEV_LOW : PGTLS_SEV_MEDIUM,
					 "hba.open_to_world",
					 psprintf("line %d accepts %s logins from any address", line, r->method),
					 psprintf("Replace the address on line %d with the networks clients really use (for example 10.0.0.0/8).", line));

	foreach(lc, hba->databases)
		replication |= pgtls_token_is_keyword(lfirst(lc), "replication");
	foreach(lc, hba->roles)
		all_roles |= pgtls_token_is_keyword(lfirst(lc), "all");
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
check_reach(RuleCtx *r, PgtlsShadow *s)
{
	HbaLine    *hba = r->hba;
	int			line = r->rule->line;
	PgtlsReach	reach;

	pgtls_shadow_reach(s, hba, &r->addr, line, &reach);
	if (!reach.any_kind)
		return;
	if (reach.all_covered)
	{
		char	   *lines = line_list(reach.by, reach.nby);

		rule_finding(r, PGTLS_SEV_MEDIUM, "hba.shadowed",
					 psprintf("line %d can never match: line%s %s %s every connection it would", line,
							  strchr(lines, ' ') ? "s" : "", lines, strchr(lines, ' ') ? "take" : "takes"),
					 psprintf("Move line %d above line %s, or delete it.", line, lines));
	}
	else if (hba->conntype == ctHost && reach.plain_uncovered && hba->auth_method != uaReject)
	{
		bool		local_only = pgtls_addr_is_local_only(hba, &r->addr);

		rule_finding(r, local_only ? PGTLS_SEV_LOW : PGTLS_SEV_HIGH, "hba.host_allows_non_ssl",
					 psprintf("line %d (host) lets connections without TLS log in with %s%s",
							  line, r->method, local_only ? " over loopback" : ""),
					 psprintf("Change host to hostssl on line %d, and end the file with \"host all all 0.0.0.0/0 reject\" and \"host all all ::/0 reject\".", line));
	}
}

void
pgtls_hba_audit(PgtlsHbaFile *file, PgtlsAudit *audit)
{
	PgtlsShadow *s = pgtls_shadow_create(false);
	int			i;

	for (i = 0; i < file->nrules; i++)
	{
		PgtlsHbaRule *rule = &file->rules[i];
		RuleCtx		r;

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
		pgtls_rule_addr(rule->hba, &r.addr);
		if (rule->hba->auth_method != uaReject)
		{
			check_methods(&r);
			check_scope(&r);
		}
		check_reach(&r, s);
	}
}
