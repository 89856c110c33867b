/*
 * audit_ca.c
 *		The audit of the extension's CAs and the CAs of others it trusts:
 *		their states, keys, CRLs and lifetimes, and where a rotation stands.
 *
 * What the trust files will hold is judged from the registry (the server's
 * files as they are now are judged by audit_tls.c and audit_crl.c).
 */
#include "pgtls_audit.h"

#include <sys/stat.h>

#include "access/xlog.h"
#include "libpq/libpq.h"
#include "postmaster/postmaster.h"
#include "utils/timestamp.h"

#define SECS_PER_DAY_F 86400.0

static bool
state_is(PgtlsCARow *row, const char *state)
{
	return row->state != NULL && strcmp(row->state, state) == 0;
}

/* The fingerprint of the CA of pgtls_admin.ca_cert_file, or NULL. */
static char *
files_fingerprint(void)
{
	PgtlsFileRead f;
	List	   *certs;

	if (!pgtls_try_read_file(pgtls_resolve_path(pgtls_ca_cert_file), false, &f))
		return NULL;
	certs = pgtls_read_cert_list(f.data, (int) f.len);
	return certs ? pgtls_fingerprint_sha256(linitial(certs)) : NULL;
}

static X509 *
row_cert(PgtlsCARow *row)
{
	List	   *certs = pgtls_read_cert_list(row->certificate, (int) strlen(row->certificate));

	return certs ? linitial(certs) : NULL;
}

/* Certificates that expire after their CA: they stop verifying before their time. */
static void
check_outliving(PgtlsAudit *audit, List *trusted)
{
	char	   *serial;
	char	   *ca_subject;
	int			count = pgtls_registry_outliving(&serial, &ca_subject);
	ListCell   *lc;

	if (count > 0)
		pgtls_finding(audit, PGTLS_SEV_MEDIUM, "cert.outlives_ca", NULL, 0, NULL,
					  psprintf("%d live certificate%s expire%s after the CA that issued %s (first: serial %s, CA \"%s\"): from the CA's expiry on, %s no longer verif%s",
							   count, count == 1 ? "" : "s", count == 1 ? "s" : "", count == 1 ? "it" : "them",
							   serial, ca_subject, count == 1 ? "it" : "they", count == 1 ? "ies" : "y"),
					  pstrdup("Rotate to a CA that outlives them (SELECT * FROM pgtls_ca_rotate('prepare');), then renew them under it with pgtls_renew(serial)."));
	foreach(lc, trusted)
	{
		PgtlsCARow *row = lfirst(lc);
		ListCell   *lc2;

		if (row->chain == NULL)
			continue;
		foreach(lc2, pgtls_read_cert_list(row->chain, (int) strlen(row->chain)))
		{
			TimestampTz above = pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(lfirst(lc2)));

			if (above < row->not_after)
				pgtls_finding(audit, PGTLS_SEV_MEDIUM, "cert.outlives_ca", NULL, 0, NULL,
							  psprintf("CA \"%s\" (%s) expires after the CA above it, \"%s\", on %s: from then on nothing it issued verifies",
									   row->subject, row->state, pgtls_name_text(X509_get_subject_name(lfirst(lc2))),
									   timestamptz_to_str(above)),
							  pstrdup("Have the root sign a new intermediate before then (pgtls_ca_request(), pgtls_ca_set_certificate()) and rotate to it."));
		}
	}
}

/*
 * Each CA the trust files hold needs a CRL, or the server refuses every
 * client certificate under it; ours need their key on this node to be
 * re-signed.
 */
static void
check_crls_and_keys(PgtlsAudit *audit, List *trusted)
{
	char	   *files_fp = files_fingerprint();
	List	   *stored = NIL;
	bool		stored_read = false;
	ListCell   *lc;

	foreach(lc, trusted)
	{
		PgtlsCARow *row = lfirst(lc);
		bool		have_key = (files_fp != NULL && strcmp(files_fp, row->fingerprint) == 0) ||
			pgtls_ca_keyring_has(row->fingerprint);
		bool		have_stored = false;
		ListCell   *lc2;

		if (have_key)
			continue;
		if (!stored_read)
		{
			stored = pgtls_registry_crls_stored();
			stored_read = true;
		}
		foreach(lc2, stored)
			have_stored |= strcmp(((PgtlsStoredCrl *) lfirst(lc2))->fingerprint, row->fingerprint) == 0;
		if (!have_stored)
			pgtls_finding(audit, PGTLS_SEV_CRITICAL, "ca.crl_missing", NULL, 0, NULL,
						  psprintf("the trust bundle holds CA \"%s\" (%s), but this server has neither its key to sign its CRL nor a CRL the primary signed: every client certificate it issued is refused",
								   row->subject, row->state),
						  pstrdup("Restore its key file from a backup of the primary (it is kept beside pgtls_admin.ca_key_file), or run SELECT pgtls_refresh_crl(); on the primary with the library preloaded there."));
		else
			pgtls_finding(audit, RecoveryInProgress() ? PGTLS_SEV_MEDIUM : PGTLS_SEV_HIGH, "ca.key_missing",
						  NULL, 0, NULL,
						  psprintf("this server does not have the key of CA \"%s\" (%s): it writes the CRL the primary signed%s",
								   row->subject, row->state,
								   RecoveryInProgress() ?
								   ", and after a promotion it could neither re-sign that CRL nor issue from the CA" :
								   ", which expires unless a node with the key signs it again"),
						  psprintf("Copy \"%s\" (mode 0600) and its .crt from the primary.",
								   pgtls_ca_keyring_path(row->fingerprint, "key")));
	}
	foreach(lc, pgtls_registry_trusted(false))
	{
		PgtlsTrustedRow *t = lfirst(lc);
		double		left = (double) (t->crl_next_update - GetCurrentTimestamp()) / USECS_PER_SEC / SECS_PER_DAY_F;

		if (t->crl == NULL)
			pgtls_finding(audit, PGTLS_SEV_CRITICAL, "ca.crl_missing", NULL, 0, NULL,
						  psprintf("the trust bundle holds CA \"%s\" without a CRL: the server refuses every client certificate under it", t->subject),
						  psprintf("Add its CRL: SELECT pgtls_trust_add(certificate, crl); (certificate from pgtls_trusted_cas, fingerprint %s).",
								   t->fingerprint));
		else if (t->crl_next_update != 0 && left < 2)
			pgtls_finding(audit, PGTLS_SEV_HIGH, "trust.crl_expiring", NULL, 0, NULL,
						  left <= 0 ?
						  psprintf("the CRL of trusted CA \"%s\" expired on %s: the server refuses every client certificate under it",
								   t->subject, timestamptz_to_str(t->crl_next_update)) :
						  psprintf("the CRL of trusted CA \"%s\" expires on %s: from then on the server refuses every client certificate under it",
								   t->subject, timestamptz_to_str(t->crl_next_update)),
						  pstrdup("Fetch that CA's current CRL and pass it: SELECT pgtls_trust_add(certificate, crl);"));
	}
}

