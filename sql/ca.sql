-- Issuing gives a NOTICE when no line of the cluster's pg_hba.conf admits the role
-- with a certificate; it depends on the cluster, so it is checked where pg_hba.conf
-- is fixed (role_names.sql in a temporary instance, t/007), not here.
SET client_min_messages = warning;

-- pgtls_init_ca, pgtls_import_ca, pgtls_ca_cert
SELECT pgtls_init_ca() LIKE E'-----BEGIN CERTIFICATE-----\n%-----END CERTIFICATE-----\n' AS pem;
SELECT pgtls_ca_cert() = certificate AS same_as_registry FROM pgtls_certificates WHERE kind = 'ca';
SELECT subject, issuer, is_ca, key_type, signature_algorithm, key_usage, eku, san,
       not_after - not_before BETWEEN interval '3650 days' AND interval '3650 days 00:06' AS ten_years
FROM pgtls_cert_info(pgtls_ca_cert());
SELECT kind, role, subject, key_type, issued_by, revoked_at FROM pgtls_certificates;

-- Files: key 0600 under the data directory, both owned by the server's user.
SELECT (pg_stat_file('pgtls/ca.key')).size > 0 AS key_written,
       (pg_stat_file('pgtls/ca.crt')).size > 0 AS cert_written;
SELECT pg_read_file('pgtls/ca.crt') = pgtls_ca_cert() AS file_is_returned_pem;

-- No accidental overwrite.
SELECT regress_try('SELECT pgtls_init_ca()');
SELECT count(*) AS ca_rows FROM pgtls_certificates WHERE kind = 'ca';

-- Arguments.
SELECT regress_try($$SELECT pgtls_init_ca(days => 0, replace => true)$$);
SELECT regress_try($$SELECT pgtls_init_ca(days => 36501, replace => true)$$);
SELECT regress_try($$SELECT pgtls_init_ca(key_type => 'dsa-1024', replace => true)$$);
SELECT regress_try($$SELECT pgtls_init_ca(subject => NULL, replace => true)$$);
SELECT regress_try($$SELECT pgtls_init_ca(replace => NULL)$$);
SELECT regress_try($$SELECT pgtls_init_ca(subject => '', replace => true)$$);
SELECT regress_try($$SELECT pgtls_init_ca(subject => 'Example CA', replace => true)$$);
SELECT regress_try($$SELECT pgtls_init_ca(subject => 'XX=Example', replace => true)$$);
SELECT regress_try($$SELECT pgtls_init_ca(subject => 'CN=', replace => true)$$);
SELECT regress_try($$SELECT pgtls_init_ca(subject => 'CN=x,C=USA', replace => true)$$);
-- none of the failures above changed the CA
SELECT count(*) AS ca_rows FROM pgtls_certificates WHERE kind = 'ca';
SELECT pgtls_ca_cert() = certificate AS unchanged FROM pgtls_certificates WHERE kind = 'ca';

-- Subjects keep the written order; escaped separators stay inside a value.
SELECT subject FROM pgtls_cert_info(pgtls_init_ca(subject => 'CN=Example CA,O=Example\, Inc.,C=DE', replace => true));
SELECT subject FROM pgtls_cert_info(pgtls_init_ca(subject => '/CN=Slash CA/OU=a,b', replace => true));
SELECT subject FROM pgtls_cert_info(pgtls_init_ca(subject => 'CN=Zürich CA €', replace => true));

-- Every key type, each CA signing with its curve's hash (none for Ed25519); an
-- RSA CA is made in t/020_rsa_keys.pl (one RSA key generation in pg_regress).
SELECT kt, ci.key_type, ci.key_bits, ci.signature_algorithm
FROM unnest(ARRAY['ec-p256', 'ec-p384', 'ed25519']) AS kt,
     LATERAL pgtls_cert_info(pgtls_init_ca(key_type => kt, replace => true)) AS ci;

-- Import: adopt the current CA again (same serial: recorded once).
SELECT count(*) AS ca_rows_before FROM pgtls_certificates WHERE kind = 'ca';
SELECT pgtls_import_ca(pgtls_ca_cert(), pg_read_file('pgtls/ca.key'), replace => true) = pgtls_ca_cert() AS reimported;
SELECT count(*) AS ca_rows_after FROM pgtls_certificates WHERE kind = 'ca';
SELECT regress_try($$SELECT pgtls_import_ca(pgtls_ca_cert(), pg_read_file('pgtls/ca.key'))$$);
-- a key that is not the certificate's
SELECT regress_try($$SELECT pgtls_import_ca(pgtls_ca_cert(), (SELECT private_key FROM pgtls_issue_client('regress_user1')), true)$$);
-- a leaf is not a CA
SELECT regress_try($$SELECT pgtls_import_ca(certificate, private_key, true) FROM pgtls_issue_client('regress_user1')$$);
-- garbage
SELECT regress_try($$SELECT pgtls_import_ca('not a certificate', pg_read_file('pgtls/ca.key'), true)$$);
SELECT regress_try($$SELECT pgtls_import_ca(pgtls_ca_cert(), 'not a key', true)$$);
SELECT regress_try($$SELECT pgtls_import_ca(pgtls_ca_cert(), NULL, true)$$);
-- leave an ec-p256 CA for the other suites
SELECT length(pgtls_init_ca(replace => true)) > 0 AS ok;
-- a SHA-1 signed CA is refused before its key is even compared
SELECT regress_try($$SELECT pgtls_import_ca((SELECT pem FROM regress_fixture_certs WHERE name = 'sha1_ca'),
                                           (SELECT private_key FROM pgtls_issue_client('regress_user1')), true)$$);
