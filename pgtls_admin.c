/*
 * pgtls_admin.c
 *		Entry points of pgtls_admin: the module magic, _PG_init (the GUCs)
 *		and the SQL-callable functions with their argument helpers.  The
 *		work is done in src/, layer by layer (see pgtls_base.h).
 */
#include "pgtls_ops.h"
#include "pgtls_audit.h"
#include "pgtls_compat.h"

#include "access/detoast.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "commands/event_trigger.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "postmaster/postmaster.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inet.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

/* pgtls_admin.default_key_type's values: the key types of x509_build.c */
static struct config_enum_entry key_type_options[PGTLS_KEY_NTYPES + 1];

static const struct config_enum_entry enforce_options[] = {
	{"crl", PGTLS_ENFORCE_CRL, false},
	{"registry", PGTLS_ENFORCE_REGISTRY, false},
	{NULL, 0, false}
};

void		_PG_init(void);

/* The background worker, one per node, started once the node is consistent. */
static void
register_worker(void)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	snprintf(worker.bgw_name, BGW_MAXLEN, "pgtls_admin worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "pgtls_admin worker");
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "pgtls_admin");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "pgtls_worker_main");
	RegisterBackgroundWorker(&worker);
}

void
_PG_init(void)
{
	pgtls_files_init();
	for (int i = 0; i < PGTLS_KEY_NTYPES; i++)
	{
		key_type_options[i].name = pgtls_key_type_name((PgtlsKeyType) i);
		key_type_options[i].val = i;
		key_type_options[i].hidden = false;
	}

	DefineCustomStringVariable("pgtls_admin.ca_cert_file",
							   "CA certificate used to issue certificates.",
							   "Relative paths are under the data directory.",
							   &pgtls_ca_cert_file, "pgtls/ca.crt",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("pgtls_admin.ca_key_file",
							   "CA private key; must have mode 0600, or 0640 if owned by root.",
							   "Relative paths are under the data directory.",
							   &pgtls_ca_key_file, "pgtls/ca.key",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("pgtls_admin.crl_file",
							   "Certificate revocation lists, one for each CA the server trusts, written on every revocation.",
							   "Relative paths are under the data directory.",
							   &pgtls_crl_file, "pgtls/root.crl",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomStringVariable("pgtls_admin.ca_bundle_file",
							   "Trust bundle: the CAs the server trusts for client certificates, written from the registry.",
							   "Relative paths are under the data directory. pgtls_enable_ssl() makes it ssl_ca_file.",
							   &pgtls_ca_bundle_file, "pgtls/ca-bundle.crt",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("pgtls_admin.default_days",
							"Validity in days of issued certificates when none is given.",
							NULL, &pgtls_default_days, 365, 1, 36500,
							PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("pgtls_admin.max_days",
							"Upper bound in days for the validity of any issued certificate.",
							NULL, &pgtls_max_days, 825, 1, 36500,
							PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomEnumVariable("pgtls_admin.default_key_type",
							 "Key type of issued keys when none is given.",
							 NULL, &pgtls_default_key_type, PGTLS_KEY_EC_P256,
							 key_type_options,
							 PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("pgtls_admin.expiry_warning_days",
							"Certificates expiring within this many days are reported by the audit.",
							NULL, &pgtls_expiry_warning_days, 30, 0, 36500,
							PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("pgtls_admin.debug_pause_at",
							"Test hook: pause a server certificate install (1-4) or a switch of the active CA (11-12) at this step for 60 seconds.",
							"0 disables. Used by the crash-safety tests.",
							&pgtls_debug_pause_at, 0, 0, 12,
							PGC_SUSET, GUC_NOT_IN_SAMPLE, NULL, NULL, NULL);
	DefineCustomEnumVariable("pgtls_admin.enforce",
							 "What decides whether a certificate of the extension's CAs may log in.",
							 "crl: the server's checks with the CRL; registry: also a live registry entry for the role (needs the library preloaded).",
							 &pgtls_enforce, PGTLS_ENFORCE_CRL, enforce_options,
							 PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	/* with the worker re-signing it, a CRL expires in a week; without, with the CA */
	DefineCustomIntVariable("pgtls_admin.crl_validity",
							"How long a CRL is valid (its nextUpdate); 0 means until the CA expires.",
							"The background worker re-signs it half-way. Without the worker the default is 0.",
							&pgtls_crl_validity,
							process_shared_preload_libraries_in_progress ? 7 * 86400 : 0,
							0, INT_MAX, PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_UNIT_S,
							NULL, NULL, NULL);
	/* sizes shared memory: exists only where the library is preloaded */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomIntVariable("pgtls_admin.max_certificates",
								"Live client certificates the shared set for registry-enforced logins holds.",
								NULL, &pgtls_max_certificates, 100000, 1000, 50000000,
								PGC_POSTMASTER, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("pgtls_admin.maintenance_interval",
							"How often the background worker runs pgtls_maintain() on the primary.",
							NULL, &pgtls_maintenance_interval, 60, 1, 7 * 86400,
							PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgtls_admin.server_renew_before",
							"pgtls_maintain() renews the server certificate when it expires within this time.",
							NULL, &pgtls_server_renew_before, 30 * 86400, 0, INT_MAX,
							PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomIntVariable("pgtls_admin.max_self_renewed",
							"How many live client certificates a role may hold that it renewed itself with pgtls_renew_self().",
							NULL, &pgtls_max_self_renewed, 100, 1, 1000000,
							PGC_SIGHUP, GUC_SUPERUSER_ONLY, NULL, NULL, NULL);
	DefineCustomIntVariable("pgtls_admin.retain_expired",
							"pgtls_maintain() deletes registry rows of certificates expired this long ago; -1 keeps them.",
							NULL, &pgtls_retain_expired, -1, -1, INT_MAX,
							PGC_SIGHUP, GUC_SUPERUSER_ONLY | GUC_UNIT_S, NULL, NULL, NULL);
	MarkGUCPrefixReserved("pgtls_admin");

	pgtls_statement_install_hooks();
	if (process_shared_preload_libraries_in_progress)
	{
		pgtls_live_install_hooks();
		pgtls_enforce_install_hook();
		pgtls_renew_self_install_hook();
		register_worker();
	}
}

static void
require_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/*
 * A PEM argument (certificate, key, request), refused before it is detoasted
 * or parsed when it is larger than PGTLS_MAX_PEM_INPUT.
 */
static text *
pem_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	require_arg(fcinfo, n, name);
	if (toast_raw_datum_size(PG_GETARG_DATUM(n)) - VARHDRSZ > PGTLS_MAX_PEM_INPUT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is larger than %d kB", name, PGTLS_MAX_PEM_INPUT / 1024),
				 errdetail("Certificates, keys, requests and passphrases are limited to %d kB.",
						   PGTLS_MAX_PEM_INPUT / 1024)));
	return PG_GETARG_TEXT_PP(n);
}

static PgtlsKeyType
key_type_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return (PgtlsKeyType) pgtls_default_key_type;
	return pgtls_key_type_from_name(text_to_cstring(PG_GETARG_TEXT_PP(n)));
}

/* days argument n: NULL means pgtls_admin.default_days */
static int
days_arg(FunctionCallInfo fcinfo, int n)
{
	return pgtls_validity_days(PG_ARGISNULL(n) ? 0 : PG_GETARG_INT32(n), PG_ARGISNULL(n));
}

/* An interval argument n, or NULL when it is null or not in the SQL definition. */
static Interval *
interval_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_NARGS() <= n || PG_ARGISNULL(n))
		return NULL;
	return PG_GETARG_INTERVAL_P(n);
}

/*
 * The validity from days argument days_n and lifetime argument
 * lifetime_n: one of them, or neither for pgtls_admin.default_days.
 */
static PgtlsLifetime
validity_arg(FunctionCallInfo fcinfo, int days_n, int lifetime_n)
{
	return pgtls_validity(PG_ARGISNULL(days_n) ? 0 : PG_GETARG_INT32(days_n), PG_ARGISNULL(days_n),
						  interval_arg(fcinfo, lifetime_n));
}

/*
 * Elements of a text[] (as C strings) or inet[] (as inet *) argument; a NULL
 * array or element is an error.
 */
static List *
array_arg(FunctionCallInfo fcinfo, int n, const char *name, Oid elemtype)
{
	Datum	   *elems;
	bool	   *nulls;
	int			count;
	List	   *result = NIL;

	require_arg(fcinfo, n, name);
	deconstruct_array(PG_GETARG_ARRAYTYPE_P(n), elemtype, -1, false, TYPALIGN_INT,
					  &elems, &nulls, &count);
	for (int i = 0; i < count; i++)
	{
		if (nulls[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("%s must not contain nulls", name)));
		result = lappend(result, elemtype == TEXTOID ? (void *) TextDatumGetCString(elems[i])
						 : (void *) DatumGetInetPP(elems[i]));
	}
	return result;
}

/*
 * Start a materialized set-returning call whose SQL definition must have
 * natts columns: an older or newer install script against this library
 * gets a clear error instead of rows of the wrong shape.
 */
static ReturnSetInfo *
srf_begin(FunctionCallInfo fcinfo, int natts)
{
	ReturnSetInfo *rsinfo;

	pgtls_init_srf(fcinfo);
	rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	if (rsinfo->setDesc->natts != natts)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("incorrect number of output arguments"),
				 errhint("The installed SQL definition does not match the pgtls_admin library; run ALTER EXTENSION pgtls_admin UPDATE.")));
	return rsinfo;
}

static void
srf_put(FunctionCallInfo fcinfo, Datum *values, bool *nulls)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

/* Copy a text or bytea result out of the work context before it is deleted. */
static void *
copy_varlena_to(MemoryContext target, void *v)
{
	MemoryContext old = MemoryContextSwitchTo(target);
	struct varlena *copy = PG_DETOAST_DATUM_COPY(PointerGetDatum(v));

	MemoryContextSwitchTo(old);
	return copy;
}

/*
 * Run work, whose arguments hold a private key or passphrase, in a work
 * context and return its text or bytea result.  Its ERRORs are re-thrown
 * without the statement, which would otherwise put the key in the log.
 */
static Datum
run_with_secret_args(FunctionCallInfo fcinfo, void *(*work) (FunctionCallInfo fcinfo))
{
	MemoryContext caller = pgtls_work_begin();
	void	   *result = NULL;

	PG_TRY();
	{
		result = copy_varlena_to(caller, work(fcinfo));
	}
	PG_CATCH();
	{
		pgtls_rethrow_hiding_statement(caller);
	}
	PG_END_TRY();
	pgtls_work_end(caller);
	return PointerGetDatum(result);
}

PG_FUNCTION_INFO_V1(pgtls_init_ca);
Datum
pgtls_init_ca(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	text	   *pem;

	pgtls_require_primary("create a CA");
	pgtls_require_superuser("create a CA");
	require_arg(fcinfo, 0, "subject");
	require_arg(fcinfo, 1, "days");
	require_arg(fcinfo, 3, "replace");
	caller = pgtls_work_begin();
	pem = pgtls_ca_init(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_INT32(1),
						key_type_arg(fcinfo, 2), PG_GETARG_BOOL(3));
	pem = copy_varlena_to(caller, pem);
	pgtls_work_end(caller);
	PG_RETURN_TEXT_P(pem);
}

static void *
import_ca_work(FunctionCallInfo fcinfo)
{
	text	   *cert;
	text	   *key;

	pgtls_require_primary("import a CA");
	pgtls_require_superuser("import a CA");
	cert = pem_arg(fcinfo, 0, "certificate");
	key = pem_arg(fcinfo, 1, "private_key");
	require_arg(fcinfo, 2, "replace");
	return pgtls_ca_import(VARDATA_ANY(cert), VARSIZE_ANY_EXHDR(cert),
						   VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key),
						   PG_GETARG_BOOL(2), "pgtls_import_ca()");
}

/*
 * The key is an argument, so every check runs inside the statement-hiding
 * wrapper.  The documented way is pgtls_import_ca_files().
 */
PG_FUNCTION_INFO_V1(pgtls_import_ca);
Datum
pgtls_import_ca(PG_FUNCTION_ARGS)
{
	return run_with_secret_args(fcinfo, import_ca_work);
}

/* A server file named by a function argument: absolute, or under the data directory. */
static char *
file_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	require_arg(fcinfo, n, name);
	return pgtls_resolve_path(text_to_cstring(PG_GETARG_TEXT_PP(n)));
}

PG_FUNCTION_INFO_V1(pgtls_import_ca_files);
Datum
pgtls_import_ca_files(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	text	   *pem;
	char	   *cert_path;
	char	   *key_path;

	pgtls_require_primary("import a CA");
	pgtls_require_superuser("import a CA");
	cert_path = file_arg(fcinfo, 0, "certificate_file");
	key_path = file_arg(fcinfo, 1, "key_file");
	require_arg(fcinfo, 2, "replace");
	caller = pgtls_work_begin();
	pem = pgtls_ca_import_files(cert_path, key_path, PG_GETARG_BOOL(2));
	pem = copy_varlena_to(caller, pem);
	pgtls_work_end(caller);
	PG_RETURN_TEXT_P(pem);
}

PG_FUNCTION_INFO_V1(pgtls_ca_cert);
Datum
pgtls_ca_cert(PG_FUNCTION_ARGS)
{
	MemoryContext caller = pgtls_work_begin();
	text	   *pem;

	pem = copy_varlena_to(caller, pgtls_ca_bundle_text());
	pgtls_work_end(caller);
	PG_RETURN_TEXT_P(pem);
}

/* pgtls_ca_rotate(phase, force, subject, days, key_type): rows (state, subject, not_after, fingerprint_sha256) */
PG_FUNCTION_INFO_V1(pgtls_ca_rotate);
Datum
pgtls_ca_rotate(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	char	   *phase;
	PgtlsKeyType key_type = PGTLS_KEY_EC_P256;
	List	   *rows;
	ListCell   *lc;
	int			days = 0;

	pgtls_require_primary("rotate the CA");
	pgtls_require_superuser("rotate the CA");
	require_arg(fcinfo, 0, "phase");
	require_arg(fcinfo, 1, "force");
	srf_begin(fcinfo, 4);
	phase = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(3))
	{
		days = PG_GETARG_INT32(3);
		if (days < 1 || days > 36500)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("days must be between 1 and 36500")));
	}
	if (!PG_ARGISNULL(4))
		key_type = pgtls_key_type_from_name(text_to_cstring(PG_GETARG_TEXT_PP(4)));
	/* the files are written when the statement commits: they cannot follow a ROLLBACK TO SAVEPOINT */
	PreventInTransactionBlock(true, "pgtls_ca_rotate()");
	caller = pgtls_work_begin();
	rows = pgtls_ca_rotate_phase(phase, PG_GETARG_BOOL(1),
								 PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)),
								 days, PG_ARGISNULL(4) ? NULL : &key_type);
	foreach(lc, rows)
	{
		PgtlsCARow *row = lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {false};

		values[0] = CStringGetTextDatum(row->state);
		values[1] = CStringGetTextDatum(row->subject);
		values[2] = TimestampTzGetDatum(row->not_after);
		values[3] = CStringGetTextDatum(row->fingerprint);
		srf_put(fcinfo, values, nulls);
	}
	pgtls_work_end(caller);
	return (Datum) 0;
}

