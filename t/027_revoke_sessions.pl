# Revocation ends sessions: pgtls_revoke(serial) terminates, within a second
# or two, every backend that logged in with that certificate (and none
# other), once the revocation commits; terminate => false, a rollback or a
# rolled-back savepoint end nothing; the revoking session itself stays; a
# delegated revoker ends the sessions of the roles it manages.  The view
# pgtls_sessions shows each certificate session with the registry's serial
# and status: live, revoked, expired, unknown.
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

my $node = sql_tls_cluster('sessions');
my $dd = $node->data_dir;
$node->safe_psql('postgres', <<'SQL');
CREATE ROLE user1 LOGIN; CREATE ROLE user2 LOGIN; CREATE ROLE admin LOGIN SUPERUSER;
CREATE ROLE mon LOGIN IN ROLE pg_monitor;
CREATE ROLE issuer LOGIN;
GRANT user2 TO issuer WITH ADMIN OPTION;
GRANT EXECUTE ON FUNCTION pgtls_revoke(text, text, bool) TO issuer;
SQL

my %role = (user1 => 'user1', b => 'user1', user2 => 'user2', admin => 'admin');
my %dir = map { $_ => client_files($node, $role{$_}) } keys %role;
my %serial = map { $_ => cert_file_serial("$dir{$_}/postgresql.crt") } keys %dir;

# A certificate the CA signed outside the registry (with its key, by the openssl CLI).
my $x = PostgreSQL::Test::Utils::tempdir;
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$x/postgresql.key", '-subj', '/CN=user2', '-out', "$x/req.csr");
write_file_0600("$x/ext.cnf", "extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n");
openssl('x509', '-req', '-in', "$x/req.csr", '-CA', "$dd/pgtls/ca.crt", '-CAkey', "$dd/pgtls/ca.key",
	'-set_serial', '0x5A5A5A5A', '-days', '1', '-sha256', '-extfile', "$x/ext.cnf", '-out', "$x/postgresql.crt");
write_file_0600("$x/root.crt", slurp_file("$dd/pgtls/ca.crt"));
chmod 0600, "$x/postgresql.key";

my %s;
$s{$_} = open_session($node, client_connstr($dir{$_}, $role{$_})) for qw(user1 b user2 admin);
$s{user1_2} = open_session($node, client_connstr($dir{user1}, 'user1'));
$s{unknown} = open_session($node, client_connstr($x, 'user2'));
# a session over the socket, without a certificate
my $plain = open_session($node);

sub alive
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE pid = $s{$name}{pid}") eq '1';
}

sub sessions_view
{
	return $node->safe_psql('postgres', 'SELECT pid, usename, client_addr, serial, status FROM pgtls_sessions',
		extra_params => [ '-U', 'mon' ]);
}

my %expect = (
	user1 => "user1|127.0.0.1|$serial{user1}|live",
	user1_2 => "user1|127.0.0.1|$serial{user1}|live",
	b => "user1|127.0.0.1|$serial{b}|live",
	user2 => "user2|127.0.0.1|$serial{user2}|live",
	admin => "admin|127.0.0.1|$serial{admin}|live",
	unknown => 'user2|127.0.0.1|5A5A5A5A|unknown');
my $view = sessions_view();
is($view, join("\n", map { "$s{$_}{pid}|$expect{$_}" } sort { $s{$a}{pid} <=> $s{$b}{pid} } keys %expect),
	'pgtls_sessions: each certificate session, its serial as the registry spells it, live or unknown (pg_monitor)');
unlike($view, qr/^$plain->{pid}\|/m, 'a session without a certificate is not listed');
$node->safe_psql('postgres', "UPDATE pgtls_certificates SET not_after = now() - interval '1 second' WHERE serial = '$serial{b}'");
like(sessions_view(), qr/^$s{b}{pid}\|user1\|127\.0\.0\.1\|$serial{b}\|expired$/m, 'expired, by the registry');
$node->safe_psql('postgres', "UPDATE pgtls_certificates SET not_after = now() + interval '1 day' WHERE serial = '$serial{b}'");

