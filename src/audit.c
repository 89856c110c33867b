/*
 * audit.c
 *		The driver of pgtls_hba_check(): the pg_hba.conf audit, the ssl
 *		settings, the files they name, the extension's CAs and the CAs of
 *		others it trusts.
 */
#include "pgtls_audit.h"

/* Run every check; the findings come back worst first, or one summary row. */
List *
pgtls_audit_run(void)
{
	PgtlsAudit	audit = {0};
	PgtlsHbaFile *hba = pgtls_hba_read();

	pgtls_hba_audit(hba, &audit);
	pgtls_audit_ident(&audit, hba);
	pgtls_audit_settings(&audit);
	pgtls_audit_server_files(&audit, pgtls_audit_extension_ca(&audit));
	pgtls_audit_cas(&audit);
	if (audit.findings == NIL)
		pgtls_finding(&audit, PGTLS_SEV_INFO, "summary", NULL, 0, NULL,
					  psprintf("no problems found in %d pg_hba.conf line%s, the ssl settings and %d file%s",
							   audit.rules_checked, audit.rules_checked == 1 ? "" : "s",
							   audit.files_checked, audit.files_checked == 1 ? "" : "s"),
					  NULL);
	pgtls_findings_sort(&audit);
	return audit.findings;
}
