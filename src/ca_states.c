/*
 * ca_states.c
 *		The extension's CAs and their states: next, active, previous,
 *		retired.
 *
 * Every CA the extension has held is a registry row of kind 'ca' with a
 * state.  The active CA is the one of pgtls_admin.ca_cert_file and
 * ca_key_file, which issues; a CA in state next or previous keeps its key
 * beside them (ca_keyring.c); the server trusts every CA that is not
 * retired (trust.c).  pgtls_init_ca() and the imports make their CA the only
 * active one at once and retire every other (pgtls_ca_make_active): the old
 * way, for a compromised CA.  ca_rotate.c moves between the states without
 * a failed login.
 *
 * The registry follows the CA files: when they hold a CA the registry does
 * not record as active (a crash between the switch of the files and the
 * commit of a phase, a CA put there by hand), pgtls_ca_sync() records it as
 * active and the former active CA as previous (next, when the files went
 * back to a previous CA), so nothing trusted is dropped; a retired CA is
 * never brought back.  Only the active CA issues (pgtls_ca_require_active).
 */
#include "pgtls_ops.h"

#include <openssl/pem.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "libpq/libpq.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

/* The CA this backend last found active in the registry (its fingerprint). */
static char confirmed_active[96];

/* The transaction that changed CA states here: nothing it finds is kept. */
static TransactionId states_changed_xid = InvalidTransactionId;

/* The CAs of the registry by state. */
void
pgtls_ca_read_states(PgtlsCAStates *s)
{
	ListCell   *lc;

	memset(s, 0, sizeof(*s));
	s->rows = pgtls_registry_cas(false);
	foreach(lc, s->rows)
	{
		PgtlsCARow *row = lfirst(lc);

		if (row->state == NULL)
			continue;
		if (strcmp(row->state, "active") == 0)
			s->active = row;
		else if (strcmp(row->state, "next") == 0)
			s->next = row;
		else if (strcmp(row->state, "previous") == 0)
			s->previous = lappend(s->previous, row);
	}
}

PgtlsCARow *
pgtls_ca_find_row(List *rows, const char *fingerprint)
{
	ListCell   *lc;

	foreach(lc, rows)
		if (strcmp(((PgtlsCARow *) lfirst(lc))->fingerprint, fingerprint) == 0)
			return lfirst(lc);
	return NULL;
}

void
pgtls_ca_set_state(const char *fingerprint, const char *state, const char *chain)
{
	pgtls_registry_ca_set_state(fingerprint, state, chain);
	states_changed_xid = GetTopTransactionId();
}

X509 *
pgtls_ca_row_cert(PgtlsCARow *row)
{
	return pgtls_parse_cert(row->certificate, (int) strlen(row->certificate),
							"a CA certificate of the registry", NULL);
}

void
pgtls_commit_pair(PgtlsStagedFile *key_file, PgtlsStagedFile *cert_file)
{
	pgtls_commit_file(key_file);
	pgtls_commit_file(cert_file);
}

/* Keep the key of the CA of the files beside them, unless it is kept already. */
void
pgtls_ca_keep_outgoing(PgtlsCA *out)
{
	PgtlsStagedFile *key_file;
	PgtlsStagedFile *cert_file;

	if (pgtls_ca_keyring_has(out->fingerprint))
		return;
	pgtls_ca_keyring_stage(out->key, out->cert, out->upper_pem, &key_file, &cert_file);
	pgtls_commit_pair(key_file, cert_file);
}

/*
 * Make cert (with key, and upper_pem above it) the CA of the files: the
 * switch of the active CA.  The outgoing CA's key is kept first.  The
 * caller defers its file commits (pgtls_files_defer_to_commit): the
 * marker, the kept key and the CA files are renamed in that order when
 * the transaction commits, and until then it holds cert and key in
 * memory (pgtls_ca_hold).  So a statement that fails leaves the old files
 * and no marker; a crash between the renames and the commit record leaves
 * the marker, and pgtls_ca_sync() completes the switch.
 */
