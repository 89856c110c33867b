# Taking access away and giving it back: revocation enforced by the very
# next connection and after restarts, concurrent revocations, CSR signing
# (the key never leaves the client), expired certificates, renewal.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = sql_tls_cluster('lifecycle');
my $dd = $node->data_dir;
$node->safe_psql('postgres', 'CREATE ROLE user1 LOGIN; CREATE ROLE user2 LOGIN;');

sub sql
{
	my ($query) = @_;
	my ($stdout, $stderr);
	my $rc = $node->psql('postgres', $query, stdout => \$stdout, stderr => \$stderr, on_error_stop => 1);
	return ($rc, $stdout, $stderr);
}

sub cert_serial
{
	my ($dir) = @_;
	my $out = openssl('x509', '-in', "$dir/postgresql.crt", '-noout', '-serial');
	$out =~ /serial=([0-9A-F]+)/ or die $out;
	return $1;
}

# --- revocation takes effect at the next connection, no restart
my $a = client_files($node, 'user1');
my $serial_a = cert_serial($a);
$node->connect_ok(client_connstr($a, 'user1'), 'certificate A logs in',
	sql => 'SELECT current_user', expected_stdout => qr/^user1$/);
is($node->safe_psql('postgres', "SELECT pgtls_revoke('$serial_a', 'keyCompromise')"), 't', 'pgtls_revoke returns true');
$node->connect_fails(client_connstr($a, 'user1'), 'the very next connection with A is refused',
	expected_stderr => qr/certificate revoked/);
my $lower = lc($serial_a) =~ s/(..)(?=.)/$1:/gr;
is($node->safe_psql('postgres', "SELECT pgtls_revoke('$lower')"), 'f',
	'revoking again (lower case, colons) returns false');
like(openssl('crl', '-in', "$dd/pgtls/root.crl", '-noout', '-text'),
	qr/Serial Number: $serial_a\n\s+Revocation Date: .*\n\s+CRL entry extensions:\n\s+X509v3 CRL Reason Code: \n\s+Key Compromise/,
	'the CRL lists A with its reason');
is($node->safe_psql('postgres', 'SELECT pgtls_crl()') =~ s/\s+$//r, slurp_file("$dd/pgtls/root.crl") =~ s/\s+$//r,
	'pgtls_crl() returns the CRL file');
is($node->safe_psql('postgres', "SELECT revocation_reason FROM pgtls_revoked_certificates WHERE serial = '$serial_a'"),
	'keyCompromise', 'pgtls_revoked_certificates shows it');

$node->restart;
$node->connect_fails(client_connstr($a, 'user1'), 'A is still refused after a restart',
	expected_stderr => qr/certificate revoked/);
my $b = client_files($node, 'user1');
$node->connect_ok(client_connstr($b, 'user1'), 'a new certificate B logs in',
	sql => 'SELECT current_user', expected_stdout => qr/^user1$/);

# --- renewal: new key and serial, same subject; the old one stays valid
my ($renewed_serial, $renewed_cert, $renewed_key) = split /\x01/, $node->safe_psql('postgres',
	"SELECT serial || '\x01' || certificate || '\x01' || private_key FROM pgtls_renew('" . cert_serial($b) . "')");
isnt($renewed_serial, cert_serial($b), 'pgtls_renew issues a new serial');
my $r = PostgreSQL::Test::Utils::tempdir;
write_file_0600("$r/postgresql.crt", $renewed_cert);
write_file_0600("$r/postgresql.key", $renewed_key);
write_file_0600("$r/root.crt", slurp_file("$b/root.crt"));
$node->connect_ok(client_connstr($r, 'user1'), 'the renewed certificate logs in as the same role',
	sql => 'SELECT current_user', expected_stdout => qr/^user1$/);
$node->connect_ok(client_connstr($b, 'user1'), 'the certificate it renewed still logs in',
	sql => 'SELECT current_user', expected_stdout => qr/^user1$/);
my ($rc, $out, $err) = sql("SELECT * FROM pgtls_renew('$serial_a')");
like($err, qr/is revoked and cannot be renewed/, 'a revoked certificate is not renewed');

# --- 8 sessions revoking at once lose no serial
$node->safe_psql('postgres',
	"CREATE TABLE todo AS SELECT row_number() OVER () AS n, serial FROM generate_series(1, 80) g, "
	  . "LATERAL pgtls_issue_client('user2', days => g) ORDER BY 1");
my $script = PostgreSQL::Test::Utils::tempdir . '/revoke.sql';
write_file_0600($script,
	"WITH d AS (DELETE FROM todo WHERE n = (SELECT n FROM todo ORDER BY n LIMIT 1 FOR UPDATE SKIP LOCKED) "
	  . "RETURNING serial) SELECT pgtls_revoke(serial, 'superseded') FROM d;\n");
$node->command_ok([ 'pgbench', '-n', '-c', '8', '-j', '2', '-t', '10', '-f', $script,
	'-h', $node->host, '-p', $node->port, 'postgres' ], '8 sessions revoke 80 certificates concurrently');
is($node->safe_psql('postgres', 'SELECT count(*) FROM todo'), '0', 'every queued serial was taken');
my $crl_text = openssl('crl', '-in', "$dd/pgtls/root.crl", '-noout', '-text');
my %in_crl = map { $_ => 1 } $crl_text =~ /Serial Number: ([0-9A-F]+)/g;
my @revoked = split /\n/, $node->safe_psql('postgres',
	"SELECT serial FROM pgtls_certificates WHERE revoked_at IS NOT NULL");
