/*
 * trust.c
 *		What the server trusts for client certificates: the trust bundle
 *		(ssl_ca_file) and the CRLs (ssl_crl_file) the extension writes.
 *
 * Both files are functions of the registry's tables.  The bundle holds the
 * extension's CAs in state next, active and previous (with the
 * certificates above an intermediate CA) and the CAs of others in
 * pgtls_trusted_cas; the CRL file holds one CRL for each of them, since the
 * server checks CRLs for every CA of a chain (X509_V_FLAG_CRL_CHECK_ALL) and
 * refuses every certificate under a CA without one.  Our own CRLs list the
 * registry's revocations of the certificates each CA issued (and every
 * revoked serial whose issuer is unknown), and are signed here when this
 * node holds the CA's key: the active CA's files or a kept key
 * (ca_keyring.c).  A node without the key -- a standby whose base backup
 * predates the CA -- writes the newest CRL the primary signed and kept in
 * pgtls_crls.  So every node writes the same trust from replicated tables,
 * and no key passes through a table.
 *
 * The files are written under the CRL lock (revoke.c explains why it is
 * released as soon as they are in place), reading the tables with the
 * newest snapshot; functions that change what is trusted keep the lock to
 * the end of their (single-statement) transaction, so a background worker
 * never writes the trust of the moment before over theirs.
 */
#include "pgtls_ops.h"

#include <openssl/pem.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "libpq/libpq.h"
#include "postmaster/postmaster.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* Advisory lock key serializing CRL and bundle rewrites: "pgtlsCRL". */
#define CRL_LOCK_KEY1 0x7067746cU
#define CRL_LOCK_KEY2 0x7343524cU

/* One of the extension's CAs the server trusts, and what this node holds of it. */
typedef struct OurCA
{
	char	   *fingerprint;
	char	   *state;
	X509	   *cert;
	List	   *upper;			/* X509 *, the certificates above it */
	EVP_PKEY   *key;			/* NULL when this node does not hold it */
} OurCA;

static bool
file_exists(const char *setting)
{
	struct stat st;

	return stat(pgtls_resolve_path(setting), &st) == 0;
}

/*
 * The CA of the files pgtls_admin.ca_cert_file names, or NULL when there is
 * none; with_key: with its key, checked as for issuing (an ERROR when it is
 * there but unusable).
 */
static PgtlsCA *
file_ca(bool with_key)
{
	PgtlsCA    *ca;

	if (!file_exists(pgtls_ca_cert_file))
		return NULL;
	ca = palloc0(sizeof(PgtlsCA));
	if (with_key && file_exists(pgtls_ca_key_file))
		pgtls_ca_load(ca);
	else
		pgtls_ca_load_cert(ca);
	return ca;
}

static OurCA *
our_ca_from(const char *fingerprint, const char *state, X509 *cert, const char *upper_pem)
{
	OurCA	   *o = palloc0(sizeof(OurCA));

	o->fingerprint = pstrdup(fingerprint);
	o->state = state ? pstrdup(state) : NULL;
	o->cert = cert;
	o->upper = upper_pem ? pgtls_read_cert_list(upper_pem, (int) strlen(upper_pem)) : NIL;
	return o;
}

/*
 * The extension's CAs the server trusts, active first, from the registry
 * (latest: with the newest snapshot).  Without any recorded, the CA of the
 * files.  with_keys: find the key this node holds for each; extra_cert and
 * extra_key are a CA being written now, whose key is not on disk yet.
 */
