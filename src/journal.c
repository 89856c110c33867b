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
 * created again is another registry, whose entries the old ones are not;
 * 0 marks an entry that whatever registry exists must record as revoked)
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
 * settled in the registry) takes it exclusively only to copy the lines
 * appended since it read the file and rename the new file into place, and
 * an appender whose file was replaced opens the new one.
 */
#include "pgtls_stores.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "common/base64.h"
#include "miscadmin.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "storage/lock.h"
#include "utils/hsearch.h"
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

/* ---- reading ----
 *
 * A read keeps, for each entry, its header and where its line is, not its
 * certificate: the journal may hold many entries (a statement that issued
 * a hundred thousand certificates, strays of a server without the worker),
 * and the certificate is needed only for strays.  The file is read in
 * chunks, whatever its size, and stays open so that a certificate is read
 * from the very file its entry came from: the bytes of a journal file never
 * change (appends add lines at its end, compaction renames a new file into
 * place).
 */

#define READ_CHUNK (1024 * 1024)

static void
close_journal(void *arg)
{
	PgtlsJournal *j = arg;

	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
}

/* The value of exactly 8 upper-case hex digits; false if they are not. */
static bool
hex8(const char *p, uint32 *value)
{
	*value = 0;
	for (int i = 0; i < 8; i++)
	{
		int			d = (p[i] >= '0' && p[i] <= '9') ? p[i] - '0' :
		(p[i] >= 'A' && p[i] <= 'F') ? p[i] - 'A' + 10 : -1;

		if (d < 0)
			return false;
		*value = *value << 4 | (uint32) d;
	}
	return true;
}

/*
 * Parse the NUL-terminated line (len bytes) into e, except its place; the
 * certificate's base64, if wanted, goes to *b64 (pointing into line).
 * False if it is torn or not an entry.
 */
static bool
parse_line(const char *line, int len, PgtlsJournalEntry *e, const char **b64, int *b64_len)
{
	pg_crc32c	crc;
	uint32		stored;
	const char *body_end;
	const char *serial;
	const char *serial_end;
	char	   *q;
	unsigned long long fxid;

	if (len < 30 || line[0] != 'I' || line[1] != ' ' || line[len - 9] != ' ' ||
		!hex8(line + len - 8, &stored))
		return false;
	INIT_CRC32C(crc);
	COMP_CRC32C(crc, line, len - 9);
	FIN_CRC32C(crc);
	if (stored != crc)
		return false;
	body_end = line + len - 9;

	fxid = strtoull(line + 2, &q, 16);
	if (q != line + 18 || *q != ' ')
		return false;
	e->fxid = FullTransactionIdFromU64((uint64) fxid);
	e->registry = (Oid) strtoul(q + 1, &q, 10);
	if (*q != ' ' || (q[1] != 'c' && q[1] != 's') || q[2] != ' ')
		return false;
	e->kind = q[1];
	e->role_oid = (Oid) strtoul(q + 3, &q, 10);
	if (*q != ' ')
		return false;
	serial = q + 1;
	if (serial >= body_end)
		return false;
	serial_end = memchr(serial, ' ', body_end - serial);
	if (serial_end == NULL || serial_end == serial || serial_end - serial > PGTLS_JOURNAL_SERIAL_MAX ||
		serial_end + 1 >= body_end)
		return false;
	memcpy(e->serial, serial, serial_end - serial);
	e->serial[serial_end - serial] = '\0';
	if (b64 != NULL)
	{
		*b64 = serial_end + 1;
		*b64_len = body_end - (serial_end + 1);
	}
	return true;
}

static void
add_entry(PgtlsJournal *j, int *cap, const PgtlsJournalEntry *e)
{
	if (j->n == *cap)
	{
		*cap *= 2;
		j->entries = repalloc_huge(j->entries, sizeof(PgtlsJournalEntry) * *cap);
	}
	j->entries[j->n++] = *e;
}

/*
 * One line of the file, at offset, NUL-terminated.  A line whose check sum
 * fails may be a line torn by a crash with the next append glued to it:
 * the entry is then looked for after each "I " in it.
 */
