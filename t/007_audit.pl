# The audit on a real cluster: a clean set-up yields only the summary row;
# each misconfiguration (pg_hba.conf lines, ssl settings, certificate and key
# files, the extension's CA and registry) yields exactly the findings it
# should, on the right lines; pgtls_hba_match() agrees with real connection
# attempts; secrets in pg_hba.conf never come back.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::RealBin/lib";
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use PgtlsTest;

my $node = sql_tls_cluster('audit');
my $dd = $node->data_dir;
my $user = $node->safe_psql('postgres', 'SELECT current_user');

my $clean_hba = <<"HBA";
local   all all                peer
hostssl all all 127.0.0.1/32   cert
hostssl all all ::1/128        cert
host    all all 0.0.0.0/0      reject
host    all all ::/0           reject
HBA

sub write_hba
{
	my ($text) = @_;
	open my $fh, '>', "$dd/pg_hba.conf" or die $!;
	print $fh $text;
	close $fh;
	return;
}

# Reload and wait until a new session sees the new configuration.
sub reload
{
	my $before = $node->safe_psql('postgres', 'SELECT pg_conf_load_time()');
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	for (1 .. 100)
	{
		last if $node->safe_psql('postgres', 'SELECT pg_conf_load_time()') ne $before;
		select undef, undef, undef, 0.05;
	}
	return;
}

sub sql { return $node->safe_psql('postgres', $_[0]); }

# check_id, with the line for pg_hba.conf findings
sub findings
{
	my $out = sql(
		"SELECT CASE WHEN check_id LIKE 'hba.%' THEN check_id || ':' || line_number "
		  . "ELSE check_id END FROM pgtls_hba_check()");
	return [ sort split /\n/, $out ];
}

sub expect
{
	my ($want, $name) = @_;
	is_deeply(findings(), [ sort @$want ], $name)
	  or diag(sql("SELECT severity, check_id, line_number, message FROM pgtls_hba_check()"));
	return;
}

my %orig = map { $_ => sql("SHOW $_") } qw(ssl_cert_file ssl_key_file ssl_ca_file ssl_crl_file);

sub set_conf
{
	my (%kv) = @_;
	sql(join ';', map { "ALTER SYSTEM SET $_ = '$kv{$_}'" } sort keys %kv);
	reload();
	return;
}

sub restore
{
	write_hba($clean_hba);
	sql("ALTER SYSTEM RESET $_") for qw(ssl_min_protocol_version ssl_ciphers password_encryption);
	set_conf(%orig, ssl => 'on');
	return;
}

# --- a clean, well-configured cluster: only the summary row
write_hba($clean_hba);
reload();
expect(['summary'], 'clean cluster: only the summary');
my ($sev, $msg) = split /\|/, sql("SELECT severity, message FROM pgtls_hba_check()");
is($sev, 'info', 'summary is info');
like($msg, qr/no problems found in 5 pg_hba.conf lines/, 'summary counts the rules');

my $c = client_files($node, $user);
$node->connect_ok(client_connstr($c, $user), 'clean cluster: certificate login works');

