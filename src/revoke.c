/*
 * revoke.c
 *		Revocation: pgtls_revoke and the CRL file.
 *
 * The CRL lists every revoked serial of the registry, as the newest
 * snapshot shows it, plus the revocations whose transaction has not ended
 * (pending.c), signed by the CA that issued it (trust.c writes one CRL for
 * each CA the server trusts).  It is rebuilt and atomically replaced
 * under a short cluster-wide lock that is released as soon as the file is
 * in place, not at commit.  So a committed revocation is always in the file
 * (its own rewrite, and every later one, lists it), a revocation whose
 * transaction aborts stays listed only until the next rewrite (fail
 * closed), and an idle revoking transaction holds up nobody.
 */
#include "pgtls_ops.h"

#include <openssl/pem.h>

#include "access/xlog.h"
#include "libpq/libpq.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

/*
 * The first CRL of the CRL file as it is now (the active CA's: trust.c
 * writes ours first), owned by the current context; NULL if it cannot be
 * read.
 */
X509_CRL *
pgtls_crl_file_read(void)
{
	PgtlsFileRead f;
	X509_CRL   *crl;

	if (!pgtls_try_read_file(pgtls_resolve_path(pgtls_crl_file), false, &f))
		return NULL;
	crl = pgtls_own_crl(PEM_read_bio_X509_CRL(pgtls_mem_bio(f.data, (int) f.len), NULL, NULL, NULL));
	pgtls_ossl_clear();
	return crl;
}

/*
 * Rewrite the CRLs (and the trust bundle, trust.c) and have the server load
 * them if it uses them (else, with notice, say so).  Returns the number of
 * serials listed.
 */
int
pgtls_crl_publish(bool notice)
{
	return pgtls_trust_publish(notice, false, NULL);
}

/* Is serial the certificate in ssl_cert_file, the one the server presents? */
static bool
is_served_certificate(const char *serial)
{
	PgtlsFileRead f;
	X509	   *leaf;

	if (!pgtls_try_read_file(pgtls_resolve_path(ssl_cert_file), false, &f))
		return false;
	leaf = pgtls_parse_cert(f.data, (int) f.len, "ssl_cert_file", NULL);
	return strcmp(pgtls_serial_hex(X509_get0_serialNumber(leaf)), serial) == 0;
}

/*
 * A serial the registry does not hold: a certificate of the journal whose
 * transaction never recorded it is recorded now, revoked; one nobody here
 * knows is an error (pgtls_revoke_unrecorded() lists it on purpose).
 */
static bool
revoke_unrecorded(const char *serial, const char *reason, PgtlsRegistryRow *row)
{
	PgtlsJournal *j = pgtls_journal_load();
	PgtlsJournalEntry *e = j ? pgtls_journal_find(j, serial) : NULL;
	PgtlsCA		ca;
	X509	   *cert;
	TransactionId holder;

	if (e == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no certificate with serial %s was issued here", serial),
				 superuser() ?
				 errhint("Serials are listed in pgtls_certificates. If a certificate with this serial exists although nothing here records it (issued on a primary that was lost before it replicated, say), list it with pgtls_revoke_unrecorded('%s').", serial) :
				 errhint("Serials are listed in pgtls_certificates.")));
	pgtls_check_revoke_target(e->kind == 's' ? NULL :
							  GetUserNameFromId(e->role_oid, true) ? GetUserNameFromId(e->role_oid, true) :
							  psprintf("with OID %u", e->role_oid),
							  e->role_oid);
	/* its transaction may still record it: wait for it, a few seconds at most */
	pgtls_wait_for_xact(XidFromFullTransactionId(e->fxid),
						psprintf("certificate %s, issued by a transaction that has not ended,", serial));
	if (pgtls_registry_lookup(serial, row))
		return false;			/* it committed: revoke the row */
	pgtls_ca_load_cert(&ca);
	cert = pgtls_journal_cert(e);
	while (pgtls_registry_insert_uncommitted(cert, e->kind == 's' ? "server" : "client", e->role_oid,
											 X509_check_issued(ca.cert, cert) == X509_V_OK ? ca.fingerprint : NULL,
											 &holder) == PGTLS_SETTLE_HELD)
	{
		/* another transaction records it just now (revoking it too): wait for it, a few seconds at most */
		pgtls_wait_for_xact(holder, psprintf("certificate %s, which another transaction is recording,", serial));
		if (pgtls_registry_lookup(serial, row))
			return false;		/* it committed the row, revoked: say so */
	}
	return true;
}

/*
 * List a serial in the CRL although neither the registry nor the journal
 * knows it.  Superuser only; returns false if it was listed already.
 */
bool
pgtls_revoke_unrecorded_serial(const char *serial, const char *reason)
{
	PgtlsRegistryRow row;
	bool		listed;

	pgtls_require_primary("revoke certificates");
	pgtls_require_superuser("revoke a serial nothing here records");
	if (pgtls_registry_lookup(serial, &row))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate %s is recorded in the registry", serial),
				 errhint("Revoke it with pgtls_revoke('%s').", serial)));
	listed = pgtls_registry_revoke_unknown(serial, reason, 0);
	pgtls_pending_add(serial, reason);
	(void) pgtls_crl_publish(true);
	if (listed)
		pgtls_notify_revoked(serial, NULL, NULL, reason);
	return listed;
}

