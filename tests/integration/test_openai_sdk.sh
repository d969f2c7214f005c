#!/usr/bin/env bash
# test_openai_sdk.sh: installs the official `openai` npm client (once, into tests/integration/
# node_modules) and runs openai_client.mjs against a real server; then checks the server noticed
# the aborted stream and freed its slot.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=${1:-build/asan/moeserve}
MODEL=${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3moe-q8_0.gguf
TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT
if [ ! -d tests/integration/node_modules/openai ]; then
    npm install --silent --no-audit --no-fund --no-save --prefix tests/integration openai@6 >"$TMP/npm" 2>&1 ||
        { cat "$TMP/npm"; echo "0 passed, 1 failed"; exit 1; }
fi
start_server "$TMP/log" -m "$MODEL" --slots 2 --ctx-size 4096 || { echo "0 passed, 1 failed"; exit 1; }
node tests/integration/openai_client.mjs "http://127.0.0.1:$PORT/v1" >"$TMP/out" 2>&1
cat "$TMP/out" | grep -v 'passed,' >&2
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$TMP/out")
PASS=$((PASS + ${line%% passed*}))
f=${line#*, }; FAIL=$((FAIL + ${f%% failed*}))
sleep 1
check "aborted stream cancelled on the server" grep -q ' 499 \| 400 .*generated=' "$TMP/log"
check_eq "no slot left busy" 0 "$(curl -s "http://127.0.0.1:$PORT/metrics" | sed -n 's/^moeserve_slots_busy{[^}]*} //p')"
stop_server
finish
