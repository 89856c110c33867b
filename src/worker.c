/*
 * worker.c
 *		The background worker: one per node (primary and standbys), with the
 *		library in shared_preload_libraries.
 *
 * Every second it reads the registry's changes since its last look (on a
 * standby, as they are replayed) and
 *   - keeps the shared set of live client certificates (live.c) equal to
 *     the registry, and publishes the CAs' identities and a heartbeat for
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
 *     the journal.
 * An error (a CA that cannot sign, say) is logged and retried after a
 * pause: the worker never crash-loops, and while it cannot confirm the
 * registry its heartbeat ages, so registry-enforced logins fail closed.
 */
#include "pgtls_ops.h"

#include <glob.h>
#include <sys/stat.h>

#include <openssl/pem.h>

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
	MemoryContext tick_cxt;
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
	pgtls_live_set(change->serial, !change->revoked && change->not_after > GetCurrentTimestamp(),
				   change->role_oid, change->not_after);
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

/* nextUpdate of the CRL file, or 0 when it cannot be read. */
static TimestampTz
crl_next_update(void)
{
	PgtlsFileRead f;
	BIO		   *bio;
	X509_CRL   *crl;
	TimestampTz next = 0;

	if (!pgtls_try_read_file(pgtls_resolve_path(pgtls_crl_file), false, &f))
		return 0;
	bio = pgtls_mem_bio(f.data, (int) f.len);
	crl = pgtls_own_crl(PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL));
	pgtls_ossl_clear();
	if (crl != NULL && X509_CRL_get0_nextUpdate(crl) != NULL)
		next = pgtls_asn1_time_to_timestamptz(X509_CRL_get0_nextUpdate(crl));
	return next;
}

/*
 * Re-sign before half of the validity has passed (never when it is 0: the
 * CA's expiry), and at once when the validity was shortened below what the
 * CRL has left.
 */
static bool
crl_due(WorkerState *ws)
{
	TimestampTz left;

	if (ws->crl_next_update == 0)
		return true;
	if (pgtls_crl_validity <= 0)
		return false;
	left = ws->crl_next_update - GetCurrentTimestamp();
	return left < (TimestampTz) pgtls_crl_validity * USECS_PER_SEC / 2 ||
		left > (TimestampTz) pgtls_crl_validity * USECS_PER_SEC;
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
	}
	ws->in_recovery = recovery;

	StartTransactionCommand();
	XactIsoLevel = XACT_REPEATABLE_READ;	/* one snapshot for the changes and their xmin */
	PushActiveSnapshot(GetTransactionSnapshot());
	if (!OidIsValid(get_extension_oid("pgtls_admin", true)))
	{
		pgtls_live_publish(PGTLS_WORKER_NO_REGISTRY, false, NULL, 0);
		PopActiveSnapshot();
		CommitTransactionCommand();
		return;
	}
	if (ws->since.value == 0)
	{
		pgtls_live_reset();
		ws->crl_rewrite = true;
		ws->crl_next_update = 0;
	}
	next = pgtls_registry_changes(ws->since, apply_change, ws);
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

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		ws->journal_unsettled = pgtls_compact_journal() < 0 || pgtls_journal_read() != NIL;
		PopActiveSnapshot();
		CommitTransactionCommand();
	}

	if (ws->crl_rewrite || crl_due(ws))
	{
		int			listed;

		char	   *digest = NULL;

		StartTransactionCommand();
		PushActiveSnapshot(GetTransactionSnapshot());
		listed = pgtls_trust_publish(false, !recovery, &digest);
		set_digest(ws, digest);
		ws->crl_next_update = crl_next_update();
		PopActiveSnapshot();
		CommitTransactionCommand();
		ws->crl_rewrite = false;
		ereport(DEBUG1, (errmsg("pgtls_admin: CRL rewritten, %d serials", listed)));
	}
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

		/* the registry moved to another database: start again there */
		if (!pgtls_registry_database(&now_dboid) || now_dboid != ws.dboid)
		{
			pgtls_live_publish(PGTLS_WORKER_STARTING, false, NULL, 0);
			proc_exit(1);
		}
		MemoryContextSwitchTo(ws.tick_cxt);
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
