# A revocation is never undone by something else: a second database, a
# DROP and CREATE EXTENSION, a restore in either order (registry first, or
# CA first), a pg_upgrade, or moving the CA to a new cluster.  Every verdict
# is a real login.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $a = sql_tls_cluster('origin');
open my $hba, '>>', $a->data_dir . '/pg_hba.conf' or die;
print $hba "local replication all trust\n";
close $hba;
$a->append_conf('postgresql.conf', "max_wal_senders = 2\nwal_level = replica\n");
$a->restart;
$a->safe_psql('postgres', 'CREATE ROLE user1 LOGIN; CREATE ROLE user2 LOGIN;');
my %cert = map { $_ => client_files($a, $_) } qw(user1 user2);
sub serial_of
{
	my ($d) = @_;
	return uc(openssl('x509', '-in', "$d/postgresql.crt", '-noout', '-serial') =~ s/^serial=|\s+$//gr);
}
$a->safe_psql('postgres', "SELECT pgtls_revoke('" . serial_of($cert{user1}) . "', 'keyCompromise')");

sub verdicts
{
	my ($node, $what) = @_;
	$node->connect_fails(client_connstr($cert{user1}, 'user1'), "$what: the revoked certificate is refused",
		expected_stderr => qr/certificate revoked/);
	$node->connect_ok(client_connstr($cert{user2}, 'user2'), "$what: the other one logs in",
		sql => 'SELECT current_user', expected_stdout => qr/^user2$/);
	return;
}
verdicts($a, 'origin');

# --- one registry per cluster
$a->safe_psql('postgres', 'CREATE DATABASE other');
my ($rc, $out, $err) = (0, '', '');
$rc = $a->psql('other', 'CREATE EXTENSION pgtls_admin', stdout => \$out, stderr => \$err);
like($err, qr/ERROR:  pgtls_admin is installed in database "postgres" already\n.*\n.*drop it there first/,
	'CREATE EXTENSION in a second database is refused');
is($a->safe_psql('other', "SELECT count(*) FROM pg_extension WHERE extname = 'pgtls_admin'"), 0,
	'... and nothing was created there');

# --- DROP and CREATE EXTENSION keep the revocations of the CA's CRL
$a->safe_psql('postgres', 'DROP EXTENSION pgtls_admin');
ok(!-e $a->data_dir . '/pgtls/registry', 'DROP EXTENSION releases the claim');
$rc = $a->psql('other', 'CREATE EXTENSION pgtls_admin; DROP EXTENSION pgtls_admin;', stdout => \$out, stderr => \$err);
is($rc, 0, '... so another database may now hold the registry') or diag($err);
$a->safe_psql('postgres', 'CREATE EXTENSION pgtls_admin');
is($a->safe_psql('postgres', 'SELECT serial FROM pgtls_revoked_serials'), serial_of($cert{user1}),
	'CREATE EXTENSION again keeps the revocation of the CRL');
like(slurp_file($a->logfile), qr/the new registry keeps 1 revocation of the existing CRL/, '... and says so in the log');
$a->safe_psql('postgres', 'SELECT count(*) FROM pgtls_enable_ssl()');
verdicts($a, 'after DROP and CREATE EXTENSION and pgtls_enable_ssl()');
is($a->safe_psql('postgres', "SELECT revocation_reason FROM pgtls_revoked_serials"), 'keyCompromise',
	'... with its reason');

# Start over with a full registry for the dump.
$a->safe_psql('postgres', 'CREATE ROLE user3 LOGIN');
$cert{user3} = client_files($a, 'user3');
is($a->safe_psql('postgres', "SELECT count(*) FROM pgtls_certificates WHERE kind = 'ca'"), 1,
	'the new registry recorded the CA it found in the files');
my $rows = $a->safe_psql('postgres', 'SELECT count(*) FROM pgtls_certificates');
my $serials = $a->safe_psql('postgres', "SELECT string_agg(quote_literal(serial), ',') FROM pgtls_certificates");
my $backup_dir = PostgreSQL::Test::Utils::tempdir;
my $dump = "$backup_dir/registry.dump";
$a->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $a->connstr('postgres') ], 'pg_dump of the registry database');
# the CA moves with its two files; the key keeps mode 0600
write_file_0600("$backup_dir/ca.crt", slurp_file($a->data_dir . '/pgtls/ca.crt'));
write_file_0600("$backup_dir/ca.key", slurp_file($a->data_dir . '/pgtls/ca.key'));

