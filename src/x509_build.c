/*
 * x509_build.c
 *		Keys and certificates: the CA's own, client and server certificates.
 *
 * Extensions are built from OpenSSL's structures rather than config strings,
 * and the subject is added attribute by attribute, so no text a caller passes
 * (a role name such as "a,CN=postgres") is ever parsed as DN syntax.
 * Key-generation contexts are created once per backend and reused.  The CA
 * that signs is always a parameter: nothing here reads the CA files.
 */
#include "pgtls_x509.h"

#include <sys/socket.h>

#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/timestamp.h"


static const struct
{
	const char *name;
	const char *algorithm;
	const char *group;
	unsigned int rsa_bits;
}			key_types[PGTLS_KEY_NTYPES] =
{
	[PGTLS_KEY_EC_P256] = {"ec-p256", "EC", "P-256", 0},
	[PGTLS_KEY_EC_P384] = {"ec-p384", "EC", "P-384", 0},
	[PGTLS_KEY_ED25519] = {"ed25519", "ED25519", NULL, 0},
	[PGTLS_KEY_RSA_2048] = {"rsa-2048", "RSA", NULL, 2048},
	[PGTLS_KEY_RSA_3072] = {"rsa-3072", "RSA", NULL, 3072},
	[PGTLS_KEY_RSA_4096] = {"rsa-4096", "RSA", NULL, 4096},
};

/* Lives as long as the backend: creating it is a large part of keygen cost. */
static EVP_PKEY_CTX *keygen_ctx[PGTLS_KEY_NTYPES];

/* The key type called name; false if there is none. */
bool
pgtls_key_type_lookup(const char *name, PgtlsKeyType *type)
{
	int			i;

	for (i = 0; i < PGTLS_KEY_NTYPES; i++)
		if (strcmp(name, key_types[i].name) == 0)
		{
			*type = (PgtlsKeyType) i;
			return true;
		}
	return false;
}

PgtlsKeyType
pgtls_key_type_from_name(const char *name)
{
	PgtlsKeyType type;

	if (pgtls_key_type_lookup(name, &type))
		return type;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unknown key type \"%s\"", name),
			 errhint("Use one of ec-p256, ec-p384, ed25519, rsa-2048, rsa-3072, rsa-4096.")));
	pg_unreachable();
}

const char *
pgtls_key_type_name(PgtlsKeyType type)
{
	return key_types[type].name;
}

static EVP_PKEY_CTX *
get_keygen_ctx(PgtlsKeyType type)
{
	EVP_PKEY_CTX *ctx;
	bool		ok;

	if (keygen_ctx[type] != NULL)
		return keygen_ctx[type];

	ctx = EVP_PKEY_CTX_new_from_name(NULL, key_types[type].algorithm, NULL);
	ok = ctx != NULL && EVP_PKEY_keygen_init(ctx) == 1;
	if (ok && key_types[type].group != NULL)
		ok = EVP_PKEY_CTX_set_group_name(ctx, key_types[type].group) == 1;
	if (ok && key_types[type].rsa_bits != 0)
		ok = EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, key_types[type].rsa_bits) == 1;
	if (!ok)
	{
		EVP_PKEY_CTX_free(ctx);
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not set up key generation");
	}
	keygen_ctx[type] = ctx;
	return ctx;
}

EVP_PKEY *
pgtls_generate_key(PgtlsKeyType type)
{
	EVP_PKEY   *key = NULL;

	if (EVP_PKEY_generate(get_keygen_ctx(type), &key) != 1)
	{
		EVP_PKEY_free(key);
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not generate a private key");
	}
	return pgtls_own_pkey(key);
}

/* The digest a signer's key is used with: the curve's hash for EC, none for EdDSA. */
static const EVP_MD *
digest_for(EVP_PKEY *signer)
{
	char		group[80];

	switch (EVP_PKEY_get_base_id(signer))
	{
		case EVP_PKEY_ED25519:
		case EVP_PKEY_ED448:
			return NULL;
		case EVP_PKEY_EC:
			if (EVP_PKEY_get_group_name(signer, group, sizeof(group), NULL) == 1)
			{
				if (strcmp(group, "secp384r1") == 0)
					return pgtls_md(PGTLS_SHA384);
				if (strcmp(group, "secp521r1") == 0)
					return pgtls_md(PGTLS_SHA512);
			}
			return pgtls_md(PGTLS_SHA256);
		default:
			return pgtls_md(PGTLS_SHA256);
	}
}

