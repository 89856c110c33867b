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
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "utils/guc.h"
#include "utils/xid8.h"
#include "utils/rel.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "executor/executor.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "storage/sinvaladt.h"
#include "utils/relcache.h"

typedef enum RegistryQuery
{
	Q_INSERT,
	Q_REVOKE,
	Q_STATE,
	Q_REVOKED_LIST,
	Q_LOOKUP,
	Q_EXPIRING,
	Q_ROW_XMAX,
	Q_ROLE_REPLACED,
	Q_REVOKE_SERIAL,
	Q_INSERT_SETTLED,
	Q_KNOWN,
	Q_XMIN,
	Q_CHANGES,
	Q_MERGE,
	Q_SERIAL_STATE,
	Q_LIVE_CLIENTS,
	Q_INSERT_MANY,
	Q_RENEWAL,
	Q_EXPIRY_DUE,
	Q_TIDY,
	Q_SELF_RENEWED,
	Q_LOOKUP_SHARE,
	Q_SELF_DESCENDANTS,
	Q_REVOKE_AGAIN,
	Q_CAS,
	Q_CA_SET_STATE,
	Q_CA_USE,
	Q_CA_REVOKE_ALL,
	Q_TRUSTED,
	Q_TRUST_PUT,
	Q_TRUST_DELETE,
	Q_CRL_STORE,
	Q_CRLS_STORED,
	Q_TRUST_DIGEST,
	Q_OUTLIVING,
	Q_COUNT
} RegistryQuery;

/* how many sessions an ends_sessions value ends: none 0, except_superusers 1, all (or NULL) 2 */
#define RANK(e) "(CASE WHEN " e " IS NULL THEN 2 WHEN " e " OPERATOR(pg_catalog.=) 'none' THEN 0 " \
	"WHEN " e " OPERATOR(pg_catalog.=) 'except_superusers' THEN 1 ELSE 2 END)"

/*
 * %1$s is the extension's schema, quoted.  Every operator and function is
 * qualified with pg_catalog, and every type too.  OPERATOR() syntax gives
 * every operator the same precedence: parenthesize.
 */
