# No private key reaches the server log, pg_stat_statements or
# pg_stat_activity when every documented flow runs under the loudest logging
# there is, on success and on every error path around it.  The documented
# flows adopt keys from server files (pgtls_import_ca_files,
# pgtls_install_server_cert_files) and make driver formats from the issuing
# call, so no key is ever SQL text or a bind parameter.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('logging');
$node->init;
$node->append_conf('postgresql.conf', <<'CONF');
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'pg_stat_statements, auto_explain'
log_statement = 'all'
log_min_duration_statement = 0
log_min_error_statement = debug5
log_min_messages = debug1
log_parameter_max_length = -1
log_parameter_max_length_on_error = -1
log_error_verbosity = verbose
track_activity_query_size = 65536
auto_explain.log_min_duration = 0
auto_explain.log_analyze = on
auto_explain.log_verbose = on
auto_explain.log_nested_statements = on
auto_explain.log_parameter_max_length = -1
pg_stat_statements.track = all
pg_stat_statements.track_utility = on
CONF
write_cert_only_hba($node);
$node->start;
my $dd = $node->data_dir;
$node->safe_psql('postgres', <<'SQL');
CREATE EXTENSION pg_stat_statements;
CREATE EXTENSION pgtls_admin;
CREATE ROLE user1 LOGIN;
CREATE ROLE delegate LOGIN;
GRANT EXECUTE ON FUNCTION pgtls_issue_client(name, int, text, text, interval) TO delegate;
GRANT user1 TO delegate WITH ADMIN OPTION;
SQL

# Every private key this test makes or receives; none may appear anywhere.
my @keys;
sub remember_keys
{
	my ($text) = @_;
	while ($text =~ /-----BEGIN [A-Z ]*PRIVATE KEY-----\n(.*?)-----END/sg)
	{
		push @keys, grep { length($_) >= 40 } split /\n/, $1;
	}
	return;
}

# Run SQL as a role; returns (rc, stdout, stderr).
sub run_sql
{
	my ($sql, %o) = @_;
	my ($out, $err);
	my $rc = $node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => $o{user} ? [ '-U', $o{user} ] : []);
	remember_keys($out // '');
	return ($rc, $out, $err);
}

# Keys adopted from files, made with the openssl command line.
my $files = PostgreSQL::Test::Utils::tempdir;
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$files/ca.key", '-subj', '/CN=Adopted CA', '-days', '30',
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
	'-out', "$files/ca.crt");
chmod 0600, "$files/ca.key";
remember_keys(slurp_file("$files/ca.key"));

# --- adopting a CA from files
my ($rc, $out, $err) = run_sql("SELECT length(pgtls_import_ca_files('$files/ca.crt', '$files/ca.key')) > 0");
is($out, 't', 'pgtls_import_ca_files adopts the CA');
is(slurp_file("$dd/pgtls/ca.crt"), slurp_file("$files/ca.crt"), '... whose certificate is now the CA file');
chmod 0640, "$files/ca.key";
($rc, $out, $err) = run_sql("SELECT pgtls_import_ca_files('$files/ca.crt', '$files/ca.key', replace => true)");
like($err, qr/private key file ".*ca\.key" has group or world access/, 'a key file with group access is refused');
chmod 0600, "$files/ca.key";
($rc, $out, $err) = run_sql("SELECT pgtls_import_ca_files('$files/none.crt', '$files/ca.key', replace => true)");
like($err, qr/could not open certificate file ".*none\.crt"/, 'a missing file is a clear error');
($rc, $out, $err) = run_sql("SELECT pgtls_import_ca_files('$files/ca.crt', '$files/ca.key')");
like($err, qr/a CA already exists/, 'an existing CA is kept without replace');
($rc, $out, $err) = run_sql("SELECT pgtls_import_ca_files('$files/ca.crt')");
like($err, qr/function pgtls_import_ca_files\(unknown\) does not exist/, 'wrong arity fails before the function runs');
($rc, $out, $err) = run_sql("SELECT pgtls_import_ca_files('$files/ca.crt', '$files/ca.key', replace => true)",
	user => 'delegate');
like($err, qr/permission denied for function pgtls_import_ca_files/, 'a role without EXECUTE is refused');
# relative to the data directory
copy_to_datadir("$files/ca.crt", 'adopt.crt');
copy_to_datadir("$files/ca.key", 'adopt.key');
($rc, $out, $err) = run_sql("SELECT length(pgtls_import_ca_files('adopt.crt', 'adopt.key', replace => true)) > 0");
is($out, 't', 'relative paths are under the data directory');

