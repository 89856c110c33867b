# pgtls-client-cert on real clusters: the key is made on the client and only
# a CSR goes to the server, the server is authenticated (--root or a pinned
# CA fingerprint) before anything is written, a man in the middle is refused,
# and the files land only where they belong.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use File::Spec;
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# libpq wants the client files owned by the connecting OS user: the tool
# runs as that user, never as root (initdb refuses root anyway).
isnt($>, 0, 'the tool runs as a non-root OS user');

my $node = sql_tls_cluster('tool');
# Everything a server could record of a statement.
$node->append_conf('postgresql.conf', <<'CONF');
log_statement = all
log_min_duration_statement = 0
log_min_error_statement = debug5
log_connections = on
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
track_activity_query_size = 65536
CONF
$node->restart;
$node->safe_psql('postgres', <<'SQL');
CREATE EXTENSION pg_stat_statements;
CREATE ROLE user1 LOGIN;
CREATE ROLE user2 LOGIN;
CREATE ROLE user3 LOGIN;
CREATE ROLE "o'neil/x+y\zé" LOGIN;
CREATE ROLE issuer LOGIN;
GRANT EXECUTE ON FUNCTION pgtls_sign_client_csr(name, text, int, interval) TO issuer;
GRANT user3 TO issuer WITH ADMIN OPTION;
SQL
my $port = $node->port;
my $ca_pem = $node->safe_psql('postgres', 'SELECT pgtls_ca_cert()') . "\n";
my $ca_fp = $node->safe_psql('postgres', 'SELECT fingerprint_sha256 FROM pgtls_cert_info(pgtls_ca_cert())');
like($ca_fp, qr/^[0-9A-F]{2}(:[0-9A-F]{2}){31}$/, 'the CA has a SHA-256 fingerprint');

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $ca_file = write_file_0600("$tmp/ca.crt", $ca_pem);

# The issuers log in over TCP with certificates of their own (pg_hba has
# only "hostssl ... cert" for TCP).
my $admin_files = client_files($node, 'postgres');
my $issuer_files = client_files($node, 'issuer');
sub tcp_conninfo
{
	my ($n, $files, $user, $extra) = @_;
	return
	    "host=localhost hostaddr=127.0.0.1 port="
	  . $n->port
	  . " dbname=postgres user=$user sslcert=$files/postgresql.crt sslkey=$files/postgresql.key"
	  . ($extra ? " $extra" : '');
}
my $admin = tcp_conninfo($node, $admin_files, 'postgres');

# Run the tool; returns (exit status, stdout, stderr).
sub tool
{
	my (@args) = @_;
	my %env;
	%env = %{ shift @args } if ref $args[0] eq 'HASH';
	my ($out, $err) = ('', '');
	local %ENV = %ENV;
	for my $k (keys %env)
	{
		if (defined $env{$k}) { $ENV{$k} = $env{$k}; }
		else { delete $ENV{$k}; }
	}
	IPC::Run::run([ 'pgtls-client-cert', @args ], '<', \undef, '>', \$out, '2>', \$err);
	return ($? >> 8, $out, $err);
}

sub entries
{
	my ($d) = @_;
	opendir(my $dh, $d) or return ['<missing>'];
	my @e = sort grep { !/^\.\.?$/ } readdir $dh;
	closedir $dh;
	return \@e;
}

sub mode_of { return sprintf('%04o', (stat($_[0]))[2] & 07777); }

# --- --help and usage errors
my ($rc, $out, $err) = tool('--help');
is($rc, 0, '--help exits 0');
for my $opt (qw(--role --dir --days --key-type --root --ca-fingerprint --force --help))
{
	like($out, qr/^\s+(-h, )?\Q$opt\E\b/m, "--help documents $opt");
}
like($out, qr/Exit status: 0 .*1 on any failure.*2 on a usage error/s, '--help documents the exit codes');
like($out, qr/ec-p256 \(default\), ec-p384, ed25519, rsa-2048,\s+rsa-3072 or rsa-4096/, '--help lists the key types');

