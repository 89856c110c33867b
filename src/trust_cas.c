/*
 * trust_cas.c
 *		CAs of others that the server trusts for client certificates beside
 *		the extension's own: pgtls_trust_add() and pgtls_trust_remove().
 *
 * A Teleport or corporate client CA, or the offline root above an
 * intermediate CA of ours, goes into pgtls_trusted_cas with its CRL; the
 * trust files are written from that table (trust.c), so an install, a
 * rotation or a standby never drops it.  The server checks CRLs for every CA
 * of a chain once ssl_crl_file is set, so a CA without a CRL would lock out
 * every client certificate under it: one is refused without its CRL.
 */
#include "pgtls_ops.h"

#include <openssl/pem.h>

#include "utils/timestamp.h"

#define CRL_TEXT_HINT "Pass the whole PEM text of the CA's current CRL, BEGIN and END lines included (openssl ca -gencrl writes one)."

/*
 * The CRL of ca in pem (one PEM CRL), checked: signed by ca, issued under
 * its name, current.  Returns it as PEM; *next_update its nextUpdate (0:
 * none).  what names it in messages.
 */
char *
pgtls_check_ca_crl(X509 *ca, const char *pem, int len, const char *what, TimestampTz *next_update)
{
	BIO		   *bio = pgtls_mem_bio(pem, len);
	X509_CRL   *crl;
	char	   *subject = pgtls_name_text(X509_get_subject_name(ca));
	BIO		   *out;

	pgtls_ossl_clear();
	crl = pgtls_own_crl(PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL));
	if (crl == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is not a PEM certificate revocation list", what),
				 errdetail("OpenSSL: %s.", pgtls_ossl_error()),
				 errhint(CRL_TEXT_HINT)));
	if (X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0 ||
		X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)
	{
		pgtls_ossl_clear();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is not signed by CA \"%s\"", what, subject),
				 errdetail("It names \"%s\" as its issuer.", pgtls_name_text(X509_CRL_get_issuer(crl))),
				 errhint("Pass the CRL that CA published.")));
	}
	if (X509_cmp_time(X509_CRL_get0_lastUpdate(crl), NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s of CA \"%s\" is not valid before %s", what, subject,
						timestamptz_to_str(pgtls_asn1_time_to_timestamptz(X509_CRL_get0_lastUpdate(crl)))),
				 errhint("Check the clock of this machine and of the machine that signed it.")));
	*next_update = 0;
	if (X509_CRL_get0_nextUpdate(crl) != NULL)
	{
		*next_update = pgtls_asn1_time_to_timestamptz(X509_CRL_get0_nextUpdate(crl));
		if (X509_cmp_time(X509_CRL_get0_nextUpdate(crl), NULL) <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s of CA \"%s\" expired on %s", what, subject, timestamptz_to_str(*next_update)),
					 errdetail("The server refuses every client certificate under a CA whose CRL has expired."),
					 errhint("Pass a current CRL of that CA.")));
	}
	pgtls_ossl_clear();
	out = pgtls_mem_bio(NULL, 0);
	if (PEM_write_bio_X509_CRL(out, crl) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the CRL");
	return pgtls_bio_to_cstring(out);
}

/*
 * A SHA-256 fingerprint as the registry spells it (colon-separated
 * upper-case hex), from any case, with or without colons.
 */
char *
pgtls_normalize_fingerprint(const char *fingerprint)
{
	StringInfoData buf;
	int			digits = 0;

	initStringInfo(&buf);
	for (const char *p = fingerprint; *p; p++)
	{
		if (*p == ':')
			continue;
		if (!isxdigit((unsigned char) *p) || digits == 64)
		{
			digits = -1;
			break;
		}
		if (digits > 0 && digits % 2 == 0)
			appendStringInfoChar(&buf, ':');
		appendStringInfoChar(&buf, (char) pg_ascii_toupper((unsigned char) *p));
		digits++;
	}
	if (digits != 64)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("\"%s\" is not a SHA-256 fingerprint", fingerprint),
				 errhint("Pass 64 hexadecimal digits, with or without colons, as SELECT fingerprint_sha256 FROM pgtls_trusted_cas; shows them.")));
	return buf.data;
}

