# A session left idle in a transaction that revoked, installed or changed the
# CA must not hold up an emergency revocation: other revocations complete at
# once, and what cannot (the same row, the CA lock) fails within seconds
# naming the blocking process.  Fail closed throughout: a revocation is in
# the CRL from the moment it is made, a committed one stays there, and one
# that rolled back leaves it at the next rewrite.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = sql_tls_cluster('idle');
$node->safe_psql('postgres', 'CREATE ROLE user1 LOGIN; CREATE ROLE user2 LOGIN; CREATE ROLE user3 LOGIN;');
my %dir = map { $_ => client_files($node, $_) } qw(user1 user2 user3);
sub serial_of
{
	my ($d) = @_;
	return uc(openssl('x509', '-in', "$d/postgresql.crt", '-noout', '-serial') =~ s/^serial=|\s+$//gr);
}
my %serial = map { $_ => serial_of($dir{$_}) } keys %dir;
for my $u (sort keys %dir)
{
	$node->connect_ok(client_connstr($dir{$u}, $u), "$u logs in before anything is revoked",
		sql => 'SELECT 1', expected_stdout => qr/^1$/);
}

# Session A revokes user1's certificate and stays idle in its transaction.
my $a = $node->background_psql('postgres', on_error_stop => 0);
my $a_pid = $a->query_safe('SELECT pg_backend_pid()');
$a->query_safe("BEGIN; SELECT pgtls_revoke('$serial{user1}')");
$node->connect_fails(client_connstr($dir{user1}, 'user1'),
	'fail closed: the uncommitted revocation is already in the CRL',
	expected_stderr => qr/certificate revoked/);

# An emergency revocation of another certificate completes at once.
my $t0 = time;
my ($rc, $out, $err) = (0, '', '');
$rc = $node->psql('postgres', "SELECT pgtls_revoke('$serial{user2}', 'keyCompromise')",
	stdout => \$out, stderr => \$err, timeout => 60);
my $took = time - $t0;
is($out, 't', 'another revocation completes while A is idle');
cmp_ok($took, '<', 3, sprintf('... within seconds (%.2f s)', $took));
$node->connect_fails(client_connstr($dir{user2}, 'user2'), '... and is enforced at once',
	expected_stderr => qr/certificate revoked/);
$node->connect_fails(client_connstr($dir{user1}, 'user1'),
	"... and the other session's rewrite kept A's revocation in the CRL",
	expected_stderr => qr/certificate revoked/);

# Revoking the very row A changed cannot complete: it fails, naming A.
$t0 = time;
$rc = $node->psql('postgres', "SELECT pgtls_revoke('$serial{user1}', 'keyCompromise')",
	stdout => \$out, stderr => \$err, timeout => 60);
$took = time - $t0;
isnt($rc, 0, 'revoking the row A holds fails');
like($err, qr/could not change the registry row of certificate $serial{user1} within 5 seconds.*\n.*Process $a_pid changed it/,
	'... naming the process that holds it');
cmp_ok($took, '<', 15, sprintf('... within seconds (%.2f s)', $took));

# A commits: its revocation stays.
$a->query_safe('COMMIT');
$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial{user2}')");    # another rewrite
$node->connect_fails(client_connstr($dir{user1}, 'user1'), "A's committed revocation stays in the CRL",
	expected_stderr => qr/certificate revoked/);

# A revocation that rolls back is listed until the next rewrite, then not.
$a->query_safe("BEGIN; SELECT pgtls_revoke('$serial{user3}')");
$node->connect_fails(client_connstr($dir{user3}, 'user3'), 'an uncommitted revocation is enforced (fail closed)',
	expected_stderr => qr/certificate revoked/);
$a->query_safe('ROLLBACK');
$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial{user2}')");
$node->connect_ok(client_connstr($dir{user3}, 'user3'), '... and after a rollback the next rewrite drops it',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);
is($node->safe_psql('postgres', "SELECT revoked_at IS NULL FROM pgtls_certificates WHERE serial = '$serial{user3}'"),
	't', '... as the registry says');
opendir(my $dh, $node->data_dir . '/pgtls/pending') or die;
is_deeply([ grep { !/^\./ } readdir $dh ], [], 'no pending revocation file is left');
closedir $dh;

# A CA request left idle (a CA change cannot run in a transaction block):
# a CA change behind it fails within seconds, naming it.
$a->query_safe("BEGIN; SELECT length(pgtls_ca_request('CN=Idle Request')) > 0");
$t0 = time;
$rc = $node->psql('postgres', 'SELECT pgtls_init_ca(replace => true)', stdout => \$out, stderr => \$err,
	timeout => 60);
$took = time - $t0;
isnt($rc, 0, 'a CA change behind an idle CA request fails');
like($err, qr/could not lock the CA files within 5 seconds.*\n.*Process $a_pid holds the lock/,
	'... naming the process that holds the lock');
cmp_ok($took, '<', 15, sprintf('... within seconds (%.2f s)', $took));
$a->query_safe('ROLLBACK');
$a->quit;

$node->stop;
done_testing();
