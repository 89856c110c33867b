/*
 * worker.c
 *		The background worker: one per node (primary and standbys), with the
 *		library in shared_preload_libraries.
 *
 * Every second it reads the registry's changes since its last look (on a
 * standby, as they are replayed) and
 *   - keeps the shared set of live client certificates (live.c) equal to
 *     the registry (dropping those that expired, every maintenance
 *     interval), and publishes the CAs' identities and a heartbeat for
 *     the login hook;
 *   - rewrites and re-signs the CRLs and the trust bundle (trust.c) when a
 *     revocation arrives, when the CAs, their states, the trusted CAs or
 *     the CRLs the primary keeps change, when nextUpdate is half-way, and
 *     at start and promotion, then reloads the server, so a standby refuses
 *     a certificate within a second or two of the revocation being
 *     replayed and follows a CA rotation as it replays it; on the primary
 *     it keeps the CRLs it signed for standbys that lack a CA's key, and on
 *     every node removes the keys of retired CAs;
 *   - on the primary, completes a switch of the CA files that a crash
 *     (or a failed commit) interrupted, as the ca-switch marker says
 *     (pgtls_ca_sync), so the registry agrees with the files;
 *   - on the primary, records in the registry the certificates of the
 *     issuance journal whose transaction never committed, and compacts
 *     the journal, a slice of at most JOURNAL_SLICE_MS a pass;
 *   - on the primary, runs pgtls_maintain() (maintain.c) every
 *     pgtls_admin.maintenance_interval and at promotion, logging one line
 *     per action (a line it logged on the previous run is not repeated);
 *     its errors are logged and it tries again an interval later.
 * No duty may stop the others: the worker waits for no lock longer than
 * WORKER_LOCK_TIMEOUT (a user's open transaction holding a row, or a table,
 * is skipped or tried again next pass, never waited on), and an error in
 * one duty is logged and that duty retried after a pause.  An error
 * reading the registry (a CA that cannot be read, say) pauses the worker:
 * it never crash-loops, and while it cannot confirm the registry its
 * heartbeat ages, so registry-enforced logins fail closed.
 */
#include "pgtls_ops.h"

#include <glob.h>
#include <sys/stat.h>

#include "access/transam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"

PGDLLEXPORT void pgtls_worker_main(Datum arg);

/* How often the registry is looked at, and how long to pause after an error. */
#define POLL_MS 1000
#define ERROR_PAUSE_MS 10000
#define OVERFLOW_RELOAD_MS 60000

/* The longest the worker waits for any lock. */
#define WORKER_LOCK_TIMEOUT "1s"

/* Journal work per pass: about this long, in chunks of this many entries. */
#define JOURNAL_SLICE_MS 250
#define JOURNAL_CHUNK 2000

#define MAX_CAS 8

typedef struct WorkerState
{
	Oid			dboid;
	Oid			registry;		/* the registry table followed */
	FullTransactionId since;	/* changes from here on are unseen; 0: load everything */
	bool		in_recovery;
	bool		crl_rewrite;	/* a revocation arrived, or start / promotion */
	TimestampTz crl_next_update;	/* of the CRL we last wrote; 0 unknown */
	TimestampTz crl_retry;		/* after a failed rewrite, not before this */
	PgtlsFileIdentity journal_seen;
	bool		journal_unsettled;
	PgtlsJournalWork *journal_work; /* under way across passes; NULL: none */
	TimestampTz journal_retry;	/* after a failed slice, not before this */
	uint64		ended;			/* transactions ended as of the last read, plus the worker's own since */
	int			lock_state;		/* 0; 1: registry locked, set still exact; 2: locked, set unknown */
	PgtlsCAIdentity cas[MAX_CAS];	/* as last published */
	int			ncas;
	TimestampTz last_heartbeat;
	char	   *trust_digest;	/* what the trust files were last written from (malloc'd) */
	TimestampTz last_maintain;	/* 0: never, run at once */
	TimestampTz last_sweep;		/* expired certificates last dropped from the live set */
	char	   *maintain_logged;	/* the lines the last run logged (TopMemoryContext) */
	MemoryContext tick_cxt;
	TimestampTz overflow_reload;	/* when an overflowed set was last reloaded */
	PgtlsFileIdentity switch_seen;	/* a ca-switch marker the sync left */
	TimestampTz switch_retry;	/* after a failed sync, not before this */
} WorkerState;

