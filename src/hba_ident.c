/*
 * hba_ident.c
 *		pg_ident.conf as the server reads it, and the user-name maps of
 *		pg_hba.conf's map= option evaluated the way the server does.
 *
 * The file is tokenized and parsed with the server's own exported
 * functions (tokenize_auth_file, parse_ident_line), the calls behind
 * pg_ident_file_mappings, so it is the file as it is on disk now.  The
 * server's check_usermap() cannot be called from a backend after login: the
 * maps it reads live in the postmaster's memory context, which the backend
 * deleted, and calling it reads freed memory.  So its static worker,
 * check_ident_usermap(), is copied below, marked, and run on our own parse.
 * In PostgreSQL 15 the compiled regular expressions are malloc'ed; a reset
 * callback frees them with the parse.
 */
#include "pgtls_audit.h"
#include "pgtls_compat.h"

#include "catalog/pg_collation.h"
#include "mb/pg_wchar.h"
#include "postmaster/postmaster.h"
#include "regex/regex.h"
#include "storage/fd.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* ---- copied from src/backend/libpq/hba.c, PostgreSQL 15.18: check_ident_usermap() ----
 * Changes: the LOG calls became *why (the server's words, for our detail
 * column); nothing else.  Note that the server uses the regex match offsets
 * (in characters) as byte offsets when it substitutes \1, and so do we.
 */
static void
check_ident_usermap(IdentLine *identLine, const char *usermap_name,
					const char *pg_role, const char *ident_user,
					bool case_insensitive, bool *found_p, bool *error_p, char **why)
{
	*found_p = false;
	*error_p = false;

	if (strcmp(identLine->usermap, usermap_name) != 0)
		/* Line does not match the map name we're looking for, so just abort */
		return;

	/* Match? */
	if (identLine->ident_user[0] == '/')
	{
		/*
		 * When system username starts with a slash, treat it as a regular
		 * expression. In this case, we process the system username as a
		 * regular expression that returns exactly one match. This is replaced
		 * for \1 in the database username string, if present.
		 */
		int			r;
		regmatch_t	matches[2];
		pg_wchar   *wstr;
		int			wlen;
		char	   *ofs;
		char	   *regexp_pgrole;

		wstr = palloc((strlen(ident_user) + 1) * sizeof(pg_wchar));
		wlen = pg_mb2wchar_with_len(ident_user, wstr, strlen(ident_user));

		r = pg_regexec(&identLine->re, wstr, wlen, 0, NULL, 2, matches, 0);
		if (r)
		{
			char		errstr[100];

			if (r != REG_NOMATCH)
			{
				/* REG_NOMATCH is not an error, everything else is */
				pg_regerror(r, &identLine->re, errstr, sizeof(errstr));
				*why = psprintf("regular expression match for \"%s\" failed: %s",
								identLine->ident_user + 1, errstr);
				*error_p = true;
			}

			pfree(wstr);
			return;
		}
		pfree(wstr);

		if ((ofs = strstr(identLine->pg_role, "\\1")) != NULL)
		{
			int			offset;

			/* substitution of the first argument requested */
			if (matches[1].rm_so < 0)
			{
				*why = psprintf("regular expression \"%s\" has no subexpressions as requested by backreference in \"%s\"",
								identLine->ident_user + 1, identLine->pg_role);
				*error_p = true;
				return;
			}

			/*
			 * length: original length minus length of \1 plus length of match
			 * plus null terminator
			 */
			regexp_pgrole = palloc0(strlen(identLine->pg_role) - 2 + (matches[1].rm_eo - matches[1].rm_so) + 1);
			offset = ofs - identLine->pg_role;
			memcpy(regexp_pgrole, identLine->pg_role, offset);
			memcpy(regexp_pgrole + offset,
				   ident_user + matches[1].rm_so,
				   matches[1].rm_eo - matches[1].rm_so);
			strcat(regexp_pgrole, ofs + 2);
		}
		else
		{
			/* no substitution, so copy the match */
			regexp_pgrole = pstrdup(identLine->pg_role);
		}

		/*
		 * now check if the username actually matched what the user is trying
		 * to connect as
		 */
		if (case_insensitive)
		{
			if (pg_strcasecmp(regexp_pgrole, pg_role) == 0)
				*found_p = true;
		}
		else
		{
			if (strcmp(regexp_pgrole, pg_role) == 0)
				*found_p = true;
		}
		pfree(regexp_pgrole);

		return;
	}
	else
	{
		/* Not regular expression, so make complete match */
		if (case_insensitive)
		{
			if (pg_strcasecmp(identLine->pg_role, pg_role) == 0 &&
				pg_strcasecmp(identLine->ident_user, ident_user) == 0)
				*found_p = true;
		}
		else
		{
			if (strcmp(identLine->pg_role, pg_role) == 0 &&
				strcmp(identLine->ident_user, ident_user) == 0)
				*found_p = true;
		}
	}
}
/* ---- end of the copy ---- */

