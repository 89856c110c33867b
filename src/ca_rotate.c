/*
 * ca_rotate.c
 *		The phases of a CA rotation in which no login fails.
 *
 *   prepare   a new CA in state next, trusted beside the active one, so
 *             clients can add it to their roots before anything uses it;
 *   activate  next becomes active: it issues, and the server certificate
 *             is re-issued under it and installed.  The active CA becomes
 *             previous, still trusted, so its client certificates log in;
 *   retire    previous becomes retired and leaves the trust bundle and the
 *             CRL file; refused while it has live certificates unless
 *             forced, which records them revoked (they are refused at login);
 *   rollback  undoes the last of these while nothing was retired.
 *
 * Atomicity.  A phase refuses a transaction block and writes nothing
 * before its transaction commits (pgtls_files_defer_to_commit): the kept
 * keys, the CA files, the trust bundle, the CRLs, the server certificate
 * and key and postgresql.auto.conf are staged, and renamed at PRE_COMMIT in
 * the order they were written, followed by the reload.  Until then the
 * phase holds the CA it switches to and the keys it keeps in memory
 * (pgtls_ca_hold, ca_keyring.c), so it signs the server certificate and
 * the CRLs with them; an error anywhere in the statement (a DO block that
 * raises after the phase, several phases in one) leaves every file as it
 * was, and the registry too.
 *
 * Crash safety.  The renames of a switch of the active CA start with the
 * ca-switch marker, then the outgoing CA's kept key, then the CA files;
 * a crash after them and before the commit record is completed by
 * pgtls_ca_sync() (ca_states.c) at the next phase, issuance or trust
 * change, and one before them changes nothing.  A statement that failed
 * never renamed the marker, so it is never completed.  The trust files
 * always follow the registry (the next phase, pgtls_refresh_crl() or the
 * background worker within a second).
 */
#include "pgtls_ops.h"

#include "libpq/libpq.h"
#include "postmaster/postmaster.h"
#include "utils/builtins.h"
#include "utils/inet.h"
#include "utils/timestamp.h"

/* The previous CA that became previous last: the one an activation left. */
static PgtlsCARow *
latest_previous(PgtlsCAStates *s)
{
	PgtlsCARow *latest = NULL;
	ListCell   *lc;

	foreach(lc, s->previous)
	{
		PgtlsCARow *row = lfirst(lc);

		if (latest == NULL || row->state_changed_at >= latest->state_changed_at)
			latest = row;
	}
	return latest;
}

/* The kept key of a CA in state next or previous; an error when this node lacks it. */
static EVP_PKEY *
kept_key(PgtlsCARow *row, X509 *cert, const char *action)
{
	EVP_PKEY   *key = pgtls_ca_keyring_key(row->fingerprint, cert);

	if (key == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s: the key of CA \"%s\" is not on this server", action, row->subject),
				 errdetail("It is kept as \"%s\".", pgtls_ca_keyring_path(row->fingerprint, "key")),
				 errhint("Restore that file (mode 0600) from a backup of this server.")));
	if (row->not_after <= GetCurrentTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s: CA \"%s\" expired on %s", action, row->subject,
						timestamptz_to_str(row->not_after))));
	return key;
}

/* ---------------------------------------------------------------------
 * The phases
 * --------------------------------------------------------------------- */

static void
free_name(void *p)
{
	X509_NAME_free(p);
}

/*
 * The subject of the next CA: the active one's, its CN with a generation
 * ("... G2", "... G3"), so no two trusted CAs share a name.
 */
