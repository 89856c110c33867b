# Who a certificate lets in is exactly who it was issued for: the CN is the
# bytes of pg_authid.rolname (a LATIN1 database cannot mint a certificate for
# a UTF-8 role of the same spelling), a role dropped and created again is
# not the same role, a revoked server certificate is called out, requests
# with odd keys are refused, oversized input is refused before it is parsed,
# and the crash clean-up removes only this extension's own files.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# --- encodings: a LATIN1 database and a UTF-8 role of the same spelling
my $enc = PostgreSQL::Test::Cluster->new('encodings');
$enc->init;
$enc->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
write_cert_only_hba($enc);
$enc->start;
$enc->safe_psql('postgres', 'CREATE DATABASE latin1 ENCODING LATIN1 LC_COLLATE \'C\' LC_CTYPE \'C\' TEMPLATE template0');
# "dbä" typed in a UTF8 database: bytes 64 62 c3 a4, a superuser
$enc->safe_psql('postgres', qq{CREATE ROLE "db\xc3\xa4" LOGIN SUPERUSER});
# "dbä" typed in the LATIN1 database: bytes 64 62 e4, an ordinary role
sub latin1_sql
{
	my ($sql) = @_;
	my ($out, $err);
	local $ENV{PGCLIENTENCODING} = 'LATIN1';
	my $rc = $enc->psql('latin1', $sql, stdout => \$out, stderr => \$err);
	return ($rc, $out, $err);
}
latin1_sql(qq{CREATE ROLE "db\xe4" LOGIN});
is($enc->safe_psql('postgres', "SELECT count(*) FROM pg_authid WHERE rolname LIKE 'db%'"), 2,
	'two roles whose names differ only in their encoding');
my ($rc, $out, $err) = latin1_sql('CREATE EXTENSION pgtls_admin; SELECT length(pgtls_init_ca()) > 0; SELECT count(*) FROM pgtls_enable_ssl();');
is($rc, 0, 'the extension in the LATIN1 database, TLS on') or diag($err);
($rc, $out, $err) = latin1_sql(qq{SELECT serial FROM pgtls_issue_client('db\xe4')});
isnt($rc, 0, 'issuing for the LATIN1-named role is refused');
like($err, qr/role name "db.*" is not valid UTF-8, so no certificate can name it exactly/, '... with a clear reason');
is($enc->safe_psql('latin1', "SELECT count(*) FROM pgtls_certificates WHERE kind = 'client'"), 0,
	'... and nothing was recorded');
# The UTF-8 role, named from the LATIN1 database by its bytes, gets a CN with those bytes.
my $dir = PostgreSQL::Test::Utils::tempdir;
($rc, $out, $err) = latin1_sql(qq{SELECT certificate || chr(1) || private_key || chr(1) || ca_certificate FROM pgtls_issue_client('db\xc3\xa4')});
is($rc, 0, 'issuing for the UTF-8 role from the LATIN1 database works') or diag($err);
# the result comes back in LATIN1; PEM is ASCII
my ($cert, $key, $ca) = split /\x01/, $out;
write_file_0600("$dir/postgresql.crt", "$cert\n");
write_file_0600("$dir/postgresql.key", "$key\n");
write_file_0600("$dir/root.crt", "$ca\n");
my $cn_hex = unpack('H*', openssl('x509', '-in', "$dir/postgresql.crt", '-noout', '-subject', '-nameopt', 'RFC2253,-esc_msb')
	  =~ s/^subject=CN=|\s+$//gr);
is($cn_hex, '6462c3a4', "the CN is the role's bytes, 64 62 c3 a4");
$enc->connect_ok(client_connstr($dir, "db\xc3\xa4"), 'it logs in as that role, and only that one',
	sql => 'SELECT rolsuper FROM pg_roles WHERE rolname = current_user', expected_stdout => qr/^t$/);
$enc->connect_fails(client_connstr($dir, "db\xe4"), '... not as the LATIN1 role',
	expected_stderr => qr/certificate authentication failed/);
$enc->stop;

# --- one cluster for the rest
my $node = sql_tls_cluster('identity');
my $dd = $node->data_dir;
$node->safe_psql('postgres', 'CREATE ROLE app LOGIN');
my $app = client_files($node, 'app');
my $app_serial = uc(openssl('x509', '-in', "$app/postgresql.crt", '-noout', '-serial') =~ s/^serial=|\s+$//gr);
is($node->safe_psql('postgres', "SELECT role_oid = 'app'::regrole::oid FROM pgtls_certificates WHERE serial = '$app_serial'"),
	't', 'the registry records the role OID');

# a role dropped and created again under the same name
$node->safe_psql('postgres', 'DROP ROLE app; CREATE ROLE app LOGIN');
my $audit = $node->safe_psql('postgres', "SELECT severity || ' ' || message FROM pgtls_hba_check() WHERE check_id = 'cert.role_replaced'");
like($audit, qr/^critical 1 live client certificate was issued for a role that was then dropped and created again .*serial $app_serial, role "app"/,
	'the audit reports the certificate of the replaced role');
($rc, $out, $err) = (0, '', '');
$rc = $node->psql('postgres', "SELECT * FROM pgtls_renew('$app_serial')", stdout => \$out, stderr => \$err);
like($err, qr/role "app" was dropped and created again since certificate $app_serial was issued/,
	'renewing it is refused');
$node->safe_psql('postgres', "SELECT pgtls_revoke('$app_serial')");
is($node->safe_psql('postgres', "SELECT count(*) FROM pgtls_hba_check() WHERE check_id = 'cert.role_replaced'"), 0,
	'once revoked, the audit is quiet about it');

# revoking the certificate the server presents
my $server_serial = $node->safe_psql('postgres', "SELECT serial FROM pgtls_server_cert_info()");
$rc = $node->psql('postgres', "SELECT pgtls_revoke('$server_serial')", stdout => \$out, stderr => \$err);
like($err, qr/WARNING:  certificate $server_serial is the one the server presents.*\n.*Clients do not check the server's certificate against a CRL/,
	'revoking the served certificate warns that clients do not check it');
like($node->safe_psql('postgres', "SELECT severity || ' ' || check_id FROM pgtls_hba_check() WHERE check_id = 'cert.server_revoked'"),
	qr/^high cert\.server_revoked$/, '... and the audit reports it until it is replaced');
$node->safe_psql('postgres', 'SELECT count(*) FROM pgtls_enable_ssl()');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgtls_hba_check() WHERE check_id = 'cert.server_revoked'"), 0,
	'... after which it is quiet');

# requests with RSA keys outside the bounds
my $tmp = PostgreSQL::Test::Utils::tempdir;
openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-pkeyopt', 'rsa_keygen_pubexp:3',
	'-out', "$tmp/e3.key");