static const struct
{
	const char *sql;
	int			nargs;
	Oid			argtypes[13];
}			queries[Q_COUNT] =
{
	[Q_INSERT] = {
		"INSERT INTO %1$s.pgtls_certificates "
		"(serial, kind, role, subject, san, key_type, not_before, not_after, "
		" fingerprint_sha256, certificate, issued_by, issued_at, role_oid, issuer_fingerprint) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, pg_catalog.now(), $12, $13) "
		"ON CONFLICT (serial) DO NOTHING",
		13, {TEXTOID, TEXTOID, NAMEOID, TEXTOID, TEXTARRAYOID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, NAMEOID, OIDOID, TEXTOID}
	},
	[Q_REVOKE] = {
		"UPDATE %1$s.pgtls_certificates "
		"SET revoked_at = pg_catalog.now(), revocation_reason = $2, ends_sessions = $3, "
		"change_xid = pg_catalog.pg_current_xact_id() "
		"WHERE serial OPERATOR(pg_catalog.=) $1 AND revoked_at IS NULL "
		"AND kind OPERATOR(pg_catalog.<>) 'ca'",
		3, {TEXTOID, TEXTOID, TEXTOID}
	},
	/*
	 * Revoked already: a stronger ends_sessions (none < except_superusers <
	 * all; NULL is all) or reason keyCompromise is recorded as a change, so
	 * every node's worker sees it.
	 */
	[Q_REVOKE_AGAIN] = {
		"UPDATE %1$s.pgtls_certificates "
		"SET ends_sessions = CASE WHEN " RANK("$3") " OPERATOR(pg_catalog.>) " RANK("ends_sessions")
		" THEN $3 ELSE ends_sessions END, "
		"revocation_reason = CASE WHEN $2 OPERATOR(pg_catalog.=) 'keyCompromise' THEN $2 "
		"ELSE revocation_reason END, "
		"change_xid = pg_catalog.pg_current_xact_id() "
		"WHERE serial OPERATOR(pg_catalog.=) $1 AND revoked_at IS NOT NULL "
		"AND kind OPERATOR(pg_catalog.<>) 'ca' "
		"AND (" RANK("$3") " OPERATOR(pg_catalog.>) " RANK("ends_sessions")
		" OR ($2 OPERATOR(pg_catalog.=) 'keyCompromise' AND "
		"     COALESCE(revocation_reason OPERATOR(pg_catalog.<>) 'keyCompromise', true)))",
		3, {TEXTOID, TEXTOID, TEXTOID}
	},
	[Q_STATE] = {
		"SELECT kind, revoked_at IS NOT NULL FROM %1$s.pgtls_certificates "
		"WHERE serial OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	},
	[Q_REVOKED_LIST] = {
		"SELECT serial, revoked_at, revocation_reason, issuer_fingerprint FROM %1$s.pgtls_certificates "
		"WHERE revoked_at IS NOT NULL AND kind OPERATOR(pg_catalog.<>) 'ca' "
		"UNION ALL "
		"SELECT s.serial, s.revoked_at, s.revocation_reason, NULL FROM %1$s.pgtls_revoked_serials s "
		"WHERE NOT EXISTS (SELECT FROM %1$s.pgtls_certificates c "
		"                  WHERE c.serial OPERATOR(pg_catalog.=) s.serial "
		"                  AND c.revoked_at IS NOT NULL)",
		0, {InvalidOid}
	},
	[Q_LOOKUP] = {
		"SELECT kind, role, san, key_type, revoked_at IS NOT NULL, role_oid, subject, "
		"not_before, not_after, fingerprint_sha256 "
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
	[Q_ROLE_REPLACED] = {
		"SELECT pg_catalog.count(*)::pg_catalog.int4, pg_catalog.min(c.serial), "
		"pg_catalog.min(c.role::pg_catalog.text) "
		"FROM %1$s.pgtls_certificates c JOIN pg_catalog.pg_authid a "
		"ON a.rolname OPERATOR(pg_catalog.=) c.role "
		"WHERE c.kind OPERATOR(pg_catalog.=) 'client' AND c.revoked_at IS NULL "
		"AND c.not_after OPERATOR(pg_catalog.>) pg_catalog.now() "
		"AND a.oid OPERATOR(pg_catalog.<>) c.role_oid",
		0, {InvalidOid}
	},
	[Q_REVOKE_SERIAL] = {
		"INSERT INTO %1$s.pgtls_revoked_serials (serial, revocation_reason, revoked_by, revoked_at) "
		"VALUES ($1, $2, $3, COALESCE($4, pg_catalog.now())) ON CONFLICT (serial) DO NOTHING",
		4, {TEXTOID, TEXTOID, NAMEOID, TIMESTAMPTZOID}
	},
	[Q_INSERT_SETTLED] = {
		"INSERT INTO %1$s.pgtls_certificates "
		"(serial, kind, role, subject, san, key_type, not_before, not_after, "
		" fingerprint_sha256, certificate, issued_by, issued_at, role_oid, issuer_fingerprint, "
		" revoked_at, revocation_reason, uncommitted) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, pg_catalog.now(), $12, $13, "
		" pg_catalog.now(), 'unspecified', true) "
		"ON CONFLICT (serial) DO NOTHING",
		13, {TEXTOID, TEXTOID, NAMEOID, TEXTOID, TEXTARRAYOID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, NAMEOID, OIDOID, TEXTOID}
	},
	/* the positions in $1 of the serials recorded, and the rows' xmin */
	[Q_KNOWN] = {
		"SELECT u.i, c.xmin FROM pg_catalog.unnest($1) WITH ORDINALITY AS u(serial, i) "
		"JOIN %1$s.pgtls_certificates c ON c.serial OPERATOR(pg_catalog.=) u.serial "
		"UNION ALL "
		"SELECT u.i, s.xmin FROM pg_catalog.unnest($1) WITH ORDINALITY AS u(serial, i) "
		"JOIN %1$s.pgtls_revoked_serials s ON s.serial OPERATOR(pg_catalog.=) u.serial",
		1, {TEXTARRAYOID}
	},
	[Q_XMIN] = {
		"SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::pg_catalog.text",
		0, {InvalidOid}
	},
	[Q_CHANGES] = {
		"SELECT serial, kind, role_oid, not_after, revoked_at IS NOT NULL, fingerprint_sha256, "
		"       ends_sessions "
		"FROM %1$s.pgtls_certificates "
		"WHERE change_xid OPERATOR(pg_catalog.>=) $1::pg_catalog.text::pg_catalog.xid8 "
		"UNION ALL "
		"SELECT serial, 'serial', NULL, NULL, true, NULL, NULL FROM %1$s.pgtls_revoked_serials "
		"WHERE change_xid OPERATOR(pg_catalog.>=) $1::pg_catalog.text::pg_catalog.xid8",
		1, {TEXTOID}
	},
	[Q_MERGE] = {
		"UPDATE %1$s.pgtls_certificates SET "
		"revoked_at = LEAST(revoked_at, $2), "
		"revocation_reason = CASE WHEN revoked_at IS NULL OR revoked_at OPERATOR(pg_catalog.>) $2 "
		"                    THEN $3 ELSE revocation_reason END, "
		"change_xid = pg_catalog.pg_current_xact_id() "
		"WHERE serial OPERATOR(pg_catalog.=) $1",
		3, {TEXTOID, TIMESTAMPTZOID, TEXTOID}
	},
	[Q_INSERT_MANY] = {
		"INSERT INTO %1$s.pgtls_certificates "
		"(serial, kind, role, subject, san, key_type, not_before, not_after, "
		" fingerprint_sha256, certificate, issued_by, issued_at, role_oid, issuer_fingerprint) "
		"SELECT u.serial, u.kind, u.role, u.subject, u.san::pg_catalog.text[], u.key_type, "
		"       u.not_before, u.not_after, u.fingerprint, u.certificate, u.issued_by, "
		"       pg_catalog.now(), u.role_oid, u.issuer "
		"FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2), pg_catalog.unnest($3), "
		"                pg_catalog.unnest($4), pg_catalog.unnest($5), pg_catalog.unnest($6), "
		"                pg_catalog.unnest($7), pg_catalog.unnest($8), pg_catalog.unnest($9), "
		"                pg_catalog.unnest($10), pg_catalog.unnest($11), pg_catalog.unnest($12), "
		"                pg_catalog.unnest($13)) "
		"     AS u(serial, kind, role, subject, san, key_type, not_before, not_after, "
		"          fingerprint, certificate, issued_by, role_oid, issuer) "
		"ON CONFLICT (serial) DO NOTHING",
		13, {TEXTARRAYOID, TEXTARRAYOID, NAMEARRAYOID, TEXTARRAYOID, TEXTARRAYOID, TEXTARRAYOID,
		TIMESTAMPTZARRAYOID, TIMESTAMPTZARRAYOID, TEXTARRAYOID, TEXTARRAYOID, NAMEARRAYOID,
		OIDARRAYOID, TEXTARRAYOID}
	},
	[Q_SERIAL_STATE] = {
		"SELECT 1 FROM %1$s.pgtls_revoked_serials WHERE serial OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	},
	[Q_ROW_XMAX] = {
		"SELECT xmax FROM %1$s.pgtls_certificates WHERE serial OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	},
	[Q_CAS] = {
		"SELECT fingerprint_sha256, serial, ca_state, subject, not_before, not_after, certificate, "
		"ca_chain, ca_state_changed_at "
		"FROM %1$s.pgtls_certificates WHERE kind OPERATOR(pg_catalog.=) 'ca' ORDER BY issued_at, serial",
		0, {InvalidOid}
	},
	[Q_CA_SET_STATE] = {
		"UPDATE %1$s.pgtls_certificates SET ca_state = $2, ca_state_changed_at = pg_catalog.now(), "
		"ca_chain = COALESCE($3, ca_chain), change_xid = pg_catalog.pg_current_xact_id() "
		"WHERE kind OPERATOR(pg_catalog.=) 'ca' AND fingerprint_sha256 OPERATOR(pg_catalog.=) $1",
		3, {TEXTOID, TEXTOID, TEXTOID}
	},
	[Q_CA_USE] = {
		"SELECT pg_catalog.count(*) FILTER (WHERE live AND kind OPERATOR(pg_catalog.=) 'client')::pg_catalog.int4, "
		"pg_catalog.count(*) FILTER (WHERE live AND kind OPERATOR(pg_catalog.=) 'server')::pg_catalog.int4, "
		"pg_catalog.array_agg(DISTINCT role::pg_catalog.text ORDER BY role::pg_catalog.text) "
		"  FILTER (WHERE live AND role IS NOT NULL), "
		"pg_catalog.max(not_after) FILTER (WHERE live), "
		"pg_catalog.max(LEAST(not_after, COALESCE(revoked_at, not_after))), "
		"pg_catalog.array_agg(serial ORDER BY serial) FILTER (WHERE live AND kind OPERATOR(pg_catalog.=) 'server') "
		"FROM (SELECT kind, role, serial, not_after, revoked_at, "
		"             revoked_at IS NULL AND not_after OPERATOR(pg_catalog.>) pg_catalog.now() AS live "
		"      FROM %1$s.pgtls_certificates "
		"      WHERE issuer_fingerprint OPERATOR(pg_catalog.=) $1 AND kind OPERATOR(pg_catalog.<>) 'ca') c",
		1, {TEXTOID}
	},
	[Q_CA_REVOKE_ALL] = {
		"UPDATE %1$s.pgtls_certificates "
		"SET revoked_at = pg_catalog.now(), revocation_reason = $2, "
		"change_xid = pg_catalog.pg_current_xact_id() "
		"WHERE issuer_fingerprint OPERATOR(pg_catalog.=) $1 AND kind OPERATOR(pg_catalog.<>) 'ca' "
		"AND revoked_at IS NULL AND not_after OPERATOR(pg_catalog.>) pg_catalog.now()",
		2, {TEXTOID, TEXTOID}
	},
	[Q_TRUSTED] = {
		"SELECT fingerprint_sha256, subject, not_after, certificate, crl, crl_next_update, origin "
		"FROM %1$s.pgtls_trusted_cas ORDER BY added_at, fingerprint_sha256",
		0, {InvalidOid}
	},
	[Q_TRUST_PUT] = {
		"INSERT INTO %1$s.pgtls_trusted_cas AS t "
		"(fingerprint_sha256, subject, not_after, certificate, crl, crl_next_update, origin, added_by) "
		"VALUES ($1, $2, $3, $4, $5, $6, $7, $8) "
		"ON CONFLICT (fingerprint_sha256) DO UPDATE SET "
		"crl = COALESCE(EXCLUDED.crl, t.crl), "
		"crl_next_update = CASE WHEN EXCLUDED.crl IS NULL THEN t.crl_next_update "
		"                  ELSE EXCLUDED.crl_next_update END",
		8, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID, NAMEOID}
	},
	[Q_TRUST_DELETE] = {
		"DELETE FROM %1$s.pgtls_trusted_cas WHERE fingerprint_sha256 OPERATOR(pg_catalog.=) $1",
		1, {TEXTOID}
	},
	[Q_CRL_STORE] = {
		"INSERT INTO %1$s.pgtls_crls (issuer_fingerprint, crl, this_update, next_update) "
		"VALUES ($1, $2, $3, $4) "
		"ON CONFLICT (issuer_fingerprint) DO UPDATE SET crl = EXCLUDED.crl, "
		"this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update",
		4, {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID}
	},
	[Q_CRLS_STORED] = {
		"SELECT issuer_fingerprint, crl FROM %1$s.pgtls_crls",
		0, {InvalidOid}
	},
	[Q_TRUST_DIGEST] = {
		"SELECT pg_catalog.md5(pg_catalog.concat_ws('|', "
		" (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(':', fingerprint_sha256, ca_state, "
		"                                                      pg_catalog.md5(ca_chain)), ',' "
		"                               ORDER BY fingerprint_sha256) "
		"  FROM %1$s.pgtls_certificates WHERE kind OPERATOR(pg_catalog.=) 'ca'), "
		" (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(':', fingerprint_sha256, "
		"                                                      pg_catalog.md5(crl)), ',' "
		"                               ORDER BY fingerprint_sha256) "
		"  FROM %1$s.pgtls_trusted_cas), "
		" CASE WHEN $1 THEN (SELECT pg_catalog.string_agg(pg_catalog.concat_ws(':', issuer_fingerprint, "
		"                                                     pg_catalog.md5(crl)), ',' "
		"                                        ORDER BY issuer_fingerprint) "
		"                   FROM %1$s.pgtls_crls) END))",
		1, {BOOLOID}
	},
	[Q_OUTLIVING] = {
		"SELECT pg_catalog.count(*)::pg_catalog.int4, pg_catalog.min(c.serial), "
		"pg_catalog.min(ca.subject) "
		"FROM %1$s.pgtls_certificates c JOIN %1$s.pgtls_certificates ca "
		"ON ca.kind OPERATOR(pg_catalog.=) 'ca' "
		"AND ca.fingerprint_sha256 OPERATOR(pg_catalog.=) c.issuer_fingerprint "
		"WHERE c.kind OPERATOR(pg_catalog.<>) 'ca' AND c.revoked_at IS NULL "
		"AND c.not_after OPERATOR(pg_catalog.>) pg_catalog.now() "
		"AND c.not_after OPERATOR(pg_catalog.>) ca.not_after "
		"AND COALESCE(ca.ca_state, 'retired') OPERATOR(pg_catalog.<>) 'retired'",
		0, {InvalidOid}
	},
	[Q_LIVE_CLIENTS] = {
		"SELECT serial, role, certificate FROM %1$s.pgtls_certificates "
		"WHERE kind OPERATOR(pg_catalog.=) 'client' AND revoked_at IS NULL "
		"AND not_after OPERATOR(pg_catalog.>) pg_catalog.now() ORDER BY issued_at, serial",
		0, {InvalidOid}
	},
	[Q_RENEWAL] = {
		"INSERT INTO %1$s.pgtls_renewals (serial, previous, renewed_by) VALUES ($1, $2, $3) "
		"ON CONFLICT (serial) DO NOTHING",
		3, {TEXTOID, TEXTOID, NAMEOID}
	},
	/* live certificates that entered the warning window, not renewed, not warned yet */
	[Q_EXPIRY_DUE] = {
		"WITH due AS ("
		" SELECT c.serial, c.kind, c.role, c.not_after FROM %1$s.pgtls_certificates c"
		" WHERE c.revoked_at IS NULL"
		" AND c.not_after OPERATOR(pg_catalog.>) pg_catalog.now()"
		" AND c.not_after OPERATOR(pg_catalog.<=) "
		"     (pg_catalog.now() OPERATOR(pg_catalog.+) pg_catalog.make_interval(days => $1))"
		" AND (c.not_after OPERATOR(pg_catalog.-) c.not_before) OPERATOR(pg_catalog.>) "
		"     pg_catalog.make_interval(days => $1, secs => $2)"
		" AND NOT EXISTS (SELECT FROM %1$s.pgtls_renewals r"
		"                 WHERE r.previous OPERATOR(pg_catalog.=) c.serial)"
		" AND NOT EXISTS (SELECT FROM %1$s.pgtls_expiry_warnings w"
		"                 WHERE w.serial OPERATOR(pg_catalog.=) c.serial)), "
		"warned AS ("
		" INSERT INTO %1$s.pgtls_expiry_warnings (serial, not_after)"
		" SELECT serial, not_after FROM due ON CONFLICT (serial) DO NOTHING RETURNING serial) "
		"SELECT d.serial, d.kind, d.role, d.not_after FROM due d JOIN warned w"
		" ON w.serial OPERATOR(pg_catalog.=) d.serial ORDER BY d.not_after, d.serial",
		2, {INT4OID, FLOAT8OID}
	},
	/*
	 * Rows expired longer ago than $1 seconds ($3 for revoked ones), never a
	 * CA's nor $2's (the served certificate); with their warnings and
	 * renewals.
	 */
	[Q_TIDY] = {
		"WITH gone AS ("
		" DELETE FROM %1$s.pgtls_certificates"
		" WHERE kind OPERATOR(pg_catalog.<>) 'ca' AND serial OPERATOR(pg_catalog.<>) $2"
		" AND not_after OPERATOR(pg_catalog.<) "
		"     (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $1))"
		" AND (revoked_at IS NULL OR not_after OPERATOR(pg_catalog.<) "
		"     (pg_catalog.now() OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs => $3)))"
		" RETURNING serial), "
		"w AS (DELETE FROM %1$s.pgtls_expiry_warnings x USING gone g"
		"      WHERE x.serial OPERATOR(pg_catalog.=) g.serial), "
		"r AS (DELETE FROM %1$s.pgtls_renewals x USING gone g"
		"      WHERE x.serial OPERATOR(pg_catalog.=) g.serial) "
		"SELECT pg_catalog.count(*)::pg_catalog.int4 FROM gone",
		3, {FLOAT8OID, TEXTOID, FLOAT8OID}
	},
	[Q_SELF_RENEWED] = {
		"SELECT pg_catalog.count(*)::pg_catalog.int4 FROM %1$s.pgtls_certificates "
		"WHERE kind OPERATOR(pg_catalog.=) 'client' AND role_oid OPERATOR(pg_catalog.=) $1 "
		"AND issued_by OPERATOR(pg_catalog.=) $2 AND revoked_at IS NULL "
		"AND not_after OPERATOR(pg_catalog.>) pg_catalog.now()",
		2, {OIDOID, NAMEOID}
	},
	/* Q_LOOKUP, with the row locked against a concurrent revocation */
	[Q_LOOKUP_SHARE] = {
		"SELECT kind, role, san, key_type, revoked_at IS NOT NULL, role_oid, subject, "
		"not_before, not_after, fingerprint_sha256 "
		"FROM %1$s.pgtls_certificates WHERE serial OPERATOR(pg_catalog.=) $1 FOR SHARE",
		1, {TEXTOID}
	},
	/*
	 * Live client certificates renewed from $1 by pgtls_renew_self (renewed
	 * by the certificate's own role), directly or through such renewals of
	 * renewals, revoked or not.
	 */
	[Q_SELF_DESCENDANTS] = {
		"WITH RECURSIVE d(serial) AS ("
		" SELECT r.serial FROM %1$s.pgtls_renewals r"
		" JOIN %1$s.pgtls_certificates c ON c.serial OPERATOR(pg_catalog.=) r.serial"
		" WHERE r.previous OPERATOR(pg_catalog.=) $1 AND r.renewed_by OPERATOR(pg_catalog.=) c.role"
		" UNION"
		" SELECT r.serial FROM d"
		" JOIN %1$s.pgtls_renewals r ON r.previous OPERATOR(pg_catalog.=) d.serial"
		" JOIN %1$s.pgtls_certificates c ON c.serial OPERATOR(pg_catalog.=) r.serial"
		" WHERE r.renewed_by OPERATOR(pg_catalog.=) c.role) "
		"SELECT c.serial FROM d JOIN %1$s.pgtls_certificates c ON c.serial OPERATOR(pg_catalog.=) d.serial "
		"WHERE c.kind OPERATOR(pg_catalog.=) 'client' AND c.revoked_at IS NULL "
		"AND c.not_after OPERATOR(pg_catalog.>) pg_catalog.now() ORDER BY c.serial",
		1, {TEXTOID}
	},
};

/*
 * Rows of certificates issued inside a statement, written when the run
 * that issued them ends (statement.c), in one INSERT: most of the
 * database's cost of issuing was one INSERT per certificate.  Any other
 * registry query, and any statement run inside the issuing one, writes
 * them first.  Rows of a (sub)transaction that aborts are dropped with it
 * (the journal keeps those certificates).  A row written inside a
 * subtransaction younger than the one that issued it is kept until that
 * subtransaction ends: if it aborts, the row is owed again.
 */
typedef struct PendingRow
{
	Datum		values[13];
	char		nulls[13];
	int			nest;			/* transaction nest level it was issued at */
	int			written;		/* nest level it was written at (0: not yet) */
} PendingRow;

static struct
{
	MemoryContext cxt;			/* child of TopTransactionContext */
	List	   *rows;			/* PendingRow *, not written yet */
	List	   *written;		/* PendingRow *, written at a deeper level */
	int			depth;			/* the shallowest ExecutorRun that issued one */
	bool		flushing;
	bool		callbacks;
} pending;

static SPIPlanPtr plans[Q_COUNT];
static Oid	plans_namespace = InvalidOid;

typedef struct RegistryCall
{
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
	Oid			namespace;
} RegistryCall;

/* The registry table's OID, looked up once per backend and checked at every use. */
static Oid	cached_relid = InvalidOid;

/*
 * The extension's schema and owner: those of its registry table (found
 * through pg_extension once, then checked in the relation cache, so a
 * dropped and re-created extension is found again).
 */
static void
extension_schema_owner(Oid *namespace, Oid *owner)
{
	HeapTuple	tup;

	if (OidIsValid(cached_relid) &&
		HeapTupleIsValid(tup = SearchSysCache1(RELOID, ObjectIdGetDatum(cached_relid))))
	{
		Form_pg_class form = (Form_pg_class) GETSTRUCT(tup);
		bool		same = strcmp(NameStr(form->relname), "pgtls_certificates") == 0;

		*namespace = form->relnamespace;
		*owner = form->relowner;
		ReleaseSysCache(tup);
		if (same)
			return;
	}
	{
		Relation	rel = table_open(ExtensionRelationId, AccessShareLock);
		ScanKeyData key;
		SysScanDesc scan;

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
	cached_relid = get_relname_relid("pgtls_certificates", *namespace);
	if (!OidIsValid(cached_relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("the pgtls_admin registry table is missing")));
}

/* The OID of this database's registry table (the extension must be installed). */
Oid
pgtls_registry_relid(void)
{
	Oid			namespace;
	Oid			owner;

	extension_schema_owner(&namespace, &owner);
	return cached_relid;
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

	/* what this statement issued so far is part of what every query sees */
	if (pending.rows != NIL && !pending.flushing)
		pgtls_registry_flush(0);

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

/* True while this backend's own INSERT runs: the merge trigger lets it through. */
static bool own_insert = false;

/*
 * The 13 values of an INSERT of cert (Q_INSERT, Q_INSERT_SETTLED); returns
 * its PEM.  role and role_oid: the role a client certificate is for, whose
 * OID tells a dropped and re-created role of the same name apart.  key_type
 * NULL: derive it from the certificate.
 */
static text *
cert_values(X509 *cert, const char *kind, const char *role, Oid role_oid,
			const char *key_type, const char *issuer_fingerprint,
			Datum *values, char *nulls, NameData *role_name, NameData *issued_by)
{
	PgtlsCertInfo info;
	text	   *pem = pgtls_cert_pem(cert);

	pgtls_describe_cert_brief(cert, &info);
	if (key_type == NULL && X509_get0_pubkey(cert) != NULL)
	{
		int			bits;

		key_type = pgtls_key_type_of(X509_get0_pubkey(cert), &bits);
	}
	memset(nulls, ' ', 13);
	values[0] = CStringGetTextDatum(info.serial);
	values[1] = CStringGetTextDatum(kind);
	if (role != NULL)
	{
		namestrcpy(role_name, role);
		values[2] = NameGetDatum(role_name);
	}
	else
		nulls[2] = 'n';
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
	namestrcpy(issued_by, GetUserNameFromId(GetUserId(), false));
	values[10] = NameGetDatum(issued_by);
	values[11] = ObjectIdGetDatum(role_oid);
	nulls[11] = OidIsValid(role_oid) ? ' ' : 'n';
	if (issuer_fingerprint != NULL)
		values[12] = CStringGetTextDatum(issuer_fingerprint);
	else
		nulls[12] = 'n';
	return pem;
}

static int
execute_own_insert(RegistryCall *call, RegistryQuery q, Datum *values, char *nulls)
{
	int			rc;

	own_insert = true;
	PG_TRY();
	{
		rc = SPI_execute_plan(registry_plan(call, q), values, nulls, false, 0);
	}
	PG_FINALLY();
	{
		own_insert = false;
	}
	PG_END_TRY();
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not record a certificate: %s", SPI_result_code_string(rc));
	return (int) SPI_processed;
}

static void
pending_forget(void)
{
	pending.cxt = NULL;
	pending.rows = NIL;
	pending.written = NIL;
	pending.depth = 0;
}

static void
pending_xact_callback(XactEvent event, void *arg)
{
	if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE ||
		event == XACT_EVENT_PARALLEL_PRE_COMMIT)
		pgtls_registry_flush(0);
	else
		pending_forget();		/* the context went with TopTransactionContext */
}

static void
pending_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						 SubTransactionId parentSubid, void *arg)
{
	int			level = GetCurrentTransactionNestLevel();
	List	   *rows = NIL;
	List	   *written = NIL;
	ListCell   *lc;

	MemoryContext old;

	if ((event != SUBXACT_EVENT_COMMIT_SUB && event != SUBXACT_EVENT_ABORT_SUB) ||
		pending.cxt == NULL)
		return;
	old = MemoryContextSwitchTo(pending.cxt);
	foreach(lc, pending.rows)
	{
		PendingRow *row = lfirst(lc);

		if (row->nest < level)
			rows = lappend(rows, row);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
		{
			/* a released savepoint's rows are its parent's now */
			row->nest = level - 1;
			rows = lappend(rows, row);
		}
	}
	foreach(lc, pending.written)
	{
		PendingRow *row = lfirst(lc);

		if (row->written < level)
			written = lappend(written, row);
		else if (event == SUBXACT_EVENT_COMMIT_SUB)
		{
			row->written = level - 1;
			row->nest = Min(row->nest, level - 1);
			/* written at the level that issued it: it shares that level's fate */
			if (row->nest < row->written)
				written = lappend(written, row);
		}
		else if (row->nest < level)
		{
			/* its INSERT is undone but the certificate was issued: owed again */
			row->written = 0;
			rows = lappend(rows, row);
			pending.depth = 1;	/* written when the top-level run ends at the latest */
		}
	}
	pending.rows = rows;
	pending.written = written;
	MemoryContextSwitchTo(old);
}

/* A text[] (or name[], oid[], timestamptz[]) of column col of the pending rows. */
static Datum
pending_column(int col, Oid elemtype)
{
	int			n = list_length(pending.rows);
	Datum	   *elems = palloc(sizeof(Datum) * n);
	bool	   *nulls = palloc(sizeof(bool) * n);
	int			dims[1] = {n};
	int			lbs[1] = {1};
	int16		typlen;
	bool		typbyval;
	char		typalign;
	ListCell   *lc;
	int			i = 0;

	foreach(lc, pending.rows)
	{
		PendingRow *row = lfirst(lc);

		nulls[i] = row->nulls[col] == 'n';
		elems[i] = row->values[col];
		/* san travels as text and is cast back to text[] */
		if (col == 4 && !nulls[i])
		{
			Oid			out;
			bool		varlena;

			getTypeOutputInfo(TEXTARRAYOID, &out, &varlena);
			elems[i] = CStringGetTextDatum(OidOutputFunctionCall(out, row->values[col]));
		}
		i++;
	}
	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	return PointerGetDatum(construct_md_array(elems, nulls, 1, dims, lbs, elemtype,
											  typlen, typbyval, typalign));
}

/*
 * Write the pending rows issued at ExecutorRun depth >= depth (0: all),
 * that is, those of the run that just ended.
 */
void
pgtls_registry_flush(int depth)
{
	static const Oid elemtypes[13] = {TEXTOID, TEXTOID, NAMEOID, TEXTOID, TEXTOID, TEXTOID,
		TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, TEXTOID, NAMEOID, OIDOID, TEXTOID};
	RegistryCall call;
	Datum		values[13];
	int			n = list_length(pending.rows);
	int			level = GetCurrentTransactionNestLevel();
	int			done;
	ListCell   *lc;
	MemoryContext old;

	if (n == 0 || pending.depth < depth || pending.flushing)
		return;
	for (int i = 0; i < 13; i++)
		values[i] = pending_column(i, elemtypes[i]);
	pending.flushing = true;
	PG_TRY();
	{
		registry_enter(&call);
		done = execute_own_insert(&call, Q_INSERT_MANY, values, NULL);
		registry_leave(&call);
	}
	PG_FINALLY();
	{
		pending.flushing = false;
	}
	PG_END_TRY();
	if (done != n)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("%d of %d serial numbers issued by this statement were recorded already", n - done, n)));
	old = MemoryContextSwitchTo(pending.cxt);
	foreach(lc, pending.rows)
	{
		PendingRow *row = lfirst(lc);

		if (row->nest < level)
		{
			row->written = level;
			pending.written = lappend(pending.written, row);
		}
	}
	MemoryContextSwitchTo(old);
	pending.rows = NIL;
	pending.depth = 0;
	if (pending.written == NIL)
	{
		MemoryContextDelete(pending.cxt);
		pending.cxt = NULL;
	}
}

/* Keep cert's row for the end of the ExecutorRun issuing it; returns its PEM. */
static text *
pending_add(X509 *cert, const char *kind, const char *role, Oid role_oid,
			const char *key_type, const char *issuer_fingerprint)
{
	MemoryContext old;
	PendingRow *row;
	text	   *pem;

	if (!pending.callbacks)
	{
		RegisterXactCallback(pending_xact_callback, NULL);
		RegisterSubXactCallback(pending_subxact_callback, NULL);
		pending.callbacks = true;
	}
	if (pending.cxt == NULL)
		pending.cxt = AllocSetContextCreate(TopTransactionContext, "pgtls_admin registry rows",
											ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(pending.cxt);
	row = palloc(sizeof(PendingRow));
	pem = cert_values(cert, kind, role, role_oid, key_type, issuer_fingerprint,
					  row->values, row->nulls, palloc(sizeof(NameData)), palloc(sizeof(NameData)));
	row->nest = GetCurrentTransactionNestLevel();
	row->written = 0;
	pending.rows = lappend(pending.rows, row);
	if (pending.depth == 0 || pgtls_executor_depth < pending.depth)
		pending.depth = pgtls_executor_depth;
	MemoryContextSwitchTo(old);
	return (text *) PG_DETOAST_DATUM_COPY(PointerGetDatum(pem));
}

/*
 * Record cert, issued by the CA whose fingerprint is issuer_fingerprint, and
 * return its PEM, which callers reuse rather than encode again.  Inside a
 * statement a client or server certificate's row is written when the run
 * that issued it ends.  A serial that is already recorded is kept for a CA
 * (re-importing the same CA) and is an error for anything else.
 */
text *
pgtls_registry_insert(X509 *cert, const char *kind, const char *role, Oid role_oid,
					  const char *key_type, const char *issuer_fingerprint)
{
	RegistryCall call;
	Datum		values[13];
	char		nulls[13];
	NameData	role_name;
	NameData	issued_by;
	text	   *pem;

	if (pgtls_executor_depth > 0 && strcmp(kind, "ca") != 0)
		return pending_add(cert, kind, role, role_oid, key_type, issuer_fingerprint);
	pem = cert_values(cert, kind, role, role_oid, key_type, issuer_fingerprint,
					  values, nulls, &role_name, &issued_by);
	registry_enter(&call);
	if (execute_own_insert(&call, Q_INSERT, values, nulls) != 1 && strcmp(kind, "ca") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg("serial number %s is already recorded", TextDatumGetCString(values[0]))));
	registry_leave(&call);
	return pem;
}

/*
 * Is a row of serial being inserted or deleted by another transaction that
 * has not ended?  An INSERT of that serial would wait for it; this look
 * waits for nothing.  It looks as the unique check does: through the
 * primary key, with a dirty snapshot.
 */
static bool
row_in_flux(Datum serial, TransactionId *holder)
{
	Relation	rel = table_open(cached_relid, AccessShareLock);
	Relation	idx = index_open(RelationGetPrimaryKeyIndex(rel), AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	SnapshotData dirty;
	ScanKeyData key;
	IndexScanDesc scan;
	bool		busy = false;

	InitDirtySnapshot(dirty);
	ScanKeyEntryInitialize(&key, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], F_TEXTEQ, serial);
	scan = index_beginscan(rel, idx, &dirty, 1, 0);
	index_rescan(scan, &key, 1, NULL, 0);
	while (!busy && index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		TransactionId xid = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;

		if (TransactionIdIsValid(xid) && !TransactionIdIsCurrentTransactionId(xid))
		{
			*holder = xid;
			busy = true;
		}
	}
	index_endscan(scan);
	ExecDropSingleTupleTableSlot(slot);
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return busy;
}

/*
 * Record, as revoked, a certificate from the issuance journal whose issuing
 * transaction did not commit it.  A row of that serial that another
 * transaction is writing right now (a pgtls_revoke of it left open, say) is
 * not waited for: the result says so and names that transaction in
 * *holder.  Waits for a lock a few seconds at most.
 */
PgtlsSettleResult
pgtls_registry_insert_uncommitted(X509 *cert, const char *kind, Oid role_oid,
								  const char *issuer_fingerprint, TransactionId *holder)
{
	RegistryCall call;
	Datum		values[13];
	char		nulls[13];
	NameData	role_name;
	NameData	issued_by;
	char	   *role = OidIsValid(role_oid) ? GetUserNameFromId(role_oid, true) : NULL;
	int			n;

	*holder = InvalidTransactionId;
	(void) cert_values(cert, kind, role, role_oid, NULL, issuer_fingerprint,
					   values, nulls, &role_name, &issued_by);
	registry_enter(&call);
	/* one who starts writing the row between the look and the INSERT: see lock_timeout */
	if (LockTimeout == 0 || LockTimeout > 5000)
		(void) set_config_option("lock_timeout", "5s", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (row_in_flux(values[0], holder))
	{
		registry_leave(&call);
		return PGTLS_SETTLE_HELD;
	}
	n = execute_own_insert(&call, Q_INSERT_SETTLED, values, nulls);
	registry_leave(&call);
	return n == 1 ? PGTLS_SETTLE_RECORDED : PGTLS_SETTLE_PRESENT;
}

/*
 * List serial in the CRL although no certificate of that serial is
 * recorded (lost with an asynchronous failover, say), revoked at
 * revoked_at (0: now).  Returns false if it was listed already.
 */
bool
pgtls_registry_revoke_unknown(const char *serial, const char *reason, TimestampTz revoked_at)
{
	RegistryCall call;
	NameData	revoked_by;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			rc;
	bool		listed;

	namestrcpy(&revoked_by, GetUserNameFromId(GetUserId(), false));
	values[0] = CStringGetTextDatum(serial);
	values[1] = CStringGetTextDatum(reason);
	values[2] = NameGetDatum(&revoked_by);
	values[3] = TimestampTzGetDatum(revoked_at);
	nulls[3] = revoked_at == 0 ? 'n' : ' ';
	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_REVOKE_SERIAL), values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not record a revocation: %s", SPI_result_code_string(rc));
	listed = SPI_processed == 1;	/* SPI_finish() restores the caller's count */
	registry_leave(&call);
	return listed;
}

/*
 * Which of serials[0..n) the registry records (pgtls_certificates, or a
 * bare revoked serial): known[i] for serials[i].  Asked with the newest
 * snapshot, so that whatever committed before the call counts; a row this
 * transaction wrote does not, as it may still roll back.
 */
void
pgtls_registry_known(const char *const *serials, int n, bool *known)
{
	RegistryCall call;
	Datum	   *elems;
	Datum		values[1];
	int			rc;

	if (n == 0)
		return;
	elems = palloc(sizeof(Datum) * n);
	for (int i = 0; i < n; i++)
		elems[i] = CStringGetTextDatum(serials[i]);
	values[0] = PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
	registry_enter(&call);
	rc = SPI_execute_snapshot(registry_plan(&call, Q_KNOWN), values, NULL,
							  GetLatestSnapshot(), InvalidSnapshot, true, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not look up serials: %s", SPI_result_code_string(rc));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		i = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		TransactionId xmin = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[r],
																  SPI_tuptable->tupdesc, 2, &isnull));

		if (i >= 1 && i <= n && !TransactionIdIsCurrentTransactionId(xmin))
			known[i - 1] = true;
	}
	registry_leave(&call);
	pfree(DatumGetPointer(values[0]));
	pfree(elems);
}