static List *
our_cas(bool latest, bool with_keys, X509 *extra_cert, EVP_PKEY *extra_key)
{
	List	   *rows = pgtls_trusted_ca_rows(pgtls_registry_cas(latest));
	List	   *result = NIL;
	PgtlsCA    *files = NULL;
	char	   *extra_fp = extra_cert ? pgtls_fingerprint_sha256(extra_cert) : NULL;
	ListCell   *lc;

	if (rows == NIL)
	{
		PgtlsCA		ca;

		if (extra_cert == NULL && !file_exists(pgtls_ca_cert_file))
			return NIL;
		if (extra_cert != NULL)
		{
			OurCA	   *o = our_ca_from(extra_fp, "active", extra_cert, NULL);

			o->key = extra_key;
			return list_make1(o);
		}
		if (with_keys)
			pgtls_ca_load(&ca);
		else
			pgtls_ca_load_cert(&ca);
		{
			OurCA	   *o = our_ca_from(ca.fingerprint, "active", ca.cert, ca.upper_pem);

			o->key = ca.key;
			return list_make1(o);
		}
	}
	if (with_keys)
		files = file_ca(false);
	foreach(lc, rows)
	{
		PgtlsCARow *row = lfirst(lc);
		X509	   *cert = pgtls_parse_cert(row->certificate, (int) strlen(row->certificate),
											"a CA certificate of the registry", NULL);
		OurCA	   *o = our_ca_from(row->fingerprint, row->state, cert, row->chain);

		if (with_keys)
		{
			if (extra_fp != NULL && strcmp(extra_fp, row->fingerprint) == 0)
				o->key = extra_key;
			else if (files != NULL && strcmp(files->fingerprint, row->fingerprint) == 0)
			{
				PgtlsCA		ca;

				pgtls_ca_load(&ca);
				o->key = ca.key;
			}
			else
				o->key = pgtls_ca_keyring_key(row->fingerprint, cert);
		}
		result = lappend(result, o);
	}
	return result;
}

/*
 * What every CRL lists: the registry's revocations (newest snapshot), those
 * whose transaction has not ended, and certificates the journal holds that
 * their issuing transaction never recorded.
 */
static List *
crl_serials(void)
{
	return pgtls_journal_add_strays(pgtls_pending_merge(pgtls_registry_revoked()));
}

static bool
in_list(List *strings, const char *s)
{
	ListCell   *lc;

	foreach(lc, strings)
		if (strcmp(lfirst(lc), s) == 0)
			return true;
	return false;
}

/*
 * The revocations the CRL of the CA with this fingerprint lists: those of
 * certificates it issued, and every one whose issuer is not a CA the
 * registry knows (fail closed: serials are random, listing one in a CRL of
 * another CA harms nothing).
 */
static List *
revoked_by(List *revoked, const char *fingerprint, List *known)
{
	List	   *result = NIL;
	ListCell   *lc;

	foreach(lc, revoked)
	{
		PgtlsRevoked *r = lfirst(lc);

		if (r->issuer == NULL || strcmp(r->issuer, fingerprint) == 0 || !in_list(known, r->issuer))
			result = lappend(result, r);
	}
	return result;
}

/* A CRL as PEM, signed by the CA; its identity into *id (all zero if it cannot be made). */
static char *
crl_pem(X509 *ca_cert, EVP_PKEY *ca_key, List *revoked, uint8 *id)
{
	BIO		   *bio = pgtls_mem_bio(NULL, 0);
	StringInfo	der = pgtls_crl_der(ca_cert, ca_key, revoked);

	if (PEM_write_bio(bio, PEM_STRING_X509_CRL, "", (unsigned char *) der->data, der->len) <= 0)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the CRL");
	if (!pgtls_crl_der_id(der->data, der->len, id))
		memset(id, 0, PGTLS_CRL_ID_BYTES);
	return pgtls_bio_to_cstring(bio);
}

/* The identity of a CRL given as PEM (one the primary signed and kept); all zero if unreadable. */
static void
pem_crl_id(const char *pem, uint8 *id)
{
	X509_CRL   *crl = pgtls_own_crl(PEM_read_bio_X509_CRL(pgtls_mem_bio(pem, (int) strlen(pem)),
														  NULL, NULL, NULL));

	if (crl == NULL || !pgtls_crl_id(crl, id))
		memset(id, 0, PGTLS_CRL_ID_BYTES);
	pgtls_ossl_clear();
}

static char *
stored_crl(List *stored, const char *fingerprint)
{
	ListCell   *lc;

	foreach(lc, stored)
	{
		PgtlsStoredCrl *c = lfirst(lc);

		if (strcmp(c->fingerprint, fingerprint) == 0)
			return c->pem;
	}
	return NULL;
}

