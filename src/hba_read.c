/*
 * hba_read.c
 *		pg_hba.conf as the server reads it.
 *
 * Lines are tokenized and parsed by the server's own code (the same calls
 * behind pg_hba_file_rules), so a line we accept is a line the server
 * accepts.  pg_hba.conf may hold LDAP bind passwords and RADIUS secrets, and
 * the audit is open to pg_monitor: those values are masked in every line and
 * message we return.
 */
#include "pgtls_audit.h"
#include "pgtls_compat.h"

#include "lib/stringinfo.h"
#include "libpq/libpq.h"
#include "postmaster/postmaster.h"
#include "storage/fd.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

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

				/* the server matches option names exactly, but the value is real either way */
				if (pg_strncasecmp(token->string, secret_options[i], n) == 0 && token->string[n] != '\0')
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
				appendStringInfoString(&buf, PGTLS_MASK);
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

			if ((p != raw && !pg_isblank(p[-1])) || pg_strncasecmp(q, secret_options[i], n) != 0)
				continue;
			appendBinaryStringInfo(&buf, p, (q - p) + n);
			p = q + n;
			while (*p && (in_quote || !pg_isblank(*p)))
			{
				if (*p == '"')
					in_quote = !in_quote;
				p++;
			}
			appendStringInfoString(&buf, PGTLS_MASK);
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
		rule->raw = secrets == NIL ? pstrdup(tok->raw_line) : mask_line(tok->raw_line, secrets);
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

bool
pgtls_token_is_keyword(AuthToken *t, const char *keyword)
{
	return !t->quoted && strcmp(t->string, keyword) == 0;
}

static MemoryContext hba_cache_cxt = NULL;
static PgtlsHbaFile *hba_cache = NULL;
static PgtlsFileIdentity hba_cache_id;
static TimestampTz hba_cache_reload;

/*
 * pg_hba.conf as pgtls_hba_read() gives it, kept per backend while the file
 * and the last reload stay the same, so issuing does not re-read the file
 * each time.  NULL when the file cannot be stat()ed.
 */
PgtlsHbaFile *
pgtls_hba_read_cached(void)
{
	struct stat st;
	MemoryContext cxt;
	MemoryContext old;

	if (stat(HbaFileName, &st) < 0)
		return NULL;
	if (hba_cache != NULL && pgtls_file_identity_same(&hba_cache_id, &st) &&
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
	pgtls_file_identity_set(&hba_cache_id, &st);
	hba_cache_reload = PgReloadTime;
	return hba_cache;
}
