/*
 * pgtls_stores.h
 *		The stores layer: where state lives.  The registry table (the only
 *		SPI in the extension), the CA files, roles, and the server's
 *		configuration (postgresql.auto.conf, reloads).
 */
#ifndef PGTLS_STORES_H
#define PGTLS_STORES_H

#include "pgtls_x509.h"

#include "access/htup.h"

struct TriggerData;

/* ---- src/registry.c: the pgtls_certificates table ---- */
typedef struct PgtlsRegistryRow
{
	char	   *kind;
	char	   *role;			/* NULL unless kind = client */
	Oid			role_oid;		/* the role's OID at issuance, or InvalidOid */
	List	   *san;			/* char *, "DNS:..." / "IP:..." */
	char	   *key_type;
	bool		revoked;
	char	   *subject;		/* as pgtls_name_text() printed it */
	TimestampTz not_before;
	TimestampTz not_after;
	char	   *fingerprint;	/* SHA-256, as pgtls_fingerprint_sha256() prints it */
} PgtlsRegistryRow;

/* A certificate that entered its expiry warning window. */
typedef struct PgtlsExpiring
{
	char	   *serial;
	char	   *kind;
	char	   *role;			/* NULL unless kind = client */
	TimestampTz not_after;
} PgtlsExpiring;

/* A registry row as the background worker follows it. */
typedef struct PgtlsRegistryChange
{
	char	   *serial;
	char	   *kind;			/* ca, server, client; "serial" for a bare revoked serial */
	Oid			role_oid;
	TimestampTz not_after;
	bool		revoked;
	char	   *fingerprint;	/* SHA-256 as the registry spells it; NULL for a bare serial */
	char	   *ends_sessions;	/* none, except_superusers, all; NULL: not said */
} PgtlsRegistryChange;

extern text *pgtls_registry_insert(X509 *cert, const char *kind, const char *role,
								   Oid role_oid, const char *key_type,
								   const char *issuer_fingerprint);
/* What recording a certificate of the journal as revoked came to. */
typedef enum PgtlsSettleResult
{
	PGTLS_SETTLE_RECORDED,		/* recorded now */
	PGTLS_SETTLE_PRESENT,		/* the registry records it already */
	PGTLS_SETTLE_HELD			/* another transaction is writing its row: not waited for */
} PgtlsSettleResult;

extern PgtlsSettleResult pgtls_registry_insert_uncommitted(X509 *cert, const char *kind, Oid role_oid,
														   const char *issuer_fingerprint,
														   TransactionId *holder);
extern bool pgtls_registry_revoke_unknown(const char *serial, const char *reason,
										  TimestampTz revoked_at);
extern void pgtls_registry_known(const char *const *serials, int n, bool *known);
extern int	pgtls_registry_lock_holder(void);
extern void pgtls_registry_flush(int depth);
extern Oid	pgtls_registry_relid(void);
extern HeapTuple pgtls_registry_merge_row(struct TriggerData *trigdata);
extern FullTransactionId pgtls_registry_changes(FullTransactionId since,
												void (*fn) (PgtlsRegistryChange *change, void *arg),
												void *arg);
extern bool pgtls_registry_revoke(const char *serial, const char *reason,
								  const char *ends_sessions);
extern List *pgtls_registry_revoked(void);
extern bool pgtls_registry_lookup(const char *serial, PgtlsRegistryRow *row);
extern bool pgtls_registry_lookup_locked(const char *serial, PgtlsRegistryRow *row);
extern TransactionId pgtls_registry_row_xmax(const char *serial);
extern List *pgtls_registry_self_descendants(const char *serial);
extern bool pgtls_registry_expiring(int days, int *count, TimestampTz *first);
extern int	pgtls_registry_role_replaced(char **first_serial, char **first_role);
extern void pgtls_registry_record_renewal(const char *serial, const char *previous);
extern List *pgtls_registry_expiry_due(int days);
extern int	pgtls_registry_tidy(int retain, int revoked_retain, const char *keep);
extern int	pgtls_registry_self_renewed(Oid role_oid, const char *role);

/* A CA the registry records (kind = 'ca') and its state. */
typedef struct PgtlsCARow
{
	char	   *fingerprint;	/* fingerprint_sha256, as issuer_fingerprint names it */
	char	   *serial;
	char	   *state;			/* next, active, previous, retired; NULL: none recorded */
	char	   *subject;
	TimestampTz not_before;
	TimestampTz not_after;
	char	   *certificate;	/* PEM */
	char	   *chain;			/* PEM of the certificates above it up to the root, or NULL */
	TimestampTz state_changed_at;
} PgtlsCARow;

