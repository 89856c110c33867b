# pgtls_explain_login() against real logins: for each certificate and
# connection, the verdict must agree with what psql gets, and when it says
# the login fails, what it says the client sees must be in psql's error.
# Covers every step: TLS verification (chain, purpose, strength,
# revocation, validity), the pg_hba.conf line (no entry, reject), the
# clientcert checks, the identity (CN, clientname=DN through a map, checked
# against the server's own log line), role, replication and database.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgtlsTest;
use PgtlsAudit;

my $node = sql_tls_cluster('explain');
my $dd = $node->data_dir;
my $tmp = PostgreSQL::Test::Utils::tempdir;
my ($ca, $cakey) = ("$dd/pgtls/ca.crt", "$dd/pgtls/ca.key");
$node->append_conf('postgresql.conf', "log_connections = on\n");

open my $fh, '>', "$dd/pg_hba.conf" or die;
print $fh <<'HBA';
local   all                   all                       trust
hostssl all                   carol       127.0.0.1/32  reject
hostssl replication           all         127.0.0.1/32  cert
hostssl all                   bob         127.0.0.1/32  cert clientname=DN map=dn
hostssl postgres,closed       all         127.0.0.1/32  cert
HBA
close $fh;
open $fh, '>', "$dd/pg_ident.conf" or die;
print $fh "dn  \"/^O=Acme,CN=([^,]+)\$\"  \\1\n";
close $fh;
reload($node);
$node->safe_psql('postgres', q{
	CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN;
	CREATE ROLE repl LOGIN REPLICATION;
});
$node->safe_psql('postgres', 'CREATE DATABASE closed ALLOW_CONNECTIONS false');

sub issue
{
	my ($role, $subject) = @_;
	my $arg = $subject ? ", subject => '$subject'" : '';
	my $out = $node->safe_psql('postgres',
		"SELECT certificate || chr(1) || private_key || chr(1) || ca_certificate FROM pgtls_issue_client('$role'$arg)");
	return [ split /\x01/, $out ];
}

# a certificate made with the openssl CLI, signed by $o{ca} (default: our CA)
sub cli_client
{
	my ($name, $cn, $ext, %o) = @_;
	openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', "$tmp/$name.key", '-subj', "/CN=$cn", '-out', "$tmp/$name.csr");
	cli_ca_sign($tmp, "$tmp/$name.csr", "$tmp/$name.crt", $ext,
		ca_cert => $o{ca_cert} // $ca, ca_key => $o{ca_key} // $cakey, md => $o{md},
		dates => $o{dates} // [ '-days', '30' ]);
	return [ slurp_file("$tmp/$name.crt"), slurp_file("$tmp/$name.key"), slurp_file($ca) ];
}

# (ok, failing step, what the client sees) from pgtls_explain_login
sub explain_login
{
	my ($cert, $role, $db) = @_;
	$db //= 'postgres';
	my $rows = $node->safe_psql('postgres',
		"SELECT step || '|' || coalesce(ok::text, 'null') || '|' || detail "
		  . "FROM pgtls_explain_login(\$c\$$cert\$c\$, '$role', '$db')");
	my @rows = split /\n/, $rows;
	my ($step, $ok, $detail) = split /\|/, $rows[-1], 3;
	die "last row is not the verdict: $rows[-1]" unless $step eq 'verdict';
	return ('ok', undef, undef) if $ok eq 'true';
	my ($at) = $detail =~ /refused at step "([^"]+)"/;
	my ($sees) = $detail =~ /the client sees "(.*?)"\. [A-Z]/;
	return ($ok eq 'false' ? 'refused' : 'unknown', $at, $sees, $rows);
}