/* Checks of the functions that change what the server trusts. */
static void
require_trust_rights(const char *action, const char *function)
{
	pgtls_require_primary(action);
	pgtls_require_superuser(action);
	PreventInTransactionBlock(true, function);
}

PG_FUNCTION_INFO_V1(pgtls_trust_add);
Datum
pgtls_trust_add(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	text	   *cert;
	text	   *crl = NULL;
	char	   *fingerprint;

	require_trust_rights("trust a CA", "pgtls_trust_add()");
	cert = pem_arg(fcinfo, 0, "certificate");
	if (!PG_ARGISNULL(1))
		crl = pem_arg(fcinfo, 1, "crl");
	caller = pgtls_work_begin();
	fingerprint = pgtls_trust_add_ca(VARDATA_ANY(cert), VARSIZE_ANY_EXHDR(cert),
									 crl ? VARDATA_ANY(crl) : NULL, crl ? VARSIZE_ANY_EXHDR(crl) : 0);
	fingerprint = MemoryContextStrdup(caller, fingerprint);
	pgtls_work_end(caller);
	PG_RETURN_TEXT_P(cstring_to_text(fingerprint));
}

PG_FUNCTION_INFO_V1(pgtls_trust_remove);
Datum
pgtls_trust_remove(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	bool		removed;

	require_trust_rights("stop trusting a CA", "pgtls_trust_remove()");
	require_arg(fcinfo, 0, "fingerprint");
	caller = pgtls_work_begin();
	removed = pgtls_trust_remove_ca(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	pgtls_work_end(caller);
	PG_RETURN_BOOL(removed);
}

PG_FUNCTION_INFO_V1(pgtls_ca_request);
Datum
pgtls_ca_request(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	PgtlsKeyType key_type;
	text	   *csr;

	pgtls_require_primary("request an intermediate CA");
	pgtls_require_superuser("request an intermediate CA");
	require_arg(fcinfo, 0, "subject");
	require_arg(fcinfo, 1, "key_type");
	key_type = pgtls_key_type_from_name(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	caller = pgtls_work_begin();
	csr = copy_varlena_to(caller, pgtls_ca_make_request(text_to_cstring(PG_GETARG_TEXT_PP(0)), key_type));
	pgtls_work_end(caller);
	PG_RETURN_TEXT_P(csr);
}

PG_FUNCTION_INFO_V1(pgtls_ca_set_certificate);
Datum
pgtls_ca_set_certificate(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	text	   *chain;
	text	   *pem;

	require_trust_rights("adopt an intermediate CA", "pgtls_ca_set_certificate()");
	chain = pem_arg(fcinfo, 0, "chain");
	caller = pgtls_work_begin();
	pem = copy_varlena_to(caller, pgtls_ca_adopt_chain(VARDATA_ANY(chain), VARSIZE_ANY_EXHDR(chain)));
	pgtls_work_end(caller);
	PG_RETURN_TEXT_P(pem);
}

/* An issued certificate as clients use it: followed by its CA when that is an intermediate. */
static Datum
issued_certificate(PgtlsIssued *issued)
{
	if (issued->ca.chain_pem == NULL || issued->ca.chain_pem[0] == '\0')
		return PointerGetDatum(issued->cert_pem);
	return CStringGetTextDatum(psprintf("%s%s", text_to_cstring(issued->cert_pem), issued->ca.chain_pem));
}

/*
 * One row of (serial, certificate, ca_certificate, not_after): a request
 * signed.  ca_certificate is what the client must trust, pgtls_ca_cert(),
 * made before the certificate was issued.
 */
static void
put_signed_row(FunctionCallInfo fcinfo, PgtlsIssued *issued, text *ca_bundle)
{
	Datum		values[4];
	bool		nulls[4] = {false};

	values[0] = CStringGetTextDatum(pgtls_serial_hex(X509_get0_serialNumber(issued->cert)));
	values[1] = issued_certificate(issued);
	values[2] = PointerGetDatum(ca_bundle);
	values[3] = TimestampTzGetDatum(pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(issued->cert)));
	srf_put(fcinfo, values, nulls);
}

/* One row of (serial, certificate, private_key, ca_certificate, not_after); as above. */
static void
put_issued_row(FunctionCallInfo fcinfo, PgtlsIssued *issued, text *ca_bundle)
{
	Datum		values[5];
	bool		nulls[5] = {false};

	values[0] = CStringGetTextDatum(pgtls_serial_hex(X509_get0_serialNumber(issued->cert)));
	values[1] = issued_certificate(issued);
	values[2] = PointerGetDatum(pgtls_private_key_pem(issued->key));
	values[3] = PointerGetDatum(ca_bundle);
	values[4] = TimestampTzGetDatum(pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(issued->cert)));
	srf_put(fcinfo, values, nulls);
}

