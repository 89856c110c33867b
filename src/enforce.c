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
	PgtlsLiveVerdict verdict;
	char	   *why;

	if (!port->ssl_in_use || port->peer == NULL || !port->peer_cert_valid || hba == NULL ||
		(hba->auth_method != uaCert && hba->clientcert == clientCertOff))
		return;
	why = pgtls_live_refusal(port->peer, port->user_name, &verdict);
	if (why != NULL)
		refuse(port, why);
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