/*
 * The pid of a process holding a lock on the registry table that keeps
 * readers out (LOCK TABLE, ALTER TABLE, VACUUM FULL, a DROP not yet
 * committed), or 0 if none does now.
 */
int
pgtls_registry_lock_holder(void)
{
	LOCKTAG		tag;
	VirtualTransactionId *vxids;

	SET_LOCKTAG_RELATION(tag, MyDatabaseId, pgtls_registry_relid());
	vxids = GetLockConflicts(&tag, AccessShareLock, NULL);
	for (int i = 0; VirtualTransactionIdIsValid(vxids[i]); i++)
	{
		PGPROC	   *proc = BackendIdGetProc(vxids[i].backendId);

		if (proc != NULL && proc->pid != MyProcPid)
			return proc->pid;
	}
	return 0;
}

/* Rows of registry changes read at a time. */
#define CHANGES_BATCH 10000

/*
 * Every registry change (rows whose change_xid >= since) as one snapshot
 * sees it, passed to fn, and the snapshot's xmin: every change not seen
 * here has a change_xid at or above it, so it is the next "since".  The
 * caller runs this in a REPEATABLE READ transaction, so both queries see the
 * same snapshot.
 */
FullTransactionId
pgtls_registry_changes(FullTransactionId since,
					   void (*fn) (PgtlsRegistryChange *change, void *arg), void *arg)
{
	RegistryCall call;
	Datum		values[1];
	bool		isnull;
	unsigned long long next;
	int			rc;
	Portal		portal;
	MemoryContext batch;

	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_XMIN), NULL, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not read the snapshot: %s", SPI_result_code_string(rc));
	if (sscanf(TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
			   "%llu", &next) != 1)
		elog(ERROR, "could not read the snapshot's xmin");
	values[0] = CStringGetTextDatum(psprintf(UINT64_FORMAT, U64FromFullTransactionId(since)));
	/*
	 * Through a cursor, a batch at a time, each batch's strings freed with
	 * it: a full load of a million rows held them all at once (over 400 MB
	 * in the worker).
	 */
	portal = SPI_cursor_open(NULL, registry_plan(&call, Q_CHANGES), values, NULL, true);
	batch = AllocSetContextCreate(CurrentMemoryContext, "pgtls_admin registry changes",
								  ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		MemoryContext old;

		SPI_cursor_fetch(portal, true, CHANGES_BATCH);
		if (SPI_processed == 0)
			break;
		old = MemoryContextSwitchTo(batch);
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	tup = SPI_tuptable->vals[i];
			TupleDesc	desc = SPI_tuptable->tupdesc;
			PgtlsRegistryChange change;
			Datum		d;

			change.serial = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
			change.kind = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
			d = SPI_getbinval(tup, desc, 3, &isnull);
			change.role_oid = isnull ? InvalidOid : DatumGetObjectId(d);
			d = SPI_getbinval(tup, desc, 4, &isnull);
			change.not_after = isnull ? DT_NOBEGIN : DatumGetTimestampTz(d);
			change.revoked = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
			d = SPI_getbinval(tup, desc, 6, &isnull);
			change.fingerprint = isnull ? NULL : TextDatumGetCString(d);
			d = SPI_getbinval(tup, desc, 7, &isnull);
			change.ends_sessions = isnull ? NULL : TextDatumGetCString(d);
			fn(&change, arg);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch);
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	MemoryContextDelete(batch);
	registry_leave(&call);
	return FullTransactionIdFromU64((uint64) next);
}

