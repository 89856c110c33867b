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
#include "utils/memutils.h"

/*
 * Record the strays among entries [from, to) of j (fates as
 * pgtls_journal_fates() found them) in the registry, revoked and marked
 * uncommitted, so that standbys learn of them and the audit shows them.
 * A stray whose row another transaction is writing just now (a
 * pgtls_revoke of it left open) is skipped, not waited for: the CRL lists
 * it meanwhile.  Returns how many were recorded; *held counts the skipped.
 */
static int
settle_strays(PgtlsJournal *j, const PgtlsEntryFate *fates, int from, int to, int *held)
{
	PgtlsCA		ca;
	bool		have_ca = false;
	int			recorded = 0;

	for (int i = from; i < to; i++)
	{
		PgtlsJournalEntry *e = &j->entries[i];
		TransactionId holder;
		X509	   *cert;

		if (fates[i] != PGTLS_ENTRY_STRAY)
			continue;
		if (!have_ca)
		{
			pgtls_ca_load_cert(&ca);
			have_ca = true;
		}
		cert = pgtls_journal_cert(e);
		switch (pgtls_registry_insert_uncommitted(cert, e->kind == 's' ? "server" : "client", e->role_oid,
												  X509_check_issued(ca.cert, cert) == X509_V_OK ? ca.fingerprint : NULL,
												  &holder))
		{
			case PGTLS_SETTLE_RECORDED:
				recorded++;
				break;
			case PGTLS_SETTLE_HELD:
				ereport(DEBUG1,
						(errmsg("pgtls_admin: certificate %s is being recorded by transaction %u; not waiting for it",
								e->serial, holder)));
				(*held)++;
				break;
			case PGTLS_SETTLE_PRESENT:
				break;
		}
		CHECK_FOR_INTERRUPTS();
	}
	return recorded;
}

static void
log_settled(int recorded)
{
	if (recorded > 0)
		ereport(LOG,
				(errmsg("pgtls_admin: recorded %d certificate%s whose issuing transaction did not commit, as revoked",
						recorded, recorded == 1 ? "" : "s")));
}

/*
 * Record every stray of the journal in the registry, revoked and marked
 * uncommitted.  Returns how many were recorded.  Primary only.
 */
int
pgtls_settle_journal(void)
{
	PgtlsJournal *j = pgtls_journal_load();
	PgtlsEntryFate *fates;
	int			held = 0;
	int			recorded;

	if (j == NULL || j->n == 0)
		return 0;
	fates = palloc0(sizeof(PgtlsEntryFate) * j->n);
	pgtls_journal_fates(j, 0, j->n, fates);
	recorded = settle_strays(j, fates, 0, j->n, &held);
	log_settled(recorded);
	return recorded;
}

/*
 * Drop from the journal the entries the registry records (committed, or
 * settled by a committed pgtls_settle_journal()), and the committed ones
 * of registries that were dropped.  Returns how many went, or -1 if it
 * could not run just then.  Primary only.
 */
int
pgtls_compact_journal(void)
{
	return pgtls_journal_compact();
}

/* ---- the same, a slice at a time, for the background worker ---- */

struct PgtlsJournalWork
{
	MemoryContext cxt;
	PgtlsJournal *j;
	PgtlsEntryFate *fates;
	int			next;			/* entries before it are looked at, their strays settled */
	int			settled;
	int			held;
};

/*
 * Start settling and compacting the journal as it is now; NULL when there
 * is none.  The work lives in a context of its own under parent, across
 * transactions, until pgtls_journal_work_end().
 */
PgtlsJournalWork *
pgtls_journal_work_begin(MemoryContext parent)
{
	MemoryContext cxt = AllocSetContextCreate(parent, "pgtls_admin journal work", ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	PgtlsJournalWork *w = palloc0(sizeof(PgtlsJournalWork));

	w->cxt = cxt;
	w->j = pgtls_journal_load();
	if (w->j != NULL)
		w->fates = palloc_extended(sizeof(PgtlsEntryFate) * Max(w->j->n, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	MemoryContextSwitchTo(old);
	if (w->j == NULL)
	{
		MemoryContextDelete(cxt);
		return NULL;
	}
	return w;
}

/*
 * Look at the next count entries and settle their strays, in the caller's
 * transaction.  Returns true when every entry has been looked at.
 */
bool
pgtls_journal_work_step(PgtlsJournalWork *w, int count)
{
	int			to = Min(w->j->n, w->next + count);

	pgtls_journal_fates(w->j, w->next, to, w->fates);
	w->settled += settle_strays(w->j, w->fates, w->next, to, &w->held);
	w->next = to;
	return w->next >= w->j->n;
}

/*
 * After the last step (and its commit): look again at the entries that
 * were open or strays (strays settled by the steps are recorded now), and
 * compact.  Returns how many strays the steps settled; *dropped is what
 * compaction dropped (-1: it could not run), *unsettled whether entries
 * remain that a later look may settle or drop.
 */
int
pgtls_journal_work_finish(PgtlsJournalWork *w, int *dropped, bool *unsettled)
{
	pgtls_journal_fates(w->j, 0, w->j->n, w->fates);
	*dropped = pgtls_journal_rewrite(w->j, w->fates);
	*unsettled = *dropped < 0;
	for (int i = 0; i < w->j->n && !*unsettled; i++)
		*unsettled = w->fates[i] == PGTLS_ENTRY_OPEN || w->fates[i] == PGTLS_ENTRY_STRAY;
	log_settled(w->settled);
	return w->settled;
}

int
pgtls_journal_work_size(PgtlsJournalWork *w)
{
	return w->j->n;
}

/* Forget the work (and close its file). */
void
pgtls_journal_work_end(PgtlsJournalWork *w)
{
	MemoryContextDelete(w->cxt);
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