static char *
next_subject(PgtlsCARow *active, List *rows)
{
	X509	   *cert = pgtls_ca_row_cert(active);
	X509_NAME  *name = X509_get_subject_name(cert);
	int			idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	char	   *cn = idx >= 0 ? pgtls_name_cn(name, NULL) : pstrdup("pgtls_admin CA");
	char	   *base = pstrdup(cn);
	int			gen = 2;
	char	   *space = strrchr(base, ' ');

	if (space != NULL && space[1] == 'G' && space[2] != '\0' &&
		strspn(space + 2, "0123456789") == strlen(space + 2))
	{
		gen = atoi(space + 2) + 1;
		*space = '\0';
	}
	for (;; gen++)
	{
		X509_NAME  *candidate = pgtls_own(X509_NAME_dup(name), free_name);
		char	   *value = psprintf("%s G%d", base, gen);
		char	   *text;
		bool		taken = false;
		ListCell   *lc;

		if (candidate == NULL)
			pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not copy a name");
		if (idx >= 0)
			X509_NAME_ENTRY_free(X509_NAME_delete_entry(candidate, idx));
		if (X509_NAME_add_entry_by_NID(candidate, NID_commonName, MBSTRING_UTF8,
									   (unsigned char *) value, -1, idx, 0) != 1)
			pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not build the next CA's name");
		text = pgtls_name_text(candidate);
		foreach(lc, rows)
			taken |= strcmp(((PgtlsCARow *) lfirst(lc))->subject, text) == 0;
		if (!taken)
			return text;
	}
}

static bool
is_intermediate(PgtlsCARow *row)
{
	return row->chain != NULL || (X509_get_extension_flags(pgtls_ca_row_cert(row)) & EXFLAG_SS) == 0;
}

static void
prepare(PgtlsCAStates *s, const char *subject, int days, const PgtlsKeyType *key_type)
{
	PgtlsCA		ca;
	PgtlsKeyType type;
	EVP_PKEY   *key;
	X509	   *cert;
	ListCell   *lc;

	pgtls_ca_require_no_rotation();
	if (s->active == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("there is no active CA to rotate"),
				 errhint("Create one with SELECT pgtls_init_ca();")));
	if (is_intermediate(s->active))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the active CA \"%s\" is an intermediate CA under an offline root", s->active->subject),
				 errdetail("Only its root can sign the next one."),
				 errhint("Make the request with pgtls_ca_request(subject), have the root sign it, and adopt it with pgtls_ca_set_certificate(chain): it becomes the next CA.")));
	pgtls_trust_settings_check("prepare a CA rotation");
	pgtls_ca_load(&ca);

	if (subject == NULL)
		subject = next_subject(s->active, s->rows);
	if (days <= 0)
		days = (int) Max(1, (s->active->not_after - s->active->not_before + USECS_PER_DAY / 2) / USECS_PER_DAY);
	if (days > 36500)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("days must be between 1 and 36500")));
	if (key_type != NULL)
		type = *key_type;
	else
	{
		int			bits;

		if (!pgtls_key_type_lookup(pgtls_key_type_of(X509_get0_pubkey(ca.cert), &bits), &type))
			type = (PgtlsKeyType) pgtls_default_key_type;
	}
	key = pgtls_generate_key(type);
	cert = pgtls_build_ca_cert(subject, days, key);
	foreach(lc, s->rows)
		if (pgtls_ca_state_trusted(((PgtlsCARow *) lfirst(lc))->state) &&
			X509_NAME_cmp(X509_get_subject_name(cert), X509_get_subject_name(pgtls_ca_row_cert(lfirst(lc)))) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("subject \"%s\" is the subject of a trusted CA", subject),
					 errdetail("Clients and the server find CAs and their CRLs by name; two trusted CAs of one name make them guess."),
					 errhint("Choose another subject, or leave it out for the active CA's with a generation number.")));

	pgtls_ca_add_next(cert, key, NULL);
}

/* The certificate the server presents (or will, when this transaction installed one), or NULL. */
static X509 *
served_certificate(void)
{
	PgtlsFileRead f;
	List	   *certs;

	if (pgtls_install_pending_cert() != NULL)
		return pgtls_install_pending_cert();
	if (!EnableSSL || ssl_cert_file == NULL || ssl_cert_file[0] == '\0' ||
		!pgtls_try_read_file(pgtls_resolve_path(ssl_cert_file), false, &f))
		return NULL;
	certs = pgtls_read_cert_list(f.data, (int) f.len);
	return certs ? linitial(certs) : NULL;
}

