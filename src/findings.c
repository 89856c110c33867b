/*
 * findings.c
 *		The collector of pgtls_hba_check()'s findings: each check adds its
 *		own, and they come out worst first.
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

/* Worst first; within a severity, in the order the checks ran. */
void
pgtls_findings_sort(PgtlsAudit *audit)
{
	list_sort(audit->findings, finding_cmp);
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
