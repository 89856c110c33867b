/*
 * revoke.c
 *		Revocation: pgtls_revoke and the CRL file.
 *
 * The CRL lists every revoked serial of the registry, as the newest
 * snapshot shows it, plus the revocations whose transaction has not ended
 * (pending.c), signed by the CA.  It is rebuilt and atomically replaced
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

/* Advisory lock key serializing CRL rewrites: "pgtlsCRL". */
#define CRL_LOCK_KEY1 0x7067746cU
#define CRL_LOCK_KEY2 0x7343524cU

/*
 * What the CRL lists: the registry's revocations (newest snapshot), those
 * whose transaction has not ended, and certificates the journal holds that
 * their issuing transaction never recorded.
 */
static List *
crl_serials(void)
{
	return pgtls_journal_add_strays(pgtls_pending_merge(pgtls_registry_revoked()));
}

/* The CRL as PEM, signed by the CA. */
static BIO *
crl_pem(X509 *ca_cert, EVP_PKEY *ca_key)
{
	BIO		   *bio = pgtls_mem_bio(NULL, 0);
	StringInfo	der = pgtls_crl_der(ca_cert, ca_key, crl_serials());

	if (PEM_write_bio(bio, PEM_STRING_X509_CRL, "", (unsigned char *) der->data, der->len) <= 0)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the CRL");
	return bio;
}

/*
 * Take the CRL lock, build the CRL and stage it at pgtls_admin.crl_file.
 * The caller commits the file, then calls pgtls_crl_unlock() (an ERROR in
 * between releases the lock with the transaction).
 */
PgtlsStagedFile *
pgtls_crl_stage(X509 *ca_cert, EVP_PKEY *ca_key)
{
	char	   *data;
	long		len;
	BIO		   *bio;

	pgtls_lock(CRL_LOCK_KEY1, CRL_LOCK_KEY2, "the CRL");
	bio = crl_pem(ca_cert, ca_key);
	len = BIO_get_mem_data(bio, &data);
	return pgtls_stage_file(pgtls_resolve_path(pgtls_crl_file), data, len, 0600);
}

void
pgtls_crl_unlock(void)
{
	pgtls_unlock(CRL_LOCK_KEY1, CRL_LOCK_KEY2);
}

/* Does the running server check the CRL we write? */
static bool
server_uses_our_crl(void)
{
	const char *setting = GetConfigOption("ssl_crl_file", true, false);

	return setting != NULL && setting[0] != '\0' &&
		strcmp(pgtls_resolve_path(setting), pgtls_resolve_path(pgtls_crl_file)) == 0;
}

/* The CRL file as it is now, owned by the current context; NULL if it cannot be read. */
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
 * Rewrite the CRL with the CA, and have the server load it if it uses it
 * (else, with notice, say so).  Returns the number of serials listed.
 */
int
pgtls_crl_publish(bool notice)
{
	PgtlsCA		ca;
	PgtlsStagedFile *staged;
	X509_CRL   *crl;
	int			listed = 0;

	pgtls_ca_load(&ca);
	staged = pgtls_crl_stage(ca.cert, ca.key);
	pgtls_commit_file(staged);
	pgtls_crl_unlock();
	if (server_uses_our_crl())
		pgtls_reload_server();
	else if (notice)
		ereport(NOTICE,
				(errmsg("the server does not check the CRL pgtls_admin writes"),
				 errdetail("ssl_crl_file is not \"%s\".", pgtls_crl_file),
				 errhint("Run pgtls_enable_ssl(), or set ssl_crl_file = '%s' and reload.", pgtls_crl_file)));
	crl = pgtls_crl_file_read();
	if (crl != NULL && X509_CRL_get_REVOKED(crl) != NULL)
		listed = sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl));
	return listed;
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
 * Revoke serial: record it, rewrite the CRL and have the server reload it
 * before returning, so the next connection with that certificate fails.
 * Returns false when it was already revoked (the CRL is rewritten anyway).
 */
bool
pgtls_revoke_serial(const char *serial, const char *reason)
{
	PgtlsRegistryRow row;

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
	return pgtls_revoke_recorded(serial, reason, &row);
}

/*
 * Revoke serial, recorded in the registry as row, for a caller whose right
 * to revoke it was checked (pgtls_revoke_serial, or pgtls_renew_self
 * revoking the certificate the session logged in with).  Returns false when
 * it was already revoked (the CRL is rewritten anyway).
 */
bool
pgtls_revoke_recorded(const char *serial, const char *reason, const PgtlsRegistryRow *row)
{
	bool		revoked_now;

	revoked_now = pgtls_registry_revoke(serial, reason);
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
 * The current CRL.  On a standby, the CRL its replayed registry implies,
 * built and signed now, rather than a file the worker may not have
 * rewritten yet.
 */
text *
pgtls_crl_text(void)
{
	size_t		len;
	char	   *pem;

	if (RecoveryInProgress())
	{
		PgtlsCA		ca;

		pgtls_ca_load(&ca);
		return pgtls_bio_to_text(crl_pem(ca.cert, ca.key));
	}
	pem = pgtls_read_file(pgtls_resolve_path(pgtls_crl_file), "CRL file",
						  "The CRL is written by pgtls_init_ca(), pgtls_enable_ssl() and pgtls_revoke().",
						  false, &len);
	return cstring_to_text_with_len(pem, (int) len);
}
