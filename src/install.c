/*
 * install.c
 *		Installing a server certificate and turning TLS on from SQL.
 *
 * Installing a server certificate never leaves a configuration the server
 * cannot start or reload with.  Everything is validated first.  The
 * certificate and key are written under names no running configuration
 * uses (pgtls/server-<serial>.crt/.key), together with a fresh CRL, and only
 * then are the five ssl settings switched, in one atomic rewrite of
 * postgresql.auto.conf made the way ALTER SYSTEM makes it.  A crash at any
 * point leaves the old configuration with its files, or the new one with
 * all of its files.
 */
#include "pgtls_ops.h"

#include <dirent.h>

#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "access/xlog.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/wait_event.h"

/*
 * Everything the server will check when it loads the files, checked now:
 * the key matches, the certificate may serve TLS, is current, and chains to
 * one of the extension's CAs (clients verify it against pgtls_ca_cert()) at
 * OpenSSL security level 2, which refuses SHA-1 signatures and short keys.
 */
static void
validate_server_cert(X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key, List *roots)
{
	X509_STORE *store;
	X509_STORE_CTX *ctx;
	int			ok;
	int			err;
	ListCell   *lc;

	pgtls_require_key_match(leaf, key, ERRCODE_INVALID_PARAMETER_VALUE,
							"private_key does not match certificate");
	if (X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate is not usable as a TLS server certificate"),
				 errdetail("Its extendedKeyUsage or keyUsage does not allow serverAuth."),
				 errhint("Issue one with pgtls_issue_server().")));

	store = pgtls_own_store(X509_STORE_new());
	ctx = pgtls_own_store_ctx(X509_STORE_CTX_new());
	ok = store != NULL && ctx != NULL;
	foreach(lc, roots)
		ok = ok && X509_STORE_add_cert(store, lfirst(lc)) == 1;
	ok = ok && X509_STORE_CTX_init(ctx, store, leaf, chain) == 1;
	if (ok)
	{
		X509_VERIFY_PARAM_set_auth_level(X509_STORE_CTX_get0_param(ctx), 2);
		X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
		ok = X509_verify_cert(ctx) == 1;
	}
	err = ctx != NULL ? X509_STORE_CTX_get_error(ctx) : X509_V_ERR_OUT_OF_MEM;
	pgtls_ossl_clear();
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate does not verify against the extension's CA"),
				 errdetail("OpenSSL: %s.", X509_verify_cert_error_string(err)),
				 errhint("Clients verify the server against pgtls_ca_cert(); install a certificate it issued, with any intermediates after it.")));
}

/*
 * After a switch, delete server certificates and keys this extension wrote
 * that neither the new configuration nor the one it replaced names: the
 * replaced pair is kept so an admin can switch back by hand.
 */
static void
remove_unused_server_files(const char *dir, List *keep)
{
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;

	while ((de = ReadDirExtended(d, dir, LOG)) != NULL)
	{
		char	   *rel = psprintf("pgtls/%s", de->d_name);
		bool		kept = false;
		ListCell   *lc;
		size_t		len = strlen(de->d_name);

		if (strncmp(de->d_name, "server-", 7) != 0 || len < 11 ||
			(strcmp(de->d_name + len - 4, ".crt") != 0 && strcmp(de->d_name + len - 4, ".key") != 0))
			continue;
		foreach(lc, keep)
			kept |= lfirst(lc) != NULL && strcmp(lfirst(lc), rel) == 0;
		if (!kept)
			unlink(psprintf("%s/%s", dir, de->d_name));
	}
	FreeDir(d);
}

/*
 * Test hook: pgtls_admin.debug_pause_at = N pauses step N for 60 s (1-4: an
 * install; 11-12: the switch of the active CA, ca_rotate.c).
 */
void
pgtls_debug_pause(int step)
{
	if (pgtls_debug_pause_at != step)
		return;
	elog(LOG, "pgtls_admin: paused at install step %d", step);
	(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 60000, PG_WAIT_EXTENSION);
}

/*
 * The CAs a ssl_ca_file of the administrator's own trusted that the trust
 * bundle does not: say so, since the install makes the bundle ssl_ca_file.
 */
