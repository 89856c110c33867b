/*
 * pgtls_audit.h
 *		The audit layer: findings, pg_hba.conf as the server reads and
 *		matches it, the rule audit, and the TLS settings and files.  It
 *		builds on the stores and x509 layers and never calls operations.
 *
 * Kept apart from the other headers because it pulls in the server's
 * pg_hba structures (libpq/hba.h), which only the audit sources need.
 */
#ifndef PGTLS_AUDIT_H
#define PGTLS_AUDIT_H

#include "pgtls_stores.h"

#include <sys/socket.h>

#include <openssl/ssl.h>

#include "libpq/hba.h"
#include "utils/inet.h"

/* ---- src/findings.c: the collector ---- */
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
extern void pgtls_findings_sort(PgtlsAudit *audit);
extern void pgtls_finding_values(void *finding, Datum *values, bool *nulls);

/* ---- src/audit.c: the driver ---- */
extern List *pgtls_audit_run(void);

/* ---- src/hba_read.c: pg_hba.conf as the server reads it ---- */
typedef struct PgtlsHbaRule
{
	int			line;
	char	   *raw;			/* the line, secrets masked */
	char	   *error;			/* why the server rejects the line, or NULL */
	bool		warning;		/* parsed, but the server warned about it */
	HbaLine    *hba;			/* NULL when error is set */
	List	   *secrets;		/* text to mask in anything said of the line */
	List	   *masked_options; /* option names set after a secret option */
} PgtlsHbaRule;

typedef struct PgtlsHbaFile
{
	const char *path;
	int			nrules;
	int			nerrors;
	PgtlsHbaRule *rules;
} PgtlsHbaFile;

#define PGTLS_MASK "********"

extern PgtlsHbaFile *pgtls_hba_read(void);
extern void *pgtls_build_in(MemoryContext cxt, void *(*build) (void));
extern PgtlsHbaFile *pgtls_hba_read_cached(void);
extern char *pgtls_hba_mask(const PgtlsHbaRule *rule, const char *text);
extern bool pgtls_token_is_keyword(AuthToken *t, const char *keyword);

/* ---- src/hba_match.c: which rule a connection hits (check_hba) ---- */

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

extern void pgtls_connection_set_address(PgtlsConnection *conn, inet *ip);
extern int	pgtls_hba_find(PgtlsHbaFile *file, PgtlsConnection *conn);
extern bool pgtls_hostname_matches(const char *pattern, const char *actual);
extern const char *pgtls_hba_type_name(ConnType type);
extern bool pgtls_hba_is_password_method(UserAuth method);
extern List *pgtls_hba_options(const PgtlsHbaRule *rule);
typedef struct PgtlsIdentFile PgtlsIdentFile;
extern bool pgtls_hba_match_role(PgtlsConnection *conn, List *tokens);
extern bool pgtls_hba_checks_cert_name(HbaLine *hba);
extern bool pgtls_hba_admits_identity(HbaLine *hba, PgtlsIdentFile *ident, const char *role,
									  const char *cn, const char *dn, int *ident_line, char **why);
typedef struct PgtlsAfterAuth
{
	char	   *walsender;		/* before authentication: no walsender slot at all */
	char	   *role;			/* each: the server's refusal, or NULL */
	char	   *replication;
	char	   *database;
} PgtlsAfterAuth;
extern void pgtls_after_auth_checks(const char *role, const char *database,
									bool physical_replication, PgtlsAfterAuth *out);
extern char *pgtls_refusal_after_auth(const char *role, const char *database,
									  bool physical_replication);
extern char *pgtls_hba_verdict(HbaLine *hba, PgtlsConnection *conn, PgtlsIdentFile *ident);


/* ---- src/hba_ident.c: pg_ident.conf and the user-name maps ---- */
struct PgtlsIdentFile
{
	const char *path;
	List	   *lines;			/* IdentLine *, the lines the server accepts */
	char	   *error;			/* first invalid line: the server rejects the file */
	int			error_line;
	bool		missing;		/* no file: the server has no maps */
};