for my $case (
	[ [ '--bogus', $admin ], qr/unknown option --bogus/ ],
	[ [ '--root', $ca_file, '--ca-fingerprint', $ca_fp, $admin ], qr/not both/ ],
	[ [ '--root', $ca_file, '--key-type', 'dsa-1024', $admin ], qr/--key-type must be one of/ ],
	[ [ '--ca-fingerprint', 'abcd', $admin ], qr/64 hex digits/ ],
	[ [ '--root', $ca_file, '--days', 'ten', $admin ], qr/--days must be a positive whole number/ ],
	[ [ '--root', $ca_file, $admin, $admin ], qr/only one connection string/ ],
	[ [ '--root' ], qr/--root needs a value/ ])
{
	($rc, $out, $err) = tool({ HOME => "$tmp/usage-home" }, @{ $case->[0] });
	is($rc, 2, "usage error exits 2: @{ $case->[0] }[0]");
	like($err, $case->[1], '... saying why');
}
ok(!-e "$tmp/usage-home", 'usage errors write nothing');

# --- HOME unset, no --dir
($rc, $out, $err) = tool({ HOME => undef }, '--root', $ca_file, '--role', 'user1', $admin);
is($rc, 2, 'HOME unset and no --dir: refused');
like($err, qr/HOME is not set.*pass --dir DIR/, '... with a clear message');

