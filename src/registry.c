/*
 * registry.c
 *		The pgtls_certificates table: one row for every certificate issued.
 *		The only file that runs SQL.
 *
 * Rows are written in the issuing transaction, so a certificate that was
 * returned to a caller is always recorded.  Every query runs as the owner of
 * the extension, so a role that was only granted EXECUTE can issue or revoke
 * without holding any privilege on the table; issued_by still records the
 * calling user.  Private keys are never stored.
 *
 * Running as the owner means nothing of the caller's may run: each call
 * enters a new GUC nest level with search_path = pg_catalog, pg_temp (pg_temp
 * last, else the caller's temporary types and tables come first), as a
 * security-restricted operation, and every query names its operators,
 * functions, types and table with their schema.  Plans are prepared inside
 * that state and keep its search_path.
 */
#include "pgtls_stores.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

typedef enum RegistryQuery
{
	Q_INSERT,
	Q_REVOKE,
	Q_STATE,
	Q_REVOKED_LIST,
	Q_LOOKUP,
	Q_EXPIRING,
	Q_ROW_XMAX,
	Q_LIVE_CLIENTS,
	Q_COUNT
} RegistryQuery;

/*
 * %1$s is the extension's schema, quoted.  Every operator and function is
 * qualified with pg_catalog, and every type too.  OPERATOR() syntax gives
 * every operator the same precedence: parenthesize.
 */