/* Append cert unless it is there already; returns whether it was appended. */
static bool
append_cert(StringInfo buf, List **seen, X509 *cert)
{
	char	   *fp = pgtls_fingerprint_sha256(cert);

	if (in_list(*seen, fp))
		return false;
	*seen = lappend(*seen, fp);
	appendStringInfoString(buf, text_to_cstring(pgtls_cert_pem(cert)));
	return true;
}

/* What the two files hold, built from the tables. */
typedef struct TrustContent
{
	StringInfoData crls;
	StringInfoData bundle;
	int			listed;			/* distinct serials our CRLs list */
	List	   *missing;		/* char *, subjects of trusted CAs without a CRL */
	int			ncrl_ids;		/* our CRLs in crls (only the first PGTLS_MAX_CRL_IDS kept) */
	PgtlsCrlIdentity crl_ids[PGTLS_MAX_CRL_IDS];
	int			nca_fps;		/* CA certificates in bundle (only the first PGTLS_MAX_BUNDLE_CAS kept) */
	uint8		ca_fps[PGTLS_MAX_BUNDLE_CAS][PGTLS_CA_FP_BYTES];
} TrustContent;

/* Add cert to the bundle, and its SHA-256 to those the login hook checks chains against. */
static void
bundle_add(TrustContent *out, List **seen, X509 *cert)
{
	unsigned int n = 0;

	if (!append_cert(&out->bundle, seen, cert))
		return;
	if (out->nca_fps < PGTLS_MAX_BUNDLE_CAS &&
		(X509_digest(cert, pgtls_md(PGTLS_SHA256), out->ca_fps[out->nca_fps], &n) != 1 ||
		 n != PGTLS_CA_FP_BYTES))
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not compute a certificate fingerprint");
	out->nca_fps++;
}

static void
build(X509 *extra_cert, EVP_PKEY *extra_key, bool store, TrustContent *out)
{
	List	   *cas = our_cas(true, true, extra_cert, extra_key);
	List	   *trusted = pgtls_registry_trusted(true);
	List	   *revoked = crl_serials();
	List	   *known = NIL;
	List	   *stored = NIL;
	List	   *seen = NIL;
	bool		need_stored = false;
	ListCell   *lc;

	/* nothing to trust at all: say there is no CA, as before there were several */
	if (cas == NIL && trusted == NIL)
	{
		PgtlsCA		ca;

		pgtls_ca_load_cert(&ca);
	}
	initStringInfo(&out->crls);
	initStringInfo(&out->bundle);
	out->listed = 0;
	out->missing = NIL;
	out->ncrl_ids = 0;
	out->nca_fps = 0;
	foreach(lc, pgtls_registry_cas(true))
		known = lappend(known, ((PgtlsCARow *) lfirst(lc))->fingerprint);
	foreach(lc, cas)
		need_stored |= ((OurCA *) lfirst(lc))->key == NULL;
	if (need_stored)
		stored = pgtls_registry_crls_stored();
	store = store && !RecoveryInProgress();

	foreach(lc, cas)
	{
		OurCA	   *o = lfirst(lc);
		char	   *crl = NULL;
		uint8		id[PGTLS_CRL_ID_BYTES];
		ListCell   *lc2;

		if (o->key != NULL)
		{
			List	   *mine = revoked_by(revoked, o->fingerprint, known);

			crl = crl_pem(o->cert, o->key, mine, id);
			out->listed = Max(out->listed, list_length(mine));
			if (store)
				pgtls_registry_crl_store(o->fingerprint, crl, GetCurrentTimestamp(), 0);
		}
		else if ((crl = stored_crl(stored, o->fingerprint)) != NULL)
			pem_crl_id(crl, id);
		if (crl != NULL)
		{
			appendStringInfoString(&out->crls, crl);
			if (out->ncrl_ids < PGTLS_MAX_CRL_IDS)
			{
				PgtlsCrlIdentity *ci = &out->crl_ids[out->ncrl_ids];

				ci->issuer_hash = X509_NAME_hash_ex(X509_get_subject_name(o->cert), NULL, NULL, NULL);
				memcpy(ci->id, id, PGTLS_CRL_ID_BYTES);
				pgtls_ossl_clear();
			}
			out->ncrl_ids++;
		}
		else
			out->missing = lappend(out->missing, pgtls_name_text(X509_get_subject_name(o->cert)));
		bundle_add(out, &seen, o->cert);
		foreach(lc2, o->upper)
			bundle_add(out, &seen, lfirst(lc2));
	}
	foreach(lc, trusted)
	{
		PgtlsTrustedRow *t = lfirst(lc);

		if (t->crl != NULL)
			appendStringInfoString(&out->crls, t->crl);
		else
			out->missing = lappend(out->missing, t->subject);
		bundle_add(out, &seen,
				   pgtls_parse_cert(t->certificate, (int) strlen(t->certificate),
									"a trusted CA certificate", NULL));
	}
}

