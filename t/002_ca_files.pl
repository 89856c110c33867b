# The CA files on disk: permissions, missing, unreadable, garbage and
# mismatched files, adopting a CA made with the openssl CLI, and the GUCs.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('files');
$node->init;
$node->start;
my $dd = $node->data_dir;
$node->safe_psql('postgres', 'CREATE EXTENSION pgtls_admin; CREATE ROLE user1 LOGIN;');

# Run SQL; return (exit code, stdout, stderr).
sub sql
{
	my ($query) = @_;
	my ($stdout, $stderr);
	my $rc = $node->psql('postgres', $query, stdout => \$stdout, stderr => \$stderr,
		on_error_stop => 1, timeout => 60);
	return ($rc, $stdout, $stderr);
}

# What a private key looks like in PEM or in a message: base64 key bodies.
my $key_material = qr/MII[A-Za-z0-9+\/]{20}|MC4CAQ|MIG[A-Za-z0-9+\/]{20}|^[A-Za-z0-9+\/]{64}$/m;

# pgtls_import_ca() the way the README says: with statement logging off for
# the session, since the server logs a statement before any function runs.
sub import_sql
{
	my ($cert, $key, $replace) = @_;
	return sql("SET log_statement = 'none';\n"
		  . "SELECT pgtls_import_ca(\$c\$$cert\$c\$, \$k\$$key\$k\$, replace => $replace)");
}

sub issue_fails_like
{
	my ($re, $name) = @_;
	my ($rc, $out, $err) = sql("SELECT serial FROM pgtls_issue_client('user1')");
	isnt($rc, 0, "$name: refused");
	like($err, $re, "$name: message");
	unlike($err, $key_material, "$name: no key material in the message");
	return;
}

sub issue_ok
{
	my ($name) = @_;
	my ($rc, $out, $err) = sql("SELECT serial FROM pgtls_issue_client('user1')");
	is($rc, 0, "$name: issuing works") or diag($err);
	return;
}

sub mode_of { return sprintf('%04o', (stat($_[0]))[2] & 07777); }

# --- init: files, modes, no leftovers
is((sql('SELECT length(pgtls_init_ca()) > 0'))[1], 't', 'pgtls_init_ca() creates a CA');
is(mode_of("$dd/pgtls/ca.key"), '0600', 'CA key is written 0600');
is(mode_of("$dd/pgtls"), '0700', 'CA directory is 0700');
opendir(my $dh, "$dd/pgtls") or die;
is_deeply([ sort grep { !/^\./ } readdir $dh ], [ 'ca-bundle.crt', 'ca.crt', 'ca.key', 'registry', 'root.crl' ],
	'the CA, its key, its CRL, the trust bundle and the registry claim; no temporary files');
closedir $dh;
my $ca_before = slurp_file("$dd/pgtls/ca.crt");
my ($rc, $out, $err) = sql('SELECT pgtls_init_ca()');
like($err, qr/a CA already exists.*\n.*\n?HINT:  Pass replace => true/, 'init refuses to overwrite');
is(slurp_file("$dd/pgtls/ca.crt"), $ca_before, 'the refused init changed nothing');
issue_ok('fresh CA');

# --- key permissions: the same rule PostgreSQL applies to ssl_key_file
chmod 0640, "$dd/pgtls/ca.key";
issue_fails_like(qr/CA private key file ".*ca\.key" has group or world access\n.*mode 0640.*\n.*chmod 0600/,
	'CA key with mode 0640 owned by the server user');
chmod 0604, "$dd/pgtls/ca.key";
issue_fails_like(qr/has group or world access/, 'CA key with mode 0604');
chmod 0600, "$dd/pgtls/ca.key";
issue_ok('CA key back to 0600');

# --- unreadable, missing, garbage, mismatched
chmod 0000, "$dd/pgtls/ca.key";
issue_fails_like(qr/could not open CA private key file ".*ca\.key": Permission denied/, 'unreadable CA key');
chmod 0600, "$dd/pgtls/ca.key";