sub copy_to_datadir
{
	my ($from, $name) = @_;
	write_file_0600("$dd/$name", slurp_file($from));
	return;
}

# --- server certificate: issued here, installed from files
($rc, $out, $err) = run_sql("SELECT count(*) FROM pgtls_enable_ssl()");
is($rc, 0, 'pgtls_enable_ssl works') or diag($err);
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$files/server.key", '-subj', '/CN=localhost', '-out', "$files/server.csr");
chmod 0600, "$files/server.key";
remember_keys(slurp_file("$files/server.key"));
cli_ca_sign($files, "$files/server.csr", "$files/server.crt",
	"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
	  . "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
	ca_cert => "$files/ca.crt", ca_key => "$files/ca.key", dates => [ '-days', '20' ]);
($rc, $out, $err) = run_sql("SELECT setting FROM pgtls_install_server_cert_files('$files/server.crt', '$files/server.key') ORDER BY 1");
like($out, qr/ssl_cert_file/, 'pgtls_install_server_cert_files installs a certificate made elsewhere') or diag($err);
my $served = openssl_s_client_serial($node);
is($served, uc(openssl('x509', '-in', "$files/server.crt", '-noout', '-serial') =~ s/^serial=|\s+$//gr),
	'... and the server presents it on the wire');
($rc, $out, $err) = run_sql("BEGIN; SELECT * FROM pgtls_install_server_cert_files('$files/server.crt', '$files/server.key'); COMMIT;");
like($err, qr/cannot run inside a transaction block/, 'the install refuses a transaction block');
chmod 0644, "$files/server.key";
($rc, $out, $err) = run_sql("SELECT * FROM pgtls_install_server_cert_files('$files/server.crt', '$files/server.key')");
like($err, qr/has group or world access/, 'a world-readable server key file is refused');
chmod 0600, "$files/server.key";

sub openssl_s_client_serial
{
	my ($n) = @_;
	my ($stdout, $stderr);
	IPC::Run::run([ 'openssl', 's_client', '-starttls', 'postgres', '-connect', '127.0.0.1:' . $n->port ],
		'<', \'', '>', \$stdout, '2>', \$stderr);
	my ($pem) = $stdout =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)/s;
	my $serial = '';
	IPC::Run::run([ 'openssl', 'x509', '-noout', '-serial' ], '<', \$pem, '>', \$serial);
	return uc($serial =~ s/^serial=|\s+$//gr);
}

# --- issuing, and driver formats made from the issuing call
($rc, $out, $err) = run_sql("SELECT serial FROM pgtls_issue_client('user1')");
like($out, qr/^[0-9A-F]{32}$/, 'pgtls_issue_client works under full logging');
($rc, $out, $err) = run_sql("SELECT serial FROM pgtls_issue_client('user1')", user => 'delegate');
like($out, qr/^[0-9A-F]{32}$/, '... also for a delegated issuer');
($rc, $out, $err) = run_sql("SELECT private_key FROM pgtls_issue_client('user1', key_type => 'rsa-2048')");
like($out, qr/BEGIN PRIVATE KEY/, 'an issued key comes back in the result only');
($rc, $out, $err) = run_sql("SELECT length(pgtls_pkcs12(certificate, private_key, 'p12-pass', ca_certificate)) > 0 FROM pgtls_issue_client('user1')");
is($out, 't', 'pgtls_pkcs12 from the issuing call');
($rc, $out, $err) = run_sql("SELECT length(pgtls_pkcs8_der(private_key)) > 0 FROM pgtls_issue_client('user1', key_type => 'ed25519')");
is($out, 't', 'pgtls_pkcs8_der from the issuing call');
($rc, $out, $err) = run_sql("SELECT pgtls_encrypt_key(private_key, 'key-pass') FROM pgtls_issue_client('user1')");
like($out, qr/BEGIN ENCRYPTED PRIVATE KEY/, 'pgtls_encrypt_key from the issuing call');
($rc, $out, $err) = run_sql("SELECT pgtls_pkcs12(certificate, private_key, '', ca_certificate) FROM pgtls_issue_client('user1')");
like($err, qr/passphrase must not be empty/, 'an error in a format function');
($rc, $out, $err) = run_sql("BEGIN; SELECT serial FROM pgtls_issue_client('user1'); SELECT 1/0; ROLLBACK;");
like($err, qr/division by zero/, 'an error later in a transaction that issued');
($rc, $out, $err) = run_sql("SELECT * FROM pgtls_issue_client('user1', days => 0)");
like($err, qr/days must be between/, 'an issuing error');
# renewal returns a key too
my $serial = $node->safe_psql('postgres', "SELECT serial FROM pgtls_certificates WHERE kind = 'client' LIMIT 1");
($rc, $out, $err) = run_sql("SELECT length(private_key) > 0 FROM pgtls_renew('$serial')");
is($out, 't', 'pgtls_renew under full logging');
# a long-running statement holding a key, seen from pg_stat_activity by pg_monitor
$node->safe_psql('postgres', 'CREATE ROLE watcher LOGIN IN ROLE pg_monitor');
my $bg = $node->background_psql('postgres');
$bg->query_until(qr/started/, "\\echo started\nSELECT pg_sleep(3), length(private_key) FROM pgtls_issue_client('user1');\n");
my $seen = '';
for (1 .. 20)
{
	$seen .= $node->safe_psql('postgres', "SELECT string_agg(query, E'\\n') FROM pg_stat_activity",
		extra_params => [ '-U', 'watcher' ]);
	last if $seen =~ /pg_sleep/;
	usleep(100_000);
}
like($seen, qr/pgtls_issue_client/, 'pg_stat_activity shows the issuing statement to pg_monitor');
$bg->quit;

# --- the text-taking variants hide their statement on every error they raise
# (with statement logging off for the session, as the README says for them);
# a fresh key for these calls, to tell them from the documented exception
openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', "$files/pasted.key");
my $pasted = slurp_file("$files/pasted.key");
remember_keys($pasted);
my $cert_text = slurp_file("$files/server.crt");
($rc, $out, $err) = run_sql("SET log_statement = 'none'; BEGIN; SELECT * FROM pgtls_install_server_cert(\$c\$$cert_text\$c\$, \$k\$$pasted\$k\$); COMMIT;");
like($err, qr/cannot run inside a transaction block/, 'pgtls_install_server_cert refuses a transaction block');
($rc, $out, $err) = run_sql("SET log_statement = 'none'; SELECT pgtls_import_ca(\$c\$"
	  . slurp_file("$files/ca.crt") . "\$c\$, \$k\$$pasted\$k\$, true)");
like($err, qr/private_key does not match certificate/, 'pgtls_import_ca with a wrong key fails');
# The one case no function can hide: PostgreSQL refuses a caller without
# EXECUTE before any code of ours runs, and logs the statement it was given.
openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', "$files/refused.key");
my $refused = slurp_file("$files/refused.key");
($rc, $out, $err) = run_sql("SELECT pgtls_import_ca(\$c\$"
	  . slurp_file("$files/ca.crt") . "\$c\$, \$k\$$refused\$k\$, true)", user => 'delegate');
like($err, qr/permission denied for function pgtls_import_ca/, 'without EXECUTE the statement is refused');
($rc, $out, $err) = run_sql("SELECT * FROM pgtls_install_server_cert(\$c\$$cert_text\$c\$, \$k\$$refused\$k\$)",
	user => 'delegate');
like($err, qr/permission denied for function pgtls_install_server_cert/, '... as is pgtls_install_server_cert');
my %documented_exception = map { $_ => 1 } grep { length($_) >= 40 } split /\n/, $refused;

# --- nothing of any key anywhere
ok(scalar(@keys) >= 30, 'the test saw at least 30 lines of key material (' . scalar(@keys) . ')');
my $stmts = $node->safe_psql('postgres', "SELECT string_agg(query, E'\\n') FROM pg_stat_statements");
my $activity = $node->safe_psql('postgres', "SELECT string_agg(query, E'\\n') FROM pg_stat_activity");
$node->stop;
my $log = slurp_file($node->logfile);
like($log, qr/pgtls_import_ca_files/, 'the server log holds the statements');
like($log, qr/Query Text: .*pgtls_issue_client/, '... and auto_explain plans');
like($stmts, qr/pgtls_install_server_cert_files/, 'pg_stat_statements holds the statements');

my @leaks_log = grep { index($log, $_) >= 0 } @keys;
is_deeply([ grep { index($stmts, $_) >= 0 } @keys ], [], 'no key is in pg_stat_statements');
is_deeply([ grep { index($activity, $_) >= 0 } @keys ], [], 'no key is in pg_stat_activity');
is_deeply(\@leaks_log, [], 'no line of any key is in the server log');
ok(grep({ index($log, $_) >= 0 } keys %documented_exception),
	'(the statement PostgreSQL itself refuses before any function runs is logged, as the README warns)');

done_testing();
