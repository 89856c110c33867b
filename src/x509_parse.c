/*
 * x509_parse.c
 *		PEM input, serial numbers and names as text.
 *
 * Everything read from a certificate is attacker-controlled text, so names
 * are printed with RFC 2253 escaping and raw strings are escaped until they
 * are valid in the server encoding.  Private keys are parsed without ever
 * asking for a passphrase.
 */
#include "pgtls_x509.h"

#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
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

/*
 * A distinguished name exactly as the server's peer_dn holds it, which is
 * what pg_ident.conf and clientname=DN compare: X509_NAME_print_ex() with
 * XN_FLAG_RFC2253 (be_tls_open_server, PostgreSQL 15): the last RDN first,
 * every byte above 0x7F of the UTF-8 form escaped as \XX.  Sets
 * *embedded_nul (when not NULL) if the bytes contain a NUL, which makes the
 * server drop the connection.
 */
char *
pgtls_name_dn(const X509_NAME *name, bool *embedded_nul)
{
	BIO		   *bio = pgtls_mem_bio(NULL, 0);
	char	   *data;
	long		len;

	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253) < 0)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "could not print a certificate name");
	len = BIO_get_mem_data(bio, &data);
	if (embedded_nul != NULL)
		*embedded_nul = memchr(data, '\0', len) != NULL;
	return pgtls_safe_text((unsigned char *) data, (int) len);
}

/*
 * The first CN's bytes, as the server's peer_cn holds them
 * (X509_NAME_get_text_by_NID: no character-set conversion), or NULL when
 * there is no CN.  *embedded_nul as above.  The bytes are returned as they
 * are; callers that show them use pgtls_safe_text().
 */
char *
pgtls_name_cn(const X509_NAME *name, bool *embedded_nul)
{
	int			len = X509_NAME_get_text_by_NID((X509_NAME *) name, NID_commonName, NULL, 0);
	char	   *buf;

	if (embedded_nul != NULL)
		*embedded_nul = false;
	if (len < 0)
		return NULL;
	buf = palloc(len + 1);
	if (X509_NAME_get_text_by_NID((X509_NAME *) name, NID_commonName, buf, len + 1) != len)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "could not read a certificate's common name");
	buf[len] = '\0';
	if (embedded_nul != NULL)
		*embedded_nul = (int) strlen(buf) != len;
	return buf;
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

/*
 * Every PEM certificate in pem, in order, owned by the current context;
 * text between them is skipped.  NIL when there is none.
 */
List *
pgtls_read_cert_list(const char *pem, int len)
{
	BIO		   *bio = pgtls_mem_bio(pem, len);
	List	   *certs = NIL;
	X509	   *x;

	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL)
		certs = lappend(certs, pgtls_own_x509(x));
	pgtls_ossl_clear();			/* the end of input reads as an error */
	return certs;
}

/* Every certificate in pem: the first is the leaf (returned), the rest its chain. */
X509 *
pgtls_parse_cert_chain(const char *pem, int len, STACK_OF(X509) **chain)
{
	X509	   *leaf = pgtls_parse_cert(pem, len, "certificate", PGTLS_CERT_TEXT_HINT);
	List	   *certs = pgtls_read_cert_list(pem, len);
	ListCell   *lc;

	*chain = pgtls_own(sk_X509_new_null(), pgtls_free_x509_stack);
	if (*chain == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not read the certificate chain");
	for_each_from(lc, certs, 1)
	{
		if (X509_up_ref(lfirst(lc)) != 1 || sk_X509_push(*chain, lfirst(lc)) <= 0)
			pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not read the certificate chain");
	}
	return leaf;
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

/* ERROR with sqlstate and message unless key is the private key of cert. */
void
pgtls_require_key_match(X509 *cert, EVP_PKEY *key, int sqlstate, const char *message)
{
	if (X509_check_private_key(cert, key) == 1)
		return;
	pgtls_ossl_clear();
	ereport(ERROR,
			(errcode(sqlstate),
			 errmsg_internal("%s", message)));
}

/*
 * The server compares a client certificate's CN with the user name byte for
 * byte (CheckCertAuth), and the user name is pg_authid.rolname's bytes, in
 * the encoding of the database the role was created from.  So the CN is the
 * role name's own bytes, never converted; they must be valid UTF-8 to be a
 * UTF8String, else no certificate can name the role exactly.
 */
void
pgtls_check_role_cn(const char *role_name)
{
	if (!pg_verify_mbstr(PG_UTF8, role_name, strlen(role_name), true))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("role name \"%s\" is not valid UTF-8, so no certificate can name it exactly", role_name),
				 errdetail("The server compares a certificate's CN with the role name byte for byte, and this role's name was stored in a non-UTF8 encoding."),
				 errhint("Rename the role from a UTF8 database, or give it a name in plain ASCII.")));
}

