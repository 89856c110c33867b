# Helpers shared by pgtls_admin's TAP tests: a cluster with the extension,
# TLS on and certificate-only pg_hba rules, and client files written the way
# libpq demands (owned by the connecting user, mode 0600).
package PgtlsTest;

use strict;
use warnings;

use Exporter 'import';
use File::Path qw(make_path);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(tls_cluster sql_tls_cluster streaming_tls_primary write_cert_only_hba write_file_0600
  client_files client_connstr openssl cli_ca_sign sql_result pem_literal);

# Run the openssl command-line tool; die with its output on failure.
sub openssl
{
	my @args = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run([ 'openssl', @args ], '>', \$stdout, '2>', \$stderr);
	die "openssl @args failed: $stderr" unless $ok;
	return $stdout;
}

# Sign a request with "openssl ca", as the tutorials do, in $dir (its index
# and serial are kept there).  $ext: the extension lines of the certificate;
# %o: ca_cert, ca_key (files), md (default sha256), dates (extra arguments
# such as -days 5 or -startdate/-enddate).
sub cli_ca_sign
{
	my ($dir, $csr, $out, $ext, %o) = @_;
	if (!-e "$dir/index.txt")
	{
		write_file_0600("$dir/index.txt", '');
		write_file_0600("$dir/serial", "1000\n");
	}
	write_file_0600("$dir/ca.cnf", <<"CNF");
[ ca ]
default_ca = d
[ d ]
database = $dir/index.txt
new_certs_dir = $dir
serial = $dir/serial
unique_subject = no
policy = p
[ p ]
commonName = supplied
[ ext ]
$ext
CNF
	openssl('ca', '-batch', '-config', "$dir/ca.cnf", '-cert', $o{ca_cert}, '-keyfile', $o{ca_key},
		'-in', $csr, '-out', $out, '-md', $o{md} // 'sha256', '-extensions', 'ext', '-notext',
		@{ $o{dates} // [] });
	return;
}

sub write_file_0600
{
	my ($path, $content) = @_;
	open my $fh, '>', $path or die "could not write $path: $!";
	print $fh $content;
	close $fh;
	chmod 0600, $path or die "chmod $path: $!";
	return $path;
}

# A server certificate for localhost/127.0.0.1 signed with the extension's CA
# key, made with the openssl CLI, written into the data directory.
sub make_server_cert
{
	my ($node) = @_;
	my $dd = $node->data_dir;
	my $tmp = PostgreSQL::Test::Utils::tempdir;
	write_file_0600("$tmp/ext.cnf",
		"basicConstraints=critical,CA:FALSE\n"
		  . "keyUsage=critical,digitalSignature,keyEncipherment\n"
		  . "extendedKeyUsage=serverAuth\n"
		  . "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
	openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
		'-nodes', '-keyout', "$dd/server.key", '-subj', '/CN=localhost',
		'-out', "$tmp/server.csr");
	openssl('x509', '-req', '-in', "$tmp/server.csr", '-CA', "$dd/pgtls/ca.crt",
		'-CAkey', "$dd/pgtls/ca.key", '-set_serial', '4242', '-days', '30',
		'-sha256', '-extfile', "$tmp/ext.cnf", '-out', "$dd/server.crt");
	chmod 0600, "$dd/server.key";
	return;
}

# A started cluster listening on 127.0.0.1 with pgtls_admin, a CA, TLS on and
#   hostssl all all 127.0.0.1/32 cert
#   host    all all 127.0.0.1/32 reject
sub tls_cluster
{
	my ($name) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n");
	$node->start;
	$node->safe_psql('postgres',
		'CREATE EXTENSION pgtls_admin; SELECT pgtls_init_ca();');
	make_server_cert($node);
	write_cert_only_hba($node);
	$node->append_conf('postgresql.conf',
		"ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
		  . "ssl_ca_file = 'pgtls/ca.crt'\n");
	$node->restart;
	is($node->safe_psql('postgres', 'SHOW ssl'), 'on', "$name: ssl is on");
	return $node;
}

# Local connections trusted; over TCP a certificate or nothing.
sub write_cert_only_hba
{
	my ($node) = @_;
	open my $hba, '>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $hba "local all all trust\n"
	  . "hostssl all all 127.0.0.1/32 cert\n"
	  . "host all all 127.0.0.1/32 reject\n";
	close $hba;
	return;
}

# A started cluster where SQL alone set up TLS: pgtls_init_ca() and
# pgtls_enable_ssl(), with the certificate-only rules above; $conf, if
# given, is added to postgresql.conf before the first start.
sub sql_tls_cluster
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init;
	$node->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n" . ($conf // ''));
	write_cert_only_hba($node);
	$node->start;
	$node->safe_psql('postgres',
		'CREATE EXTENSION pgtls_admin; SELECT pgtls_init_ca(); SELECT count(*) FROM pgtls_enable_ssl();');
	return $node;
}

# A started primary for streaming standbys (replication over the Unix
# socket) with pgtls_admin, a CA and TLS on under the certificate-only
# rules; $conf is added to postgresql.conf before the first start.
sub streaming_tls_primary
{
	my ($name, $conf) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(allows_streaming => 1);
	$node->append_conf('postgresql.conf', "listen_addresses = '127.0.0.1'\n" . ($conf // ''));
	write_cert_only_hba($node);
	open my $hba, '>>', $node->data_dir . '/pg_hba.conf' or die $!;
	print $hba "local replication all trust\n";
	close $hba;
	$node->start;
	$node->safe_psql('postgres',
		'CREATE EXTENSION pgtls_admin; SELECT length(pgtls_init_ca()) > 0; SELECT count(*) FROM pgtls_enable_ssl();');
	return $node;
}

# Issue a certificate for $role via SQL and write postgresql.crt/.key and
# root.crt into a fresh directory; returns the directory.
sub client_files
{
	my ($node, $role, %opts) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir;
	my $args = $opts{key_type} ? ", key_type => '$opts{key_type}'" : '';
	my $out = $node->safe_psql('postgres',
		"SELECT certificate || '\x01' || private_key || '\x01' || ca_certificate "
		  . "FROM pgtls_issue_client(\$r\$$role\$r\$$args)");
	my ($cert, $key, $ca) = split /\x01/, $out;
	write_file_0600("$dir/postgresql.crt", "$cert\n");
	write_file_0600("$dir/postgresql.key", "$key\n");
	write_file_0600("$dir/root.crt", "$ca\n");
	return $dir;
}

# Run SQL on $node's postgres database; (exit code, stdout, stderr), for checking errors.
sub sql_result
{
	my ($node, $query) = @_;
	my ($stdout, $stderr);
	my $rc = $node->psql('postgres', $query, stdout => \$stdout, stderr => \$stderr);
	return ($rc, $stdout, $stderr);
}

# A PEM text as an SQL literal.
sub pem_literal
{
	my ($s) = @_;
	return "\$pem\$$s\$pem\$";
}

# libpq keyword/value quoting.
sub conn_quote
{
	my ($v) = @_;
	$v =~ s/\\/\\\\/g;
	$v =~ s/'/\\'/g;
	return "'$v'";
}

sub client_connstr
{
	my ($dir, $user, $sslmode) = @_;
	$sslmode //= 'verify-full';
	return
	    "host=localhost hostaddr=127.0.0.1 dbname=postgres sslmode=$sslmode "
	  . "sslrootcert=$dir/root.crt sslcert=$dir/postgresql.crt "
	  . "sslkey=$dir/postgresql.key user="
	  . conn_quote($user);
}

1;
