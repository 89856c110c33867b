# Registry-enforced logins against an attacker and against transactions
# that do not end the simple way: certificates forged with the CA key
# (without an authority key id, or under a live certificate's serial),
# revocations and issuances undone by ROLLBACK TO, an exception block or
# ROLLBACK PREPARED, prepared revocations that must stay in the CRL, a
# delegated issuer who tries to overflow the set of live certificates, and
# a renamed role whose issuer revokes its certificate.  Every verdict is a
# real login.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('live');
$node->init;
$node->append_conf('postgresql.conf', <<'CONF');
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'pgtls_admin'
pgtls_admin.crl_validity = '1h'
pgtls_admin.max_certificates = 1000
max_prepared_transactions = 4
CONF
write_cert_only_hba($node);
$node->start;
$node->safe_psql('postgres', <<'SQL');
CREATE EXTENSION pgtls_admin;
SELECT length(pgtls_init_ca()) > 0;
SELECT count(*) FROM pgtls_enable_ssl();
CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN;
CREATE ROLE issuer LOGIN;
GRANT alice, carol TO issuer WITH ADMIN OPTION;
GRANT EXECUTE ON FUNCTION pgtls_issue_client(name, int, text, text, interval), pgtls_revoke(text, text, bool) TO issuer;
SQL

