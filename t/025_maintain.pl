# The resident half: with the library preloaded and a 2 s maintenance
# interval, the background worker renews a 1-day server certificate under a
# 2-day server_renew_before, installs it crash-safely, the server presents
# the new one on the wire (openssl s_client) and logins, old and new, keep
# working; NOTIFY pgtls_admin payloads arrive on a listening connection for
# issuance, revocation, renewal and expiry warnings (once per certificate);
# expired rows are tidied; a CA that cannot sign is reported at each interval
# without a crash loop, and the worker recovers; an idle worker costs little.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsSession;
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $node = PostgreSQL::Test::Cluster->new('maintain');
$node->init;
$node->append_conf('postgresql.conf', <<'CONF');
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'pgtls_admin'
pgtls_admin.maintenance_interval = '2s'
pgtls_admin.server_renew_before = 0
pgtls_admin.crl_validity = '1h'
CONF
write_cert_only_hba($node);
$node->start;
my $dd = $node->data_dir;
$node->safe_psql('postgres', <<'SQL');
CREATE EXTENSION pgtls_admin;
SELECT length(pgtls_init_ca()) > 0;
CREATE ROLE user1 LOGIN;
SQL
# the worker finds a registry at start (it looks every 10 s before there is one)
$node->restart;
ok(wait_for(10, sub { slurp_file($node->logfile) =~ /pgtls_admin worker following the registry/ }),
	'the worker follows the registry');

my $listener = open_session($node);
session_query($listener, 'LISTEN pgtls_admin');

# --- a 1-day server certificate, and a session and a client that use it
my $old = $node->safe_psql('postgres',
	"SELECT value FROM pgtls_enable_ssl(days => 1) WHERE setting = 'ssl_cert_file'") =~ s/^pgtls\/server-|\.crt$//gr;
is(served_serial($node), $old, 'the 1-day certificate is served');
my $c1 = client_files($node, 'user1');
my $tls_session = open_session($node, client_connstr($c1, 'user1'));
is(session_query($tls_session, 'SELECT current_user'), 'user1', 'a verify-full session is open');

# --- server_renew_before = '2d': the worker renews it within an interval or two
$node->safe_psql('postgres', "ALTER SYSTEM SET pgtls_admin.server_renew_before = '2d'; SELECT pg_reload_conf();");
my $start = time;
my $new;
my $took = wait_for(10, sub { $new = served_serial($node); $new ne $old });
ok(defined $took, 'the worker renewed and installed the server certificate')
  or diag(slurp_file($node->logfile));
