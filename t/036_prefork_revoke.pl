# A revoked certificate never logs in over a connection opened before its
# revocation, and every session of it ends as its revocation says, on the
# primary too.  PostgreSQL forks a backend at accept(); that backend keeps
# the SSL context, and so the CRL, the postmaster had then, and does its TLS
# handshake whenever the client goes on (up to authentication_timeout).
# With the library preloaded and pgtls_admin.enforce = crl (the default):
# - a TCP connection opened before pgtls_revoke, whose TLS handshake and
#   startup come after the CRL was rewritten, is refused; a live
#   certificate's pre-opened connection still logs in;
# - a revocation committed with COMMIT PREPARED ends the certificate's
#   sessions (the worker, which sees it in the registry);
# - terminate => false is recorded and the worker keeps those sessions;
# - with two CAs of ours (a rotation), one CRL for each in the file, the
#   same holds for a certificate of either;
# - a CA that leaves the trust bundle (a forced retire, pgtls_init_ca with
#   replace, pgtls_trust_remove) stops verifying over connections opened
#   before it left: a certificate of it, forged with its stolen key or not,
#   is refused, and the log says why; a certificate of a CA still in the
#   bundle logs in over such a connection.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use IPC::Run;
use PgtlsSession;
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('prefork');
$node->init;
$node->append_conf('postgresql.conf',
	"listen_addresses = '127.0.0.1'\nshared_preload_libraries = 'pgtls_admin'\nmax_prepared_transactions = 2\n");
write_cert_only_hba($node);
$node->start;
$node->safe_psql('postgres', <<'SQL');
CREATE EXTENSION pgtls_admin; SELECT pgtls_init_ca(); SELECT count(*) FROM pgtls_enable_ssl();
CREATE ROLE user1 LOGIN; CREATE ROLE user2 LOGIN; CREATE ROLE user3 LOGIN;
SQL
my %dir = map { $_ => client_files($node, $_) } qw(user1 user2 user3);
my %serial = map { $_ => cert_file_serial("$dir{$_}/postgresql.crt") } keys %dir;
is($node->safe_psql('postgres', 'SHOW pgtls_admin.enforce'), 'crl', 'enforce = crl, the default');

my $tmp = PostgreSQL::Test::Utils::tempdir;
my $n = 0;

# A TCP connection to the server, its TLS handshake and startup held back.
sub preopen
{
	my ($key, $role) = @_;    # the client files of $dir{$key}, as $role (default: $key)
	$role //= $key;
	my $p = { go => "$tmp/go" . ++$n, in => '', out => '', err => '' };
	$p->{run} = IPC::Run::start(
		[ '/usr/bin/python3', "$FindBin::RealBin/lib/prefork_login.py", $node->port, $dir{$key}, $role, $p->{go} ],
		'<', \$p->{in}, '>', \$p->{out}, '2>', \$p->{err}, IPC::Run::timeout(60));
	$p->{run}->pump until $p->{out} =~ /^connected$/m;
	return $p;
}

# Go on with the login; returns "login ok <pid>" or "refused: ...".
sub finish_login
{
	my ($p) = @_;
	open my $fh, '>', $p->{go} or die $!;
	close $fh;
	$p->{run}->pump until $p->{out} =~ /^(login ok \d+|refused: .*)$/m;
	return $1;
}

# Go on with the login over $early, which the server refuses for $role;
# its log says $detail (a pattern) within seconds.
sub refused_login
{
	my ($early, $role, $detail, $what, $why) = @_;
	my $offset = -s $node->logfile;
	like(finish_login($early), qr/^refused: certificate authentication failed for user "$role"$/, $what);
	ok(defined wait_for(5, sub { $node->log_contains(qr/DETAIL:  $detail/, $offset) }), $why);
	return;
}