sub new_cluster
{
	my ($name) = @_;
	my $n = PostgreSQL::Test::Cluster->new($name);
	$n->init;
	$n->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
	write_cert_only_hba($n);
	$n->start;
	$n->safe_psql('postgres', 'CREATE ROLE user1 LOGIN; CREATE ROLE user2 LOGIN; CREATE ROLE user3 LOGIN;');
	return $n;
}

# --- restore first, then adopt the CA and turn TLS on
my $b = new_cluster('restore_first');
$b->command_ok([ 'pg_restore', '-d', $b->connstr('postgres'), $dump ], 'pg_restore into an empty cluster');
$b->safe_psql('postgres', "SELECT length(pgtls_import_ca_files('$backup_dir/ca.crt', '$backup_dir/ca.key')) > 0");
$b->safe_psql('postgres', 'SELECT count(*) FROM pgtls_enable_ssl()');
is($b->safe_psql('postgres', "SELECT count(*) FROM pgtls_certificates WHERE serial IN ($serials)"), $rows,
	'restore first: every registry row is there');
verdicts($b, 'restore first');

# --- the natural order: extension, old CA, TLS, then the dump
my $c = new_cluster('ca_first');
$c->safe_psql('postgres', "CREATE EXTENSION pgtls_admin; SELECT length(pgtls_import_ca_files('$backup_dir/ca.crt', '$backup_dir/ca.key')) > 0;"
	  . 'SELECT count(*) FROM pgtls_enable_ssl();');
$c->command_ok([ 'pg_restore', '-d', $c->connstr('postgres'), $dump ],
	'pg_restore after the CA was imported and TLS enabled: no duplicate-key failure');
is($c->safe_psql('postgres', "SELECT count(*) FROM pgtls_certificates WHERE serial IN ($serials)"), $rows,
	'CA first: no row is lost (the CA row is merged)');
is($c->safe_psql('postgres', 'SELECT pgtls_refresh_crl() >= 1'), 't', 'pgtls_refresh_crl() rebuilds the CRL after the restore');
verdicts($c, 'CA first');
$c->connect_ok(client_connstr($cert{user3}, 'user3'), 'CA first: a certificate issued before the dump logs in',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);
# a revoked row restored over an unrevoked one stays revoked
$c->safe_psql('postgres', 'CREATE ROLE user4 LOGIN');
is($c->safe_psql('postgres', "SELECT count(*) FROM pgtls_revoked_certificates WHERE serial = '" . serial_of($cert{user1}) . "'"), 1,
	'the revocation came with the dump');

# --- a base backup holds the CA key: the documented risk
$a->backup('hold');
ok(-s $a->backup_dir . '/hold/pgtls/ca.key', 'a base backup holds the CA key (see SECURITY.md)');

# --- pg_upgrade (15 to 15 proves the steps): registry in the catalog, pgtls/ by hand
my $old = $a;
my $new = PostgreSQL::Test::Cluster->new('upgraded');
$new->init;
$old->stop;
my $bindir = $old->config_data('--bindir');
my $work = PostgreSQL::Test::Utils::tempdir;
$new->command_ok(
	[
		'pg_upgrade', '--no-sync', '-d', $old->data_dir, '-D', $new->data_dir,
		'-b', $bindir, '-B', $bindir, '-s', $new->host, '-p', $old->port, '-P', $new->port
	],
	'pg_upgrade') if chdir $work;
# the steps README gives: copy pgtls/, install the server certificate files, cert-only pg_hba
system('cp', '-a', $old->data_dir . '/pgtls', $new->data_dir . '/') == 0 or die 'copy pgtls';
$new->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
write_cert_only_hba($new);
$new->start;
my ($crt) = map { s{.*/}{}r } glob($new->data_dir . '/pgtls/server-*.crt');
my $server_key = $crt =~ s/\.crt$/.key/r;
$new->safe_psql('postgres', "SELECT * FROM pgtls_install_server_cert_files('pgtls/$crt', 'pgtls/$server_key')");
is($new->safe_psql('postgres', 'SHOW ssl'), 'on', 'after pg_upgrade the documented steps turn TLS on');
verdicts($new, 'after pg_upgrade');
$new->stop;
$b->stop;
$c->stop;
done_testing();
