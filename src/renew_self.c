/*
 * renew_self.c
 *		pgtls_renew_self(): a client renews the certificate it logged in
 *		with, over that login, for a key that stays on the client.
 *
 * The function is granted to PUBLIC, so everything rests on the connection,
 * never on an argument:
 *   - it is TLS, with a client certificate the server verified in the
 *     handshake (which proves the client holds that certificate's key);
 *   - the login used that certificate: method cert, or a clientcert option
 *     on its pg_hba.conf line, as a ClientAuthentication_hook records where
 *     the library is preloaded; without preloading, the identity the server
 *     authenticated must be the certificate's CN or DN;
 *   - the certificate is a live registry entry of kind client for
 *     session_user: its serial (read from the connection), its SHA-256
 *     fingerprint, not revoked, not expired, issued for session_user's OID.
 * Anything else is 42501, and so is a call from code that runs with other
 * rights than the session's own: a SECURITY DEFINER function, or a
 * restricted operation such as REFRESH MATERIALIZED VIEW or an index
 * expression, which would otherwise get a certificate for whoever ran them
 * with a key of the code owner's choosing.  The old certificate's row is
 * locked, so no revocation of it commits while it is renewed, and one
 * committed after this transaction's snapshot fails it (40001).  Holding
 * that lock cannot stop a revocation: pgtls_revoke ends the session that
 * holds it (sessions.c), since only a login with that certificate can.  The new
 * certificate keeps the old one's subject;
 * the request's CN must be session_user, and its lifetime is at most the
 * old one's.  A role holds at most pgtls_admin.max_self_renewed live
 * certificates it renewed itself, so a stolen certificate cannot flood the
 * registry: a lock per role serialises its renewals until each transaction
 * ends, and the count includes this transaction's own.
 */
#include "pgtls_ops.h"

#include "access/xact.h"
#include "libpq/auth.h"
#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

static ClientAuthentication_hook_type prev_client_auth = NULL;

/* This transaction renewed: it must not be prepared (see no_prepare). */
static bool renewed_in_xact = false;
static bool xact_callback_registered = false;

/*
 * A renewal holds the old certificate's row until its transaction ends; a
 * prepared transaction has no session that pgtls_revoke could end, so it
 * would stall every revocation of that certificate until someone ended it
 * by hand.  PREPARE TRANSACTION is refused, as for temporary tables.
 */
static void
no_prepare(XactEvent event, void *arg)
{
	if (!renewed_in_xact)
		return;
	if (event == XACT_EVENT_PRE_PREPARE)
	{
		renewed_in_xact = false;
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot PREPARE a transaction that has called pgtls_renew_self()"),
				 errdetail("Its lock on the renewed certificate's registry row would outlive every session, and stop revocations of that certificate.")));
	}
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
		event == XACT_EVENT_PREPARE)
		renewed_in_xact = false;
}

/* This backend's login, as the hook saw it (preloaded only). */
static bool login_seen = false;
static bool login_used_certificate = false;

static void
note_login(Port *port, int status)
{
	if (prev_client_auth)
		prev_client_auth(port, status);
	if (status != STATUS_OK || port->hba == NULL)
		return;
	login_seen = true;
	login_used_certificate = port->hba->auth_method == uaCert ||
		port->hba->clientcert != clientCertOff;
}

/* From _PG_init while preloading: remember how each login authenticated. */
void
pgtls_renew_self_install_hook(void)
{
	prev_client_auth = ClientAuthentication_hook;
	ClientAuthentication_hook = note_login;
}

/* advisory lock (key1, role OID): one role's self-renewals, one at a time */
#define SELF_RENEW_LOCK_KEY1 0x70675352U

#define HINT_CONNECT "Connect over TLS (sslmode=verify-full) with sslcert and sslkey of the certificate to renew, to a hostssl line with method cert, as the role it was issued for."
#define HINT_NEW "Only a live certificate issued here for the role that logs in renews itself; ask an administrator for a new one."

static void refuse(const char *detail, const char *hint) pg_attribute_noreturn();

static void
refuse(const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("pgtls_renew_self() renews only the live certificate this session logged in with"),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
}

/*
 * Is this the session's own code?  Not inside a SECURITY DEFINER function
 * (whatever its owner) or a restricted operation: those run someone else's
 * code with rights the session did not give it.
 */
