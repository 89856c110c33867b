/*
 * ca_store.c
 *		The extension's CA files: load, cache, check, stage for writing.
 *
 * The CA lives in two files named by pgtls_admin.ca_cert_file and
 * pgtls_admin.ca_key_file.  Each backend keeps them parsed and re-reads a file
 * only when its identity (device, inode, size, mtime) changes, so issuing
 * does not parse PEM.  The key file must pass the same permission rule
 * PostgreSQL applies to ssl_key_file; it is checked on every use, not only
 * when it is re-read.
 */
#include "pgtls_stores.h"

#include <sys/stat.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

#define CA_HINT "Create a CA with SELECT pgtls_init_ca(); or adopt an existing one with pgtls_import_ca()."

/* Advisory lock key serializing changes to the CA files: "pgtlsCA\0". */
#define CA_LOCK_KEY1 0x7067746cU
#define CA_LOCK_KEY2 0x73434100U

typedef struct CachedFile
{
	char	   *path;			/* malloc'd */
	PgtlsFileIdentity id;
	void	   *object;			/* X509 * or EVP_PKEY *, one reference held */
} CachedFile;

static CachedFile cached_cert;
static CachedFile cached_key;

/* true once the cached key is known to match the cached certificate */
static bool cached_pair_checked = false;

/* PEM and fingerprint of cached_cert.object, made once per load (malloc'd) */
static char *cached_cert_pem;
static size_t cached_cert_pem_len;
static char cached_cert_fingerprint[96];

/* the certificates after the CA in its file (an intermediate's chain), made once per load (malloc'd) */
static char *cached_chain_pem;
static char *cached_upper_pem;

/* The CA this transaction switches to, in TopTransactionContext; valid while held_lxid is ours. */
static LocalTransactionId held_lxid = InvalidLocalTransactionId;
static X509 *held_cert;
static EVP_PKEY *held_key;
static char *held_upper_pem;

static bool
holding(void)
{
	return held_lxid != InvalidLocalTransactionId && MyProc != NULL && held_lxid == MyProc->lxid;
}

/*
 * Until this transaction ends, the CA files are cert (with key, and
 * upper_pem above it) for every load in it: the files themselves are
 * written when it commits.
 */
void
pgtls_ca_hold(X509 *cert, EVP_PKEY *key, const char *upper_pem)
{
	MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);

	if (X509_up_ref(cert) != 1 || EVP_PKEY_up_ref(key) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not keep the CA in memory");
	held_cert = pgtls_own_x509(cert);
	held_key = pgtls_own_pkey(key);
	held_upper_pem = pstrdup(upper_pem ? upper_pem : "");
	MemoryContextSwitchTo(old);
	held_lxid = MyProc->lxid;
}

/* The held CA into ca, its key too when with_key. */
static void
load_held(PgtlsCA *ca, bool with_key)
{
	List	   *upper = pgtls_read_cert_list(held_upper_pem, (int) strlen(held_upper_pem));

	if (X509_up_ref(held_cert) != 1 || (with_key && EVP_PKEY_up_ref(held_key) != 1))
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not keep the CA certificate");
	ca->cert = pgtls_own_x509(held_cert);
	ca->key = with_key ? pgtls_own_pkey(held_key) : NULL;
	ca->pem = pgtls_cert_pem(ca->cert);
	ca->fingerprint = pgtls_fingerprint_sha256(ca->cert);
	ca->chain_pem = pgtls_chain_pem(ca->cert, upper);
	ca->upper_pem = pstrdup(held_upper_pem);
}

static bool
cache_matches(const CachedFile *c, const char *path, const struct stat *st)
{
	return c->object != NULL && c->path != NULL && strcmp(c->path, path) == 0 &&
		pgtls_file_identity_same(&c->id, st);
}

static void
cache_store(CachedFile *c, const char *path, const struct stat *st, void *object)
{
	char	   *copy = strdup(path);

	if (copy == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	free(c->path);
	c->path = copy;
	pgtls_file_identity_set(&c->id, st);
	c->object = object;
}

static void
stat_ca_file(const char *path, const char *what, struct stat *st)
{
	if (stat(path, st) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open %s \"%s\": %m", what, path),
				 errhint(CA_HINT)));
}