# --- pg_hba.conf corpus
write_hba(<<'HBA');
local     all         postgres                          peer
local     all         all                               trust
host      all         all       10.0.0.0/8              trust
hostssl   all         all       0.0.0.0/0               password
host      all         app       192.168.1.0/24          md5
hostssl   all         all       10.1.0.0/16             cert
hostnossl all         all       172.16.0.0/12           scram-sha-256
host      replication all       0.0.0.0/0               scram-sha-256
hostssl   all         all       127.0.0.1/32            cert
host      all         bob       127.0.0.1/32            ident
host      all         all       0.0.0.0/0               reject
host      all         all       ::/0                    reject
hostssl   all         all       0.0.0.0/0               cert
host      all         all       11.0.0.0/8              ldap ldapserver=ldap.example.com ldapbasedn="dc=example" ldapbinddn="cn=admin" ldapbindpasswd=TopSecret99
hostssl   all         all       127.0.0.1/32            cert clientcert=verify-ca
hostx     all         all
hostssl   all         all       fe80::/10               radius radiusservers=127.0.0.1 radiussecrets="RadiusSecret7"
host      all         all       12.0.0.0/8              ldap ldapserver=ldap.example.com ldapbasedn="dc=x" LDAPBINDPASSWD=MixedCase42
HBA
reload();
expect(
	[
		qw(hba.trust_local:2 hba.trust_remote:3 hba.host_allows_non_ssl:3
		  hba.password_cleartext:4 hba.open_to_world:4 hba.md5:5 hba.host_allows_non_ssl:5
		  hba.shadowed:6 hba.hostnossl_password:7 hba.replication_broad:8 hba.open_to_world:8
		  hba.host_allows_non_ssl:8 hba.ident_remote:10 hba.host_allows_non_ssl:10
		  hba.shadowed:9 hba.shadowed:13 hba.open_to_world:13 hba.shadowed:14
		  hba.parse_error:15 hba.parse_error:16 hba.shadowed:17 hba.parse_error:18)
	],
	'pg_hba.conf corpus: every finding on its line');
like(sql("SELECT message FROM pgtls_hba_check() WHERE check_id = 'hba.shadowed' AND line_number = 6"),
	qr/line 6 can never match: line 3 takes every connection/, 'shadowed names the earlier line');
like(sql("SELECT message FROM pgtls_hba_check() WHERE check_id = 'hba.shadowed' AND line_number = 14"),
	qr/lines 4 and 11 take every connection/, 'a rule covered kind by kind names both lines');
is(sql("SELECT severity FROM pgtls_hba_check() WHERE check_id = 'hba.trust_remote'"),
	'critical', 'trust from the network is critical');
is(sql("SELECT count(*) FROM pgtls_hba_check() WHERE line_number IS NOT NULL AND rule IS NULL"),
	'0', 'every rule finding carries its line');
my $all = sql("SELECT string_agg(concat_ws(' ', rule, message, hint), ' ') FROM pgtls_hba_check()");
unlike($all, qr/TopSecret99|RadiusSecret7/, 'no LDAP or RADIUS secret in any finding');
unlike($all, qr/MixedCase42/, '... nor one under a mis-cased option name the server refuses');
like($all, qr/ldapbindpasswd=\*{8}/, 'the secret option is shown masked');
like($all, qr/radiussecrets=\*{8}/, 'quoted secrets are masked too');
my ($warn) = $node->psql('postgres', "SELECT * FROM pgtls_hba_match('$user', 'postgres', '10.1.1.1')",
	stderr => \my $stderr);
like($stderr, qr/pg_hba.conf has 3 invalid lines/, 'pgtls_hba_match warns about invalid lines');
restore();
expect(['summary'], 'restored: clean again');

# --- ssl settings
sql("ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1'; ALTER SYSTEM SET ssl_ciphers = 'HIGH:3DES:eNULL:!aNULL';"
	  . "ALTER SYSTEM SET password_encryption = 'md5'");
reload();
expect([qw(ssl.min_protocol ssl.weak_ciphers auth.password_encryption_md5)], 'weak ssl settings');
like(sql("SELECT file_name || ':' || line_number FROM pgtls_hba_check() WHERE check_id = 'ssl.min_protocol'"),
	qr/postgresql\.auto\.conf:\d+$/, 'a setting finding names the file and line that set it');
restore();

sql("ALTER SYSTEM SET ssl = off");
reload();
expect([qw(ssl.off hba.rule_warning:2 hba.rule_warning:3)], 'ssl off: hostssl lines cannot match');
restore();

set_conf(ssl_ca_file => '');
expect([qw(hba.cert_without_ssl_ca:2 hba.cert_without_ssl_ca:3)], 'cert rules without ssl_ca_file');
restore();

# --- revocations and the CRL
system("cp", "$dd/$orig{ssl_crl_file}", "$dd/old.crl") == 0 or die;
my $victim = client_files($node, $user);
my $serial = sql(
	"SELECT serial FROM pgtls_certificates WHERE kind = 'client' ORDER BY issued_at DESC LIMIT 1");
