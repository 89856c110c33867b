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

/*
 * The options of PostgreSQL 15's pg_hba.conf that carry a secret.  The server
 * matches option names exactly, but a misspelled or mistyped secret is still
 * the administrator's secret, so names match in any case and as a prefix of
 * whatever follows them (longer names first).
 */
static const char *const secret_names[] = {"ldapbindpasswd", "radiussecrets", "radiussecret"};

/*
 * In s, the text after the first secret option name that starts a word (at
 * the start, or after a blank, a comma or a double quote), with one '='
 * after the name skipped; NULL when s names no secret option.
 */
static const char *
after_secret_name(const char *s)
{
	const char *p;

	for (p = s; *p; p++)
	{
		int			i;

		if (p != s && !pg_isblank(p[-1]) && p[-1] != ',' && p[-1] != '"')
			continue;
		for (i = 0; i < (int) lengthof(secret_names); i++)
		{
			size_t		n = strlen(secret_names[i]);

			if (pg_strncasecmp(p, secret_names[i], n) != 0)
				continue;
			p += n;
			return *p == '=' ? p + 1 : p;
		}
	}
	return NULL;
}

static void
add_secret(PgtlsHbaRule *rule, const char *s)
{
	if (s[0] != '\0')
		rule->secrets = lappend(rule->secrets, pstrdup(s));
}

/* longest first, so that a secret inside a longer one cannot leave the rest shown */
static int
longer_first(const ListCell *a, const ListCell *b)
{
	size_t		la = strlen(lfirst(a));
	size_t		lb = strlen(lfirst(b));

	return la > lb ? -1 : la < lb ? 1 : 0;
}

/*
 * From the first token that names a secret option on, every token of the
 * line is (or may be) part of a secret: the parser splits an unquoted value
 * at commas and blanks and names the piece it rejects in its message.
 * Collect the value after the name, each later token and the value part of
 * each later name=value token, and the option names those later tokens set.
 */
static void
line_secrets(TokenizedAuthLine *tok, PgtlsHbaRule *rule)
{
	bool		found = false;
	ListCell   *f;
	ListCell   *t;

	foreach(f, tok->fields)
	{
		foreach(t, (List *) lfirst(f))
		{
			AuthToken  *token = lfirst(t);
			const char *eq;

			if (!found)
			{
				const char *value = after_secret_name(token->string);

				if (value == NULL)
					continue;
				found = true;
				add_secret(rule, value);
				continue;
			}
			add_secret(rule, token->string);
			eq = strchr(token->string, '=');
			if (eq == NULL)
				continue;
			add_secret(rule, eq + 1);
			rule->masked_options = lappend(rule->masked_options,
										   pnstrdup(token->string, eq - token->string));
		}
	}
	list_sort(rule->secrets, longer_first);
}

/* text with every occurrence of every secret of the rule replaced by MASK */
char *
pgtls_hba_mask(const PgtlsHbaRule *rule, const char *text)
{
	StringInfoData buf;
	const char *p = text;
	ListCell   *lc;

	if (text == NULL)
		return NULL;
	if (rule->secrets == NIL)
		return pstrdup(text);
	initStringInfo(&buf);
	while (*p)
	{
		bool		hit = false;

		foreach(lc, rule->secrets)
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
 * The raw line up to the first secret option name (and its '='), then one
 * MASK for all the rest, whatever quoting, commas or blanks it holds.
 */
static char *
mask_line(const char *raw, const PgtlsHbaRule *rule)
{
	const char *rest = after_secret_name(raw);
	char	   *head;

	if (rest == NULL)
		return pgtls_hba_mask(rule, raw);
	head = pgtls_hba_mask(rule, pnstrdup(raw, rest - raw));
	return *rest == '\0' ? head : psprintf("%s%s", head, PGTLS_MASK);
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
	int			nest;

	result->path = pstrdup(HbaFileName);
	/*
	 * The server's tokenizer and parser report a rejected line at DEBUG3,
	 * quoting its tokens (a piece of an ldapbindpasswd included): a caller
	 * with client_min_messages = debug3 must not receive them.  The server
	 * log is the administrator's, as for pg_hba_file_rules.
	 */
	nest = NewGUCNestLevel();
	(void) set_config_option("client_min_messages", "error", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
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

		rule->line = tok->line_num;
		line_secrets(tok, rule);
		rule->raw = mask_line(tok->raw_line, rule);
		if (tok->err_msg == NULL)
			rule->hba = parse_hba_line(tok, DEBUG3);
		if (tok->err_msg != NULL)
			rule->error = pgtls_hba_mask(rule, tok->err_msg);
		else if (rule->hba == NULL)
			rule->error = pstrdup("the server rejects this line (its reason is logged at the next reload)");
		rule->warning = (rule->hba != NULL && rule->error != NULL);
		if (rule->hba == NULL)
			result->nerrors++;
	}
	AtEOXact_GUC(true, nest);
	result->nrules = i;
	return result;
}

bool
pgtls_token_is_keyword(AuthToken *t, const char *keyword)
{
	return !t->quoted && strcmp(t->string, keyword) == 0;
}

/*
 * build() with cxt current, for a cache kept in cxt: on an error cxt is
 * deleted and the error goes on.  (The caller makes cxt: contexts take a
 * literal name.)
 */
void *
pgtls_build_in(MemoryContext cxt, void *(*build) (void))
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	void	   *volatile result = NULL;

	PG_TRY();
	{
		result = build();
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(old);
		MemoryContextDelete(cxt);
		PG_RE_THROW();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(old);
	return result;
}

static void *
read_hba(void)
{
	return pgtls_hba_read();
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

	if (stat(HbaFileName, &st) < 0)
		return NULL;
	if (hba_cache != NULL && pgtls_file_identity_same(&hba_cache_id, &st) &&
		hba_cache_reload == PgReloadTime)
		return hba_cache;

	cxt = AllocSetContextCreate(TopMemoryContext, "pgtls_admin pg_hba cache",
								ALLOCSET_SMALL_SIZES);
	hba_cache = NULL;
	hba_cache = pgtls_build_in(cxt, read_hba);
	if (hba_cache_cxt != NULL)
		MemoryContextDelete(hba_cache_cxt);
	hba_cache_cxt = cxt;
	pgtls_file_identity_set(&hba_cache_id, &st);
	hba_cache_reload = PgReloadTime;
	return hba_cache;
}
