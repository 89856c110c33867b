# An intermediate CA under an offline root made with the openssl CLI: the
# key stays in the data directory (pgtls_ca_request), the root's signature
# is adopted with its chain (pgtls_ca_set_certificate), the root and its CRL
# go into the trust bundle, issued certificates and the server certificate
# file carry the intermediate, so clients that trust only the root log in;
# the next intermediate replaces it through a rotation; an intermediate made
# elsewhere is adopted from files with its chain.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PgtlsAudit;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('intermediate');
$node->init;
$node->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
write_cert_only_hba($node);
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgtls_admin; CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN;');
my $dd = $node->data_dir;
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $root_dir = PostgreSQL::Test::Utils::tempdir;

sub sql { return sql_result($node, @_); }
sub lit { return pem_literal(@_); }

# --- the offline root, made and kept with the openssl CLI
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-384', '-nodes',
	'-keyout', "$root_dir/root.key", '-subj', '/CN=Offline Root', '-days', '3650',
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
	'-out', "$root_dir/root.crt");
my $root = slurp_file("$root_dir/root.crt");
my $ca_ext = "basicConstraints = critical,CA:TRUE,pathlen:0\nkeyUsage = critical,keyCertSign,cRLSign\n"
  . "subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid";

# The root signs a request the way an offline ceremony does.
sub root_signs
{
	my ($csr_pem, $name) = @_;
	write_file_0600("$tmp/$name.csr", $csr_pem);
	cli_ca_sign($root_dir, "$tmp/$name.csr", "$tmp/$name.crt", $ca_ext,
		ca_cert => "$root_dir/root.crt", ca_key => "$root_dir/root.key", dates => [ '-days', '1000' ]);
	return slurp_file("$tmp/$name.crt") =~ s/.*?(-----BEGIN CERTIFICATE-----)/$1/sr;
}

# --- the request: a CSR out, the key stays in the data directory
my ($rc, $csr, $err) = sql("SELECT pgtls_ca_request('CN=Acme DB Intermediate')");
is($rc, 0, 'pgtls_ca_request returns a request') or diag($err);
my $csr_text = openssl('req', '-in', write_file_0600("$tmp/check.csr", "$csr\n"), '-noout', '-verify', '-subject', '-text');
like($csr_text, qr/^subject=CN = Acme DB Intermediate$/m, '... for the subject asked');
like($csr_text, qr/CA:TRUE(?s:.*)Certificate Sign, CRL Sign/, '... for a CA (openssl verified its signature)');
is(sprintf('%04o', (stat("$dd/pgtls/ca-request.key"))[2] & 07777), '0600', '... its key is kept 0600 in the data directory');
unlike(slurp_file($node->logfile), qr/PRIVATE KEY/, '... and never logged');
my $inter1 = root_signs("$csr\n", 'inter1');

# --- adopting it needs the root, and a CRL of the root
($rc, my $out, $err) = sql('SELECT pgtls_ca_set_certificate(' . lit($inter1) . ')');
like($err, qr/chain does not reach a root: nothing in it or among the trusted CAs issued "CN=Acme DB Intermediate"/,
	'the intermediate alone is refused: its root is unknown');
($rc, $out, $err) = sql('SELECT pgtls_ca_set_certificate(' . lit($inter1 . $root) . ')');
like($err, qr/no CRL of "CN=Offline Root"\nDETAIL:  The server checks CRLs for every CA of a chain/,
	'... and with the root but without the root\'s CRL: the server would refuse every certificate');
current_crl($tmp, "$root_dir/root.crt", "$root_dir/root.key", "$tmp/root1.crl");
($rc, $out, $err) = sql('SELECT pgtls_trust_add(' . lit($root) . ', ' . lit(slurp_file("$tmp/root1.crl")) . ')');
is($rc, 0, 'the root and its CRL are imported with pgtls_trust_add') or diag($err);
($rc, $out, $err) = sql('SELECT pgtls_ca_set_certificate(' . lit($inter1) . ')');
is($rc, 0, 'the signed intermediate is adopted, its root found among the trusted CAs') or diag($err);
like($err, qr/intermediate CA "CN=Acme DB Intermediate" is the active CA/, '... as the active CA, there being none');
ok(!-e "$dd/pgtls/ca-request.key", '... and the request\'s key became the CA key');
is($node->safe_psql('postgres', "SELECT state || ' ' || intermediate FROM pgtls_cas"), 'active true', 'pgtls_cas shows it');

