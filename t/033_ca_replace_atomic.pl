# Replacing the CA writes its files only when the statement's transaction
# commits: pgtls_init_ca(replace => true) and the imports refuse a
# transaction block (25001), and when the statement that called them fails
# afterwards, the old CA's files, trust bundle and CRLs are untouched, the
# registry agrees with them, and a certificate of the old CA still logs in
# with verify-full.
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
sub pgtls_dir { opendir(my $dh, "$dd/pgtls") or die; my @n = sort grep { !/^\./ } readdir $dh; return "@n"; }
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

# --- committed, the replacement happens
is($node->safe_psql('postgres',
	"SELECT pgtls_import_ca_files('$tmp/other.crt', '$tmp/other.key', replace => true) = pg_read_file('$tmp/other.crt')"),
	't', 'on its own the import commits');
is(slurp_file("$dd/pgtls/ca.crt"), slurp_file("$tmp/other.crt"), '... and the CA file is the imported one');
isnt($node->safe_psql('postgres', $active), $fp_before, '... and the registry records it as active');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgtls_cas WHERE state IN ('next', 'active', 'previous')"),
	'1', '... alone');

$node->stop;
done_testing();
