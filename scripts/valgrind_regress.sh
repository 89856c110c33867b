#!/usr/bin/env bash
# Run the pg_regress suites (REGRESS and REGRESS_TEMP: the server gets the
# fixed pg_hba.conf of sql/hba/) against a server under valgrind memcheck, then
# fail on any memory error or definitely-lost block whose stack passes
# through pgtls_admin (our functions are all named pgtls_*; the library is
# built with -g so frames carry names).
#
#   scripts/valgrind_regress.sh WORKDIR PORT SRCDIR
# SRCDIR is a copy of the tree owned by postgres (pg_regress writes there).
set -euo pipefail
DIR=$1
PORT=$2
SRC=$3
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cluster.sh"

mkdir -p "$DIR/vg" "$DIR/sock"
chown -R postgres: "$DIR"
as_pg "$PGBIN/initdb" -D "$DIR/data" -E UTF8 --locale=C -A trust -U postgres >"$DIR/initdb.log" 2>&1
cat >>"$DIR/data/postgresql.conf" <<CONF
port = $PORT
listen_addresses = ''
unix_socket_directories = '$DIR/sock'
max_connections = 20
shared_buffers = 16MB
autovacuum = off
CONF
cp "$ROOT/sql/hba/"* "$DIR/data/" && chown postgres: "$DIR/data/"*

as_pg bash -c "exec valgrind --quiet --tool=memcheck --leak-check=full \
	--show-leak-kinds=definite --errors-for-leak-kinds=definite \
	--num-callers=40 --track-origins=no --log-file='$DIR/vg/%p.log' \
	'$PGBIN/postgres' -D '$DIR/data' >'$DIR/server.log' 2>&1" &
for _ in $(seq 1 240); do
	as_pg "$PGBIN/pg_isready" -q -h "$DIR/sock" -p "$PORT" && break
	sleep 0.5
done
as_pg "$PGBIN/pg_isready" -h "$DIR/sock" -p "$PORT"

rc=0
for target in installcheck installcheck-temp; do
	as_pg env PGHOST="$DIR/sock" PGPORT="$PORT" PGUSER=postgres \
		make -C "$SRC" -s $target TAP_TESTS= || rc=1
done
as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m fast -w -t 300 stop >/dev/null || rc=1
wait || true

# One valgrind log per process; a record is a run of lines between blank ones.
perl -e '
	my ($procs, $errors, $leaks, $ours) = (0, 0, 0, 0);
	for my $f (@ARGV) {
		$procs++;
		local $/ = undef;
		open my $fh, "<", $f or die;
		my $text = <$fh>;
		$text =~ s/^==\d+== ?//mg;
		for my $rec (split /\n\s*\n/, $text) {
			my $is_leak = $rec =~ /definitely lost in loss record/;
			my $is_err = $rec =~ /^(Invalid (read|write|free)|Mismatched free|Conditional jump|Use of uninitialised|Syscall param|Source and destination overlap)/m;
			next unless $is_leak || $is_err;
			$is_leak ? $leaks++ : $errors++;
			next unless $rec =~ /\bpgtls_\w+ \(|pgtls_admin\.so/;
			$ours++;
			print "---- $f\n$rec\n";
		}
	}
	print "valgrind: $procs processes checked, $errors error records and $leaks definite leaks in all, $ours in pgtls_admin\n";
	exit($ours ? 1 : 0);
' "$DIR"/vg/*.log || rc=1
exit $rc
