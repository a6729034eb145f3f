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
#
# With --tls (or DDSAS_PG_TLS=1), the same for a second server that, like
# many shared and managed ones, accepts only encrypted connections with a
# password: `ssl = on`, only `hostssl` lines in pg_hba.conf, scram-sha-256,
# and a certificate signed by a throw-away CA made with openssl (its key is
# deleted once the certificate is signed). The certificate names only
# 127.0.0.1, so `localhost` fails host name verification. Its URL carries a
# random password and sslmode=verify-full with sslrootcert= the CA:
#
#   scripts/postgres.sh start --tls   # port 55433, folder .services/postgres-tls
#   scripts/postgres.sh stop --tls
#
# DDSAS_PG_TLS_DIR and DDSAS_PG_TLS_PORT move that one.
set -euo pipefail
cd "$(dirname "$0")/.."

TLS="${DDSAS_PG_TLS:-}"
ACTION=""
for arg in "$@"; do
    case "$arg" in
        --tls) TLS=1 ;;
        *) ACTION="${ACTION:-$arg}" ;;
    esac
done
[ "$TLS" = 1 ] || TLS=""

# The server runs as `postgres`, which must reach its folder: a clone
# under a private home (/root is 0700) gets one under /var/tmp instead.
default_base() {
    local name="postgres${TLS:+-tls}"
    if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$PWD" 2>/dev/null; then
        echo "/var/tmp/ddsas-$name-$(printf %s "$PWD" | md5sum | cut -c1-8)"
    else
        echo "$PWD/.services/$name"
    fi
}
if [ -n "$TLS" ]; then
    BASE="${DDSAS_PG_TLS_DIR:-$(default_base)}"
    PORT="${DDSAS_PG_TLS_PORT:-55433}"
else
    BASE="${DDSAS_PG_DIR:-$(default_base)}"
    PORT="${DDSAS_PG_PORT:-55432}"
fi
DATA="$BASE/data"
SOCK="$BASE/socket"
LOG="$BASE/server.log"
CERTS="$BASE/tls"
PASSWORD_FILE="$BASE/password"
DB=ddsas

url() {
    if [ -n "$TLS" ]; then
        echo "postgres://postgres:$(cat "$PASSWORD_FILE")@127.0.0.1:$PORT/$DB?sslmode=verify-full&sslrootcert=$CERTS/ca.crt"
    else
        echo "postgres://postgres@127.0.0.1:$PORT/$DB"
    fi
}

# The newest installed server binaries (Debian keeps them per version).
bin_dir() {
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

install_if_missing() {
    local missing=()
    [ -n "$(bin_dir)" ] || missing+=(postgresql)
    if [ -n "$TLS" ] && ! command -v openssl >/dev/null; then missing+=(openssl); fi
    [ "${#missing[@]}" = 0 ] && return
    if [ "$(id -u)" != 0 ]; then
        echo "error: ${missing[*]} not installed and this is not root: run \`sudo apt-get install -y ${missing[*]}\` and try again" >&2
        exit 1
    fi
    echo ">> installing ${missing[*]} (apt-get; once)" >&2
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
}

# The throw-away CA and the server's certificate (for IP 127.0.0.1 only),
# its key readable by the server alone; the CA's key is deleted at once.
make_certificates() {
    mkdir -p "$CERTS"
    local ext="$CERTS/server.ext"
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$CERTS/ca.key" -out "$CERTS/ca.crt" -days 3650 -subj "/CN=ddsas throw-away test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
        -keyout "$CERTS/server.key" -out "$CERTS/server.csr" -subj "/CN=127.0.0.1" 2>/dev/null
    printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
        "extendedKeyUsage=serverAuth" "subjectAltName=IP:127.0.0.1" >"$ext"
    openssl x509 -req -in "$CERTS/server.csr" -CA "$CERTS/ca.crt" -CAkey "$CERTS/ca.key" \
        -set_serial "0x$(openssl rand -hex 8)" -days 3650 -extfile "$ext" -out "$CERTS/server.crt" 2>/dev/null
    rm -f "$CERTS/ca.key" "$CERTS/server.csr" "$ext"
    chmod 600 "$CERTS/server.key"
    chmod 644 "$CERTS/ca.crt" "$CERTS/server.crt"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$CERTS/server.key" "$CERTS/server.crt"; fi
}

# A fresh TLS cluster: a random password for `postgres` (in a file only
# the owner reads), scram-sha-256, and pg_hba.conf with hostssl lines only.
init_tls_cluster() {
    local bin=$1
    make_certificates
    (umask 077 && openssl rand -hex 16 >"$PASSWORD_FILE")
    if [ "$(id -u)" = 0 ]; then chown postgres: "$PASSWORD_FILE"; fi
    as_owner "$bin/initdb" -D "$DATA" -U postgres -A scram-sha-256 --pwfile="$PASSWORD_FILE" >"$BASE/initdb.log" 2>&1 || {
        echo "error: initdb failed; see $BASE/initdb.log" >&2
        exit 1
    }
    printf '%s\n' "# Encrypted connections with a password only (scripts/postgres.sh --tls)." \
        "hostssl all all 127.0.0.1/32 scram-sha-256" | as_owner tee "$DATA/pg_hba.conf" >/dev/null
}

init_cluster() {
    local bin=$1
    if [ -n "$TLS" ]; then
        init_tls_cluster "$bin"
        return
    fi
    as_owner "$bin/initdb" -D "$DATA" -A trust -U postgres >"$BASE/initdb.log" 2>&1 || {
        echo "error: initdb failed; see $BASE/initdb.log" >&2
        exit 1
    }
}

# psql on the server, over TLS with the password from the environment
# (never on a command line) in TLS mode.
server_psql() {
    if [ -n "$TLS" ]; then
        PGPASSWORD="$(cat "$PASSWORD_FILE")" PGSSLMODE=verify-full PGSSLROOTCERT="$CERTS/ca.crt" \
            psql -h 127.0.0.1 -p "$PORT" -U postgres "$@"
    else
        psql -h 127.0.0.1 -p "$PORT" -U postgres "$@"
    fi
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
        url
        return
    fi
    mkdir -p "$BASE" "$SOCK"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$BASE" "$SOCK"; fi
    if [ ! -f "$DATA/PG_VERSION" ]; then
        init_cluster "$bin"
    fi
    local options="-p $PORT -k $SOCK -c listen_addresses=127.0.0.1 -c max_connections=600"
    if [ -n "$TLS" ]; then
        options="$options -c ssl=on -c ssl_cert_file=$CERTS/server.crt -c ssl_key_file=$CERTS/server.key"
    fi
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 -o "$options" start >/dev/null || {
        echo "error: the server did not start on port $PORT; see $LOG (another server on that port? set DDSAS_PG_${TLS:+TLS_}PORT)" >&2
        exit 1
    }
    if ! server_psql -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" postgres | grep -q 1; then
        server_psql -qc "CREATE DATABASE $DB" postgres
    fi
    url
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

case "$ACTION" in
    start) start ;;
    url) running && url || { echo "not running (scripts/postgres.sh start${TLS:+ --tls})" >&2; exit 1; } ;;
    status) running && echo "running (pid $(pid_of_server)) at $(url | sed 's/:[^:@/]*@/:***@/')" || echo "not running" ;;
    stop) stop ;;
    wipe) stop; rm -rf "$BASE"; echo "wiped $BASE" ;;
    *)
        sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
