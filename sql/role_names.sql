-- Role names that cannot start with regress_, so this suite runs only in a
-- temporary instance (make tempcheck): a leading space or # is escaped only
-- at the start of a value (RFC 4514), and the DN-syntax names of issue.sql
-- as they are, 63 bytes of UTF-8 among them.
SET client_min_messages = warning;
DROP ROLE IF EXISTS "a,CN=postgres", "x/CN=admin", "it's ""quoted""", " leading space", "#hash",
    "semi;colon+plus<gt>\back", "€€€€€€€€€€€€€€€€€€€€€";
RESET client_min_messages;
SELECT length(pgtls_init_ca()) > 0 AS ca_created;
-- at NOTICE level: sql/hba/pg_hba.conf admits every role with a certificate
-- (lines 12 and 14), so issuing gives no NOTICE

-- Hostile role names: the CN is the role name, one attribute, no DN syntax interpreted.
CREATE ROLE "a,CN=postgres" LOGIN;
CREATE ROLE "x/CN=admin" LOGIN;
CREATE ROLE "it's ""quoted""" LOGIN;
CREATE ROLE " leading space" LOGIN;
CREATE ROLE "#hash" LOGIN;
CREATE ROLE "semi;colon+plus<gt>\back" LOGIN;
CREATE ROLE "€€€€€€€€€€€€€€€€€€€€€" LOGIN;
SELECT octet_length('€€€€€€€€€€€€€€€€€€€€€') AS utf8_bytes;
CREATE TEMP TABLE hostile AS
SELECT r.rolname, i.serial, i.certificate
FROM (VALUES ('a,CN=postgres'), ('x/CN=admin'), ('it''s "quoted"'), (' leading space'), ('#hash'),
             ('semi;colon+plus<gt>\back'), ('€€€€€€€€€€€€€€€€€€€€€')) AS v(name)
     JOIN pg_roles r ON r.rolname = v.name,
     LATERAL pgtls_issue_client(r.rolname) AS i;
SELECT '[' || h.rolname || ']' AS role, ci.subject, reg.role = h.rolname AS registry_role
FROM hostile h
     CROSS JOIN LATERAL pgtls_cert_info(h.certificate) AS ci
     JOIN pgtls_certificates reg ON reg.serial = h.serial
ORDER BY h.rolname;

DROP ROLE "a,CN=postgres", "x/CN=admin", "it's ""quoted""", " leading space", "#hash",
    "semi;colon+plus<gt>\back", "€€€€€€€€€€€€€€€€€€€€€";