/* Rows of (setting, value) for the settings an install changed. */
static void
put_settings_rows(FunctionCallInfo fcinfo, List *changed)
{
	ListCell   *lc;

	/* our own backend has not processed the reload yet: report what was written */
	foreach(lc, changed)
	{
		PgtlsSetting *setting = lfirst(lc);
		Datum		values[2];
		bool		nulls[2] = {false};

		values[0] = CStringGetTextDatum(setting->name);
		values[1] = CStringGetTextDatum(setting->value);
		srf_put(fcinfo, values, nulls);
	}
}

/*
 * Issuing works regardless, but say so when no pg_hba.conf rule would let
 * this certificate in as the role (following line order, clientname= and
 * map=): once per statement and role, not once per certificate.
 */
static void
notice_if_no_cert_rule(Oid roleid, const char *role, X509 *cert)
{
	static LocalTransactionId noticed_lxid = InvalidLocalTransactionId;
	static TimestampTz noticed_statement = 0;
	static Oid	noticed_role = InvalidOid;
	X509_NAME  *subject = X509_get_subject_name(cert);
	char	   *problem = pgtls_hba_cert_problem(roleid, role, pgtls_name_cn(subject, NULL),
												pgtls_name_dn(subject, NULL));

	if (problem != NULL && noticed_lxid == MyProc->lxid && noticed_role == roleid &&
		noticed_statement == GetCurrentStatementStartTimestamp())
		return;
	noticed_lxid = MyProc->lxid;
	noticed_statement = GetCurrentStatementStartTimestamp();
	noticed_role = problem != NULL ? roleid : InvalidOid;
	if (problem != NULL)
		ereport(NOTICE,
				(errmsg("no pg_hba.conf rule lets role \"%s\" log in with a certificate", role),
				 errdetail("%s", problem),
				 errhint("Add a hostssl line with method cert for this role (or all) above any broader line, reload, and check with pgtls_hba_match() or pgtls_explain_login().")));
}

