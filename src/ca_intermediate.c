/*
 * ca_intermediate.c
 *		An intermediate CA under an offline root: pgtls_ca_request() makes
 *		the key (it stays in the data directory) and a certificate signing
 *		request; pgtls_ca_set_certificate() adopts what the root signed,
 *		with the chain up to the root.
 *
 * The root goes into the trust bundle (pgtls_trusted_cas, origin "chain")
 * with its CRL, since the server checks a CRL for every CA of a chain: the
 * chain text may carry the CRLs of the CAs above, or they are added first
 * with pgtls_trust_add(root, crl).  Certificates the intermediate issues
 * come with it (issue.c's callers append the chain), so a client that
 * trusts only the root logs in, and the server certificate file carries
 * it too.  The adopted CA becomes the active one when there is none, else
 * the next one of a rotation (ca_rotate.c).
 */
#include "pgtls_ops.h"

#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "utils/builtins.h"
#include "utils/timestamp.h"

static void
free_req(void *p)
{
	X509_REQ_free(p);
}

static void
free_exts(void *p)
{
	sk_X509_EXTENSION_pop_free(p, X509_EXTENSION_free);
}

static void
free_info_stack(void *p)
{
	sk_X509_INFO_pop_free(p, X509_INFO_free);
}

/* The extensions a CA certificate needs, asked for in the request (the root decides). */
static void
request_ca_extensions(X509_REQ *req)
{
	STACK_OF(X509_EXTENSION) *exts = pgtls_own(sk_X509_EXTENSION_new_null(), free_exts);
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	bool		ok;

	if (bc != NULL)
		bc->ca = 0xFF;
	ok = exts != NULL && bc != NULL && ku != NULL &&
		ASN1_BIT_STRING_set_bit(ku, 5, 1) == 1 &&	/* keyCertSign */
		ASN1_BIT_STRING_set_bit(ku, 6, 1) == 1 &&	/* cRLSign */
		X509V3_add1_i2d(&exts, NID_basic_constraints, bc, 1, 0) == 1 &&
		X509V3_add1_i2d(&exts, NID_key_usage, ku, 1, 0) == 1 &&
		X509_REQ_add_extensions(req, exts) == 1;
	BASIC_CONSTRAINTS_free(bc);
	ASN1_BIT_STRING_free(ku);
	if (!ok)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not build the request's extensions");
}

/*
 * A new CA key and a request for it with subject; the key is written to
 * ca-request.key beside the CA key (0600), the request beside it, and the
 * request returned.  A pending request is replaced.  Both files are
 * renamed into place only when the transaction commits: it may be a
 * transaction block, and its rollback (or that of a savepoint around the
 * call) leaves no request behind.
 */
text *
pgtls_ca_make_request(const char *subject, PgtlsKeyType key_type)
{
	EVP_PKEY   *key = pgtls_generate_key(key_type);
	X509_REQ   *req = pgtls_own(X509_REQ_new(), free_req);
	X509_NAME  *name = pgtls_subject_name(subject);
	BIO		   *bio = pgtls_mem_bio(NULL, 0);
	text	   *key_pem;
	char	   *csr;
	PgtlsStagedFile *staged[2];
	struct stat st;
	bool		deferring;

	if (req == NULL || X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
		X509_REQ_set_subject_name(req, name) != 1 || X509_REQ_set_pubkey(req, key) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not build the request");
	request_ca_extensions(req);
	if (X509_REQ_sign(req, key, pgtls_signing_digest(key)) <= 0 ||
		PEM_write_bio_X509_REQ(bio, req) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not sign the request");
	csr = pgtls_bio_to_cstring(bio);

	pgtls_ca_lock(true);
	if (stat(pgtls_ca_request_path("key"), &st) == 0)
		ereport(NOTICE,
				(errmsg("a pending request made on %s is replaced: a certificate signed for it can no longer be adopted",
						timestamptz_to_str(time_t_to_timestamptz(st.st_mtime)))));
	key_pem = pgtls_private_key_pem(key);
	deferring = pgtls_files_deferring();
	pgtls_files_defer_to_commit();
	staged[0] = pgtls_stage_file(pgtls_ca_request_path("key"), VARDATA_ANY(key_pem),
								 VARSIZE_ANY_EXHDR(key_pem), 0600);
	staged[1] = pgtls_stage_file(pgtls_ca_request_path("csr"), csr, strlen(csr), 0600);
	pgtls_commit_file(staged[0]);
	pgtls_commit_file(staged[1]);
	/* only these two: later statements of a transaction block write their files as they always do */
	if (!deferring)
		pgtls_files_defer_stop();
	return cstring_to_text(csr);
}

/* Every certificate and CRL of pem, in order (X509 * and X509_CRL *, owned here). */
static void
read_pem_objects(const char *pem, int len, List **certs, List **crls)
{
	BIO		   *bio = pgtls_mem_bio(pem, len);
	STACK_OF(X509_INFO) *infos = pgtls_own(PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL), free_info_stack);

	pgtls_ossl_clear();
	*certs = NIL;
	*crls = NIL;
	for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++)
	{
		X509_INFO  *info = sk_X509_INFO_value(infos, i);

		if (info->x509 != NULL && X509_up_ref(info->x509) == 1)
			*certs = lappend(*certs, pgtls_own_x509(info->x509));
		if (info->crl != NULL && X509_CRL_up_ref(info->crl) == 1)
			*crls = lappend(*crls, pgtls_own_crl(info->crl));
	}
}

