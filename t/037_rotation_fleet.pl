# A CA rotation across a fleet, judged by real verify-full logins and by what
# each node serves on the wire: streaming standbys in every phase (served
# chain, both CAs' client certificates, both CAs' CRLs re-signed and listing
# their revocations, old-CA certificates refused after retire), a standby
# promoted after prepare and one promoted after activate (they carry on the
# rotation, issue from the right CA, keep refusing what was revoked), a base
# backup taken mid-rotation, and a pg_dump restored into a fresh cluster with
# the CA files copied as README says.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $t_start = time;
my $primary = streaming_tls_primary('fleet_primary',
	"shared_preload_libraries = 'pgtls_admin'\npgtls_admin.crl_validity = '6s'\n");
my $roles = 'CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN; CREATE ROLE dave LOGIN; CREATE ROLE erin LOGIN;';
$primary->safe_psql('postgres', $roles);
my $tmp = PostgreSQL::Test::Utils::tempdir;
my $OLD = 'CN = PostgreSQL pgtls_admin CA';
my $NEW = 'CN = PostgreSQL pgtls_admin CA G2';
my ($rc, $out, $err);

sub connstr
{
	my ($dir, $user, $root, $node) = @_;
	my $c = client_connstr($dir, $user);
	$c =~ s/sslrootcert=\S+/sslrootcert=$root/ if $root;
	return $c . ' port=' . $node->port;
}

