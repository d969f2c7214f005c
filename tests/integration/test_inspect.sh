#!/usr/bin/env bash
# test_inspect.sh: drives `moeserve inspect` on the reference models: text and JSON reports,
# --check, --fit, and one-line errors with exit 1 (bad file) or 2 (bad flag). Usage: $0 [BINARY]
set -u
BIN=${1:-build/asan/moeserve}
TD=${MOESERVE_TESTDATA:-../shared/testdata}
M=$TD/models
pass=0 fail=0
TMP=$(mktemp -d /tmp/moeserve-inspect-XXXXXX)
trap 'rm -rf "$TMP"' EXIT

ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL: $*" >&2; }
# check DESCRIPTION COMMAND...: the command must succeed
check() { local d=$1; shift; if "$@"; then ok; else bad "$d"; fi; }

# run EXPECTED_RC ARGS...: runs the binary, keeps stdout/stderr in $TMP/out, $TMP/err
run() {
    local want=$1; shift
    "$BIN" "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?
    if [ "$rc" -eq "$want" ]; then ok; else bad "moeserve $* exited $rc, expected $want: $(head -c 300 "$TMP/err")"; fi
}
has() { grep -qE -- "$1" "$TMP/out"; }
err_one_line() { [ "$(wc -l <"$TMP/err")" -eq 1 ] && [ ! -s "$TMP/out" ]; }
json() { node -e "const j=JSON.parse(require('fs').readFileSync('$TMP/out','utf8')); process.exit(($1)?0:1)"; }

[ -x "$BIN" ] || { echo "no binary at $BIN"; echo "0 passed, 1 failed"; exit 1; }
[ -f "$M/tiny-qwen3moe-asym.gguf" ] || { echo "no reference data at $TD"; echo "0 passed, 1 failed"; exit 1; }

# --- text report of the asymmetric model
run 0 inspect "$M/tiny-qwen3moe-asym.gguf"
check "architecture"        has '^  architecture +qwen3moe$'
check "layers"              has '^  layers +3$'
check "head size"           has '^  head size \(key\) +64$'
check "experts used"        has '^  experts used +4$'
check "tokenizer"           has '^  pre-tokenizer +qwen2$'
check "eos text"            has "^  eos +4098 '<\|im_end\|>'$"
check "routed gate IQ2_S"   has '^  routed expert gate +IQ2_S +2\.56 +3 '
check "routed up IQ2_S"     has '^  routed expert up +IQ2_S '
check "routed down IQ3_S"   has '^  routed expert down +IQ3_S +3\.44 '
check "attention q Q4_K"    has '^  attention q +Q4_K '
check "attention output Q4_K" has '^  attention output +Q4_K '
check "token_embd Q6_K"     has '^  token_embd +Q6_K +6\.56 +1 '
check "output Q6_K"         has '^  output +Q6_K '
check "totals"              has '^totals: 12151936 parameters, 5487784 bytes'

# --- JSON of the same file
if command -v node >/dev/null; then
    run 0 inspect --json "$M/tiny-qwen3moe-asym.gguf"
    check "json hparams" json 'j.model.architecture==="qwen3moe" && j.model.hparams.n_layer===3 && j.model.hparams.head_k===64'
    check "json tokenizer" json 'j.tokenizer.n_vocab===4122 && j.tokenizer.special.eos.text==="<|im_end|>" && j.tokenizer.special_tokens.length===26'
    check "json layout" json 'j.layout.some(r=>r.group==="routed expert gate"&&r.type==="IQ2_S"&&r.tensors===3) && j.layout.some(r=>r.group==="routed expert down"&&r.type==="IQ3_S") && j.layout.filter(r=>r.type==="Q6_K").length===2'
    check "json totals" json 'j.totals.params===12151936 && j.totals.bytes===5487784 && Math.abs(j.totals.bpw-3.613)<0.001'
    run 0 inspect --json "$M/tiny-qwen3next-q8_0.gguf"
    check "json qwen3next ssm" json 'j.model.hparams.ssm_state===64 && j.model.hparams.ssm_groups===2 && j.model.hparams.ssm_dt_rank===4 && j.model.hparams.full_attn_interval===4 && j.model.hparams.n_ff_shexp===256'
    check "json qwen3next groups" json '["attention qkv (fused, DeltaNet)","attention gate","ssm conv1d","ssm a","ssm dt","ssm ba","ssm norm","ssm out","shared expert gate input"].every(g=>j.layout.some(r=>r.group===g))'
    run 0 inspect --json --fit 16G --ctx 16384 --slots 2 --kv q8_0 "$M/tiny-qwen3next-q8_0.gguf"
    check "json plan" json 'j.plan.ctx===16384 && j.plan.slots===2 && j.plan.kv_type==="q8_0" && j.plan.devices[0].fits===true && j.plan.devices[0].parts.kv_cache===1*16384*2*2*2*68 && j.plan.devices[0].parts.recurrent_state===2*(1+2)*3*(3*512+4*64*64)*4'
else
    bad "node not installed: JSON output not checked"
fi

# --- qwen3next text report
run 0 inspect "$M/tiny-qwen3next-mxfp4.gguf"
check "qwen3next ssm"  has '^  SSM time-step rank +4$'
check "qwen3next fai"  has '^  full_attention_interval +4$'
check "qwen3next mxfp4 experts" has '^  routed expert down +MXFP4 '

# --- --check: every reference model passes (kernel availability is checked separately)
for f in "$M"/tiny-qwen3*.gguf; do
    case $f in *imatrix*) continue ;; esac
    run 0 inspect --check --no-kernels "$f"
    check "check ok $(basename "$f")" has ': ok$'