extern PgtlsIdentFile *pgtls_ident_read(void);
extern PgtlsIdentFile *pgtls_ident_read_cached(void);
extern bool pgtls_ident_changed_since_reload(void);
extern bool pgtls_usermap_check(PgtlsIdentFile *file, const char *usermap, const char *pg_role,
								const char *system_user, int *line, char **why);
extern bool pgtls_usermap_exists(PgtlsIdentFile *file, const char *usermap);
extern int	pgtls_usermap_can_reach(PgtlsIdentFile *file, const char *usermap, const char *pg_role);
extern List *pgtls_usermap_roles(PgtlsIdentFile *file, const char *system_user);

/* ---- src/hba_admit.c: which lines let a certificate in as a role ---- */
extern char *pgtls_hba_cert_problem(Oid roleid, const char *role, const char *cn, const char *dn);
extern List *pgtls_cert_other_roles(const char *role, const char *cn, const char *dn);

/* ---- src/hba_ident_audit.c: findings about pg_ident.conf ---- */
extern void pgtls_audit_ident(PgtlsAudit *audit, PgtlsHbaFile *hba);

/* ---- src/hba_shadow.c: lines that can never match ---- */

/* An address of a rule, reduced to what containment needs. */
typedef enum PgtlsAddrKind
{
	ADDR_ALL,					/* "all", and local rules */
	ADDR_SAMEHOST,
	ADDR_SAMENET,
	ADDR_HOSTNAME,
	ADDR_PREFIX,				/* address/contiguous mask */
	ADDR_ODDMASK				/* address with a non-contiguous netmask */
} PgtlsAddrKind;

typedef struct PgtlsRuleAddr
{
	PgtlsAddrKind kind;
	int			family;			/* 0 = v4, 1 = v6 */
	int			plen;			/* leading one bits of the mask */
	uint8		addr[16];
	uint8		mask[16];
	const char *hostname;
} PgtlsRuleAddr;

extern void pgtls_rule_addr(HbaLine *hba, PgtlsRuleAddr *a);
extern bool pgtls_addr_is_world(const PgtlsRuleAddr *a);
extern bool pgtls_addr_is_local_only(HbaLine *hba, const PgtlsRuleAddr *a);

/* Connection kinds a rule can match (local, TLS, GSS-encrypted, plain). */
#define PGTLS_NKINDS 4

/* How far earlier rules cover a rule, kind by kind. */
typedef struct PgtlsReach
{
	bool		any_kind;		/* the rule accepts some kind of connection */
	bool		all_covered;	/* every kind it accepts is taken by earlier lines */
	int			nby;
	int			by[PGTLS_NKINDS];	/* the earliest covering line per covered kind */
	bool		plain_uncovered;	/* it accepts plain connections no earlier line takes */
} PgtlsReach;

typedef struct PgtlsShadow PgtlsShadow;
extern PgtlsShadow *pgtls_shadow_create(bool assume_ssl);
extern void pgtls_shadow_reach(PgtlsShadow *s, HbaLine *hba, const PgtlsRuleAddr *addr,
							   int line, PgtlsReach *reach);

/* ---- src/hba_audit.c: findings about the rules ---- */
extern void pgtls_hba_audit(PgtlsHbaFile *file, PgtlsAudit *audit);

/* ---- src/audit_tls.c: ssl settings, the files they name, the extension's CA ---- */
extern void pgtls_audit_settings(PgtlsAudit *audit);
extern X509 *pgtls_audit_extension_ca(PgtlsAudit *audit);
extern void pgtls_audit_server_files(PgtlsAudit *audit, X509 *our_ca);
extern X509 *pgtls_server_cert(void);

/* ---- src/audit_ca.c: the extension's CAs, their states, and the CAs of others ---- */
extern void pgtls_audit_cas(PgtlsAudit *audit);

/* ---- src/audit_crl.c: every CRL the server reads, per CA ---- */
extern void pgtls_audit_crls(PgtlsAudit *audit, X509 *our_ca, List *revoked,
							 const char *crl_data, size_t crl_len);
