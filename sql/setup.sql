-- Extension, helpers and roles shared by the other suites; the state before any CA exists.
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

-- GUCs exist once the library is loaded, are reload-only and the prefix is reserved.
LOAD 'pgtls_admin';
SELECT name, setting, context FROM pg_settings WHERE name LIKE 'pgtls_admin.%' ORDER BY name;
SELECT regress_try('SET pgtls_admin.default_days = 10');
SELECT regress_try('SET pgtls_admin.no_such_setting = 1');

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
