#!/usr/bin/env bash
# pgtls_hba_check() on large pg_hba.conf files, against reading the same
# file through the server's own view ("SELECT count(*) FROM
# pg_hba_file_rules", which tokenizes and parses every line), measured in
# the same run at several sizes, so a ratio that grows with size shows.
#
#   bench/hba_check.sh [SIZES="1000 10000 40000"] [RUNS=7]  (as root; pgtls_admin installed)
#
# The generated files mix what large installations have: per-role cert
# lines, +group and list fields ("db1,db2", "u1,+g2"), sameuser/samerole,
# samehost/samenet, IPv4 and IPv6 prefixes of every length, host names,
# replication lines, hostnossl/hostgssenc lines, every method the server
# accepts here (trust, reject, md5, scram-sha-256, password, cert, ident,
# peer, ldap, radius, pam, gss), clientcert options, map= with pg_ident.conf
# maps, shadowed lines and a final reject.  Prints each median, the ratio
# per size (target <= 3, flat), what the audit found, and what the TLS probe
# costs when it is not cached.
set -euo pipefail
SIZES=${1:-1000 10000 40000}
RUNS=${2:-7}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/scripts/cluster.sh"

cluster_start_temp pgtls_hba_bench "${PGTLS_BENCH_PORT:-55452}"
W=$CLUSTER_DIR
sql() { cluster_sql -q "$@"; }
sql -c "CREATE EXTENSION pgtls_admin" -c "SELECT pgtls_init_ca()" -c "SELECT count(*) FROM pgtls_enable_ssl()" >/dev/null
sql -c "CREATE ROLE cert_users NOLOGIN" >/dev/null
cp "$W/data/pg_hba.conf" "$W/pg_hba.conf.orig"
cat >"$W/data/pg_ident.conf" <<'IDENT'
certmap  "/^(.*)@example\.com$"  \1
certmap  ops-robot               app1
osmap    root                    postgres
IDENT
chown postgres: "$W/data/pg_ident.conf"

generate() {
	perl -e '
	my $n = shift;
	my @m = ("trust", "md5", "scram-sha-256", "password", "cert", "reject");
	print "local all postgres peer\n";
	for my $i (1 .. $n - 2) {
		my ($a, $b, $c) = (int($i / 65536) % 256, int($i / 256) % 256, $i % 256);
		my $k = $i % 40;
		my $h = sprintf "%x", $i;
		if    ($k < 10) { printf "hostssl db%d user%d 10.%d.%d.%d/32 cert\n", $i % 50, $i, $a, $b, $c }
		elsif ($k < 13) { printf "hostssl all +group%d 10.%d.%d.0/24 scram-sha-256\n", $i % 100, $a + 100, $b }
		elsif ($k < 15) { printf "hostssl db%d,db%d user%d,+group%d 10.%d.%d.%d/%d scram-sha-256 clientcert=verify-full\n",
				$i % 50, ($i + 1) % 50, $i, $i % 100, $a, $b, $c, 24 + $i % 9 }
		elsif ($k < 17) { printf "host sameuser user%d 172.16.%d.%d/32 md5\n", $i, $b, $c }
		elsif ($k < 18) { printf "host samerole all 172.17.%d.0/24 scram-sha-256\n", $b }
		elsif ($k < 20) { printf "hostnossl all all 192.168.%d.0/24 reject\n", $b }
		elsif ($k < 22) { printf "hostssl all +group%d 10.%d.%d.%d/32 cert map=certmap\n", $i % 100, $a + 100, $b, $c }
		elsif ($k < 23) { printf "host replication repl%d 10.200.%d.%d/32 scram-sha-256\n", $i, $b, $c }
		elsif ($k < 24) { printf "hostssl replication repl%d fd00:200::%s/128 cert\n", $i, $h }
		elsif ($k < 26) { printf "hostssl all user%d fd00:%s::/%d %s\n", $i, $h, 32 + $i % 97, $m[$i % 6] }
		elsif ($k < 27) { printf "host all user%d samenet scram-sha-256\n", $i }
		elsif ($k < 28) { printf "host all user%d samehost %s\n", $i, $m[$i % 6] }
		elsif ($k < 29) { printf "host all user%d 10.%d.%d.%d 255.255.255.0 ident map=osmap\n", $i, $a, $b, $c }
		elsif ($k < 30) { printf "local db%d user%d peer map=osmap\n", $i % 50, $i }
		elsif ($k < 31) { printf "hostssl all user%d 10.%d.%d.0/24 ldap ldapserver=ldap%d.example.com ldapbasedn=\"dc=example,dc=com\" ldapbindpasswd=secret%d\n", $i, $a + 50, $b, $i % 3, $i }
		elsif ($k < 32) { printf "hostssl all user%d 10.%d.%d.0/24 radius radiusservers=10.0.0.%d radiussecrets=s%d\n", $i, $a + 60, $b, $i % 200 + 1, $i }
		elsif ($k < 33) { printf "hostssl all user%d 10.%d.%d.0/24 pam pamservice=postgresql\n", $i, $a + 70, $b }
		elsif ($k < 34) { printf "hostgssenc all user%d 10.%d.%d.0/24 gss include_realm=0\n", $i, $a + 80, $b }
		elsif ($k < 35) { printf "hostssl all user%d host%d.example.com cert\n", $i, $i % 997 }
		elsif ($k < 36) { printf "hostssl all user%d .example.net trust clientcert=verify-ca\n", $i }
		elsif ($k < 38) { printf "host all all 10.%d.%d.%d/32 reject\n", $a, $b, $c }
		else            { printf "hostssl \"db%d\" \"user%d\",user%d fd00:%s::1/128 %s\n", $i % 50, $i, $i + 1, $h, $m[($i + 3) % 6] }
	}
	print "host all all 0.0.0.0/0 reject\n";
	' "$1" >"$W/data/pg_hba.conf"
	chown postgres: "$W/data/pg_hba.conf"
}

