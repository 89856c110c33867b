#!/usr/bin/env bash
# The main job, end to end, on a fresh Debian 12 machine (run as root):
# install and build pgtls_admin, start a throwaway cluster, turn TLS on and
# issue a client certificate for user1 with SQL alone, log in as user1 with
# sslmode=verify-full and that certificate, revoke it, and show what was issued.
# Everything lives in a temporary directory and the cluster is stopped at the end.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
bash "$ROOT/scripts/install.sh"
. "$ROOT/scripts/cluster.sh"

cluster_start_temp pgtls_demo "${PGTLS_DEMO_PORT:-55439}"
DEMO=$CLUSTER_DIR
DATA=$DEMO/data
sql() { cluster_sql "$@"; }

# Certificates are the only way in over TCP; plain text is rejected.
cat >"$DATA/pg_hba.conf" <<HBA
local   all postgres           peer
hostssl all all 127.0.0.1/32   cert
host    all all 127.0.0.1/32   reject
HBA
sql -qc "SELECT pg_reload_conf()" >/dev/null

echo "=== from ssl = off to TLS with certificate logins, in SQL"
sql -c "SHOW ssl" -c "CREATE EXTENSION pgtls_admin" -c "SELECT pgtls_init_ca() IS NOT NULL AS ca_created" \
	-c "SELECT * FROM pgtls_enable_ssl()" -c "CREATE ROLE user1 LOGIN"
sql -c "SHOW ssl"

# The client's files, written as the client (libpq wants them 0600 and its own).
CLIENT=$DEMO/client
as_pg mkdir -m 0700 "$CLIENT"
sql -At -F $'\x01' -c "SELECT certificate, private_key, ca_certificate, serial FROM pgtls_issue_client('user1')" |
	as_pg perl -e 'local $/; my ($c, $k, $r, $s) = split /\x01/, <STDIN>;
		open my $f, ">", "$ARGV[0]/serial" or die; print $f $s; close $f;
		umask 077; for (["postgresql.crt", $c], ["postgresql.key", $k], ["root.crt", $r]) {
			open my $f, ">", "$ARGV[0]/$_->[0]" or die; print $f $_->[1]; close $f }' "$CLIENT"
ls -l "$CLIENT"

echo "=== log in as user1 with sslmode=verify-full and the issued certificate"
as_pg psql -X "host=localhost hostaddr=127.0.0.1 port=$PGPORT dbname=postgres user=user1 sslmode=verify-full sslrootcert=$CLIENT/root.crt sslcert=$CLIENT/postgresql.crt sslkey=$CLIENT/postgresql.key" \
	-c "SELECT current_user, ssl, version AS tls, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()"

echo "=== plain-text is refused"
if as_pg psql -X "host=127.0.0.1 port=$PGPORT dbname=postgres user=user1 sslmode=disable" -c "SELECT 1" 2>&1; then
	echo "unexpected: a non-TLS connection got in" >&2
	exit 1
fi

echo "=== revoke the certificate: the very next login with it is refused"
sql -c "SELECT pgtls_revoke('$(tr -d '\n' <"$CLIENT/serial")', 'keyCompromise')"
if as_pg psql -X "host=localhost hostaddr=127.0.0.1 port=$PGPORT dbname=postgres user=user1 sslmode=verify-full sslrootcert=$CLIENT/root.crt sslcert=$CLIENT/postgresql.crt sslkey=$CLIENT/postgresql.key" -c "SELECT 1" 2>&1; then
	echo "unexpected: a revoked certificate got in" >&2
	exit 1
fi

echo "=== what was issued (pgtls_certificates)"
sql -c "SELECT kind, role, subject, key_type, not_after::date, revoked_at IS NOT NULL AS revoked FROM pgtls_certificates ORDER BY issued_at"
echo "=== the client certificate (pgtls_cert_info)"
sql -xc "SELECT subject, issuer, eku, key_usage, key_type, signature_algorithm, not_after FROM pgtls_cert_info(pg_read_file('$CLIENT/postgresql.crt'))"
echo "=== which pg_hba.conf rule a connection hits (pgtls_hba_match)"
sql -c "SELECT 'user1 with TLS' AS connection, * FROM pgtls_hba_match('user1', 'postgres', '127.0.0.1')
	UNION ALL SELECT 'user1 without TLS', * FROM pgtls_hba_match('user1', 'postgres', '127.0.0.1', false)"
echo "=== the live server certificate (pgtls_server_cert_info)"
sql -xc "SELECT subject, issuer, san, eku, key_type, not_after FROM pgtls_server_cert_info()"
echo "=== the audit of ssl settings, certificate files and pg_hba.conf (pgtls_hba_check)"
sql -xc "SELECT * FROM pgtls_hba_check()"
echo "demo finished: the cluster in $DEMO is stopped on exit"
