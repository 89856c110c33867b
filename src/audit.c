/*
 * audit.c
 *		Findings of pgtls_hba_check(): collected from the pg_hba.conf audit,
 *		the ssl settings, the files they name and the extension's CA, then
 *		ordered worst first.
 */
#include "pgtls_audit.h"

#include "utils/builtins.h"

typedef struct PgtlsFinding
{
	PgtlsSeverity severity;
	int			seq;			/* keeps the order checks ran in within a severity */
	const char *check_id;
	const char *file_name;
	int			line_number;
	const char *rule;
	char	   *message;
	char	   *hint;
} PgtlsFinding;

static const char *const severity_names[] = {"critical", "high", "medium", "low", "info"};

void
pgtls_finding(PgtlsAudit *audit, PgtlsSeverity severity, const char *check_id,
			  const char *file_name, int line_number, const char *rule,
			  char *message, char *hint)
{
	PgtlsFinding *f = palloc(sizeof(PgtlsFinding));

	f->severity = severity;
	f->seq = list_length(audit->findings);
	f->check_id = check_id;
	f->file_name = file_name ? pstrdup(file_name) : NULL;
	f->line_number = line_number;
	f->rule = rule;
	f->message = message;
	f->hint = hint;
	audit->findings = lappend(audit->findings, f);
}

static int
finding_cmp(const ListCell *a, const ListCell *b)
{
	const PgtlsFinding *x = lfirst(a);
	const PgtlsFinding *y = lfirst(b);

	if (x->severity != y->severity)
		return x->severity < y->severity ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Run every check; the findings come back worst first, or one summary row. */
List *
pgtls_audit_run(void)
{
	PgtlsAudit	audit = {0};

	pgtls_hba_audit(pgtls_hba_read(), &audit);
	pgtls_audit_settings(&audit);
	pgtls_audit_server_files(&audit, pgtls_audit_extension_ca(&audit));
	if (audit.findings == NIL)
		pgtls_finding(&audit, PGTLS_SEV_INFO, "summary", NULL, 0, NULL,
					  psprintf("no problems found in %d pg_hba.conf line%s, the ssl settings and %d file%s",
							   audit.rules_checked, audit.rules_checked == 1 ? "" : "s",
							   audit.files_checked, audit.files_checked == 1 ? "" : "s"),
					  NULL);
	list_sort(audit.findings, finding_cmp);
	return audit.findings;
}

/* The columns of one finding for pgtls_hba_check(). */
void
pgtls_finding_values(void *finding, Datum *values, bool *nulls)
{
	PgtlsFinding *f = finding;

	values[0] = CStringGetTextDatum(severity_names[f->severity]);
	values[1] = CStringGetTextDatum(f->check_id);
	nulls[2] = f->file_name == NULL;
	values[2] = nulls[2] ? (Datum) 0 : CStringGetTextDatum(f->file_name);
	nulls[3] = f->line_number <= 0;
	values[3] = Int32GetDatum(f->line_number);
	nulls[4] = f->rule == NULL;
	values[4] = nulls[4] ? (Datum) 0 : CStringGetTextDatum(f->rule);
	values[5] = CStringGetTextDatum(f->message);
	nulls[6] = f->hint == NULL;
	values[6] = nulls[6] ? (Datum) 0 : CStringGetTextDatum(f->hint);
}
