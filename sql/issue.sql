-- Issuing gives a NOTICE when no line of the cluster's pg_hba.conf admits the role
-- with a certificate; it depends on the cluster, so it is checked where pg_hba.conf
-- is fixed (role_names.sql in a temporary instance, t/007), not here.
SET client_min_messages = warning;

-- pgtls_issue_client: shape of the result, the certificate's content, the registry.
CREATE TEMP TABLE issued AS SELECT * FROM pgtls_issue_client('regress_user1');
SELECT serial ~ '^[0-9A-F]{32}$' AS serial_is_128_bit_hex,
       certificate LIKE E'-----BEGIN CERTIFICATE-----\n%-----END CERTIFICATE-----\n' AS cert_pem,
       private_key ~ '^-{5}BEGIN PRIVATE KEY-{5}\n[A-Za-z0-9+/=\n]+-{5}END PRIVATE KEY-{5}\n$' AS pkcs8_pem,
       ca_certificate = pgtls_ca_cert() AS ca_pem,
       not_after BETWEEN now() + interval '364 days 23:59' AND now() + interval '365 days 00:01' AS default_365_days
FROM issued;
SELECT ci.subject, ci.serial = i.serial AS serial_matches, ci.issuer = ca.subject AS issuer_is_ca,
       ci.eku, ci.key_usage, ci.is_ca, ci.san, ci.key_type, ci.key_bits, ci.signature_algorithm,
       ci.not_after = i.not_after AS not_after_matches,
       i.not_after - ci.not_before BETWEEN interval '365 days 00:04' AND interval '365 days 00:06' AS backdated_5_min
FROM issued i, pgtls_cert_info(i.certificate) ci, pgtls_cert_info(pgtls_ca_cert()) ca;

-- The registry has the certificate, never the key.
SELECT r.kind, r.role, r.subject, r.key_type, r.issued_by, r.san, r.revoked_at,
       r.certificate = i.certificate AS same_pem,
       r.not_after = i.not_after AS same_not_after,
       r.fingerprint_sha256 = (SELECT fingerprint_sha256 FROM pgtls_cert_info(i.certificate)) AS same_fingerprint
FROM issued i JOIN pgtls_certificates r USING (serial);
SELECT count(*) AS rows_with_private_keys FROM pgtls_certificates WHERE certificate LIKE '%PRIVATE%';

-- Serials are distinct.
SELECT count(DISTINCT serial) AS distinct_serials
FROM generate_series(1, 20) AS g, LATERAL pgtls_issue_client('regress_user1', days => g) AS i;

-- Key types; the CA (ec-p256) always signs with SHA-256.  This rsa-2048 key is
-- the only RSA key generated in all of pg_regress (generating RSA keys was
-- most of its time, above all under valgrind): formats.sql uses it too, and
-- t/020_rsa_keys.pl issues rsa-3072 and rsa-4096 and checks them the same way.
CREATE TABLE regress_rsa_client AS
SELECT * FROM pgtls_issue_client('regress_user1', key_type => 'rsa-2048');
SELECT i.kt, ci.key_type, ci.key_bits, ci.signature_algorithm,
       i.private_key ~ '^-{5}BEGIN PRIVATE KEY-{5}\n' AS pkcs8
FROM (SELECT kt, c.* FROM unnest(ARRAY['ec-p256', 'ec-p384', 'ed25519']) AS kt,
                          LATERAL pgtls_issue_client('regress_user1', key_type => kt) AS c
      UNION ALL
      SELECT 'rsa-2048', r.* FROM regress_rsa_client r) AS i,
     LATERAL pgtls_cert_info(i.certificate) AS ci
ORDER BY array_position(ARRAY['ec-p256', 'ec-p384', 'ed25519', 'rsa-2048'], i.kt);

-- Validity: days, the default, max_days, the CA's own expiry.
SELECT not_after BETWEEN now() + interval '23:59' AND now() + interval '24:01' AS one_day
FROM pgtls_issue_client('regress_user1', days => 1);
SELECT not_after BETWEEN now() + interval '824 days 23:59' AND now() + interval '825 days 00:01' AS max_days
FROM pgtls_issue_client('regress_user1', days => 825);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_user1', days => 0)$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_user1', days => 826)$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_user1', days => -5)$$);

