-- Leave the cluster as the suites found it: no regress_ role, no CA files in
-- the data directory, no extension; a second run starts from here.
LOAD 'pgtls_admin';  -- its settings name the CA files
SELECT regress_reset_cluster();
DROP EXTENSION pgtls_admin CASCADE;
SELECT count(*) AS regress_roles_left FROM pg_roles WHERE rolname LIKE 'regress\_%';
SELECT g AS file, pg_stat_file(current_setting(g), true) IS NULL AS removed
FROM unnest(ARRAY['pgtls_admin.ca_cert_file', 'pgtls_admin.ca_key_file', 'pgtls_admin.crl_file',
                  'pgtls_admin.ca_bundle_file']) AS g;
SELECT count(*) AS kept_keys_left
FROM pg_ls_dir(regexp_replace(current_setting('pgtls_admin.ca_key_file'), '/?[^/]*$', ''), true, false) AS f
WHERE f LIKE 'ca-%';
SELECT count(*) AS extensions_left FROM pg_extension WHERE extname = 'pgtls_admin';