/*
 * The subject argument of pgtls_issue_client, or NULL for CN = the role.
 * Another subject must be one that pg_hba.conf and pg_ident.conf (as they
 * are on disk) let in as this role, and as no other role, so the
 * certificate is known to log in as the role it is issued for.
 */
static X509_NAME *
subject_arg(FunctionCallInfo fcinfo, int n, Oid roleid, const char *role)
{
	char	   *subject;
	X509_NAME  *name;
	char	   *cn;
	char	   *dn;
	char	   *problem;
	List	   *others;

	if (PG_NARGS() <= n || PG_ARGISNULL(n))
		return NULL;
	subject = text_to_cstring(PG_GETARG_TEXT_PP(n));
	name = pgtls_subject_name(subject);
	cn = pgtls_name_cn(name, NULL);
	dn = pgtls_name_dn(name, NULL);
	problem = pgtls_hba_cert_problem(roleid, role, cn, dn);
	if (problem != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a certificate with subject \"%s\" would not log in as role \"%s\"", subject, role),
				 errdetail("%s", problem),
				 errhint("Map that name to the role in pg_ident.conf (the map= of the pg_hba.conf line that should admit it) and reload, or leave out subject to issue CN=%s.",
						 role)));
	others = pgtls_cert_other_roles(role, cn, dn);
	if (others != NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a certificate with subject \"%s\" would also log in as role \"%s\"", subject,
						(char *) linitial(others)),
				 errdetail("pg_hba.conf and pg_ident.conf let a certificate with that subject in as more roles than the one it is issued for."),
				 errhint("Choose a subject that only the map of role \"%s\" admits.", role)));
	if (pgtls_ident_changed_since_reload())
		ereport(NOTICE,
				(errmsg("pg_ident.conf changed after the last configuration reload"),
				 errhint("Run SELECT pg_reload_conf(); so the server uses the map this certificate needs.")));
	return name;
}

PG_FUNCTION_INFO_V1(pgtls_issue_client);
Datum
pgtls_issue_client(PG_FUNCTION_ARGS)
{
	Oid			roleid;
	char	   *role;
	PgtlsLifetime validity;
	PgtlsKeyType key_type;
	X509_NAME  *subject;
	MemoryContext caller;
	PgtlsIssued issued;
	text	   *bundle;

	pgtls_require_primary("issue certificates");
	roleid = pgtls_check_issue_target(PG_ARGISNULL(0) ? NULL : PG_GETARG_NAME(0), PG_ARGISNULL(0));
	role = NameStr(*PG_GETARG_NAME(0));
	validity = validity_arg(fcinfo, 1, 4);
	key_type = key_type_arg(fcinfo, 2);
	subject = subject_arg(fcinfo, 3, roleid, role);
	srf_begin(fcinfo, 5);

	caller = pgtls_work_begin();
	bundle = pgtls_ca_bundle_text();
	pgtls_issue_client_cert_as(role, roleid, subject, validity, key_type, &issued);
	put_issued_row(fcinfo, &issued, bundle);
	notice_if_no_cert_rule(roleid, role, issued.cert);
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_sign_client_csr);
Datum
pgtls_sign_client_csr(PG_FUNCTION_ARGS)
{
	Oid			roleid;
	char	   *role;
	PgtlsLifetime validity;
	text	   *csr;
	MemoryContext caller;
	PgtlsIssued issued;
	text	   *bundle;

	pgtls_require_primary("issue certificates");
	roleid = pgtls_check_issue_target(PG_ARGISNULL(0) ? NULL : PG_GETARG_NAME(0), PG_ARGISNULL(0));
	role = NameStr(*PG_GETARG_NAME(0));
	csr = pem_arg(fcinfo, 1, "csr");
	validity = validity_arg(fcinfo, 2, 3);
	srf_begin(fcinfo, 4);

	caller = pgtls_work_begin();
	bundle = pgtls_ca_bundle_text();
	pgtls_issue_csr_cert(role, roleid, VARDATA_ANY(csr), VARSIZE_ANY_EXHDR(csr), validity, &issued);
	put_signed_row(fcinfo, &issued, bundle);
	notice_if_no_cert_rule(roleid, role, issued.cert);
	pgtls_work_end(caller);
	return (Datum) 0;
}

