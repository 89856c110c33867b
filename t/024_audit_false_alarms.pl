# Findings that used to be false alarms, each checked against a real login:
# a server certificate from another CA than the client certificates
# (information, not a fault), a server certificate without subjectAltName
# that libpq accepts through its CN (low) or does not (medium), and a SHA-1
# self-signed root, which OpenSSL accepts (pgtls_import_ca refuses it as
# its own policy, and says so).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgtlsTest;
use PgtlsAudit;

my $node = sql_tls_cluster('alarms');
my $dd = $node->data_dir;
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $user = $node->safe_psql('postgres', 'SELECT current_user');
my $c = client_files($node, $user);
my @ec = ('ec', '-pkeyopt', 'ec_paramgen_curve:P-256');

sub finding
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(severity || ': ' || message, E'\\n') FROM pgtls_hba_check() WHERE check_id = '$id'");
}

sub make_ca
{
	my ($name, %o) = @_;
	openssl('req', '-x509', '-newkey', @{ $o{key} // \@ec }, '-nodes', '-keyout', "$tmp/$name.key",
		'-subj', "/CN=$name", '-days', '30', '-' . ($o{md} // 'sha256'),
		'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign,cRLSign',
		'-out', "$tmp/$name.crt");
	return;
}

# server certificate signed by $ca with $ext, installed as server-<name>.crt/.key
sub server_cert
{
	my ($name, $ca, $ext, $cn) = @_;
	openssl('req', '-new', '-newkey', @ec, '-nodes', '-keyout', "$dd/$name.key",
		'-subj', "/CN=" . ($cn // 'localhost'), '-out', "$tmp/$name.csr");
	chmod 0600, "$dd/$name.key";
	cli_ca_sign($tmp, "$tmp/$name.csr", "$dd/$name.crt", $ext,
		ca_cert => "$tmp/$ca.crt", ca_key => "$tmp/$ca.key", dates => [ '-days', '20' ]);
	return;
}

sub login
{
	my ($root, %o) = @_;
	my $conn = "host=" . ($o{host} // 'localhost') . " hostaddr=127.0.0.1 port=" . $node->port
	  . " dbname=postgres sslmode=verify-full sslrootcert=$root sslcert=$c/postgresql.crt"
	  . " sslkey=$c/postgresql.key user=$user";
	my ($out, $err) = ('', '');
	IPC::Run::run([ $node->installed_command('psql'), '-XAtq', '-d', $conn, '-c', 'SELECT 1' ],
		'<', \'', '>', \$out, '2>', \$err);
	chomp $out;
	return $out eq '1' ? 'ok' : $err;
}

# --- the server certificate from a public-style CA, client certificates from ours
make_ca('ServerCA');
server_cert('srv', 'ServerCA', "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1");
set_conf($node, ssl_cert_file => 'srv.crt', ssl_key_file => 'srv.key');
like(finding('cert.chain'), qr/^info: the server certificate does not chain to ssl_ca_file or the pgtls_admin CA/,
	'a server certificate from another CA: information, not a fault');
is(login("$tmp/ServerCA.crt"), 'ok',
	"wire: verify-full with the server CA's root, and our client certificate, logs in");

# a broken ssl_cert_file chain is a fault
make_ca('Unrelated');
open my $fh, '>>', "$dd/srv.crt" or die;
print $fh slurp_file("$tmp/Unrelated.crt");
close $fh;
like(finding('cert.chain'), qr/^medium: the certificates in ssl_cert_file .* do not form a chain/,
	'certificates in ssl_cert_file that are not a chain: medium');

# --- no subjectAltName: libpq falls back to the CN
server_cert('nosan', 'ServerCA', "extendedKeyUsage = serverAuth");
set_conf($node, ssl_cert_file => 'nosan.crt', ssl_key_file => 'nosan.key', listen_addresses => 'localhost');
$node->restart;
like(finding('cert.san_missing'), qr/^low: the server certificate has no subjectAltName: libpq and most drivers fall back to its CN "localhost"/,
	'no SAN, CN = the name the server listens on: low');
is(login("$tmp/ServerCA.crt"), 'ok', 'wire: libpq accepts the CN for host=localhost');
set_conf($node, listen_addresses => '127.0.0.1');
$node->restart;
like(finding('cert.san_missing'), qr/^medium: the server listens on "127.0.0.1" .* CN "localhost"/,
	'no SAN, listening on an address the CN does not name: medium');
like(login("$tmp/ServerCA.crt", host => '127.0.0.1'), qr/does not match host name "127.0.0.1"/,
	'wire: libpq refuses host=127.0.0.1');

# a DNS-only SAN: libpq ignores the CN for DNS names, but falls back to it for an IP address
server_cert('dnsonly', 'ServerCA', "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:db.example.com", '127.0.0.1');
set_conf($node, ssl_cert_file => 'dnsonly.crt', ssl_key_file => 'dnsonly.key');
is(finding('cert.san_missing'), '', 'SAN without IP entries, CN 127.0.0.1: libpq 15 accepts it for 127.0.0.1');
is(login("$tmp/ServerCA.crt", host => '127.0.0.1'), 'ok', 'wire: it does');
reset_conf($node, qw(ssl_cert_file ssl_key_file));
$node->safe_psql('postgres', 'SELECT count(*) FROM pgtls_enable_ssl()');

# --- a SHA-1 self-signed root: OpenSSL accepts it; our refusal is policy
make_ca('OldRoot', key => [ 'rsa:2048' ], md => 'sha1');
my ($rc, $out, $err) = $node->psql('postgres',
	"SELECT pgtls_import_ca(pg_read_file('$tmp/OldRoot.crt'), pg_read_file('$tmp/OldRoot.key'), replace => true)",
	extra_params => [ '-v', 'VERBOSITY=verbose' ]);
like($err, qr/signed with the weak digest SHA1/, 'pgtls_import_ca refuses a SHA-1 root');
like($err, qr/This is pgtls_admin's policy, not OpenSSL's/, '... and says it is its own policy');
unlike($err, qr/security level 2 refuses such a CA/, 'no claim about OpenSSL refusing it');

# the claim checked: a client certificate (SHA-256) under that root logs in
openssl('req', '-new', '-newkey', @ec, '-nodes', '-keyout', "$tmp/u.key", '-subj', "/CN=$user",
	'-out', "$tmp/u.csr");
cli_ca_sign($tmp, "$tmp/u.csr", "$tmp/u.crt", 'extendedKeyUsage = clientAuth',
	ca_cert => "$tmp/OldRoot.crt", ca_key => "$tmp/OldRoot.key", dates => [ '-days', '5' ]);
open $fh, '>', "$dd/roots.crt" or die;
print $fh slurp_file("$dd/pgtls/ca.crt"), slurp_file("$tmp/OldRoot.crt");
close $fh;
current_crl($tmp, "$tmp/OldRoot.crt", "$tmp/OldRoot.key", "$tmp/old.crl");
open $fh, '>', "$dd/crls.crl" or die;
print $fh slurp_file($dd . '/' . $node->safe_psql('postgres', 'SHOW ssl_crl_file')), slurp_file("$tmp/old.crl");
close $fh;
set_conf($node, ssl_ca_file => 'roots.crt', ssl_crl_file => 'crls.crl');
my $u = client_dir(slurp_file("$tmp/u.crt"), slurp_file("$tmp/u.key"), slurp_file("$dd/pgtls/ca.crt"));
($rc, $out, $err) = psql_login($node, $u, $user);
is("$rc $out", "0 $user", 'wire: a certificate under a SHA-1 self-signed root logs in at security level 2');

$node->stop;
done_testing();
