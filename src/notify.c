/*
 * notify.c
 *		NOTIFY pgtls_admin: a JSON payload for each certificate issued,
 *		revoked, renewed, or entering its expiry warning window.
 *
 * Helper processes (a pgbouncer that reloads its files, a client file
 * refresher, an alerting bridge) LISTEN on the channel in the registry's
 * database.  Notifications are transactional: they are delivered when the
 * transaction that issued or revoked commits, never for one that rolled
 * back (nor for a rolled-back subtransaction's events).  They are queued
 * here and handed to NOTIFY just before commit, not when the event
 * happens: a transaction that ran NOTIFY could not be prepared, and one
 * that issues or revokes may be; a prepared transaction's events send no
 * notification.  Any role that can connect may LISTEN, so a payload carries
 * only what is not secret: the event, serial, kind, role and times, never a
 * certificate or key.
 */
#include "pgtls_ops.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/datetime.h"
#include "utils/json.h"
#include "utils/memutils.h"

#define PGTLS_CHANNEL "pgtls_admin"

static void
add_string(StringInfo buf, const char *key, const char *value)
{
	appendStringInfo(buf, ",\"%s\":", key);
	if (value == NULL)
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, value);
}

static void
add_time(StringInfo buf, const char *key, TimestampTz t)
{
	static const int utc = 0;
	char		iso[MAXDATELEN + 1];

	appendStringInfo(buf, ",\"%s\":\"%s\"", key,
					 JsonEncodeDateTime(iso, TimestampTzGetDatum(t), TIMESTAMPTZOID, &utc));
}

/* {"event":event,"serial":serial,"kind":kind,"role":role ...} without the closing brace. */
static StringInfo
payload(const char *event, const char *serial, const char *kind, const char *role)
{
	StringInfo	buf = makeStringInfo();

	appendStringInfoString(buf, "{\"event\":");
	escape_json(buf, event);
	add_string(buf, "serial", serial);
	add_string(buf, "kind", kind);
	add_string(buf, "role", role);
	return buf;
}

/* A payload waiting for its transaction to commit (TopMemoryContext). */
typedef struct Queued
{
	char	   *payload;
	int			nest;			/* transaction nest level of the event */
} Queued;

static List *queued = NIL;
static bool callbacks_registered = false;

static void
drop_queued(void)
{
	list_free_deep(queued);		/* each Queued and its payload were one allocation */
	queued = NIL;
}

static void
notify_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event == XACT_EVENT_PRE_COMMIT)
	{
		foreach(lc, queued)
			Async_Notify(PGTLS_CHANNEL, ((Queued *) lfirst(lc))->payload);
		drop_queued();
	}
	else if (event == XACT_EVENT_PRE_PREPARE || event == XACT_EVENT_ABORT ||
			 event == XACT_EVENT_PARALLEL_ABORT)
		drop_queued();
}

static void
notify_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	queued = pgtls_follow_subxact(queued, event, offsetof(Queued, nest), pfree);	/* payload in the chunk */
}

static void
notify(StringInfo buf)
{
	MemoryContext old;
	Queued	   *q;

	appendStringInfoChar(buf, '}');
	if (!callbacks_registered)
	{
		RegisterXactCallback(notify_xact_callback, NULL);
		RegisterSubXactCallback(notify_subxact_callback, NULL);
		callbacks_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	q = palloc(sizeof(Queued) + buf->len + 1);
	q->payload = (char *) q + sizeof(Queued);
	memcpy(q->payload, buf->data, buf->len + 1);
	q->nest = GetCurrentTransactionNestLevel();
	queued = lappend(queued, q);
	MemoryContextSwitchTo(old);
}

void
pgtls_notify_issued(X509 *cert, const char *kind, const char *role)
{
	StringInfo	buf = payload("issued", pgtls_serial_hex(X509_get0_serialNumber(cert)), kind, role);

	add_time(buf, "not_after", pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(cert)));
	notify(buf);
}

void
pgtls_notify_renewed(X509 *cert, const char *previous, const char *kind, const char *role)
{
	StringInfo	buf = payload("renewed", pgtls_serial_hex(X509_get0_serialNumber(cert)), kind, role);

	add_string(buf, "previous", previous);
	add_time(buf, "not_after", pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(cert)));
	notify(buf);
}

/* kind and role NULL for a serial nothing here records */
void
pgtls_notify_revoked(const char *serial, const char *kind, const char *role, const char *reason)
{
	StringInfo	buf = payload("revoked", serial, kind, role);

	add_string(buf, "reason", reason);
	notify(buf);
}

void
pgtls_notify_expiring(const PgtlsExpiring *e)
{
	StringInfo	buf = payload("expiring", e->serial, e->kind, e->role);

	add_time(buf, "not_after", e->not_after);
	notify(buf);
}
