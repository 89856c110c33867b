/*
 * sessions.c
 *		The sessions of this node that logged in with a client certificate
 *		(the view pgtls_sessions), and ending those of a revoked one.
 *
 * A backend's TLS client certificate serial is in its status entry (what
 * pg_stat_ssl shows, in decimal); it is turned into the registry's hex
 * spelling here.  pgtls_revoke(..., terminate => true) asks for the sessions
 * of a serial to end when its transaction commits: just before the commit
 * the status entries are read afresh and the matching backends chosen (never
 * this one; a superuser's only when a superuser revokes), and once the
 * revocation is committed they get SIGTERM, as pg_terminate_backend() sends
 * it.  A revocation that rolls back, whole or to a savepoint, ends nothing.
 * New logins with the certificate are refused by then: the CRL the server
 * reloaded lists it from the moment pgtls_revoke returned.
 */
#include "pgtls_ops.h"

#include <signal.h>

#include <openssl/bn.h>

#include "access/subtrans.h"
#include "access/xact.h"
#include "catalog/pg_authid.h"
#include "miscadmin.h"
#include "storage/procarray.h"
#include "utils/acl.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"

/* A serial whose sessions end at commit, asked for at transaction nest level nest. */
typedef struct EndRequest
{
	char	   *serial;
	int			nest;
	bool		by_superuser;
} EndRequest;

static List *requests = NIL;	/* EndRequest *, in TopMemoryContext */
static int *doomed = NULL;		/* pids chosen just before commit */
static int	ndoomed = 0;
static bool callbacks_registered = false;

/* A decimal serial as pg_stat_ssl shows it, in the registry's hex; NULL if it is not one. */
static char *
serial_of_decimal(const char *decimal)
{
	BIGNUM	   *bn = NULL;
	ASN1_INTEGER *serial;

	if (BN_dec2bn(&bn, decimal) == 0 || bn == NULL)
	{
		BN_free(bn);
		pgtls_ossl_clear();
		return NULL;
	}
	pgtls_own_bn(bn);
	serial = pgtls_own_asn1_integer(BN_to_ASN1_INTEGER(bn, NULL));
	if (serial == NULL)
	{
		pgtls_ossl_clear();
		return NULL;
	}
	return pgtls_serial_hex(serial);
}

/*
 * Every backend of this node with a TLS client certificate, as
 * PgtlsSessionCerts.  fresh: read the status entries again rather than
 * this transaction's snapshot of them (what pg_stat_activity showed).
 */
List *
pgtls_session_certs(bool fresh)
{
	List	   *result = NIL;
	int			n;

	if (fresh)
		pgstat_clear_backend_activity_snapshot();
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *local = pgstat_fetch_stat_local_beentry(i);
		PgBackendStatus *be;
		PgtlsSessionCert *s;
		char	   *serial;

		if (local == NULL)
			continue;
		be = &local->backendStatus;
		if (be->st_procpid <= 0 || !be->st_ssl || be->st_sslstatus == NULL ||
			be->st_sslstatus->ssl_client_serial[0] == '\0')
			continue;
		serial = serial_of_decimal(be->st_sslstatus->ssl_client_serial);
		if (serial == NULL)
			continue;
		s = palloc(sizeof(PgtlsSessionCert));
		s->pid = be->st_procpid;
		s->userid = be->st_userid;
		s->serial = serial;
		result = lappend(result, s);
	}
	return result;
}

/* SIGTERM to a backend's process group, as pg_terminate_backend() sends it. */
static void
terminate(int pid)
{
#ifdef HAVE_SETSID
	(void) kill(-pid, SIGTERM);
#else
	(void) kill(pid, SIGTERM);
#endif
}

/*
 * The transaction xid holds serial's registry row and runs in a session
 * that logged in with that very certificate: a renewal of it
 * (pgtls_renew_self locks the row until its transaction ends).  End that
 * session now, so a revocation does not wait for the certificate's holder
 * to let it happen; its renewal rolls back.  Returns whether one was
 * signalled.  A superuser's session is left to a superuser.
 */
