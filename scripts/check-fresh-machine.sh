#!/usr/bin/env bash
# Prove that scripts/provision-db.sh works on a fresh Debian machine, by running it in one.
#
#   sudo scripts/check-fresh-machine.sh          (or: make check-fresh)
#
# Builds a minimal Debian bookworm root file system with debootstrap (minbase: no PostgreSQL, no sudo,
# no systemd), copies it fresh for every run, and inside it (chroot; it shares the host's network) runs
# the project's own provisioning, then checks from the host's virtualenv over TCP:
#   1 nothing installed   -> the PostgreSQL + PostGIS Debian packages get installed, the cluster created
#                            by Debian's package is started, role (with password) + database + postgis
#   2 stock authentication: pg_hba.conf untouched (peer on the socket, scram-sha-256 on TCP, no trust);
#                            psycopg logs in with the password, a wrong password is refused
#   3 geogrid db init (alembic upgrade head) from the host's .venv against that cluster
#   4 cluster down        -> provisioning starts it again; same URL
#   5 re-run              -> idempotent: same URL, nothing installed or created, data kept
#   6 md5 passwords       -> cluster switched to md5 (hba + password_encryption); provisioning still works
#   7 a non-root user with sudo (how `make demo` usually runs) provisions its own database
#   8 a named cluster on a chosen port (GEOGRID_DB_CLUSTER + GEOGRID_DB_PORT) is created and used
# At the end every process of the chroot is stopped and the file system is unmounted and removed.
#
# Time on the shared 2-core development machine (Debian 12 host), clean-up included: 1 min 45 s to
# 3 min 6 s a run depending on its load (installing the packages 45-100 s, rm of the file system up to
# 45 s); the first run also bootstraps (debootstrap 30-80 s) and downloads ~130 MB of packages. The base
# file system and the downloaded .deb files are cached under $FRESH_DIR; every run still installs
# everything into a fresh copy.
#
# Environment: FRESH_DIR (default /var/tmp/geogrid-fresh), FRESH_MIRROR (default: the host's Debian
# mirror), FRESH_PORT (port of the step-8 cluster, default the first free one from 5499),
# FRESH_REBUILD=1 (rebuild the base), FRESH_NO_CACHE=1 (do not reuse downloaded packages),
# FRESH_KEEP=1 (keep the root file system for inspection; its clusters are still stopped).
# Needs root, a Debian/Ubuntu host (apt, for debootstrap) and network access to a Debian mirror.
set -euo pipefail
ROOT_DIR=$(cd "$(dirname "$0")/.." && pwd)
FRESH_DIR="${FRESH_DIR:-/var/tmp/geogrid-fresh}"
R="$FRESH_DIR/root"          # the fresh machine
BASE="$FRESH_DIR/base"       # pristine debootstrap output, copied for every run
LOGS="$FRESH_DIR/logs"
SUITE=bookworm
PY="${FRESH_PYTHON:-$ROOT_DIR/.venv/bin/python}"
GEOGRID="${FRESH_GEOGRID:-$ROOT_DIR/.venv/bin/geogrid}"
PW="fresh-check-pw"

if [ "$(id -u)" -ne 0 ]; then echo "check-fresh: needs root (debootstrap, chroot, mount)" >&2; exit 2; fi
# A private mount namespace: the chroot's /proc, /dev, /sys mounts never show on (or leak to) the host,
# and they vanish with the namespace even if this script is killed.
if [ -z "${FRESH_IN_NS:-}" ]; then
  exec env FRESH_IN_NS=1 FRESH_T0="$(date +%s)" unshare --mount --propagation private -- "$BASH" "$0" "$@"
fi
[ -x "$PY" ] || { echo "check-fresh: $PY missing (run make first: the checks use the project's .venv)" >&2; exit 2; }
mkdir -p "$FRESH_DIR" "$LOGS"

