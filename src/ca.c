/*
 * ca.c
 *		Create or adopt the extension's certificate authority.
 *
 * Both write the CA key, its certificate and a CRL signed by it, under the
 * CA lock: all are staged before any is renamed into place, the key first.
 * The registry row is written before the renames, so a failure before them
 * changes nothing on disk.
 */
#include "pgtls_ops.h"

static void
write_ca_files(EVP_PKEY *key, X509 *cert)
{
	PgtlsStagedFile *key_file;
	PgtlsStagedFile *cert_file;
	PgtlsStagedFile *crl_file;

	pgtls_ca_stage(key, cert, &key_file, &cert_file);
	/* a CRL from another CA would make the server refuse every client certificate */
	crl_file = pgtls_crl_stage(cert, key);
	pgtls_commit_file(key_file);
	pgtls_commit_file(cert_file);
	pgtls_commit_file(crl_file);
	pgtls_crl_unlock();
}

text *
pgtls_ca_init(const char *subject, int days, PgtlsKeyType key_type,
			  bool replace)
{
	EVP_PKEY   *key;
	X509	   *cert;

	if (days < 1 || days > 36500)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days must be between 1 and 36500")));
	key = pgtls_generate_key(key_type);
	cert = pgtls_build_ca_cert(subject, days, key);

	pgtls_ca_lock(replace);
	pgtls_registry_insert(cert, "ca", NULL, InvalidOid, NULL, pgtls_fingerprint_sha256(cert));
	write_ca_files(key, cert);
	return pgtls_cert_pem(cert);
}

text *
pgtls_ca_import(const char *cert_pem, int cert_len, const char *key_pem, int key_len,
				bool replace)
{
	X509	   *cert = pgtls_parse_cert(cert_pem, cert_len, "certificate", PGTLS_CERT_TEXT_HINT);
	EVP_PKEY   *key = pgtls_parse_private_key(key_pem, key_len, "private_key", PGTLS_KEY_TEXT_HINT);

	pgtls_check_ca_cert(cert, "certificate");
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the CA certificate has expired")));
	pgtls_require_key_match(cert, key, ERRCODE_INVALID_PARAMETER_VALUE,
							"private_key does not match certificate");

	pgtls_ca_lock(replace);
	pgtls_registry_insert(cert, "ca", NULL, InvalidOid, NULL, pgtls_fingerprint_sha256(cert));
	write_ca_files(key, cert);
	return pgtls_cert_pem(cert);
}

/*
 * The same, from files the server can read: the key never passes through
 * SQL text, so no statement log, auto_explain or pg_stat_activity sees it.
 * The key file must pass the rule PostgreSQL applies to ssl_key_file.
 */
text *
pgtls_ca_import_files(const char *cert_path, const char *key_path, bool replace)
{
	size_t		cert_len;
	size_t		key_len;
	char	   *cert_pem = pgtls_read_file(cert_path, "certificate file", NULL, false, &cert_len);
	char	   *key_pem = pgtls_read_key_file(key_path, "private key file", &key_len);

	return pgtls_ca_import(cert_pem, (int) cert_len, key_pem, (int) key_len, replace);
}