sql("SELECT pgtls_revoke('$serial')");
expect(['summary'], 'a revocation written to the CRL in use is no finding');
set_conf(ssl_crl_file => 'old.crl');
expect(['ca.crl_stale'], 'a CRL without a revoked serial is stale');
like(sql("SELECT message FROM pgtls_hba_check()"), qr/first missing serial $serial/, 'stale CRL names the serial');
set_conf(ssl_crl_file => '');
expect(['ssl.crl_missing'], 'revocations exist but no CRL is configured');
restore();

# --- key file permissions, then the same after a reload the server rejects
my $key = "$dd/$orig{ssl_key_file}";
chmod 0644, $key;
expect([qw(file.key_permissions ssl.load_failed)], 'key readable by others: the next load fails');
reload();
expect([qw(file.key_permissions ssl.reload_rejected)], 'after the reload: rejected');
like(slurp_file($node->logfile), qr/SSL configuration was not reloaded/, 'the server did reject it');
$node->connect_ok(client_connstr($c, $user), 'the server still serves its previous certificate');
like(sql("SELECT hint FROM pgtls_hba_check() WHERE check_id = 'file.key_permissions'"),
	qr/chmod 0600/, 'the hint says how to fix it');
chmod 0600, $key;
restore();
expect(['summary'], 'key fixed: clean again');

# --- certificate files made with the openssl CLI
my $e = PostgreSQL::Test::Utils::tempdir;

sub cli_cert
{
	my ($name, %o) = @_;
	openssl('req', '-new', '-newkey', @{ $o{key} }, '-nodes', '-keyout', "$dd/$name.key",
		'-subj', '/CN=localhost', '-out', "$e/$name.csr");
	chmod 0600, "$dd/$name.key";
	cli_ca_sign($e, "$e/$name.csr", "$dd/$name.crt", $o{ext},
		ca_cert => $o{ca_cert} // "$dd/pgtls/ca.crt", ca_key => $o{ca_key} // "$dd/pgtls/ca.key",
		md => $o{md}, dates => $o{dates});
	return;
}

my $good_ext = "extendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost,IP:127.0.0.1,IP:::1";
my @ec = ('ec', '-pkeyopt', 'ec_paramgen_curve:P-256');

cli_cert('weak', key => ['rsa:1024'], md => 'sha1', ext => 'extendedKeyUsage = clientAuth',
	dates => [ '-days', '5' ]);
set_conf(ssl_cert_file => 'weak.crt', ssl_key_file => 'weak.key');
expect([qw(cert.weak_signature cert.weak_key cert.server_eku cert.san_missing cert.expiring ssl.reload_rejected)],
	'SHA-1, RSA-1024, clientAuth only, no SAN, 5 days left');
like(sql("SELECT message FROM pgtls_hba_check() WHERE check_id = 'cert.weak_signature'"),
	qr/md too weak/, 'weak signature names the OpenSSL failure');
restore();

cli_cert('expired', key => \@ec, ext => $good_ext,
	dates => [ '-startdate', '20200101000000Z', '-enddate', '20200201000000Z' ]);
set_conf(ssl_cert_file => 'expired.crt', ssl_key_file => 'expired.key');
expect([qw(cert.expired)], 'expired server certificate (the server still loads it)');
restore();

cli_cert('long', key => \@ec, ext => $good_ext, dates => [ '-days', '1000' ]);
set_conf(ssl_cert_file => 'long.crt', ssl_key_file => 'long.key');
expect([qw(cert.validity_too_long)], 'server certificate valid longer than max_days');
set_conf(ssl_key_file => 'weak.key');
expect([qw(cert.key_mismatch cert.validity_too_long ssl.reload_rejected)], 'key of another certificate');
restore();

