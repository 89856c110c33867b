# Throwaway PostgreSQL clusters for pgtls_admin's demo and tests.
# Source this file; clusters run as the postgres OS user on a private port
# and socket directory, and listen on 127.0.0.1 only.
#
#   cluster_start DIR PORT   initdb (UTF8) and start; exports PGHOST/PGPORT
#   cluster_stop DIR         stop (fast) if running
#   as_pg CMD...             run a command as the postgres OS user

PGBIN=${PGBIN:-$(pg_config --bindir)}

as_pg() {
	if [ "$(id -un)" = postgres ]; then "$@"; else (cd / && runuser -u postgres -- "$@"); fi
}

cluster_start() {
	local dir=$1 port=$2
	mkdir -p "$dir"
	chown postgres: "$dir" 2>/dev/null || true
	as_pg "$PGBIN/initdb" -D "$dir/data" -E UTF8 --locale=C -A trust -U postgres >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log"; return 1; }
	mkdir -p "$dir/sock" && chown postgres: "$dir/sock" 2>/dev/null || true
	cat >>"$dir/data/postgresql.conf" <<CONF
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
CONF
	as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null ||
		{ cat "$dir/server.log"; return 1; }
	export PGHOST=$dir/sock PGPORT=$port PGUSER=postgres
}

cluster_stop() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
	return 0
}
