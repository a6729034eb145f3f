#!/usr/bin/env bash
# A throw-away PostgreSQL server for the PostgreSQL backend (issue 13):
# its own data folder, its own port, listening on 127.0.0.1 only, stopped
# by the pid it wrote. Installs Debian's `postgresql` when it is missing
# (as root). Nothing here touches a system PostgreSQL.
#
#   scripts/postgres.sh start    # starts it (once) and prints its URL
#   scripts/postgres.sh url      # the URL of the running server
#   scripts/postgres.sh status   # running or not
#   scripts/postgres.sh stop     # stops it; the data folder stays
#   scripts/postgres.sh wipe     # stops it and deletes the data folder
#
# DDSAS_PG_DIR (default .services/postgres) and DDSAS_PG_PORT (default
# 55432) move it.
set -euo pipefail
cd "$(dirname "$0")/.."

# The server runs as `postgres`, which must reach its folder: a clone
# under a private home (/root is 0700) gets one under /var/tmp instead.
default_base() {
    if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
        echo "/var/tmp/ddsas-postgres-$(printf %s "$PWD" | md5sum | cut -c1-8)"
    else
        echo "$PWD/.services/postgres"
    fi
}
BASE="${DDSAS_PG_DIR:-$(default_base)}"
PORT="${DDSAS_PG_PORT:-55432}"
DATA="$BASE/data"
SOCK="$BASE/socket"
LOG="$BASE/server.log"
DB=ddsas
URL="postgres://postgres@127.0.0.1:$PORT/$DB"

# The newest installed server binaries (Debian keeps them per version).
bin_dir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

install_if_missing() {
    if [ -n "$(bin_dir)" ]; then return; fi
    if [ "$(id -u)" != 0 ]; then
        echo "error: PostgreSQL is not installed and this is not root: run \`sudo apt-get install -y postgresql\` and try again" >&2
        exit 1
    fi
    echo ">> installing postgresql (apt-get; once)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
}

# Runs a server command as the owner of the data folder: the server
# refuses to run as root, so as root it runs as `postgres`.
as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

pid_of_server() {
    [ -f "$DATA/postmaster.pid" ] && head -n 1 "$DATA/postmaster.pid"
}

running() {
    local pid
    pid="$(pid_of_server 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

start() {
    install_if_missing
    local bin
    bin="$(bin_dir)"
    if running; then
        echo "$URL"
        return
    fi
    mkdir -p "$BASE" "$SOCK"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$BASE" "$SOCK"; fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        as_owner "$bin/initdb" -D "$DATA" -A trust -U postgres >"$BASE/initdb.log" 2>&1 || {
            echo "error: initdb failed; see $BASE/initdb.log" >&2
            exit 1
        }
    fi
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
        -o "-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 -c max_connections=600" start >/dev/null || {
        echo "error: the server did not start on port $PORT; see $LOG (another server on that port? set DDSAS_PG_PORT)" >&2
        exit 1
    }
    if ! psql -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" postgres | grep -q 1; then
        psql -h 127.0.0.1 -p "$PORT" -U postgres -qc "CREATE DATABASE $DB" postgres
    fi
    echo "$URL"
}

stop() {
    local pid
    if ! running; then
        echo "not running"
        return
    fi
    pid="$(pid_of_server)"
    # SIGINT is PostgreSQL's "fast shutdown": roll back, close, exit.
    kill -INT "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { echo "stopped (pid $pid)"; return; }
        sleep 0.1
    done
    echo "error: the server (pid $pid) did not stop within 10 s; see $LOG" >&2
    exit 1
}

case "${1:-}" in
    start) start ;;
    url) running && echo "$URL" || { echo "not running (scripts/postgres.sh start)" >&2; exit 1; } ;;
    status) running && echo "running (pid $(pid_of_server)) at $URL" || echo "not running" ;;
    stop) stop ;;
    wipe) stop; rm -rf "$BASE"; echo "wiped $BASE" ;;
    *)
        sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