# a server certificate from another CA: the chain does not verify against ssl_ca_file
openssl('req', '-x509', '-newkey', @ec, '-nodes', '-keyout', "$e/other-ca.key", '-subj', '/CN=Other CA',
	'-days', '20', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=keyCertSign,cRLSign',
	'-out', "$e/other-ca.crt");
cli_cert('foreign', key => \@ec, ext => $good_ext, dates => [ '-days', '60' ],
	ca_cert => "$e/other-ca.crt", ca_key => "$e/other-ca.key");
set_conf(ssl_cert_file => 'foreign.crt', ssl_key_file => 'foreign.key');
expect([qw(cert.chain)], 'server certificate from another CA');
system("cp", "$e/other-ca.crt", "$dd/other-ca.crt") == 0 or die;
set_conf(ssl_ca_file => 'other-ca.crt');
# Other CA has no CRL while CRL checking is on: its client certificates all fail (t/021 logs in to show it)
expect([qw(ca.not_trusted cert.expiring crl.missing)], 'ssl_ca_file without the pgtls_admin CA, and expiring');
restore();

# --- missing files
set_conf(ssl_cert_file => 'nope.crt');
expect([qw(file.missing ssl.reload_rejected)], 'missing server certificate');
restore();

# --- the extension's CA
chmod 0640, "$dd/pgtls/ca.key";
expect([qw(ca.key_permissions)], 'CA key readable by the group');
chmod 0600, "$dd/pgtls/ca.key";
rename "$dd/pgtls/ca.key", "$dd/pgtls/ca.key.away" or die;
expect([qw(ca.missing)], 'CA key missing');
rename "$dd/pgtls/ca.key.away", "$dd/pgtls/ca.key" or die;
sql("CREATE ROLE soon LOGIN; SELECT serial FROM pgtls_issue_client('soon', days => 5)");
expect([qw(client.expiring)], 'a client certificate expiring within the warning days');
sql("SELECT pgtls_revoke(serial) FROM pgtls_certificates WHERE role = 'soon'");
expect(['summary'], 'clean again');

# --- pgtls_hba_match against real connection attempts
write_hba(<<"HBA");
local     all      all                       peer
hostssl   all      +certusers  127.0.0.1/32  cert
hostssl   sameuser all         127.0.0.1/32  scram-sha-256
hostnossl all      all         127.0.0.1/32  reject
hostssl   all      dave        127.0.0.1/32  ldap ldapserver=127.0.0.1 ldapbasedn="dc=x" ldapbindpasswd="TopSecret99"
hostssl   all      all         127.0.0.1/32  reject
HBA
reload();
sql("CREATE ROLE certusers NOLOGIN; CREATE ROLE alice LOGIN IN ROLE certusers;"
	  . "CREATE ROLE carol LOGIN PASSWORD 'carol-pw'; CREATE ROLE dave LOGIN; CREATE ROLE nolog NOLOGIN");
sql("CREATE DATABASE carol");
my $alice = client_files($node, 'alice');
my $carol = client_files($node, 'carol');

sub verdict
{
	my ($role, $db, $ssl) = @_;
	return sql("SELECT line_number || ' ' || verdict FROM pgtls_hba_match('$role', '$db', '127.0.0.1', $ssl)");
}

is(verdict('alice', 'postgres', 'true'), '2 cert login', 'match: group member with a certificate');
$node->connect_ok(client_connstr($alice, 'alice'), 'connect: alice logs in with her certificate');

is(verdict('carol', 'carol', 'true'), '3 password login', 'match: sameuser database');
(my $carol_db = client_connstr($carol, 'carol')) =~ s/dbname=postgres/dbname=carol password=carol-pw/;
$node->connect_ok($carol_db, 'connect: carol logs into her database with a password');

is(verdict('carol', 'postgres', 'true'), '6 rejected', 'match: other database rejected');
is(verdict('nolog', 'postgres', 'true'), '6 rejected', 'match: a reject rule rejects whatever the role');
is(sql("SELECT verdict || ' ' || array_to_string(options, ',') FROM pgtls_hba_match('dave', 'postgres', '127.0.0.1')"),
	'password login ldapserver=127.0.0.1,ldapbasedn=dc=x,ldapbindpasswd=********',
	'match: options listed, the bind password masked');
