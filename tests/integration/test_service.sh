#!/usr/bin/env bash
# test_service.sh: running as a service: the systemd unit passes `systemd-analyze verify`,
# READY=1 and watchdog pings reach NOTIFY_SOCKET, SIGHUP reopens the log file, and SIGTERM lets a
# running request finish (health says "draining" meanwhile) before exiting 0.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=${1:-build/asan/moeserve}
MODEL=${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3moe-q8_0.gguf
TMP=$(mktemp -d)
trap 'stop_server; kill "${LISTENER:-0}" 2>/dev/null; rm -rf "$TMP"' EXIT

# --- the unit file, with ExecStart pointed at the built binary (verify checks that it exists)
if command -v systemd-analyze >/dev/null; then
    sed "s|/usr/local/bin/moeserve|$(realpath "$MOESERVE")|" systemd/moeserve.service >"$TMP/moeserve.service"
    systemd-analyze verify "$TMP/moeserve.service" >"$TMP/verify" 2>&1
    check "systemd-analyze verify passes" test $? -eq 0
    check "no unknown keys in the unit" bash -c "! grep -qi 'unknown\|ignoring' '$TMP/verify'"
fi
check "unit is Type=notify with a watchdog" grep -q '^Type=notify' systemd/moeserve.service
check "unit hardening" grep -q '^ProtectSystem=strict' systemd/moeserve.service

# --- READY=1 and WATCHDOG=1 over a datagram socket
/usr/bin/python3 - "$TMP/notify" "$TMP/notes" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(30)
with open(sys.argv[2], "w") as out:
    try:
        while True:
            out.write(s.recv(4096).decode() + "\n"); out.flush()
    except Exception:
        pass
PY
LISTENER=$!
sleep 0.5
NOTIFY_SOCKET="$TMP/notify" WATCHDOG_USEC=1000000 PORT_LOG="$TMP/server.log" start_server "$TMP/log" -m "$MODEL" --slots 2 --ctx-size 2048 \
    --log-file "$TMP/server.log" --drain-timeout 30 || { echo "0 passed, 1 failed"; exit 1; }
URL="http://127.0.0.1:$PORT"
sleep 1.5
check "READY=1 sent" grep -q 'READY=1' "$TMP/notes"
check "watchdog pinged" grep -q 'WATCHDOG=1' "$TMP/notes"

# --- SIGHUP reopens the log file (after logrotate moved it)
mv "$TMP/server.log" "$TMP/server.log.1"
kill -HUP "$SERVER_PID"
sleep 0.3
curl -s -o /dev/null -H 'Content-Type: application/json' "$URL/v1/completions" -d '{"prompt":"Hi","max_tokens":2}'
check "new log file after SIGHUP" grep -q 'completions 200' "$TMP/server.log"

# --- SIGTERM drains: the running request completes, new ones are refused, exit 0
# ignore_eos keeps it generating for all 1500 tokens: seconds even on a fast machine
curl -s -o "$TMP/long" -H 'Content-Type: application/json' "$URL/v1/completions" \
    -d '{"prompt":"Once upon a time","max_tokens":1500,"temperature":0,"ignore_eos":true}' &
REQ=$!
sleep 0.3
kill -TERM "$SERVER_PID"
sleep 0.2
check_eq "health says draining" draining "$(curl -s "$URL/health" | json 'j.status')"
wait "$REQ"
check_eq "running request finished" 1500 "$(json 'j.usage.completion_tokens' <"$TMP/long")"
wait "$SERVER_PID"
check_eq "exit 0 after drain" 0 "$?"
SERVER_PID=""
check "STOPPING=1 sent" grep -q 'STOPPING=1' "$TMP/notes"
finish
