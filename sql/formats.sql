-- Issuing gives a NOTICE when no line of the cluster's pg_hba.conf admits the role
-- with a certificate; it depends on the cluster, so it is checked where pg_hba.conf
-- is fixed (role_names.sql in a temporary instance, t/007), not here.
SET client_min_messages = warning;

-- Client formats: PKCS#8 DER, PKCS#12, encrypted PKCS#8 PEM (drivers use them in t/005).
CREATE TEMP TABLE k AS SELECT * FROM pgtls_issue_client('regress_user1');
-- the RSA certificate and key issue.sql made (one RSA key generation in pg_regress)
CREATE TEMP TABLE k2 AS SELECT * FROM regress_rsa_client;

-- Shapes: DER SEQUENCEs, an encrypted PEM that is not the plain key
SELECT get_byte(pgtls_pkcs8_der(private_key), 0) = 48 AS der_sequence,
       length(pgtls_pkcs8_der(private_key)) BETWEEN 100 AND 200 AS ec_key_size
FROM k;
SELECT length(pgtls_pkcs8_der(private_key)) > 1000 AS rsa_key_size FROM k2;
SELECT get_byte(pgtls_pkcs12(certificate, private_key, 'pass', ca_certificate), 0) = 48 AS p12_sequence,
       length(pgtls_pkcs12(certificate, private_key, 'pass', ca_certificate))
         > length(pgtls_pkcs12(certificate, private_key, 'pass')) AS ca_included
FROM k;
SELECT pgtls_encrypt_key(private_key, 'pass') ~ '^-{5}BEGIN ENCRYPTED PRIVATE KEY-{5}\n' AS encrypted_pem,
       pgtls_encrypt_key(private_key, 'pass') <> pgtls_encrypt_key(private_key, 'pass') AS salted
FROM k;

-- Errors: bad keys, mismatches, empty or NULL passphrases; no key material echoed
SELECT regress_try($$SELECT pgtls_pkcs8_der('garbage')$$);
SELECT regress_try($$SELECT pgtls_pkcs8_der(NULL)$$);
SELECT regress_try($$SELECT pgtls_pkcs8_der(pgtls_encrypt_key(private_key, 'pass')) FROM k$$);
SELECT regress_try($$SELECT pgtls_pkcs12(k.certificate, k2.private_key, 'pass') FROM k, k2$$);
SELECT regress_try($$SELECT pgtls_pkcs12(certificate, private_key, '') FROM k$$);
SELECT regress_try($$SELECT pgtls_pkcs12(certificate, private_key, NULL) FROM k$$);
SELECT regress_try($$SELECT pgtls_pkcs12('garbage', private_key, 'pass') FROM k$$);
SELECT regress_try($$SELECT pgtls_pkcs12(certificate, private_key, 'pass', 'garbage') FROM k$$);
SELECT regress_try($$SELECT pgtls_encrypt_key(private_key, '') FROM k$$);
SELECT regress_try($$SELECT pgtls_encrypt_key('garbage', 'pass')$$);