/*
 * The xmax of serial's registry row: the transaction that last changed or
 * locked it (pgtls_renew_self locks it while it renews), or invalid.
 */
TransactionId
pgtls_registry_row_xmax(const char *serial)
{
	RegistryCall call;
	Datum		values[1] = {CStringGetTextDatum(serial)};
	TransactionId xmax = InvalidTransactionId;
	bool		isnull;
	int			rc;

	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_ROW_XMAX), values, NULL, true, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not look up a serial: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
		xmax = DatumGetTransactionId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	registry_leave(&call);
	return xmax;
}

/*
 * Mark serial revoked, recording which of its sessions the revocation ends
 * (none, except_superusers, all).  Returns true if it was revoked now,
 * false if it already was; an unknown serial or a CA is an error.
 */
bool
pgtls_registry_revoke(const char *serial, const char *reason, const char *ends_sessions)
{
	RegistryCall call;
	Datum		values[3] = {CStringGetTextDatum(serial), CStringGetTextDatum(reason),
	CStringGetTextDatum(ends_sessions)};
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
	rc = SPI_execute_plan(registry_plan(&call, Q_REVOKE_AGAIN), values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not revoke: %s", SPI_result_code_string(rc));
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
		Datum		d;

		r->serial = TextDatumGetCString(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		r->revoked_at = DatumGetTimestampTz(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		r->reason = TextDatumGetCString(SPI_getbinval(tup, SPI_tuptable->tupdesc, 3, &isnull));
		d = SPI_getbinval(tup, SPI_tuptable->tupdesc, 4, &isnull);
		r->issuer = isnull ? NULL : TextDatumGetCString(d);
		result = lappend(result, r);
		MemoryContextSwitchTo(old);
	}
	registry_leave(&call);
	return result;
}

/* The registry row of serial as query q reads it; false if there is none. */
static bool
registry_lookup(RegistryQuery q, const char *serial, PgtlsRegistryRow *row)
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
	/* a revoker idle in its transaction: wait a few seconds, not for ever */
	if (q == Q_LOOKUP_SHARE)
		(void) set_config_option("lock_timeout", "5s", PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	/* not read-only: see rows this transaction wrote earlier in the same statement */
	rc = SPI_execute_plan(registry_plan(&call, q), values, NULL, false, 1);
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
		row->not_before = DatumGetTimestampTz(SPI_getbinval(tup, desc, 8, &isnull));
		row->not_after = DatumGetTimestampTz(SPI_getbinval(tup, desc, 9, &isnull));
		row->fingerprint = TextDatumGetCString(SPI_getbinval(tup, desc, 10, &isnull));
		MemoryContextSwitchTo(old);
	}
	registry_leave(&call);
	return true;
}

/* The registry row of serial; false if there is none. */
bool
pgtls_registry_lookup(const char *serial, PgtlsRegistryRow *row)
{
	return registry_lookup(Q_LOOKUP, serial, row);
}

/*
 * The registry row of serial, locked until the transaction ends so that no
 * revocation of it can commit meanwhile (one in progress is waited for,
 * a few seconds at most, and then seen; under REPEATABLE READ or
 * SERIALIZABLE a revocation committed after the snapshot fails with
 * 40001).  Primary only.
 */
bool
pgtls_registry_lookup_locked(const char *serial, PgtlsRegistryRow *row)
{
	return registry_lookup(Q_LOOKUP_SHARE, serial, row);
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

/*
 * Live client certificates whose role was dropped and created again under
 * the same name (another OID): how many, and the first one's serial and role.
 */
int
pgtls_registry_role_replaced(char **first_serial, char **first_role)
{
	RegistryCall call;
	MemoryContext caller = CurrentMemoryContext;
	bool		isnull;
	int			count;
	int			rc;

	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_ROLE_REPLACED), NULL, NULL, true, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not check the roles of certificates: %s", SPI_result_code_string(rc));
	count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (count > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		*first_serial = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
		*first_role = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
		MemoryContextSwitchTo(old);
	}
	registry_leave(&call);
	return count;
}

/*
 * BEFORE INSERT trigger of pgtls_certificates and pgtls_revoked_serials:
 * a row whose serial is recorded already is merged into it (a revocation
 * is kept from either side) instead of failing, so a dump restores into a
 * registry that has rows already (the imported CA's, the revocations a new
 * registry adopted).  Every other row gets this transaction as its
 * change_xid, so the background workers see it.  Our own INSERTs pass.
 */
HeapTuple
pgtls_registry_merge_row(TriggerData *trigdata)
{
	Relation	rel = trigdata->tg_relation;
	TupleDesc	desc = RelationGetDescr(rel);
	HeapTuple	tuple = trigdata->tg_trigtuple;
	bool		certificates = strcmp(RelationGetRelationName(rel), "pgtls_certificates") == 0;
	RegistryCall call;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	bool		isnull;
	int			attnum;
	int			rc;
	Datum		xid;
	bool		xid_null = false;

	if (own_insert)
		return tuple;
	values[0] = heap_getattr(tuple, SPI_fnumber(desc, "serial"), desc, &isnull);
	values[1] = heap_getattr(tuple, SPI_fnumber(desc, "revoked_at"), desc, &isnull);
	nulls[1] = isnull ? 'n' : ' ';
	values[2] = heap_getattr(tuple, SPI_fnumber(desc, "revocation_reason"), desc, &isnull);
	nulls[2] = isnull ? 'n' : ' ';

	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, certificates ? Q_STATE : Q_SERIAL_STATE),
						  values, NULL, false, 1);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not look up a serial: %s", SPI_result_code_string(rc));
	if (SPI_processed == 1)
	{
		if (certificates)
		{
			rc = SPI_execute_plan(registry_plan(&call, Q_MERGE), values, nulls, false, 0);
			if (rc != SPI_OK_UPDATE)
				elog(ERROR, "could not merge a restored row: %s", SPI_result_code_string(rc));
		}
		registry_leave(&call);
		return NULL;
	}
	registry_leave(&call);

	attnum = SPI_fnumber(desc, "change_xid");
	xid = FullTransactionIdGetDatum(GetTopFullTransactionId());
	return heap_modify_tuple_by_cols(tuple, desc, 1, &attnum, &xid, &xid_null);
}