/* Does the file at path hold exactly data? */
static bool
file_holds(const char *path, const char *data, size_t len)
{
	PgtlsFileRead f;

	return pgtls_try_read_file(path, false, &f) && f.len == len && memcmp(f.data, data, len) == 0;
}

/*
 * Take the CRL lock and stage both files from the tables.  extra_cert and
 * extra_key: a CA being written now (its key is not on disk yet), or NULL.
 * store: on the primary, keep the CRLs signed here for standbys.  The caller
 * commits them with pgtls_trust_commit() (an ERROR in between releases the
 * lock with the transaction and removes the staged files).
 */
void
pgtls_trust_stage(X509 *extra_cert, EVP_PKEY *extra_key, bool store, PgtlsTrustFiles *out)
{
	TrustContent c;
	char	   *bundle_path = pgtls_resolve_path(pgtls_ca_bundle_file);

	memset(out, 0, sizeof(*out));
	pgtls_lock(CRL_LOCK_KEY1, CRL_LOCK_KEY2, "the CRL");
	build(extra_cert, extra_key, store, &c);
	out->crl = pgtls_stage_file(pgtls_resolve_path(pgtls_crl_file), c.crls.data, c.crls.len, 0600);
	/*
	 * Unchanged, it is not written again: its identity keys the bundle
	 * caches.  Not while commits are deferred: a bundle staged earlier in
	 * the transaction is still to be renamed over it.
	 */
	if (pgtls_files_deferring() || !file_holds(bundle_path, c.bundle.data, c.bundle.len))
		out->bundle = pgtls_stage_file(bundle_path, c.bundle.data, c.bundle.len, 0600);
	out->listed = c.listed;
	out->missing = c.missing;
	out->ncrl_ids = c.ncrl_ids;
	memcpy(out->crl_ids, c.crl_ids, sizeof(c.crl_ids));
	out->nca_fps = c.nca_fps;
	memcpy(out->ca_fps, c.ca_fps, sizeof(c.ca_fps));
	out->digest = pgtls_registry_trust_digest(RecoveryInProgress(), true);
}

/*
 * Did this transaction put trust files in place (or queue them for its
 * PRE_COMMIT)?  They were made from what it had not committed.  The
 * highest subtransaction that wrote them, and whether one that did rolled
 * back.
 */
static bool trust_written = false;
static SubTransactionId trust_written_subid = InvalidSubTransactionId;
static bool trust_rewrite = false;
static bool trust_callback_registered = false;

/*
 * Trust files made from what never committed say what never was: have the
 * worker write them again from the tables, as pending.c does for a
 * revocation rolled back.  That is a transaction that wrote them and then
 * aborted (a phase of a rotation or a pgtls_trust_add() whose statement
 * failed afterwards, or one whose commit failed after its deferred files
 * were renamed at PRE_COMMIT), one that wrote them and was prepared (it
 * may yet be rolled back; if it commits, the worker sees the change
 * anyway), and one that committed after a subtransaction that wrote them
 * rolled back.  A rewrite too many costs one pass of the worker.
 */
