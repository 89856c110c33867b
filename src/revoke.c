/*
 * revoke.c
 *		Revocation: pgtls_revoke and the CRL file.
 *
 * The CRL lists every revoked serial of the registry, as the newest
 * snapshot shows it, plus the revocations whose transaction has not ended
 * (pending.c), signed by the CA.  It is rebuilt and atomically replaced
 * under a short cluster-wide lock that is released as soon as the file is
 * in place, not at commit.  So a committed revocation is always in the file
 * (its own rewrite, and every later one, lists it), a revocation whose
 * transaction aborts stays listed only until the next rewrite (fail
 * closed), and an idle revoking transaction holds up nobody.
 */
#include "pgtls_ops.h"

#include <openssl/pem.h>

#include "libpq/libpq.h"
#include "utils/builtins.h"
#include "utils/guc.h"

/* Advisory lock key serializing CRL rewrites: "pgtlsCRL". */
#define CRL_LOCK_KEY1 0x7067746cU
#define CRL_LOCK_KEY2 0x7343524cU

/*
 * Take the CRL lock, build the CRL and stage it at pgtls_admin.crl_file.
 * The caller commits the file, then calls pgtls_crl_unlock() (an ERROR in
 * between releases the lock with the transaction).
 */
PgtlsStagedFile *
pgtls_crl_stage(X509 *ca_cert, EVP_PKEY *ca_key)
{
	BIO		   *bio = pgtls_mem_bio(NULL, 0);
	StringInfo	der;
	char	   *data;
	long		len;

	pgtls_lock(CRL_LOCK_KEY1, CRL_LOCK_KEY2, "the CRL");
	der = pgtls_crl_der(ca_cert, ca_key, pgtls_pending_merge(pgtls_registry_revoked()));
	if (PEM_write_bio(bio, PEM_STRING_X509_CRL, "", (unsigned char *) der->data, der->len) <= 0)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the CRL");
	len = BIO_get_mem_data(bio, &data);
	return pgtls_stage_file(pgtls_resolve_path(pgtls_crl_file), data, len, 0600);
}

void
pgtls_crl_unlock(void)
{
	pgtls_unlock(CRL_LOCK_KEY1, CRL_LOCK_KEY2);
}

/* Does the running server check the CRL we write? */
static bool
server_uses_our_crl(void)
{
	const char *setting = GetConfigOption("ssl_crl_file", true, false);

	return setting != NULL && setting[0] != '\0' &&
		strcmp(pgtls_resolve_path(setting), pgtls_resolve_path(pgtls_crl_file)) == 0;
}

/* Rewrite the CRL with the CA, and have the server load it if it uses it. */
static void
publish_crl(void)
{
	PgtlsCA		ca;
	PgtlsStagedFile *staged;

	pgtls_ca_load(&ca);
	staged = pgtls_crl_stage(ca.cert, ca.key);
	pgtls_commit_file(staged);
	pgtls_crl_unlock();
	if (server_uses_our_crl())
		pgtls_reload_server();
	else
		ereport(NOTICE,
				(errmsg("the server does not check the CRL pgtls_admin writes"),
				 errdetail("ssl_crl_file is not \"%s\".", pgtls_crl_file),
				 errhint("Run pgtls_enable_ssl(), or set ssl_crl_file = '%s' and reload.", pgtls_crl_file)));
}

/* Is serial the certificate in ssl_cert_file, the one the server presents? */
static bool
is_served_certificate(const char *serial)
{
	PgtlsFileRead f;
	X509	   *leaf;

	if (!pgtls_try_read_file(pgtls_resolve_path(ssl_cert_file), false, &f))
		return false;
	leaf = pgtls_parse_cert(f.data, (int) f.len, "ssl_cert_file", NULL);
	return strcmp(pgtls_serial_hex(X509_get0_serialNumber(leaf)), serial) == 0;
}

/*
 * Revoke serial: record it, rewrite the CRL and have the server reload it
 * before returning, so the next connection with that certificate fails.
 * Returns false when it was already revoked (the CRL is rewritten anyway).
 */
bool
pgtls_revoke_serial(const char *serial, const char *reason)
{
	bool		revoked_now;
	PgtlsRegistryRow row;

	if (!pgtls_registry_lookup(serial, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no certificate with serial %s was issued here", serial),
				 errhint("Serials are listed in pgtls_certificates.")));
	if (strcmp(row.kind, "ca") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("serial %s is a CA certificate, which cannot be revoked", serial),
				 errhint("Replace the CA with pgtls_init_ca(replace => true).")));
	pgtls_check_revoke_target(row.role);

	revoked_now = pgtls_registry_revoke(serial, reason);
	pgtls_pending_add(serial, reason);
	publish_crl();
	if (strcmp(row.kind, "server") == 0 && is_served_certificate(serial))
		ereport(WARNING,
				(errmsg("certificate %s is the one the server presents (ssl_cert_file)", serial),
				 errdetail("Clients do not check the server's certificate against a CRL (libpq does so only with sslcrl), so revoking it does not stop them from accepting it."),
				 errhint("Install a new server certificate now: SELECT * FROM pgtls_enable_ssl();")));
	return revoked_now;
}

text *
pgtls_crl_text(void)
{
	size_t		len;
	char	   *pem = pgtls_read_file(pgtls_resolve_path(pgtls_crl_file), "CRL file",
									  "The CRL is written by pgtls_init_ca(), pgtls_enable_ssl() and pgtls_revoke().",
									  false, &len);

	return cstring_to_text_with_len(pem, (int) len);
}
