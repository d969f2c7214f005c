#!/usr/bin/env bash
# test_load.sh: 8 concurrent streaming clients for 20 s against the release server on loopback:
# no errors, server RSS growth under 5% between a warmed-up start and the end.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=build/rel/moeserve
MODEL=${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3moe-q8_0.gguf
SECONDS_RUN=${LOAD_SECONDS:-20}
TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT
OMP_WAIT_POLICY=passive start_server "$TMP/log" -m "$MODEL" --slots 8 --ctx-size 8192 || { echo "0 passed, 1 failed"; exit 1; }
# warm up (allocations of the first batches) before the RSS baseline
build/rel/loadgen --port "$PORT" --clients 8 --seconds 3 --max-tokens 24 >/dev/null 2>&1
build/rel/loadgen --port "$PORT" --clients 8 --seconds "$SECONDS_RUN" --max-tokens 24 --pid "$SERVER_PID" >"$TMP/out" 2>&1
rc=$?
cat "$TMP/out" >&2
check "no errors" test "$rc" -eq 0
check "requests completed" grep -qE '[1-9][0-9]* requests' "$TMP/out"
growth=$(sed -n 's/.*(\([-+0-9.]*\)%).*/\1/p' "$TMP/out")
check "RSS growth under 5% (got ${growth}%)" awk -v g="$growth" 'BEGIN { exit !(g < 5) }'
stop_server
check_eq "clean exit" 0 "$SERVER_RC"
finish