bool
pgtls_sessions_end_holder(const char *serial, TransactionId xid)
{
	ListCell   *lc;
	int			pid;

	if (!TransactionIdIsValid(xid) || TransactionIdIsCurrentTransactionId(xid) ||
		!TransactionIdIsInProgress(xid))
		return false;
	pid = BackendXidGetPid(SubTransGetTopmostTransaction(xid));
	if (pid == 0 || pid == MyProcPid)
		return false;
	foreach(lc, pgtls_session_certs(true))
	{
		PgtlsSessionCert *s = lfirst(lc);

		if (s->pid != pid || strcmp(s->serial, serial) != 0)
			continue;
		if (!superuser() && superuser_arg(s->userid))
			return false;
		ereport(NOTICE,
				(errmsg("ending session %d, which logged in with certificate %s and is renewing it", pid, serial),
				 errdetail("Its transaction holds the certificate's registry row; its renewal is rolled back.")));
		ereport(LOG,
				(errmsg("pgtls_admin: ending session %d, which logged in with revoked certificate %s and holds its registry row",
						pid, serial)));
		terminate(pid);
		return true;
	}
	return false;
}

static void
forget(void)
{
	list_free_deep(requests);
	requests = NIL;
	if (doomed != NULL)
		pfree(doomed);
	doomed = NULL;
	ndoomed = 0;
}

/* Just before commit: which backends logged in with the serials asked for. */
static void
choose(void)
{
	List	   *sessions = pgtls_session_certs(true);
	ListCell   *lc;

	doomed = MemoryContextAlloc(TopMemoryContext, sizeof(int) * Max(list_length(sessions), 1));
	foreach(lc, requests)
	{
		EndRequest *r = lfirst(lc);
		ListCell   *lc2;
		int			chosen = 0;

		foreach(lc2, sessions)
		{
			PgtlsSessionCert *s = lfirst(lc2);
			bool		already = false;

			if (s->pid == MyProcPid || strcmp(s->serial, r->serial) != 0)
				continue;
			if (!r->by_superuser && superuser_arg(s->userid))
			{
				/* the revoker hears of it; the worker, which may look again every second, does not repeat it */
				if (MyBackendType == B_BG_WORKER)
					continue;
				ereport(WARNING,
						(errmsg("session %d logged in with certificate %s as a superuser and stays open", s->pid,
								r->serial),
						 errhint("A superuser can end it: SELECT pg_terminate_backend(%d);", s->pid)));
				continue;
			}
			for (int i = 0; i < ndoomed; i++)
				already |= doomed[i] == s->pid;
			if (!already)
				doomed[ndoomed++] = s->pid;
			chosen++;
			ereport(LOG,
					(errmsg("pgtls_admin: ending session %d, which logged in with revoked certificate %s",
							s->pid, r->serial)));
		}
		if (chosen > 0)
			ereport(NOTICE,
					(errmsg("ending %d session%s that logged in with certificate %s", chosen,
							chosen == 1 ? "" : "s", r->serial)));
	}
}

/* Once committed: SIGTERM, to the process group as pg_terminate_backend() sends it. */
static void
end_chosen(void)
{
	for (int i = 0; i < ndoomed; i++)
	{
		if (BackendPidGetProc(doomed[i]) == NULL)
			continue;			/* it ended meanwhile */
		terminate(doomed[i]);
	}
}

static void
xact_callback(XactEvent event, void *arg)
{
	if (requests == NIL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
			choose();
			break;
		case XACT_EVENT_COMMIT:
			end_chosen();
			forget();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_ABORT:
			forget();
			break;
		default:
			break;
	}
}

static void
drop_request(void *item)
{
	EndRequest *r = item;

	pfree(r->serial);
	pfree(r);
}

static void
subxact_callback(SubXactEvent event, SubTransactionId mySubid, SubTransactionId parentSubid,
				 void *arg)
{
	requests = pgtls_follow_subxact(requests, event, offsetof(EndRequest, nest), drop_request);
}

/*
 * End the sessions of this node that logged in with serial once this
 * transaction commits; superusers' too only if superusers_too.  The caller
 * may revoke the certificate.
 */
void
pgtls_sessions_end_at_commit(const char *serial, bool superusers_too)
{
	MemoryContext old;
	EndRequest *r;

	if (!callbacks_registered)
	{
		RegisterXactCallback(xact_callback, NULL);
		RegisterSubXactCallback(subxact_callback, NULL);
		callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	r = palloc(sizeof(EndRequest));
	r->serial = pstrdup(serial);
	r->nest = GetCurrentTransactionNestLevel();
	r->by_superuser = superusers_too;
	requests = lappend(requests, r);
	MemoryContextSwitchTo(old);
}
