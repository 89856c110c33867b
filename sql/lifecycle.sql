-- Issuing gives a NOTICE when no line of the cluster's pg_hba.conf admits the role
-- with a certificate; it depends on the cluster, so it is checked where pg_hba.conf
-- is fixed (role_names.sql in a temporary instance, t/007), not here.
SET client_min_messages = warning;

-- Server certificates, CSRs, revocation, CRL, renewal: results and every error path.
-- (Installing a certificate and turning TLS on are exercised on real clusters in t/003.)

-- pgtls_issue_server
CREATE TEMP TABLE srv AS
SELECT * FROM pgtls_issue_server('{db.example.com,*.db.example.com}', '{10.0.0.5,2001:db8::1}', days => 90);
SELECT ci.subject, ci.san, ci.eku, ci.key_usage, ci.is_ca, ci.key_type,
       s.not_after BETWEEN now() + interval '89 days 23:59' AND now() + interval '90 days 00:01' AS ninety_days,
       s.private_key ~ '^-{5}BEGIN PRIVATE KEY-{5}\n' AS pkcs8
FROM srv s, pgtls_cert_info(s.certificate) ci;
SELECT kind, role, san FROM pgtls_certificates WHERE serial = (SELECT serial FROM srv);
-- an address alone names the certificate (keyEncipherment for RSA keys: t/020_rsa_keys.pl)
SELECT ci.subject, ci.san, ci.key_usage
FROM pgtls_issue_server('{}', '{127.0.0.1}') s, pgtls_cert_info(s.certificate) ci;
SELECT regress_try($$SELECT * FROM pgtls_issue_server('{}')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_server(NULL)$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_server('{db.example.com,NULL}')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_server('{"bad name"}')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_server('{-bad.example.com}')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_server('{a.*.example.com}')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_server('{db.example.com}', '{10.0.0.0/8}')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_server('{db.example.com}', days => 10000)$$);

-- pgtls_install_server_cert refuses bad input before touching anything
SELECT * FROM pgtls_install_server_cert('garbage', 'garbage');
SELECT * FROM pgtls_install_server_cert((SELECT certificate FROM srv), 'garbage');
SELECT * FROM pgtls_install_server_cert(NULL, 'x');

-- pgtls_sign_client_csr: argument errors (real requests are signed in t/004)
SELECT regress_try($$SELECT * FROM pgtls_sign_client_csr('regress_user1', 'garbage')$$);
SELECT regress_try($$SELECT * FROM pgtls_sign_client_csr('regress_user1', NULL)$$);
SELECT regress_try($$SELECT * FROM pgtls_sign_client_csr('regress_no_such_role', 'x')$$);

-- pgtls_revoke, at NOTICE level: the server does not use the extension's CRL here
SELECT current_setting('ssl_crl_file') <> current_setting('pgtls_admin.crl_file') AS server_ignores_our_crl;
CREATE TEMP TABLE c1 AS SELECT * FROM pgtls_issue_client('regress_user1');
CREATE TEMP TABLE c3 AS SELECT * FROM pgtls_issue_client('regress_user1');
SET client_min_messages = notice;
SELECT pgtls_revoke((SELECT serial FROM c1), 'keyCompromise') AS revoked_now;
SELECT pgtls_revoke(lower((SELECT serial FROM c1))) AS revoked_again;
SELECT pgtls_revoke(regexp_replace((SELECT serial FROM c1), '(..)(?!$)', '\1:', 'g')) AS with_colons;
SELECT revocation_reason, revoked_at IS NOT NULL AS has_time
FROM pgtls_certificates WHERE serial = (SELECT serial FROM c1);
SELECT regress_try($$SELECT pgtls_revoke('not-hex')$$);
SELECT regress_try($$SELECT pgtls_revoke('')$$);
SELECT regress_try($$SELECT pgtls_revoke(repeat('A', 41))$$);
SELECT regress_try($$SELECT pgtls_revoke('0123456789ABCDEF')$$);
SELECT regress_try($$SELECT pgtls_revoke((SELECT serial FROM c1), 'becauseISaidSo')$$);
SELECT regress_try($$SELECT pgtls_revoke(NULL)$$);
SELECT regress_try($$SELECT pgtls_revoke((SELECT serial FROM pgtls_certificates WHERE kind = 'ca' ORDER BY issued_at DESC LIMIT 1))$$);
SELECT pgtls_revoke((SELECT serial FROM c3), 'CESSATIONOFOPERATION');
SET client_min_messages = warning;

