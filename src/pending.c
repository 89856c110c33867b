/*
 * pending.c
 *		Revocations whose transaction has not ended yet.
 *
 * A revoking transaction rewrites the CRL before it commits, and other
 * sessions rewrite it too, from the registry rows they can see.  So that a
 * rewrite by another session never drops a revocation that is about to
 * commit, each revocation leaves a file pgtls/pending/<xid>-<serial>
 * (fsynced) before its CRL is written; every CRL build lists the serials of
 * the files whose transaction is still running or has committed.  Files of
 * aborted transactions are removed by the next build, and so are those of
 * committed ones once the registry shows them revoked; the transaction that
 * wrote a file removes it itself when it ends.  No lock is held
 * from the revocation to the commit, so an idle revoking transaction never
 * holds up another revocation.
 */
#include "pgtls_stores.h"

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <unistd.h>

#include "access/transam.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/lwlock.h"
#include "storage/procarray.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* A file this backend wrote in the current transaction (in TopMemoryContext). */
typedef struct OwnFile
{
	char	   *path;
	int			nest;			/* transaction nest level of the revocation */
} OwnFile;

static List *own_files = NIL;
static bool callback_registered = false;

static void
forget(OwnFile *f, bool remove)
{
	if (remove)
		(void) unlink(f->path);
	pfree(f->path);
	pfree(f);
}

/*
 * At commit the registry row carries the revocation, and after an abort it
 * must go: either way this transaction's files are done with.  (A crash
 * leaves them to the next CRL build.)  A prepared transaction keeps its
 * files: it is still running for every CRL build until COMMIT PREPARED or
 * ROLLBACK PREPARED, after which the builds treat them as any others.
 */
static void
pending_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	foreach(lc, own_files)
		forget(lfirst(lc), event != XACT_EVENT_PREPARE);
	/* the CRL written meanwhile lists what is no revocation now: have the worker rewrite it */
	if (own_files != NIL && (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT))
		pgtls_live_request_crl_rewrite();
	list_free(own_files);
	own_files = NIL;
}

/* A revocation of a subtransaction that rolls back is no revocation. */
static void
drop_own_file(void *item)
{
	forget(item, true);
	pgtls_live_request_crl_rewrite();
}

static void
pending_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	own_files = pgtls_follow_subxact(own_files, event, offsetof(OwnFile, nest), drop_own_file);
}

static char *
pending_dir(void)
{
	return psprintf("%s/pgtls/pending", DataDir);
}

/* Record that this transaction revokes serial (with reason), durably. */
void
pgtls_pending_add(const char *serial, const char *reason)
{
	char	   *dir = pending_dir();
	char	   *path;
	int			fd;
	FullTransactionId fxid = GetTopFullTransactionId();
	ListCell   *lc;

	if (MakePGDirectory(dir) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s\": %m", dir)));
	path = psprintf("%s/%016" PRIX64 "-%s", dir, U64FromFullTransactionId(fxid), serial);
	fd = OpenTransientFile(path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create file \"%s\": %m", path)));
	if (write(fd, reason, strlen(reason)) != (ssize_t) strlen(reason) || pg_fsync(fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", path)));
	CloseTransientFile(fd);
	fsync_fname(dir, true);

	if (!callback_registered)
	{
		RegisterXactCallback(pending_xact_callback, NULL);
		RegisterSubXactCallback(pending_subxact_callback, NULL);
		callback_registered = true;
	}
	/* revoked again in this transaction: the file belongs to the first revocation */
	foreach(lc, own_files)
		if (strcmp(((OwnFile *) lfirst(lc))->path, path) == 0)
			return;
	{
		MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
		OwnFile    *f = palloc(sizeof(OwnFile));

		f->path = pstrdup(path);
		f->nest = GetCurrentTransactionNestLevel();
		own_files = lappend(own_files, f);
		MemoryContextSwitchTo(old);
	}
}

/*
 * Is there a file whose transaction aborted (a prepared transaction rolled
 * back, a crashed backend)?  The CRL then lists a revocation that is none,
 * and is due for a rewrite, which removes the file.  (A committed one shows
 * as a registry change.)
 */
bool
pgtls_pending_aborted(void)
{
	char	   *dir = pending_dir();
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;
	bool		finished = false;

	if (d == NULL && errno == ENOENT)
		return false;
	while (!finished && (de = ReadDir(d, dir)) != NULL)
	{
		uint64		fxid;
		char		serial[64];

		if (sscanf(de->d_name, "%16" SCNx64 "-%40[0-9A-F]", &fxid, serial) == 2)
			finished = pgtls_xact_state(FullTransactionIdFromU64(fxid)) == PGTLS_XACT_ABORTED;
	}
	FreeDir(d);
	return finished;
}

static bool
listed(List *revoked, const char *serial)
{
	ListCell   *lc;

	foreach(lc, revoked)
		if (strcmp(((PgtlsRevoked *) lfirst(lc))->serial, serial) == 0)
			return true;
	return false;
}

/*
 * The registry's revocations (PgtlsRevoked *) plus those of pending files
 * whose transaction runs or committed, each serial once.  Files of aborted
 * transactions, and of committed ones the registry already lists, are
 * removed.
 */
List *
pgtls_pending_merge(List *revoked)
{
	char	   *dir = pending_dir();
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;
	List	   *result = revoked;

	if (d == NULL && errno == ENOENT)
		return result;
	while ((de = ReadDir(d, dir)) != NULL)
	{
		uint64		fxid;
		char		serial[64];
		char	   *path;
		PgtlsXactState state;
		bool		in_registry;

		if (sscanf(de->d_name, "%16" SCNx64 "-%40[0-9A-F]", &fxid, serial) != 2)
			continue;
		path = psprintf("%s/%s", dir, de->d_name);
		state = pgtls_xact_state(FullTransactionIdFromU64(fxid));
		in_registry = listed(revoked, serial);
		if (state == PGTLS_XACT_ABORTED || (state == PGTLS_XACT_COMMITTED && in_registry))
		{
			unlink(path);
			continue;
		}
		if (!in_registry && !listed(result, serial))
		{
			PgtlsRevoked *r = palloc0(sizeof(PgtlsRevoked));
			PgtlsFileRead f;

			r->serial = pstrdup(serial);
			r->revoked_at = GetCurrentTimestamp();
			r->reason = "unspecified";
			if (pgtls_try_read_file(path, false, &f))
			{
				r->revoked_at = time_t_to_timestamptz(f.st.st_mtime);
				r->reason = f.data;	/* written by pgtls_pending_add(); unknown words code as unspecified */
			}
			result = lappend(result, r);
		}
	}
	FreeDir(d);
	return result;
}
