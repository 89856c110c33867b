# A revoked certificate never logs in over a connection opened before its
# revocation, and every session of it ends as its revocation says, on the
# primary too.  PostgreSQL forks a backend at accept(); that backend keeps
# the SSL context, and so the CRL, the postmaster had then, and does its TLS
# handshake whenever the client goes on (up to authentication_timeout).
# With the library preloaded and pgtls_admin.enforce = crl (the default):
# - a TCP connection opened before pgtls_revoke, whose TLS handshake and
#   startup come after the CRL was rewritten, is refused; a live
#   certificate's pre-opened connection still logs in;
# - a revocation committed with COMMIT PREPARED ends the certificate's
#   sessions (the worker, which sees it in the registry);
# - terminate => false is recorded and the worker keeps those sessions;
# - with two CAs of ours (a rotation), one CRL for each in the file, the
#   same holds for a certificate of either.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use IPC::Run;
use PgtlsSession;
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('prefork');
$node->init;
$node->append_conf('postgresql.conf',
	"listen_addresses = '127.0.0.1'\nshared_preload_libraries = 'pgtls_admin'\nmax_prepared_transactions = 2\n");
write_cert_only_hba($node);
$node->start;
$node->safe_psql('postgres', <<'SQL');
CREATE EXTENSION pgtls_admin; SELECT pgtls_init_ca(); SELECT count(*) FROM pgtls_enable_ssl();
CREATE ROLE user1 LOGIN; CREATE ROLE user2 LOGIN; CREATE ROLE user3 LOGIN;
SQL
my %dir = map { $_ => client_files($node, $_) } qw(user1 user2 user3);
my %serial = map { $_ => cert_file_serial("$dir{$_}/postgresql.crt") } keys %dir;
is($node->safe_psql('postgres', 'SHOW pgtls_admin.enforce'), 'crl', 'enforce = crl, the default');

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $n = 0;

# A TCP connection to the server, its TLS handshake and startup held back.
sub preopen
{
	my ($role) = @_;
	my $p = { go => "$tmp/go" . ++$n, in => '', out => '', err => '' };
	$p->{run} = IPC::Run::start(
		[ '/usr/bin/python3', "$FindBin::RealBin/lib/prefork_login.py", $node->port, $dir{$role}, $role, $p->{go} ],
		'<', \$p->{in}, '>', \$p->{out}, '2>', \$p->{err}, IPC::Run::timeout(60));
	$p->{run}->pump until $p->{out} =~ /^connected$/m;
	return $p;
}

# Go on with the login; returns "login ok <pid>" or "refused: ...".
sub finish_login
{
	my ($p) = @_;
	open my $fh, '>', $p->{go} or die $!;
	close $fh;
	$p->{run}->pump until $p->{out} =~ /^(login ok \d+|refused: .*)$/m;
	return $1;
}

# --- a connection opened before the revocation, handshake after the CRL rewrite
my $early1 = preopen('user1');
my $early2 = preopen('user2');
$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial{user1}', 'keyCompromise')");
$node->connect_fails(client_connstr($dir{user1}, 'user1') . ' port=' . $node->port,
	'a new connection with the revoked certificate is refused',
	expected_stderr => qr/certificate revoked/);
sleep 1;    # what the attack waited: the CRL rewritten and the server reloaded long since
my $log_offset = -s $node->logfile;
like(finish_login($early1), qr/^refused: certificate authentication failed for user "user1"$/,
	'opened before the revocation, handshake after it: refused');
ok( defined wait_for(
			5,
			sub {
				$node->log_contains(
					qr/DETAIL:  pgtls_admin CRL: certificate $serial{user1} is refused: the CRL lists it, and this connection's server process started before the CRL was rewritten/,
					$log_offset);
			}),
	'the server log says why');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgtls_sessions WHERE serial = '$serial{user1}'"),
	'0', 'no session of the revoked certificate');
like(finish_login($early2), qr/^login ok \d+$/,
	'a live certificate over a connection opened before the rewrite logs in');
$early2->{run}->finish;
$early1->{run}->finish;

# --- COMMIT PREPARED: the worker ends the sessions the revoking backend could not
my $s2 = open_session($node, client_connstr($dir{user2}, 'user2'));
my $s3 = open_session($node, client_connstr($dir{user3}, 'user3'));
$node->safe_psql('postgres',
	"BEGIN; SELECT pgtls_revoke('$serial{user2}'); PREPARE TRANSACTION 'rv';");
ok(session_alive($s2) && defined session_query($s2, 'SELECT 1'), 'prepared: the session is still there');
$node->safe_psql('postgres', "COMMIT PREPARED 'rv'");
ok(defined wait_for(5, sub { !defined session_query($s2, 'SELECT 1') }),
	'COMMIT PREPARED: the session of the revoked certificate ends within seconds');
is($node->safe_psql('postgres', "SELECT ends_sessions FROM pgtls_certificates WHERE serial = '$serial{user2}'"),
	'all', 'the registry records that the revocation ends sessions');

# --- terminate => false: recorded, and the worker keeps the session
$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial{user3}', terminate => false)");
is($node->safe_psql('postgres', "SELECT ends_sessions FROM pgtls_certificates WHERE serial = '$serial{user3}'"),
	'none', 'terminate => false is recorded');
sleep 3;    # three looks of the worker
is(session_query($s3, 'SELECT 1'), '1', 'terminate => false: the worker keeps the session');
session_close($s3);

# --- several CAs of ours (a rotation): the CRL file holds one CRL for each,
# and a pre-opened connection is refused whichever of them issued the
# revoked certificate (the previous CA's CRL is not the file's first)
$node->safe_psql('postgres', 'CREATE ROLE user4 LOGIN; CREATE ROLE user5 LOGIN; CREATE ROLE user6 LOGIN;');
$dir{$_} = client_files($node, $_) for qw(user4 user6);
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('prepare')");
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('activate')");
$dir{user5} = client_files($node, 'user5');
my $bundle = $node->safe_psql('postgres', 'SELECT pgtls_ca_cert()');
for my $role (qw(user4 user5 user6))
{
	write_file_0600("$dir{$role}/root.crt", "$bundle\n");
	$serial{$role} = cert_file_serial("$dir{$role}/postgresql.crt");
}
is(scalar(() = $node->safe_psql('postgres', 'SELECT pgtls_crl()') =~ /BEGIN X509 CRL/g),
	2, 'the CRL file holds a CRL for each of the two CAs');
for my $case ([ 'user4', 'previous' ], [ 'user5', 'active' ])
{
	my ($role, $state) = @$case;
	my $early = preopen($role);
	my $live = preopen('user6');
	$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial{$role}', 'keyCompromise')");
	sleep 1;
	$log_offset = -s $node->logfile;
	like(finish_login($early), qr/^refused: certificate authentication failed for user "$role"$/,
		"a certificate of the $state CA, opened before its revocation: refused");
	ok( defined wait_for(
				5,
				sub {
					$node->log_contains(
						qr/DETAIL:  pgtls_admin CRL: certificate $serial{$role} is refused: the CRL lists it/,
						$log_offset);
				}),
		"... the CRL of the $state CA in the file lists it");
	like(finish_login($live), qr/^login ok \d+$/,
		"... while a live certificate of the previous CA, opened before the rewrite, logs in");
	$live->{run}->finish;
	$early->{run}->finish;
}

$node->stop;
done_testing();
