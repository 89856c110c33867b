/*
 * settings.c
 *		The variables behind pgtls_admin's GUCs.  _PG_init (pgtls_admin.c)
 *		defines the settings; every layer reads them from here.
 */
#include "pgtls_base.h"

char	   *pgtls_ca_cert_file = NULL;
char	   *pgtls_ca_key_file = NULL;
char	   *pgtls_crl_file = NULL;
char	   *pgtls_ca_bundle_file = NULL;
int			pgtls_default_days = 365;
int			pgtls_max_days = 825;
int			pgtls_default_key_type = 0;
int			pgtls_expiry_warning_days = 30;
int			pgtls_debug_pause_at = 0;
int			pgtls_enforce = PGTLS_ENFORCE_CRL;
int			pgtls_crl_validity = 0;
int			pgtls_max_certificates = 100000;
int			pgtls_maintenance_interval = 60;
int			pgtls_server_renew_before = 30 * 86400;
int			pgtls_retain_expired = -1;
int			pgtls_max_self_renewed = 100;