# --- first contact: no --root, no pin
my $home = "$tmp/home";
mkdir $home or die;
($rc, $out, $err) = tool({ HOME => $home }, '--role', 'user1', $admin);
is($rc, 1, 'without --root or --ca-fingerprint the tool refuses');
like($err, qr/UNVERIFIED; compare it with your DBA's/, '... labels the fingerprint as unverified');
like($err, qr/SHA-256 fingerprint: \Q$ca_fp\E$/m, '... and prints the fingerprint of the CA the server presents');
like($err, qr/--ca-fingerprint \Q$ca_fp\E/, '... ready to be pinned');
is_deeply(entries($home), [], '... and writes nothing');

# --- --root, into ~/.postgresql; the conninfo's sslmode=disable is overridden
my $log_from = -s $node->logfile;
($rc, $out, $err) = tool({ HOME => $home }, '--root', $ca_file, '--role', 'user1', "$admin sslmode=disable sslrootcert=/nonexistent");
is($rc, 0, '--root: the tool succeeds (forcing verify-full over sslmode=disable)') or diag($err);
like($out, qr/^wrote \Q$home\E\/\.postgresql\/postgresql\.crt, .*postgresql\.key and .*root\.crt: serial ([0-9A-F]{32}), valid until/m,
	'... and says what it wrote');
my ($serial1) = $out =~ /serial ([0-9A-F]{32})/;
my $pgdir = "$home/.postgresql";
is(mode_of($pgdir), '0700', 'the directory is created 0700');
is_deeply(entries($pgdir), [ 'postgresql.crt', 'postgresql.key', 'root.crt' ], 'exactly three files, no temporary ones');
for my $f (qw(postgresql.crt postgresql.key root.crt))
{
	is(mode_of("$pgdir/$f"), '0600', "$f is 0600");
	is((stat("$pgdir/$f"))[4], $>, "$f is owned by the connecting OS user");
}
is(slurp_file("$pgdir/root.crt"), $ca_pem, 'root.crt is the --root file');
like(slurp_file("$pgdir/postgresql.key"), qr/^-{5}BEGIN PRIVATE KEY-{5}/, 'the key is PKCS#8 PEM');
like(openssl('pkey', '-in', "$pgdir/postgresql.key", '-noout', '-text'), qr/ASN1 OID: prime256v1/, 'the default key is EC P-256');
is(openssl('x509', '-in', "$pgdir/postgresql.crt", '-noout', '-pubkey'),
	openssl('pkey', '-in', "$pgdir/postgresql.key", '-pubout'), 'the certificate is for the key made on the client');
is($node->safe_psql('postgres', "SELECT kind || ' ' || role FROM pgtls_certificates WHERE serial = '$serial1'"),
	'client user1', 'the registry records the certificate');
my $log = substr(slurp_file($node->logfile), $log_from);
like($log, qr/pgtls_sign_client_csr/, 'the server signed a CSR');
unlike($log, qr/pgtls_issue_client/, '... and made no key');
{
	local $ENV{HOME} = $home;
	$node->connect_ok("host=localhost hostaddr=127.0.0.1 dbname=postgres user=user1 sslmode=verify-full",
		'psql with sslmode=verify-full and the written files logs in as user1',
		sql => 'SELECT current_user', expected_stdout => qr/^user1$/);
}

# --- --force
my %before = map { $_ => slurp_file("$pgdir/$_") } qw(postgresql.crt postgresql.key root.crt);
($rc, $out, $err) = tool({ HOME => $home }, '--root', $ca_file, '--role', 'user1', $admin);
is($rc, 1, 'a second run without --force fails');
like($err, qr/postgresql\.crt exists; pass --force to replace it/, '... saying why');
is(slurp_file("$pgdir/$_"), $before{$_}, "... and leaves $_ alone") for sort keys %before;
($rc, $out, $err) = tool({ HOME => $home }, '--root', $ca_file, '--role', 'user1', '--force', $admin);
is($rc, 0, 'with --force it replaces the files') or diag($err);
isnt(slurp_file("$pgdir/postgresql.crt"), $before{'postgresql.crt'}, '... with a new certificate');
isnt(slurp_file("$pgdir/postgresql.key"), $before{'postgresql.key'}, '... and a new key');
is_deeply(entries($pgdir), [ 'postgresql.crt', 'postgresql.key', 'root.crt' ], '... leaving no temporary files');
is(mode_of("$pgdir/postgresql.key"), '0600', '... the new key 0600');

# --- --ca-fingerprint: colons and case do not matter
my $dir2 = "$tmp/pinned";
(my $fp_plain = lc $ca_fp) =~ s/://g;
($rc, $out, $err) = tool('--ca-fingerprint', $fp_plain, '--role', 'user2', '--dir', $dir2, '--key-type', 'ed25519', $admin);
is($rc, 0, '--ca-fingerprint (lower case, no colons): the tool succeeds') or diag($err);
is(slurp_file("$dir2/root.crt") =~ s/\s+\z//r, $ca_pem =~ s/\s+\z//r, 'root.crt is the pinned CA');
like(openssl('pkey', '-in', "$dir2/postgresql.key", '-noout', '-text'), qr/ED25519 Private-Key/, '--key-type ed25519 makes an Ed25519 key');
$node->connect_ok(client_connstr($dir2, 'user2'), 'psql with verify-full and the pinned files logs in as user2',
	sql => 'SELECT current_user', expected_stdout => qr/^user2$/);

# --- the forced settings win in a URI and next to a bare database name too
my $uri = "postgresql://postgres\@localhost:$port/postgres?hostaddr=127.0.0.1&sslmode=disable"
  . "&sslcert=$admin_files/postgresql.crt&sslkey=$admin_files/postgresql.key&sslrootcert=/nonexistent";
($rc, $out, $err) = tool('--ca-fingerprint', $ca_fp, '--role', 'user2', '--dir', "$tmp/uri", $uri);
is($rc, 0, 'a URI with sslmode=disable: pinned, verified and signed') or diag($err);
$node->connect_ok(client_connstr("$tmp/uri", 'user2'), '... and the files log in',
	sql => 'SELECT current_user', expected_stdout => qr/^user2$/);
($rc, $out, $err) = tool(
	{
		PGHOST => 'localhost', PGHOSTADDR => '127.0.0.1', PGPORT => $port, PGUSER => 'postgres',
		PGSSLMODE => 'disable', PGSSLCERT => "$admin_files/postgresql.crt", PGSSLKEY => "$admin_files/postgresql.key"
	},
	'--root', $ca_file, '--role', 'user2', '--dir', "$tmp/bare", 'postgres');
is($rc, 0, 'a bare database name with PG* variables (PGSSLMODE=disable): verified and signed') or diag($err);
ok(-s "$tmp/bare/postgresql.crt", '... and the files are written');

# --- every key type, and a role name with characters -subj treats specially
my %kt = (
	'ec-p256' => [ qr/ASN1 OID: prime256v1/, 'EC P-256' ],
	'ec-p384' => [ qr/ASN1 OID: secp384r1/, 'EC P-384' ],
	'rsa-2048' => [ qr/Private-Key: \(2048 bit/, 'RSA 2048' ],
	'rsa-3072' => [ qr/Private-Key: \(3072 bit/, 'RSA 3072' ],
	'rsa-4096' => [ qr/Private-Key: \(4096 bit/, 'RSA 4096' ]);
for my $t (sort keys %kt)
{
	my $d = "$tmp/kt-$t";
	($rc, $out, $err) = tool('--root', $ca_file, '--role', "o'neil/x+y\\zé", '--dir', $d, '--key-type', $t, '--days', '7', $admin);
	is($rc, 0, "--key-type $t: the tool succeeds") or diag($err);
	like(openssl('pkey', '-in', "$d/postgresql.key", '-noout', '-text'), $kt{$t}[0], "... with a $kt{$t}[1] key");
	my ($s) = $out =~ /serial ([0-9A-F]{32})/;
	is($node->safe_psql('postgres', "SELECT not_after - not_before < interval '8 days' FROM pgtls_certificates WHERE serial = '$s'"),
		't', '... valid for --days');
}
$node->connect_ok(client_connstr("$tmp/kt-rsa-2048", "o'neil/x+y\\zé"),
	'the CN is the role name byte for byte: the role with quote, slash, plus, backslash and a non-ASCII letter logs in',
	sql => 'SELECT current_user', expected_stdout => qr/^o'neil\/x\+y\\zé$/);

# --- a man in the middle: another server with its own CA
my $rogue = sql_tls_cluster('rogue');
$rogue->append_conf('postgresql.conf', "log_statement = all\n");
$rogue->reload;
my $rogue_admin = tcp_conninfo($rogue, client_files($rogue, 'postgres'), 'postgres');
my $rogue_fp = $rogue->safe_psql('postgres', 'SELECT fingerprint_sha256 FROM pgtls_cert_info(pgtls_ca_cert())');
isnt($rogue_fp, $ca_fp, 'the second server has another CA');
my $mitm_dir = "$tmp/mitm";

($rc, $out, $err) = tool('--root', $ca_file, '--role', 'user1', '--dir', $mitm_dir, $rogue_admin);
is($rc, 1, '--root of the real CA against a server with another CA: refused');
like($err, qr/certificate verify failed/, '... libpq could not verify it');
like($err, qr/could not connect to a server authenticated by \Q$ca_file\E; nothing was written/, '... the tool says so');
ok(!-e $mitm_dir, '... and nothing was written');

($rc, $out, $err) = tool('--ca-fingerprint', $ca_fp, '--role', 'user1', '--dir', $mitm_dir, $rogue_admin);
is($rc, 1, 'the real CA pinned, against a server with another CA: refused');
like($err, qr/has SHA-256 fingerprint \Q$rogue_fp\E, not the one pinned/, '... naming the fingerprint it saw');
ok(!-e $mitm_dir, '... and nothing was written');

(my $wrong = $ca_fp) =~ s/^(..)/$1 eq '00' ? '01' : '00'/e;
($rc, $out, $err) = tool('--ca-fingerprint', $wrong, '--role', 'user1', '--dir', $mitm_dir, $admin);
is($rc, 1, 'a wrong --ca-fingerprint against the real server: refused');
like($err, qr/not the one pinned with --ca-fingerprint/, '... saying why');
ok(!-e $mitm_dir, '... and nothing was written');

# The man in the middle answers SQL with the real CA, but cannot show a
# server certificate that CA signed.
$rogue->safe_psql('postgres', <<"SQL");
CREATE SCHEMA mitm;
CREATE FUNCTION mitm.pgtls_ca_cert() RETURNS text LANGUAGE sql AS \$ca\$SELECT \$pem\$$ca_pem\$pem\$\$ca\$;
ALTER ROLE postgres SET search_path = mitm, public;
SQL
($rc, $out, $err) = tool('--ca-fingerprint', $ca_fp, '--role', 'user1', '--dir', $mitm_dir, $rogue_admin);
is($rc, 1, 'a server that returns the pinned CA but presents a certificate of another CA: refused');
like($err, qr/the certificate the server at 127\.0\.0\.1:\d+ presents is not valid for localhost under the pinned CA/,
	'... because its certificate does not chain to the pinned CA');
ok(!-e $mitm_dir, '... and nothing was written');
unlike(slurp_file($rogue->logfile), qr/CERTIFICATE REQUEST|pgtls_sign_client_csr/, '... and no CSR went to it');

# The real server, under a name its certificate does not carry.
($rc, $out, $err) = tool('--ca-fingerprint', $ca_fp, '--role', 'user1', '--dir', $mitm_dir,
	$admin =~ s/host=localhost/host=db.invalid/r);
is($rc, 1, 'the pinned CA, but a host name the server certificate does not name: refused');
like($err, qr/not valid for db\.invalid under the pinned CA/, '... the host name is checked');
ok(!-e $mitm_dir, '... and nothing was written');

# --- the connection must be TLS: libpq ignores sslmode on a Unix socket
($rc, $out, $err) = tool('--root', $ca_file, '--role', 'user1', '--dir', $mitm_dir,
	'host=' . $node->host . " port=$port dbname=postgres");
is($rc, 1, 'a Unix-domain socket connection: refused');
like($err, qr/Unix-domain socket .* cannot be authenticated/, '... saying why');
ok(!-e $mitm_dir, '... and nothing was written');

# --- where the files go
my $real = "$tmp/real";
mkdir $real or die;
symlink($real, "$tmp/link") or die;
($rc, $out, $err) = tool('--root', $ca_file, '--role', 'user1', '--dir', "$tmp/link", $admin);
is($rc, 1, 'a symlinked directory: refused');
like($err, qr/link is a symbolic link: refusing to write through it/, '... saying why');
is_deeply(entries($real), [], '... and nothing was written behind it');
($rc, $out, $err) = tool('--root', $ca_file, '--role', 'user1', '--dir', "$tmp/link/", $admin);
is($rc, 1, '... also when named with a trailing slash');

my $sym = "$tmp/sym";
mkdir $sym, 0700 or die;
write_file_0600("$tmp/victim", "precious\n");
symlink("$tmp/victim", "$sym/postgresql.key") or die;
($rc, $out, $err) = tool('--root', $ca_file, '--role', 'user1', '--dir', $sym, '--force', $admin);
is($rc, 1, 'a symlinked target file: refused, even with --force');
like($err, qr/postgresql\.key is a symbolic link: refusing to write through it/, '... saying why');
is(slurp_file("$tmp/victim"), "precious\n", '... the file behind it is untouched');
is_deeply(entries($sym), ['postgresql.key'], '... and nothing else was written');

my $dd = "$tmp/dirtarget";
mkdir $dd, 0700 or die;
mkdir "$dd/postgresql.crt" or die;
($rc, $out, $err) = tool('--root', $ca_file, '--role', 'user1', '--dir', $dd, '--force', $admin);
is($rc, 1, 'a target path that is a directory: refused, even with --force');
like($err, qr/postgresql\.crt is a directory: refusing to replace it/, '... saying why');
is_deeply(entries($dd), ['postgresql.crt'], '... and nothing was written');
is_deeply(entries("$dd/postgresql.crt"), [], '... nor into it');

my $open = "$tmp/open";
mkdir $open or die;
chmod 0777, $open or die;
($rc, $out, $err) = tool('--root', $ca_file, '--role', 'user1', '--dir', $open, $admin);
is($rc, 1, 'a directory writable by others: refused');
like($err, qr/open is writable by other users/, '... saying why');
is_deeply(entries($open), [], '... and nothing was written');

# A directory owned by another user: /tmp belongs to root and is writable
# by everyone, so only the ownership check stands between the tool and it.
my $tmpdir_owner = (stat('/tmp'))[4];
SKIP:
{
	skip '/tmp belongs to the test user', 3 if $tmpdir_owner == $>;
	my @pre = grep { -e "/tmp/$_" } qw(postgresql.crt postgresql.key root.crt);
	($rc, $out, $err) = tool('--root', $ca_file, '--role', 'user1', '--dir', '/tmp', $admin);
	is($rc, 1, 'a directory owned by another user (/tmp, root\'s): refused');
	like($err, qr{/tmp is owned by another user \(uid $tmpdir_owner\)}, '... saying why');
	is_deeply([ grep { -e "/tmp/$_" } qw(postgresql.crt postgresql.key root.crt) ], \@pre, '... and nothing was written');
}

# --- a delegated issuer
my $issuer = tcp_conninfo($node, $issuer_files, 'issuer');
my $dir3 = "$tmp/issued";
($rc, $out, $err) = tool('--root', $ca_file, '--dir', $dir3, $issuer);
is($rc, 1, 'a delegated issuer without --role: refused');
like($err, qr/pass --role ROLE: you connected as "issuer", which may issue certificates for other roles but, not being a superuser, not for itself/,
	'... and the tool explains why');
ok(!-e $dir3, '... and nothing was written');
($rc, $out, $err) = tool('--ca-fingerprint', $ca_fp, '--role', 'user3', '--dir', $dir3, $issuer);
is($rc, 1, 'a delegated issuer without EXECUTE on pgtls_ca_cert() cannot pin');
like($err, qr/needs EXECUTE on pgtls_ca_cert\(\) \(or pass --root/, '... and is told what to do');
ok(!-e $dir3, '... and nothing was written');
($rc, $out, $err) = tool('--root', $ca_file, '--role', 'user3', '--dir', $dir3, $issuer);
is($rc, 0, 'a delegated issuer with --role: the tool succeeds') or diag($err);
$node->connect_ok(client_connstr($dir3, 'user3'), '... and user3 logs in with the files',
	sql => 'SELECT current_user', expected_stdout => qr/^user3$/);
($rc, $out, $err) = tool('--root', $ca_file, '--role', 'no_such_role', '--dir', "$tmp/x", $admin);
is($rc, 1, 'an unknown role fails');
like($err, qr/role "no_such_role" does not exist/, '... with the server\'s message');
ok(!-e "$tmp/x", '... and writes nothing, not even the directory');

# --- no openssl command: no fallback to a key made on the server
my $bin = "$tmp/bin";
mkdir $bin or die;
my ($psql) = grep { -x "$_/psql" } File::Spec->path;
symlink("$psql/psql", "$bin/psql") or die;
my ($self) = grep { -x "$_/pgtls-client-cert" } File::Spec->path;
$log_from = -s $node->logfile;
($rc, $out, $err) = (undef, '', '');
IPC::Run::run([ "$self/pgtls-client-cert", '--root', $ca_file, '--role', 'user1', '--dir', "$tmp/noossl", $admin ],
	'<', \undef, '>', \$out, '2>', \$err, init => sub { $ENV{PATH} = $bin });
is($? >> 8, 1, 'without the openssl command the tool fails');
like($err, qr/the openssl command was not found: it makes the private key on this machine/, '... saying why');
ok(!-e "$tmp/noossl", '... writes nothing');
unlike(substr(slurp_file($node->logfile), $log_from), qr/pgtls_issue_client/, '... and asks the server for no key');

# --- the private keys never reached the server
my $server_log = slurp_file($node->logfile);
unlike($server_log, qr/PRIVATE KEY/, 'no "PRIVATE KEY" in the server log');
my $stats = $node->safe_psql('postgres', 'SELECT string_agg(query, chr(10)) FROM pg_stat_statements');
like($stats, qr/pgtls_sign_client_csr/, 'pg_stat_statements saw the signing calls');
my $keys_checked = 0;
for my $kf (glob("$tmp/*/postgresql.key"), "$pgdir/postgresql.key")
{
	my @body = grep { length >= 40 && !/-----/ } split /\n/, slurp_file($kf);
	for my $line (@body)
	{
		die "key body line found in the server log: $kf" if index($server_log, $line) >= 0;
		die "key body line found in pg_stat_statements: $kf" if index($stats, $line) >= 0;
	}
	$keys_checked++ if @body;
}
ok($keys_checked >= 10, "no line of the base64 body of any of the $keys_checked keys the tool made is in the server log or pg_stat_statements");

$rogue->stop;
$node->stop;
done_testing();
