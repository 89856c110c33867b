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
 *
 * Whatever pgtls_admin.enforce says, the hook also brings the server's own
 * CRL check up to date.  PostgreSQL forks a backend when it accepts the TCP
 * connection, and the backend does its TLS handshake later with the SSL
 * context the postmaster had at that moment: a connection opened before a
 * revocation (up to authentication_timeout before, and a client can keep a
 * rolling pool of them) would log in with a CRL that does not list it.
 * The file holds one CRL for each CA of ours the server trusts (and those of
 * other CAs, pgtls_trust_add); whoever writes it publishes in shared memory
 * the identity (the hash of its signature) of each CRL of ours it wrote,
 * with its issuer (trust.c, live.c).  When a CRL this backend's context
 * holds for the certificate's issuer is not among those published for that
 * issuer, the file is read and a certificate one of its CRLs of that issuer
 * lists is refused.  On the usual path nothing changed and the cost is one
 * hash of a signature, no file read; a certificate of a CA that is not ours
 * is left to the server's own CRL check, with no file read.
 *
 * The same inherited context holds the trust store of that moment: a CA
 * that left the trust bundle since (pgtls_init_ca(replace => true), a
 * rotation's retire, pgtls_trust_remove) would still verify its
 * certificates, forged ones with a stolen key among them.  So whoever
 * writes the bundle also publishes the SHA-256 of every CA certificate in
 * it, once the file is in place, and the hook refuses a login whose
 * verified chain holds a CA (any certificate but the leaf) that is not
 * among them: one SHA-256 per CA of the chain and a shared lock, no file
 * read.  More CAs than are kept (PGTLS_MAX_BUNDLE_CAS): the bundle file is
 * read.  Nothing is checked when nothing was published (the library not
 * preloaded, or no write since the server started: the worker writes the
 * files when it starts) or when ssl_ca_file is not the bundle (the
 * administrator's own file).  Every CA of a chain must then be in the
 * bundle, intermediates a client sends too, which the server's CRL check
 * (a CRL for every CA of a chain, from the file written with the bundle)
 * demands anyway.
 */
#include "pgtls_ops.h"

#include <openssl/pem.h>

#include "libpq/auth.h"
#include "libpq/hba.h"
#include "libpq/libpq-be.h"
#include "utils/acl.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

static ClientAuthentication_hook_type prev_client_auth = NULL;

/* by says which check refuses: "pgtls_admin.enforce = registry", "pgtls_admin CRL". */
static void
refuse(Port *port, const char *by, const char *why)
{
	ereport(FATAL,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("certificate authentication failed for user \"%s\"", port->user_name),
			 errdetail_log("%s: %s", by, why)));
}

#ifdef USE_OPENSSL
/* Did this login authenticate with its client certificate? */
static bool
certificate_login(Port *port)
{
	HbaLine    *hba = port->hba;

	return port->ssl_in_use && port->peer != NULL && port->peer_cert_valid && hba != NULL &&
		(hba->auth_method == uaCert || hba->clientcert != clientCertOff);
}

static void
enforce_registry(Port *port)
{
	PgtlsLiveVerdict verdict;
	char	   *why;

	why = pgtls_live_refusal(port->peer, port->user_name, &verdict);
	if (why != NULL)
		refuse(port, "pgtls_admin.enforce = registry", why);
}

/*
 * Does this backend's SSL context (as the postmaster built it before the
 * fork) hold a CRL of issuer that is not among the ncurrent identities last
 * written?  False also when it holds no CRL of that issuer: then the
 * server checks none for it, and neither does this hook.
 */
static bool
context_crl_outdated(Port *port, X509_NAME *issuer, uint8 (*current)[PGTLS_CRL_ID_BYTES], int ncurrent)
{
	X509_STORE *store = SSL_CTX_get_cert_store(SSL_get_SSL_CTX(port->ssl));
	STACK_OF(X509_OBJECT) *objects = store ? X509_STORE_get0_objects(store) : NULL;

	for (int i = 0; objects != NULL && i < sk_X509_OBJECT_num(objects); i++)
	{
		X509_OBJECT *o = sk_X509_OBJECT_value(objects, i);
		X509_CRL   *crl = X509_OBJECT_get0_X509_CRL(o);
		uint8		id[PGTLS_CRL_ID_BYTES];
		bool		current_one = false;

		if (X509_OBJECT_get_type(o) != X509_LU_CRL || crl == NULL ||
			X509_NAME_cmp(X509_CRL_get_issuer(crl), issuer) != 0)
			continue;
		if (pgtls_crl_id(crl, id))
			for (int j = 0; j < ncurrent && !current_one; j++)
				current_one = memcmp(id, current[j], PGTLS_CRL_ID_BYTES) == 0;
		if (!current_one)
			return true;
	}
	return false;
}

/*
 * Why the CRL file, as it is now, refuses cert (NULL: no CRL of its issuer
 * there lists it).  An unreadable file, or one without any CRL, refuses:
 * fail closed.  Everything it parses is freed before returning.
 */
static char *
current_crl_refusal(X509 *cert)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext cxt = AllocSetContextCreate(caller, "pgtls_admin CRL check", ALLOCSET_DEFAULT_SIZES);
	char	   *serial = pgtls_serial_hex(X509_get0_serialNumber(cert));
	char	   *why = NULL;
	PgtlsFileRead f;

	MemoryContextSwitchTo(cxt);
	if (!pgtls_try_read_file(pgtls_resolve_path(pgtls_crl_file), false, &f))
		why = "the CRL file cannot be read";
	else
	{
		BIO		   *bio = pgtls_mem_bio(f.data, (int) f.len);
		X509_CRL   *crl;
		int			ncrls = 0;

		while (why == NULL &&
			   (crl = pgtls_own_crl(PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL))) != NULL)
		{
			X509_REVOKED *entry = NULL;

			ncrls++;
			if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_issuer_name(cert)) == 0 &&
				X509_CRL_get0_by_serial(crl, &entry, (ASN1_INTEGER *) X509_get0_serialNumber(cert)) == 1)
				why = "the CRL lists it";
		}
		if (ncrls == 0)
			why = "the CRL file holds no CRL";
	}
	pgtls_ossl_clear();
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(cxt);
	if (why == NULL)
		return NULL;
	return psprintf("certificate %s is refused: %s, and this connection's server process started before the CRL was rewritten (%s)",
					serial, why, pgtls_crl_file);
}

