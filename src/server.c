/*
 * server.c
 *		Server certificates and turning TLS on from SQL.
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
#include "pgtls_admin.h"

#include <dirent.h>
#include <signal.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <openssl/pem.h>
#include <openssl/x509_vfy.h>

#include "access/xact.h"
#include "access/xlog.h"
#include "common/file_perm.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/wait_event.h"

/*
 * Names are 1-253 characters of labels of letters, digits and hyphens; the
 * leftmost label may be "*" alone.
 */
static void
check_dns_name(const char *name)
{
	const char *p = name;
	int			label = 0;
	bool		ok = name[0] != '\0' && strlen(name) <= 253;

	if (ok && p[0] == '*' && p[1] == '.')
		p += 2;
	for (; ok && *p; p++)
	{
		if (*p == '.')
		{
			ok = label > 0 && p[-1] != '-';
			label = 0;
		}
		else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
				 (*p >= '0' && *p <= '9') || (*p == '-' && label > 0))
			ok = ++label <= 63;
		else
			ok = false;
	}
	if (!ok || label == 0 || p[-1] == '-')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid DNS name \"%s\"", name),
				 errhint("Use host names such as db.example.com; a wildcard is allowed only as the whole first label (*.example.com).")));
}

static GENERAL_NAME *
san_entry(int type, const unsigned char *data, int len)
{
	GENERAL_NAME *gn = GENERAL_NAME_new();
	ASN1_STRING *s = ASN1_STRING_type_new(type == GEN_DNS ? V_ASN1_IA5STRING : V_ASN1_OCTET_STRING);

	if (gn == NULL || s == NULL || ASN1_STRING_set(s, data, len) != 1)
	{
		GENERAL_NAME_free(gn);
		ASN1_STRING_free(s);
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, type, s);
	return gn;
}

/* Host names and addresses a server certificate can carry. */
void
pgtls_check_server_names(List *dns_names, List *addresses)
{
	ListCell   *lc;

	if (dns_names == NIL && addresses == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a server certificate needs at least one DNS name or IP address")));
	foreach(lc, dns_names)
		check_dns_name(lfirst(lc));
	foreach(lc, addresses)
	{
		inet	   *ip = lfirst(lc);

		if (ip_bits(ip) != (ip_family(ip) == PGSQL_AF_INET ? 32 : 128))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("IP address \"%s\" is a network, not a host address",
							DatumGetCString(DirectFunctionCall1(inet_out, PointerGetDatum(ip))))));
	}
}

/*
 * A server certificate: SAN with every DNS name and IP address, CN the
 * first DNS name (else the first address), EKU serverAuth.
 */
X509 *
pgtls_build_server_cert(List *dns_names, List *addresses, int days, EVP_PKEY *key,
						X509 *ca_cert, EVP_PKEY *ca_key)
{
	static const int ec_usage[] = {0};	/* digitalSignature */
	static const int rsa_usage[] = {0, 2};	/* + keyEncipherment for RSA key exchange */
	X509	   *cert;
	GENERAL_NAMES *san;
	ListCell   *lc;
	char	   *cn = NULL;
	bool		ok;

	pgtls_check_server_names(dns_names, addresses);
	cert = pgtls_new_cert(key, days, ca_cert);
	san = pgtls_own_general_names(sk_GENERAL_NAME_new_null());
	ok = san != NULL;
	foreach(lc, dns_names)
	{
		char	   *name = lfirst(lc);

		ok = ok && sk_GENERAL_NAME_push(san, san_entry(GEN_DNS, (unsigned char *) name, strlen(name))) > 0;
		if (cn == NULL)
			cn = name;
	}
	foreach(lc, addresses)
	{
		inet	   *ip = lfirst(lc);

		ok = ok && sk_GENERAL_NAME_push(san, san_entry(GEN_IPADD, ip_addr(ip), ip_addrsize(ip))) > 0;
		if (cn == NULL)
			cn = TextDatumGetCString(DirectFunctionCall1(network_host, PointerGetDatum(ip)));
	}
	/* a NULL pushed by a failed san_entry() is caught here */
	for (int i = 0; ok && i < sk_GENERAL_NAME_num(san); i++)
		ok = sk_GENERAL_NAME_value(san, i) != NULL;
	if (!ok ||
		X509_add1_ext_i2d(cert, NID_subject_alt_name, san, 0, X509V3_ADD_REPLACE) != 1 ||
		X509_NAME_add_entry_by_NID(X509_get_subject_name(cert), NID_commonName, MBSTRING_UTF8,
								   (unsigned char *) cn, -1, -1, 0) != 1)
		pgtls_ossl_raise(ERRCODE_INVALID_PARAMETER_VALUE, "could not build the server certificate");

	pgtls_add_basic_constraints(cert, false);
	if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA)
		pgtls_add_key_usage(cert, rsa_usage, lengthof(rsa_usage));
	else
		pgtls_add_key_usage(cert, ec_usage, lengthof(ec_usage));
	pgtls_add_eku(cert, NID_server_auth);
	pgtls_add_key_ids(cert, ca_cert);
	pgtls_sign(cert, ca_key);
	return cert;
}

