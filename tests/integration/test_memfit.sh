#!/usr/bin/env bash
# test_memfit.sh: the memory planner's CPU total against the server's real peak RSS (VmHWM) after
# loading each tiny qwen3moe model and running one request that fills the whole context: within
# 5% either way. The release binary: the sanitizers' shadow memory is not what the plan describes.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=build/rel/moeserve
MODELS=${MOESERVE_TESTDATA:-../shared/testdata}/models
CTX=1024
TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT
# ~600 tokens of prompt (more than one 512-token batch); generation then runs until the context is full
prompt=$(printf 'word %.0s' $(seq 1 600))

measure() { # measure MODEL KV_TYPE
    local model=$MODELS/$1.gguf name="$1 ($2 KV)"
    local plan
    plan=$("$MOESERVE" inspect --json --fit 64G --ctx "$CTX" --slots 1 --kv "$2" "$model" | json 'j.plan.devices[0].total')
    # --device cpu: the CPU plan is what is checked; probing for a GPU (auto) would load the Vulkan
    # driver, whose own memory the CPU plan does not count (docs/memory.md)
    OMP_WAIT_POLICY=passive start_server "$TMP/log" -m "$model" --slots 1 --ctx-size "$CTX" --kv-type "$2" \
        --device cpu || { FAIL=$((FAIL + 1)); return; }
    curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/v1/completions" \
        -d "{\"prompt\":\"$prompt\",\"temperature\":0}" >"$TMP/out"
    local hwm
    hwm=$(awk '/^VmHWM:/ { print $2 * 1024 }' "/proc/$SERVER_PID/status")
    stop_server
    check_eq "$name: the request filled the context" "$CTX length" \
        "$(json '[j.usage.total_tokens, j.choices[0].finish_reason].join(" ")' <"$TMP/out")"
    local pct
    pct=$(awk -v p="$plan" -v h="$hwm" 'BEGIN { printf "%+.2f", (p - h) * 100 / h }')
    echo "  $name: plan $plan bytes, peak RSS $hwm bytes, plan - RSS = $pct%" >&2
    check "$name: plan within 5% of peak RSS (got $pct%)" awk -v d="$pct" 'BEGIN { exit !(d > -5 && d < 5) }'
}

for m in tiny-qwen3moe-q8_0 tiny-qwen3moe-q4_k_m tiny-qwen3moe-asym tiny-qwen3moe-asym-pruned tiny-qwen3moe-mxfp4; do
    measure "$m" f16
done
measure tiny-qwen3moe-q8_0 q8_0
finish