/*
 * The same, remembered for the last signer: the CA key is one long-lived
 * object, and asking the provider for its curve takes locks on every call.
 * Type and size are compared too, in case a freed key's address is reused.
 */
const EVP_MD *
pgtls_signing_digest(EVP_PKEY *signer)
{
	static EVP_PKEY *last_signer;
	static int	last_type;
	static int	last_bits;
	static const EVP_MD *last_md;

	if (signer != last_signer || EVP_PKEY_get_base_id(signer) != last_type ||
		EVP_PKEY_get_bits(signer) != last_bits)
	{
		last_md = digest_for(signer);
		last_signer = signer;
		last_type = EVP_PKEY_get_base_id(signer);
		last_bits = EVP_PKEY_get_bits(signer);
	}
	return last_md;
}

/*
 * A random positive serial of exactly 16 bytes: the top bit is cleared so
 * it is positive, the next one set so it always prints as 32 hex digits.
 */
static void
set_random_serial(X509 *cert)
{
	unsigned char bytes[16];
	BIGNUM	   *bn;

	if (RAND_bytes(bytes, sizeof(bytes)) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not generate a random serial number");
	bytes[0] = (bytes[0] & 0x7F) | 0x40;
	bn = pgtls_own_bn(BN_bin2bn(bytes, sizeof(bytes), NULL));
	if (bn == NULL || BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert)) == NULL)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not set a serial number");
}

/* Add one extension; value is freed by the caller right after, before any ERROR. */
static bool
add_ext(X509 *cert, int nid, void *value, int critical)
{
	return value != NULL &&
		X509_add1_ext_i2d(cert, nid, value, critical, X509V3_ADD_REPLACE) == 1;
}

static void
add_basic_constraints(X509 *cert, bool is_ca)
{
	BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
	bool		ok;

	if (bc != NULL)
		bc->ca = is_ca ? 0xFF : 0;
	ok = add_ext(cert, NID_basic_constraints, bc, 1);
	BASIC_CONSTRAINTS_free(bc);
	if (!ok)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not add basicConstraints");
}

/* bits are keyUsage bit numbers: 0 digitalSignature, 2 keyEncipherment, 5 keyCertSign, 6 cRLSign */
static void
add_key_usage(X509 *cert, const int *bits, int nbits)
{
	ASN1_BIT_STRING *ku = ASN1_BIT_STRING_new();
	bool		ok = ku != NULL;
	int			i;

	for (i = 0; ok && i < nbits; i++)
		ok = ASN1_BIT_STRING_set_bit(ku, bits[i], 1) == 1;
	ok = ok && add_ext(cert, NID_key_usage, ku, 1);
	ASN1_BIT_STRING_free(ku);
	if (!ok)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not add keyUsage");
}

static void
add_eku(X509 *cert, int nid)
{
	EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
	bool		ok;

	ok = eku != NULL && sk_ASN1_OBJECT_push(eku, OBJ_nid2obj(nid)) > 0;
	ok = ok && add_ext(cert, NID_ext_key_usage, eku, 0);
	sk_ASN1_OBJECT_free(eku);	/* OBJ_nid2obj objects are static */
	if (!ok)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not add extendedKeyUsage");
}

/* SHA-1 of the subject public key, RFC 5280 section 4.2.1.2 method (1). */
static ASN1_OCTET_STRING *
key_id(X509 *cert)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len;
	ASN1_OCTET_STRING *id;

	if (X509_pubkey_digest(cert, pgtls_md(PGTLS_SHA1), md, &len) != 1)
		return NULL;
	id = ASN1_OCTET_STRING_new();
	if (id != NULL && ASN1_OCTET_STRING_set(id, md, (int) len) != 1)
	{
		ASN1_OCTET_STRING_free(id);
		return NULL;
	}
	return id;
}

