/*
 * pgtls_ops.h
 *		The operations layer: what the SQL functions do, built on the
 *		stores and x509 layers.  Operations never call the audit.
 */
#ifndef PGTLS_OPS_H
#define PGTLS_OPS_H

#include "pgtls_stores.h"

/* ---- src/ca.c: create or adopt the CA ---- */
extern text *pgtls_ca_init(const char *subject, int days, PgtlsKeyType key_type,
						   bool replace);
extern text *pgtls_ca_import(const char *cert_pem, int cert_len,
							 const char *key_pem, int key_len,
							 bool replace, const char *function);
extern text *pgtls_ca_import_files(const char *cert_path, const char *key_path, bool replace);

/* ---- src/issue.c: client and server certificates ---- */

/* A certificate just issued and recorded, with what the caller returns. */
typedef struct PgtlsIssued
{
	X509	   *cert;
	text	   *cert_pem;		/* as recorded in the registry */
	EVP_PKEY   *key;			/* NULL when the caller holds the key (a request) */
	PgtlsCA		ca;				/* the CA that signed it */
} PgtlsIssued;

extern void pgtls_issue_client_cert(const char *role_name, Oid role_oid, PgtlsLifetime lifetime,
									PgtlsKeyType key_type, PgtlsIssued *out);
extern void pgtls_issue_client_cert_as(const char *role_name, Oid role_oid,
									   const X509_NAME *subject, PgtlsLifetime lifetime,
									   PgtlsKeyType key_type, PgtlsIssued *out);
extern void pgtls_issue_csr_cert(const char *role_name, Oid role_oid, const char *csr,
								 int csr_len, PgtlsLifetime lifetime, PgtlsIssued *out);
extern void pgtls_issue_csr_cert_as(const char *role_name, Oid role_oid, const X509_NAME *subject,
									const char *csr, int csr_len, PgtlsLifetime lifetime,
									PgtlsIssued *out);
extern void pgtls_issue_server_cert(List *dns_names, List *addresses, PgtlsLifetime lifetime,
									PgtlsKeyType key_type, PgtlsIssued *out);

/* ---- src/trust.c: the trust bundle (ssl_ca_file) and the CRLs (ssl_crl_file) ---- */
typedef struct PgtlsTrustFiles
{
	PgtlsStagedFile *crl;
	PgtlsStagedFile *bundle;	/* NULL: unchanged */
	int			listed;			/* serials the largest of our CRLs lists */
	List	   *missing;		/* char *, subjects of trusted CAs without a CRL */
	char	   *digest;			/* what the files were made from (pgtls_trust_changed) */
	int			ncrl_ids;		/* our CRLs in crl (only the first PGTLS_MAX_CRL_IDS kept) */
	PgtlsCrlIdentity crl_ids[PGTLS_MAX_CRL_IDS];	/* published at commit (live.c) */
	int			nca_fps;		/* CA certificates in the bundle (only the first PGTLS_MAX_BUNDLE_CAS kept) */
	uint8		ca_fps[PGTLS_MAX_BUNDLE_CAS][PGTLS_CA_FP_BYTES];	/* their SHA-256, published at commit */
} PgtlsTrustFiles;

extern void pgtls_trust_stage(X509 *extra_cert, EVP_PKEY *extra_key, bool store,
							  PgtlsTrustFiles *out);
extern void pgtls_trust_commit(PgtlsTrustFiles *files, bool keep_lock);
extern bool pgtls_server_uses_trust_files(void);
extern bool pgtls_server_reads_bundle(void);
extern int	pgtls_trust_publish(bool notice, bool store, char **digest);
extern text *pgtls_trust_crl_text(void);
extern bool pgtls_trust_changed(char **digest);
extern int	pgtls_trust_identities(PgtlsCAIdentity *ids, int max);
extern text *pgtls_ca_bundle_text(void);
extern void pgtls_trust_settings_check(const char *action);
extern List *pgtls_trust_settings_apply(void);

/* ---- src/trust_cas.c: CAs of others the server trusts ---- */
extern char *pgtls_trust_add_ca(const char *cert_pem, int cert_len, const char *crl_pem, int crl_len);
extern bool pgtls_trust_remove_ca(const char *fingerprint);
extern char *pgtls_check_ca_crl(X509 *ca, const char *pem, int len, const char *what,
								TimestampTz *next_update);
extern char *pgtls_normalize_fingerprint(const char *fingerprint);

/* ---- src/ca_states.c: the CAs and their states ---- */
typedef struct PgtlsCAStates
{
	List	   *rows;			/* PgtlsCARow *, every CA */
	PgtlsCARow *active;
	PgtlsCARow *next;
	List	   *previous;		/* PgtlsCARow * */
} PgtlsCAStates;

extern void pgtls_ca_read_states(PgtlsCAStates *s);
extern PgtlsCARow *pgtls_ca_find_row(List *rows, const char *fingerprint);
extern void pgtls_ca_set_state(const char *fingerprint, const char *state, const char *chain);
extern X509 *pgtls_ca_row_cert(PgtlsCARow *row);
extern void pgtls_commit_pair(PgtlsStagedFile *key_file, PgtlsStagedFile *cert_file);
extern void pgtls_ca_keep_outgoing(PgtlsCA *out);
extern void pgtls_ca_switch_files(X509 *cert, EVP_PKEY *key, const char *upper_pem);
extern void pgtls_ca_retire(PgtlsCARow *row, bool force, const char *action);
extern void pgtls_ca_drop_unused_chain(void);
extern void pgtls_ca_publish_trust(void);
extern void pgtls_ca_make_active(X509 *cert, EVP_PKEY *key, const char *upper_pem,
								 const char *why, bool keep_rotation);
