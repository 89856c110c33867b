#!/usr/bin/env bash
# pgtls_issue_client speed, per key type, against (a) bench/raw_issue.c, the
# least a libcrypto program can do for the same certificate (the limit), and
# (b) the tutorial's openssl CLI workflow for one client certificate
# (openssl req + openssl x509 -req), all measured in this run.
#
#   bench/issue_speed.sh [quick|full]        (as root; pgtls_admin installed)
set -euo pipefail
MODE=${1:-quick}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cluster.sh"

# key_type:certificates per round; each round measures raw and ours back to
# back, and the medians over ROUNDS rounds are compared (this machine's
# timings wander by tens of percent between runs)
if [ "$MODE" = full ]; then
	TYPES="ec-p256:5000 ec-p384:2000 ed25519:5000 rsa-2048:40 rsa-3072:10 rsa-4096:4"
	ROUNDS=5
	CLI_RUNS=50
else
	TYPES="ec-p256:1000 ed25519:1000 rsa-2048:6"
	ROUNDS=5
	CLI_RUNS=10
fi

cluster_start_temp pgtls_bench "${PGTLS_BENCH_PORT:-55453}"
W=$CLUSTER_DIR
sql() { cluster_sql -q "$@"; }
# a certificate rule for the role, as in real use (else every call adds a NOTICE)
sed -i '1i hostssl all bench 127.0.0.1/32 cert' "$W/data/pg_hba.conf"
sql -c "CREATE EXTENSION pgtls_admin" -c "SELECT pgtls_init_ca()" -c "SELECT pgtls_enable_ssl()" \
	-c "CREATE ROLE bench LOGIN" >/dev/null
gcc -O2 -o "$W/raw_issue" "$ROOT/bench/raw_issue.c" -lcrypto
cp "$W/data/pgtls/ca.crt" "$W/data/pgtls/ca.key" "$W/"

# microseconds per certificate for N issuances in one statement (the
# library loaded first, as preloaded or after any earlier call in a session:
# the issuance journal is then fsynced once, before the result leaves)
ours() {
	local kt=$1 n=$2 ms
	ms=$(sql -At -c "LOAD 'pgtls_admin'" -c '\timing on' \
		-c "SELECT count(*) FROM generate_series(1, $n) g, LATERAL pgtls_issue_client('bench', days => 1 + g % 300, key_type => '$kt')" |
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')
	echo "scale=1; $ms * 1000 / $n" | bc
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "machine: $(nproc) cores; $(openssl version | cut -d' ' -f1-2); $(postgres --version); medians of $ROUNDS rounds"
printf '%-9s %8s %12s %12s %14s %16s %8s\n' key_type n/round "raw us/cert" "ours us/cert" "ratio to raw" "2 backends c/s" "1 b c/s"
for spec in $TYPES; do
	kt=${spec%%:*}
	n=${spec##*:}
	: >"$W/raw.$kt"
	: >"$W/ours.$kt"
	# warm up both sides (caches, allocator, CPU frequency) before measuring
	"$W/raw_issue" "$W/ca.crt" "$W/ca.key" "$kt" "$(( (n + 1) / 2 ))" >/dev/null
	ours "$kt" "$(( (n + 1) / 2 ))" >/dev/null
	# each round is a pair measured back to back, and the ratio is the median
	# of the pairs' ratios: a slow spell of this (shared) machine then slows
	# both sides of a pair alike
	: >"$W/ratio.$kt"
	for _ in $(seq 1 "$ROUNDS"); do
		r=$("$W/raw_issue" "$W/ca.crt" "$W/ca.key" "$kt" "$n")
		o=$(ours "$kt" "$n")
		echo "$r" >>"$W/raw.$kt"
		echo "$o" >>"$W/ours.$kt"
		echo "scale=3; $o / $r" | bc >>"$W/ratio.$kt"
	done
	raw=$(median <"$W/raw.$kt")
	one=$(median <"$W/ours.$kt")
	ratio=$(median <"$W/ratio.$kt")
	# two backends at once, each issuing n
	s=$(date +%s%N)
	for _ in 1 2; do
		sql -c "SELECT count(*) FROM generate_series(1, $n) g, LATERAL pgtls_issue_client('bench', days => 1 + g % 300, key_type => '$kt')" >/dev/null &
	done
	wait
	e=$(date +%s%N)
	two_tput=$(echo "scale=0; 2 * $n * 1000000000 / ($e - $s)" | bc)
	one_tput=$(echo "scale=0; 1000000 / $one" | bc)
	printf '%-9s %8d %12s %12s %14s %16s %8s\n' "$kt" "$n" "$raw" "$one" "$ratio" "$two_tput" "$one_tput"
	if [ "$kt" = ec-p256 ]; then
		ours_p256=$one
		ratio_p256=$ratio
	fi
done

# One certificate per statement, the way a client asks for one: each pays one
# fdatasync of the issuance journal before its row leaves the server, besides
# the commit.  Measured with pgbench on one connection, against the same with
# the journal's file on a tmpfs (where fdatasync costs nothing) in this run.
cat >"$W/one.sql" <<'SQL'
SELECT serial FROM pgtls_issue_client('bench', days => 30);
SQL
chown postgres: "$W/one.sql"
one_cert() {
	as_pg pgbench -n -h "$PGHOST" -p "$PGPORT" -U postgres -t "$1" -f "$W/one.sql" postgres 2>/dev/null |
		sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p'
}
ONE_N=$([ "$MODE" = full ] && echo 2000 || echo 300)
one_disk=$(one_cert "$ONE_N")
mkdir -p /dev/shm/pgtls_bench_journal && chown postgres: /dev/shm/pgtls_bench_journal
mv "$W/data/pgtls/journal" /dev/shm/pgtls_bench_journal/journal 2>/dev/null || : >/dev/shm/pgtls_bench_journal/journal
chown postgres: /dev/shm/pgtls_bench_journal/journal
ln -s /dev/shm/pgtls_bench_journal/journal "$W/data/pgtls/journal"
one_mem=$(one_cert "$ONE_N")
rm -f "$W/data/pgtls/journal"; rm -rf /dev/shm/pgtls_bench_journal
echo "one certificate per statement (pgbench, $ONE_N statements): $(echo "scale=0; $one_disk * 1000 / 1" | bc) us with the journal on disk, $(echo "scale=0; $one_mem * 1000 / 1" | bc) us with it on tmpfs: the journal's fdatasync costs $(echo "scale=0; ($one_disk - $one_mem) * 1000 / 1" | bc) us per call"

# the tutorial's CLI workflow, one client certificate at a time
printf 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >"$W/ext.cnf"
s=$(date +%s%N)
for i in $(seq 1 "$CLI_RUNS"); do
	openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$W/c.key" \
		-subj /CN=bench -out "$W/c.csr" 2>/dev/null
	openssl x509 -req -in "$W/c.csr" -CA "$W/ca.crt" -CAkey "$W/ca.key" -set_serial "$((1000 + i))" \
		-days 365 -sha256 -extfile "$W/ext.cnf" -out "$W/c.crt" 2>/dev/null
done
e=$(date +%s%N)
cli=$(echo "scale=1; ($e - $s) / 1000 / $CLI_RUNS" | bc)
echo "openssl CLI workflow (req + x509 -req), ec-p256, $CLI_RUNS certificates: $cli us/cert"
echo "pgtls_issue_client ec-p256 is $(echo "scale=0; $cli / $ours_p256" | bc)x faster than the CLI workflow (target >= 50x)"
echo "ratio to raw libcrypto for ec-p256, registry insert and issuance journal included: $ratio_p256 (median of paired rounds; target <= 1.3)"
