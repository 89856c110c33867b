# A registry with a million revocations: pgtls_revoke rebuilds the CRL, the
# server enforces it, pgtls_crl() returns it and the audit reads it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $n = 1_000_000;
my $node = sql_tls_cluster('million');
$node->safe_psql('postgres', 'CREATE ROLE user1 LOGIN');
my $dir = client_files($node, 'user1');
my $serial = uc(openssl('x509', '-in', "$dir/postgresql.crt", '-noout', '-serial') =~ s/^serial=|\s+$//gr);

# A million revoked rows, as if issued and revoked over the years.
my $t0 = time;
$node->safe_psql('postgres', <<"SQL");
INSERT INTO pgtls_certificates (serial, kind, role, subject, key_type, not_before, not_after,
                                fingerprint_sha256, certificate, issued_by, revoked_at, revocation_reason)
SELECT upper('4' || substr(md5(g::text), 1, 31)), 'client', 'user1', 'CN=user1', 'ec-p256',
       now() - interval '1 day', now() + interval '300 days', '', '', 'postgres',
       now() - (g % 1000) * interval '1 minute', CASE WHEN g % 3 = 0 THEN 'keyCompromise' ELSE 'unspecified' END
FROM generate_series(1, $n) g
SQL
note(sprintf('inserted %d revoked rows in %.1f s', $n, time - $t0));

$t0 = time;
is($node->safe_psql('postgres', "SELECT pgtls_revoke('$serial', 'keyCompromise')"), 't',
	'pgtls_revoke with a million revocations recorded');
my $revoke_s = time - $t0;
note(sprintf('pgtls_revoke: %.2f s', $revoke_s));
$node->connect_fails(client_connstr($dir, 'user1'), 'the server enforces the new CRL',
	expected_stderr => qr/certificate revoked/);

$t0 = time;
my $crl = $node->safe_psql('postgres', 'SELECT pgtls_crl()');
note(sprintf('pgtls_crl(): %.2f s, %d bytes', time - $t0, length($crl)));
my $tmp = PostgreSQL::Test::Utils::tempdir;
write_file_0600("$tmp/root.crl", "$crl\n");
my ($stdout, $stderr);
IPC::Run::run([ 'openssl', 'crl', '-in', "$tmp/root.crl", '-CAfile', "$dir/root.crt", '-noout', '-text' ],
	'>', \$stdout, '2>', \$stderr);
like($stderr, qr/verify OK/, 'openssl verifies the CRL against the CA');
my $entries = () = $stdout =~ /Serial Number: /g;
is($entries, $n + 1, "the CRL lists all $n + 1 serials");
like($stdout, qr/Serial Number: $serial\n\s+Revocation Date: .*\n\s+CRL entry extensions:\n\s+X509v3 CRL Reason Code: \n\s+Key Compromise/,
	'... with the real certificate and its reason');

$t0 = time;
my $findings = $node->safe_psql('postgres', "SELECT string_agg(check_id, ',') FROM pgtls_hba_check()");
note(sprintf('pgtls_hba_check(): %.2f s', time - $t0));
unlike($findings, qr/crl|file\./, 'the audit reads the million-entry CRL and finds it complete');

$node->stop;
done_testing();