/* A server certificate with the names and key type of leaf, which the registry does not record. */
static void
issue_like(X509 *leaf, PgtlsLifetime lifetime, PgtlsIssued *issued)
{
	List	   *dns = NIL;
	List	   *ips = NIL;
	PgtlsCertInfo info;
	ListCell   *lc;
	PgtlsKeyType type;
	int			bits;

	pgtls_describe_cert_brief(leaf, &info);
	foreach(lc, info.san)
	{
		char	   *entry = lfirst(lc);

		if (strncmp(entry, "DNS:", 4) == 0)
			dns = lappend(dns, entry + 4);
		else if (strncmp(entry, "IP:", 3) == 0)
			ips = lappend(ips, DatumGetInetPP(DirectFunctionCall1(inet_in, CStringGetDatum(entry + 3))));
	}
	if (!pgtls_key_type_lookup(pgtls_key_type_of(X509_get0_pubkey(leaf), &bits), &type))
		type = (PgtlsKeyType) pgtls_default_key_type;
	pgtls_issue_server_cert(dns, ips, lifetime, type, issued);
}

/*
 * After the active CA changed from outgoing: when the server presents a
 * certificate the outgoing CA issued, issue one with the same names under
 * the new active CA (a renewal, when the registry records it), record the
 * replaced one revoked (superseded: it no longer counts as a live
 * certificate of the outgoing CA), and install the new one; else only write
 * the trust files.
 */
static void
follow_server_certificate(X509 *outgoing)
{
	X509	   *leaf = served_certificate();
	PgtlsLifetime lifetime = pgtls_lifetime_days(pgtls_validity_days(0, true));
	PgtlsRegistryRow row;
	PgtlsIssued issued;
	char	   *serial;

	if (leaf == NULL || X509_check_issued(outgoing, leaf) != X509_V_OK)
	{
		pgtls_ossl_clear();
		if (leaf != NULL)
			ereport(NOTICE,
					(errmsg("the server certificate was not issued by the outgoing CA; it stays installed")));
		pgtls_ca_publish_trust();
		return;
	}
	serial = pgtls_serial_hex(X509_get0_serialNumber(leaf));
	if (pgtls_registry_lookup(serial, &row) && strcmp(row.kind, "server") == 0)
	{
		pgtls_renew_server(serial, &row, lifetime, &issued);
		if (!row.revoked && pgtls_registry_revoke(serial, "superseded", "none"))
			pgtls_pending_add(serial, "superseded");
	}
	else
		issue_like(leaf, lifetime, &issued);
	/* which also makes the trust bundle ssl_ca_file */
	(void) pgtls_install_server(issued.cert, NULL, issued.key, &issued.ca);
}

/* Move the active state from s->active to incoming (next for activate, previous for rollback). */
static void
switch_active(PgtlsCAStates *s, PgtlsCARow *incoming, const char *outgoing_state, const char *action)
{
	X509	   *cert = pgtls_ca_row_cert(incoming);
	EVP_PKEY   *key = kept_key(incoming, cert, action);
	PgtlsCA		out;

	pgtls_trust_settings_check(action);
	pgtls_ca_load(&out);
	pgtls_ca_keep_outgoing(&out);
	pgtls_ca_set_state(s->active->fingerprint, outgoing_state, NULL);
	pgtls_ca_set_state(incoming->fingerprint, "active", NULL);
	pgtls_ca_switch_files(cert, key, incoming->chain);
	follow_server_certificate(out.cert);
}

static void
activate(PgtlsCAStates *s)
{
	if (s->next == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no CA is in state next"),
				 errhint("Start a rotation with SELECT * FROM pgtls_ca_rotate('prepare');")));
	if (s->previous != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the previous CA \"%s\" is still trusted", ((PgtlsCARow *) linitial(s->previous))->subject),
				 errhint("Retire it first with pgtls_ca_rotate('retire').")));
	switch_active(s, s->next, "previous", "activate the next CA");
	ereport(NOTICE,
			(errmsg("CA \"%s\" is active and issues; \"%s\" is previous, and its certificates keep logging in",
					s->next->subject, s->active->subject),
			 errhint("Renew client certificates under the new CA with pgtls_renew(serial); when SELECT * FROM pgtls_cas; shows no live certificate of the previous CA, run SELECT * FROM pgtls_ca_rotate('retire');")));
}

