/*
 * cert_info.c
 *		Parsing PEM input and describing certificates.
 *
 * Everything read from a certificate is attacker-controlled text, so names
 * are printed with RFC 2253 escaping and raw strings are escaped until they
 * are valid in the server encoding.  Private keys are parsed without ever
 * asking for a passphrase.
 */
#include "pgtls_admin.h"

#include <arpa/inet.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "lib/stringinfo.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

/* Bytes from a certificate as server-encoded text; non-UTF-8 bytes become \xNN. */
char *
pgtls_safe_text(const unsigned char *data, int len)
{
	StringInfoData buf;
	int			i;

	if (pg_verify_mbstr(PG_UTF8, (const char *) data, len, true) &&
		memchr(data, '\0', len) == NULL)
		return pg_any_to_server(pnstrdup((const char *) data, len), len, PG_UTF8);

	initStringInfo(&buf);
	for (i = 0; i < len; i++)
	{
		if (data[i] >= 0x20 && data[i] < 0x7f)
			appendStringInfoChar(&buf, (char) data[i]);
		else
			appendStringInfo(&buf, "\\x%02X", data[i]);
	}
	return buf.data;
}

/*
 * A distinguished name in the order of its RDNs, with RFC 2253 escaping, the
 * same syntax pgtls_init_ca() accepts.
 */
char *
pgtls_name_text(const X509_NAME *name)
{
	BIO		   *bio = pgtls_mem_bio(NULL, 0);
	unsigned long flags = (ASN1_STRFLGS_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) |
		XN_FLAG_SEP_COMMA_PLUS | XN_FLAG_FN_SN | XN_FLAG_DUMP_UNKNOWN_FIELDS;
	char	   *data;
	long		len;

	if (X509_NAME_print_ex(bio, name, 0, flags) < 0)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "could not print a certificate name");
	len = BIO_get_mem_data(bio, &data);
	return pgtls_safe_text((unsigned char *) data, (int) len);
}

/* hint: what the caller should do with bad input, or NULL */
X509 *
pgtls_parse_cert(const char *pem, int len, const char *what, const char *hint)
{
	BIO		   *bio = pgtls_mem_bio(pem, len);
	X509	   *cert;

	pgtls_ossl_clear();
	cert = pgtls_own_x509(PEM_read_bio_X509(bio, NULL, NULL, NULL));
	if (cert == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is not a PEM certificate", what),
				 errdetail("OpenSSL: %s.", pgtls_ossl_error()),
				 hint ? errhint("%s", hint) : 0));
	return cert;
}

/* Refuse to prompt: records in *(bool *) u that the key needed a passphrase. */
int
pgtls_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	*(bool *) u = true;
	return -1;
}

EVP_PKEY *
pgtls_parse_private_key(const char *pem, int len, const char *what, const char *hint)
{
	BIO		   *bio = pgtls_mem_bio(pem, len);
	bool		encrypted = false;
	EVP_PKEY   *key;

	pgtls_ossl_clear();
	key = pgtls_own_pkey(PEM_read_bio_PrivateKey(bio, NULL, pgtls_no_passphrase, &encrypted));
	if (key == NULL && encrypted)
	{
		pgtls_ossl_clear();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is encrypted with a passphrase", what),
				 errhint("Decrypt it first, for example with: openssl pkey -in key.pem -out plain.pem")));
	}
	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is not a PEM private key", what),
				 errdetail("OpenSSL: %s.", pgtls_ossl_error()),
				 hint ? errhint("%s", hint) : 0));
	return key;
}

/* Upper-case hex without colons, as "openssl x509 -noout -serial" prints it. */
char *
pgtls_serial_hex(const ASN1_INTEGER *serial)
{
	BIGNUM	   *bn = pgtls_own_bn(ASN1_INTEGER_to_BN(serial, NULL));
	char	   *hex;
	char	   *result;

	if (bn == NULL)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "could not read a certificate serial number");
	hex = BN_bn2hex(bn);
	if (hex == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not format a certificate serial number");
	result = pstrdup(hex);
	OPENSSL_free(hex);
	return result;
}

/* Key type in the vocabulary of pgtls_admin.default_key_type where it fits. */
char *
pgtls_key_type_of(EVP_PKEY *key, int *bits)
{
	char		group[80];

	*bits = EVP_PKEY_get_bits(key);
	switch (EVP_PKEY_get_base_id(key))
	{
		case EVP_PKEY_RSA:
		case EVP_PKEY_RSA_PSS:
			return psprintf("rsa-%d", *bits);
		case EVP_PKEY_DSA:
			return psprintf("dsa-%d", *bits);
		case EVP_PKEY_ED25519:
			return pstrdup("ed25519");
		case EVP_PKEY_ED448:
			return pstrdup("ed448");
		case EVP_PKEY_EC:
			if (EVP_PKEY_get_group_name(key, group, sizeof(group), NULL) != 1)
				return pstrdup("ec");
			if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
				return pstrdup("ec-p256");
			if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
				return pstrdup("ec-p384");
			if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
				return pstrdup("ec-p521");
			return psprintf("ec-%s", group);
		default:
			return pstrdup(OBJ_nid2sn(EVP_PKEY_get_base_id(key)));
	}
}

TimestampTz
pgtls_asn1_time_to_timestamptz(const ASN1_TIME *t)
{
	struct tm	tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate has an invalid validity time")));
	return time_t_to_timestamptz(timegm(&tm));
}