/*
 * Upper-case hex without colons, as "openssl x509 -noout -serial" prints it
 * (BN_bn2hex: whole bytes, leading zero bytes dropped), straight from the
 * INTEGER's bytes: a CRL with a million entries is read this way.
 */
char *
pgtls_serial_hex(const ASN1_INTEGER *serial)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *data = ASN1_STRING_get0_data(serial);
	int			len = ASN1_STRING_length(serial);
	bool		negative = ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER;
	char	   *result;
	char	   *p;

	while (len > 0 && data[0] == 0)
	{
		data++;
		len--;
	}
	if (len == 0)
		return pstrdup("0");
	p = result = palloc(len * 2 + 2);
	if (negative)
		*p++ = '-';
	for (int i = 0; i < len; i++)
	{
		*p++ = hex[data[i] >> 4];
		*p++ = hex[data[i] & 0x0F];
	}
	*p = '\0';
	return result;
}

static int
cmp_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *) a, *(char *const *) b);
}

/*
 * How many of the serials (char *, as pgtls_serial_hex spells them) the CRL
 * does not list, and the first of them; by sorting both sides, so a
 * million entries take a second, not minutes.
 */
int
pgtls_crl_missing(X509_CRL *crl, List *serials, char **first_missing)
{
	STACK_OF(X509_REVOKED) *entries = X509_CRL_get_REVOKED(crl);
	int			nlisted = entries ? sk_X509_REVOKED_num(entries) : 0;
	char	  **listed = palloc(sizeof(char *) * Max(nlisted, 1));
	char	  **wanted = palloc(sizeof(char *) * Max(list_length(serials), 1));
	int			nwanted = 0;
	int			missing = 0;
	int			j = 0;
	ListCell   *lc;

	for (int i = 0; i < nlisted; i++)
		listed[i] = pgtls_serial_hex(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(entries, i)));
	foreach(lc, serials)
		wanted[nwanted++] = lfirst(lc);
	qsort(listed, nlisted, sizeof(char *), cmp_strings);
	qsort(wanted, nwanted, sizeof(char *), cmp_strings);
	*first_missing = NULL;
	for (int i = 0; i < nwanted; i++)
	{
		while (j < nlisted && strcmp(listed[j], wanted[i]) < 0)
			j++;
		if (j < nlisted && strcmp(listed[j], wanted[i]) == 0)
			continue;
		if (missing++ == 0)
			*first_missing = wanted[i];
	}
	return missing;
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

/* Key type in the vocabulary of pgtls_admin.default_key_type where it fits. */
char *
pgtls_key_type_of(EVP_PKEY *key, int *bits)
{
	char		group[80];

	*bits = EVP_PKEY_get_bits(key);
	switch (EVP_PKEY_get_base_id(key))
	{
		case EVP_PKEY_RSA:
			return psprintf("rsa-%d", *bits);
		case EVP_PKEY_RSA_PSS:
			return psprintf("rsa-pss-%d", *bits);
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

text *
pgtls_cert_pem(X509 *cert)
{
	BIO		   *bio = pgtls_mem_bio(NULL, 0);

	if (PEM_write_bio_X509(bio, cert) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode a certificate as PEM");
	return pgtls_bio_to_text(bio);
}
