/*
 * journal.c
 *		The issuance journal: every certificate this node issued, recorded
 *		durably before it can leave the server.
 *
 * The registry row of a certificate is written in the issuing transaction,
 * but the certificate reaches the client before that transaction ends: it
 * may roll back, or its backend may die, leaving a certificate that logs in
 * and that no registry knows.  So each one is first appended to
 * pgtls/journal, one line each:
 *
 *   I <fxid> <registry oid> <kind> <role oid> <serial> <DER, base64> <crc32c>
 *
 * (the registry oid is pgtls_certificates' own: a registry dropped and
 * created again is another registry, whose entries the old ones are not)
 *
 * A line is write()n at once (a killed backend cannot lose it) and fsynced
 * before any result row leaves the server: statement.c wraps the
 * DestReceiver of the top-level statement so that a row is sent only after
 * the journal is durable, which batches the fsync of a statement that
 * issues many certificates.  Issuing with no wrapped statement around (the very
 * statement that loaded the library) fsyncs at once.  Transaction end
 * fsyncs too.
 *
 * Appends take a shared advisory lock; compaction (dropping entries that are
 * settled in the registry) takes it exclusively and rewrites the file, and
 * an appender whose file was replaced opens the new one.
 */
#include "pgtls_stores.h"

#include <fcntl.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "access/xact.h"
#include "common/base64.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/lock.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* Advisory lock key of the journal: "pgtlsJRN". */
#define JOURNAL_LOCK_KEY1 0x7067746cU
#define JOURNAL_LOCK_KEY2 0x734a524eU

static int	journal_fd = -1;
static ino_t journal_ino;
static bool journal_dirty = false;
static bool callback_registered = false;


static char *
journal_path(void)
{
	return psprintf("%s/pgtls/journal", DataDir);
}

static void
journal_tag(LOCKTAG *tag)
{
	SET_LOCKTAG_ADVISORY(*tag, InvalidOid, JOURNAL_LOCK_KEY1, JOURNAL_LOCK_KEY2, 2);
}

/* Make the appended entries durable. */
void
pgtls_journal_flush(void)
{
	if (!journal_dirty || journal_fd < 0)
		return;
	if (pg_fdatasync(journal_fd) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not fsync file \"%s\": %m", journal_path())));
	journal_dirty = false;
}

static void
journal_xact_callback(XactEvent event, void *arg)
{
	/* PRE_COMMIT may raise; at COMMIT/ABORT a failure must not */
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PARALLEL_PRE_COMMIT ||
		event == XACT_EVENT_PRE_PREPARE)
		pgtls_journal_flush();
	else if (journal_dirty && journal_fd >= 0 && pg_fdatasync(journal_fd) == 0)
		journal_dirty = false;
}

/* The journal's fd, opened again if compaction replaced the file. */
static int
journal_open(void)
{
	char	   *path = journal_path();
	struct stat st;

	if (journal_fd >= 0 && stat(path, &st) == 0 && st.st_ino == journal_ino)
		return journal_fd;
	if (journal_fd >= 0)
	{
		(void) pg_fdatasync(journal_fd);	/* what went to the old file is settled by now */
		close(journal_fd);
		journal_fd = -1;
	}
	if (MakePGDirectory(psprintf("%s/pgtls", DataDir)) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create directory \"%s/pgtls\": %m", DataDir)));
	journal_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | PG_BINARY, 0600);
	if (journal_fd < 0 || fstat(journal_fd, &st) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	journal_ino = st.st_ino;
	return journal_fd;
}

static void
append_crc(StringInfo line)
{
	pg_crc32c	crc;

	INIT_CRC32C(crc);
	COMP_CRC32C(crc, line->data, line->len);
	FIN_CRC32C(crc);
	appendStringInfo(line, " %08X\n", crc);
}

/*
 * Record cert, issued in this transaction, before it is returned: serial
 * is its serial and cert_pem its PEM (whose body is the base64 of its DER,
 * so nothing is encoded again).  kind is 'c' (client) or 's' (server);
 * role_oid is InvalidOid for a server.
 */