/* Record that the certificate serial renews previous, by the current user. */
void
pgtls_registry_record_renewal(const char *serial, const char *previous)
{
	RegistryCall call;
	NameData	renewed_by;
	Datum		values[3];
	int			rc;

	namestrcpy(&renewed_by, GetUserNameFromId(GetUserId(), false));
	values[0] = CStringGetTextDatum(serial);
	values[1] = CStringGetTextDatum(previous);
	values[2] = NameGetDatum(&renewed_by);
	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_RENEWAL), values, NULL, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not record a renewal: %s", SPI_result_code_string(rc));
	registry_leave(&call);
}

/*
 * Live certificates that entered the last days before their expiry since
 * the last call (not those issued for that long or less, nor renewed ones),
 * recorded as warned in pgtls_expiry_warnings: each is returned once.
 */
List *
pgtls_registry_expiry_due(int days)
{
	RegistryCall call;
	MemoryContext caller = CurrentMemoryContext;
	/* the span beyond the days: not_before is backdated for clock skew */
	Datum		values[2] = {Int32GetDatum(days), Float8GetDatum(PGTLS_CLOCK_SKEW_SECONDS)};
	List	   *result = NIL;
	int			rc;

	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_EXPIRY_DUE), values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not list expiring certificates: %s", SPI_result_code_string(rc));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(caller);
		PgtlsExpiring *e = palloc(sizeof(PgtlsExpiring));
		bool		isnull;
		Datum		d;

		e->serial = TextDatumGetCString(SPI_getbinval(tup, desc, 1, &isnull));
		e->kind = TextDatumGetCString(SPI_getbinval(tup, desc, 2, &isnull));
		d = SPI_getbinval(tup, desc, 3, &isnull);
		e->role = isnull ? NULL : pstrdup(NameStr(*DatumGetName(d)));
		e->not_after = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
		result = lappend(result, e);
		MemoryContextSwitchTo(old);
	}
	registry_leave(&call);
	return result;
}