/* Installing writes the registry and postgresql.auto.conf: not on a standby. */
void
pgtls_require_primary(void)
{
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot install a server certificate during recovery"),
				 errhint("Run it on the primary; a standby keeps the files and settings it was copied with.")));
}

/*
 * Everything the server will check when it loads the files, checked now:
 * the key matches, the certificate may serve TLS, is current, and chains to
 * the extension's CA (clients verify it against pgtls_ca_cert()) at
 * OpenSSL security level 2, which refuses SHA-1 signatures and short keys.
 */
static void
validate_server_cert(X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key, X509 *ca_cert)
{
	X509_STORE *store;
	X509_STORE_CTX *ctx;
	int			ok;
	int			err;

	if (X509_check_private_key(leaf, key) != 1)
	{
		pgtls_ossl_clear();
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("private_key does not match certificate")));
	}
	if (X509_check_purpose(leaf, X509_PURPOSE_SSL_SERVER, 0) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate is not usable as a TLS server certificate"),
				 errdetail("Its extendedKeyUsage or keyUsage does not allow serverAuth."),
				 errhint("Issue one with pgtls_issue_server().")));

	store = X509_STORE_new();
	ctx = X509_STORE_CTX_new();
	ok = store != NULL && ctx != NULL &&
		X509_STORE_add_cert(store, ca_cert) == 1 &&
		X509_STORE_CTX_init(ctx, store, leaf, chain) == 1;
	if (ok)
	{
		X509_VERIFY_PARAM_set_auth_level(X509_STORE_CTX_get0_param(ctx), 2);
		X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
		ok = X509_verify_cert(ctx) == 1;
	}
	err = ctx != NULL ? X509_STORE_CTX_get_error(ctx) : X509_V_ERR_OUT_OF_MEM;
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	pgtls_ossl_clear();
	if (!ok)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("certificate does not verify against the extension's CA"),
				 errdetail("OpenSSL: %s.", X509_verify_cert_error_string(err)),
				 errhint("Clients verify the server against pgtls_ca_cert(); install a certificate it issued, with any intermediates after it.")));
}

static PgtlsSetting *
make_setting(const char *name, const char *value)
{
	PgtlsSetting *setting = palloc(sizeof(PgtlsSetting));

	setting->name = pstrdup(name);
	setting->value = pstrdup(value);
	return setting;
}

static void
append_quoted(StringInfo buf, const char *value)
{
	appendStringInfoChar(buf, '\'');
	for (const char *p = value; *p; p++)
	{
		if (*p == '\'' || *p == '\\')
			appendStringInfoChar(buf, *p);
		appendStringInfoChar(buf, *p);
	}
	appendStringInfoChar(buf, '\'');
}

/*
 * Set names[i] = values[i] in postgresql.auto.conf in one atomic, durable
 * rewrite, under the lock ALTER SYSTEM takes, in the format it writes.
 * Returns a PgtlsSetting for each name whose value changed.
 */
static List *
write_auto_conf(const char *const *names, const char *const *values, int n)
{
	char	   *path = psprintf("%s/%s", DataDir, PG_AUTOCONF_FILENAME);
	ConfigVariable *head = NULL;
	ConfigVariable *tail = NULL;
	ConfigVariable *item;
	StringInfoData buf;
	List	   *changed = NIL;
	FILE	   *fp;
	int			i;

	LWLockAcquire(AutoFileLock, LW_EXCLUSIVE);
	fp = AllocateFile(path, "r");
	if (fp == NULL && errno != ENOENT)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not open file \"%s\": %m", path)));
	if (fp != NULL)
	{
		bool		parsed = ParseConfigFp(fp, path, 0, LOG, &head, &tail);

		FreeFile(fp);
		if (!parsed)
			ereport(ERROR,
					(errcode(ERRCODE_CONFIG_FILE_ERROR),
					 errmsg("could not parse contents of file \"%s\"", path)));
	}

	initStringInfo(&buf);
	appendStringInfoString(&buf, "# Do not edit this file manually!\n"
						   "# It will be overwritten by the ALTER SYSTEM command.\n");
	for (item = head; item != NULL; item = item->next)
	{
		for (i = 0; i < n; i++)
			if (pg_strcasecmp(item->name, names[i]) == 0)
				break;
		if (i < n)
		{
			if (strcmp(item->value, values[i]) != 0)
				changed = lappend(changed, make_setting(names[i], values[i]));
			continue;
		}
		appendStringInfo(&buf, "%s = ", item->name);
		append_quoted(&buf, item->value);
		appendStringInfoChar(&buf, '\n');
	}
	for (i = 0; i < n; i++)
	{
		bool		present = false;

		for (item = head; item != NULL; item = item->next)
			present |= pg_strcasecmp(item->name, names[i]) == 0;
		if (!present)
			changed = lappend(changed, make_setting(names[i], values[i]));
		appendStringInfo(&buf, "%s = ", names[i]);
		append_quoted(&buf, values[i]);
		appendStringInfoChar(&buf, '\n');
	}
	FreeConfigVariables(head);

	pgtls_commit_file(pgtls_stage_file(path, buf.data, buf.len, pg_file_create_mode));
	LWLockRelease(AutoFileLock);
	return changed;
}

