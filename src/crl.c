/*
 * crl.c
 *		Revocation: the CRL file and pgtls_revoke.
 *
 * The CRL is a pure function of the registry: every revoked serial, signed
 * by the CA, valid until the CA itself expires (a CRL whose nextUpdate has
 * passed would make the server refuse every client certificate).  It is
 * rebuilt and atomically replaced under a transaction-scoped lock, from the
 * newest snapshot, before the revoking transaction commits.  So a committed
 * revocation is always in the file; a revocation whose transaction aborts
 * after the write stays listed only until the next rewrite (fail closed).
 */
#include "pgtls_admin.h"

#include <openssl/bn.h>
#include <openssl/pem.h>

#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

/* Advisory lock key serializing CRL rewrites: "pgtlsCRL". */
#define CRL_LOCK_KEY1 0x7067746cU
#define CRL_LOCK_KEY2 0x7343524cU

/* RFC 5280 section 5.3.1 (removeFromCRL is for delta CRLs and not offered) */
static const struct
{
	const char *name;
	int			code;
}			reasons[] =
{
	{"unspecified", 0},
	{"keyCompromise", 1},
	{"cACompromise", 2},
	{"affiliationChanged", 3},
	{"superseded", 4},
	{"cessationOfOperation", 5},
	{"certificateHold", 6},
	{"privilegeWithdrawn", 9},
	{"aACompromise", 10},
};

static void
free_crl(void *p)
{
	X509_CRL_free(p);
}

X509_CRL *
pgtls_own_crl(X509_CRL *crl)
{
	return pgtls_own(crl, free_crl);
}

const char *
pgtls_reason_canonical(const char *reason)
{
	for (int i = 0; i < (int) lengthof(reasons); i++)
		if (pg_strcasecmp(reason, reasons[i].name) == 0)
			return reasons[i].name;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown revocation reason \"%s\"", reason),
			 errhint("Use one of unspecified, keyCompromise, cACompromise, affiliationChanged, superseded, cessationOfOperation, certificateHold, privilegeWithdrawn, aACompromise.")));
	pg_unreachable();
}

static int
reason_code(const char *reason)
{
	for (int i = 0; i < (int) lengthof(reasons); i++)
		if (strcmp(reason, reasons[i].name) == 0)
			return reasons[i].code;
	return 0;
}

/* A serial in any case, with or without colons, as the registry spells it. */
char *
pgtls_normalize_serial(const char *serial)
{
	char	   *hex = palloc(strlen(serial) + 1);
	char	   *q = hex;
	BIGNUM	   *bn = NULL;

	for (const char *p = serial; *p; p++)
	{
		if (*p == ':')
			continue;
		if (!isxdigit((unsigned char) *p))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid serial \"%s\"", serial),
					 errhint("A serial is hexadecimal, such as 4F3A... or 4f:3a:...")));
		*q++ = *p;
	}
	*q = '\0';
	if (q == hex || q - hex > 40)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid serial \"%s\"", serial),
				 errdetail("A serial has 1 to 40 hexadecimal digits.")));
	if (BN_hex2bn(&bn, hex) == 0)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "invalid serial");
	pgtls_own_bn(bn);
	return pgtls_serial_hex(pgtls_own_asn1_integer(BN_to_ASN1_INTEGER(bn, NULL)));
}

static X509_REVOKED *
revoked_entry(BIGNUM **bn, const PgtlsRevoked *r)
{
	X509_REVOKED *rev = X509_REVOKED_new();
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME  *when = NULL;
	ASN1_ENUMERATED *why = NULL;
	int			code = reason_code(r->reason);
	bool		ok;

	ok = rev != NULL && BN_hex2bn(bn, r->serial) != 0 &&
		(serial = BN_to_ASN1_INTEGER(*bn, NULL)) != NULL &&
		X509_REVOKED_set_serialNumber(rev, serial) == 1 &&
		(when = ASN1_TIME_set(NULL, timestamptz_to_time_t(r->revoked_at))) != NULL &&
		X509_REVOKED_set_revocationDate(rev, when) == 1;
	/* RFC 5280: the reason code should be absent rather than unspecified */
	if (ok && code != 0)
		ok = (why = ASN1_ENUMERATED_new()) != NULL &&
			ASN1_ENUMERATED_set(why, code) == 1 &&
			X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, why, 0, 0) == 1;
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(when);
	ASN1_ENUMERATED_free(why);
	if (!ok)
	{
		X509_REVOKED_free(rev);
		return NULL;
	}
	return rev;
}

