#!/usr/bin/env bash
# test_bad_requests.sh: a corpus of hostile requests (broken and deeply nested JSON, huge numbers,
# wrong types, invalid UTF-8, a 10 MB body, a slow sender, a half-sent request) gets 4xx answers,
# and the server stays healthy throughout (run against the sanitizer build).
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=${1:-build/asan/moeserve}
MODEL=${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3moe-q8_0.gguf
TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT
start_server "$TMP/log" -m "$MODEL" --slots 2 --ctx-size 2048 --idle-timeout 3 || { echo "0 passed, 1 failed"; exit 1; }
URL="http://127.0.0.1:$PORT"
code() { curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' "$URL$1" --data-binary @-; }
expect() { # expect STATUS ROUTE < body
    local want=$1 route=$2 got
    got=$(code "$route")
    check_eq "$route -> $want ($(head -c 60 "$TMP/in" 2>/dev/null))" "$want" "$got"
    check "error is OpenAI-shaped" grep -q '"error":{"message":' "$TMP/body"
}
bad() { printf '%s' "$2" >"$TMP/in"; expect "$1" /v1/chat/completions <"$TMP/in"; }
bad 400 '{'
bad 400 'null'
bad 400 '"text"'
bad 400 '{"messages":[{"role":"user","content":"x"}],"max_tokens":99999999999999999999999}'
bad 400 '{"messages":[{"role":"user","content":"x"}],"temperature":1e999}'
bad 400 '{"messages":[{"role":"user","content":"x"}],"top_k":-5}'
bad 400 '{"messages":[{"role":"user","content":{"nested":true}}]}'
bad 400 '{"messages":[{"role":"user"}],"stop":{"a":1}}'
bad 400 '{"messages":[{"role":"user","content":"x"}],"logit_bias":{"999999999":5}}'
printf '{"messages":[{"role":"user","content":"\xc3\x28"}]}' >"$TMP/in"; expect 400 /v1/chat/completions <"$TMP/in"
python3 -c "print('['*200000)" >"$TMP/in"; expect 400 /v1/chat/completions <"$TMP/in"
head -c 10485760 /dev/zero | tr '\0' ' ' >"$TMP/in"; expect 413 /v1/chat/completions <"$TMP/in"
printf '{"prompt":[1,2,99999999]}' >"$TMP/in"; expect 400 /v1/completions <"$TMP/in"
printf '{"tokens":[-1]}' >"$TMP/in"; expect 400 /detokenize <"$TMP/in"
# a slow sender and a request cut off half way: the server times them out, others are served
( printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"mess'; sleep 5 ) | nc -q 0 127.0.0.1 "$PORT" >/dev/null 2>&1 &
SLOW=$!
( printf 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"a":' ) | nc -q 0 127.0.0.1 "$PORT" >/dev/null 2>&1
check_eq "healthy during a slow sender" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")"
check_eq "still generates" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' "$URL/v1/completions" -d '{"prompt":"Hi","max_tokens":2}')"
wait "$SLOW"
check "no sanitizer report" bash -c "! grep -q 'ERROR: AddressSanitizer\|runtime error' '$TMP/log'"
stop_server
check_eq "clean exit" 0 "$SERVER_RC"
finish