static void
read_line(PgtlsJournal *j, int *cap, char *line, int len, off_t offset)
{
	PgtlsJournalEntry e;

	memset(&e, 0, sizeof(e));
	for (int start = 0; start < len; start++)
	{
		if (line[start] != 'I' || line[start + 1] != ' ')
			continue;
		if (parse_line(line + start, len - start, &e, NULL, NULL))
		{
			e.journal = j;
			e.offset = offset + start;
			e.len = len - start;
			add_entry(j, cap, &e);
			return;
		}
	}
}

/*
 * Every valid entry of the journal, oldest first; NULL when there is no
 * journal.  The file stays open until the current memory context goes.
 */
PgtlsJournal *
pgtls_journal_load(void)
{
	char	   *path = journal_path();
	PgtlsJournal *j;
	struct stat st;
	int			cap = 1024;
	size_t		size = READ_CHUNK;
	char	   *buf;
	size_t		have = 0;
	off_t		base = 0;		/* file offset of buf[0] */
	int			fd = open(path, O_RDONLY | PG_BINARY, 0);

	if (fd < 0)
	{
		if (errno == ENOENT)
			return NULL;
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	}
	j = palloc0(sizeof(PgtlsJournal));
	j->fd = fd;
	j->close_cb.func = close_journal;
	j->close_cb.arg = j;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &j->close_cb);
	if (fstat(fd, &st) < 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not stat file \"%s\": %m", path)));
	j->ino = st.st_ino;
	j->entries = palloc(sizeof(PgtlsJournalEntry) * cap);
	buf = palloc(size + 1);
	for (;;)
	{
		ssize_t		got = read(fd, buf + have, size - have);
		char	   *line;
		char	   *nl;

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			ereport(ERROR,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", path)));
		if (got == 0)
			break;
		have += got;
		line = buf;
		while ((nl = memchr(line, '\n', buf + have - line)) != NULL)
		{
			*nl = '\0';
			read_line(j, &cap, line, nl - line, base + (line - buf));
			line = nl + 1;
		}
		/* keep the unfinished line; a line longer than the buffer grows it */
		base += line - buf;
		have -= line - buf;
		memmove(buf, line, have);
		if (have == size)
		{
			size *= 2;
			buf = repalloc_huge(buf, size + 1);
		}
		CHECK_FOR_INTERRUPTS();
	}
	j->end = base;				/* an unfinished last line is an append under way, or torn */
	pfree(buf);
	return j;
}

/* The entry of serial in j (the newest, should there be two), or NULL. */
PgtlsJournalEntry *
pgtls_journal_find(PgtlsJournal *j, const char *serial)
{
	for (int i = j->n - 1; i >= 0; i--)
		if (strcmp(j->entries[i].serial, serial) == 0)
			return &j->entries[i];
	return NULL;
}

/* The certificate of an entry, owned by the current context. */
X509 *
pgtls_journal_cert(PgtlsJournalEntry *e)
{
	char	   *line = palloc(e->len + 1);
	PgtlsJournalEntry again;
	const char *b64 = NULL;
	int			b64_len = 0;
	char	   *der;
	int			der_len = -1;
	const unsigned char *p;
	X509	   *cert;

	if (e->journal->fd < 0 || pg_pread(e->journal->fd, line, e->len, e->offset) != e->len)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not read file \"%s\": %m", journal_path())));
	line[e->len] = '\0';
	if (parse_line(line, e->len, &again, &b64, &b64_len))
	{
		der = palloc(pg_b64_dec_len(b64_len) + 1);
		der_len = pg_b64_decode(b64, b64_len, der, pg_b64_dec_len(b64_len));
	}
	if (der_len <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the issuance journal holds an unreadable certificate (serial %s)", e->serial)));
	p = (const unsigned char *) der;
	cert = pgtls_own_x509(d2i_X509(NULL, &p, der_len));
	if (cert == NULL)
		pgtls_ossl_raise(ERRCODE_DATA_CORRUPTED, "the issuance journal holds an unreadable certificate");
	return cert;
}

/* ---- what each entry still means ---- */

