/*
 * audit_crl.c
 *		Every CRL the server reads, judged the way its certificate store
 *		chooses them: ssl_crl_file and ssl_crl_dir, per CA.
 *
 * The store is built with the calls be_tls_init() makes
 * (X509_STORE_load_locations on ssl_ca_file, then on ssl_crl_file and
 * ssl_crl_dir, with CRL_CHECK and CRL_CHECK_ALL), so OpenSSL's own lookup
 * decides which CRLs a CA has: the file's CRLs and the hashed directory's
 * "<hash>.r<n>" files together.  With CRL_CHECK_ALL every CA a client chain
 * can reach, the root included, needs a current CRL; among several CRLs of
 * one CA a current one wins over an expired one.  Then the files are read
 * again one by one to explain what the server ignores (misnamed or
 * unreachable files in the directory) and what it did not expect to trust
 * (certificates in the CRL file or directory become trusted CAs).
 */
#include "pgtls_audit.h"

#include <dirent.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "libpq/libpq.h"
#include "storage/fd.h"
#include "utils/timestamp.h"

/* A CRL found on disk, and where. */
typedef struct DiskCrl
{
	X509_CRL   *crl;
	char	   *origin;			/* file name, for messages */
} DiskCrl;

static bool
is_set_setting(const char *value)
{
	return value != NULL && value[0] != '\0';
}

static void
free_crl_stack(void *p)
{
	sk_X509_CRL_pop_free(p, X509_CRL_free);
}

static void
free_info_stack(void *p)
{
	sk_X509_INFO_pop_free(p, X509_INFO_free);
}

static const char *
where_crl(List *disk, X509_CRL *crl)
{
	ListCell   *lc;

	foreach(lc, disk)
	{
		DiskCrl    *d = lfirst(lc);

		if (X509_CRL_match(d->crl, crl) == 0)
			return d->origin;
	}
	return "ssl_crl_file or ssl_crl_dir";
}

/* The store the server builds for client certificates, or NULL when it cannot be built. */
static X509_STORE *
server_store(void)
{
	X509_STORE *store = pgtls_own_store(X509_STORE_new());
	char	   *crl_file = is_set_setting(ssl_crl_file) ? pgtls_resolve_path(ssl_crl_file) : NULL;
	char	   *crl_dir = is_set_setting(ssl_crl_dir) ? pgtls_resolve_path(ssl_crl_dir) : NULL;

	if (store == NULL)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not allocate a certificate store");
	if (is_set_setting(ssl_ca_file) &&
		X509_STORE_load_locations(store, pgtls_resolve_path(ssl_ca_file), NULL) != 1)
	{
		pgtls_ossl_clear();
		return NULL;
	}
	if (crl_file != NULL || crl_dir != NULL)
	{
		if (X509_STORE_load_locations(store, crl_file, crl_dir) != 1)
		{
			pgtls_ossl_clear();
			return NULL;
		}
		X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	}
	pgtls_ossl_clear();
	return store;
}

X509_STORE *
pgtls_server_client_store(void)
{
	return server_store();
}

/* The CA certificates in the store, before any lookup adds CRLs to it. */
static List *
store_cas(X509_STORE *store)
{
	STACK_OF(X509_OBJECT) *objs = X509_STORE_get0_objects(store);
	List	   *cas = NIL;
	int			i;

	for (i = 0; i < sk_X509_OBJECT_num(objs); i++)
	{
		X509	   *x = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objs, i));

		if (x != NULL && X509_check_ca(x) > 0 && X509_up_ref(x) == 1)
			cas = lappend(cas, pgtls_own_x509(x));
	}
	return cas;
}

typedef enum CrlState
{
	CRL_NONE,					/* no CRL names this CA as issuer */
	CRL_BAD_SIGNATURE,			/* some do, none signed by it */
	CRL_CURRENT,
	CRL_EXPIRED,
	CRL_NOT_YET_VALID
} CrlState;

