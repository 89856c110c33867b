# The audit's TLS verdicts against the wire: for each setting the issue named
# (issue 14), what pgtls_hba_check() says is compared with what
# "openssl s_client -starttls postgres" and psql really get from the server.
# Misses: a curve no client can use, a TLS 1.0-1.1 range, DEFAULT@SECLEVEL=0.
# False alarms: TLS 1.0 at security level 2, weak cipher names that enable
# nothing, an encrypted key whose passphrase command works.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgtlsTest;
use PgtlsAudit;

my $node = sql_tls_cluster('negotiate');
my $dd = $node->data_dir;
my $user = $node->safe_psql('postgres', 'SELECT current_user');
my $c = client_files($node, $user);

sub ssl_findings
{
	my $f = findings($node, qr/^ssl\./);
	return join ' ', map { "$_:" . join(',', sort @{ $f->{$_} }) } sort keys %$f;
}

sub restore
{
	reset_conf($node, qw(ssl_min_protocol_version ssl_max_protocol_version ssl_ciphers ssl_ecdh_curve));
	return;
}

# --- the defaults: nothing to say, TLS 1.3 on the wire, TLS 1.0 refused
is(ssl_findings(), '', 'defaults: no ssl finding');
my $w = s_client($node);
ok($w->{ok} && $w->{protocol} eq 'TLSv1.3', "defaults: the wire negotiates TLSv1.3 ($w->{cipher})");
ok(!s_client($node, '-tls1', '-cipher', 'DEFAULT@SECLEVEL=0')->{ok}, 'defaults: a TLS 1.0 client is refused');

# --- ssl_min_protocol_version = TLSv1 at security level 2: allowed, never offered -> low
set_conf($node, ssl_min_protocol_version => 'TLSv1');
is(ssl_findings(), 'ssl.min_protocol:low', 'min TLSv1 at level 2: low, not high');
like($node->safe_psql('postgres', "SELECT message FROM pgtls_hba_check() WHERE check_id = 'ssl.min_protocol'"),
	qr/OpenSSL refuses TLS 1.0 and 1.1 at security level 2/, 'the reason is given');
ok(!s_client($node, '-tls1', '-cipher', 'DEFAULT@SECLEVEL=0')->{ok}, 'wire: TLS 1.0 is not offered');
ok(!s_client($node, '-tls1_1', '-cipher', 'DEFAULT@SECLEVEL=0')->{ok}, 'wire: TLS 1.1 is not offered');

# --- ... plus DEFAULT@SECLEVEL=0 (no colon): TLS 1.0 really offered -> high
set_conf($node, ssl_ciphers => 'DEFAULT@SECLEVEL=0');
is(ssl_findings(), 'ssl.min_protocol:high ssl.security_level:medium',
	'min TLSv1 with DEFAULT@SECLEVEL=0: TLS 1.0 offered (high), level 0 (medium)');
$w = s_client($node, '-tls1', '-cipher', 'DEFAULT@SECLEVEL=0');
ok($w->{ok} && $w->{protocol} =~ /^TLSv1(\.0)?$/, "wire: a TLS 1.0 client gets through ($w->{cipher})");
like($node->safe_psql('postgres', "SELECT message FROM pgtls_hba_check() WHERE check_id = 'ssl.min_protocol'"),
	qr/negotiated \Q$w->{cipher}\E/, 'the finding names the suite the wire negotiated');
restore();

# --- TLS 1.0 to 1.1 only: no client gets a handshake -> critical
set_conf($node, ssl_min_protocol_version => 'TLSv1', ssl_max_protocol_version => 'TLSv1.1');
is(ssl_findings(), 'ssl.no_handshake:critical', 'TLSv1..TLSv1.1: no handshake possible (critical)');
ok(!s_client($node)->{ok}, 'wire: s_client gets no handshake');
ok(!s_client($node, '-tls1', '-cipher', 'DEFAULT@SECLEVEL=0')->{ok}, 'wire: not even a TLS 1.0 client');
my ($rc, $out, $err) = psql_login($node, $c, $user);
like($err, qr/tlsv1 alert protocol version|unsupported protocol/, 'psql fails on the protocol version');
restore();

# --- a curve TLS 1.3 clients never offer: every handshake fails -> critical
for my $curve (qw(prime192v1 secp224r1))
{
	set_conf($node, ssl_ecdh_curve => $curve);
	is(ssl_findings(), 'ssl.no_handshake:critical', "ssl_ecdh_curve = $curve: no handshake (critical)");
	like($node->safe_psql('postgres', "SELECT message FROM pgtls_hba_check() WHERE check_id = 'ssl.no_handshake'"),
		qr/no suitable key share/, "$curve: the server's own reason");
	ok(!s_client($node)->{ok}, "wire: $curve: s_client gets no handshake");
	($rc, $out, $err) = psql_login($node, $c, $user);
	isnt($rc, 0, "wire: $curve: psql with sslmode=require cannot connect");
	like($err, qr/handshake failure/, "wire: $curve: the client sees a handshake failure");
	restore();
}