/*
 * The fates of entries [from, to) of j whose fate is not final (unseen,
 * open, stray), into fates (indexed like j->entries).
 *
 * An entry whose transaction runs stays open.  One whose transaction ended
 * is recorded if the registry holds its serial in a row that a committed
 * transaction wrote (asked with the newest snapshot, so that a transaction
 * that committed a moment ago counts; rows this transaction wrote do not
 * count, as it may still roll back), or lists it in pgtls_revoked_serials.
 * Otherwise it is a stray, unless it belongs to a registry that was
 * dropped and its transaction committed: it was live there, and what that
 * registry revoked is kept by the CRL the new one adopted.  An entry whose
 * transaction did not commit is a stray whatever registry it was issued
 * into: a drop and re-create never lets it log in.
 */
void
pgtls_journal_fates(PgtlsJournal *j, int from, int to, PgtlsEntryFate *fates)
{
	Oid			current = pgtls_registry_relid();
	const char **serials = palloc(sizeof(char *) * Max(to - from, 1));
	int		   *index = palloc(sizeof(int) * Max(to - from, 1));
	bool	   *known;
	int			m = 0;
	FullTransactionId last = InvalidFullTransactionId;
	PgtlsXactState state = PGTLS_XACT_RUNNING;

	for (int i = from; i < to; i++)
	{
		PgtlsJournalEntry *e = &j->entries[i];

		if (fates[i] == PGTLS_ENTRY_RECORDED || fates[i] == PGTLS_ENTRY_GONE)
			continue;
		/* a statement's entries come one after another: ask once for their transaction */
		if (!FullTransactionIdEquals(e->fxid, last))
		{
			state = pgtls_xact_state(e->fxid);
			last = e->fxid;
		}
		if (state == PGTLS_XACT_RUNNING)
		{
			fates[i] = PGTLS_ENTRY_OPEN;
			continue;
		}
		fates[i] = (e->registry == current || e->registry == InvalidOid ||
					state == PGTLS_XACT_ABORTED) ? PGTLS_ENTRY_STRAY : PGTLS_ENTRY_GONE;
		serials[m] = e->serial;
		index[m++] = i;
	}
	if (m == 0)
		return;
	known = palloc0(sizeof(bool) * m);
	pgtls_registry_known(serials, m, known);
	for (int k = 0; k < m; k++)
		if (known[k])
			fates[index[k]] = PGTLS_ENTRY_RECORDED;
	pfree(known);
	pfree(serials);
	pfree(index);
}

/* ---- compacting ----
 *
 * Compaction drops the entries that are recorded (or gone with a dropped
 * registry) and keeps the rest, with everything appended meanwhile.  The
 * long part (reading, asking the registry, writing what is kept) runs
 * without the journal lock; appenders wait only while the lines appended
 * since the read are copied and the new file is renamed into place.  One
 * compaction runs at a time; another that finds it busy leaves the work to
 * it.  Each writes a file named after its process (an aborted one removes
 * its own when its memory goes, which may be after the next one started),
 * and the one running removes those left by processes that crashed.
 */

/* Advisory lock key of the one compaction under way: "pgtlsJCM". */
#define COMPACT_LOCK_KEY2 0x734a434dU

/* Compact from pgtls_revoke once the journal is larger than this. */
#define COMPACT_AT_BYTES (256 * 1024)

/* Below this a rewrite is cheap; above it, it must halve the file at least. */
#define REWRITE_SMALL_BYTES (1024 * 1024)

typedef struct CompactFile
{
	MemoryContextCallback cb;
	char	   *path;
	int			fd;
	bool		renamed;
} CompactFile;

static void
compact_file_cleanup(void *arg)
{
	CompactFile *cf = arg;

	if (cf->fd >= 0)
		close(cf->fd);
	cf->fd = -1;
	if (!cf->renamed)
		(void) unlink(cf->path);
	cf->renamed = true;			/* done with */
}

/* Remove the compaction files other processes left (the caller holds the compaction lock). */
static void
remove_stale_compact_files(void)
{
	char	   *dir = psprintf("%s/pgtls", DataDir);
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;

	while ((de = ReadDir(d, dir)) != NULL)
		if (strncmp(de->d_name, "journal.compact.", 16) == 0)
			(void) unlink(psprintf("%s/%s", dir, de->d_name));
	FreeDir(d);
}