static bool
self_signed(X509 *cert)
{
	return (X509_get_extension_flags(cert) & EXFLAG_SS) != 0;
}

/* The issuer of cert among certs, or NULL. */
static X509 *
issuer_in(List *certs, X509 *cert)
{
	ListCell   *lc;

	foreach(lc, certs)
		if (X509_cmp(lfirst(lc), cert) != 0 && X509_check_issued(lfirst(lc), cert) == X509_V_OK)
			return lfirst(lc);
	pgtls_ossl_clear();
	return NULL;
}

/* The CRL of ca: from crls (the text), else the one pgtls_trusted_cas keeps; PEM or NULL. */
static char *
crl_of(X509 *ca, List *crls, TimestampTz *next_update, List *trusted)
{
	char	   *fingerprint = pgtls_fingerprint_sha256(ca);
	ListCell   *lc;

	foreach(lc, crls)
	{
		X509_CRL   *crl = lfirst(lc);
		BIO		   *bio;
		char	   *pem;

		if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0)
			continue;
		bio = pgtls_mem_bio(NULL, 0);
		if (PEM_write_bio_X509_CRL(bio, crl) != 1)
			pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode a CRL");
		pem = pgtls_bio_to_cstring(bio);
		return pgtls_check_ca_crl(ca, pem, (int) strlen(pem),
								  psprintf("the CRL of \"%s\" in chain", pgtls_name_text(X509_get_subject_name(ca))),
								  next_update);
	}
	foreach(lc, trusted)
	{
		PgtlsTrustedRow *t = lfirst(lc);

		if (strcmp(t->fingerprint, fingerprint) == 0 && t->crl != NULL)
		{
			*next_update = t->crl_next_update;
			return t->crl;
		}
	}
	return NULL;
}

/*
 * The certificates above ca up to a self-signed root, found in certs (the
 * text) or among the trusted CAs, verified as the server will verify a
 * chain through them (security level 2, now), each with a CRL (in crls or
 * kept already) that does not list the one below.  Returns them, nearest
 * first.  what names the argument in messages.
 */
List *
pgtls_ca_chain_checked(X509 *ca, List *certs, List *crls, const char *what)
{
	List	   *trusted = pgtls_registry_trusted(false);
	List	   *pool = list_copy(certs);
	List	   *upper = NIL;
	X509	   *cur = ca;
	X509_STORE *store = pgtls_own_store(X509_STORE_new());
	X509_STORE_CTX *ctx = pgtls_own_store_ctx(X509_STORE_CTX_new());
	STACK_OF(X509) *untrusted = pgtls_own(sk_X509_new_null(), pgtls_free_x509_stack);
	ListCell   *lc;

	foreach(lc, trusted)
	{
		PgtlsTrustedRow *t = lfirst(lc);

		pool = lappend(pool, pgtls_parse_cert(t->certificate, (int) strlen(t->certificate),
											  "a trusted CA certificate", NULL));
	}
	while (!self_signed(cur))
	{
		X509	   *parent = issuer_in(pool, cur);

		if (parent == NULL || list_length(upper) > 8)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s does not reach a root: nothing in it or among the trusted CAs issued \"%s\"",
							what, pgtls_name_text(X509_get_subject_name(cur))),
					 errhint("Pass the CA certificate first, then the certificates above it up to the root; or add the root first with pgtls_trust_add(root, crl).")));
		upper = lappend(upper, parent);
		cur = parent;
	}

	if (store == NULL || ctx == NULL || untrusted == NULL ||
		X509_STORE_add_cert(store, cur) != 1)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not set up certificate verification");
	foreach(lc, upper)
		if (lfirst(lc) != cur && (X509_up_ref(lfirst(lc)) != 1 || sk_X509_push(untrusted, lfirst(lc)) <= 0))
			pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not set up certificate verification");
	if (X509_STORE_CTX_init(ctx, store, ca, untrusted) != 1)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not set up certificate verification");
	X509_VERIFY_PARAM_set_auth_level(X509_STORE_CTX_get0_param(ctx), 2);
	if (X509_verify_cert(ctx) != 1)
	{
		int			err = X509_STORE_CTX_get_error(ctx);

		pgtls_ossl_clear();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the CA certificate does not verify against its chain"),
				 errdetail("OpenSSL: %s.", X509_verify_cert_error_string(err)),
				 errhint("Pass the certificate the root signed for pgtls_ca_request()'s request, then the certificates above it.")));
	}
	pgtls_ossl_clear();

	/* every CA of the chain needs a CRL, and none may list the one below it */
	cur = ca;
	foreach(lc, upper)
	{
		X509	   *parent = lfirst(lc);
		TimestampTz next_update;
		char	   *crl_pem = crl_of(parent, crls, &next_update, trusted);
		BIO		   *bio;
		X509_CRL   *crl;
		X509_REVOKED *entry = NULL;

		if (crl_pem == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("no CRL of \"%s\"", pgtls_name_text(X509_get_subject_name(parent))),
					 errdetail("The server checks CRLs for every CA of a chain (ssl_crl_file): without that CA's CRL it would refuse every certificate under it."),
					 errhint("Append its current CRL to %s, or add it first with pgtls_trust_add(certificate, crl).", what)));
		bio = pgtls_mem_bio(crl_pem, (int) strlen(crl_pem));
		crl = pgtls_own_crl(PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL));
		pgtls_ossl_clear();
		if (crl != NULL && X509_CRL_get0_by_serial(crl, &entry, X509_get0_serialNumber(cur)) == 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("\"%s\" is revoked by \"%s\"", pgtls_name_text(X509_get_subject_name(cur)),
							pgtls_name_text(X509_get_subject_name(parent)))));
		cur = parent;
	}
	return upper;
}