/*
 * Delete the rows of certificates expired more than retain seconds ago
 * (revoked ones at least revoked_retain seconds ago), except CAs and keep
 * (NULL: none).  Returns how many went.
 */
int
pgtls_registry_tidy(int retain, int revoked_retain, const char *keep)
{
	RegistryCall call;
	Datum		values[3];
	bool		isnull;
	int			rc;
	int			deleted;

	values[0] = Float8GetDatum((double) retain);
	values[1] = CStringGetTextDatum(keep ? keep : "");
	values[2] = Float8GetDatum((double) revoked_retain);
	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_TIDY), values, NULL, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not delete expired certificates: %s", SPI_result_code_string(rc));
	deleted = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	registry_leave(&call);
	return deleted;
}

/* How many live client certificates of role_oid the role issued itself (renewed over its own login). */
int
pgtls_registry_self_renewed(Oid role_oid, const char *role)
{
	RegistryCall call;
	NameData	name;
	Datum		values[2];
	bool		isnull;
	int			rc;
	int			count;

	namestrcpy(&name, role);
	values[0] = ObjectIdGetDatum(role_oid);
	values[1] = NameGetDatum(&name);
	registry_enter(&call);
	/*
	 * With the newest snapshot, after a command counter increment: the
	 * caller holds the role's renewal lock, so this counts every renewal
	 * committed before it, and this transaction's own, this statement's
	 * included (registry_enter wrote its pending rows).
	 */
	rc = SPI_execute_snapshot(registry_plan(&call, Q_SELF_RENEWED), values, NULL,
							  GetLatestSnapshot(), InvalidSnapshot, false, false, 1);
	if (rc != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not count certificates: %s", SPI_result_code_string(rc));
	count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	registry_leave(&call);
	return count;
}

/* ---------------------------------------------------------------------
 * The extension's CAs, the CAs of others it trusts, and the CRLs the
 * primary signed (for standbys that lack a CA's key).
 * --------------------------------------------------------------------- */

static char *
text_or_null(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

static TimestampTz
time_or_zero(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * Run a query that reads, with the newest snapshot when latest; either way
 * it sees what this transaction wrote before (the CA states a phase just
 * set).
 */
static void
execute_read(RegistryCall *call, RegistryQuery q, Datum *values, bool latest, const char *what)
{
	int			rc;

	if (latest)
	{
		CommandCounterIncrement();
		rc = SPI_execute_snapshot(registry_plan(call, q), values, NULL, GetLatestSnapshot(),
								  InvalidSnapshot, true, false, 0);
	}
	else
		rc = SPI_execute_plan(registry_plan(call, q), values, NULL, false, 0);
	if (rc != SPI_OK_SELECT)
		elog(ERROR, "could not read %s: %s", what, SPI_result_code_string(rc));
}

/* Builds one result element from a row; runs in the caller's memory context. */
typedef void *(*RowReader) (HeapTuple tup, TupleDesc desc);

/* The rows of a reading query, each made into an element by reader. */
static List *
read_rows(RegistryQuery q, Datum *values, bool latest, const char *what, RowReader reader)
{
	RegistryCall call;
	MemoryContext caller = CurrentMemoryContext;
	List	   *result = NIL;

	registry_enter(&call);
	execute_read(&call, q, values, latest, what);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		result = lappend(result, reader(SPI_tuptable->vals[i], SPI_tuptable->tupdesc));
		MemoryContextSwitchTo(old);
	}
	registry_leave(&call);
	return result;
}

static void *
ca_row(HeapTuple tup, TupleDesc desc)
{
	PgtlsCARow *row = palloc0(sizeof(PgtlsCARow));

	row->fingerprint = text_or_null(tup, desc, 1);
	row->serial = text_or_null(tup, desc, 2);
	row->state = text_or_null(tup, desc, 3);
	row->subject = text_or_null(tup, desc, 4);
	row->not_before = time_or_zero(tup, desc, 5);
	row->not_after = time_or_zero(tup, desc, 6);
	row->certificate = text_or_null(tup, desc, 7);
	row->chain = text_or_null(tup, desc, 8);
	row->state_changed_at = time_or_zero(tup, desc, 9);
	return row;
}

/*
 * Every CA the registry records (kind = 'ca'), oldest first.  latest: read
 * with the newest snapshot (what writers of the trust files must see).
 */
List *
pgtls_registry_cas(bool latest)
{
	return read_rows(Q_CAS, NULL, latest, "the CAs", ca_row);
}

/* next, active and previous CAs are trusted; retired ones, and rows without a state, are not */
static int
state_rank(const char *state)
{
	if (state == NULL)
		return 9;
	if (strcmp(state, "active") == 0)
		return 0;
	if (strcmp(state, "next") == 0)
		return 1;
	if (strcmp(state, "previous") == 0)
		return 2;
	return 9;
}

bool
pgtls_ca_state_trusted(const char *state)
{
	return state_rank(state) < 9;
}

/* The non-retired CA rows, active first, then next, then previous (oldest first within a state). */
List *
pgtls_trusted_ca_rows(List *rows)
{
	List	   *result = NIL;

	for (int rank = 0; rank < 3; rank++)
	{
		ListCell   *lc;

		foreach(lc, rows)
			if (state_rank(((PgtlsCARow *) lfirst(lc))->state) == rank)
				result = lappend(result, lfirst(lc));
	}
	return result;
}

/* Set the state of the CA with this fingerprint (and its chain, unless NULL). */
void
pgtls_registry_ca_set_state(const char *fingerprint, const char *state, const char *chain)
{
	RegistryCall call;
	Datum		values[3];
	char		nulls[3] = {' ', ' ', ' '};
	int			rc;

	values[0] = CStringGetTextDatum(fingerprint);
	values[1] = CStringGetTextDatum(state);
	values[2] = chain ? CStringGetTextDatum(chain) : (Datum) 0;
	nulls[2] = chain ? ' ' : 'n';
	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_CA_SET_STATE), values, nulls, false, 0);
	if (rc != SPI_OK_UPDATE || SPI_processed != 1)
		elog(ERROR, "could not record the state of CA %s: %s", fingerprint, SPI_result_code_string(rc));
	registry_leave(&call);
}