rename "$dd/pgtls/ca.key", "$dd/pgtls/ca.key.saved";
($rc, $out, $err) = sql("\\set VERBOSITY verbose\nSELECT serial FROM pgtls_issue_client('user1')");
like($err, qr/ERROR:  58P01: could not open CA private key file .*No such file/, 'missing CA key is 58P01');
like($err, qr/HINT:  Create a CA with SELECT pgtls_init_ca\(\)/, 'missing CA key hint names pgtls_init_ca()');
rename "$dd/pgtls/ca.key.saved", "$dd/pgtls/ca.key";

rename "$dd/pgtls/ca.crt", "$dd/pgtls/ca.crt.saved";
($rc, $out, $err) = sql("\\set VERBOSITY verbose\nSELECT pgtls_ca_cert()");
like($err, qr/ERROR:  58P01: could not open CA certificate file/, 'missing CA certificate is 58P01');
rename "$dd/pgtls/ca.crt.saved", "$dd/pgtls/ca.crt";
issue_ok('files restored');

my $real_key = slurp_file("$dd/pgtls/ca.key");
write_file_0600("$dd/pgtls/ca.key", "this is not a key\n");
issue_fails_like(qr/the CA private key file is not a PEM private key/, 'garbage CA key');
openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', "$dd/pgtls/ca.key");
chmod 0600, "$dd/pgtls/ca.key";
issue_fails_like(qr/the CA private key does not match the CA certificate/, 'CA key of another CA');
write_file_0600("$dd/pgtls/ca.key", $real_key);
issue_ok('real key restored');

# --- adopt a CA made the tutorial way with the openssl CLI
my $tmp = PostgreSQL::Test::Utils::tempdir;
openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', "$tmp/ca.key",
	'-subj', '/CN=root-ca', '-days', '365', '-sha256', '-out', "$tmp/ca.crt");
my $cli_cert = slurp_file("$tmp/ca.crt");
my $cli_key = slurp_file("$tmp/ca.key");
($rc, $out, $err) = import_sql($cli_cert, $cli_key, 'false');
like($err, qr/a CA already exists/, 'import refuses to overwrite without replace');
($rc, $out, $err) = import_sql($cli_cert, $cli_key, 'true');
is($rc, 0, 'a CA made with the openssl CLI is adopted') or diag($err);
is(mode_of("$dd/pgtls/ca.key"), '0600', 'the adopted key is written 0600');
($rc, $out, $err) = sql("SELECT certificate FROM pgtls_issue_client('user1')");
write_file_0600("$tmp/leaf.crt", "$out\n");
like(openssl('verify', '-CAfile', "$tmp/ca.crt", '-purpose', 'sslclient', "$tmp/leaf.crt"),
	qr/OK/, 'a certificate issued afterwards verifies against the tutorial CA with purpose sslclient');

# --- refused imports
openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-aes256',
	'-pass', 'pass:secret', '-out', "$tmp/enc.key");
openssl('req', '-x509', '-new', '-key', "$tmp/enc.key", '-passin', 'pass:secret',
	'-subj', '/CN=enc', '-days', '30', '-out', "$tmp/enc.crt");
my ($enc_cert, $enc_key) = (slurp_file("$tmp/enc.crt"), slurp_file("$tmp/enc.key"));
($rc, $out, $err) = import_sql($enc_cert, $enc_key, 'true');
like($err, qr/private_key is encrypted with a passphrase/, 'an encrypted key is refused, without prompting');

openssl('req', '-x509', '-newkey', 'rsa:1024', '-nodes', '-keyout', "$tmp/weak.key",
	'-subj', '/CN=weak', '-days', '30', '-out', "$tmp/weak.crt");