/* Trust the certificates of upper (above one of our CAs), each with its CRL from crls or kept. */
void
pgtls_ca_trust_chain(List *upper, List *crls)
{
	ListCell   *lc;

	foreach(lc, upper)
	{
		TimestampTz next_update = 0;
		char	   *crl = crl_of(lfirst(lc), crls, &next_update, NIL);

		pgtls_registry_trust_put(lfirst(lc), crl, next_update, "chain");
	}
}

static char *
pem_of(List *certs)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, certs)
		appendStringInfoString(&buf, text_to_cstring(pgtls_cert_pem(lfirst(lc))));
	return buf.data;
}

/* The key of the pending request, which cert must be for. */
static EVP_PKEY *
request_key(X509 *cert)
{
	char	   *path = pgtls_ca_request_path("key");
	struct stat st;
	size_t		len;
	char	   *pem;
	EVP_PKEY   *key;

	if (stat(path, &st) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("there is no pending CA request"),
				 errhint("Make one with SELECT pgtls_ca_request(subject); and have the root sign it.")));
	pgtls_require_key_permissions(path, "CA request key file", &st);
	pem = pgtls_read_file(path, "CA request key file", NULL, true, &len);
	key = pgtls_parse_private_key(pem, (int) len, "the CA request key file", NULL);
	if (X509_check_private_key(cert, key) != 1)
	{
		pgtls_ossl_clear();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the certificate is not for the key of the pending request"),
				 errdetail("The request was made on %s.", timestamptz_to_str(time_t_to_timestamptz(st.st_mtime))),
				 errhint("Pass the certificate the root signed for the latest pgtls_ca_request(), first in chain.")));
	}
	return key;
}

/*
 * Adopt the intermediate CA in pem (its certificate first, then the
 * certificates above it and any CRLs of theirs) for the pending request's
 * key.  Returns its certificate PEM.
 */
text *
pgtls_ca_adopt_chain(const char *pem, int len)
{
	List	   *certs;
	List	   *crls;
	X509	   *cert;
	EVP_PKEY   *key;
	List	   *upper;
	char	   *upper_pem;

	read_pem_objects(pem, len, &certs, &crls);
	if (certs == NIL)
		(void) pgtls_parse_cert(pem, len, "chain", PGTLS_CERT_TEXT_HINT);
	cert = linitial(certs);
	pgtls_check_ca_cert(cert, "the certificate");
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the CA certificate has expired")));
	if (self_signed(cert))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the certificate is self-signed, not an intermediate CA"),
				 errhint("Adopt a root CA with pgtls_import_ca_files(certificate_file, key_file).")));
	key = request_key(cert);
	upper = pgtls_ca_chain_checked(cert, list_delete_first(list_copy(certs)), crls, "chain");
	upper_pem = pem_of(upper);

	pgtls_ca_lock(true);
	pgtls_ca_sync();
	pgtls_ca_require_no_rotation();
	pgtls_ca_trust_chain(upper, crls);
	if (!pgtls_ca_has_active())
	{
		(void) pgtls_registry_insert(cert, "ca", NULL, InvalidOid, NULL, pgtls_fingerprint_sha256(cert));
		pgtls_ca_make_active(cert, key, upper_pem, "adopt an intermediate CA", false);
		ereport(NOTICE,
				(errmsg("intermediate CA \"%s\" is the active CA", pgtls_name_text(X509_get_subject_name(cert))),
				 errhint("Clients trust its root: SELECT pgtls_ca_cert(); gives both.")));
	}
	else
	{
		pgtls_trust_settings_check("adopt the next CA");
		pgtls_ca_add_next(cert, key, upper_pem);
	}
	pgtls_ca_request_drop_at_commit();
	return pgtls_cert_pem(cert);
}
