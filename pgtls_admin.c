/*
 * pgtls_admin.c
 *		Entry points of pgtls_admin: the module magic, the GUCs and the
 *		SQL-callable functions.  The work is done in src/.
 */
#include "pgtls_admin.h"
#include "pgtls_compat.h"

#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

PG_MODULE_MAGIC;

char	   *pgtls_ca_cert_file = NULL;
char	   *pgtls_ca_key_file = NULL;
char	   *pgtls_crl_file = NULL;
int			pgtls_default_days = 365;
int			pgtls_max_days = 825;
int			pgtls_default_key_type = PGTLS_KEY_EC_P256;
int			pgtls_expiry_warning_days = 30;

static const struct config_enum_entry key_type_options[] = {
	{"ec-p256", PGTLS_KEY_EC_P256, false},
	{"ec-p384", PGTLS_KEY_EC_P384, false},
	{"ed25519", PGTLS_KEY_ED25519, false},
	{"rsa-2048", PGTLS_KEY_RSA_2048, false},
	{"rsa-3072", PGTLS_KEY_RSA_3072, false},
	{"rsa-4096", PGTLS_KEY_RSA_4096, false},
	{NULL, 0, false}
};

void		_PG_init(void);

void
_PG_init(void)
{
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
							   "Certificate revocation list written on every revocation.",
							   "Relative paths are under the data directory.",
							   &pgtls_crl_file, "pgtls/root.crl",
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
	MarkGUCPrefixReserved("pgtls_admin");
}

static void
require_arg(FunctionCallInfo fcinfo, int n, const char *name)
{
	if (PG_ARGISNULL(n))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

static PgtlsKeyType
key_type_arg(FunctionCallInfo fcinfo, int n)
{
	if (PG_ARGISNULL(n))
		return (PgtlsKeyType) pgtls_default_key_type;
	return pgtls_key_type_from_name(text_to_cstring(PG_GETARG_TEXT_PP(n)));
}

/* Copy a result out of the work context before it is deleted. */
static text *
copy_text_to(MemoryContext target, text *t)
{
	MemoryContext old = MemoryContextSwitchTo(target);
	text	   *copy = (text *) PG_DETOAST_DATUM_COPY(PointerGetDatum(t));

	MemoryContextSwitchTo(old);
	return copy;
}

PG_FUNCTION_INFO_V1(pgtls_init_ca);
Datum
pgtls_init_ca(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	text	   *pem;

	pgtls_require_superuser("create a CA");
	require_arg(fcinfo, 0, "subject");
	require_arg(fcinfo, 1, "days");
	require_arg(fcinfo, 3, "replace");
	caller = pgtls_work_begin();
	pem = pgtls_ca_init(text_to_cstring(PG_GETARG_TEXT_PP(0)), PG_GETARG_INT32(1),
						key_type_arg(fcinfo, 2), PG_GETARG_BOOL(3),
						fcinfo->flinfo->fn_oid);
	pem = copy_text_to(caller, pem);
	pgtls_work_end(caller);
	PG_RETURN_TEXT_P(pem);
}

PG_FUNCTION_INFO_V1(pgtls_import_ca);
Datum
pgtls_import_ca(PG_FUNCTION_ARGS)
{
	MemoryContext caller;
	text	   *cert;
	text	   *key;
	text	   *pem;

	pgtls_require_superuser("import a CA");
	require_arg(fcinfo, 0, "certificate");
	require_arg(fcinfo, 1, "private_key");
	require_arg(fcinfo, 2, "replace");
	cert = PG_GETARG_TEXT_PP(0);
	key = PG_GETARG_TEXT_PP(1);
	caller = pgtls_work_begin();
	PG_TRY();
	{
		pem = pgtls_ca_import(VARDATA_ANY(cert), VARSIZE_ANY_EXHDR(cert),
							  VARDATA_ANY(key), VARSIZE_ANY_EXHDR(key),
							  PG_GETARG_BOOL(2), fcinfo->flinfo->fn_oid);
	}
	PG_CATCH();
	{
		pgtls_rethrow_hiding_statement(caller);
	}
	PG_END_TRY();
	pem = copy_text_to(caller, pem);
	pgtls_work_end(caller);
	PG_RETURN_TEXT_P(pem);
}

PG_FUNCTION_INFO_V1(pgtls_ca_cert);
Datum
pgtls_ca_cert(PG_FUNCTION_ARGS)
{
	MemoryContext caller = pgtls_work_begin();
	text	   *pem = copy_text_to(caller, pgtls_cert_pem(pgtls_ca_load_cert()));

	pgtls_work_end(caller);
	PG_RETURN_TEXT_P(pem);
}

PG_FUNCTION_INFO_V1(pgtls_issue_client);
Datum
pgtls_issue_client(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	char	   *role;
	int			days;
	PgtlsKeyType key_type;
	MemoryContext caller;
	X509	   *cert;
	X509	   *ca;
	EVP_PKEY   *key;
	Datum		values[5];
	bool		nulls[5] = {false};

	pgtls_check_issue_target(PG_ARGISNULL(0) ? NULL : PG_GETARG_NAME(0), PG_ARGISNULL(0));
	role = NameStr(*PG_GETARG_NAME(0));
	days = pgtls_validity_days(PG_ARGISNULL(1) ? 0 : PG_GETARG_INT32(1), PG_ARGISNULL(1));
	key_type = key_type_arg(fcinfo, 2);
	pgtls_init_srf(fcinfo);

	caller = pgtls_work_begin();
	cert = pgtls_issue_client_cert(role, days, key_type, &ca, &key);
	pgtls_registry_insert(fcinfo->flinfo->fn_oid, cert, "client", role);
	values[0] = CStringGetTextDatum(pgtls_serial_hex(X509_get0_serialNumber(cert)));
	values[1] = PointerGetDatum(pgtls_cert_pem(cert));
	values[2] = PointerGetDatum(pgtls_private_key_pem(key));
	values[3] = PointerGetDatum(pgtls_cert_pem(ca));
	values[4] = TimestampTzGetDatum(pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(cert)));
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	pgtls_work_end(caller);
	return (Datum) 0;
}