# Compare the explanation with a real login; $want_step: the step it must fail at (undef: succeeds)
sub agree
{
	my ($name, $cred, $role, $want_step, %o) = @_;
	my $db = $o{db} // 'postgres';
	my ($verdict, $at, $sees, $rows) = explain_login($cred->[0], $role, $db);
	my $dir = client_dir(@$cred);
	my ($rc, $out, $err) = psql_login($node, $dir, $role, dbname => $db,
		replication => $db eq 'replication');
	if (!defined $want_step)
	{
		is($verdict, 'ok', "$name: explained as a success") or diag($rows);
		is($rc, 0, "$name: the real login succeeds") or diag($err);
		return;
	}
	is("$verdict at " . ($at // '-'), "refused at $want_step", "$name: explained as refused at $want_step")
	  or diag($rows);
	isnt($rc, 0, "$name: the real login fails");
	ok(defined $sees && index($err, $sees) >= 0, "$name: psql's error contains \"" . ($sees // '') . '"')
	  or diag("psql said: $err");
	return;
}

my $alice = issue('alice');
agree('a certificate for the role', $alice, 'alice', undef);
agree('a certificate for another role', $alice, 'repl', 'identity');

agree('serverAuth-only EKU', cli_client('srv', 'alice', 'extendedKeyUsage = serverAuth'), 'alice', 'purpose');
agree('expired', cli_client('old', 'alice', 'extendedKeyUsage = clientAuth',
		dates => [ '-startdate', '20200101000000Z', '-enddate', '20200201000000Z' ]), 'alice', 'validity');
# libpq itself refuses to load a SHA-1 signed certificate at security level 2
# ("ca md too weak"), so a client at level 0 presents it on the wire
my $sha1 = cli_client('sha1', 'alice', 'extendedKeyUsage = clientAuth', md => 'sha1');
my ($v, $at, $sees) = explain_login($sha1->[0], 'alice');
is("$v at $at", 'refused at strength', 'signed with SHA-1: explained as refused at strength');
is($sees, 'SSL error: sslv3 alert bad certificate', 'the client sees a bad certificate alert');
# (TLS 1.2: with TLS 1.3 s_client is gone before the server's alert arrives)
my $w = s_client($node, '-tls1_2', '-cert', "$tmp/sha1.crt", '-key', "$tmp/sha1.key", '-cipher', 'DEFAULT@SECLEVEL=0');
like($w->{out}, qr/sslv3 alert bad certificate/, 'wire: the server sends that alert');
like(slurp_file($node->logfile), qr/could not accept SSL connection: certificate verify failed/,
	"wire: the server's log line");

openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout',
	"$tmp/other.key", '-subj', '/CN=Other CA', '-days', '30', '-addext', 'basicConstraints=critical,CA:TRUE',
	'-addext', 'keyUsage=keyCertSign,cRLSign', '-out', "$tmp/other.crt");
agree('issued by a CA the server does not trust',
	cli_client('foreign', 'alice', 'extendedKeyUsage = clientAuth', ca_cert => "$tmp/other.crt",
		ca_key => "$tmp/other.key"), 'alice', 'chain');

my $revoked = issue('alice');
my $serial = $node->safe_psql('postgres',
	"SELECT serial FROM pgtls_certificates WHERE kind = 'client' ORDER BY issued_at DESC LIMIT 1");
$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial')");
agree('revoked', $revoked, 'alice', 'revocation');

my $carol = issue('carol');
agree('a reject line', $carol, 'carol', 'hba');
agree('no pg_hba.conf entry for the database', $alice, 'alice', 'hba', db => 'template1');
agree('a database that accepts no connections', $alice, 'alice', 'database', db => 'closed');

# clientname=DN through a map; the DN the map sees is the server's own
my $bob = issue('bob', 'CN=bob,O=Acme');
agree('clientname=DN through a map', $bob, 'bob', undef);
my $dn = $node->safe_psql('postgres', "SELECT subject_dn FROM pgtls_cert_info(\$c\$$bob->[0]\$c\$)");
is($dn, 'O=Acme,CN=bob', 'subject_dn is in RFC 2253 order');
like(slurp_file($node->logfile), qr/connection authenticated: identity="\Q$dn\E" method=cert/,
	"the server's log names the same DN");
agree('clientname=DN with the default subject', issue('bob'), 'bob', 'identity');

# replication: max_wal_senders = 0 turns walsenders away before authentication
my $repl = issue('repl');
agree('replication with max_wal_senders = 0', $repl, 'repl', 'walsender', db => 'replication');
$node->append_conf('postgresql.conf', "wal_level = replica\nmax_wal_senders = 4\n");
$node->restart;
agree('replication by a REPLICATION role', $repl, 'repl', undef, db => 'replication');
agree('replication by a role without REPLICATION', $alice, 'alice', 'replication', db => 'replication');
like($node->safe_psql('postgres', "SELECT verdict FROM pgtls_hba_match('alice', 'replication', '127.0.0.1')"),
	qr/refused after authentication: must be superuser or replication role to start walsender/,
	'pgtls_hba_match says so too');

# role without LOGIN
$node->safe_psql('postgres', 'ALTER ROLE alice NOLOGIN');
agree('a role without LOGIN', $alice, 'alice', 'role');
$node->safe_psql('postgres', 'ALTER ROLE alice LOGIN');

# no ssl_ca_file: the server asks for no certificate, and cert lines cannot work
my $ca_file = $node->safe_psql('postgres', 'SHOW ssl_ca_file');
$node->safe_psql('postgres', "ALTER SYSTEM SET ssl_ca_file = ''");
reload($node);
agree('no ssl_ca_file', $alice, 'alice', 'clientcert');
$node->safe_psql('postgres', "ALTER SYSTEM SET ssl_ca_file = '$ca_file'");
reload($node);

# pgtls_admin.enforce = registry: a certificate of our CA the registry does not hold is refused
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pgtls_admin'\npgtls_admin.enforce = registry\n");
$node->restart;
my $loaded = 0;
for (1 .. 150)
{
	my ($r) = psql_login($node, client_dir(@$alice), 'alice');
	$loaded = 1, last if $r == 0;
	select undef, undef, undef, 0.2;
}
ok($loaded, 'the worker loaded the registry: a registry certificate logs in');
agree('enforce = registry, a registry certificate', $alice, 'alice', undef);
agree('enforce = registry, a certificate of our CA the registry never recorded',
	cli_client('rogue', 'alice', 'extendedKeyUsage = clientAuth'), 'alice', 'registry');
like(slurp_file($node->logfile), qr/pgtls_admin.enforce = registry: certificate \w+ is not a live certificate/,
	"the server's log says why");

# pg_monitor may explain; others may not
$node->safe_psql('postgres', 'CREATE ROLE watcher IN ROLE pg_monitor; CREATE ROLE nobody');
is($node->safe_psql('postgres',
		"SET ROLE watcher; SELECT count(*) > 10 FROM pgtls_explain_login(\$c\$$alice->[0]\$c\$, 'alice')"),
	't', 'pg_monitor may run pgtls_explain_login');
my ($rc, $out, $err) = $node->psql('postgres',
	"SET ROLE nobody; SELECT * FROM pgtls_explain_login(\$c\$$alice->[0]\$c\$, 'alice')");
like($err, qr/permission denied for function pgtls_explain_login/, 'others may not');
($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM pgtls_explain_login('nonsense', 'alice')");
like($err, qr/certificate is not a PEM certificate/, 'garbage is a clear error');
($rc, $out, $err) = $node->psql('postgres', "SELECT * FROM pgtls_explain_login(\$c\$$alice->[0]\$c\$, 'alice', address => NULL)");
like($err, qr/address must not be null/, 'a certificate login needs an address');

$node->stop;
done_testing();
