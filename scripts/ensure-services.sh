#!/usr/bin/env bash
# Makes MySQL/MariaDB and Redis reachable for the stack and its tests, and creates the project's database user.
# Uses what answers already; else infra/compose.yaml where a Docker engine runs; else installs Debian packages (as root)
# and starts the servers by hand (Debian's packages do not start services in containers). Idempotent; kills nothing.
set -euo pipefail

DB_HOST=${DB_HOST:-127.0.0.1}
DB_PORT=${DB_PORT:-3306}
REDIS_HOST=${REDIS_HOST:-127.0.0.1}
REDIS_PORT=${REDIS_PORT:-6379}
# The project's database user (overridable so that a test can check the grants on a user of its own).
DB_USER=${LIVESTREAM_DB_USER:-livestream}
DB_PASS=${LIVESTREAM_DB_PASS:-livestream}
ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

say() { printf '[services] %s\n' "$*"; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
wait_port() {
  local host=$1 port=$2 what=$3
  for _ in $(seq 1 60); do
    port_open "$host" "$port" && return 0
    sleep 1
  done
  say "$what did not come up on $host:$port"
  return 1
}
have_docker() { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; }
as_root() { [ "$(id -u)" -eq 0 ]; }
apt_install() {
  as_root || { say "need root to install $*; install them yourself"; return 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null 2>&1 || {
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@" >/dev/null
  }
}

start_mariadb() {
  if have_docker; then
    say "starting MariaDB with docker compose"
    docker compose -f "$ROOT_DIR/infra/compose.yaml" up -d mariadb
  else
    command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || { say "installing mariadb-server"; apt_install mariadb-server; }
    as_root || { say "MariaDB is installed but not running; start it (needs root here)"; return 1; }
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
    say "starting mariadbd"
    if command -v start-stop-daemon >/dev/null 2>&1; then
      start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql --bind-address="$DB_HOST" --port="$DB_PORT"
    else
      nohup /usr/sbin/mariadbd --user=mysql --bind-address="$DB_HOST" --port="$DB_PORT" >/dev/null 2>&1 &
    fi
  fi
  wait_port "$DB_HOST" "$DB_PORT" MariaDB
}

start_redis() {
  if have_docker; then
    say "starting Redis with docker compose"
    docker compose -f "$ROOT_DIR/infra/compose.yaml" up -d redis
  else
    command -v redis-server >/dev/null 2>&1 || { say "installing redis-server"; apt_install redis-server; }
    say "starting redis-server"
    redis-server --bind "$REDIS_HOST" --port "$REDIS_PORT" --save '' --appendonly no --daemonize yes >/dev/null
  fi
  wait_port "$REDIS_HOST" "$REDIS_PORT" Redis
}

# Runs SQL as an administrator: root over the unix socket (Debian's default), else root over TCP with no password.
admin_sql() {
  if as_root && mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1; then
    mariadb -uroot -e "$1"
  elif mariadb -uroot -h"$DB_HOST" -P"$DB_PORT" -e 'SELECT 1' >/dev/null 2>&1; then
    mariadb -uroot -h"$DB_HOST" -P"$DB_PORT" -e "$1"
  else
    return 1
  fi
}

# The project's user reaches the project's databases only: `livestream` and the tests' `ls_*` (testing.ts creates and
# drops one per test file), from this machine only (localhost, 127.0.0.1). Re-run on every start, so an older install's
# ALL ON *.* from any host is narrowed too.
grants_are_narrow() {
  local host grants
  [ "$(admin_sql "SELECT GROUP_CONCAT(host ORDER BY host) FROM mysql.user WHERE user = '$DB_USER'" | tail -n 1)" = '127.0.0.1,localhost' ] || return 1
  for host in localhost 127.0.0.1; do
    grants=$(admin_sql "SHOW GRANTS FOR '$DB_USER'@'$host'" | grep '^GRANT') || return 1
    [ "$(printf '%s\n' "$grants" | wc -l)" -eq 3 ] || return 1
    printf '%s\n' "$grants" | grep -q '^GRANT USAGE ON \*\.\* ' || return 1
    printf '%s\n' "$grants" | grep -q '^GRANT ALL PRIVILEGES ON `livestream`\.\* ' || return 1
    printf '%s\n' "$grants" | grep -q '^GRANT ALL PRIVILEGES ON `ls\\\+_%`\.\* ' || return 1
  done
}

grant_db_user() {
  local who
  # Already as wanted: nothing to do (a REVOKE + GRANT would leave running tests without rights for a moment).
  grants_are_narrow && return 0
  admin_sql "CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
    CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
    DROP USER IF EXISTS '$DB_USER'@'%';" || return 1
  for who in "'$DB_USER'@'localhost'" "'$DB_USER'@'127.0.0.1'"; do
    admin_sql "REVOKE ALL PRIVILEGES, GRANT OPTION FROM $who;
      GRANT ALL PRIVILEGES ON \`livestream\`.* TO $who;
      GRANT ALL PRIVILEGES ON \`ls\\_%\`.* TO $who;" || return 1
  done
  admin_sql 'FLUSH PRIVILEGES;'
}

ensure_db_user() {
  command -v mariadb >/dev/null 2>&1 || apt_install mariadb-client
  if grant_db_user; then
    say "database user $DB_USER: the livestream and ls_* databases, from this machine"
  elif mariadb -u"$DB_USER" -p"$DB_PASS" -h"$DB_HOST" -P"$DB_PORT" -e 'SELECT 1' >/dev/null 2>&1; then
    say "database user $DB_USER can log in (no administrator access here to check its grants)"
  else
    say "cannot log in as an administrator to create $DB_USER"
    return 1
  fi
  mariadb -u"$DB_USER" -p"$DB_PASS" -h"$DB_HOST" -P"$DB_PORT" \
    -e 'CREATE DATABASE IF NOT EXISTS livestream CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci'
}

if port_open "$DB_HOST" "$DB_PORT"; then say "MariaDB answers on $DB_HOST:$DB_PORT"; else start_mariadb; fi
if port_open "$REDIS_HOST" "$REDIS_PORT"; then say "Redis answers on $REDIS_HOST:$REDIS_PORT"; else start_redis; fi
ensure_db_user
say "ready"
