# A CA rotation in phases with real verify-full logins: a client that took
# the bundle at prepare never fails to log in, activate moves issuing and the
# served certificate to the new CA while certificates of the old one keep
# logging in, retire is refused while the old CA has live certificates and
# forced makes them fail, rollback works after prepare and after activate,
# the audit stays clean (no critical/high) at every step, a crash between
# the switch of the CA files and the commit leaves a working cluster, and a
# standby follows it all (including the CRL of a CA whose key it never had).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PgtlsAudit ();
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

my $primary = streaming_tls_primary('rot_primary',
	"shared_preload_libraries = 'pgtls_admin'\nrestart_after_crash = on\nmax_prepared_transactions = 2\n");
$primary->safe_psql('postgres', 'CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN; CREATE ROLE dave LOGIN;');
my $tmp = PostgreSQL::Test::Utils::tempdir;
my %timing;
my ($rc, $out, $err);

sub sql { return sql_result(@_); }

sub phase
{
	my ($phase, @args) = @_;
	my $t0 = time;
	my $extra = @args ? ', ' . join(', ', @args) : '';
	my ($rc, $out, $err) = sql($primary, "SELECT state || ' ' || subject FROM pgtls_ca_rotate('$phase'$extra)");
	push @{ $timing{$phase} }, sprintf('%.0f', (time - $t0) * 1000);
	return ($rc, $out, $err);
}

sub phase_ok
{
	my ($phase, $name, @args) = @_;
	my ($rc, $out, $err) = phase($phase, @args);
	is($rc, 0, $name) or diag($err);
	return $out;
}

