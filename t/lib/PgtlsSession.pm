# Helpers for the lifecycle TAP tests (t/025-t/027): long-lived psql sessions
# (over TLS with a client certificate, or a LISTENing one over the socket),
# the serial the server presents on the wire, and polling with a deadline.
package PgtlsSession;

use strict;
use warnings;

use Exporter 'import';
use IPC::Run;
use JSON::PP;
use PgtlsTest;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

our @EXPORT = qw(open_session session_query session_close session_alive served_serial
  cert_file_serial wait_for notifications);

# A psql session kept open on connection string $connstr (a libpq keyword
# string; the node's socket when undef).  Returns a handle for session_query.
sub open_session
{
	my ($node, $connstr) = @_;
	my $s = { in => '', out => '', err => '', n => 0 };
	$connstr //= $node->connstr('postgres');
	$connstr .= ' port=' . $node->port unless $connstr =~ /\bport=/;
	$s->{timer} = IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default);
	$s->{run} = IPC::Run::start(
		[ $node->installed_command('psql'), '-XAtq', '-v', 'ON_ERROR_STOP=0', '-d', $connstr, '-f', '-' ],
		'<', \$s->{in}, '>', \$s->{out}, '2>', \$s->{err}, $s->{timer});
	my $pid = session_query($s, 'SELECT pg_backend_pid()');
	die "could not open a session: $s->{err}" unless defined $pid && $pid =~ /^\d+$/;
	$s->{pid} = $pid;
	return $s;
}

# Run $sql in the session; returns its output (and what psql printed on
# stderr), or undef when the session ended (the server closed it).
sub session_query
{
	my ($s, $sql) = @_;
	my $mark = '__pgtls_done_' . ++$s->{n} . '__';
	$s->{out} = '';
	$s->{err} = '';
	$s->{in} .= "$sql\n;\n\\echo $mark\n";
	eval {
		$s->{run}->pump until $s->{out} =~ /\Q$mark\E\n/ || !$s->{run}->pumpable;
	};
	return wantarray ? (undef, $s->{err}) : undef unless $s->{out} =~ s/\n?\Q$mark\E\n//;
	return wantarray ? ($s->{out}, $s->{err}) : $s->{out};
}

sub session_alive
{
	my ($s) = @_;
	return $s->{run}->pumpable;
}

sub session_close
{
	my ($s) = @_;
	$s->{in} .= "\\q\n";
	eval { $s->{run}->finish };
	return;
}

# The JSON payloads of NOTIFY pgtls_admin a LISTENing session received so far.
sub notifications
{
	my ($s) = @_;
	my ($out) = session_query($s, 'SELECT 1');
	die 'the listening session ended' unless defined $out;
	$s->{payloads} //= [];
	push @{ $s->{payloads} }, map { decode_json($_) }
	  $out =~ /^Asynchronous notification "pgtls_admin" with payload "(.*)" received from server process with PID \d+\.$/mg;
	return @{ $s->{payloads} };
}

# The serial of the certificate the server presents at 127.0.0.1:$port, read
# from the wire with openssl s_client -starttls postgres.
sub served_serial
{
	my ($node) = @_;
	my ($out, $err);
	IPC::Run::run([ 'openssl', 's_client', '-starttls', 'postgres', '-connect', '127.0.0.1:' . $node->port ],
		'<', \undef, '>', \$out, '2>', \$err);
	my ($pem) = $out =~ /(-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----)/s
	  or die "openssl s_client read no certificate: $err";
	my $serial = '';
	IPC::Run::run([ 'openssl', 'x509', '-noout', '-serial' ], '<', \$pem, '>', \$serial) or die 'openssl x509';
	return $serial =~ /serial=([0-9A-F]+)/ ? $1 : die "no serial in $serial";
}

sub cert_file_serial
{
	my ($file) = @_;
	return openssl('x509', '-in', $file, '-noout', '-serial') =~ /serial=([0-9A-F]+)/ ? $1 : die;
}

# Poll $check every 50 ms for at most $limit seconds; returns the seconds it
# took for $check to return true, or undef.
sub wait_for
{
	my ($limit, $check) = @_;
	my $start = time;
	while (time - $start < $limit)
	{
		return time - $start if $check->();
		usleep(50_000);
	}
	return undef;
}

1;
