-- lifetime =>, pgtls_maintain(), pgtls_renew_self() and pgtls_sessions: results and
-- every error path a Unix-socket session reaches.  Real TLS logins, self-renewal, the
-- background worker renewing the served certificate, NOTIFY on a listening connection
-- and sessions ended by revocation are tested on real clusters in t/025-t/027.
SET client_min_messages = warning;
CREATE ROLE regress_mt_user LOGIN;
CREATE ROLE regress_mt_plain LOGIN;

-- The span of a certificate in minutes (not_before is five minutes back).
CREATE FUNCTION regress_span_minutes(pem text) RETURNS numeric LANGUAGE sql AS $$
    SELECT round(extract(epoch FROM not_after - not_before) / 60) FROM pgtls_cert_info(pem)
$$;

-- lifetime => on pgtls_issue_client: an interval, at least 5 minutes, at most max_days
CREATE TEMP TABLE short AS SELECT * FROM pgtls_issue_client('regress_mt_user', lifetime => '1 hour');
SELECT regress_span_minutes(certificate) AS short_span FROM short;
SELECT regress_span_minutes(certificate) AS month_span
FROM pgtls_issue_client('regress_mt_user', lifetime => '1 mon 2 days 03:00');
SELECT regress_span_minutes(certificate) AS five_minutes FROM pgtls_issue_client('regress_mt_user', lifetime => '300 s');
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_mt_user', days => 1, lifetime => '1 hour')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_mt_user', lifetime => '4 min 59 s')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_mt_user', lifetime => '-1 hour')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_mt_user', lifetime => '826 days')$$);
SELECT regress_try($$SELECT * FROM pgtls_issue_client('regress_mt_user', lifetime => '3 years')$$);
-- pgtls_sign_client_csr checks its validity before the request (signing: t/026)
SELECT regress_try($$SELECT * FROM pgtls_sign_client_csr('regress_mt_user', 'x', days => 1, lifetime => '1 hour')$$);
SELECT regress_try($$SELECT * FROM pgtls_sign_client_csr('regress_mt_user', 'x', lifetime => '1 min')$$);

-- pgtls_renew with lifetime =>, recorded in pgtls_renewals
CREATE TEMP TABLE renewed AS SELECT * FROM pgtls_renew((SELECT serial FROM short), lifetime => '2 hours');
SELECT regress_span_minutes(certificate) AS renewed_span FROM renewed;
SELECT previous = (SELECT serial FROM short) AS renews_short, renewed_by
FROM pgtls_renewals WHERE serial = (SELECT serial FROM renewed);
SELECT regress_try(format('SELECT * FROM pgtls_renew(%L, days => 1, lifetime => %L)',
                          (SELECT serial FROM short), '1 hour'));
SELECT regress_try(format('SELECT * FROM pgtls_renew(%L, lifetime => %L)', (SELECT serial FROM short), '1 min'));

-- pgtls_renew_self: granted to PUBLIC, refused (42501) to a session that did not log in
-- with a live client certificate of its own, such as this Unix-socket one
SELECT regress_try($$SELECT * FROM pgtls_renew_self('-----BEGIN CERTIFICATE REQUEST-----')$$);
SET ROLE regress_mt_plain;
SELECT regress_try($$SELECT * FROM pgtls_renew_self('-----BEGIN CERTIFICATE REQUEST-----', lifetime => '1 hour')$$);
RESET ROLE;
SELECT regress_try($$SELECT * FROM pgtls_renew_self(NULL)$$);
SELECT regress_try($$SELECT * FROM pgtls_renew_self('x', revoke_previous => NULL)$$);
SELECT regress_try($$SELECT * FROM pgtls_renew_self(repeat('x', 1048577))$$);

-- pgtls_revoke(..., terminate): NULL is refused; false revokes all the same
SELECT regress_try(format('SELECT pgtls_revoke(%L, %L, NULL)', (SELECT serial FROM renewed), 'superseded'));
SELECT pgtls_revoke((SELECT serial FROM renewed), terminate => false) AS revoked;
SELECT revocation_reason FROM pgtls_certificates WHERE serial = (SELECT serial FROM renewed);

-- pgtls_sessions: Unix-socket sessions carry no certificate; for pg_monitor
SELECT count(*) AS sessions_with_certificates FROM pgtls_sessions
WHERE pid = pg_backend_pid();
SET ROLE regress_mt_plain;
SELECT regress_try('SELECT * FROM pgtls_sessions');
SELECT regress_try('SELECT * FROM pgtls_session_certificates()');
RESET ROLE;
GRANT pg_monitor TO regress_mt_plain;
SET ROLE regress_mt_plain;
SELECT regress_try('SELECT * FROM pgtls_sessions');
RESET ROLE;
REVOKE pg_monitor FROM regress_mt_plain;

-- pgtls_maintain: superuser only, not in a transaction block, quiet when nothing is due
SET ROLE regress_mt_plain;
SELECT regress_try('SELECT * FROM pgtls_maintain()');
RESET ROLE;
GRANT EXECUTE ON FUNCTION pgtls_maintain() TO regress_mt_plain;
SET ROLE regress_mt_plain;
SELECT regress_try('SELECT * FROM pgtls_maintain()');
RESET ROLE;
BEGIN;
SELECT * FROM pgtls_maintain();
ROLLBACK;
SELECT action, count(*) FROM pgtls_maintain() GROUP BY action ORDER BY action;
SELECT * FROM pgtls_maintain();

-- Expiry warnings: once per live certificate that entered the window, none for renewed,
-- revoked or short-lived ones (whose whole lifetime is shorter than the window).  The
-- registry is backdated here; t/025 receives them as NOTIFY from the worker.
CREATE TEMP TABLE ew AS
SELECT name, (pgtls_issue_client('regress_mt_user', days => 20)).serial
FROM unnest(ARRAY['warned', 'renewed', 'revoked', 'short-lived']) AS name;
UPDATE pgtls_certificates SET not_before = not_before - interval '60 days'
WHERE serial IN (SELECT serial FROM ew WHERE name <> 'short-lived');
SELECT count(*) AS renewed FROM pgtls_renew((SELECT serial FROM ew WHERE name = 'renewed'));
SELECT pgtls_revoke((SELECT serial FROM ew WHERE name = 'revoked')) AS revoked;
SELECT action, regexp_replace(replace(detail, (SELECT serial FROM ew WHERE name = 'warned'), '<warned>'),
                              'expires at .*', 'expires at <time>') AS detail
FROM pgtls_maintain();
SELECT e.name FROM pgtls_expiry_warnings w JOIN ew e USING (serial);
SELECT count(*) AS warned_again FROM pgtls_maintain();

RESET client_min_messages;