typedef enum FollowResult
{
	FOLLOW_READ,				/* changes applied, heartbeat published */
	FOLLOW_NO_REGISTRY,
	FOLLOW_LOCKED				/* the registry could not be read within the lock timeout */
} FollowResult;

/*
 * Does the database still exist?  Its directory tells, without connecting
 * (a worker can connect to one database only, once).
 */
static bool
database_exists(Oid dboid)
{
	char	   *pattern[2];
	glob_t		found;
	bool		exists = false;

	pattern[0] = psprintf("%s/base/%u", DataDir, dboid);
	pattern[1] = psprintf("%s/pg_tblspc/*/*/%u", DataDir, dboid);	/* in another tablespace */
	for (int i = 0; i < 2 && !exists; i++)
	{
		exists = glob(pattern[i], GLOB_NOSORT, NULL, &found) == 0 && found.gl_pathc > 0;
		globfree(&found);
	}
	return exists;
}

static void
apply_change(PgtlsRegistryChange *change, void *arg)
{
	WorkerState *ws = arg;

	if (change->revoked || ws->since.value == 0)
		ws->crl_rewrite = true;
	if (strcmp(change->kind, "client") != 0)
		return;
	/*
	 * A revocation that arrives ends this node's sessions of that
	 * certificate when this pass commits, as the revocation recorded
	 * (pgtls_revoke's terminate; all when it did not say).  On a standby
	 * these are all there are; on the primary the revoking backend ended
	 * those it saw just before its commit, and this catches the rest: a
	 * login that completed after that look, and a revocation committed
	 * with COMMIT PREPARED, whose backend ended nothing.  Not at a full
	 * load: that revocation is old news.
	 */
	if (change->revoked && ws->since.value != 0 &&
		(change->ends_sessions == NULL || strcmp(change->ends_sessions, "none") != 0))
		pgtls_sessions_end_at_commit(change->serial,
									 change->ends_sessions == NULL ||
									 strcmp(change->ends_sessions, "all") == 0);
	pgtls_live_set(change->serial, !change->revoked && change->not_after > GetCurrentTimestamp(),
				   change->role_oid, change->not_after, change->fingerprint);
}

static void
heartbeat(WorkerState *ws)
{
	TimestampTz now = GetCurrentTimestamp();

	pgtls_live_publish(PGTLS_WORKER_READY, true, ws->cas, ws->ncas);
	if (ws->last_heartbeat != 0)
		ereport(DEBUG1,
				(errmsg("pgtls_admin worker: heartbeat, %ld ms after the previous one",
						(long) ((now - ws->last_heartbeat) / 1000))));
	ws->last_heartbeat = now;
}

/* Remember the digest the trust files were written from. */
static void
set_digest(WorkerState *ws, const char *digest)
{
	free(ws->trust_digest);
	ws->trust_digest = digest ? strdup(digest) : NULL;
}

/* The CAs certificates of ours name as issuer: every CA the server trusts of ours. */
static void
publish_ready(WorkerState *ws)
{
	ws->ncas = pgtls_trust_identities(ws->cas, MAX_CAS);
	heartbeat(ws);
}

/* Transactions that had an xid and ended, in the cluster or replayed, so far. */
static uint64
xacts_ended(void)
{
	uint64		n;

	LWLockAcquire(ProcArrayLock, LW_SHARED);
	n = ShmemVariableCache->xactCompletionCount;
	LWLockRelease(ProcArrayLock);
	return n;
}

