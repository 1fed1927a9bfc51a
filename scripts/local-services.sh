#!/usr/bin/env bash
# Starts, stops or shows a PostgreSQL 15 and a Redis for local development.
#
#   scripts/local-services.sh start|stop|status
#
# Everything lives under the checkout's .local/ folder:
#   .local/postgres/data       Postgres data (initdb'd once: superuser bidding/bidding, database bidding)
#   .local/postgres/postgres.log
#   .local/redis/              Redis data, redis.log, redis.pid
# Postgres listens on 127.0.0.1:${LOCAL_PG_PORT:-55432}, Redis on 127.0.0.1:${LOCAL_REDIS_PORT:-56379}.
#
# Postgres refuses to run as root: when root, its folder belongs to the `postgres` user and its
# programs run through `runuser -u postgres`. If that user cannot reach the checkout (e.g. it is
# under /root), the Postgres data goes to /var/tmp/bidding-<hash of the checkout path> instead.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
local_dir="$root/.local"
pg_bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
pg_port=${LOCAL_PG_PORT:-55432}
redis_port=${LOCAL_REDIS_PORT:-56379}
pg_user=bidding
pg_password=bidding
pg_db=bidding
wait_seconds=30

redis_dir="$local_dir/redis"
redis_pidfile="$redis_dir/redis.pid"

log() { echo "local-services: $*"; }
die() {
    echo "local-services: $*" >&2
    exit 1
}

