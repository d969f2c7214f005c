#!/usr/bin/env bash
# test_tools.sh: tool calls end to end: the test build's MOESERVE_TEST_OUTPUT makes the model
# "say" recorded Qwen3-Coder outputs, which must come back as OpenAI tool_calls (streamed and not),
# with reasoning split off, and malformed calls returned as content.
# Usage: test_tools.sh MOESERVE_BINARY (a build with MOESERVE_TEST_HOOKS)
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=${1:-build/asan/moeserve}
MODEL=${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3moe-q8_0.gguf
TMP=$(mktemp -d)
trap 'stop_server; rm -rf "$TMP"' EXIT
TOOLS='"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"}}}}}]'

serve_saying() { # serve_saying TEXT: restarts the server so that it generates TEXT
    stop_server
    MOESERVE_TEST_OUTPUT="$1" start_server "$TMP/log" -m "$MODEL" --slots 2 --ctx-size 2048
    URL="http://127.0.0.1:$PORT"
}
chat() { curl -s -H 'Content-Type: application/json' "$URL/v1/chat/completions" -d "$1"; }

serve_saying $'<think>\nThe user wants weather.\n</think>\n\nChecking.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nOslo\n</parameter>\n<parameter=days>\n3\n</parameter>\n</function>\n</tool_call>' || { echo "0 passed, 1 failed"; exit 1; }
chat "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],$TOOLS}" >"$TMP/r"
check_eq "finish_reason tool_calls" tool_calls "$(json 'j.choices[0].finish_reason' <"$TMP/r")"
check_eq "function name" get_weather "$(json 'j.choices[0].message.tool_calls[0].function.name' <"$TMP/r")"
check_eq "typed arguments" '{"city":"Oslo","days":3}' "$(json 'j.choices[0].message.tool_calls[0].function.arguments' <"$TMP/r")"
check "call id" test -n "$(json 'j.choices[0].message.tool_calls[0].id' <"$TMP/r")"
check_eq "reasoning split off" "The user wants weather." "$(json 'j.choices[0].message.reasoning_content.trim()' <"$TMP/r")"
check_eq "content before the call" "Checking." "$(json 'j.choices[0].message.content.trim()' <"$TMP/r")"
curl -sN -H 'Content-Type: application/json' "$URL/v1/chat/completions" \
    -d "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],$TOOLS,\"stream\":true}" >"$TMP/sse"
grep '^data: {' "$TMP/sse" | sed 's/^data: //' >"$TMP/chunks"
check "streamed name delta" grep -q '"tool_calls":\[{"index":0,"id":"call_[A-Za-z0-9]*","type":"function","function":{"name":"get_weather","arguments":""}}\]' "$TMP/chunks"
check "streamed arguments delta" grep -q '"arguments":"{\\"city\\":\\"Oslo\\",\\"days\\":3}"' "$TMP/chunks"
check "streamed reasoning delta" grep -q '"reasoning_content":' "$TMP/chunks"
check "no delta mixes content and reasoning" bash -c "! grep -q '\"content\":\"[^\"]*\",\"reasoning_content\"' '$TMP/chunks'"
check "stream finish tool_calls" grep -q '"finish_reason":"tool_calls"' "$TMP/chunks"
chat "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],$TOOLS,\"tool_choice\":\"none\"}" >"$TMP/r"
check_eq "tool_choice none: no parsing" stop "$(json 'j.choices[0].finish_reason' <"$TMP/r")"

# a named tool_choice opens the call in the prompt; the model only completes it
serve_saying $'<parameter=city>\nOslo\n</parameter>\n</function>\n</tool_call>' || exit 1
chat "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],$TOOLS,\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"get_weather\"}}}" >"$TMP/r"
check_eq "named tool_choice forces the call" '{"city":"Oslo"}' "$(json 'j.choices[0].message.tool_calls[0].function.arguments' <"$TMP/r")"
check_eq "named tool_choice: the function" get_weather "$(json 'j.choices[0].message.tool_calls[0].function.name' <"$TMP/r")"

serve_saying $'<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>' || exit 1
chat "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],$TOOLS}" >"$TMP/r"
check_eq "Hermes JSON call" '{"city":"Rome"}' "$(json 'j.choices[0].message.tool_calls[0].function.arguments' <"$TMP/r")"

serve_saying $'<tool_call>\n{"name": "get_weather", "arguments": {"city": "Rome"}}\n</tool_call>\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>' || exit 1
chat "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],$TOOLS}" >"$TMP/r"
check_eq "parallel calls" 2 "$(json 'j.choices[0].message.tool_calls.length' <"$TMP/r")"
chat "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],$TOOLS,\"parallel_tool_calls\":false}" >"$TMP/r"
check_eq "parallel_tool_calls false: one call" 1 "$(json 'j.choices[0].message.tool_calls.length' <"$TMP/r")"

serve_saying $'Sure <tool_call>\n<function=get_weather>\n<parameter=city>Oslo\n</tool_call> done' || exit 1
chat "{\"messages\":[{\"role\":\"user\",\"content\":\"Weather?\"}],$TOOLS}" >"$TMP/r"
check_eq "malformed call: finish stop" stop "$(json 'j.choices[0].finish_reason' <"$TMP/r")"
check "malformed call comes back as content" grep -q 'Sure <tool_call>' "$TMP/r"
check_eq "still healthy" 200 "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health")"

# a prompt processed over several steps sends SSE comment pings meanwhile
stop_server
start_server "$TMP/log" -m "$MODEL" --slots 2 --ctx-size 4096 --batch-tokens 32 || exit 1
URL="http://127.0.0.1:$PORT"
long=$(printf 'word %.0s' $(seq 1 300))
curl -sN -H 'Content-Type: application/json' "$URL/v1/completions" -d "{\"prompt\":\"$long\",\"max_tokens\":2,\"stream\":true}" >"$TMP/sse"
check "SSE ping during a long prompt" grep -q '^: ping' "$TMP/sse"
check "stream still completes" grep -q 'data: \[DONE\]' "$TMP/sse"
stop_server
finish
