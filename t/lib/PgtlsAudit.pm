# Helpers for the audit-truth TAP tests (t/020-t/024): change settings and
# wait until new sessions see them, read findings, and ask the wire with
# "openssl s_client -starttls postgres" what the server really negotiates.
package PgtlsAudit;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(reload set_conf reset_conf findings severity_of s_client
  expired_crl current_crl psql_login client_dir);

# Reload and wait until a new session sees the new configuration.
sub reload
{
	my ($node) = @_;
	my $before = $node->safe_psql('postgres', 'SELECT pg_conf_load_time()');
	$node->safe_psql('postgres', 'SELECT pg_reload_conf()');
	for (1 .. 200)
	{
		last if $node->safe_psql('postgres', 'SELECT pg_conf_load_time()') ne $before;
		select undef, undef, undef, 0.05;
	}
	return;
}

# ALTER SYSTEM SET each key to its value, then reload.
sub set_conf
{
	my ($node, %kv) = @_;
	for my $k (sort keys %kv)
	{
		(my $v = $kv{$k}) =~ s/'/''/g;
		$node->safe_psql('postgres', "ALTER SYSTEM SET $k = '$v'");
	}
	reload($node);
	return;
}

sub reset_conf
{
	my ($node, @keys) = @_;
	$node->safe_psql('postgres', "ALTER SYSTEM RESET $_") for @keys;
	reload($node);
	return;
}

# check_id => [severities] of the findings whose check_id matches $re
sub findings
{
	my ($node, $re) = @_;
	my %f;
	my $out = $node->safe_psql('postgres',
		"SELECT check_id || '|' || severity FROM pgtls_hba_check() ORDER BY 1");
	for (split /\n/, $out)
	{
		my ($id, $sev) = split /\|/;
		push @{ $f{$id} }, $sev if !defined $re || $id =~ $re;
	}
	return \%f;
}

# the severities of one check_id, sorted, joined with commas ('' when none)
sub severity_of
{
	my ($node, $id) = @_;
	return join ',', sort @{ findings($node)->{$id} // [] };
}

# openssl s_client -starttls postgres with extra arguments; returns
# { ok => bool, protocol => 'TLSv1.3', cipher => ..., temp_key => ..., out => text }
sub s_client
{
	my ($node, @args) = @_;
	my ($out, $err) = ('', '');
	IPC::Run::run(
		[
			'openssl', 's_client', '-starttls', 'postgres', '-connect',
			'127.0.0.1:' . $node->port, @args
		],
		'<', \'', '>', \$out, '2>', \$err);
	my %r = (out => $out . $err);
	if ($out =~ /^New, (\S+), Cipher is (\S+)/m && $2 ne '(NONE)')
	{
		$r{ok} = 1;
		$r{protocol} = $1;
		$r{cipher} = $2;
	}
	$r{temp_key} = $1 if $out =~ /^Server Temp Key: (\S+?),/m;
	return \%r;
}

# A CRL of the CA in $ca_cert/$ca_key written to $out, valid between two
# dates (openssl ca -gencrl with explicit lastUpdate and nextUpdate).
sub expired_crl
{
	my ($dir, $ca_cert, $ca_key, $out, %o) = @_;
	my $db = "$dir/crl-" . int(rand(1e9));
	mkdir $db;
	open my $fh, '>', "$db/index.txt" or die;
	print $fh ($o{index} // '');
	close $fh;
	open $fh, '>', "$db/crlnumber" or die;
	print $fh "01\n";
	close $fh;
	open $fh, '>', "$db/ca.cnf" or die;
	print $fh "[ ca ]\ndefault_ca = d\n[ d ]\ndatabase = $db/index.txt\ncrlnumber = $db/crlnumber\ndefault_md = sha256\n";
	close $fh;
	my @dates = $o{current}
	  ? ('-crldays', '30')
	  : ('-crl_lastupdate', $o{last} // '20200101000000Z', '-crl_nextupdate', $o{next} // '20200201000000Z');
	my ($so, $se);
	IPC::Run::run([ 'openssl', 'ca', '-config', "$db/ca.cnf", '-gencrl', '-cert', $ca_cert,
			'-keyfile', $ca_key, @dates, '-out', $out ], '>', \$so, '2>', \$se)
	  or die "openssl ca -gencrl failed: $se";
	return $out;
}

sub current_crl
{
	my ($dir, $ca_cert, $ca_key, $out) = @_;
	return expired_crl($dir, $ca_cert, $ca_key, $out, current => 1);
}

# psql over TLS with a client certificate; returns (rc, stdout, stderr)
sub psql_login
{
	my ($node, $dir, $user, %o) = @_;
	my $db = $o{dbname} // 'postgres';
	my $extra = $o{replication} ? ' replication=true' : '';
	my $conn = "host=localhost hostaddr=127.0.0.1 port=" . $node->port
	  . " dbname=$db sslmode=" . ($o{sslmode} // 'require')
	  . " sslrootcert=$dir/root.crt sslcert=$dir/postgresql.crt sslkey=$dir/postgresql.key user=$user$extra";
	my ($out, $err) = ('', '');
	my @cmd = ($node->installed_command('psql'), '-XAtq', '-d', $conn, '-c',
		$o{sql} // ($o{replication} ? 'IDENTIFY_SYSTEM' : 'SELECT current_user'));
	local %ENV = %ENV;
	delete $ENV{PGHOST};
	delete $ENV{PGHOSTADDR};
	delete $ENV{PGSSLMODE};
	my $ok = IPC::Run::run(\@cmd, '<', \'', '>', \$out, '2>', \$err);
	chomp $out;
	return ($ok ? 0 : 1, $out, $err);
}

# A directory with postgresql.crt, postgresql.key (0600) and root.crt.
sub client_dir
{
	my ($cert, $key, $root) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	for ([ 'postgresql.crt', $cert ], [ 'postgresql.key', $key ], [ 'root.crt', $root ])
	{
		open my $fh, '>', "$dir/$_->[0]" or die;
		print $fh $_->[1], "\n";
		close $fh;
		chmod 0600, "$dir/$_->[0]";
	}
	return $dir;
}

1;
