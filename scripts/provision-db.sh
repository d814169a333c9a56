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
# Also read: GEOGRID_DB_ROLE, GEOGRID_DB_PASSWORD (default geogrid/geogrid), GEOGRID_DB_CLUSTER and
# GEOGRID_DB_PORT (name and port of a cluster to use, created when missing). Tested on a fresh Debian:
# scripts/check-fresh-machine.sh.
set -euo pipefail
DB="${1:-geogrid}"
ROLE="${GEOGRID_DB_ROLE:-geogrid}"
PASS="${GEOGRID_DB_PASSWORD:-geogrid}"
# names go into SQL as identifiers: plain lowercase only; the password as a literal, quotes doubled
case "$ROLE$DB" in *[!a-z0-9_]*) echo "provision: role and database names may hold a-z, 0-9 and _ only" >&2; exit 2;; esac
PASS_SQL=${PASS//\'/\'\'}
# percent-encoded byte by byte for the URL (plain bash: a fresh machine may have no python3 yet)
urlencode() { local LC_ALL=C s="$1" out="" c h i; for ((i = 0; i < ${#s}; i++)); do c=${s:i:1}
  case "$c" in [a-zA-Z0-9.~_-]) out+="$c" ;; *) printf -v h '%%%02X' "'$c"; out+="$h" ;; esac; done; echo "$out"; }
PASS_URL=$(urlencode "$PASS")
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
  # `main` (the one Debian's package makes) when it exists, else the first; never another test's cluster by name order
  SEL=$(pg_lsclusters -h | awk -v v="$PGVER" '$1==v && $2=="main"')
  [ -n "$SEL" ] || SEL=$(pg_lsclusters -h | awk -v v="$PGVER" '$1==v' | head -1)
fi
CLUSTER=$(awk '{print $2}' <<<"$SEL")
PORT=$(awk '{print $3}' <<<"$SEL")
# GEOGRID_DB_PORT only applies to a cluster this script creates; Debian's postgresql package creates
# $PGVER/main itself (on the first free port), so say so rather than silently use another port
if [ -n "${GEOGRID_DB_PORT:-}" ] && [ "$GEOGRID_DB_PORT" != "$PORT" ]; then
  log "GEOGRID_DB_PORT=$GEOGRID_DB_PORT ignored: cluster $PGVER/$CLUSTER exists on port $PORT (with GEOGRID_DB_CLUSTER=<new name> a cluster is created on that port)"
fi
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
    CREATE ROLE $ROLE LOGIN PASSWORD '$PASS_SQL';
  ELSE
    ALTER ROLE $ROLE LOGIN PASSWORD '$PASS_SQL';
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
echo "postgresql+psycopg://$ROLE:$PASS_URL@127.0.0.1:$PORT/$DB"
