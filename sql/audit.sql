-- pgtls_hba_match(): check_hba()'s matching rules, against the fixed
-- pg_hba.conf in sql/hba/ (the server's hba_file in make tempcheck's
-- temporary instance; copied into the data directory by scripts/cluster.sh),
-- and the pg_hba.conf findings of pgtls_hba_check().
SELECT count(*) AS hba_lines FROM pg_hba_file_rules;
-- the WARNINGs and hba.rule_warning rows below are there because ssl is off here
SHOW ssl;

-- not regress_-prefixed (sql/hba/regress_hba_users.txt names it): dropped
-- first too, should an earlier run have stopped half-way
SET client_min_messages = warning;
DROP ROLE IF EXISTS "Regress Hba B";
RESET client_min_messages;
CREATE ROLE regress_hba_group NOLOGIN;
CREATE ROLE regress_hba_in LOGIN IN ROLE regress_hba_group;
CREATE ROLE regress_hba_out LOGIN;
CREATE ROLE regress_hba_dbrole NOLOGIN;
CREATE ROLE regress_hba_member LOGIN IN ROLE regress_hba_dbrole;
CREATE ROLE regress_hba_a LOGIN;
CREATE ROLE "Regress Hba B" LOGIN;
CREATE ROLE regress_hba_repl LOGIN REPLICATION;
CREATE ROLE regress_hba_nologin NOLOGIN;
CREATE ROLE regress_hba_super LOGIN SUPERUSER;
CREATE ROLE regress_hba_watcher LOGIN IN ROLE pg_monitor;

CREATE FUNCTION regress_match(r name, d name, a inet, s bool DEFAULT true) RETURNS text
LANGUAGE sql AS $$
    SELECT concat_ws(' | ', coalesce(line_number::text, '-'), type, auth_method,
                     array_to_string(options, ','), verdict)
    FROM pgtls_hba_match(r, d, a, s)
$$;

-- +group: members only; a superuser is not a member unless granted (line 12 then)
SELECT regress_match('regress_hba_in', 'postgres', '10.1.2.3');
SELECT regress_match('regress_hba_super', 'postgres', '10.1.2.3');
-- sameuser: database named like the role
SELECT regress_match('regress_hba_out', 'regress_hba_out', '10.1.2.3');
-- samerole: member of the role named like the database
SELECT regress_match('regress_hba_member', 'regress_hba_dbrole', '10.1.2.3');
-- no TLS from 10/8: hostnossl reject
SELECT regress_match('regress_hba_in', 'postgres', '10.1.2.3', false);
-- trust with clientcert=verify-full is a certificate login
SELECT regress_match('regress_hba_out', 'postgres', '10.9.9.9');
-- @file: names listed in the included file; a quoted "all" is a database name
SELECT regress_match('regress_hba_a', 'db2', '192.168.1.1');
SELECT regress_match('Regress Hba B', 'all', '192.168.200.1');
SELECT regress_match('Regress Hba B', 'postgres', '192.168.200.1');
SELECT regress_match('regress_hba_out', 'db2', '192.168.1.1');
-- outside the address/netmask of line 9
SELECT regress_match('regress_hba_a', 'db2', '192.169.1.1');
-- physical replication matches only the replication keyword
SELECT regress_match('regress_hba_repl', 'replication', '192.168.7.7', false);
SELECT regress_match('regress_hba_repl', 'postgres', '192.168.7.7', false);
SELECT regress_match('regress_hba_repl', 'replication', '192.168.7.8', false);
-- IPv6 CIDR; an IPv4 rule never matches an IPv6 client
SELECT regress_match('regress_hba_out', 'postgres', 'fd12::1', false);
SELECT regress_match('regress_hba_out', 'postgres', '::ffff:10.1.2.3');
-- samenet: the loopback interface's network
SELECT regress_match('regress_hba_out', 'postgres', '127.0.0.9', false);
-- exact address
SELECT regress_match('regress_hba_out', 'postgres', '127.0.0.1', false);
-- Unix-domain socket (address NULL), ssl ignored
SELECT regress_match('regress_hba_out', 'postgres', NULL);
-- a rule that admits a role without LOGIN
SELECT regress_match('regress_hba_nologin', 'postgres', NULL);
-- nothing matches
SELECT regress_match('regress_hba_out', 'postgres', '203.0.113.5');

-- errors
SELECT regress_try($$SELECT * FROM pgtls_hba_match('regress_hba_nobody', 'postgres', '10.0.0.1')$$);
SELECT regress_try($$SELECT * FROM pgtls_hba_match(NULL, 'postgres', '10.0.0.1')$$);
SELECT regress_try($$SELECT * FROM pgtls_hba_match('regress_hba_out', NULL, '10.0.0.1')$$);
SELECT regress_try($$SELECT * FROM pgtls_hba_match('regress_hba_out', 'postgres', '10.0.0.1', NULL)$$);

-- pg_hba.conf findings of the audit for the same file
SELECT severity, check_id, line_number
FROM pgtls_hba_check() WHERE check_id LIKE 'hba.%'
ORDER BY line_number, check_id;
-- worst first
SELECT bool_and(ok) AS ordered FROM (
    SELECT array_position(ARRAY['critical','high','medium','low','info'], severity)
           >= coalesce(lag(array_position(ARRAY['critical','high','medium','low','info'], severity))
                       OVER (), 0) AS ok
    FROM pgtls_hba_check()) s;

-- the live server certificate: none here (ssl_cert_file names a missing file)
SELECT regress_try($$SELECT * FROM pgtls_server_cert_info()$$);

-- pg_monitor may run the audit functions; others may not
SET ROLE regress_hba_watcher;
SELECT count(*) > 0 AS audited FROM pgtls_hba_check();
SELECT regress_match('regress_hba_in', 'postgres', '10.1.2.3');
RESET ROLE;
SET ROLE regress_hba_out;
SELECT regress_try($$SELECT * FROM pgtls_hba_check()$$);
SELECT regress_try($$SELECT * FROM pgtls_hba_match('regress_hba_out', 'postgres', NULL)$$);
SELECT regress_try($$SELECT * FROM pgtls_server_cert_info()$$);
RESET ROLE;

DROP FUNCTION regress_match(name, name, inet, bool);
DROP ROLE regress_hba_group, regress_hba_in, regress_hba_out, regress_hba_dbrole,
    regress_hba_member, regress_hba_a, "Regress Hba B", regress_hba_repl,
    regress_hba_nologin, regress_hba_super, regress_hba_watcher;
