#!/usr/bin/env bash
# test_faults.sh: the scheduler through the real server: greedy text is the same alone and beside
# seven other requests; clients that leave mid-prompt, mid-stream or while queued free their slot;
# a flood past the queue gets 503 with Retry-After; the server stays healthy throughout.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=${1:-build/asan/moeserve}
MODEL=${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3moe-q8_0.gguf
TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT
start_server "$TMP/log" -m "$MODEL" --slots 8 --ctx-size 8192 --queue-size 4 || { echo "0 passed, 1 failed"; exit 1; }
URL="http://127.0.0.1:$PORT"
complete() { # complete N PROMPT OUTFILE
    curl -s -H 'Content-Type: application/json' "$URL/v1/completions" \
        -d "{\"prompt\":\"$2\",\"max_tokens\":$1,\"temperature\":0}" | json 'j.choices[0].text' >"$3"
}

# --- results do not depend on what else is running
for i in $(seq 1 8); do complete 24 "Story number $i begins" "$TMP/alone$i"; done
for i in $(seq 1 8); do complete 24 "Story number $i begins" "$TMP/together$i" & done
wait_all() { for p in $(jobs -p); do [ "$p" != "$SERVER_PID" ] && wait "$p"; done; }
wait_all
same=0
for i in $(seq 1 8); do cmp -s "$TMP/alone$i" "$TMP/together$i" && same=$((same + 1)); done
check_eq "greedy text identical alone and beside seven others" 8 "$same"

metric() { curl -s "$URL/metrics" | sed -n "s/^$1{[^}]*} //p"; }
settle() { for _ in $(seq 1 150); do [ "$(metric moeserve_slots_busy)" = 0 ] && return 0; sleep 0.1; done; return 1; }

# --- a client that leaves during a long prompt
long=$(printf 'word %.0s' $(seq 1 1500))
timeout 0.3 curl -s -N -H 'Content-Type: application/json' "$URL/v1/completions" \
    -d "{\"prompt\":\"$long\",\"max_tokens\":500,\"stream\":true}" >/dev/null 2>&1
check "slot freed after a disconnect mid-prompt" settle
# --- and one that leaves mid-stream
timeout 0.5 curl -s -N -H 'Content-Type: application/json' "$URL/v1/completions" \
    -d '{"prompt":"Go on","max_tokens":3000,"stream":true}' >/dev/null 2>&1
check "slot freed after a disconnect mid-stream" settle

# --- a flood past the queue (8 slots busy, 4 waiting) gets 503 + Retry-After
for i in $(seq 1 20); do
    curl -s -o /dev/null -D "$TMP/h$i" -w '%{http_code}\n' -H 'Content-Type: application/json' "$URL/v1/completions" \
        -d '{"prompt":"Flood","max_tokens":200}' >"$TMP/code$i" &
done
wait_all
n503=$(cat "$TMP"/code* | grep -c '^503$')
n200=$(cat "$TMP"/code* | grep -c '^200$')
check "flood: some refused with 503 (got $n503)" test "$n503" -ge 1
check "flood: the accepted ones completed (got $n200)" test "$n200" -ge 8
check "503 carries Retry-After" bash -c "grep -l '^HTTP/1.1 503' $TMP/h* | head -n 1 | xargs grep -qi '^Retry-After:'"
check "all settled after the flood" settle
check_eq "healthy" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")"
stop_server
check_eq "clean exit" 0 "$SERVER_RC"
finish