-- Errors, and no registry row for any of them.
SELECT count(*) AS rows_before FROM pgtls_certificates \gset
CREATE ROLE regress_nologin NOLOGIN;
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_no_such_role')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client(NULL)$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_nologin')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_user1', key_type => 'rsa-1024')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_user1', key_type => '')$$);
SELECT count(*) - :rows_before AS new_rows FROM pgtls_certificates;

-- Hostile role names: the CN is the role name, one attribute, no DN syntax
-- interpreted.  Role names here start with regress_; role_names.sql (run in a
-- temporary instance) has these names without the prefix, and the ones that
-- matter only at the start of a value (a leading space or #).
CREATE ROLE "regress_a,CN=postgres" LOGIN;
CREATE ROLE "regress_x/CN=admin" LOGIN;
CREATE ROLE "regress_it's ""quoted""" LOGIN;
CREATE ROLE "regress_semi;colon+plus<gt>\back" LOGIN;
CREATE ROLE "regress_€€€€€€€€€€€€€€€€€€x" LOGIN;
SELECT octet_length('regress_€€€€€€€€€€€€€€€€€€x') AS utf8_bytes;
CREATE TEMP TABLE hostile AS
SELECT r.rolname, i.serial, i.certificate
FROM (VALUES ('regress_a,CN=postgres'), ('regress_x/CN=admin'), ('regress_it''s "quoted"'),
             ('regress_semi;colon+plus<gt>\back'), ('regress_€€€€€€€€€€€€€€€€€€x')) AS v(name)
     JOIN pg_roles r ON r.rolname = v.name,
     LATERAL pgtls_issue_client(r.rolname) AS i;
SELECT '[' || h.rolname || ']' AS role, ci.subject, reg.role = h.rolname AS registry_role
FROM hostile h
     CROSS JOIN LATERAL pgtls_cert_info(h.certificate) AS ci
     JOIN pgtls_certificates reg ON reg.serial = h.serial
ORDER BY h.rolname;

-- Rows of certificates issued in a statement are written together when the
-- statement's run ends: a query run inside the statement still sees them,
-- and a subtransaction that rolls back after writing them does not lose them.
CREATE FUNCTION regress_sees_own() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    c record;
    n bigint;
BEGIN
    SELECT * INTO c FROM pgtls_issue_client('regress_user1');
    SELECT count(*) INTO n FROM pgtls_certificates WHERE serial = c.serial;
    RETURN n;
END $$;
SELECT regress_sees_own() AS recorded FROM generate_series(1, 2);
CREATE FUNCTION regress_block_fails() RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    BEGIN
        PERFORM 1 FROM pg_class LIMIT 1;
        PERFORM 1 / 0;
    EXCEPTION WHEN division_by_zero THEN
        RETURN 0;
    END;
    RETURN 1;
END $$;
CREATE TEMP TABLE batch AS
SELECT (pgtls_issue_client('regress_user1')).serial, regress_block_fails() AS block
FROM generate_series(1, 3);
SELECT count(*) AS returned, count(c.serial) AS recorded,
       count(c.serial) FILTER (WHERE c.revoked_at IS NULL) AS live
FROM batch b LEFT JOIN pgtls_certificates c USING (serial);
-- a released savepoint's certificate survives a later savepoint's rollback
BEGIN;
SAVEPOINT a;
CREATE TEMP TABLE released AS SELECT serial FROM pgtls_issue_client('regress_user1');
RELEASE a;
SAVEPOINT b;
SELECT regress_try('SELECT 1 / 0');
CREATE TEMP TABLE gone AS SELECT serial FROM pgtls_issue_client('regress_user1');
ROLLBACK TO b;
COMMIT;
SELECT count(*) AS released_recorded FROM released JOIN pgtls_certificates USING (serial)
WHERE revoked_at IS NULL;
DROP FUNCTION regress_sees_own();
DROP FUNCTION regress_block_fails();