note(sprintf('server renewal: %.2f s from the reload to the new certificate on the wire', $took // -1));
my ($serial, $kind, $san_same, $key_same, $days) = split /\|/, $node->safe_psql('postgres', <<"SQL");
SELECT n.serial, n.kind, n.san = o.san, n.key_type = o.key_type,
       round(extract(epoch FROM n.not_after - now()) / 86400)
FROM pgtls_certificates n, pgtls_certificates o
WHERE n.serial = (SELECT serial FROM pgtls_renewals WHERE previous = '$old') AND o.serial = '$old'
SQL
is($serial, $new, 'the served certificate is the renewal the registry records (pgtls_renewals)');
is("$kind $san_same $key_same $days", 'server t t 365',
	'same names and key type, for pgtls_admin.default_days');
like(slurp_file($node->logfile),
	qr/LOG:  pgtls_admin maintenance: server_renewed: the server certificate $old \(expiring [^)]+\) was replaced by $new/,
	'the worker logs one line for the renewal');
is($node->safe_psql('postgres', 'SHOW ssl_cert_file'), "pgtls/server-$new.crt", 'postgresql.auto.conf names it');
ok(-f "$dd/pgtls/server-$old.key", 'the replaced pair is kept for switching back by hand');

# logins keep working: the open session, and a new verify-full login
is(session_query($tls_session, 'SELECT current_user'), 'user1', 'the session opened before the renewal goes on');
$node->connect_ok(client_connstr($c1, 'user1'), 'a new verify-full login works with the renewed certificate',
	sql => 'SELECT current_user', expected_stdout => qr/^user1$/);
is($node->safe_psql('postgres', 'SELECT count(*) FROM pgtls_maintain()'), '0',
	'pgtls_maintain() afterwards: nothing is due');

# --- NOTIFY payloads
my $client_serial = cert_file_serial("$c1/postgresql.crt");
$node->safe_psql('postgres', "SELECT pgtls_revoke('$client_serial', 'keyCompromise')");
# an expiry warning: a certificate issued for 20 days that (the registry says) began 60 days ago
my $warned = $node->safe_psql('postgres', <<'SQL');
SELECT serial FROM pgtls_issue_client('user1', days => 20) \gset
UPDATE pgtls_certificates SET not_before = not_before - interval '60 days' WHERE serial = :'serial';
SELECT :'serial';
SQL
# events of a rolled-back subtransaction are not sent
my $undone = $node->safe_psql('postgres', <<'SQL');
BEGIN;
SAVEPOINT s;
SELECT serial FROM pgtls_issue_client('user1') \gset
ROLLBACK TO s;
COMMIT;
SELECT :'serial';
SQL
my @events;
ok(wait_for(10, sub { @events = notifications($listener); grep { $_->{event} eq 'expiring' } @events }),
	'the worker sent an expiry warning');

# two more intervals with nothing due: the warning is not sent again, and
# what an idle worker costs (CPU time, memory) is measured meanwhile
my $worker_pid = $node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgtls_admin worker'");
my $clk = `getconf CLK_TCK` + 0 || 100;
sub cpu_ticks
{
	my @f = split ' ', slurp_file("/proc/$worker_pid/stat") =~ s/^.*\) //sr;
	return $f[11] + $f[12];    # utime + stime
}
sub rss_kb
{
	return slurp_file("/proc/$worker_pid/status") =~ /VmRSS:\s+(\d+)/ ? $1 : 0;
}
my ($cpu_before, $rss_before) = (cpu_ticks(), rss_kb());
usleep(4_500_000);
my $cpu_ms = (cpu_ticks() - $cpu_before) * 1000 / $clk;
note(sprintf('idle worker: %.0f ms of CPU in 4.5 s (1 s polls, maintenance every 2 s); RSS %d -> %d kB',
		$cpu_ms, $rss_before, rss_kb()));
