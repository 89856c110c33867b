/*
 * maintain.c
 *		pgtls_maintain(): every upkeep that is due, done now, each said as
 *		one (action, detail) pair.  The background worker runs it every
 *		pgtls_admin.maintenance_interval on the primary; without the worker,
 *		pg_cron or a cron job calls it.
 *
 * Duties, in order:
 *   - the issuance journal: certificates whose transaction never recorded
 *     them are recorded as revoked (as the worker and pgtls_refresh_crl do);
 *   - the server certificate: when the one the server presents was issued
 *     here and expires within pgtls_admin.server_renew_before (or was
 *     revoked), a new one with the same names and key type is issued and
 *     installed through the crash-safe install (install.c), and the server
 *     reloads;
 *   - the CRL is re-signed when half of pgtls_admin.crl_validity has passed;
 *   - NOTIFY pgtls_admin for each certificate that entered its expiry
 *     warning window (once each, recorded in pgtls_expiry_warnings);
 *   - with pgtls_admin.retain_expired set, registry rows of certificates
 *     expired longer ago than that are deleted.
 * Nothing due, nothing done and nothing said: it is cheap to call often.
 * One runs at a time in the cluster (an advisory lock).
 */
#include "pgtls_ops.h"

#include <sys/stat.h>

#include "miscadmin.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

/* Advisory lock key: one pgtls_maintain() at a time: "pgtlsMNT". */
#define MAINTAIN_LOCK_KEY1 0x7067746cU
#define MAINTAIN_LOCK_KEY2 0x734d4e54U

/*
 * A revoked row is kept at least this long past its certificate's expiry,
 * so a node whose clock is behind still finds it in its CRL.
 */
#define REVOKED_RETAIN_MIN_SECONDS 86400

static void
act(List **actions, const char *action, char *detail)
{
	PgtlsAction *a = palloc(sizeof(PgtlsAction));

	a->action = pstrdup(action);
	a->detail = detail;
	*actions = lappend(*actions, a);
}

/* timestamptz_to_str() reuses one buffer: a copy, for several in one message */
static const char *
when(TimestampTz t)
{
	return pstrdup(timestamptz_to_str(t));
}

/* nextUpdate of the CRL file, or 0 when it cannot be read. */
TimestampTz
pgtls_crl_next_update(void)
{
	X509_CRL   *crl = pgtls_crl_file_read();

	if (crl == NULL || X509_CRL_get0_nextUpdate(crl) == NULL)
		return 0;
	return pgtls_asn1_time_to_timestamptz(X509_CRL_get0_nextUpdate(crl));
}

/*
 * Is a CRL whose nextUpdate is next_update (0: no readable CRL) due for
 * re-signing?  Before half of its validity has passed (never when the
 * validity is 0: the CA's expiry), and at once when the validity was
 * shortened below what the CRL has left.
 */
bool
pgtls_crl_resign_due(TimestampTz next_update)
{
	TimestampTz left;

	if (next_update == 0)
		return true;
	if (pgtls_crl_validity <= 0)
		return false;
	left = next_update - GetCurrentTimestamp();
	return left < (TimestampTz) pgtls_crl_validity * USECS_PER_SEC / 2 ||
		left > (TimestampTz) pgtls_crl_validity * USECS_PER_SEC;
}

/* The certificate the server presents (the first of ssl_cert_file), or NULL. */
static X509 *
served_certificate(void)
{
	const char *file = GetConfigOption("ssl_cert_file", false, false);
	PgtlsFileRead f;
	List	   *certs;

	if (!EnableSSL || file == NULL || file[0] == '\0' ||
		!pgtls_try_read_file(pgtls_resolve_path(file), false, &f))
		return NULL;
	certs = pgtls_read_cert_list(f.data, (int) f.len);
	return certs != NIL ? linitial(certs) : NULL;
}

/*
 * Renew and install the served certificate when it is due.  Returns the
 * serial the server presents afterwards (NULL: none), which tidying keeps.
 */