# --- TLS on; the server certificate file carries the intermediate
$node->safe_psql('postgres', 'SELECT count(*) FROM pgtls_enable_ssl()');
my $showcerts = s_client($node, '-showcerts')->{out};
is(scalar(() = $showcerts =~ /BEGIN CERTIFICATE/g), 2, 'the server presents its certificate and the intermediate');
like($showcerts, qr/1 s:CN = Acme DB Intermediate\n\s+i:CN = Offline Root/, '... which the root issued');

# --- a client that trusts only the root
sub root_only_client
{
	my ($role) = @_;
	my ($cert, $key, $ca) = split /\x01/, $node->safe_psql('postgres',
		"SELECT certificate || '\x01' || private_key || '\x01' || ca_certificate FROM pgtls_issue_client('$role')");
	return (client_dir($cert, $key, $root), $cert, $ca);
}
my ($alice, $alice_cert, $alice_ca) = root_only_client('alice');
is(scalar(() = $alice_cert =~ /BEGIN CERTIFICATE/g), 2, 'an issued certificate comes with the intermediate');
like($alice_ca, qr/\A-----BEGIN CERTIFICATE-----(?s:.*)-----BEGIN CERTIFICATE-----/, '... and ca_certificate holds the intermediate and the root');
$node->connect_ok(client_connstr($alice, 'alice') . ' port=' . $node->port, 'alice logs in trusting only the root (verify-full)',
	sql => 'SELECT current_user', expected_stdout => qr/^alice$/);
my $csr_key = "$tmp/bob.key";
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', $csr_key, '-subj', '/CN=bob', '-out', "$tmp/bob.csr");
my $bob_cert = $node->safe_psql('postgres', 'SELECT certificate FROM pgtls_sign_client_csr(\'bob\', ' . lit(slurp_file("$tmp/bob.csr")) . ')');
my $bob = client_dir($bob_cert, slurp_file($csr_key), $root);
$node->connect_ok(client_connstr($bob, 'bob') . ' port=' . $node->port, 'bob, with a signed request, too',
	sql => 'SELECT current_user', expected_stdout => qr/^bob$/);
is($node->safe_psql('postgres', "SELECT coalesce(string_agg(check_id, ' '), '') FROM pgtls_hba_check() WHERE severity IN ('critical', 'high')"),
	'', 'the audit finds nothing critical or high');

# revocation under the intermediate, with the root's CRL beside its own
my $alice_serial = $node->safe_psql('postgres', "SELECT serial FROM pgtls_certificates WHERE role = 'alice'");
$node->safe_psql('postgres', "SELECT pgtls_revoke('$alice_serial')");
$node->connect_fails(client_connstr($alice, 'alice') . ' port=' . $node->port, 'a revoked certificate of the intermediate is refused',
	expected_stderr => qr/certificate revoked/);