/*
 * Ask the postmaster to reload, and return once it has begun: in
 * PostgreSQL 15 the postmaster forwards SIGHUP to its children from inside
 * its own handler, before it accepts another connection, so when our copy
 * arrives the next connection is served with the new configuration.
 */
void
pgtls_reload_server(void)
{
	int			waited_ms = 0;

	if (kill(PostmasterPid, SIGHUP) != 0)
		ereport(ERROR,
				(errmsg("could not send a reload signal to the postmaster: %m")));
	while (!ConfigReloadPending && waited_ms < 10000)
	{
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited_ms += 10;
	}
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

/* Test hook: pgtls_admin.debug_pause_at = N pauses step N of an install for 60 s. */
static void
debug_pause(int step)
{
	if (pgtls_debug_pause_at != step)
		return;
	elog(LOG, "pgtls_admin: paused at install step %d", step);
	(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 60000, PG_WAIT_EXTENSION);
}

/*
 * Install leaf (+ chain) and key as the server's TLS identity, with the
 * extension's CA as ssl_ca_file and its CRL as ssl_crl_file, turn ssl on
 * and reload.  Returns a PgtlsSetting for each setting whose value changed.
 */
List *
pgtls_install_server(X509 *leaf, STACK_OF(X509) *chain, EVP_PKEY *key,
					 X509 *ca_cert, EVP_PKEY *ca_key)
{
	const char *names[] = {"ssl", "ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file"};
	const char *values[lengthof(names)];
	char	   *serial = pgtls_serial_hex(X509_get0_serialNumber(leaf));
	char	   *cert_rel = psprintf("pgtls/server-%s.crt", serial);
	char	   *key_rel = psprintf("pgtls/server-%s.key", serial);
	BIO		   *cert_bio = pgtls_mem_bio(NULL, 0);
	text	   *key_pem;
	char	   *cert_pem;
	PgtlsStagedFile *staged[3];
	List	   *changed;
	List	   *keep;

	pgtls_require_primary();
	validate_server_cert(leaf, chain, key, ca_cert);

	if (PEM_write_bio_X509(cert_bio, leaf) != 1)
		pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the certificate");
	for (int i = 0; chain != NULL && i < sk_X509_num(chain); i++)
		if (PEM_write_bio_X509(cert_bio, sk_X509_value(chain, i)) != 1)
			pgtls_ossl_raise(ERRCODE_INTERNAL_ERROR, "could not encode the certificate chain");
	cert_pem = pgtls_bio_to_cstring(cert_bio);
	key_pem = pgtls_private_key_pem(key);

	staged[0] = pgtls_stage_file(pgtls_resolve_path(key_rel), VARDATA_ANY(key_pem),
								 VARSIZE_ANY_EXHDR(key_pem), 0600);
	staged[1] = pgtls_stage_file(pgtls_resolve_path(cert_rel), cert_pem, strlen(cert_pem), 0600);
	staged[2] = pgtls_crl_stage(ca_cert, ca_key);
	debug_pause(1);
	pgtls_commit_file(staged[0]);
	debug_pause(2);
	pgtls_commit_file(staged[1]);
	pgtls_commit_file(staged[2]);
	debug_pause(3);

	keep = list_make4(cert_rel, key_rel,
					  pstrdup(GetConfigOption("ssl_cert_file", false, false)),
					  pstrdup(GetConfigOption("ssl_key_file", false, false)));
	values[0] = "on";
	values[1] = cert_rel;
	values[2] = key_rel;
	/* ssl_*_file paths resolve against the data directory as ours do */
	values[3] = pgtls_ca_cert_file;
	values[4] = pgtls_crl_file;
	changed = write_auto_conf(names, values, lengthof(names));
	debug_pause(4);
	pgtls_reload_server();
	remove_unused_server_files(psprintf("%s/pgtls", DataDir), keep);
	return changed;
}
