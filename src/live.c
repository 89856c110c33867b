/*
 * live.c
 *		The shared-memory set of live client certificates, for logins that
 *		the registry enforces (pgtls_admin.enforce = registry).
 *
 * A login is authenticated before its backend can read any database, so
 * the registry is mirrored here: serial -> the role OID it was issued for
 * and its expiry, for every client certificate that is recorded, not
 * revoked and not expired.  The background worker loads it at start and
 * follows the registry's changes (on a standby, as they are replayed); an
 * issuing or revoking backend applies its own changes when it commits, so
 * a new certificate logs in and a revoked one is refused at once on this
 * node.  The worker also publishes the identities of the extension's CAs and
 * a heartbeat: without a fresh heartbeat the set is not trusted.
 *
 * Exists only when the library is in shared_preload_libraries.
 */
#include "pgtls_stores.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/hsearch.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#define MAX_SERIAL_BYTES 20
#define MAX_CAS 8

typedef struct LiveKey
{
	uint8		len;
	uint8		bytes[MAX_SERIAL_BYTES];
} LiveKey;

typedef struct LiveEntry
{
	LiveKey		key;
	Oid			role_oid;
	TimestampTz not_after;
} LiveEntry;

typedef struct LiveShared
{
	LWLock	   *lock;
	PgtlsWorkerState state;		/* what the worker last reported */
	bool		loaded;			/* the worker completed a full load */
	bool		overflow;		/* more live certificates than pgtls_admin.max_certificates */
	TimestampTz heartbeat;		/* the worker's last look at the registry */
	int			ncas;
	PgtlsCAIdentity cas[MAX_CAS];
	int64		count;
} LiveShared;

static LiveShared *live = NULL;
static HTAB *live_hash = NULL;
static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* Changes of this transaction, applied at commit (TopMemoryContext). */
typedef struct QueuedChange
{
	LiveEntry	entry;
	bool		add;
} QueuedChange;

static List *queued = NIL;
static bool callback_registered = false;

static int
nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The bytes of a serial in the registry's hex spelling; false if it is not one. */
static bool
serial_key(const char *hex, LiveKey *key)
{
	size_t		n = strlen(hex);
	size_t		i = 0;
	int			k = 0;

	memset(key, 0, sizeof(*key));
	if (n == 0 || n > 2 * MAX_SERIAL_BYTES)
		return false;
	if (n % 2 == 1)
	{
		if (nibble(hex[0]) < 0)
			return false;
		key->bytes[k++] = (uint8) nibble(hex[0]);
		i = 1;
	}
	for (; i < n; i += 2)
	{
		if (nibble(hex[i]) < 0 || nibble(hex[i + 1]) < 0)
			return false;
		key->bytes[k++] = (uint8) (nibble(hex[i]) << 4 | nibble(hex[i + 1]));
	}
	key->len = (uint8) k;
	return true;
}

static Size
live_size(void)
{
	return add_size(MAXALIGN(sizeof(LiveShared)),
					hash_estimate_size(pgtls_max_certificates, sizeof(LiveEntry)));
}

static void
live_shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(live_size());
	RequestNamedLWLockTranche("pgtls_admin", 1);
}