/* The CRL the server will use for ca (best first: current, then newest), and its state. */
static CrlState
best_crl(X509_STORE *store, X509 *ca, X509_CRL **best_out)
{
	X509_STORE_CTX *v = pgtls_own_store_ctx(X509_STORE_CTX_new());
	STACK_OF(X509_CRL) *crls;
	X509_CRL   *best = NULL;
	CrlState	best_state = CRL_NONE;
	bool		any = false;
	int			i;

	*best_out = NULL;
	if (v == NULL || X509_STORE_CTX_init(v, store, NULL, NULL) != 1)
		pgtls_ossl_raise(ERRCODE_OUT_OF_MEMORY, "could not set up certificate verification");
	crls = pgtls_own(X509_STORE_CTX_get1_crls(v, X509_get_subject_name(ca)), free_crl_stack);
	pgtls_ossl_clear();
	for (i = 0; crls != NULL && i < sk_X509_CRL_num(crls); i++)
	{
		X509_CRL   *crl = sk_X509_CRL_value(crls, i);
		const ASN1_TIME *next = X509_CRL_get0_nextUpdate(crl);
		CrlState	state;

		any = true;
		if (X509_CRL_verify(crl, X509_get0_pubkey(ca)) != 1)
			continue;
		if (X509_cmp_time(X509_CRL_get0_lastUpdate(crl), NULL) > 0)
			state = CRL_NOT_YET_VALID;
		else if (next != NULL && X509_cmp_time(next, NULL) <= 0)
			state = CRL_EXPIRED;
		else
			state = CRL_CURRENT;
		if (best == NULL ||
			(state == CRL_CURRENT && best_state != CRL_CURRENT) ||
			(state == best_state &&
			 ASN1_TIME_compare(X509_CRL_get0_lastUpdate(crl), X509_CRL_get0_lastUpdate(best)) > 0))
		{
			best = crl;
			best_state = state;
		}
	}
	pgtls_ossl_clear();
	if (best == NULL)
		return any ? CRL_BAD_SIGNATURE : CRL_NONE;
	if (X509_CRL_up_ref(best) == 1)
		*best_out = pgtls_own_crl(best);
	return best_state;
}

static void
check_ca_crl(PgtlsAudit *audit, X509_STORE *store, X509 *ca, List *disk)
{
	X509_CRL   *crl;
	CrlState	state = best_crl(store, ca, &crl);
	char	   *name = pgtls_name_text(X509_get_subject_name(ca));
	const char *hint = "Publish a current CRL signed by that CA in ssl_crl_file or ssl_crl_dir (for the pgtls_admin CA, pgtls_revoke() and pgtls_crl() write one), then reload.";

	switch (state)
	{
		case CRL_CURRENT:
			return;
		case CRL_NONE:
			pgtls_finding(audit, PGTLS_SEV_CRITICAL, "crl.missing", NULL, 0, NULL,
						  psprintf("CRL checking is on, but neither ssl_crl_file nor ssl_crl_dir holds a CRL of the trusted CA \"%s\": every client certificate that chains through it fails (\"unable to get certificate CRL\")", name),
						  pstrdup(hint));
			return;
		case CRL_BAD_SIGNATURE:
			pgtls_finding(audit, PGTLS_SEV_CRITICAL, "crl.bad_signature", NULL, 0, NULL,
						  psprintf("the CRLs naming CA \"%s\" as issuer are not signed by its key: every client certificate that chains through it fails (\"CRL signature failure\")", name),
						  pstrdup(hint));
			return;
		case CRL_EXPIRED:
			pgtls_finding(audit, PGTLS_SEV_CRITICAL, "crl.expired", where_crl(disk, crl), 0, NULL,
						  psprintf("the newest CRL of CA \"%s\" (in \"%s\") expired on %s: every client certificate login under it fails (\"certificate expired\")",
								   name, where_crl(disk, crl),
								   timestamptz_to_str(pgtls_asn1_time_to_timestamptz(X509_CRL_get0_nextUpdate(crl)))),
						  pstrdup(hint));
			return;
		case CRL_NOT_YET_VALID:
			pgtls_finding(audit, PGTLS_SEV_CRITICAL, "crl.not_yet_valid", where_crl(disk, crl), 0, NULL,
						  psprintf("the CRL of CA \"%s\" (in \"%s\") is not valid before %s: every client certificate under it fails (\"CRL is not yet valid\")",
								   name, where_crl(disk, crl),
								   timestamptz_to_str(pgtls_asn1_time_to_timestamptz(X509_CRL_get0_lastUpdate(crl)))),
						  pstrdup("Check the clock of this machine and of the machine that issued the CRL."));
			return;
	}
}

