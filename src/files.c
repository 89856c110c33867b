/*
 * files.c
 *		Paths, reading files whole, file identities for caches, key-file
 *		permissions and atomic, durable file replacement.
 *
 * A file is replaced by writing a temporary file beside it, fsyncing it,
 * renaming it over the target and fsyncing the directory, so a crash leaves
 * either the old or the new content.  Several files are staged first and
 * committed last, so a failure while preparing any of them changes nothing:
 * a staged file that is never committed is unlinked when its memory context
 * goes away, on success and ERROR paths alike.
 *
 * A transaction that replaces files others must find as the tables say
 * (the CA files: pgtls_init_ca(), the imports, the phases of a rotation, a
 * CA request) defers its commits to the end (pgtls_files_defer_to_commit):
 * its files are staged as usual but renamed only at PRE_COMMIT, in the
 * order they were committed, after everything else the transaction did has
 * succeeded.  An error anywhere before leaves every target untouched, and a
 * rolled-back subtransaction drops what it deferred.  What must follow the
 * renames (a reload, a clean-up, a test pause) is queued among them with
 * pgtls_files_then().
 */
#include "pgtls_base.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/memutils.h"

struct PgtlsStagedFile
{
	MemoryContextCallback cb;
	char	   *tmp;
	char	   *dst;
	bool		committed;
	SubTransactionId subid;		/* deferred: the subtransaction that committed it */
	void		(*action) (void *arg);	/* not a file: what pgtls_files_then() queued */
	void	   *action_arg;
};

/*
 * Commits deferred to the end of this transaction: PgtlsStagedFile *, in
 * TopTransactionContext; deferring since subtransaction defer_subid.
 */
static bool defer_commits = false;
static SubTransactionId defer_subid = InvalidSubTransactionId;
static List *deferred_files = NIL;

/* Numbers the temporary files this process stages (<target>.pgtls_tmp.<pid>.<n>). */
static uint32 staging_counter = 0;

/* A setting's path: absolute as given, relative ones under the data directory. */
char *
pgtls_resolve_path(const char *setting)
{
	if (setting == NULL || setting[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a pgtls_admin file setting is empty")));
	if (is_absolute_path(setting))
		return pstrdup(setting);
	return psprintf("%s/%s", DataDir, setting);
}

/*
 * Read a whole file of at most PGTLS_MAX_FILE_SIZE bytes into out.  Returns
 * false, with out->save_errno or out->problem saying why, when it cannot;
 * the caller decides whether that is an ERROR or a finding.  A buffer
 * holding a secret is wiped when its context goes away.
 */
bool
pgtls_try_read_file(const char *path, bool secret, PgtlsFileRead *out)
{
	int			fd;

	memset(out, 0, sizeof(*out));
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		out->save_errno = errno;
		return false;
	}
	out->opened = true;
	if (fstat(fd, &out->st) < 0)
		out->save_errno = errno;
	else if (!S_ISREG(out->st.st_mode))
		out->problem = "is not a regular file";
	else if (out->st.st_size > PGTLS_MAX_FILE_SIZE)
		out->problem = "is larger than 256 MB";
	if (out->save_errno != 0 || out->problem != NULL)
	{
		CloseTransientFile(fd);
		return false;
	}
	out->data = palloc(out->st.st_size + 1);
	if (secret)
		pgtls_own_secret(out->data, out->st.st_size + 1);
	while (out->len < (size_t) out->st.st_size)
	{
		ssize_t		n = read(fd, out->data + out->len, out->st.st_size - out->len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			out->save_errno = errno;
			CloseTransientFile(fd);
			out->data = NULL;
			return false;
		}
		if (n == 0)
			break;
		out->len += n;
	}
	CloseTransientFile(fd);
	out->data[out->len] = '\0';
	return true;
}

/*
 * Read a whole file or raise: a missing file is 58P01 with the caller's
 * hint, a file that is not regular or too large F0000.
 */
char *
pgtls_read_file(const char *path, const char *what, const char *hint,
				bool secret, size_t *len)
{
	PgtlsFileRead f;

	if (!pgtls_try_read_file(path, secret, &f))
	{
		if (f.problem != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("%s \"%s\" %s", what, path, f.problem)));
		errno = f.save_errno;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not %s %s \"%s\": %m", f.opened ? "read" : "open", what, path),
				 hint ? errhint("%s", hint) : 0));
	}
	*len = f.len;
	return f.data;
}

