# shellcheck shell=bash
# Shared by bench/login_latency.sh and bench/live_set_memory.sh (source it):
# a throwaway cluster with the library preloaded and TLS turned on by the
# extension's own functions, certificate logins for role "bench", and
# pgbench -C to time them.
#
#   login_cluster NAME PORT [CONF]  start it (CONF: more postgresql.conf lines); sets W
#   client_cert DIR                 pgtls_issue_client('bench') into DIR (postgresql.crt/.key, root.crt)
#   set_enforce crl|registry        ALTER SYSTEM, reload, wait until new sessions see it
#   login DIR [SQL]                 a psql login with DIR's certificate, sslmode=verify-full
#   login_until_ok DIR SECONDS      retry login until it succeeds (the worker loads the registry)
#   connect_latency DIR N           pgbench -C: N new connections running SELECT 1; prints
#                                   "latency_ms connection_ms cpu_ms" (averages per connection;
#                                   cpu_ms: user + system time of the server's backends)
#   median                          median of the numbers on stdin
. "$ROOT/scripts/cluster.sh"

sql() { cluster_sql -qAt "$@"; }

login_cluster() {
	local name=$1 port=$2 conf=${3:-}
	cluster_start_temp "$name" "$port"
	W=$CLUSTER_DIR
	trap 'cluster_stop "$W"; rm -rf "$W"' EXIT
	# no autovacuum workers: they would count as backends' CPU time
	printf "shared_preload_libraries = 'pgtls_admin'\nautovacuum = off\n%s\n" "$conf" >>"$W/data/postgresql.conf"
	# certificate logins for bench over TCP, the rest as initdb left it
	sed -i '1i hostssl all bench 127.0.0.1/32 cert' "$W/data/pg_hba.conf"
	as_pg pg_ctl -D "$W/data" -l "$W/server.log" -w restart >/dev/null
	sql -c "CREATE EXTENSION pgtls_admin" -c "SELECT length(pgtls_init_ca()) > 0" \
		-c "SELECT count(*) FROM pgtls_enable_ssl()" -c "CREATE ROLE bench LOGIN" >/dev/null
	printf 'SELECT 1;\n' >"$W/select1.sql"
}

client_cert() {
	local dir=$1
	mkdir -p "$dir" && chown postgres: "$dir" && chmod 700 "$dir"
	sql >/dev/null <<SQL
CREATE TEMP TABLE c AS SELECT * FROM pgtls_issue_client('bench');
\o $dir/postgresql.crt
SELECT certificate FROM c;
\o $dir/postgresql.key
SELECT private_key FROM c;
\o $dir/root.crt
SELECT ca_certificate FROM c;
SQL
	chmod 600 "$dir"/*
}

# the environment of a certificate login as bench with verify-full
tls_env() {
	local dir=$1
	echo PGHOST=localhost PGHOSTADDR=127.0.0.1 PGPORT="$PGPORT" PGUSER=bench PGDATABASE=postgres \
		PGSSLMODE=verify-full PGSSLROOTCERT="$dir/root.crt" PGSSLCERT="$dir/postgresql.crt" \
		PGSSLKEY="$dir/postgresql.key"
}

set_enforce() {
	sql -c "ALTER SYSTEM SET pgtls_admin.enforce = '$1'" -c "SELECT pg_reload_conf()" >/dev/null
	for _ in $(seq 1 100); do
		[ "$(sql -c 'SHOW pgtls_admin.enforce')" = "$1" ] && return 0
		sleep 0.05
	done
	echo "pgtls_admin.enforce did not become $1" >&2
	return 1
}

login() {
	# shellcheck disable=SC2046
	as_pg env $(tls_env "$1") psql -XAt -c "${2:-SELECT current_user}" 2>&1
}

login_until_ok() {
	local dir=$1 seconds=$2 out
	for _ in $(seq 1 $((seconds * 10))); do
		out=$(login "$dir") && [ "$out" = bench ] && return 0
		sleep 0.1
	done
	echo "no certificate login within $seconds s: $out" >&2
	return 1
}

# CPU time (ticks) of the postmaster's exited children: every backend, once
# it has ended and been reaped; the machine's other load does not count
backends_cpu() { awk '{ print $16 + $17 }' "/proc/$(head -1 "$W/data/postmaster.pid")/stat"; }

connect_latency() {
	local dir=$1 n=$2 out cpu0 cpu1
	cpu0=$(backends_cpu)
	# shellcheck disable=SC2046
	out=$(as_pg env $(tls_env "$dir") pgbench -n -C -c 1 -j 1 -t "$n" -f "$W/select1.sql" 2>&1) &&
		echo "$out" | grep -q "^number of transactions actually processed: $n/$n$" ||
		{ echo "$out" >&2; return 1; }
	sleep 0.2 # the last backend is reaped
	cpu1=$(backends_cpu)
	echo "$(echo "$out" | sed -n 's/^latency average = \([0-9.]*\) ms$/\1/p') $(echo "$out" |
		sed -n 's/^average connection time = \([0-9.]*\) ms$/\1/p') $(echo "$cpu0 $cpu1 $n $(getconf CLK_TCK)" |
		awk '{ printf "%.3f", ($2 - $1) * 1000 / $4 / $3 }')"
}

median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
