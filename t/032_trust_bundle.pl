# The trust bundle keeps the CAs of others: a foreign client CA added with
# its CRL (pgtls_trust_add) lets its certificates log in, stays trusted
# across an install and a whole CA rotation, is enforced with the CRLs it
# publishes, and goes with pgtls_trust_remove.  A CA without a CRL would
# lock its clients out: it is refused, and reported when it happens anyway.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PgtlsAudit;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = sql_tls_cluster('trust');
$node->safe_psql('postgres', 'CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN;');
my $dd = $node->data_dir;
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $fca = PostgreSQL::Test::Utils::tempdir;    # the foreign CA's own directory (openssl ca)

sub sql { return sql_result($node, @_); }
sub lit { return pem_literal(@_); }

# --- a foreign client CA (Teleport, a corporate CA) and bob's certificate from it
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$fca/ca.key", '-subj', '/CN=Teleport User CA', '-days', '365',
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
	'-out', "$fca/ca.crt");
my $foreign = slurp_file("$fca/ca.crt");
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$tmp/bob.key", '-subj', '/CN=bob', '-out', "$tmp/bob.csr");
cli_ca_sign($fca, "$tmp/bob.csr", "$tmp/bob.crt", "extendedKeyUsage = clientAuth\nkeyUsage = critical,digitalSignature",
	ca_cert => "$fca/ca.crt", ca_key => "$fca/ca.key", dates => [ '-days', '30' ]);