/* What a CA of others must be for the server to use it, as the server and OpenSSL judge it. */
static void
check_trusted_cert(X509 *cert)
{
	uint32		ku = X509_get_key_usage(cert);
	EVP_PKEY   *pub = X509_get0_pubkey(cert);
	int			md_nid = NID_undef;

	if (!(X509_get_extension_flags(cert) & EXFLAG_CA))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate is not a CA certificate"),
				 errdetail("It lacks basicConstraints CA:TRUE.")));
	if (ku != UINT32_MAX && !(ku & KU_KEY_CERT_SIGN))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate may not sign certificates"),
				 errdetail("Its keyUsage lacks keyCertSign.")));
	if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the CA certificate expired on %s",
						timestamptz_to_str(pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(cert))))));
	/* OpenSSL never checks a trust anchor's own signature; an intermediate's it does */
	if (!(X509_get_extension_flags(cert) & EXFLAG_SS) &&
		X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL) &&
		(md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_md5_sha1))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the CA certificate is signed with the weak digest %s", OBJ_nid2sn(md_nid)),
				 errdetail("OpenSSL at security level 2 refuses a chain through it (\"ca md too weak\").")));
	if (pub != NULL && EVP_PKEY_get_base_id(pub) == EVP_PKEY_RSA && EVP_PKEY_get_bits(pub) < 2048)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the CA certificate has a %d-bit RSA key, below the 2048 bits required",
						EVP_PKEY_get_bits(pub))));
}

static PgtlsCARow *
our_ca(const char *fingerprint)
{
	ListCell   *lc;

	foreach(lc, pgtls_registry_cas(false))
		if (strcmp(((PgtlsCARow *) lfirst(lc))->fingerprint, fingerprint) == 0)
			return lfirst(lc);
	return NULL;
}

static PgtlsTrustedRow *
trusted(const char *fingerprint)
{
	ListCell   *lc;

	foreach(lc, pgtls_registry_trusted(true))
		if (strcmp(((PgtlsTrustedRow *) lfirst(lc))->fingerprint, fingerprint) == 0)
			return lfirst(lc);
	return NULL;
}

static TimestampTz
last_update(const char *pem)
{
	BIO		   *bio = pgtls_mem_bio(pem, (int) strlen(pem));
	X509_CRL   *crl = pgtls_own_crl(PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL));

	pgtls_ossl_clear();
	return crl ? pgtls_asn1_time_to_timestamptz(X509_CRL_get0_lastUpdate(crl)) : 0;
}

/* A CRL older than the one kept would bring revoked certificates back. */
static void
refuse_older_crl(X509 *cert, const char *kept, const char *offered)
{
	TimestampTz kept_at = last_update(kept);
	TimestampTz offered_at = last_update(offered);

	if (offered_at < kept_at)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("crl of CA \"%s\" is older than the one kept", pgtls_name_text(X509_get_subject_name(cert))),
				 errdetail("It was issued on %s; the one kept on %s.", timestamptz_to_str(offered_at),
						   timestamptz_to_str(kept_at)),
				 errhint("Pass the CA's newest CRL: an older one may not list certificates revoked since.")));
}

/* Take the locks a change of trust needs, and check the server reads our files. */
static void
begin_trust_change(const char *action)
{
	pgtls_ca_lock(true);
	pgtls_ca_sync();
	pgtls_trust_settings_check(action);
}

/*
 * Trust the CA cert_pem (one certificate) with its CRL crl_pem (NULL: keep
 * the one it has; it must have one).  Returns its fingerprint.
 */
