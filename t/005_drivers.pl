# The clients people use log in with issued certificates: libpq (psql, with
# PEM files and with an encrypted key), the shipped pgtls-client-cert
# command, psycopg2, pgjdbc (PKCS#8 DER and PKCS#12) and node-postgres.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use MIME::Base64;
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = sql_tls_cluster('drivers');
$node->safe_psql('postgres', 'CREATE ROLE user1 LOGIN;');
my $port = $node->port;

# Key material for one certificate, in every format, written as files.
my $dir = client_files($node, 'user1');
my $pem_key = slurp_file("$dir/postgresql.key");
my $pem_cert = slurp_file("$dir/postgresql.crt");
sub bytea_file
{
	my ($sql, $path) = @_;
	my $b64 = $node->safe_psql('postgres', "SET log_statement = 'none'; SELECT encode(($sql), 'base64')");
	open my $fh, '>:raw', $path or die $!;
	print $fh decode_base64($b64);
	close $fh;
	chmod 0600, $path;
	return $path;
}
my $pk8 = bytea_file("SELECT pgtls_pkcs8_der(\$k\$$pem_key\$k\$)", "$dir/postgresql.pk8");
my $p12 = bytea_file("SELECT pgtls_pkcs12(\$c\$$pem_cert\$c\$, \$k\$$pem_key\$k\$, 'p12-pass', pgtls_ca_cert())",
	"$dir/postgresql.p12");
write_file_0600("$dir/encrypted.key", $node->safe_psql('postgres',
	"SET log_statement = 'none'; SELECT pgtls_encrypt_key(\$k\$$pem_key\$k\$, 'key-pass')") . "\n");

