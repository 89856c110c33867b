# Short-lived client certificates that renew themselves: a 1-hour
# certificate renews over its own verify-full login with a CSR (the key stays
# on the client) and the new one logs in; every other kind of session gets
# 42501 (the Unix socket, a password login that presented a certificate, a
# revoked certificate); the request and lifetime are checked; revoke_previous
# and pgtls_admin.max_self_renewed; a mapped subject is kept; with
# enforce = registry the renewals log in, and the worker drops expired
# certificates from the shared live set.  Then pgtls-client-cert --renew
# --if-due as a cron job runs it: not due, due (at a later clock), --exec, an
# expired certificate, an interrupted renewal.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsSession;
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('renew_self');
$node->init;
$node->append_conf('postgresql.conf',
	"listen_addresses = '127.0.0.1'\nshared_preload_libraries = 'pgtls_admin'\n"
	  . "pgtls_admin.enforce = registry\npgtls_admin.maintenance_interval = '2s'\n"
	  . "max_prepared_transactions = 2\n");
open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die;
print $hba <<'HBA';
local all all trust
hostssl all pwuser 127.0.0.1/32 scram-sha-256
hostssl all alice 127.0.0.1/32 cert map=corp
hostssl all all 127.0.0.1/32 cert
host all all 127.0.0.1/32 reject
HBA
close $hba;
open my $ident, '>', $node->data_dir . '/pg_ident.conf' or die;
print $ident "corp \"/^(.*)\@example\\.com\$\" \\1\n";
close $ident;
$node->start;
$node->safe_psql('postgres', <<'SQL');
CREATE EXTENSION pgtls_admin;
SELECT length(pgtls_init_ca()) > 0;
SELECT count(*) FROM pgtls_enable_ssl();
CREATE ROLE user1 LOGIN; CREATE ROLE user2 LOGIN; CREATE ROLE alice LOGIN;
SET password_encryption = 'scram-sha-256';
CREATE ROLE pwuser LOGIN PASSWORD 'pw-secret';
SQL
# the worker finds the registry at start (registry-enforced logins wait for it)
$node->restart;
ok(wait_for(10, sub { slurp_file($node->logfile) =~ /pgtls_admin worker following the registry/ }),
	'the worker follows the registry');
my $port = $node->port;

# Client files for $role with a 1-hour certificate; returns the directory.
sub short_lived
{
	my ($role, %o) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my $subject = $o{subject} ? ", subject => '$o{subject}'" : '';
	my ($cert, $key, $ca) = split /\x01/, $node->safe_psql('postgres',
		"SELECT certificate || '\x01' || private_key || '\x01' || ca_certificate "
		  . "FROM pgtls_issue_client('$role', lifetime => '1 hour'$subject)");
	write_file_0600("$dir/postgresql.crt", "$cert\n");
	write_file_0600("$dir/postgresql.key", "$key\n");
	write_file_0600("$dir/root.crt", "$ca\n");
	return $dir;
}

# A new key in $dir/new.key and a request for it with CN $cn in $dir/new.csr.
sub new_request
{
	my ($dir, $cn) = @_;
	openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', "$dir/new.key", '-subj', "/CN=$cn", '-out', "$dir/new.csr");
	return slurp_file("$dir/new.csr");
}

# Put the renewal's certificate (and the new key) in place of the old pair.
sub install_renewal
{
	my ($dir, $cert) = @_;
	write_file_0600("$dir/postgresql.crt", "$cert\n");
	write_file_0600("$dir/postgresql.key", slurp_file("$dir/new.key"));
	return;
}

sub span_minutes
{
	my ($pem) = @_;
	return $node->safe_psql('postgres',
		"SELECT round(extract(epoch FROM not_after - not_before) / 60) FROM pgtls_cert_info(\$p\$$pem\$p\$)");
}

my $renew_row = q{SELECT serial || '|' || certificate FROM pgtls_renew_self};