extern X509_STORE *pgtls_server_client_store(void);

typedef struct PgtlsCaCrl
{
	X509	   *ca;
	X509_CRL   *crl;			/* the CRL the server's store picks for ca */
} PgtlsCaCrl;
extern List *pgtls_server_ca_crls(void);

/* ---- src/metrics.c: the rows of pgtls_metrics that come from files ---- */
typedef struct PgtlsCrlTimes
{
	char	   *issuer;			/* the CA's subject */
	char	   *ca_fingerprint;	/* the CA certificate's SHA-256 fingerprint */
	TimestampTz this_update;
	bool		has_next_update;
	TimestampTz next_update;
} PgtlsCrlTimes;

extern bool pgtls_server_cert_times(PgtlsCertInfo *info);
extern List *pgtls_crl_times(void);

/* ---- src/audit_login.c: a certificate login, step by step ---- */
typedef struct PgtlsLoginStep
{
	const char *step;
	int			ok;				/* 1 passes, 0 fails, -1 cannot be judged or not reached */
	char	   *detail;
} PgtlsLoginStep;

extern List *pgtls_login_steps(List *certs, const char *role, const char *database,
							   inet *address, const char *host);

/* ---- src/audit_handshake.c: in-memory handshakes with the server's SSL_CTX ---- */
#define PGTLS_NVERSIONS 4		/* TLS 1.0, 1.1, 1.2, 1.3 */
extern const char *const pgtls_tls_version_names[PGTLS_NVERSIONS];

/* Classes of suites nobody should be offered. */
typedef enum PgtlsWeakClass
{
	PGTLS_WEAK_NULL,			/* no encryption */
	PGTLS_WEAK_ANON,			/* no server authentication */
	PGTLS_WEAK_LEGACY,			/* RC4, DES, 3DES, RC2, MD5, under 128 bits */
	PGTLS_NWEAK
} PgtlsWeakClass;

typedef struct PgtlsHandshake
{
	bool		ok;				/* the server completed the handshake */
	char		version[16];
	char		cipher[64];
	int			group;			/* NID of the key-exchange group; NID_undef for none */
	long		verify_result;	/* the server's verdict on a client certificate */
	char		server_error[128];	/* why the server failed, in OpenSSL's words */
	char		client_error[128];	/* what the client saw, e.g. the alert */
} PgtlsHandshake;

/* What the server's loader made of the current files, and what it negotiates. */
typedef struct PgtlsTlsProbe
{
	char	   *load_error;		/* the loader's first complaint, NULL when it loaded */
	char	   *load_warning;	/* what it logged although it loaded (a bad DH file) */
	bool		passphrase_needed;	/* the key wants a passphrase (never asked for) */
	SSL_CTX    *ctx;			/* the loaded context, NULL when it failed */
	int			security_level;
	int			min_version;	/* the context's range; 0 = OpenSSL's own bound */
	int			max_version;
	PgtlsHandshake libpq;		/* a libpq 15 client */
	PgtlsHandshake pinned[PGTLS_NVERSIONS];	/* a client offering everything, one version */
	int			nsuites;		/* suites enabled for the server's key */
	bool		library_has_legacy;	/* this OpenSSL has RC4, DES or 3DES suites at all */
	int			weak_listed[PGTLS_NWEAK];	/* of those, weak ones per class */
	PgtlsHandshake weak[PGTLS_NWEAK];	/* a client offering only that class */
	double		cost_ms;		/* what loading and probing took */
	bool		cached;			/* this answer came from the per-backend cache */
} PgtlsTlsProbe;

extern int	pgtls_tls_version_index(int version);
extern void pgtls_handshake(SSL_CTX *server_ctx, SSL_CTX *client_ctx, PgtlsHandshake *h);
extern void pgtls_negotiate(SSL_CTX *server_ctx, PgtlsTlsProbe *p);

/* ---- src/audit_probe.c: a trial run of the server's own SSL loader ---- */
extern const PgtlsTlsProbe *pgtls_tls_probe(void);

#endif							/* PGTLS_AUDIT_H */