static void
warn_dropped_cas(const char *bundle_pem)
{
	const char *current = GetConfigOption("ssl_ca_file", true, false);
	PgtlsFileRead f;
	ListCell   *lc;

	if (current == NULL || current[0] == '\0' ||
		strcmp(pgtls_resolve_path(current), pgtls_resolve_path(pgtls_ca_bundle_file)) == 0 ||
		strcmp(pgtls_resolve_path(current), pgtls_resolve_path(pgtls_ca_cert_file)) == 0 ||
		!pgtls_try_read_file(pgtls_resolve_path(current), false, &f))
		return;
	foreach(lc, pgtls_read_cert_list(f.data, (int) f.len))
	{
		char	   *pem = text_to_cstring(pgtls_cert_pem(lfirst(lc)));

		if (strstr(bundle_pem, pem) == NULL)
			ereport(WARNING,
					(errmsg("ssl_ca_file \"%s\" trusted CA \"%s\", which the trust bundle does not hold",
							current, pgtls_name_text(X509_get_subject_name(lfirst(lc)))),
					 errdetail("ssl_ca_file is now \"%s\": client certificates of that CA are refused.",
							   pgtls_ca_bundle_file),
					 errhint("Trust it again with pgtls_trust_add(certificate, crl).")));
	}
}

/*
 * Install leaf (+ chain; without one, the chain of the CA that issued it)
 * and key as the server's TLS identity, with the trust bundle as
 * ssl_ca_file and the CRLs as ssl_crl_file, turn ssl on and reload.
 * Returns a PgtlsSetting for each setting whose value changed.
 */
List *
pgtls_install_server(X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key, PgtlsCA *ca)
{
	const char *names[] = {"ssl", "ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file"};
	const char *values[lengthof(names)];
	char	   *serial = pgtls_serial_hex(X509_get0_serialNumber(leaf));
	char	   *cert_rel = psprintf("pgtls/server-%s.crt", serial);
	char	   *key_rel = psprintf("pgtls/server-%s.key", serial);
	BIO		   *cert_bio = pgtls_mem_bio(NULL, 0);
	text	   *key_pem;
	char	   *cert_pem;
	char	   *roots_pem = text_to_cstring(pgtls_ca_bundle_text());
	PgtlsStagedFile *staged[2];
	PgtlsTrustFiles trust;
	List	   *changed;
	List	   *keep;

	validate_server_cert(leaf, chain, key, pgtls_read_cert_list(roots_pem, (int) strlen(roots_pem)));

	if (PEM_write_bio_X509(cert_bio, leaf) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the certificate");
	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
		if (PEM_write_bio_X509(cert_bio, sk_X509_value(chain, i)) != 1)
			pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the certificate chain");
	cert_pem = pgtls_bio_to_cstring(cert_bio);
	/* issued by an intermediate CA of ours: the file carries it for clients that trust the root */
	if ((chain == NULL || sk_X509_num(chain) == 0) && X509_check_issued(ca->cert, leaf) == X509_V_OK)
		cert_pem = psprintf("%s%s", cert_pem, ca->chain_pem);
	pgtls_ossl_clear();
	key_pem = pgtls_private_key_pem(key);
	warn_dropped_cas(roots_pem);

	staged[0] = pgtls_stage_file(pgtls_resolve_path(key_rel), VARDATA_ANY(key_pem),
								 VARSIZE_ANY_EXHDR(key_pem), 0600);
	staged[1] = pgtls_stage_file(pgtls_resolve_path(cert_rel), cert_pem, strlen(cert_pem), 0600);
	pgtls_trust_stage(ca->cert, ca->key, !RecoveryInProgress(), &trust);
	pgtls_debug_pause(1);
	pgtls_commit_file(staged[0]);
	pgtls_debug_pause(2);
	pgtls_commit_file(staged[1]);
	pgtls_trust_commit(&trust, false);
	pgtls_debug_pause(3);

	keep = list_make4(cert_rel, key_rel,
					  pstrdup(GetConfigOption("ssl_cert_file", false, false)),
					  pstrdup(GetConfigOption("ssl_key_file", false, false)));
	values[0] = "on";
	values[1] = cert_rel;
	values[2] = key_rel;
	/* ssl_*_file paths resolve against the data directory as ours do */
	values[3] = pgtls_ca_bundle_file;
	values[4] = pgtls_crl_file;
	changed = pgtls_write_auto_conf(names, values, lengthof(names));
	pgtls_debug_pause(4);
	pgtls_reload_server();
	remove_unused_server_files(psprintf("%s/pgtls", DataDir), keep);
	return changed;
}