static void
require_own_rights(Oid session_oid)
{
	Oid			userid;
	int			sec;

	GetUserIdAndSecContext(&userid, &sec);
	if (userid != session_oid || InSecurityRestrictedOperation() ||
		(sec & (SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("pgtls_renew_self() must be called by the session's own role, directly"),
				 errdetail("It is called inside a SECURITY DEFINER function, a restricted operation, or after SET ROLE (current user \"%s\", session user \"%s\").",
						   GetUserNameFromId(userid, false), GetUserNameFromId(session_oid, false)),
				 errhint("Call it in a statement of the session's own, with no SET ROLE.")));
}

/* Did this session log in with the client certificate it presented? */
static void
require_certificate_login(Port *port)
{
	if (port == NULL || !port->ssl_in_use)
		refuse("This session is not a TLS connection.", HINT_CONNECT);
	if (port->peer == NULL || !port->peer_cert_valid)
		refuse("This session presented no client certificate that the server verified.", HINT_CONNECT);
	if (login_seen)
	{
		if (!login_used_certificate)
			refuse("This session presented a client certificate but logged in with another method (its pg_hba.conf line has neither method cert nor a clientcert option).",
				   HINT_CONNECT);
		return;
	}
	if (port->authn_id == NULL ||
		((port->peer_cn == NULL || strcmp(port->authn_id, port->peer_cn) != 0) &&
		 (port->peer_dn == NULL || strcmp(port->authn_id, port->peer_dn) != 0)))
		refuse("This session presented a client certificate but did not log in as the identity it names.",
			   HINT_CONNECT);
}

/*
 * The registry row of the session's certificate, which must be a live
 * client certificate of session_user; its serial into serial.
 */
static void
session_certificate(Port *port, Oid session_oid, const char *session_name,
					PgtlsRegistryRow *row, char **serial)
{
	*serial = pgtls_serial_hex(X509_get0_serialNumber(port->peer));
	if (!pgtls_registry_lookup_locked(*serial, row) || strcmp(row->kind, "client") != 0 ||
		strcmp(row->fingerprint, pgtls_fingerprint_sha256(port->peer)) != 0)
		refuse(psprintf("The certificate this session logged in with (serial %s) is not a client certificate issued here.",
						*serial), HINT_NEW);
	if (row->revoked)
		refuse(psprintf("The certificate this session logged in with (serial %s) is revoked.", *serial), HINT_NEW);
	if (row->not_after <= GetCurrentTimestamp())
		refuse(psprintf("The certificate this session logged in with (serial %s) has expired.", *serial), HINT_NEW);
	if (row->role_oid != session_oid)
		refuse(psprintf("The certificate this session logged in with (serial %s) was issued for role \"%s\", not for session_user \"%s\".",
						*serial, row->role ? row->role : "", session_name), HINT_NEW);
	if (!pgtls_role_can_login(session_oid))
		refuse(psprintf("Role \"%s\" no longer has LOGIN.", session_name), HINT_NEW);
}

/* seconds as an interval reads, such as 01:00:00 or 1 day */
static char *
interval_text(int64 seconds)
{
	Interval	span;

	memset(&span, 0, sizeof(span));
	span.time = seconds * USECS_PER_SEC;
	return DatumGetCString(DirectFunctionCall1(interval_out,
											   DirectFunctionCall1(interval_justify_hours,
																   IntervalPGetDatum(&span))));
}

/*
 * The new certificate's lifetime: the requested one, or the old
 * certificate's, and never longer than that.
 */
static PgtlsLifetime
renewal_lifetime(const PgtlsRegistryRow *row, const Interval *requested)
{
	PgtlsLifetime old;
	PgtlsLifetime lifetime;

	old.seconds = (row->not_after - row->not_before) / USECS_PER_SEC - PGTLS_CLOCK_SKEW_SECONDS;
	old.seconds = Min(Max(old.seconds, PGTLS_MIN_LIFETIME_SECONDS), (int64) pgtls_max_days * SECS_PER_DAY);
	if (requested == NULL)
		return old;
	lifetime = pgtls_validity(0, true, requested);
	if (lifetime.seconds > old.seconds)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lifetime must not be longer than that of the certificate being renewed (%s)",
						interval_text(old.seconds)),
				 errhint("Leave lifetime out to renew for as long as before, or ask an administrator for a longer certificate.")));
	return lifetime;
}

/*
 * Renew the certificate the session logged in with, for the request's key.
 * With revoke_previous, that certificate is revoked (superseded); this
 * session and others logged in with it stay open.
 */
void
pgtls_renew_self_cert(const char *csr, int csr_len, const Interval *lifetime,
					  bool revoke_previous, PgtlsIssued *out)
{
	Oid			session_oid = GetSessionUserId();
	char	   *session_name = GetUserNameFromId(session_oid, false);
	PgtlsRegistryRow row;
	PgtlsLifetime validity;
	char	   *serial;
	int			held;

	require_own_rights(session_oid);
	pgtls_require_primary("renew certificates");
	require_certificate_login(MyProcPort);
	if (!xact_callback_registered)
	{
		RegisterXactCallback(no_prepare, NULL);
		xact_callback_registered = true;
	}
	renewed_in_xact = true;
	/* one renewal of the role at a time, so at most one locks a registry row */
	pgtls_lock(SELF_RENEW_LOCK_KEY1, (uint32) session_oid,
			   psprintf("the self-renewals of role \"%s\"", session_name));
	session_certificate(MyProcPort, session_oid, session_name, &row, &serial);
	validity = renewal_lifetime(&row, lifetime);
	held = pgtls_registry_self_renewed(session_oid, session_name);
	if (held >= pgtls_max_self_renewed)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("role \"%s\" holds %d live certificates it renewed itself", session_name, held),
				 errdetail("pgtls_admin.max_self_renewed is %d.", pgtls_max_self_renewed),
				 errhint("Renew with revoke_previous => true, let older certificates expire, or ask an administrator to revoke unused ones.")));

	/*
	 * Issued by session_user itself: require_own_rights() made sure the
	 * current user is session_user, so no user switch is needed (the
	 * registry's own calls switch, with search_path pinned).
	 */
	pgtls_issue_csr_cert_as(session_name, session_oid, pgtls_renewal_subject(&row), csr, csr_len,
							validity, out);
	pgtls_renewal_recorded(serial, out, "client", session_name);
	if (revoke_previous)
		(void) pgtls_revoke_recorded(serial, "superseded", "none", &row);
}
