-- Extension, helpers and roles shared by the other suites; the state before any CA exists.
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS pgtls_admin CASCADE;
RESET client_min_messages;
CREATE EXTENSION pgtls_admin;
\dx pgtls_admin

CREATE TABLE regress_datadir AS SELECT current_setting('data_directory') AS dir;
GRANT SELECT ON regress_datadir TO PUBLIC;
-- Run a statement; report its SQLSTATE, message and hint with the data directory and serials hidden.
CREATE FUNCTION regress_try(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    msg text;
    hint text;
BEGIN
    EXECUTE q;
    RETURN 'ok';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hint = PG_EXCEPTION_HINT;
    RETURN SQLSTATE || ': ' ||
        regexp_replace(replace(msg || coalesce(' (HINT: ' || nullif(hint, '') || ')', ''),
                               (SELECT dir FROM regress_datadir), '$PGDATA'),
                       '[0-9A-F]{32}', '<serial>', 'g');
END $$;
GRANT EXECUTE ON FUNCTION regress_try(text) TO PUBLIC;

-- Two fixed public certificates (no key is kept) used by several suites.
CREATE TABLE regress_fixture_certs (name text PRIMARY KEY, pem text NOT NULL);
INSERT INTO regress_fixture_certs VALUES
('server', '-----BEGIN CERTIFICATE-----
MIIDtjCCAp6gAwIBAgIDChssMA0GCSqGSIb3DQEBCwUAMD8xFzAVBgNVBAMMDmRi
LmV4YW1wbGUuY29tMRYwFAYDVQQKDA1FeGFtcGxlLCBJbmMuMQwwCgYDVQQLDANh
K2IwHhcNMjYxMTIyMjIzMDIyWhcNMzYxMTE5MjIzMDIyWjA/MRcwFQYDVQQDDA5k
Yi5leGFtcGxlLmNvbTEWMBQGA1UECgwNRXhhbXBsZSwgSW5jLjEMMAoGA1UECwwD
YStiMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAq/ux48+ceXqdPrQz
vbGVdneF7UqlaB+zLXYg+n87YxqCmrrxc1GVW45xLyyIVUrV0LYlm0rQb0O3NGbC
mS4mDWz9jyoqG6HGuD1lEkXiQpx161g+Y+BFUKd31itWohwFNs4LzSwiddaK0zLS
4/1pkhA88ORn/pK2udtz3rVA6LeODADmFkARXyDw/OYkp75xPI5+6WPlYP9Y5Sjb
h9RfxzlV+FGhMBrcMlkxgOJkurFZ7t6cuyRZoE6F4w8u4Xxj+ClaMgziHubIBfcf
ELzEjqPQfVVrRyceIw5vXAxL3vfVcajqJZvqRo66k0bH5PyYMnGPES/m7tYGqpLH
MIFDVwIDAQABo4G6MIG3MB0GA1UdDgQWBBSI8hXkBz7hmbDtiNnPCv/7S00OBjAf
BgNVHSMEGDAWgBSI8hXkBz7hmbDtiNnPCv/7S00OBjAMBgNVHRMBAf8EAjAAMEIG
A1UdEQQ7MDmCDmRiLmV4YW1wbGUuY29thwR/AAABhxAAAAAAAAAAAAAAAAAAAAAB
gQ9vcHNAZXhhbXBsZS5jb20wEwYDVR0lBAwwCgYIKwYBBQUHAwEwDgYDVR0PAQH/
BAQDAgWgMA0GCSqGSIb3DQEBCwUAA4IBAQBqWm/0XZ17aTx0euxKyIgTawVTxPB5
OBQa4Inry0JtIYvFu/frfTKNDPiDXxMN3L0qxpV/euIf1zshzS588SXUMv4rnnO1
VOO7OQT3TDfi3SUJ8gh5ec1z/3bfLer2tgtwP9RnQrRMTURnPGf22Nq1HDXwFKvc
OJGrng1parbXJXsUgODj8A2euRJm+ZPdgERiCtIdZTy6yL3LYaMxoXz8l7b2Na5d
Mvbbzgsmx58MOi+2dyf8v+sRt1NiT7UDfi1Cg/zwcre3bNRy3QpNjNTgzs9IMRWR
8C92L5P5C9itBVdDpeVsQu2aVBmmYVb2PxUsTGltIQ1zuDyvo3xIjrJD
-----END CERTIFICATE-----'),
('sha1_ca', '-----BEGIN CERTIFICATE-----
MIIC/DCCAeSgAwIBAgIBBzANBgkqhkiG9w0BAQUFADAXMRUwEwYDVQQDDAxPbGQg
U0hBLTEgQ0EwHhcNMjYxMTIyMjIyODQyWhcNMzYxMTE5MjIyODQyWjAXMRUwEwYD
VQQDDAxPbGQgU0hBLTEgQ0EwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIB
AQCz8NhAEfUxIEhiFXzM1WhqCY6dDfTUaT4Bd76NxSaAfLYlZ8QcQRoGP7Zd/ES3
Af4kRNiWSXAky62ccskz0RQAkpok7nYB7Xx1k3ens3fGKS9zrM34i7xR0yPkOcC5
DtNdXNArP5AThYCiCfPDX32K793Z70IKsX9WsR79/lyFrkjSSDJDaGpsS9ppzEyY
l0at/myN6pyGKwo7ynAT/wOyImZiYIayCnbRS0G9C8jG4oRtHcCBhKITls4U0h2g
V546dfU7iSngfdois8Ej0oZaKO9klXsqm000Fgwg0o1gDsJK+p4tJyuhww1u3p8/
beeTGdqJM+aj75PUZ7pMZC87AgMBAAGjUzBRMB0GA1UdDgQWBBSZV+Wp0j6nPFXI
a/J5UQ1+C7aagDAfBgNVHSMEGDAWgBSZV+Wp0j6nPFXIa/J5UQ1+C7aagDAPBgNV
HRMBAf8EBTADAQH/MA0GCSqGSIb3DQEBBQUAA4IBAQBZqzKmZQSy6LTrkfuAk2Hz
z643OOYAY6hvafzzmVQ3nZGwjMvpb5gQ4pWuI+DmiJUgOLDxF/ukc4D+n0y0gyAX
IuibuvoVg0Up/l0Nz+eYckWe83OATXEcG/tgpP9WDfNZk9sBz+mvbSenHRW/2MmB
pWfHPc9jSJq7aXHh2c0UQoG2R+gLCs4qkHTBi6AJZAM6+7GoQX4K9XGMsqlz5xvh
RBZKwEPfkDwfnsiBEnOEvkDA1V0wIg5lXTuzmetZxtghZZKtWk3/q9PR0QbCuOm9
ourOwfyakXVOlBqiO1/EhCtK2iOUrlrQSh7bUdOkUUZ/npBOnQDFOZ0ZF5kONmTi
-----END CERTIFICATE-----');
GRANT SELECT ON regress_fixture_certs TO PUBLIC;

-- GUCs exist once the library is loaded, are reload-only and the prefix is reserved.
LOAD 'pgtls_admin';
SELECT name, setting, context FROM pg_settings WHERE name LIKE 'pgtls_admin.%' ORDER BY name;
SELECT regress_try('SET pgtls_admin.default_days = 10');
SELECT regress_try('SET pgtls_admin.no_such_setting = 1');

-- Start from a known state on a cluster that ran these suites before, or was
-- interrupted in them: no regress_ role, and no CA files (they live in the
-- data directory, outside any database; removing them takes a program run by
-- the server, so the suites run as a superuser).  cleanup.sql ends the same way.
CREATE FUNCTION regress_reset_cluster() RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    r name;
    files text;
BEGIN
    FOR r IN SELECT rolname FROM pg_roles WHERE rolname LIKE 'regress\_%' ORDER BY rolname LOOP
        EXECUTE format('DROP OWNED BY %I', r);
        EXECUTE format('DROP ROLE %I', r);
    END LOOP;
    SELECT string_agg('''' || replace(current_setting(g), '''', '''\''''') || '''', ' ') INTO files
    FROM unnest(ARRAY['pgtls_admin.ca_cert_file', 'pgtls_admin.ca_key_file', 'pgtls_admin.crl_file',
                      'pgtls_admin.ca_bundle_file']) AS g;
    -- and the kept keys of other CAs and a pending request, beside the CA key
    files := files || ' ''' || replace(regexp_replace(current_setting('pgtls_admin.ca_key_file'), '[^/]*$', ''),
                                       '''', '''\''''') || '''ca-*.*';
    EXECUTE format('COPY (SELECT WHERE false) TO PROGRAM %L', 'rm -f -- ' || files);
END $$;
SELECT regress_reset_cluster();

-- Without a CA: 58P01 and a hint naming pgtls_init_ca().
SELECT regress_try('SELECT pgtls_ca_cert()');
CREATE ROLE regress_user1 LOGIN;
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_user1')$$);
SELECT count(*) AS registry_rows FROM pgtls_certificates;

-- The install script revoked EXECUTE from PUBLIC on everything but what it granted.
SELECT p.proname, p.proacl
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgtls_admin')
ORDER BY p.proname;
SELECT relname, relacl FROM pg_class WHERE relname = 'pgtls_certificates';