/* The elements of a text[] column (NULL: none) as a List of char *, in cxt. */
static List *
text_list(HeapTuple tup, TupleDesc desc, int col, MemoryContext cxt)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);
	MemoryContext old;
	List	   *result = NIL;
	Datum	   *elems;
	int			n;

	if (isnull)
		return NIL;
	old = MemoryContextSwitchTo(cxt);
	deconstruct_array(DatumGetArrayTypePCopy(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, NULL, &n);
	for (int i = 0; i < n; i++)
		result = lappend(result, TextDatumGetCString(elems[i]));
	MemoryContextSwitchTo(old);
	return result;
}

/* What the CA with this fingerprint still signs for. */
void
pgtls_registry_ca_use(const char *fingerprint, PgtlsCAUse *use)
{
	RegistryCall call;
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[1] = {CStringGetTextDatum(fingerprint)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	memset(use, 0, sizeof(*use));
	registry_enter(&call);
	execute_read(&call, Q_CA_USE, values, false, "the certificates of a CA");
	if (SPI_processed != 1)
		elog(ERROR, "could not count the certificates of CA %s", fingerprint);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	use->clients = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
	use->servers = DatumGetInt32(SPI_getbinval(tup, desc, 2, &isnull));
	use->roles = text_list(tup, desc, 3, caller);
	use->last_expiry = time_or_zero(tup, desc, 4);
	use->last_end = time_or_zero(tup, desc, 5);
	use->server_serials = text_list(tup, desc, 6, caller);
	registry_leave(&call);
}

/* Record every live certificate the CA issued as revoked; returns how many. */
int
pgtls_registry_ca_revoke_all(const char *fingerprint, const char *reason)
{
	RegistryCall call;
	Datum		values[2] = {CStringGetTextDatum(fingerprint), CStringGetTextDatum(reason)};
	int			rc;
	int			n;

	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_CA_REVOKE_ALL), values, NULL, false, 0);
	if (rc != SPI_OK_UPDATE)
		elog(ERROR, "could not revoke the certificates of a CA: %s", SPI_result_code_string(rc));
	n = (int) SPI_processed;
	registry_leave(&call);
	return n;
}

