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

	/* entries of another database belong to a registry that was dropped */
	return e->dboid == MyDatabaseId && !pgtls_serial_in_list(js->known, e->serial);
}

/*
 * Drop from the journal the entries the registry records (committed, or
 * settled by a committed pgtls_settle_journal()), and those of other
 * databases.  Returns how many went,
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
	return pgtls_crl_publish(true);
}

/*
 * From CREATE EXTENSION: a new registry starts with every revocation of
 * the CRL file its CA signed, so dropping and creating the extension again
 * (or restoring into it) never un-revokes a certificate while the CA stays.
 */
int
pgtls_adopt_crl_revocations(void)
{
	PgtlsFileRead f;
	PgtlsCA		ca;
	BIO		   *bio;
	X509_CRL   *crl;
	STACK_OF(X509_REVOKED) *entries;
	int			adopted = 0;

	struct stat st;

	/* no CA (yet), or no CRL: there is nothing it signed to adopt */
	if (stat(pgtls_resolve_path(pgtls_ca_cert_file), &st) < 0 ||
		!pgtls_try_read_file(pgtls_resolve_path(pgtls_crl_file), false, &f))
		return 0;
	pgtls_ca_load_cert(&ca);
	bio = pgtls_mem_bio(f.data, (int) f.len);
	crl = pgtls_own_crl(PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL));
	pgtls_ossl_clear();
	if (crl == NULL || X509_CRL_verify(crl, X509_get0_pubkey(ca.cert)) != 1)
	{
		pgtls_ossl_clear();
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
	if (adopted > 0)
		ereport(NOTICE,
				(errmsg("kept %d revocation%s of the existing CRL", adopted, adopted == 1 ? "" : "s"),
				 errdetail("They are listed in pgtls_revoked_serials.")));
	return adopted;
}