static void
trust_xact_callback(XactEvent event, void *arg)
{
	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
		return;
	if (trust_written && (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
						  event == XACT_EVENT_PREPARE || trust_rewrite))
		pgtls_live_request_crl_rewrite();
	trust_written = false;
	trust_written_subid = InvalidSubTransactionId;
	trust_rewrite = false;
}

static void
trust_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					   SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB && trust_written && trust_written_subid >= mySubid)
		trust_rewrite = true;
}

/*
 * Once both files are in place: say in shared memory which CRLs of ours the
 * CRL file holds, and which CA certificates the bundle holds (so that a
 * login whose backend inherited older ones checks the file, or is refused
 * for a CA that left the bundle, enforce.c).  The bundle's set is published
 * even when its file was unchanged: it says what the file holds, and the
 * first write after a start has to say it.
 */
static void
publish_written(void *arg)
{
	PgtlsTrustFiles *files = arg;

	pgtls_live_publish_crls(files->crl_ids, files->ncrl_ids);
	pgtls_live_publish_bundle((const uint8 (*)[PGTLS_CA_FP_BYTES]) files->ca_fps, files->nca_fps);
}

/*
 * Put the staged files in place, the CRLs first (a CRL for a CA not trusted
 * yet harms nothing), then publish what they hold (publish_written; at
 * PRE_COMMIT, after the renames, when commits are deferred), and release
 * the CRL lock unless keep_lock.
 */
void
pgtls_trust_commit(PgtlsTrustFiles *files, bool keep_lock)
{
	/* renamed at PRE_COMMIT: no writer in between */
	if (pgtls_files_deferring())
		keep_lock = true;
	if (IsTransactionState())
	{
		SubTransactionId subid = GetCurrentSubTransactionId();

		if (!trust_callback_registered)
		{
			RegisterXactCallback(trust_xact_callback, NULL);
			RegisterSubXactCallback(trust_subxact_callback, NULL);
			trust_callback_registered = true;
		}
		trust_written = true;
		if (subid > trust_written_subid)
			trust_written_subid = subid;
	}
	pgtls_commit_file(files->crl);
	if (files->bundle != NULL)
		pgtls_commit_file(files->bundle);
	if (pgtls_files_deferring())
	{
		/* queued behind the renames: a copy that lives until PRE_COMMIT */
		PgtlsTrustFiles *copy = MemoryContextAlloc(TopTransactionContext, sizeof(*files));

		memcpy(copy, files, sizeof(*files));
		pgtls_files_then(publish_written, copy);
	}
	else
		publish_written(files);
	if (!keep_lock)
		pgtls_unlock(CRL_LOCK_KEY1, CRL_LOCK_KEY2);
}

static bool
setting_names(const char *setting, const char *ours)
{
	return setting != NULL && setting[0] != '\0' &&
		strcmp(pgtls_resolve_path(setting), pgtls_resolve_path(ours)) == 0;
}

/* Does the running server read its CAs from the trust bundle we write (ssl_ca_file)? */
bool
pgtls_server_reads_bundle(void)
{
	return setting_names(GetConfigOption("ssl_ca_file", true, false), pgtls_ca_bundle_file);
}

/* Does the running server read a file we write (ssl_crl_file or ssl_ca_file)? */
bool
pgtls_server_uses_trust_files(void)
{
	return setting_names(GetConfigOption("ssl_crl_file", true, false), pgtls_crl_file) ||
		setting_names(GetConfigOption("ssl_ca_file", true, false), pgtls_ca_bundle_file);
}

/*
 * Write both files from the tables and have the server load them if it
 * uses them (else, with notice, say so).  store: keep the CRLs signed here
 * (primary only).  Returns the number of serials the CRLs list; *digest
 * (unless NULL): the trust digest the files were written from.
 */
