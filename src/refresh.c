/*
 * refresh.c
 *		Keeping a node's files equal to the registry: the CRL (on a standby
 *		from the replayed registry), the issuance journal settled into the
 *		registry, and the revocations a new registry starts with.
 *
 * The background worker runs these on every node; pgtls_refresh_crl() and
 * pgtls_maintain() run them on demand where the library is not preloaded.
 */
#include "pgtls_ops.h"

#include <openssl/pem.h>

#include <sys/stat.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "utils/builtins.h"

/*
 * Record every stray of the journal in the registry, revoked and marked
 * uncommitted, so that standbys learn of them and the audit shows them.
 * Returns how many were recorded.  Primary only.
 */
int
pgtls_settle_journal(void)
{
	PgtlsJournalSettle js;
	ListCell   *lc;
	int			recorded = 0;
	PgtlsCA		ca;
	bool		have_ca = false;

	pgtls_journal_settle_state(pgtls_journal_read(), &js);
	foreach(lc, js.finished)
	{
		PgtlsJournalEntry *e = lfirst(lc);
		X509	   *cert;

		if (pgtls_serial_in_list(js.known, e->serial))
			continue;
		if (!have_ca)
		{
			pgtls_ca_load_cert(&ca);
			have_ca = true;
		}
		cert = pgtls_journal_cert(e);
		if (pgtls_registry_insert_uncommitted(cert, e->kind == 's' ? "server" : "client", e->role_oid,
											  X509_check_issued(ca.cert, cert) == X509_V_OK ? ca.fingerprint : NULL))
			recorded++;
	}
	if (recorded > 0)
		ereport(LOG,
				(errmsg("pgtls_admin: recorded %d certificate%s whose issuing transaction did not commit, as revoked",
						recorded, recorded == 1 ? "" : "s")));
	return recorded;
}

static bool
keep_unsettled(PgtlsJournalEntry *e, void *arg)
{
	PgtlsJournalSettle *js = arg;

	/* entries of another registry belong to one that was dropped */
	return e->registry == js->registry && !pgtls_serial_in_list(js->known, e->serial);
}

/*
 * Drop from the journal the entries the registry records (committed, or
 * settled by a committed pgtls_settle_journal()), and those of registries
 * that were dropped.  Returns how many went,
 * or -1 if an issuing backend held the journal just then.
 */
int
pgtls_compact_journal(void)
{
	PgtlsJournalSettle js;

	pgtls_journal_settle_state(pgtls_journal_read(), &js);
	if (js.known == NIL)
		return 0;
	return pgtls_journal_compact(keep_unsettled, &js);
}

/*
 * Rewrite the CRL from the registry and reload: works on a standby (from
 * the replayed registry, with the CA key its base backup copied) and on the
 * primary.  Returns the number of serials it lists.
 */
int
pgtls_crl_refresh(void)
{
	return pgtls_trust_publish(true, !RecoveryInProgress(), NULL);
}

static void
free_info_stack(void *p)
{
	sk_X509_INFO_pop_free(p, X509_INFO_free);
}

/* The CRL of data (ssl_crl_file holds one per trusted CA) that ca signed, or NULL. */
static X509_CRL *
crl_signed_by(const char *data, size_t len, X509 *ca)
{
	BIO		   *bio = pgtls_mem_bio(data, (int) len);
	STACK_OF(X509_INFO) *infos = pgtls_own(PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL), free_info_stack);

	pgtls_ossl_clear();
	for (int i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++)
	{
		X509_CRL   *crl = sk_X509_INFO_value(infos, i)->crl;

		if (crl != NULL && X509_CRL_verify(crl, X509_get0_pubkey(ca)) == 1 && X509_CRL_up_ref(crl) == 1)
			return pgtls_own_crl(crl);
		pgtls_ossl_clear();
	}
	return NULL;
}

/*
 * An intermediate CA's certificates above it are trusted again, with the
 * CRLs of theirs the CRL file f holds (f->data NULL: none).
 */
static void
adopt_chain(PgtlsCA *ca, PgtlsFileRead *f)
{
	ListCell   *lc;

	foreach(lc, pgtls_read_cert_list(ca->upper_pem, (int) strlen(ca->upper_pem)))
	{
		X509_CRL   *crl = f->data ? crl_signed_by(f->data, f->len, lfirst(lc)) : NULL;
		BIO		   *bio = pgtls_mem_bio(NULL, 0);
		TimestampTz next_update = 0;

		if (crl != NULL && PEM_write_bio_X509_CRL(bio, crl) != 1)
			pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode a CRL");
		if (crl != NULL && X509_CRL_get0_nextUpdate(crl) != NULL)
			next_update = pgtls_asn1_time_to_timestamptz(X509_CRL_get0_nextUpdate(crl));
		pgtls_registry_trust_put(lfirst(lc), crl ? pgtls_bio_to_cstring(bio) : NULL, next_update, "chain");
	}
}

/*
 * From CREATE EXTENSION: a new registry starts with the CA already in the
 * files, and with every revocation of the CRL file that CA signed, so
 * dropping and creating the extension again (or restoring into it) never
 * un-revokes a certificate while the CA stays.  Returns the revocations
 * kept.
 */
int
pgtls_adopt_crl_revocations(void)
{
	PgtlsFileRead f;
	PgtlsCA		ca;
	X509_CRL   *crl;
	STACK_OF(X509_REVOKED) *entries;
	int			adopted = 0;

	struct stat st;

	/* no CA (yet): there is nothing it signed to adopt */
	if (stat(pgtls_resolve_path(pgtls_ca_cert_file), &st) < 0)
		return 0;
	pgtls_ca_load_cert(&ca);
	(void) pgtls_registry_insert(ca.cert, "ca", NULL, InvalidOid, NULL, ca.fingerprint);
	pgtls_registry_ca_set_state(ca.fingerprint, "active", ca.upper_pem[0] ? ca.upper_pem : NULL);
	if (!pgtls_try_read_file(pgtls_resolve_path(pgtls_crl_file), false, &f))
		f.data = NULL;
	adopt_chain(&ca, &f);
	if (f.data == NULL)
		return 0;
	crl = crl_signed_by(f.data, f.len, ca.cert);
	if (crl == NULL)
	{
		ereport(WARNING,
				(errmsg("the CRL file \"%s\" is not signed by the CA; its revocations are not adopted",
						pgtls_crl_file)));
		return 0;
	}
	entries = X509_CRL_get_REVOKED(crl);
	for (int i = 0; entries != NULL && i < sk_X509_REVOKED_num(entries); i++)
	{
		X509_REVOKED *r = sk_X509_REVOKED_value(entries, i);
		ASN1_ENUMERATED *code = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, NULL, NULL);
		const char *reason = pgtls_reason_name(code ? (int) ASN1_ENUMERATED_get(code) : 0);

		ASN1_ENUMERATED_free(code);
		if (pgtls_registry_revoke_unknown(pgtls_serial_hex(X509_REVOKED_get0_serialNumber(r)), reason,
										  pgtls_asn1_time_to_timestamptz(X509_REVOKED_get0_revocationDate(r))))
			adopted++;
	}
	/* CREATE EXTENSION hides notices of its script: say it in the log */
	if (adopted > 0)
		ereport(LOG,
				(errmsg("pgtls_admin: the new registry keeps %d revocation%s of the existing CRL",
						adopted, adopted == 1 ? "" : "s"),
				 errdetail("They are listed in pgtls_revoked_serials.")));
	return adopted;
}
