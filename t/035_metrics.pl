# Monitoring as it runs in production: Debian's prometheus-postgres-exporter,
# logged in with a pgtls_admin client certificate as a pg_monitor member (no
# superuser), loads monitoring/postgres_exporter.yaml and is scraped over
# HTTP; every pgtls_* number it serves is checked against SQL or the files
# (the server certificate's expiry against pgtls_server_cert_info(), the CRL
# against openssl), a revocation moves them, a missing or garbled file drops
# its metric without breaking the others, and monitoring/alerts.yaml passes
# promtool's check and its unit tests (monitoring/alerts_test.yaml).
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use HTTP::Tiny;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);
use Time::Local qw(timegm);

my $srcdir = "$FindBin::RealBin/..";
my $exporter_bin = '/usr/bin/prometheus-postgres-exporter';
my $promtool = '/usr/bin/promtool';

# The Debian packages, installed when missing if we may (CI installs them
# through scripts/install.sh; tests run as postgres).
sub need_package
{
	my ($bin, $package) = @_;
	return if -x $bin;
	die "$bin is missing: apt-get install $package (scripts/install.sh does)\n" if $> != 0;
	local $ENV{DEBIAN_FRONTEND} = 'noninteractive';
	system('apt-get', 'install', '-y', '-q', '--no-install-recommends', $package) == 0
	  or die "apt-get install $package failed\n";
	return;
}
need_package($exporter_bin, 'prometheus-postgres-exporter');
need_package($promtool, 'prometheus');

# --- a cluster with TLS on, and a registry with rows of every state
my $node = sql_tls_cluster('metrics');
my $hostile = 'o"dd\\role x';
(my $hostile_sql = $hostile) =~ s/"/""/g;
$node->safe_psql('postgres', <<"SQL");
CREATE ROLE pgtls_exporter LOGIN IN ROLE pg_monitor;
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
CREATE ROLE carol LOGIN;
CREATE ROLE "$hostile_sql" LOGIN;
SQL
sub sql { return $node->safe_psql('postgres', $_[0]); }
sub serial_for { return sql("SELECT serial FROM pgtls_issue_client(\$r\$$_[0]\$r\$)"); }
my @alice = map { serial_for('alice') } 1 .. 3;
my $bob = serial_for('bob');
serial_for($hostile);
sql("SELECT pgtls_revoke('$alice[0]', 'keyCompromise')");
# an expired certificate, as a registry that has been in use for years holds them
sql(<<'SQL');
INSERT INTO pgtls_certificates (serial, kind, role, subject, key_type, not_before, not_after,
                                fingerprint_sha256, certificate, issued_by, role_oid)
SELECT '5EED0000000000000000000000000001', 'client', 'carol', 'CN=carol', 'ec-p256',
       now() - interval '400 days', now() - interval '35 days', '', '', 'postgres', 'carol'::regrole
SQL

# The exporter logs in over TLS with its own certificate, as the hostssl
# cert rule demands, and is no superuser.
my $certs = client_files($node, 'pgtls_exporter');
is(sql("SELECT rolsuper FROM pg_roles WHERE rolname = 'pgtls_exporter'"), 'f', 'the exporter role is not a superuser');

# --- the exporter
my $http_port = PostgreSQL::Test::Cluster::get_free_port();
my $log = PostgreSQL::Test::Utils::tempdir . '/exporter.log';
my $dsn = sprintf('host=127.0.0.1 port=%d user=pgtls_exporter dbname=postgres sslmode=verify-full '
	  . 'sslrootcert=%s/root.crt sslcert=%s/postgresql.crt sslkey=%s/postgresql.key',
	$node->port, $certs, $certs, $certs);
my $exporter;
# never leave the exporter behind, whatever stops this test
END
{
	local $?;
	eval { $exporter->kill_kill } if $exporter;
}
$exporter = IPC::Run::start(
	[
		$exporter_bin, "--web.listen-address=127.0.0.1:$http_port",
		"--extend.query-path=$srcdir/monitoring/postgres_exporter.yaml"
	],
	'<', \undef, '>', $log, '2>', "$log.err",
	init => sub { $ENV{DATA_SOURCE_NAME} = $dsn; });

