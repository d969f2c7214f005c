#!/usr/bin/env bash
# test_a64_server.sh: the whole server built for aarch64, run under qemu-aarch64 on a tiny reference
# model beside the x86-64 build: the same greedy text from `moeserve run` (the NEON kernels keep
# the x86 float order), `inspect --check` passing, and `serve` answering a completion.
# Usage: $0 AARCH64_BINARY X86_BINARY
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
A64=${1:-build/a64/moeserve}
X86=${2:-build/rel/moeserve}
QEMU=${NEON_RUN:-qemu-aarch64-static}
MODELS=${MOESERVE_TESTDATA:-../shared/testdata}/models
TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT
[ -f "$MODELS/tiny-qwen3moe-asym.gguf" ] || { echo "no reference data at $MODELS"; echo "0 passed, 1 failed"; exit 1; }
# qemu needs the arm64 loader and libraries (multiarch: /lib/ld-linux-aarch64.so.1)
[ -e /lib/ld-linux-aarch64.so.1 ] || { echo "no arm64 loader (make deps installs libc6:arm64)"; echo "0 passed, 1 failed"; exit 1; }

for m in tiny-qwen3moe-asym tiny-qwen3next-q8_0; do
    args=(run -m "$MODELS/$m.gguf" -p "The quick brown fox" -n 12 --temp 0 -t 2 --device cpu)
    want=$("$X86" "${args[@]}" 2>/dev/null)
    got=$("$QEMU" "$A64" "${args[@]}" 2>"$TMP/err")
    check "$m: x86-64 generated text" test -n "$want"
    check_eq "$m: aarch64 greedy text equals x86-64's" "$want" "$got"
done
"$QEMU" "$A64" inspect --check "$MODELS/tiny-qwen3moe-asym.gguf" >"$TMP/out" 2>&1
check "aarch64 inspect --check" grep -q ": ok$" "$TMP/out"

# start_server runs "$MOESERVE": a wrapper that starts the aarch64 binary under qemu
printf '#!/bin/sh\nexec %s %s "$@"\n' "$QEMU" "$PWD/$A64" >"$TMP/moeserve-a64"
chmod +x "$TMP/moeserve-a64"
MOESERVE=$TMP/moeserve-a64
start_server "$TMP/log" -m "$MODELS/tiny-qwen3moe-q8_0.gguf" --slots 1 --ctx-size 512 --device cpu || exit 1
text=$(curl -s -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/v1/completions" \
    -d '{"prompt":"Hello","max_tokens":8,"temperature":0}' | json 'j.choices[0].finish_reason')
check_eq "aarch64 serve: a completion" "length" "$text"
stop_server
check_eq "aarch64 serve: clean exit" 0 "$SERVER_RC"
finish