/* subjectKeyIdentifier of cert, and authorityKeyIdentifier naming issuer's key. */
void
pgtls_add_key_ids(X509 *cert, X509 *issuer)
{
	ASN1_OCTET_STRING *ski = key_id(cert);
	AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
	const ASN1_OCTET_STRING *issuer_ski = X509_get0_subject_key_id(issuer);
	bool		ok;

	ok = add_ext(cert, NID_subject_key_identifier, ski, 0);
	if (ok && akid != NULL)
	{
		akid->keyid = issuer_ski != NULL ? ASN1_OCTET_STRING_dup(issuer_ski) : key_id(issuer);
		ok = add_ext(cert, NID_authority_key_identifier, akid->keyid ? akid : NULL, 0);
	}
	ASN1_OCTET_STRING_free(ski);
	AUTHORITY_KEYID_free(akid);
	if (!ok || akid == NULL)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not add key identifiers");
}

/*
 * Validity for a new leaf, in days (NULL means pgtls_admin.default_days),
 * bounded by pgtls_admin.max_days.
 */
int
pgtls_validity_days(int days, bool days_isnull)
{
	if (days_isnull)
		days = pgtls_default_days;
	if (days < 1 || days > pgtls_max_days)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days must be between 1 and %d", pgtls_max_days),
				 errhint("The upper bound is pgtls_admin.max_days.")));
	return days;
}

PgtlsLifetime
pgtls_lifetime_days(int days)
{
	PgtlsLifetime lifetime = {(int64) days * SECS_PER_DAY};

	return lifetime;
}

/*
 * Validity for a new leaf from a days argument or a lifetime argument (at
 * most one of them given; neither means pgtls_admin.default_days).  A
 * lifetime is at least PGTLS_MIN_LIFETIME_SECONDS and at most
 * pgtls_admin.max_days; its months count 30 days and its years 365.25, as
 * EXTRACT(epoch FROM interval) counts them.
 */
PgtlsLifetime
pgtls_validity(int days, bool days_isnull, const Interval *lifetime)
{
	PgtlsLifetime result;
	int64		seconds;

	if (lifetime == NULL)
		return pgtls_lifetime_days(pgtls_validity_days(days, days_isnull));
	if (!days_isnull)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days and lifetime cannot both be given"),
				 errhint("Give the validity once: lifetime => interval '8 hours', or days => 30.")));
	seconds = lifetime->time / USECS_PER_SEC + (int64) lifetime->day * SECS_PER_DAY +
		(int64) (lifetime->month / MONTHS_PER_YEAR) * (int64) (DAYS_PER_YEAR * SECS_PER_DAY) +
		(int64) (lifetime->month % MONTHS_PER_YEAR) * DAYS_PER_MONTH * SECS_PER_DAY;
	if (seconds < PGTLS_MIN_LIFETIME_SECONDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lifetime must be at least %d minutes", PGTLS_MIN_LIFETIME_SECONDS / 60)));
	if (seconds > (int64) pgtls_max_days * SECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("lifetime must be at most %d days", pgtls_max_days),
				 errhint("The upper bound is pgtls_admin.max_days.")));
	result.seconds = seconds;
	return result;
}

/*
 * not_before a few minutes back, not_after lifetime ahead; never past the
 * issuer's own not_after (issuer NULL for a self-signed certificate).
 */
