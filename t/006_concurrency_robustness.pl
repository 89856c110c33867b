# Proof under load and abuse: 8 sessions issuing at once, a backend's memory
# flat over many issuances and failing calls, and mutated PEM input that
# only ever yields a result or a clean 22023.
#
# Sizes default to what fits in CI; the issue's full figures:
#   PGTLS_RSS_ISSUES=100000 PGTLS_RSS_FAILS=10000 PGTLS_FUZZ_N=100000 prove t/006...
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $rss_issues = $ENV{PGTLS_RSS_ISSUES} // 20000;
my $rss_fails = $ENV{PGTLS_RSS_FAILS} // 5000;
my $fuzz_n = $ENV{PGTLS_FUZZ_N} // 20000;

my $node = PostgreSQL::Test::Cluster->new('robust');
$node->init;
$node->append_conf('postgresql.conf', "log_statement = 'none'\nlog_min_messages = warning\n");
# certificate rules, as in real use: issuing then has nothing to warn about
write_cert_only_hba($node);
$node->start;
$node->safe_psql('postgres',
	'CREATE EXTENSION pgtls_admin; CREATE ROLE user1 LOGIN; SELECT pgtls_init_ca();');

# --- 8 sessions x 1000 certificates at once
my $script = PostgreSQL::Test::Utils::tempdir . '/issue.sql';
write_file_0600($script, "SELECT serial FROM pgtls_issue_client('user1');\n");
my $t0 = time;
$node->command_ok([ 'pgbench', '-n', '-c', '8', '-j', '2', '-t', '1000', '-f', $script,
	'-h', $node->host, '-p', $node->port, 'postgres' ], '8 sessions issue 1000 certificates each, without error');
my $secs = time - $t0;
note(sprintf('8 x 1000 issuances in %.1f s (%.0f certificates/s)', $secs, 8000 / $secs));
is($node->safe_psql('postgres',
		"SELECT count(*) || ' ' || count(DISTINCT serial) || ' ' || count(DISTINCT fingerprint_sha256) "
		  . "FROM pgtls_certificates WHERE kind = 'client'"),
	'8000 8000 8000', 'the registry has all 8000, with unique serials and fingerprints');

# --- memory: RssAnon of one backend before and after
my $bg = $node->background_psql('postgres');
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
sub rss_anon_kb
{
	my $status = slurp_file("/proc/$pid/status");
	$status =~ /^RssAnon:\s+(\d+) kB/m or die "no RssAnon";
	return $1;
}
my ($cert, $key) = split /\x01/, $node->safe_psql('postgres',
	"SELECT certificate || '\x01' || private_key FROM pgtls_issue_client('user1')");
my $other_key = $node->safe_psql('postgres', "SELECT private_key FROM pgtls_issue_client('user1')");
# failing calls that hold OpenSSL objects when they raise
my $fail_loop = <<"SQL";
DO \$\$
DECLARE i int;
BEGIN
  FOR i IN 1..%d LOOP
    BEGIN PERFORM pgtls_import_ca(\$c\$$cert\$c\$, \$k\$$other_key\$k\$, true);
    EXCEPTION WHEN invalid_parameter_value THEN NULL; END;
    BEGIN PERFORM * FROM pgtls_cert_info(left(\$c\$$cert\$c\$, 300) || E'\\n-----END CERTIFICATE-----\\n');
    EXCEPTION WHEN invalid_parameter_value THEN NULL; END;
    BEGIN PERFORM pgtls_pkcs12(\$c\$$cert\$c\$, \$k\$$other_key\$k\$, 'x');
    EXCEPTION WHEN invalid_parameter_value THEN NULL; END;
  END LOOP;
END \$\$;
SQL
my $issue_loop = "DO \$\$ DECLARE i int; BEGIN FOR i IN 1..%d LOOP "
  . "PERFORM * FROM pgtls_issue_client('user1', days => 1 + i % 300); END LOOP; END \$\$;";
# warm up every path, so caches and the allocator's arenas are in place
$bg->query_safe(sprintf($issue_loop, 2000));
$bg->query_safe(sprintf($fail_loop, 200));
my $before = rss_anon_kb();
$t0 = time;
# issuances in ten transactions: nothing may stay behind from one to the next
$bg->query_safe(sprintf($issue_loop, $rss_issues / 10)) for 1 .. 10;
my $after_issues = rss_anon_kb();
$bg->query_safe(sprintf($fail_loop, $rss_fails));
my $after_fails = rss_anon_kb();
note(sprintf('RssAnon: %d kB before, %d kB after %d issuances (%.1f s), %d kB after %d x 3 failing calls',
	$before, $after_issues, $rss_issues, time - $t0, $after_fails, $rss_fails));
