# pg_ident.conf maps and clientname=, checked against real logins:
# pgtls_hba_match() and the issuance NOTICE follow map= and clientname=;
# pgtls_issue_client(subject => ...) issues only what the maps make the
# role (and no other role); the audit's pg_ident findings are each shown to
# be real by a login that does what the finding says.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgtlsTest;
use PgtlsAudit;

my $node = sql_tls_cluster('ident');
my $dd = $node->data_dir;

sub write_file
{
	my ($name, $text) = @_;
	open my $fh, '>', "$dd/$name" or die;
	print $fh $text;
	close $fh;
	return;
}

write_file('pg_hba.conf', <<'HBA');
local   all  all                         trust
hostssl all  alice,admin  127.0.0.1/32   cert map=m
hostssl all  dave         127.0.0.1/32   cert map=nomap
hostssl all  erin         127.0.0.1/32   cert clientname=DN
hostssl all  all          127.0.0.1/32   cert
HBA
write_file('pg_ident.conf', <<'IDENT');
m  "/^(.*)@example\.com$"  \1
m  /admin                  admin
m  carol                   alice
IDENT
reload($node);
$node->safe_psql('postgres',
	'CREATE ROLE alice LOGIN; CREATE ROLE admin LOGIN; CREATE ROLE carol LOGIN; CREATE ROLE dave LOGIN; CREATE ROLE erin LOGIN');

# issue; returns (client dir, serial, stderr)
sub issue
{
	my ($role, $subject) = @_;
	my $arg = defined $subject ? ", subject => '$subject'" : '';
	my ($rc, $out, $err) = $node->psql('postgres',
		"SELECT serial || chr(1) || certificate || chr(1) || private_key || chr(1) || ca_certificate "
		  . "FROM pgtls_issue_client('$role'$arg)");
	return (undef, undef, $err) if $rc != 0;
	my ($serial, @cred) = split /\x01/, $out;
	return (client_dir(@cred), $serial, $err);
}

sub login
{
	my ($dir, $role) = @_;
	my ($rc, $out, $err) = psql_login($node, $dir, $role);
	return $rc == 0 ? "ok $out" : $err;
}

sub verdict
{
	return $node->safe_psql('postgres', "SELECT verdict FROM pgtls_hba_match('$_[0]', 'postgres', '127.0.0.1')");
}