done
# with the kernel check, problems (if any kernels are still missing) name the type
"$BIN" inspect --check "$M/tiny-qwen3moe-q8_0.gguf" >"$TMP/out" 2>"$TMP/err"; rc=$?
if [ $rc -eq 0 ] || { [ $rc -eq 1 ] && ! grep -v -e 'cpu kernels' -e 'problem' "$TMP/err" | grep -q .; }; then ok; else bad "--check with kernels: rc $rc: $(cat "$TMP/err")"; fi
run 1 inspect --check "$M/tiny-qwen3moe.imatrix.gguf"
check "check names the architecture" grep -q "general.architecture" "$TMP/err"

# --- --fit
run 0 inspect --fit 16G --ctx 16384 "$M/tiny-qwen3moe-asym.gguf"
check "fit table"   has "^    KV cache +$((3 * 16384 * 2 * 64 * 2 * 2)) "
check "fit yes"     has '^    fits +yes$'
check "fit budget"  has '^    budget +17179869184 '
check "fit max"     has '^  largest context with 1 slot: [0-9]+$'
run 0 inspect --fit 20M --ctx 4096 "$M/tiny-qwen3moe-asym.gguf"     # needs 30 MiB
check "fit no"      has '^    fits +no$'
run 0 inspect --mem-budget 1GiB --ctx 4096 --slots 3 --kv q8_0 "$M/tiny-qwen3moe-asym.gguf"
check "kv q8_0 bytes" has "^    KV cache +$((3 * 4096 * 3 * 2 * 2 * 68)) "

# --- --vram: a Vulkan plan; what the GPU cannot hold moves to the CPU a layer's experts at a time
run 0 inspect --vram 1G --fit 1G --ctx 1024 "$M/tiny-qwen3moe-asym.gguf"
check "vram: device first" has '^  device vulkan:$'
check "vram budget"        has '^    budget +1073741824 .*\(--vram\)$'
check "vram: no experts moved" has '^  routed experts on the CPU: none$'
run 0 inspect --vram 17M --fit 1G --ctx 1024 "$M/tiny-qwen3moe-asym.gguf"
check "vram 17M: layers 0-1 on the CPU" has '^  routed experts on the CPU: layers 0-1 \(2 layers\)$'
check "vram 17M: both fit" bash -c "[ \$(grep -cE '^    fits +yes$' '$TMP/out') -eq 2 ]"
run 0 inspect --vram 1G --n-cpu-moe 1 --ctx 1024 "$M/tiny-qwen3moe-asym.gguf"
check "n-cpu-moe 1" has '^  routed experts on the CPU: layers 0-0 \(1 layer\)$'
if command -v node >/dev/null; then
    run 0 inspect --json --vram 17M --fit 1G --ctx 1024 "$M/tiny-qwen3moe-asym.gguf"
    check "json vram" json 'j.plan.n_cpu_moe===2 && j.plan.devices[0].device==="vulkan" && j.plan.devices[1].parts.weights>0'
fi
run 1 inspect --vram 8G "$M/tiny-qwen3next-q8_0.gguf"; check "vram qwen3next: one line" err_one_line
run 2 inspect --n-cpu-moe 2 "$M/tiny-qwen3moe-asym.gguf"; check "n-cpu-moe without vram" grep -q -- "--vram" "$TMP/err"
run 2 inspect --vram 8G --n-cpu-moe some "$M/tiny-qwen3moe-asym.gguf"; check "bad n-cpu-moe named" grep -q -- "--n-cpu-moe" "$TMP/err"
run 2 inspect --vram lots "$M/tiny-qwen3moe-asym.gguf"; check "bad vram: one line" err_one_line

# --- errors: one line, exit 1 for files, 2 for flags
printf 'not a gguf file at all' >"$TMP/junk.gguf"
run 1 inspect "$TMP/junk.gguf";            check "junk: one line" err_one_line; check "junk names file" grep -q "junk.gguf.*bad magic" "$TMP/err"
head -c 1000 "$M/tiny-qwen3moe-asym.gguf" >"$TMP/trunc.gguf"
run 1 inspect "$TMP/trunc.gguf";           check "truncated: one line" err_one_line
run 1 inspect "$TMP/does-not-exist.gguf";  check "missing: one line" err_one_line
run 1 inspect --fit 16G "$M/tiny-qwen3moe.imatrix.gguf"; check "fit unknown arch: one line" err_one_line
run 2 inspect;                              check "no file: one line" err_one_line
run 2 inspect --bogus "$M/tiny-qwen3moe-asym.gguf"; check "bad flag named" grep -q -- "--bogus" "$TMP/err"; check "bad flag: one line" err_one_line
run 2 inspect --fit 16Q "$M/tiny-qwen3moe-asym.gguf"; check "bad size named" grep -q -- "--fit" "$TMP/err"; check "bad size: one line" err_one_line
run 2 inspect --ctx "$M/tiny-qwen3moe-asym.gguf"; check "ctx without number" err_one_line
run 2 inspect --ctx 0 "$M/tiny-qwen3moe-asym.gguf"; check "ctx 0" grep -q -- "--ctx" "$TMP/err"
run 2 inspect --kv q4_0 "$M/tiny-qwen3moe-asym.gguf"; check "bad kv" grep -q -- "--kv" "$TMP/err"
run 2 inspect --fit; check "fit without size" err_one_line
run 2 inspect a.gguf b.gguf; check "two files" err_one_line
run 0 inspect --help; check "help" has 'usage: moeserve inspect'

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