/* Checks every CA pgtls_admin signs with must pass, whatever its origin. */
void
pgtls_check_ca_cert(X509 *cert, const char *what)
{
	uint32		ku = X509_get_key_usage(cert);
	EVP_PKEY   *pub = X509_get0_pubkey(cert);
	int			sig_nid;
	int			md_nid = NID_undef;

	if (!(X509_get_extension_flags(cert) & EXFLAG_CA))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is not a CA certificate", what),
				 errdetail("It lacks basicConstraints CA:TRUE.")));
	if (ku != UINT32_MAX && !(ku & KU_KEY_CERT_SIGN))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s may not sign certificates", what),
				 errdetail("Its keyUsage lacks keyCertSign.")));
	sig_nid = X509_get_signature_nid(cert);
	if (OBJ_find_sigid_algs(sig_nid, &md_nid, NULL) &&
		(md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_md4 ||
		 md_nid == NID_md2 || md_nid == NID_md5_sha1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is signed with the weak digest %s", what, OBJ_nid2sn(md_nid)),
				 (X509_get_extension_flags(cert) & EXFLAG_SS) ?
				 errdetail("This is pgtls_admin's policy, not OpenSSL's: OpenSSL never checks the signature of a self-signed root, so the server would accept this CA, but pgtls_admin issues only from CAs signed with SHA-256 or stronger.") :
				 errdetail("OpenSSL at security level 2 refuses a chain through a CA certificate signed with %s (\"ca md too weak\").",
						   OBJ_nid2sn(md_nid)),
				 errhint("Create a new CA with SELECT pgtls_init_ca().")));
	if (pub != NULL && EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA && EVP_PKEY_get_bits(pub) < 2048)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has a %d-bit RSA key, below the 2048 bits required", what,
						EVP_PKEY_get_bits(pub))));
}

static bool
self_signed(X509 *cert)
{
	return (X509_get_extension_flags(cert) & EXFLAG_SS) != 0;
}

/*
 * What follows a leaf issued by ca, for a peer that trusts only the root:
 * ca itself and the intermediates of upper (the certificates above it),
 * never a self-signed root.  "" when ca is a root.
 */
char *
pgtls_chain_pem(X509 *ca, List *upper)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	if (self_signed(ca))
		return buf.data;
	appendStringInfoString(&buf, text_to_cstring(pgtls_cert_pem(ca)));
	foreach(lc, upper)
		if (!self_signed(lfirst(lc)))
			appendStringInfoString(&buf, text_to_cstring(pgtls_cert_pem(lfirst(lc))));
	return buf.data;
}

/* The certificates of list from the second on, as PEM. */
static char *
upper_pem_of(List *certs)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	for_each_from(lc, certs, 1)
		appendStringInfoString(&buf, text_to_cstring(pgtls_cert_pem(lfirst(lc))));
	return buf.data;
}

/* The CA certificate, parsed and checked, and its PEM, into ca (key NULL). */
void
pgtls_ca_load_cert(PgtlsCA *ca)
{
	char	   *path = pgtls_resolve_path(pgtls_ca_cert_file);
	struct stat st;

	if (holding())
	{
		load_held(ca, false);
		return;
	}
	stat_ca_file(path, "CA certificate file", &st);
	if (!cache_matches(&cached_cert, path, &st))
	{
		size_t		len;
		char	   *pem = pgtls_read_file(path, "CA certificate file", CA_HINT, false, &len);
		X509	   *cert = pgtls_parse_cert(pem, (int) len, "the CA certificate file", CA_HINT);
		text	   *cert_pem;
		char	   *copy;
		char	   *chain;
		char	   *upper;
		char	   *fingerprint;
		List	   *certs = pgtls_read_cert_list(pem, (int) len);

		/* everything that may raise comes before the copies that outlive the transaction (malloc) */
		pgtls_check_ca_cert(cert, "the CA certificate file");
		chain = pgtls_chain_pem(cert, list_delete_first(list_copy(certs)));
		upper = upper_pem_of(certs);
		cert_pem = pgtls_cert_pem(cert);
		fingerprint = pgtls_fingerprint_sha256(cert);
		chain = strdup(chain);
		upper = strdup(upper);
		copy = malloc(VARSIZE_ANY_EXHDR(cert_pem));
		if (copy == NULL || chain == NULL || upper == NULL || X509_up_ref(cert) != 1)
		{
			free(copy);
			free(chain);
			free(upper);
			pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not keep the CA certificate");
		}
		memcpy(copy, VARDATA_ANY(cert_pem), VARSIZE_ANY_EXHDR(cert_pem));
		X509_free(cached_cert.object);
		cached_cert.object = NULL;
		free(cached_cert_pem);
		free(cached_chain_pem);
		free(cached_upper_pem);
		cached_chain_pem = chain;
		cached_upper_pem = upper;
		cached_cert_pem = copy;
		cached_pair_checked = false;
		cached_cert_pem_len = VARSIZE_ANY_EXHDR(cert_pem);
		strlcpy(cached_cert_fingerprint, fingerprint, sizeof(cached_cert_fingerprint));
		cache_store(&cached_cert, path, &st, cert);
	}
	if (X509_up_ref(cached_cert.object) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not keep the CA certificate");
	ca->cert = pgtls_own_x509(cached_cert.object);
	ca->key = NULL;
	ca->pem = cstring_to_text_with_len(cached_cert_pem, (int) cached_cert_pem_len);
	ca->fingerprint = pstrdup(cached_cert_fingerprint);
	ca->chain_pem = pstrdup(cached_chain_pem);
	ca->upper_pem = pstrdup(cached_upper_pem);
}

/*
 * The CA certificate, its PEM and private key, into ca.  The key must pass
 * the permission rule and match the certificate.
 */
void
pgtls_ca_load(PgtlsCA *ca)
{
	char	   *path;
	struct stat st;

	if (holding())
	{
		load_held(ca, true);
		return;
	}
	pgtls_ca_load_cert(ca);
	path = pgtls_resolve_path(pgtls_ca_key_file);
	stat_ca_file(path, "CA private key file", &st);
	pgtls_require_key_permissions(path, "CA private key file", &st);
	if (!cache_matches(&cached_key, path, &st))
	{
		size_t		len;
		char	   *pem = pgtls_read_file(path, "CA private key file", CA_HINT, true, &len);
		EVP_PKEY   *key = pgtls_parse_private_key(pem, (int) len, "the CA private key file", CA_HINT);

		if (EVP_PKEY_up_ref(key) != 1)
			pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not keep the CA private key");
		EVP_PKEY_free(cached_key.object);
		cached_key.object = NULL;
		cache_store(&cached_key, path, &st, key);
		cached_pair_checked = false;
	}
	if (EVP_PKEY_up_ref(cached_key.object) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not keep the CA private key");
	ca->key = pgtls_own_pkey(cached_key.object);

	/* catches a key and certificate from two different CAs; redone when either file changes */
	if (!cached_pair_checked && X509_check_private_key(ca->cert, ca->key) != 1)
	{
		pgtls_ossl_clear();
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the CA private key does not match the CA certificate"),
				 errdetail("Files \"%s\" and \"%s\".", cached_cert.path, path),
				 errhint(CA_HINT)));
	}
	cached_pair_checked = true;
}