/*
 * Each CA of the store the server verifies client certificates with that
 * has a CRL signed by it, with the CRL the store picks (for pgtls_metrics).
 * NIL when CRL checking is off or the files do not load.
 */
List *
pgtls_server_ca_crls(void)
{
	X509_STORE *store;
	List	   *result = NIL;
	ListCell   *lc;

	if (!is_set_setting(ssl_crl_file) && !is_set_setting(ssl_crl_dir))
		return NIL;
	store = server_store();
	if (store == NULL)
		return NIL;
	foreach(lc, store_cas(store))
	{
		PgtlsCaCrl *c = palloc(sizeof(PgtlsCaCrl));

		c->ca = lfirst(lc);
		(void) best_crl(store, c->ca, &c->crl);
		if (c->crl != NULL)
			result = lappend(result, c);
	}
	return result;
}

/*
 * Revocations recorded by pgtls_revoke() that the CRL the server uses for
 * one of our CAs lacks: those of certificates it issued, and those whose
 * issuer is no CA the registry knows.
 */
static void
check_registry(PgtlsAudit *audit, X509_STORE *store, X509 *our_ca, List *revoked, List *disk,
			   List *cas)
{
	X509_CRL   *crl;
	CrlState	state = best_crl(store, our_ca, &crl);
	char	   *fingerprint = pgtls_fingerprint_sha256(our_ca);
	ListCell   *lc;
	List	   *serials = NIL;
	int			missing;
	char	   *first;

	if (crl == NULL || state != CRL_CURRENT)
		return;					/* check_ca_crl says what is wrong, if the CA is trusted */
	foreach(lc, revoked)
	{
		PgtlsRevoked *r = lfirst(lc);
		bool		other = false;
		ListCell   *lc2;

		foreach(lc2, cas)
			other |= r->issuer != NULL && strcmp(r->issuer, fingerprint) != 0 &&
				strcmp(r->issuer, ((PgtlsCARow *) lfirst(lc2))->fingerprint) == 0;
		if (!other)
			serials = lappend(serials, r->serial);
	}
	missing = pgtls_crl_missing(crl, serials, &first);
	if (missing > 0)
		pgtls_finding(audit, PGTLS_SEV_CRITICAL, "ca.crl_stale", where_crl(disk, crl), 0, NULL,
					  psprintf("%d certificate%s revoked in the registry %s not in the CRL the server uses for the pgtls_admin CA (\"%s\"; first missing serial %s), so %s still accepted",
							   missing, missing == 1 ? "" : "s", missing == 1 ? "is" : "are", where_crl(disk, crl), first,
							   missing == 1 ? "it is" : "they are"),
					  strcmp(where_crl(disk, crl), pgtls_resolve_path(pgtls_crl_file)) == 0 ?
					  pstrdup("Run SELECT pgtls_refresh_crl(); on this node (it works on a standby too), and preload the library (shared_preload_libraries = 'pgtls_admin') so its background worker keeps the CRL current.") :
					  psprintf("Point ssl_crl_file at pgtls_admin.crl_file (%s), run SELECT pgtls_refresh_crl(); and reload.",
							   pgtls_crl_file));
}

/* ---------------------------------------------------------------------
 * The files one by one
 * --------------------------------------------------------------------- */

