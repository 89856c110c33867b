/*
 * formats.c
 *		Private keys and certificates in the formats drivers read.
 *
 * pgjdbc cannot read PEM keys: it wants PKCS#8 DER (.pk8) or PKCS#12.  libpq
 * opens an encrypted PKCS#8 PEM key with sslpassword.  All key bytes pass
 * through OpenSSL's secure-memory BIOs and are wiped with their context.
 */
#include "pgtls_x509.h"

#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "utils/builtins.h"

static void
free_p8(void *p)
{
	PKCS8_PRIV_KEY_INFO_free(p);
}

static void
free_p12(void *p)
{
	PKCS12_free(p);
}

/* The BIO's bytes as bytea, wiped when the current context goes away. */
static bytea *
secure_bytea(BIO *bio)
{
	char	   *data;
	long		len = BIO_get_mem_data(bio, &data);
	bytea	   *result = palloc(VARHDRSZ + len);

	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), data, len);
	pgtls_own_secret((char *) result, VARHDRSZ + len);
	return result;
}

static void
check_passphrase(const char *passphrase)
{
	if (passphrase[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("passphrase must not be empty")));
}

/* Unencrypted PKCS#8 DER, the .pk8 file pgjdbc reads. */
bytea *
pgtls_key_to_pkcs8_der(EVP_PKEY *key)
{
	PKCS8_PRIV_KEY_INFO *p8 = pgtls_own(EVP_PKEY2PKCS8(key), free_p8);
	BIO		   *bio = pgtls_secure_bio();

	if (p8 == NULL || i2d_PKCS8_PRIV_KEY_INFO_bio(bio, p8) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the key as PKCS#8");
	return secure_bytea(bio);
}

/*
 * Encrypted PKCS#8 PEM: AES-256-CBC with a PBKDF2 (HMAC-SHA256) key, what
 * libpq opens with sslpassword.
 */
text *
pgtls_encrypt_private_key(EVP_PKEY *key, const char *passphrase)
{
	BIO		   *bio = pgtls_secure_bio();

	check_passphrase(passphrase);
	if (PEM_write_bio_PKCS8PrivateKey(bio, key, EVP_aes_256_cbc(), passphrase,
									  (int) strlen(passphrase), NULL, NULL) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encrypt the key");
	return pgtls_secure_bio_text(bio);
}

/*
 * PKCS#12 with the certificate, its key and optionally the CA, protected by
 * passphrase with OpenSSL 3's defaults (AES-256-CBC, PBKDF2, SHA-256 MAC),
 * which Java 17 keystores, .NET and browsers read.  The entry's alias is
 * "user", the one pgjdbc asks for.
 */
bytea *
pgtls_make_pkcs12(X509 *cert, EVP_PKEY *key, const char *passphrase, X509 *ca)
{
	STACK_OF(X509) *chain = pgtls_own(sk_X509_new_null(), pgtls_free_x509_stack);
	PKCS12	   *p12;
	BIO		   *bio = pgtls_secure_bio();

	check_passphrase(passphrase);
	pgtls_require_key_match(cert, key, ERRCODE_INVALID_PARAMETER_VALUE,
							"private_key does not match certificate");
	if (chain == NULL ||
		(ca != NULL && (X509_up_ref(ca) != 1 || sk_X509_push(chain, ca) <= 0)))
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not build the certificate chain");
	/* pgjdbc's PKCS12KeyManager looks the key up under the alias "user" only */
	p12 = pgtls_own(PKCS12_create(passphrase, "user", key, cert, chain, 0, 0, 0, 0, 0),
					free_p12);
	if (p12 == NULL || i2d_PKCS12_bio(bio, p12) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not build the PKCS#12 file");
	return secure_bytea(bio);
}