/* The CAs of ours the server's ssl_ca_file lacks, as it is now. */
static void
check_bundle_in_use(PgtlsAudit *audit, List *trusted)
{
	PgtlsFileRead f;
	List	   *certs;
	ListCell   *lc;

	if (!EnableSSL || ssl_ca_file == NULL || ssl_ca_file[0] == '\0' ||
		!pgtls_try_read_file(pgtls_resolve_path(ssl_ca_file), false, &f))
		return;
	certs = pgtls_read_cert_list(f.data, (int) f.len);
	foreach(lc, trusted)
	{
		PgtlsCARow *row = lfirst(lc);
		X509	   *cert = row_cert(row);
		bool		found = false;
		ListCell   *lc2;

		if (state_is(row, "active") || cert == NULL)
			continue;			/* audit_tls.c's ca.not_trusted */
		foreach(lc2, certs)
			found |= X509_cmp(lfirst(lc2), cert) == 0;
		if (!found)
			pgtls_finding(audit, state_is(row, "previous") ? PGTLS_SEV_HIGH : PGTLS_SEV_MEDIUM,
						  "ca.not_trusted", pgtls_resolve_path(ssl_ca_file), 0, NULL,
						  psprintf("ssl_ca_file \"%s\" does not hold the %s CA \"%s\", so the server refuses the client certificates it issued",
								   pgtls_resolve_path(ssl_ca_file), row->state, row->subject),
						  psprintf("Set ssl_ca_file = '%s' (the trust bundle pgtls_admin writes) and reload.", pgtls_ca_bundle_file));
	}
}

/* Where a rotation stands: what the CAs in state next and previous still sign for. */
static void
check_rotation(PgtlsAudit *audit, List *trusted)
{
	ListCell   *lc;
	bool		have_next = false;

	foreach(lc, trusted)
		have_next |= state_is(lfirst(lc), "next");
	foreach(lc, trusted)
	{
		PgtlsCARow *row = lfirst(lc);
		PgtlsCAUse	use;
		int			live;

		if (state_is(row, "active"))
		{
			double		left = (double) (row->not_after - GetCurrentTimestamp()) / USECS_PER_SEC / SECS_PER_DAY_F;

			if (!have_next && left < pgtls_default_days)
				pgtls_finding(audit, PGTLS_SEV_MEDIUM, "ca.no_successor", NULL, 0, NULL,
							  psprintf("the active CA \"%s\" expires in %.0f days, on %s, and no CA is in state next: certificates issued now are cut short to its expiry (pgtls_admin.default_days = %d)",
									   row->subject, left, timestamptz_to_str(row->not_after), pgtls_default_days),
							  pstrdup("Start a rotation now, so clients have time to take the new CA: SELECT * FROM pgtls_ca_rotate('prepare');"));
			continue;
		}
		pgtls_registry_ca_use(row->fingerprint, &use);
		live = use.clients + use.servers;
		if (live > 0)
			pgtls_finding(audit, PGTLS_SEV_INFO, "ca.live_certificates", NULL, 0, NULL,
						  psprintf("CA \"%s\" (%s) still has %d live certificate%s (%d client, %d server; the last expires on %s)",
								   row->subject, row->state, live, live == 1 ? "" : "s", use.clients, use.servers,
								   timestamptz_to_str(use.last_expiry)),
						  state_is(row, "previous") ?
						  pstrdup("pgtls_ca_rotate('retire') refuses until they are renewed under the active CA (pgtls_renew(serial)) or revoked.") :
						  pstrdup("They keep logging in while it is trusted."));
		else if (state_is(row, "previous"))
			pgtls_finding(audit, PGTLS_SEV_LOW, "ca.previous_unused", NULL, 0, NULL,
						  use.last_end != 0 ?
						  psprintf("the previous CA \"%s\" is still trusted, but its last certificate ended on %s",
								   row->subject, timestamptz_to_str(use.last_end)) :
						  psprintf("the previous CA \"%s\" is still trusted, but it never issued a certificate", row->subject),
						  pstrdup("Retire it, so nothing it signs is trusted any more: SELECT * FROM pgtls_ca_rotate('retire');"));
	}
}

void
pgtls_audit_cas(PgtlsAudit *audit)
{
	List	   *trusted = pgtls_trusted_ca_rows(pgtls_registry_cas(false));

	check_outliving(audit, trusted);
	check_crls_and_keys(audit, trusted);
	check_bundle_in_use(audit, trusted);
	check_rotation(audit, trusted);
}
