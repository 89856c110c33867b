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
							 bool replace);
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

/* ---- src/revoke.c: revocation and the CRL file ---- */
extern PgtlsStagedFile *pgtls_crl_stage(X509 *ca_cert, EVP_PKEY *ca_key);
extern void pgtls_crl_unlock(void);
extern int	pgtls_crl_publish(bool notice);
extern X509_CRL *pgtls_crl_file_read(void);
extern bool pgtls_revoke_serial(const char *serial, const char *reason);
extern bool pgtls_revoke_recorded(const char *serial, const char *reason, const PgtlsRegistryRow *row);
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
extern void pgtls_sessions_end_at_commit(const char *serial);

#endif							/* PGTLS_OPS_H */
