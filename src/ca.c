/*
 * ca.c
 *		Create or adopt the extension's certificate authority.
 *
 * Both make their CA the only active one at once (ca_rotate.c): every other
 * CA is retired, and the certificates it issued no longer log in.  A
 * rotation without that break is pgtls_ca_rotate().  The one exception: an
 * import without replace of the CA the registry records as active already
 * (a restored dump's) leaves the other CAs' states alone.  The CA key, its
 * certificate, the trust bundle and the CRLs are written under the CA lock:
 * all are staged, and renamed into place (the key first) only when the
 * statement's transaction commits, after the registry rows are written, so
 * that an error anywhere before -- in this function, in the rest of the
 * statement, in a DO block that called it -- leaves the old CA files, and
 * the registry, as they were.  That is why they refuse to run in a
 * transaction block: the files cannot follow a ROLLBACK TO SAVEPOINT.
 */
#include "pgtls_ops.h"

#include <openssl/pem.h>

#include "access/xact.h"
#include "utils/builtins.h"

/*
 * Take the CA lock (refusing to replace a CA unless asked to) and refuse a
 * transaction block; the CA files are then written when the transaction
 * commits (pgtls_ca_make_active).
 */
static void
begin_ca_change(bool replace, const char *function)
{
	pgtls_ca_lock(replace);
	PreventInTransactionBlock(true, function);
}

static void
free_info_stack(void *p)
{
	sk_X509_INFO_pop_free(p, X509_INFO_free);
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

	begin_ca_change(replace, "pgtls_init_ca()");
	pgtls_registry_insert(cert, "ca", NULL, InvalidOid, NULL, pgtls_fingerprint_sha256(cert));
	pgtls_ca_make_active(cert, key, NULL, "replace", false);
	return pgtls_cert_pem(cert);
}

/* The certificates and CRLs after the first certificate of pem. */
static void
read_rest(const char *pem, int len, List **upper, List **crls)
{
	BIO		   *bio = pgtls_mem_bio(pem, len);
	STACK_OF(X509_INFO) *infos = pgtls_own(PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL), free_info_stack);
	bool		first = true;

	pgtls_ossl_clear();
	*upper = NIL;
	*crls = NIL;
	for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++)
	{
		X509_INFO  *info = sk_X509_INFO_value(infos, i);

		if (info->x509 != NULL && !first && X509_up_ref(info->x509) == 1)
			*upper = lappend(*upper, pgtls_own_x509(info->x509));
		if (info->x509 != NULL)
			first = false;
		if (info->crl != NULL && X509_CRL_up_ref(info->crl) == 1)
			*crls = lappend(*crls, pgtls_own_crl(info->crl));
	}
}

/*
 * Adopt a CA: certificate_pem is its certificate, followed for an
 * intermediate CA by the certificates above it (and any of their CRLs).
 */
text *
pgtls_ca_import(const char *cert_pem, int cert_len, const char *key_pem, int key_len,
				bool replace, const char *function)
{
	X509	   *cert = pgtls_parse_cert(cert_pem, cert_len, "certificate", PGTLS_CERT_TEXT_HINT);
	EVP_PKEY   *key = pgtls_parse_private_key(key_pem, key_len, "private_key", PGTLS_KEY_TEXT_HINT);
	List	   *upper = NIL;
	List	   *crls = NIL;
	StringInfoData upper_pem;
	ListCell   *lc;

	pgtls_check_ca_cert(cert, "certificate");
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the CA certificate has expired")));
	pgtls_require_key_match(cert, key, ERRCODE_INVALID_PARAMETER_VALUE,
							"private_key does not match certificate");
	/* an intermediate CA comes with its chain; what follows a root is ignored, as always */
	initStringInfo(&upper_pem);
	if (!(X509_get_extension_flags(cert) & EXFLAG_SS))
	{
		read_rest(cert_pem, cert_len, &upper, &crls);
		upper = pgtls_ca_chain_checked(cert, upper, crls, "certificate");
		foreach(lc, upper)
			appendStringInfoString(&upper_pem, text_to_cstring(pgtls_cert_pem(lfirst(lc))));
	}

	begin_ca_change(replace, function);
	pgtls_registry_insert(cert, "ca", NULL, InvalidOid, NULL, pgtls_fingerprint_sha256(cert));
	pgtls_ca_trust_chain(upper, crls);
	pgtls_ca_make_active(cert, key, upper_pem.data, "replace", !replace);
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

	return pgtls_ca_import(cert_pem, (int) cert_len, key_pem, (int) key_len, replace,
						   "pgtls_import_ca_files()");
}