void
pgtls_ca_switch_files(X509 *cert, EVP_PKEY *key, const char *upper_pem)
{
	PgtlsCA		out;
	PgtlsStagedFile *key_file;
	PgtlsStagedFile *cert_file;

	if (pgtls_ca_try_load(&out) && X509_cmp(out.cert, cert) != 0)
		pgtls_ca_keep_outgoing(&out);
	pgtls_ca_stage(key, cert, upper_pem, &key_file, &cert_file);
	pgtls_debug_pause(11);
	/* until this transaction commits, the marker tells a crash from stale files */
	pgtls_ca_switch_mark(pgtls_fingerprint_sha256(cert));
	pgtls_commit_pair(key_file, cert_file);
	/* the files are renamed when the transaction commits; what it signs until then comes from here */
	pgtls_ca_hold(cert, key, upper_pem);
	pgtls_debug_pause_after_files(12);
}

static char *
role_list(List *roles)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	foreach(lc, roles)
	{
		if (foreach_current_index(lc) == 10)
		{
			appendStringInfo(&buf, " and %d more", list_length(roles) - 10);
			break;
		}
		appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", quote_identifier(lfirst(lc)));
	}
	return buf.data;
}

/*
 * "; N server certificate(s) (serials ...)" for the live server certificates
 * of use, or "": a standby's own, or one an install replaced.
 */
static char *
server_list(PgtlsCAUse *use)
{
	StringInfoData buf;
	ListCell   *lc;

	initStringInfo(&buf);
	if (use->servers == 0)
		return buf.data;
	appendStringInfo(&buf, "; %d server certificate%s (serial", use->servers, use->servers == 1 ? "" : "s");
	foreach(lc, use->server_serials)
	{
		if (foreach_current_index(lc) == 5)
		{
			appendStringInfoString(&buf, ", ...");
			break;
		}
		appendStringInfo(&buf, "%s %s", foreach_current_index(lc) ? "," : (use->servers == 1 ? "" : "s"),
						 (char *) lfirst(lc));
	}
	appendStringInfoString(&buf, ": a standby's own, or one an install replaced)");
	return buf.data;
}

/*
 * Retire a CA: it leaves the trust files when they are next written.
 * Refused while it has live certificates, unless force: then they are
 * recorded revoked (they could not log in anyway).  Its kept key goes when
 * this transaction commits.
 */
void
pgtls_ca_retire(PgtlsCARow *row, bool force, const char *action)
{
	PgtlsCAUse	use;
	int			live;

	pgtls_registry_ca_use(row->fingerprint, &use);
	live = use.clients + use.servers;
	if (live > 0 && !force)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s CA \"%s\": %d live certificate%s it issued would be refused at login",
						action, row->subject, live, live == 1 ? "" : "s"),
				 use.clients > 0 ?
				 errdetail("%d client certificate%s of role%s %s%s.", use.clients,
						   use.clients == 1 ? "" : "s", list_length(use.roles) == 1 ? "" : "s",
						   role_list(use.roles), server_list(&use)) :
				 errdetail("%s.", server_list(&use) + 2),
				 errhint("Renew them under the active CA with pgtls_renew(serial), or revoke them; pass force => true to %s anyway. They are listed by SELECT serial, kind, role, not_after FROM pgtls_certificates WHERE issuer_fingerprint = '%s' AND revoked_at IS NULL AND not_after > now();",
						 action, row->fingerprint)));
	if (live > 0)
	{
		int			revoked = pgtls_registry_ca_revoke_all(row->fingerprint, "cessationOfOperation");

		/* a replacement (pgtls_init_ca, the imports) always said so in its documentation */
		ereport(strcmp(action, "replace") == 0 ? LOG : WARNING,
				(errhidestmt(true),
				 errmsg("%d live certificate%s of CA \"%s\" %s recorded as revoked (cessationOfOperation)",
						revoked, revoked == 1 ? "" : "s", row->subject, revoked == 1 ? "is" : "are"),
				 errdetail("The CA leaves the trust bundle, so the server refuses them from now on.")));
	}
	pgtls_ca_set_state(row->fingerprint, "retired", NULL);
	pgtls_ca_keyring_drop_at_commit(row->fingerprint);
}

/* Trusted CAs added only because one of our CAs chained to them, when none does any more. */
void
pgtls_ca_drop_unused_chain(void)
{
	List	   *cas = pgtls_trusted_ca_rows(pgtls_registry_cas(false));
	ListCell   *lc;

	foreach(lc, pgtls_registry_trusted(false))
	{
		PgtlsTrustedRow *t = lfirst(lc);
		bool		used = false;
		ListCell   *lc2;

		if (strcmp(t->origin, "chain") != 0)
			continue;
		foreach(lc2, cas)
		{
			PgtlsCARow *row = lfirst(lc2);

			used |= row->chain != NULL && strstr(row->chain, t->certificate) != NULL;
		}
		if (!used)
			(void) pgtls_registry_trust_delete(t->fingerprint);
	}
}

