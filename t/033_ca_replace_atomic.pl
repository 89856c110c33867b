# Replacing the CA writes its files only when the statement's transaction
# commits: pgtls_init_ca(replace => true), the imports and the phases of
# pgtls_ca_rotate() refuse a transaction block (25001), and when the
# statement that called them fails afterwards, the old CA's files, trust
# bundle and CRLs (and, for a rotation, the server certificate and key) are
# untouched, the registry agrees with them, the old CA still issues, and a
# certificate of the old CA still logs in with verify-full.  A rolled-back
# CA request leaves no key, and one rolled back in a savepoint leaves the
# earlier request's.  Two phases in one statement leave the files of the
# last.  A crash between the switch of the CA files and the commit is
# completed by the first issuance that commits, whatever rolled back before.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = sql_tls_cluster('replace_atomic');
my $dd = $node->data_dir;
$node->safe_psql('postgres', 'CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN;');
my $alice = client_files($node, 'alice');
$node->connect_ok(client_connstr($alice, 'alice'), 'a certificate of the CA logs in',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);

my @files = map { "$dd/pgtls/$_" } qw(ca.crt ca.key ca-bundle.crt root.crl);
sub snapshot { return join("\x00", map { -e $_ ? slurp_file($_) : "<none: $_>" } @files); }
# the files of pgtls/ (those of pgtls/pending/ too: a revocation's directory is made once, its files go with its transaction)
sub pgtls_dir
{
	my @n;
	for my $sub ('', 'pending/')
	{
		opendir(my $dh, "$dd/pgtls/$sub") or next;
		push @n, map { "$sub$_" } grep { !/^\./ && $_ ne 'pending' } readdir $dh;
	}
	return join(' ', sort @n);
}
my ($before, $dir_before) = (snapshot(), pgtls_dir());
my $active = "SELECT fingerprint_sha256 FROM pgtls_cas WHERE state = 'active'";
my $fp_before = $node->safe_psql('postgres', $active);

# An external CA to import, as the tutorials make one.
my $tmp = PostgreSQL::Test::Utils::tempdir;
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$tmp/other.key", '-subj', '/CN=Other CA', '-days', '30', '-out', "$tmp/other.crt",
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');

sub unchanged
{
	my ($name) = @_;
	ok(snapshot() eq $before, "$name: the CA files, the trust bundle and the CRLs are untouched");
	is(pgtls_dir(), $dir_before, "$name: no file was added to pgtls/ (no kept key, marker or temporary file)");
	is($node->safe_psql('postgres', $active), $fp_before, "$name: the registry's active CA is still the old one");
	return;
}