# The foreign CA's CRL, as it publishes it (valid for $hours hours).
sub foreign_crl
{
	my ($name, $hours) = @_;
	openssl('ca', '-batch', '-config', "$fca/ca.cnf", '-gencrl', '-cert', "$fca/ca.crt", '-keyfile', "$fca/ca.key",
		'-md', 'sha256', '-crlhours', $hours // 24 * 30, '-out', "$tmp/$name.crl");
	return slurp_file("$tmp/$name.crl");
}

# bob verifies the server against pgtls_ca_cert(); the server verifies bob against the bundle
sub bob_dir
{
	return client_dir(slurp_file("$tmp/bob.crt"), slurp_file("$tmp/bob.key"),
		$node->safe_psql('postgres', 'SELECT pgtls_ca_cert()'));
}

sub bob_ok
{
	my ($name) = @_;
	$node->connect_ok(client_connstr(bob_dir(), 'bob') . ' port=' . $node->port, $name,
		sql => 'SELECT current_user', expected_stdout => qr/^bob$/);
	return;
}

sub bob_fails
{
	my ($name, $re) = @_;
	$node->connect_fails(client_connstr(bob_dir(), 'bob') . ' port=' . $node->port, $name, expected_stderr => $re);
	return;
}

sub urgent
{
	return $node->safe_psql('postgres',
		"SELECT coalesce(string_agg(check_id, ' ' ORDER BY check_id), '') FROM pgtls_hba_check() WHERE severity IN ('critical', 'high')");
}

bob_fails('a certificate of a CA the server does not trust is refused', qr/unknown ca/);

# --- added with its CRL (without one it would lock bob out)
my ($rc, $out, $err) = sql('SELECT pgtls_trust_add(' . lit($foreign) . ')');
like($err, qr/ERROR:  CA "CN=Teleport User CA" cannot be trusted without its CRL\nDETAIL:  The server checks CRLs for every CA of a chain/,
	'a foreign CA without its CRL is refused');
($rc, my $fingerprint, $err) = sql('SELECT pgtls_trust_add(' . lit($foreign) . ', ' . lit(foreign_crl('crl1')) . ')');
is($rc, 0, 'the foreign CA is trusted with its CRL') or diag($err);
like($err, qr/NOTICE:  the server trusts CA "CN=Teleport User CA" for client certificates/, '... with a notice of what that means');
is($fingerprint, openssl('x509', '-in', "$fca/ca.crt", '-noout', '-fingerprint', '-sha256') =~ s/^.*=|\s+$//gr,
	'... and its fingerprint is returned');
bob_ok('bob logs in with the foreign CA\'s certificate');
is(scalar(() = slurp_file("$dd/pgtls/ca-bundle.crt") =~ /BEGIN CERTIFICATE/g), 2, 'ssl_ca_file holds both CAs');
is(scalar(() = slurp_file("$dd/pgtls/root.crl") =~ /BEGIN X509 CRL/g), 2, 'ssl_crl_file both CRLs');
is(scalar(() = $node->safe_psql('postgres', 'SELECT pgtls_ca_cert()') =~ /BEGIN CERTIFICATE/g), 1,
	'pgtls_ca_cert() (what clients trust for the server) is still the extension\'s CA alone');
is(urgent(), '', 'the audit finds nothing critical or high');

# --- kept across an install and a rotation
$node->safe_psql('postgres', 'SELECT count(*) FROM pgtls_enable_ssl()');
bob_ok('after pgtls_enable_ssl() installed a new server certificate, bob still logs in');
# the certificate the first pgtls_enable_ssl() installed, replaced by the second, still counts for
# its CA until revoked
($rc, $out, $err) = sql("SELECT * FROM pgtls_ca_rotate('prepare'); SELECT * FROM pgtls_ca_rotate('activate'); "
	  . "SELECT * FROM pgtls_ca_rotate('retire')");
like($err, qr/DETAIL:  1 server certificate \(serial [0-9A-F]{32}: a standby's own, or one an install replaced\)\./,
	'retire names the server certificate an install replaced');
$node->safe_psql('postgres', 'SELECT * FROM pgtls_ca_rotate(\'rollback\'); SELECT * FROM pgtls_ca_rotate(\'rollback\');');
$node->safe_psql('postgres', "SELECT pgtls_revoke(serial, 'superseded') FROM pgtls_certificates WHERE kind = 'server' "
	  . "AND revoked_at IS NULL AND serial <> (SELECT serial FROM pgtls_server_cert_info())");
sub finding
{
	my ($id) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(severity || ': ' || message, E'\\n') FROM pgtls_hba_check() WHERE check_id = '$id'");
}
for my $phase ('prepare', 'activate', 'retire')
{
	$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('$phase')");
	bob_ok("after $phase, bob still logs in");
	is(urgent(), '', "after $phase the audit finds nothing critical or high");
	like(finding('ca.previous_unused'), qr/^low: the previous CA "CN=PostgreSQL pgtls_admin CA" is still trusted, but its last certificate ended on /,
		'... and a previous CA with no live certificate left is reported') if $phase eq 'activate';
}
$node->safe_psql('postgres', 'SELECT pgtls_refresh_crl()');
bob_ok('after pgtls_refresh_crl() too');

# --- the audit's view of the CAs' lifetimes: a CA expiring without a successor, a certificate outliving its CA
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('prepare', days => 200)");
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('activate')");
like(finding('ca.no_successor'), qr/^medium: the active CA "CN=PostgreSQL pgtls_admin CA G4" expires in 200 days, on .*, and no CA is in state next/,
	'an active CA that expires within pgtls_admin.default_days and has no successor is reported');
$node->safe_psql('postgres', <<'SQL');
INSERT INTO pgtls_certificates (serial, kind, role, subject, key_type, not_before, not_after, fingerprint_sha256,
                                certificate, issued_by, issuer_fingerprint)
SELECT '7777', 'client', 'bob', 'CN=bob', 'ec-p256', now(), not_after + interval '1 day', '', '', 'postgres',
       fingerprint_sha256
FROM pgtls_cas WHERE state = 'active'
SQL
like(finding('cert.outlives_ca'), qr/^medium: 1 live certificate expires after the CA that issued it \(first: serial 7777, CA "CN=PostgreSQL pgtls_admin CA G4"\)/,
	'a certificate that outlives its CA is reported');
$node->safe_psql('postgres', "DELETE FROM pgtls_certificates WHERE serial = '7777'");
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('retire', force => true)");

# --- the foreign CA's own revocations are enforced once its new CRL is added
openssl('ca', '-batch', '-config', "$fca/ca.cnf", '-md', 'sha256', '-revoke', "$tmp/bob.crt", '-cert', "$fca/ca.crt", '-keyfile', "$fca/ca.key");
sleep 1;    # a CRL of the same second as the one kept would do, but be plainly newer
($rc, $out, $err) = sql('SELECT pgtls_trust_add(' . lit($foreign) . ', ' . lit(foreign_crl('crl2')) . ')');
is($rc, 0, 'the foreign CA\'s new CRL is added') or diag($err);
bob_fails('... and bob, whom it revoked, is refused', qr/certificate revoked/);
($rc, $out, $err) = sql('SELECT pgtls_trust_add(' . lit($foreign) . ', ' . lit(slurp_file("$tmp/crl1.crl")) . ')');
like($err, qr/crl of CA "CN=Teleport User CA" is older than the one kept/, 'the older CRL cannot come back');

# --- two pgtls_trust_add at once: the older CRL does not win by committing last
sleep 1;
my $crl3 = foreign_crl('crl3');
sleep 1;
my $crl4 = foreign_crl('crl4');
my $bg = $node->background_psql('postgres', on_error_stop => 0);
$bg->{stdin} .= 'DO $$ BEGIN PERFORM pgtls_trust_add(' . lit($foreign) . ', ' . lit($crl4)
  . "); PERFORM pg_sleep(3); END \$\$;\n";
$bg->{run}->pump_nb();
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND query LIKE '%pgtls_trust_add%'")
  or die 'the first pgtls_trust_add did not reach its pause';
($rc, $out, $err) = sql('SELECT pgtls_trust_add(' . lit($foreign) . ', ' . lit($crl3) . ')');
like($err, qr/crl of CA "CN=Teleport User CA" is older than the one kept/,
	'a CRL older than the one a concurrent pgtls_trust_add commits meanwhile is refused');
$bg->quit;
is($node->safe_psql('postgres', "SELECT crl FROM pgtls_trusted_cas WHERE subject = 'CN=Teleport User CA'") =~ s/\s+$//r,
	$crl4 =~ s/\s+$//r, '... and the newer CRL is the one kept');

# --- removed, in any spelling of its fingerprint
($rc, $out, $err) = sql("SELECT pgtls_trust_remove('" . lc($fingerprint =~ s/://gr) . "')");
is($out, 't', 'pgtls_trust_remove takes the fingerprint without colons, in lower case') or diag($err);
is(scalar(() = slurp_file("$dd/pgtls/ca-bundle.crt") =~ /BEGIN CERTIFICATE/g), 1, '... and the bundle holds our CA alone');
($rc, $out, $err) = sql("SELECT pgtls_trust_remove('$fingerprint')");
like($err, qr/no trusted CA has fingerprint \Q$fingerprint\E/, '... a second time there is nothing to remove');

# --- reported: a CRL about to expire, and a CA whose CRL went missing
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$tmp/corp.key", '-subj', '/CN=Corp CA', '-days', '365',
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
	'-out', "$tmp/corp.crt");
current_crl($tmp, "$tmp/corp.crt", "$tmp/corp.key", "$tmp/corp.crl");
my $short = PgtlsAudit::expired_crl($tmp, "$tmp/corp.crt", "$tmp/corp.key", "$tmp/corp-short.crl",
	last => strftime_utc(time - 60), next => strftime_utc(time + 6 * 3600));
$node->safe_psql('postgres', 'SELECT pgtls_trust_add(' . lit(slurp_file("$tmp/corp.crt")) . ', ' . lit(slurp_file($short)) . ')');
like(urgent(), qr/^trust\.crl_expiring$/, 'a trusted CA\'s CRL that expires within hours is reported (high)');
$node->safe_psql('postgres', "UPDATE pgtls_trusted_cas SET crl = NULL WHERE subject = 'CN=Corp CA'");
($rc, $out, $err) = sql('SELECT pgtls_refresh_crl()');
like($err, qr/WARNING:  pgtls_admin: no CRL for the trusted CA "CN=Corp CA"/, 'writing the trust files without its CRL warns');
like(urgent(), qr/\bca\.crl_missing\b/, '... and the audit reports it (critical)');
$node->safe_psql('postgres', "SELECT pgtls_trust_remove(fingerprint_sha256) FROM pgtls_trusted_cas");

# --- an ssl_ca_file of the administrator's own is never overwritten silently
write_file_0600("$dd/mine.crt", $foreign);
set_conf($node, ssl_ca_file => 'mine.crt');
($rc, $out, $err) = sql("SELECT * FROM pgtls_ca_rotate('prepare')");
like($err, qr/cannot prepare a CA rotation while ssl_ca_file is "mine.crt"/, 'a rotation is refused while ssl_ca_file is not ours');
($rc, $out, $err) = sql('SELECT count(*) FROM pgtls_enable_ssl()');
like($err, qr/WARNING:  ssl_ca_file "mine.crt" trusted CA "CN=Teleport User CA", which the trust bundle does not hold/,
	'an install that makes the bundle ssl_ca_file names the CA it no longer trusts');
is($node->safe_psql('postgres', 'SHOW ssl_ca_file'), 'pgtls/ca-bundle.crt', '... and the bundle is ssl_ca_file');

# --- a cluster set up before the bundle existed (ssl_ca_file = the CA file, no CRL): a phase points it at the bundle
set_conf($node, ssl_ca_file => 'pgtls/ca.crt', ssl_crl_file => '');
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('prepare')");
is($node->safe_psql('postgres', 'SHOW ssl_ca_file'), 'pgtls/ca-bundle.crt', 'a rotation makes the trust bundle ssl_ca_file, and reloads');
my $dave = client_files($node, 'alice');
$node->connect_ok(client_connstr($dave, 'alice') . ' port=' . $node->port, '... where certificates log in',
	sql => 'SELECT current_user', expected_stdout => qr/^alice$/);
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('rollback')");

sub strftime_utc
{
	my @t = gmtime($_[0]);
	return sprintf('%04d%02d%02d%02d%02d%02dZ', $t[5] + 1900, $t[4] + 1, @t[ 3, 2, 1, 0 ]);
}

$node->stop;
done_testing();
