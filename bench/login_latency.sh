#!/usr/bin/env bash
# What registry-enforced logins cost: certificate logins (TLS, sslmode=
# verify-full, hostssl ... cert) with pgtls_admin.enforce = registry against
# the same logins with enforce = crl, on one server, in alternating rounds
# of pgbench -C (a new connection for every SELECT 1).
#
#   bench/login_latency.sh [CONNECTIONS per round, 1000] [ROUNDS, 11]
#                                        (as root; pgtls_admin installed)
# Prints the medians per connection and their ratio (target <= 1.05): of the
# wall-clock latency pgbench reports, and of the CPU time the server's
# backends spend per connection, which other load on the machine does not
# inflate.
set -euo pipefail
N=${1:-1000}
ROUNDS=${2:-11}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/login_common.sh"

login_cluster "${PGTLS_BENCH_NAME:-pgtls_login}" "${PGTLS_BENCH_PORT:-55454}"
client_cert "$W/client"

# Control: a certificate signed by hand with the CA key, which the registry
# does not hold.  The CRL cannot know it; the registry refuses it.  If the
# hook were not at work, the two modes would measure the same thing.
F=$W/forged
mkdir -p "$F"
cp "$W/client/root.crt" "$F/"
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$F/ext.cnf"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$F/postgresql.key" \
	-subj /CN=bench -out "$F/req.csr" 2>/dev/null
openssl x509 -req -in "$F/req.csr" -CA "$W/data/pgtls/ca.crt" -CAkey "$W/data/pgtls/ca.key" \
	-set_serial 0x7E57 -days 30 -sha256 -extfile "$F/ext.cnf" -out "$F/postgresql.crt" 2>/dev/null
chown -R postgres: "$F" && chmod 600 "$F"/*
set_enforce crl
[ "$(login "$F")" = bench ] || { echo "control: enforce = crl should accept the forged certificate" >&2; exit 1; }
set_enforce registry
login_until_ok "$W/client" 30
if login "$F" >/dev/null; then
	echo "control: enforce = registry should refuse the forged certificate" >&2
	exit 1
fi
echo "control: a certificate made outside the registry logs in with enforce = crl and is refused with enforce = registry"

echo "machine: $(nproc) cores; $(openssl version | cut -d' ' -f1-2); $(postgres --version)"
echo "pgbench -C -c 1: $N connections a round ($(login "$W/client" "SELECT version || ' ' || cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()"), ec-p256 client certificate, verify-full), $ROUNDS rounds alternating"
# warm-up of both modes
for mode in crl registry; do
	set_enforce "$mode"
	connect_latency "$W/client" "$(( N / 4 + 1 ))" >/dev/null
done
: >"$W/crl.lat"; : >"$W/registry.lat"; : >"$W/crl.conn"; : >"$W/registry.conn"; : >"$W/ratio"
: >"$W/crl.cpu"; : >"$W/registry.cpu"; : >"$W/cpu_ratio"
printf '%-6s %16s %16s %8s %14s %14s %8s\n' round "crl ms/conn" "registry ms/conn" ratio "crl cpu ms" "registry cpu" ratio
for r in $(seq 1 "$ROUNDS"); do
	# the order alternates, so a drift of the machine favours neither mode
	if [ $((r % 2)) -eq 1 ]; then order="crl registry"; else order="registry crl"; fi
	declare -A lat=() cpu=()
	for mode in $order; do
		set_enforce "$mode"
		read -r l c u < <(connect_latency "$W/client" "$N")
		lat[$mode]=$l
		cpu[$mode]=$u
		echo "$l" >>"$W/$mode.lat"
		echo "$c" >>"$W/$mode.conn"
		echo "$u" >>"$W/$mode.cpu"
	done
	ratio=$(echo "${lat[registry]} ${lat[crl]}" | awk '{ printf "%.3f", $1 / $2 }')
	cpu_ratio=$(echo "${cpu[registry]} ${cpu[crl]}" | awk '{ printf "%.3f", $1 / $2 }')
	echo "$ratio" >>"$W/ratio"
	echo "$cpu_ratio" >>"$W/cpu_ratio"
	printf '%-6s %16s %16s %8s %14s %14s %8s\n' "$r" "${lat[crl]}" "${lat[registry]}" "$ratio" \
		"${cpu[crl]}" "${cpu[registry]}" "$cpu_ratio"
done
crl=$(median <"$W/crl.lat")
reg=$(median <"$W/registry.lat")
echo "median latency per connection (connect, SELECT 1, disconnect): crl $crl ms, registry $reg ms;" \
	"ratio $(echo "$reg $crl" | awk '{ printf "%.3f", $1 / $2 }') (median of the rounds' ratios $(median <"$W/ratio"); target <= 1.05)"
echo "median connection time: crl $(median <"$W/crl.conn") ms, registry $(median <"$W/registry.conn") ms"
crl=$(median <"$W/crl.cpu")
reg=$(median <"$W/registry.cpu")
echo "median server CPU per connection (the backends' user + system time): crl $crl ms, registry $reg ms;" \
	"ratio $(echo "$reg $crl" | awk '{ printf "%.3f", $1 / $2 }') (median of the rounds' ratios $(median <"$W/cpu_ratio"))"
set_enforce registry
login_until_ok "$W/client" 5
! login "$F" >/dev/null || { echo "the forged certificate logged in with enforce = registry" >&2; exit 1; }