my ($rc, $out, $err);
# --- a transaction block is refused
for my $call ('pgtls_init_ca(replace => true)',
	"pgtls_import_ca_files('$tmp/other.crt', '$tmp/other.key', replace => true)")
{
	(my $fn = $call) =~ s/\(.*//;
	($rc, $out, $err) = $node->psql('postgres', "BEGIN;\nSELECT length($call) > 0;\nCOMMIT;",
		stdout => \$out, stderr => \$err, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/25001: \Q$fn\E\(\) cannot run inside a transaction block/, "$fn in BEGIN ... COMMIT is refused (25001)");
	unchanged("$fn in a transaction block");
}
# one query string of two statements (psql -c): an implicit transaction block
($rc, $out, $err) = $node->psql('postgres', '', stdout => \$out, stderr => \$err, extra_params => [ '-c',
	"SELECT length(pgtls_import_ca(pg_read_file('$tmp/other.crt'), pg_read_file('$tmp/other.key'), replace => true)) > 0; SELECT 1;" ]);
like($err, qr/pgtls_import_ca\(\) cannot run inside a transaction block/,
	'pgtls_import_ca in a multi-statement query (an implicit transaction block) is refused');
unchanged('pgtls_import_ca in an implicit transaction block');

# --- the statement fails after the replacement ran
for my $call ('pgtls_init_ca(replace => true)',
	"pgtls_import_ca_files('$tmp/other.crt', '$tmp/other.key', replace => true)")
{
	(my $fn = $call) =~ s/\(.*//;
	($rc, $out, $err) = $node->psql('postgres',
		"DO \$\$ BEGIN PERFORM $call; RAISE EXCEPTION 'failed after the replacement'; END \$\$;",
		stdout => \$out, stderr => \$err);
	like($err, qr/failed after the replacement/, "$fn, then an error in the same statement");
	unchanged("$fn rolled back");
	$node->connect_ok(client_connstr($alice, 'alice'), "$fn rolled back: the old CA's certificate still logs in",
		sql => 'SELECT 1', expected_stdout => qr/^1$/);
}
my $bob = client_files($node, 'bob');
$node->connect_ok(client_connstr($bob, 'bob'), 'the old CA still issues, and its new certificate logs in',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);

# --- the phases of a rotation in a statement that fails
my $sdir = "$dd/" . $node->safe_psql('postgres', 'SHOW ssl_cert_file') =~ s{/[^/]*$}{}r;
my @rot_files = (@files, map { "$dd/" . $node->safe_psql('postgres', "SHOW $_") } qw(ssl_cert_file ssl_key_file));
push @rot_files, "$dd/postgresql.auto.conf";
sub rot_snapshot { return join("\x00", map { -e $_ ? slurp_file($_) : "<none: $_>" } @rot_files); }
my $states = "SELECT string_agg(state || ' ' || fingerprint_sha256, ', ' ORDER BY fingerprint_sha256) FROM pgtls_cas";
my ($rot_before, $rot_dir, $states_before) = (rot_snapshot(), pgtls_dir(), $node->safe_psql('postgres', $states));
my $old_issuer = openssl('x509', '-in', "$dd/pgtls/ca.crt", '-noout', '-subject') =~ s/^subject=\s*|\s+$//gr;
sub issuer_of { return openssl('x509', '-in', $_[0], '-noout', '-issuer') =~ s/^issuer=\s*|\s+$//gr; }

for my $phases ([qw(prepare)], [qw(prepare activate)], [qw(prepare activate rollback)])
{
	my $name = join(', ', @$phases);
	my $calls = join(' ', map { "PERFORM * FROM pgtls_ca_rotate('$_');" } @$phases);
	($rc, $out, $err) = $node->psql('postgres',
		"DO \$\$ BEGIN $calls RAISE EXCEPTION 'failed after the rotation'; END \$\$;",
		stdout => \$out, stderr => \$err);
	like($err, qr/failed after the rotation/, "rotation $name, then an error in the same statement");
	ok(rot_snapshot() eq $rot_before,
		"rotation $name rolled back: the CA files, bundle, CRLs, server certificate and key and postgresql.auto.conf are untouched");
	is(pgtls_dir(), $rot_dir, "rotation $name rolled back: no file was added to pgtls/ (no kept key, marker or temporary file)");
	is($node->safe_psql('postgres', $states), $states_before, "rotation $name rolled back: the registry's CA states are unchanged");
	my $fresh = client_files($node, 'alice');
	is(issuer_of("$fresh/postgresql.crt"), $old_issuer, "rotation $name rolled back: the old CA still issues");
	$node->connect_ok(client_connstr($fresh, 'alice'), "rotation $name rolled back: its new certificate logs in (verify-full)",
		sql => 'SELECT 1', expected_stdout => qr/^1$/);
	$node->connect_ok(client_connstr($alice, 'alice'), "rotation $name rolled back: the old certificate logs in",
		sql => 'SELECT 1', expected_stdout => qr/^1$/);
	ok(rot_snapshot() eq $rot_before, "rotation $name rolled back: issuing afterwards changed no file either")
	  if $name =~ /activate/;
}

# a transaction block is refused before anything is done
for my $phase (qw(prepare activate retire rollback))
{
	($rc, $out, $err) = $node->psql('postgres', "BEGIN;\nSELECT * FROM pgtls_ca_rotate('$phase');\nCOMMIT;",
		stdout => \$out, stderr => \$err, extra_params => [ '-v', 'VERBOSITY=verbose' ]);
	like($err, qr/25001: pgtls_ca_rotate\(\) cannot run inside a transaction block/,
		"pgtls_ca_rotate('$phase') in BEGIN ... COMMIT is refused (25001)");
}
ok(rot_snapshot() eq $rot_before && $node->safe_psql('postgres', $states) eq $states_before,
	'... and changes no file and no CA state');

# --- a CA request rolled back leaves no key
for my $case (
	[ 'ROLLBACK', "BEGIN;\nSELECT length(pgtls_ca_request('CN=Rolled Back')) > 0;\nROLLBACK;" ],
	[ 'ROLLBACK TO SAVEPOINT', "BEGIN;\nSAVEPOINT s;\nSELECT length(pgtls_ca_request('CN=Rolled Back')) > 0;\nROLLBACK TO SAVEPOINT s;\nCOMMIT;" ],
	[ 'a failing statement', "DO \$\$ BEGIN PERFORM pgtls_ca_request('CN=Rolled Back'); RAISE EXCEPTION 'failed after the request'; END \$\$;" ])
{
	$node->psql('postgres', $case->[1], stdout => \$out, stderr => \$err);
	ok(!-e "$dd/pgtls/ca-request.key" && !-e "$dd/pgtls/ca-request.csr", "a CA request undone by $case->[0] leaves no key and no request");
	is(pgtls_dir(), $rot_dir, "... nor any other file in pgtls/");
}

# --- prepare then rollback in one committed statement: the bundle is the one rollback wrote, not prepare's
my $bundle_before = slurp_file("$dd/pgtls/ca-bundle.crt");
$node->safe_psql('postgres', "DO \$\$ BEGIN PERFORM * FROM pgtls_ca_rotate('prepare'); PERFORM * FROM pgtls_ca_rotate('rollback'); END \$\$;");
is(scalar(() = slurp_file("$dd/pgtls/ca-bundle.crt") =~ /BEGIN CERTIFICATE/g), 1,
	'prepare and rollback in one committed statement: the trust bundle holds the active CA alone');
ok(slurp_file("$dd/pgtls/ca-bundle.crt") eq $bundle_before, '... byte for byte the bundle of before');
$node->connect_ok(client_connstr($alice, 'alice'), '... and a certificate of the active CA logs in',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);

# --- committed in one statement, the phases happen, signed by the CA the statement switched to
$node->safe_psql('postgres', "DO \$\$ BEGIN PERFORM * FROM pgtls_ca_rotate('prepare'); PERFORM * FROM pgtls_ca_rotate('activate'); END \$\$;");
my $new_subject = openssl('x509', '-in', "$dd/pgtls/ca.crt", '-noout', '-subject') =~ s/^subject=\s*|\s+$//gr;
isnt($new_subject, $old_issuer, 'prepare and activate in one committed statement: the CA file holds the new CA');
is(issuer_of("$dd/" . $node->safe_psql('postgres', 'SHOW ssl_cert_file')), $new_subject,
	'... and the installed server certificate comes from it');
is($node->safe_psql('postgres', "SELECT string_agg(state, ',' ORDER BY state) FROM pgtls_cas WHERE state <> 'retired'"),
	'active,previous', '... and the registry records it as active, the old CA as previous');
ok(!-e "$dd/pgtls/ca-switch", '... and no switch marker is left');
my $root = write_file_0600(PostgreSQL::Test::Utils::tempdir . '/root.crt', $node->safe_psql('postgres', 'SELECT pgtls_ca_cert()') . "\n");
(my $alice_str = client_connstr($alice, 'alice')) =~ s/sslrootcert=\S+/sslrootcert=$root/;
$node->connect_ok($alice_str, '... and a certificate of the old CA logs in against the new bundle',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);

# --- committed, the replacement happens
is($node->safe_psql('postgres',
	"SELECT pgtls_import_ca_files('$tmp/other.crt', '$tmp/other.key', replace => true) = pg_read_file('$tmp/other.crt')"),
	't', 'on its own the import commits');
is(slurp_file("$dd/pgtls/ca.crt"), slurp_file("$tmp/other.crt"), '... and the CA file is the imported one');
isnt($node->safe_psql('postgres', $active), $fp_before, '... and the registry records it as active');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgtls_cas WHERE state IN ('next', 'active', 'previous')"),
	'1', '... alone');

# --- a request whose successor in a savepoint rolled back: the first request's key stays, and matches it
($rc, $out, $err) = $node->psql('postgres',
	"BEGIN;\nSELECT pgtls_ca_request('CN=Request A');\nSAVEPOINT s;\nSELECT length(pgtls_ca_request('CN=Request B')) > 0;\nROLLBACK TO SAVEPOINT s;\nCOMMIT;",
	stdout => \$out, stderr => \$err);
my ($csr_a) = $out =~ /(-----BEGIN CERTIFICATE REQUEST-----.*?-----END CERTIFICATE REQUEST-----)/s;
ok(defined $csr_a, 'request A, then request B in a savepoint rolled back: A\'s request was returned') or diag($err);
ok(-e "$dd/pgtls/ca-request.key" && -e "$dd/pgtls/ca-request.csr", '... and its key and request are kept');
is((-e "$dd/pgtls/ca-request.csr" ? slurp_file("$dd/pgtls/ca-request.csr") : "") =~ s/\s+$//r, $csr_a // '', '... the request kept is A\'s');
if (-e "$dd/pgtls/ca-request.key")
{
	is(openssl('pkey', '-in', "$dd/pgtls/ca-request.key", '-pubout'),
		openssl('req', '-in', "$dd/pgtls/ca-request.csr", '-noout', '-pubkey'),
		'... and the key kept is the one of A\'s request');
}
unlink("$dd/pgtls/ca-request.key", "$dd/pgtls/ca-request.csr");

# --- a crash between the switch of the CA files and the commit of activate, then issuances rolled back
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->reload;
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('prepare')");
my $next_fp = $node->safe_psql('postgres', "SELECT fingerprint_sha256 FROM pgtls_cas WHERE state = 'next'");
my $bg = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_safe('SET pgtls_admin.debug_pause_at = 12');
$bg->{stdin} .= "SELECT * FROM pgtls_ca_rotate('activate');\n";
$bg->{run}->pump_nb();
my $waited = 0;
until (slurp_file($node->logfile) =~ /paused at install step 12/ || $waited > 300)
{
	select(undef, undef, undef, 0.1);
	$waited++;
}
ok($waited <= 300, 'activate reached its pause after the switch of the CA files');
kill 'KILL', $pid;
$bg->{run}->kill_kill;
$node->poll_query_until('postgres', 'SELECT true') or die 'the server did not come back';
ok(-e "$dd/pgtls/ca-switch", 'the crash left the switch marker');
for my $case (
	[ 'ROLLBACK', "BEGIN;\nSELECT count(*) FROM pgtls_issue_client('bob');\nROLLBACK;" ],
	[ 'ROLLBACK TO SAVEPOINT', "BEGIN;\nSAVEPOINT s;\nSELECT count(*) FROM pgtls_issue_client('bob');\nROLLBACK TO SAVEPOINT s;\nCOMMIT;" ])
{
	($rc, $out, $err) = $node->psql('postgres', $case->[1], stdout => \$out, stderr => \$err);
	is($out, '1', "after the crash, an issuance undone by $case->[0] ran") or diag($err);
	ok(-e "$dd/pgtls/ca-switch", '... and the switch marker stays: the registry did not record the switch');
}
($rc, $out, $err) = $node->psql('postgres', "SELECT count(*) FROM pgtls_issue_client('bob')", stdout => \$out, stderr => \$err);
is($out, '1', 'then an issuance commits: the registry followed the CA files') or diag($err);
is($node->safe_psql('postgres', $active), $next_fp, '... and records the CA the crash switched to as active');
ok(!-e "$dd/pgtls/ca-switch", '... and the marker went with that commit');

$node->stop;
done_testing();
