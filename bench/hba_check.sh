#!/usr/bin/env bash
# pgtls_hba_check() on a large pg_hba.conf, against reading the same file
# through the server's own view ("SELECT count(*) FROM pg_hba_file_rules",
# which tokenizes and parses every line), measured in the same run.
#
#   bench/hba_check.sh [N=10000] [RUNS=7]      (as root; pgtls_admin installed)
# Prints each median, the ratio (target <= 3) and what the audit found.
set -euo pipefail
N=${1:-10000}
RUNS=${2:-7}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cluster.sh"

cluster_start_temp pgtls_hba_bench "${PGTLS_BENCH_PORT:-55452}"
W=$CLUSTER_DIR
sql() { cluster_sql -q "$@"; }
sql -c "CREATE EXTENSION pgtls_admin" -c "SELECT pgtls_init_ca()" -c "SELECT count(*) FROM pgtls_enable_ssl()" >/dev/null

# A generated pg_hba.conf of N rules in the shapes large installations use:
# per-role certificate rules, group and sameuser rules, replication rules,
# narrower rules after broader ones (shadowed), and a final reject.
perl -e '
	my $n = shift;
	print "local all postgres trust\n";
	for my $i (1 .. $n - 2) {
		my ($a, $b, $c) = (int($i / 65536) % 256, int($i / 256) % 256, $i % 256);
		my $k = $i % 20;
		if    ($k < 8)  { printf "hostssl db%d user%d 10.%d.%d.%d/32 cert\n", $i % 50, $i, $a, $b, $c }
		elsif ($k < 12) { printf "hostssl all +group%d 10.%d.%d.0/24 scram-sha-256\n", $i % 100, $a + 100, $b }
		elsif ($k < 15) { printf "host sameuser user%d 172.16.%d.%d/32 md5\n", $i, $b, $c }
		elsif ($k < 17) { printf "hostnossl all all 192.168.%d.0/24 reject\n", $b }
		elsif ($k < 19) { printf "hostssl all +group%d 10.%d.%d.%d/32 cert\n", $i % 100, $a + 100, $b, $c }
		else            { printf "host replication repl%d 10.200.%d.%d/32 scram-sha-256\n", $i, $b, $c }
	}
	print "host all all 0.0.0.0/0 reject\n";
' "$N" >"$W/data/pg_hba.conf"
chown postgres: "$W/data/pg_hba.conf"

rules=$(sql -At -c "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL")
[ "$rules" -eq "$N" ] || { echo "expected $N valid rules, the server sees $rules" >&2; exit 1; }

{
	echo '\timing on'
	for _ in $(seq "$RUNS"); do
		echo "SELECT count(*) FROM pg_hba_file_rules;"
		echo "SELECT count(*) FROM pgtls_hba_check();"
	done
} >"$W/bench.sql"
sql -f "$W/bench.sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' >"$W/times"
awk 'NR % 2 == 1' "$W/times" | sort -n >"$W/view.ms"
awk 'NR % 2 == 0' "$W/times" | sort -n >"$W/audit.ms"
median() { awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }' "$1"; }
view=$(median "$W/view.ms")
audit=$(median "$W/audit.ms")

echo "pg_hba.conf with $N rules, median of $RUNS runs each:"
printf '  SELECT count(*) FROM pg_hba_file_rules   %9.1f ms\n' "$view"
printf '  SELECT count(*) FROM pgtls_hba_check()   %9.1f ms\n' "$audit"
printf '  ratio pgtls_hba_check / pg_hba_file_rules: %.2f (target <= 3)\n' "$(echo "$audit / $view" | bc -l)"
echo "findings by check_id:"
sql -At -F ' ' -c "SELECT '  ' || check_id, count(*) FROM pgtls_hba_check() GROUP BY 1 ORDER BY 1"
shadowed=$(sql -At -c "SELECT count(*) FROM pgtls_hba_check() WHERE check_id = 'hba.shadowed'")
[ "$shadowed" -gt 0 ] || { echo "the generated file has shadowed rules but none were found" >&2; exit 1; }
