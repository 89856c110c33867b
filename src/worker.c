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
 *   - on the primary, records in the registry the certificates of the
 *     issuance journal whose transaction never committed, and compacts
 *     the journal;
 *   - on the primary, runs pgtls_maintain() (maintain.c) every
 *     pgtls_admin.maintenance_interval and at promotion, logging one line
 *     per action (a line it logged on the previous run is not repeated);
 *     its errors are logged and it tries again an interval later.
 * An error (a CA that cannot sign, say) is logged and retried after a
 * pause: the worker never crash-loops, and while it cannot confirm the
 * registry its heartbeat ages, so registry-enforced logins fail closed.
 */
#include "pgtls_ops.h"

#include <glob.h>
#include <sys/stat.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
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

typedef struct WorkerState
{
	Oid			dboid;
	FullTransactionId since;	/* changes from here on are unseen; 0: load everything */
	bool		in_recovery;
	bool		crl_rewrite;	/* a revocation arrived, or start / promotion */
	TimestampTz crl_next_update;	/* of the CRL we last wrote; 0 unknown */
	PgtlsFileIdentity journal_seen;
	bool		journal_unsettled;
	char	   *trust_digest;	/* what the trust files were last written from (malloc'd) */
	TimestampTz last_maintain;	/* 0: never, run at once */
	TimestampTz last_sweep;		/* expired certificates last dropped from the live set */
	char	   *maintain_logged;	/* the lines the last run logged (TopMemoryContext) */
	MemoryContext tick_cxt;
	TimestampTz overflow_reload;	/* when an overflowed set was last reloaded */
} WorkerState;

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

/* The CAs certificates of ours name as issuer: every CA the server trusts of ours. */
static void
publish_ready(void)
{
	PgtlsCAIdentity ids[8];

	pgtls_live_publish(PGTLS_WORKER_READY, true, ids, pgtls_trust_identities(ids, lengthof(ids)));
}

/* Remember the digest the trust files were written from. */
static void
set_digest(WorkerState *ws, const char *digest)
{
	free(ws->trust_digest);
	ws->trust_digest = digest ? strdup(digest) : NULL;
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
		CommitTransactionCommand();
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
		AbortCurrentTransaction();
		MemoryContextSwitchTo(ws->tick_cxt);
	}
	PG_END_TRY();
}

/* One look at the registry; runs in a transaction of its own. */
static void
tick(WorkerState *ws)
{
	bool		recovery = RecoveryInProgress();
	FullTransactionId next;

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

	StartTransactionCommand();
	XactIsoLevel = XACT_REPEATABLE_READ;	/* one snapshot for the changes and their xmin */
	PushActiveSnapshot(GetTransactionSnapshot());
	if (!OidIsValid(get_extension_oid("pgtls_admin", true)))
	{
		pgtls_live_publish(PGTLS_WORKER_NO_REGISTRY, false, NULL, 0);
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(ws->tick_cxt);
		return;
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
	publish_ready();
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

	/* the journal's strays go into the registry, which replicates them */
	if (!recovery && journal_changed(ws))
	{
		struct stat st;

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		if (stat(psprintf("%s/pgtls/journal", DataDir), &st) == 0)
			pgtls_file_identity_set(&ws->journal_seen, &st);
		if (pgtls_settle_journal() > 0)
			ws->crl_rewrite = true;
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(ws->tick_cxt);

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		ws->journal_unsettled = pgtls_compact_journal() < 0 || pgtls_journal_read() != NIL;
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(ws->tick_cxt);
	}

	/* a revocation undone, or a prepared one resolved, since the CRL was written */
	if (pgtls_live_take_crl_request())
		ws->crl_rewrite = true;
	if (!ws->crl_rewrite && pgtls_pending_aborted())
		ws->crl_rewrite = true;
	if (ws->crl_rewrite || pgtls_crl_resign_due(ws->crl_next_update))
	{
		int			listed;
		char	   *digest = NULL;

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		listed = pgtls_trust_publish(false, !recovery, &digest);
		set_digest(ws, digest);
		ws->crl_next_update = pgtls_crl_next_update();
		PopActiveSnapshot();
		CommitTransactionCommand();
		MemoryContextSwitchTo(ws->tick_cxt);
		ws->crl_rewrite = false;
		ereport(DEBUG1, (errmsg("pgtls_admin: CRL rewritten, %d serials", listed)));
	}
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