void
pgtls_journal_issued(const char *serial, text *cert_pem, char kind, Oid role_oid)
{
	const char *pem = VARDATA_ANY(cert_pem);
	const char *end = pem + VARSIZE_ANY_EXHDR(cert_pem);
	const char *body = memchr(pem, '\n', end - pem);
	StringInfoData line;
	LOCKTAG		tag;
	ssize_t		written;

	initStringInfo(&line);
	appendStringInfo(&line, "I %016llX %u %c %u %s ",
					 (unsigned long long) U64FromFullTransactionId(GetTopFullTransactionId()),
					 pgtls_registry_relid(), kind, role_oid, serial);
	/* the lines between BEGIN and END, without their newlines */
	for (const char *p = body ? body + 1 : end; p < end && *p != '-';)
	{
		const char *eol = memchr(p, '\n', end - p);
		const char *stop = eol ? eol : end;

		appendBinaryStringInfo(&line, p, stop - p);
		p = stop + (eol != NULL);
	}
	append_crc(&line);

	journal_tag(&tag);
	(void) LockAcquire(&tag, ShareLock, false, false);
	written = write(journal_open(), line.data, line.len);
	(void) LockRelease(&tag, ShareLock, false);
	if (written != line.len)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not write file \"%s\": %m", journal_path())));
	journal_dirty = true;
	if (!callback_registered)
	{
		RegisterXactCallback(journal_xact_callback, NULL);
		callback_registered = true;
	}
	/* no wrapped receiver would hold the result back: make it durable now */
	if (!pgtls_receiver_wrapped)
		pgtls_journal_flush();
}

/* ---- reading and compacting ---- */

/* Parse one line; false if it is torn or not ours. */
static bool
parse_entry(char *line, PgtlsJournalEntry *e)
{
	char	   *fields[8];
	int			n = 0;
	char	   *save = NULL;
	char	   *crc_text = strrchr(line, ' ');
	pg_crc32c	crc;
	unsigned long long fxid;

	if (crc_text == NULL)
		return false;
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, line, crc_text - line);
	FIN_CRC32C(crc);
	if (strtoul(crc_text + 1, NULL, 16) != crc)
		return false;
	*crc_text = '\0';
	for (char *tok = strtok_r(line, " ", &save); tok && n < 8; tok = strtok_r(NULL, " ", &save))
		fields[n++] = tok;
	if (n != 7 || strcmp(fields[0], "I") != 0 ||
		sscanf(fields[1], "%llX", &fxid) != 1)
		return false;
	e->fxid = FullTransactionIdFromU64((uint64) fxid);
	e->registry = (Oid) strtoul(fields[2], NULL, 10);
	e->kind = fields[3][0];
	e->role_oid = (Oid) strtoul(fields[4], NULL, 10);
	e->serial = pstrdup(fields[5]);
	e->der_b64 = pstrdup(fields[6]);
	return true;
}

/* Every valid entry of the journal (PgtlsJournalEntry *), oldest first. */
List *
pgtls_journal_read(void)
{
	PgtlsFileRead f;
	List	   *entries = NIL;
	char	   *save = NULL;

	if (!pgtls_try_read_file(journal_path(), false, &f))
	{
		if (!f.opened && f.save_errno == ENOENT)
			return NIL;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %s", journal_path(),
						f.problem ? f.problem : strerror(f.save_errno))));
	}
	for (char *line = strtok_r(f.data, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		PgtlsJournalEntry *e = palloc0(sizeof(PgtlsJournalEntry));

		if (parse_entry(line, e))
			entries = lappend(entries, e);
	}
	return entries;
}