/* The SHA-256 of cert into fp; false if it cannot be computed. */
static bool
ca_fingerprint(X509 *cert, uint8 *fp)
{
	unsigned int n = 0;

	return X509_digest(cert, pgtls_md(PGTLS_SHA256), fp, &n) == 1 && n == PGTLS_CA_FP_BYTES;
}

/*
 * The bundle file, read when it holds more CAs than shared memory keeps:
 * false when one of fps[0..n-1] is not in it (its index into *missing).  An
 * unreadable file, or one without a certificate, holds none: fail closed.
 * Everything it parses is freed before returning.
 */
static bool
bundle_file_holds(const uint8 (*fps)[PGTLS_CA_FP_BYTES], int n, int *missing)
{
	MemoryContext caller = CurrentMemoryContext;
	MemoryContext cxt = AllocSetContextCreate(caller, "pgtls_admin bundle check", ALLOCSET_DEFAULT_SIZES);
	List	   *certs = NIL;
	PgtlsFileRead f;
	uint8		(*held)[PGTLS_CA_FP_BYTES];
	int			nheld = 0;
	ListCell   *lc;

	*missing = 0;
	MemoryContextSwitchTo(cxt);
	if (pgtls_try_read_file(pgtls_resolve_path(pgtls_ca_bundle_file), false, &f))
		certs = pgtls_read_cert_list(f.data, (int) f.len);
	held = palloc(sizeof(*held) * (list_length(certs) + 1));
	foreach(lc, certs)
		if (ca_fingerprint(lfirst(lc), held[nheld]))
			nheld++;
	for (*missing = 0; *missing < n; (*missing)++)
	{
		bool		found = false;

		for (int j = 0; j < nheld && !found; j++)
			found = memcmp(fps[*missing], held[j], PGTLS_CA_FP_BYTES) == 0;
		if (!found)
			break;
	}
	pgtls_ossl_clear();
	MemoryContextSwitchTo(caller);
	MemoryContextDelete(cxt);
	return *missing >= n;
}