# --- a connection opened before the revocation, handshake after the CRL rewrite
my $early1 = preopen('user1');
my $early2 = preopen('user2');
$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial{user1}', 'keyCompromise')");
$node->connect_fails(client_connstr($dir{user1}, 'user1') . ' port=' . $node->port,
	'a new connection with the revoked certificate is refused',
	expected_stderr => qr/certificate revoked/);
sleep 1;    # what the attack waited: the CRL rewritten and the server reloaded long since
refused_login($early1, 'user1',
	qr/pgtls_admin CRL: certificate $serial{user1} is refused: the CRL lists it, and this connection's server process started before the CRL was rewritten/,
	'opened before the revocation, handshake after it: refused', 'the server log says why');
is($node->safe_psql('postgres', "SELECT count(*) FROM pgtls_sessions WHERE serial = '$serial{user1}'"),
	'0', 'no session of the revoked certificate');
like(finish_login($early2), qr/^login ok \d+$/,
	'a live certificate over a connection opened before the rewrite logs in');
$early2->{run}->finish;
$early1->{run}->finish;

# --- COMMIT PREPARED: the worker ends the sessions the revoking backend could not
my $s2 = open_session($node, client_connstr($dir{user2}, 'user2'));
my $s3 = open_session($node, client_connstr($dir{user3}, 'user3'));
$node->safe_psql('postgres',
	"BEGIN; SELECT pgtls_revoke('$serial{user2}'); PREPARE TRANSACTION 'rv';");
ok(session_alive($s2) && defined session_query($s2, 'SELECT 1'), 'prepared: the session is still there');
$node->safe_psql('postgres', "COMMIT PREPARED 'rv'");
ok(defined wait_for(5, sub { !defined session_query($s2, 'SELECT 1') }),
	'COMMIT PREPARED: the session of the revoked certificate ends within seconds');
is($node->safe_psql('postgres', "SELECT ends_sessions FROM pgtls_certificates WHERE serial = '$serial{user2}'"),
	'all', 'the registry records that the revocation ends sessions');

# --- terminate => false: recorded, and the worker keeps the session
$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial{user3}', terminate => false)");
is($node->safe_psql('postgres', "SELECT ends_sessions FROM pgtls_certificates WHERE serial = '$serial{user3}'"),
	'none', 'terminate => false is recorded');
sleep 3;    # three looks of the worker
is(session_query($s3, 'SELECT 1'), '1', 'terminate => false: the worker keeps the session');
session_close($s3);

# --- several CAs of ours (a rotation): the CRL file holds one CRL for each,
# and a pre-opened connection is refused whichever of them issued the
# revoked certificate (the previous CA's CRL is not the file's first)
$node->safe_psql('postgres', 'CREATE ROLE user4 LOGIN; CREATE ROLE user5 LOGIN; CREATE ROLE user6 LOGIN;');
$dir{$_} = client_files($node, $_) for qw(user4 user6);
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('prepare')");
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('activate')");
$dir{user5} = client_files($node, 'user5');
my $bundle = $node->safe_psql('postgres', 'SELECT pgtls_ca_cert()');
for my $role (qw(user4 user5 user6))
{
	write_file_0600("$dir{$role}/root.crt", "$bundle\n");
	$serial{$role} = cert_file_serial("$dir{$role}/postgresql.crt");
}
is(scalar(() = $node->safe_psql('postgres', 'SELECT pgtls_crl()') =~ /BEGIN X509 CRL/g),
	2, 'the CRL file holds a CRL for each of the two CAs');
for my $case ([ 'user4', 'previous' ], [ 'user5', 'active' ])
{
	my ($role, $state) = @$case;
	my $early = preopen($role);
	my $live = preopen('user6');
	$node->safe_psql('postgres', "SELECT pgtls_revoke('$serial{$role}', 'keyCompromise')");
	sleep 1;
	refused_login($early, $role, qr/pgtls_admin CRL: certificate $serial{$role} is refused: the CRL lists it/,
		"a certificate of the $state CA, opened before its revocation: refused",
		"... the CRL of the $state CA in the file lists it");
	like(finish_login($live), qr/^login ok \d+$/,
		"... while a live certificate of the previous CA, opened before the rewrite, logs in");
	$live->{run}->finish;
	$early->{run}->finish;
}

