/*
 * pgtls_x509.h
 *		The x509 layer: parsing, describing and building certificates, keys,
 *		requests, CRLs and driver formats.  OpenSSL only: no SPI, no files
 *		of the CA, so the fuzz harness can run it outside a server.
 */
#ifndef PGTLS_X509_H
#define PGTLS_X509_H

#include "pgtls_base.h"

/* ---- src/x509_parse.c: PEM input, serials, names ---- */

/* Largest PEM text a function takes (a certificate with its chain, a key, a request). */
#define PGTLS_MAX_PEM_INPUT (1024 * 1024)

#define PGTLS_CERT_TEXT_HINT "Pass the whole PEM text of a certificate, BEGIN and END lines included."
#define PGTLS_KEY_TEXT_HINT "Pass the whole PEM text of an unencrypted private key, BEGIN and END lines included."
extern X509 *pgtls_parse_cert(const char *pem, int len, const char *what, const char *hint);
extern List *pgtls_read_cert_list(const char *pem, int len);
extern X509 *pgtls_parse_cert_chain(const char *pem, int len, STACK_OF(X509) **chain);
extern int	pgtls_no_passphrase(char *buf, int size, int rwflag, void *u);
extern EVP_PKEY *pgtls_parse_private_key(const char *pem, int len, const char *what,
										 const char *hint);
extern void pgtls_require_key_match(X509 *cert, EVP_PKEY *key, int sqlstate, const char *message);
extern void pgtls_check_role_cn(const char *role_name);
extern char *pgtls_serial_hex(const ASN1_INTEGER *serial);
extern char *pgtls_normalize_serial(const char *serial);
extern int	pgtls_crl_missing(X509_CRL *crl, List *serials, char **first_missing);
extern char *pgtls_key_type_of(EVP_PKEY *key, int *bits);
extern char *pgtls_name_text(const X509_NAME *name);
extern char *pgtls_name_dn(const X509_NAME *name, bool *embedded_nul);
extern char *pgtls_name_cn(const X509_NAME *name, bool *embedded_nul);
extern char *pgtls_safe_text(const unsigned char *data, int len);
extern TimestampTz pgtls_asn1_time_to_timestamptz(const ASN1_TIME *t);
extern text *pgtls_cert_pem(X509 *cert);

/* ---- src/x509_describe.c: what a certificate says ---- */
typedef struct PgtlsCertInfo
{
	char	   *subject;		/* in certificate order, RFC 2253 escaping, UTF-8 kept */
	char	   *issuer;
	char	   *subject_dn;		/* as the server's peer_dn: XN_FLAG_RFC2253 */
	char	   *issuer_dn;
	char	   *serial;
	TimestampTz not_before;
	TimestampTz not_after;
	List	   *san;			/* char *, "DNS:name", "IP:addr", "otherName:UPN:...", ... */
	List	   *eku;			/* char *, short names such as clientAuth */
	List	   *key_usage;		/* char * */
	char	   *key_type;		/* ec-p256, rsa-2048, rsa-pss-2048, ed25519, ... */
	int			key_bits;
	char	   *signature_algorithm;
	bool		is_ca;
	char	   *fingerprint_sha256;
} PgtlsCertInfo;

extern char *pgtls_fingerprint_sha256(X509 *cert);
extern void pgtls_describe_cert(X509 *cert, PgtlsCertInfo *info);
extern void pgtls_describe_cert_brief(X509 *cert, PgtlsCertInfo *info);
extern Datum pgtls_text_array(List *items);

/* ---- src/x509_build.c: keys and certificates ---- */

/* Key types offered for issued keys; names as in pgtls_admin.default_key_type. */
typedef enum PgtlsKeyType
{
	PGTLS_KEY_EC_P256,
	PGTLS_KEY_EC_P384,
	PGTLS_KEY_ED25519,
	PGTLS_KEY_RSA_2048,
	PGTLS_KEY_RSA_3072,
	PGTLS_KEY_RSA_4096,
	PGTLS_KEY_NTYPES
} PgtlsKeyType;