/*
 * The CA files as they are, without raising: false when either is missing,
 * unreadable, unusable or the key does not match.  For keeping a copy of a
 * CA that is about to be replaced, which need not be there.
 */
bool
pgtls_ca_try_load(PgtlsCA *ca)
{
	PgtlsFileRead cf;
	PgtlsFileRead kf;
	BIO		   *bio;
	bool		encrypted = false;
	List	   *certs;

	memset(ca, 0, sizeof(*ca));
	if (holding())
	{
		load_held(ca, true);
		return true;
	}
	if (!pgtls_try_read_file(pgtls_resolve_path(pgtls_ca_cert_file), false, &cf) ||
		!pgtls_try_read_file(pgtls_resolve_path(pgtls_ca_key_file), true, &kf) ||
		pgtls_key_permission_problem(pgtls_resolve_path(pgtls_ca_key_file), &kf.st) != NULL)
		return false;
	certs = pgtls_read_cert_list(cf.data, (int) cf.len);
	bio = pgtls_mem_bio(kf.data, (int) kf.len);
	ca->key = pgtls_own_pkey(PEM_read_bio_PrivateKey(bio, NULL, pgtls_no_passphrase, &encrypted));
	pgtls_ossl_clear();
	if (certs == NIL || ca->key == NULL || X509_check_private_key(linitial(certs), ca->key) != 1)
	{
		pgtls_ossl_clear();
		return false;
	}
	ca->cert = linitial(certs);
	ca->pem = pgtls_cert_pem(ca->cert);
	ca->fingerprint = pgtls_fingerprint_sha256(ca->cert);
	ca->chain_pem = pgtls_chain_pem(ca->cert, list_delete_first(list_copy(certs)));
	ca->upper_pem = upper_pem_of(certs);
	return true;
}

/*
 * Stage the CA key and certificate (followed by upper_pem, the certificates
 * above it, when it is an intermediate) for writing; the caller commits
 * them, the key first, so a crash between the renames is caught by the
 * key/certificate match check.
 */
void
pgtls_ca_stage(EVP_PKEY *key, X509 *cert, const char *upper_pem, PgtlsStagedFile **key_file,
			   PgtlsStagedFile **cert_file)
{
	text	   *key_pem = pgtls_private_key_pem(key);
	char	   *cert_pem = psprintf("%s%s", text_to_cstring(pgtls_cert_pem(cert)), upper_pem ? upper_pem : "");

	*key_file = pgtls_stage_file(pgtls_resolve_path(pgtls_ca_key_file), VARDATA_ANY(key_pem),
								 VARSIZE_ANY_EXHDR(key_pem), 0600);
	*cert_file = pgtls_stage_file(pgtls_resolve_path(pgtls_ca_cert_file), cert_pem,
								  strlen(cert_pem), 0600);
}

/* Take the CA lock and refuse to overwrite an existing CA unless asked to. */
void
pgtls_ca_lock(bool replace)
{
	char	   *paths[2];
	int			i;

	/* the files are per cluster, so the lock is too; held to the end of the transaction */
	pgtls_lock(CA_LOCK_KEY1, CA_LOCK_KEY2, "the CA files");

	paths[0] = pgtls_resolve_path(pgtls_ca_cert_file);
	paths[1] = pgtls_resolve_path(pgtls_ca_key_file);
	for (i = 0; i < 2 && !replace; i++)
	{
		struct stat st;

		if (stat(paths[i], &st) < 0)
		{
			if (errno == ENOENT)
				continue;
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not stat file \"%s\": %m", paths[i])));
		}
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("a CA already exists: \"%s\"", paths[i]),
				 errdetail("Replacing the CA makes every certificate it issued unverifiable."),
				 errhint("Pass replace => true to replace it.")));
	}
}
