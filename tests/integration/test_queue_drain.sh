#!/usr/bin/env bash
# test_queue_drain.sh: faults around the queue and shutdown, through the real server: a client that
# leaves while still queued frees its place and is never run; SIGTERM under load lets every
# accepted request (running or queued) finish, /health says draining, exit 0; a request that
# reaches the context limit mid-generation ends cleanly with finish_reason "length".
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=${1:-build/asan/moeserve}
MODEL=${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3moe-q8_0.gguf
TMP=$(mktemp -d)
trap 'stop_server; [ "$FAIL" -eq 0 ] && rm -rf "$TMP" || echo "kept $TMP" >&2' EXIT
metric() { curl -s "$URL/metrics" | sed -n "s/^$1{[^}]*} //p"; }
wait_metric() { # wait_metric NAME VALUE: up to 30 s
    for _ in $(seq 1 300); do [ "$(metric "$1")" = "$2" ] && return 0; sleep 0.1; done
    return 1
}
post() { # post BODY: a /v1/completions request, the body to stdout
    curl -s -H 'Content-Type: application/json' "$URL/v1/completions" -d "$1"
}
NO_EOS='"logit_bias":{"4096":-100,"4098":-100}'
# tokens_in SECONDS: how many tokens one request generates in that time on this machine and build
# (the sanitizer build is ~10x slower than release), so the requests below outlast the checks
# made while they run, however fast or loaded the machine is. At most 1000: attention slows as the context grows.
tokens_in() {
    local t
    t=$(curl -s -o /dev/null -w '%{time_total}' -H 'Content-Type: application/json' "$URL/v1/completions" \
        -d "{\"prompt\":\"Calibrate\",\"max_tokens\":100,\"temperature\":0,$NO_EOS}")
    awk -v t="$t" -v s="$1" 'BEGIN { n = int(100 / t * s); if (n < 100) n = 100; if (n > 1000) n = 1000; print n }'
}

# ------------------------------------------------ a client that leaves while queued
OMP_WAIT_POLICY=passive start_server "$TMP/log1" -m "$MODEL" --slots 1 --ctx-size 4096 --queue-size 1 ||
    { echo "0 passed, 1 failed"; exit 1; }
URL="http://127.0.0.1:$PORT"
N5=$(tokens_in 3)
p0=$(metric moeserve_prompt_tokens_total)
# A holds the only slot long enough for the rest to happen behind it
post "{\"prompt\":\"The first request holds the slot\",\"max_tokens\":$N5,\"temperature\":0,$NO_EOS}" >"$TMP/a" &
A=$!
check "A is running" wait_metric moeserve_slots_busy 1
# B queues behind it (the queue of one is now full), then its client leaves
curl -s -N -H 'Content-Type: application/json' "$URL/v1/completions" \
    -d '{"prompt":"The queued request that leaves","max_tokens":50,"stream":true}' >/dev/null 2>&1 &
B=$!
check "B is queued" wait_metric moeserve_requests_waiting 1
kill "$B" 2>/dev/null
wait "$B" 2>/dev/null
check "B's queue place is freed while A still runs" wait_metric moeserve_requests_waiting 0
check_eq "A is still running" 1 "$(metric moeserve_slots_busy)"
# the freed place takes a new request (with B still counted, this one would get 503)
code=$(curl -s -o "$TMP/c" -w '%{http_code}' -H 'Content-Type: application/json' "$URL/v1/completions" \
    -d '{"prompt":"C takes the freed place","max_tokens":4,"temperature":0}')
check_eq "C is accepted into the freed place and served" 200 "$code"
wait "$A"
check_eq "A completed" length "$(json 'j.choices[0].finish_reason' <"$TMP/a")"
p1=$(metric moeserve_prompt_tokens_total)
ran=$(( $(json 'j.usage.prompt_tokens - j.usage.prompt_tokens_details.cached_tokens' <"$TMP/a") + \
        $(json 'j.usage.prompt_tokens - j.usage.prompt_tokens_details.cached_tokens' <"$TMP/c") ))
check_eq "B's prompt was never run (prompt tokens processed = A's + C's)" "$ran" "$((${p1%.*} - ${p0%.*}))"
check "B is logged as cancelled with nothing generated" grep -qE ' 499 prompt=[0-9]+ cached=0 generated=0 ' "$TMP/log1"

stop_server
check_eq "clean exit" 0 "$SERVER_RC"

# ------------------------------------------------ a request that reaches the context limit
OMP_WAIT_POLICY=passive start_server "$TMP/log2" -m "$MODEL" --slots 2 --ctx-size 512 --max-ctx 96 ||
    { echo "$PASS passed, $((FAIL + 1)) failed"; exit 1; }
URL="http://127.0.0.1:$PORT"
code=$(curl -s -o "$TMP/len" -w '%{http_code}' -H 'Content-Type: application/json' "$URL/v1/completions" \
    -d '{"prompt":"Count on and on","temperature":0,"logit_bias":{"4096":-100,"4098":-100}}')
check_eq "context limit: 200" 200 "$code"
check_eq "context limit: finish_reason length at exactly the context" "length 96" \
    "$(json '[j.choices[0].finish_reason, j.usage.total_tokens].join(" ")' <"$TMP/len")"
curl -s -N -H 'Content-Type: application/json' "$URL/v1/completions" \
    -d '{"prompt":"Count on and on","temperature":0,"logit_bias":{"4096":-100,"4098":-100},"stream":true}' >"$TMP/len_sse"
check "context limit, streamed: the last chunk says length" bash -c \
    "grep '^data: {' $TMP/len_sse | tail -n 1 | grep -q '\"finish_reason\":\"length\"'"
check_eq "context limit, streamed: ends with [DONE]" "data: [DONE]" "$(grep '^data:' "$TMP/len_sse" | tail -n 1)"
check "context limit: the slot is free again" wait_metric moeserve_slots_busy 0
stop_server
check_eq "clean exit" 0 "$SERVER_RC"

# ------------------------------------------------ SIGTERM under load
OMP_WAIT_POLICY=passive start_server "$TMP/log3" -m "$MODEL" --slots 2 --ctx-size 8192 --queue-size 8 \
    --drain-timeout 60 || { echo "$PASS passed, $((FAIL + 1)) failed"; exit 1; }
URL="http://127.0.0.1:$PORT"
N3=$(tokens_in 2)
for i in 1 2 3 4; do # two run, two wait, each for some 2 s
    curl -s -N -H 'Content-Type: application/json' "$URL/v1/completions" \
        -d "{\"prompt\":\"Stream $i\",\"max_tokens\":$N3,\"temperature\":0,\"stream_options\":{\"include_usage\":true},$NO_EOS,\"stream\":true}" \
        >"$TMP/s$i" 2>&1 &
    eval "S$i=\$!"
done
check "under load: two running" wait_metric moeserve_slots_busy 2
check "under load: two waiting" wait_metric moeserve_requests_waiting 2
kill -TERM "$SERVER_PID"
draining=""
for _ in $(seq 1 100); do
    draining=$(curl -s "$URL/health")
    case $draining in *draining*) break ;; esac
    sleep 0.05
done
check "/health reports draining" bash -c "echo '$draining' | grep -q '\"status\":\"draining\"'"
check_eq "/health is 503 while draining" 503 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")"
check_eq "no new request is accepted while draining" 503 "$(curl -s -o /dev/null -w '%{http_code}' \
    -H 'Content-Type: application/json' "$URL/v1/completions" -d '{"prompt":"late","max_tokens":2}')"
for i in 1 2 3 4; do
    eval "wait \$S$i"
    check "stream $i ran to its end (length after $N3 tokens, then [DONE])" bash -c \
        "grep '^data: {' $TMP/s$i | grep -q '\"finish_reason\":\"length\"' && tail -n 2 $TMP/s$i | grep -q '^data: \[DONE\]'"
    check_eq "stream $i: $N3 tokens generated" "$N3" \
        "$(grep '"usage":{' "$TMP/s$i" | tail -n 1 | sed 's/^data: //' | json 'j.usage.completion_tokens')"
done
wait "$SERVER_PID"
SERVER_RC=$?
SERVER_PID=""
check_eq "exit 0 after draining" 0 "$SERVER_RC"
check "drained before the timeout" bash -c "! grep -q 'drain timeout' $TMP/log3"
finish