/* Write the trust files from the registry and keep the CRL lock to the end of the statement. */
static void
publish_held(X509 *extra_cert, EVP_PKEY *extra_key)
{
	PgtlsTrustFiles files;

	pgtls_trust_stage(extra_cert, extra_key, true, &files);
	pgtls_trust_commit(&files, true);
	if (files.missing != NIL)
		ereport(WARNING,
				(errmsg("no CRL for the trusted CA \"%s\"", (char *) linitial(files.missing)),
				 errdetail("The server checks CRLs for every CA of a chain, so it refuses every client certificate under a CA without one."),
				 errhint("See SELECT * FROM pgtls_hba_check(); (check ca.crl_missing).")));
}

/* The trust files, the server's settings for them, and a reload. */
void
pgtls_ca_publish_trust(void)
{
	publish_held(NULL, NULL);
	/* a changed setting takes effect only with the reload, like the files */
	if (pgtls_trust_settings_apply() != NIL || pgtls_server_uses_trust_files())
		pgtls_reload_server_after_files();
}

/*
 * Make cert the active CA, as pgtls_init_ca() and the imports do: it is
 * recorded (the caller inserted its row, holds the CA lock and refused a
 * transaction block), every other CA is retired with its live certificates
 * recorded revoked, and the CA files, the trust bundle and the CRLs are
 * written when the transaction commits: until then the old CA's files stay
 * in place, and an error leaves them so.  why names the call in messages.
 * keep_rotation: when the registry records cert as the active CA already
 * (the files of a restored registry's CA imported), the other CAs keep
 * their states, so a rotation under way goes on.
 */
void
pgtls_ca_make_active(X509 *cert, EVP_PKEY *key, const char *upper_pem, const char *why,
					 bool keep_rotation)
{
	char	   *fingerprint = pgtls_fingerprint_sha256(cert);
	PgtlsCAStates	s;
	ListCell   *lc;
	PgtlsCA		out;
	PgtlsStagedFile *key_file;
	PgtlsStagedFile *cert_file;
	PgtlsTrustFiles files;

	pgtls_files_defer_to_commit();
	pgtls_ca_read_states(&s);
	/* kept, so that a replacement rolled back by a crash leaves the old CA usable */
	if (pgtls_ca_try_load(&out) && strcmp(out.fingerprint, fingerprint) != 0)
		pgtls_ca_keep_outgoing(&out);
	if (keep_rotation && s.active != NULL && strcmp(s.active->fingerprint, fingerprint) == 0)
		ereport(LOG,
				(errhidestmt(true),
				 errmsg("pgtls_admin: the registry records CA \"%s\" as active already; the other CAs keep their states",
						s.active->subject)));
	else
		foreach(lc, s.rows)
		{
			PgtlsCARow *row = lfirst(lc);

			if (pgtls_ca_state_trusted(row->state) && strcmp(row->fingerprint, fingerprint) != 0)
				pgtls_ca_retire(row, true, why);
		}
	pgtls_ca_set_state(fingerprint, "active", upper_pem && upper_pem[0] ? upper_pem : NULL);
	pgtls_ca_drop_unused_chain();

	pgtls_ca_stage(key, cert, upper_pem, &key_file, &cert_file);
	/* a CRL from another CA would make the server refuse every client certificate */
	pgtls_trust_stage(cert, key, true, &files);
	pgtls_ca_switch_mark(fingerprint);
	pgtls_commit_pair(key_file, cert_file);
	pgtls_ca_hold(cert, key, upper_pem);
	/* the files are renamed at commit: no other writer in between */
	pgtls_trust_commit(&files, true);
}

/* ---------------------------------------------------------------------
 * The registry follows the CA files
 * --------------------------------------------------------------------- */

