/*
 * ossl.c
 *		OpenSSL error reporting and object lifetime for pgtls_admin.
 *
 * Every OpenSSL object a SQL function creates is handed to pgtls_own_*(),
 * which ties its release to the current memory context through a reset
 * callback.  Entry points run their work in a context from
 * pgtls_work_begin(); deleting it on success, or the transaction abort
 * deleting its parent after an ERROR, frees every object on every path.
 * One helper turns the OpenSSL error queue into text and clears it.
 */
#include "pgtls_base.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

typedef struct OwnedObject
{
	MemoryContextCallback cb;
	void	   *obj;
	void		(*free_fn) (void *obj);
} OwnedObject;

static void
release_owned(void *arg)
{
	OwnedObject *owned = (OwnedObject *) arg;

	if (owned->obj != NULL)
		owned->free_fn(owned->obj);
	owned->obj = NULL;
}

/*
 * Tie obj's release to the current memory context; returns obj.  NULL is
 * passed through, so pgtls_own(X509_new(), ...) can be checked afterwards.
 */
void *
pgtls_own(void *obj, void (*free_fn) (void *obj))
{
	OwnedObject *owned;

	if (obj == NULL)
		return NULL;
	owned = MemoryContextAllocZero(CurrentMemoryContext, sizeof(OwnedObject));
	owned->obj = obj;
	owned->free_fn = free_fn;
	owned->cb.func = release_owned;
	owned->cb.arg = owned;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &owned->cb);
	return obj;
}

/* OpenSSL's free functions take typed pointers; these adapt them. */
static void
free_x509(void *p)
{
	X509_free(p);
}

static void
free_pkey(void *p)
{
	EVP_PKEY_free(p);
}

static void
free_bio(void *p)
{
	BIO_free_all(p);
}

static void
free_bn(void *p)
{
	BN_clear_free(p);
}

static void
free_general_names(void *p)
{
	GENERAL_NAMES_free(p);
}

static void
free_eku(void *p)
{
	EXTENDED_KEY_USAGE_free(p);
}

static void
free_asn1_integer(void *p)
{
	ASN1_INTEGER_free(p);
}

static void
free_crl(void *p)
{
	X509_CRL_free(p);
}

static void
free_store(void *p)
{
	X509_STORE_free(p);
}

static void
free_store_ctx(void *p)
{
	X509_STORE_CTX_free(p);
}

void
pgtls_free_md_ctx(void *p)
{
	EVP_MD_CTX_free(p);
}

void
pgtls_free_x509_stack(void *p)
{
	sk_X509_pop_free(p, X509_free);
}

X509 *
pgtls_own_x509(X509 *x)
{
	return pgtls_own(x, free_x509);
}

EVP_PKEY *
pgtls_own_pkey(EVP_PKEY *k)
{
	return pgtls_own(k, free_pkey);
}

BIO *
pgtls_own_bio(BIO *b)
{
	return pgtls_own(b, free_bio);
}

BIGNUM *
pgtls_own_bn(BIGNUM *bn)
{
	return pgtls_own(bn, free_bn);
}

GENERAL_NAMES *
pgtls_own_general_names(GENERAL_NAMES *names)
{
	return pgtls_own(names, free_general_names);
}

EXTENDED_KEY_USAGE *
pgtls_own_eku(EXTENDED_KEY_USAGE *eku)
{
	return pgtls_own(eku, free_eku);
}

ASN1_INTEGER *
pgtls_own_asn1_integer(ASN1_INTEGER *i)
{
	return pgtls_own(i, free_asn1_integer);
}

X509_CRL *
pgtls_own_crl(X509_CRL *crl)
{
	return pgtls_own(crl, free_crl);
}

X509_STORE *
pgtls_own_store(X509_STORE *store)
{
	return pgtls_own(store, free_store);
}

X509_STORE_CTX *
pgtls_own_store_ctx(X509_STORE_CTX *ctx)
{
	return pgtls_own(ctx, free_store_ctx);
}

typedef struct OwnedSecret
{
	MemoryContextCallback cb;
	char	   *buf;
	size_t		len;
} OwnedSecret;

static void
cleanse(void *arg)
{
	OwnedSecret *secret = (OwnedSecret *) arg;

	OPENSSL_cleanse(secret->buf, secret->len);
}

/*
 * Wipe a palloc'd buffer that held key material when its context goes away,
 * whether the function returned or raised an ERROR.
 */