/*
 * Certificates renewed from serial over their own login (pgtls_renew_self)
 * hold keys that possession of serial's key obtained.  With reason
 * keyCompromise they are revoked too (the thief may have renewed); with
 * any other reason a NOTICE names the live ones.  ends_sessions: as for
 * serial.  Returns the serials revoked here.
 */
static List *
revoke_self_renewed(const char *serial, const char *reason, const char *ends_sessions)
{
	List	   *live = pgtls_registry_self_descendants(serial);
	StringInfoData names;
	ListCell   *lc;

	if (live == NIL)
		return NIL;
	initStringInfo(&names);
	foreach(lc, live)
		appendStringInfo(&names, "%s%s", names.len > 0 ? ", " : "", (char *) lfirst(lc));
	if (strcmp(reason, "keyCompromise") != 0)
	{
		ereport(NOTICE,
				(errmsg("%d live certificate(s) were renewed from %s over its own login: %s",
						list_length(live), serial, names.data),
				 errhint("If its key may be compromised, revoke with reason keyCompromise, which revokes these with it.")));
		return NIL;
	}
	foreach(lc, live)
	{
		PgtlsRegistryRow row;

		if (!pgtls_registry_lookup((char *) lfirst(lc), &row))
			continue;
		pgtls_check_revoke_target(row.role, row.role_oid);
		(void) pgtls_revoke_recorded((char *) lfirst(lc), reason, ends_sessions, &row);
	}
	ereport(NOTICE,
			(errmsg("also revoked %d certificate(s) renewed from %s over its own login: %s",
					list_length(live), serial, names.data)));
	return live;
}

/*
 * Revoke serial: record it, rewrite the CRL and have the server reload it
 * before returning, so the next connection with that certificate fails.
 * terminate: the caller ends its sessions on this node at commit
 * (sessions.c); the registry records it, so every node's worker ends those
 * that it sees once the revocation is committed (a prepared one included),
 * sparing superusers' sessions when a non-superuser revokes.  Returns false
 * when it was already revoked (the CRL is rewritten anyway).  *also:
 * certificates revoked with it (see revoke_self_renewed), recorded with the
 * same terminate.
 */
bool
pgtls_revoke_serial(const char *serial, const char *reason, bool terminate, List **also)
{
	const char *ends_sessions = !terminate ? "none" : superuser() ? "all" : "except_superusers";
	bool		revoked;
	PgtlsRegistryRow row;

	*also = NIL;
	pgtls_require_primary("revoke certificates");
	/* without the worker nothing else keeps the journal, and the CRL build reading it, small */
	pgtls_journal_compact_if_grown();
	if (!pgtls_registry_lookup(serial, &row) && revoke_unrecorded(serial, reason, &row))
	{
		pgtls_pending_add(serial, reason);
		(void) pgtls_crl_publish(true);
		pgtls_notify_revoked(serial, NULL, NULL, reason);
		return true;
	}
	if (strcmp(row.kind, "ca") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("serial %s is a CA certificate, which cannot be revoked", serial),
				 errhint("Replace the CA with pgtls_init_ca(replace => true).")));
	pgtls_check_revoke_target(row.role, row.role_oid);
	revoked = pgtls_revoke_recorded(serial, reason, ends_sessions, &row);
	if (strcmp(row.kind, "client") == 0)
		*also = revoke_self_renewed(serial, reason, ends_sessions);
	return revoked;
}

/*
 * Revoke serial, recorded in the registry as row, for a caller whose right
 * to revoke it was checked (pgtls_revoke_serial, or pgtls_renew_self
 * revoking the certificate the session logged in with).  ends_sessions is
 * what the registry records of its sessions (none, except_superusers, all).
 * Returns false when it was already revoked (the CRL is rewritten anyway).
 */
bool
pgtls_revoke_recorded(const char *serial, const char *reason, const char *ends_sessions,
					  const PgtlsRegistryRow *row)
{
	bool		revoked_now;

	(void) pgtls_sessions_end_holder(serial, pgtls_registry_row_xmax(serial));
	revoked_now = pgtls_registry_revoke(serial, reason, ends_sessions);
	pgtls_pending_add(serial, reason);
	pgtls_live_at_commit(serial, false, InvalidOid, 0, NULL);
	(void) pgtls_crl_publish(true);
	if (revoked_now)
		pgtls_notify_revoked(serial, row->kind, row->role, reason);
	if (strcmp(row->kind, "server") == 0 && is_served_certificate(serial))
		ereport(WARNING,
				(errmsg("certificate %s is the one the server presents (ssl_cert_file)", serial),
				 errdetail("Clients do not check the server's certificate against a CRL (libpq does so only with sslcrl), so revoking it does not stop them from accepting it."),
				 errhint("Install a new server certificate now: SELECT * FROM pgtls_enable_ssl();")));
	return revoked_now;
}

/*
 * The current CRLs, one for each CA the server trusts.  On a standby, the
 * CRLs its replayed registry implies, built now, rather than a file the
 * worker may not have rewritten yet.
 */
text *
pgtls_crl_text(void)
{
	size_t		len;
	char	   *pem;

	if (RecoveryInProgress())
		return pgtls_trust_crl_text();
	pem = pgtls_read_file(pgtls_resolve_path(pgtls_crl_file), "CRL file",
						  "The CRL is written by pgtls_init_ca(), pgtls_enable_ssl() and pgtls_revoke().",
						  false, &len);
	return cstring_to_text_with_len(pem, (int) len);
}
