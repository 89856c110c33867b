/*
 * notify.c
 *		NOTIFY pgtls_admin: a JSON payload for each certificate issued,
 *		revoked, renewed, or entering its expiry warning window.
 *
 * Helper processes (a pgbouncer that reloads its files, a client file
 * refresher, an alerting bridge) LISTEN on the channel in the registry's
 * database.  Notifications are transactional: they are delivered when the
 * transaction that issued or revoked commits, never for one that rolled
 * back.  Any role that can connect may LISTEN, so a payload carries only
 * what is not secret: the event, serial, kind, role and times, never a
 * certificate or key.
 */
#include "pgtls_ops.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/datetime.h"
#include "utils/json.h"

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

static void
notify(StringInfo buf)
{
	appendStringInfoChar(buf, '}');
	Async_Notify(PGTLS_CHANNEL, buf->data);
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