static bool
write_all(int fd, const char *data, size_t len)
{
	while (len > 0)
	{
		ssize_t		n = write(fd, data, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		data += n;
		len -= n;
	}
	return true;
}

/* Copy [from, EOF) of fd to the end of out; false on an error (errno set). */
static bool
copy_tail(int fd, off_t from, int out)
{
	char	   *buf = palloc(READ_CHUNK);
	bool		ok = true;

	for (;;)
	{
		ssize_t		got = pg_pread(fd, buf, READ_CHUNK, from);

		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
		{
			ok = got == 0;
			break;
		}
		if (!write_all(out, buf, got))
		{
			ok = false;
			break;
		}
		from += got;
	}
	pfree(buf);
	return ok;
}

/*
 * The line of an entry issued into a registry that is being dropped,
 * relabelled as an entry of no registry (0): whatever registry exists next
 * records it as revoked, however its transaction ended.
 */
static void
append_orphan(StringInfo out, const char *line, int len)
{
	PgtlsJournalEntry e;
	const char *b64;
	int			b64_len;
	int			start = out->len;
	char	   *copy = pnstrdup(line, len);

	if (!parse_line(copy, len, &e, &b64, &b64_len))
	{
		appendBinaryStringInfo(out, line, len);
		appendStringInfoChar(out, '\n');
		return;
	}
	appendStringInfo(out, "I %016llX 0 %c %u %s ",
					 (unsigned long long) U64FromFullTransactionId(e.fxid), e.kind, e.role_oid, e.serial);
	appendBinaryStringInfo(out, b64, b64_len);
	{
		StringInfoData one;

		/* the check sum covers this line only */
		initStringInfo(&one);
		appendBinaryStringInfo(&one, out->data + start, out->len - start);
		append_crc(&one);
		out->len = start;
		appendBinaryStringInfo(out, one.data, one.len);
		pfree(one.data);
	}
	pfree(copy);
}

/*
 * Write the kept lines of j to fd, strays of registry orphan_of (if
 * valid) relabelled as orphans; false on an error (errno set).
 */
static bool
write_kept(PgtlsJournal *j, const PgtlsEntryFate *fates, Oid orphan_of, int fd)
{
	StringInfoData out;
	char	   *line = NULL;
	int			line_cap = 0;
	bool		ok = true;

	initStringInfo(&out);
	for (int i = 0; i < j->n && ok; i++)
	{
		PgtlsJournalEntry *e = &j->entries[i];

		if (fates[i] == PGTLS_ENTRY_RECORDED || fates[i] == PGTLS_ENTRY_GONE)
			continue;
		if (e->len + 1 > line_cap)
		{
			line_cap = Max(e->len + 1, 4096);
			line = line ? repalloc(line, line_cap) : palloc(line_cap);
		}
		if (pg_pread(j->fd, line, e->len, e->offset) != e->len)
		{
			ok = false;
			break;
		}
		if (OidIsValid(orphan_of) && fates[i] == PGTLS_ENTRY_STRAY && e->registry == orphan_of)
			append_orphan(&out, line, e->len);
		else
		{
			appendBinaryStringInfo(&out, line, e->len);
			appendStringInfoChar(&out, '\n');
		}
		if (out.len >= READ_CHUNK)
		{
			ok = write_all(fd, out.data, out.len);
			resetStringInfo(&out);
		}
	}
	ok = ok && write_all(fd, out.data, out.len);
	pfree(out.data);
	return ok;
}

/*
 * Rewrite the journal j was loaded from without the entries whose fate is
 * recorded or gone, keeping what was appended after j was read, and with
 * the strays of registry orphan_of (if valid) relabelled.  Unless must,
 * only when that pays: the file must shrink to half at least, unless what
 * is kept is small.  Returns the entries dropped, 0 when it did not pay,
 * -1 when it could not run now (another compaction, a file replaced
 * meanwhile, or an I/O error, which is logged: a revocation must not fail
 * for it).
 */
static int
rewrite(PgtlsJournal *j, const PgtlsEntryFate *fates, Oid orphan_of, bool must)
{
	char	   *path = journal_path();
	LOCKTAG		compact_tag;
	LOCKTAG		tag;
	CompactFile *cf;
	struct stat st;
	off_t		kept_bytes = 0;
	off_t		waste;
	int			dropped = 0;

	for (int i = 0; i < j->n; i++)
	{
		if (fates[i] == PGTLS_ENTRY_RECORDED || fates[i] == PGTLS_ENTRY_GONE)
			dropped++;
		else
			kept_bytes += j->entries[i].len + 1;
	}
	/* what goes: dropped entries, and lines that are no entry (torn by a crash) */
	waste = j->end - kept_bytes;
	if (!must && (waste <= 0 || (kept_bytes > REWRITE_SMALL_BYTES && waste < kept_bytes)))
		return 0;

	SET_LOCKTAG_ADVISORY(compact_tag, InvalidOid, JOURNAL_LOCK_KEY1, COMPACT_LOCK_KEY2, 2);
	if (LockAcquire(&compact_tag, ExclusiveLock, false, !must) == LOCKACQUIRE_NOT_AVAIL)
		return -1;
	if (stat(path, &st) < 0 || st.st_ino != j->ino)
	{
		(void) LockRelease(&compact_tag, ExclusiveLock, false);
		return -1;
	}

	remove_stale_compact_files();
	cf = palloc0(sizeof(CompactFile));
	cf->path = psprintf("%s/pgtls/journal.compact.%d", DataDir, MyProcPid);
	cf->fd = open(cf->path, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY, 0600);
	cf->cb.func = compact_file_cleanup;
	cf->cb.arg = cf;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &cf->cb);
	if (cf->fd < 0 || !write_kept(j, fates, orphan_of, cf->fd) || pg_fdatasync(cf->fd) != 0)
		goto failed;

	/* appenders wait from here: copy what they added since the read, and switch files */
	journal_tag(&tag);
	(void) LockAcquire(&tag, ExclusiveLock, false, false);
	if (!copy_tail(j->fd, j->end, cf->fd) || pg_fdatasync(cf->fd) != 0 ||
		rename(cf->path, path) < 0)
	{
		int			save_errno = errno;

		(void) LockRelease(&tag, ExclusiveLock, false);
		errno = save_errno;
		goto failed;
	}
	cf->renamed = true;
	fsync_fname(psprintf("%s/pgtls", DataDir), true);
	(void) LockRelease(&tag, ExclusiveLock, false);
	(void) LockRelease(&compact_tag, ExclusiveLock, false);
	compact_file_cleanup(cf);
	return dropped;

failed:
	ereport(WARNING,
			(errcode_for_file_access(),
			 errmsg("could not compact the issuance journal \"%s\": %m", path),
			 errdetail("The journal is left as it was.")));
	compact_file_cleanup(cf);
	(void) LockRelease(&compact_tag, ExclusiveLock, false);
	return -1;
}