# --- a CA leaves the trust bundle: the backends forked before still hold it
# in their trust store; the login hook checks every CA of the chain against
# the bundle last written.  Clients trust every CA seen so far (the server
# certificate a pre-opened backend presents may be of a CA gone since).
my $roots = $bundle;
sub write_roots
{
	my (@dirs) = @_;
	write_file_0600("$_/root.crt", "$roots\n") for @dirs;
	return;
}

# Log in over $early (opened before the CA left), expect the bundle refusal naming $subject.
sub refused_for_bundle
{
	my ($early, $role, $subject, $what) = @_;
	refused_login($early, $role,
		qr/pgtls_admin trust bundle: the CA "\Q$subject\E" \(SHA-256 [0-9A-F:]{95}\) of the certificate's chain is not in the trust bundle \([^)]*\), and this connection's server process started before the CA left it/,
		"$what, over a connection opened before the CA left the bundle: refused",
		'... the server log names the CA and the reason');
	is($node->safe_psql('postgres', "SELECT count(*) FROM pg_stat_activity WHERE usename = '$role'"),
		'0', "... no session of $role");
	$early->{run}->finish;
	return;
}

# (1) a forced retire of the previous CA (its files renamed at commit)
$node->safe_psql('postgres', 'CREATE ROLE user7 LOGIN;');
$dir{user7} = client_files($node, 'user7');    # the active CA's
write_roots($dir{user6}, $dir{user7});
my $old_subject = $node->safe_psql('postgres', "SELECT subject FROM pgtls_cas WHERE state = 'previous'");
my $early6 = preopen('user6');
my $early7 = preopen('user7');
$node->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('retire', force => true)");
is($node->safe_psql('postgres', "SELECT count(*) FROM pgtls_cas WHERE state = 'previous'"),
	'0', 'the previous CA is retired');
sleep 2;
$node->connect_fails(client_connstr($dir{user6}, 'user6') . ' port=' . $node->port,
	'a new connection with a certificate of the retired CA is refused');
refused_for_bundle($early6, 'user6', $old_subject, 'a live certificate of the retired CA');
like(finish_login($early7), qr/^login ok \d+$/,
	'a certificate of the active CA over a connection opened before the retire logs in');
$early7->{run}->finish;

# (2) pgtls_init_ca(replace => true) after a theft of the CA key: the thief's
# certificate (a serial the registry never saw, in no CRL) and the old CA's
# own are refused over connections opened before the replacement
my $stolen = PostgreSQL::Test::Utils::tempdir;
my $active_subject = $node->safe_psql('postgres', "SELECT subject FROM pgtls_cas WHERE state = 'active'");
my $ca_files = $node->safe_psql('postgres',
	"SELECT current_setting('pgtls_admin.ca_cert_file') || ' ' || current_setting('pgtls_admin.ca_key_file')");
my ($ca_crt, $ca_key) = map { m{^/} ? $_ : $node->data_dir . "/$_" } split / /, $ca_files;
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$stolen/postgresql.key", '-subj', '/CN=user7', '-out', "$stolen/forged.csr");
cli_ca_sign($stolen, "$stolen/forged.csr", "$stolen/postgresql.crt",
	"extendedKeyUsage = clientAuth\nkeyUsage = critical,digitalSignature",
	ca_cert => $ca_crt, ca_key => $ca_key, dates => [ '-days', '30' ]);