-- pgtls_crl: a PEM CRL listing what was revoked
SELECT pgtls_crl() ~ '^-{5}BEGIN X509 CRL-{5}\n[A-Za-z0-9+/=\n]+-{5}END X509 CRL-{5}\n$' AS crl_pem;

-- pgtls_renew
CREATE TEMP TABLE c2 AS SELECT * FROM pgtls_issue_client('regress_user1', key_type => 'ed25519');
CREATE TEMP TABLE r2 AS SELECT * FROM pgtls_renew((SELECT serial FROM c2), days => 30);
SELECT r2.serial <> c2.serial AS new_serial, ci.subject, ci.key_type,
       r2.private_key <> c2.private_key AS new_key,
       r2.not_after BETWEEN now() + interval '29 days 23:59' AND now() + interval '30 days 00:01' AS thirty_days
FROM c2, r2, pgtls_cert_info(r2.certificate) ci;
SELECT ci.subject, ci.san
FROM pgtls_renew((SELECT serial FROM srv)) r, pgtls_cert_info(r.certificate) ci;
SELECT regress_try($$SELECT * FROM pgtls_renew((SELECT serial FROM c1))$$);
SELECT regress_try($$SELECT * FROM pgtls_renew('0123456789ABCDEF')$$);
SELECT regress_try($$SELECT * FROM pgtls_renew((SELECT serial FROM pgtls_certificates WHERE kind = 'ca' LIMIT 1))$$);

-- Views for dashboards
SELECT kind, role, revocation_reason FROM pgtls_revoked_certificates ORDER BY revocation_reason;
SELECT count(*) > 0 AS expiring_within_30_days
FROM pgtls_expiring_certificates WHERE serial = (SELECT serial FROM r2);
SELECT count(*) AS not_expiring_soon FROM pgtls_expiring_certificates WHERE serial = (SELECT serial FROM c2);
SELECT role, valid > 0 AS has_valid, revoked FROM pgtls_certificates_by_role WHERE role = 'regress_user1';

-- Who may call what: server certificates are superuser business; revoking
-- and renewing a client certificate need ADMIN OPTION on its role.
CREATE ROLE regress_lc_issuer LOGIN;
CREATE ROLE regress_lc_member LOGIN;
CREATE ROLE regress_lc_other LOGIN;
GRANT regress_lc_member TO regress_lc_issuer WITH ADMIN OPTION;
GRANT EXECUTE ON FUNCTION pgtls_issue_server(text[], inet[], int, text),
                          pgtls_enable_ssl(text[], inet[], int, text),
                          pgtls_install_server_cert(text, text),
                          pgtls_renew(text, int, interval) TO regress_lc_issuer;
SELECT serial AS srv_serial FROM srv \gset
SELECT serial AS member_serial FROM pgtls_issue_client('regress_lc_member') \gset
SELECT serial AS other_serial FROM pgtls_issue_client('regress_lc_other') \gset
SELECT serial AS su_serial FROM pgtls_issue_client('regress_su') \gset
SET ROLE regress_lc_issuer;
SELECT regress_try($$SELECT * FROM pgtls_issue_server('{db.example.com}')$$);
SELECT regress_try($$SELECT * FROM pgtls_enable_ssl()$$);
SELECT regress_try($$SELECT * FROM pgtls_install_server_cert('x', 'y')$$);
SELECT regress_try($$SELECT pgtls_revoke('AB')$$);
SELECT regress_try($$SELECT pgtls_crl()$$);
SELECT regress_try(format('SELECT * FROM pgtls_renew(%L)', :'srv_serial'));
SELECT regress_try(format('SELECT serial FROM pgtls_renew(%L)', :'member_serial'));
SELECT regress_try(format('SELECT serial FROM pgtls_renew(%L)', :'other_serial'));
SELECT regress_try($$SELECT * FROM pgtls_revoked_certificates$$);
RESET ROLE;
GRANT EXECUTE ON FUNCTION pgtls_revoke(text, text, bool) TO regress_lc_issuer;
SET ROLE regress_lc_issuer;
SELECT regress_try(format('SELECT pgtls_revoke(%L)', :'member_serial'));
SELECT regress_try(format('SELECT pgtls_revoke(%L)', :'other_serial'));
SELECT regress_try(format('SELECT pgtls_revoke(%L)', :'su_serial'));
SELECT regress_try(format('SELECT pgtls_revoke(%L)', :'srv_serial'));
RESET ROLE;
SELECT role, revoked_at IS NOT NULL AS revoked FROM pgtls_certificates
WHERE serial IN (:'member_serial', :'other_serial', :'su_serial', :'srv_serial') ORDER BY role;
