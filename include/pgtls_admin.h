/*
 * pgtls_admin.h
 *		Declarations shared by the pgtls_admin source files.
 *
 * Each src/<concern>.c exports its pgtls_ functions here; pgtls_admin.c holds
 * only the SQL-callable entry points and the GUCs.
 */
#ifndef PGTLS_ADMIN_H
#define PGTLS_ADMIN_H

#include "postgres.h"

#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "datatype/timestamp.h"
#include "nodes/pg_list.h"

/* ---- GUCs (pgtls_admin.c) ---- */
extern char *pgtls_ca_cert_file;
extern char *pgtls_ca_key_file;
extern char *pgtls_crl_file;
extern int	pgtls_default_days;
extern int	pgtls_max_days;
extern int	pgtls_default_key_type;
extern int	pgtls_expiry_warning_days;
extern int	pgtls_debug_pause_at;

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

/* ---- src/ossl.c: OpenSSL errors and object lifetime ---- */
typedef enum PgtlsDigest
{
	PGTLS_SHA1,
	PGTLS_SHA256,
	PGTLS_SHA384,
	PGTLS_SHA512,
	PGTLS_MD_COUNT
} PgtlsDigest;
extern const EVP_MD *pgtls_md(PgtlsDigest which);
extern char *pgtls_ossl_error(void);
extern void pgtls_ossl_raise(int sqlstate, const char *message) pg_attribute_noreturn();
extern void pgtls_ossl_clear(void);
extern void pgtls_rethrow_hiding_statement(MemoryContext cxt) pg_attribute_noreturn();
extern void *pgtls_own(void *obj, void (*free_fn) (void *obj));
extern X509 *pgtls_own_x509(X509 *x);
extern void pgtls_free_x509_stack(void *stack);
extern void pgtls_free_md_ctx(void *ctx);
extern EVP_PKEY *pgtls_own_pkey(EVP_PKEY *k);
extern BIO *pgtls_own_bio(BIO *b);
extern BIGNUM *pgtls_own_bn(BIGNUM *bn);
extern GENERAL_NAMES *pgtls_own_general_names(GENERAL_NAMES *names);
extern EXTENDED_KEY_USAGE *pgtls_own_eku(EXTENDED_KEY_USAGE *eku);
extern ASN1_INTEGER *pgtls_own_asn1_integer(ASN1_INTEGER *i);
extern void pgtls_own_secret(char *buf, size_t len);
extern MemoryContext pgtls_work_begin(void);
extern void pgtls_work_end(MemoryContext work);
extern BIO *pgtls_mem_bio(const char *data, int len);
extern text *pgtls_bio_to_text(BIO *bio);
extern BIO *pgtls_secure_bio(void);
extern text *pgtls_secure_bio_text(BIO *bio);
extern char *pgtls_bio_to_cstring(BIO *bio);

/* ---- src/files.c: paths, key permissions, atomic durable writes ---- */
extern char *pgtls_resolve_path(const char *setting);
extern char *pgtls_read_file(const char *path, const char *what, const char *hint,
							 bool secret,
							 size_t *len);
extern const char *pgtls_key_permission_problem(const char *path, struct stat *st);
extern void pgtls_require_key_permissions(const char *path, const char *what, struct stat *st);

typedef struct PgtlsStagedFile PgtlsStagedFile;
extern PgtlsStagedFile *pgtls_stage_file(const char *path, const char *data,
										 size_t len, mode_t mode);
extern void pgtls_commit_file(PgtlsStagedFile *staged);

/* ---- src/roles.c: who may issue for whom ---- */
extern Oid	pgtls_check_issue_target(NameData *role, bool role_isnull);
extern void pgtls_require_superuser(const char *action);
extern void pgtls_check_revoke_target(const char *role_name);

/* ---- src/cert_info.c: parsing and describing certificates ---- */
typedef struct PgtlsCertInfo
{
	char	   *subject;
	char	   *issuer;
	char	   *serial;
	TimestampTz not_before;
	TimestampTz not_after;
	List	   *san;			/* char *, "DNS:name", "IP:addr", ... */
	List	   *eku;			/* char *, short names such as clientAuth */
	List	   *key_usage;		/* char * */
	char	   *key_type;		/* ec-p256, rsa-2048, ed25519, ... */
	int			key_bits;
	char	   *signature_algorithm;
	bool		is_ca;
	char	   *fingerprint_sha256;
} PgtlsCertInfo;

#define PGTLS_CERT_TEXT_HINT "Pass the whole PEM text of a certificate, BEGIN and END lines included."
#define PGTLS_KEY_TEXT_HINT "Pass the whole PEM text of an unencrypted private key, BEGIN and END lines included."
extern X509 *pgtls_parse_cert(const char *pem, int len, const char *what, const char *hint);
extern int	pgtls_no_passphrase(char *buf, int size, int rwflag, void *u);
extern EVP_PKEY *pgtls_parse_private_key(const char *pem, int len, const char *what,
										 const char *hint);
