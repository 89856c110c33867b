/*
 * ca_keyring.c
 *		The keys of the extension's CAs other than the active one.
 *
 * The active CA lives in pgtls_admin.ca_cert_file and ca_key_file.  A CA in
 * state next or previous (and the active one while a rotation replaces it)
 * keeps its key and certificate beside ca_key_file, as ca-<first 16 hex
 * digits of its SHA-256 fingerprint>.key and .crt, written with the same
 * care (0600, staged and renamed): its key signs its CRL for as long as the
 * server trusts it.  Keys live where the administrator put the CA key, never
 * elsewhere, and never in a table.  A retired CA's files are removed when
 * the retiring transaction commits (and by the background worker after a
 * crash); a pending request for an intermediate CA keeps its key in
 * ca-request.key until the signed certificate is adopted.  While the CA
 * files are switched to another CA, ca-switch names it: left by a crash,
 * it proves the switch happened here (ca_states.c).
 *
 * A transaction that writes its files at commit (a phase of a rotation)
 * keeps the keys it stages in memory to its end, so that it signs with
 * them before they are on disk.
 */
#include "pgtls_stores.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* Files to remove when this transaction commits (DropAtCommit *, TopMemoryContext). */
typedef struct DropAtCommit
{
	char	   *path;
	SubTransactionId subid;		/* the subtransaction that asked */
} DropAtCommit;

static List *drop_at_commit = NIL;
static bool callback_registered = false;

/* Keys this transaction staged (HeldKey *, in TopTransactionContext) while held_lxid is ours. */
typedef struct HeldKey
{
	char	   *fingerprint;
	EVP_PKEY   *key;
} HeldKey;

static List *held_keys = NIL;
static LocalTransactionId held_lxid = InvalidLocalTransactionId;

static HeldKey *
held_key(const char *fingerprint)
{
	ListCell   *lc;

	if (held_lxid == InvalidLocalTransactionId || MyProc == NULL || held_lxid != MyProc->lxid)
		return NULL;
	foreach(lc, held_keys)
		if (strcmp(((HeldKey *) lfirst(lc))->fingerprint, fingerprint) == 0)
			return lfirst(lc);
	return NULL;
}

static void
hold_key(const char *fingerprint, EVP_PKEY *key)
{
	MemoryContext old;
	HeldKey    *h;

	if (held_lxid == InvalidLocalTransactionId || held_lxid != MyProc->lxid)
		held_keys = NIL;		/* the list went with its transaction's memory */
	held_lxid = MyProc->lxid;
	if (held_key(fingerprint) != NULL)
		return;
	old = MemoryContextSwitchTo(TopTransactionContext);
	if (EVP_PKEY_up_ref(key) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not keep a CA key in memory");
	h = palloc(sizeof(HeldKey));
	h->fingerprint = pstrdup(fingerprint);
	h->key = pgtls_own_pkey(key);
	held_keys = lappend(held_keys, h);
	MemoryContextSwitchTo(old);
}

/* The directory of pgtls_admin.ca_key_file. */
static char *
keyring_dir(void)
{
	char	   *dir = pgtls_resolve_path(pgtls_ca_key_file);

	get_parent_directory(dir);
	return dir[0] ? dir : pstrdup(".");
}

/* ca-<16 hex digits>.<ext> beside ca_key_file for the CA with this fingerprint. */
char *
pgtls_ca_keyring_path(const char *fingerprint, const char *ext)
{
	char		hex[17];
	int			n = 0;

	for (const char *p = fingerprint; *p && n < 16; p++)
		if (isxdigit((unsigned char) *p))
			hex[n++] = (char) pg_ascii_tolower((unsigned char) *p);
	hex[n] = '\0';
	return psprintf("%s/ca-%s.%s", keyring_dir(), hex, ext);
}

/* ca-request.<ext> beside ca_key_file: the pending request for an intermediate CA. */
char *
pgtls_ca_request_path(const char *ext)
{
	return psprintf("%s/ca-request.%s", keyring_dir(), ext);
}

bool
pgtls_ca_keyring_has(const char *fingerprint)
{
	struct stat st;

	return held_key(fingerprint) != NULL || stat(pgtls_ca_keyring_path(fingerprint, "key"), &st) == 0;
}

/*
 * The kept key of the CA with this fingerprint, whose certificate is cert,
 * or NULL when this node keeps none.  A key that is there but unusable
 * (permissions, garbage, another CA's) is an error: the CA's CRL cannot be
 * signed, and that must show.
 */
EVP_PKEY *
pgtls_ca_keyring_key(const char *fingerprint, X509 *cert)
{
	char	   *path = pgtls_ca_keyring_path(fingerprint, "key");
	struct stat st;
	size_t		len;
	char	   *pem;
	EVP_PKEY   *key;
	HeldKey    *h = held_key(fingerprint);

	if (h != NULL)
	{
		if (EVP_PKEY_up_ref(h->key) != 1)
			pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not keep a CA key in memory");
		return pgtls_own_pkey(h->key);
	}
	if (stat(path, &st) < 0)
	{
		if (errno == ENOENT)
			return NULL;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat CA private key file \"%s\": %m", path)));
	}
	pgtls_require_key_permissions(path, "CA private key file", &st);
	pem = pgtls_read_file(path, "CA private key file", NULL, true, &len);
	key = pgtls_parse_private_key(pem, (int) len, "a kept CA private key file", NULL);
	if (X509_check_private_key(cert, key) != 1)
	{
		pgtls_ossl_clear();
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("the CA private key file \"%s\" does not match the CA it is kept for", path),
				 errdetail("It should hold the key of the CA with fingerprint %s.", fingerprint)));
	}
	return key;
}