/* End a transaction of the worker's own; one that wrote counts as the worker's. */
static void
end_own(WorkerState *ws, bool commit)
{
	bool		wrote = TransactionIdIsValid(GetTopTransactionIdIfAny());

	if (commit)
		CommitTransactionCommand();
	else
		AbortCurrentTransaction();
	if (wrote)
		ws->ended++;
}

/* Has the journal changed since it was last settled? */
static bool
journal_changed(WorkerState *ws)
{
	struct stat st;

	if (stat(psprintf("%s/pgtls/journal", DataDir), &st) < 0)
		return false;
	return ws->journal_unsettled || !pgtls_file_identity_same(&ws->journal_seen, &st);
}

/*
 * pgtls_maintain() in a transaction of its own, when the interval has
 * passed.  An error is logged and the next try is an interval later; the
 * other duties go on meanwhile.
 */
static void
maintain(WorkerState *ws)
{
	TimestampTz now = GetCurrentTimestamp();

	if (ws->last_maintain != 0 &&
		now < ws->last_maintain + (TimestampTz) pgtls_maintenance_interval * USECS_PER_SEC)
		return;
	ws->last_maintain = now;
	/* a commit leaves TopMemoryContext current: allocate where the tick frees */
	MemoryContextSwitchTo(ws->tick_cxt);
	PG_TRY();
	{
		StringInfoData logged;
		ListCell   *lc;

		initStringInfo(&logged);
		appendStringInfoChar(&logged, '\n');
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		foreach(lc, pgtls_maintain_run())
		{
			PgtlsAction *a = lfirst(lc);
			char	   *line = psprintf("\n%s: %s\n", a->action, a->detail);

			if (ws->maintain_logged == NULL || strstr(ws->maintain_logged, line) == NULL)
				ereport(LOG, (errmsg("pgtls_admin maintenance: %s: %s", a->action, a->detail)));
			appendStringInfoString(&logged, line + 1);
		}
		PopActiveSnapshot();
		end_own(ws, true);
		MemoryContextSwitchTo(ws->tick_cxt);
		if (ws->maintain_logged != NULL)
			pfree(ws->maintain_logged);
		ws->maintain_logged = MemoryContextStrdup(TopMemoryContext, logged.data);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(ws->tick_cxt);
		EmitErrorReport();
		FlushErrorState();
		end_own(ws, false);
		MemoryContextSwitchTo(ws->tick_cxt);
	}
	PG_END_TRY();
}

/* Read the registry's changes into the live set, and publish the heartbeat. */
static FollowResult
read_changes(WorkerState *ws)
{
	FullTransactionId next;
	uint64		ended;
	Oid			relid;

	StartTransactionCommand();
	XactIsoLevel = XACT_REPEATABLE_READ;	/* one snapshot for the changes and their xmin */
	/* read before the snapshot: what ends in between is counted, and taken for unseen */
	ended = xacts_ended();
	PushActiveSnapshot(GetTransactionSnapshot());
	if (!OidIsValid(get_extension_oid("pgtls_admin", true)))
	{
		pgtls_live_publish(PGTLS_WORKER_NO_REGISTRY, false, NULL, 0);
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(ws->tick_cxt);
		return FOLLOW_NO_REGISTRY;
	}
	/* a registry dropped and created again between two looks: load the new one whole */
	relid = pgtls_registry_relid();
	if (relid != ws->registry)
	{
		ws->registry = relid;
		ws->since = FullTransactionIdFromU64(0);
	}
	if (ws->since.value == 0)
	{
		pgtls_live_reset();
		ws->crl_rewrite = true;
		ws->crl_next_update = 0;
	}
	next = pgtls_registry_changes(ws->since, apply_change, ws);
	/* certificates that expired while in the set, every maintenance interval */
	if (GetCurrentTimestamp() - ws->last_sweep >= (TimestampTz) pgtls_maintenance_interval * USECS_PER_SEC)
	{
		ws->last_sweep = GetCurrentTimestamp();
		(void) pgtls_live_forget_expired(ws->last_sweep);
	}
	publish_ready(ws);
	{
		char	   *digest = ws->trust_digest;

		/* CAs, their states, trusted CAs or the primary's CRLs changed: write the trust files again */
		if (pgtls_trust_changed(&digest))
		{
			ws->crl_rewrite = true;
			(void) pgtls_ca_keyring_drop_retired(pgtls_registry_cas(false));
		}
	}
	PopActiveSnapshot();
	CommitTransactionCommand();
	MemoryContextSwitchTo(ws->tick_cxt);
	ws->since = next;
	ws->ended = ended;
	return FOLLOW_READ;
}

