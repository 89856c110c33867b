/*
 * locks.c
 *		Cluster-wide advisory locks that never wait forever.
 *
 * The CA files and the CRL are per cluster, so their locks are advisory
 * locks in database 0.  A session that took one and then sat idle in its
 * transaction must not make an emergency revocation wait behind it: a lock
 * is waited for a few seconds at most, then the error names the process
 * that holds it.
 */
#include "pgtls_base.h"

#include "access/transam.h"
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/lwlock.h"
#include "storage/proc.h"
#include "storage/procarray.h"
#include "storage/sinvaladt.h"
#include "utils/wait_event.h"

/* How long a lock is waited for before the holder is named in an error. */
#define PGTLS_LOCK_WAIT_MS 5000

static void
advisory_tag(LOCKTAG *tag, uint32 key1, uint32 key2)
{
	SET_LOCKTAG_ADVISORY(*tag, InvalidOid, key1, key2, 2);
}

/* The pid of a process holding the lock, or 0 if it was released meanwhile. */
static int
lock_holder(const LOCKTAG *tag)
{
	VirtualTransactionId *vxids = GetLockConflicts(tag, ExclusiveLock, NULL);

	for (int i = 0; VirtualTransactionIdIsValid(vxids[i]); i++)
	{
		PGPROC	   *proc = BackendIdGetProc(vxids[i].backendId);

		if (proc != NULL && proc->pid != MyProcPid)
			return proc->pid;
	}
	return 0;
}

/*
 * Take the cluster-wide advisory lock (key1, key2) until the end of the
 * transaction, or until pgtls_unlock(); what names the locked thing in the
 * error ("the CRL", "the CA files").
 */
void
pgtls_lock(uint32 key1, uint32 key2, const char *what)
{
	LOCKTAG		tag;
	int			waited_ms = 0;
	int			holder;

	advisory_tag(&tag, key1, key2);
	for (;;)
	{
		if (LockAcquire(&tag, ExclusiveLock, false, true) != LOCKACQUIRE_NOT_AVAIL)
			return;
		if (waited_ms >= PGTLS_LOCK_WAIT_MS)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited_ms += 20;
	}
	holder = lock_holder(&tag);
	ereport(ERROR,
			(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
			 errmsg("could not lock %s within %d seconds", what, PGTLS_LOCK_WAIT_MS / 1000),
			 holder ? errdetail("Process %d holds the lock; its transaction changed %s and has not ended.",
								holder, what) : 0,
			 holder ? errhint("If that session is idle in its transaction, end it (SELECT pg_terminate_backend(%d)) and try again.",
							  holder) : errhint("Try again.")));
}

/* Release a lock taken with pgtls_lock() before the transaction ends. */
void
pgtls_unlock(uint32 key1, uint32 key2)
{
	LOCKTAG		tag;

	advisory_tag(&tag, key1, key2);
	(void) LockRelease(&tag, ExclusiveLock, false);
}

/*
 * Wait a few seconds at most for the transaction xid (holding a row this
 * transaction must change) to end; then fail naming its process.  what
 * names the row.
 */
void
pgtls_wait_for_xact(TransactionId xid, const char *what)
{
	int			waited_ms = 0;
	int			holder;

	if (!TransactionIdIsValid(xid) || TransactionIdIsCurrentTransactionId(xid))
		return;
	while (TransactionIdIsInProgress(xid))
	{
		if (waited_ms >= PGTLS_LOCK_WAIT_MS)
		{
			holder = BackendXidGetPid(xid);
			ereport(ERROR,
					(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
					 errmsg("could not change %s within %d seconds", what, PGTLS_LOCK_WAIT_MS / 1000),
					 holder ? errdetail("Process %d changed it in a transaction that has not ended.", holder) : 0,
					 holder ? errhint("If that session is idle in its transaction, end it (SELECT pg_terminate_backend(%d)) and try again.",
									  holder) : errhint("Try again.")));
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 20, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited_ms += 20;
	}
}

/*
 * Whether the (top-level) transaction fxid runs, committed or aborted.  One
 * too old to look up in the commit log, or not from this cluster's past,
 * counts as committed: callers use this to keep revocations, fail closed.
 */
PgtlsXactState
pgtls_xact_state(FullTransactionId fxid)
{
	TransactionId xid = XidFromFullTransactionId(fxid);
	PgtlsXactState state;

	if (!FullTransactionIdPrecedes(fxid, ReadNextFullTransactionId()))
		return PGTLS_XACT_COMMITTED;
	if (TransactionIdIsInProgress(xid))
		return PGTLS_XACT_RUNNING;
	LWLockAcquire(XactTruncationLock, LW_SHARED);
	if (TransactionIdPrecedes(xid, ShmemVariableCache->oldestClogXid))
		state = PGTLS_XACT_COMMITTED;
	else
		state = TransactionIdDidCommit(xid) ? PGTLS_XACT_COMMITTED : PGTLS_XACT_ABORTED;
	LWLockRelease(XactTruncationLock);
	return state;
}

/*
 * Items that follow subtransactions: each is a struct whose int field at
 * nest_offset is the transaction nest level that made it.  When a
 * subtransaction commits its items pass to the parent's level; when it
 * aborts they leave the list and dropped(item) disposes of them.  Returns
 * the list.
 */
List *
pgtls_follow_subxact(List *items, SubXactEvent event, size_t nest_offset,
					 void (*dropped) (void *item))
{
	int			level = GetCurrentTransactionNestLevel();
	ListCell   *lc;

	if (event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB)
		return items;
	foreach(lc, items)
	{
		void	   *item = lfirst(lc);
		int		   *nest = (int *) ((char *) item + nest_offset);

		if (*nest < level)
			continue;
		if (event == SUBXACT_EVENT_COMMIT_SUB)
			*nest = level - 1;
		else
		{
			items = foreach_delete_current(items, lc);
			dropped(item);
		}
	}
	return items;
}