median() { sort -n "$1" | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A VIEW AUDIT
for N in $SIZES; do
	generate "$N"
	rules=$(sql -At -c "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NULL")
	[ "$rules" -eq "$N" ] || {
		echo "expected $N valid rules, the server sees $rules:" >&2
		sql -At -c "SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL LIMIT 5" >&2
		exit 1
	}
	{
		echo '\timing on'
		echo "SELECT count(*) FROM pgtls_hba_check();"	# warm-up: the TLS probe and caches
		for _ in $(seq "$RUNS"); do
			echo "SELECT count(*) FROM pg_hba_file_rules;"
			echo "SELECT count(*) FROM pgtls_hba_check();"
		done
	} >"$W/bench.sql"
	sql -f "$W/bench.sql" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -n +2 >"$W/times"
	awk 'NR % 2 == 1' "$W/times" >"$W/view.ms"
	awk 'NR % 2 == 0' "$W/times" >"$W/audit.ms"
	VIEW[$N]=$(median "$W/view.ms")
	AUDIT[$N]=$(median "$W/audit.ms")
	if [ "$N" = "$(echo $SIZES | awk '{ print $NF }')" ]; then
		echo "findings by check_id at $N lines:"
		sql -At -F ' ' -c "SELECT '  ' || check_id, count(*) FROM pgtls_hba_check() GROUP BY 1 ORDER BY 1"
		shadowed=$(sql -At -c "SELECT count(*) FROM pgtls_hba_check() WHERE check_id = 'hba.shadowed'")
		[ "$shadowed" -gt 0 ] || { echo "the generated file has shadowed rules but none were found" >&2; exit 1; }
		secrets=$(sql -At -c "SELECT count(*) FROM pgtls_hba_check() WHERE rule ~ 'secret[0-9]|radiussecrets=s[0-9]'")
		[ "$secrets" -eq 0 ] || { echo "a secret of pg_hba.conf reached the findings" >&2; exit 1; }
	fi
done

echo "pgtls_hba_check() against SELECT count(*) FROM pg_hba_file_rules, median of $RUNS runs each:"
printf '  %8s  %12s  %12s  %6s\n' lines "view ms" "audit ms" ratio
for N in $SIZES; do
	printf '  %8d  %12.1f  %12.1f  %6.2f\n' "$N" "${VIEW[$N]}" "${AUDIT[$N]}" "$(echo "${AUDIT[$N]} / ${VIEW[$N]}" | bc -l)"
done
echo "  (target: <= 3 at 10000 lines, not growing with size)"

# What the TLS probe costs when nothing is cached: the first audit in a new
# session against the following ones, on the original small pg_hba.conf.
cp "$W/pg_hba.conf.orig" "$W/data/pg_hba.conf"
chown postgres: "$W/data/pg_hba.conf"
for _ in $(seq "$RUNS"); do
	printf '\\timing on\nSELECT count(*) FROM pgtls_hba_check();\nSELECT count(*) FROM pgtls_hba_check();\nSELECT count(*) FROM pgtls_hba_check();\n' |
		sql | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | paste -sd' '
done >"$W/probe"
awk '{ print $1 - ($2 + $3) / 2 }' "$W/probe" >"$W/probe.ms"
awk '{ print ($2 + $3) / 2 }' "$W/probe" >"$W/cached.ms"
printf 'TLS probe (trial load + handshakes, first audit of a session): %.1f ms; the audit with it cached: %.1f ms (medians of %d sessions)\n' \
	"$(median "$W/probe.ms")" "$(median "$W/cached.ms")" "$RUNS"
