-- Issuing gives a NOTICE when no line of the cluster's pg_hba.conf admits the role
-- with a certificate; it depends on the cluster, so it is checked where pg_hba.conf
-- is fixed (role_names.sql in a temporary instance, t/007), not here.
SET client_min_messages = warning;

-- pgtls_cert_info on fixed public certificates (no keys are kept), so every field is checked.
\x on
SELECT * FROM pgtls_cert_info((SELECT pem FROM regress_fixture_certs WHERE name = 'server'));
SELECT * FROM pgtls_cert_info((SELECT pem FROM regress_fixture_certs WHERE name = 'sha1_ca'));
\x off

-- subject_dn / issuer_dn as the server's peer_dn (what clientname=DN and pg_ident.conf
-- compare): last RDN first, a multi-valued RDN reversed, bytes above 0x7F escaped;
-- an RSA-PSS key; otherName SANs (a UPN, and an OID we cannot name).
-- openssl x509 -noout -subject -nameopt RFC2253 prints:
--   CN=bob\,admin,OU=db+L=x,O=Acme \C3\9Ctf,C=DE
SELECT subject, subject_dn, san, key_type, key_bits, signature_algorithm
FROM pgtls_cert_info($pem$
-----BEGIN CERTIFICATE-----
MIIEPTCCAvCgAwIBAgIUCyQnMY2M6rHNLybqWVpsyUoqTmIwQgYJKoZIhvcNAQEK
MDWgDzANBglghkgBZQMEAgEFAKEcMBoGCSqGSIb3DQEBCDANBglghkgBZQMEAgEF
AKIEAgIA3jBMMQswCQYDVQQGEwJERTESMBAGA1UECgwJQWNtZSDDnHRmMRUwCAYD
VQQHDAF4MAkGA1UECwwCZGIxEjAQBgNVBAMMCWJvYixhZG1pbjAeFw0yNjExMjky
MzE3MzBaFw0zNjExMjYyMzE3MzBaMEwxCzAJBgNVBAYTAkRFMRIwEAYDVQQKDAlB
Y21lIMOcdGYxFTAIBgNVBAcMAXgwCQYDVQQLDAJkYjESMBAGA1UEAwwJYm9iLGFk
bWluMIIBIDALBgkqhkiG9w0BAQoDggEPADCCAQoCggEBALeMqMZ53KE7Zj/rmaBL
QgZLa578UqlEzvGEnAda8bxFzSwJXFep/mKm/zz2HqTJ6PGbKg7LuGN3SQwf6Osq
54mqx4TnYSi3gf7IHiyH2Q62ITaED1h3e/yyvjrtzZrvnpRTSnOIsT8OMBS60w4L
lgMVOpXCS4hiTByeTplxsn5VtKwAM3y5GsKRN7rZn+/RUJ+SZhR6R52RApvTo0U3
FTabPsAR+ltykulai63/W7sEoUMvjpvrzJRHIXliRyNyjYG+kOU7YCypOXzB7QHu
tFvwnCEChqi8/JtSruSrcBrHI5cpYH5BP+DR2OMqfZ7Jk9gosAUHOJpwwCA8fPn5
Dq0CAwEAAaOBrjCBqzAdBgNVHQ4EFgQUTfm7Z8OJM0DZgFeBFyV5A3RQRUswHwYD
VR0jBBgwFoAUTfm7Z8OJM0DZgFeBFyV5A3RQRUswDwYDVR0TAQH/BAUwAwEB/zBD
BgNVHREEPDA6oB8GCisGAQQBgjcUAgOgEQwPYm9iQGV4YW1wbGUuY29toAwGAyoD
BKAFDAN6enqCCXguZXhhbXBsZTATBgNVHSUEDDAKBggrBgEFBQcDAjBCBgkqhkiG
9w0BAQowNaAPMA0GCWCGSAFlAwQCAQUAoRwwGgYJKoZIhvcNAQEIMA0GCWCGSAFl
AwQCAQUAogQCAgDeA4IBAQATNNbSVJ+F1zzYLcj2ts00cOXqmeTOUPiEo1j1bD/h
CQLtIzZc+Ea4YDLy5tSRhbrnoKLXUG/pQIoZ0/+uoiKqbPjviWFxFlF0Mz6wpHWC
F/3nUmd9tdnxvy9jYYu4cd7k9HmwksZn8g0DnG37jTyFcbfNQRFpDY2ApmY+TkWl
lP+48Oj0cBei7r50RfrCAMj3nPhZVXD+x6wf9CN7HXdIgGjnD95rtM9HVuJV1SKE
v6o6BE8Zp09vHliBmtnDoI0Yr16i9HFB9CTFMqS1xRrGUohsppoNhPqU4nvcPh8L
oMHuLmtlisD8M++iokH06PYI0tPyBiO3R/a8oaHgK7YO
-----END CERTIFICATE-----
$pem$) \gx

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