/*
 * The registry could not be read within the lock timeout: a session holds
 * a lock that keeps readers out (LOCK TABLE, ALTER TABLE, VACUUM FULL, a
 * DROP in a transaction still open).  While it holds it nobody can change
 * the registry; so if no transaction has ended since the last read (but
 * the worker's own), the live set is still exact and the heartbeat goes
 * on.  If one has, a change it committed just before the lock may be
 * unseen: the worker cannot know the set, stops the heartbeat, and
 * registry-enforced logins fail closed a minute later, until the lock
 * goes.  Logged once per change of verdict, naming the holder.
 */
static void
registry_locked(WorkerState *ws)
{
	bool		exact = ws->since.value != 0 && ws->ncas > 0 && xacts_ended() == ws->ended;
	int			state = exact ? 1 : 2;
	int			holder;

	if (exact)
		heartbeat(ws);
	if (state == ws->lock_state)
		return;
	ws->lock_state = state;
	StartTransactionCommand();
	holder = pgtls_registry_lock_holder();
	CommitTransactionCommand();
	MemoryContextSwitchTo(ws->tick_cxt);
	if (exact)
		ereport(LOG,
				(errmsg("pgtls_admin worker: the registry is locked by %s; nothing changed since it was last read, so the live set stays current",
						holder ? psprintf("process %d", holder) : "another session")));
	else
		ereport(WARNING,
				(errmsg("pgtls_admin worker cannot read the registry: %s holds a lock on it",
						holder ? psprintf("process %d", holder) : "another session"),
				 errdetail("Transactions ended since the registry was last read, so the set of live certificates may be stale: registry-enforced certificate logins fail closed from a minute after the last read until the lock is released."),
				 holder ? errhint("If that session is idle in its transaction, end it (SELECT pg_terminate_backend(%d)).", holder) : 0));
}