# --- pgtls_revoke ends both sessions of that certificate, and only them
my ($rc, $out, $err) = $node->psql('postgres', "SELECT pgtls_revoke('$serial{user1}', 'keyCompromise')");
my $start = time;
my $took = wait_for(5, sub { !alive('user1') && !alive('user1_2') });
ok(defined $took && $took < 2, sprintf('both sessions of the revoked certificate end within 2 s (%.3f s)', $took // -1));
note(sprintf('revocation to sessions ended: %.3f s', $took // -1));
like($err, qr/NOTICE:  ending 2 sessions that logged in with certificate $serial{user1}/, 'the revoker is told');
my ($gone, $gone_err) = session_query($s{user1}, 'SELECT 1');
ok(!defined $gone, 'the client finds its session ended ...');
like($gone_err, qr/FATAL:  terminating connection due to administrator command/, '... by the server, as pg_terminate_backend does');
ok(alive('b') && alive('user2') && alive('unknown'), 'sessions of other certificates go on');
like(slurp_file($node->logfile), qr/LOG:  pgtls_admin: ending session $s{user1_2}{pid}, which logged in with revoked certificate $serial{user1}/,
	'the server log names each session ended');

# --- terminate => false keeps them; the view says revoked; revoking again ends them
$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial{user2}', terminate => false)");
Time::HiRes::usleep(1_000_000);
ok(alive('user2'), 'terminate => false: the session stays');
like(sessions_view(), qr/^$s{user2}{pid}\|user2\|127\.0\.0\.1\|$serial{user2}\|revoked$/m, 'pgtls_sessions: revoked');
is($node->safe_psql('postgres', "SELECT pgtls_revoke('$serial{user2}')"), 'f', 'revoking it again returns false ...');
ok(defined wait_for(2, sub { !alive('user2') }), '... and ends its session');

# --- nothing ends before the revocation commits, nor when it rolls back
$node->safe_psql('postgres', "BEGIN; SELECT pgtls_revoke('$serial{b}'); ROLLBACK;");
$node->safe_psql('postgres', "BEGIN; SAVEPOINT s; SELECT pgtls_revoke('$serial{b}'); ROLLBACK TO s; COMMIT;");
Time::HiRes::usleep(1_000_000);
ok(alive('b'), 'a rolled-back revocation (whole, or to a savepoint) ends nothing');
my $revoker = open_session($node);
session_query($revoker, "BEGIN; SELECT pgtls_revoke('$serial{b}');");
Time::HiRes::usleep(500_000);
ok(alive('b'), 'while the revoking transaction is open the session goes on');
session_query($revoker, 'COMMIT');
ok(defined wait_for(2, sub { !alive('b') }), 'at its commit the session ends');
session_close($revoker);

# --- the revoking session itself stays; another one of the same certificate ends
$s{admin_2} = open_session($node, client_connstr($dir{admin}, 'admin'));
($out, $err) = session_query($s{admin}, "SELECT pgtls_revoke('$serial{admin}')");
ok(defined wait_for(2, sub { !alive('admin_2') }), 'a superuser revoking its own certificate: its other session ends ...');
is(session_query($s{admin}, 'SELECT current_user'), 'admin', '... the revoking session goes on');

# --- a delegated revoker ends the sessions of the roles it manages
my $d = client_files($node, 'user2');
$s{delegated} = open_session($node, client_connstr($d, 'user2'));
$node->safe_psql('postgres', "SELECT pgtls_revoke('" . cert_file_serial("$d/postgresql.crt") . "')",
	extra_params => [ '-U', 'issuer' ]);
ok(defined wait_for(2, sub { !alive('delegated') }), 'a revoker with ADMIN OPTION on the role ends its session');

$node->connect_fails(client_connstr($dir{user1}, 'user1'), 'and the revoked certificate cannot log in again',
	expected_stderr => qr/certificate revoked/);
session_close($_) for values %s;
session_close($plain);
$node->stop;
done_testing();