/*
 * Read a private key file that must pass the key-file permission rule; the
 * buffer is wiped when its context goes away.
 */
char *
pgtls_read_key_file(const char *path, const char *what, size_t *len)
{
	struct stat st;

	if (stat(path, &st) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open %s \"%s\": %m", what, path)));
	pgtls_require_key_permissions(path, what, &st);
	return pgtls_read_file(path, what, NULL, true, len);
}

bool
pgtls_file_identity_same(const PgtlsFileIdentity *id, const struct stat *st)
{
	return id->valid && id->dev == st->st_dev && id->ino == st->st_ino &&
		id->size == st->st_size && id->mtime.tv_sec == st->st_mtim.tv_sec &&
		id->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

void
pgtls_file_identity_set(PgtlsFileIdentity *id, const struct stat *st)
{
	id->valid = true;
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
}

/*
 * The rule PostgreSQL applies to ssl_key_file: owned by the database user
 * with no group or world access, or owned by root with at most group read.
 * Returns NULL when the file passes, else what is wrong.
 *
 * The rule is copied from check_ssl_key_file_permissions() in
 * src/backend/libpq/be-secure-common.c, PostgreSQL 15.x (not exported, and
 * it logs rather than returns); re-check it against each new major.
 */
const char *
pgtls_key_permission_problem(const char *path, struct stat *st)
{
	if (!S_ISREG(st->st_mode))
		return "is not a regular file";
	if (st->st_uid != geteuid() && st->st_uid != 0)
		return "must be owned by the database user or root";
	if ((st->st_uid == geteuid() && (st->st_mode & (S_IRWXG | S_IRWXO))) ||
		(st->st_uid == 0 && (st->st_mode & (S_IWGRP | S_IXGRP | S_IRWXO))))
		return "has group or world access";
	return NULL;
}

/* ERROR unless path, just stat()ed into stp, passes the key-file rule. */
void
pgtls_require_key_permissions(const char *path, const char *what, struct stat *stp)
{
	struct stat st = *stp;
	const char *problem;

	problem = pgtls_key_permission_problem(path, &st);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("%s \"%s\" %s", what, path, problem),
				 errdetail("The file has mode %04o. It must have permissions u=rw (0600) or less if owned by the database user, or u=rw,g=r (0640) or less if owned by root.",
						   (unsigned int) (st.st_mode & 07777)),
				 errhint("Run: chmod 0600 \"%s\"", path)));
}

static void
unlink_uncommitted(void *arg)
{
	PgtlsStagedFile *staged = (PgtlsStagedFile *) arg;

	if (!staged->committed)
		unlink(staged->tmp);
}