static const struct
{
	const char *sql;
	int			nargs;
	Oid			argtypes[12];
}			queries[Q_COUNT] =
{
	[Q_INSERT] = {
		"INSERT INTO %1$s.pgtls_certificates "
		"(serial, kind, role, subject, san, key_type, not_before, not_after, "
		" fingerprint_sha256, certificate, issued_by, issued_at, role_oid) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, pg_catalog.now(), $12) "
		"ON CONFLICT (serial) DO NOTHING",
		12, {TEXTOID, TEXTOID, NAMEOID, TEXTOID, TEXTARRAYOID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, NAMEOID, OIDOID}
	},
	[Q_REVOKE] = {
		"UPDATE %1$s.pgtls_certificates "
		"SET revoked_at = pg_catalog.now(), revocation_reason = $2 "
		"WHERE serial OPERATOR(pg_catalog.=) $1 AND revoked_at IS NULL "
		"AND kind OPERATOR(pg_catalog.<>) 'ca'",
		2, {TEXTOID, TEXTOID}
	},
	[Q_STATE] = {
		"SELECT kind, revoked_at IS NOT NULL FROM %1$s.pgtls_certificates "
		"WHERE serial OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	},
	[Q_REVOKED_LIST] = {
		"SELECT serial, revoked_at, revocation_reason FROM %1$s.pgtls_certificates "
		"WHERE revoked_at IS NOT NULL AND kind OPERATOR(pg_catalog.<>) 'ca'",
		0, {InvalidOid}
	},
	[Q_LOOKUP] = {
		"SELECT kind, role, san, key_type, revoked_at IS NOT NULL, role_oid, subject "
		"FROM %1$s.pgtls_certificates WHERE serial OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	},
	[Q_EXPIRING] = {
		"SELECT pg_catalog.count(*)::pg_catalog.int4, pg_catalog.min(not_after) "
		"FROM %1$s.pgtls_certificates "
		"WHERE kind OPERATOR(pg_catalog.=) 'client' AND revoked_at IS NULL "
		"AND not_after OPERATOR(pg_catalog.>) pg_catalog.now() "
		"AND not_after OPERATOR(pg_catalog.<=) "
		"(pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(days => $1))",
		1, {INT4OID}
	},
	[Q_ROW_XMAX] = {
		"SELECT xmax FROM %1$s.pgtls_certificates WHERE serial OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	},
	[Q_LIVE_CLIENTS] = {
		"SELECT serial, role, certificate FROM %1$s.pgtls_certificates "
		"WHERE kind OPERATOR(pg_catalog.=) 'client' AND revoked_at IS NULL "
		"AND not_after OPERATOR(pg_catalog.>) pg_catalog.now() ORDER BY issued_at, serial",
		0, {InvalidOid}
	},
};

static SPIPlanPtr plans[Q_COUNT];
static Oid	plans_namespace = InvalidOid;

typedef struct RegistryCall
{
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
	Oid			namespace;
} RegistryCall;

/* The extension's schema and owner, from pg_extension. */
static void
extension_schema_owner(Oid *namespace, Oid *owner)
{
	Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	ScanKeyInit(&key, Anum_pg_extension_extname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum("pgtls_admin"));
	scan = systable_beginscan(rel, ExtensionNameIndexId, true, NULL, 1, &key);
	tup = systable_getnext(scan);
	if (!HeapTupleIsValid(tup))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("extension \"pgtls_admin\" is not installed in this database"),
				 errhint("Run CREATE EXTENSION pgtls_admin.")));
	*namespace = ((Form_pg_extension) GETSTRUCT(tup))->extnamespace;
	*owner = ((Form_pg_extension) GETSTRUCT(tup))->extowner;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
}

/*
 * Switch to the extension owner in a security-restricted operation, pin
 * search_path in a new GUC nest level, and connect SPI.  An ERROR anywhere
 * after this unwinds all three with the (sub)transaction.
 */
static void
registry_enter(RegistryCall *call)
{
	Oid			owner;

	extension_schema_owner(&call->namespace, &owner);

	GetUserIdAndSecContext(&call->save_userid, &call->save_sec);
	SetUserIdAndSecContext(owner, call->save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	call->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
}

static void
registry_leave(RegistryCall *call)
{
	SPI_finish();
	AtEOXact_GUC(true, call->save_nestlevel);
	SetUserIdAndSecContext(call->save_userid, call->save_sec);
}

static SPIPlanPtr
registry_plan(RegistryCall *call, RegistryQuery q)
{
	if (plans_namespace != call->namespace)
	{
		for (int i = 0; i < Q_COUNT; i++)
		{
			if (plans[i] != NULL)
				SPI_freeplan(plans[i]);
			plans[i] = NULL;
		}
		plans_namespace = call->namespace;
	}
	if (plans[q] == NULL)
	{
		char	   *sql = psprintf(queries[q].sql,
								   quote_identifier(get_namespace_name(call->namespace)));
		SPIPlanPtr	plan = SPI_prepare(sql, queries[q].nargs, (Oid *) queries[q].argtypes);

		if (plan == NULL)
			elog(ERROR, "SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
		if (SPI_keepplan(plan) != 0)
			elog(ERROR, "SPI_keepplan failed");
		plans[q] = plan;
	}
	return plans[q];
}

/*
 * Record cert and return its PEM, which callers reuse rather than encode
 * again.  role and role_oid: the role a client certificate is for, whose
 * OID tells a dropped and re-created role of the same name apart.
 * key_type NULL: derive it from the certificate.  A serial that is
 * already recorded is kept for a CA (re-importing the same CA) and is an
 * error for anything else.
 */
text *
pgtls_registry_insert(X509 *cert, const char *kind, const char *role, Oid role_oid,
					  const char *key_type)
{
	RegistryCall call;
	PgtlsCertInfo info;
	Datum		values[12];
	char		nulls[12];
	NameData	role_name;
	NameData	issued_by;
	text	   *pem = pgtls_cert_pem(cert);
	int			rc;

	pgtls_describe_cert_brief(cert, &info);
	if (key_type == NULL && X509_get0_pubkey(cert) != NULL)
	{
		int			bits;

		key_type = pgtls_key_type_of(X509_get0_pubkey(cert), &bits);
	}
	memset(nulls, ' ', sizeof(nulls));
	values[0] = CStringGetTextDatum(info.serial);
	values[1] = CStringGetTextDatum(kind);
	if (role != NULL)
	{
		namestrcpy(&role_name, role);
		values[2] = NameGetDatum(&role_name);
		values[11] = ObjectIdGetDatum(role_oid);
	}
	else
		nulls[2] = nulls[11] = 'n';
	values[3] = CStringGetTextDatum(info.subject);
	if (info.san != NIL)
		values[4] = pgtls_text_array(info.san);
	else
		nulls[4] = 'n';
	values[5] = CStringGetTextDatum(key_type ? key_type : "unknown");
	values[6] = TimestampTzGetDatum(info.not_before);
	values[7] = TimestampTzGetDatum(info.not_after);
	values[8] = CStringGetTextDatum(info.fingerprint_sha256);
	values[9] = PointerGetDatum(pem);
	namestrcpy(&issued_by, GetUserNameFromId(GetUserId(), false));
	values[10] = NameGetDatum(&issued_by);

	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_INSERT), values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not record the certificate: %s", SPI_result_code_string(rc));
	if (SPI_processed != 1 && strcmp(kind, "ca") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("serial number %s is already recorded", info.serial)));
	registry_leave(&call);
	return pem;
}

/*
 * Mark serial revoked.  Returns true if it was revoked now, false if it
 * already was; an unknown serial or a CA is an error.
 */
bool
pgtls_registry_revoke(const char *serial, const char *reason)
{
	RegistryCall call;
	Datum		values[2] = {CStringGetTextDatum(serial), CStringGetTextDatum(reason)};
	bool		isnull;
	char	   *kind;
	int			rc;

	registry_enter(&call);
	/*
	 * An idle transaction that changed the row must not make us wait for
	 * ever: wait for it a few seconds, naming it, and let lock_timeout catch
	 * one that takes the row between the look and the UPDATE.
	 */
	(void) set_config_option("lock_timeout", "5s", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	rc = SPI_execute_plan(registry_plan(&call, Q_ROW_XMAX), values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not look up a serial: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
		pgtls_wait_for_xact(DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0],
																SPI_tuptable->tupdesc, 1, &isnull)),
							psprintf("the registry row of certificate %s", serial));
	rc = SPI_execute_plan(registry_plan(&call, Q_REVOKE), values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not revoke: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		registry_leave(&call);
		return true;
	}
	rc = SPI_execute_plan(registry_plan(&call, Q_STATE), values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not look up a serial: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no certificate with serial %s was issued here", serial),
				 errhint("Serials are listed in pgtls_certificates.")));
	kind = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (strcmp(kind, "ca") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("serial %s is a CA certificate, which cannot be revoked", serial),
				 errhint("Replace the CA with pgtls_init_ca(replace => true).")));
	/* recorded, not a CA, and the UPDATE matched nothing: already revoked */
	registry_leave(&call);
	return false;
}