static void
live_shmem_startup(void)
{
	bool		found;
	HASHCTL		ctl;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	live = ShmemInitStruct("pgtls_admin live certificates", sizeof(LiveShared), &found);
	if (!found)
	{
		memset(live, 0, sizeof(LiveShared));
		live->lock = &(GetNamedLWLockTranche("pgtls_admin"))->lock;
	}
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(LiveKey);
	ctl.entrysize = sizeof(LiveEntry);
	live_hash = ShmemInitHash("pgtls_admin live certificate hash",
							  pgtls_max_certificates, pgtls_max_certificates,
							  &ctl, HASH_ELEM | HASH_BLOBS);
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init while preloading: reserve the shared memory. */
void
pgtls_live_install_hooks(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = live_shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = live_shmem_startup;
}

bool
pgtls_live_available(void)
{
	return live != NULL;
}

/* Add or remove one certificate; caller holds the lock exclusively. */
static void
apply(const LiveEntry *e, bool add)
{
	bool		found;

	if (!add)
	{
		if (hash_search(live_hash, &e->key, HASH_REMOVE, &found) && found)
			live->count--;
		return;
	}
	{
		LiveEntry  *entry = hash_search(live_hash, &e->key, HASH_ENTER_NULL, &found);

		if (entry == NULL)
		{
			live->overflow = true;
			return;
		}
		if (!found)
			live->count++;
		entry->role_oid = e->role_oid;
		entry->not_after = e->not_after;
	}
}

/* Set the serial's state: live for role_oid until not_after, or not (live false). */
void
pgtls_live_set(const char *serial, bool is_live, Oid role_oid, TimestampTz not_after)
{
	LiveEntry	e;

	if (live == NULL || !serial_key(serial, &e.key))
		return;
	e.role_oid = role_oid;
	e.not_after = not_after;
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	apply(&e, is_live);
	LWLockRelease(live->lock);
}

/* Empty the set before a full load. */
void
pgtls_live_reset(void)
{
	HASH_SEQ_STATUS seq;
	LiveEntry  *e;

	if (live == NULL)
		return;
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, live_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		(void) hash_search(live_hash, &e->key, HASH_REMOVE, NULL);
	live->count = 0;
	live->overflow = false;
	live->loaded = false;
	LWLockRelease(live->lock);
}

/*
 * Drop the certificates that expired by now: a set that only grew would
 * fill up with short-lived certificates.  Returns how many went.
 */
int
pgtls_live_forget_expired(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	LiveEntry  *e;
	int			gone = 0;

	if (live == NULL)
		return 0;
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	hash_seq_init(&seq, live_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
	{
		if (e->not_after > now)
			continue;
		(void) hash_search(live_hash, &e->key, HASH_REMOVE, NULL);
		live->count--;
		gone++;
	}
	LWLockRelease(live->lock);
	return gone;
}

/*
 * The worker's report: its state, whether the set is complete as of now,
 * and which CAs are ours.
 */
void
pgtls_live_publish(PgtlsWorkerState state, bool loaded, const PgtlsCAIdentity *cas, int ncas)
{
	if (live == NULL)
		return;
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	live->state = state;
	live->loaded = loaded;
	live->heartbeat = GetCurrentTimestamp();
	live->ncas = Min(ncas, MAX_CAS);
	memcpy(live->cas, cas, sizeof(PgtlsCAIdentity) * live->ncas);
	LWLockRelease(live->lock);
}

/* What the login hook needs to know in one look. */
PgtlsLiveVerdict
pgtls_live_check(const char *serial, const PgtlsCAIdentity *issuer, Oid *role_oid,
				 TimestampTz *not_after, TimestampTz *heartbeat, int64 *count)
{
	LiveKey		key;
	LiveEntry  *e;
	PgtlsLiveVerdict verdict = PGTLS_LIVE_NOT_OURS;
	bool		ours = false;

	if (live == NULL)
		return PGTLS_LIVE_UNAVAILABLE;
	LWLockAcquire(live->lock, LW_SHARED);
	for (int i = 0; i < live->ncas && !ours; i++)
		ours = live->cas[i].name_hash == issuer->name_hash &&
			live->cas[i].keyid_len == issuer->keyid_len &&
			memcmp(live->cas[i].keyid, issuer->keyid, issuer->keyid_len) == 0;
	*heartbeat = live->heartbeat;
	*count = live->count;
	if (live->state == PGTLS_WORKER_NO_REGISTRY)
		verdict = PGTLS_LIVE_NO_REGISTRY;
	else if (live->state == PGTLS_WORKER_STARTING || !live->loaded)
		verdict = PGTLS_LIVE_NOT_LOADED;
	else if (ours)
	{
		if (live->overflow)
			verdict = PGTLS_LIVE_OVERFLOW;
		else if (!serial_key(serial, &key) ||
				 (e = hash_search(live_hash, &key, HASH_FIND, NULL)) == NULL)
			verdict = PGTLS_LIVE_UNKNOWN;
		else
		{
			*role_oid = e->role_oid;
			*not_after = e->not_after;
			verdict = PGTLS_LIVE_FOUND;
		}
	}
	LWLockRelease(live->lock);
	return verdict;
}

static void
live_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT)
		return;
	if (queued != NIL && live != NULL &&
		(event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT))
	{
		LWLockAcquire(live->lock, LW_EXCLUSIVE);
		foreach(lc, queued)
		{
			QueuedChange *q = lfirst(lc);

			apply(&q->entry, q->add);
		}
		LWLockRelease(live->lock);
	}
	list_free_deep(queued);
	queued = NIL;
}

/*
 * At commit of this transaction, the serial becomes live (add) or stops
 * being live.  Nothing happens without the shared set.
 */
void
pgtls_live_at_commit(const char *serial, bool add, Oid role_oid, TimestampTz not_after)
{
	QueuedChange *q;
	MemoryContext old;

	if (live == NULL)
		return;
	if (!callback_registered)
	{
		RegisterXactCallback(live_xact_callback, NULL);
		callback_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	q = palloc0(sizeof(QueuedChange));
	if (!serial_key(serial, &q->entry.key))
	{
		pfree(q);
		MemoryContextSwitchTo(old);
		return;
	}
	q->entry.role_oid = role_oid;
	q->entry.not_after = not_after;
	q->add = add;
	queued = lappend(queued, q);
	MemoryContextSwitchTo(old);
}

/* The identity of a CA as a certificate it issued names it: subject hash and key id. */
void
pgtls_ca_identity_of_ca(X509 *ca, PgtlsCAIdentity *id)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(ca);

	memset(id, 0, sizeof(*id));
	id->name_hash = X509_NAME_hash_ex(X509_get_subject_name(ca), NULL, NULL, NULL);
	if (ski != NULL)
	{
		id->keyid_len = Min(ASN1_STRING_length(ski), (int) sizeof(id->keyid));
		memcpy(id->keyid, ASN1_STRING_get0_data(ski), id->keyid_len);
	}
}

void
pgtls_ca_identity_of_issuer(X509 *cert, PgtlsCAIdentity *id)
{
	const ASN1_OCTET_STRING *akid = X509_get0_authority_key_id(cert);

	memset(id, 0, sizeof(*id));
	id->name_hash = X509_NAME_hash_ex(X509_get_issuer_name(cert), NULL, NULL, NULL);
	if (akid != NULL)
	{
		id->keyid_len = Min(ASN1_STRING_length(akid), (int) sizeof(id->keyid));
		memcpy(id->keyid, ASN1_STRING_get0_data(akid), id->keyid_len);
	}
}

/* Bytes of shared memory the set takes, for the documentation and the benchmark. */
Size
pgtls_live_shmem_size(void)
{
	return live_size();
}
