/* pgtls_admin--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pgtls_admin" to load this file. \quit

-- Every certificate issued, never a private key.  change_xid is the
-- transaction that last changed a row: the background workers follow the
-- registry by it.  uncommitted marks a certificate of the issuance journal
-- whose issuing transaction did not commit it (recorded revoked).
CREATE TABLE pgtls_certificates (
    serial             text PRIMARY KEY,
    kind               text NOT NULL CHECK (kind IN ('ca', 'server', 'client')),
    role               name,
    subject            text NOT NULL,
    san                text[],
    key_type           text NOT NULL,
    not_before         timestamptz NOT NULL,
    not_after          timestamptz NOT NULL,
    fingerprint_sha256 text NOT NULL,
    certificate        text NOT NULL,
    issued_by          name NOT NULL,
    issued_at          timestamptz NOT NULL DEFAULT now(),
    revoked_at         timestamptz,
    revocation_reason  text,
    role_oid           oid,
    issuer_fingerprint text,
    uncommitted        bool NOT NULL DEFAULT false,
    change_xid         xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    ca_state           text CHECK (ca_state IN ('next', 'active', 'previous', 'retired')),
    ca_chain           text,
    ca_state_changed_at timestamptz,
    -- which sessions of the certificate its revocation ends on every node
    -- (pgtls_revoke's terminate): NULL when not revoked by pgtls_revoke
    ends_sessions      text CHECK (ends_sessions IN ('none', 'except_superusers', 'all')),
    CHECK (ca_state IS NULL OR kind = 'ca')
);
CREATE INDEX pgtls_certificates_role_idx ON pgtls_certificates (role);
CREATE INDEX pgtls_certificates_not_after_idx ON pgtls_certificates (not_after);
CREATE INDEX pgtls_certificates_change_xid_idx ON pgtls_certificates (change_xid);
-- every CRL build lists the revoked rows: without this it reads the whole registry
CREATE INDEX pgtls_certificates_revoked_idx ON pgtls_certificates (serial) WHERE revoked_at IS NOT NULL;
-- the CAs are read every second by the background workers: never scan the leaves for them
CREATE INDEX pgtls_certificates_ca_idx ON pgtls_certificates (issued_at) WHERE kind = 'ca';
SELECT pg_catalog.pg_extension_config_dump('pgtls_certificates', '');
REVOKE ALL ON TABLE pgtls_certificates FROM PUBLIC;
GRANT SELECT ON TABLE pgtls_certificates TO pg_monitor;

-- CAs of others the server trusts beside the extension's own (a Teleport or
-- corporate client CA, the offline root above an intermediate CA), each with
-- the CRL that goes into ssl_crl_file.  origin 'chain': added because one of
-- the extension's CAs chains to it, and dropped with the last such CA.
CREATE TABLE pgtls_trusted_cas (
    fingerprint_sha256 text PRIMARY KEY,
    subject            text NOT NULL,
    not_after          timestamptz NOT NULL,
    certificate        text NOT NULL,
    crl                text,
    crl_next_update    timestamptz,
    origin             text NOT NULL CHECK (origin IN ('admin', 'chain')),
    added_by           name NOT NULL,
    added_at           timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('pgtls_trusted_cas', '');
REVOKE ALL ON TABLE pgtls_trusted_cas FROM PUBLIC;
GRANT SELECT ON TABLE pgtls_trusted_cas TO pg_monitor;

-- The newest CRL the primary signed for each of its CAs.  A standby writes
-- it for a CA whose key it does not hold (made after its base backup); CRLs
-- are public.  Not dumped: a primary signs them again.
CREATE TABLE pgtls_crls (
    issuer_fingerprint text PRIMARY KEY,
    crl                text NOT NULL,
    this_update        timestamptz NOT NULL,
    next_update        timestamptz
);
REVOKE ALL ON TABLE pgtls_crls FROM PUBLIC;
GRANT SELECT ON TABLE pgtls_crls TO pg_monitor;

-- Serials revoked without a record of their certificate: kept from the CRL a
-- new registry found, or revoked by a superuser although nothing here knows
-- them (a certificate lost with an asynchronous failover, say).
CREATE TABLE pgtls_revoked_serials (
    serial             text PRIMARY KEY,
    revoked_at         timestamptz NOT NULL DEFAULT now(),
    revocation_reason  text NOT NULL,
    revoked_by         name NOT NULL,
    change_xid         xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
);
CREATE INDEX pgtls_revoked_serials_change_xid_idx ON pgtls_revoked_serials (change_xid);
SELECT pg_catalog.pg_extension_config_dump('pgtls_revoked_serials', '');
REVOKE ALL ON TABLE pgtls_revoked_serials FROM PUBLIC;
GRANT SELECT ON TABLE pgtls_revoked_serials TO pg_monitor;

-- Which certificate renewed which (pgtls_renew, pgtls_renew_self, the
-- server renewal of pgtls_maintain).  A renewed certificate gets no expiry
-- warning.
CREATE TABLE pgtls_renewals (
    serial             text PRIMARY KEY,
    previous           text NOT NULL,
    renewed_at         timestamptz NOT NULL DEFAULT now(),
    renewed_by         name NOT NULL
);
CREATE INDEX pgtls_renewals_previous_idx ON pgtls_renewals (previous);
SELECT pg_catalog.pg_extension_config_dump('pgtls_renewals', '');
REVOKE ALL ON TABLE pgtls_renewals FROM PUBLIC;
GRANT SELECT ON TABLE pgtls_renewals TO pg_monitor;

-- Certificates pgtls_maintain() sent an expiry warning for: one each.
CREATE TABLE pgtls_expiry_warnings (
    serial             text PRIMARY KEY,
    not_after          timestamptz NOT NULL,
    warned_at          timestamptz NOT NULL DEFAULT now()
);
SELECT pg_catalog.pg_extension_config_dump('pgtls_expiry_warnings', '');
REVOKE ALL ON TABLE pgtls_expiry_warnings FROM PUBLIC;
GRANT SELECT ON TABLE pgtls_expiry_warnings TO pg_monitor;

-- A restored row whose serial is recorded already is merged, not a failure.
CREATE FUNCTION pgtls_registry_merge()
RETURNS trigger
AS 'MODULE_PATHNAME', 'pgtls_registry_merge'
LANGUAGE C;
CREATE TRIGGER pgtls_certificates_merge BEFORE INSERT ON pgtls_certificates
    FOR EACH ROW EXECUTE FUNCTION pgtls_registry_merge();
CREATE TRIGGER pgtls_revoked_serials_merge BEFORE INSERT ON pgtls_revoked_serials
    FOR EACH ROW EXECUTE FUNCTION pgtls_registry_merge();
REVOKE ALL ON FUNCTION pgtls_registry_merge() FROM PUBLIC;

-- One registry per cluster: claim it for this database, and keep every
-- revocation of the CRL this cluster's CA signed.  A DROP of the extension
-- releases the claim.
CREATE FUNCTION pgtls_claim_registry()
RETURNS void
AS 'MODULE_PATHNAME', 'pgtls_claim_registry'
LANGUAGE C VOLATILE;
REVOKE ALL ON FUNCTION pgtls_claim_registry() FROM PUBLIC;
SELECT pgtls_claim_registry();

CREATE FUNCTION pgtls_drop_guard()
RETURNS event_trigger
AS 'MODULE_PATHNAME', 'pgtls_drop_guard'
LANGUAGE C;
REVOKE ALL ON FUNCTION pgtls_drop_guard() FROM PUBLIC;
CREATE EVENT TRIGGER pgtls_admin_drop ON ddl_command_start
    WHEN TAG IN ('DROP EXTENSION', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION pgtls_drop_guard();

-- CA
CREATE FUNCTION pgtls_init_ca(subject text DEFAULT 'CN=PostgreSQL pgtls_admin CA',
                              days int DEFAULT 3650,
                              key_type text DEFAULT 'ec-p256',
                              replace bool DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'pgtls_init_ca'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_import_ca(certificate text, private_key text,
                                replace bool DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'pgtls_import_ca'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_import_ca_files(certificate_file text, key_file text,
                                      replace bool DEFAULT false)
RETURNS text
AS 'MODULE_PATHNAME', 'pgtls_import_ca_files'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_ca_cert()
RETURNS text
AS 'MODULE_PATHNAME', 'pgtls_ca_cert'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- Rotation, the trust bundle, intermediate CAs
CREATE FUNCTION pgtls_ca_rotate(phase text, force bool DEFAULT false,
                                subject text DEFAULT NULL, days int DEFAULT NULL,
                                key_type text DEFAULT NULL)
RETURNS TABLE (state text, subject text, not_after timestamptz, fingerprint_sha256 text)
AS 'MODULE_PATHNAME', 'pgtls_ca_rotate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_trust_add(certificate text, crl text DEFAULT NULL)
RETURNS text
AS 'MODULE_PATHNAME', 'pgtls_trust_add'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_trust_remove(fingerprint text)
RETURNS bool
AS 'MODULE_PATHNAME', 'pgtls_trust_remove'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_ca_request(subject text, key_type text DEFAULT 'ec-p256')
RETURNS text
AS 'MODULE_PATHNAME', 'pgtls_ca_request'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_ca_set_certificate(chain text)
RETURNS text
AS 'MODULE_PATHNAME', 'pgtls_ca_set_certificate'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Issue
CREATE FUNCTION pgtls_issue_client(role name, days int DEFAULT NULL,
                                   key_type text DEFAULT NULL,
                                   subject text DEFAULT NULL,
                                   lifetime interval DEFAULT NULL)
RETURNS TABLE (serial text, certificate text, private_key text,
               ca_certificate text, not_after timestamptz)
AS 'MODULE_PATHNAME', 'pgtls_issue_client'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

CREATE FUNCTION pgtls_sign_client_csr(role name, csr text, days int DEFAULT NULL,
                                      lifetime interval DEFAULT NULL)
RETURNS TABLE (serial text, certificate text, ca_certificate text, not_after timestamptz)
AS 'MODULE_PATHNAME', 'pgtls_sign_client_csr'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

CREATE FUNCTION pgtls_issue_server(dns_names text[], ip_addresses inet[] DEFAULT '{}',
                                   days int DEFAULT NULL, key_type text DEFAULT NULL)
RETURNS TABLE (serial text, certificate text, private_key text, not_after timestamptz)
AS 'MODULE_PATHNAME', 'pgtls_issue_server'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

-- Server TLS
CREATE FUNCTION pgtls_enable_ssl(dns_names text[] DEFAULT '{localhost}',
                                 ip_addresses inet[] DEFAULT '{127.0.0.1,::1}',
                                 days int DEFAULT NULL, key_type text DEFAULT NULL)
RETURNS TABLE (setting text, value text)
AS 'MODULE_PATHNAME', 'pgtls_enable_ssl'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_install_server_cert(certificate text, private_key text)
RETURNS TABLE (setting text, value text)
AS 'MODULE_PATHNAME', 'pgtls_install_server_cert'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_install_server_cert_files(certificate_file text, key_file text)
RETURNS TABLE (setting text, value text)
AS 'MODULE_PATHNAME', 'pgtls_install_server_cert_files'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- Lifecycle
CREATE FUNCTION pgtls_revoke(serial text, reason text DEFAULT 'unspecified',
                             terminate bool DEFAULT true)
RETURNS bool
AS 'MODULE_PATHNAME', 'pgtls_revoke'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_revoke_unrecorded(serial text, reason text DEFAULT 'unspecified')
RETURNS bool
AS 'MODULE_PATHNAME', 'pgtls_revoke_unrecorded'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_refresh_crl()
RETURNS int
AS 'MODULE_PATHNAME', 'pgtls_refresh_crl'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

CREATE FUNCTION pgtls_crl()
RETURNS text
AS 'MODULE_PATHNAME', 'pgtls_crl'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE FUNCTION pgtls_renew(serial text, days int DEFAULT NULL,
                            lifetime interval DEFAULT NULL)
RETURNS TABLE (serial text, certificate text, private_key text,
               ca_certificate text, not_after timestamptz)
AS 'MODULE_PATHNAME', 'pgtls_renew'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

-- Renews the certificate the calling session logged in with, for a key the
-- client keeps: granted to PUBLIC, it refuses any other session (42501).
CREATE FUNCTION pgtls_renew_self(csr text, lifetime interval DEFAULT NULL,
                                 revoke_previous bool DEFAULT false)
RETURNS TABLE (serial text, certificate text, ca_certificate text, not_after timestamptz)
AS 'MODULE_PATHNAME', 'pgtls_renew_self'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

-- Every upkeep that is due: server renewal, CRL re-signing, expiry warnings, tidying.
CREATE FUNCTION pgtls_maintain()
RETURNS TABLE (action text, detail text)
AS 'MODULE_PATHNAME', 'pgtls_maintain'
LANGUAGE C VOLATILE PARALLEL UNSAFE;

-- The sessions of this node that logged in with a client certificate.
CREATE FUNCTION pgtls_session_certificates()
RETURNS TABLE (pid int, serial text)
AS 'MODULE_PATHNAME', 'pgtls_session_certificates'
LANGUAGE C VOLATILE PARALLEL RESTRICTED;

-- Client formats (for drivers that cannot read PEM keys)
CREATE FUNCTION pgtls_pkcs8_der(private_key text)
RETURNS bytea
AS 'MODULE_PATHNAME', 'pgtls_pkcs8_der'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

CREATE FUNCTION pgtls_pkcs12(certificate text, private_key text, passphrase text,
                             ca_certificate text DEFAULT NULL)
RETURNS bytea
AS 'MODULE_PATHNAME', 'pgtls_pkcs12'
LANGUAGE C VOLATILE PARALLEL SAFE;

CREATE FUNCTION pgtls_encrypt_key(private_key text, passphrase text)
RETURNS text
AS 'MODULE_PATHNAME', 'pgtls_encrypt_key'
LANGUAGE C VOLATILE PARALLEL SAFE;

-- Inspection
-- What pgtls_cert_info() and pgtls_server_cert_info() say about a certificate.
CREATE TYPE pgtls_cert_details AS (
    subject             text,
    issuer              text,
    subject_dn          text,
    issuer_dn           text,
    serial              text,
    not_before          timestamptz,
    not_after           timestamptz,
    san                 text[],
    eku                 text[],
    key_usage           text[],
    key_type            text,
    key_bits            int,
    signature_algorithm text,
    is_ca               bool,
    fingerprint_sha256  text
);

CREATE FUNCTION pgtls_cert_info(certificate text)
RETURNS SETOF pgtls_cert_details
AS 'MODULE_PATHNAME', 'pgtls_cert_info'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1;

CREATE FUNCTION pgtls_server_cert_info()
RETURNS SETOF pgtls_cert_details
AS 'MODULE_PATHNAME', 'pgtls_server_cert_info'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 1;

-- Audit
CREATE FUNCTION pgtls_hba_check()
RETURNS TABLE (severity text, check_id text, file_name text, line_number int,
               rule text, message text, hint text)
AS 'MODULE_PATHNAME', 'pgtls_hba_check'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 20;

CREATE FUNCTION pgtls_hba_match(role name, database name, address inet,
                                ssl bool DEFAULT true)
RETURNS TABLE (line_number int, type text, auth_method text, options text[],
               verdict text)
AS 'MODULE_PATHNAME', 'pgtls_hba_match'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 1;

CREATE FUNCTION pgtls_explain_login(certificate text, role name,
                                    database name DEFAULT current_database(),
                                    address inet DEFAULT '127.0.0.1')
RETURNS TABLE (step text, ok bool, detail text)
AS 'MODULE_PATHNAME', 'pgtls_explain_login'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 15;

REVOKE ALL ON FUNCTION pgtls_init_ca(text, int, text, bool) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_import_ca(text, text, bool) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_import_ca_files(text, text, bool) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_install_server_cert_files(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_ca_cert() FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_ca_rotate(text, bool, text, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_trust_add(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_trust_remove(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_ca_request(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_ca_set_certificate(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_issue_client(name, int, text, text, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_cert_info(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_sign_client_csr(name, text, int, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_issue_server(text[], inet[], int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_enable_ssl(text[], inet[], int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_install_server_cert(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_revoke(text, text, bool) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_crl() FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_refresh_crl() FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_revoke_unrecorded(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_renew(text, int, interval) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_maintain() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgtls_renew_self(text, interval, bool) TO PUBLIC;
REVOKE ALL ON FUNCTION pgtls_session_certificates() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgtls_session_certificates() TO pg_monitor;
REVOKE ALL ON FUNCTION pgtls_pkcs8_der(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_pkcs12(text, text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_encrypt_key(text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_server_cert_info() FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_hba_check() FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_hba_match(name, name, inet, bool) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgtls_cert_info(text) TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgtls_server_cert_info() TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgtls_hba_check() TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgtls_hba_match(name, name, inet, bool) TO pg_monitor;
REVOKE ALL ON FUNCTION pgtls_explain_login(text, name, name, inet) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgtls_explain_login(text, name, name, inet) TO pg_monitor;

-- Views for dashboards.  "Valid" means not revoked and not expired.
CREATE VIEW pgtls_expiring_certificates AS
SELECT serial, kind, role, subject, not_after,
       date_trunc('second', not_after - now()) AS time_left
FROM pgtls_certificates
WHERE revoked_at IS NULL
  AND not_after > now()
  AND not_after <= now() + make_interval(days =>
        coalesce(nullif(current_setting('pgtls_admin.expiry_warning_days', true), '')::int, 30))
ORDER BY not_after;

CREATE VIEW pgtls_revoked_certificates AS
SELECT serial, kind, role, subject, revoked_at, revocation_reason, not_after
FROM pgtls_certificates
WHERE revoked_at IS NOT NULL
UNION ALL
SELECT s.serial, NULL, NULL, NULL, s.revoked_at, s.revocation_reason, NULL
FROM pgtls_revoked_serials s
WHERE NOT EXISTS (SELECT FROM pgtls_certificates c WHERE c.serial = s.serial)
ORDER BY revoked_at DESC;

CREATE VIEW pgtls_certificates_by_role AS
SELECT role,
       count(*) FILTER (WHERE revoked_at IS NULL AND not_after > now()) AS valid,
       count(*) FILTER (WHERE revoked_at IS NOT NULL) AS revoked,
       count(*) FILTER (WHERE revoked_at IS NULL AND not_after <= now()) AS expired,
       min(not_after) FILTER (WHERE revoked_at IS NULL AND not_after > now()) AS next_expiry,
       max(issued_at) AS last_issued
FROM pgtls_certificates
WHERE kind = 'client'
GROUP BY role
ORDER BY role;

-- Every CA the extension has held, the active one first, with what it still
-- signs for: retire is refused while live_certificates > 0.
CREATE VIEW pgtls_cas AS
SELECT ca.ca_state AS state, ca.subject, ca.serial, ca.not_before, ca.not_after,
       ca.fingerprint_sha256, ca.ca_chain IS NOT NULL AS intermediate,
       ca.ca_state_changed_at AS state_changed_at,
       count(c.serial) FILTER (WHERE c.revoked_at IS NULL AND c.not_after > now()) AS live_certificates,
       max(c.not_after) FILTER (WHERE c.revoked_at IS NULL AND c.not_after > now()) AS last_expiry
FROM pgtls_certificates ca
LEFT JOIN pgtls_certificates c ON c.issuer_fingerprint = ca.fingerprint_sha256 AND c.kind <> 'ca'
WHERE ca.kind = 'ca'
GROUP BY ca.serial
ORDER BY CASE ca.ca_state WHEN 'active' THEN 1 WHEN 'next' THEN 2 WHEN 'previous' THEN 3 ELSE 4 END,
         ca.issued_at DESC;

REVOKE ALL ON pgtls_expiring_certificates, pgtls_revoked_certificates,
              pgtls_certificates_by_role, pgtls_cas FROM PUBLIC;
GRANT SELECT ON pgtls_expiring_certificates, pgtls_revoked_certificates,
                pgtls_certificates_by_role, pgtls_cas TO pg_monitor;

-- The sessions of this node that logged in with a client certificate, and
-- what the registry says of it: live, revoked, expired, or unknown (not
-- issued here).
CREATE VIEW pgtls_sessions AS
SELECT s.pid, a.usename, a.client_addr, s.serial,
       CASE WHEN c.revoked_at IS NOT NULL
                 OR EXISTS (SELECT FROM pgtls_revoked_serials r WHERE r.serial = s.serial)
            THEN 'revoked'
            WHEN c.serial IS NULL THEN 'unknown'
            WHEN c.not_after <= now() THEN 'expired'
            ELSE 'live' END AS status,
       c.not_after
FROM pgtls_session_certificates() s
JOIN pg_catalog.pg_stat_activity a ON a.pid = s.pid
LEFT JOIN pgtls_certificates c ON c.serial = s.serial
ORDER BY s.pid;

REVOKE ALL ON pgtls_sessions FROM PUBLIC;
GRANT SELECT ON pgtls_sessions TO pg_monitor;

-- Monitoring: the numbers a scraper needs, one row per metric and label
-- set; monitoring/postgres_exporter.yaml exports each row as the Prometheus
-- metric of the same name.  The two functions read the files the ssl
-- settings name as they are now; a missing or unreadable file gives no row
-- (the audit says why), never an error.
CREATE FUNCTION pgtls_metrics_server_cert()
RETURNS TABLE (serial text, subject text, fingerprint_sha256 text, not_after timestamptz)
AS 'MODULE_PATHNAME', 'pgtls_metrics_server_cert'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 1;

CREATE FUNCTION pgtls_metrics_crls()
RETURNS TABLE (issuer text, ca_fingerprint text, this_update timestamptz, next_update timestamptz)
AS 'MODULE_PATHNAME', 'pgtls_metrics_crls'
LANGUAGE C VOLATILE PARALLEL RESTRICTED ROWS 2;

REVOKE ALL ON FUNCTION pgtls_metrics_server_cert() FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_metrics_crls() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgtls_metrics_server_cert() TO pg_monitor;
GRANT EXECUTE ON FUNCTION pgtls_metrics_crls() TO pg_monitor;

-- security_invoker: the view runs with the reader's own rights, so it is a
-- convenience over what pg_monitor may read anyway (the registry tables,
-- pgtls_hba_check() and the two functions above), never a grant of more.
-- Every name in it is schema-qualified, so nothing created in another
-- schema before CREATE EXTENSION can be bound into it.  Each branch has a
-- constant metric name: a query for one metric runs only its branch.
CREATE VIEW pgtls_metrics WITH (security_invoker = true) AS
SELECT 'pgtls_server_cert_not_after_timestamp_seconds'::pg_catalog.text AS metric,
       pg_catalog.jsonb_build_object('serial', s.serial, 'subject', s.subject,
                                     'fingerprint', s.fingerprint_sha256) AS labels,
       pg_catalog.date_part('epoch', s.not_after) AS value
FROM @extschema@.pgtls_metrics_server_cert() s
UNION ALL
SELECT 'pgtls_ca_not_after_timestamp_seconds',
       pg_catalog.jsonb_build_object('fingerprint', c.fingerprint_sha256, 'subject', c.subject,
                                     'serial', c.serial),
       pg_catalog.date_part('epoch', c.not_after)
FROM @extschema@.pgtls_certificates c
WHERE c.kind OPERATOR(pg_catalog.=) 'ca'
UNION ALL
SELECT 'pgtls_crl_this_update_timestamp_seconds',
       pg_catalog.jsonb_build_object('issuer', r.issuer, 'ca_fingerprint', r.ca_fingerprint),
       pg_catalog.date_part('epoch', r.this_update)
FROM @extschema@.pgtls_metrics_crls() r
UNION ALL
SELECT 'pgtls_crl_next_update_timestamp_seconds',
       pg_catalog.jsonb_build_object('issuer', r.issuer, 'ca_fingerprint', r.ca_fingerprint),
       pg_catalog.date_part('epoch', r.next_update)
FROM @extschema@.pgtls_metrics_crls() r
WHERE r.next_update IS NOT NULL
UNION ALL
SELECT 'pgtls_client_certificates',
       pg_catalog.jsonb_build_object('role', r.role, 'state', n.state),
       n.count::pg_catalog.float8
FROM (SELECT COALESCE(c.role::pg_catalog.text, '') AS role,
             pg_catalog.count(*) FILTER (WHERE c.revoked_at IS NULL
                 AND c.not_after OPERATOR(pg_catalog.>) pg_catalog.now()) AS live,
             pg_catalog.count(*) FILTER (WHERE c.revoked_at IS NOT NULL) AS revoked,
             pg_catalog.count(*) FILTER (WHERE c.revoked_at IS NULL
                 AND c.not_after OPERATOR(pg_catalog.<=) pg_catalog.now()) AS expired
      FROM @extschema@.pgtls_certificates c
      WHERE c.kind OPERATOR(pg_catalog.=) 'client'
      GROUP BY 1) r
CROSS JOIN LATERAL (VALUES ('live'::pg_catalog.text, r.live), ('revoked', r.revoked),
                           ('expired', r.expired)) n(state, count)
UNION ALL
SELECT 'pgtls_client_cert_next_expiry_timestamp_seconds',
       pg_catalog.jsonb_build_object('role', COALESCE(c.role::pg_catalog.text, '')),
       pg_catalog.date_part('epoch', pg_catalog.min(c.not_after))
FROM @extschema@.pgtls_certificates c
WHERE c.kind OPERATOR(pg_catalog.=) 'client' AND c.revoked_at IS NULL
  AND c.not_after OPERATOR(pg_catalog.>) pg_catalog.now()
GROUP BY COALESCE(c.role::pg_catalog.text, '')
UNION ALL
SELECT 'pgtls_audit_findings',
       pg_catalog.jsonb_build_object('severity', v.severity),
       pg_catalog.count(f.check_id)::pg_catalog.float8
FROM (VALUES ('critical'::pg_catalog.text), ('high'), ('medium'), ('low'), ('info')) v(severity)
LEFT JOIN (SELECT a.severity, a.check_id FROM @extschema@.pgtls_hba_check() a
           WHERE a.check_id OPERATOR(pg_catalog.<>) 'summary') f
       ON f.severity OPERATOR(pg_catalog.=) v.severity
GROUP BY v.severity
UNION ALL
SELECT 'pgtls_last_issuance_timestamp_seconds',
       pg_catalog.jsonb_build_object('kind', c.kind),
       pg_catalog.date_part('epoch', pg_catalog.max(c.issued_at))
FROM @extschema@.pgtls_certificates c
WHERE NOT c.uncommitted
GROUP BY c.kind
UNION ALL
SELECT 'pgtls_last_revocation_timestamp_seconds',
       '{}'::pg_catalog.jsonb,
       pg_catalog.date_part('epoch', pg_catalog.max(x.revoked_at))
FROM (SELECT c.revoked_at FROM @extschema@.pgtls_certificates c WHERE c.revoked_at IS NOT NULL
      UNION ALL
      SELECT s.revoked_at FROM @extschema@.pgtls_revoked_serials s) x
HAVING pg_catalog.max(x.revoked_at) IS NOT NULL;

REVOKE ALL ON pgtls_metrics FROM PUBLIC;
GRANT SELECT ON pgtls_metrics TO pg_monitor;
