/*
 * x509_describe.c
 *		What a certificate says, for pgtls_cert_info() and the registry.
 */
#include "pgtls_x509.h"

#include <arpa/inet.h>

#include "catalog/pg_type.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"

/* OIDs of otherName SANs we can name, and whose value is a string. */
static const struct
{
	const char *oid;
	const char *name;
}			other_names[] =
{
	{"1.3.6.1.4.1.311.20.2.3", "UPN"},	/* Microsoft user principal name */
	{"1.3.6.1.5.5.7.8.9", "SmtpUTF8Mailbox"},	/* RFC 8398 */
};

static char *
oid_text(const ASN1_OBJECT *obj)
{
	char		buf[128];

	if (OBJ_obj2txt(buf, sizeof(buf), obj, 1) <= 0)
		return pstrdup("<invalid>");
	return pstrdup(buf);
}

/* "otherName:UPN:alice@example.com" for names we know, "otherName:<oid>" otherwise. */
static char *
other_name_text(const OTHERNAME *on)
{
	char	   *oid = oid_text(on->type_id);
	int			i;

	for (i = 0; i < (int) lengthof(other_names); i++)
	{
		const ASN1_TYPE *v = on->value;

		if (strcmp(oid, other_names[i].oid) != 0 || v == NULL)
			continue;
		if (v->type == V_ASN1_UTF8STRING || v->type == V_ASN1_IA5STRING ||
			v->type == V_ASN1_PRINTABLESTRING)
			return psprintf("otherName:%s:%s", other_names[i].name,
							pgtls_safe_text(ASN1_STRING_get0_data(v->value.asn1_string),
											ASN1_STRING_length(v->value.asn1_string)));
	}
	return psprintf("otherName:%s", oid);
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
			case GEN_OTHERNAME:
				result = lappend(result, other_name_text(gn->d.otherName));
				break;
			case GEN_RID:
				result = lappend(result, psprintf("RID:%s", oid_text(gn->d.registeredID)));
				break;
			default:
				result = lappend(result, pstrdup(gn->type == GEN_X400 ? "X400Name:<unsupported>" :
												 "EdiPartyName:<unsupported>"));
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

/* SHA-256 of the DER, colon-separated upper-case hex, as openssl x509 -fingerprint prints it. */
char *
pgtls_fingerprint_sha256(X509 *cert)
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
	info->fingerprint_sha256 = pgtls_fingerprint_sha256(cert);
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
	info->subject_dn = pgtls_name_dn(X509_get_subject_name(cert), NULL);
	info->issuer_dn = pgtls_name_dn(X509_get_issuer_name(cert), NULL);
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

