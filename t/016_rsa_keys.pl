# RSA keys the server generates: an RSA CA, rsa-3072 and rsa-4096 client
# certificates, an RSA server certificate.  pg_regress generates one RSA key
# (rsa-2048, sql/issue.sql) because RSA generation was most of its time, above
# all under valgrind; what it left out is checked here with the same
# assertions, and the large keys also go through the CSR path.
use strict;
use warnings;

use FindBin;
use lib "$FindBin::RealBin/lib";
use PgtlsTest;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('rsa');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pgtls_admin; CREATE ROLE user1 LOGIN;');
my $tmp = PostgreSQL::Test::Utils::tempdir;

sub row
{
	my ($query) = @_;
	return $node->safe_psql('postgres', "SET client_min_messages = warning; $query");
}

# An RSA CA signs with SHA-256 (the rsa-2048 row of sql/ca.sql's key types).
is( row(
		q{SELECT concat_ws('|', 'rsa-2048', ci.key_type, ci.key_bits, ci.signature_algorithm, ci.is_ca)
		  FROM pgtls_cert_info(pgtls_init_ca(key_type => 'rsa-2048')) AS ci}),
	'rsa-2048|rsa-2048|2048|sha256WithRSAEncryption|t',
	'an rsa-2048 CA: key type, size, SHA-256 signature');

# Back to an ec-p256 CA: the client and server certificates below are signed
# as in sql/issue.sql and sql/lifecycle.sql.
row(q{SELECT pgtls_init_ca(replace => true)});

for my $kt (qw(rsa-3072 rsa-4096))
{
	(my $bits = $kt) =~ s/^rsa-//;
	my $out = row(
		qq{SELECT concat_ws('|', '$kt', ci.key_type, ci.key_bits, ci.signature_algorithm,
		                    i.private_key ~ '^-{5}BEGIN PRIVATE KEY-{5}\\n')
		          || chr(1) || i.private_key
		   FROM pgtls_issue_client('user1', key_type => '$kt') AS i,
		        LATERAL pgtls_cert_info(i.certificate) AS ci});
	my ($desc, $key) = split /\x01/, $out;
	is($desc, "$kt|$kt|$bits|ecdsa-with-SHA256|t", "$kt client certificate (as sql/issue.sql checks key types)");

	# The same key through the CSR path: the certificate carries the request's key.
	write_file_0600("$tmp/$kt.key", "$key\n");
	openssl('req', '-new', '-key', "$tmp/$kt.key", '-subj', '/CN=user1', '-out', "$tmp/$kt.csr");
	my $csr = slurp_file("$tmp/$kt.csr");
	my $cert = row(qq{SELECT certificate FROM pgtls_sign_client_csr('user1', \$c\$$csr\$c\$)});
	write_file_0600("$tmp/$kt.crt", "$cert\n");
	is(row(qq{SELECT concat_ws('|', key_type, key_bits, eku) FROM pgtls_cert_info(\$c\$$cert\$c\$)}),
		"$kt|$bits|{clientAuth}", "$kt request signed: key type and size");
	is( openssl('x509', '-in', "$tmp/$kt.crt", '-noout', '-pubkey'),
		openssl('pkey', '-in', "$tmp/$kt.key", '-pubout'),
		"$kt request signed: the certificate holds the request's public key");
}

# An RSA server certificate: keyEncipherment besides digitalSignature (the
# rsa-2048 server certificate sql/lifecycle.sql had).
is( row(
		q{SELECT concat_ws('|', ci.subject, ci.san, ci.key_usage, ci.key_type)
		  FROM pgtls_issue_server('{}', '{127.0.0.1}', key_type => 'rsa-2048') s,
		       LATERAL pgtls_cert_info(s.certificate) ci}),
	'CN=127.0.0.1|{IP:127.0.0.1}|{digitalSignature,keyEncipherment}|rsa-2048',
	'an rsa-2048 server certificate for an address alone');

$node->stop;
done_testing();
