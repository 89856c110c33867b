/*
 * crl_der.c
 *		A CRL, as DER, from a list of revocations and the CA that signs it.
 *
 * Its nextUpdate is pgtls_admin.crl_validity from now (never past the CA's
 * own expiry), or the CA's expiry when that setting is 0.  A CRL past its
 * nextUpdate makes the server refuse every client certificate: with the
 * background worker re-signing it well before, that is how a node whose
 * worker stopped fails closed.
 */
#include "pgtls_x509.h"

#include <openssl/bn.h>

#include "lib/stringinfo.h"
#include "utils/timestamp.h"

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

/* The name of an RFC 5280 reason code ("unspecified" for one we do not offer). */
const char *
pgtls_reason_name(int code)
{
	for (int i = 0; i < (int) lengthof(reasons); i++)
		if (reasons[i].code == code)
			return reasons[i].name;
	return "unspecified";
}

static int
reason_code(const char *reason)
{
	for (int i = 0; i < (int) lengthof(reasons); i++)
		if (strcmp(reason, reasons[i].name) == 0)
			return reasons[i].code;
	return 0;
}

/* ---- DER for the revoked-certificate list ----
 *
 * OpenSSL's generic ASN.1 encoder spends most of a large CRL's cost on
 * per-field template work, and it encodes the list twice (to sign, then to
 * write).  The entries are simple, so they are encoded here once, directly;
 * everything else (issuer, times, extensions, the AlgorithmIdentifier) comes
 * from a CRL without entries that OpenSSL encodes and signs.
 */

static void
der_length(StringInfo buf, size_t len)
{
	unsigned char tmp[sizeof(size_t)];
	int			n = 0;

	if (len < 128)
	{
		appendStringInfoChar(buf, (char) len);
		return;
	}
	while (len > 0)
	{
		tmp[n++] = (unsigned char) (len & 0xFF);
		len >>= 8;
	}
	appendStringInfoChar(buf, (char) (0x80 | n));
	while (n > 0)
		appendStringInfoChar(buf, (char) tmp[--n]);
}

static void
der_wrap(StringInfo out, unsigned char tag, const char *content, size_t len)
{
	appendStringInfoChar(out, (char) tag);
	der_length(out, len);
	appendBinaryStringInfo(out, content, len);
}

/* The value of a hex digit, -1 if c is not one. */
int
pgtls_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* A positive INTEGER from a hex serial, minimal as DER requires. */
static void
der_serial(StringInfo out, const char *hex)
{
	unsigned char bytes[22];
	size_t		hexlen = strlen(hex);
	size_t		i = 0;
	int			n = 1;			/* bytes[0] is room for a sign byte */
	int			first;

	if (hexlen == 0 || hexlen > 40)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the registry holds an invalid serial \"%s\"", hex)));
	bytes[0] = 0;
	if (hexlen % 2 == 1)
	{
		int			lo = pgtls_hex_digit(hex[0]);

		if (lo < 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the registry holds an invalid serial \"%s\"", hex)));
		bytes[n++] = (unsigned char) lo;
		i = 1;
	}
	for (; i < hexlen; i += 2)
	{
		int			hi = pgtls_hex_digit(hex[i]);
		int			lo = pgtls_hex_digit(hex[i + 1]);

		if (hi < 0 || lo < 0)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the registry holds an invalid serial \"%s\"", hex)));
		bytes[n++] = (unsigned char) (hi << 4 | lo);
	}
	first = 1;
	while (first < n - 1 && bytes[first] == 0)
		first++;
	if (bytes[first] & 0x80)
		first--;				/* keep a zero byte: the serial is positive */
	der_wrap(out, V_ASN1_INTEGER, (char *) bytes + first, n - first);
}

/* UTCTime through 2049, GeneralizedTime after, as RFC 5280 requires. */
static void
der_time(StringInfo out, TimestampTz ts)
{
	time_t		t = timestamptz_to_time_t(ts);
	struct tm	tm;
	char		text[20];

	gmtime_r(&t, &tm);
	if (tm.tm_year + 1900 >= 1950 && tm.tm_year + 1900 <= 2049)
	{
		strftime(text, sizeof(text), "%y%m%d%H%M%SZ", &tm);
		der_wrap(out, V_ASN1_UTCTIME, text, strlen(text));
	}
	else
	{
		strftime(text, sizeof(text), "%Y%m%d%H%M%SZ", &tm);
		der_wrap(out, V_ASN1_GENERALIZEDTIME, text, strlen(text));
	}
}

