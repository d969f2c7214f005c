# lib.sh: helpers for the integration tests: checks with a pass/fail count, and starting and
# stopping a real moeserve on a free loopback port. Sourced by tests/integration/test_*.sh.

PASS=0
FAIL=0

check() { # check "description" command...
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        PASS=$((PASS + 1))
    else
        FAIL=$((FAIL + 1))
        echo "FAIL: $what" >&2
    fi
}

check_eq() { # check_eq "description" expected actual
    if [ "$2" = "$3" ]; then
        PASS=$((PASS + 1))
    else
        FAIL=$((FAIL + 1))
        echo "FAIL: $1: expected [$2], got [$3]" >&2
    fi
}

finish() {
    echo "$PASS passed, $FAIL failed"
    [ "$FAIL" -eq 0 ]
}

# start_server LOGFILE ARGS...: starts moeserve serve on port 0, sets SERVER_PID and PORT, waits
# until /health is 200 (or fails after 60 s). PORT_LOG names the log to read when --log-file is used.
start_server() {
    local log=$1
    shift
    "$MOESERVE" serve --port 0 "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    PORT=""
    for _ in $(seq 1 600); do
        PORT=$(sed -n 's|.*listening on http://[^:]*:\([0-9]*\).*|\1|p' "${PORT_LOG:-$log}" 2>/dev/null | head -n 1)
        if [ -n "$PORT" ] && curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    echo "server did not become ready; log:" >&2
    cat "$log" >&2
    return 1
}

stop_server() {
    [ -n "${SERVER_PID:-}" ] || return 0
    kill -TERM "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_RC=$?
    SERVER_PID=""
}

json() { # json EXPR: evaluates a JavaScript expression on the JSON read from stdin as `j`
    node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{const j=JSON.parse(s);const v=($1);console.log(typeof v==='string'?v:JSON.stringify(v));})"
}