/* The certificate of an entry, owned by the current context. */
X509 *
pgtls_journal_cert(PgtlsJournalEntry *e)
{
	int			len = strlen(e->der_b64);
	char	   *der = palloc(pg_b64_dec_len(len) + 1);
	int			der_len = pg_b64_decode(e->der_b64, len, der, pg_b64_dec_len(len));
	const unsigned char *p = (const unsigned char *) der;
	X509	   *cert;

	if (der_len <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the issuance journal holds an unreadable certificate (serial %s)", e->serial)));
	cert = pgtls_own_x509(d2i_X509(NULL, &p, der_len));
	if (cert == NULL)
		pgtls_ossl_raise(ERRCODE_DATA_CORRUPTED, "the issuance journal holds an unreadable certificate");
	return cert;
}

/*
 * Rewrite the journal keeping only the entries keep() wants, unless someone
 * is appending right now (then nothing happens; the next call compacts).
 * Returns the number of entries dropped, or -1 when it did not run.
 */
int
pgtls_journal_compact(bool (*keep) (PgtlsJournalEntry *e, void *arg), void *arg)
{
	LOCKTAG		tag;
	List	   *entries;
	StringInfoData kept;
	StringInfoData line;
	ListCell   *lc;
	int			dropped = 0;

	journal_tag(&tag);
	if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
		return -1;
	entries = pgtls_journal_read();
	initStringInfo(&kept);
	initStringInfo(&line);
	foreach(lc, entries)
	{
		PgtlsJournalEntry *e = lfirst(lc);

		if (!keep(e, arg))
		{
			dropped++;
			continue;
		}
		resetStringInfo(&line);
		appendStringInfo(&line, "I %016llX %u %c %u %s %s",
						 (unsigned long long) U64FromFullTransactionId(e->fxid),
						 e->registry, e->kind, e->role_oid, e->serial, e->der_b64);
		append_crc(&line);
		appendBinaryStringInfo(&kept, line.data, line.len);
	}
	if (dropped > 0)
		pgtls_commit_file(pgtls_stage_file(journal_path(), kept.data, kept.len, 0600));
	(void) LockRelease(&tag, ExclusiveLock, false);
	return dropped;
}

/* ---- settling: what the registry does not record ---- */

/* Entries whose transaction has ended, and whether the registry records each. */
bool
pgtls_serial_in_list(List *serials, const char *serial)
{
	ListCell   *lc;

	foreach(lc, serials)
		if (strcmp(lfirst(lc), serial) == 0)
			return true;
	return false;
}

/*
 * The entries of this registry whose issuing transaction has ended, and
 * the serials among them that the registry records.
 */
void
pgtls_journal_settle_state(List *entries, PgtlsJournalSettle *js)
{
	List	   *serials = NIL;
	ListCell   *lc;
	Oid			registry = pgtls_registry_relid();

	js->finished = NIL;
	js->registry = registry;
	foreach(lc, entries)
	{
		PgtlsJournalEntry *e = lfirst(lc);

		if (e->registry == registry && pgtls_xact_state(e->fxid) != PGTLS_XACT_RUNNING)
		{
			js->finished = lappend(js->finished, e);
			serials = lappend(serials, e->serial);
		}
	}
	js->known = pgtls_registry_known(serials);
}

/*
 * Certificates of the journal whose issuing transaction ended without
 * recording them (it rolled back, its backend died, or a subtransaction
 * that issued was rolled back): PgtlsRevoked * for the CRL, until they are
 * settled into the registry.
 */
List *
pgtls_journal_strays(void)
{
	PgtlsJournalSettle js;
	List	   *result = NIL;
	ListCell   *lc;

	pgtls_journal_settle_state(pgtls_journal_read(), &js);
	foreach(lc, js.finished)
	{
		PgtlsJournalEntry *e = lfirst(lc);
		PgtlsRevoked *r;

		if (pgtls_serial_in_list(js.known, e->serial))
			continue;
		r = palloc0(sizeof(PgtlsRevoked));
		r->serial = e->serial;
		r->revoked_at = GetCurrentTimestamp();
		r->reason = "unspecified";
		result = lappend(result, r);
	}
	return result;
}