int
pgtls_journal_rewrite(PgtlsJournal *j, const PgtlsEntryFate *fates)
{
	return rewrite(j, fates, InvalidOid, false);
}

/*
 * Drop from the journal what the registry records, on the primary.  Returns
 * the entries dropped, 0 if none (or it did not pay), -1 if it could not
 * run now.
 */
int
pgtls_journal_compact(void)
{
	PgtlsJournal *j;
	PgtlsEntryFate *fates;

	if (RecoveryInProgress() || (j = pgtls_journal_load()) == NULL || j->n == 0)
		return 0;
	fates = palloc0(sizeof(PgtlsEntryFate) * j->n);
	pgtls_journal_fates(j, 0, j->n, fates);
	return pgtls_journal_rewrite(j, fates);
}

/*
 * From pgtls_revoke, before it takes the CRL lock: compact a journal grown
 * past COMPACT_AT_BYTES, so that without the worker the journal does not
 * grow with every certificate ever issued, nor every CRL build with it.
 * The CRL build reads the whole journal anyway: compacting first at most
 * doubles that, once, and leaves it small for the next ones.
 */
void
pgtls_journal_compact_if_grown(void)
{
	struct stat st;

	if (stat(journal_path(), &st) == 0 && st.st_size > COMPACT_AT_BYTES)
		(void) pgtls_journal_compact();
}

