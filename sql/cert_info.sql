-- Issuing gives a NOTICE when no line of the cluster's pg_hba.conf admits the role
-- with a certificate; it depends on the cluster, so it is checked where pg_hba.conf
-- is fixed (role_names.sql in a temporary instance, t/007), not here.
SET client_min_messages = warning;

-- pgtls_cert_info on fixed public certificates (no keys are kept), so every field is checked.
\x on
SELECT * FROM pgtls_cert_info((SELECT pem FROM regress_fixture_certs WHERE name = 'server'));
SELECT * FROM pgtls_cert_info((SELECT pem FROM regress_fixture_certs WHERE name = 'sha1_ca'));
\x off

-- Text around the PEM block is ignored, as openssl does.
SELECT serial FROM pgtls_cert_info(E'leading text\n' || (SELECT pem FROM regress_fixture_certs WHERE name = 'server') || E'\ntrailing text\n');

-- NULL in, no row out (STRICT); garbage in, 22023.
SELECT count(*) FROM pgtls_cert_info(NULL);
SELECT regress_try($$SELECT * FROM pgtls_cert_info('')$$);
SELECT regress_try($$SELECT * FROM pgtls_cert_info('garbage')$$);
SELECT regress_try($$SELECT * FROM pgtls_cert_info(E'-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')$$);
-- a private key is not a certificate, and is not echoed back in the error
SELECT regress_try($$SELECT ci.* FROM pgtls_issue_client('regress_user1') i, pgtls_cert_info(i.private_key) ci$$);
-- a truncated certificate
SELECT regress_try(format('SELECT * FROM pgtls_cert_info(%L)',
       left((SELECT pem FROM regress_fixture_certs WHERE name = 'server'), 400) || E'\n-----END CERTIFICATE-----\n'));