/* Every CRL and certificate in PEM data; counts certificates and notes their subjects. */
static List *
read_pem_objects(const char *data, size_t len, const char *origin, List **certs)
{
	BIO		   *bio = pgtls_mem_bio(data, (int) len);
	STACK_OF(X509_INFO) *infos = pgtls_own(PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL), free_info_stack);
	List	   *crls = NIL;
	int			i;

	pgtls_ossl_clear();
	for (i = 0; infos != NULL && i < sk_X509_INFO_num(infos); i++)
	{
		X509_INFO  *info = sk_X509_INFO_value(infos, i);

		if (info->crl != NULL && X509_CRL_up_ref(info->crl) == 1)
		{
			DiskCrl    *d = palloc(sizeof(DiskCrl));

			d->crl = pgtls_own_crl(info->crl);
			d->origin = pstrdup(origin);
			crls = lappend(crls, d);
		}
		if (info->x509 != NULL && certs != NULL)
			*certs = lappend(*certs, pgtls_name_text(X509_get_subject_name(info->x509)));
	}
	return crls;
}

static void
trusted_by_accident(PgtlsAudit *audit, const char *path, List *subjects, const char *setting)
{
	ListCell   *lc;

	foreach(lc, subjects)
		pgtls_finding(audit, PGTLS_SEV_MEDIUM, "crl.trusts_certificate", path, 0, NULL,
					  psprintf("%s \"%s\" holds the certificate \"%s\": the server loads it into the store it verifies client certificates with, so it is trusted like a CA in ssl_ca_file",
							   setting, path, (char *) lfirst(lc)),
					  psprintf("Keep only CRLs in %s; put CA certificates that should sign client certificates in ssl_ca_file.", setting));
}

static bool
hashed_name(const char *name, unsigned long *hash, char *type, int *suffix)
{
	char		tail;
	int			n = 0;

	if (strlen(name) < 11 || strspn(name, "0123456789abcdef") != 8 || name[8] != '.')
		return false;
	if (sscanf(name, "%8lx.%c%d%c%n", hash, type, suffix, &tail, &n) == 3 && *type == 'r')
		return strspn(name + 10, "0123456789") == strlen(name + 10);
	if (sscanf(name, "%8lx.%d%n", hash, suffix, &n) == 2 && name[n] == '\0')
	{
		*type = 'c';
		return true;
	}
	return false;
}

/* ssl_crl_dir as the server's hashed-directory lookup sees it. */
static List *
read_crl_dir(PgtlsAudit *audit, const char *dir)
{
	DIR		   *d = AllocateDir(dir);
	struct dirent *de;
	List	   *crls = NIL;

	if (d == NULL)
	{
		pgtls_finding(audit, PGTLS_SEV_HIGH, "file.missing", dir, 0, NULL,
					  psprintf("ssl_crl_dir names \"%s\", which cannot be read: %s. The server loads no CRL from it, so every client certificate that needs one fails", dir, strerror(errno)),
					  pstrdup("Create the directory with the CRLs, named by \"openssl rehash\", or point ssl_crl_dir at the right one."));
		return NIL;
	}
	while ((de = ReadDir(d, dir)) != NULL)
	{
		char	   *path;
		PgtlsFileRead r;
		unsigned long hash = 0;
		char		type = 0;
		int			suffix = 0;
		bool		hashed;
		List	   *certs = NIL;
		List	   *found;
		ListCell   *lc;

		if (de->d_name[0] == '.')
			continue;
		path = psprintf("%s/%s", dir, de->d_name);
		if (!pgtls_try_read_file(path, false, &r))
			continue;
		audit->files_checked++;
		found = read_pem_objects(r.data, r.len, path, &certs);
		hashed = hashed_name(de->d_name, &hash, &type, &suffix);
		if (found == NIL && certs == NIL)
		{
			if (hashed && type == 'r')
				pgtls_finding(audit, PGTLS_SEV_HIGH, "crl.dir_ignored", path, 0, NULL,
							  psprintf("\"%s\" in ssl_crl_dir holds no PEM CRL (the server reads only PEM there), so the server ignores it", path),
							  pstrdup("Convert it with: openssl crl -inform DER -in FILE -out FILE.pem, then run openssl rehash on the directory."));
			continue;
		}
		if (!hashed)
		{
			pgtls_finding(audit, PGTLS_SEV_HIGH, "crl.dir_ignored", path, 0, NULL,
						  psprintf("\"%s\" in ssl_crl_dir is never read by the server: it finds CRLs only under names \"<issuer hash>.r<n>\"", path),
						  psprintf("Run: openssl rehash \"%s\" (or name the file as openssl crl -hash -noout prints, with .r0).", dir));
			continue;
		}
		if (type == 'c')
			trusted_by_accident(audit, path, certs, "ssl_crl_dir");
		foreach(lc, found)
		{
			DiskCrl    *c = lfirst(lc);
			int			ok = 0;
			unsigned long h = X509_NAME_hash_ex(X509_CRL_get_issuer(c->crl), NULL, NULL, &ok);

			if (type != 'r' || h != hash)
				pgtls_finding(audit, PGTLS_SEV_HIGH, "crl.dir_ignored", path, 0, NULL,
							  psprintf("the CRL of \"%s\" in \"%s\" is filed under the wrong name: the server looks for it as %08lx.r<n>, so it never reads it",
									   pgtls_name_text(X509_CRL_get_issuer(c->crl)), path, h),
							  psprintf("Run: openssl rehash \"%s\".", dir));
			else if (suffix > 0 && access(psprintf("%s/%08lx.r%d", dir, hash, suffix - 1), F_OK) != 0)
				pgtls_finding(audit, PGTLS_SEV_HIGH, "crl.dir_ignored", path, 0, NULL,
							  psprintf("\"%s\" is never read: the server stops at the first missing suffix, and %08lx.r%d does not exist",
									   path, hash, suffix - 1),
							  psprintf("Run: openssl rehash \"%s\".", dir));
		}
		crls = list_concat(crls, found);
	}
	FreeDir(d);
	return crls;
}