/* revokedCertificates: SEQUENCE OF SEQUENCE { serial, date, [reasonCode] } */
static void
der_revoked_list(StringInfo out, List *revoked)
{
	StringInfoData list;
	StringInfoData entry;
	ListCell   *lc;

	initStringInfo(&list);
	initStringInfo(&entry);
	foreach(lc, revoked)
	{
		PgtlsRevoked *r = lfirst(lc);
		int			code = reason_code(r->reason);

		resetStringInfo(&entry);
		der_serial(&entry, r->serial);
		der_time(&entry, r->revoked_at);
		/* RFC 5280: the reason code should be absent rather than unspecified */
		if (code != 0)
		{
			/* Extensions { Extension { id-ce-cRLReasons, OCTET STRING { ENUMERATED code } } } */
			const char	ext[] = {0x30, 0x0C, 0x30, 0x0A, 0x06, 0x03, 0x55, 0x1D, 0x15,
				0x04, 0x03, 0x0A, 0x01, (char) code};

			appendBinaryStringInfo(&entry, ext, sizeof(ext));
		}
		der_wrap(&list, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, entry.data, entry.len);
	}
	der_wrap(out, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, list.data, list.len);
}

/* Skip one DER element at *p within end; false if malformed. */
static bool
der_skip(const unsigned char **p, const unsigned char *end)
{
	long		len;
	int			tag;
	int			cls;
	int			rc = ASN1_get_object(p, &len, &tag, &cls, end - *p);

	if (rc & 0x80)
		return false;
	*p += len;
	return *p <= end;
}

/* A CRL without entries, as OpenSSL encodes and signs it. */
static X509_CRL *
crl_template(X509 *ca_cert, EVP_PKEY *ca_key)
{
	X509_CRL   *crl = pgtls_own_crl(X509_CRL_new());
	ASN1_TIME  *now = NULL;
	ASN1_TIME  *next = NULL;
	ASN1_INTEGER *number = NULL;
	AUTHORITY_KEYID *akid = NULL;
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca_cert);
	bool		ok;

	ok = crl != NULL &&
		X509_CRL_set_version(crl, X509_CRL_VERSION_2) == 1 &&
		X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca_cert)) == 1 &&
		(now = X509_gmtime_adj(NULL, 0)) != NULL &&
		X509_CRL_set1_lastUpdate(crl, now) == 1;
	if (ok && pgtls_crl_validity > 0)
		ok = (next = X509_gmtime_adj(NULL, pgtls_crl_validity)) != NULL;
	if (ok && (next == NULL || ASN1_TIME_compare(next, X509_get0_notAfter(ca_cert)) > 0))
		ok = X509_CRL_set1_nextUpdate(crl, X509_get0_notAfter(ca_cert)) == 1;
	else if (ok)
		ok = X509_CRL_set1_nextUpdate(crl, next) == 1;
	ASN1_TIME_free(now);
	ASN1_TIME_free(next);
	/* a CRL number that grows with time needs no stored state */
	ok = ok && (number = ASN1_INTEGER_new()) != NULL &&
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
	ok = ok && X509_CRL_sign(crl, ca_key, pgtls_signing_digest(ca_key)) > 0;
	if (!ok)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not build the CRL");
	return crl;
}

/* A copy of OpenSSL's i2d output as a StringInfo. */
static StringInfo
i2d_copy(int len, unsigned char *der)
{
	StringInfo	s;

	if (len <= 0)
	{
		OPENSSL_free(der);
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the CRL");
	}
	s = makeStringInfo();
	appendBinaryStringInfo(s, (char *) der, len);
	OPENSSL_free(der);
	return s;
}

/*
 * The DER of a CRL listing revoked (PgtlsRevoked *), signed by the CA: the
 * template's TBS with the entries spliced in after nextUpdate, signed with
 * the same key and algorithm.
 */