static void
ensure_parent_directory(const char *path)
{
	char	   *dir = pstrdup(path);
	struct stat st;

	get_parent_directory(dir);
	if (dir[0] == '\0' || stat(dir, &st) == 0)
		return;
	if (errno != ENOENT || MakePGDirectory(dir) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
	fsync_fname(dir, true);
}

static const char *
base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/*
 * Is name (in the directory of target) one of the files this extension
 * writes: the target itself, the files its settings name, or a server
 * certificate or key written by an install (server-<serial>.crt/.key)?
 */
static bool
ours(const char *name, size_t len, const char *target)
{
	const char *const settings[] = {pgtls_ca_cert_file, pgtls_ca_key_file, pgtls_crl_file, pgtls_ca_bundle_file};

	if (strlen(base_name(target)) == len && strncmp(name, base_name(target), len) == 0)
		return true;
	for (int i = 0; i < (int) lengthof(settings); i++)
		if (settings[i] != NULL && strlen(base_name(settings[i])) == len &&
			strncmp(name, base_name(settings[i]), len) == 0)
			return true;
	/* kept CA keys, the pending request and the switch marker of ca_keyring.c */
	if (len > 7 && strncmp(name, "ca-", 3) == 0 &&
		(strncmp(name + len - 4, ".crt", 4) == 0 || strncmp(name + len - 4, ".key", 4) == 0 ||
		 strncmp(name + len - 4, ".csr", 4) == 0 || (len == 9 && strncmp(name, "ca-switch", 9) == 0)))
		return true;
	if (len > 11 && strncmp(name, "server-", 7) == 0 &&
		(strncmp(name + len - 4, ".crt", 4) == 0 || strncmp(name + len - 4, ".key", 4) == 0))
	{
		for (size_t i = 7; i < len - 4; i++)
			if (!isxdigit((unsigned char) name[i]))
				return false;
		return true;
	}
	return false;
}

/*
 * Remove temporary files that crashed backends left beside target: a
 * <name>.pgtls_tmp.<pid>.<n> of a process that is gone is garbage (it may hold
 * a private key that was never installed).  Only names of files this
 * extension writes are touched, never anything else in the directory.
 */
static void
sweep_stale_temp_files(const char *target)
{
	char	   *dir = pstrdup(target);
	DIR		   *d;
	struct dirent *de;

	get_parent_directory(dir);
	if (dir[0] == '\0')
		dir = pstrdup(".");
	d = AllocateDir(dir);
	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		const char *mark = strstr(de->d_name, ".pgtls_tmp.");
		char	   *end;
		long		pid;

		if (mark == NULL || !ours(de->d_name, mark - de->d_name, target))
			continue;
		pid = strtol(mark + strlen(".pgtls_tmp."), &end, 10);
		/* <pid>, or <pid>.<n> */
		if (*end == '.' && isdigit((unsigned char) end[1]))
			(void) strtoul(end + 1, &end, 10);
		if (*end != '\0' || pid <= 0 || pid == MyProcPid ||
			kill((pid_t) pid, 0) == 0 || errno != ESRCH)
			continue;
		if (unlink(psprintf("%s/%s", dir, de->d_name)) == 0)
			elog(LOG, "pgtls_admin: removed \"%s/%s\" left by a crashed process", dir, de->d_name);
	}
	FreeDir(d);
}

/*
 * Write data to a new temporary file beside path and make it durable.  The
 * target is untouched until pgtls_commit_file().
 */
PgtlsStagedFile *
pgtls_stage_file(const char *path, const char *data, size_t len, mode_t mode)
{
	/* a deferred file lives until the transaction ends, whatever context the caller works in */
	MemoryContext old = MemoryContextSwitchTo(defer_commits ? TopTransactionContext : CurrentMemoryContext);
	PgtlsStagedFile *staged = palloc0(sizeof(PgtlsStagedFile));
	size_t		done = 0;
	int			fd;

	/*
	 * Each staging has a name of its own: a path staged again before the
	 * end of a deferring transaction keeps the earlier one queued (renamed
	 * first, so the last wins), and a subtransaction that rolls back drops
	 * only what it staged.
	 */
	ensure_parent_directory(path);
	sweep_stale_temp_files(path);
	staged->dst = pstrdup(path);
	staged->tmp = psprintf("%s.pgtls_tmp.%d.%u", path, MyProcPid, ++staging_counter);

	unlink(staged->tmp);		/* left by a backend that crashed with our pid and number */
	fd = OpenTransientFilePerm(staged->tmp, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY, mode);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", staged->tmp)));
	staged->cb.func = unlink_uncommitted;
	staged->cb.arg = staged;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &staged->cb);

	/* the umask may have narrowed the mode, never widened it; be exact */
	if (fchmod(fd, mode) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not set permissions of file \"%s\": %m", staged->tmp)));
	while (done < len)
	{
		ssize_t		n = write(fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not write file \"%s\": %m", staged->tmp)));
		done += n;
	}
	if (pg_fsync(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", staged->tmp)));
	if (CloseTransientFile(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not close file \"%s\": %m", staged->tmp)));
	MemoryContextSwitchTo(old);
	return staged;
}

