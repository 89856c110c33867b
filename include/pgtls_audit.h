/*
 * pgtls_audit.h
 *		Declarations for the audit: findings, pg_hba.conf rules and matching.
 *
 * Kept apart from pgtls_admin.h because it pulls in the server's pg_hba
 * structures (libpq/hba.h), which only the audit sources need.
 */
#ifndef PGTLS_AUDIT_H
#define PGTLS_AUDIT_H

#include "pgtls_admin.h"

#include <sys/socket.h>

#include "libpq/hba.h"

/* ---- src/audit.c: findings ---- */
typedef enum PgtlsSeverity
{
	PGTLS_SEV_CRITICAL,
	PGTLS_SEV_HIGH,
	PGTLS_SEV_MEDIUM,
	PGTLS_SEV_LOW,
	PGTLS_SEV_INFO
} PgtlsSeverity;

typedef struct PgtlsAudit
{
	List	   *findings;		/* PgtlsFinding * */
	int			rules_checked;
	int			files_checked;
} PgtlsAudit;

/* message and hint are palloc'd strings the audit keeps; file/rule may be NULL, line 0 */
extern void pgtls_finding(PgtlsAudit *audit, PgtlsSeverity severity, const char *check_id,
						  const char *file_name, int line_number, const char *rule,
						  char *message, char *hint);

extern List *pgtls_audit_run(void);
extern void pgtls_finding_values(void *finding, Datum *values, bool *nulls);

/* ---- src/hba.c: pg_hba.conf as the server reads it ---- */
typedef struct PgtlsHbaRule
{
	int			line;
	char	   *raw;			/* the line, secrets masked */
	char	   *error;			/* why the server rejects the line, or NULL */
	bool		warning;		/* parsed, but the server warned about it */
	HbaLine    *hba;			/* NULL when error is set */
} PgtlsHbaRule;

typedef struct PgtlsHbaFile
{
	const char *path;
	int			nrules;
	int			nerrors;
	PgtlsHbaRule *rules;
} PgtlsHbaFile;

/* A connection attempt, described the way check_hba() sees it. */
typedef struct PgtlsConnection
{
	const char *role;
	Oid			roleid;
	const char *database;
	bool		physical_replication;
	bool		local;			/* Unix-domain socket */
	struct sockaddr_storage addr;
	int			addrlen;
	bool		ssl;
	int			hostname_state; /* 0 not looked up, 1 known, -1 failed */
	char	   *hostname;
} PgtlsConnection;

extern PgtlsHbaFile *pgtls_hba_read(void);
extern int	pgtls_hba_find(PgtlsHbaFile *file, PgtlsConnection *conn);
extern const char *pgtls_hba_type_name(ConnType type);
extern List *pgtls_hba_options(HbaLine *hba);
extern const char *pgtls_hba_verdict(HbaLine *hba);
extern void pgtls_hba_audit(PgtlsHbaFile *file, PgtlsAudit *audit);
extern bool pgtls_hba_admits_cert(Oid roleid, const char *role);

/* ---- src/audit_tls.c: ssl settings, the files they name, the extension's CA ---- */
extern void pgtls_audit_settings(PgtlsAudit *audit);
extern X509 *pgtls_audit_extension_ca(PgtlsAudit *audit);
extern void pgtls_audit_server_files(PgtlsAudit *audit, X509 *our_ca);
extern X509 *pgtls_server_cert(void);

#endif							/* PGTLS_AUDIT_H */