sub serial_of
{
	my ($d) = @_;
	return uc(openssl('x509', '-in', "$d/postgresql.crt", '-noout', '-serial') =~ s/^serial=|\s+$//gr);
}

sub logs_in
{
	my ($dir, $user) = @_;
	my ($out, $err);
	my $rc = $node->psql('postgres', 'SELECT current_user', connstr => client_connstr($dir, $user),
		stdout => \$out, stderr => \$err);
	return $rc == 0 && $out eq $user;
}

# Within $secs seconds, does the login come to succeed ($want 1) or fail (0)?
sub comes_to
{
	my ($dir, $user, $want, $secs) = @_;
	for (1 .. $secs * 10)
	{
		return 1 if logs_in($dir, $user) == $want;
		usleep(100_000);
	}
	return 0;
}

sub set_enforce
{
	my ($mode) = @_;
	$node->append_conf('postgresql.conf', "pgtls_admin.enforce = $mode\n");
	$node->reload;
	$node->poll_query_until('postgres', "SELECT current_setting('pgtls_admin.enforce') = '$mode'")
	  or die "enforce = $mode not in effect";
	return;
}

my %cert = map { $_ => client_files($node, $_) } qw(alice bob);
my $ca_cert = $node->data_dir . '/pgtls/ca.crt';
my $ca_key = $node->data_dir . '/pgtls/ca.key';

# --- certificates forged with the CA key
sub forge
{
	my ($user, $ext, $serial) = @_;
	my $d = PostgreSQL::Test::Utils::tempdir;
	openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', "$d/postgresql.key", '-subj', "/CN=$user", '-out', "$d/req.csr");
	chmod 0600, "$d/postgresql.key";
	if (defined $serial)
	{
		write_file_0600("$d/index.txt", '');
		write_file_0600("$d/serial", "$serial\n");
	}
	cli_ca_sign($d, "$d/req.csr", "$d/postgresql.crt",
		"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n$ext",
		ca_cert => $ca_cert, ca_key => $ca_key, dates => [ '-days', '5' ]);
	write_file_0600("$d/root.crt", slurp_file($ca_cert));
	return $d;
}
my $no_akid = forge('alice', "authorityKeyIdentifier=none\nsubjectKeyIdentifier=none\n");
unlike(openssl('x509', '-in', "$no_akid/postgresql.crt", '-noout', '-text'), qr/Authority Key Identifier/,
	'the forgery has no authority key id');
my $same_serial = forge('alice', "authorityKeyIdentifier=keyid\n", serial_of($cert{alice}));
is(serial_of($same_serial), serial_of($cert{alice}), 'the forgery carries the live certificate\'s serial');
ok(logs_in($no_akid, 'alice'), 'enforce = crl: a forged certificate without an authority key id logs in');
ok(logs_in($same_serial, 'alice'), 'enforce = crl: a forged certificate under a live serial logs in');

set_enforce('registry');
$node->connect_fails(client_connstr($no_akid, 'alice'),
	'enforce = registry: refused, a forgery without an authority key id is still the CA\'s',
	expected_stderr => qr/certificate authentication failed for user "alice"/,
	log_like => [qr/is not a live certificate of the registry/]);
$node->connect_fails(client_connstr($same_serial, 'alice'),
	'enforce = registry: refused, a forgery under a live serial is not that certificate',
	expected_stderr => qr/certificate authentication failed for user "alice"/,
	log_like => [qr/has the serial of a live certificate of the registry but is not that certificate/]);
ok(logs_in($cert{alice}, 'alice'), '... while the real certificate with that serial logs in');
like($node->safe_psql('postgres',
		"SELECT detail FROM pgtls_explain_login(\$c\$" . slurp_file("$same_serial/postgresql.crt") . "\$c\$, 'alice') WHERE step = 'registry'"),
	qr/is not that certificate/, 'pgtls_explain_login says the same');

# --- revocations undone
my $alice = serial_of($cert{alice});
$node->safe_psql('postgres', "BEGIN; SAVEPOINT s; SELECT pgtls_revoke('$alice'); ROLLBACK TO s; COMMIT;");
ok(comes_to($cert{alice}, 'alice', 1, 5), 'a revocation undone by ROLLBACK TO leaves the certificate logging in');
$node->safe_psql('postgres', <<"SQL");
DO \$\$ BEGIN
    BEGIN
        PERFORM pgtls_revoke('$alice');
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN NULL;
    END;
END \$\$;
SQL
ok(comes_to($cert{alice}, 'alice', 1, 5), '... and one undone by an exception block');
$node->safe_psql('postgres', "BEGIN; SELECT pgtls_revoke('$alice'); PREPARE TRANSACTION 'r1';");
$node->safe_psql('postgres', "ROLLBACK PREPARED 'r1'");
ok(comes_to($cert{alice}, 'alice', 1, 5), '... and one undone by ROLLBACK PREPARED');
is($node->safe_psql('postgres', "SELECT revoked_at IS NULL FROM pgtls_certificates WHERE serial = '$alice'"), 't',
	'the registry agrees: live');

# --- a prepared revocation stays in the CRL, whatever its backend does next
my $bob = serial_of($cert{bob});
$node->safe_psql('postgres', "BEGIN; SELECT pgtls_revoke('$bob'); PREPARE TRANSACTION 'r2'; SELECT 1;");
$node->safe_psql('postgres', 'SELECT pgtls_refresh_crl()');
like(openssl('crl', '-in', $node->data_dir . '/pgtls/root.crl', '-noout', '-text'), qr/Serial Number: $bob/,
	'a prepared revocation is in a CRL rewritten after its backend went on');
$node->safe_psql('postgres', "COMMIT PREPARED 'r2'");
ok(comes_to($cert{bob}, 'bob', 0, 5), '... and after COMMIT PREPARED the certificate is refused');
$node->connect_fails(client_connstr($cert{bob}, 'bob'), '... as revoked', expected_stderr => qr/certificate revoked/);

# --- issuances undone, or prepared
sub issue_into
{
	my ($sql, $to) = @_;
	my ($c, $k, $ca) = split /\x01/, $node->safe_psql('postgres', $sql);
	write_file_0600("$to/postgresql.crt", "$c\n");
	write_file_0600("$to/postgresql.key", "$k\n");
	write_file_0600("$to/root.crt", "$ca\n");
	return;
}
my $pick = "certificate || '\x01' || private_key || '\x01' || ca_certificate";
my $rolled = PostgreSQL::Test::Utils::tempdir;
issue_into("BEGIN; SAVEPOINT s; CREATE TEMP TABLE k AS SELECT $pick AS v FROM pgtls_issue_client('carol'); "
	  . "RELEASE s; SAVEPOINT t; SELECT v FROM k; ROLLBACK; ", $rolled);
ok(!logs_in($rolled, 'carol'), 'a certificate of a rolled-back issuance is refused at once');
my $undone = PostgreSQL::Test::Utils::tempdir;
issue_into("BEGIN; SAVEPOINT s; CREATE TEMP TABLE k2 AS SELECT $pick AS v FROM pgtls_issue_client('carol'); "
	  . "SELECT v FROM k2; ROLLBACK TO s; COMMIT;", $undone);
ok(!logs_in($undone, 'carol'), '... and one issued in a subtransaction rolled back before COMMIT');
my $prepared = PostgreSQL::Test::Utils::tempdir;
$node->safe_psql('postgres', 'CREATE TABLE held (v text)');
issue_into("BEGIN; INSERT INTO held SELECT $pick FROM pgtls_issue_client('carol'); SELECT v FROM held; "
	  . "PREPARE TRANSACTION 'i1'; SELECT 1 WHERE false;", $prepared);
ok(!logs_in($prepared, 'carol'), 'a prepared issuance does not log in, even after its backend commits something else');
$node->safe_psql('postgres', "COMMIT PREPARED 'i1'");
ok(comes_to($prepared, 'carol', 1, 5), '... and logs in once COMMIT PREPARED has run');

# --- a delegated issuer cannot overflow the set and lock everyone out
my $live = $node->safe_psql('postgres',
	"SELECT count(*) FROM pgtls_certificates WHERE kind = 'client' AND revoked_at IS NULL AND not_after > now()");
my $room = 1000 - $live;
my ($rc, $out, $err);
$rc = $node->psql('postgres',
	"SET ROLE issuer; SELECT count(*) FROM generate_series(1, $room) g, LATERAL pgtls_issue_client('carol', days => 1 + g % 2)",
	stdout => \$out, stderr => \$err);
is($out, $room, "the issuer fills the set to pgtls_admin.max_certificates ($room more)") or diag($err);
$rc = $node->psql('postgres', "SET ROLE issuer; SELECT 1 FROM pgtls_issue_client('carol')",
	stdout => \$out, stderr => \$err);
like($err, qr/ERROR:  the registry holds pgtls_admin.max_certificates \(1000\) live client certificates already/,
	'the next issuance is refused');
ok(logs_in($cert{alice}, 'alice'), '... and certificate logins keep working');
unlike(slurp_file($node->logfile), qr/overflowed/, 'the set never overflowed');

# --- a renamed role's issuer still revokes its certificate
$node->safe_psql('postgres', 'ALTER ROLE alice RENAME TO alicia');
is($node->safe_psql('postgres', "SET ROLE issuer; SELECT pgtls_revoke('$alice')"), 't',
	'the issuer revokes a certificate of the role it administers after the role was renamed');
$node->safe_psql('postgres', 'ALTER ROLE alicia RENAME TO alice');
ok(comes_to($cert{alice}, 'alice', 0, 5), '... and it is refused');

$node->stop;
done_testing();