static void *
trusted_row(HeapTuple tup, TupleDesc desc)
{
	PgtlsTrustedRow *row = palloc0(sizeof(PgtlsTrustedRow));

	row->fingerprint = text_or_null(tup, desc, 1);
	row->subject = text_or_null(tup, desc, 2);
	row->not_after = time_or_zero(tup, desc, 3);
	row->certificate = text_or_null(tup, desc, 4);
	row->crl = text_or_null(tup, desc, 5);
	row->crl_next_update = time_or_zero(tup, desc, 6);
	row->origin = text_or_null(tup, desc, 7);
	return row;
}

/* The CAs of others the server trusts, oldest first; latest as for pgtls_registry_cas(). */
List *
pgtls_registry_trusted(bool latest)
{
	return read_rows(Q_TRUSTED, NULL, latest, "the trusted CAs", trusted_row);
}

static void *
serial_row(HeapTuple tup, TupleDesc desc)
{
	return text_or_null(tup, desc, 1);
}

/*
 * The live client certificates renewed from serial over their own role's
 * login (pgtls_renew_self), directly or not: serials, as text.
 */
List *
pgtls_registry_self_descendants(const char *serial)
{
	Datum		values[1] = {CStringGetTextDatum(serial)};

	return read_rows(Q_SELF_DESCENDANTS, values, false, "the renewals", serial_row);
}

/*
 * Trust cert (origin "admin" or "chain"; an existing entry keeps its
 * origin), with crl_pem as its CRL unless NULL (then an existing one is kept).
 */
void
pgtls_registry_trust_put(X509 *cert, const char *crl_pem, TimestampTz crl_next_update,
						 const char *origin)
{
	RegistryCall call;
	NameData	added_by;
	Datum		values[8];
	char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};
	int			rc;

	namestrcpy(&added_by, GetUserNameFromId(GetUserId(), false));
	values[0] = CStringGetTextDatum(pgtls_fingerprint_sha256(cert));
	values[1] = CStringGetTextDatum(pgtls_name_text(X509_get_subject_name(cert)));
	values[2] = TimestampTzGetDatum(pgtls_asn1_time_to_timestamptz(X509_get0_notAfter(cert)));
	values[3] = PointerGetDatum(pgtls_cert_pem(cert));
	values[4] = crl_pem ? CStringGetTextDatum(crl_pem) : (Datum) 0;
	nulls[4] = crl_pem ? ' ' : 'n';
	values[5] = TimestampTzGetDatum(crl_next_update);
	nulls[5] = crl_pem && crl_next_update != 0 ? ' ' : 'n';
	values[6] = CStringGetTextDatum(origin);
	values[7] = NameGetDatum(&added_by);
	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_TRUST_PUT), values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not record a trusted CA: %s", SPI_result_code_string(rc));
	registry_leave(&call);
}

/* Stop trusting the CA with this fingerprint; false if it was not trusted. */
bool
pgtls_registry_trust_delete(const char *fingerprint)
{
	RegistryCall call;
	Datum		values[1] = {CStringGetTextDatum(fingerprint)};
	int			rc;
	bool		deleted;

	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_TRUST_DELETE), values, NULL, false, 0);
	if (rc != SPI_OK_DELETE)
		elog(ERROR, "could not remove a trusted CA: %s", SPI_result_code_string(rc));
	deleted = SPI_processed > 0;
	registry_leave(&call);
	return deleted;
}

/* Keep crl_pem as the newest CRL the CA with this fingerprint signed. */
void
pgtls_registry_crl_store(const char *fingerprint, const char *crl_pem, TimestampTz this_update,
						 TimestampTz next_update)
{
	RegistryCall call;
	Datum		values[4];
	char		nulls[4] = {' ', ' ', ' ', ' '};
	int			rc;

	values[0] = CStringGetTextDatum(fingerprint);
	values[1] = CStringGetTextDatum(crl_pem);
	values[2] = TimestampTzGetDatum(this_update);
	values[3] = TimestampTzGetDatum(next_update);
	nulls[3] = next_update == 0 ? 'n' : ' ';
	registry_enter(&call);
	rc = SPI_execute_plan(registry_plan(&call, Q_CRL_STORE), values, nulls, false, 0);
	if (rc != SPI_OK_INSERT)
		elog(ERROR, "could not keep a CRL: %s", SPI_result_code_string(rc));
	registry_leave(&call);
}

static void *
stored_crl_row(HeapTuple tup, TupleDesc desc)
{
	PgtlsStoredCrl *c = palloc(sizeof(PgtlsStoredCrl));

	c->fingerprint = text_or_null(tup, desc, 1);
	c->pem = text_or_null(tup, desc, 2);
	return c;
}

/* The CRLs the primary signed: PgtlsStoredCrl *, with the newest snapshot. */
List *
pgtls_registry_crls_stored(void)
{
	return read_rows(Q_CRLS_STORED, NULL, true, "the stored CRLs", stored_crl_row);
}

/*
 * A digest of everything the trust files are made of (the CAs and their
 * states, the trusted CAs and their CRLs, and with stored the CRLs the
 * primary signed): when it changes, the files must be written again.
 */
char *
pgtls_registry_trust_digest(bool stored, bool latest)
{
	RegistryCall call;
	MemoryContext caller = CurrentMemoryContext;
	Datum		values[1] = {BoolGetDatum(stored)};
	char	   *digest;

	registry_enter(&call);
	execute_read(&call, Q_TRUST_DIGEST, values, latest, "the trust digest");
	if (SPI_processed != 1)
		elog(ERROR, "could not compute the trust digest");
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		digest = text_or_null(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		MemoryContextSwitchTo(old);
	}
	registry_leave(&call);
	return digest;
}

/*
 * Live certificates that expire after the CA that issued them: how many,
 * and the first one's serial and its CA's subject.
 */
int
pgtls_registry_outliving(char **first_serial, char **ca_subject)
{
	RegistryCall call;
	MemoryContext caller = CurrentMemoryContext;
	bool		isnull;
	int			count;

	registry_enter(&call);
	execute_read(&call, Q_OUTLIVING, NULL, false, "the certificates that outlive their CA");
	count = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (count > 0)
	{
		MemoryContext old = MemoryContextSwitchTo(caller);

		*first_serial = text_or_null(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
		*ca_subject = text_or_null(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
		MemoryContextSwitchTo(old);
	}
	registry_leave(&call);
	return count;
}