extern void pgtls_ca_sync(void);
extern void pgtls_ca_require_active(PgtlsCA *ca);
extern void pgtls_ca_add_next(X509 *cert, EVP_PKEY *key, const char *upper_pem);
extern void pgtls_ca_require_no_rotation(void);
extern bool pgtls_ca_has_active(void);

/* ---- src/ca_rotate.c: the phases of a rotation ---- */
extern List *pgtls_ca_rotate_phase(const char *phase, bool force, const char *subject,
								   int days, const PgtlsKeyType *key_type);

/* ---- src/ca_intermediate.c: an intermediate CA under an offline root ---- */
extern text *pgtls_ca_make_request(const char *subject, PgtlsKeyType key_type);
extern text *pgtls_ca_adopt_chain(const char *pem, int len);
extern List *pgtls_ca_chain_checked(X509 *ca, List *certs, List *crls, const char *what);
extern void pgtls_ca_trust_chain(List *upper, List *crls);

/* ---- src/revoke.c: revocation and the CRL file ---- */
extern int	pgtls_crl_publish(bool notice);
extern X509_CRL *pgtls_crl_file_read(void);
extern bool pgtls_revoke_serial(const char *serial, const char *reason, bool terminate, List **also);
extern bool pgtls_revoke_recorded(const char *serial, const char *reason, const char *ends_sessions,
								  const PgtlsRegistryRow *row);
extern bool pgtls_revoke_unrecorded_serial(const char *serial, const char *reason);
extern text *pgtls_crl_text(void);

/* ---- src/refresh.c: the node's files kept equal to the registry ---- */
extern int	pgtls_settle_journal(void);
extern int	pgtls_compact_journal(void);
typedef struct PgtlsJournalWork PgtlsJournalWork;
extern PgtlsJournalWork *pgtls_journal_work_begin(MemoryContext parent);
extern bool pgtls_journal_work_step(PgtlsJournalWork *w, int count);
extern int	pgtls_journal_work_finish(PgtlsJournalWork *w, int *dropped, bool *unsettled);
extern int	pgtls_journal_work_size(PgtlsJournalWork *w);
extern void pgtls_journal_work_end(PgtlsJournalWork *w);
extern int	pgtls_crl_refresh(void);
extern int	pgtls_adopt_crl_revocations(void);

/* ---- src/enforce.c: registry-enforced logins ---- */
extern void pgtls_enforce_install_hook(void);

/* ---- src/install.c: the server's TLS identity ---- */
extern List *pgtls_install_server(X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key,
								  PgtlsCA *ca);
extern void pgtls_debug_pause(int step);
extern void pgtls_debug_pause_after_files(int step);
extern X509 *pgtls_install_pending_cert(void);

/* ---- src/renew.c: a new certificate like an old one ---- */
extern void pgtls_renew_cert(const char *serial, PgtlsLifetime lifetime, PgtlsIssued *out);
extern void pgtls_renew_server(const char *serial, const PgtlsRegistryRow *row,
							   PgtlsLifetime lifetime, PgtlsIssued *out);
extern X509_NAME *pgtls_renewal_subject(const PgtlsRegistryRow *row);
extern void pgtls_renewal_recorded(const char *previous, PgtlsIssued *out, const char *kind,
								   const char *role);

/* ---- src/notify.c: NOTIFY pgtls_admin, JSON payloads ---- */
extern void pgtls_notify_issued(X509 *cert, const char *kind, const char *role);
extern void pgtls_notify_renewed(X509 *cert, const char *previous, const char *kind,
								 const char *role);
extern void pgtls_notify_revoked(const char *serial, const char *kind, const char *role,
								 const char *reason);
extern void pgtls_notify_expiring(const PgtlsExpiring *e);

/* ---- src/maintain.c: pgtls_maintain(), what the worker runs every interval ---- */
typedef struct PgtlsAction
{
	char	   *action;			/* server_renewed, crl_resigned, expiry_warning, ... */
	char	   *detail;
} PgtlsAction;

extern List *pgtls_maintain_run(void);
extern TimestampTz pgtls_crl_next_update(void);
extern bool pgtls_crl_resign_due(TimestampTz next_update);

/* ---- src/renew_self.c: a certificate renewed over its own login ---- */
extern void pgtls_renew_self_install_hook(void);
extern void pgtls_renew_self_cert(const char *csr, int csr_len, const Interval *lifetime,
								  bool revoke_previous, PgtlsIssued *out);

/* ---- src/sessions.c: the sessions that logged in with a certificate ---- */
typedef struct PgtlsSessionCert
{
	int			pid;
	Oid			userid;
	char	   *serial;			/* as the registry spells it */
} PgtlsSessionCert;

extern List *pgtls_session_certs(bool fresh);
extern void pgtls_sessions_end_at_commit(const char *serial, bool superusers_too);
extern bool pgtls_sessions_end_holder(const char *serial, TransactionId xid);

#endif							/* PGTLS_OPS_H */
