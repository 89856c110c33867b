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
 */
#include "pgtls_stores.h"

#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"

/* Files to remove when this transaction commits (TopMemoryContext). */
static List *drop_at_commit = NIL;
static bool callback_registered = false;

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

	return stat(pgtls_ca_keyring_path(fingerprint, "key"), &st) == 0;
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

/* Stage the kept key and certificate (followed by upper_pem) of a CA; the caller commits them, the key first. */
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
}

static void
keyring_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	foreach(lc, drop_at_commit)
	{
		if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT)
			(void) unlink(lfirst(lc));
		pfree(lfirst(lc));
	}
	list_free(drop_at_commit);
	drop_at_commit = NIL;
}

static void
drop_file_at_commit(const char *path)
{
	MemoryContext old;

	if (!callback_registered)
	{
		RegisterXactCallback(keyring_xact_callback, NULL);
		callback_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	drop_at_commit = lappend(drop_at_commit, pstrdup(path));
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
	char	   *path = psprintf("%s/ca-switch", keyring_dir());

	pgtls_commit_file(pgtls_stage_file(path, fingerprint, strlen(fingerprint), 0600));
	drop_file_at_commit(path);
}

/* The CA a switch left by a crash (or an error) was to, or NULL. */
char *
pgtls_ca_switch_marked(void)
{
	PgtlsFileRead f;

	if (!pgtls_try_read_file(psprintf("%s/ca-switch", keyring_dir()), false, &f))
		return NULL;
	return f.data;
}

void
pgtls_ca_switch_unmark(void)
{
	(void) unlink(psprintf("%s/ca-switch", keyring_dir()));
}
