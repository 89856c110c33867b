/*
 * raw_issue.c: the baseline for bench/issue_speed.sh.  The least a program
 * can do to issue what pgtls_issue_client issues: generate a key, build a
 * certificate with the same extensions, sign it with an already loaded CA
 * key, and PEM-encode certificate and key.  No database, no registry.
 *
 *   raw_issue CA_CERT CA_KEY KEY_TYPE COUNT     prints microseconds per certificate
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

static EVP_PKEY *
keygen(EVP_PKEY_CTX *ctx)
{
	EVP_PKEY   *key = NULL;

	if (EVP_PKEY_generate(ctx, &key) != 1)
		exit(2);
	return key;
}

static void
add(X509 *x, int nid, void *value, int crit)
{
	if (X509_add1_ext_i2d(x, nid, value, crit, X509V3_ADD_REPLACE) != 1)
		exit(3);
}

int
main(int argc, char **argv)
{
	FILE	   *f;
	X509	   *ca;
	EVP_PKEY   *ca_key;
	EVP_PKEY_CTX *ctx;
	const char *type = argv[3];
	long		count = atol(argv[4]);
	struct timespec t0, t1;

	if (argc != 5)
		return 1;
	f = fopen(argv[1], "r");
	ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	f = fopen(argv[2], "r");
	ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	if (strncmp(type, "rsa-", 4) == 0)
	{
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
		EVP_PKEY_keygen_init(ctx);
		EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, atoi(type + 4));
	}
	else if (strcmp(type, "ed25519") == 0)
	{
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "ED25519", NULL);
		EVP_PKEY_keygen_init(ctx);
	}
	else
	{
		ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
		EVP_PKEY_keygen_init(ctx);
		EVP_PKEY_CTX_set_group_name(ctx, strcmp(type, "ec-p384") == 0 ? "P-384" : "P-256");
	}

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (long i = 0; i < count; i++)
	{
		EVP_PKEY   *key = keygen(ctx);
		X509	   *x = X509_new();
		unsigned char serial[16];
		BIGNUM	   *bn;
		BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
		ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
		EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
		ASN1_OCTET_STRING *ski = ASN1_OCTET_STRING_new();
		AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
		unsigned char md[EVP_MAX_MD_SIZE];
		unsigned int mdlen;
		BIO		   *out = BIO_new(BIO_s_mem());

		X509_set_version(x, X509_VERSION_3);
		RAND_bytes(serial, sizeof(serial));
		serial[0] = (serial[0] & 0x7F) | 0x40;
		bn = BN_bin2bn(serial, sizeof(serial), NULL);
		BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
		BN_free(bn);
		X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName, MBSTRING_UTF8,
								   (unsigned char *) "bench", -1, -1, 0);
		X509_set_issuer_name(x, X509_get_subject_name(ca));
		X509_set_pubkey(x, key);
		X509_gmtime_adj(X509_getm_notBefore(x), -300);
		X509_time_adj_ex(X509_getm_notAfter(x), 365, 0, NULL);
		add(x, NID_basic_constraints, bc, 1);
		ASN1_BIT_STRING_set_bit(ku, 0, 1);
		add(x, NID_key_usage, ku, 1);
		sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(NID_client_auth));
		add(x, NID_ext_key_usage, eku, 0);
		X509_pubkey_digest(x, EVP_sha1(), md, &mdlen);
		ASN1_OCTET_STRING_set(ski, md, (int) mdlen);
		add(x, NID_subject_key_identifier, ski, 0);
		akid->keyid = ASN1_OCTET_STRING_dup(X509_get0_subject_key_id(ca));
		add(x, NID_authority_key_identifier, akid, 0);
		if (X509_sign(x, ca_key, EVP_sha256()) <= 0)
			return 4;
		PEM_write_bio_X509(out, x);
		PEM_write_bio_PrivateKey(out, key, NULL, NULL, 0, NULL, NULL);
		BASIC_CONSTRAINTS_free(bc);
		ASN1_BIT_STRING_free(ku);
		sk_ASN1_OBJECT_free(eku);
		ASN1_OCTET_STRING_free(ski);
		AUTHORITY_KEYID_free(akid);
		BIO_free(out);
		X509_free(x);
		EVP_PKEY_free(key);
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.1f\n", ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) / 1e3 / count);
	return 0;
}
