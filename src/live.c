/*
 * live.c
 *		The shared-memory set of live client certificates, for logins that
 *		the registry enforces (pgtls_admin.enforce = registry).
 *
 * A login is authenticated before its backend can read any database, so
 * the registry is mirrored here: serial -> the certificate's SHA-256
 * fingerprint, the role OID it was issued for and its expiry, for every
 * client certificate that is recorded, not revoked and not expired.  A
 * certificate is the extension's when its issuer names one of the
 * extension's CAs (by subject, whatever its authority key id says), and it
 * is live only if the whole certificate, not just its serial, is the one
 * recorded: one made with a stolen CA key under a live serial is not.  The background worker loads it at start and
 * follows the registry's changes (on a standby, as they are replayed); an
 * issuing or revoking backend applies its own changes when it commits, so
 * a new certificate logs in and a revoked one is refused at once on this
 * node; changes of a subtransaction that rolls back are dropped with it,
 * and those of a prepared transaction are left to the worker, which sees
 * them in the registry once COMMIT PREPARED has run.  The worker also
 * publishes the identities of the extension's CAs and a heartbeat: without
 * a fresh heartbeat the set is not trusted.  Expired entries are swept when
 * the set is full; issuing is refused (with enforce = registry) rather than
 * letting the set overflow, and an overflowed set is reloaded by the worker.
 *
 * Beside the set, the identities of the CRLs of our CAs last written to
 * pgtls_admin.crl_file (the writer publishes them, trust.c), which the
 * login hook compares with the CRLs a backend inherited at fork
 * (enforce.c); and the SHA-256 fingerprints of the CA certificates last
 * written to the trust bundle (pgtls_admin.ca_bundle_file), which the hook
 * requires of every CA of a client's verified chain.
 *
 * Exists only when the library is in shared_preload_libraries.
 */
#include "pgtls_stores.h"

#include "access/xact.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
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

#define FINGERPRINT_BYTES 32

typedef struct LiveEntry
{
	LiveKey		key;
	Oid			role_oid;
	TimestampTz not_after;
	uint8		fingerprint[FINGERPRINT_BYTES];	/* SHA-256 of the DER */
} LiveEntry;

typedef struct LiveShared
{
	LWLock	   *lock;
	PgtlsWorkerState state;		/* what the worker last reported */
	bool		loaded;			/* the worker completed a full load */
	bool		overflow;		/* more live certificates than pgtls_admin.max_certificates */
	bool		crl_requested;	/* a backend undid a revocation: rewrite the CRL */
	TimestampTz heartbeat;		/* the worker's last look at the registry */
	int			ncas;
	PgtlsCAIdentity cas[MAX_CAS];
	int64		count;
	bool		crls_known;		/* the CRL file was written since the server started */
	bool		crls_overflow;	/* it holds more of our CRLs than crls has room for */
	int			ncrls;
	PgtlsCrlIdentity crls[PGTLS_MAX_CRL_IDS];	/* our CRLs in it */
	bool		bundle_known;	/* the trust bundle was written since the server started */
	bool		bundle_overflow;	/* it holds more CAs than bundle has room for */
	int			nbundle;
	uint8		bundle[PGTLS_MAX_BUNDLE_CAS][PGTLS_CA_FP_BYTES];	/* SHA-256 of its CAs */
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
	int			nest;			/* transaction nest level that made it */
} QueuedChange;

static List *queued = NIL;
static int64 queued_adds = 0;	/* how many of them add a certificate */
static bool callback_registered = false;

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
		if (pgtls_hex_digit(hex[0]) < 0)
			return false;
		key->bytes[k++] = (uint8) pgtls_hex_digit(hex[0]);
		i = 1;
	}
	for (; i < n; i += 2)
	{
		if (pgtls_hex_digit(hex[i]) < 0 || pgtls_hex_digit(hex[i + 1]) < 0)
			return false;
		key->bytes[k++] = (uint8) (pgtls_hex_digit(hex[i]) << 4 | pgtls_hex_digit(hex[i + 1]));
	}
	key->len = (uint8) k;
	return true;
}