T0=$SECONDS
RESULTS=()
FAILED=""
step() {  # step NAME FUNCTION: run it, log to $LOGS/NAME.log, print PASS/FAIL with its duration
  local name=$1 fn=$2 t=$SECONDS rc=0
  if [ -n "$FAILED" ]; then RESULTS+=("SKIP  $name"); echo "SKIP  $name (an earlier step failed)"; return; fi
  echo "....  $name"
  # not `( ... ) || rc=$?`: bash ignores set -e inside a command that is part of an || list
  set +e
  ( set -euo pipefail; "$fn" ) >"$LOGS/$name.log" 2>&1
  rc=$?
  set -e
  local dt=$((SECONDS - t))
  if [ $rc -eq 0 ]; then
    RESULTS+=("PASS  $name (${dt}s)"); echo "PASS  $name (${dt}s)"
  else
    RESULTS+=("FAIL  $name (${dt}s)"); echo "FAIL  $name (${dt}s) — last lines of $LOGS/$name.log:"
    tail -25 "$LOGS/$name.log" | sed 's/^/      /'; FAILED=$name
  fi
}
fail() { echo "CHECK FAILED: $*"; exit 1; }

inroot() {  # a command in the fresh machine with a clean environment (as after a login: nothing inherited)
  chroot "$R" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}
su_psql() { inroot runuser -u postgres -- psql -p "$1" -v ON_ERROR_STOP=1 -qAt "${@:2}"; }
mounts_under() { awk -v r="$R" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r; }
root_pids() {  # processes whose root directory is the fresh machine (only ones this check started)
  local p r
  for p in /proc/[0-9]*; do
    r=$(readlink "$p/root" 2>/dev/null) || continue
    if [ "$r" = "$R" ] || [[ "$r" == "$R/"* ]]; then echo "${p#/proc/}"; fi
  done
}

