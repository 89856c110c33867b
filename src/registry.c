/*
 * registry.c
 *		The pgtls_certificates table: one row for every certificate issued.
 *
 * Rows are written in the issuing transaction, so a certificate that was
 * returned to a caller is always recorded.  The insert runs as the owner of
 * the extension's functions, so a role that was only granted EXECUTE can
 * issue without holding any privilege on the table; the row still records
 * the calling user in issued_by.  Private keys are never stored.
 */
#include "pgtls_admin.h"

#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#define REGISTRY_NARGS 11

static SPIPlanPtr insert_plan;
static Oid	insert_plan_namespace = InvalidOid;

static SPIPlanPtr
get_insert_plan(Oid namespace)
{
	static Oid	argtypes[REGISTRY_NARGS] = {
		TEXTOID, TEXTOID, NAMEOID, TEXTOID, TEXTARRAYOID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, NAMEOID
	};
	char	   *query;
	SPIPlanPtr	plan;

	if (insert_plan != NULL && insert_plan_namespace == namespace)
		return insert_plan;
	query = psprintf("INSERT INTO %s.pgtls_certificates "
					 "(serial, kind, role, subject, san, key_type, not_before, not_after, "
					 " fingerprint_sha256, certificate, issued_by, issued_at) "
					 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, pg_catalog.now()) "
					 "ON CONFLICT (serial) DO NOTHING",
					 quote_identifier(get_namespace_name(namespace)));
	plan = SPI_prepare(query, REGISTRY_NARGS, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	if (insert_plan != NULL)
		SPI_freeplan(insert_plan);
	insert_plan = plan;
	insert_plan_namespace = namespace;
	return plan;
}

/*
 * Record cert.  fn_oid is the calling SQL function: its schema is the
 * extension's and its owner writes the row.  A serial that is already
 * recorded is kept for a CA (re-importing the same CA) and is an error for
 * anything else.
 */
void
pgtls_registry_insert(Oid fn_oid, X509 *cert, const char *kind, const char *role)
{
	HeapTuple	proc;
	Oid			namespace;
	Oid			owner;
	Oid			save_userid;
	int			save_sec;
	PgtlsCertInfo info;
	Datum		values[REGISTRY_NARGS];
	char		nulls[REGISTRY_NARGS];
	NameData	role_name;
	NameData	issued_by;
	int			rc;

	proc = SearchSysCache1(PROCOID, ObjectIdGetDatum(fn_oid));
	if (!HeapTupleIsValid(proc))
		elog(ERROR, "cache lookup failed for function %u", fn_oid);
	namespace = ((Form_pg_proc) GETSTRUCT(proc))->pronamespace;
	owner = ((Form_pg_proc) GETSTRUCT(proc))->proowner;
	ReleaseSysCache(proc);

	pgtls_describe_cert(cert, &info);
	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(info.serial);
	values[1] = CStringGetTextDatum(kind);
	if (role != NULL)
	{
		namestrcpy(&role_name, role);
		values[2] = NameGetDatum(&role_name);
	}
	else
		nulls[2] = 'n';
	values[3] = CStringGetTextDatum(info.subject);
	if (info.san != NIL)
		values[4] = pgtls_text_array(info.san);
	else
		nulls[4] = 'n';
	values[5] = CStringGetTextDatum(info.key_type ? info.key_type : "unknown");
	values[6] = TimestampTzGetDatum(info.not_before);
	values[7] = TimestampTzGetDatum(info.not_after);
	values[8] = CStringGetTextDatum(info.fingerprint_sha256);
	values[9] = PointerGetDatum(pgtls_cert_pem(cert));
	namestrcpy(&issued_by, GetUserNameFromId(GetUserId(), false));
	values[10] = NameGetDatum(&issued_by);

	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	rc = SPI_execute_plan(get_insert_plan(namespace), values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not record the certificate: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1 && strcmp(kind, "ca") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("serial number %s is already recorded", info.serial)));
	SPI_finish();
	SetUserIdAndSecContext(save_userid, save_sec);
}