/* The 32 bytes of a SHA-256 fingerprint spelled "AB:CD:..." (colons optional). */
static bool
fingerprint_key(const char *hex, uint8 *out)
{
	int			k = 0;

	for (const char *p = hex; *p != '\0'; p++)
	{
		if (*p == ':')
			continue;
		if (k == 2 * FINGERPRINT_BYTES || pgtls_hex_digit(*p) < 0)
			return false;
		if (k % 2 == 0)
			out[k / 2] = (uint8) (pgtls_hex_digit(*p) << 4);
		else
			out[k / 2] |= (uint8) pgtls_hex_digit(*p);
		k++;
	}
	return k == 2 * FINGERPRINT_BYTES;
}

/* An entry for serial, live for role_oid until not_after; false if it cannot be one. */
static bool
make_entry(const char *serial, Oid role_oid, TimestampTz not_after, const char *fingerprint,
		   LiveEntry *e)
{
	memset(e, 0, sizeof(*e));
	e->role_oid = role_oid;
	e->not_after = not_after;
	return serial_key(serial, &e->key) &&
		(fingerprint == NULL || fingerprint_key(fingerprint, e->fingerprint));
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

/* Drop the entries expired by now; caller holds the lock exclusively. */
static int
sweep_expired(TimestampTz now)
{
	HASH_SEQ_STATUS seq;
	LiveEntry  *e;
	int			gone = 0;

	hash_seq_init(&seq, live_hash);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (e->not_after <= now &&
			hash_search(live_hash, &e->key, HASH_REMOVE, NULL) != NULL)
		{
			live->count--;
			gone++;
		}
	return gone;
}

/* Add or remove one certificate; caller holds the lock exclusively. */
static void
apply(const LiveEntry *e, bool add)
{
	bool		found;
	LiveEntry  *entry;

	if (!add)
	{
		if (hash_search(live_hash, &e->key, HASH_REMOVE, &found) && found)
			live->count--;
		return;
	}
	/*
	 * A full set is swept once: after a sweep that left no room the set has
	 * overflowed and the worker reloads it, so the next adds need not scan
	 * it again (a statement that issued more certificates than fit would
	 * otherwise scan the whole set once per certificate, holding the lock).
	 */
	if (live->count >= pgtls_max_certificates && !live->overflow &&
		hash_search(live_hash, &e->key, HASH_FIND, NULL) == NULL)
		sweep_expired(GetCurrentTimestamp());
	entry = live->count < pgtls_max_certificates ?
		hash_search(live_hash, &e->key, HASH_ENTER_NULL, &found) :
		hash_search(live_hash, &e->key, HASH_FIND, &found);
	if (entry == NULL)
	{
		live->overflow = true;
		return;
	}
	if (!found)
		live->count++;
	*entry = *e;
}

/*
 * Set the serial's state: live for role_oid until not_after with the
 * certificate whose SHA-256 fingerprint is fingerprint, or not (is_live
 * false).  A live entry whose fingerprint cannot be read is not live.
 */
void
pgtls_live_set(const char *serial, bool is_live, Oid role_oid, TimestampTz not_after,
			   const char *fingerprint)
{
	LiveEntry	e;

	if (live == NULL)
		return;
	if (!make_entry(serial, role_oid, not_after, is_live ? fingerprint : NULL, &e))
	{
		if (!serial_key(serial, &e.key))
			return;
		is_live = false;
	}
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	apply(&e, is_live);
	LWLockRelease(live->lock);
}

/*
 * A revocation was undone (its transaction or subtransaction rolled back)
 * after the CRL listed it: ask the worker to rewrite the CRL.  Safe in
 * transaction-end callbacks; a no-op without the shared set.
 */
void
pgtls_live_request_crl_rewrite(void)
{
	if (live == NULL)
		return;
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	live->crl_requested = true;
	LWLockRelease(live->lock);
}

/* The worker: was a rewrite requested since it last asked? */
bool
pgtls_live_take_crl_request(void)
{
	bool		requested;

	if (live == NULL)
		return false;
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	requested = live->crl_requested;
	live->crl_requested = false;
	LWLockRelease(live->lock);
	return requested;
}

/*
 * The CRL file was just replaced; ids[0..n-1] are the CRLs of our CAs it
 * holds (issuer name hash, identity): new logins compare the server's CRLs
 * with them (enforce.c).  More than PGTLS_MAX_CRL_IDS: those beyond are
 * not kept, and every issuer not found is checked (fail closed).  A no-op
 * without the shared set.
 */
void
pgtls_live_publish_crls(const PgtlsCrlIdentity *ids, int n)
{
	if (live == NULL)
		return;
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	live->crls_known = true;
	live->crls_overflow = n > PGTLS_MAX_CRL_IDS;
	live->ncrls = Min(n, PGTLS_MAX_CRL_IDS);
	memcpy(live->crls, ids, sizeof(PgtlsCrlIdentity) * live->ncrls);
	LWLockRelease(live->lock);
}

/*
 * The identities of the CRLs last written whose issuer name hashes to
 * issuer_hash, into ids (room for max); returns how many there are, or -1
 * when there is nothing to compare: no CRL file written since the server
 * started, or no CRL of ours for that issuer (a foreign CA's, or none).
 */
int
pgtls_live_crl_ids(unsigned long issuer_hash, uint8 (*ids)[PGTLS_CRL_ID_BYTES], int max)
{
	int			n = 0;
	bool		ours;

	if (live == NULL)
		return -1;
	LWLockAcquire(live->lock, LW_SHARED);
	for (int i = 0; i < live->ncrls; i++)
	{
		if (live->crls[i].issuer_hash != issuer_hash)
			continue;
		if (n < max)
			memcpy(ids[n], live->crls[i].id, PGTLS_CRL_ID_BYTES);
		n++;
	}
	ours = live->crls_known && (n > 0 || live->crls_overflow);
	LWLockRelease(live->lock);
	return ours ? Min(n, max) : -1;
}

/*
 * The trust bundle was just put in place; fps[0..n-1] are the SHA-256
 * fingerprints of every CA certificate it holds: a login whose chain has a
 * CA not among them is refused (enforce.c).  More than PGTLS_MAX_BUNDLE_CAS:
 * none is kept, and the hook reads the file.  A no-op without the shared set.
 */
void
pgtls_live_publish_bundle(const uint8 (*fps)[PGTLS_CA_FP_BYTES], int n)
{
	if (live == NULL)
		return;
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	live->bundle_known = true;
	live->bundle_overflow = n > PGTLS_MAX_BUNDLE_CAS;
	live->nbundle = live->bundle_overflow ? 0 : n;
	memcpy(live->bundle, fps, (Size) PGTLS_CA_FP_BYTES * live->nbundle);
	LWLockRelease(live->lock);
}

/*
 * Are fps[0..n-1] all among the CA fingerprints last published for the
 * trust bundle?  On PGTLS_BUNDLE_MISSING, *missing is the index of the first
 * that is not.
 */
PgtlsBundleVerdict
pgtls_live_bundle_holds(const uint8 (*fps)[PGTLS_CA_FP_BYTES], int n, int *missing)
{
	PgtlsBundleVerdict verdict = PGTLS_BUNDLE_HOLDS_ALL;

	if (live == NULL)
		return PGTLS_BUNDLE_UNKNOWN;
	LWLockAcquire(live->lock, LW_SHARED);
	if (!live->bundle_known)
		verdict = PGTLS_BUNDLE_UNKNOWN;
	else if (live->bundle_overflow)
		verdict = PGTLS_BUNDLE_OVERFLOW;
	for (int i = 0; verdict == PGTLS_BUNDLE_HOLDS_ALL && i < n; i++)
	{
		bool		found = false;

		for (int j = 0; j < live->nbundle && !found; j++)
			found = memcmp(fps[i], live->bundle[j], PGTLS_CA_FP_BYTES) == 0;
		if (!found)
		{
			verdict = PGTLS_BUNDLE_MISSING;
			*missing = i;
		}
	}
	LWLockRelease(live->lock);
	return verdict;
}

/* Has the set lost an entry for want of room (the worker then reloads it)? */
bool
pgtls_live_overflowed(void)
{
	bool		overflow;

	if (live == NULL)
		return false;
	LWLockAcquire(live->lock, LW_SHARED);
	overflow = live->overflow;
	LWLockRelease(live->lock);
	return overflow;
}

/*
 * Is there room for more live certificates besides those this transaction
 * adds already?  Expired entries are swept first when the set looks full.
 */
bool
pgtls_live_has_room(int64 more)
{
	bool		room;

	if (live == NULL)
		return true;
	more += queued_adds;
	LWLockAcquire(live->lock, LW_SHARED);
	room = live->count + more <= pgtls_max_certificates;
	LWLockRelease(live->lock);
	if (room)
		return true;
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	sweep_expired(GetCurrentTimestamp());
	room = live->count + more <= pgtls_max_certificates;
	LWLockRelease(live->lock);
	return room;
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
	int			gone;

	if (live == NULL)
		return 0;
	LWLockAcquire(live->lock, LW_EXCLUSIVE);
	gone = sweep_expired(now);
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

/*
 * The identity of the CA that issued cert, as cert names it: the hash of its
 * issuer name and its authority key id (empty when it has none).
 */
static void
identity_of_issuer(X509 *cert, PgtlsCAIdentity *id)
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

/*
 * Is a certificate naming issuer one of ours?  The server has verified the
 * chain, so its issuer's subject is that of a CA it trusts: a certificate
 * naming one of our CAs' subjects is ours whatever its authority key id
 * says (one without, made with a stolen key, is ours too), and so is one
 * naming one of our CAs' key ids.  Caller holds the lock.
 */
static bool
issued_by_ours(const PgtlsCAIdentity *issuer)
{
	for (int i = 0; i < live->ncas; i++)
		if (live->cas[i].name_hash == issuer->name_hash ||
			(issuer->keyid_len > 0 && live->cas[i].keyid_len == issuer->keyid_len &&
			 memcmp(live->cas[i].keyid, issuer->keyid, issuer->keyid_len) == 0))
			return true;
	return false;
}

/* What the login hook needs to know about cert in one look. */
PgtlsLiveVerdict
pgtls_live_check(X509 *cert, Oid *role_oid, TimestampTz *not_after, TimestampTz *heartbeat,
				 int64 *count)
{
	LiveKey		key;
	LiveEntry  *e;
	PgtlsLiveVerdict verdict = PGTLS_LIVE_NOT_OURS;
	PgtlsCAIdentity issuer;
	uint8		fingerprint[EVP_MAX_MD_SIZE];
	unsigned int fingerprint_len = 0;
	bool		ours;

	if (live == NULL)
		return PGTLS_LIVE_UNAVAILABLE;
	identity_of_issuer(cert, &issuer);
	if (X509_digest(cert, pgtls_md(PGTLS_SHA256), fingerprint, &fingerprint_len) != 1)
		fingerprint_len = 0;
	pgtls_ossl_clear();
	LWLockAcquire(live->lock, LW_SHARED);
	ours = issued_by_ours(&issuer);
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
		else if (!serial_key(pgtls_serial_hex(X509_get0_serialNumber(cert)), &key) ||
				 (e = hash_search(live_hash, &key, HASH_FIND, NULL)) == NULL)
			verdict = PGTLS_LIVE_UNKNOWN;
		else if (fingerprint_len != FINGERPRINT_BYTES ||
				 memcmp(e->fingerprint, fingerprint, FINGERPRINT_BYTES) != 0)
			verdict = PGTLS_LIVE_IMPOSTOR;
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

/*
 * Why pgtls_admin.enforce = registry refuses cert as a login of role (NULL:
 * it does not; also when the certificate is not the extension's or there is
 * no registry to enforce).  *verdict says what the set said.  The login
 * hook and pgtls_explain_login() both ask here.
 */
char *
pgtls_live_refusal(X509 *cert, const char *role, PgtlsLiveVerdict *verdict)
{
	char	   *serial = pgtls_serial_hex(X509_get0_serialNumber(cert));
	Oid			role_oid = InvalidOid;
	TimestampTz not_after = 0;
	TimestampTz heartbeat = 0;
	int64		count = 0;

	*verdict = pgtls_live_check(cert, &role_oid, &not_after, &heartbeat, &count);
	switch (*verdict)
	{
		case PGTLS_LIVE_UNAVAILABLE:
			return pstrdup("the library is not in shared_preload_libraries, so there is no registry to check against");
		case PGTLS_LIVE_NO_REGISTRY:
		case PGTLS_LIVE_NOT_OURS:
			return NULL;
		case PGTLS_LIVE_NOT_LOADED:
			return psprintf("the background worker has not loaded the registry yet; certificate %s cannot be checked", serial);
		case PGTLS_LIVE_OVERFLOW:
			return psprintf("the set of live certificates overflowed pgtls_admin.max_certificates (%d); the background worker reloads it, or raise the setting and restart",
							pgtls_max_certificates);
		case PGTLS_LIVE_UNKNOWN:
			return psprintf("certificate %s is not a live certificate of the registry (revoked, expired, never recorded, or made outside it with the CA's key)",
							serial);
		case PGTLS_LIVE_IMPOSTOR:
			return psprintf("certificate %s has the serial of a live certificate of the registry but is not that certificate (made outside the registry with the CA's key)",
							serial);
		case PGTLS_LIVE_FOUND:
			break;
	}
	if (TimestampDifferenceExceeds(heartbeat, GetCurrentTimestamp(), PGTLS_LIVE_HEARTBEAT_STALE_SECONDS * 1000))
		return psprintf("the background worker has not confirmed the registry since %s",
						heartbeat ? timestamptz_to_str(heartbeat) : "it started");
	if (role_oid != get_role_oid(role, true))
		return psprintf("certificate %s was issued for the role with OID %u, not for role \"%s\"",
						serial, role_oid, role);
	if (not_after <= GetCurrentTimestamp())
		return psprintf("certificate %s has expired", serial);
	return NULL;
}

/*
 * At commit, apply the transaction's changes; at abort, drop them; at
 * PREPARE TRANSACTION too: whoever runs COMMIT PREPARED, the worker then
 * sees the change in the registry.
 */
static void
live_xact_callback(XactEvent event, void *arg)
{
	ListCell   *lc;

	if (event != XACT_EVENT_COMMIT && event != XACT_EVENT_ABORT &&
		event != XACT_EVENT_PARALLEL_COMMIT && event != XACT_EVENT_PARALLEL_ABORT &&
		event != XACT_EVENT_PREPARE)
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
	queued_adds = 0;
}

static void
drop_queued_change(void *item)
{
	QueuedChange *q = item;

	queued_adds -= q->add;
	pfree(q);
}

/* A subtransaction that rolls back takes its changes with it. */
static void
live_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					  SubTransactionId parentSubid, void *arg)
{
	queued = pgtls_follow_subxact(queued, event, offsetof(QueuedChange, nest), drop_queued_change);
}

/*
 * At commit of this transaction, the serial becomes live (add) with the
 * certificate of SHA-256 fingerprint, or stops being live.  Nothing happens
 * without the shared set.
 */
void
pgtls_live_at_commit(const char *serial, bool add, Oid role_oid, TimestampTz not_after,
					 const char *fingerprint)
{
	QueuedChange *q;
	MemoryContext old;

	if (live == NULL)
		return;
	if (!callback_registered)
	{
		RegisterXactCallback(live_xact_callback, NULL);
		RegisterSubXactCallback(live_subxact_callback, NULL);
		callback_registered = true;
	}
	old = MemoryContextSwitchTo(TopMemoryContext);
	q = palloc0(sizeof(QueuedChange));
	if (!make_entry(serial, role_oid, not_after, add ? fingerprint : NULL, &q->entry))
	{
		pfree(q);
		MemoryContextSwitchTo(old);
		if (add)
			return;				/* the worker adds it from the registry */
		elog(ERROR, "serial \"%s\" cannot be a live certificate's", serial);
	}
	q->add = add;
	q->nest = GetCurrentTransactionNestLevel();
	queued = lappend(queued, q);
	queued_adds += add;
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

/* Bytes of shared memory the set takes, for the documentation and the benchmark. */
Size
pgtls_live_shmem_size(void)
{
	return live_size();
}
