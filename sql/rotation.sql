-- CA rotation, the trust bundle and intermediate CAs: the arguments and the
-- refusals that depend on no TLS setting of the cluster.  Rotations, trusted
-- CAs and intermediates with real logins are in t/030-t/032.  The functions
-- that change what the server trusts refuse to run in a transaction block
-- (regress_try's exception block is one), so their errors show as psql prints them (tersely).
SET client_min_messages = warning;
\set VERBOSITY terse

-- The CAs the extension holds: one, active; clients trust just it.
SELECT state, subject, intermediate, live_certificates > 0 AS issued FROM pgtls_cas WHERE state <> 'retired';
SELECT pgtls_ca_cert() = certificate AS bundle_is_the_active_ca
FROM pgtls_certificates WHERE kind = 'ca' AND ca_state = 'active';
SELECT pg_read_file(current_setting('pgtls_admin.ca_bundle_file')) = pgtls_ca_cert() AS bundle_file;
SELECT count(*) AS state_without_ca FROM pgtls_certificates WHERE ca_state IS NOT NULL AND kind <> 'ca';

-- pgtls_ca_rotate: phases in order, arguments for prepare only
SELECT * FROM pgtls_ca_rotate('promote');
SELECT * FROM pgtls_ca_rotate(NULL);
SELECT * FROM pgtls_ca_rotate('retire', NULL);
SELECT * FROM pgtls_ca_rotate('activate', subject => 'CN=x');
SELECT * FROM pgtls_ca_rotate('prepare', days => 0);
SELECT * FROM pgtls_ca_rotate('prepare', days => 36501);
SELECT * FROM pgtls_ca_rotate('prepare', key_type => 'dsa-1024');
SELECT * FROM pgtls_ca_rotate('activate');
SELECT * FROM pgtls_ca_rotate('retire');
SELECT * FROM pgtls_ca_rotate('rollback');
BEGIN;
SELECT * FROM pgtls_ca_rotate('retire');
ROLLBACK;
-- none of that changed a state
SELECT state, subject FROM pgtls_cas WHERE state <> 'retired';

-- pgtls_trust_add: a CA, with a CRL it signed, that is not ours
SELECT pgtls_trust_add(NULL);
SELECT pgtls_trust_add('garbage');
SELECT pgtls_trust_add((SELECT pem FROM regress_fixture_certs WHERE name = 'server'));
SELECT pgtls_trust_add((SELECT string_agg(pem, E'\n' ORDER BY name) FROM regress_fixture_certs));
SELECT pgtls_trust_add((SELECT pem FROM regress_fixture_certs WHERE name = 'sha1_ca'));
SELECT pgtls_trust_add((SELECT pem FROM regress_fixture_certs WHERE name = 'sha1_ca'), 'garbage');
SELECT pgtls_trust_add((SELECT pem FROM regress_fixture_certs WHERE name = 'sha1_ca'), pgtls_crl());
SELECT pgtls_trust_add(pgtls_ca_cert(), pgtls_crl());
SELECT pgtls_trust_add(repeat('x', 1024 * 1024 + 1));
SELECT count(*) AS trusted FROM pgtls_trusted_cas;

-- pgtls_trust_remove: a fingerprint in any spelling, of a CA of others
SELECT pgtls_trust_remove(NULL);
SELECT pgtls_trust_remove('xyz');
SELECT pgtls_trust_remove(repeat('ab', 33));
SELECT pgtls_trust_remove(repeat('ab', 32));
SELECT pgtls_trust_remove(lower(replace(
    (SELECT fingerprint_sha256 FROM pgtls_cas WHERE state = 'active'), ':', '')));

-- pgtls_ca_request: a key that stays here, and a request for a CA certificate
SELECT regress_try($$SELECT pgtls_ca_request(NULL)$$);
SELECT regress_try($$SELECT pgtls_ca_request('not a subject')$$);
SELECT regress_try($$SELECT pgtls_ca_request('CN=Regress Intermediate', key_type => 'dsa-1024')$$);
SELECT pgtls_ca_request('CN=Regress Intermediate,O=Regress') ~
       '^-{5}BEGIN CERTIFICATE REQUEST-{5}\n[A-Za-z0-9+/=\n]+-{5}END CERTIFICATE REQUEST-{5}\n$' AS csr_pem;
SELECT (pg_stat_file(regexp_replace(current_setting('pgtls_admin.ca_key_file'), '[^/]*$', '') || 'ca-request.key')).size > 0
       AS request_key_kept;

-- pgtls_ca_set_certificate: the signed intermediate CA, with its chain
SELECT pgtls_ca_set_certificate(NULL);
SELECT pgtls_ca_set_certificate('garbage');
SELECT pgtls_ca_set_certificate((SELECT pem FROM regress_fixture_certs WHERE name = 'server'));
SELECT pgtls_ca_set_certificate(pgtls_ca_cert());
SELECT pgtls_ca_set_certificate((SELECT pem FROM regress_fixture_certs WHERE name = 'sha1_ca'));
SELECT state, subject FROM pgtls_cas WHERE state <> 'retired';

-- Only a superuser changes what the server trusts, whatever EXECUTE was granted.
GRANT EXECUTE ON FUNCTION pgtls_ca_rotate(text, bool, text, int, text), pgtls_trust_add(text, text),
      pgtls_trust_remove(text), pgtls_ca_request(text, text), pgtls_ca_set_certificate(text) TO regress_user1;
SET ROLE regress_user1;
SELECT regress_try($$SELECT * FROM pgtls_ca_rotate('prepare')$$);
SELECT regress_try($$SELECT pgtls_trust_add((SELECT pem FROM regress_fixture_certs WHERE name = 'sha1_ca'))$$);
SELECT regress_try($$SELECT pgtls_trust_remove(repeat('ab', 32))$$);
SELECT regress_try($$SELECT pgtls_ca_request('CN=x')$$);
SELECT regress_try($$SELECT pgtls_ca_set_certificate('x')$$);
SELECT regress_try($$SELECT * FROM pgtls_cas$$);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION pgtls_ca_rotate(text, bool, text, int, text), pgtls_trust_add(text, text),
       pgtls_trust_remove(text), pgtls_ca_request(text, text), pgtls_ca_set_certificate(text) FROM regress_user1;
\set VERBOSITY default
