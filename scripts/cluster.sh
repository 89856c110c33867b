# Throwaway PostgreSQL clusters for pgtls_admin's demo and tests.
# Source this file; clusters run as the postgres OS user on a private port
# and socket directory, and listen on 127.0.0.1 only.
#
#   cluster_start DIR PORT [HBA]  initdb (UTF8) and start; exports PGHOST/PGPORT;
#                                 HBA is a directory whose files (pg_hba.conf
#                                 and what it includes) go into the data dir
#   cluster_start_temp NAME PORT  the same in a new /tmp/NAME.XXXXXX, set as
#                                 CLUSTER_DIR and stopped when the shell exits
#   cluster_stop DIR              stop (fast) if running
#   cluster_sql ARGS...           psql -X -v ON_ERROR_STOP=1 -d postgres as postgres
#   as_pg CMD...                  run a command as the postgres OS user

PGBIN=${PGBIN:-$(pg_config --bindir)}
export PATH="$PGBIN:$PATH"

as_pg() {
	if [ "$(id -un)" = postgres ]; then "$@"; else (cd / && runuser -u postgres -- "$@"); fi
}

cluster_start() {
	local dir=$1 port=$2 hba=${3:-}
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
	if [ -n "$hba" ]; then
		cp "$hba"/* "$dir/data/" && chown postgres: "$dir/data/"* 2>/dev/null || true
	fi
	as_pg "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w start >/dev/null ||
		{ cat "$dir/server.log"; return 1; }
	export PGHOST=$dir/sock PGPORT=$port PGUSER=postgres
}

cluster_stop() {
	local dir=$1
	[ -f "$dir/data/postmaster.pid" ] && as_pg "$PGBIN/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
	return 0
}

cluster_start_temp() {
	CLUSTER_DIR=$(mktemp -d "/tmp/$1.XXXXXX")
	chmod 755 "$CLUSTER_DIR"
	chown postgres: "$CLUSTER_DIR" 2>/dev/null || true
	trap 'cluster_stop "$CLUSTER_DIR"' EXIT
	cluster_start "$CLUSTER_DIR" "$2"
}

cluster_sql() {
	as_pg psql -X -v ON_ERROR_STOP=1 -d postgres "$@"
}