sub try_login
{
	my ($node, $dir, $user, $root) = @_;
	my ($o, $e);
	my $r = $node->psql('postgres', 'SELECT current_user', connstr => connstr($dir, $user, $root, $node),
		stdout => \$o, stderr => \$e);
	return $r == 0 && $o eq $user ? 'ok' : ($e // 'failed');
}

# Poll until a login gives $want ('ok' or a pattern of the error); the last result.
sub login_until
{
	my ($node, $dir, $user, $root, $want, $limit) = @_;
	my $t0 = time;
	my $got;
	while (1)
	{
		$got = try_login($node, $dir, $user, $root);
		return 'ok' if $want eq 'ok' && $got eq 'ok';
		return 'refused' if $want ne 'ok' && $got ne 'ok' && $got =~ $want;
		last if time - $t0 > $limit;
		usleep(100_000);
	}
	return $got;
}

sub login_ok
{
	my ($node, $dir, $user, $root, $name) = @_;
	is(login_until($node, $dir, $user, $root, 'ok', 8), 'ok', $name);
	return;
}

sub login_refused
{
	my ($node, $dir, $user, $root, $re, $name) = @_;
	is(login_until($node, $dir, $user, $root, $re, 8), 'refused', $name);
	return;
}

sub serial_of
{
	my ($file) = @_;
	return uc(openssl('x509', '-in', $file, '-noout', '-serial') =~ s/^serial=|\s+$//gr);
}

sub issuer_of
{
	my ($file) = @_;
	return openssl('x509', '-in', $file, '-noout', '-issuer') =~ s/^issuer=\s*|\s+$//gr;
}

# The chain a node serves, as a client sees it: "subject < issuer" of each certificate.
sub served_chain
{
	my ($node) = @_;
	my ($stdout, $stderr);
	IPC::Run::run([ 'openssl', 's_client', '-starttls', 'postgres', '-showcerts', '-connect', '127.0.0.1:' . $node->port ],
		'<', \'', '>', \$stdout, '2>', \$stderr);
	my @pems = $stdout =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)/sg;
	my @chain;
	for my $i (0 .. $#pems)
	{
		my $f = write_file_0600("$tmp/served$i.pem", "$pems[$i]\n");
		push @chain, $i == 0 ? 'issuer ' . issuer_of($f) . ' serial ' . serial_of($f) : 'extra ' . issuer_of($f);
	}
	return join(' | ', @chain);
}

# The issuer of the served certificate, once it is $want (the reload after a phase
# is asynchronous) or after 5 s.
sub served_issuer
{
	my ($node, $want) = @_;
	my $t0 = time;
	my $got;
	do
	{
		$got = served_chain($node) =~ /^issuer (.*?) serial/ ? $1 : 'nothing';
		return $got if !defined $want || $got eq $want;
		usleep(100_000);
	} while (time - $t0 < 5);
	return $got;
}

# The CRLs of ssl_crl_file: issuer => { last => lastUpdate, serials => 'A B' }.
sub crls
{
	my ($node) = @_;
	my @pems = slurp_file($node->data_dir . '/pgtls/root.crl') =~ /(-----BEGIN X509 CRL-----.*?-----END X509 CRL-----)/sg;
	my %m;
	for my $i (0 .. $#pems)
	{
		my $o = openssl('crl', '-in', write_file_0600("$tmp/crl$i.pem", "$pems[$i]\n"), '-noout', '-text');
		my ($issuer) = $o =~ /Issuer:\s*(.*)/;
		my ($last) = $o =~ /Last Update:\s*(.*)/;
		my @serials = sort map { uc } $o =~ /Serial Number:\s*([0-9A-Fa-f]+)/g;
		$issuer =~ s/^CN\s*=\s*/CN = /;
		$m{$issuer} = { last => $last, serials => join(' ', @serials) };
	}
	return \%m;
}

# Every CRL of $node lists $serial under $issuer, within $limit s.
sub crl_lists
{
	my ($node, $issuer, $serial, $limit) = @_;
	my $t0 = time;
	while (time - $t0 < $limit)
	{
		my $c = crls($node)->{$issuer};
		return 1 if $c && " $c->{serials} " =~ / \Q$serial\E /;
		usleep(200_000);
	}
	return 0;
}

# Both CRLs re-signed (lastUpdate moved on) within $limit s.
sub resigned
{
	my ($node, $limit) = @_;
	my $first = crls($node);
	my $t0 = time;
	while (time - $t0 < $limit)
	{
		my $now = crls($node);
		return 1 if keys %$now == 2 && keys %$first == 2
		  && !grep { ($now->{$_}{last} // '') eq $first->{$_}{last} } keys %$first;
		usleep(300_000);
	}
	diag(explain(crls($node)));
	return 0;
}

sub write_root
{
	my ($name, $node) = @_;
	return write_file_0600("$tmp/$name.crt", ($node // $primary)->safe_psql('postgres', 'SELECT pgtls_ca_cert()') . "\n");
}

sub cas
{
	my ($node) = @_;
	return $node->safe_psql('postgres',
		"SELECT string_agg(state || '=' || subject, ', ' ORDER BY state) FROM pgtls_cas WHERE state <> 'retired'");
}

sub standby_from
{
	my ($name, $backup, $streaming) = @_;
	my $s = PostgreSQL::Test::Cluster->new($name);
	$s->init_from_backup($primary, $backup, has_streaming => $streaming);
	chmod 0600, glob($s->data_dir . '/pgtls/*.key');
	$s->start;
	return $s;
}

# --- before the rotation: certificates of the first CA; a standby from a backup taken now
my %c;
$c{alice_old} = client_files($primary, 'alice');
$c{carol_old} = client_files($primary, 'carol');
$c{erin_old} = client_files($primary, 'erin');
my $root1 = "$c{alice_old}/root.crt";
$primary->backup('b0');
my $s0 = standby_from('fleet_s0', 'b0', 1);
# revoked before the rotation: must stay refused everywhere, whatever happens next
$primary->safe_psql('postgres', "SELECT pgtls_revoke('" . serial_of("$c{erin_old}/postgresql.crt") . "')");
my $erin_serial = serial_of("$c{erin_old}/postgresql.crt");

# --- prepare
$primary->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('prepare')");
my $root2 = write_root('root2');
$primary->backup('b1');    # mid-rotation backup: holds the next CA's key
my $s1 = standby_from('fleet_s1', 'b1', 1);
my $sp = standby_from('fleet_sp', 'b1', 1);    # promoted after prepare
my $s2 = standby_from('fleet_s2', 'b1', 1);    # promoted after activate, then rolls back
$primary->wait_for_catchup($_) for $s0, $s1, $sp, $s2;
for my $s ($s0, $s1)
{
	my $n = $s->name;
	is(served_issuer($s, $OLD), $OLD, "$n after prepare: serves a certificate of the active (old) CA");
	login_ok($s, $c{alice_old}, 'alice', $root2, "$n after prepare: an old-CA certificate logs in with the bundle");
	login_ok($s, $c{alice_old}, 'alice', $root1, "$n after prepare: ... and with the old root");
	ok(crl_lists($s, $OLD, $erin_serial, 8), "$n after prepare: the old CA's CRL lists the revocation");
	login_refused($s, $c{erin_old}, 'erin', $root2, qr/certificate revoked/, "$n after prepare: the revoked one is refused");
	is(join(', ', sort keys %{ crls($s) }), "$OLD, $NEW", "$n after prepare: ssl_crl_file holds a CRL of each CA");
}

# --- the standby promoted after prepare carries on the rotation alone
$sp->promote;
$sp->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die;
is(cas($sp), "active=$OLD, next=$NEW" =~ s/ = /=/gr, 'promoted after prepare: the rotation is prepared there');
login_refused($sp, $c{erin_old}, 'erin', $root2, qr/certificate revoked/, 'promoted after prepare: a revocation made before the failover is refused');
my $sp_frank = client_files($sp, 'bob');
is(issuer_of("$sp_frank/postgresql.crt"), $OLD, 'promoted after prepare: issues from the active (old) CA');
($rc, $out, $err) = sql_result($sp, "SELECT state || ' ' || subject FROM pgtls_ca_rotate('activate')");
is($rc, 0, 'promoted after prepare: activate works') or diag($err);
is(served_issuer($sp, $NEW), $NEW, '... and it then serves a certificate of the new CA');
my $sp_new = client_files($sp, 'dave');
is(issuer_of("$sp_new/postgresql.crt"), $NEW, '... and issues from it');
login_ok($sp, $sp_new, 'dave', $root2, '... a certificate it issued logs in');
login_ok($sp, $c{alice_old}, 'alice', $root2, '... and an old-CA one too');
($rc, $out, $err) = sql_result($sp, "SELECT state || ' ' || subject FROM pgtls_ca_rotate('retire', force => true)");
is($rc, 0, 'promoted after prepare: retire works') or diag($err);
login_refused($sp, $c{alice_old}, 'alice', $root2, qr/unknown ca|certificate verify failed/, '... and the old CA\'s certificates are refused');
login_ok($sp, $sp_new, 'dave', $root2, '... the new CA\'s log in');
$sp->stop;

# --- activate on the primary
$primary->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('activate')");
is(served_issuer($primary, $NEW), $NEW, 'after activate the primary serves a certificate of the new CA');
$c{bob_new} = client_files($primary, 'bob');
$c{dave_new} = client_files($primary, 'dave');
is(issuer_of("$c{bob_new}/postgresql.crt"), $NEW, 'new certificates come from the new CA');
$primary->safe_psql('postgres', "SELECT pgtls_revoke('" . serial_of("$c{dave_new}/postgresql.crt") . "')");
$primary->safe_psql('postgres', "SELECT pgtls_revoke('" . serial_of("$c{carol_old}/postgresql.crt") . "')");
my $dave_serial = serial_of("$c{dave_new}/postgresql.crt");
my $carol_serial = serial_of("$c{carol_old}/postgresql.crt");
$primary->backup('b2');    # a base backup after activate
$primary->wait_for_catchup($_) for $s0, $s1;
for my $s ($s0, $s1)
{
	my $n = $s->name;
	note("$n after activate serves: " . served_chain($s));
	like(served_issuer($s), qr/^\Q$OLD\E$|^\Q$NEW\E$/, "$n after activate: serves a certificate of a trusted CA");
	login_ok($s, $c{bob_new}, 'bob', $root2, "$n after activate: a new-CA certificate logs in");
	login_ok($s, $c{alice_old}, 'alice', $root2, "$n after activate: an old-CA certificate logs in");
	ok(crl_lists($s, $NEW, $dave_serial, 8), "$n after activate: the new CA's CRL lists its revocation");
	ok(crl_lists($s, $OLD, "$carol_serial $erin_serial" =~ s/ .*//r, 8) && crl_lists($s, $OLD, $erin_serial, 1),
		"$n after activate: the old CA's CRL lists its revocations");
	login_refused($s, $c{dave_new}, 'dave', $root2, qr/certificate revoked/, "$n after activate: the revoked new-CA certificate is refused");
	login_refused($s, $c{carol_old}, 'carol', $root2, qr/certificate revoked/, "$n after activate: the revoked old-CA one is refused");
	ok(resigned($s, 10), "$n after activate: both CRLs are re-signed (crl_validity 6s)");
	login_ok($s, $c{alice_old}, 'alice', $root2, "$n: ... and logins go on with the re-signed CRLs");
}

# --- a base backup restored after activate (a new primary from it)
my $bb = standby_from('fleet_bb', 'b2', 0);
is(cas($bb), "active=$NEW, previous=$OLD" =~ s/ = /=/gr, 'base backup after activate: the rotation state came with it');
is(served_issuer($bb, $NEW), $NEW, '... it serves a certificate of the new CA');
login_ok($bb, $c{alice_old}, 'alice', $root2, '... an old-CA certificate logs in');
login_refused($bb, $c{carol_old}, 'carol', $root2, qr/certificate revoked/, '... revoked ones stay refused (old CA)');
login_refused($bb, $c{dave_new}, 'dave', $root2, qr/certificate revoked/, '... (new CA)');
is(issuer_of(client_files($bb, 'alice') . '/postgresql.crt'), $NEW, '... it issues from the new CA');
$bb->stop;

# --- standbys promoted after activate (their backup was taken after prepare)
$primary->wait_for_catchup($s2);
$s2->promote;
$s2->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die;
($rc, $out, $err) = sql_result($s2, "SELECT state || ' ' || subject FROM pgtls_ca_rotate('rollback')");
is($rc, 0, 'promoted after activate: rollback as its first act works') or diag($err);
is(cas($s2), "active=$OLD, next=$NEW" =~ s/ = /=/gr, '... the old CA is active again, the new one next');
is(issuer_of(client_files($s2, 'bob') . '/postgresql.crt'), $OLD, '... and issues');
login_ok($s2, $c{bob_new}, 'bob', $root2, '... a certificate of the new CA still logs in');
login_refused($s2, $c{dave_new}, 'dave', $root2, qr/certificate revoked/, '... and a revoked one stays refused');
$s2->stop;
$s1->promote;
$s1->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die;
login_refused($s1, $c{dave_new}, 'dave', $root2, qr/certificate revoked/, 'promoted after activate: a revocation made before the failover is refused (new CA)');
login_refused($s1, $c{carol_old}, 'carol', $root2, qr/certificate revoked/, '... (old CA)');
# its base backup holds the new CA's key (kept since prepare) beside the old CA's files
($rc, $out, $err) = sql_result($s1, "SELECT serial FROM pgtls_issue_client('alice')");
is($rc, 0, 'promoted after activate: it issues') or diag($err);
my $s1_new = client_files($s1, 'alice');
is(issuer_of("$s1_new/postgresql.crt"), $NEW, '... from the new (active) CA');
login_ok($s1, $s1_new, 'alice', $root2, '... and the certificate logs in there');
is(cas($s1), "active=$NEW, previous=$OLD" =~ s/ = /=/gr, '... the rotation state is unchanged');
($rc, $out, $err) = sql_result($s1, "SELECT state || ' ' || subject FROM pgtls_ca_rotate('rollback')");
is($rc, 0, 'promoted after activate: rollback works') or diag($err);
is(issuer_of(client_files($s1, 'bob') . '/postgresql.crt'), $OLD, '... the old CA issues again');
is(served_issuer($s1, $OLD), $OLD, '... and is presented');
login_ok($s1, $s1_new, 'alice', $root2, '... the new CA\'s certificates still log in (it is next)');
($rc, $out, $err) = sql_result($s1, "SELECT state || ' ' || subject FROM pgtls_ca_rotate('activate')");
is($rc, 0, 'promoted after activate: activate again') or diag($err);
is(served_issuer($s1, $NEW), $NEW, '... the new CA is presented');
($rc, $out, $err) = sql_result($s1, "SELECT state || ' ' || subject FROM pgtls_ca_rotate('retire', force => true)");
is($rc, 0, 'promoted after activate: retire works') or diag($err);
login_refused($s1, $c{alice_old}, 'alice', $root2, qr/unknown ca|certificate verify failed/, '... the old CA\'s certificates are refused');
login_ok($s1, $s1_new, 'alice', $root2, '... the new CA\'s log in');
login_refused($s1, $c{dave_new}, 'dave', $root2, qr/certificate revoked/, '... and the new CA\'s revoked one stays refused');
$s1->stop;

# --- pg_dump of the registry after activate, restored into a fresh cluster with the CA files copied
my $dump = "$tmp/registry.dump";
$primary->command_ok([ 'pg_dump', '-Fc', '-f', $dump, '-d', $primary->connstr('postgres') ], 'pg_dump mid-rotation');
write_file_0600("$tmp/ca.crt", slurp_file($primary->data_dir . '/pgtls/ca.crt'));
write_file_0600("$tmp/ca.key", slurp_file($primary->data_dir . '/pgtls/ca.key'));
my @kept = grep { !/ca-bundle/ } glob($primary->data_dir . '/pgtls/ca-*.crt'), glob($primary->data_dir . '/pgtls/ca-*.key');
my $prev_fp = lc(substr($primary->safe_psql('postgres', "SELECT replace(fingerprint_sha256, ':', '') FROM pgtls_cas WHERE state = 'previous'"), 0, 16));
ok((grep { m{/ca-$prev_fp\.key$} } @kept), 'mid-rotation the previous CA\'s key is kept beside the CA files');
my $rs = PostgreSQL::Test::Cluster->new('fleet_restored');
$rs->init;
$rs->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
write_cert_only_hba($rs);
$rs->start;
# mid-rotation the kept key of the previous CA moves too (beside ca.key), so its CRL is signed there
mkdir $rs->data_dir . '/pgtls', 0700;
write_file_0600($rs->data_dir . '/pgtls/' . ($_ =~ s{.*/}{}r), slurp_file($_)) for @kept;
$rs->safe_psql('postgres', $roles);
$rs->command_ok([ 'pg_restore', '-d', $rs->connstr('postgres'), $dump ], 'pg_restore into a fresh cluster');
($rc, $out, $err) = sql_result($rs, "SELECT length(pgtls_import_ca_files('$tmp/ca.crt', '$tmp/ca.key')) > 0; SELECT count(*) FROM pgtls_enable_ssl();");
is($rc, 0, 'restored: the CA files imported and TLS on') or diag($err);
is(cas($rs), "active=$NEW, previous=$OLD" =~ s/ = /=/gr, 'restored: the rotation state came with the dump');
is(served_issuer($rs, $NEW), $NEW, 'restored: serves a certificate of the new CA');
login_ok($rs, $c{alice_old}, 'alice', $root2, 'restored: an old-CA certificate logs in');
login_ok($rs, $c{bob_new}, 'bob', $root2, 'restored: a new-CA certificate logs in');
login_refused($rs, $c{carol_old}, 'carol', $root2, qr/certificate revoked/, 'restored: revoked old-CA certificates stay refused');
login_refused($rs, $c{erin_old}, 'erin', $root2, qr/certificate revoked/, '... (revoked before the rotation too)');
login_refused($rs, $c{dave_new}, 'dave', $root2, qr/certificate revoked/, '... and the revoked new-CA one');
is(issuer_of(client_files($rs, 'bob') . '/postgresql.crt'), $NEW, 'restored: issues from the new CA');
my $rcrl = crls($rs);
like($rcrl->{$OLD}{serials}, qr/\Q$carol_serial\E/, 'restored: the old CA\'s CRL lists its revocations');
like($rcrl->{$NEW}{serials}, qr/\Q$dave_serial\E/, '... and the new CA\'s its own');
($rc, $out, $err) = sql_result($rs, "SELECT count(*) FROM pgtls_ca_rotate('retire', force => true)");
is($rc, 0, 'restored: the rotation goes on there (retire)') or diag($err);
login_refused($rs, $c{alice_old}, 'alice', $root2, qr/unknown ca|certificate verify failed/, '... and the old CA\'s certificates are refused');
$rs->stop;

# --- CA first: a fresh cluster with the CA files (and the kept key), TLS on, then the dump
my $cf = PostgreSQL::Test::Cluster->new('fleet_cafirst');
$cf->init;
$cf->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
write_cert_only_hba($cf);
$cf->start;
mkdir $cf->data_dir . '/pgtls', 0700;
write_file_0600($cf->data_dir . '/pgtls/' . ($_ =~ s{.*/}{}r), slurp_file($_)) for @kept;
$cf->safe_psql('postgres', $roles);
$cf->safe_psql('postgres', "CREATE EXTENSION pgtls_admin; SELECT length(pgtls_import_ca_files('$tmp/ca.crt', '$tmp/ca.key')) > 0; SELECT count(*) FROM pgtls_enable_ssl();");
$cf->command_ok([ 'pg_restore', '-d', $cf->connstr('postgres'), $dump ], 'CA first: pg_restore');
$cf->safe_psql('postgres', 'SELECT pgtls_refresh_crl()');
is(cas($cf), "active=$NEW, previous=$OLD" =~ s/ = /=/gr, 'CA first: the rotation state came with the dump');
login_ok($cf, $c{alice_old}, 'alice', $root2, 'CA first: an old-CA certificate logs in');
login_refused($cf, $c{carol_old}, 'carol', $root2, qr/certificate revoked/, 'CA first: revoked old-CA certificates stay refused');
login_refused($cf, $c{dave_new}, 'dave', $root2, qr/certificate revoked/, '... and the revoked new-CA one');
$cf->stop;

# --- retire on the primary.  A standby from a base backup presents a copy of the primary's
# certificate of the old CA (activate superseded it there): once the old CA is retired no
# verify-full client accepts it, which is why README has each standby install its own.
my ($served_serial) = served_chain($s0) =~ /serial (\S+)/;
is($primary->safe_psql('postgres', "SELECT revocation_reason FROM pgtls_certificates WHERE serial = '$served_serial'"),
	'superseded', 'after activate a standby from a base backup serves the primary\'s superseded certificate');
$primary->safe_psql('postgres', "SELECT count(*) FROM pgtls_ca_rotate('retire', force => true)");
my $root3 = write_root('root3');
$primary->wait_for_catchup($s0);
is(login_until($s0, $c{bob_new}, 'bob', $root3, qr/certificate verify failed/, 5), 'refused',
	'... after retire a client with the new root refuses that certificate');
like($s0->safe_psql('postgres', "SELECT string_agg(check_id || ':' || severity, ' ') FROM pgtls_hba_check()"),
	qr/cert\.server_revoked:high/, '... and the standby\'s audit says it serves a revoked certificate');
# a standby that presents its own certificate of the new CA (README)
my ($scert, $skey) = split /\x01/, $primary->safe_psql('postgres',
	"SELECT certificate || '\x01' || private_key FROM pgtls_issue_server('{localhost}', '{127.0.0.1}')");
write_file_0600($s0->data_dir . '/node.crt', "$scert\n");
write_file_0600($s0->data_dir . '/node.key', "$skey\n");
$primary->wait_for_catchup($s0);
$s0->safe_psql('postgres', "SELECT count(*) FROM pgtls_install_server_cert_files('node.crt', 'node.key')");
is(served_issuer($s0, $NEW), $NEW, 'the standby presents its own certificate of the new CA');
login_refused($s0, $c{alice_old}, 'alice', $root3, qr/unknown ca|certificate verify failed/, 'after retire the standby refuses old-CA certificates');
login_ok($s0, $c{bob_new}, 'bob', $root3, '... and logs new-CA ones in with the new root alone');
login_refused($s0, $c{dave_new}, 'dave', $root3, qr/certificate revoked/, '... the revoked one stays refused');
is(join(', ', sort keys %{ crls($s0) }), $NEW, '... its ssl_crl_file holds the new CA\'s CRL alone');
is(scalar(() = slurp_file($s0->data_dir . '/pgtls/ca-bundle.crt') =~ /BEGIN CERTIFICATE/g), 1, '... and its bundle the new CA alone');

note(sprintf('test time %.1f s', time - $t_start));
$_->stop for $primary, $s0;
done_testing();
