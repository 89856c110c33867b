# A primary and two streaming standbys with the library preloaded: a
# revocation is enforced on every node within seconds, certificates issued
# after the copy log in everywhere, a promoted standby keeps refusing what
# was revoked and takes over, certificates of rolled-back or killed issuing
# transactions are refused, registry enforcement refuses certificates minted
# with the CA key outside the registry, a standby installs its own server
# certificate, refuses what only the primary may do, and fails closed when
# its worker cannot re-sign the CRL.  Every verdict is a real login.
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

my $preload = "shared_preload_libraries = 'pgtls_admin'\npgtls_admin.crl_validity = '1h'\nrestart_after_crash = on\n";
# standbys stream over the Unix socket
my $primary = streaming_tls_primary('primary', $preload);
$primary->safe_psql('postgres', 'CREATE ROLE user1 LOGIN; CREATE ROLE user2 LOGIN; CREATE ROLE user3 LOGIN; CREATE ROLE user4 LOGIN; CREATE ROLE user5 LOGIN;');
my %cert = map { $_ => client_files($primary, $_) } qw(user1 user2);
sub serial_of
{
	my ($d) = @_;
	return uc(openssl('x509', '-in', "$d/postgresql.crt", '-noout', '-serial') =~ s/^serial=|\s+$//gr);
}

# Two standbys from a base backup, each with its worker.
$primary->backup('base');
my @standbys;
for my $name (qw(standby1 standby2))
{
	my $s = PostgreSQL::Test::Cluster->new($name);
	$s->init_from_backup($primary, 'base', has_streaming => 1);
	chmod 0600, glob($s->data_dir . '/pgtls/*.key');
	$s->start;
	push @standbys, $s;
}
$primary->wait_for_catchup($_) for @standbys;

sub login_ok
{
	my ($node, $user, $name) = @_;
	$node->connect_ok(client_connstr($cert{$user}, $user), $name,
		sql => 'SELECT current_user', expected_stdout => qr/^\Q$user\E$/);
	return;
}

# Poll until a login with $user's certificate fails on $node; seconds taken or undef.
sub refused_within
{
	my ($node, $user, $limit) = @_;
	my $start = time;
	while (time - $start < $limit)
	{
		my ($out, $err);
		my $rc = $node->psql('postgres', 'SELECT 1', connstr => client_connstr($cert{$user}, $user),
			stdout => \$out, stderr => \$err);
		return time - $start if $rc != 0;
		usleep(50_000);
	}
	return undef;
}

for my $s (@standbys)
{
	login_ok($s, 'user1', $s->name . ': user1 logs in before any revocation');
	like(slurp_file($s->logfile), qr/pgtls_admin worker following the registry in database \d+/,
		$s->name . ': the worker follows the registry');
}

# --- a revocation on the primary is enforced on both standbys within 5 s,
# and ends the sessions that logged in there with that certificate
my @open = map { open_session($_, client_connstr($cert{user1}, 'user1')) } @standbys;
my $other = open_session($standbys[0], client_connstr($cert{user2}, 'user2'));
$primary->safe_psql('postgres', "SELECT pgtls_revoke('" . serial_of($cert{user1}) . "')");
my $start = time;
my @delays;
for my $s (@standbys)
{
	my $took = refused_within($s, 'user1', 10);
	ok(defined $took && time - $start <= 5, $s->name . ': the revoked certificate is refused within 5 s')
	  or diag('took ' . ($took // 'more than 10') . ' s');
	push @delays, sprintf('%.2f', time - $start);
}
note("propagation of a revocation to the standbys (s after pgtls_revoke returned): @delays");
for my $i (0, 1)
{
	my $s = $standbys[$i];
	ok($s->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $open[$i]{pid}"),
		$s->name . ': the session that logged in with the revoked certificate is ended');
	like(slurp_file($s->logfile), qr/ending session $open[$i]{pid}, which logged in with revoked certificate/,
		'... and the log says so');
}
is(session_query($other, 'SELECT current_user'), 'user2', 'a session of another certificate stays');
session_close($other);

# --- revoked first with terminate => false, then again: the second
# revocation's terminate and keyCompromise reach the standbys too
$cert{user5} = client_files($primary, 'user5');
$primary->wait_for_catchup($standbys[0]);
my $five = open_session($standbys[0], client_connstr($cert{user5}, 'user5'));
my $serial5 = serial_of($cert{user5});
$primary->safe_psql('postgres', "SELECT pgtls_revoke('$serial5', 'superseded', terminate => false)");
$primary->wait_for_catchup($standbys[0]);
sleep 2;
is(session_query($five, 'SELECT current_user'), 'user5', 'standby1: terminate => false keeps the session');
is($primary->safe_psql('postgres', "SELECT pgtls_revoke('$serial5', 'keyCompromise')"), 'f',
	'revoking it again returns false (revoked already)');
ok($standbys[0]->poll_query_until('postgres', "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $five->{pid}"),
	'standby1: ... and its terminate ends the session there all the same');
is($standbys[0]->safe_psql('postgres', "SELECT revocation_reason || ' ' || ends_sessions FROM pgtls_certificates WHERE serial = '$serial5'"),
	'keyCompromise all', 'standby1: the reason became keyCompromise and ends_sessions all');
$standbys[0]->connect_fails(client_connstr($cert{user1}, 'user1'), '... in the server\'s words',
	expected_stderr => qr/certificate revoked/);
login_ok($standbys[1], 'user2', 'standby2: an unrevoked certificate still logs in');

# --- a certificate issued after the copy logs in on the standbys
$cert{user3} = client_files($primary, 'user3');
$primary->wait_for_catchup($_) for @standbys;
login_ok($_, 'user3', $_->name . ': a certificate issued after the base backup logs in') for @standbys;

# --- standbys refuse clearly what only the primary may do
my ($rc, $out, $err);
for my $call ("SELECT * FROM pgtls_issue_client('user4')",
	"SELECT pgtls_revoke('" . serial_of($cert{user2}) . "')",
	"SELECT * FROM pgtls_renew('" . serial_of($cert{user2}) . "')",
	'SELECT pgtls_init_ca(replace => true)')
{
	$rc = $standbys[0]->psql('postgres', $call, stdout => \$out, stderr => \$err);
	like($err, qr/ERROR:  cannot \w+ [\w ]+ on a standby\n.*\nHINT:  Run it on the primary/,
		"standby refuses: $call");
}
# pgtls_crl() on a standby is the CRL its replayed registry implies
my $tmp = PostgreSQL::Test::Utils::tempdir;
write_file_0600("$tmp/standby.crl", $standbys[1]->safe_psql('postgres', 'SELECT pgtls_crl()') . "\n");
like(openssl('crl', '-in', "$tmp/standby.crl", '-noout', '-text'), qr/Serial Number: ${\ serial_of($cert{user1}) }/,
	'pgtls_crl() on a standby lists the replayed revocation');

# --- a standby installs its own server certificate, recorded on the primary
my $names = $primary->safe_psql('postgres',
	"SELECT certificate || '\x01' || private_key || '\x01' || serial FROM pgtls_issue_server('{standby2.example,localhost}', '{127.0.0.1}')");
my ($s2cert, $s2key, $s2serial) = split /\x01/, $names;
my $s2dir = $standbys[1]->data_dir;
write_file_0600("$s2dir/node.crt", "$s2cert\n");
write_file_0600("$s2dir/node.key", "$s2key\n");
$primary->wait_for_catchup($standbys[1]);
$standbys[1]->safe_psql('postgres', "SELECT * FROM pgtls_install_server_cert_files('node.crt', 'node.key')");
my ($stdout, $stderr);
IPC::Run::run([ 'openssl', 's_client', '-starttls', 'postgres', '-connect', '127.0.0.1:' . $standbys[1]->port ],
	'<', \'', '>', \$stdout, '2>', \$stderr);
my ($served) = $stdout =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)/s;
write_file_0600("$tmp/served.pem", "$served\n");
is(serial_of_file("$tmp/served.pem"), $s2serial, 'standby2 serves its own certificate, installed on the standby');
sub serial_of_file
{
	return uc(openssl('x509', '-in', $_[0], '-noout', '-serial') =~ s/^serial=|\s+$//gr);
}
login_ok($standbys[1], 'user2', '... and certificate logins keep working there');
write_file_0600("$s2dir/rogue.crt", slurp_file("$tmp/served.pem"));
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', "$s2dir/rogue.key",
	'-subj', '/CN=rogue', '-days', '2', '-out', "$s2dir/rogue.crt");
chmod 0600, "$s2dir/rogue.key";
$rc = $standbys[1]->psql('postgres', "SELECT * FROM pgtls_install_server_cert_files('rogue.crt', 'rogue.key')",
	stdout => \$out, stderr => \$err);
like($err, qr/does not verify against the extension's CA|is not in the registry/,
	'a standby refuses a server certificate the primary did not issue');

# --- certificates whose issuing transaction did not commit
my $rolled = PostgreSQL::Test::Utils::tempdir;
my $res = $primary->safe_psql('postgres',
	"BEGIN; SELECT certificate || '\x01' || private_key || '\x01' || ca_certificate FROM pgtls_issue_client('user4'); ROLLBACK;");
my ($rcert, $rkey, $rca) = split /\x01/, $res;
write_file_0600("$rolled/postgresql.crt", "$rcert\n");
write_file_0600("$rolled/postgresql.key", "$rkey\n");
write_file_0600("$rolled/root.crt", "$rca\n");
$cert{user4} = $rolled;
my $rserial = serial_of($rolled);
ok(defined refused_within($primary, 'user4', 5),
	'a certificate from a rolled-back transaction is refused on the primary within 5 s');
$primary->poll_query_until('postgres',
	"SELECT uncommitted AND revoked_at IS NOT NULL FROM pgtls_certificates WHERE serial = '$rserial'")
  or die 'not settled';
pass('the worker recorded it in the registry: uncommitted, revoked');
$primary->wait_for_catchup($_) for @standbys;
ok(defined refused_within($_, 'user4', 5), $_->name . ': ... and refused there too') for @standbys;
is($primary->safe_psql('postgres', "SELECT pgtls_revoke('$rserial', 'keyCompromise')"), 'f',
	'pgtls_revoke accepts its serial (already revoked)');

# killed before commit
my $killed_dir = PostgreSQL::Test::Utils::tempdir;
my $bg = $primary->background_psql('postgres', on_error_stop => 0);
my $bg_pid = $bg->query_safe('SELECT pg_backend_pid()');
my $kres = $bg->query_safe(
	"BEGIN; SELECT certificate || chr(1) || private_key || chr(1) || ca_certificate FROM pgtls_issue_client('user4');");
my ($kcert, $kkey, $kca) = split /\x01/, $kres;
write_file_0600("$killed_dir/postgresql.crt", "$kcert\n");
write_file_0600("$killed_dir/postgresql.key", "$kkey\n");
write_file_0600("$killed_dir/root.crt", "$kca\n");
kill 'KILL', $bg_pid;
eval { $bg->quit };
$primary->poll_query_until('postgres', 'SELECT true') or die 'no restart';
$cert{killed} = $killed_dir;
my $kserial = serial_of($killed_dir);
$primary->poll_query_until('postgres',
	"SELECT uncommitted FROM pgtls_certificates WHERE serial = '$kserial'") or die 'not settled';
$primary->connect_fails(client_connstr($killed_dir, 'user4'), 'a certificate from a killed issuing backend is refused',
	expected_stderr => qr/certificate revoked/);

# --- registry enforcement: a certificate signed by hand with the CA key
my $forged = PostgreSQL::Test::Utils::tempdir;
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$forged/postgresql.key", '-subj', '/CN=user2', '-out', "$forged/req.csr");
chmod 0600, "$forged/postgresql.key";
cli_ca_sign($forged, "$forged/req.csr", "$forged/postgresql.crt",
	"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
	  . "authorityKeyIdentifier=keyid\n",
	ca_cert => $primary->data_dir . '/pgtls/ca.crt', ca_key => $primary->data_dir . '/pgtls/ca.key',
	dates => [ '-days', '5' ]);
write_file_0600("$forged/root.crt", slurp_file($primary->data_dir . '/pgtls/ca.crt'));
$cert{forged} = $forged;
$primary->connect_ok(client_connstr($forged, 'user2'), 'enforce = crl: a certificate minted with the stolen CA key logs in',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);
for my $node ($primary, @standbys)
{
	$node->append_conf('postgresql.conf', "pgtls_admin.enforce = registry\n");
	$node->reload;
}
for my $node ($primary, @standbys)
{
	$node->poll_query_until('postgres', "SELECT current_setting('pgtls_admin.enforce') = 'registry'");
	$node->connect_fails(client_connstr($forged, 'user2'),
		$node->name . ': enforce = registry refuses the certificate the registry does not hold',
		expected_stderr => qr/certificate authentication failed for user "user2"/,
		log_like => [qr/not a live certificate of the registry/]);
	login_ok($node, 'user2', $node->name . ': ... while a registry certificate logs in');
}
# issued now: logs in at once on the primary, and on the standbys once replayed
$cert{fresh} = client_files($primary, 'user4');
$primary->connect_ok(client_connstr($cert{fresh}, 'user4'), 'enforce = registry: a new certificate logs in at once',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);
$primary->wait_for_catchup($_) for @standbys;
for my $s (@standbys)
{
	my $ok = 0;
	for (1 .. 50)
	{
		my $r = $s->psql('postgres', 'SELECT 1', connstr => client_connstr($cert{fresh}, 'user4'));
		$ok = 1, last if $r == 0;
		usleep(100_000);
	}
	ok($ok, $s->name . ': ... and within seconds on the standby');
}
# a role dropped and created again: its old certificate is refused
$primary->safe_psql('postgres', 'DROP ROLE user3; CREATE ROLE user3 LOGIN');
$primary->connect_fails(client_connstr($cert{user3}, 'user3'),
	'enforce = registry: a certificate of a dropped and re-created role is refused',
	expected_stderr => qr/certificate authentication failed/,
	log_like => [qr/was issued for the role with OID \d+, not for role "user3"|not a live certificate/]);

# --- the primary dies right after a revocation; the promoted standby refuses it
$primary->safe_psql('postgres', "SELECT pgtls_revoke('" . serial_of($cert{user2}) . "')");
$primary->wait_for_catchup($standbys[0]);
$primary->stop('immediate');
$standbys[0]->promote;
my $took = refused_within($standbys[0], 'user2', 10);
ok(defined $took && $took <= 5, 'after promotion the revocation made just before the failover is enforced')
  or diag('took ' . ($took // 'more than 10') . ' s');
my $new_primary = $standbys[0];
$new_primary->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die;
is($new_primary->safe_psql('postgres', "SELECT pgtls_revoke('" . serial_of($cert{fresh}) . "')"), 't',
	'the promoted node revokes');
ok(defined refused_within($new_primary, 'fresh', 5), '... and enforces it');
$cert{after} = client_files($new_primary, 'user1');
$new_primary->connect_ok(client_connstr($cert{after}, 'user1'), 'the promoted node issues certificates that log in',
	sql => 'SELECT current_user', expected_stdout => qr/^user1$/);

# --- fail closed: a node whose worker cannot re-sign lets its CRL expire
my $s2 = $standbys[1];
$s2->append_conf('postgresql.conf', "pgtls_admin.crl_validity = 6\npgtls_admin.enforce = crl\n");
$s2->reload;
sleep 2;    # the worker re-signs with the short validity
my $key = $s2->data_dir . '/pgtls/ca.key';
rename $key, "$key.away" or die;
my $expired = 0;
for (1 .. 40)
{
	my ($o, $e);
	$s2->psql('postgres', 'SELECT 1', connstr => client_connstr($cert{after}, 'user1'), stdout => \$o, stderr => \$e);
	$expired = 1, last if $e =~ /alert certificate expired/;
	usleep(250_000);
}
ok($expired, 'a node whose worker cannot re-sign refuses certificate logins once its CRL expires');
like(slurp_file($s2->logfile), qr/could not open CA private key file/,
	'... and its worker says why in the log');
unlike(slurp_file($s2->logfile), qr/background worker "pgtls_admin worker" .*exited/,
	'... without exiting');
rename "$key.away", $key or die;

$_->stop for $new_primary, $s2;
done_testing();
