#!/usr/bin/env bash
# Make sure the services Postwire's tests need are up on loopback:
#   PostgreSQL 127.0.0.1:5432 (user postgres, no password, database postgres),
#   Redis 127.0.0.1:6379, RabbitMQ 127.0.0.1:5672.
# Idempotent: a service that already listens on its port is left alone; otherwise
# it is installed from Debian packages if missing, started and waited for (~60 s max).
# --with-postfix also installs Postfix's smtp-sink/smtp-source (for benchmarks).
# Runs as root. Prints one line per service saying what it did.
set -euo pipefail

WITH_POSTFIX=0
for arg in "$@"; do
  case "$arg" in
    --with-postfix) WITH_POSTFIX=1 ;;
    *) echo "usage: $0 [--with-postfix]" >&2; exit 2 ;;
  esac
done

die() { echo "ensure-services: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "must run as root"

WAIT_SECONDS=60

# True if something accepts TCP connections on 127.0.0.1:$1.
listening() { timeout 2 bash -c ": </dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# wait_until "what" cmd...: retry cmd every second until it succeeds or time is up.
wait_until() {
  local what=$1; shift
  local deadline=$((SECONDS + WAIT_SECONDS))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || die "$what not ready after ${WAIT_SECONDS}s"
    sleep 1
  done
}

APT_UPDATED=0
apt_install() {
  if [ "$APT_UPDATED" -eq 0 ]; then
    apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@" </dev/null >/dev/null
}

ensure_postgres() {
  if listening 5432; then
    check_postgres
    echo "postgresql: already listening on 127.0.0.1:5432, left alone"
    return
  fi
  local how="started" fresh=0
  if ! compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null; then
    compgen -G "/etc/postgresql/*/main/pg_hba.conf" >/dev/null || fresh=1
    apt_install postgresql  # creates and may start cluster <ver>/main
    how="installed and started"
  fi
  local ver  # newest installed server version
  ver=$(ls -d /usr/lib/postgresql/*/bin/postgres | sort -V | tail -n 1 | cut -d/ -f5)
  local conf=/etc/postgresql/$ver/main
  if [ ! -f "$conf/postgresql.conf" ]; then
    pg_createcluster -p 5432 "$ver" main >/dev/null
    fresh=1
  fi
  # Debian's default listen_addresses is 'localhost' (loopback only). On a fresh
  # cluster, trust TCP from loopback so tests connect as postgres without a password.
  if [ "$fresh" -eq 1 ]; then
    sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$conf/pg_hba.conf"
    how="$how, pg_hba.conf: trust on loopback"
  fi
  if listening 5432; then  # started by the package itself: pick up pg_hba.conf
    pg_ctlcluster --skip-systemctl-redirect "$ver" main reload
  else
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start
  fi
  wait_until "PostgreSQL (log: /var/log/postgresql/)" pg_isready -q -h 127.0.0.1 -p 5432
  check_postgres
  echo "postgresql: $how (cluster $ver/main)"
}

check_postgres() {
  command -v psql >/dev/null || return 0
  psql -h 127.0.0.1 -p 5432 -U postgres -d postgres -w -Atqc 'select 1' >/dev/null 2>&1 \
    || die "PostgreSQL on 127.0.0.1:5432 does not let user postgres into database postgres without a password"
}

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = PONG ]; }

ensure_redis() {
  if listening 6379; then
    echo "redis: already listening on 127.0.0.1:6379, left alone"
    return
  fi
  local how="started"
  if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
    apt_install redis-server
    how="installed and started"
  fi
  if ! listening 6379; then  # the package may have started its own already
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
      --dir /var/lib/redis --logfile /var/log/redis/postwire.log
  fi
  wait_until "Redis (log: /var/log/redis/postwire.log)" redis_ping
  echo "redis: $how"
}

ensure_rabbitmq() {
  if listening 5672; then
    echo "rabbitmq: already listening on 127.0.0.1:5672, left alone"
    return
  fi
  local how="started"
  # Loopback only and independent of the hostname; written before any install so
  # that a start by the package itself uses it too. An existing file is kept.
  if [ ! -f /etc/rabbitmq/rabbitmq-env.conf ]; then
    mkdir -p /etc/rabbitmq
    printf '%s\n' 'NODENAME=rabbit@localhost' 'NODE_IP_ADDRESS=127.0.0.1' \
      'export ERL_EPMD_ADDRESS=127.0.0.1' \
      'export ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"' >/etc/rabbitmq/rabbitmq-env.conf
    how="$how (wrote /etc/rabbitmq/rabbitmq-env.conf)"
  fi
  if ! command -v rabbitmq-server >/dev/null || ! command -v rabbitmqctl >/dev/null; then
    apt_install rabbitmq-server
    how="installed and ${how}"
  fi
  if ! listening 5672; then
    rabbitmq-server -detached
  fi
  # await_startup exits 69 at once until the node has registered with epmd: retry.
  wait_until "RabbitMQ (logs: /var/log/rabbitmq/)" timeout 20 rabbitmqctl -q await_startup
  wait_until "RabbitMQ port 5672" listening 5672
  echo "rabbitmq: $how"
}

ensure_postfix() {
  if [ -x /usr/sbin/smtp-sink ] && [ -x /usr/sbin/smtp-source ]; then
    echo "postfix: smtp-sink/smtp-source already installed"
    return
  fi
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt_install postfix
  echo "postfix: installed (smtp-sink, smtp-source in /usr/sbin; no mail server configured)"
}

ensure_postgres
ensure_redis
ensure_rabbitmq
if [ "$WITH_POSTFIX" -eq 1 ]; then ensure_postfix; fi