/*
 * check_usermap() (hba.c, PostgreSQL 15.x) on our parse: the lines of the
 * map in file order, stopping at the first that matches or fails.  Returns
 * true when the server would let system_user in as pg_role; *line is the
 * pg_ident.conf line that decided (0 for none), *why the server's log line
 * when it refuses.  Certificate logins compare case-sensitively.
 */
bool
pgtls_usermap_check(PgtlsIdentFile *file, const char *usermap, const char *pg_role,
					const char *system_user, int *line, char **why)
{
	ListCell   *lc;

	*line = 0;
	*why = NULL;
	if (usermap == NULL || usermap[0] == '\0')
	{
		if (strcmp(pg_role, system_user) == 0)
			return true;
		*why = psprintf("provided user name (%s) and authenticated user name (%s) do not match",
						pg_role, system_user);
		return false;
	}
	foreach(lc, file->lines)
	{
		IdentLine  *il = lfirst(lc);
		bool		found;
		bool		error;

		check_ident_usermap(il, usermap, pg_role, system_user, false, &found, &error, why);
		if (found || error)
		{
			*line = il->linenumber;
			return found;
		}
	}
	*why = psprintf("no match in usermap \"%s\" for user \"%s\" authenticated as \"%s\"",
					usermap, pg_role, system_user);
	return false;
}

/*
 * The role one line makes of system_user, or NULL: the matching of
 * check_ident_usermap() above without the comparison with a requested
 * role (so also the server's character offsets used as byte offsets).
 */
static char *
line_role(IdentLine *il, const char *system_user)
{
	regmatch_t	matches[2];
	pg_wchar   *wstr;
	int			wlen;
	char	   *ofs;
	char	   *role;
	int			offset;

	if (il->ident_user[0] != '/')
		return strcmp(il->ident_user, system_user) == 0 ? pstrdup(il->pg_role) : NULL;
	wstr = palloc((strlen(system_user) + 1) * sizeof(pg_wchar));
	wlen = pg_mb2wchar_with_len(system_user, wstr, strlen(system_user));
	if (pg_regexec(&il->re, wstr, wlen, 0, NULL, 2, matches, 0) != 0)
		return NULL;
	if ((ofs = strstr(il->pg_role, "\\1")) == NULL)
		return pstrdup(il->pg_role);
	if (matches[1].rm_so < 0)
		return NULL;
	role = palloc0(strlen(il->pg_role) - 2 + (matches[1].rm_eo - matches[1].rm_so) + 1);
	offset = ofs - il->pg_role;
	memcpy(role, il->pg_role, offset);
	memcpy(role + offset, system_user + matches[1].rm_so, matches[1].rm_eo - matches[1].rm_so);
	strcat(role, ofs + 2);
	return role;
}

/* Every role a line of any map makes of system_user. */
List *
pgtls_usermap_roles(PgtlsIdentFile *file, const char *system_user)
{
	List	   *roles = NIL;
	ListCell   *lc;

	foreach(lc, file->lines)
	{
		char	   *role = line_role(lfirst(lc), system_user);

		if (role != NULL)
			roles = lappend(roles, role);
	}
	return roles;
}

/* Does the map exist at all (a line with this map name)? */
bool
pgtls_usermap_exists(PgtlsIdentFile *file, const char *usermap)
{
	ListCell   *lc;

	foreach(lc, file->lines)
		if (strcmp(((IdentLine *) lfirst(lc))->usermap, usermap) == 0)
			return true;
	return false;
}