static void
set_validity(X509 *cert, PgtlsLifetime lifetime, X509 *issuer)
{
	if (X509_gmtime_adj(X509_getm_notBefore(cert), -PGTLS_CLOCK_SKEW_SECONDS) == NULL ||
		X509_time_adj_ex(X509_getm_notAfter(cert), (int) (lifetime.seconds / SECS_PER_DAY),
						 (long) (lifetime.seconds % SECS_PER_DAY), NULL) == NULL)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not set the validity period");
	if (issuer == NULL)
		return;
	if (X509_cmp_current_time(X509_get0_notAfter(issuer)) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the CA certificate has expired"),
				 errhint("Create a new CA with SELECT pgtls_init_ca(replace => true), or import one with pgtls_import_ca().")));
	if (ASN1_TIME_compare(X509_get0_notAfter(cert), X509_get0_notAfter(issuer)) > 0)
	{
		if (X509_set1_notAfter(cert, X509_get0_notAfter(issuer)) != 1)
			pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not set the validity period");
		ereport(NOTICE,
				(errmsg("certificate validity shortened to the CA certificate's expiry, %s",
						timestamptz_to_str(pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(issuer)))),
				 errhint("Renew the CA before then, or certificates it issued stop working.")));
	}
}

void
pgtls_sign(X509 *cert, EVP_PKEY *signer)
{
	if (X509_sign(cert, signer, pgtls_signing_digest(signer)) <= 0)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not sign the certificate");
}

/*
 * Unencrypted PKCS#8 PEM.  The encoder works in OpenSSL's secure-memory BIO
 * and the returned text is wiped when the caller's work context goes away.
 */
text *
pgtls_private_key_pem(EVP_PKEY *key)
{
	BIO		   *bio = pgtls_secure_bio();

	if (PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the private key");
	return pgtls_secure_bio_text(bio);
}

/*
 * A v3 certificate for key with a random serial, its validity set and the
 * issuer's name; issuer NULL for a self-signed one, whose caller sets the
 * issuer name once the subject is filled in.  The caller adds the subject
 * and extensions, then signs.
 */
X509 *
pgtls_new_cert(EVP_PKEY *key, PgtlsLifetime lifetime, X509 *issuer)
{
	X509	   *cert = pgtls_own_x509(X509_new());

	if (cert == NULL ||
		X509_set_version(cert, X509_VERSION_3) != 1 ||
		X509_set_pubkey(cert, key) != 1 ||
		(issuer != NULL &&
		 X509_set_issuer_name(cert, X509_get_subject_name(issuer)) != 1))
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not build a certificate");
	set_random_serial(cert);
	set_validity(cert, lifetime, issuer);
	return cert;
}

/*
 * A client certificate for role_name and the public key of key, signed by
 * the CA.  The subject is CN = the role name's bytes (pgtls_check_role_cn),
 * added as one attribute value, unless subject gives another (the caller
 * has checked that a pg_ident.conf map makes it the role); nothing else of
 * any request is copied.
 */
X509 *
pgtls_build_client_cert_as(const char *role_name, const X509_NAME *subject,
						   PgtlsLifetime lifetime, EVP_PKEY *key, X509 *ca_cert, EVP_PKEY *ca_key)
{
	static const int usage[] = {0};	/* digitalSignature */
	X509	   *cert;

	if (subject == NULL)
		pgtls_check_role_cn(role_name);
	cert = pgtls_new_cert(key, lifetime, ca_cert);
	if (subject != NULL)
	{
		if (X509_set_subject_name(cert, subject) != 1)
			pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "could not set the certificate's subject");
	}
	else if (X509_NAME_add_entry_by_NID(X509_get_subject_name(cert), NID_commonName,
										MBSTRING_UTF8, (const unsigned char *) role_name, -1, -1, 0) != 1)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "could not set the certificate's common name");
	add_basic_constraints(cert, false);
	add_key_usage(cert, usage, lengthof(usage));
	add_eku(cert, NID_client_auth);
	pgtls_add_key_ids(cert, ca_cert);
	pgtls_sign(cert, ca_key);
	return cert;
}

X509 *
pgtls_build_client_cert(const char *role_name, PgtlsLifetime lifetime, EVP_PKEY *key,
						X509 *ca_cert, EVP_PKEY *ca_key)
{
	return pgtls_build_client_cert_as(role_name, NULL, lifetime, key, ca_cert, ca_key);
}

/*
 * Parse a subject such as "CN=Example CA,O=Example" or "/CN=Example CA/O=Example".
 * RDNs are kept in the order written (as openssl -subj does); a backslash
 * escapes the next character.
 */