/* A new server key and certificate from the arguments (dns, ips, days, key_type). */
static void
issue_server(FunctionCallInfo fcinfo, PgtlsIssued *issued)
{
	List	   *dns = array_arg(fcinfo, 0, "dns_names", TEXTOID);
	List	   *ips = array_arg(fcinfo, 1, "ip_addresses", INETOID);
	int			days = days_arg(fcinfo, 2);
	PgtlsKeyType key_type = key_type_arg(fcinfo, 3);

	pgtls_issue_server_cert(dns, ips, pgtls_lifetime_days(days), key_type, issued);
}

PG_FUNCTION_INFO_V1(pgtls_issue_server);
Datum
pgtls_issue_server(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	PgtlsIssued issued;
	Datum		values[4];
	bool		nulls[4] = {false};

	pgtls_require_primary("issue certificates");
	pgtls_require_superuser("issue server certificates");
	srf_begin(fcinfo, 4);
	caller = pgtls_work_begin();
	issue_server(fcinfo, &issued);
	values[0] = CStringGetTextDatum(pgtls_serial_hex(X509_get0_serialNumber(issued.cert)));
	values[1] = issued_certificate(&issued);
	values[2] = PointerGetDatum(pgtls_private_key_pem(issued.key));
	values[3] = TimestampTzGetDatum(pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(issued.cert)));
	srf_put(fcinfo, values, nulls);
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_enable_ssl);
Datum
pgtls_enable_ssl(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	PgtlsIssued issued;

	pgtls_require_primary("issue certificates");
	pgtls_require_superuser("enable TLS");
	PreventInTransactionBlock(true, "pgtls_enable_ssl()");
	srf_begin(fcinfo, 2);
	caller = pgtls_work_begin();
	issue_server(fcinfo, &issued);
	put_settings_rows(fcinfo, pgtls_install_server(issued.cert, NULL, issued.key, &issued.ca));
	pgtls_work_end(caller);
	return (Datum) 0;
}

/* Install a certificate (with its chain) and key given as PEM; the caller is checked. */
static void
install_pem(FunctionCallInfo fcinfo, const char *cert_pem, int cert_len,
			const char *key_pem, int key_len)
{
	STACK_OF(X509) *chain;
	X509	   *leaf = pgtls_parse_cert_chain(cert_pem, cert_len, &chain);
	EVP_PKEY   *key = pgtls_parse_private_key(key_pem, key_len, "private_key", PGTLS_KEY_TEXT_HINT);
	PgtlsCA		ca;
	PgtlsRegistryRow row;

	pgtls_ca_load(&ca);
	if (!pgtls_registry_lookup(pgtls_serial_hex(X509_get0_serialNumber(leaf)), &row))
	{
		/* a standby installs only what the primary recorded, with this node's names */
		if (RecoveryInProgress())
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("certificate %s is not in the registry", pgtls_serial_hex(X509_get0_serialNumber(leaf))),
					 errdetail("A standby installs server certificates the primary issued and recorded."),
					 errhint("On the primary, issue this node's certificate with pgtls_issue_server(dns_names, ip_addresses), then install its files here.")));
		pgtls_registry_insert(leaf, "server", NULL, InvalidOid, NULL, ca.fingerprint);
	}
	put_settings_rows(fcinfo, pgtls_install_server(leaf, chain, key, &ca));
}

static void
require_install_rights(const char *function)
{
	pgtls_require_superuser("install a server certificate");
	PreventInTransactionBlock(true, function);
}

/*
 * The key is an argument, so every check runs inside the statement-hiding
 * block.  The documented way is pgtls_install_server_cert_files().
 */