extern PgtlsKeyType pgtls_key_type_from_name(const char *name);
extern bool pgtls_key_type_lookup(const char *name, PgtlsKeyType *type);
extern const char *pgtls_key_type_name(PgtlsKeyType type);
extern EVP_PKEY *pgtls_generate_key(PgtlsKeyType type);
extern const EVP_MD *pgtls_signing_digest(EVP_PKEY *signer);

/*
 * How long a new certificate is valid from now, in seconds: a type of its
 * own, so a count of days can never be passed where seconds are meant.
 */
typedef struct PgtlsLifetime
{
	int64		seconds;
} PgtlsLifetime;

/* Backdate not_before so clients with a slightly slow clock accept new certs. */
#define PGTLS_CLOCK_SKEW_SECONDS 300
/* The shortest lifetime => a certificate may be issued for. */
#define PGTLS_MIN_LIFETIME_SECONDS 300

extern X509 *pgtls_new_cert(EVP_PKEY *key, PgtlsLifetime lifetime, X509 *issuer);
extern void pgtls_add_key_ids(X509 *cert, X509 *issuer);
extern void pgtls_sign(X509 *cert, EVP_PKEY *signer);
extern text *pgtls_private_key_pem(EVP_PKEY *key);
extern int	pgtls_validity_days(int days, bool days_isnull);
extern PgtlsLifetime pgtls_lifetime_days(int days);
extern PgtlsLifetime pgtls_validity(int days, bool days_isnull, const Interval *lifetime);
extern X509 *pgtls_build_ca_cert(const char *subject, int days, EVP_PKEY *key);
extern X509 *pgtls_build_client_cert(const char *role_name, PgtlsLifetime lifetime, EVP_PKEY *key,
									 X509 *ca_cert, EVP_PKEY *ca_key);
extern X509 *pgtls_build_client_cert_as(const char *role_name, const X509_NAME *subject,
										PgtlsLifetime lifetime, EVP_PKEY *key, X509 *ca_cert,
										EVP_PKEY *ca_key);
extern X509_NAME *pgtls_subject_name(const char *subject);
extern X509_NAME *pgtls_role_subject_name(const char *role_name);
extern void pgtls_check_server_names(List *dns_names, List *addresses);
extern X509 *pgtls_build_server_cert(List *dns_names, List *addresses, PgtlsLifetime lifetime,
									 EVP_PKEY *key, X509 *ca_cert, EVP_PKEY *ca_key);

/* ---- src/x509_csr.c: certificate signing requests ---- */
extern X509_REQ *pgtls_parse_csr(const char *pem, int len, const char *role_name);

/* ---- src/crl_der.c: a CRL from a list of revocations ---- */
typedef struct PgtlsRevoked
{
	char	   *serial;
	TimestampTz revoked_at;
	char	   *reason;
	char	   *issuer;			/* fingerprint of the issuing CA, or NULL when unknown */
} PgtlsRevoked;

extern const char *pgtls_reason_canonical(const char *reason);
extern const char *pgtls_reason_name(int code);
extern StringInfo pgtls_crl_der(X509 *ca_cert, EVP_PKEY *ca_key, List *revoked);
/* A CRL told apart from every other by the SHA-256 of its signature. */
#define PGTLS_CRL_ID_BYTES 32
extern bool pgtls_crl_der_id(const char *der, size_t len, uint8 *id);
extern int	pgtls_hex_digit(char c);
extern bool pgtls_crl_id(const X509_CRL *crl, uint8 *id);

/* ---- src/formats.c: key and certificate formats for drivers ---- */
extern bytea *pgtls_key_to_pkcs8_der(EVP_PKEY *key);
extern text *pgtls_encrypt_private_key(EVP_PKEY *key, const char *passphrase);
extern bytea *pgtls_make_pkcs12(X509 *cert, EVP_PKEY *key, const char *passphrase, X509 *ca);

#endif							/* PGTLS_X509_H */