# --- a 1-hour certificate renews itself over its own verify-full login
my $a = short_lived('user1');
my $serial_a = cert_file_serial("$a/postgresql.crt");
my $session = open_session($node, client_connstr($a, 'user1'));
is(session_query($session, 'SELECT session_user'), 'user1', 'user1 logs in with its 1-hour certificate');
my $csr = new_request($a, 'user1');
my ($out, $err) = session_query($session, "$renew_row(\$c\$$csr\$c\$)");
my ($serial_b, $cert_b) = split /\|/, $out // '', 2;
like($serial_b, qr/^[0-9A-F]{32}$/, 'pgtls_renew_self returns a new certificate') or diag($err);
is(span_minutes($cert_b), 65, '... for as long as the old one (1 hour, from 5 minutes back)');
is($node->safe_psql('postgres', "SELECT issued_by || ' ' || r.previous FROM pgtls_certificates c "
	  . "JOIN pgtls_renewals r USING (serial) WHERE serial = '$serial_b'"),
	"user1 $serial_a", 'recorded as issued by user1 itself, renewing the old one');
my $b = PostgreSQL::Test::Utils::tempdir;
write_file_0600("$b/root.crt", slurp_file("$a/root.crt"));
write_file_0600("$b/new.key", slurp_file("$a/new.key"));
install_renewal($b, $cert_b);
is(openssl('x509', '-in', "$b/postgresql.crt", '-noout', '-pubkey'), openssl('pkey', '-in', "$b/new.key", '-pubout'),
	'the certificate is for the key made on the client');
$node->connect_ok(client_connstr($b, 'user1'), 'the renewed certificate logs in (verify-full)',
	sql => 'SELECT current_user', expected_stdout => qr/^user1$/);
$node->connect_ok(client_connstr($a, 'user1'), 'the old one still logs in until it expires',
	sql => 'SELECT 1');

# --- what is refused
my $pem_b = $cert_b;
($out, $err) = session_query($session, "$renew_row(\$c\$$csr\$c\$, lifetime => '2 hours')");
like($err, qr/ERROR:  lifetime must not be longer than that of the certificate being renewed \(01:00:00\)/,
	'a lifetime longer than the certificate\'s own is refused');