is(scalar(@revoked), 81, '81 revocations are recorded');
is(scalar(grep { !$in_crl{$_} } @revoked), 0, 'every recorded revocation is in the CRL');
is(scalar(keys %in_crl), 81, 'and the CRL lists nothing else');
sub crl_verifies
{
	my ($stderr, $ok) = ('', 0);
	$ok = IPC::Run::run([ 'openssl', 'crl', '-in', "$dd/pgtls/root.crl", '-CAfile', "$dd/pgtls/ca.crt",
		'-noout', '-verify' ], '>', \my $stdout, '2>', \$stderr);
	return $ok && $stderr =~ /verify OK/;
}
ok(crl_verifies(), "the CRL's signature verifies against the CA");

# --- CSR: the key never leaves the client; only the CN and key are used
my $c = PostgreSQL::Test::Utils::tempdir;
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$c/postgresql.key", '-subj', '/CN=user2/O=Evil Corp',
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'extendedKeyUsage=serverAuth',
	'-addext', 'subjectAltName=DNS:evil.example.com', '-out', "$c/req.csr");
chmod 0600, "$c/postgresql.key";
my $csr = slurp_file("$c/req.csr");
my $signed = $node->safe_psql('postgres', "SELECT certificate FROM pgtls_sign_client_csr('user2', \$q\$$csr\$q\$)");
write_file_0600("$c/postgresql.crt", "$signed\n");
write_file_0600("$c/root.crt", $node->safe_psql('postgres', 'SELECT pgtls_ca_cert()') . "\n");
is($node->safe_psql('postgres',
		"SELECT subject || ' ' || eku::text || ' ' || is_ca || ' ' || coalesce(san::text, 'no-san') "
		  . "FROM pgtls_cert_info(\$q\$$signed\$q\$)"),
	'CN=user2 {clientAuth} false no-san', 'CA:TRUE, serverAuth, SAN and O in the request are all ignored');
like(openssl('verify', '-CAfile', "$c/root.crt", '-purpose', 'sslclient', "$c/postgresql.crt"),
	qr/OK/, 'the signed certificate verifies as a client certificate');
$node->connect_ok(client_connstr($c, 'user2'), 'user2 logs in with the CSR certificate and its own key',
	sql => 'SELECT current_user', expected_stdout => qr/^user2$/);

($rc, $out, $err) = sql("SELECT * FROM pgtls_sign_client_csr('user1', \$q\$$csr\$q\$)");
like($err, qr/the request's CN "user2" does not match role "user1"/, 'a CSR for another role is refused');
my $tampered = $csr;
substr($tampered, 120, 1) = substr($tampered, 120, 1) eq 'A' ? 'B' : 'A';
($rc, $out, $err) = sql("SELECT * FROM pgtls_sign_client_csr('user2', \$q\$$tampered\$q\$)");
like($err, qr/signature does not verify|not a PEM certificate signing request/, 'a tampered CSR is refused');
($rc, $out, $err) = sql("SELECT * FROM pgtls_sign_client_csr('user2', 'garbage')");
like($err, qr/csr is not a PEM certificate signing request/, 'garbage is refused');
openssl('req', '-new', '-newkey', 'rsa:1024', '-nodes', '-keyout', "$c/weak.key",
	'-subj', '/CN=user2', '-out', "$c/weak.csr");
my $weak = slurp_file("$c/weak.csr");
($rc, $out, $err) = sql("SELECT * FROM pgtls_sign_client_csr('user2', \$q\$$weak\$q\$)");
like($err, qr/the request's key \(rsa-1024, 1024 bits\) is not accepted/, 'an RSA-1024 request is refused');

# --- an expired certificate from the same CA is refused
my $e = PostgreSQL::Test::Utils::tempdir;
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$e/postgresql.key", '-subj', '/CN=user1', '-out', "$e/req.csr");
chmod 0600, "$e/postgresql.key";
cli_ca_sign($e, "$e/req.csr", "$e/postgresql.crt", 'extendedKeyUsage = clientAuth',
	ca_cert => "$dd/pgtls/ca.crt", ca_key => "$dd/pgtls/ca.key",
	dates => [ '-startdate', '20200101000000Z', '-enddate', '20200201000000Z' ]);
write_file_0600("$e/root.crt", slurp_file("$c/root.crt"));
$node->connect_fails(client_connstr($e, 'user1'), 'an expired certificate is refused',
	expected_stderr => qr/certificate expired/);

# The CRL is signed correctly by CAs of every key type.
for my $kt (qw(ec-p384 ed25519 rsa-2048))
{
	$node->safe_psql('postgres', "SELECT pgtls_init_ca(key_type => '$kt', replace => true)");
	my $s = $node->safe_psql('postgres', "SELECT serial FROM pgtls_issue_client('user1')");
	$node->safe_psql('postgres', "SELECT pgtls_revoke('$s', 'affiliationChanged')");
	ok(crl_verifies(), "a $kt CA signs a CRL that verifies");
	like(openssl('crl', '-in', "$dd/pgtls/root.crl", '-noout', '-text'),
		qr/Serial Number: $s\n\s+Revocation Date: .*\n\s+CRL entry extensions:\n\s+X509v3 CRL Reason Code: \n\s+Affiliation Changed/,
		"... and lists the $kt CA's revocation with its reason");
}

$node->stop;
done_testing();
