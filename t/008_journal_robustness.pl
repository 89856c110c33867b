# The issuance journal and the background worker under pressure, with real
# logins:
#  - a delegated issuer's idle transaction holding the row of a stray it
#    revoked does not stop the worker: it settles other strays, follows the
#    registry (a revocation made in SQL is enforced) and never waits on the
#    lock;
#  - a session holding LOCK TABLE ... ACCESS EXCLUSIVE on the registry: the
#    worker waits a second at most, says whether its set of live
#    certificates is still exact (nothing ended since it read the registry)
#    or not, and follows again once the lock goes;
#  - one statement issuing 10,000 certificates is digested while the
#    worker's heartbeat goes on;
#  - without the worker, pgtls_revoke compacts a journal grown by thousands
#    of issuances, and a journal larger than 256 MB is still read;
#  - a REPEATABLE READ revoker does not list a certificate committed after
#    its snapshot; a pgtls_refresh_crl() that rolls back loses no stray;
#  - a certificate whose issuance never committed (a rolled-back
#    transaction, or a rolled-back savepoint in one that committed) stays
#    refused after DROP EXTENSION and CREATE EXTENSION; committed ones of the
#    dropped registry are not revoked by it.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

sub serial_of
{
	my ($d) = @_;
	return uc(openssl('x509', '-in', "$d/postgresql.crt", '-noout', '-serial') =~ s/^serial=|\s+$//gr);
}

# Poll until $sql returns 't'; the seconds it took, or undef after $limit.
sub true_within
{
	my ($node, $sql, $limit) = @_;
	my $start = time;
	while (time - $start < $limit)
	{
		return time - $start if $node->safe_psql('postgres', $sql) eq 't';
		usleep(100_000);
	}
	return undef;
}

# Poll until a login with the certificate in $dir fails; seconds, or undef.
sub refused_within
{
	my ($node, $dir, $user, $limit) = @_;
	my $start = time;
	while (time - $start < $limit)
	{
		my ($out, $err);
		my $rc = $node->psql('postgres', 'SELECT 1', connstr => client_connstr($dir, $user),
			stdout => \$out, stderr => \$err);
		return time - $start if $rc != 0;
		usleep(100_000);
	}
	return undef;
}

# A client certificate issued in a transaction that rolls back: its serial and files.
sub stray_files
{
	my ($node, $role, $how) = @_;
	my $issue = "SELECT certificate || '\x01' || private_key || '\x01' || ca_certificate || '\x01' || serial "
	  . "FROM pgtls_issue_client('$role')";
	my $sql = $how eq 'savepoint'
	  ? "BEGIN; SAVEPOINT s; $issue; ROLLBACK TO s; COMMIT;"
	  : "BEGIN; $issue; ROLLBACK;";
	my ($cert, $key, $ca, $serial) = split /\x01/, $node->safe_psql('postgres', $sql);
	my $dir = PostgreSQL::Test::Utils::tempdir;
	write_file_0600("$dir/postgresql.crt", "$cert\n");
	write_file_0600("$dir/postgresql.key", "$key\n");
	write_file_0600("$dir/root.crt", "$ca\n");
	return ($serial, $dir);
}

# ---------------------------------------------------------------------------
# A node with the worker, enforcing the registry at login.
my $node = sql_tls_cluster('worker',
	"shared_preload_libraries = 'pgtls_admin'\npgtls_admin.enforce = registry\nautovacuum = off\n");
$node->safe_psql('postgres', <<'SQL');
CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN; CREATE ROLE app LOGIN; CREATE ROLE issuer LOGIN;
GRANT app TO issuer WITH ADMIN OPTION;
DO $$
DECLARE f regprocedure;
BEGIN
    FOR f IN SELECT oid::regprocedure FROM pg_proc WHERE proname IN ('pgtls_issue_client', 'pgtls_revoke') LOOP
        EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO issuer', f);
    END LOOP;
END $$;
SQL
my %dir = map { $_ => client_files($node, $_) } qw(bob carol);
ok(defined true_within($node, "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'pgtls_admin worker'", 10),
	'the worker runs');
my $t0 = time;
my $bob_in = 0;
while (time - $t0 < 10 && !$bob_in)
{
	$bob_in = $node->psql('postgres', 'SELECT 1', connstr => client_connstr($dir{bob}, 'bob')) == 0;
	usleep(200_000) unless $bob_in;
}
ok($bob_in, 'bob logs in with enforce = registry');

# --- 1. an idle transaction holding the row of a stray it revoked

# The delegated issuer issues in a transaction that rolls back (a stray), then
# revokes that stray in a transaction it leaves open: its uncommitted row is
# the one the worker would record.  Should the worker record the stray first,
# pgtls_revoke says it was revoked already: try again.
my $held = $node->background_psql('postgres', on_error_stop => 0);
$held->query_safe('SET ROLE issuer');
my $held_serial;
for my $attempt (1 .. 5)
{
	my $serial = $node->safe_psql('postgres',
		"SET ROLE issuer; BEGIN; SELECT serial FROM pgtls_issue_client('app'); ROLLBACK;");
	my $revoked_now = $held->query_safe("BEGIN; SELECT pgtls_revoke('$serial')");
	if ($revoked_now =~ /^t$/m)
	{
		$held_serial = $serial;
		last;
	}
	$held->query_safe('ROLLBACK');
}
ok(defined $held_serial, 'an idle transaction holds the uncommitted row of a stray it revoked');

# Another stray is settled while that transaction sits idle.
my ($stray2) = stray_files($node, 'app', 'rollback');
ok(defined true_within($node,
		"SELECT EXISTS (SELECT FROM pgtls_certificates WHERE serial = '$stray2' AND uncommitted AND revoked_at IS NOT NULL)", 10),
	'the worker records another stray while the idle transaction holds one');

# The worker never waits on that transaction's lock.
my $waits = 0;
for (1 .. 10)
{
	$waits += $node->safe_psql('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pgtls_admin worker' AND wait_event_type = 'Lock'");
	usleep(200_000);
}
is($waits, 0, '... and is never seen waiting on a lock');

# It follows the registry: a revocation made in SQL alone reaches the live set.
$node->safe_psql('postgres',
	"UPDATE pgtls_certificates SET revoked_at = now(), revocation_reason = 'keyCompromise', "
	  . "change_xid = pg_current_xact_id() WHERE serial = '" . serial_of($dir{carol}) . "'");
ok(defined refused_within($node, $dir{carol}, 'carol', 10),
	'... and follows the registry: a revocation made in SQL is enforced within seconds');
$node->connect_ok(client_connstr($dir{bob}, 'bob'), '... while bob still logs in',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);
ok(!$node->log_contains('canceling statement due to lock timeout'),
	'... with no error in the log');

# Once the transaction ends, the stray it held is recorded.
$held->query_safe('ROLLBACK');
ok(defined true_within($node,
		"SELECT EXISTS (SELECT FROM pgtls_certificates WHERE serial = '$held_serial' AND uncommitted)", 10),
	'the stray is recorded once the idle transaction rolls back');
$held->quit;

# --- 2. a session holding an ACCESS EXCLUSIVE lock on the registry

# Let the worker read the registry after its last own write, then lock.
sleep 2;
my $locker = $node->background_psql('postgres', on_error_stop => 0);
my $lpid = $locker->query_safe('SELECT pg_backend_pid()');
my $logpos = -s $node->logfile;
$locker->query_safe('BEGIN; LOCK TABLE pgtls_certificates IN ACCESS EXCLUSIVE MODE');
$node->wait_for_log(
	qr/the registry is locked by process $lpid; nothing changed since it was last read, so the live set stays current/,
	$logpos);
pass('locked, with nothing ended since its last read: the worker keeps its set and says so');

# Another transaction ends: a change may be unseen, the worker says it cannot know.
$logpos = -s $node->logfile;
$node->safe_psql('postgres', 'CREATE TABLE unrelated_write ()');
$node->wait_for_log(qr/pgtls_admin worker cannot read the registry: process $lpid holds a lock on it/, $logpos);
pass('once another transaction ended, it warns that it cannot know the set, naming the holder');
like(slurp_file($node->logfile), qr/HINT:  If that session is idle in its transaction, end it \(SELECT pg_terminate_backend\($lpid\)\)/,
	'... with a hint');

# The lock goes: the worker reads the registry again.
$logpos = -s $node->logfile;
$locker->query_safe('ROLLBACK');
$node->wait_for_log(qr/pgtls_admin worker: the registry can be read again/, $logpos);
pass('after the lock goes, the worker reads the registry again');
$locker->quit;
$node->connect_ok(client_connstr($dir{bob}, 'bob'), '... and bob logs in',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);

# --- 3. one statement that issues many certificates

# The worker digests its journal entries a slice a pass, publishing its
# heartbeat every pass meanwhile (it logs each at DEBUG1).
my $burst = 10_000;
$node->safe_psql('postgres', "ALTER SYSTEM SET log_min_messages = debug1; SELECT pg_reload_conf();");
sleep 2;
$logpos = -s $node->logfile;
$node->safe_psql('postgres',
	"SELECT count(*) FROM generate_series(1, $burst) g, LATERAL pgtls_issue_client((CASE WHEN g > 0 THEN 'app' END)::name)");
my $issued_at = time;
my $digested;
while (time - $issued_at < 60 && !defined $digested)
{
	my $log = substr(slurp_file($node->logfile), $logpos);
	while ($log =~ /pgtls_admin worker: journal of (\d+) entries: \d+ settled, (\d+) dropped/g)
	{
		$digested = time - $issued_at if $2 >= $burst;
	}
	usleep(100_000) unless defined $digested;
}
ok(defined $digested, sprintf("the worker digests a statement of $burst certificates (%.1f s after it ended)", $digested // -1));
my @gaps = substr(slurp_file($node->logfile), $logpos) =~ /pgtls_admin worker: heartbeat, (\d+) ms after the previous one/g;
my ($longest) = sort { $b <=> $a } @gaps;
cmp_ok(scalar(@gaps), '>=', 3, '... publishing its heartbeat meanwhile (' . scalar(@gaps) . ' times)');
cmp_ok($longest // 1e9, '<', 5000, "... at most ${\($longest // '?')} ms apart");
cmp_ok(-s $node->data_dir . '/pgtls/journal', '<', 100_000, '... and compacts the journal');
$node->safe_psql('postgres', "ALTER SYSTEM RESET log_min_messages; SELECT pg_reload_conf();");
$node->stop;

# ---------------------------------------------------------------------------
# A node without the worker (enforce = crl): the journal is kept small by
# pgtls_revoke and pgtls_refresh_crl alone.
my $nw = sql_tls_cluster('noworker');
$nw->safe_psql('postgres', 'CREATE ROLE alice LOGIN; CREATE ROLE app LOGIN;');
my $journal = $nw->data_dir . '/pgtls/journal';

# --- 4. compaction without the worker
$nw->safe_psql('postgres',
	"SELECT count(*) FROM generate_series(1, 4000) g, LATERAL pgtls_issue_client((CASE WHEN g > 0 THEN 'app' END)::name)");
cmp_ok(-s $journal, '>', 2_000_000, 'the journal holds 4000 issuances');
my $victim = $nw->safe_psql('postgres', "SELECT serial FROM pgtls_issue_client('app')");
$t0 = time;
is($nw->safe_psql('postgres', "SELECT pgtls_revoke('$victim')"), 't', 'a revocation after 4000 issuances');
my $took = time - $t0;
cmp_ok($took, '<', 3, sprintf('... takes %.2f s', $took));
cmp_ok(-s $journal || 0, '<', 10_000, '... and compacted the journal, without the worker');

# A journal past 256 MB (lines torn by crashes, here) is still read: a stray
# behind them is listed, and compaction drops what is no entry.
my ($big_stray, $big_dir) = stray_files($nw, 'alice', 'rollback');
{
	my $content = slurp_file($journal);
	open my $fh, '>', $journal or die "could not write $journal: $!";
	my $junk = ('x' x 1023 . "\n") x 1024;
	print $fh $junk for 1 .. 260;
	print $fh $content;
	close $fh;
}
cmp_ok(-s $journal, '>', 256 * 1024 * 1024, 'the journal is larger than 256 MB');
my ($rc, $out, $err) = $nw->psql('postgres', 'SELECT pgtls_refresh_crl() > 0');
is($out, 't', 'pgtls_refresh_crl() reads it and lists the stray');
is($err, '', '... without an error');
cmp_ok(-s $journal || 0, '<', 10_000, '... and compaction dropped the torn lines');
$nw->connect_fails(client_connstr($big_dir, 'alice'), 'the stray behind them is refused',
	expected_stderr => qr/certificate revoked/);

# --- 5. what a transaction sees of the registry

# A REPEATABLE READ revoker: whether the journal's certificates are recorded
# is asked with the newest snapshot, so one committed after the revoker's
# snapshot is not taken for a stray and listed in the CRL it writes.
my $to_revoke = client_files($nw, 'alice');
my $rr = $nw->background_psql('postgres', on_error_stop => 0);
$rr->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ; SELECT count(*) FROM pgtls_certificates');
my $after_snapshot = client_files($nw, 'alice');
$rr->query_safe("SELECT pgtls_revoke('" . serial_of($to_revoke) . "'); COMMIT");
$rr->quit;
ok(defined refused_within($nw, $to_revoke, 'alice', 10), 'a REPEATABLE READ transaction revokes a certificate');
$nw->connect_ok(client_connstr($after_snapshot, 'alice'),
	'... and the CRL it wrote does not list one committed after its snapshot',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);

# pgtls_refresh_crl() in a transaction that rolls back: it recorded a stray
# and compacted the journal, but its own rows do not count as recorded, so
# the journal keeps the stray and the next refresh lists it again.
my ($rb_stray, $rb_stray_dir) = stray_files($nw, 'alice', 'rollback');
$nw->safe_psql('postgres', 'BEGIN; SELECT pgtls_refresh_crl(); ROLLBACK;');
is($nw->safe_psql('postgres', "SELECT count(*) FROM pgtls_certificates WHERE serial = '$rb_stray'"),
	'0', 'a pgtls_refresh_crl() that rolled back recorded nothing');
$nw->safe_psql('postgres', 'SELECT pgtls_refresh_crl()');
is($nw->safe_psql('postgres',
		"SELECT count(*) FROM pgtls_certificates WHERE serial = '$rb_stray' AND uncommitted AND revoked_at IS NOT NULL"),
	'1', '... and the next one records the stray it kept in the journal');
$nw->connect_fails(client_connstr($rb_stray_dir, 'alice'), '... which stays refused',
	expected_stderr => qr/certificate revoked/);

# --- 6. DROP EXTENSION and CREATE EXTENSION never let a stray in
my $live = client_files($nw, 'alice');
my $revoked = client_files($nw, 'alice');
$nw->safe_psql('postgres', "SELECT pgtls_revoke('" . serial_of($revoked) . "')");
my ($rolled_back, $rb_dir) = stray_files($nw, 'alice', 'rollback');
my ($savepoint, $sp_dir) = stray_files($nw, 'alice', 'savepoint');
$nw->safe_psql('postgres', 'DROP EXTENSION pgtls_admin; CREATE EXTENSION pgtls_admin;');
$nw->safe_psql('postgres', 'SELECT pgtls_refresh_crl()');
$nw->connect_fails(client_connstr($rb_dir, 'alice'),
	'after a reinstall, a certificate of a rolled-back transaction stays refused',
	expected_stderr => qr/certificate revoked/);
$nw->connect_fails(client_connstr($sp_dir, 'alice'),
	'... and one of a rolled-back savepoint in a committed transaction',
	expected_stderr => qr/certificate revoked/);
$nw->connect_fails(client_connstr($revoked, 'alice'), '... and a revoked one',
	expected_stderr => qr/certificate revoked/);
$nw->connect_ok(client_connstr($live, 'alice'), '... while a committed live one still logs in',
	sql => 'SELECT 1', expected_stdout => qr/^1$/);
is($nw->safe_psql('postgres',
		"SELECT count(*) FROM pgtls_certificates WHERE serial IN ('$rolled_back', '$savepoint') AND uncommitted AND revoked_at IS NOT NULL"),
	'2', 'the new registry records both as revoked, uncommitted');
$nw->safe_psql('postgres', 'SELECT pgtls_refresh_crl()');
ok((-s $journal || 0) < 10_000, 'and the journal is compacted afterwards');
$nw->stop;

done_testing();