like(openssl('pkey', '-inform', 'DER', '-in', $pk8, '-noout', '-text'), qr/Private-Key: \(256 bit/,
	'pgtls_pkcs8_der is PKCS#8 DER');
like(slurp_file("$dir/encrypted.key"), qr/^-{5}BEGIN ENCRYPTED PRIVATE KEY-{5}/, 'pgtls_encrypt_key is encrypted PKCS#8');

# --- libpq
$node->connect_ok(client_connstr($dir, 'user1'), 'psql with PEM files',
	sql => 'SELECT current_user', expected_stdout => qr/^user1$/);
my $enc = client_connstr($dir, 'user1') =~ s/sslkey=\S+/sslkey=$dir\/encrypted.key/r;
$node->connect_ok("$enc sslpassword=key-pass", 'psql with the encrypted key and sslpassword',
	sql => 'SELECT current_user', expected_stdout => qr/^user1$/);
$node->connect_fails("$enc sslpassword=wrong", '... and not with a wrong sslpassword',
	expected_stderr => qr/could not load private key|bad decrypt/);

# --- pgtls-client-cert: ~/.postgresql, so psql needs no ssl* options
# The tool authenticates the server over TCP (--root: the CA from above) and
# logs in there with a certificate, as pg_hba allows nothing else.
my $home = PostgreSQL::Test::Utils::tempdir;
my $admin_dir = client_files($node, 'postgres');
my $admin = "host=localhost hostaddr=127.0.0.1 port=$port dbname=postgres user=postgres "
  . "sslcert=$admin_dir/postgresql.crt sslkey=$admin_dir/postgresql.key";
my @trust = ('--root', "$dir/root.crt");
{
	local $ENV{HOME} = $home;
	my ($out, $err);
	ok(IPC::Run::run([ 'pgtls-client-cert', @trust, '--role', 'user1', $admin ], '>', \$out, '2>', \$err),
		'pgtls-client-cert succeeds') or diag($err);
	like($out, qr/wrote .*postgresql\.crt, .*postgresql\.key and .*root\.crt: serial [0-9A-F]{32}, valid until/, '... and says what it wrote');
	is(sprintf('%04o', (stat("$home/.postgresql/postgresql.key"))[2] & 07777), '0600', 'the key is 0600');
	is(sprintf('%04o', (stat("$home/.postgresql"))[2] & 07777), '0700', 'the directory is 0700');
	$node->connect_ok("host=localhost hostaddr=127.0.0.1 dbname=postgres user=user1 sslmode=verify-full",
		'psql with sslmode=verify-full and nothing else logs in as user1',
		sql => 'SELECT current_user', expected_stdout => qr/^user1$/);
	my $before = slurp_file("$home/.postgresql/postgresql.crt");
	ok(!IPC::Run::run([ 'pgtls-client-cert', @trust, '--role', 'user1', $admin ], '>', \$out, '2>', \$err),
		'a second run without --force fails');
	like($err, qr/postgresql\.crt exists; pass --force to replace it/, '... saying why');
	is(slurp_file("$home/.postgresql/postgresql.crt"), $before, '... and changes nothing');
	ok(IPC::Run::run([ 'pgtls-client-cert', @trust, '--role', 'user1', '--force', '--key-type', 'ed25519', $admin ],
		'>', \$out, '2>', \$err), 'with --force it replaces the files') or diag($err);
	isnt(slurp_file("$home/.postgresql/postgresql.crt"), $before, '... with a new certificate');
	opendir(my $dh, "$home/.postgresql") or die;
	is_deeply([ sort grep { !/^\.\.?$/ } readdir $dh ], [ 'postgresql.crt', 'postgresql.key', 'root.crt' ],
		'no temporary files are left');
	closedir $dh;
	ok(!IPC::Run::run([ 'pgtls-client-cert', @trust, '--role', 'no_such_role', '--dir', "$home/x", $admin ],
		'>', \$out, '2>', \$err), 'an unknown role fails');
	like($err, qr/role "no_such_role" does not exist/, '... with the server\'s message');
	ok(!-e "$home/x/postgresql.key", '... and writes no key');
}

# --- psycopg2 (Debian's python3-psycopg2)
my $py = <<'PY';
import sys, psycopg2
d, port = sys.argv[1], sys.argv[2]
conn = psycopg2.connect(host="localhost", hostaddr="127.0.0.1", port=port, dbname="postgres", user="user1",
                        sslmode="verify-full", sslrootcert=d + "/root.crt",
                        sslcert=d + "/postgresql.crt", sslkey=d + "/postgresql.key")
cur = conn.cursor()
cur.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
print("%s %s" % cur.fetchone())
PY
my ($out, $err);
IPC::Run::run([ '/usr/bin/python3', '-c', $py, $dir, $port ], '>', \$out, '2>', \$err);
is($out, "user1 True\n", 'psycopg2 logs in with verify-full and the PEM files') or diag($err);

# --- pgjdbc (Debian's libpostgresql-jdbc-java): PKCS#8 DER and PKCS#12
my $jar = '/usr/share/java/postgresql.jar';
my $java_dir = PostgreSQL::Test::Utils::tempdir;
write_file_0600("$java_dir/Login.java", <<'JAVA');
import java.sql.*;
import java.util.Properties;
public class Login {
    public static void main(String[] a) throws Exception {
        Properties p = new Properties();
        p.setProperty("user", "user1");
        p.setProperty("sslmode", "verify-full");
        p.setProperty("sslrootcert", a[1]);
        p.setProperty("sslkey", a[2]);
        if (a.length > 3) p.setProperty("sslcert", a[3]);
        if (a.length > 4) p.setProperty("sslpassword", a[4]);
        try (Connection c = DriverManager.getConnection("jdbc:postgresql://localhost:" + a[0] + "/postgres", p);
             ResultSet r = c.createStatement().executeQuery("SELECT current_user")) {
            r.next();
            System.out.println(r.getString(1));
        }
    }
}
JAVA
ok(IPC::Run::run([ 'javac', '-cp', $jar, '-d', $java_dir, "$java_dir/Login.java" ], '>', \$out, '2>', \$err),
	'the JDBC client compiles') or diag($err);
IPC::Run::run([ 'java', '-cp', "$jar:$java_dir", 'Login', $port, "$dir/root.crt", $pk8, "$dir/postgresql.crt" ],
	'>', \$out, '2>', \$err);
is($out, "user1\n", 'pgjdbc logs in with verify-full and the PKCS#8 DER key') or diag($err);
IPC::Run::run([ 'java', '-cp', "$jar:$java_dir", 'Login', $port, "$dir/root.crt", $p12, "", 'p12-pass' ],
	'>', \$out, '2>', \$err);
is($out, "user1\n", 'pgjdbc logs in with verify-full and the PKCS#12 file') or diag($err);

# --- node-postgres (npm "pg")
my $node_dir = PostgreSQL::Test::Utils::tempdir;
ok(IPC::Run::run([ 'npm', 'install', '--prefix', $node_dir, '--no-audit', '--no-fund', '--silent', 'pg@8' ],
	'>', \$out, '2>', \$err), 'npm installs pg') or diag($err);
write_file_0600("$node_dir/login.js", <<'JS');
const fs = require('fs');
const { Client } = require('pg');
const [dir, port] = process.argv.slice(2);
const client = new Client({
  host: '127.0.0.1', port: Number(port), user: 'user1', database: 'postgres',
  ssl: { servername: 'localhost', rejectUnauthorized: true,
         ca: fs.readFileSync(dir + '/root.crt', 'utf8'),
         cert: fs.readFileSync(dir + '/postgresql.crt', 'utf8'),
         key: fs.readFileSync(dir + '/postgresql.key', 'utf8') },
});
client.connect()
  .then(() => client.query('SELECT current_user AS u'))
  .then((r) => { console.log(r.rows[0].u); return client.end(); })
  .catch((e) => { console.error(e.message); process.exit(1); });
JS
{
	local $ENV{NODE_PATH} = "$node_dir/node_modules";
	IPC::Run::run([ 'node', "$node_dir/login.js", $dir, $port ], '>', \$out, '2>', \$err);
}
is($out, "user1\n", 'node-postgres logs in with a verified TLS connection and the PEM files') or diag($err);

# pgtls-client-cert sends certificate requests (public keys, logged with
# every statement here); every other DER in the log would be a key.
my $server_log = slurp_file($node->logfile);
like($server_log, qr/pgtls_sign_client_csr\(.*-----BEGIN CERTIFICATE REQUEST-----/s,
	'pgtls-client-cert sent certificate requests');
$server_log =~ s/-----BEGIN CERTIFICATE REQUEST-----.*?-----END CERTIFICATE REQUEST-----//gs;
unlike($server_log, qr/PRIVATE KEY|MII[A-Za-z0-9+\/]{20}|MC4CAQ|MIG[A-Za-z0-9+\/]{20}|p12-pass|key-pass/,
	'no key or passphrase in the server log');

$node->stop;
done_testing();