sub write_root
{
	my ($name, $node) = @_;
	return write_file_0600("$tmp/$name.crt", ($node // $primary)->safe_psql('postgres', 'SELECT pgtls_ca_cert()') . "\n");
}

sub connstr
{
	my ($dir, $user, $root, $node) = @_;
	my $c = client_connstr($dir, $user);
	$c =~ s/sslrootcert=\S+/sslrootcert=$root/ if $root;
	return $c . ' port=' . ($node // $primary)->port;
}

sub login_ok
{
	my ($dir, $user, $root, $name, $node) = @_;
	($node // $primary)->connect_ok(connstr($dir, $user, $root, $node), $name,
		sql => 'SELECT current_user', expected_stdout => qr/^\Q$user\E$/);
	return;
}

sub login_fails
{
	my ($dir, $user, $root, $name, $re, $node) = @_;
	($node // $primary)->connect_fails(connstr($dir, $user, $root, $node), $name, expected_stderr => $re);
	return;
}

sub issuer_of_file
{
	my ($file) = @_;
	return openssl('x509', '-in', $file, '-noout', '-issuer') =~ s/^issuer=\s*|\s+$//gr;
}

# The certificate the server presents, as a client sees it.
sub served_issuer
{
	my ($node) = @_;
	my ($stdout, $stderr);
	IPC::Run::run([ 'openssl', 's_client', '-starttls', 'postgres', '-connect', '127.0.0.1:' . ($node // $primary)->port ],
		'<', \'', '>', \$stdout, '2>', \$stderr);
	my ($pem) = $stdout =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)/s;
	return issuer_of_file(write_file_0600("$tmp/served.pem", "$pem\n"));
}

sub audit_clean
{
	my ($name) = @_;
	is($primary->safe_psql('postgres',
			"SELECT coalesce(string_agg(check_id, ' '), '') FROM pgtls_hba_check() WHERE severity IN ('critical', 'high')"),
		'', "$name: the audit finds nothing critical or high");
	return;
}

sub cas
{
	return $primary->safe_psql('postgres',
		"SELECT string_agg(state || '=' || subject, ', ' ORDER BY state) FROM pgtls_cas WHERE state <> 'retired'");
}

# --- before: one CA; alice's client holds a certificate and the CA as root.crt
my $alice_old = client_files($primary, 'alice');
my $carol_old = client_files($primary, 'carol');
my $root1 = "$alice_old/root.crt";
login_ok($alice_old, 'alice', undef, 'alice logs in before the rotation');
audit_clean('before the rotation');
is(served_issuer(), 'CN = PostgreSQL pgtls_admin CA', 'the server presents a certificate of the first CA');

# A standby from a base backup taken now: it never gets the keys of CAs made later.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('rot_standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
chmod 0600, glob($standby->data_dir . '/pgtls/*.key');
$standby->start;
$primary->wait_for_catchup($standby);
login_ok($alice_old, 'alice', undef, 'alice logs in on the standby', $standby);

# Poll until a login on $node gives $want ('ok' or an error pattern); seconds taken, or undef.
sub standby_within
{
	my ($node, $dir, $user, $root, $want, $limit) = @_;
	my $start = time;
	while (time - $start < $limit)
	{
		my ($out, $err);
		my $rc = $node->psql('postgres', 'SELECT 1', connstr => connstr($dir, $user, $root, $node),
			stdout => \$out, stderr => \$err);
		return time - $start if $want eq 'ok' ? $rc == 0 : ($rc != 0 && $err =~ $want);
		usleep(100_000);
	}
	return undef;
}

# --- prepare: the next CA is trusted beside the active one, nothing changes for anyone
$out = phase_ok('prepare', 'prepare');
is($out, "active CN=PostgreSQL pgtls_admin CA\nnext CN=PostgreSQL pgtls_admin CA G2", '... the new CA is next, named after the active one');
my $root2 = write_root('root2');    # the client refreshes its root now
is(scalar(() = slurp_file($root2) =~ /BEGIN CERTIFICATE/g), 2, 'pgtls_ca_cert() is the bundle of both CAs');
is(scalar(() = slurp_file($primary->data_dir . '/pgtls/root.crl') =~ /BEGIN X509 CRL/g), 2, 'ssl_crl_file holds one CRL per CA');
login_ok($alice_old, 'alice', $root2, 'after prepare: alice logs in with the refreshed root');
login_ok($alice_old, 'alice', $root1, '... and with the old root');
is(issuer_of_file(client_files($primary, 'bob') . '/postgresql.crt'), 'CN = PostgreSQL pgtls_admin CA',
	'... certificates still come from the active CA');
audit_clean('after prepare');
($rc, $out, $err) = phase('prepare');
like($err, qr/a rotation is prepared already: CA "CN=PostgreSQL pgtls_admin CA G2" is next/, 'a second prepare is refused');
my $took = standby_within($standby, $alice_old, 'alice', $root2, 'ok', 10);
ok(defined $took, 'the standby logs alice in with the refreshed root');

# --- activate: the new CA issues and the server presents a certificate of it
$out = phase_ok('activate', 'activate');
is($out, "active CN=PostgreSQL pgtls_admin CA G2\nprevious CN=PostgreSQL pgtls_admin CA", '... the new CA is active, the old one previous');
is(served_issuer(), 'CN = PostgreSQL pgtls_admin CA G2', 'after activate the server presents a certificate of the new CA');
my $bob_new = client_files($primary, 'bob');
is(issuer_of_file("$bob_new/postgresql.crt"), 'CN = PostgreSQL pgtls_admin CA G2', '... and new client certificates come from it');
login_ok($alice_old, 'alice', $root2, 'after activate: alice\'s certificate of the old CA logs in');
login_ok($bob_new, 'bob', $root2, '... and bob\'s of the new CA');
audit_clean('after activate');
like($primary->safe_psql('postgres', "SELECT message FROM pgtls_hba_check() WHERE check_id = 'ca.live_certificates'"),
	qr/CA "CN=PostgreSQL pgtls_admin CA" \(previous\) still has 3 live certificates \(3 client, 0 server/,
	'the audit counts the live certificates of the previous CA');

# the standby follows: a certificate of the new CA, whose key it does not have, logs in
$primary->wait_for_catchup($standby);
ok(defined standby_within($standby, $bob_new, 'bob', $root2, 'ok', 10), 'the standby logs in a certificate of the new CA');
# ... and refuses it once revoked on the primary (the CRL the primary signed, replicated)
my $bob_serial = uc(openssl('x509', '-in', "$bob_new/postgresql.crt", '-noout', '-serial') =~ s/^serial=|\s+$//gr);
$primary->safe_psql('postgres', "SELECT pgtls_revoke('$bob_serial')");
$took = standby_within($standby, $bob_new, 'bob', $root2, qr/certificate revoked/, 15);
ok(defined $took, 'the standby refuses a revoked certificate of a CA whose key it lacks')
  or diag('not within 15 s');
note(sprintf('revocation of a new-CA certificate enforced on the standby after %.2f s', $took // -1));
like($standby->safe_psql('postgres', "SELECT string_agg(check_id || ':' || severity, ' ') FROM pgtls_hba_check() WHERE check_id LIKE 'ca.%'"),
	qr/ca\.key_missing:medium/, 'the standby\'s audit says it lacks the new CA\'s key');
# the standby serves its own certificate: one of the new CA, installed there
my ($scert, $skey) = split /\x01/, $primary->safe_psql('postgres',
	"SELECT certificate || '\x01' || private_key FROM pgtls_issue_server('{localhost}', '{127.0.0.1}')");
write_file_0600($standby->data_dir . "/node.crt", "$scert\n");
write_file_0600($standby->data_dir . "/node.key", "$skey\n");
$primary->wait_for_catchup($standby);
$standby->safe_psql('postgres', "SELECT count(*) FROM pgtls_install_server_cert_files('node.crt', 'node.key')");
is(served_issuer($standby), 'CN = PostgreSQL pgtls_admin CA G2', 'the standby presents a certificate of the new CA');

# --- the worker re-signs the CRL of every trusted CA, on the primary and on the standby
# (the standby writes the primary's CRL of the CA whose key it lacks)
sub crl_signed
{
	my ($node) = @_;
	my @pems = slurp_file($node->data_dir . '/pgtls/root.crl') =~ /(-----BEGIN X509 CRL-----.*?-----END X509 CRL-----)/sg;
	my %last;
	for my $i (0 .. $#pems)
	{
		my $o = openssl('crl', '-in', write_file_0600("$tmp/crl$i.pem", "$pems[$i]\n"), '-noout', '-issuer', '-lastupdate');
		my ($issuer) = $o =~ /issuer=\s*(.*)/;
		my ($last) = $o =~ /lastUpdate=(.*)/;
		$last{$issuer} = $last;
	}
	return \%last;
}

sub all_resigned_within
{
	my ($node, $before, $limit) = @_;
	my $start = time;
	while (time - $start < $limit)
	{
		my $now = crl_signed($node);
		return $now if keys %$now == keys %$before && !grep { ($now->{$_} // '') eq $before->{$_} } keys %$before;
		usleep(200_000);
	}
	return undef;
}
my $dave_g2 = client_files($primary, 'dave');
$_->append_conf('postgresql.conf', "pgtls_admin.crl_validity = '4s'\n") for $primary, $standby;
$_->reload for $primary, $standby;
for my $node ($primary, $standby)
{
	my $first = crl_signed($node);
	is(join(', ', sort keys %$first), 'CN = PostgreSQL pgtls_admin CA, CN = PostgreSQL pgtls_admin CA G2',
		$node->name . ': ssl_crl_file holds the CRLs of both trusted CAs');
	my $second = all_resigned_within($node, $first, 10);
	ok($second && all_resigned_within($node, $second, 10),
		$node->name . ': with crl_validity = 4s the worker re-signs both CRLs, again and again')
	  or diag(explain(crl_signed($node)));
	login_ok($alice_old, 'alice', $root2, $node->name . ': a certificate of the previous CA logs in with the re-signed CRLs', $node);
	login_ok($dave_g2, 'dave', $root2, $node->name . ': ... and one of the active CA', $node);
}
$_->append_conf('postgresql.conf', "pgtls_admin.crl_validity = '7d'\n") for $primary, $standby;
$_->reload for $primary, $standby;

# --- retire: refused while old-CA certificates live, naming them
my $alice_new = client_files($primary, 'alice');
$primary->safe_psql('postgres', "SELECT count(pgtls_revoke(serial)) FROM pgtls_certificates WHERE role IN ('alice', 'bob') "
	  . "AND issuer_fingerprint = (SELECT fingerprint_sha256 FROM pgtls_cas WHERE state = 'previous') AND revoked_at IS NULL");
login_ok($alice_new, 'alice', $root2, 'alice logs in with her renewed certificate');
login_fails($alice_old, 'alice', $root2, '... her old one, revoked, is refused: the previous CA\'s CRL is signed with its kept key',
	qr/certificate revoked/);
# a forced retire whose statement then fails changes nothing: its trust files were to be written at commit
($rc, $out, $err) = sql($primary,
	"DO \$\$ BEGIN PERFORM * FROM pgtls_ca_rotate('retire', force => true); RAISE EXCEPTION 'failed after the retire'; END \$\$");
like($err, qr/failed after the retire/, 'a forced retire, then an error in the same statement');
is(cas(), 'active=CN=PostgreSQL pgtls_admin CA G2, previous=CN=PostgreSQL pgtls_admin CA', '... leaves the previous CA previous');
$took = standby_within($primary, $carol_old, 'carol', $root2, 'ok', 10);
ok(defined $took, '... and its certificates still log in')
  or diag(slurp_file($primary->data_dir . '/pgtls/ca-bundle.crt'));
note(sprintf('old-CA login after the rolled-back retire: %.2f s', $took // -1));
($rc, $out, $err) = phase('retire');
like($err, qr/ERROR:  cannot retire CA "CN=PostgreSQL pgtls_admin CA": 1 live certificate it issued would be refused at login\nDETAIL:  1 client certificate of role carol\./,
	'retire is refused while an old-CA certificate lives, saying how many and whose');
login_ok($carol_old, 'carol', $root2, '... and carol\'s old certificate still logs in');
$out = phase_ok('retire', 'retire with force', 'force => true');
is($out, "active CN=PostgreSQL pgtls_admin CA G2\nretired CN=PostgreSQL pgtls_admin CA", '... the old CA is retired');
login_fails($carol_old, 'carol', $root2, 'after a forced retire the old certificate is refused', qr/unknown ca|certificate verify failed/);
login_ok($alice_new, 'alice', $root2, '... alice\'s renewed certificate logs in');
is($primary->safe_psql('postgres', "SELECT revocation_reason FROM pgtls_certificates WHERE role = 'carol' AND kind = 'client'"),
	'cessationOfOperation', '... and the registry records the refused one as revoked');
audit_clean('after retire');
is(scalar(() = slurp_file(write_root('root3')) =~ /BEGIN CERTIFICATE/g), 1, 'pgtls_ca_cert() holds only the new CA');
ok(!-e $primary->data_dir . '/pgtls/ca-' . lc(substr(
	$primary->safe_psql('postgres', "SELECT replace(fingerprint_sha256, ':', '') FROM pgtls_cas WHERE state = 'retired'"), 0, 16)) . '.key',
	'the retired CA\'s key is gone');
$primary->wait_for_catchup($standby);
$took = standby_within($standby, $carol_old, 'carol', $root2, qr/unknown ca|certificate verify failed/, 10);
ok(defined $took, 'the standby refuses the retired CA\'s certificate too');
login_ok($alice_new, 'alice', $root2, '... and logs alice in', $standby);
($rc, $out, $err) = phase('rollback');
like($err, qr/there is nothing to roll back/, 'nothing rolls back once the old CA is retired');

# --- rollback after prepare
phase_ok('prepare', 'prepare again');
phase_ok('rollback', 'rollback after prepare');
is(cas(), 'active=CN=PostgreSQL pgtls_admin CA G2', '... leaves the active CA alone');
is(scalar(() = $primary->safe_psql('postgres', 'SELECT pgtls_ca_cert()') =~ /BEGIN CERTIFICATE/g), 1, '... and one CA to trust');
login_ok($alice_new, 'alice', $root2, '... alice logs in');
audit_clean('after a rollback of prepare');

# --- rollback after activate
phase_ok('prepare', 'prepare, named', "subject => 'CN=Rotation Test CA', days => 400");
my $root4 = write_root('root4');
phase_ok('activate', 'activate');
my $dave = client_files($primary, 'dave');
is(issuer_of_file("$dave/postgresql.crt"), 'CN = Rotation Test CA', 'dave\'s certificate comes from the activated CA');
$out = phase_ok('rollback', 'rollback after activate');
is($out, "active CN=PostgreSQL pgtls_admin CA G2\nnext CN=Rotation Test CA", '... the former CA is active again, the new one next');
is(served_issuer(), 'CN = PostgreSQL pgtls_admin CA G2', '... and presented by the server again');
is(issuer_of_file(client_files($primary, 'bob') . '/postgresql.crt'), 'CN = PostgreSQL pgtls_admin CA G2', '... and issuing');
login_ok($dave, 'dave', $root4, 'dave\'s certificate of the rolled-back CA keeps logging in while it is next');
login_ok($alice_new, 'alice', $root4, '... and alice\'s');
audit_clean('after a rollback of activate');
($rc, $out, $err) = phase('rollback');
like($err, qr/cannot roll back CA "CN=Rotation Test CA": 1 live certificate it issued would be refused at login\nDETAIL:  1 client certificate of role dave\./,
	'rolling back the preparation too is refused while that CA has live certificates');

# --- a crash between the switch of the CA files and the commit of activate
my $bg = $primary->background_psql('postgres', on_error_stop => 0);
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_safe('SET pgtls_admin.debug_pause_at = 12');
$bg->{stdin} .= "SELECT * FROM pgtls_ca_rotate('activate');\n";
$bg->{run}->pump_nb();
my $waited = 0;
until (slurp_file($primary->logfile) =~ /paused at install step 12/ || $waited > 300)
{
	usleep(100_000);
	$waited++;
}
ok($waited <= 300, 'activate reached its pause after the switch of the CA files');
kill 'KILL', $pid;
$bg->{run}->kill_kill;
$primary->poll_query_until('postgres', 'SELECT true') or die 'the primary did not come back';
login_ok($alice_new, 'alice', $root4, 'after a crash in activate alice logs in');
login_ok($dave, 'dave', $root4, '... and dave');
is($primary->safe_psql('postgres', "SELECT count(*) FROM pgtls_issue_client('bob')"), '1', 'issuing works: the registry followed the CA files');
is(cas(), 'active=CN=Rotation Test CA, previous=CN=PostgreSQL pgtls_admin CA G2', '... and records the switch the crash interrupted');
audit_clean('after the crash');

# --- trust files written from what never committed (a savepoint rolled back, a prepared transaction
# rolled back) are written again by the worker from the registry
openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$tmp/corp.key", '-subj', '/CN=Corp CA', '-days', '30', '-out', "$tmp/corp.crt",
	'-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
PgtlsAudit::current_crl($tmp, "$tmp/corp.crt", "$tmp/corp.key", "$tmp/corp.crl");
$primary->safe_psql('postgres', 'SELECT pgtls_trust_add(' . pem_literal(slurp_file("$tmp/corp.crt")) . ', '
	  . pem_literal(slurp_file("$tmp/corp.crl")) . ')');
my $pdd = $primary->data_dir;
sub trust_counts
{
	return scalar(() = slurp_file("$pdd/pgtls/ca-bundle.crt") =~ /BEGIN CERTIFICATE/g) . ' '
	  . scalar(() = slurp_file("$pdd/pgtls/root.crl") =~ /BEGIN X509 CRL/g);
}
my $counts = trust_counts();
for my $case (
	[ 'ROLLBACK TO SAVEPOINT', "BEGIN;\nSAVEPOINT s;\nDELETE FROM pgtls_trusted_cas;\nSELECT pgtls_refresh_crl();\nROLLBACK TO SAVEPOINT s;\nCOMMIT;" ],
	[ 'ROLLBACK PREPARED', "BEGIN;\nDELETE FROM pgtls_trusted_cas;\nSELECT pgtls_refresh_crl();\nPREPARE TRANSACTION 'p';\nROLLBACK PREPARED 'p';" ])
{
	($rc, $out, $err) = sql($primary, $case->[1]);
	is($rc, 0, "trust files written in a transaction, then $case->[0]") or diag($err);
	my $t0 = time;
	usleep(100_000) until trust_counts() eq $counts || time - $t0 > 10;
	is(trust_counts(), $counts, "... the worker writes them again from the registry: the bundle and the CRLs hold Corp CA again");
	note(sprintf('rewritten %.1f s after %s', time - $t0, $case->[0]));
}
$primary->safe_psql('postgres', "SELECT pgtls_trust_remove(fingerprint_sha256) FROM pgtls_trusted_cas WHERE subject = 'CN=Corp CA'");

# --- the standby promoted: it lacks the active CA's key, and says so rather than issue from a retired CA
$primary->wait_for_catchup($standby);
my $sdd = $standby->data_dir;
$primary->stop;
$standby->promote;
($rc, $out, $err) = sql($standby, "SELECT serial FROM pgtls_issue_client('alice')");
like($err, qr/the CA of pgtls_admin.ca_cert_file is not the active CA\nDETAIL:  The registry records CA "CN=PostgreSQL pgtls_admin CA" as retired; the active CA is "CN=Rotation Test CA"\./,
	'the promoted standby refuses to issue from the retired CA its base backup held');
write_file_0600("$sdd/pgtls/$_", slurp_file($primary->data_dir . "/pgtls/$_")) for qw(ca.crt ca.key);
my $erin = client_files($standby, 'alice');
is(issuer_of_file("$erin/postgresql.crt"), 'CN = Rotation Test CA', '... and issues from the active CA once its files are there');
login_ok($erin, 'alice', $root4, '... which log in on it', $standby);

note('phase timings (ms): ' . join('; ', map { "$_ " . join(',', @{ $timing{$_} }) } sort keys %timing));
$standby->stop;
done_testing();
