#!/usr/bin/env bash
# pgtls_revoke latency with N certificates already revoked, against the
# openssl CLI regenerating a CRL over the same N entries ("openssl ca
# -gencrl", the tutorial way), measured in the same run on this machine.
#
#   bench/revoke_crl.sh [N=100000] [RUNS=5]      (as root; pgtls_admin installed)
# Prints each median and the ratio pgtls_revoke / openssl ca -gencrl.
set -euo pipefail
N=${1:-100000}
RUNS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cluster.sh"

cluster_start_temp pgtls_bench "${PGTLS_BENCH_PORT:-55451}"
W=$CLUSTER_DIR
sql() { cluster_sql -q "$@"; }

# A TLS cluster whose server checks our CRL, as after pgtls_enable_ssl(),
# with a certificate rule for the role (else issuing adds a NOTICE).
sed -i '1i hostssl all bench 127.0.0.1/32 cert' "$W/data/pg_hba.conf"
sql -c "CREATE EXTENSION pgtls_admin" -c "SELECT pgtls_init_ca()" -c "SELECT count(*) FROM pgtls_enable_ssl()" \
	-c "CREATE ROLE bench LOGIN" >/dev/null
sql -c "INSERT INTO pgtls_certificates (serial, kind, role, subject, key_type, not_before, not_after,
	        fingerprint_sha256, certificate, issued_by, revoked_at, revocation_reason)
	SELECT upper(md5('bench' || g)), 'client', 'bench', 'CN=bench', 'ec-p256', now(), now() + interval '1 year',
	       '-', '-', 'postgres', now() - interval '1 day', 'superseded'
	FROM generate_series(1, $N) g"

# pgtls_revoke: RUNS fresh certificates, each revoked in its own statement.
sql -At -c "SELECT serial FROM generate_series(1, $RUNS) g, LATERAL pgtls_issue_client('bench', days => g)" >"$W/serials"
{
	echo '\timing on'
	while read -r s; do echo "SELECT pgtls_revoke('$s', 'keyCompromise');"; done <"$W/serials"
} >"$W/revoke.sql"
sql -f "$W/revoke.sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' >"$W/ours.ms"

# openssl ca -gencrl over the same entries, with the same CA key.
D=$W/openssl_ca
mkdir -p "$D"
sql -At -F $'\t' -c "SELECT to_char(not_after AT TIME ZONE 'UTC', 'YYMMDDHH24MISS') || 'Z',
	        to_char(revoked_at AT TIME ZONE 'UTC', 'YYMMDDHH24MISS') || 'Z,' || revocation_reason, serial
	 FROM pgtls_certificates WHERE revoked_at IS NOT NULL" |
	awk -F'\t' '{ printf "R\t%s\t%s\t%s\tunknown\t/CN=bench\n", $1, $2, $3 }' >"$D/index.txt"
cat >"$D/ca.cnf" <<CNF
[ ca ]
default_ca = d
[ d ]
database = $D/index.txt
crlnumber = $D/crlnumber
default_md = sha256
default_crl_days = 3650
CNF
echo 1000 >"$D/crlnumber"
cp "$W/data/pgtls/ca.crt" "$W/data/pgtls/ca.key" "$D/"
for _ in $(seq 1 "$RUNS"); do
	s=$(date +%s%N)
	openssl ca -gencrl -config "$D/ca.cnf" -cert "$D/ca.crt" -keyfile "$D/ca.key" -out "$D/crl.pem" 2>/dev/null
	e=$(date +%s%N)
	echo "scale=3; ($e - $s) / 1000000" | bc
done >"$W/openssl.ms"

openssl crl -in "$W/data/pgtls/root.crl" -noout -text | sed -n 's/.*Serial Number: //p' | sort >"$W/ours.serials"
openssl crl -in "$D/crl.pem" -noout -text | sed -n 's/.*Serial Number: //p' | sort >"$W/cli.serials"
ours_entries=$(wc -l <"$W/ours.serials")
cli_entries=$(wc -l <"$W/cli.serials")
cmp -s "$W/ours.serials" "$W/cli.serials" || { echo "the two CRLs list different serials" >&2; exit 1; }
openssl crl -in "$W/data/pgtls/root.crl" -CAfile "$W/data/pgtls/ca.crt" -noout -verify 2>&1 | grep -q 'verify OK' ||
	{ echo "pgtls_admin's CRL does not verify" >&2; exit 1; }
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ours=$(median "$W/ours.ms")
cli=$(median "$W/openssl.ms")
echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(openssl version | cut -d' ' -f1-2); $(postgres --version)"
echo "entries in CRL: pgtls_revoke $ours_entries, openssl ca -gencrl $cli_entries (same serials; signature verified)"
echo "pgtls_revoke (registry update + CRL rebuild + sign + atomic write + server reload), median of $RUNS: $ours ms  [$(tr '\n' ' ' <"$W/ours.ms")]"
echo "openssl ca -gencrl over the same entries, median of $RUNS: $cli ms  [$(tr '\n' ' ' <"$W/openssl.ms")]"
echo "ratio pgtls_revoke / openssl ca -gencrl: $(echo "scale=2; $ours / $cli" | bc)  (target <= 1)"