static char *
renew_served(List **actions)
{
	X509	   *leaf = served_certificate();
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz renew_from;
	TimestampTz not_after;
	TimestampTz renewed_until;
	PgtlsRegistryRow row;
	PgtlsLifetime lifetime;
	PgtlsIssued issued;
	PgtlsCA		ca;
	char	   *serial;
	char	   *new_serial;

	if (leaf == NULL)
		return NULL;
	serial = pgtls_serial_hex(X509_get0_serialNumber(leaf));
	not_after = pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(leaf));
	renew_from = not_after - (TimestampTz) pgtls_server_renew_before * USECS_PER_SEC;
	if (!pgtls_registry_lookup(serial, &row) || strcmp(row.kind, "server") != 0)
	{
		if (now >= renew_from)
			act(actions, "server_not_renewed",
				psprintf("the server certificate %s expires at %s, but it was not issued here: renew it where it was issued, or replace it with pgtls_enable_ssl()",
						 serial, when(not_after)));
		return serial;
	}
	if (!row.revoked && now < renew_from)
		return serial;

	/* a renewal that is due again at once would only repeat every interval */
	pgtls_ca_load_cert(&ca);
	lifetime = pgtls_lifetime_days(pgtls_validity_days(0, true));
	renewed_until = Min(now + lifetime.seconds * USECS_PER_SEC,
						pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(ca.cert)));
	if (!row.revoked && renewed_until - (TimestampTz) pgtls_server_renew_before * USECS_PER_SEC <= now)
	{
		act(actions, "server_not_renewed",
			psprintf("the server certificate %s expires at %s, and a renewed one would expire at %s, also within pgtls_admin.server_renew_before: %s",
					 serial, when(not_after), when(renewed_until),
					 renewed_until < now + lifetime.seconds * USECS_PER_SEC ?
					 "the CA expires then; replace the CA" :
					 "raise pgtls_admin.default_days or lower pgtls_admin.server_renew_before"));
		return serial;
	}

	pgtls_renew_server(serial, &row, lifetime, &issued);
	(void) pgtls_install_server(issued.cert, NULL, issued.key, &issued.ca);
	new_serial = pgtls_serial_hex(X509_get0_serialNumber(issued.cert));
	act(actions, "server_renewed",
		psprintf("the server certificate %s (%s %s) was replaced by %s, valid until %s, with the same names; the server reloaded",
				 serial, row.revoked ? "revoked, expiring" : "expiring", when(not_after), new_serial,
				 when(pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(issued.cert)))));
	return new_serial;
}

static void
resign_crl(List **actions)
{
	int			listed;

	if (!pgtls_crl_resign_due(pgtls_crl_next_update()))
		return;
	listed = pgtls_crl_publish(false);
	act(actions, "crl_resigned",
		psprintf("the CRL was signed again with %d serial%s, next update %s", listed,
				 listed == 1 ? "" : "s",
				 pgtls_crl_validity > 0 ? when(pgtls_crl_next_update()) : "at the CA's expiry"));
}

static void
warn_expiring(List **actions)
{
	ListCell   *lc;

	if (pgtls_expiry_warning_days <= 0)
		return;
	foreach(lc, pgtls_registry_expiry_due(pgtls_expiry_warning_days))
	{
		PgtlsExpiring *e = lfirst(lc);

		pgtls_notify_expiring(e);
		act(actions, "expiry_warning",
			e->role != NULL ?
			psprintf("the %s certificate %s of role \"%s\" expires at %s", e->kind, e->serial, e->role,
					 when(e->not_after)) :
			psprintf("the %s certificate %s expires at %s", e->kind, e->serial, when(e->not_after)));
	}
}

static void
tidy(List **actions, const char *keep)
{
	int			deleted;

	if (pgtls_retain_expired < 0)
		return;
	deleted = pgtls_registry_tidy(pgtls_retain_expired,
								  Max(pgtls_retain_expired, REVOKED_RETAIN_MIN_SECONDS), keep);
	if (deleted > 0)
		act(actions, "tidied",
			psprintf("deleted %d registry row%s of certificates expired for longer than pgtls_admin.retain_expired (%d s)",
					 deleted, deleted == 1 ? "" : "s", pgtls_retain_expired));
}

/*
 * Do every upkeep that is due, on the primary, as a superuser (the caller
 * checks both).  Returns the PgtlsActions done, in order; NIL when nothing
 * was due.
 */
List *
pgtls_maintain_run(void)
{
	List	   *actions = NIL;
	char	   *served = NULL;
	struct stat st;
	int			settled;

	pgtls_lock(MAINTAIN_LOCK_KEY1, MAINTAIN_LOCK_KEY2, "pgtls_maintain()");
	settled = pgtls_settle_journal();
	if (settled > 0)
		act(&actions, "journal_settled",
			psprintf("recorded %d certificate%s whose issuing transaction did not commit, as revoked",
					 settled, settled == 1 ? "" : "s"));
	(void) pgtls_compact_journal();
	/* without a CA nothing here signs: no server certificate or CRL of ours */
	if (stat(pgtls_resolve_path(pgtls_ca_cert_file), &st) == 0)
	{
		served = renew_served(&actions);
		resign_crl(&actions);
	}
	warn_expiring(&actions);
	tidy(&actions, served);
	return actions;
}
