-- Issuing gives a NOTICE when no line of the cluster's pg_hba.conf admits the role
-- with a certificate; it depends on the cluster, so it is checked where pg_hba.conf
-- is fixed (role_names.sql in a temporary instance, t/007), not here.
SET client_min_messages = warning;

-- Who may issue for whom (DESIGN.md, Security rules).
CREATE ROLE regress_issuer LOGIN;
CREATE ROLE regress_target LOGIN;
CREATE ROLE regress_other LOGIN;
CREATE ROLE regress_su LOGIN SUPERUSER;
CREATE ROLE regress_repl LOGIN REPLICATION;
CREATE ROLE regress_bypass LOGIN BYPASSRLS;
CREATE ROLE regress_watcher LOGIN IN ROLE pg_monitor;
GRANT regress_target, regress_su, regress_repl, regress_bypass TO regress_issuer WITH ADMIN OPTION;

-- Without EXECUTE nothing is callable.
SET ROLE regress_issuer;
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_target')$$);
SELECT regress_try($$SELECT pgtls_ca_cert()$$);
SELECT regress_try($$SELECT * FROM pgtls_cert_info(NULL)$$);
RESET ROLE;

GRANT EXECUTE ON FUNCTION pgtls_issue_client(name, int, text, text, interval) TO regress_issuer;
GRANT EXECUTE ON FUNCTION pgtls_init_ca(text, int, text, bool) TO regress_issuer;
GRANT EXECUTE ON FUNCTION pgtls_import_ca(text, text, bool) TO regress_issuer;
SELECT count(*) AS rows_before FROM pgtls_certificates \gset
SET ROLE regress_issuer;
-- ADMIN OPTION on the target: allowed, and recorded as issued by the caller.
SELECT serial ~ '^[0-9A-F]{32}$' AS issued FROM pgtls_issue_client('regress_target');
-- no ADMIN OPTION, itself, superuser, replication, bypassrls: refused
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_other')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_issuer')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_su')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_repl')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_bypass')$$);
-- EXECUTE alone never lets anyone replace the CA
SELECT regress_try($$SELECT pgtls_init_ca(replace => true)$$);
SELECT regress_try($$SELECT pgtls_import_ca('x', 'y', true)$$);
-- the registry is not the issuer's to read or write
SELECT regress_try($$SELECT count(*) FROM pgtls_certificates$$);
SELECT regress_try($$DELETE FROM pgtls_certificates$$);
RESET ROLE;
SELECT count(*) - :rows_before AS new_rows FROM pgtls_certificates;
SELECT kind, role, issued_by FROM pgtls_certificates WHERE issued_by = 'regress_issuer';

-- A superuser may issue for superuser, replication and bypassrls roles.
SELECT count(*) AS issued FROM (
    SELECT * FROM pgtls_issue_client('regress_su')
    UNION ALL SELECT * FROM pgtls_issue_client('regress_repl')
    UNION ALL SELECT * FROM pgtls_issue_client('regress_bypass')) s;

-- pg_monitor reads the registry and inspects certificates; it cannot issue.
SET ROLE regress_watcher;
SELECT count(*) > 0 AS can_read_registry FROM pgtls_certificates;
SELECT count(*) AS rows_with_private_keys FROM pgtls_certificates WHERE certificate LIKE '%PRIVATE%';
SELECT is_ca FROM pgtls_cert_info((SELECT certificate FROM pgtls_certificates WHERE kind = 'ca' LIMIT 1));
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_target')$$);
RESET ROLE;

-- No function of the extension returns or takes the CA key out: the key file is
-- only ever read by the server, and no result column can hold it.
SELECT p.proname, pg_get_function_result(p.oid) AS result
FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pgtls_admin')
ORDER BY p.proname;
-- ... nor a column of the certificate details they return.
SELECT attname, format_type(atttypid, atttypmod) AS type
FROM pg_attribute WHERE attrelid = 'pgtls_cert_details'::regclass AND attnum > 0
ORDER BY attnum;