PG_FUNCTION_INFO_V1(pgtls_install_server_cert);
Datum
pgtls_install_server_cert(PG_FUNCTION_ARGS)
{
	MemoryContext caller = pgtls_work_begin();

	PG_TRY();
	{
		text	   *cert_text;
		text	   *key_text;

		require_install_rights("pgtls_install_server_cert()");
		cert_text = pem_arg(fcinfo, 0, "certificate");
		key_text = pem_arg(fcinfo, 1, "private_key");
		srf_begin(fcinfo, 2);
		install_pem(fcinfo, VARDATA_ANY(cert_text), VARSIZE_ANY_EXHDR(cert_text),
					VARDATA_ANY(key_text), VARSIZE_ANY_EXHDR(key_text));
	}
	PG_CATCH();
	{
		pgtls_rethrow_hiding_statement(caller);
	}
	PG_END_TRY();
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_install_server_cert_files);
Datum
pgtls_install_server_cert_files(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	char	   *cert_path;
	char	   *key_path;
	char	   *cert_pem;
	char	   *key_pem;
	size_t		cert_len;
	size_t		key_len;

	require_install_rights("pgtls_install_server_cert_files()");
	cert_path = file_arg(fcinfo, 0, "certificate_file");
	key_path = file_arg(fcinfo, 1, "key_file");
	srf_begin(fcinfo, 2);
	caller = pgtls_work_begin();
	cert_pem = pgtls_read_file(cert_path, "certificate file", NULL, false, &cert_len);
	key_pem = pgtls_read_key_file(key_path, "private key file", &key_len);
	install_pem(fcinfo, cert_pem, (int) cert_len, key_pem, (int) key_len);
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_revoke);
Datum
pgtls_revoke(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	char	   *serial;
	const char *reason;
	bool		terminate;
	bool		result;
	List	   *also;

	require_arg(fcinfo, 0, "serial");
	require_arg(fcinfo, 1, "reason");
	if (PG_NARGS() > 2)
		require_arg(fcinfo, 2, "terminate");
	caller = pgtls_work_begin();
	serial = pgtls_normalize_serial(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	reason = pgtls_reason_canonical(text_to_cstring(PG_GETARG_TEXT_PP(1)));
	terminate = PG_NARGS() > 2 && PG_GETARG_BOOL(2);
	result = pgtls_revoke_serial(serial, reason, terminate, &also);
	if (terminate)
	{
		bool		superusers_too = superuser();
		ListCell   *lc;

		pgtls_sessions_end_at_commit(serial, superusers_too);
		foreach(lc, also)
			pgtls_sessions_end_at_commit(lfirst(lc), superusers_too);
	}
	pgtls_work_end(caller);
	PG_RETURN_BOOL(result);
}

PG_FUNCTION_INFO_V1(pgtls_revoke_unrecorded);
Datum
pgtls_revoke_unrecorded(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	bool		result;

	require_arg(fcinfo, 0, "serial");
	require_arg(fcinfo, 1, "reason");
	caller = pgtls_work_begin();
	result = pgtls_revoke_unrecorded_serial(pgtls_normalize_serial(text_to_cstring(PG_GETARG_TEXT_PP(0))),
									 pgtls_reason_canonical(text_to_cstring(PG_GETARG_TEXT_PP(1))));
	pgtls_work_end(caller);
	PG_RETURN_BOOL(result);
}

PG_FUNCTION_INFO_V1(pgtls_crl);
Datum
pgtls_crl(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(pgtls_crl_text());
}

PG_FUNCTION_INFO_V1(pgtls_renew);
Datum
pgtls_renew(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	PgtlsLifetime validity;
	PgtlsIssued issued;
	text	   *bundle;

	pgtls_require_primary("renew certificates");
	require_arg(fcinfo, 0, "serial");
	validity = validity_arg(fcinfo, 1, 2);
	srf_begin(fcinfo, 5);
	caller = pgtls_work_begin();
	pgtls_renew_cert(pgtls_normalize_serial(text_to_cstring(PG_GETARG_TEXT_PP(0))), validity, &issued);
	bundle = pgtls_ca_bundle_text();	/* after the checks renewing makes */
	put_issued_row(fcinfo, &issued, bundle);
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_renew_self);
Datum
pgtls_renew_self(PG_FUNCTION_ARGS)
{
	text	   *csr;
	MemoryContext caller;
	PgtlsIssued issued;
	text	   *bundle;

	csr = pem_arg(fcinfo, 0, "csr");
	require_arg(fcinfo, 2, "revoke_previous");
	srf_begin(fcinfo, 4);
	caller = pgtls_work_begin();
	pgtls_renew_self_cert(VARDATA_ANY(csr), VARSIZE_ANY_EXHDR(csr), interval_arg(fcinfo, 1),
						  PG_GETARG_BOOL(2), &issued);
	bundle = pgtls_ca_bundle_text();	/* after the checks renewing makes */
	put_signed_row(fcinfo, &issued, bundle);
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_maintain);
Datum
pgtls_maintain(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	ListCell   *lc;

	pgtls_require_primary("run pgtls_maintain()");
	pgtls_require_superuser("run pgtls_maintain()");
	PreventInTransactionBlock(true, "pgtls_maintain()");
	srf_begin(fcinfo, 2);
	caller = pgtls_work_begin();
	foreach(lc, pgtls_maintain_run())
	{
		PgtlsAction *a = lfirst(lc);
		Datum		values[2];
		bool		nulls[2] = {false};

		values[0] = CStringGetTextDatum(a->action);
		values[1] = CStringGetTextDatum(a->detail);
		srf_put(fcinfo, values, nulls);
	}
	pgtls_work_end(caller);
	return (Datum) 0;
}

/* pgtls_sessions' source: what pg_stat_ssl would show this user, with the registry's serials. */
PG_FUNCTION_INFO_V1(pgtls_session_certificates);
Datum
pgtls_session_certificates(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	bool		all = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
	ListCell   *lc;

	srf_begin(fcinfo, 2);
	caller = pgtls_work_begin();
	foreach(lc, pgtls_session_certs(false))
	{
		PgtlsSessionCert *s = lfirst(lc);
		Datum		values[2];
		bool		nulls[2] = {false};

		if (!all && !has_privs_of_role(GetUserId(), s->userid))
			continue;
		values[0] = Int32GetDatum(s->pid);
		values[1] = CStringGetTextDatum(s->serial);
		srf_put(fcinfo, values, nulls);
	}
	pgtls_work_end(caller);
	return (Datum) 0;
}

/* One row of pgtls_cert_info() / pgtls_server_cert_info(): a pgtls_cert_details. */
static void
put_cert_info_row(FunctionCallInfo fcinfo, X509 *cert)
{
	PgtlsCertInfo info;
	Datum		values[15];
	bool		nulls[15] = {false};

	pgtls_describe_cert(cert, &info);
	values[0] = CStringGetTextDatum(info.subject);
	values[1] = CStringGetTextDatum(info.issuer);
	values[2] = CStringGetTextDatum(info.subject_dn);
	values[3] = CStringGetTextDatum(info.issuer_dn);
	values[4] = CStringGetTextDatum(info.serial);
	values[5] = TimestampTzGetDatum(info.not_before);
	values[6] = TimestampTzGetDatum(info.not_after);
	values[7] = pgtls_text_array(info.san);
	nulls[7] = info.san == NIL;
	values[8] = pgtls_text_array(info.eku);
	nulls[8] = info.eku == NIL;
	values[9] = pgtls_text_array(info.key_usage);
	nulls[9] = info.key_usage == NIL;
	nulls[10] = info.key_type == NULL;
	values[10] = nulls[10] ? (Datum) 0 : CStringGetTextDatum(info.key_type);
	values[11] = Int32GetDatum(info.key_bits);
	values[12] = CStringGetTextDatum(info.signature_algorithm);
	values[13] = BoolGetDatum(info.is_ca);
	values[14] = CStringGetTextDatum(info.fingerprint_sha256);
	srf_put(fcinfo, values, nulls);
}

PG_FUNCTION_INFO_V1(pgtls_cert_info);
Datum
pgtls_cert_info(PG_FUNCTION_ARGS)
{
	text	   *pem = pem_arg(fcinfo, 0, "certificate");
	MemoryContext caller;

	srf_begin(fcinfo, 15);
	caller = pgtls_work_begin();
	put_cert_info_row(fcinfo, pgtls_parse_cert(VARDATA_ANY(pem), VARSIZE_ANY_EXHDR(pem), "certificate",
											   PGTLS_CERT_TEXT_HINT));
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_server_cert_info);
Datum
pgtls_server_cert_info(PG_FUNCTION_ARGS)
{
	MemoryContext caller;

	srf_begin(fcinfo, 15);
	caller = pgtls_work_begin();
	put_cert_info_row(fcinfo, pgtls_server_cert());
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_hba_check);
Datum
pgtls_hba_check(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	ListCell   *lc;

	srf_begin(fcinfo, 7);
	caller = pgtls_work_begin();
	foreach(lc, pgtls_audit_run())
	{
		Datum		values[7];
		bool		nulls[7] = {false};

		pgtls_finding_values(lfirst(lc), values, nulls);
		srf_put(fcinfo, values, nulls);
	}
	pgtls_work_end(caller);
	return (Datum) 0;
}

/* For pgtls_metrics: ssl_cert_file's certificate, or no row (src/metrics.c). */
PG_FUNCTION_INFO_V1(pgtls_metrics_server_cert);
Datum
pgtls_metrics_server_cert(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	PgtlsCertInfo info;

	srf_begin(fcinfo, 4);
	caller = pgtls_work_begin();
	if (pgtls_server_cert_times(&info))
	{
		Datum		values[4];
		bool		nulls[4] = {false};

		values[0] = CStringGetTextDatum(info.serial);
		values[1] = CStringGetTextDatum(info.subject);
		values[2] = CStringGetTextDatum(info.fingerprint_sha256);
		values[3] = TimestampTzGetDatum(info.not_after);
		srf_put(fcinfo, values, nulls);
	}
	pgtls_work_end(caller);
	return (Datum) 0;
}

/* For pgtls_metrics: the CRL of each CA the server checks client certificates against. */
PG_FUNCTION_INFO_V1(pgtls_metrics_crls);
Datum
pgtls_metrics_crls(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	ListCell   *lc;

	srf_begin(fcinfo, 4);
	caller = pgtls_work_begin();
	foreach(lc, pgtls_crl_times())
	{
		PgtlsCrlTimes *t = lfirst(lc);
		Datum		values[4];
		bool		nulls[4] = {false};

		values[0] = CStringGetTextDatum(t->issuer);
		values[1] = CStringGetTextDatum(t->ca_fingerprint);
		values[2] = TimestampTzGetDatum(t->this_update);
		values[3] = TimestampTzGetDatum(t->next_update);
		nulls[3] = !t->has_next_update;
		srf_put(fcinfo, values, nulls);
	}
	pgtls_work_end(caller);
	return (Datum) 0;
}

/* The connection pgtls_hba_match() asks about. */
static void
connection_arg(FunctionCallInfo fcinfo, PgtlsConnection *conn)
{
	require_arg(fcinfo, 0, "role");
	require_arg(fcinfo, 1, "database");
	require_arg(fcinfo, 3, "ssl");
	memset(conn, 0, sizeof(*conn));
	conn->role = NameStr(*PG_GETARG_NAME(0));
	conn->roleid = get_role_oid(conn->role, true);
	if (!OidIsValid(conn->roleid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("role \"%s\" does not exist", conn->role)));
	conn->database = NameStr(*PG_GETARG_NAME(1));
	conn->physical_replication = strcmp(conn->database, "replication") == 0;
	conn->ssl = PG_GETARG_BOOL(3);
	pgtls_connection_set_address(conn, PG_ARGISNULL(2) ? NULL : PG_GETARG_INET_PP(2));
}

PG_FUNCTION_INFO_V1(pgtls_hba_match);
Datum
pgtls_hba_match(PG_FUNCTION_ARGS)
{
	PgtlsConnection conn;
	PgtlsHbaFile *file;
	MemoryContext caller;
	Datum		values[5];
	bool		nulls[5] = {false};
	int			i;

	connection_arg(fcinfo, &conn);
	srf_begin(fcinfo, 5);
	caller = pgtls_work_begin();
	file = pgtls_hba_read();
	if (file->nerrors > 0)
		ereport(WARNING,
				(errmsg("pg_hba.conf has %d invalid line%s; the answer ignores them", file->nerrors,
						file->nerrors == 1 ? "" : "s"),
				 errdetail("While any line is invalid the server keeps the rules it loaded before and will not start."),
				 errhint("SELECT * FROM pgtls_hba_check() lists them.")));
	if (conn.ssl && !EnableSSL)
		ereport(WARNING,
				(errmsg("ssl is off, so no connection can use TLS")));
	i = pgtls_hba_find(file, &conn);
	if (i < 0)
	{
		nulls[0] = nulls[1] = nulls[2] = nulls[3] = true;
		values[4] = CStringGetTextDatum("no matching rule");
	}
	else
	{
		HbaLine    *hba = file->rules[i].hba;
		List	   *options = pgtls_hba_options(&file->rules[i]);

		values[0] = Int32GetDatum(file->rules[i].line);
		values[1] = CStringGetTextDatum(pgtls_hba_type_name(hba->conntype));
		values[2] = CStringGetTextDatum(hba_authname(hba->auth_method));
		values[3] = pgtls_text_array(options);
		nulls[3] = options == NIL;
		values[4] = CStringGetTextDatum(pgtls_hba_mask(&file->rules[i],
													   pgtls_hba_verdict(hba, &conn, pgtls_ident_read())));
	}
	srf_put(fcinfo, values, nulls);
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_explain_login);
Datum
pgtls_explain_login(PG_FUNCTION_ARGS)
{
	text	   *pem;
	List	   *certs;
	inet	   *address;
	char	   *host;
	MemoryContext caller;
	ListCell   *lc;

	require_arg(fcinfo, 0, "certificate");
	require_arg(fcinfo, 1, "role");
	require_arg(fcinfo, 2, "database");
	require_arg(fcinfo, 3, "address");
	pem = PG_GETARG_TEXT_PP(0);
	address = PG_GETARG_INET_PP(3);
	srf_begin(fcinfo, 3);
	caller = pgtls_work_begin();
	certs = pgtls_read_cert_list(VARDATA_ANY(pem), VARSIZE_ANY_EXHDR(pem));
	if (certs == NIL)
		(void) pgtls_parse_cert(VARDATA_ANY(pem), VARSIZE_ANY_EXHDR(pem), "certificate", PGTLS_CERT_TEXT_HINT);
	host = text_to_cstring(DatumGetTextPP(DirectFunctionCall1(network_host, InetPGetDatum(address))));
	foreach(lc, pgtls_login_steps(certs, NameStr(*PG_GETARG_NAME(1)), NameStr(*PG_GETARG_NAME(2)),
								  address, host))
	{
		PgtlsLoginStep *s = lfirst(lc);
		Datum		values[3];
		bool		nulls[3] = {false};

		values[0] = CStringGetTextDatum(s->step);
		nulls[1] = s->ok < 0;
		values[1] = BoolGetDatum(s->ok == 1);
		values[2] = CStringGetTextDatum(s->detail);
		srf_put(fcinfo, values, nulls);
	}
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_refresh_crl);
Datum
pgtls_refresh_crl(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	int			listed;

	pgtls_require_superuser("rewrite the CRL");
	caller = pgtls_work_begin();
	if (!RecoveryInProgress())
	{
		(void) pgtls_settle_journal();
		(void) pgtls_compact_journal();
	}
	listed = pgtls_crl_refresh();
	pgtls_work_end(caller);
	PG_RETURN_INT32(listed);
}

PG_FUNCTION_INFO_V1(pgtls_claim_registry);
Datum
pgtls_claim_registry(PG_FUNCTION_ARGS)
{
	MemoryContext caller;

	pgtls_require_superuser("create the registry");
	caller = pgtls_work_begin();
	pgtls_registry_claim();
	(void) pgtls_adopt_crl_revocations();
	pgtls_work_end(caller);
	PG_RETURN_VOID();
}

/* May this DROP take the registry with it (the extension, its schema, or what a role owns)? */
static bool
drop_may_take_registry(Node *parsetree)
{
	const char *target;
	ListCell   *lc;

	if (IsA(parsetree, DropOwnedStmt))
		return true;
	if (!IsA(parsetree, DropStmt))
		return false;
	if (((DropStmt *) parsetree)->removeType == OBJECT_EXTENSION)
		target = "pgtls_admin";
	else if (((DropStmt *) parsetree)->removeType == OBJECT_SCHEMA)
		target = get_namespace_name(get_rel_namespace(pgtls_registry_relid()));
	else
		return false;
	foreach(lc, ((DropStmt *) parsetree)->objects)
		if (IsA(lfirst(lc), String) && strcmp(strVal(lfirst(lc)), target) == 0)
			return true;
	return false;
}

PG_FUNCTION_INFO_V1(pgtls_drop_guard);
Datum
pgtls_drop_guard(PG_FUNCTION_ARGS)
{
	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pgtls_drop_guard() runs as an event trigger only")));
	/* what the registry never recorded must stay revoked in the next one */
	if (!RecoveryInProgress() &&
		drop_may_take_registry(((EventTriggerData *) fcinfo->context)->parsetree))
		pgtls_journal_orphan_strays();
	pgtls_release_registry_if_dropped();
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(pgtls_registry_merge);
Datum
pgtls_registry_merge(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) || !TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("pgtls_registry_merge() runs as a BEFORE INSERT row trigger only")));
	return PointerGetDatum(pgtls_registry_merge_row(trigdata));
}