stop_machine() {  # stop the chroot's clusters, then any of its processes left, by pid
  local pids
  if [ -x "$R/usr/bin/pg_lsclusters" ] && [ -d "$R/proc/self" ]; then
    inroot pg_lsclusters -h 2>/dev/null | while read -r ver name _port status _rest; do
      [[ "$status" == online* ]] && inroot pg_ctlcluster "$ver" "$name" stop -m fast || true
    done
  fi
  pids=$(root_pids)
  if [ -n "$pids" ]; then
    echo "check-fresh: stopping leftover chroot processes:" $pids >&2
    kill -TERM $pids 2>/dev/null || true
    for _ in $(seq 20); do sleep 0.5; pids=$(root_pids); [ -z "$pids" ] && break; done
    [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
  fi
}
unmount_machine() {
  local m
  for m in $(mounts_under); do umount "$m" 2>/dev/null || umount -l "$m"; done
}
cleanup() {
  local rc=$? t=$SECONDS
  trap - EXIT INT TERM
  [ -d "$R" ] || exit $rc
  stop_machine
  unmount_machine
  if [ -n "$(root_pids)" ]; then echo "check-fresh: WARNING processes still running in $R: $(root_pids)" >&2; rc=1; fi
  if [ -n "$(mounts_under)" ]; then echo "check-fresh: WARNING still mounted under $R, not removed" >&2; rc=1
  elif [ -z "${FRESH_KEEP:-}" ]; then rm -rf --one-file-system "$R"; fi
  echo "check-fresh: $(( $(date +%s) - ${FRESH_T0:-$(date +%s)} ))s in all (clean-up $((SECONDS - t))s)"
  exit $rc
}
trap cleanup EXIT
trap 'echo "check-fresh: interrupted"; exit 130' INT TERM

# --- the host's Debian mirror (the same packages the host gets), else deb.debian.org -------------
host_mirror() {
  local f u
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    u=$(grep -vE '^\s*#' "$f" | grep -oE '(https?://[^ ]+/debian)/?( |$)' | grep -v security | head -1 | tr -d ' ') || true
    [ -n "$u" ] && { echo "${u%/}"; return; }
  done
  echo http://deb.debian.org/debian
}
MIRROR="${FRESH_MIRROR:-$(host_mirror)}"
SECURITY="${FRESH_SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}"

# a leftover of an interrupted run (its processes, mounts, files) goes first: every run starts fresh
stop_machine; unmount_machine
[ -z "$(mounts_under)" ] || fail "cannot unmount $(mounts_under)"
rm -rf --one-file-system "$R"

echo "check-fresh: $SUITE from $MIRROR in $R (logs: $LOGS)"

base_system() {
  if [ -f "$BASE/.complete" ] && [ -z "${FRESH_REBUILD:-}" ]; then echo "cached base: $BASE"; return; fi
  command -v debootstrap >/dev/null || "$ROOT_DIR/scripts/apt-install.sh" debootstrap
  [ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || "$ROOT_DIR/scripts/apt-install.sh" debian-archive-keyring
  rm -rf --one-file-system "$BASE"
  mkdir -p "$FRESH_DIR/debootstrap-cache"
  debootstrap --variant=minbase --cache-dir="$FRESH_DIR/debootstrap-cache" "$SUITE" "$BASE" "$MIRROR"
  rm -f "$BASE"/var/cache/apt/archives/*.deb
  touch "$BASE/.complete"
}

fresh_machine() {
  cp -a "$BASE" "$R"
  rm -f "$R/.complete" "$R/etc/apt/sources.list"
  cat >"$R/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  cp /etc/resolv.conf "$R/etc/resolv.conf"
  mount -t proc proc "$R/proc"
  mount -t sysfs sysfs "$R/sys"
  mount --rbind /dev "$R/dev"
  mount --make-rslave "$R/dev"
  if [ -z "${FRESH_NO_CACHE:-}" ]; then  # downloaded .deb files only: every run still installs them
    mkdir -p "$FRESH_DIR/apt-archives/partial"
    mount --bind "$FRESH_DIR/apt-archives" "$R/var/cache/apt/archives"
  fi
  mkdir -p "$R/opt/geogrid"
  cp -a "$ROOT_DIR/scripts" "$R/opt/geogrid/"
  # really nothing there: no PostgreSQL package, binary, cluster or sudo
  if inroot dpkg-query -W -f='${Status}\n' postgresql-common 2>/dev/null | grep -q "ok installed"; then
    fail "postgresql-common is already installed"; fi
  [ ! -e "$R/usr/lib/postgresql" ] && [ ! -e "$R/etc/postgresql" ] || fail "PostgreSQL files present"
  ! inroot sh -c 'command -v pg_lsclusters || command -v psql || command -v sudo' || fail "pg tools or sudo present"
  echo "fresh $SUITE: $(inroot dpkg-query -W | wc -l) packages, no PostgreSQL"
}

provision() {  # provision DBNAME [VAR=VALUE ...]: the project's script in the fresh machine; URL -> $FRESH_DIR/url
  local db=$1; shift
  inroot GEOGRID_DB_PASSWORD="$PW" "$@" bash /opt/geogrid/scripts/provision-db.sh "$db" >"$FRESH_DIR/url.out"
  tail -1 "$FRESH_DIR/url.out" > "$FRESH_DIR/url"
  echo "URL: $(cat "$FRESH_DIR/url")"
}
url_port() { sed -E 's#.*:([0-9]+)/[^/]*$#\1#' "$FRESH_DIR/url"; }
cluster_of() { inroot pg_lsclusters -h | awk -v p="$1" '$3 == p {print $1, $2, $4}'; }

tcp_login() {  # psycopg from the host's venv, over TCP with the password; a wrong one must be refused
  "$PY" - "$(cat "$FRESH_DIR/url")" <<'PY'
import sys
import psycopg

url = sys.argv[1].replace("postgresql+psycopg://", "postgresql://")
with psycopg.connect(url, connect_timeout=10) as conn:
    user, port, postgis, d = conn.execute(
        "SELECT current_user, inet_server_port(), postgis_lib_version(),"
        " ST_Distance(ST_GeogFromText('POINT(117.27 31.86)'), ST_GeogFromText('POINT(117.28 31.86)'))"
    ).fetchone()
assert postgis.startswith("3."), postgis
assert 900 < d < 1000, d  # 0.01 degree of longitude at 31.86 N: about 945 m
print(f"TCP login as {user} on port {port}: PostGIS {postgis}, ST_Distance ok ({d:.0f} m)")
try:
    psycopg.connect(url.replace(":fresh-check-pw@", ":wrong-pw@"), connect_timeout=10).close()
except psycopg.OperationalError as exc:
    assert "password authentication failed" in str(exc), exc
    print("wrong password refused: password authentication failed")
else:
    sys.exit("a wrong password was accepted: the cluster trusts TCP logins")
PY
}
stored_password_kind() { su_psql "$(url_port)" -d postgres -c "SELECT left(rolpassword, 3) FROM pg_authid WHERE rolname = 'geogrid'"; }

s_nothing_installed() {
  provision geogrid_fresh
  grep -q "provision: installing Debian packages: postgresql postgresql-contrib" "$LOGS/nothing-installed.log" \
    || fail "PostgreSQL was not installed by provisioning"
  grep -q "provision: installing Debian packages: postgresql-15-postgis-3" "$LOGS/nothing-installed.log" \
    || fail "PostGIS was not installed by provisioning"
  local port; port=$(url_port)
  inroot dpkg-query -W postgresql-15 postgresql-15-postgis-3 postgresql-common
  inroot pg_lsclusters
  [[ "$(cluster_of "$port")" == *online* ]] || fail "no online cluster on port $port"
  [ "$(su_psql "$port" -d geogrid_fresh -c "SELECT extname FROM pg_extension WHERE extname = 'postgis'")" = postgis ] \
    || fail "postgis extension missing"
  [ "$(su_psql "$port" -d postgres -c "SELECT rolcanlogin AND rolpassword IS NOT NULL FROM pg_authid WHERE rolname = 'geogrid'")" = t ] \
    || fail "role geogrid without login password"
}

s_stock_auth() {
  local port hba; port=$(url_port)
  read -r ver name _ <<<"$(cluster_of "$port")"
  hba="$R/etc/postgresql/$ver/$name/pg_hba.conf"
  grep -vE '^\s*(#|$)' "$hba"
  ! grep -vE '^\s*(#|$)' "$hba" | grep -qw trust || fail "pg_hba.conf trusts someone"
  grep -qE '^local\s+all\s+all\s+peer' "$hba" || fail "socket is not peer"
  grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+scram-sha-256' "$hba" || fail "TCP is not scram-sha-256"
  [ "$(stored_password_kind)" = SCR ] || fail "password not stored as SCRAM"
  tcp_login
}

s_db_init() {
  GEOGRID_DATABASE_URL=$(cat "$FRESH_DIR/url") "$GEOGRID" db init
  local head have
  head=$("$PY" -c "from alembic.script import ScriptDirectory; from geogrid.store.migrate import MIGRATIONS; print(ScriptDirectory(str(MIGRATIONS)).get_current_head())")
  have=$(su_psql "$(url_port)" -d geogrid_fresh -c "SELECT version_num FROM alembic_version")
  echo "alembic head $head, database at $have"
  [ -n "$head" ] && [ "$head" = "$have" ] || fail "database not at alembic head"
}

s_cluster_down() {
  local port before; port=$(url_port); before=$(cat "$FRESH_DIR/url")
  read -r ver name _ <<<"$(cluster_of "$port")"
  inroot pg_ctlcluster "$ver" "$name" stop
  [[ "$(cluster_of "$port")" == *down* ]] || fail "cluster did not stop"
  provision geogrid_fresh
  grep -q "starting cluster $ver/$name" "$LOGS/cluster-down.log" || fail "provisioning did not start the cluster"
  [[ "$(cluster_of "$port")" == *online* ]] || fail "cluster not online after provisioning"
  [ "$(cat "$FRESH_DIR/url")" = "$before" ] || fail "URL changed"
  tcp_login
}

s_rerun_idempotent() {
  local before tables; before=$(cat "$FRESH_DIR/url")
  tables=$(su_psql "$(url_port)" -d geogrid_fresh -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
  provision geogrid_fresh
  ! grep -qE "installing|creating|starting" "$LOGS/rerun-idempotent.log" || fail "a re-run installed, created or started something"
  [ "$(cat "$FRESH_DIR/url")" = "$before" ] || fail "URL changed"
  [ "$(su_psql "$(url_port)" -d geogrid_fresh -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")" = "$tables" ] \
    || fail "tables changed"
  su_psql "$(url_port)" -d geogrid_fresh -c "SELECT version_num FROM alembic_version" | grep -q . || fail "migrations lost"
  echo "same URL, $tables tables kept"
  # a port asked for while a cluster exists elsewhere: provisioning keeps that cluster and says so
  provision geogrid_fresh GEOGRID_DB_PORT=$(( $(url_port) + 1000 ))
  [ "$(cat "$FRESH_DIR/url")" = "$before" ] || fail "URL changed with GEOGRID_DB_PORT"
  grep -q "GEOGRID_DB_PORT=.* ignored" "$LOGS/rerun-idempotent.log" || fail "no word about the ignored GEOGRID_DB_PORT"
  tcp_login
}

s_md5_auth() {
  local port; port=$(url_port)
  read -r ver name _ <<<"$(cluster_of "$port")"
  local conf="$R/etc/postgresql/$ver/$name"
  sed -i -E 's/scram-sha-256/md5/' "$conf/pg_hba.conf"
  echo "password_encryption = md5" >>"$conf/postgresql.conf"
  inroot pg_ctlcluster "$ver" "$name" restart
  grep -vE '^\s*(#|$)' "$conf/pg_hba.conf"
  provision geogrid_fresh
  [ "$(stored_password_kind)" = md5 ] || fail "password not stored as md5"
  tcp_login
}

free_port() {
  local p=${FRESH_PORT:-5499}
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || grep -qE "^\S+\s+\S+\s+$p\s" <(inroot pg_lsclusters -h); do
    [ -z "${FRESH_PORT:-}" ] || fail "FRESH_PORT=$p is in use"; p=$((p + 1)); done
  echo "$p"
}
s_named_cluster_port() {
  local port; port=$(free_port)
  provision geogrid_fresh GEOGRID_DB_CLUSTER=geogrid_fresh GEOGRID_DB_PORT="$port"
  [ "$(url_port)" = "$port" ] || fail "URL not on port $port"
  [[ "$(cluster_of "$port")" == *geogrid_fresh*online* ]] || fail "cluster geogrid_fresh not online on $port"
  tcp_login
}

s_non_root_sudo() {
  inroot apt-get install -y -qq sudo >/dev/null
  inroot useradd -m -s /bin/bash dev
  echo "dev ALL=(ALL) NOPASSWD:ALL" >"$R/etc/sudoers.d/dev"; chmod 0440 "$R/etc/sudoers.d/dev"
  inroot runuser -u dev -- env HOME=/home/dev GEOGRID_DB_PASSWORD="$PW" \
    bash /opt/geogrid/scripts/provision-db.sh geogrid_dev >"$FRESH_DIR/url.out"
  tail -1 "$FRESH_DIR/url.out" >"$FRESH_DIR/url"
  echo "URL: $(cat "$FRESH_DIR/url")"
  grep -q '/geogrid_dev$' "$FRESH_DIR/url" || fail "no URL for geogrid_dev"
  tcp_login
}

step base-system base_system
step fresh-machine fresh_machine
step nothing-installed s_nothing_installed
step stock-auth s_stock_auth
step geogrid-db-init s_db_init
step cluster-down s_cluster_down
step rerun-idempotent s_rerun_idempotent
step md5-auth s_md5_auth
step non-root-sudo s_non_root_sudo
step named-cluster-port s_named_cluster_port

t=$SECONDS
stop_machine
if [ -n "$(root_pids)" ]; then RESULTS+=("FAIL  stop (processes left: $(root_pids))"); FAILED=${FAILED:-stop}
else RESULTS+=("PASS  stop: no process left in the fresh machine ($((SECONDS - t))s)"); fi

echo
echo "== check-fresh summary ($SUITE, $MIRROR), total $((SECONDS - T0))s"
printf '%s\n' "${RESULTS[@]}"
if [ -n "$FAILED" ]; then echo "RESULT: FAIL ($FAILED)"; exit 1; fi
echo "RESULT: PASS"
