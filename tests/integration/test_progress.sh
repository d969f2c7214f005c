#!/usr/bin/env bash
# test_progress.sh: loading progress is drawn on stderr only when it is a terminal: `run` and
# `serve` under a pseudo-terminal (script(1)) show the bar to 100%; through a pipe nothing of it.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
MOESERVE=${1:-build/asan/moeserve}
MODEL=${MOESERVE_TESTDATA:-../shared/testdata}/models/tiny-qwen3moe-q8_0.gguf
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
command -v script >/dev/null || { echo "script(1) (util-linux) is needed"; echo "0 passed, 1 failed"; exit 1; }

# run on a terminal: the bar reaches 100% and ends its line before the statistics
script -qec "$MOESERVE run -m $MODEL -p hello -n 4 --temp 0" /dev/null >"$TMP/tty" 2>&1
check "run on a terminal: the bar is drawn" grep -q $'\rloading: loading .*%' "$TMP/tty"
check "run on a terminal: the bar reaches 100% and ends its line" grep -q '\] 100%' "$TMP/tty"
check "run on a terminal: statistics follow" grep -q 'tokens/s' "$TMP/tty"
# through a pipe: no bar
"$MOESERVE" run -m "$MODEL" -p hello -n 4 --temp 0 >/dev/null 2>"$TMP/pipe"
check "run through a pipe: no bar" bash -c "! grep -q 'loading:' $TMP/pipe"
check "run through a pipe: statistics" grep -q 'tokens/s' "$TMP/pipe"

# serve on a terminal, refused by the planner: the bar's line is ended before the error
script -qec "$MOESERVE serve -m $MODEL --port 0 --mem-budget 1M" /dev/null >"$TMP/serve" 2>&1
check "serve on a terminal: the bar is drawn" grep -q $'\rloading: validating' "$TMP/serve"
check "serve on a terminal: the error starts a line of its own" grep -q '^[0-9T:.-]*Z error .*does not fit' "$TMP/serve"
# serve through a pipe: log lines instead of the bar
"$MOESERVE" serve -m "$MODEL" --port 0 --mem-budget 1M >/dev/null 2>"$TMP/serve_pipe"
check "serve through a pipe: no bar" bash -c "! grep -q \$'\\r' $TMP/serve_pipe"
check "serve through a pipe: progress as log lines" grep -q 'info  loading: validating 0%' "$TMP/serve_pipe"
finish