/*
 * From the event trigger of a DROP that may drop the registry: its strays
 * become orphans (registry 0), which whatever registry exists next records
 * as revoked, so that a drop and re-create never lets them log in; that
 * includes strays of a subtransaction rolled back in a transaction that
 * committed, which are told apart from live certificates only while their
 * registry exists.  Should the DROP roll back, they stay strays of this
 * registry all the same.  Does nothing when there are none.
 */
void
pgtls_journal_orphan_strays(void)
{
	Oid			current = pgtls_registry_relid();

	for (int attempt = 0; attempt < 3; attempt++)
	{
		PgtlsJournal *j = pgtls_journal_load();
		PgtlsEntryFate *fates;
		bool		any = false;

		if (j == NULL || j->n == 0)
			return;
		fates = palloc0(sizeof(PgtlsEntryFate) * j->n);
		pgtls_journal_fates(j, 0, j->n, fates);
		for (int i = 0; i < j->n && !any; i++)
			any = fates[i] == PGTLS_ENTRY_STRAY && j->entries[i].registry == current;
		/* a file compacted between the read and the rewrite is read again */
		if (!any || rewrite(j, fates, current, true) >= 0)
			return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_IN_USE),
			 errmsg("could not mark the certificates of the issuance journal that were never recorded"),
			 errdetail("The journal kept changing or could not be written."),
			 errhint("Try again.")));
}

/* ---- strays, for the CRL ---- */

/*
 * Certificates of the journal whose issuing transaction ended without
 * recording them (it rolled back, its backend died, or a subtransaction
 * that issued was rolled back): PgtlsRevoked * for the CRL, until they are
 * settled into the registry.
 */
List *
pgtls_journal_strays(void)
{
	PgtlsJournal *j = pgtls_journal_load();
	PgtlsEntryFate *fates;
	List	   *result = NIL;

	if (j == NULL || j->n == 0)
		return NIL;
	fates = palloc0(sizeof(PgtlsEntryFate) * j->n);
	pgtls_journal_fates(j, 0, j->n, fates);
	for (int i = 0; i < j->n; i++)
	{
		PgtlsRevoked *r;

		if (fates[i] != PGTLS_ENTRY_STRAY)
			continue;
		r = palloc0(sizeof(PgtlsRevoked));
		r->serial = pstrdup(j->entries[i].serial);
		r->revoked_at = GetCurrentTimestamp();
		r->reason = "unspecified";
		result = lappend(result, r);
	}
	return result;
}

typedef struct SerialKey
{
	char		serial[PGTLS_JOURNAL_SERIAL_MAX + 1];
	bool		listed;
} SerialKey;

/*
 * revoked (PgtlsRevoked *) with the journal's strays it does not list
 * yet appended: linear in both (the registry may list a million).
 */
List *
pgtls_journal_add_strays(List *revoked)
{
	List	   *strays = pgtls_journal_strays();
	HASHCTL		ctl;
	HTAB	   *set;
	ListCell   *lc;

	if (strays == NIL)
		return revoked;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = PGTLS_JOURNAL_SERIAL_MAX + 1;
	ctl.entrysize = sizeof(SerialKey);
	ctl.hcxt = CurrentMemoryContext;
	set = hash_create("pgtls_admin journal strays", list_length(strays), &ctl,
					  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	foreach(lc, strays)
		((SerialKey *) hash_search(set, ((PgtlsRevoked *) lfirst(lc))->serial, HASH_ENTER, NULL))->listed = false;
	foreach(lc, revoked)
	{
		const char *serial = ((PgtlsRevoked *) lfirst(lc))->serial;
		SerialKey  *k;

		if (strlen(serial) <= PGTLS_JOURNAL_SERIAL_MAX &&
			(k = hash_search(set, serial, HASH_FIND, NULL)) != NULL)
			k->listed = true;
	}
	foreach(lc, strays)
	{
		PgtlsRevoked *r = lfirst(lc);

		SerialKey  *k = hash_search(set, r->serial, HASH_FIND, NULL);

		if (!k->listed)
			revoked = lappend(revoked, r);
		k->listed = true;
	}
	hash_destroy(set);
	return revoked;
}