/* The files' key does not belong to their certificate but a kept copy does: put it back. */
static void
repair_key(PgtlsCA *files)
{
	PgtlsFileRead f;
	BIO		   *bio;
	bool		encrypted = false;
	EVP_PKEY   *key;

	if (pgtls_try_read_file(pgtls_resolve_path(pgtls_ca_key_file), true, &f))
	{
		bio = pgtls_mem_bio(f.data, (int) f.len);
		key = pgtls_own_pkey(PEM_read_bio_PrivateKey(bio, NULL, pgtls_no_passphrase, &encrypted));
		pgtls_ossl_clear();
		if (key == NULL || X509_check_private_key(files->cert, key) == 1)
		{
			pgtls_ossl_clear();
			return;
		}
		pgtls_ossl_clear();
	}
	else if (!f.opened && f.save_errno != ENOENT)
		return;
	key = pgtls_ca_keyring_key(files->fingerprint, files->cert);
	if (key == NULL)
		return;
	{
		PgtlsStagedFile *key_file;
		PgtlsStagedFile *cert_file;

		pgtls_ca_stage(key, files->cert, files->upper_pem, &key_file, &cert_file);
		pgtls_commit_pair(key_file, cert_file);
	}
	ereport(LOG,
			(errhidestmt(true),
			 errmsg("pgtls_admin: restored the key of the active CA from \"%s\"",
					pgtls_ca_keyring_path(files->fingerprint, "key"))));
}

/*
 * The files hold a CA the registry keeps trusted (previous or next) but not
 * the active one, and this node keeps the active CA's key beside them: a
 * standby promoted in the middle of a rotation, whose base backup was taken
 * after prepare (or after an activation since rolled back).  Make the
 * active CA the CA of the files, as the phase did on the old primary; the
 * outgoing CA's key is kept, so its CRL is still signed.  The switch is
 * written when the transaction commits.  Without the key, nothing changes
 * and pgtls_ca_require_active() says what to copy.
 */
static void
adopt_active(PgtlsCAStates *s)
{
	X509	   *cert = pgtls_ca_row_cert(s->active);
	EVP_PKEY   *key = pgtls_ca_keyring_key(s->active->fingerprint, cert);
	bool		deferring = pgtls_files_deferring();

	if (key == NULL)
		return;
	pgtls_files_defer_to_commit();
	pgtls_ca_switch_files(cert, key, s->active->chain);
	if (!deferring)
		pgtls_files_defer_stop();
	ereport(LOG,
			(errhidestmt(true),
			 errmsg("pgtls_admin: switching the CA files to the active CA \"%s\", whose key this server keeps; the CA they hold is kept beside them",
					s->active->subject)));
}

/*
 * Make the registry's states agree with the CA files (the caller holds the
 * CA lock).  The registry is the truth, with two exceptions: a switch of
 * the files that a crash (or an error) interrupted before its transaction
 * committed, which the marker proves, is completed; and CA files the
 * registry does not know while it records no active CA (a registry older
 * than the states) are recorded as active.  On a primary whose files hold a
 * CA still trusted beside the active one, the files follow the registry
 * when this node keeps the active CA's key (adopt_active).  Anything else --
 * a standby promoted with the files of a CA since replaced and without its
 * key, files changed by hand -- is left for pgtls_ca_require_active() to
 * refuse, with what to do.
 */
void
pgtls_ca_sync(void)
{
	struct stat st;
	PgtlsCA		files;
	PgtlsCAStates s;
	PgtlsCARow *mine;
	char	   *marked = pgtls_ca_switch_marked();
	const char *former = NULL;

	if (stat(pgtls_resolve_path(pgtls_ca_cert_file), &st) < 0)
		return;
	pgtls_ca_load_cert(&files);
	pgtls_ca_read_states(&s);
	mine = pgtls_ca_find_row(s.rows, files.fingerprint);
	if (s.active != NULL && mine == s.active)
	{
		/* a switch that never happened, or one that stopped between the key and the certificate */
		if (marked != NULL)
		{
			repair_key(&files);
			pgtls_ca_switch_unmark();
		}
		return;
	}
	if (marked == NULL && s.active != NULL && mine != NULL && pgtls_ca_state_trusted(mine->state) &&
		!RecoveryInProgress())
	{
		adopt_active(&s);
		return;
	}
	if (marked != NULL ? strcmp(marked, files.fingerprint) != 0 :
		(s.active != NULL || (mine != NULL && mine->state != NULL)))
		return;
	if (mine == NULL)
		(void) pgtls_registry_insert(files.cert, "ca", NULL, InvalidOid, NULL, files.fingerprint);
	if (s.active != NULL)
	{
		/* back to a previous CA is a rolled-back activation */
		former = mine != NULL && mine->state != NULL && strcmp(mine->state, "previous") == 0 ?
			"next" : "previous";
		pgtls_ca_set_state(s.active->fingerprint, former, NULL);
	}
	pgtls_ca_set_state(files.fingerprint, "active", files.upper_pem[0] ? files.upper_pem : NULL);
	pgtls_ca_switch_unmark();
	ereport(LOG,
			(errhidestmt(true),
			 errmsg("pgtls_admin: the CA of pgtls_admin.ca_cert_file, \"%s\", is now recorded as the active CA%s%s%s",
					pgtls_name_text(X509_get_subject_name(files.cert)),
					former ? "; \"" : "", former ? s.active->subject : "",
					former ? psprintf("\" is %s", former) : "")));
	publish_held(NULL, NULL);
	if (pgtls_server_uses_trust_files())
		pgtls_reload_server_after_files();
}

