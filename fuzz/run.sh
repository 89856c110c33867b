#!/usr/bin/env bash
# Build the libFuzzer harness (clang, ASan + UBSan + LeakSanitizer) from the
# extension's own parsing sources and run it for SECONDS (default 60) from a
# seed corpus of valid certificates, keys and requests made here.
#   fuzz/run.sh [SECONDS]
set -euo pipefail
SECONDS_TO_RUN=${1:-60}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
W=$(mktemp -d /tmp/pgtls_fuzz.XXXXXX)
trap 'rm -rf "$W"' EXIT
CC=$(command -v clang-14 || command -v clang)

"$CC" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-Wno-ignored-attributes -Wno-unknown-attributes -Wno-format \
	-I "$ROOT/include" -I "$ROOT/fuzz" -I "$(pg_config --includedir-server)" \
	"$ROOT/fuzz/fuzz_parse.c" "$ROOT/fuzz/pg_shim.c" \
	"$ROOT/src/x509_parse.c" "$ROOT/src/x509_describe.c" "$ROOT/src/x509_csr.c" \
	"$ROOT/src/ossl.c" "$ROOT/src/settings.c" \
	-lcrypto -o "$W/fuzz_parse"

# Seeds: selector byte (0 cert, 1 key, 2 request; +0x80 wraps DER as PEM) + data.
mkdir "$W/corpus"
cd "$W"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout k.pem -subj '/CN=user1/O=a\,b' \
	-addext 'subjectAltName=DNS:db.example.com,IP:127.0.0.1,email:a@b.c' -addext extendedKeyUsage=clientAuth \
	-days 30 -out c.pem 2>/dev/null
openssl req -new -key k.pem -subj /CN=user1 -out r.pem 2>/dev/null
openssl x509 -in c.pem -outform DER -out c.der
openssl pkey -in k.pem -outform DER -out k.der
openssl req -in r.pem -outform DER -out r.der
seed() { { printf "\\$(printf '%03o' "$1")"; cat "$2"; } >"corpus/$3"; }
seed 0 c.pem cert_pem
seed 128 c.der cert_der
seed 1 k.pem key_pem
seed 129 k.der key_der
seed 2 r.pem req_pem
seed 130 r.der req_der

# detect_leaks: LeakSanitizer after every input as well as at exit
status=0
"$W/fuzz_parse" -max_total_time="$SECONDS_TO_RUN" -detect_leaks=1 -print_final_stats=1 \
	-max_len=8192 "$W/corpus" >"$W/log" 2>&1 || status=$?
if [ $status -ne 0 ]; then
	grep -A 40 -m 1 -E '^(==[0-9]+==ERROR|input raised|.*runtime error)' "$W/log" || tail -60 "$W/log"
	echo "fuzz_parse failed (exit $status)"
	exit $status
fi
grep -E '^Done|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb)' "$W/log"
echo "fuzz_parse: no crash, no leak, every rejected input 22023"
