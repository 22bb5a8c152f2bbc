# shellcheck shell=bash
# A private, throw-away S3-compatible server (moto in server mode, from tests/requirements.txt) for one test run.
# Sourced by scripts/test and scripts/s3.
#
# s3_start exports PARLEY_TEST_S3_ENDPOINT (http://127.0.0.1:PORT; any credentials are accepted, each test makes its
# own bucket); s3_stop stops the server. moto keeps everything in memory: nothing is left behind.

PARLEY_TEST_S3_PID=""
PARLEY_TEST_S3_LOG=""

s3_start() {
    if ! command -v moto_server >/dev/null 2>&1; then
        echo "s3: moto_server not found (python3 -m pip install 'moto[server]', as scripts/test does)" >&2
        return 1
    fi
    PARLEY_TEST_S3_LOG=$(mktemp /tmp/parley-s3.XXXXXX.log) || return 1
    local port="${PARLEY_TEST_S3_PORT:-59330}" tries=0
    while ((tries < 40)); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            moto_server -H 127.0.0.1 -p "$port" >"$PARLEY_TEST_S3_LOG" 2>&1 &
            PARLEY_TEST_S3_PID=$!
            local waited=0
            while ((waited < 100)); do
                if ! kill -0 "$PARLEY_TEST_S3_PID" 2>/dev/null; then break; fi
                if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                    export PARLEY_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
                    echo "s3: moto $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null) on 127.0.0.1:$port"
                    return 0
                fi
                sleep 0.1
                waited=$((waited + 1))
            done
            s3_stop
        fi
        port=$((port + 1))
        tries=$((tries + 1))
    done
    echo "s3: could not start moto_server on any port from ${PARLEY_TEST_S3_PORT:-59330}; its log:" >&2
    tail -n 20 "$PARLEY_TEST_S3_LOG" >&2 2>/dev/null
    return 1
}

# Stops the server; safe to call more than once, and after a failed start.
s3_stop() {
    if [[ -n "$PARLEY_TEST_S3_PID" ]]; then
        kill "$PARLEY_TEST_S3_PID" 2>/dev/null && wait "$PARLEY_TEST_S3_PID" 2>/dev/null
        PARLEY_TEST_S3_PID=""
    fi
    unset PARLEY_TEST_S3_ENDPOINT
}