# --- a curve OpenSSL will not use: ignored, the default groups negotiate -> low
set_conf($node, ssl_ecdh_curve => 'prime239v1');
is(ssl_findings(), 'ssl.ecdh_curve:low', 'prime239v1: not honoured (low)');
$w = s_client($node);
ok($w->{ok}, 'wire: prime239v1: handshakes work');
like($node->safe_psql('postgres', "SELECT message FROM pgtls_hba_check() WHERE check_id = 'ssl.ecdh_curve'"),
	qr/negotiated \S+ with \Q$w->{temp_key}\E/, "the finding names the group the wire uses ($w->{temp_key})");
restore();

# --- weak names that enable nothing here -> low, never high
set_conf($node, ssl_ciphers => 'HIGH:3DES:eNULL:!aNULL');
is(ssl_findings(), 'ssl.weak_ciphers:low', '3DES and eNULL named but not available: low');
ok(!s_client($node, '-tls1_2', '-cipher', 'eNULL:3DES:@SECLEVEL=0')->{ok}, 'wire: no eNULL or 3DES suite is offered');
ok(s_client($node, '-tls1_2')->{ok}, 'wire: TLS 1.2 still works');
restore();

# --- NULL alone: only the TLS 1.3 suites remain -> TLS 1.2 unavailable (medium)
set_conf($node, ssl_ciphers => 'NULL');
is(ssl_findings(), 'ssl.tls12_unavailable:medium ssl.weak_ciphers:low', 'NULL: TLS 1.2 impossible, nothing weak offered');
ok(!s_client($node, '-tls1_2', '-cipher', 'ALL:COMPLEMENTOFALL:@SECLEVEL=0')->{ok}, 'wire: no TLS 1.2 handshake');
ok(s_client($node, '-tls1_3')->{ok}, 'wire: TLS 1.3 works');
restore();

# --- NULL suites really offered at level 0 -> critical
set_conf($node, ssl_ciphers => 'NULL:@SECLEVEL=0');
like(ssl_findings(), qr/ssl\.weak_ciphers:critical/, 'NULL:@SECLEVEL=0: unencrypted suites offered (critical)');
$w = s_client($node, '-tls1_2', '-cipher', 'NULL:@SECLEVEL=0');
ok($w->{ok} && $w->{cipher} =~ /NULL/, "wire: an unencrypted suite is negotiated ($w->{cipher})");
restore();

# --- anonymous suites really offered -> high
set_conf($node, ssl_ciphers => 'aNULL:@SECLEVEL=0');
like(ssl_findings(), qr/ssl\.weak_ciphers:[a-z,]*high/, 'aNULL:@SECLEVEL=0: anonymous suites offered (high)');
$w = s_client($node, '-tls1_2', '-cipher', 'aNULL:!eNULL:@SECLEVEL=0');
ok($w->{ok} && $w->{cipher} =~ /^(ADH|AECDH)-/, "wire: an anonymous suite is negotiated ($w->{cipher})");
restore();

# --- RC4 matches nothing: the reload is rejected, the old context keeps serving
set_conf($node, ssl_ciphers => 'RC4');
is(ssl_findings(), 'ssl.reload_rejected:critical', 'RC4: the reload is rejected, no weak-cipher finding');
like(slurp_file($node->logfile), qr/could not set the cipher list/, 'the server log says why');
ok(s_client($node)->{ok}, 'wire: the old context still serves');
restore();

# --- a missing ssl_dh_params_file: reloads fall back, a restart fails
set_conf($node, ssl_dh_params_file => 'no-such-dh.pem');
is(ssl_findings(), 'ssl.dh_params:critical', 'missing DH file: critical (restart fails)');
ok(s_client($node)->{ok}, 'wire: the running server still negotiates');
$node->stop;
ok(!$node->start(fail_ok => 1), 'a restart really fails');
like(slurp_file($node->logfile), qr/could not load DH parameters file|could not open DH parameters file/,
	'the server log says why');
$node->append_conf('postgresql.auto.conf', "ssl_dh_params_file = ''\n");
$node->start;

# --- an encrypted key with a working passphrase command: no "will not restart"
my $key = $node->safe_psql('postgres', 'SHOW ssl_key_file');
openssl('pkey', '-in', "$dd/$key", '-aes256', '-passout', 'pass:s3cret', '-out', "$dd/enc.key");
chmod 0600, "$dd/enc.key";
set_conf($node, ssl_key_file => 'enc.key', ssl_passphrase_command => 'echo s3cret');
is(ssl_findings(), 'ssl.not_probed:info ssl.passphrase_command:medium',
	'encrypted key with a passphrase command: medium about reloads, nothing critical');
$node->restart;
($rc, $out, $err) = psql_login($node, $c, $user, sslmode => 'verify-full');
is($out, $user, 'wire: after a restart the server serves TLS with the encrypted key');

$node->stop;
done_testing();