openssl('req', '-new', '-key', "$tmp/e3.key", '-subj', '/CN=app', '-out', "$tmp/e3.csr");
$rc = $node->psql('postgres', "SELECT serial FROM pgtls_sign_client_csr('app', \$\$" . slurp_file("$tmp/e3.csr") . "\$\$)",
	stdout => \$out, stderr => \$err);
like($err, qr/the request's key \(rsa-2048, 2048 bits\) is not accepted/, 'an RSA key with public exponent 3 is refused');
openssl('genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', "$tmp/ok.key");
openssl('req', '-new', '-key', "$tmp/ok.key", '-subj', '/CN=app', '-out', "$tmp/ok.csr");
is($node->safe_psql('postgres', "SELECT length(serial) FROM pgtls_sign_client_csr('app', \$\$" . slurp_file("$tmp/ok.csr") . "\$\$)"),
	32, '... one with 65537 is signed');

# oversized input is refused before it is parsed, with little memory
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
my $res = $bg->query("SELECT * FROM pgtls_cert_info(repeat('A', 100 * 1024 * 1024))");
like($bg->{stderr}, qr/ERROR:  certificate is larger than 1024 kB/, '100 MB given to pgtls_cert_info: 54000 at once');
my ($hwm) = slurp_file("/proc/$pid/status") =~ /VmHWM:\s+(\d+) kB/;
cmp_ok($hwm, '<', 3 * 100 * 1024, "... and the backend's peak memory stays under 3x the input ($hwm kB)");
$bg->quit;
$rc = $node->psql('postgres', "\\set VERBOSITY verbose\nSELECT * FROM pgtls_sign_client_csr('app', repeat('A', 2 * 1024 * 1024))",
	stdout => \$out, stderr => \$err);
like($err, qr/ERROR:  54000: csr is larger than 1024 kB/, 'an oversized request: SQLSTATE 54000');

# the crash clean-up removes our own stale temporary files only
my $dead = 999999;
write_file_0600("$dd/pgtls/ca.key.pgtls_tmp.$dead", 'stale');
write_file_0600("$dd/pgtls/notes.txt.pgtls_tmp.$dead", 'not ours');
$node->safe_psql('postgres', 'SELECT count(*) FROM pgtls_enable_ssl()');
ok(!-e "$dd/pgtls/ca.key.pgtls_tmp.$dead", 'a stale temporary file of ours is removed');
ok(-e "$dd/pgtls/notes.txt.pgtls_tmp.$dead", 'a file of the same pattern that is not ours is left alone');

$node->stop;
done_testing();
