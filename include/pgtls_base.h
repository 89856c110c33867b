/*
 * pgtls_base.h
 *		The base layer: OpenSSL errors and object lifetime (ossl.c), files
 *		(files.c), locks and transactions (locks.c), the settings (settings.c) and version
 *		differences (compat.c, pgtls_compat.h).
 *
 * Layers point one way: base < x509 < stores < operations, audit < the
 * entry points in pgtls_admin.c.  A file calls only its own layer and the
 * ones below; scripts/check_layers.sh checks it on the built objects.
 */
#ifndef PGTLS_BASE_H
#define PGTLS_BASE_H

#include "postgres.h"

#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "access/transam.h"
#include "access/xact.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"

/* ---- src/settings.c: the GUCs, defined in _PG_init ---- */
extern char *pgtls_ca_cert_file;
extern char *pgtls_ca_key_file;
extern char *pgtls_crl_file;
extern char *pgtls_ca_bundle_file;
extern int	pgtls_default_days;
extern int	pgtls_max_days;
extern int	pgtls_default_key_type;
extern int	pgtls_expiry_warning_days;
extern int	pgtls_debug_pause_at;
extern int	pgtls_enforce;			/* PGTLS_ENFORCE_* */
extern int	pgtls_crl_validity;		/* seconds; 0: until the CA expires */
extern int	pgtls_max_certificates;
extern int	pgtls_maintenance_interval;	/* seconds */
extern int	pgtls_server_renew_before;	/* seconds */
extern int	pgtls_retain_expired;	/* seconds; -1: keep for ever */
extern int	pgtls_max_self_renewed;

#define PGTLS_ENFORCE_CRL 0
#define PGTLS_ENFORCE_REGISTRY 1

/* ---- src/session.c: this backend's statement state (set by statement.c) ---- */
extern int	pgtls_executor_depth;	/* ExecutorRun calls active */
extern bool pgtls_receiver_wrapped; /* the top-level results wait for the journal */

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
extern X509_CRL *pgtls_own_crl(X509_CRL *crl);
extern X509_STORE *pgtls_own_store(X509_STORE *store);
extern X509_STORE_CTX *pgtls_own_store_ctx(X509_STORE_CTX *ctx);
extern void pgtls_own_secret(char *buf, size_t len);
extern MemoryContext pgtls_work_begin(void);
extern void pgtls_work_end(MemoryContext work);
extern BIO *pgtls_mem_bio(const char *data, int len);
extern text *pgtls_bio_to_text(BIO *bio);
extern BIO *pgtls_secure_bio(void);
extern text *pgtls_secure_bio_text(BIO *bio);
extern char *pgtls_bio_to_cstring(BIO *bio);

/* ---- src/files.c: paths, reading, key permissions, atomic durable writes ---- */

/* Largest file read whole: a CRL with a million entries is about 50 MB of PEM. */
#define PGTLS_MAX_FILE_SIZE (256 * 1024 * 1024)

extern char *pgtls_resolve_path(const char *setting);

/* A file read whole by pgtls_read_file(), or why it could not be. */
typedef struct PgtlsFileRead
{
	char	   *data;			/* NUL-terminated; NULL when it could not be read */
	size_t		len;
	struct stat st;
	bool		opened;			/* false: open() failed with save_errno */
	int			save_errno;		/* open, stat or read failed: errno */
	const char *problem;		/* not a regular file, too large: why */
} PgtlsFileRead;

extern char *pgtls_read_file(const char *path, const char *what, const char *hint,
							 bool secret, size_t *len);
extern bool pgtls_try_read_file(const char *path, bool secret, PgtlsFileRead *out);
extern char *pgtls_read_key_file(const char *path, const char *what, size_t *len);

/* The identity of a file's contents as a cache sees it: changes when it is replaced or written. */
typedef struct PgtlsFileIdentity
{
	bool		valid;
	dev_t		dev;
	ino_t		ino;
	off_t		size;
	struct timespec mtime;
} PgtlsFileIdentity;

extern bool pgtls_file_identity_same(const PgtlsFileIdentity *id, const struct stat *st);
extern void pgtls_file_identity_set(PgtlsFileIdentity *id, const struct stat *st);

extern const char *pgtls_key_permission_problem(const char *path, struct stat *st);
extern void pgtls_require_key_permissions(const char *path, const char *what, struct stat *st);

typedef struct PgtlsStagedFile PgtlsStagedFile;
extern PgtlsStagedFile *pgtls_stage_file(const char *path, const char *data,
										 size_t len, mode_t mode);
extern void pgtls_commit_file(PgtlsStagedFile *staged);
extern void pgtls_files_init(void);
extern void pgtls_files_defer_to_commit(void);
extern bool pgtls_files_deferring(void);
extern void pgtls_files_defer_stop(void);
extern void pgtls_files_then(void (*action) (void *arg), void *arg);

/* ---- src/locks.c: advisory locks with a bounded wait, transaction states, lists that follow subtransactions ---- */
extern void pgtls_lock(uint32 key1, uint32 key2, const char *what);
extern void pgtls_unlock(uint32 key1, uint32 key2);
extern void pgtls_wait_for_xact(TransactionId xid, const char *what);

typedef enum PgtlsXactState
{
	PGTLS_XACT_RUNNING,
	PGTLS_XACT_COMMITTED,
	PGTLS_XACT_ABORTED
} PgtlsXactState;
extern PgtlsXactState pgtls_xact_state(FullTransactionId fxid);
extern List *pgtls_follow_subxact(List *items, SubXactEvent event, size_t nest_offset,
								  void (*dropped) (void *item));

/* ---- src/compat.c: server APIs that differ between majors (see pgtls_compat.h) ---- */
extern void pgtls_setting_source(const char *name, const char **file, int *line);

#endif							/* PGTLS_BASE_H */
