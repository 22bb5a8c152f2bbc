# shellcheck shell=bash
# A private, throw-away S3-compatible server (moto in server mode, from tests/requirements.txt) for one test run.
# Sourced by scripts/test and scripts/s3.
#
# s3_start exports PARLEY_TEST_S3_ENDPOINT (http://127.0.0.1:PORT) and PARLEY_TEST_S3_ACCESS_KEY_ID /
# PARLEY_TEST_S3_SECRET_ACCESS_KEY; s3_stop stops the server. moto runs with its IAM checks on
# (INITIAL_NO_AUTH_ACTION_COUNT): the first three requests make a user, its policy and its access key, and every request
# after them must carry a valid AWS Signature Version 4 of that key, or is refused (SignatureDoesNotMatch). Each test
# makes its own bucket. moto keeps everything in memory: nothing is left behind.

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
            INITIAL_NO_AUTH_ACTION_COUNT=3 moto_server -H 127.0.0.1 -p "$port" >"$PARLEY_TEST_S3_LOG" 2>&1 &
            PARLEY_TEST_S3_PID=$!
            local waited=0
            while ((waited < 100)); do
                if ! kill -0 "$PARLEY_TEST_S3_PID" 2>/dev/null; then break; fi
                # A TCP probe only: an HTTP request would use up one of the unchecked requests.
                if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
                    s3_make_key "http://127.0.0.1:$port" || { s3_stop; return 1; }
                    export PARLEY_TEST_S3_ENDPOINT="http://127.0.0.1:$port"
                    echo "s3: moto $(python3 -c 'import moto; print(moto.__version__)' 2>/dev/null) on 127.0.0.1:$port, signatures checked"
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

# Makes moto's IAM user `parley` with every permission and exports its access key (the three unchecked requests).
s3_make_key() {
    local keys
    if ! keys=$(python3 - "$1" <<'PY'
import json, sys
import boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="parley")
iam.put_user_policy(UserName="parley", PolicyName="everything", PolicyDocument=json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
key = iam.create_access_key(UserName="parley")["AccessKey"]
print(key["AccessKeyId"], key["SecretAccessKey"])
PY
    ); then
        echo "s3: could not make moto's access key; its log:" >&2
        tail -n 20 "$PARLEY_TEST_S3_LOG" >&2 2>/dev/null
        return 1
    fi
    export PARLEY_TEST_S3_ACCESS_KEY_ID="${keys%% *}"
    export PARLEY_TEST_S3_SECRET_ACCESS_KEY="${keys#* }"
}

# Stops the server; safe to call more than once, and after a failed start.
s3_stop() {
    if [[ -n "$PARLEY_TEST_S3_PID" ]]; then
        kill "$PARLEY_TEST_S3_PID" 2>/dev/null && wait "$PARLEY_TEST_S3_PID" 2>/dev/null
        PARLEY_TEST_S3_PID=""
    fi
    unset PARLEY_TEST_S3_ENDPOINT PARLEY_TEST_S3_ACCESS_KEY_ID PARLEY_TEST_S3_SECRET_ACCESS_KEY
}