/*
 * The server's chain verification, with the trust bundle last written rather
 * than the one this backend inherited: every CA of the verified chain must
 * still be in it.
 */
static void
enforce_current_bundle(Port *port)
{
	STACK_OF(X509) *chain = SSL_get0_verified_chain(port->ssl);
	int			len = chain ? sk_X509_num(chain) : 0;
	int			first = len > 1 ? 1 : 0;	/* a lone certificate is its own CA */
	int			n = len - first;
	uint8		(*fps)[PGTLS_CA_FP_BYTES];
	int			missing = 0;
	PgtlsBundleVerdict verdict;
	X509	   *ca;

	if (!pgtls_server_reads_bundle())
		return;
	if (n <= 0)
	{
		/* not seen with a verified certificate; with a bundle published, fail closed */
		if (pgtls_live_bundle_holds(NULL, 0, &missing) == PGTLS_BUNDLE_UNKNOWN)
			return;
		refuse(port, "pgtls_admin trust bundle", "the server kept no verified chain for the certificate");
	}
	fps = palloc(sizeof(*fps) * n);
	for (int i = 0; i < n; i++)
		if (!ca_fingerprint(sk_X509_value(chain, first + i), fps[i]))
		{
			pgtls_ossl_clear();
			refuse(port, "pgtls_admin trust bundle", "could not compute the fingerprint of a CA of the chain");
		}
	verdict = pgtls_live_bundle_holds((const uint8 (*)[PGTLS_CA_FP_BYTES]) fps, n, &missing);
	if (verdict == PGTLS_BUNDLE_UNKNOWN || verdict == PGTLS_BUNDLE_HOLDS_ALL)
		return;
	if (verdict == PGTLS_BUNDLE_OVERFLOW &&
		bundle_file_holds((const uint8 (*)[PGTLS_CA_FP_BYTES]) fps, n, &missing))
		return;
	ca = sk_X509_value(chain, first + missing);
	refuse(port, "pgtls_admin trust bundle",
		   psprintf("the CA \"%s\" (SHA-256 %s) of the certificate's chain is not in the trust bundle (%s), and this connection's server process started before the CA left it",
					pgtls_name_text(X509_get_subject_name(ca)), pgtls_fingerprint_sha256(ca),
					pgtls_ca_bundle_file));
}

/* The server's CRL check, with the CRL last written rather than the one this backend inherited. */
static void
enforce_current_crl(Port *port)
{
	uint8		current[PGTLS_MAX_CRL_IDS][PGTLS_CRL_ID_BYTES];
	X509_NAME  *issuer = X509_get_issuer_name(port->peer);
	unsigned long issuer_hash = X509_NAME_hash_ex(issuer, NULL, NULL, NULL);
	int			ncurrent;
	char	   *why;

	pgtls_ossl_clear();
	ncurrent = pgtls_live_crl_ids(issuer_hash, current, PGTLS_MAX_CRL_IDS);
	if (ncurrent < 0)
		return;					/* none written since start, or not a CA of ours */
	if (!context_crl_outdated(port, issuer, current, ncurrent))
		return;
	why = current_crl_refusal(port->peer);
	if (why != NULL)
		refuse(port, "pgtls_admin CRL", why);
}
#endif

static void
enforce_login(Port *port, int status)
{
	if (prev_client_auth)
		prev_client_auth(port, status);
#ifdef USE_OPENSSL
	if (status != STATUS_OK || !certificate_login(port))
		return;
	enforce_current_bundle(port);
	if (pgtls_enforce == PGTLS_ENFORCE_REGISTRY)
		enforce_registry(port);
	enforce_current_crl(port);
#endif
}

void
pgtls_enforce_install_hook(void)
{
	prev_client_auth = ClientAuthentication_hook;
	ClientAuthentication_hook = enforce_login;
}