unlike(slurp_file($node->logfile), qr/TopSecret99|RadiusSecret7/, 'no secret in the server log');
$node->connect_fails(client_connstr($carol, 'carol'), 'connect: carol is rejected from postgres',
	expected_stderr => qr/pg_hba.conf rejects connection/);

is(verdict('alice', 'postgres', 'false'), '4 rejected', 'match: no TLS rejected');
$node->connect_fails("host=127.0.0.1 dbname=postgres sslmode=disable user=alice",
	'connect: without TLS rejected', expected_stderr => qr/pg_hba.conf rejects connection/);

write_hba("local all all peer\nhostssl all +certusers 127.0.0.1/32 cert\n");
reload();
is(sql("SELECT coalesce(line_number::text, '-') || ' ' || verdict FROM pgtls_hba_match('carol', 'postgres', '127.0.0.1')"),
	'- no matching rule', 'match: no rule');
$node->connect_fails(client_connstr($carol, 'carol'), 'connect: no pg_hba.conf entry',
	expected_stderr => qr/no pg_hba.conf entry/);

# --- a secret option mistyped: no piece of it reaches pg_monitor.  The
# server splits an unquoted value at commas and blanks and its parser names
# the piece it rejects, so everything after a secret option's name is masked.
# No reload: the server itself logs a rejected line on reload.
write_hba(<<'HBA');
local all all                                 peer
hostssl all all 127.0.0.1/32                  cert
host all ldapuser 10.1.0.0/16 ldap ldapserver=h ldapbasedn="dc=x" ldapbindpasswd=ZZa,ZZb
host all ldapuser 10.2.0.0/16 ldap ldapserver=h ldapbasedn="dc=x" ldapbindpasswd= UUa
host all ldapuser 10.3.0.0/16 ldap ldapserver=h ldapbasedn="dc=x" ldapbindpasswd="SSa SSb",SSc
host all ldapuser 10.4.0.0/16 ldap ldapserver=h ldapbasedn="dc=x" ldapbindpasswd="QQa, QQb" ldapsearchattribute=QQc
host all ldapuser 10.5.0.0/16 ldap ldapserver=h ldapbasedn="dc=x" ldapbindpasswd=PPa,ldapsearchfilter=PPb
host all raduser  10.6.0.0/16 radius radiusservers=127.0.0.1 radiussecrets= RRa
host all ldapuser 10.7.0.0/16 ldap ldapserver=h ldapbasedn="dc=x" LDAPBINDPASSWD =KKa
HBA
sql("CREATE ROLE ldapuser LOGIN; CREATE ROLE hbamon LOGIN IN ROLE pg_monitor");
my $ldapcert = slurp_file(client_files($node, 'ldapuser') . '/postgresql.crt');
my $log_at = -s $node->logfile;
my $fragments = qr/(?:ZZ|UU|SS|QQ|PP|RR|KK)[abc]/;
is(sql("SELECT string_agg(line_number::text, ' ' ORDER BY line_number) FROM pgtls_hba_check() "
		  . "WHERE check_id = 'hba.parse_error'"),
	'3 4 5 8 9', 'mistyped secrets: the lines the server rejects');
my $seen = $node->safe_psql('postgres',
	"SET ROLE hbamon; "
	  . "SELECT string_agg(concat_ws(' ', rule, message, hint), E'\\n') FROM pgtls_hba_check(); "
	  . "SELECT string_agg(concat_ws(' ', line_number, array_to_string(options, ','), verdict), E'\\n') "
	  . "FROM generate_series(1, 7) i, pgtls_hba_match('ldapuser', 'postgres', ('10.' || i || '.0.1')::inet, false); "
	  . "SELECT string_agg(detail, E'\\n') FROM generate_series(1, 7) i, "
	  . "pgtls_explain_login(\$c\$$ldapcert\$c\$, 'ldapuser', 'postgres', ('10.' || i || '.0.1')::inet); "
	  . "SELECT string_agg(metric || labels::text || value, E'\\n') FROM pgtls_metrics");
