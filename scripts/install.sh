#!/usr/bin/env bash
# Install what pgtls_admin needs on Debian 12, then build it with
# -Wall -Wextra -Werror and install it.  Run as root from anywhere.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "$0 must run as root (it installs packages)" >&2
	exit 2
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# prometheus-postgres-exporter and prometheus (for promtool): t/035 runs the
# exporter with monitoring/postgres_exporter.yaml and checks the alert rules
apt-get install -y -q --no-install-recommends \
	postgresql-15 postgresql-server-dev-15 libssl-dev openssl \
	libipc-run-perl make gcc clang-14 valgrind bc \
	python3-psycopg2 libpostgresql-jdbc-java openjdk-17-jdk-headless nodejs \
	libkrb5-dev prometheus-postgres-exporter prometheus >/dev/null
# Debian's nodejs ships npm separately; other builds include it
command -v npm >/dev/null || apt-get install -y -q --no-install-recommends npm >/dev/null

make -s clean
make -s PGTLS_WERROR=1
make -s install
echo "pgtls_admin built and installed into $(pg_config --pkglibdir)"