char *
pgtls_trust_add_ca(const char *cert_pem, int cert_len, const char *crl_pem, int crl_len)
{
	X509	   *cert = pgtls_parse_cert(cert_pem, cert_len, "certificate", PGTLS_CERT_TEXT_HINT);
	int			ncerts = list_length(pgtls_read_cert_list(cert_pem, cert_len));
	char	   *fingerprint = pgtls_fingerprint_sha256(cert);
	char	   *subject = pgtls_name_text(X509_get_subject_name(cert));
	char	   *crl = NULL;
	TimestampTz next_update = 0;
	PgtlsCARow *ours;
	PgtlsTrustedRow *known;

	if (ncerts > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate holds %d certificates", ncerts),
				 errhint("Add CAs one at a time, each with its own CRL.")));
	check_trusted_cert(cert);
	if (crl_pem != NULL)
		crl = pgtls_check_ca_crl(cert, crl_pem, crl_len, "crl", &next_update);

	/* locked before the CRL kept is read: a concurrent call with a newer one commits first, and is seen */
	begin_trust_change("trust a CA");
	ours = our_ca(fingerprint);
	if (ours != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("CA \"%s\" is one of pgtls_admin's own CAs (%s)", subject,
						ours->state ? ours->state : "recorded"),
				 pgtls_ca_state_trusted(ours->state) ?
				 errdetail("The server trusts it already, and its CRL is signed here.") :
				 errdetail("A retired CA of pgtls_admin does not come back."),
				 errhint("Its state changes with pgtls_ca_rotate().")));
	known = trusted(fingerprint);
	if (crl != NULL && known != NULL && known->crl != NULL)
		refuse_older_crl(cert, known->crl, crl);
	if (crl == NULL && (known == NULL || known->crl == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("CA \"%s\" cannot be trusted without its CRL", subject),
				 errdetail("The server checks CRLs for every CA of a chain (ssl_crl_file), so it would refuse every client certificate under a CA without one."),
				 errhint("Pass its current CRL: SELECT pgtls_trust_add(certificate, crl);")));

	pgtls_registry_trust_put(cert, crl, next_update, "admin");
	pgtls_ca_publish_trust();
	if (known == NULL)
		ereport(NOTICE,
				(errmsg("the server trusts CA \"%s\" for client certificates", subject),
				 errdetail("Under a pg_hba.conf line with method cert, any certificate it issues whose CN (or mapped name) is a role logs in as that role."),
				 errhint("Refresh its CRL before it expires with pgtls_trust_add(certificate, crl) again; remove it with pgtls_trust_remove('%s').",
						 fingerprint)));
	return fingerprint;
}

/* Stop trusting the CA of others with this fingerprint (any spelling). */
bool
pgtls_trust_remove_ca(const char *fingerprint_arg)
{
	char	   *fingerprint = pgtls_normalize_fingerprint(fingerprint_arg);
	PgtlsCARow *ours;
	PgtlsTrustedRow *known;
	ListCell   *lc;

	begin_trust_change("stop trusting a CA");
	ours = our_ca(fingerprint);
	if (ours != NULL && pgtls_ca_state_trusted(ours->state))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("CA \"%s\" is pgtls_admin's %s CA", ours->subject, ours->state),
				 errhint("Retire it with pgtls_ca_rotate('retire') after a rotation.")));
	known = trusted(fingerprint);
	if (known == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no trusted CA has fingerprint %s", fingerprint),
				 errhint("SELECT fingerprint_sha256, subject FROM pgtls_trusted_cas; lists them.")));
	foreach(lc, pgtls_trusted_ca_rows(pgtls_registry_cas(false)))
	{
		PgtlsCARow *row = lfirst(lc);

		if (row->chain != NULL && strstr(row->chain, known->certificate) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("CA \"%s\" is above pgtls_admin's %s CA \"%s\"", known->subject, row->state, row->subject),
					 errdetail("Without it the server cannot build a chain for any certificate that CA issued."),
					 errhint("Rotate to another CA and retire that one first.")));
	}
	(void) pgtls_registry_trust_delete(fingerprint);
	pgtls_ca_publish_trust();
	return true;
}