static void
parse_subject(const char *subject, X509_NAME *name)
{
	char	   *utf8 = pg_server_to_any(subject, strlen(subject), PG_UTF8);
	char		sep = ',';
	const char *p = utf8;
	StringInfoData key;
	StringInfoData value;

	if (*p == '/')
	{
		sep = '/';
		p++;
	}
	initStringInfo(&key);
	initStringInfo(&value);
	while (*p != '\0')
	{
		int			nid;

		resetStringInfo(&key);
		resetStringInfo(&value);
		while (*p == ' ')
			p++;
		while (*p != '\0' && *p != '=' && *p != sep)
			appendStringInfoChar(&key, *p++);
		while (key.len > 0 && key.data[key.len - 1] == ' ')
			key.data[--key.len] = '\0';
		if (*p != '=' || key.len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid subject \"%s\"", subject),
					 errdetail("Each part must look like ATTRIBUTE=value."),
					 errhint("For example: CN=Example CA,O=Example")));
		p++;
		while (*p != '\0' && *p != sep)
		{
			if (*p == '\\' && p[1] != '\0')
				p++;
			appendStringInfoChar(&value, *p++);
		}
		if (*p == sep)
			p++;
		nid = OBJ_txt2nid(key.data);
		if (nid == NID_undef)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("unknown attribute \"%s\" in subject", key.data),
					 errhint("Use attributes such as CN, O, OU, L, ST, C.")));
		if (value.len == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("attribute \"%s\" in subject is empty", key.data)));
		pgtls_ossl_clear();
		if (X509_NAME_add_entry_by_NID(name, nid, MBSTRING_UTF8,
									   (unsigned char *) value.data, value.len, -1, 0) != 1)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid value for attribute \"%s\" in subject", key.data),
					 errdetail("OpenSSL: %s.", pgtls_ossl_error())));
	}
	if (X509_NAME_entry_count(name) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject must not be empty"),
				 errhint("For example: CN=Example CA")));
}

static void
free_name(void *p)
{
	X509_NAME_free(p);
}

/* A subject written as pgtls_init_ca() takes it, as a name owned by the current context. */
X509_NAME *
pgtls_subject_name(const char *subject)
{
	X509_NAME  *name = pgtls_own(X509_NAME_new(), free_name);

	if (name == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not allocate a certificate name");
	parse_subject(subject, name);
	return name;
}

/* CN = the role name's bytes, as a name owned by the current context. */
X509_NAME *
pgtls_role_subject_name(const char *role_name)
{
	X509_NAME  *name = pgtls_own(X509_NAME_new(), free_name);

	if (name == NULL ||
		X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
								   (const unsigned char *) role_name, -1, -1, 0) != 1)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "could not set the certificate's common name");
	return name;
}

/*
 * A self-signed CA certificate for key: basicConstraints critical CA:TRUE,
 * keyUsage keyCertSign and cRLSign, subject and authority key identifiers.
 */
X509 *
pgtls_build_ca_cert(const char *subject, int days, EVP_PKEY *key)
{
	static const int usage[] = {5, 6};	/* keyCertSign, cRLSign */
	X509	   *cert = pgtls_new_cert(key, pgtls_lifetime_days(days), NULL);

	parse_subject(subject, X509_get_subject_name(cert));
	if (X509_set_issuer_name(cert, X509_get_subject_name(cert)) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not build the CA certificate");
	add_basic_constraints(cert, true);
	add_key_usage(cert, usage, lengthof(usage));
	pgtls_add_key_ids(cert, cert);
	pgtls_sign(cert, key);
	return cert;
}

/*
 * Names are 1-253 characters of labels of letters, digits and hyphens; the
 * leftmost label may be "*" alone.
 */
static void
check_dns_name(const char *name)
{
	const char *p = name;
	int			label = 0;
	bool		ok = name[0] != '\0' && strlen(name) <= 253;

	if (ok && p[0] == '*' && p[1] == '.')
		p += 2;
	for (; ok && *p; p++)
	{
		if (*p == '.')
		{
			ok = label > 0 && p[-1] != '-';
			label = 0;
		}
		else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				 (*p >= '0' && *p <= '9') || (*p == '-' && label > 0))
			ok = ++label <= 63;
		else
			ok = false;
	}
	if (!ok || label == 0 || p[-1] == '-')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid DNS name \"%s\"", name),
				 errhint("Use host names such as db.example.com; a wildcard is allowed only as the whole first label (*.example.com).")));
}