/*
 * our_ca: the extension's CA certificate, or NULL; revoked: its registry's
 * revocations; crl_data: ssl_crl_file's contents, NULL when it is not set
 * or could not be read (the caller reports that).  Runs only with ssl on.
 */
void
pgtls_audit_crls(PgtlsAudit *audit, X509 *our_ca, List *revoked, const char *crl_data, size_t crl_len)
{
	X509_STORE *store;
	List	   *disk = NIL;
	List	   *cas;
	ListCell   *lc;
	bool		checking = is_set_setting(ssl_crl_file) || is_set_setting(ssl_crl_dir);

	if (!checking)
		return;
	if (crl_data != NULL)
	{
		char	   *path = pgtls_resolve_path(ssl_crl_file);
		List	   *certs = NIL;

		disk = read_pem_objects(crl_data, crl_len, path, &certs);
		if (disk == NIL && certs == NIL)
			pgtls_finding(audit, PGTLS_SEV_CRITICAL, "file.invalid", path, 0, NULL,
						  psprintf("ssl_crl_file \"%s\" holds no PEM certificate revocation list", path),
						  psprintf("Replace \"%s\" with a PEM certificate revocation list.", path));
		trusted_by_accident(audit, path, certs, "ssl_crl_file");
	}
	if (is_set_setting(ssl_crl_dir))
		disk = list_concat(disk, read_crl_dir(audit, pgtls_resolve_path(ssl_crl_dir)));

	store = server_store();
	if (store == NULL)
		return;					/* the loader's own verdict is reported elsewhere */
	cas = store_cas(store);
	foreach(lc, cas)
		check_ca_crl(audit, store, lfirst(lc), disk);
	if (our_ca != NULL)
	{
		List	   *rows = pgtls_registry_cas(false);
		List	   *ours = pgtls_trusted_ca_rows(rows);

		/* every CA of ours the server trusts, each with the revocations of what it issued */
		check_registry(audit, store, our_ca, revoked, disk, rows);
		foreach(lc, ours)
		{
			PgtlsCARow *row = lfirst(lc);
			List	   *certs = pgtls_read_cert_list(row->certificate, (int) strlen(row->certificate));

			if (certs != NIL && X509_cmp(linitial(certs), our_ca) != 0)
				check_registry(audit, store, linitial(certs), revoked, disk, rows);
		}
	}
}
