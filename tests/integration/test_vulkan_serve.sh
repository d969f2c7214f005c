#!/usr/bin/env bash
# test_vulkan_serve.sh: the real server on Vulkan (Mesa's lavapipe in CI): the same greedy completion
# as on the CPU, with every expert on the device and with layer 0's on the CPU (--n-cpu-moe 1),
# /props naming the device and the placement, and bad --gpu / --n-cpu-moe refused with one line
# naming the flag. The release binary: the Vulkan driver's own allocations are not ours to leak-check.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=build/rel/moeserve
MODEL=${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3moe-q8_0.gguf
TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT
[ -f "$MODEL" ] || { echo "no reference model at $MODEL"; echo "0 passed, 1 failed"; exit 1; }
if [ "${MOESERVE_NO_VULKAN:-0}" = 1 ]; then echo "MOESERVE_NO_VULKAN=1: not run"; finish; exit; fi

complete() { # complete: greedy text of a fixed prompt from the running server
    curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/v1/completions" \
        -d '{"prompt":"The quick brown fox","max_tokens":24,"temperature":0}' | json 'j.choices[0].text'
}

start_server "$TMP/cpu.log" -m "$MODEL" --slots 2 --ctx-size 1024 --device cpu || exit 1
want=$(complete)
stop_server
check "the CPU server generated text" test -n "$want"

start_server "$TMP/vk.log" -m "$MODEL" --slots 2 --ctx-size 1024 --device vulkan || exit 1
check_eq "Vulkan: the CPU's greedy text" "$want" "$(complete)"
check_eq "Vulkan: /props device and placement" "llvmpipe 0" \
    "$(curl -s "http://127.0.0.1:$PORT/props" | json '[j.device.split(" ")[0], j.n_cpu_moe].join(" ")')"
check "Vulkan: the log names the device" grep -q "device: running on Vulkan device llvmpipe" "$TMP/vk.log"
stop_server
check_eq "Vulkan server: clean exit" 0 "$SERVER_RC"

start_server "$TMP/hy.log" -m "$MODEL" --slots 2 --ctx-size 1024 --device vulkan --n-cpu-moe 1 || exit 1
check_eq "hybrid: the CPU's greedy text" "$want" "$(complete)"
check_eq "hybrid: /props placement" 1 "$(curl -s "http://127.0.0.1:$PORT/props" | json 'j.n_cpu_moe')"
check "hybrid: the log says which experts run on the CPU" grep -q "routed experts of layers 0-0 run on the CPU" "$TMP/hy.log"
stop_server

refused() { # refused FLAG ARGS...: the server exits non-zero at once with one error line naming FLAG
    local flag=$1
    shift
    timeout 60 "$MOESERVE" serve --port 0 -m "$MODEL" "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    check "$* : refused (exit $rc)" test "$rc" -ne 0 -a "$rc" -ne 124
    check "$* : the error names $flag" grep -q -- "$flag" "$TMP/err"
}
refused "no-such-gpu" --device vulkan --gpu no-such-gpu
refused "--n-cpu-moe" --device vulkan --n-cpu-moe lots
refused "--n-cpu-moe" --device cpu --n-cpu-moe lots
finish