static List *
general_names_list(const GENERAL_NAMES *names)
{
	List	   *result = NIL;
	int			i;

	for (i = 0; i < sk_GENERAL_NAME_num(names); i++)
	{
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(names, i);
		const ASN1_STRING *s;
		char		addr[INET6_ADDRSTRLEN];

		switch (gn->type)
		{
			case GEN_DNS:
			case GEN_EMAIL:
			case GEN_URI:
				s = gn->d.ia5;
				result = lappend(result,
								 psprintf("%s:%s",
										  gn->type == GEN_DNS ? "DNS" : gn->type == GEN_EMAIL ? "email" : "URI",
										  pgtls_safe_text(ASN1_STRING_get0_data(s), ASN1_STRING_length(s))));
				break;
			case GEN_IPADD:
				s = gn->d.ip;
				if ((ASN1_STRING_length(s) == 4 &&
					 inet_ntop(AF_INET, ASN1_STRING_get0_data(s), addr, sizeof(addr))) ||
					(ASN1_STRING_length(s) == 16 &&
					 inet_ntop(AF_INET6, ASN1_STRING_get0_data(s), addr, sizeof(addr))))
					result = lappend(result, psprintf("IP:%s", addr));
				else
					result = lappend(result, pstrdup("IP:<invalid>"));
				break;
			case GEN_DIRNAME:
				result = lappend(result, psprintf("DirName:%s", pgtls_name_text(gn->d.dirn)));
				break;
			default:
				result = lappend(result, pstrdup("othername:<unsupported>"));
				break;
		}
	}
	return result;
}

static char *
object_name(const ASN1_OBJECT *obj)
{
	char		buf[128];
	int			nid = OBJ_obj2nid(obj);

	if (nid != NID_undef)
		return pstrdup(OBJ_nid2sn(nid));
	OBJ_obj2txt(buf, sizeof(buf), obj, 1);
	return pstrdup(buf);
}

static const struct
{
	uint32		bit;
	const char *name;
}			key_usage_names[] =
{
	{KU_DIGITAL_SIGNATURE, "digitalSignature"},
	{KU_NON_REPUDIATION, "nonRepudiation"},
	{KU_KEY_ENCIPHERMENT, "keyEncipherment"},
	{KU_DATA_ENCIPHERMENT, "dataEncipherment"},
	{KU_KEY_AGREEMENT, "keyAgreement"},
	{KU_KEY_CERT_SIGN, "keyCertSign"},
	{KU_CRL_SIGN, "cRLSign"},
	{KU_ENCIPHER_ONLY, "encipherOnly"},
	{KU_DECIPHER_ONLY, "decipherOnly"},
};

static char *
fingerprint_sha256(X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n;
	StringInfoData buf;
	unsigned int i;

	if (X509_digest(cert, pgtls_md(PGTLS_SHA256), md, &n) != 1)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "could not compute a certificate fingerprint");
	initStringInfo(&buf);
	for (i = 0; i < n; i++)
		appendStringInfo(&buf, i ? ":%02X" : "%02X", md[i]);
	return buf.data;
}

/*
 * The fields the registry keeps: subject, serial, validity, SAN and the
 * fingerprint (key_type is left to the caller, who often knows it).  Unlike
 * pgtls_describe_cert() it leaves OpenSSL's extension cache alone, which
 * would hash and parse the whole certificate again.
 */
void
pgtls_describe_cert_brief(X509 *cert, PgtlsCertInfo *info)
{
	GENERAL_NAMES *san;

	memset(info, 0, sizeof(*info));
	pgtls_ossl_clear();
	info->subject = pgtls_name_text(X509_get_subject_name(cert));
	info->serial = pgtls_serial_hex(X509_get0_serialNumber(cert));
	info->not_before = pgtls_asn1_time_to_timestamptz(X509_get0_notBefore(cert));
	info->not_after = pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(cert));
	san = pgtls_own_general_names(X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL));
	if (san != NULL)
		info->san = general_names_list(san);
	info->fingerprint_sha256 = fingerprint_sha256(cert);
}

/*
 * Fill info from cert.  Extensions that are absent give NIL lists, so callers
 * can tell "no SAN" from "an empty SAN".
 */
void
pgtls_describe_cert(X509 *cert, PgtlsCertInfo *info)
{
	EXTENDED_KEY_USAGE *eku;
	EVP_PKEY   *pub;
	uint32		ku;
	int			i;

	pgtls_describe_cert_brief(cert, info);
	info->issuer = pgtls_name_text(X509_get_issuer_name(cert));
	eku = pgtls_own_eku(X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL));
	for (i = 0; eku != NULL && i < sk_ASN1_OBJECT_num(eku); i++)
		info->eku = lappend(info->eku, object_name(sk_ASN1_OBJECT_value(eku, i)));

	ku = X509_get_key_usage(cert);
	if (ku != UINT32_MAX)
	{
		for (i = 0; i < (int) lengthof(key_usage_names); i++)
			if (ku & key_usage_names[i].bit)
				info->key_usage = lappend(info->key_usage, pstrdup(key_usage_names[i].name));
	}

	pub = X509_get0_pubkey(cert);
	if (pub != NULL)
		info->key_type = pgtls_key_type_of(pub, &info->key_bits);
	info->signature_algorithm = pstrdup(OBJ_nid2ln(X509_get_signature_nid(cert)));
	info->is_ca = (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
	pgtls_ossl_clear();
}

/* A text[] of the strings in items (an empty array for NIL). */
Datum
pgtls_text_array(List *items)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(list_length(items), 1));
	ListCell   *lc;
	int			n = 0;

	foreach(lc, items)
		elems[n++] = CStringGetTextDatum((char *) lfirst(lc));
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

text *
pgtls_cert_pem(X509 *cert)
{
	BIO		   *bio = pgtls_mem_bio(NULL, 0);

	if (PEM_write_bio_X509(bio, cert) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode a certificate as PEM");
	return pgtls_bio_to_text(bio);
}