/*
 * Every revoked serial with its time and reason, read with the newest
 * snapshot rather than the transaction's, so a caller holding the CRL lock
 * sees every revocation committed before it, whatever its isolation level.
 */
List *
pgtls_registry_revoked(void)
{
	RegistryCall call;
	MemoryContext caller = CurrentMemoryContext;
	List	   *result = NIL;
	int			rc;

	registry_enter(&call);
	rc = SPI_execute_snapshot(registry_plan(&call, Q_REVOKED_LIST), NULL, NULL,
							  GetLatestSnapshot(), InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not list revocations: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		MemoryContext old = MemoryContextSwitchTo(caller);
		PgtlsRevoked *r = palloc(sizeof(PgtlsRevoked));
		bool		isnull;

		r->serial = TextDatumGetCString(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		r->revoked_at = DatumGetTimestampTz(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		r->reason = TextDatumGetCString(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));
		result = lappend(result, r);
		MemoryContextSwitchTo(old);
	}
	registry_leave(&call);
	return result;
}

/* The registry row of serial, for renewal; false if there is none. */
bool
pgtls_registry_lookup(const char *serial, PgtlsRegistryRow *row)
{
	RegistryCall call;
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[1] = {CStringGetTextDatum(serial)};
	TupleDesc	desc;
	HeapTuple	tup;
	bool		isnull;
	Datum		d;
	int			rc;

	registry_enter(&call);
	/* not read-only: see rows this transaction wrote earlier in the same statement */
	rc = SPI_execute_plan(registry_plan(&call, Q_LOOKUP), values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not look up a serial: %s", SPI_result_code_string(rc));
	if (SPI_processed == 0)
	{
		registry_leave(&call);
		return false;
	}
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		memset(row, 0, sizeof(*row));
		row->kind = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		d = SPI_getbinval(tup, desc, 2, &isnull);
		row->role = isnull ? NULL : pstrdup(NameStr(*DatumGetName(d)));
		d = SPI_getbinval(tup, desc, 3, &isnull);
		if (!isnull)
		{
			Datum	   *elems;
			int			n;

			deconstruct_array(DatumGetArrayTypePCopy(d), TEXTOID, -1, false, TYPALIGN_INT,
							  &elems, NULL, &n);
			for (int i = 0; i < n; i++)
				row->san = lappend(row->san, TextDatumGetCString(elems[i]));
		}
		row->key_type = TextDatumGetCString(SPI_getbinval(tup, desc, 4, &isnull));
		row->revoked = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
		d = SPI_getbinval(tup, desc, 6, &isnull);
		row->role_oid = isnull ? InvalidOid : DatumGetObjectId(d);
		row->subject = TextDatumGetCString(SPI_getbinval(tup, desc, 7, &isnull));
		MemoryContextSwitchTo(old);
	}
	registry_leave(&call);
	return true;
}

/* How many live client certificates expire within days, and the first expiry. */
bool
pgtls_registry_expiring(int days, int *count, TimestampTz *first)
{
	RegistryCall call;
	Datum		values[1] = {Int32GetDatum(days)};
	bool		isnull;
	int			rc;

	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_EXPIRING), values, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count expiring certificates: %s", SPI_result_code_string(rc));
	*count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	*first = DatumGetTimestampTz(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (isnull)
		*count = 0;
	registry_leave(&call);
	return true;
}

/* Every client certificate that is neither revoked nor expired, oldest first. */
List *
pgtls_registry_live_clients(void)
{
	RegistryCall call;
	MemoryContext caller = CurrentMemoryContext;
	List	   *result = NIL;
	int			rc;

	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_LIVE_CLIENTS), NULL, NULL, true, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not list client certificates: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		MemoryContext old = MemoryContextSwitchTo(caller);
		PgtlsLiveCert *c = palloc(sizeof(PgtlsLiveCert));
		bool		isnull;
		Datum		d;

		c->serial = TextDatumGetCString(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		d = SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull);
		c->role = isnull ? NULL : pstrdup(NameStr(*DatumGetName(d)));
		c->pem = TextDatumGetCString(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));
		result = lappend(result, c);
		MemoryContextSwitchTo(old);
	}
	registry_leave(&call);
	return result;
}