extern void pgtls_describe_cert(X509 *cert, PgtlsCertInfo *info);
extern void pgtls_describe_cert_brief(X509 *cert, PgtlsCertInfo *info);
extern char *pgtls_serial_hex(const ASN1_INTEGER *serial);
extern char *pgtls_key_type_of(EVP_PKEY *key, int *bits);
extern char *pgtls_name_text(const X509_NAME *name);
extern char *pgtls_safe_text(const unsigned char *data, int len);
extern TimestampTz pgtls_asn1_time_to_timestamptz(const ASN1_TIME *t);
extern text *pgtls_cert_pem(X509 *cert);
extern Datum pgtls_text_array(List *items);

/* ---- src/issue.c: keys and leaf certificates ---- */
extern PgtlsKeyType pgtls_key_type_from_name(const char *name);
extern const char *pgtls_key_type_name(PgtlsKeyType type);
extern EVP_PKEY *pgtls_generate_key(PgtlsKeyType type);
extern const EVP_MD *pgtls_signing_digest(EVP_PKEY *signer);
extern X509 *pgtls_new_cert(EVP_PKEY *key, int days, X509 *issuer);
extern void pgtls_set_random_serial(X509 *cert);
extern void pgtls_add_basic_constraints(X509 *cert, bool is_ca);
extern void pgtls_add_key_usage(X509 *cert, const int *bits, int nbits);
extern void pgtls_add_eku(X509 *cert, int nid);
extern void pgtls_add_key_ids(X509 *cert, X509 *issuer);
extern void pgtls_set_validity(X509 *cert, int days, X509 *issuer);
extern void pgtls_sign(X509 *cert, EVP_PKEY *signer);
extern text *pgtls_private_key_pem(EVP_PKEY *key);
extern int	pgtls_validity_days(int days, bool days_isnull);

extern X509 *pgtls_build_client_cert(const char *role_name, int days, EVP_PKEY *key,
									 X509 *ca_cert, EVP_PKEY *ca_key);
extern X509 *pgtls_issue_client_cert(const char *role_name, int days,
									 PgtlsKeyType key_type,
									 X509 **ca_out, EVP_PKEY **key_out);

/* ---- src/ca.c: the extension's certificate authority ---- */
extern X509 *pgtls_ca_load_cert(void);
extern text *pgtls_ca_cert_text(void);
extern void pgtls_ca_load(X509 **cert, EVP_PKEY **key);
extern text *pgtls_ca_init(const char *subject, int days, PgtlsKeyType key_type,
						   bool replace);
extern text *pgtls_ca_import(const char *cert_pem, int cert_len,
							 const char *key_pem, int key_len,
							 bool replace);

/* ---- src/registry.c: the pgtls_certificates table ---- */
typedef struct PgtlsRevoked
{
	char	   *serial;
	TimestampTz revoked_at;
	char	   *reason;
} PgtlsRevoked;

typedef struct PgtlsRegistryRow
{
	char	   *kind;
	char	   *role;			/* NULL unless kind = client */
	List	   *san;			/* char *, "DNS:..." / "IP:..." */
	char	   *key_type;
	bool		revoked;
} PgtlsRegistryRow;

extern text *pgtls_registry_insert(X509 *cert, const char *kind,
								   const char *role);
extern text *pgtls_registry_insert_typed(X509 *cert, const char *kind,
										 const char *role, const char *key_type);
extern bool pgtls_registry_revoke(const char *serial, const char *reason);
extern List *pgtls_registry_revoked(void);
extern bool pgtls_registry_lookup(const char *serial, PgtlsRegistryRow *row);
extern bool pgtls_registry_expiring(int days, int *count, TimestampTz *first);

/* ---- src/crl.c: revocation list ---- */
extern X509_CRL *pgtls_own_crl(X509_CRL *crl);
extern const char *pgtls_reason_canonical(const char *reason);
extern char *pgtls_normalize_serial(const char *serial);
extern PgtlsStagedFile *pgtls_crl_stage(X509 *ca_cert, EVP_PKEY *ca_key);
extern bool pgtls_revoke_serial(const char *serial, const char *reason);
extern text *pgtls_crl_text(void);

/* ---- src/server.c: server certificates, TLS settings ---- */
typedef struct PgtlsSetting
{
	char	   *name;
	char	   *value;
} PgtlsSetting;

extern void pgtls_check_server_names(List *dns_names, List *addresses);
extern X509 *pgtls_build_server_cert(List *dns_names, List *addresses, int days,
									 EVP_PKEY *key, X509 *ca_cert, EVP_PKEY *ca_key);
extern List *pgtls_install_server(X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key,
								  X509 *ca_cert, EVP_PKEY *ca_key);
extern void pgtls_reload_server(void);
extern void pgtls_require_primary(void);

/* ---- src/formats.c: key and certificate formats for drivers ---- */
extern bytea *pgtls_key_to_pkcs8_der(EVP_PKEY *key);
extern text *pgtls_encrypt_private_key(EVP_PKEY *key, const char *passphrase);
extern bytea *pgtls_make_pkcs12(X509 *cert, EVP_PKEY *key, const char *passphrase, X509 *ca);

/* ---- src/csr.c: certificate signing requests ---- */
extern X509_REQ *pgtls_parse_csr(const char *pem, int len, const char *role_name);

#endif							/* PGTLS_ADMIN_H */
