/*
 * x509_csr.c
 *		Certificate signing requests: the key never leaves the client.
 *
 * Only two things are taken from a request: its public key, after its
 * signature proves the requester holds the private key, and its CN, which
 * must equal the role.  Every extension and every other attribute it asks
 * for is ignored; the certificate is built as any client certificate is.
 */
#include "pgtls_x509.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>

#include "mb/pg_wchar.h"

static void
free_req(void *p)
{
	X509_REQ_free(p);
}

/*
 * An RSA key we sign for: 2048 to 8192 bits (larger ones only cost the
 * server time on every handshake), and an odd public exponent above 2^16
 * and below 2^256, as NIST SP 800-89 asks.
 */
static bool
rsa_key_ok(EVP_PKEY *key, int bits)
{
	BIGNUM	   *e = NULL;
	bool		ok;

	if (bits < 2048 || bits > 8192)
		return false;
	if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) != 1)
	{
		pgtls_ossl_clear();
		return false;
	}
	/* 17 bits or more and odd: 65537 at least */
	ok = BN_is_odd(e) && BN_num_bits(e) >= 17 && BN_num_bits(e) <= 256;
	BN_free(e);
	return ok;
}

/* Keys we sign for: what OpenSSL security level 2 and TLS clients accept. */
static void
check_request_key(EVP_PKEY *key)
{
	int			bits;
	char	   *type = pgtls_key_type_of(key, &bits);
	bool		ok;

	switch (EVP_PKEY_get_base_id(key))
	{
		case EVP_PKEY_RSA:
			ok = rsa_key_ok(key, bits);
			break;
		case EVP_PKEY_EC:
			ok = strcmp(type, "ec-p256") == 0 || strcmp(type, "ec-p384") == 0 ||
				strcmp(type, "ec-p521") == 0;
			break;
		case EVP_PKEY_ED25519:
		case EVP_PKEY_ED448:
			ok = true;
			break;
		default:
			ok = false;
	}
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the request's key (%s, %d bits) is not accepted", type, bits),
				 errhint("Use an EC P-256/P-384/P-521, Ed25519/Ed448 key, or an RSA key of 2048 to 8192 bits with public exponent 65537.")));
}

/* The request's CN as UTF-8, or an error unless there is exactly one. */
static char *
request_cn(X509_REQ *req)
{
	const X509_NAME *name = X509_REQ_get_subject_name(req);
	int			idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	unsigned char *utf8 = NULL;
	int			len;
	char	   *cn;

	if (idx < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the request's subject must have exactly one CN")));
	len = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx)));
	if (len < 0)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "the request's CN is not valid text");
	cn = pnstrdup((char *) utf8, len);
	OPENSSL_free(utf8);
	if ((int) strlen(cn) != len)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the request's CN contains a NUL byte")));
	return cn;
}

/*
 * Parse a PEM request, verify its self-signature and that its CN is
 * role_name byte for byte.  Returns the request, owned by the current context.
 */
X509_REQ *
pgtls_parse_csr(const char *pem, int len, const char *role_name)
{
	BIO		   *bio = pgtls_mem_bio(pem, len);
	X509_REQ   *req;
	EVP_PKEY   *key;
	char	   *cn;

	pgtls_ossl_clear();
	req = pgtls_own(PEM_read_bio_X509_REQ(bio, NULL, NULL, NULL), free_req);
	if (req == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("csr is not a PEM certificate signing request"),
				 errdetail("OpenSSL: %s.", pgtls_ossl_error()),
				 errhint("Pass the whole PEM text of a request, as openssl req -new writes it.")));
	key = X509_REQ_get0_pubkey(req);
	if (key == NULL)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "the request's public key cannot be read");
	if (X509_REQ_verify(req, key) != 1)
	{
		pgtls_ossl_clear();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the request's signature does not verify"),
				 errdetail("The request was altered, or was not signed with the key it contains.")));
	}
	check_request_key(key);
	cn = request_cn(req);
	pgtls_check_role_cn(role_name);
	if (strcmp(cn, role_name) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the request's CN \"%s\" does not match role \"%s\"",
						pgtls_safe_text((unsigned char *) cn, strlen(cn)), role_name),
				 errhint("Create the request with -subj \"/CN=<role name>\".")));
	return req;
}
