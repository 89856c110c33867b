/*
 * pgtls_stores.h
 *		The stores layer: where state lives.  The registry table (the only
 *		SPI in the extension), the CA files, roles, and the server's
 *		configuration (postgresql.auto.conf, reloads).
 */
#ifndef PGTLS_STORES_H
#define PGTLS_STORES_H

#include "pgtls_x509.h"

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
} PgtlsRegistryRow;

extern text *pgtls_registry_insert(X509 *cert, const char *kind, const char *role,
								   Oid role_oid, const char *key_type);
extern bool pgtls_registry_revoke(const char *serial, const char *reason);
extern List *pgtls_registry_revoked(void);
extern bool pgtls_registry_lookup(const char *serial, PgtlsRegistryRow *row);
extern bool pgtls_registry_expiring(int days, int *count, TimestampTz *first);

/* A client certificate that is neither revoked nor expired. */
typedef struct PgtlsLiveCert
{
	char	   *serial;
	char	   *role;
	char	   *pem;
} PgtlsLiveCert;
extern List *pgtls_registry_live_clients(void);

/* ---- src/pending.c: revocations whose transaction has not ended ---- */
extern void pgtls_pending_add(const char *serial, const char *reason);
extern List *pgtls_pending_merge(List *revoked);

/* ---- src/ca_store.c: the extension's CA files ---- */
typedef struct PgtlsCA
{
	X509	   *cert;			/* owned by the current context */
	EVP_PKEY   *key;			/* NULL when only the certificate was loaded */
	text	   *pem;			/* the certificate's PEM */
} PgtlsCA;

extern void pgtls_ca_load_cert(PgtlsCA *ca);
extern void pgtls_ca_load(PgtlsCA *ca);
extern void pgtls_check_ca_cert(X509 *cert, const char *what);
extern void pgtls_ca_lock(bool replace);
extern void pgtls_ca_stage(EVP_PKEY *key, X509 *cert, PgtlsStagedFile **key_file,
						   PgtlsStagedFile **cert_file);

/* ---- src/roles.c: who may issue for whom ---- */
extern Oid	pgtls_check_issue_target(NameData *role, bool role_isnull);
extern void pgtls_require_superuser(const char *action);
extern void pgtls_check_revoke_target(const char *role_name);
extern bool pgtls_role_can_login(Oid roleid);

/* ---- src/server_config.c: postgresql.auto.conf and reloads ---- */
typedef struct PgtlsSetting
{
	char	   *name;
	char	   *value;
} PgtlsSetting;

extern List *pgtls_write_auto_conf(const char *const *names, const char *const *values, int n);
extern void pgtls_reload_server(void);
extern void pgtls_require_primary(void);

#endif							/* PGTLS_STORES_H */