/* What a CA still signs for. */
typedef struct PgtlsCAUse
{
	int			clients;		/* live client certificates */
	int			servers;		/* live server certificates */
	List	   *roles;			/* char *, the roles of the live client certificates */
	List	   *server_serials; /* char *, the serials of the live server certificates */
	TimestampTz last_expiry;	/* of its live certificates; 0: none */
	TimestampTz last_end;		/* when its last certificate ended or ends; 0: it issued none */
} PgtlsCAUse;

/* A CA of others the server trusts. */
typedef struct PgtlsTrustedRow
{
	char	   *fingerprint;
	char	   *subject;
	TimestampTz not_after;
	char	   *certificate;
	char	   *crl;			/* PEM, or NULL */
	TimestampTz crl_next_update;
	char	   *origin;			/* admin, chain */
} PgtlsTrustedRow;

typedef struct PgtlsStoredCrl
{
	char	   *fingerprint;
	char	   *pem;
} PgtlsStoredCrl;

extern List *pgtls_registry_cas(bool latest);
extern bool pgtls_ca_state_trusted(const char *state);
extern List *pgtls_trusted_ca_rows(List *rows);
extern void pgtls_registry_ca_set_state(const char *fingerprint, const char *state, const char *chain);
extern void pgtls_registry_ca_use(const char *fingerprint, PgtlsCAUse *use);
extern int	pgtls_registry_ca_revoke_all(const char *fingerprint, const char *reason);
extern List *pgtls_registry_trusted(bool latest);
extern void pgtls_registry_trust_put(X509 *cert, const char *crl_pem, TimestampTz crl_next_update,
									 const char *origin);
extern bool pgtls_registry_trust_delete(const char *fingerprint);
extern void pgtls_registry_crl_store(const char *fingerprint, const char *crl_pem,
									 TimestampTz this_update, TimestampTz next_update);
extern List *pgtls_registry_crls_stored(void);
extern char *pgtls_registry_trust_digest(bool stored, bool latest);
extern int	pgtls_registry_outliving(char **first_serial, char **ca_subject);

/* ---- src/journal.c: every certificate issued here, durable before it leaves ---- */

/* The longest serial an entry holds: 20 bytes (RFC 5280), in hex. */
#define PGTLS_JOURNAL_SERIAL_MAX 40

typedef struct PgtlsJournal PgtlsJournal;

typedef struct PgtlsJournalEntry
{
	FullTransactionId fxid;		/* the issuing transaction */
	Oid			registry;		/* the OID of the registry table it was issued into */
	char		kind;			/* 'c' client, 's' server */
	Oid			role_oid;
	char		serial[PGTLS_JOURNAL_SERIAL_MAX + 1];
	PgtlsJournal *journal;		/* read from; its certificate is read on demand */
	off_t		offset;			/* of its line in the file */
	int			len;			/* of its line, without the newline */
} PgtlsJournalEntry;

/* The journal as one read found it: its entries, oldest first. */
struct PgtlsJournal
{
	PgtlsJournalEntry *entries;
	int			n;
	/* private to journal.c: the file read, open until the context goes */
	int			fd;
	ino_t		ino;
	off_t		end;			/* bytes read, up to the last complete line */
	MemoryContextCallback close_cb;
};

/* What an entry still means. */
typedef enum PgtlsEntryFate
{
	PGTLS_ENTRY_UNSEEN,			/* not looked at yet */
	PGTLS_ENTRY_OPEN,			/* its transaction runs: keep */
	PGTLS_ENTRY_STRAY,			/* never recorded: in the CRL, to be recorded as revoked; keep */
	PGTLS_ENTRY_RECORDED,		/* the registry records it (a committed row): drop */
	PGTLS_ENTRY_GONE			/* recorded in a registry that was dropped since: drop */
} PgtlsEntryFate;

extern void pgtls_journal_issued(const char *serial, text *cert_pem, char kind, Oid role_oid);
extern void pgtls_journal_flush(void);
extern PgtlsJournal *pgtls_journal_load(void);
extern PgtlsJournalEntry *pgtls_journal_find(PgtlsJournal *j, const char *serial);
extern X509 *pgtls_journal_cert(PgtlsJournalEntry *e);
extern void pgtls_journal_fates(PgtlsJournal *j, int from, int to, PgtlsEntryFate *fates);
extern int	pgtls_journal_rewrite(PgtlsJournal *j, const PgtlsEntryFate *fates);
extern int	pgtls_journal_compact(void);
extern void pgtls_journal_compact_if_grown(void);
extern void pgtls_journal_orphan_strays(void);
extern List *pgtls_journal_strays(void);
extern List *pgtls_journal_add_strays(List *revoked);

