#!/usr/bin/env bash
# Provision a PostGIS database for geogrid and print its URL on the last line of stdout.
#
#   scripts/provision-db.sh [DBNAME]
#
# With GEOGRID_DATABASE_URL set: use that server as it is (create the extension when allowed).
# Otherwise: the local PostgreSQL — install the Debian packages when missing, start the cluster when
# it is down, create role and database, CREATE EXTENSION postgis. Works under any authentication:
# we talk to the cluster as the `postgres` OS user over the socket (peer), and create our own role
# with a password for TCP (md5/scram), so nothing assumes trust.
set -euo pipefail
DB="${1:-geogrid}"
ROLE="${GEOGRID_DB_ROLE:-geogrid}"
PASS="${GEOGRID_DB_PASSWORD:-geogrid}"
PORT="${GEOGRID_DB_PORT:-5432}"
log() { echo "provision: $*" >&2; }

if [ -n "${GEOGRID_DATABASE_URL:-}" ]; then
  log "using GEOGRID_DATABASE_URL (not provisioning a local cluster)"
  echo "$GEOGRID_DATABASE_URL"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
apt_install() {
  log "installing Debian packages: $*"
  $SUDO apt-get update -qq >&2 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >&2
}

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  apt_install postgresql postgresql-contrib
fi
# the newest installed major version
PGVER=$(ls /usr/lib/postgresql | sort -n | tail -1)
if [ ! -f "/usr/share/postgresql/$PGVER/extension/postgis.control" ]; then
  apt_install "postgresql-$PGVER-postgis-3"
fi
# GEOGRID_DB_CLUSTER picks (and creates when missing) a named cluster; default: the first of $PGVER
WANT="${GEOGRID_DB_CLUSTER:-}"
if [ -n "$WANT" ]; then
  if ! pg_lsclusters -h | awk -v v="$PGVER" -v c="$WANT" '$1==v && $2==c' | grep -q .; then
    log "creating cluster $PGVER/$WANT on port $PORT"
    $SUDO pg_createcluster "$PGVER" "$WANT" --port "$PORT" >&2
  fi
  SEL=$(pg_lsclusters -h | awk -v v="$PGVER" -v c="$WANT" '$1==v && $2==c')
else
  if ! pg_lsclusters -h | awk -v v="$PGVER" '$1==v' | grep -q .; then
    log "creating cluster $PGVER/main"
    $SUDO pg_createcluster "$PGVER" main --port "$PORT" >&2
  fi
  SEL=$(pg_lsclusters -h | awk -v v="$PGVER" '$1==v' | head -1)
fi
CLUSTER=$(awk '{print $2}' <<<"$SEL")
PORT=$(awk '{print $3}' <<<"$SEL")
if ! awk '{print $4}' <<<"$SEL" | grep -q online; then
  log "starting cluster $PGVER/$CLUSTER"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$PGVER" "$CLUSTER" start >&2 || $SUDO pg_ctlcluster "$PGVER" "$CLUSTER" start >&2
fi

psql_su() { $SUDO -u postgres psql -p "$PORT" -v ON_ERROR_STOP=1 -qAt "$@" 2>/dev/null || runuser -u postgres -- psql -p "$PORT" -v ON_ERROR_STOP=1 -qAt "$@"; }
if [ "$(id -u)" -eq 0 ]; then
  psql_su() { runuser -u postgres -- psql -p "$PORT" -v ON_ERROR_STOP=1 -qAt "$@"; }
fi

psql_su -d postgres <<SQL >&2
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN PASSWORD '$PASS';
  ELSE
    ALTER ROLE $ROLE LOGIN PASSWORD '$PASS';
  END IF;
END \$\$;
ALTER ROLE $ROLE SET jit = off;
ALTER ROLE $ROLE SET plan_cache_mode = force_custom_plan;
SQL
if [ -z "$(psql_su -d postgres -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
  log "creating database $DB"
  psql_su -d postgres -c "CREATE DATABASE $DB OWNER $ROLE" >&2
fi
psql_su -d "$DB" -c "CREATE EXTENSION IF NOT EXISTS postgis; GRANT ALL ON SCHEMA public TO $ROLE;" >&2
echo "postgresql+psycopg://$ROLE:$PASS@127.0.0.1:$PORT/$DB"