# a newer root CRL replaces the one kept; an older one is refused
sleep 1;
current_crl($tmp, "$root_dir/root.crt", "$root_dir/root.key", "$tmp/root2.crl");
($rc, $out, $err) = sql('SELECT pgtls_trust_add(' . lit($root) . ', ' . lit(slurp_file("$tmp/root2.crl")) . ')');
is($rc, 0, 'a newer CRL of the root is imported') or diag($err);
($rc, $out, $err) = sql('SELECT pgtls_trust_add(' . lit($root) . ', ' . lit(slurp_file("$tmp/root1.crl")) . ')');
like($err, qr/crl of CA "CN=Offline Root" is older than the one kept/, '... an older one is refused');
($rc, $out, $err) = sql("SELECT pgtls_trust_remove((SELECT fingerprint_sha256 FROM pgtls_trusted_cas))");
like($err, qr/CA "CN=Offline Root" is above pgtls_admin's active CA "CN=Acme DB Intermediate"/, 'the root cannot be removed while the CA is under it');
$node->connect_ok(client_connstr($bob, 'bob') . ' port=' . $node->port, 'bob still logs in',
	sql => 'SELECT current_user', expected_stdout => qr/^bob$/);

# --- the next intermediate, through a rotation
($rc, $out, $err) = sql("SELECT * FROM pgtls_ca_rotate('prepare')");
like($err, qr/the active CA "CN=Acme DB Intermediate" is an intermediate CA under an offline root\n(?s:.*)HINT:  Make the request with pgtls_ca_request/,
	'prepare says an intermediate\'s successor comes from its root');
$csr = $node->safe_psql('postgres', "SELECT pgtls_ca_request('CN=Acme DB Intermediate 2')");
my $inter2 = root_signs("$csr\n", 'inter2');
($rc, $out, $err) = sql('SELECT pgtls_ca_set_certificate(' . lit($inter2 . $root) . ')');
is($rc, 0, 'the second intermediate is adopted') or diag($err);
like($err, qr/CA "CN=Acme DB Intermediate 2" is next/, '... as the next CA');
$node->connect_ok(client_connstr($bob, 'bob') . ' port=' . $node->port, 'bob logs in beside the next intermediate',
	sql => 'SELECT current_user', expected_stdout => qr/^bob$/);
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('activate')");
like(s_client($node, '-showcerts')->{out}, qr/0 s:CN = localhost\n\s+i:CN = Acme DB Intermediate 2\n(?s:.*)1 s:CN = Acme DB Intermediate 2\n\s+i:CN = Offline Root/,
	'after activate the server presents a certificate of the second intermediate, with it');
my ($alice2) = root_only_client('alice');
$node->connect_ok(client_connstr($alice2, 'alice') . ' port=' . $node->port, 'a certificate of the second intermediate logs in trusting only the root',
	sql => 'SELECT current_user', expected_stdout => qr/^alice$/);
$node->connect_ok(client_connstr($bob, 'bob') . ' port=' . $node->port, '... and bob\'s of the first, while it is previous',
	sql => 'SELECT current_user', expected_stdout => qr/^bob$/);
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('retire', force => true)");
$node->connect_fails(client_connstr($bob, 'bob') . ' port=' . $node->port, 'after retire the first intermediate\'s certificate is refused',
	expected_stderr => qr/SSL error/);
$node->connect_ok(client_connstr($alice2, 'alice') . ' port=' . $node->port, '... the second\'s logs in',
	sql => 'SELECT current_user', expected_stdout => qr/^alice$/);
is($node->safe_psql('postgres', "SELECT coalesce(string_agg(check_id, ' '), '') FROM pgtls_hba_check() WHERE severity IN ('critical', 'high')"),
	'', 'the audit finds nothing critical or high after the rotation');

# --- an intermediate made elsewhere, adopted from files with its chain
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$dd/elsewhere.key", '-subj', '/CN=Elsewhere Intermediate', '-out', "$tmp/elsewhere.csr");
chmod 0600, "$dd/elsewhere.key";
write_file_0600("$dd/elsewhere.crt", root_signs(slurp_file("$tmp/elsewhere.csr"), 'elsewhere') . $root);
($rc, $out, $err) = sql("SELECT length(pgtls_import_ca_files('elsewhere.crt', 'elsewhere.key', replace => true)) > 0");
is($out, 't', 'pgtls_import_ca_files adopts an intermediate with its chain') or diag($err);
$node->safe_psql('postgres', 'SELECT count(*) FROM pgtls_enable_ssl()');
my ($carol_dir) = root_only_client('alice');
$node->connect_ok(client_connstr($carol_dir, 'alice') . ' port=' . $node->port, '... and its certificates log in trusting only the root',
	sql => 'SELECT current_user', expected_stdout => qr/^alice$/);

$node->stop;
done_testing();