/*
 * Can the map make any system user pg_role?  The first line that can (a
 * literal line for the role, or a regular expression whose role is it or
 * holds \1), or 0.
 */
int
pgtls_usermap_can_reach(PgtlsIdentFile *file, const char *usermap, const char *pg_role)
{
	ListCell   *lc;

	foreach(lc, file->lines)
	{
		IdentLine  *il = lfirst(lc);

		if (strcmp(il->usermap, usermap) != 0)
			continue;
		if (strcmp(il->pg_role, pg_role) == 0 ||
			(il->ident_user[0] == '/' && strstr(il->pg_role, "\\1") != NULL))
			return il->linenumber;
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * Reading the file, with a per-backend cache
 * --------------------------------------------------------------------- */
static void
free_regexes(void *arg)
{
	List	   *lines = *(List **) arg;
	ListCell   *lc;

	foreach(lc, lines)
	{
		IdentLine  *il = lfirst(lc);

		if (il->ident_user[0] == '/')
			pg_regfree(&il->re);
	}
	*(List **) arg = NIL;
}

/* pg_ident.conf as it is on disk now, parsed in the current memory context. */
PgtlsIdentFile *
pgtls_ident_read(void)
{
	PgtlsIdentFile *result = palloc0(sizeof(PgtlsIdentFile));
	MemoryContextCallback *cb = palloc0(sizeof(MemoryContextCallback));
	FILE	   *file;
	List	   *tokens = NIL;
	MemoryContext tokcxt;
	ListCell   *lc;

	result->path = pstrdup(IdentFileName);
	cb->func = free_regexes;
	cb->arg = &result->lines;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	file = AllocateFile(IdentFileName, "r");
	if (file == NULL)
	{
		/* the server logs "could not open usermap file" and has no maps */
		result->missing = true;
		return result;
	}
	tokcxt = pgtls_tokenize_hba(IdentFileName, file, &tokens);
	FreeFile(file);
	foreach(lc, tokens)
	{
		TokenizedAuthLine *tok = lfirst(lc);
		IdentLine  *il = NULL;

		if (tok->err_msg == NULL)
			il = parse_ident_line(tok, DEBUG3);
		if (il == NULL)
		{
			if (result->error == NULL)
			{
				result->error = psprintf("line %d: %s", tok->line_num,
										 tok->err_msg ? tok->err_msg : "invalid line");
				result->error_line = tok->line_num;
			}
			continue;
		}
		result->lines = lappend(result->lines, il);
	}
	MemoryContextDelete(tokcxt);
	return result;
}

static void *
read_ident(void)
{
	return pgtls_ident_read();
}

static MemoryContext ident_cache_cxt = NULL;
static PgtlsIdentFile *ident_cache = NULL;
static PgtlsFileIdentity ident_cache_id;
static bool ident_cache_missing;

/* pg_ident.conf as pgtls_ident_read() gives it, kept per backend while the file stays the same. */
PgtlsIdentFile *
pgtls_ident_read_cached(void)
{
	struct stat st;
	bool		missing = stat(IdentFileName, &st) < 0;
	MemoryContext cxt;
	PgtlsIdentFile *f;

	if (ident_cache != NULL && missing == ident_cache_missing &&
		(missing || pgtls_file_identity_same(&ident_cache_id, &st)))
		return ident_cache;

	cxt = AllocSetContextCreate(TopMemoryContext, "pgtls_admin pg_ident cache", ALLOCSET_SMALL_SIZES);
	f = pgtls_build_in(cxt, read_ident);
	if (ident_cache_cxt != NULL)
		MemoryContextDelete(ident_cache_cxt);
	ident_cache_cxt = cxt;
	ident_cache = f;
	ident_cache_missing = missing;
	if (!missing)
		pgtls_file_identity_set(&ident_cache_id, &st);
	return ident_cache;
}

/* Was pg_ident.conf changed after the server last loaded its configuration? */
bool
pgtls_ident_changed_since_reload(void)
{
	struct stat st;

	if (stat(IdentFileName, &st) < 0)
		return false;
	return time_t_to_timestamptz(st.st_mtim.tv_sec) + st.st_mtim.tv_nsec / 1000 > PgReloadTime;
}