/* A CRL of every revoked serial in the registry, signed by the CA. */
static X509_CRL *
build_crl(X509 *ca_cert, EVP_PKEY *ca_key)
{
	List	   *revoked = pgtls_registry_revoked();
	X509_CRL   *crl = pgtls_own_crl(X509_CRL_new());
	BIGNUM	   *bn = pgtls_own_bn(BN_new());
	ASN1_TIME  *now = NULL;
	ASN1_INTEGER *number = NULL;
	AUTHORITY_KEYID *akid = NULL;
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca_cert);
	ListCell   *lc;
	bool		ok;

	ok = crl != NULL && bn != NULL &&
		X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1 &&
		X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) == 1 &&
		(now = X509_gmtime_adj(NULL, 0)) != NULL &&
		X509_CRL_set1_lastUpdate(crl, now) == 1 &&
		X509_CRL_set1_nextUpdate(crl, X509_get0_notAfter(ca_cert)) == 1;
	ASN1_TIME_free(now);
	foreach(lc, revoked)
	{
		X509_REVOKED *rev = ok ? revoked_entry(&bn, lfirst(lc)) : NULL;

		ok = rev != NULL && X509_CRL_add0_revoked(crl, rev) == 1;
	}
	/* a CRL number that grows with time needs no stored state */
	ok = ok && X509_CRL_sort(crl) == 1 &&
		(number = ASN1_INTEGER_new()) != NULL &&
		ASN1_INTEGER_set_int64(number, GetCurrentTimestamp()) == 1 &&
		X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) == 1;
	ASN1_INTEGER_free(number);
	if (ok && ski != NULL)
	{
		ok = (akid = AUTHORITY_KEYID_new()) != NULL &&
			(akid->keyid = ASN1_OCTET_STRING_dup(ski)) != NULL &&
			X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) == 1;
		AUTHORITY_KEYID_free(akid);
	}
	if (!ok)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not build the CRL");
	if (X509_CRL_sign(crl, ca_key, pgtls_signing_digest(ca_key)) <= 0)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not sign the CRL");
	return crl;
}

static void
lock_crl(void)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, InvalidOid, CRL_LOCK_KEY1, CRL_LOCK_KEY2, 2);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
}

/*
 * Take the CRL lock (held to the end of the transaction), build the CRL from
 * the registry and stage it at pgtls_admin.crl_file for the caller to commit.
 */
PgtlsStagedFile *
pgtls_crl_stage(X509 *ca_cert, EVP_PKEY *ca_key)
{
	BIO		   *bio = pgtls_mem_bio(NULL, 0);
	char	   *data;
	long		len;

	lock_crl();
	if (PEM_write_bio_X509_CRL(bio, build_crl(ca_cert, ca_key)) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the CRL");
	len = BIO_get_mem_data(bio, &data);
	return pgtls_stage_file(pgtls_resolve_path(pgtls_crl_file), data, len, 0600);
}

/* Does the running server check the CRL we write? */
static bool
server_uses_our_crl(void)
{
	const char *setting = GetConfigOption("ssl_crl_file", true, false);

	return setting != NULL && setting[0] != '\0' &&
		strcmp(pgtls_resolve_path(setting), pgtls_resolve_path(pgtls_crl_file)) == 0;
}

/*
 * Revoke serial: record it, rewrite the CRL and have the server reload it
 * before returning, so the next connection with that certificate fails.
 * Returns false when it was already revoked (the CRL is rewritten anyway).
 */
bool
pgtls_revoke_serial(const char *serial, const char *reason)
{
	X509	   *ca_cert;
	EVP_PKEY   *ca_key;
	bool		revoked_now;
	PgtlsRegistryRow row;

	if (!pgtls_registry_lookup(serial, &row))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no certificate with serial %s was issued here", serial),
				 errhint("Serials are listed in pgtls_certificates.")));
	pgtls_check_revoke_target(row.role);

	/* lock first, so the CA we sign with is the one current at commit */
	lock_crl();
	pgtls_ca_load(&ca_cert, &ca_key);
	revoked_now = pgtls_registry_revoke(serial, reason);
	pgtls_commit_file(pgtls_crl_stage(ca_cert, ca_key));
	if (server_uses_our_crl())
		pgtls_reload_server();
	else
		ereport(NOTICE,
				(errmsg("the server does not check the CRL pgtls_admin writes"),
				 errdetail("ssl_crl_file is not \"%s\".", pgtls_crl_file),
				 errhint("Run pgtls_enable_ssl(), or set ssl_crl_file = '%s' and reload.", pgtls_crl_file)));
	return revoked_now;
}

text *
pgtls_crl_text(void)
{
	size_t		len;
	char	   *pem = pgtls_read_file(pgtls_resolve_path(pgtls_crl_file), "CRL file",
									  "The CRL is written by pgtls_init_ca(), pgtls_enable_ssl() and pgtls_revoke().",
									  false, &len);

	return cstring_to_text_with_len(pem, (int) len);
}
