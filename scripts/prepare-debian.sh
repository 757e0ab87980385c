#!/usr/bin/env bash
# Prepares a Debian 12 machine for `npm ci && npm test` (and .ci/run uses it): the Debian packages
# the tests drive (mosquitto-clients, kcat, libcoap3-bin, docker-compose, kubectl, chromium), Java 17 and Maven for
# the local Kafka, and PostgreSQL (a `test` database, trust auth on loopback) and Redis on their
# default ports. Installs and starts only what is missing, so a prepared machine takes a second.
#
#   scripts/prepare-debian.sh [all|packages|services|check]   (default all; run as root)
#
# check lists what is missing and changes nothing (exit 1 when something is).
set -euo pipefail

MODE=${1:-all}
PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379
export DEBIAN_FRONTEND=noninteractive

say() { echo "prepare-debian: $*"; }
answers() { timeout 2 bash -c "</dev/tcp/$1/$2" 2>/dev/null; }
wait_for() {
  local what=$1 host=$2 port=$3
  for _ in $(seq 1 60); do
    answers "$host" "$port" && return 0
    sleep 0.5
  done
  say "$what still does not answer on $host:$port" >&2
  return 1
}
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
test_db_ready() {
  command -v psql >/dev/null && psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d test -w -tAc 'SELECT 1' >/dev/null 2>&1
}

# Debian packages that are missing; services count only when nothing answers on their port.
missing_packages() {
  # chromium: the console's browser test (test/e2e/console.e2e.test.ts) drives it with playwright-core.
  local wanted=(mosquitto-clients kcat libcoap3-bin docker-compose chromium)
  command -v java >/dev/null || wanted+=(openjdk-17-jre-headless)
  command -v mvn >/dev/null || wanted+=(maven)
  # `kubectl kustomize` renders deploy/kubernetes in test/deploy (Debian's client is 1.20, with
  # kustomize 2.0.3, which the manifests are written for; a newer kubectl on the machine is kept).
  command -v kubectl >/dev/null || wanted+=(kubernetes-client)
  if ! answers "$PG_HOST" "$PG_PORT"; then
    command -v pg_ctlcluster >/dev/null || wanted+=(postgresql)
  fi
  command -v psql >/dev/null || wanted+=(postgresql-client)
  if ! answers "$PG_HOST" "$REDIS_PORT"; then
    command -v redis-server >/dev/null || wanted+=(redis-server)
  fi
  local pkg
  for pkg in "${wanted[@]}"; do installed "$pkg" || echo "$pkg"; done
}

packages() {
  local missing
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} == 0)); then
    say "packages: all present"
    return 0
  fi
  say "installing: ${missing[*]}"
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# The local cluster (Debian's `main` of the newest version): started, loopback trusted, `test` made.
prepare_postgres() {
  if test_db_ready; then
    say "PostgreSQL: database test answers on $PG_HOST:$PG_PORT (trust)"
    return 0
  fi
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [[ -z $version ]]; then
    say "PostgreSQL answers on $PG_HOST:$PG_PORT but not as user postgres to database test, and no local cluster is here to set up: create the database (createdb test) and allow trust on loopback there" >&2
    return 1
  fi
  local conf=/etc/postgresql/$version/main
  if ! grep -q '^# tributary: trust on loopback' "$conf/pg_hba.conf"; then
    say "PostgreSQL $version: trusting loopback connections (test machine)"
    local rules
    rules=$(printf '%s\n' '# tributary: trust on loopback (scripts/prepare-debian.sh; a test machine only)' \
      'host all all 127.0.0.1/32 trust' 'host all all ::1/128 trust')
    printf '%s\n%s\n' "$rules" "$(cat "$conf/pg_hba.conf")" >"$conf/pg_hba.conf"
  fi
  if answers "$PG_HOST" "$PG_PORT"; then
    pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  else
    say "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    wait_for PostgreSQL "$PG_HOST" "$PG_PORT"
  fi
  if ! runuser -u postgres -- psql -p "$PG_PORT" -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    say "creating database test"
    runuser -u postgres -- createdb -p "$PG_PORT" test
  fi
  test_db_ready || {
    say "database test still refuses postgres@$PG_HOST:$PG_PORT" >&2
    return 1
  }
  say "PostgreSQL: database test ready on $PG_HOST:$PG_PORT"
}

prepare_redis() {
  if answers "$PG_HOST" "$REDIS_PORT"; then
    say "Redis answers on $PG_HOST:$REDIS_PORT"
    return 0
  fi
  say "starting Redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/tributary-tests.log
  wait_for Redis "$PG_HOST" "$REDIS_PORT"
}

services() {
  prepare_postgres
  prepare_redis
}

check() {
  local missing problems=0
  mapfile -t missing < <(missing_packages)
  if ((${#missing[@]} > 0)); then
    say "missing packages: ${missing[*]}"
    problems=1
  fi
  test_db_ready || {
    say "missing: PostgreSQL database test with trust on $PG_HOST:$PG_PORT"
    problems=1
  }
  answers "$PG_HOST" "$REDIS_PORT" || {
    say "missing: Redis on $PG_HOST:$REDIS_PORT"
    problems=1
  }
  ((problems == 0)) && say "everything the tests need is here"
  return "$problems"
}

case $MODE in
  all) packages && services ;;
  packages) packages ;;
  services) services ;;
  check) check ;;
  *)
    echo "usage: scripts/prepare-debian.sh [all|packages|services|check]" >&2
    exit 2
    ;;
esac