/* Follow the registry; a lock that keeps it from being read is not an error. */
static FollowResult
follow(WorkerState *ws)
{
	MemoryContext cxt = CurrentMemoryContext;
	volatile FollowResult result = FOLLOW_LOCKED;

	PG_TRY();
	{
		result = read_changes(ws);
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
			PG_RE_THROW();
		FlushErrorState();
		AbortCurrentTransaction();
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
	if (result == FOLLOW_LOCKED)
		registry_locked(ws);
	else if (ws->lock_state != 0)
	{
		ws->lock_state = 0;
		ereport(LOG, (errmsg("pgtls_admin worker: the registry can be read again")));
	}
	return result;
}

/* A duty failed: log it, undo its transaction. */
static void
duty_failed(WorkerState *ws, MemoryContext cxt)
{
	MemoryContextSwitchTo(cxt);
	EmitErrorReport();
	FlushErrorState();
	end_own(ws, false);
	MemoryContextSwitchTo(cxt);
}

/*
 * Settle and compact the journal, on the primary, for about
 * JOURNAL_SLICE_MS a pass: a statement that issued a hundred thousand
 * certificates is worked through over several passes, each of which also
 * follows the registry and publishes the heartbeat.  The strays go into
 * the registry, which replicates them.
 */
static void
journal_duty(WorkerState *ws)
{
	MemoryContext cxt = CurrentMemoryContext;
	TimestampTz deadline = GetCurrentTimestamp() + (TimestampTz) JOURNAL_SLICE_MS * 1000;

	if (ws->journal_work == NULL &&
		(GetCurrentTimestamp() < ws->journal_retry || !journal_changed(ws)))
		return;
	PG_TRY();
	{
		bool		done = false;

		if (ws->journal_work == NULL)
		{
			struct stat st;

			StartTransactionCommand();
			if (stat(psprintf("%s/pgtls/journal", DataDir), &st) == 0)
				pgtls_file_identity_set(&ws->journal_seen, &st);
			ws->journal_work = pgtls_journal_work_begin(TopMemoryContext);
			CommitTransactionCommand();
			ws->journal_unsettled = false;
		}
		while (ws->journal_work != NULL && !done && GetCurrentTimestamp() < deadline)
		{
			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			done = pgtls_journal_work_step(ws->journal_work, JOURNAL_CHUNK);
			PopActiveSnapshot();
			end_own(ws, true);
		}
		if (done)
		{
			int			dropped;
			bool		unsettled;
			int			settled;
			int			n = pgtls_journal_work_size(ws->journal_work);

			StartTransactionCommand();
			PushActiveSnapshot(GetTransactionSnapshot());
			settled = pgtls_journal_work_finish(ws->journal_work, &dropped, &unsettled);
			PopActiveSnapshot();
			end_own(ws, true);
			ereport(DEBUG1,
					(errmsg("pgtls_admin worker: journal of %d entries: %d settled, %d dropped%s",
							n, settled, dropped, unsettled ? ", some left for later" : "")));
			pgtls_journal_work_end(ws->journal_work);
			ws->journal_work = NULL;
			ws->journal_unsettled = unsettled;
			if (settled > 0)
				ws->crl_rewrite = true;
		}
	}
	PG_CATCH();
	{
		duty_failed(ws, cxt);
		if (ws->journal_work != NULL)
			pgtls_journal_work_end(ws->journal_work);
		ws->journal_work = NULL;
		ws->journal_unsettled = true;
		ws->journal_retry = GetCurrentTimestamp() + (TimestampTz) ERROR_PAUSE_MS * 1000;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
}

/*
 * A switch of the CA files whose transaction never committed (a crash
 * after the renames, or a commit that failed after them) left the ca-switch
 * marker: complete it now (pgtls_ca_sync), on the primary, rather than at
 * the next issuance or phase, so the registry agrees with the files the
 * server already presents.  A marker the sync leaves (the files hold
 * another CA) is not tried again until it changes.
 */
static void
ca_switch_duty(WorkerState *ws)
{
	MemoryContext cxt = CurrentMemoryContext;
	char	   *path = pgtls_ca_switch_path();
	struct stat st;

	if (stat(path, &st) < 0 || pgtls_file_identity_same(&ws->switch_seen, &st) ||
		GetCurrentTimestamp() < ws->switch_retry)
		return;
	PG_TRY();
	{
		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		pgtls_ca_lock(true);
		pgtls_ca_sync();
		PopActiveSnapshot();
		end_own(ws, true);
		MemoryContextSwitchTo(cxt);
		if (stat(path, &st) == 0)
			pgtls_file_identity_set(&ws->switch_seen, &st);
	}
	PG_CATCH();
	{
		duty_failed(ws, cxt);
		ws->switch_retry = GetCurrentTimestamp() + (TimestampTz) ERROR_PAUSE_MS * 1000;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
}

/* Rewrite the CRL when a revocation arrived or it is due. */
static void
crl_duty(WorkerState *ws)
{
	MemoryContext cxt = CurrentMemoryContext;

	/* a revocation undone, or a prepared one resolved, since the CRL was written */
	if (pgtls_live_take_crl_request())
		ws->crl_rewrite = true;
	if (!ws->crl_rewrite && pgtls_pending_aborted())
		ws->crl_rewrite = true;
	if (!(ws->crl_rewrite || pgtls_crl_resign_due(ws->crl_next_update)) ||
		GetCurrentTimestamp() < ws->crl_retry)
		return;
	PG_TRY();
	{
		int			listed;
		char	   *digest = NULL;

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		listed = pgtls_trust_publish(false, !ws->in_recovery, &digest);
		set_digest(ws, digest);
		ws->crl_next_update = pgtls_crl_next_update();
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(cxt);
		ws->crl_rewrite = false;
		ereport(DEBUG1, (errmsg("pgtls_admin: CRL rewritten, %d serials", listed)));
	}
	PG_CATCH();
	{
		duty_failed(ws, cxt);
		set_digest(ws, NULL);
		ws->crl_retry = GetCurrentTimestamp() + (TimestampTz) ERROR_PAUSE_MS * 1000;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(cxt);
}

/* One pass: follow the registry, then the other duties if it could be read. */
static void
tick(WorkerState *ws)
{
	bool		recovery = RecoveryInProgress();

	if (ws->in_recovery && !recovery)
	{
		ereport(LOG, (errmsg("pgtls_admin: promoted; reloading the registry and rewriting the CRL")));
		ws->since = FullTransactionIdFromU64(0);
		ws->last_maintain = 0;
	}
	ws->in_recovery = recovery;
	/* an entry was lost for want of room: load the set again, once a minute at most */
	if (pgtls_live_overflowed() &&
		TimestampDifferenceExceeds(ws->overflow_reload, GetCurrentTimestamp(), OVERFLOW_RELOAD_MS))
	{
		ereport(LOG, (errmsg("pgtls_admin: the set of live certificates overflowed pgtls_admin.max_certificates (%d); reloading it",
							 pgtls_max_certificates)));
		ws->overflow_reload = GetCurrentTimestamp();
		ws->since = FullTransactionIdFromU64(0);
	}

	if (follow(ws) != FOLLOW_READ)
		return;
	if (!recovery)
	{
		ca_switch_duty(ws);
		journal_duty(ws);
	}
	crl_duty(ws);
	if (!recovery)
		maintain(ws);
}

static void
wait_ms(long ms)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, ms, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
	if (ConfigReloadPending)
	{
		ConfigReloadPending = false;
		ProcessConfigFile(PGC_SIGHUP);
	}
}

void
pgtls_worker_main(Datum arg)
{
	WorkerState ws;
	Oid			dboid;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	/* wait for a registry in a database that exists */
	while (!pgtls_registry_database(&dboid) || !database_exists(dboid))
	{
		pgtls_live_publish(PGTLS_WORKER_NO_REGISTRY, false, NULL, 0);
		wait_ms(ERROR_PAUSE_MS);
	}
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	pgstat_report_appname("pgtls_admin worker");
	/* a session holding a row or a table the worker needs must not stop it */
	SetConfigOption("lock_timeout", WORKER_LOCK_TIMEOUT, PGC_SUSET, PGC_S_SESSION);

	memset(&ws, 0, sizeof(ws));
	ws.dboid = dboid;
	ws.in_recovery = RecoveryInProgress();
	ws.tick_cxt = AllocSetContextCreate(TopMemoryContext, "pgtls_admin worker",
										ALLOCSET_DEFAULT_SIZES);
	ereport(LOG, (errmsg("pgtls_admin worker following the registry in database %u", dboid)));

	for (;;)
	{
		long		pause = POLL_MS;
		Oid			now_dboid;

		/* everything a tick allocates goes when it ends (commits leave TopMemoryContext current) */
		MemoryContextSwitchTo(ws.tick_cxt);
		/* the registry moved to another database: start again there */
		if (!pgtls_registry_database(&now_dboid) || now_dboid != ws.dboid)
		{
			pgtls_live_publish(PGTLS_WORKER_STARTING, false, NULL, 0);
			proc_exit(1);
		}
		PG_TRY();
		{
			tick(&ws);
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(ws.tick_cxt);
			EmitErrorReport();
			FlushErrorState();
			AbortCurrentTransaction();
			ws.since = FullTransactionIdFromU64(0);	/* start over once it works again */
			set_digest(&ws, NULL);
			pause = ERROR_PAUSE_MS;
		}
		PG_END_TRY();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(ws.tick_cxt);
		pgstat_report_stat(true);
		wait_ms(pause);
	}
}