/*
 * Stage the kept key and certificate (followed by upper_pem) of a CA; the
 * caller commits them, the key first.  When they are written at commit,
 * the key is held in memory for the rest of the transaction.
 */
void
pgtls_ca_keyring_stage(EVP_PKEY *key, X509 *cert, const char *upper_pem,
					   PgtlsStagedFile **key_file, PgtlsStagedFile **cert_file)
{
	char	   *fingerprint = pgtls_fingerprint_sha256(cert);
	text	   *key_pem = pgtls_private_key_pem(key);
	char	   *cert_pem = psprintf("%s%s", text_to_cstring(pgtls_cert_pem(cert)), upper_pem ? upper_pem : "");

	*key_file = pgtls_stage_file(pgtls_ca_keyring_path(fingerprint, "key"), VARDATA_ANY(key_pem),
								 VARSIZE_ANY_EXHDR(key_pem), 0600);
	*cert_file = pgtls_stage_file(pgtls_ca_keyring_path(fingerprint, "crt"), cert_pem,
								  strlen(cert_pem), 0600);
	if (pgtls_files_deferring())
		hold_key(fingerprint, key);
}

static void
forget_drops(bool unlink_them)
{
	ListCell   *lc;

	foreach(lc, drop_at_commit)
	{
		DropAtCommit *d = lfirst(lc);

		if (unlink_them)
			(void) unlink(d->path);
		pfree(d->path);
		pfree(d);
	}
	list_free(drop_at_commit);
	drop_at_commit = NIL;
}

/*
 * Committed: the files go.  Aborted: they stay.  Prepared: they stay too,
 * whatever becomes of the transaction (the worker removes a retired CA's
 * files, and pgtls_ca_sync() a marker the registry agrees with).
 */
static void
keyring_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
		forget_drops(true);
	else if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
			 event == XACT_EVENT_PREPARE)
		forget_drops(false);
}

/* A subtransaction rolled back: what it (or one below it) meant to remove stays. */
static void
keyring_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	ListCell   *lc;

	if (event != SUBXACT_EVENT_ABORT_SUB)
		return;
	foreach(lc, drop_at_commit)
	{
		DropAtCommit *d = lfirst(lc);

		if (d->subid < mySubid)
			continue;
		pfree(d->path);
		pfree(d);
		drop_at_commit = foreach_delete_current(drop_at_commit, lc);
	}
}

static void
drop_file_at_commit(const char *path)
{
	MemoryContext old;
	DropAtCommit *d;

	if (!callback_registered)
	{
		RegisterXactCallback(keyring_xact_callback, NULL);
		RegisterSubXactCallback(keyring_subxact_callback, NULL);
		callback_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	d = palloc(sizeof(DropAtCommit));
	d->path = pstrdup(path);
	d->subid = GetCurrentSubTransactionId();
	drop_at_commit = lappend(drop_at_commit, d);
	MemoryContextSwitchTo(old);
}

/* Remove the kept files of the CA with this fingerprint if this transaction commits. */
void
pgtls_ca_keyring_drop_at_commit(const char *fingerprint)
{
	drop_file_at_commit(pgtls_ca_keyring_path(fingerprint, "key"));
	drop_file_at_commit(pgtls_ca_keyring_path(fingerprint, "crt"));
}

/* Remove the pending request's files if this transaction commits. */
void
pgtls_ca_request_drop_at_commit(void)
{
	drop_file_at_commit(pgtls_ca_request_path("key"));
	drop_file_at_commit(pgtls_ca_request_path("csr"));
}

/*
 * Remove the kept files of every retired CA of cas (PgtlsCARow *): a crash
 * after a retirement committed leaves them, and a standby still has those
 * its base backup copied.  Returns how many keys went.
 */
int
pgtls_ca_keyring_drop_retired(List *cas)
{
	ListCell   *lc;
	int			dropped = 0;

	foreach(lc, cas)
	{
		PgtlsCARow *row = lfirst(lc);
		char	   *key;

		if (row->state == NULL || strcmp(row->state, "retired") != 0)
			continue;
		key = pgtls_ca_keyring_path(row->fingerprint, "key");
		if (unlink(key) == 0)
		{
			dropped++;
			ereport(LOG,
					(errhidestmt(true),
					 errmsg("pgtls_admin: removed the key of retired CA \"%s\" (\"%s\")", row->subject, key)));
		}
		(void) unlink(pgtls_ca_keyring_path(row->fingerprint, "crt"));
	}
	return dropped;
}

/* The marker of a switch of the CA files under way: the fingerprint of the CA switched to. */
void
pgtls_ca_switch_mark(const char *fingerprint)
{
	char	   *path = pgtls_ca_switch_path();

	pgtls_commit_file(pgtls_stage_file(path, fingerprint, strlen(fingerprint), 0600));
	drop_file_at_commit(path);
}

/* The marker's path: ca-switch beside ca_key_file. */
char *
pgtls_ca_switch_path(void)
{
	return psprintf("%s/ca-switch", keyring_dir());
}

/* The CA a switch left by a crash (or an error) was to, or NULL. */
char *
pgtls_ca_switch_marked(void)
{
	PgtlsFileRead f;

	if (!pgtls_try_read_file(pgtls_ca_switch_path(), false, &f))
		return NULL;
	return f.data;
}

/*
 * The switch is recorded: remove the marker when this transaction commits.
 * Never before: until the registry's change commits, the marker is what
 * lets the next pgtls_ca_sync() complete the switch.
 */
void
pgtls_ca_switch_unmark(void)
{
	drop_file_at_commit(pgtls_ca_switch_path());
}