PG_FUNCTION_INFO_V1(pgtls_cert_info);
Datum
pgtls_cert_info(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	text	   *pem = PG_GETARG_TEXT_PP(0);
	MemoryContext caller;
	PgtlsCertInfo info;
	Datum		values[13];
	bool		nulls[13] = {false};

	pgtls_init_srf(fcinfo);
	caller = pgtls_work_begin();
	pgtls_describe_cert(pgtls_parse_cert(VARDATA_ANY(pem), VARSIZE_ANY_EXHDR(pem), "certificate",
										 PGTLS_CERT_TEXT_HINT),
						&info);
	values[0] = CStringGetTextDatum(info.subject);
	values[1] = CStringGetTextDatum(info.issuer);
	values[2] = CStringGetTextDatum(info.serial);
	values[3] = TimestampTzGetDatum(info.not_before);
	values[4] = TimestampTzGetDatum(info.not_after);
	values[5] = pgtls_text_array(info.san);
	nulls[5] = info.san == NIL;
	values[6] = pgtls_text_array(info.eku);
	nulls[6] = info.eku == NIL;
	values[7] = pgtls_text_array(info.key_usage);
	nulls[7] = info.key_usage == NIL;
	nulls[8] = info.key_type == NULL;
	values[8] = nulls[8] ? (Datum) 0 : CStringGetTextDatum(info.key_type);
	values[9] = Int32GetDatum(info.key_bits);
	values[10] = CStringGetTextDatum(info.signature_algorithm);
	values[11] = BoolGetDatum(info.is_ca);
	values[12] = CStringGetTextDatum(info.fingerprint_sha256);
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	pgtls_work_end(caller);
	return (Datum) 0;
}