/*
 * Issue only from the active CA.  ca was loaded from the CA files; when the
 * registry does not record it as active, the registry is brought in line
 * first (pgtls_ca_sync) and ca loaded again.  What was found is kept per
 * backend, except in a transaction that changed the states itself.
 */
void
pgtls_ca_require_active(PgtlsCA *ca)
{
	PgtlsCAStates	s;
	PgtlsCARow *row;

	if (strcmp(confirmed_active, ca->fingerprint) == 0)
		return;
	pgtls_ca_read_states(&s);
	row = pgtls_ca_find_row(s.rows, ca->fingerprint);
	if (row == NULL || row != s.active)
	{
		pgtls_ca_lock(true);
		pgtls_ca_sync();
		pgtls_ca_load(ca);
		pgtls_ca_read_states(&s);
		row = pgtls_ca_find_row(s.rows, ca->fingerprint);
		if (row == NULL || row != s.active)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the CA of pgtls_admin.ca_cert_file is not the active CA"),
					 errdetail("The registry records CA \"%s\" as %s%s.",
							   pgtls_name_text(X509_get_subject_name(ca->cert)),
							   row && row->state ? row->state : "unknown",
							   s.active ? psprintf("; the active CA is \"%s\"", s.active->subject) : ""),
					 errhint("Put the active CA's certificate and key in pgtls_admin.ca_cert_file and ca_key_file (after a promotion: those of the old primary), or make the CA of those files the only active one with pgtls_import_ca_files(certificate_file, key_file, replace => true).")));
	}
	if (states_changed_xid != GetTopTransactionIdIfAny() || !TransactionIdIsValid(states_changed_xid))
		strlcpy(confirmed_active, ca->fingerprint, sizeof(confirmed_active));
}

/*
 * Record cert (with key, and upper_pem above it) as the next CA, keep its
 * key, and have the server trust it (the caller holds the CA lock and
 * checked that no CA is next or previous).
 */
void
pgtls_ca_add_next(X509 *cert, EVP_PKEY *key, const char *upper_pem)
{
	PgtlsStagedFile *key_file;
	PgtlsStagedFile *cert_file;

	(void) pgtls_registry_insert(cert, "ca", NULL, InvalidOid, NULL, pgtls_fingerprint_sha256(cert));
	pgtls_ca_set_state(pgtls_fingerprint_sha256(cert), "next", upper_pem && upper_pem[0] ? upper_pem : NULL);
	pgtls_ca_keyring_stage(key, cert, upper_pem, &key_file, &cert_file);
	pgtls_commit_pair(key_file, cert_file);
	pgtls_ca_publish_trust();
	ereport(NOTICE,
			(errmsg("CA \"%s\" is next: it is trusted beside the active one and issues nothing yet",
					pgtls_name_text(X509_get_subject_name(cert))),
			 errhint("Give every client the output of SELECT pgtls_ca_cert(); as its root certificates (sslrootcert) now, then run SELECT * FROM pgtls_ca_rotate('activate');")));
}

/* Refuse to start a rotation while one is under way. */
void
pgtls_ca_require_no_rotation(void)
{
	PgtlsCAStates	s;

	pgtls_ca_read_states(&s);
	if (s.next != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a rotation is prepared already: CA \"%s\" is next", s.next->subject),
				 errhint("Activate it with pgtls_ca_rotate('activate'), or drop it with pgtls_ca_rotate('rollback').")));
	if (s.previous != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the previous CA \"%s\" is still trusted", ((PgtlsCARow *) linitial(s.previous))->subject),
				 errhint("Finish the last rotation first with pgtls_ca_rotate('retire'), once its certificates are renewed.")));
}

/* Is there an active CA in the registry? */
bool
pgtls_ca_has_active(void)
{
	PgtlsCAStates	s;

	pgtls_ca_read_states(&s);
	return s.active != NULL;
}

