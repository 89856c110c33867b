/*
 * enforce.c
 *		Registry-enforced logins: with pgtls_admin.enforce = registry, a
 *		certificate login succeeds only with a certificate the registry
 *		holds as live, for the role (by OID) that logs in.
 *
 * The server has verified the chain, the CRL and the CN (or map) by the time
 * ClientAuthentication_hook runs.  For a certificate issued by one of the
 * extension's CAs that was used to authenticate (method cert, or a
 * clientcert option), the hook also refuses one the shared set of live
 * certificates (live.c) does not hold: minted outside the registry (with a
 * CA key stolen from a backup, say), issued in a transaction that rolled
 * back, revoked a moment ago while the CRL on disk is stale, or issued for
 * a role that was dropped and created again.  Certificates of other CAs are
 * left to the server's own checks.  While the worker has not loaded the
 * registry, or its heartbeat is older than a minute, such logins are
 * refused: fail closed.
 */
#include "pgtls_ops.h"

#include "libpq/auth.h"
#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "utils/acl.h"
#include "utils/timestamp.h"

static ClientAuthentication_hook_type prev_client_auth = NULL;

static void
refuse(Port *port, const char *why)
{
	ereport(FATAL,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("certificate authentication failed for user \"%s\"", port->user_name),
			 errdetail_log("pgtls_admin.enforce = registry: %s", why)));
}

#ifdef USE_OPENSSL
static void
enforce_registry(Port *port)
{
	HbaLine    *hba = port->hba;
	PgtlsCAIdentity issuer;
	char	   *serial;
	Oid			role_oid = InvalidOid;
	TimestampTz not_after = 0;
	TimestampTz heartbeat = 0;
	int64		count = 0;
	PgtlsLiveVerdict verdict;

	if (!port->ssl_in_use || port->peer == NULL || !port->peer_cert_valid || hba == NULL ||
		(hba->auth_method != uaCert && hba->clientcert == clientCertOff))
		return;
	pgtls_ca_identity_of_issuer(port->peer, &issuer);
	serial = pgtls_serial_hex(X509_get0_serialNumber(port->peer));
	verdict = pgtls_live_check(serial, &issuer, &role_oid, &not_after, &heartbeat, &count);
	switch (verdict)
	{
		case PGTLS_LIVE_UNAVAILABLE:
			refuse(port, "the library is not in shared_preload_libraries, so there is no registry to check against");
			break;
		case PGTLS_LIVE_NO_REGISTRY:
		case PGTLS_LIVE_NOT_OURS:
			return;
		case PGTLS_LIVE_NOT_LOADED:
			refuse(port, psprintf("the background worker has not loaded the registry yet; certificate %s cannot be checked", serial));
			break;
		case PGTLS_LIVE_OVERFLOW:
			refuse(port, "the registry holds more live certificates than pgtls_admin.max_certificates; raise it and restart");
			break;
		case PGTLS_LIVE_UNKNOWN:
			refuse(port, psprintf("certificate %s is not a live certificate of the registry (revoked, expired, never recorded, or made outside it with the CA's key)",
								  serial));
			break;
		case PGTLS_LIVE_FOUND:
			break;
	}
	if (TimestampDifferenceExceeds(heartbeat, GetCurrentTimestamp(), PGTLS_LIVE_HEARTBEAT_STALE_SECONDS * 1000))
		refuse(port, psprintf("the background worker has not confirmed the registry since %s",
							  heartbeat ? timestamptz_to_str(heartbeat) : "it started"));
	if (role_oid != get_role_oid(port->user_name, true))
		refuse(port, psprintf("certificate %s was issued for the role with OID %u, not for role \"%s\"",
							  serial, role_oid, port->user_name));
	if (not_after <= GetCurrentTimestamp())
		refuse(port, psprintf("certificate %s has expired", serial));
}
#endif

static void
enforce_login(Port *port, int status)
{
	if (prev_client_auth)
		prev_client_auth(port, status);
#ifdef USE_OPENSSL
	if (status == STATUS_OK && pgtls_enforce == PGTLS_ENFORCE_REGISTRY)
		enforce_registry(port);
#endif
}

void
pgtls_enforce_install_hook(void)
{
	prev_client_auth = ClientAuthentication_hook;
	ClientAuthentication_hook = enforce_login;
}
