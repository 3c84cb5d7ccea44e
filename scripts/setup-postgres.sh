#!/usr/bin/env bash
# Idempotent: makes the local PostgreSQL usable by Fence's tests and evals.
#   1. builds and installs pgvector if the server lacks it (Debian 12 has no package for PG 15;
#      Debian trixie's source package builds against it in seconds),
#   2. starts the cluster if it is down,
#   3. creates the database (default `test`) and the vector extension; with FENCE_TEST_DB_FRESH=1
#      it drops the database first, so a run starts from an empty schema (CI does this).
# Needs root (apt) only when pgvector is missing. Safe to run any number of times.
set -euo pipefail

PGHOST="${PGHOST:-127.0.0.1}"
PGPORT="${PGPORT:-5432}"
PGUSER="${PGUSER:-postgres}"
DB_NAME="${FENCE_TEST_DB:-test}"
export PGHOST PGPORT PGUSER

log() { printf '[setup-postgres] %s\n' "$*"; }

pg_version() {
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header | awk 'NR==1{print $1}'
  else
    ls /etc/postgresql | sort -n | tail -1
  fi
}

start_cluster() {
  if pg_isready -q -h "$PGHOST" -p "$PGPORT"; then return 0; fi
  local ver; ver=$(pg_version)
  log "starting PostgreSQL $ver"
  pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  for _ in $(seq 1 30); do pg_isready -q -h "$PGHOST" -p "$PGPORT" && return 0; sleep 1; done
  log "PostgreSQL did not become ready"; exit 1
}

install_pgvector() {
  local ver; ver=$(pg_version)
  local sharedir; sharedir=$(pg_config --sharedir 2>/dev/null || echo "/usr/share/postgresql/$ver")
  if [ -f "/usr/share/postgresql/$ver/extension/vector.control" ]; then
    log "pgvector already installed for PostgreSQL $ver"; return 0
  fi
  log "building pgvector for PostgreSQL $ver from Debian trixie's source package"
  # The mirror comes from the machine's own apt sources, so this works behind any mirror.
  local mirror
  mirror=$({ grep -rhoE '^(URIs:|deb) +[a-z]+://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null || true; } \
    | awk '{print $2}' | head -1)
  [ -n "$mirror" ] || { log "no Debian mirror found in apt sources"; exit 1; }
  echo "deb-src ${mirror%/} trixie main" > /etc/apt/sources.list.d/fence-trixie-src.list
  # A plain update: restricting it to one list would empty the binary package lists.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-server-dev-$ver" make gcc >/dev/null
  local work; work=$(mktemp -d)
  (
    cd "$work"
    apt-get source --download-only pgvector >/dev/null
    tar xzf pgvector_*.orig.tar.gz
    cd pgvector-*/
    make -s PG_CONFIG="/usr/lib/postgresql/$ver/bin/pg_config" OPTFLAGS="" >/dev/null
    make -s install PG_CONFIG="/usr/lib/postgresql/$ver/bin/pg_config" >/dev/null
  )
  rm -rf "$work"
  log "pgvector installed"
}

install_pgvector
start_cluster
if [ "${FENCE_TEST_DB_FRESH:-0}" = "1" ]; then
  log "dropping database $DB_NAME for a fresh start"
  psql -q -d postgres -c "DROP DATABASE IF EXISTS \"$DB_NAME\" WITH (FORCE)" >/dev/null
fi
if ! psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'" | grep -q 1; then
  log "creating database $DB_NAME"
  createdb "$DB_NAME"
fi
psql -q -d "$DB_NAME" -c 'CREATE EXTENSION IF NOT EXISTS vector' >/dev/null
log "ready: postgres://$PGUSER@$PGHOST:$PGPORT/$DB_NAME with pgvector $(psql -d "$DB_NAME" -tAc "SELECT extversion FROM pg_extension WHERE extname='vector'")"