# --- map=: the verdict names the map; the default CN is refused, and the NOTICE says so
like(verdict('alice'), qr/^cert login \(the certificate's CN through map "m", pg_ident.conf line 1\)/,
	'pgtls_hba_match names the map and its line');
my ($plain, $plain_serial, $err) = issue('alice');
like($err, qr/NOTICE:  no pg_hba.conf rule lets role "alice" log in with a certificate/, 'NOTICE for CN=alice');
like($err, qr/no match in usermap "m" for user "alice" authenticated as "alice"/, 'the NOTICE says why');
like(login($plain, 'alice'), qr/certificate authentication failed for user "alice"/,
	'wire: that certificate indeed cannot log in');

# --- subject => a name the map makes the role
my ($mapped, $serial);
($mapped, $serial, $err) = issue('alice', 'CN=alice@example.com');
unlike($err, qr/NOTICE/, 'a mapped subject: no NOTICE');
is(login($mapped, 'alice'), 'ok alice', 'wire: the mapped certificate logs in as alice');
is($node->safe_psql('postgres', "SELECT subject FROM pgtls_certificates WHERE serial = '$serial'"),
	'CN=alice@example.com', 'the registry stores the subject');
my $renewed = $node->safe_psql('postgres',
	"SELECT subject FROM pgtls_cert_info((SELECT certificate FROM pgtls_renew('$serial')))");
is($renewed, 'CN=alice@example.com', 'pgtls_renew keeps the subject');
is($node->safe_psql('postgres', "SELECT ok FROM pgtls_explain_login((SELECT certificate FROM pgtls_certificates WHERE serial = '$serial'), 'alice') WHERE step = 'verdict'"),
	't', 'pgtls_explain_login agrees');

(undef, undef, $err) = issue('alice', 'CN=bob@example.com');
like($err, qr/ERROR:  a certificate with subject "CN=bob\@example.com" would not log in as role "alice"/,
	'a subject no map makes the role is refused');

# --- a subject the map makes the role, but that also logs in as another role
(undef, undef, $err) = issue('alice', 'CN=carol');
like($err, qr/would also log in as role "carol"/, 'a subject that is also another role is refused');
my $tmp = PostgreSQL::Test::Utils::tempdir;
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$tmp/c.key", '-subj', '/CN=carol', '-out', "$tmp/c.csr");
cli_ca_sign($tmp, "$tmp/c.csr", "$tmp/c.crt", 'extendedKeyUsage = clientAuth',
	ca_cert => "$dd/pgtls/ca.crt", ca_key => "$dd/pgtls/ca.key", dates => [ '-days', '5' ]);
my $cc = client_dir(slurp_file("$tmp/c.crt"), slurp_file("$tmp/c.key"), slurp_file("$dd/pgtls/ca.crt"));
is(login($cc, 'alice'), 'ok alice', 'wire: such a certificate logs in as alice ...');
is(login($cc, 'carol'), 'ok carol', 'wire: ... and as carol, which is why it is refused');

# --- a delegated issuer keeps the role's rules; subject does not widen them
$node->safe_psql('postgres', q{
	CREATE ROLE cert_admin LOGIN;
	GRANT EXECUTE ON FUNCTION pgtls_issue_client(name, int, text, text, interval) TO cert_admin;
	GRANT alice TO cert_admin WITH ADMIN OPTION;
});
is($node->safe_psql('postgres',
		q{SET ROLE cert_admin; SELECT count(*) FROM pgtls_issue_client('alice', subject => 'CN=alice@example.com')}),
	'1', 'an issuer with ADMIN OPTION on alice may issue a mapped subject');
(undef, undef, $err) = $node->psql('postgres',
	"SET ROLE cert_admin; SELECT count(*) FROM pgtls_issue_client('carol', subject => 'CN=carol')");
like($err, qr/permission denied to issue a certificate for role "carol"/, 'but not for a role it does not administer');

# --- unanchored regular expression: real, and found
my $f = findings($node, qr/^(ident|hba\.clientname)/);
is(join(',', @{ $f->{'ident.regex_unanchored'} // [] }), 'medium', 'an unanchored regex on a cert map: medium');
my $sneaky;
($sneaky, undef, $err) = issue('admin', 'CN=not-the-admin-at-all');
is(login($sneaky, 'admin'), 'ok admin', 'wire: a CN that merely contains "admin" logs in as admin');

# --- a map pg_ident.conf does not define
is(join(',', @{ $f->{'ident.map_missing'} // [] }), 'high', 'map=nomap undefined: high');
like(verdict('dave'), qr/^no certificate can log in: pg_ident.conf has no map "nomap"/,
	'pgtls_hba_match: no certificate can log in');
my ($dave) = issue('dave');
like(login($dave, 'dave'), qr/certificate authentication failed for user "dave"/, 'wire: indeed');

# --- clientname=DN without map: the CN=role certificates never match
is(join(',', @{ $f->{'hba.clientname_dn'} // [] }), 'medium', 'clientname=DN without map: medium');
like(verdict('erin'), qr/subject DN must be exactly "erin"/, 'pgtls_hba_match says what the DN must be');
my ($erin) = issue('erin');
like(login($erin, 'erin'), qr/certificate authentication failed for user "erin"/, 'wire: indeed');

# --- live certificates no map admits
my $msgs = $node->safe_psql('postgres',
	"SELECT string_agg(message, E'\\n') FROM pgtls_hba_check() WHERE check_id = 'ident.cert_not_admitted'");
like($msgs, qr/certificate $plain_serial of role "alice" \(subject "CN=alice"\) cannot log in/,
	"alice's CN=alice certificate is reported");
unlike($msgs, qr/$serial/, 'the mapped one is not');

# --- an invalid pg_ident.conf line: the server keeps its previous maps
write_file('pg_ident.conf', slurp_file("$dd/pg_ident.conf") . "m \"/(\" broken\n");
reload($node);
is(join(',', @{ findings($node)->{'ident.parse_error'} // [] }), 'high', 'an invalid pg_ident.conf line: high');
like(slurp_file($node->logfile), qr/pg_ident.conf was not reloaded/, 'the server did keep its old maps');
is(login($mapped, 'alice'), 'ok alice', 'wire: the old maps still work');

$node->stop;
done_testing();