my $http = HTTP::Tiny->new(timeout => 10);
# /metrics, parsed: [name, {label => value}, value] for every sample
sub scrape
{
	my $res;
	for (1 .. 150)
	{
		$res = $http->get("http://127.0.0.1:$http_port/metrics");
		last if $res->{success} && $res->{content} =~ /^pgtls_audit_findings/m;
		usleep(200_000);
	}
	die "no pgtls metrics from the exporter: $res->{status} $res->{content}\n"
	  . slurp_file($log) . slurp_file("$log.err")
	  unless $res->{success} && $res->{content} =~ /^pgtls_audit_findings/m;
	my @samples;
	for my $line (split /\n/, $res->{content})
	{
		next if $line =~ /^#/ || $line eq '';
		$line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/ or die "unparsable line: $line";
		my ($name, $labels, $value) = ($1, $2 // '', $3);
		my %l;
		while ($labels =~ /\G([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/gc)
		{
			my ($k, $v) = ($1, $2);
			$v =~ s/\\(.)/$1 eq 'n' ? "\n" : $1/ge;
			$l{$k} = $v;
		}
		die "unparsable labels: $labels" if (pos($labels) // 0) != length $labels;
		push @samples, [ $name, \%l, $value ];
	}
	return ($res->{content}, \@samples);
}
# samples of one metric as "label=value,..." => value, the server label left out
sub series
{
	my ($samples, $name) = @_;
	my %s;
	for (grep { $_->[0] eq $name } @$samples)
	{
		my %l = %{ $_->[1] };
		delete $l{server};
		my $key = join ',', map { "$_=$l{$_}" } sort keys %l;
		die "duplicate series $name\{$key}" if exists $s{$key};
		$s{$key} = $_->[2];
	}
	return \%s;
}
# SQL rows "a|b|value" => {"k1=a,k2=b" => value}
sub sql_series
{
	my ($query, @keys) = @_;
	my %s;
	for my $row (split /\n/, sql($query))
	{
		my @f = split /\|/, $row, -1;
		my $v = pop @f;
		my %l;
		@l{@keys} = @f;
		$s{ join ',', map { "$_=$l{$_}" } sort keys %l } = $v;
	}
	return \%s;
}
sub near
{
	my ($got, $want, $name) = @_;
	my $ok = defined $got && defined $want && abs($got - $want) < 0.002;
	ok($ok, $name) or diag("got " . ($got // 'none') . ", want " . ($want // 'none'));
	return;
}
sub same_series
{
	my ($got, $want, $name) = @_;
	is_deeply([ sort keys %$got ], [ sort keys %$want ], "$name: the same series");
	near($got->{$_}, $want->{$_}, "$name: $_") for sort keys %$want;
	return;
}

my ($text, $samples) = scrape();
my %one = map { $_->[0] => $_->[2] } grep { !%{ $_->[1] } } @$samples;
is($one{pg_up}, 1, 'the exporter reaches PostgreSQL');
is($one{pg_exporter_last_scrape_error}, 0, 'every query of the scrape succeeded as a pg_monitor member');
my ($load) = grep { $_->[0] eq 'pg_exporter_user_queries_load_error' } @$samples;
is($load->[2], 0, 'the query file loads');
like($load->[1]{filename}, qr{monitoring/postgres_exporter\.yaml$}, '... it is ours');
is(sql("SELECT s.ssl, s.client_dn FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
        WHERE a.usename = 'pgtls_exporter' LIMIT 1"),
	't|/CN=pgtls_exporter', 'the exporter is logged in over TLS with its certificate');

# --- each metric against SQL and the files
my $server_cert = series($samples, 'pgtls_server_cert_not_after_timestamp_seconds');
same_series($server_cert,
	sql_series(<<'SQL', qw(fingerprint serial subject)),
SELECT fingerprint_sha256, serial, subject, extract(epoch FROM not_after) FROM pgtls_server_cert_info()
SQL
	'server certificate expiry = pgtls_server_cert_info().not_after');

same_series(series($samples, 'pgtls_ca_not_after_timestamp_seconds'),
	sql_series(<<'SQL', qw(fingerprint serial subject)),
SELECT fingerprint_sha256, serial, subject, extract(epoch FROM not_after) FROM pgtls_cert_info(pgtls_ca_cert())
SQL
	'CA expiry = the CA certificate\'s not_after');

# the CRL's dates as openssl reads them from ssl_crl_file
my %month;
@month{qw(Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec)} = 0 .. 11;
sub openssl_time
{
	my ($t) = @_;
	$t =~ /^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\d{4}) GMT$/ or die "unexpected time $t";
	return timegm($5, $4, $3, $2, $month{$1}, $6);
}
my $crl_file = $node->data_dir . '/' . sql('SHOW ssl_crl_file');
my $crl_dates = openssl('crl', '-in', $crl_file, '-noout', '-lastupdate', '-nextupdate');
my ($last) = $crl_dates =~ /lastUpdate=(.*)/;
my ($next) = $crl_dates =~ /nextUpdate=(.*)/;
my $ca_key = 'ca_fingerprint=' . sql('SELECT fingerprint_sha256 FROM pgtls_cert_info(pgtls_ca_cert())')
  . ',issuer=' . sql('SELECT subject FROM pgtls_cert_info(pgtls_ca_cert())');
same_series(series($samples, 'pgtls_crl_this_update_timestamp_seconds'), { $ca_key => openssl_time($last) },
	'CRL thisUpdate = openssl crl -lastupdate');
same_series(series($samples, 'pgtls_crl_next_update_timestamp_seconds'), { $ca_key => openssl_time($next) },
	'CRL nextUpdate = openssl crl -nextupdate');

my $counts_sql = <<'SQL';
SELECT role, s.state, count(c.serial) FILTER (WHERE CASE s.state
           WHEN 'live' THEN c.revoked_at IS NULL AND c.not_after > now()
           WHEN 'revoked' THEN c.revoked_at IS NOT NULL
           ELSE c.revoked_at IS NULL AND c.not_after <= now() END)
FROM pgtls_certificates c, (VALUES ('live'), ('revoked'), ('expired')) s(state)
WHERE c.kind = 'client' GROUP BY 1, 2
SQL
my $counts = series($samples, 'pgtls_client_certificates');
same_series($counts, sql_series($counts_sql, qw(role state)), 'client certificates per role and state = the registry');
is_deeply([ map { $counts->{"role=alice,state=$_"} } qw(live revoked expired) ], [ 2, 1, 0 ], '... alice: 2 live, 1 revoked');
is($counts->{'role=carol,state=expired'}, 1, '... carol: 1 expired');
is($counts->{"role=$hostile,state=live"}, 1, '... a role name with quotes and a backslash comes through intact');
same_series(series($samples, 'pgtls_client_cert_next_expiry_timestamp_seconds'),
	sql_series(<<'SQL', qw(role)), 'next expiry per role = the earliest live not_after');
SELECT role, extract(epoch FROM min(not_after)) FROM pgtls_certificates
WHERE kind = 'client' AND revoked_at IS NULL AND not_after > now() GROUP BY role
SQL

# the audit as the exporter's role sees it (and a superuser sees the same)
my $audit_sql = <<'SQL';
SELECT v.s, count(f.check_id) FROM (VALUES ('critical'), ('high'), ('medium'), ('low'), ('info')) v(s)
LEFT JOIN pgtls_hba_check() f ON f.severity = v.s AND f.check_id <> 'summary' GROUP BY v.s
SQL
my $audit_mon = $node->safe_psql('postgres', $audit_sql, extra_params => [ '-U', 'pgtls_exporter' ]);
is($audit_mon, sql($audit_sql), 'the audit says the same to pg_monitor as to a superuser');
my $audit = series($samples, 'pgtls_audit_findings');
same_series($audit, sql_series($audit_sql, qw(severity)), 'audit findings per severity = pgtls_hba_check()');
ok($audit->{'severity=high'} + $audit->{'severity=medium'} + $audit->{'severity=low'} > 0,
	'... there are findings to count (trust for local connections, at least)');

same_series(series($samples, 'pgtls_last_issuance_timestamp_seconds'),
	sql_series('SELECT kind, extract(epoch FROM max(issued_at)) FROM pgtls_certificates WHERE NOT uncommitted GROUP BY kind', qw(kind)),
	'last issuance per kind = the registry');
same_series(series($samples, 'pgtls_last_revocation_timestamp_seconds'),
	{ '' => sql('SELECT extract(epoch FROM max(r)) FROM (SELECT revoked_at FROM pgtls_certificates
	             UNION ALL SELECT revoked_at FROM pgtls_revoked_serials) x(r)') },
	'last revocation = the registry');

# promtool's linter has nothing to say about our metric names, types and help
my $ours = join "\n", grep { /^(# (HELP|TYPE) )?pgtls_/ } split /\n/, $text;
my ($lint_out, $lint_err);
my $lint_ok = IPC::Run::run([ $promtool, 'check', 'metrics' ], '<', \"$ours\n", '>', \$lint_out, '2>', \$lint_err);
ok($lint_ok, 'promtool check metrics: the pgtls_* metrics follow the naming conventions')
  or diag("$lint_out$lint_err");

# --- a revocation shows at the next scrape (the registry metrics are not cached)
sql("SELECT pgtls_revoke('$bob')");
my $last_revoked = sql("SELECT extract(epoch FROM revoked_at) FROM pgtls_certificates WHERE serial = '$bob'");
my $moved;
for (1 .. 20)
{
	(undef, $samples) = scrape();
	$moved = series($samples, 'pgtls_client_certificates');
	last if $moved->{'role=bob,state=revoked'} == 1;
	usleep(250_000);
}
is_deeply([ map { $moved->{"role=bob,state=$_"} } qw(live revoked) ], [ 0, 1 ], 'after revoking bob\'s certificate: 0 live, 1 revoked');
ok(!exists series($samples, 'pgtls_client_cert_next_expiry_timestamp_seconds')->{'role=bob'}, '... and no next expiry for bob');
near(series($samples, 'pgtls_last_revocation_timestamp_seconds')->{''}, $last_revoked, '... last revocation moved to it');

# --- alerts: every metric they name is one the exporter serves
my %served = map { $_->[0] => 1 } @$samples;
my %named = map { $_ => 1 } slurp_file("$srcdir/monitoring/alerts.yaml") =~ /\b(pg(?:tls)?_[a-z_]+)\b/g;
delete $named{$_} for grep { !/_(?:seconds|findings|certificates|up)$/ } keys %named;
ok(scalar(keys %named) >= 4, 'the alert rules name metrics: ' . join(' ', sort keys %named));
ok($served{$_}, "alert metric $_ is served by the exporter") for sort keys %named;
my ($out, $err);
ok(IPC::Run::run([ $promtool, 'check', 'rules', "$srcdir/monitoring/alerts.yaml" ], '>', \$out, '2>', \$err),
	'promtool check rules monitoring/alerts.yaml') or diag("$out$err");
ok(IPC::Run::run([ $promtool, 'test', 'rules', 'alerts_test.yaml' ], '>', \$out, '2>', \$err,
		init => sub { chdir "$srcdir/monitoring" or die $!; }),
	'promtool test rules monitoring/alerts_test.yaml: each alert fires when it should and only then') or diag("$out$err");

$exporter->kill_kill;
undef $exporter;

# --- files that are missing or garbled: no row for them, no error, the rest intact
my $cert_file = $node->data_dir . '/' . sql('SHOW ssl_cert_file');
my $as_monitor = sub {
	return $node->safe_psql('postgres', $_[0], extra_params => [ '-U', 'pgtls_exporter' ]);
};
my $metrics_by_name = 'SELECT metric, count(*) FROM pgtls_metrics GROUP BY 1 ORDER BY 1';
my $before = $as_monitor->($metrics_by_name);
rename $cert_file, "$cert_file.away" or die $!;
my $crl = slurp_file($crl_file);
write_file_0600($crl_file, "-----BEGIN X509 CRL-----\nnot a CRL\n-----END X509 CRL-----\n");
my $without = $as_monitor->($metrics_by_name);
rename "$cert_file.away", $cert_file or die $!;
write_file_0600($crl_file, $crl);
my $expected = join "\n", grep { !/^pgtls_(?:server_cert|crl)_/ } split /\n/, $before;
is($without, $expected, 'without a readable server certificate or CRL those metrics are absent and the rest unchanged');
is($as_monitor->($metrics_by_name), $before, '... and come back with the files');

$node->stop;
done_testing();