int
pgtls_trust_publish(bool notice, bool store, char **digest)
{
	PgtlsTrustFiles files;

	pgtls_trust_stage(NULL, NULL, store, &files);
	pgtls_trust_commit(&files, false);
	if (files.missing != NIL)
		ereport(notice ? WARNING : LOG,
				(errhidestmt(true),
				 errmsg("pgtls_admin: no CRL for the trusted CA \"%s\"", (char *) linitial(files.missing)),
				 errdetail("The server checks CRLs for every CA of a chain, so it refuses every client certificate under a CA without one."),
				 errhint("See SELECT * FROM pgtls_hba_check(); (check ca.crl_missing).")));
	if (pgtls_server_uses_trust_files())
		pgtls_reload_server_after_files();
	else if (notice)
		ereport(NOTICE,
				(errmsg("the server does not check the CRL pgtls_admin writes"),
				 errdetail("ssl_crl_file is not \"%s\".", pgtls_crl_file),
				 errhint("Run pgtls_enable_ssl(), or set ssl_crl_file = '%s' and reload.", pgtls_crl_file)));
	if (digest != NULL)
		*digest = files.digest;
	return files.listed;
}

/* What ssl_crl_file should hold now, built in memory (a standby's pgtls_crl()). */
text *
pgtls_trust_crl_text(void)
{
	TrustContent c;

	build(NULL, NULL, false, &c);
	return cstring_to_text_with_len(c.crls.data, c.crls.len);
}

/* Has anything the trust files are made of changed since *digest?  Updates it. */
bool
pgtls_trust_changed(char **digest)
{
	char	   *now = pgtls_registry_trust_digest(RecoveryInProgress(), false);
	bool		changed = *digest == NULL || now == NULL || strcmp(*digest, now) != 0;

	*digest = now;
	return changed;
}

/* The identities of the extension's CAs the server trusts, for the login hook; returns how many. */
int
pgtls_trust_identities(PgtlsCAIdentity *ids, int max)
{
	List	   *cas;
	ListCell   *lc;
	int			n = 0;

	if (pgtls_trusted_ca_rows(pgtls_registry_cas(false)) == NIL && !file_exists(pgtls_ca_cert_file))
		return 0;
	cas = our_cas(false, false, NULL, NULL);
	foreach(lc, cas)
	{
		if (n >= max)
			break;
		pgtls_ca_identity_of_ca(((OurCA *) lfirst(lc))->cert, &ids[n++]);
	}
	return n;
}

/* ---------------------------------------------------------------------
 * What clients must trust: pgtls_ca_cert() and issued ca_certificate
 * --------------------------------------------------------------------- */

/* The last bundle made, and what it was made from (malloc'd). */
static char *cached_bundle;
static char cached_bundle_ca[96];
static PgtlsFileIdentity cached_bundle_file;

static char *
client_bundle(void)
{
	PgtlsCA		file;
	List	   *rows;
	StringInfoData buf;
	List	   *seen = NIL;
	bool		file_listed = false;
	bool		file_retired = false;
	ListCell   *lc;

	pgtls_ca_load_cert(&file);	/* no CA files: 58P01, with the hint */
	rows = pgtls_registry_cas(false);
	foreach(lc, rows)
	{
		PgtlsCARow *row = lfirst(lc);

		if (strcmp(row->fingerprint, file.fingerprint) == 0)
		{
			file_listed = pgtls_ca_state_trusted(row->state);
			file_retired = !file_listed && row->state != NULL;
		}
	}
	initStringInfo(&buf);
	/* a CA in the files the registry does not know issues all the same: clients need it first */
	if (!file_listed && !file_retired)
	{
		List	   *upper = pgtls_read_cert_list(file.upper_pem, (int) strlen(file.upper_pem));

		append_cert(&buf, &seen, file.cert);
		foreach(lc, upper)
			append_cert(&buf, &seen, lfirst(lc));
	}
	foreach(lc, pgtls_trusted_ca_rows(rows))
	{
		PgtlsCARow *row = lfirst(lc);
		List	   *certs = pgtls_read_cert_list(row->certificate, (int) strlen(row->certificate));
		ListCell   *lc2;

		if (row->chain != NULL)
			certs = list_concat(certs, pgtls_read_cert_list(row->chain, (int) strlen(row->chain)));
		foreach(lc2, certs)
			append_cert(&buf, &seen, lfirst(lc2));
	}
	return buf.data;
}

