#!/usr/bin/env bash
# A local Citus cluster for Fence's tests and benchmarks: a coordinator (127.0.0.1:5440) and two
# workers (:5441, :5442) on this machine's PostgreSQL 15, pgvector on every node. Idempotent: it
# creates and starts what is missing, and makes the database on every node with both extensions,
# the coordinator told of its workers. Prints the coordinator's URL as its last line.
#
#   bash scripts/setup-citus.sh [database]     # default fence_citus
#   CITUS_FRESH=1 bash scripts/setup-citus.sh  # drop and recreate the database on every node
#
# Citus is not packaged for Debian: when it is not installed yet, it is built from a source tarball
# (CITUS_SOURCE=path/to/citus-13.2.2.tar.gz, with its PostgreSQL 15 patch beside it as
# citus-13.2.2-pg15-compat.patch; default: the team's vendor folder next to this repository).
# 13.2 is the last Citus line that supports PostgreSQL 15. Run scripts/setup-postgres.sh first
# (pgvector).
set -euo pipefail
db=${1:-fence_citus}
pg=/usr/lib/postgresql/15
here=$(cd "$(dirname "$0")" && pwd)
say() { echo "[setup-citus] $*" >&2; }

[ -f "$pg/lib/vector.so" ] || { say "pgvector is missing for PostgreSQL 15: run scripts/setup-postgres.sh first"; exit 1; }

if [ ! -f "$pg/lib/citus.so" ]; then
  source=${CITUS_SOURCE:-$here/../../shared/vendor/citus-13.2.2.tar.gz}
  [ -f "$source" ] || { say "Citus is not installed and its source tarball is not at $source (set CITUS_SOURCE)"; exit 1; }
  say "building Citus from $(basename "$source") (a few minutes on 2 cores)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq postgresql-server-dev-15 liblz4-dev libzstd-dev libcurl4-openssl-dev libkrb5-dev \
    libselinux1-dev libxslt1-dev libpam0g-dev libssl-dev libreadline-dev >/dev/null
  build=$(mktemp -d)
  tar xzf "$source" -C "$build"
  src=$(find "$build" -mindepth 1 -maxdepth 1 -type d | head -n 1)
  patch=${source%.tar.gz}-pg15-compat.patch
  (cd "$src" && { [ ! -f "$patch" ] || patch -p1 -s < "$patch"; } \
    && ./configure -q PG_CONFIG="$pg/bin/pg_config" >/dev/null && make -s -j"$(nproc)" >/dev/null 2>&1 && make -s install >/dev/null)
  rm -rf "$build"
fi

ports=(5440 5441 5442)
names=(citus_coord citus_w1 citus_w2)
for i in 0 1 2; do
  name=${names[$i]} port=${ports[$i]}
  if ! pg_lsclusters -h | awk '{print $2}' | grep -qx "$name"; then
    say "creating cluster $name on port $port"
    pg_createcluster 15 "$name" -p "$port" -- --auth=trust >/dev/null
    conf=/etc/postgresql/15/$name
    printf "shared_preload_libraries = 'citus'\nlisten_addresses = '127.0.0.1'\nmax_connections = 200\n" >> "$conf/postgresql.conf"
    { echo "host all all 127.0.0.1/32 trust"; cat "$conf/pg_hba.conf"; } > "$conf/pg_hba.conf.new" && mv "$conf/pg_hba.conf.new" "$conf/pg_hba.conf"
  fi
  pg_ctlcluster 15 "$name" start >/dev/null 2>&1 || true # "already running" is fine; readiness is checked below
done
for attempt in $(seq 1 30); do
  ready=1
  for port in "${ports[@]}"; do pg_isready -q -h 127.0.0.1 -p "$port" || ready=0; done
  [ "$ready" = 1 ] && break
  [ "$attempt" = 30 ] && { say "a node did not start: see pg_lsclusters and /var/log/postgresql/"; exit 1; }
  sleep 1
done

sql() { psql -X -q -h 127.0.0.1 -U postgres -v ON_ERROR_STOP=1 "$@"; }
for port in "${ports[@]}"; do
  [ "${CITUS_FRESH:-0}" = 1 ] && sql -p "$port" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)"
  sql -p "$port" -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1 || sql -p "$port" -c "CREATE DATABASE $db"
  # Only where missing: once the workers are in the cluster's metadata, they refuse even a no-op DDL.
  for extension in citus vector; do
    sql -p "$port" -d "$db" -tAc "SELECT 1 FROM pg_extension WHERE extname = '$extension'" | grep -q 1 \
      || sql -p "$port" -d "$db" -c "CREATE EXTENSION $extension"
  done
done
sql -p 5440 -d "$db" -c "SELECT citus_set_coordinator_host('127.0.0.1', 5440)" >/dev/null
for port in 5441 5442; do
  sql -p 5440 -d "$db" -tAc "SELECT 1 FROM pg_dist_node WHERE nodeport = $port" | grep -q 1 \
    || sql -p 5440 -d "$db" -c "SELECT citus_add_node('127.0.0.1', $port)" >/dev/null
done
say "ready: coordinator 127.0.0.1:5440, workers :5441 and :5442, database $db"
echo "postgres://postgres@127.0.0.1:5440/$db"