ok($cpu_ms < 90, 'an idle worker costs less than 2% of a core');
@events = notifications($listener);
my %seen;
$seen{"$_->{event} " . ($_->{kind} // '-') . " $_->{serial}"}++ for @events;
is($seen{"issued server $old"}, 1, 'issued: the 1-day server certificate (pgtls_enable_ssl)');
is($seen{"issued server $new"}, 1, 'issued: its renewal (the worker)');
is($seen{"renewed server $new"}, 1, 'renewed: the server certificate');
is($seen{"issued client $client_serial"}, 1, 'issued: a client certificate');
ok(!$seen{"issued client $undone"}, 'nothing for an issuance rolled back to a savepoint');
is($seen{"revoked client $client_serial"}, 1, 'revoked: with its reason');
is($seen{"expiring client $warned"}, 1, 'expiring: once, though the worker ran again twice');
my ($renewed) = grep { $_->{event} eq 'renewed' } @events;
is_deeply([ @$renewed{qw(serial previous kind role)} ], [ $new, $old, 'server', undef ],
	'the renewal payload names the previous serial');
like($renewed->{not_after}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/, 'times are ISO 8601 in UTC');
my ($revoked) = grep { $_->{event} eq 'revoked' } @events;
is_deeply([ @$revoked{qw(role reason)} ], [ 'user1', 'keyCompromise' ], 'the revocation payload');
ok(!grep({ defined $_->{certificate} || defined $_->{private_key} } @events), 'no payload carries a certificate or key');
is($node->safe_psql('postgres', "SELECT serial FROM pgtls_expiry_warnings"), $warned,
	'pgtls_expiry_warnings records the one warning');

# --- tidy: rows expired longer than retain_expired; revoked ones a day at least
$node->safe_psql('postgres', <<'SQL');
CREATE TABLE t AS SELECT name, (pgtls_issue_client('user1')).serial
FROM unnest(ARRAY['expired', 'fresh', 'revoked-recent', 'revoked-old']) AS name;
SELECT pgtls_revoke(serial, terminate => false) FROM t WHERE name LIKE 'revoked%';
UPDATE pgtls_certificates c SET not_before = now() - interval '30 days',
       not_after = now() - CASE t.name WHEN 'revoked-recent' THEN interval '3 hours' ELSE interval '3 days' END
FROM t WHERE c.serial = t.serial AND t.name <> 'fresh';
ALTER SYSTEM SET pgtls_admin.retain_expired = '1h';
SELECT pg_reload_conf();
SQL
ok(wait_for(10, sub { $node->safe_psql('postgres', "SELECT count(*) FROM t JOIN pgtls_certificates USING (serial)") eq '2' }),
	'the worker tidied expired rows');
is($node->safe_psql('postgres', "SELECT string_agg(name, ',' ORDER BY name) FROM t JOIN pgtls_certificates USING (serial)"),
	'fresh,revoked-recent', 'kept: the live one, and a revoked one expired less than a day ago');
like(slurp_file($node->logfile), qr/tidied: deleted 2 registry rows of certificates expired for longer than pgtls_admin.retain_expired \(3600 s\)/,
	'the worker logs the tidying');
$node->safe_psql('postgres', 'ALTER SYSTEM RESET pgtls_admin.retain_expired; SELECT pg_reload_conf();');

# --- a CA that cannot sign: reported every interval, no crash loop, then recovered
$node->safe_psql('postgres', "ALTER SYSTEM SET pgtls_admin.maintenance_interval = '1h'; SELECT pg_reload_conf();");
usleep(1_100_000);    # the worker reloads within its 1 s poll
my $crl_mtime = (stat "$dd/pgtls/root.crl")[9];
$node->safe_psql('postgres', "SELECT pgtls_revoke('$new', 'keyCompromise')");    # a served, revoked certificate is due
# the worker rewrites the CRL for that revocation while the key is readable
wait_for(5, sub { (stat "$dd/pgtls/root.crl")[9] != $crl_mtime });
usleep(1_100_000);
chmod 0644, "$dd/pgtls/ca.key";
my $log_pos = -s $node->logfile;
my $error_re = qr/^(\S+ \S+) UTC \[\d+\] ERROR:  CA private key file "[^"]+" has group or world access$/m;
$node->safe_psql('postgres', "ALTER SYSTEM SET pgtls_admin.maintenance_interval = '2s'; SELECT pg_reload_conf();");
my @errors;
ok(wait_for(10, sub { @errors = substr(slurp_file($node->logfile), $log_pos) =~ /$error_re/g; @errors >= 2 }),
	'the worker reports the CA key it cannot use');
my ($first, $second) = map { /(\d\d):(\d\d):([\d.]+)$/ ? $1 * 3600 + $2 * 60 + $3 : 0 } @errors[ 0, 1 ];
ok($second - $first > 1.5, sprintf('... once per interval: %.2f s between two reports', $second - $first));
is($node->safe_psql('postgres', "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pgtls_admin worker'"),
	$worker_pid, 'the same worker process goes on');
unlike(slurp_file($node->logfile), qr/BEGIN PRIVATE KEY/, 'no key in the log');
chmod 0600, "$dd/pgtls/ca.key";
my $third;
ok(wait_for(10, sub { $third = served_serial($node); $third ne $new }),
	'once the key is usable again, the revoked served certificate is replaced');
like(slurp_file($node->logfile), qr/server_renewed: the server certificate $new \(revoked, expiring/,
	'... and the log says it was revoked');
$node->connect_ok(client_connstr(client_files($node, 'user1'), 'user1'), 'verify-full logins work with the third certificate',
	sql => 'SELECT current_user', expected_stdout => qr/^user1$/);

session_close($tls_session);
session_close($listener);
$node->stop;
done_testing();