cmp_ok($after_issues - $before, '<=', 4096, "memory grows at most 4 MB over $rss_issues issuances");
cmp_ok($after_fails - $before, '<=', 4096, "... and over $rss_fails rounds of failing calls");
# in one transaction, what waits for its commit (each certificate's NOTIFY
# payload) is held until then: a few hundred bytes a certificate, no more
$bg->query_safe(sprintf($issue_loop, $rss_issues));
my $after_one = rss_anon_kb();
note(sprintf('RssAnon: %d kB after %d issuances in one transaction', $after_one, $rss_issues));
cmp_ok(($after_one - $after_fails) * 1024 / $rss_issues, '<=', 512,
	"one transaction of $rss_issues issuances holds at most 512 bytes a certificate until it commits");
$bg->quit;

# --- mutated input: a result or a clean 22023, never anything else
my $tmp = PostgreSQL::Test::Utils::tempdir;
openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
	'-keyout', "$tmp/k.pem", '-subj', '/CN=user1', '-addext', 'subjectAltName=DNS:x.example.com',
	'-out', "$tmp/req.csr");
my $csr = slurp_file("$tmp/req.csr");
$node->safe_psql('postgres', <<'SQL');
CREATE FUNCTION fuzz(base text, n int, target text, seed float8) RETURNS TABLE (outcome text, hits bigint)
LANGUAGE plpgsql AS $$
DECLARE
    label text := substring(base FROM '-----BEGIN ([A-Z ]+)-----');
    der bytea := decode(regexp_replace(base, '-----[A-Z ]+-----|\s', '', 'g'), 'base64');
    m bytea;
    pem text;
    k int;
    res text;
    results text[] := '{}';
BEGIN
    PERFORM setseed(seed);
    FOR i IN 1..n LOOP
        m := der;
        CASE i % 4
        WHEN 0 THEN   -- flip up to 4 random bytes
            FOR j IN 1..1 + (random() * 3)::int LOOP
                k := (random() * (length(m) - 1))::int;
                m := set_byte(m, k, (random() * 255)::int);
            END LOOP;
        WHEN 1 THEN   -- truncate
            m := substring(m FROM 1 FOR (random() * length(m))::int);
        WHEN 2 THEN   -- insert random bytes
            k := (random() * length(m))::int;
            m := substring(m FROM 1 FOR k) || decode(md5(random()::text), 'hex') || substring(m FROM k + 1);
        ELSE          -- change a length byte near the start of an element
            k := (random() * least(length(m) - 1, 400))::int;
            m := set_byte(m, k, get_byte(m, k) # (1 << (random() * 7)::int));
        END CASE;
        pem := '-----BEGIN ' || label || E'-----\n' || encode(m, 'base64') || E'\n-----END ' || label || E'-----\n';
        BEGIN
            IF target = 'cert_info' THEN
                PERFORM * FROM pgtls_cert_info(pem);
            ELSE
                PERFORM * FROM pgtls_sign_client_csr('user1', pem);
            END IF;
            res := 'ok';
        EXCEPTION WHEN OTHERS THEN
            res := SQLSTATE;
        END;
        results := results || res;
    END LOOP;
    RETURN QUERY SELECT r, count(*) FROM unnest(results) r GROUP BY r ORDER BY r;
END $$;
SQL
for my $case ([ 'cert_info', $cert ], [ 'sign_client_csr', $csr ])
{
	my ($target, $base) = @$case;
	$t0 = time;
	my $out = $node->safe_psql('postgres',
		"SELECT string_agg(outcome || '=' || hits, ' ') FROM fuzz(\$b\$$base\$b\$, $fuzz_n, '$target', 0.42)");
	note(sprintf('%s: %d mutated inputs in %.1f s: %s', $target, $fuzz_n, time - $t0, $out));
	my %hits = map { split /=/ } split / /, $out;
	my @other = grep { $_ ne 'ok' && $_ ne '22023' } keys %hits;
	is_deeply(\@other, [], "$target: $fuzz_n mutated inputs give a result or 22023, nothing else");
	cmp_ok($hits{22023} // 0, '>', $fuzz_n / 2, "$target: most mutations are refused as invalid input");
}
unlike(slurp_file($node->logfile), qr/terminated by signal|server process .* was terminated|PANIC/,
	'no backend crashed');

$node->stop;
done_testing();