my ($weak_cert, $weak_key) = (slurp_file("$tmp/weak.crt"), slurp_file("$tmp/weak.key"));
($rc, $out, $err) = import_sql($weak_cert, $weak_key, 'true');
like($err, qr/has a 1024-bit RSA key, below the 2048 bits required/, 'an RSA-1024 CA is refused');
is(slurp_file("$dd/pgtls/ca.crt"), $cli_cert =~ s/\r//gr, 'refused imports left the adopted CA in place');

# --- GUCs: paths, max_days, default_key_type, reloads
$node->safe_psql('postgres', 'SELECT pgtls_init_ca(replace => true)');
my $abs = PostgreSQL::Test::Utils::tempdir;
$node->append_conf('postgresql.conf',
	"pgtls_admin.ca_cert_file = '$abs/other/ca.crt'\n"
	  . "pgtls_admin.ca_key_file = '$abs/other/ca.key'\n"
	  . "pgtls_admin.max_days = 30\n"
	  . "pgtls_admin.default_days = 7\n"
	  . "pgtls_admin.default_key_type = 'ed25519'\n");
$node->reload;
($rc, $out, $err) = sql('SELECT pgtls_ca_cert()');
like($err, qr/could not open CA certificate file "\Q$abs\E\/other\/ca\.crt"/, 'absolute CA paths are used after reload');
is((sql("SELECT length(pgtls_init_ca(subject => 'CN=Elsewhere')) > 0"))[1], 't', 'a CA can live outside the data directory');
is(mode_of("$abs/other/ca.key"), '0600', '... with its key 0600');
is((sql("SELECT ci.issuer || ' ' || ci.key_type || ' ' || (i.not_after - now() < interval '7 days 00:01') "
	  . "FROM pgtls_issue_client('user1') i, pgtls_cert_info(i.certificate) ci"))[1],
	'CN=Elsewhere ed25519 true', 'default_key_type and default_days apply');
($rc, $out, $err) = sql("SELECT serial FROM pgtls_issue_client('user1', days => 31)");
like($err, qr/days must be between 1 and 30/, 'max_days bounds days');
# Before the library is loaded a SET only makes a placeholder; it must not take effect.
($rc, $out, $err) = sql("SET pgtls_admin.max_days = 1000;\n"
	  . "SET pgtls_admin.ca_key_file = '/tmp/elsewhere.key';\n"
	  . "SELECT serial FROM pgtls_issue_client('user1', days => 31)");
like($err, qr/days must be between 1 and 30/, 'a session SET before loading does not change max_days');
($rc, $out, $err) = sql("LOAD 'pgtls_admin';\nSET pgtls_admin.max_days = 1000");
like($err, qr/cannot be changed now/, 'once loaded, GUCs cannot be changed per session');

# --- the CA's own expiry bounds a leaf
$node->safe_psql('postgres', "SELECT pgtls_init_ca(subject => 'CN=Short', days => 3, replace => true)");
($rc, $out, $err) = sql("SELECT (i.not_after = ci.not_after)::text FROM pgtls_issue_client('user1', days => 20) i, "
	  . 'pgtls_cert_info(pgtls_ca_cert()) ci');
is($out, 'true', "a leaf never outlives the CA");
like($err, qr/NOTICE:  certificate validity shortened to the CA certificate's expiry/, '... and the caller is told');

# pg_dump carries the registry's rows with the extension (config table).
my $registry_rows = $node->safe_psql('postgres', 'SELECT count(*) FROM pgtls_certificates');
cmp_ok($registry_rows, '>=', 10, 'the registry has rows to dump');
my $dump = `pg_dump -p @{[ $node->port ]} -h @{[ $node->host ]} postgres`;
is($?, 0, 'pg_dump succeeds');
my ($copy) = $dump =~ /^COPY public\.pgtls_certificates [^\n]*\n(.*?)^\\\.$/ms;
is(scalar(() = ($copy // '') =~ /^[0-9A-F]{2,}\t/mg), $registry_rows, 'pg_dump includes every registry row');
unlike($dump, qr/PRIVATE KEY/, 'the dump holds no private key');

# The failed imports above raised errors; with the statement hidden from the
# error report, no key reached the log.
my $log = slurp_file($node->logfile);
unlike($log, qr/PRIVATE KEY/, 'no private key in the server log');
unlike($log, $key_material, 'no key material in the server log');

$node->stop;
done_testing();
