-- pgtls_metrics: what monitoring reads (monitoring/postgres_exporter.yaml
-- exports it); t/035 scrapes it through prometheus-postgres-exporter.  The
-- server certificate and CRL rows depend on this cluster's TLS files, so
-- only their shape is checked here.
SET client_min_messages = warning;
CREATE ROLE regress_mon_reader LOGIN IN ROLE pg_monitor;
CREATE ROLE regress_mon_outsider LOGIN;
CREATE ROLE regress_mon_a LOGIN;
CREATE ROLE regress_mon_b LOGIN;
CREATE ROLE "regress_mon ""q""\x" LOGIN;

CREATE TEMP TABLE mon_issued AS
SELECT 'a' AS who, serial FROM pgtls_issue_client('regress_mon_a')
UNION ALL SELECT 'a', serial FROM pgtls_issue_client('regress_mon_a')
UNION ALL SELECT 'a', serial FROM pgtls_issue_client('regress_mon_a', days => 2)
UNION ALL SELECT 'b', serial FROM pgtls_issue_client('regress_mon_b')
UNION ALL SELECT 'q', serial FROM pgtls_issue_client('regress_mon "q"\x');
SELECT pgtls_revoke(serial) FROM mon_issued WHERE who = 'b';
-- an expired certificate, as a registry in use for years holds them
INSERT INTO pgtls_certificates (serial, kind, role, subject, key_type, not_before, not_after,
                                fingerprint_sha256, certificate, issued_by, role_oid)
VALUES ('5EED00000000000000000000000000AA', 'client', 'regress_mon_b', 'CN=regress_mon_b', 'ec-p256',
        now() - interval '400 days', now() - interval '35 days', '', '', 'postgres',
        'regress_mon_b'::regrole);
GRANT SELECT ON mon_issued TO regress_mon_reader;

-- A pg_monitor member reads it all.
SET ROLE regress_mon_reader;
SELECT labels->>'role' AS role, labels->>'state' AS state, value
FROM pgtls_metrics WHERE metric = 'pgtls_client_certificates' AND labels->>'role' LIKE 'regress\_mon%'
ORDER BY 1, 2;
SELECT labels->>'role' AS role,
       value = extract(epoch FROM (SELECT min(not_after) FROM pgtls_certificates c
                                   WHERE c.role = m.labels->>'role' AND revoked_at IS NULL
                                     AND not_after > now()))::float8 AS is_earliest_live_expiry,
       value - extract(epoch FROM now()) BETWEEN 86400 AND 2 * 86400 AS within_two_days
FROM pgtls_metrics m
WHERE metric = 'pgtls_client_cert_next_expiry_timestamp_seconds' AND labels->>'role' LIKE 'regress\_mon%'
ORDER BY 1;
-- one row per severity, each the count of pgtls_hba_check() findings (its summary row aside)
SELECT labels->>'severity' AS severity,
       value = (SELECT count(*) FROM pgtls_hba_check() h
                WHERE h.severity = m.labels->>'severity' AND h.check_id <> 'summary') AS matches_audit
FROM pgtls_metrics m WHERE metric = 'pgtls_audit_findings'
ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low', 'info'], labels->>'severity');
-- every CA of the registry (the suites before made several), by fingerprint and subject
SELECT m.labels->>'subject' AS subject, count(*) AS cas,
       bool_and(m.value = extract(epoch FROM c.not_after)::float8) AS is_not_after
FROM pgtls_metrics m JOIN pgtls_certificates c
  ON c.kind = 'ca' AND c.fingerprint_sha256 = m.labels->>'fingerprint' AND c.serial = m.labels->>'serial'
WHERE m.metric = 'pgtls_ca_not_after_timestamp_seconds'
GROUP BY 1 ORDER BY 1;
SELECT count(*) = (SELECT count(*) FROM pgtls_certificates WHERE kind = 'ca') AS every_ca
FROM pgtls_metrics WHERE metric = 'pgtls_ca_not_after_timestamp_seconds';
SELECT labels->>'kind' AS kind,
       value = extract(epoch FROM (SELECT max(issued_at) FROM pgtls_certificates c
                                   WHERE c.kind = m.labels->>'kind' AND NOT uncommitted))::float8 AS is_last
FROM pgtls_metrics m WHERE metric = 'pgtls_last_issuance_timestamp_seconds' AND labels->>'kind' = 'client';
SELECT labels, value = extract(epoch FROM (SELECT max(r) FROM (
           SELECT revoked_at FROM pgtls_certificates
           UNION ALL SELECT revoked_at FROM pgtls_revoked_serials) x(r)))::float8 AS is_last
FROM pgtls_metrics WHERE metric = 'pgtls_last_revocation_timestamp_seconds';
-- the file-based rows: at most one server certificate; no metric but the documented ones
SELECT count(*) <= 1 AS one_server_cert
FROM pgtls_metrics WHERE metric = 'pgtls_server_cert_not_after_timestamp_seconds';
SELECT DISTINCT metric FROM pgtls_metrics
WHERE metric NOT IN ('pgtls_server_cert_not_after_timestamp_seconds', 'pgtls_ca_not_after_timestamp_seconds',
                     'pgtls_crl_this_update_timestamp_seconds', 'pgtls_crl_next_update_timestamp_seconds',
                     'pgtls_client_certificates', 'pgtls_client_cert_next_expiry_timestamp_seconds',
                     'pgtls_audit_findings', 'pgtls_last_issuance_timestamp_seconds',
                     'pgtls_last_revocation_timestamp_seconds');
SELECT count(*) AS unlabeled_rows FROM pgtls_metrics
WHERE labels IS NULL OR value IS NULL OR (labels = '{}' AND metric <> 'pgtls_last_revocation_timestamp_seconds');
SELECT count(*) AS duplicate_series FROM (
    SELECT metric, labels FROM pgtls_metrics GROUP BY 1, 2 HAVING count(*) > 1) d;
RESET ROLE;

-- Nobody else reads it or its helpers.
SET ROLE regress_mon_outsider;
SELECT regress_try('SELECT * FROM pgtls_metrics');
SELECT regress_try('SELECT * FROM pgtls_metrics_server_cert()');
SELECT regress_try('SELECT * FROM pgtls_metrics_crls()');
RESET ROLE;
-- The view runs with its reader's rights (security_invoker): SELECT on it
-- alone gives nothing a role could not read already.
SELECT relname, reloptions FROM pg_class WHERE relname = 'pgtls_metrics';
GRANT SELECT ON pgtls_metrics TO regress_mon_outsider;
SET ROLE regress_mon_outsider;
SELECT regress_try($$SELECT * FROM pgtls_metrics WHERE metric = 'pgtls_client_certificates'$$);
RESET ROLE;
REVOKE SELECT ON pgtls_metrics FROM regress_mon_outsider;

DROP TABLE mon_issued;
RESET client_min_messages;
