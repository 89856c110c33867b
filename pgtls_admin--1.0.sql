/* pgtls_admin--1.0.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION pgtls_admin" to load this file. \quit

-- Every certificate issued, never a private key.
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
    revocation_reason  text
);
CREATE INDEX pgtls_certificates_role_idx ON pgtls_certificates (role);
CREATE INDEX pgtls_certificates_not_after_idx ON pgtls_certificates (not_after);
SELECT pg_catalog.pg_extension_config_dump('pgtls_certificates', '');
REVOKE ALL ON TABLE pgtls_certificates FROM PUBLIC;
GRANT SELECT ON TABLE pgtls_certificates TO pg_monitor;

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

CREATE FUNCTION pgtls_ca_cert()
RETURNS text
AS 'MODULE_PATHNAME', 'pgtls_ca_cert'
LANGUAGE C VOLATILE PARALLEL SAFE;

-- Issue
CREATE FUNCTION pgtls_issue_client(role name, days int DEFAULT NULL,
                                   key_type text DEFAULT NULL)
RETURNS TABLE (serial text, certificate text, private_key text,
               ca_certificate text, not_after timestamptz)
AS 'MODULE_PATHNAME', 'pgtls_issue_client'
LANGUAGE C VOLATILE PARALLEL UNSAFE ROWS 1;

-- Inspection
CREATE FUNCTION pgtls_cert_info(certificate text)
RETURNS TABLE (subject text, issuer text, serial text,
               not_before timestamptz, not_after timestamptz,
               san text[], eku text[], key_usage text[],
               key_type text, key_bits int, signature_algorithm text,
               is_ca bool, fingerprint_sha256 text)
AS 'MODULE_PATHNAME', 'pgtls_cert_info'
LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE ROWS 1;

REVOKE ALL ON FUNCTION pgtls_init_ca(text, int, text, bool) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_import_ca(text, text, bool) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_ca_cert() FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_issue_client(name, int, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION pgtls_cert_info(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION pgtls_cert_info(text) TO pg_monitor;