/* ---- src/live.c: the shared-memory set of live client certificates ---- */

/* A CA as the certificates it issued name it (issuer name hash, authority key id). */
typedef struct PgtlsCAIdentity
{
	unsigned long name_hash;
	int			keyid_len;
	uint8		keyid[32];
} PgtlsCAIdentity;

/* A CRL of ours in the CRL file: its issuer's name hash and its identity (pgtls_crl_der_id). */
typedef struct PgtlsCrlIdentity
{
	unsigned long issuer_hash;
	uint8		id[PGTLS_CRL_ID_BYTES];	/* all zero: unknown, never matches */
} PgtlsCrlIdentity;

/* Our CRLs whose identities are kept: one per CA of ours the server trusts (next, active, previous). */
#define PGTLS_MAX_CRL_IDS 8

/* The CA certificates of the trust bundle kept by SHA-256; more sets the overflow flag. */
#define PGTLS_MAX_BUNDLE_CAS 32
#define PGTLS_CA_FP_BYTES 32

typedef enum PgtlsBundleVerdict
{
	PGTLS_BUNDLE_UNKNOWN,		/* nothing published since the server started, or no shared set */
	PGTLS_BUNDLE_OVERFLOW,		/* more CAs than kept: read the bundle file */
	PGTLS_BUNDLE_HOLDS_ALL,		/* every fingerprint asked about is in the bundle */
	PGTLS_BUNDLE_MISSING		/* one is not (its index returned) */
} PgtlsBundleVerdict;

typedef enum PgtlsWorkerState
{
	PGTLS_WORKER_STARTING,		/* not reported yet, or between registries */
	PGTLS_WORKER_NO_REGISTRY,	/* no database of the cluster holds a registry */
	PGTLS_WORKER_READY			/* following the registry */
} PgtlsWorkerState;

typedef enum PgtlsLiveVerdict
{
	PGTLS_LIVE_UNAVAILABLE,		/* no shared set: the library is not preloaded */
	PGTLS_LIVE_NO_REGISTRY,		/* no registry to enforce */
	PGTLS_LIVE_NOT_LOADED,		/* the worker has not (yet) loaded the registry */
	PGTLS_LIVE_NOT_OURS,		/* issued by a CA the extension does not manage */
	PGTLS_LIVE_OVERFLOW,		/* more live certificates than fit */
	PGTLS_LIVE_UNKNOWN,			/* ours, but not a live registry entry */
	PGTLS_LIVE_IMPOSTOR,		/* ours, a live entry's serial, another certificate */
	PGTLS_LIVE_FOUND
} PgtlsLiveVerdict;

extern void pgtls_live_install_hooks(void);
extern bool pgtls_live_available(void);
extern void pgtls_live_set(const char *serial, bool is_live, Oid role_oid, TimestampTz not_after,
						   const char *fingerprint);
extern void pgtls_live_reset(void);
extern int	pgtls_live_forget_expired(TimestampTz now);
extern void pgtls_live_publish(PgtlsWorkerState state, bool loaded, const PgtlsCAIdentity *cas,
							   int ncas);
/* A worker heartbeat older than this: registry-enforced logins fail closed. */
#define PGTLS_LIVE_HEARTBEAT_STALE_SECONDS 60

extern PgtlsLiveVerdict pgtls_live_check(X509 *cert, Oid *role_oid, TimestampTz *not_after,
										 TimestampTz *heartbeat, int64 *count);
extern void pgtls_live_at_commit(const char *serial, bool add, Oid role_oid, TimestampTz not_after,
								 const char *fingerprint);
extern bool pgtls_live_has_room(int64 more);
extern bool pgtls_live_overflowed(void);
extern void pgtls_live_request_crl_rewrite(void);
extern bool pgtls_live_take_crl_request(void);
extern void pgtls_live_publish_crls(const PgtlsCrlIdentity *ids, int n);
extern int	pgtls_live_crl_ids(unsigned long issuer_hash, uint8 (*ids)[PGTLS_CRL_ID_BYTES], int max);
extern void pgtls_live_publish_bundle(const uint8 (*fps)[PGTLS_CA_FP_BYTES], int n);
extern PgtlsBundleVerdict pgtls_live_bundle_holds(const uint8 (*fps)[PGTLS_CA_FP_BYTES], int n,
												  int *missing);