static GENERAL_NAME *
san_entry(int type, const unsigned char *data, int len)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_STRING *s = ASN1_STRING_type_new(type == GEN_DNS ? V_ASN1_IA5STRING : V_ASN1_OCTET_STRING);

	if (gn == NULL || s == NULL || ASN1_STRING_set(s, data, len) != 1)
	{
		GENERAL_NAME_free(gn);
		ASN1_STRING_free(s);
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, type, s);
	return gn;
}

/* Host names and addresses a server certificate can carry. */
void
pgtls_check_server_names(List *dns_names, List *addresses)
{
	ListCell   *lc;

	if (dns_names == NIL && addresses == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a server certificate needs at least one DNS name or IP address")));
	foreach(lc, dns_names)
		check_dns_name(lfirst(lc));
	foreach(lc, addresses)
	{
		inet	   *ip = lfirst(lc);

		if (ip_bits(ip) != (ip_family(ip) == PGSQL_AF_INET ? 32 : 128))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("IP address \"%s\" is a network, not a host address",
							DatumGetCString(DirectFunctionCall1(inet_out, PointerGetDatum(ip))))));
	}
}

/*
 * A server certificate: SAN with every DNS name and IP address, CN the
 * first DNS name (else the first address), EKU serverAuth.
 */
X509 *
pgtls_build_server_cert(List *dns_names, List *addresses, PgtlsLifetime lifetime, EVP_PKEY *key,
						X509 *ca_cert, EVP_PKEY *ca_key)
{
	static const int ec_usage[] = {0};	/* digitalSignature */
	static const int rsa_usage[] = {0, 2};	/* + keyEncipherment for RSA key exchange */
	X509	   *cert;
	GENERAL_NAMES *san;
	ListCell   *lc;
	char	   *cn = NULL;
	bool		ok;

	pgtls_check_server_names(dns_names, addresses);
	cert = pgtls_new_cert(key, lifetime, ca_cert);
	san = pgtls_own_general_names(sk_GENERAL_NAME_new_null());
	ok = san != NULL;
	foreach(lc, dns_names)
	{
		char	   *name = lfirst(lc);

		ok = ok && sk_GENERAL_NAME_push(san, san_entry(GEN_DNS, (unsigned char *) name, strlen(name))) > 0;
		if (cn == NULL)
			cn = name;
	}
	foreach(lc, addresses)
	{
		inet	   *ip = lfirst(lc);

		ok = ok && sk_GENERAL_NAME_push(san, san_entry(GEN_IPADD, ip_addr(ip), ip_addrsize(ip))) > 0;
		if (cn == NULL)
			cn = TextDatumGetCString(DirectFunctionCall1(network_host, PointerGetDatum(ip)));
	}
	/* a NULL pushed by a failed san_entry() is caught here */
	for (int i = 0; ok && i < sk_GENERAL_NAME_num(san); i++)
		ok = sk_GENERAL_NAME_value(san, i) != NULL;
	if (!ok ||
		X509_add1_ext_i2d(cert, NID_subject_alt_name, san, 0, X509V3_ADD_REPLACE) != 1 ||
		X509_NAME_add_entry_by_NID(X509_get_subject_name(cert), NID_commonName, MBSTRING_UTF8,
								   (unsigned char *) cn, -1, -1, 0) != 1)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "could not build the server certificate");

	add_basic_constraints(cert, false);
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
		add_key_usage(cert, rsa_usage, lengthof(rsa_usage));
	else
		add_key_usage(cert, ec_usage, lengthof(ec_usage));
	add_eku(cert, NID_server_auth);
	pgtls_add_key_ids(cert, ca_cert);
	pgtls_sign(cert, ca_key);
	return cert;
}