chmod 0600, "$stolen/postgresql.key";
$dir{forged} = $stolen;
$node->safe_psql('postgres', 'CREATE ROLE user8 LOGIN;');
write_roots($stolen, $dir{user7});
my $early_forged = preopen('forged', 'user7');
my $early_old = preopen('user7');
$node->safe_psql('postgres', 'SELECT length(pgtls_init_ca(replace => true)) > 0');
$dir{user8} = client_files($node, 'user8');
$roots .= "\n" . $node->safe_psql('postgres', 'SELECT pgtls_ca_cert()');
write_roots($dir{user8});
sleep 2;
refused_for_bundle($early_forged, 'user7', $active_subject, 'a certificate forged with the replaced CA\'s stolen key');
refused_for_bundle($early_old, 'user7', $active_subject, 'a certificate of the replaced CA');
$node->connect_ok(client_connstr($dir{user8}, 'user8') . ' port=' . $node->port,
	'a certificate of the new CA logs in');

# (3) pgtls_trust_remove: a CA of others, its certificate over a connection
# opened before; again with more CAs in the bundle than shared memory keeps
# fingerprints of (32), when the login hook reads the bundle file instead
$node->safe_psql('postgres', 'CREATE ROLE bob LOGIN;');
$dir{bob} = PostgreSQL::Test::Utils::tempdir;

# A CA of others in a directory of its own, added to the trust bundle with its CRL; returns its fingerprint.
sub add_foreign_ca
{
	my ($fca, $cn) = @_;
	openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', "$fca/ca.key", '-subj', "/CN=$cn", '-days', '365',
		'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
		'-out', "$fca/ca.crt");
	write_file_0600("$fca/index.txt", "");
	write_file_0600("$fca/serial", "1000\n");    # cli_ca_sign signs with them
	write_file_0600("$fca/ca.cnf", "[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = $fca/index.txt\n");
	openssl('ca', '-batch', '-config', "$fca/ca.cnf", '-gencrl', '-cert', "$fca/ca.crt", '-keyfile', "$fca/ca.key",
		'-md', 'sha256', '-crlhours', 24 * 30, '-out', "$fca/ca.crl");
	return $node->safe_psql('postgres',
		'SELECT pgtls_trust_add(' . pem_literal(slurp_file("$fca/ca.crt")) . ', ' . pem_literal(slurp_file("$fca/ca.crl")) . ')');
}

for my $case ('', ' (the bundle file read)')
{
	if ($case ne '')
	{
		add_foreign_ca(PostgreSQL::Test::Utils::tempdir, "Filler CA $_") for 1 .. 32;
		cmp_ok(scalar(() = slurp_file($node->data_dir . '/' . $node->safe_psql('postgres', 'SHOW pgtls_admin.ca_bundle_file'))
			  =~ /BEGIN CERTIFICATE/g), '>', 32, 'the bundle holds more than 32 CAs');
	}
	my $fca = PostgreSQL::Test::Utils::tempdir;
	my $foreign_fp = add_foreign_ca($fca, 'Teleport User CA');
	openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
		'-keyout', "$dir{bob}/postgresql.key", '-subj', '/CN=bob', '-out', "$fca/bob.csr");
	chmod 0600, "$dir{bob}/postgresql.key";
	cli_ca_sign($fca, "$fca/bob.csr", "$dir{bob}/postgresql.crt",
		"extendedKeyUsage = clientAuth\nkeyUsage = critical,digitalSignature",
		ca_cert => "$fca/ca.crt", ca_key => "$fca/ca.key", dates => [ '-days', '30' ]);
	write_roots($dir{bob}, $dir{user8});
	sleep 1;
	$node->connect_ok(client_connstr($dir{bob}, 'bob') . ' port=' . $node->port,
		"a certificate of a CA of others the bundle holds logs in$case");
	my $early_bob = preopen('bob');
	my $early_user8 = preopen('user8');
	$node->safe_psql('postgres', "SELECT pgtls_trust_remove('$foreign_fp')");
	sleep 2;
	refused_for_bundle($early_bob, 'bob', 'CN=Teleport User CA',
		"a certificate of a CA of others removed from the bundle$case");
	like(finish_login($early_user8), qr/^login ok \d+$/,
		"a certificate of our CA over a connection opened before the removal logs in$case");
	$early_user8->{run}->finish;
}

$node->stop;
done_testing();