void
pgtls_own_secret(char *buf, size_t len)
{
	OwnedSecret *secret = MemoryContextAllocZero(CurrentMemoryContext, sizeof(OwnedSecret));

	secret->buf = buf;
	secret->len = len;
	secret->cb.func = cleanse;
	secret->cb.arg = secret;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &secret->cb);
}

/*
 * A private context for one SQL call's OpenSSL objects.  Results that must
 * outlive it are copied into the caller's context before pgtls_work_end().
 */
MemoryContext
pgtls_work_begin(void)
{
	MemoryContext work;

	work = AllocSetContextCreate(CurrentMemoryContext, "pgtls_admin work",
								 ALLOCSET_SMALL_SIZES);
	pgtls_ossl_clear();
	return MemoryContextSwitchTo(work);
}

void
pgtls_work_end(MemoryContext caller)
{
	MemoryContext work = CurrentMemoryContext;

	MemoryContextSwitchTo(caller);
	MemoryContextDelete(work);
}

void
pgtls_ossl_clear(void)
{
	ERR_clear_error();
}

/*
 * Drain the OpenSSL error queue into one line of text.  The queue only holds
 * library, reason and file context: never key bytes or passphrases.
 */
char *
pgtls_ossl_error(void)
{
	StringInfoData buf;
	unsigned long code;
	const char *data;
	int			flags;

	initStringInfo(&buf);
	while ((code = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0)
	{
		const char *reason = ERR_reason_error_string(code);

		if (buf.len > 0)
			appendStringInfoString(&buf, "; ");
		if (reason != NULL)
			appendStringInfoString(&buf, reason);
		else
			appendStringInfo(&buf, "OpenSSL error %lu", code);
		if ((flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0')
			appendStringInfo(&buf, " (%s)", data);
	}
	if (buf.len == 0)
		appendStringInfoString(&buf, "no further detail from OpenSSL");
	return buf.data;
}

void
pgtls_ossl_raise(int sqlstate, const char *message)
{
	char	   *detail = pgtls_ossl_error();

	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg_internal("%s", message),
			 errdetail("OpenSSL: %s.", detail)));
}

/*
 * Re-raise the current error without the "STATEMENT:" log line, for
 * functions whose arguments hold a private key: with the default
 * log_min_error_statement a failed call would otherwise write the key into
 * the server log.  Call from PG_CATCH with the context to copy the error to.
 */
void
pgtls_rethrow_hiding_statement(MemoryContext cxt)
{
	ErrorData  *edata;

	MemoryContextSwitchTo(cxt);
	edata = CopyErrorData();
	FlushErrorState();
	edata->hide_stmt = true;
	ReThrowError(edata);
}

/*
 * A digest fetched once per backend.  OpenSSL 3 looks an implicitly
 * fetched digest (EVP_sha256()) up in the provider store, under a lock, on
 * every use; passing a fetched one skips that.
 */
const EVP_MD *
pgtls_md(PgtlsDigest which)
{
	static const char *const names[PGTLS_MD_COUNT] = {"SHA1", "SHA256", "SHA384", "SHA512"};
	static EVP_MD *fetched[PGTLS_MD_COUNT];

	if (fetched[which] == NULL)
	{
		fetched[which] = EVP_MD_fetch(NULL, names[which], NULL);
		if (fetched[which] == NULL)
			pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not fetch a digest");
	}
	return fetched[which];
}

BIO *
pgtls_mem_bio(const char *data, int len)
{
	BIO		   *bio;

	if (data == NULL)
		bio = BIO_new(BIO_s_mem());
	else
		bio = BIO_new_mem_buf(data, len);
	if (bio == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not allocate an OpenSSL memory buffer");
	return pgtls_own_bio(bio);
}

/* A BIO in OpenSSL's secure heap (or wiped on free), for key material. */
BIO *
pgtls_secure_bio(void)
{
	BIO		   *bio = pgtls_own_bio(BIO_new(BIO_s_secmem()));

	if (bio == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not allocate a secure buffer");
	return bio;
}

/* Its contents as text that is wiped when the current context goes away. */
text *
pgtls_secure_bio_text(BIO *bio)
{
	text	   *result = pgtls_bio_to_text(bio);

	pgtls_own_secret((char *) result, VARSIZE(result));
	return result;
}

text *
pgtls_bio_to_text(BIO *bio)
{
	char	   *data;
	long		len = BIO_get_mem_data(bio, &data);

	return cstring_to_text_with_len(data, (int) len);
}

char *
pgtls_bio_to_cstring(BIO *bio)
{
	char	   *data;
	long		len = BIO_get_mem_data(bio, &data);

	return pnstrdup(data, (Size) len);
}
