#!/usr/bin/env bash
# pgtls_revoke latency after N certificates were issued since the issuance
# journal was last compacted, with and without the background worker,
# against its baseline measured in the same run: the same revocation on the
# freshly compacted journal that the first one leaves.  With the worker,
# first how long it takes to digest N issuances alone (until the journal is
# compacted), then N more issuances and the revocations; and the longest
# gap between the worker's heartbeats over the whole run (registry-enforced
# logins fail closed after 60 s).  With the worker, pgtls_admin.max_certificates
# is raised to hold every certificate the run issues.
#
#   bench/journal_revoke.sh ["20000 100000"] [RUNS=5]     (as root; pgtls_admin installed)
#
# Certificates are issued in statements of at most PGTLS_BENCH_CHUNK (20,000).  Prints one line
# per mode and size, and the ratio of the first revocation to the baseline's
# median.  PGTLS_BENCH_MODES picks the modes ("noworker worker" by default);
# PG_CONFIG (or B, a bin directory) picks the PostgreSQL installation, the
# one pg_config on PATH names otherwise; PGTLS_BENCH_PORT and
# PGTLS_BENCH_TMP the port and the clusters' directory prefix.
set -euo pipefail
SIZES=${1:-20000 100000}
RUNS=${2:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${PG_CONFIG:-}" ]; then
	PGBIN=$("$PG_CONFIG" --bindir)
elif [ -n "${B:-}" ]; then
	PGBIN=$B
fi
export PGBIN
. "$ROOT/scripts/cluster.sh"
PORT=${PGTLS_BENCH_PORT:-55452}
CHUNK=${PGTLS_BENCH_CHUNK:-20000}
MODES=${PGTLS_BENCH_MODES:-noworker worker}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

DIR=
cleanup() { [ -z "$DIR" ] || { cluster_stop "$DIR"; rm -rf "$DIR"; }; }
trap cleanup EXIT

# issue N: N client certificates, in statements of at most CHUNK
issue() {
	local left=$1
	while [ "$left" -gt 0 ]; do
		local k=$((left < CHUNK ? left : CHUNK))
		cluster_sql -q -At -c "SELECT count(*) FROM generate_series(1, $k) g,
			LATERAL pgtls_issue_client((CASE WHEN g > 0 THEN 'bench' END)::name)" >/dev/null
		left=$((left - k))
	done
}

# wait until the journal is compacted (below 64 KB); fail after 5 minutes
wait_compacted() {
	local journal=$1 tries=0
	while [ "$(stat -c %s "$journal")" -gt 65536 ]; do
		tries=$((tries + 1))
		[ "$tries" -le 3000 ] || { echo "the journal $journal was not compacted within 5 minutes" >&2; return 1; }
		sleep 0.1
	done
}

# run MODE N: MODE is "worker" or "noworker"
run() {
	local mode=$1 n=$2
	DIR=$(mktemp -d "${PGTLS_BENCH_TMP:-/tmp/pgtls_jbench}.XXXXXX")
	chmod 755 "$DIR"
	chown postgres: "$DIR" 2>/dev/null || true
	cluster_start "$DIR" "$PORT"
	local data=$DIR/data journal=$DIR/data/pgtls/journal
	sed -i '1i hostssl all bench 127.0.0.1/32 cert' "$data/pg_hba.conf"
	if [ "$mode" = worker ]; then
		printf "shared_preload_libraries = 'pgtls_admin'\nlog_min_messages = debug1\npgtls_admin.max_certificates = %d\n" $((2 * n + 1000)) >>"$data/postgresql.conf"
		as_pg "$PGBIN/pg_ctl" -D "$data" -l "$DIR/server.log" -w restart >/dev/null
	fi
	cluster_sql -q -c "CREATE EXTENSION pgtls_admin" -c "SELECT pgtls_init_ca()" \
		-c "SELECT count(*) FROM pgtls_enable_ssl()" -c "CREATE ROLE bench LOGIN" >/dev/null
	sleep 2
	local log_from
	log_from=$(wc -l <"$DIR/server.log")

	local t_start t_end digest=-
	if [ "$mode" = worker ]; then
		issue "$n"
		t_end=$(now_ms)
		# until the worker has compacted the journal
		wait_compacted "$journal"
		digest=$(($(now_ms) - t_end))
	fi
	t_start=$(now_ms)
	issue "$n"
	t_end=$(now_ms)
	local mb
	mb=$(awk -v b="$(stat -c %s "$journal")" 'BEGIN { printf "%.1f", b / 1048576 }')

	# the serials to revoke: the first right after the issuances, then RUNS on the compacted journal
	cluster_sql -At -c "SELECT serial FROM generate_series(1, $((RUNS + 1))) g,
		LATERAL pgtls_issue_client('bench', days => g)" >"$DIR/serials"
	{
		echo '\timing on'
		while read -r s; do echo "SELECT pgtls_revoke('$s');"; done <"$DIR/serials"
	} >"$DIR/revoke.sql"
	local first
	first=$(head -2 "$DIR/revoke.sql" | cluster_sql -f - | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p')

	# the worker, if any, compacts meanwhile: the baseline is on a compacted journal
	wait_compacted "$journal"
	{ echo '\timing on'; tail -n "$RUNS" "$DIR/revoke.sql"; } | cluster_sql -f - |
		sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' >"$DIR/base.ms"
	local base
	base=$(median <"$DIR/base.ms")

	local gap=-
	if [ "$mode" = worker ]; then
		gap=$(tail -n +"$log_from" "$DIR/server.log" |
			sed -n 's/.*pgtls_admin worker: heartbeat, \([0-9]*\) ms after the previous one.*/\1/p' | sort -n | tail -1)
	fi
	printf '%-9s N=%-6s issued in %5.1f s (journal %s MB): first pgtls_revoke %8.1f ms, baseline median of %d %6.1f ms [%s], ratio %5.2f; worker digest %s ms, longest heartbeat gap %s ms\n' \
		"$mode" "$n" "$(echo "($t_end - $t_start) / 1000" | bc -l)" "$mb" "$first" "$RUNS" "$base" \
		"$(tr '\n' ' ' <"$DIR/base.ms" | sed 's/ $//')" "$(echo "$first / $base" | bc -l)" "$digest" "$gap"
	cleanup
	DIR=
}

echo "machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); $(openssl version | cut -d' ' -f1-2); $(postgres --version)"
for n in $SIZES; do
	for mode in $MODES; do
		run "$mode" "$n"
	done
done