static void
retire_previous(PgtlsCAStates *s, bool force)
{
	ListCell   *lc;

	if (s->previous == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no CA is in state previous"),
				 s->next ? errhint("The rotation to \"%s\" is prepared but not activated: run pgtls_ca_rotate('activate'), or pgtls_ca_rotate('rollback') to drop it.", s->next->subject) :
				 errhint("Start a rotation with SELECT * FROM pgtls_ca_rotate('prepare');")));
	pgtls_trust_settings_check("retire a CA");
	foreach(lc, s->previous)
		pgtls_ca_retire(lfirst(lc), force, "retire");
	pgtls_ca_drop_unused_chain();
	pgtls_ca_publish_trust();
	ereport(NOTICE,
			(errmsg("CA \"%s\" is retired: the server no longer trusts it", ((PgtlsCARow *) linitial(s->previous))->subject),
			 errhint("Clients may drop it from their root certificates: SELECT pgtls_ca_cert(); lists what they need.")));
}

static void
rollback(PgtlsCAStates *s, bool force)
{
	PgtlsCARow *previous = latest_previous(s);

	if (previous != NULL)
	{
		switch_active(s, previous, "next", "roll back the activation");
		ereport(NOTICE,
				(errmsg("the activation is rolled back: CA \"%s\" is active again, \"%s\" is next",
						previous->subject, s->active->subject),
				 errhint("Certificates \"%s\" issued meanwhile keep logging in while it is next; pgtls_ca_rotate('rollback') again drops it.",
						 s->active->subject)));
		return;
	}
	if (s->next != NULL)
	{
		pgtls_trust_settings_check("roll back the preparation");
		pgtls_ca_retire(s->next, force, "roll back");
		pgtls_ca_publish_trust();
		ereport(NOTICE,
				(errmsg("the preparation is rolled back: CA \"%s\" is retired and no longer trusted", s->next->subject)));
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("there is nothing to roll back"),
			 errdetail("No CA is in state next or previous: the last rotation is finished, and a retired CA cannot come back.")));
}

/*
 * Run one phase of a rotation (the caller checked the caller's rights and
 * the transaction).  subject, days (0: unset) and key_type (NULL: unset)
 * are for prepare.  Returns the CA rows after the phase: those trusted and
 * those it retired.
 */
List *
pgtls_ca_rotate_phase(const char *phase, bool force, const char *subject, int days,
					  const PgtlsKeyType *key_type)
{
	PgtlsCAStates	s;
	List	   *before;
	List	   *result = NIL;
	ListCell   *lc;

	if (strcmp(phase, "prepare") != 0 && (subject != NULL || days > 0 || key_type != NULL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("subject, days and key_type are for the prepare phase only")));
	if (strcmp(phase, "prepare") != 0 && strcmp(phase, "activate") != 0 &&
		strcmp(phase, "retire") != 0 && strcmp(phase, "rollback") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown rotation phase \"%s\"", phase),
				 errhint("Use prepare, activate, retire or rollback, in that order (rollback undoes the last one).")));

	pgtls_ca_lock(true);
	/* everything the phase writes is renamed into place when it commits (the caller refused a transaction block) */
	pgtls_files_defer_to_commit();
	pgtls_ca_sync();
	pgtls_ca_read_states(&s);
	before = pgtls_trusted_ca_rows(s.rows);
	if (strcmp(phase, "prepare") == 0)
		prepare(&s, subject, days, key_type);
	else if (strcmp(phase, "activate") == 0)
		activate(&s);
	else if (strcmp(phase, "retire") == 0)
		retire_previous(&s, force);
	else
		rollback(&s, force);

	pgtls_ca_read_states(&s);
	foreach(lc, s.rows)
	{
		PgtlsCARow *row = lfirst(lc);
		bool		was_trusted = false;
		ListCell   *lc2;

		foreach(lc2, before)
			was_trusted |= strcmp(((PgtlsCARow *) lfirst(lc2))->fingerprint, row->fingerprint) == 0;
		if (pgtls_ca_state_trusted(row->state) || was_trusted)
			result = lappend(result, row);
	}
	/* the trusted ones in their order, then those this phase retired */
	return list_concat(pgtls_trusted_ca_rows(result),
					   list_difference_ptr(result, pgtls_trusted_ca_rows(result)));
}