extern char *pgtls_live_refusal(X509 *cert, const char *role, PgtlsLiveVerdict *verdict);
extern void pgtls_ca_identity_of_ca(X509 *ca, PgtlsCAIdentity *id);
extern Size pgtls_live_shmem_size(void);

/* A client certificate that is neither revoked nor expired. */
typedef struct PgtlsLiveCert
{
	char	   *serial;
	char	   *role;
	char	   *pem;
} PgtlsLiveCert;
extern List *pgtls_registry_live_clients(void);

/* ---- src/statement.c: what waits for the end of a statement ---- */
extern void pgtls_statement_install_hooks(void);

/* ---- src/pending.c: revocations whose transaction has not ended ---- */
extern void pgtls_pending_add(const char *serial, const char *reason);
extern List *pgtls_pending_merge(List *revoked);
extern bool pgtls_pending_aborted(void);

/* ---- src/cluster.c: the one database that holds the cluster's registry ---- */
extern bool pgtls_registry_database(Oid *dboid);
extern void pgtls_registry_claim(void);
extern void pgtls_release_registry_if_dropped(void);

/* ---- src/ca_store.c: the extension's CA files ---- */
typedef struct PgtlsCA
{
	X509	   *cert;			/* owned by the current context */
	EVP_PKEY   *key;			/* NULL when only the certificate was loaded */
	text	   *pem;			/* the certificate's PEM */
	char	   *fingerprint;	/* its SHA-256 fingerprint, as the registry records issuers */
	char	   *chain_pem;		/* what follows a leaf it issued: the CA and the intermediates
								 * above it when it is an intermediate, "" for a root */
	char	   *upper_pem;		/* the certificates above it up to the root, "" for a root */
} PgtlsCA;

extern void pgtls_ca_load_cert(PgtlsCA *ca);
extern void pgtls_ca_load(PgtlsCA *ca);
extern bool pgtls_ca_try_load(PgtlsCA *ca);
extern void pgtls_ca_hold(X509 *cert, EVP_PKEY *key, const char *upper_pem);
extern void pgtls_check_ca_cert(X509 *cert, const char *what);
extern void pgtls_ca_lock(bool replace);
extern void pgtls_ca_stage(EVP_PKEY *key, X509 *cert, const char *upper_pem,
						   PgtlsStagedFile **key_file, PgtlsStagedFile **cert_file);
extern char *pgtls_chain_pem(X509 *ca, List *upper);

/* ---- src/ca_keyring.c: the keys of the CAs that are not the active one ---- */
extern char *pgtls_ca_keyring_path(const char *fingerprint, const char *ext);
extern bool pgtls_ca_keyring_has(const char *fingerprint);
extern EVP_PKEY *pgtls_ca_keyring_key(const char *fingerprint, X509 *cert);
extern void pgtls_ca_keyring_stage(EVP_PKEY *key, X509 *cert, const char *upper_pem,
								   PgtlsStagedFile **key_file, PgtlsStagedFile **cert_file);
extern void pgtls_ca_keyring_drop_at_commit(const char *fingerprint);
extern int	pgtls_ca_keyring_drop_retired(List *cas);
extern char *pgtls_ca_request_path(const char *ext);
extern void pgtls_ca_request_drop_at_commit(void);
extern void pgtls_ca_switch_mark(const char *fingerprint);
extern char *pgtls_ca_switch_path(void);
extern char *pgtls_ca_switch_marked(void);
extern void pgtls_ca_switch_unmark(void);

/* ---- src/roles.c: who may issue for whom ---- */
extern Oid	pgtls_check_issue_target(NameData *role, bool role_isnull);
extern void pgtls_require_superuser(const char *action);
extern void pgtls_check_revoke_target(const char *role_name, Oid role_oid);
extern bool pgtls_role_can_login(Oid roleid);

/* ---- src/server_config.c: postgresql.auto.conf and reloads ---- */
typedef struct PgtlsSetting
{
	char	   *name;
	char	   *value;
} PgtlsSetting;

extern List *pgtls_write_auto_conf(const char *const *names, const char *const *values, int n);
extern void pgtls_reload_server(void);
extern void pgtls_reload_server_after_files(void);
extern void pgtls_require_primary(const char *action);

#endif							/* PGTLS_STORES_H */