/*
 * The client-format functions take private keys and passphrases: their
 * errors are logged without the statement.
 */
static EVP_PKEY *
key_arg(FunctionCallInfo fcinfo, int n)
{
	text	   *pem;

	pem = pem_arg(fcinfo, n, "private_key");
	return pgtls_parse_private_key(VARDATA_ANY(pem), VARSIZE_ANY_EXHDR(pem),
								   "private_key", PGTLS_KEY_TEXT_HINT);
}

static char *
passphrase_arg(FunctionCallInfo fcinfo, int n)
{
	char	   *passphrase;

	passphrase = text_to_cstring(pem_arg(fcinfo, n, "passphrase"));
	pgtls_own_secret(passphrase, strlen(passphrase));
	return passphrase;
}

static X509 *
cert_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	text	   *pem;

	pem = pem_arg(fcinfo, n, name);
	return pgtls_parse_cert(VARDATA_ANY(pem), VARSIZE_ANY_EXHDR(pem), name, PGTLS_CERT_TEXT_HINT);
}

static void *
pkcs8_der_work(FunctionCallInfo fcinfo)
{
	return pgtls_key_to_pkcs8_der(key_arg(fcinfo, 0));
}

static void *
encrypt_key_work(FunctionCallInfo fcinfo)
{
	EVP_PKEY   *key = key_arg(fcinfo, 0);

	return pgtls_encrypt_private_key(key, passphrase_arg(fcinfo, 1));
}

static void *
pkcs12_work(FunctionCallInfo fcinfo)
{
	X509	   *cert = cert_arg(fcinfo, 0, "certificate");
	EVP_PKEY   *key = key_arg(fcinfo, 1);
	char	   *passphrase = passphrase_arg(fcinfo, 2);
	X509	   *ca = PG_ARGISNULL(3) ? NULL : cert_arg(fcinfo, 3, "ca_certificate");

	return pgtls_make_pkcs12(cert, key, passphrase, ca);
}

PG_FUNCTION_INFO_V1(pgtls_pkcs8_der);
Datum
pgtls_pkcs8_der(PG_FUNCTION_ARGS)
{
	return run_with_secret_args(fcinfo, pkcs8_der_work);
}

PG_FUNCTION_INFO_V1(pgtls_encrypt_key);
Datum
pgtls_encrypt_key(PG_FUNCTION_ARGS)
{
	return run_with_secret_args(fcinfo, encrypt_key_work);
}

PG_FUNCTION_INFO_V1(pgtls_pkcs12);
Datum
pgtls_pkcs12(PG_FUNCTION_ARGS)
{
	return run_with_secret_args(fcinfo, pkcs12_work);
}