/*
 * The PEM bundle clients must trust (their sslrootcert): every CA of the
 * extension in state next, active or previous, and the roots above an
 * intermediate one; the CA of pgtls_admin.ca_cert_file comes first.  Kept
 * per backend while the trust bundle file and the CA file stay the same:
 * every change of the set rewrites the bundle file.
 */
text *
pgtls_ca_bundle_text(void)
{
	PgtlsCA		file;
	struct stat st;
	char	   *bundle_path = pgtls_resolve_path(pgtls_ca_bundle_file);
	bool		have_file = stat(bundle_path, &st) == 0;
	char	   *made;

	pgtls_ca_load_cert(&file);
	if (have_file && cached_bundle != NULL && strcmp(cached_bundle_ca, file.fingerprint) == 0 &&
		pgtls_file_identity_same(&cached_bundle_file, &st))
		return cstring_to_text(cached_bundle);
	made = client_bundle();
	if (have_file)
	{
		char	   *copy = strdup(made);

		if (copy != NULL)
		{
			free(cached_bundle);
			cached_bundle = copy;
			strlcpy(cached_bundle_ca, file.fingerprint, sizeof(cached_bundle_ca));
			pgtls_file_identity_set(&cached_bundle_file, &st);
		}
	}
	return cstring_to_text(made);
}

/* ---------------------------------------------------------------------
 * The server's settings: ssl_ca_file and ssl_crl_file name our files
 * --------------------------------------------------------------------- */

/*
 * A change of what is trusted reaches logins only if the server reads our
 * files.  With ssl on, ssl_ca_file must be the bundle, the CA file (as
 * pgtls_enable_ssl() set it before there were several CAs) or unset, and
 * ssl_crl_file ours or unset; anything else is a file the administrator
 * keeps, which the change would bypass: refuse before changing anything.
 */
void
pgtls_trust_settings_check(const char *action)
{
	const char *ca_file = GetConfigOption("ssl_ca_file", true, false);
	const char *crl_file = GetConfigOption("ssl_crl_file", true, false);

	if (!EnableSSL)
		return;
	if (ca_file != NULL && ca_file[0] != '\0' && !setting_names(ca_file, pgtls_ca_bundle_file) &&
		!setting_names(ca_file, pgtls_ca_cert_file))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s while ssl_ca_file is \"%s\"", action, ca_file),
				 errdetail("The server reads the CAs it trusts from that file, which pgtls_admin does not write, so the change would not reach logins."),
				 errhint("Add the CAs that file holds with pgtls_trust_add(certificate, crl), then set ssl_ca_file = '%s' and ssl_crl_file = '%s' (pgtls_enable_ssl() does) and reload.",
						 pgtls_ca_bundle_file, pgtls_crl_file)));
	if (crl_file != NULL && crl_file[0] != '\0' && !setting_names(crl_file, pgtls_crl_file))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot %s while ssl_crl_file is \"%s\"", action, crl_file),
				 errdetail("The server checks CRLs for every CA of a chain and reads them from that file, which pgtls_admin does not write: certificates of a CA it lacks a CRL for are refused."),
				 errhint("Add the CRLs that file holds with pgtls_trust_add(certificate, crl), then set ssl_crl_file = '%s' and reload.",
						 pgtls_crl_file)));
}

/*
 * With ssl on, point ssl_ca_file at the bundle where it named the CA file
 * alone, in postgresql.auto.conf.  Returns the settings changed; the caller
 * reloads.
 */
List *
pgtls_trust_settings_apply(void)
{
	const char *names[1] = {"ssl_ca_file"};
	const char *values[1] = {pgtls_ca_bundle_file};
	const char *ca_file = GetConfigOption("ssl_ca_file", true, false);

	if (!EnableSSL || !setting_names(ca_file, pgtls_ca_cert_file) ||
		setting_names(ca_file, pgtls_ca_bundle_file))
		return NIL;
	return pgtls_write_auto_conf(names, values, 1);
}
