#!/usr/bin/env bash
# The shared memory of the live-certificate set that registry-enforced
# logins check (src/live.c), sized by pgtls_admin.max_certificates, and
# logins with it full: max_certificates = N and N live client certificates
# in the registry (default N = 1,000,000).
#
#   bench/live_set_memory.sh [N, 1000000]   (as root; pgtls_admin installed)
# Prints pg_shmem_allocations and shared_memory_size against the same
# server with the smallest set (1,000), how long the rows and the worker's
# load took, and certificate login latency with the full set.
set -euo pipefail
N=${1:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
. "$ROOT/bench/login_common.sh"

# "hash_entry_bytes struct_bytes anonymous_bytes shared_memory_size"
shmem() {
	sql -F ' ' -c "SELECT coalesce(sum(size) FILTER (WHERE name = 'pgtls_admin live certificate hash'), 0),
	                      coalesce(sum(size) FILTER (WHERE name = 'pgtls_admin live certificates'), 0),
	                      coalesce(sum(size) FILTER (WHERE name = '<anonymous>'), 0),
	                      current_setting('shared_memory_size')
	               FROM pg_shmem_allocations"
}
restart_with() {
	sql -c "ALTER SYSTEM SET pgtls_admin.max_certificates = $1" >/dev/null
	as_pg pg_ctl -D "$W/data" -l "$W/server.log" -w restart >/dev/null
}
mb() { echo "$1" | awk '{ printf "%.1f MB", $1 / 1048576 }'; }

login_cluster "${PGTLS_BENCH_NAME:-pgtls_live}" "${PGTLS_BENCH_PORT:-55455}"
echo "machine: $(nproc) cores; $(postgres --version); pgtls_admin.max_certificates = $N"
restart_with 1000
read -r h0 s0 a0 m0 < <(shmem)
restart_with "$N"
read -r h1 s1 a1 m1 < <(shmem)
echo "pg_shmem_allocations with max_certificates = 1000 | = $N:"
echo "  'pgtls_admin live certificate hash' (header and directory): $h0 | $h1 bytes"
echo "  'pgtls_admin live certificates' (state, CA identities): $s0 | $s1 bytes"
echo "  '<anonymous>' (the hash's buckets and entries are allocated there): $a0 | $a1 bytes"
echo "  shared_memory_size: $m0 | $m1"
grow=$(( (h1 - h0) + (s1 - s0) + (a1 - a0) ))
echo "the set for $N certificates takes $grow bytes more ($(mb "$grow"), $(( grow / (N - 1000) )) bytes a certificate)"

# N live certificates: one issued now, N - 2 recorded as a registry in use
# for years holds them (rows as pg_restore or t/015 write them: the
# registry's trigger stamps each with the inserting transaction, which the
# worker follows), and one issued after them.
client_cert "$W/first"
s=$(date +%s.%N)
sql -c "INSERT INTO pgtls_certificates (serial, kind, role, subject, key_type, not_before, not_after,
	        fingerprint_sha256, certificate, issued_by, role_oid)
	SELECT upper(md5('live' || g)), 'client', 'bench', 'CN=bench', 'ec-p256', now() - interval '1 day',
	       now() + (100 + g % 200) * interval '1 day', '-', '-', 'postgres', 'bench'::regrole
	FROM generate_series(1, $N - 2) g" >/dev/null
e=$(date +%s.%N)
client_cert "$W/last"
live=$(sql -c "SELECT count(*) FROM pgtls_certificates WHERE kind = 'client' AND revoked_at IS NULL AND not_after > now()")
echo "inserted $((N - 2)) live rows in $(echo "$s $e" | awk '{ printf "%.1f", $2 - $1 }') s; live client certificates in the registry: $live"
[ "$live" -eq "$N" ] || { echo "expected $N live certificates" >&2; exit 1; }

# The worker loads them; the certificate issued last logs in once the load
# that holds it, and so everything committed before it, is in place (a load
# that did not fit would refuse every login of ours).
set_enforce registry
login_until_ok "$W/last" 300
echo "enforce = registry: the last certificate logs in $(echo "$e $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }') s after the insert committed (the worker follows the registry)"
[ "$(login "$W/first")" = bench ] || { echo "the first certificate does not log in" >&2; exit 1; }
# at start the worker loads the whole registry
as_pg pg_ctl -D "$W/data" -l "$W/server.log" -w restart >/dev/null
s=$(date +%s.%N)
login_until_ok "$W/last" 300
echo "after a restart (the server accepting connections), the first registry-enforced login succeeds within $(echo "$s $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }') s (the worker's full load)"
worker=$(sql -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'pgtls_admin worker'")
echo "worker's peak memory (VmHWM) after the load: $(awk '/^VmHWM/ { print $2, $3 }' "/proc/$worker/status")"
read -r h2 s2 a2 m2 < <(shmem)
[ "$h2 $s2 $a2 $m2" = "$h1 $s1 $a1 $m1" ] && echo "the shared memory did not change with the set full (allocated at start)"

# Logins with the full set against enforce = crl, alternating
: >"$W/crl.lat"; : >"$W/registry.lat"; : >"$W/crl.cpu"; : >"$W/registry.cpu"
for r in 1 2 3 4 5; do
	if [ $((r % 2)) -eq 1 ]; then order="crl registry"; else order="registry crl"; fi
	for mode in $order; do
		set_enforce "$mode"
		read -r l _ u < <(connect_latency "$W/last" 500)
		echo "$l" >>"$W/$mode.lat"
		echo "$u" >>"$W/$mode.cpu"
	done
done
ratio() { echo "$1 $2" | awk '{ printf "%.3f", $1 / $2 }'; }
crl=$(median <"$W/crl.lat")
reg=$(median <"$W/registry.lat")
echo "with $N live certificates, pgbench -C 5 x 500 connections, medians per connection:" \
	"latency crl $crl ms, registry $reg ms (ratio $(ratio "$reg" "$crl"));" \
	"server CPU crl $(median <"$W/crl.cpu") ms, registry $(median <"$W/registry.cpu") ms" \
	"(ratio $(ratio "$(median <"$W/registry.cpu")" "$(median <"$W/crl.cpu")"))"

# and a revocation still takes effect at once
set_enforce registry
serial=$(openssl x509 -in "$W/first/postgresql.crt" -noout -serial | sed 's/^serial=//')
sql -c "SELECT pgtls_revoke('$serial')" >/dev/null
if login "$W/first" >/dev/null; then
	echo "the revoked certificate still logs in" >&2
	exit 1
fi
echo "revoked with $N live certificates: refused at the next login"
