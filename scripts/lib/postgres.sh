# shellcheck shell=bash
# A private, throw-away PostgreSQL cluster for one test run. Sourced by scripts/test and scripts/pg.
#
# pg_start exports PARLEY_TEST_POSTGRES_URL (role `parley`, password `parley`, SUPERUSER, database `parley`)
# and PARLEY_TEST_PG_DIR; pg_stop stops the cluster and deletes its files. Root cannot run initdb, so the
# server runs as the `postgres` system user, listening on 127.0.0.1 only, its unix socket in the temp dir.

PARLEY_TEST_PG_DIR=""
PARLEY_TEST_PG_BIN=""

# The newest installed server's bin folder (Debian installs each major version side by side).
pg_bin_dir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -z "$dir" || ! -x "$dir/initdb" ]]; then
        echo "pg: no PostgreSQL server found under /usr/lib/postgresql (apt-get install postgresql)" >&2
        return 1
    fi
    printf '%s\n' "$dir"
}

# True when something already listens on 127.0.0.1:$1.
pg_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Runs a PostgreSQL program as the postgres user, from a folder that user can read.
pg_as_postgres() {
    (cd "$PARLEY_TEST_PG_DIR" && runuser -u postgres -- "$@")
}

pg_start() {
    PARLEY_TEST_PG_BIN=$(pg_bin_dir) || return 1
    if ! id postgres >/dev/null 2>&1; then
        echo "pg: there is no 'postgres' system user (apt-get install postgresql creates it)" >&2
        return 1
    fi
    # /tmp keeps the unix socket path short (the limit is about 107 bytes).
    PARLEY_TEST_PG_DIR=$(mktemp -d /tmp/parley-pg.XXXXXX) || return 1
    chown postgres:postgres "$PARLEY_TEST_PG_DIR"
    chmod 700 "$PARLEY_TEST_PG_DIR"
    local data="$PARLEY_TEST_PG_DIR/data"

    if ! pg_as_postgres "$PARLEY_TEST_PG_BIN/initdb" -D "$data" -U postgres -E UTF8 --locale=C \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$PARLEY_TEST_PG_DIR/initdb.log" 2>&1; then
        echo "pg: initdb failed:" >&2
        cat "$PARLEY_TEST_PG_DIR/initdb.log" >&2
        return 1
    fi
    # Split services, per-test databases and connection pools add up: leave headroom.
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PARLEY_TEST_PG_DIR'
max_connections = 300
CONF

    local port="${PARLEY_TEST_PG_PORT:-54329}" tries=0 started=""
    while ((tries < 40)); do
        if ! pg_port_busy "$port" &&
            pg_as_postgres "$PARLEY_TEST_PG_BIN/pg_ctl" -D "$data" -l "$PARLEY_TEST_PG_DIR/server.log" \
                -o "-p $port" -w -t 60 start >/dev/null 2>&1; then
            started=1
            break
        fi
        port=$((port + 1))
        tries=$((tries + 1))
    done
    if [[ -z "$started" ]]; then
        echo "pg: could not start PostgreSQL on any port from ${PARLEY_TEST_PG_PORT:-54329}; server log:" >&2
        tail -n 30 "$PARLEY_TEST_PG_DIR/server.log" >&2 2>/dev/null
        return 1
    fi
    PARLEY_TEST_PG_PORT_IN_USE=$port

    if ! "$PARLEY_TEST_PG_BIN/psql" -h "$PARLEY_TEST_PG_DIR" -p "$port" -U postgres -d postgres -X -q \
        -v ON_ERROR_STOP=1 >"$PARLEY_TEST_PG_DIR/setup.log" 2>&1 <<'SQL'; then
CREATE ROLE parley LOGIN SUPERUSER PASSWORD 'parley';
CREATE DATABASE parley OWNER parley;
SQL
        echo "pg: creating the parley role and database failed:" >&2
        cat "$PARLEY_TEST_PG_DIR/setup.log" >&2
        return 1
    fi
    export PARLEY_TEST_PG_DIR
    # The cluster offers no TLS, so clients are told not to ask: with the default (prefer), every client made
    # loads the system's CA bundle for a TLS context it never uses (a sixth of the Swift tests' CPU).
    export PARLEY_TEST_POSTGRES_URL="postgres://parley:parley@127.0.0.1:$port/parley?sslmode=disable"
    echo "pg: PostgreSQL $("$PARLEY_TEST_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $PARLEY_TEST_PG_DIR)"
}

# Stops the cluster and deletes its files; safe to call more than once, and after a failed start.
pg_stop() {
    local dir="$PARLEY_TEST_PG_DIR"
    [[ -n "$dir" && -d "$dir" ]] || return 0
    if [[ -f "$dir/data/postmaster.pid" ]]; then
        pg_as_postgres "$PARLEY_TEST_PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
            pg_as_postgres "$PARLEY_TEST_PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w -t 10 stop >/dev/null 2>&1
    fi
    rm -rf -- "$dir"
    PARLEY_TEST_PG_DIR=""
    unset PARLEY_TEST_POSTGRES_URL
}