unlike($seen, $fragments, 'pg_monitor sees no piece of a mistyped secret in the audit, match, explain or metrics')
  or diag(join "\n", grep { /$fragments/ } split /\n/, $seen);
like($seen, qr/"dc=x" ldapbindpasswd=\*{8} line 3: authentication option not in name=value format: \*{8} /,
	'ldapbindpasswd=a,b: the rule text and the parser\'s message mask all after the name');
like($seen, qr/"dc=x" ldapbindpasswd=\*{8} line 4: authentication option not in name=value format: \*{8} /,
	'ldapbindpasswd= a: so do they');
like($seen, qr/radiussecrets=\*{8}/, 'radiussecrets= x is masked');
like($seen, qr/LDAPBINDPASSWD\*{8}/, 'a mis-cased name apart from its value is masked');
is(sql("SELECT array_to_string(options, ',') FROM pgtls_hba_match('ldapuser', 'postgres', '10.5.0.1', false)"),
	'ldapserver=h,ldapbasedn=dc=x,ldapbindpasswd=********,ldapsearchfilter=********',
	'an option written after the secret is masked in the options');
unlike(slurp_file($node->logfile, $log_at), $fragments, 'no piece of a mistyped secret in the server log');
my ($dbg_rc, $dbg_out, $dbg_err) = $node->psql('postgres',
	"SET ROLE hbamon; SET client_min_messages = debug3; "
	  . "SELECT count(*) FROM pgtls_hba_check(); "
	  . "SELECT count(*) FROM pgtls_hba_match('ldapuser', 'postgres', '10.1.0.1', false)");
is($dbg_rc, 0, 'the audit runs with client_min_messages = debug3');
unlike($dbg_err, $fragments, '... and the server parser\'s DEBUG3 messages do not reach the pg_monitor member')
  or diag($dbg_err);
write_hba("local all all peer\nhostssl all +certusers 127.0.0.1/32 cert\n");

# --- issuing warns when no rule would accept the certificate
my ($rc, $out, $err) = $node->psql('postgres', "SELECT 1 FROM pgtls_issue_client('carol')");
like($err, qr/NOTICE:  no pg_hba.conf rule lets role "carol" log in with a certificate/,
	'issuing for a role no cert rule admits gives a NOTICE');
($rc, $out, $err) = $node->psql('postgres',
	"SELECT count(*) FROM generate_series(1, 5) g, LATERAL pgtls_issue_client('carol', days => g); SELECT 1 FROM pgtls_issue_client('carol')");
is(scalar(() = $err =~ /NOTICE:  no pg_hba.conf rule lets role "carol"/g), 2,
	'... once per statement, not once per certificate');
($rc, $out, $err) = $node->psql('postgres', "SELECT 1 FROM pgtls_issue_client('alice')");
unlike($err, qr/NOTICE/, 'no NOTICE for a role a cert rule admits');

# --- pg_monitor may run the audit; others may not
sql("CREATE ROLE watcher LOGIN IN ROLE pg_monitor; CREATE ROLE nobody LOGIN");
is(sql("SET ROLE watcher; SELECT count(*) > 0 FROM pgtls_hba_check(); "
		  . "SELECT count(*) FROM pgtls_hba_match('alice', 'postgres', '127.0.0.1'); "
		  . "SELECT count(*) FROM pgtls_server_cert_info()"),
	"t\n1\n1", 'pg_monitor runs the audit functions');
for my $f ("pgtls_hba_check()", "pgtls_hba_match('alice', 'postgres', '127.0.0.1')", "pgtls_server_cert_info()")
{
	($rc, $out, $err) = $node->psql('postgres', "SET ROLE nobody; SELECT * FROM $f");
	like($err, qr/permission denied for function/, "others may not run $f");
}

$node->stop;
done_testing();