# Runs a command as the user that owns the Postgres data: `postgres` when we are root.
as_pg() {
    if ((EUID == 0)); then
        # From / so that a checkout the postgres user cannot enter does not cause warnings.
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Picks the Postgres folder: .local/postgres, or /var/tmp/bidding-<hash> when root and the
# postgres user cannot traverse the checkout path.
pg_base="$local_dir/postgres"
if ((EUID == 0)); then
    id postgres >/dev/null 2>&1 || die "no 'postgres' system user; run scripts/install-deps.sh first"
    if ! runuser -u postgres -- test -x "$root"; then
        pg_base="/var/tmp/bidding-$(printf '%s' "$root" | sha256sum | cut -c1-12)/postgres"
    fi
fi
pg_data="$pg_base/data"
pg_log="$pg_base/postgres.log"

database_url="postgresql://$pg_user:$pg_password@127.0.0.1:$pg_port/$pg_db"
redis_url="redis://127.0.0.1:$redis_port/0"

# Polls a command until it succeeds, at most $wait_seconds.
wait_for() {
    local what=$1
    shift
    local deadline=$((SECONDS + wait_seconds))
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    log "$what is ready"
}

pg_running() { [[ -f $pg_data/PG_VERSION ]] && as_pg "$pg_bin/pg_ctl" status -D "$pg_data" >/dev/null 2>&1; }

redis_pid() {
    [[ -f $redis_pidfile ]] || return 1
    local pid
    pid=$(cat "$redis_pidfile")
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

pg_init() {
    [[ -f $pg_data/PG_VERSION ]] && return 0
    log "initializing Postgres in $pg_data"
    mkdir -p "$pg_base"
    chmod 700 "$pg_base"
    local pwfile="$pg_base/pwfile"
    printf '%s\n' "$pg_password" >"$pwfile"
    if ((EUID == 0)); then chown -R postgres: "$pg_base"; fi
    as_pg "$pg_bin/initdb" -D "$pg_data" -U "$pg_user" --pwfile="$pwfile" \
        --auth-host=scram-sha-256 --auth-local=trust -E UTF8 --locale=C >"$pg_base/initdb.log" 2>&1 ||
        {
            rm -f "$pwfile"
            cat "$pg_base/initdb.log" >&2
            die "initdb failed"
        }
    rm -f "$pwfile"
    # Connection settings live in one file rewritten at every start (the port may change).
    as_pg sh -c "echo \"include_if_exists = 'local-services.conf'\" >>\"\$1/postgresql.conf\"" sh "$pg_data"
}

pg_start() {
    pg_init
    if pg_running; then
        log "Postgres already running ($pg_data)"
    else
        as_pg sh -c 'cat >"$1/local-services.conf"' sh "$pg_data" <<CONF
# Written by scripts/local-services.sh at each start.
listen_addresses = '127.0.0.1'
port = $pg_port
unix_socket_directories = '$pg_data'
CONF
        log "starting Postgres on 127.0.0.1:$pg_port (log: $pg_log)"
        if ! as_pg "$pg_bin/pg_ctl" start -D "$pg_data" -l "$pg_log" -w -t "$wait_seconds" >/dev/null; then
            tail -n 20 "$pg_log" >&2 || true
            die "Postgres did not start"
        fi
    fi
    wait_for "Postgres" as_pg "$pg_bin/pg_isready" -q -h 127.0.0.1 -p "$pg_port" ||
        die "Postgres does not answer on 127.0.0.1:$pg_port after ${wait_seconds}s (log: $pg_log)"
    local psql=(as_pg "$pg_bin/psql" -X -q -h "$pg_data" -p "$pg_port" -U "$pg_user" -d postgres -v ON_ERROR_STOP=1)
    if [[ -z $("${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = '$pg_db'") ]]; then
        log "creating database $pg_db"
        "${psql[@]}" -c "CREATE DATABASE $pg_db"
    fi
}

redis_start() {
    mkdir -p "$redis_dir"
    if redis_pid >/dev/null; then
        log "Redis already running (pid $(redis_pid))"
    else
        log "starting Redis on 127.0.0.1:$redis_port (log: $redis_dir/redis.log)"
        redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$redis_dir" \
            --daemonize yes --pidfile "$redis_pidfile" --logfile "$redis_dir/redis.log" \
            --save '' --appendonly no
    fi
    wait_for "Redis" sh -c '[ "$(redis-cli -h 127.0.0.1 -p "$1" ping)" = PONG ]' sh "$redis_port" ||
        die "Redis does not answer on 127.0.0.1:$redis_port after ${wait_seconds}s (log: $redis_dir/redis.log)"
}

pg_stop() {
    if pg_running; then
        log "stopping Postgres"
        as_pg "$pg_bin/pg_ctl" stop -D "$pg_data" -m fast -w -t "$wait_seconds" >/dev/null
    else
        log "Postgres is not running"
    fi
}

redis_stop() {
    local pid
    if pid=$(redis_pid); then
        log "stopping Redis (pid $pid)"
        kill -TERM "$pid"
        local deadline=$((SECONDS + wait_seconds))
        while kill -0 "$pid" 2>/dev/null; do
            ((SECONDS < deadline)) || die "Redis (pid $pid) did not stop within ${wait_seconds}s"
            sleep 0.1
        done
        rm -f "$redis_pidfile"
    else
        log "Redis is not running"
    fi
}

case ${1:-} in
start)
    mkdir -p "$local_dir"
    chmod 755 "$local_dir" # the postgres user must be able to enter it
    [[ $pg_base == "$local_dir/postgres" ]] ||
        log "the postgres user cannot enter $root: Postgres data goes to $pg_base"
    pg_start
    redis_start
    echo
    echo "DATABASE_URL=$database_url"
    echo "REDIS_URL=$redis_url"
    ;;
stop)
    pg_stop
    redis_stop
    ;;
status)
    if pg_running; then
        echo "postgres: running on 127.0.0.1:$pg_port ($pg_data)"
    else
        echo "postgres: stopped"
    fi
    if pid=$(redis_pid); then
        echo "redis: running on 127.0.0.1:$redis_port (pid $pid)"
    else
        echo "redis: stopped"
    fi
    echo "DATABASE_URL=$database_url"
    echo "REDIS_URL=$redis_url"
    ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
