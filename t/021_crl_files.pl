# Every CRL the server reads, judged the way its store picks them, checked
# against real logins: an expired CRL that is not the first in ssl_crl_file,
# CRLs in ssl_crl_dir (hashed names, the first missing suffix ends the
# scan), a trusted CA without any CRL, and certificates in the CRL file that
# the server trusts as client CAs.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use File::Copy;
use File::Path qw(make_path remove_tree);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgtlsTest;
use PgtlsAudit;

my $node = sql_tls_cluster('crl');
my $dd = $node->data_dir;
my $user = $node->safe_psql('postgres', 'SELECT current_user');
my $c = client_files($node, $user);
my $tmp = PostgreSQL::Test::Utils::tempdir;
my ($ca, $cakey) = ("$dd/pgtls/ca.crt", "$dd/pgtls/ca.key");
my $ours_current = $node->safe_psql('postgres', 'SHOW ssl_crl_file');

# another CA, its CRL, and a client certificate for the same role from it
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$tmp/other.key", '-subj', '/CN=Other CA', '-days', '100',
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign,cRLSign',
	'-out', "$tmp/other.crt");
current_crl($tmp, "$tmp/other.crt", "$tmp/other.key", "$tmp/other.crl");
expired_crl($tmp, $ca, $cakey, "$tmp/ours-expired.crl");
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$tmp/o.key", '-subj', "/CN=$user", '-out', "$tmp/o.csr");
cli_ca_sign($tmp, "$tmp/o.csr", "$tmp/o.crt", "extendedKeyUsage = clientAuth",
	ca_cert => "$tmp/other.crt", ca_key => "$tmp/other.key", dates => [ '-days', '30' ]);
my $oc = client_dir(slurp_file("$tmp/o.crt"), slurp_file("$tmp/o.key"), slurp_file($ca));

sub crl_findings
{
	my $f = findings($node, qr/^(crl|ca\.crl)/);
	return join ' ', map { "$_:" . join(',', sort @{ $f->{$_} }) } sort keys %$f;
}

sub login
{
	my ($dir, $name) = @_;
	my ($rc, $out, $err) = psql_login($node, $dir // $c, $user);
	return $rc == 0 ? 'ok' : $err;
}

sub cat_files
{
	my ($out, @in) = @_;
	open my $fh, '>', $out or die;
	print $fh slurp_file($_) for @in;
	close $fh;
	return $out;
}

my $hash = openssl('crl', '-hash', '-noout', '-in', "$tmp/ours-expired.crl");
chomp $hash;

is(crl_findings(), '', 'our current CRL: no CRL finding');
is(login(), 'ok', 'wire: the certificate logs in');

# --- an expired CRL of our CA, second in the file
cat_files("$dd/mixed.crl", "$tmp/other.crl", "$tmp/ours-expired.crl");
set_conf($node, ssl_crl_file => 'mixed.crl');
is(crl_findings(), 'crl.expired:critical', 'expired CRL second in ssl_crl_file: critical');
like(login(), qr/certificate expired/, 'wire: every certificate login under that CA fails');

# --- an expired CRL next to a current one of the same CA: the current one wins
cat_files("$dd/both.crl", "$tmp/ours-expired.crl", "$dd/$ours_current");
set_conf($node, ssl_crl_file => 'both.crl');
is(crl_findings(), '', 'expired and current CRL of one CA: nothing to say');
is(login(), 'ok', 'wire: the login works');

# --- ssl_crl_dir: <hash>.r0 expired
make_path("$dd/crls");
copy("$tmp/ours-expired.crl", "$dd/crls/$hash.r0") or die;
set_conf($node, ssl_crl_file => '', ssl_crl_dir => 'crls');
is(crl_findings(), 'crl.expired:critical', 'expired CRL in ssl_crl_dir: critical');
like(login(), qr/certificate expired/, 'wire: the login fails');

# --- .r0 expired, .r1 current: the server reads both and picks the current one
copy("$dd/$ours_current", "$dd/crls/$hash.r1") or die;
is(crl_findings(), '', 'expired .r0 and current .r1: nothing to say');
is(login(), 'ok', 'wire: the login works without a reload');

# --- .r1 without .r0: never read; a misnamed file: never read
unlink "$dd/crls/$hash.r0";
copy("$dd/$ours_current", "$dd/crls/ours.crl") or die;
is(crl_findings(), 'crl.dir_ignored:high,high crl.missing:critical',
	'.r1 without .r0 and a misnamed file: both ignored, the CA has no CRL');
like(login(), qr/unknown ca/, 'wire: the login fails (unable to get certificate CRL)');
remove_tree("$dd/crls");
reset_conf($node, 'ssl_crl_dir');
set_conf($node, ssl_crl_file => $ours_current);

# --- a second trusted CA without any CRL
cat_files("$dd/two-cas.crt", $ca, "$tmp/other.crt");
set_conf($node, ssl_ca_file => 'two-cas.crt');
is(crl_findings(), 'crl.missing:critical', 'a trusted CA without CRL: critical');
like($node->safe_psql('postgres', "SELECT message FROM pgtls_hba_check() WHERE check_id = 'crl.missing'"),
	qr/"CN=Other CA"/, 'the finding names the CA');
like(login($oc), qr/unknown ca/, "wire: that CA's certificates fail");
is(login(), 'ok', "wire: our CA's certificates still log in");
set_conf($node, ssl_ca_file => 'pgtls/ca.crt');

# --- a certificate in ssl_crl_file is trusted like ssl_ca_file
like(login($oc), qr/unknown ca/, 'wire: without it, the other CA is not trusted');
cat_files("$dd/with-cert.crl", "$dd/$ours_current", "$tmp/other.crt", "$tmp/other.crl");
set_conf($node, ssl_crl_file => 'with-cert.crl');
is(crl_findings(), 'crl.trusts_certificate:medium', 'a certificate in ssl_crl_file: medium');
is(login($oc), 'ok', 'wire: a certificate from the CA in ssl_crl_file logs in');
set_conf($node, ssl_crl_file => $ours_current);

$node->stop;
done_testing();