static void
rename_into_place(PgtlsStagedFile *staged)
{
	char	   *dir = pstrdup(staged->dst);

	if (rename(staged->tmp, staged->dst) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not rename file \"%s\" to \"%s\": %m",
						staged->tmp, staged->dst)));
	staged->committed = true;
	fsync_fname(staged->dst, false);
	get_parent_directory(dir);
	fsync_fname(dir[0] ? dir : ".", true);
}

/*
 * Rename the staged file over its target and make the rename durable; in a
 * transaction that defers its commits, at its PRE_COMMIT.
 */
void
pgtls_commit_file(PgtlsStagedFile *staged)
{
	if (defer_commits)
	{
		MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

		staged->subid = GetCurrentSubTransactionId();
		deferred_files = lappend(deferred_files, staged);
		MemoryContextSwitchTo(old);
		return;
	}
	rename_into_place(staged);
}

/*
 * Run action(arg) after the files committed so far are in place: at once,
 * or, in a transaction that defers its commits, among the renames at its
 * PRE_COMMIT (arg must live until then).  An ERROR from it aborts the
 * transaction.
 */
void
pgtls_files_then(void (*action) (void *arg), void *arg)
{
	PgtlsStagedFile *entry;
	MemoryContext old;

	if (!defer_commits)
	{
		action(arg);
		return;
	}
	old = MemoryContextSwitchTo(TopTransactionContext);
	entry = palloc0(sizeof(PgtlsStagedFile));
	entry->committed = true;
	entry->subid = GetCurrentSubTransactionId();
	entry->action = action;
	entry->action_arg = arg;
	deferred_files = lappend(deferred_files, entry);
	MemoryContextSwitchTo(old);
}

static void
defer_xact_callback(XactEvent event, void *arg)
{
	List	   *files = deferred_files;
	ListCell   *lc;

	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			/* an ERROR here aborts the transaction: what is renamed stays renamed, the rest is unlinked */
			deferred_files = NIL;
			foreach(lc, files)
			{
				PgtlsStagedFile *entry = lfirst(lc);

				if (entry->action != NULL)
					entry->action(entry->action_arg);
				else
					rename_into_place(entry);
			}
			list_free(files);
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (deferred_files != NIL)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that replaces pgtls_admin's CA files")));
			break;
		default:
			/* the list went with TopTransactionContext, and the staged files with it */
			defer_commits = false;
			deferred_files = NIL;
			break;
	}
}

/*
 * A subtransaction rolled back: what it (or one below it, whose ids are
 * higher) deferred is dropped, and it stops deferring if it started to.
 */
static void
defer_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, deferred_files)
	{
		PgtlsStagedFile *entry = lfirst(lc);

		if (entry->subid < mySubid)
			continue;
		if (entry->tmp != NULL && !entry->committed)
			unlink(entry->tmp);
		entry->committed = true;
		deferred_files = foreach_delete_current(deferred_files, lc);
	}
	if (defer_commits && defer_subid >= mySubid)
		defer_commits = false;
}

/* Registered first (_PG_init), so that it runs after the extension's other PRE_COMMIT work. */
void
pgtls_files_init(void)
{
	RegisterXactCallback(defer_xact_callback, NULL);
	RegisterSubXactCallback(defer_subxact_callback, NULL);
}

/*
 * From now to the end of the transaction, stage files in the transaction's
 * memory and rename them only when it commits; an abort removes them.
 * Callers that change what the registry says refused to run in a
 * transaction block (PreventInTransactionBlock), so that the files and the
 * tables commit together.
 */
void
pgtls_files_defer_to_commit(void)
{
	Assert(IsTransactionState());
	if (!defer_commits)
		defer_subid = GetCurrentSubTransactionId();
	defer_commits = true;
}

/* Does this transaction defer its file commits? */
bool
pgtls_files_deferring(void)
{
	return defer_commits;
}

/*
 * Commit files at once again from now on (those deferred so far are still
 * renamed at PRE_COMMIT): for a function that may run in a transaction
 * block and defers only its own files.
 */
void
pgtls_files_defer_stop(void)
{
	defer_commits = false;
}