StringInfo
pgtls_crl_der(X509 *ca_cert, EVP_PKEY *ca_key, List *revoked)
{
	X509_CRL   *crl = crl_template(ca_cert, ca_key);
	const X509_ALGOR *alg;
	unsigned char *der = NULL;
	int			der_len;
	StringInfo	tbs;
	StringInfo	algid;
	StringInfoData content;
	StringInfoData body;
	StringInfo	result = makeStringInfo();
	const unsigned char *p;
	const unsigned char *start;
	const unsigned char *end;
	EVP_MD_CTX *md_ctx;
	unsigned char *sig;
	size_t		sig_len = 0;
	long		len;
	int			tag;
	int			cls;
	bool		ok;

	X509_CRL_get0_signature(crl, NULL, &alg);
	der_len = i2d_re_X509_CRL_tbs(crl, &der);
	tbs = i2d_copy(der_len, der);
	der = NULL;
	der_len = i2d_X509_ALGOR(alg, &der);
	algid = i2d_copy(der_len, der);

	/* TBSCertList: version, signature, issuer, thisUpdate, nextUpdate | crlExtensions */
	p = (const unsigned char *) tbs->data;
	end = p + tbs->len;
	ok = !(ASN1_get_object(&p, &len, &tag, &cls, end - p) & 0x80) && p + len == end;
	start = p;
	for (int i = 0; ok && i < 5; i++)
		ok = der_skip(&p, end);
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("unexpected encoding of a CRL")));
	initStringInfo(&content);
	appendBinaryStringInfo(&content, (const char *) start, p - start);
	if (revoked != NIL)
		der_revoked_list(&content, revoked);
	appendBinaryStringInfo(&content, (const char *) p, end - p);
	initStringInfo(&body);
	der_wrap(&body, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, content.data, content.len);

	md_ctx = pgtls_own(EVP_MD_CTX_new(), pgtls_free_md_ctx);
	ok = md_ctx != NULL &&
		EVP_DigestSignInit(md_ctx, NULL, pgtls_signing_digest(ca_key), NULL, ca_key) == 1 &&
		EVP_DigestSign(md_ctx, NULL, &sig_len, (unsigned char *) body.data, body.len) == 1;
	if (!ok)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not sign the CRL");
	sig = palloc(sig_len + 1);
	sig[0] = 0;					/* BIT STRING: no unused bits */
	if (EVP_DigestSign(md_ctx, sig + 1, &sig_len, (unsigned char *) body.data, body.len) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not sign the CRL");

	/* CertificateList ::= SEQUENCE { tbsCertList, signatureAlgorithm, signatureValue } */
	appendBinaryStringInfo(&body, algid->data, algid->len);
	der_wrap(&body, V_ASN1_BIT_STRING, (char *) sig, sig_len + 1);
	der_wrap(result, V_ASN1_SEQUENCE | V_ASN1_CONSTRUCTED, body.data, body.len);
	return result;
}


/* The SHA-256 of a signature's bytes; false (queue drained) if it cannot be made. */
static bool
signature_id(const unsigned char *sig, size_t len, uint8 *id)
{
	unsigned int id_len = 0;
	bool		ok = EVP_Digest(sig, len, id, &id_len, pgtls_md(PGTLS_SHA256), NULL) == 1 &&
		id_len == PGTLS_CRL_ID_BYTES;

	pgtls_ossl_clear();
	return ok;
}

/*
 * The identity of a CRL given as DER: its signature (the BIT STRING that
 * ends CertificateList, less its unused-bits octet), hashed.  Read in
 * place, so a CRL of a million entries costs no parse.
 */
bool
pgtls_crl_der_id(const char *der, size_t len, uint8 *id)
{
	const unsigned char *p = (const unsigned char *) der;
	const unsigned char *end = p + len;
	long		content;
	int			tag;
	int			cls;

	if ((ASN1_get_object(&p, &content, &tag, &cls, end - p) & 0x80) || p + content != end ||
		!der_skip(&p, end) || !der_skip(&p, end) ||
		(ASN1_get_object(&p, &content, &tag, &cls, end - p) & 0x80) ||
		tag != V_ASN1_BIT_STRING || content < 1 || p + content != end)
	{
		pgtls_ossl_clear();
		return false;
	}
	return signature_id(p + 1, content - 1, id);
}

/* The same identity of a parsed CRL (the server's, say). */
bool
pgtls_crl_id(const X509_CRL *crl, uint8 *id)
{
	const ASN1_BIT_STRING *sig = NULL;

	X509_CRL_get0_signature(crl, &sig, NULL);
	return sig != NULL && signature_id(ASN1_STRING_get0_data(sig), ASN1_STRING_length(sig), id);
}
