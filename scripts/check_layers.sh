#!/usr/bin/env bash
# Check the dependency direction of the built objects: each file may use
# symbols of its own layer and the layers below, operations and audit never
# use each other, and no two files depend on each other in a cycle.
#
#   scripts/check_layers.sh [DIR]     (DIR: the built tree, default the repository)
#
# Layers (include/pgtls_base.h): base < x509 < stores < {operations, audit} < entry.
set -euo pipefail
DIR=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$DIR"

layer() {
	case $1 in
	src/ossl | src/files | src/locks | src/settings | src/session | src/compat) echo base ;;
	src/x509_* | src/crl_der | src/formats) echo x509 ;;
	src/registry | src/journal | src/statement | src/pending | src/live | src/cluster | src/ca_store | src/ca_keyring | src/roles | src/server_config) echo stores ;;
	src/ca | src/issue | src/revoke | src/refresh | src/install | src/renew | src/enforce | src/worker | src/notify | src/maintain | src/renew_self | src/sessions) echo operations ;;
	src/trust | src/trust_cas | src/ca_states | src/ca_rotate | src/ca_intermediate) echo operations ;;
	src/findings | src/audit | src/hba_* | src/audit_tls | src/audit_probe | src/audit_handshake | src/audit_crl | src/audit_login | src/audit_ca | src/metrics) echo audit ;;
	pgtls_admin) echo entry ;;
	*) echo unknown ;;
	esac
}

# may a file of layer $1 use a file of layer $2?
allowed() {
	case "$1:$2" in
	base:base) return 0 ;;
	x509:base | x509:x509) return 0 ;;
	stores:base | stores:x509 | stores:stores) return 0 ;;
	operations:base | operations:x509 | operations:stores | operations:operations) return 0 ;;
	audit:base | audit:x509 | audit:stores | audit:audit) return 0 ;;
	entry:*) return 0 ;;
	esac
	return 1
}

objs=$(ls pgtls_admin.o src/*.o)
declare -A owner
for o in $objs; do
	f=${o%.o}
	[ "$(layer "$f")" != unknown ] || { echo "check_layers: $f has no layer; add it to scripts/check_layers.sh" >&2; exit 1; }
	for sym in $(nm --defined-only -g "$o" | awk '{ print $3 }'); do
		owner[$sym]=$f
	done
done

status=0
edges=$(mktemp)
trap 'rm -f "$edges"' EXIT
for o in $objs; do
	f=${o%.o}
	for sym in $(nm -u "$o" | awk '{ print $2 }'); do
		g=${owner[$sym]:-}
		[ -n "$g" ] && [ "$g" != "$f" ] || continue
		if ! allowed "$(layer "$f")" "$(layer "$g")"; then
			echo "check_layers: $f ($(layer "$f")) uses $sym of $g ($(layer "$g"))"
			status=1
		fi
		echo "$g $f" >>"$edges"
	done
done
if ! sort -u "$edges" | tsort >/dev/null 2>"$edges.err"; then
	echo "check_layers: the files depend on each other in a cycle:"
	cat "$edges.err"
	status=1
fi
rm -f "$edges.err"
n=$(sort -u "$edges" | wc -l)
[ $status -eq 0 ] && echo "check_layers: $(echo "$objs" | wc -w) files, $n file dependencies, all pointing down the layers, no cycle"
exit $status