($out, $err) = session_query($session, "$renew_row(\$c\$$csr\$c\$, lifetime => '2 min')");
like($err, qr/ERROR:  lifetime must be at least 5 minutes/, 'so is one under 5 minutes');
my $other_csr = new_request(PostgreSQL::Test::Utils::tempdir, 'user2');
($out, $err) = session_query($session, "$renew_row(\$c\$$other_csr\$c\$)");
like($err, qr/ERROR:  the request's CN "user2" does not match role "user1"/, 'a request for another role is refused');
($out, $err) = session_query($session, "$renew_row('garbage')");
like($err, qr/ERROR:  csr is not a PEM certificate signing request/, 'garbage is refused');
my ($rc, $stdout, $stderr) = $node->psql('postgres', "$renew_row(\$c\$$csr\$c\$)", extra_params => [ '-U', 'user1' ]);
like($stderr, qr/ERROR:  pgtls_renew_self\(\) renews only the live certificate this session logged in with\nDETAIL:  This session is not a TLS connection\./,
	'a Unix-socket login without a certificate gets an error ...');
($rc, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\n$renew_row(\$c\$$csr\$c\$)", extra_params => [ '-U', 'user1' ]);
like($stderr, qr/ERROR:  42501:/, '... with SQLSTATE 42501');

# a password login that presented a live certificate of its own
my $pw = short_lived('pwuser');
($rc, $stdout, $stderr) = $node->psql('postgres', "\\set VERBOSITY verbose\n$renew_row(\$c\$" . new_request($pw, 'pwuser') . "\$c\$)",
	connstr => client_connstr($pw, 'pwuser') . " password=pw-secret");
like($stderr, qr/ERROR:  42501: .*\nDETAIL:  This session presented a client certificate but logged in with another method/,
	'a password login that presented its certificate gets 42501');

# --- revoke_previous: the certificate the session logged in with is revoked, the session goes on
my $session_b = open_session($node, client_connstr($b, 'user1'));
$csr = new_request($b, 'user1');
($out, $err) = session_query($session_b, "$renew_row(\$c\$$csr\$c\$, lifetime => '30 minutes', revoke_previous => true)");
my ($serial_c, $cert_c) = split /\|/, $out // '', 2;
like($serial_c, qr/^[0-9A-F]{32}$/, 'renewed with revoke_previous') or diag($err);
is(span_minutes($cert_c), 35, '... for the lifetime asked for');
is($node->safe_psql('postgres', "SELECT revocation_reason FROM pgtls_certificates WHERE serial = '$serial_b'"),
	'superseded', 'the previous certificate is revoked (superseded)');
$node->connect_fails(client_connstr($b, 'user1'), 'it no longer logs in', expected_stderr => qr/certificate revoked/);
is(session_query($session_b, 'SELECT current_user'), 'user1', 'the session that renewed it goes on');
is($node->safe_psql('postgres', "SELECT ends_sessions FROM pgtls_certificates WHERE serial = '$serial_b'"),
	'none', '... its revocation recorded as ending no session');
sleep 2;    # two looks of the worker, which ends sessions as the revocation recorded
is(session_query($session_b, 'SELECT current_user'), 'user1', '... and the worker leaves it open');
($out, $err) = session_query($session_b, "$renew_row(\$c\$$csr\$c\$)");
like($err, qr/DETAIL:  The certificate this session logged in with \(serial $serial_b\) is revoked\./,
	'but cannot renew with the revoked certificate');
my $c = PostgreSQL::Test::Utils::tempdir;
write_file_0600("$c/root.crt", slurp_file("$a/root.crt"));
write_file_0600("$c/new.key", slurp_file("$b/new.key"));
install_renewal($c, $cert_c);
$node->connect_ok(client_connstr($c, 'user1'), 'the newest certificate logs in', sql => 'SELECT 1');

# --- pgtls_admin.max_self_renewed bounds what one role can mint for itself
$node->safe_psql('postgres', 'ALTER SYSTEM SET pgtls_admin.max_self_renewed = 2; SELECT pg_reload_conf();');
session_close($session);
$session = open_session($node, client_connstr($c, 'user1'));
$csr = new_request($c, 'user1');
($out, $err) = session_query($session, "$renew_row(\$c\$$csr\$c\$)");
like($out, qr/^[0-9A-F]{32}\|/, 'a second live self-renewed certificate is allowed') or diag($err);
($out, $err) = session_query($session, "\\set VERBOSITY verbose\n$renew_row(\$c\$$csr\$c\$)");
like($err, qr/ERROR:  53400: role "user1" holds 2 live certificates it renewed itself/, 'a third is refused (53400)');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET pgtls_admin.max_self_renewed; SELECT pg_reload_conf();');
session_close($_) for $session, $session_b;

# --- code that runs with other rights than the session's own cannot renew:
# a low-privileged role's SECURITY DEFINER function or materialized view,
# run by a certificate login, would otherwise get a certificate for that
# login's role with a key the code's owner chose
$node->safe_psql('postgres', <<'SQL');
CREATE ROLE dba LOGIN SUPERUSER; CREATE ROLE mallory LOGIN;
CREATE SCHEMA mallory AUTHORIZATION mallory;
GRANT USAGE ON SCHEMA mallory TO PUBLIC;
SQL
my $trap = PostgreSQL::Test::Utils::tempdir;
my $csr_u1 = new_request($trap, 'user1');
my $csr_dba = new_request($trap, 'dba');
$node->safe_psql('postgres', <<"SQL");
SET ROLE mallory;
CREATE FUNCTION mallory.server_time() RETURNS text LANGUAGE sql SECURITY DEFINER
    AS \$f\$ SELECT serial FROM public.pgtls_renew_self(\$c\$$csr_u1\$c\$) \$f\$;
CREATE FUNCTION mallory.grab() RETURNS text LANGUAGE sql
    AS \$f\$ SELECT serial FROM public.pgtls_renew_self(\$c\$$csr_dba\$c\$) \$f\$;
CREATE MATERIALIZED VIEW mallory.mv AS SELECT mallory.grab() AS serial WITH NO DATA;
SQL
my $count_issued = q{SELECT count(*) FROM pgtls_certificates WHERE kind = 'client' AND role IN ('user1', 'dba')};
my $issued_before = $node->safe_psql('postgres', $count_issued);
my $u1 = short_lived('user1');
my $dba = short_lived('dba');
$issued_before += 2;
$session = open_session($node, client_connstr($u1, 'user1'));
($out, $err) = session_query($session, "\\set VERBOSITY verbose\nSELECT mallory.server_time()");
like($err, qr/ERROR:  42501: pgtls_renew_self\(\) must be called by the session's own role, directly/,
	'a SECURITY DEFINER function run by a certificate login cannot renew its certificate (42501)');
session_close($session);
$session = open_session($node, client_connstr($dba, 'dba'));
($out, $err) = session_query($session, "\\set VERBOSITY verbose\nREFRESH MATERIALIZED VIEW mallory.mv");
like($err, qr/ERROR:  42501: pgtls_renew_self\(\) must be called by the session's own role, directly/,
	'neither can a materialized view a superuser refreshes');
session_close($session);
is($node->safe_psql('postgres', $count_issued), $issued_before, '... nothing was issued');

# --- a revocation in progress or committed after the renewing transaction's
# snapshot stops the renewal: a revoked certificate never yields a live one
my $rv = short_lived('user1');
my $serial_rv = cert_file_serial("$rv/postgresql.crt");
$session = open_session($node, client_connstr($rv, 'user1'));
my $admin = open_session($node);
session_query($admin, "BEGIN; SELECT pgtls_revoke('$serial_rv', terminate => false)");
$csr = new_request($rv, 'user1');
($out, $err) = session_query($session, "$renew_row(\$c\$$csr\$c\$)");
like($err, qr/ERROR:  canceling statement due to lock timeout/,
	'a renewal while a revocation of the certificate is in progress waits for it, then fails');
session_query($admin, 'ROLLBACK');
session_query($session, 'BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT 1');
$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial_rv', terminate => false)");
($out, $err) = session_query($session, "\\set VERBOSITY verbose\n$renew_row(\$c\$$csr\$c\$)");
like($err, qr/ERROR:  40001: could not serialize access due to concurrent update/,
	'a revocation committed after a REPEATABLE READ snapshot fails the renewal (40001)');
session_query($session, 'ROLLBACK');
($out, $err) = session_query($session, "$renew_row(\$c\$$csr\$c\$)");
like($err, qr/DETAIL:  The certificate this session logged in with \(serial $serial_rv\) is revoked\./,
	'and the next transaction sees it revoked');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgtls_renewals WHERE previous = '$serial_rv'"), '0',
	'... no renewal of it exists');
session_close($_) for $session, $admin;

# the holder of a certificate cannot stop its revocation by renewing it and
# keeping the transaction open: the revocation ends that session
my $hold = short_lived('user1');
my $serial_hold = cert_file_serial("$hold/postgresql.crt");
$session = open_session($node, client_connstr($hold, 'user1'));
($out, $err) = session_query($session, "BEGIN; $renew_row(\$c\$" . new_request($hold, 'user1') . "\$c\$)");
my ($serial_held) = split /\|/, $out // '';
like($serial_held, qr/^[0-9A-F]{32}$/, 'a renewal left open in its transaction') or diag($err);
my $t0 = time;
($rc, $stdout, $stderr) = $node->psql('postgres', "SELECT pgtls_revoke('$serial_hold', 'keyCompromise', terminate => false)");
is("$rc $stdout", '0 t', 'revoking the certificate succeeds all the same');
ok(time - $t0 < 5, '... without waiting out the lock (' . (time - $t0) . ' s)');
like($stderr, qr/NOTICE:  ending session \d+, which logged in with certificate $serial_hold and is renewing it/,
	'... by ending the session that held its row, whatever terminate says');
ok(defined wait_for(5, sub {
	$node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $session->{pid}") eq '0' }),
	'that session is gone');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgtls_renewals WHERE previous = '$serial_hold'"), '0',
	'its renewal rolled back');
is($node->safe_psql('postgres',
	"SELECT count(*) FROM pgtls_certificates WHERE serial = '$serial_held' AND revoked_at IS NULL"), '0',
	'... and the certificate it had made is not live');

# a renewal in a prepared transaction would hold the row with no session to end
my $prep = short_lived('user1');
$session = open_session($node, client_connstr($prep, 'user1'));
($out, $err) = session_query($session,
	"\\set VERBOSITY verbose\nBEGIN; $renew_row(\$c\$" . new_request($prep, 'user1') . "\$c\$) \\g /dev/null\nPREPARE TRANSACTION 'hold'");
like($err, qr/ERROR:  0A000: cannot PREPARE a transaction that has called pgtls_renew_self\(\)/,
	'PREPARE TRANSACTION after pgtls_renew_self is refused (0A000)');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pg_prepared_xacts'), '0', '... nothing is prepared');
session_close($session);
$t0 = time;
is($node->safe_psql('postgres', "SELECT pgtls_revoke('" . cert_file_serial("$prep/postgresql.crt") . "')"), 't',
	'... and the certificate is revoked at once');
ok(time - $t0 < 3, '... without waiting for a lock');

# --- the cap holds within one statement and across open transactions
$node->safe_psql('postgres', 'CREATE ROLE user3 LOGIN; ALTER SYSTEM SET pgtls_admin.max_self_renewed = 3; SELECT pg_reload_conf();');
my $u3 = short_lived('user3');
my $held_u3 = q{SELECT count(*) FROM pgtls_certificates WHERE role = 'user3' AND issued_by = 'user3' AND revoked_at IS NULL};
$csr = new_request($u3, 'user3');
$session = open_session($node, client_connstr($u3, 'user3'));
($out, $err) = session_query($session,
	"\\set VERBOSITY verbose\nSELECT count(*) FROM (SELECT pgtls_renew_self(\$c\$$csr\$c\$) FROM generate_series(1, 5)) s");
like($err, qr/ERROR:  53400: role "user3" holds 3 live certificates it renewed itself/,
	'one statement renewing 5 times with max_self_renewed = 3 fails at the fourth (53400)');
is($node->safe_psql('postgres', $held_u3), '0', '... and issues none');
my $session2 = open_session($node, client_connstr($u3, 'user3'));
($out, $err) = session_query($session, "BEGIN; $renew_row(\$c\$$csr\$c\$); $renew_row(\$c\$$csr\$c\$)");
like($out, qr/^[0-9A-F]{32}\|.*\n[0-9A-F]{32}\|/s, 'two renewals in an open transaction') or diag($err);
($out, $err) = session_query($session2, "$renew_row(\$c\$$csr\$c\$)");
like($err, qr/ERROR:  could not lock the self-renewals of role "user3" within \d+ seconds/,
	'a concurrent renewal of the same role waits for that transaction, then fails');
session_query($session, 'COMMIT');
($out, $err) = session_query($session2, "$renew_row(\$c\$$csr\$c\$)");
like($out, qr/^[0-9A-F]{32}\|/, 'after it commits, a third is allowed') or diag($err);
($out, $err) = session_query($session2, "$renew_row(\$c\$$csr\$c\$)");
like($err, qr/ERROR:  role "user3" holds 3 live certificates it renewed itself/, 'a fourth is refused');
is($node->safe_psql('postgres', $held_u3), '3', 'the role holds 3');
session_close($_) for $session, $session2;
$node->safe_psql('postgres', 'ALTER SYSTEM RESET pgtls_admin.max_self_renewed; SELECT pg_reload_conf();');

# --- certificates renewed from a compromised one: named on revocation,
# revoked with it for keyCompromise
$node->safe_psql('postgres', 'CREATE ROLE user4 LOGIN');
my $k1 = short_lived('user4');
my $serial_k1 = cert_file_serial("$k1/postgresql.crt");
# renew over the login with the files in $dir; returns the serial and a directory with the new pair
sub renew_over
{
	my ($dir, $role) = @_;
	my (undef, $o) = $node->psql('postgres', "$renew_row(\$c\$" . new_request($dir, $role) . "\$c\$)",
		connstr => client_connstr($dir, $role));
	my ($serial, $cert) = split /\|/, $o, 2;
	my $next = PostgreSQL::Test::Utils::tempdir;
	write_file_0600("$next/root.crt", slurp_file("$dir/root.crt"));
	write_file_0600("$next/new.key", slurp_file("$dir/new.key"));
	install_renewal($next, $cert);
	return ($serial, $next);
}
my ($serial_k2, $k2) = renew_over($k1, 'user4');
my ($serial_k3, $k3) = renew_over($k2, 'user4');
$node->connect_ok(client_connstr($k3, 'user4'), 'a renewal of a renewal logs in', sql => 'SELECT 1');
($rc, $stdout, $stderr) = $node->psql('postgres', "SELECT pgtls_revoke('$serial_k1', terminate => false)");
my @kids = sort($serial_k2, $serial_k3);
like($stderr, qr/NOTICE:  2 live certificate\(s\) were renewed from $serial_k1 over its own login: $kids[0], $kids[1]/,
	'revoking a certificate names the live ones renewed from it');
$node->connect_ok(client_connstr($k3, 'user4'), '... which still log in', sql => 'SELECT 1');
my $session_k3 = open_session($node, client_connstr($k3, 'user4'));
($rc, $stdout, $stderr) = $node->psql('postgres', "SELECT pgtls_revoke('$serial_k1', 'keyCompromise')");
like($stderr, qr/NOTICE:  also revoked 2 certificate\(s\) renewed from $serial_k1 over its own login: $kids[0], $kids[1]/,
	'revoking it for keyCompromise revokes them with it');
is($node->safe_psql('postgres', "SELECT string_agg(revocation_reason, ',') FROM pgtls_certificates WHERE serial IN ('$serial_k2', '$serial_k3')"),
	'keyCompromise,keyCompromise', '... recorded as keyCompromise');
is($node->safe_psql('postgres', "SELECT string_agg(ends_sessions, ',') FROM pgtls_certificates WHERE serial IN ('$serial_k2', '$serial_k3')"),
	'all,all', '... with the sessions they end, as terminate says');
ok(defined wait_for(5, sub { !defined session_query($session_k3, 'SELECT 1') }),
	'... and the session of the renewal of the renewal ends');
$node->connect_fails(client_connstr($k3, 'user4'), '... and the renewal of the renewal no longer logs in',
	expected_stderr => qr/certificate revoked/);

# --- the live set of enforce = registry forgets certificates as they expire
my $ex = short_lived('user2');
my $serial_e = cert_file_serial("$ex/postgresql.crt");
my $pem_e = slurp_file("$ex/postgresql.crt");
sub registry_step
{
	return $node->safe_psql('postgres',
		"SELECT detail FROM pgtls_explain_login(\$p\$$pem_e\$p\$, 'user2') WHERE step = 'registry'");
}
like(registry_step(), qr/certificate $serial_e is live for this role/, 'a new certificate is in the live set');
# as the registry has it, it expires in 2 s (the worker follows the registry by change_xid)
$node->safe_psql('postgres', "UPDATE pgtls_certificates SET not_after = now() + interval '2 seconds', "
	  . "change_xid = pg_current_xact_id() WHERE serial = '$serial_e'");
ok(defined wait_for(8, sub { registry_step() =~ /certificate $serial_e is not a live certificate of the registry/ }),
	'once it has expired, the worker drops it from the live set (within a maintenance interval)');

# --- a certificate issued with a mapped subject keeps it
my $al = short_lived('alice', subject => 'CN=alice@example.com');
($rc, $stdout, $stderr) = $node->psql('postgres', "$renew_row(\$c\$" . new_request($al, 'alice') . "\$c\$)",
	connstr => client_connstr($al, 'alice'));
my (undef, $cert_al) = split /\|/, $stdout, 2;
install_renewal($al, $cert_al);
like(openssl('x509', '-noout', '-subject', '-nameopt', 'RFC2253', '-in', "$al/postgresql.crt"),
	qr/^subject=CN=alice\@example\.com$/m,
	'a mapped subject (CN=alice@example.com) is kept; the request names session_user') or diag($stderr);
$node->connect_ok(client_connstr($al, 'alice'), '... and logs in through the map', sql => 'SELECT 1');

# --- pgtls-client-cert --renew --if-due, as a cron job or systemd timer runs it
my $later = PostgreSQL::Test::Utils::tempdir;    # a date(1) whose "now" is PGTLS_TEST_CLOCK seconds ahead
write_file_0600("$later/date", <<'SH');
#!/bin/sh
case " $* " in *" -d "*) exec /usr/bin/date "$@" ;; esac
exec /usr/bin/date -d "@$(( $(/usr/bin/date +%s) + ${PGTLS_TEST_CLOCK:-0} ))" "$@"
SH
chmod 0700, "$later/date";
my $t = short_lived('user2');
my $conninfo = "host=localhost hostaddr=127.0.0.1 port=$port dbname=postgres user=user2";

sub tool
{
	my ($clock, @args) = @_;
	my ($o, $e);
	local $ENV{PATH} = "$later:$ENV{PATH}";
	local $ENV{PGTLS_TEST_CLOCK} = $clock;
	IPC::Run::run([ 'pgtls-client-cert', @args ], '<', \undef, '>', \$o, '2>', \$e);
	return ($? >> 8, $o, $e);
}
my $serial_t = cert_file_serial("$t/postgresql.crt");
my $key_t = slurp_file("$t/postgresql.key");
my ($code, $o, $e) = tool(0, '--renew', '--if-due', '--dir', $t, $conninfo);
is($code, 0, 'now: --if-due exits 0');
like($o, qr/^not due: the certificate $serial_t is renewed from .* \(2\/3 of its lifetime\)/, '... saying when it is due');
is(cert_file_serial("$t/postgresql.crt"), $serial_t, '... and changes nothing');

($code, $o, $e) = tool(45 * 60, '--renew', '--if-due', '--dir', $t, '--exec',
	'echo "$PGTLS_PREVIOUS_SERIAL $PGTLS_SERIAL" > "$PGTLS_CERT_FILE.exec"', $conninfo);
is($code, 0, '45 minutes later: it renews and exits 0') or diag($e);
my $serial_t2 = cert_file_serial("$t/postgresql.crt");
isnt($serial_t2, $serial_t, 'the certificate was replaced');
isnt(slurp_file("$t/postgresql.key"), $key_t, 'with a new key made here');
is(slurp_file("$t/postgresql.crt.exec"), "$serial_t $serial_t2\n", '--exec ran with the serials in its environment');
is(sprintf('%o', (stat "$t/postgresql.key")[2] & 07777), '600', 'the key is mode 0600');
is(join(',', sort grep { !/^\.\.?$/ } map { s/.*\///r } glob("$t/* $t/.*")),
	'postgresql.crt,postgresql.crt.exec,postgresql.key,root.crt', 'no temporary or staged file is left');
$node->connect_ok(client_connstr($t, 'user2'), 'the renewed files log in (verify-full)', sql => 'SELECT 1');

# the renewed certificate starts now: a run 20 minutes on finds it not due
($code, $o, $e) = tool(20 * 60, '--renew', '--if-due', '--dir', $t, $conninfo);
is("$code " . cert_file_serial("$t/postgresql.crt"), "0 $serial_t2", 'a run 20 minutes after the renewal: not due, unchanged');

($code, $o, $e) = tool(0, '--renew', '--dir', $t, '--exec', 'exit 7', $conninfo);
is($code, 3, 'renewed, but the --exec command failed: exit 3');
isnt(cert_file_serial("$t/postgresql.crt"), $serial_t2, '... the files were replaced all the same');

($code, $o, $e) = tool(3 * 3600, '--renew', '--if-due', '--dir', $t, $conninfo);
is($code, 1, 'an expired certificate: exit 1');
like($e, qr/expired at .*: an expired certificate cannot log in to renew itself/, '... saying why');

($code, $o, $e) = tool(0, '--if-due', $conninfo);
is($code, 2, '--if-due without --renew: usage error, exit 2');

# a revoked certificate: the server refuses, nothing changes
my $serial_t3 = cert_file_serial("$t/postgresql.crt");
$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial_t3')");
($code, $o, $e) = tool(0, '--renew', '--dir', $t, $conninfo);
is($code, 1, 'a revoked certificate: exit 1');
is(cert_file_serial("$t/postgresql.crt"), $serial_t3, '... nothing changed');

# an interrupted renewal (the new key renamed into place, its certificate still staged) is completed first
my $fresh = short_lived('user2');
write_file_0600("$t/postgresql.key", slurp_file("$fresh/postgresql.key"));
write_file_0600("$t/postgresql.crt.renewed", slurp_file("$fresh/postgresql.crt"));
($code, $o, $e) = tool(0, '--renew', '--if-due', '--dir', $t, $conninfo);
like($e, qr/completed an interrupted renewal/, 'an interrupted renewal is completed');
is("$code " . cert_file_serial("$t/postgresql.crt"), '0 ' . cert_file_serial("$fresh/postgresql.crt"),
	'... the staged certificate is in place, and it is not due');
ok(!-e "$t/postgresql.crt.renewed", '... nothing is left staged');
$node->connect_ok(client_connstr($t, 'user2'), '... and the pair logs in', sql => 'SELECT 1');

# a link or a directory planted where a renewal stages its files: refused
# before the login, so the server signs nothing that would be left unsaved
my $signed_sql = "SELECT (SELECT count(*) FROM pgtls_certificates WHERE role = 'user2') || ' ' || "
  . "(SELECT count(*) FROM pgtls_renewals)";
my $signed = $node->safe_psql('postgres', $signed_sql);
my $before = cert_file_serial("$t/postgresql.crt");
symlink("$t/planted", "$t/postgresql.key.renewed") or die;
($code, $o, $e) = tool(0, '--renew', '--dir', $t, $conninfo);
is($code, 1, 'a symbolic link at the staged key path: exit 1');
like($e, qr/postgresql\.key\.renewed is a symbolic link: refusing to write through it/, '... saying why');
is($node->safe_psql('postgres', $signed_sql), $signed, '... and the server signed no certificate');
ok(!-e "$t/planted" && cert_file_serial("$t/postgresql.crt") eq $before, '... nor was anything written');
unlink "$t/postgresql.key.renewed" or die;
mkdir "$t/postgresql.crt.renewed" or die;
($code, $o, $e) = tool(0, '--renew', '--dir', $t, $conninfo);
is($code, 1, 'a directory at the staged certificate path: exit 1');
is($node->safe_psql('postgres', $signed_sql), $signed, '... and the server signed no certificate');
rmdir "$t/postgresql.crt.renewed" or die;
($code, $o, $e) = tool(0, '--renew', '--dir', $t, $conninfo);
is($code, 0, 'with the path clear the renewal goes through') or diag($e);
isnt($node->safe_psql('postgres', $signed_sql), $signed, '... and is counted where the refusals were not');

$node->stop;
done_testing();
