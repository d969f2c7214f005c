#!/usr/bin/env bash
# test_api.sh: the real server over loopback with curl: every endpoint, streaming and not,
# fill-in-the-middle, tokenize round trips, and the OpenAI-shaped errors.
# Usage: test_api.sh MOESERVE_BINARY MODEL.gguf
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=${1:-build/asan/moeserve}
MODEL=${2:-${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3moe-q8_0.gguf}
TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT

start_server "$TMP/log" -m "$MODEL" --slots 4 --ctx-size 4096 --max-body 1M || { echo "0 passed, 1 failed"; exit 1; }
URL="http://127.0.0.1:$PORT"
post() { curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' "$URL$1" -d "$2"; }

# --- health, models, props, metrics
check_eq "health" 200 "$(curl -s -o "$TMP/body" -w '%{http_code}' "$URL/health")"
check_eq "health body" ok "$(json 'j.status' <"$TMP/body")"
curl -s "$URL/v1/models" >"$TMP/models"
check_eq "models list" list "$(json 'j.object' <"$TMP/models")"
check "models context length" test "$(json 'j.data[0].context_length' <"$TMP/models")" -gt 0
check_eq "props slots" 4 "$(curl -s "$URL/props" | json 'j.total_slots')"

# --- chat, non-streaming, greedy
body='{"messages":[{"role":"user","content":"Say hello"}],"max_tokens":8,"temperature":0}'
check_eq "chat status" 200 "$(post /v1/chat/completions "$body")"
cp "$TMP/body" "$TMP/chat1"
check_eq "chat object" chat.completion "$(json 'j.object' <"$TMP/chat1")"
check_eq "chat role" assistant "$(json 'j.choices[0].message.role' <"$TMP/chat1")"
check "finish reason" grep -Eq '"finish_reason":"(length|stop)"' "$TMP/chat1"
check_eq "usage completion tokens" 8 "$(json 'j.usage.completion_tokens' <"$TMP/chat1")"
check "usage prompt tokens" test "$(json 'j.usage.prompt_tokens' <"$TMP/chat1")" -gt 5
post /v1/chat/completions "$body" >/dev/null
check_eq "greedy is deterministic" "$(json 'j.choices[0].message.content' <"$TMP/chat1")" "$(json 'j.choices[0].message.content' <"$TMP/body")"
check "repeat hits the prefix cache" test "$(json 'j.usage.prompt_tokens_details.cached_tokens' <"$TMP/body")" -gt 0

# --- chat, streaming, with usage
curl -sN -H 'Content-Type: application/json' "$URL/v1/chat/completions" \
    -d '{"messages":[{"role":"user","content":"Say hello"}],"max_tokens":8,"temperature":0,"stream":true,"stream_options":{"include_usage":true}}' >"$TMP/sse"
check "SSE ends with [DONE]" test "$(tail -n 2 "$TMP/sse" | head -n 1)" = "data: [DONE]"
check "SSE chunks" grep -q '"object":"chat.completion.chunk"' "$TMP/sse"
check "SSE usage chunk" grep -q '"choices":\[\],.*"usage":{"prompt_tokens"' "$TMP/sse"
streamed=$(grep '^data: {' "$TMP/sse" | sed 's/^data: //' | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{let t='';for(const l of s.trim().split('\n')){const j=JSON.parse(l);for(const c of j.choices)t+=(c.delta.content||'')}console.log(t)})")
check_eq "stream text equals non-stream text" "$(json 'j.choices[0].message.content' <"$TMP/chat1")" "$streamed"

# --- completions with a FIM suffix, echo, token prompts
check_eq "completions status" 200 "$(post /v1/completions '{"prompt":"def add(a, b):","suffix":"\n    return c\n","max_tokens":6,"temperature":0}')"
check_eq "completion object" text_completion "$(json 'j.object' <"$TMP/body")"
check_eq "echo" 200 "$(post /v1/completions '{"prompt":"Hello","max_tokens":2,"echo":true,"temperature":0}')"
check "echo starts with the prompt" test "$(json 'j.choices[0].text.startsWith("Hello")' <"$TMP/body")" = true
check_eq "token prompt" 200 "$(post /v1/completions '{"prompt":[100,200,300],"max_tokens":3}')"
check_eq "two prompts" 200 "$(post /v1/completions '{"prompt":["a","b"],"max_tokens":2,"temperature":0}')"
check_eq "two choices" 2 "$(json 'j.choices.length' <"$TMP/body")"
check_eq "infill" 200 "$(post /infill '{"input_prefix":"int main() {\n","input_suffix":"\n}\n","input_extra":[{"filename":"util.h","text":"int helper(void);\n"}],"n_predict":4}')"

# --- tokenize / detokenize
check_eq "tokenize" 200 "$(post /tokenize '{"content":"Hello world"}')"
toks=$(json 'j.tokens' <"$TMP/body")
check_eq "detokenize round trip" "Hello world" "$(curl -s -H 'Content-Type: application/json' "$URL/detokenize" -d "{\"tokens\":$toks}" | json 'j.content')"

# --- errors
check_eq "bad JSON" 400 "$(post /v1/chat/completions '{"messages":')"
check "error shape" grep -q '"error":{"message":' "$TMP/body"
check_eq "wrong type" 400 "$(post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"temperature":"hot"}')"
check_eq "param named" temperature "$(json 'j.error.param' <"$TMP/body")"
check_eq "n > 1" 400 "$(post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"n":3}')"
check_eq "context overflow" 400 "$(post /v1/chat/completions '{"messages":[{"role":"user","content":"x"}],"max_tokens":100000000}')"
check "overflow names both numbers" grep -q 'max_tokens' "$TMP/body"
check_eq "unknown route" 404 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/nope")"
check_eq "wrong method" 405 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/chat/completions")"
head -c 2000000 /dev/zero | tr '\0' 'a' >"$TMP/big"
check_eq "body over the limit" 413 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @"$TMP/big" "$URL/v1/completions")"
check_eq "still healthy" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")"
check "metrics" grep -q 'vllm:num_requests_running' <(curl -s "$URL/metrics")

# --- logprobs
check_eq "logprobs" 200 "$(post /v1/chat/completions '{"messages":[{"role":"user","content":"Hi"}],"max_tokens":3,"logprobs":true,"top_logprobs":2}')"
check_eq "one logprob per token" 3 "$(json 'j.choices[0].logprobs.content.length' <"$TMP/body")"
check_eq "top_logprobs per token" 2 "$(json 'j.choices[0].logprobs.content[0].top_logprobs.length' <"$TMP/body")"
check "logprob is a log-probability" test "$(json 'j.choices[0].logprobs.content[0].logprob <= 0' <"$TMP/body")" = true

stop_server
check_eq "SIGTERM exits 0" 0 "$SERVER_RC"

# --- API keys and CORS
start_server "$TMP/log2" -m "$MODEL" --slots 2 --ctx-size 2048 --api-key sekrit --cors-origin '*' || exit 1
URL="http://127.0.0.1:$PORT"
check_eq "no key: 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/v1/models")"
check_eq "wrong key: 401" 401 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer nope' "$URL/v1/models")"
check_eq "right key: 200" 200 "$(curl -s -o /dev/null -w '%{http_code}' -H 'Authorization: Bearer sekrit' "$URL/v1/models")"
check_eq "health needs no key" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")"
check "CORS preflight" bash -c "curl -s -i -X OPTIONS '$URL/v1/chat/completions' | grep -qi '^Access-Control-Allow-Origin: \\*'"
stop_server
finish
