#!/usr/bin/env bash
# test_qwen3next.sh: a qwen3next model through the real server: chat, streaming equals
# non-streaming, and prefix reuse over the recurrent state (a repeated prompt and a follow-up turn
# resume from state snapshots and give the same greedy text as a computation from scratch).
# Usage: test_qwen3next.sh MOESERVE_BINARY MODEL.gguf
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=${1:-build/asan/moeserve}
MODEL=${2:-${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3next-q8_0.gguf}
TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT

# one slot, so every request lands on the cache of the one before
start_server "$TMP/log" -m "$MODEL" --slots 1 --ctx-size 2048 || { echo "0 passed, 1 failed"; exit 1; }
URL="http://127.0.0.1:$PORT"
post() { curl -s -o "$TMP/body" -w '%{http_code}' -H 'Content-Type: application/json' "$URL$1" -d "$2"; }
content() { json 'j.choices[0].message.content' <"$TMP/body"; }
cached() { json 'j.usage.prompt_tokens_details.cached_tokens' <"$TMP/body"; }
jstr() { node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>process.stdout.write(JSON.stringify(s)))'; }

check_eq "architecture" qwen3next "$(curl -s "$URL/v1/models" | json 'j.data[0].meta.arch')"

first='{"messages":[{"role":"user","content":"Write a haiku about the sea"}],"max_tokens":12,"temperature":0}'
check_eq "chat status" 200 "$(post /v1/chat/completions "$first")"
text1=$(content)
check "some text" test -n "$text1"
check_eq "first request: nothing cached" 0 "$(cached)"

# the same prompt again: resumes from the snapshot taken one token before the prompt's end
check_eq "repeat status" 200 "$(post /v1/chat/completions "$first")"
prompt_tokens=$(json 'j.usage.prompt_tokens' <"$TMP/body")
check_eq "repeat: all but the last prompt token cached" $((prompt_tokens - 1)) "$(cached)"
check_eq "repeat: same greedy text" "$text1" "$(content)"

# a follow-up turn shares the first prompt (and the answer, when the template reproduces it)
followup="{\"messages\":[{\"role\":\"user\",\"content\":\"Write a haiku about the sea\"},{\"role\":\"assistant\",\"content\":$(printf '%s' "$text1" | jstr)},{\"role\":\"user\",\"content\":\"Now one about the mountains\"}],\"max_tokens\":12,\"temperature\":0}"
check_eq "follow-up status" 200 "$(post /v1/chat/completions "$followup")"
text2=$(content)
reused=$(cached)
check "follow-up reuses the first prompt" test "$reused" -ge $((prompt_tokens - 1))

# an unrelated prompt takes the slot: the next follow-up shares almost nothing and recomputes
check_eq "other status" 200 "$(post /v1/chat/completions '{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"Count to five"}],"max_tokens":4,"temperature":0}')"
check_eq "follow-up again" 200 "$(post /v1/chat/completions "$followup")"
recomputed=$(cached)
check "recomputed: little cached" test "$recomputed" -lt "$prompt_tokens"
echo "  prompt $prompt_tokens tokens; follow-up cached $reused, after another prompt $recomputed" >&2
check_eq "follow-up: same text resumed or recomputed" "$text2" "$(content)"

# streaming equals non-streaming
curl -sN -H 'Content-Type: application/json' "$URL/v1/chat/completions" \
    -d '{"messages":[{"role":"user","content":"Write a haiku about the sea"}],"max_tokens":12,"temperature":0,"stream":true}' >"$TMP/sse"
streamed=$(grep '^data: {' "$TMP/sse" | sed 's/^data: //' | node -e "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>{let t='';for(const l of s.trim().split('\n')){const j=JSON.parse(l);for(const c of j.choices)t+=(c.delta.content||'')}console.log(t)})")
check_eq "stream text equals non-stream text" "$text1" "$streamed"
check_eq "still healthy" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")"
stop_server

# prompts split into 16-token engine steps, two requests at once: the state is carried across the
# steps and kept apart per slot, so each text is the one computed above in a single step
start_server "$TMP/log2" -m "$MODEL" --slots 2 --ctx-size 2048 --batch-tokens 16 || { echo "0 passed, 1 failed"; exit 1; }
URL="http://127.0.0.1:$PORT"
curl -s -o "$TMP/par1" -H 'Content-Type: application/json' "$URL/v1/chat/completions" -d "$first" &
p1=$!
curl -s -o "$TMP/par2" -H 'Content-Type: application/json' "$URL/v1/chat/completions" -d "$followup" &
p2=$!
wait $p1 $p2
check_eq "chunked prefill, concurrent: first text" "$text1" "$(json 'j.choices[0].message.content' <"$TMP/par1")"
check_eq "chunked prefill, concurrent: follow-up text" "$text2" "$(json 'j.choices[0].message.content' <"$TMP/par2")"
# the follow-up again lands on its own slot (the longest common prefix) and resumes from the
# snapshot of its last prompt chunk
check_eq "chunked prefill: repeat status" 200 "$(post /v1/chat/completions "$followup")"
check "chunked prefill: repeat reuses a snapshot" test "$(cached)" -gt "$prompt_tokens"
echo "  16-token steps: follow-up of $(json 'j.usage.prompt_tokens' <"$TMP/body") tokens resent, $(cached) cached" >&2
check_eq "chunked prefill: repeat text" "$text2" "$(content)"
stop_server
finish
