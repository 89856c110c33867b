# Certificates from pgtls_issue_client() log in over verified TLS under
# "hostssl ... cert"; nothing else does.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = tls_cluster('login');
$node->safe_psql('postgres', 'CREATE ROLE user1 LOGIN; CREATE ROLE user2 LOGIN;');

my $user1 = client_files($node, 'user1');
my $user2 = client_files($node, 'user2');

$node->connect_ok(client_connstr($user1, 'user1'),
	'user1 logs in with its certificate and sslmode=verify-full, over TLS, as CN=user1',
	sql => "SELECT current_user || ' ' || ssl || ' ' || client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
	expected_stdout => qr/^user1 true \/CN=user1$/);

$node->connect_fails(client_connstr($user2, 'user1'),
	"user2's certificate cannot log in as user1",
	expected_stderr => qr/certificate authentication failed for user "user1"/);
$node->connect_ok(client_connstr($user2, 'user2'),
	'user2 logs in with its own certificate',
	sql => 'SELECT current_user', expected_stdout => qr/^user2$/);

$node->connect_fails(client_connstr($user1, 'user1', 'disable'),
	'sslmode=disable is rejected by the host ... reject rule',
	expected_stderr => qr/pg_hba\.conf rejects connection for host "127\.0\.0\.1", user "user1".*no encryption/);

$node->connect_fails(
	"host=localhost hostaddr=127.0.0.1 dbname=postgres user=user1 sslmode=verify-full "
	  . "sslrootcert=$user1/root.crt sslcert=/dev/null/none sslkey=/dev/null/none",
	'TLS without a client certificate is refused',
	expected_stderr => qr/connection requires a valid client certificate/);

# The server certificate is checked against our CA: a different root fails.
my $other = PostgreSQL::Test::Utils::tempdir;
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$other/k.pem", '-subj', '/CN=Other CA', '-days', '1', '-out', "$other/root.crt");
$node->connect_fails(
	"host=localhost hostaddr=127.0.0.1 dbname=postgres user=user1 sslmode=verify-full "
	  . "sslrootcert=$other/root.crt sslcert=$user1/postgresql.crt sslkey=$user1/postgresql.key",
	'verify-full against another CA fails',
	expected_stderr => qr/certificate verify failed/);

# Every key type logs in.
for my $kt (qw(ec-p256 ec-p384 ed25519 rsa-2048))
{
	my $dir = client_files($node, 'user1', key_type => $kt);
	$node->connect_ok(client_connstr($dir, 'user1'), "a $kt certificate logs in",
		sql => 'SELECT current_user', expected_stdout => qr/^user1$/);
}

# Hostile role names: each logs in with its own certificate, as itself.
my @hostile = ('a,CN=postgres', 'x/CN=admin', q{it's "quoted"}, ' leading space',
	'#hash', 'semi;colon+plus<gt>\\back', "\xe2\x82\xac" x 21);
for my $role (@hostile)
{
	my $ident = $role =~ s/"/""/gr;
	$node->safe_psql('postgres', qq{CREATE ROLE "$ident" LOGIN});
	my $dir = client_files($node, $role);
	$node->connect_ok(client_connstr($dir, $role), "role [$role] logs in with its certificate",
		sql => "SELECT current_user = \$r\$$role\$r\$",
		expected_stdout => qr/^t$/);
}
# ... and a hostile name's certificate does not open the role its name mimics.
$node->connect_fails(client_connstr(client_files($node, 'a,CN=postgres'), 'postgres'),
	'the certificate of role "a,CN=postgres" cannot log in as postgres',
	expected_stderr => qr/certificate authentication failed for user "postgres"/);

# The server's log never contains key material.
my $log = slurp_file($node->logfile);
unlike($log, qr/PRIVATE KEY|BEGIN [A-Z ]*KEY/, 'no key material in the server log');

$node->stop;
done_testing();
