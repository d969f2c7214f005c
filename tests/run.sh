#!/usr/bin/env bash
# run.sh: runs test executables, shows their output, and sums their "N passed, N failed" lines.
# Exits non-zero if any test failed or any executable crashed.
set -u
total_pass=0 total_fail=0 crashed=0
for t in "$@"; do
    echo "== $t"
    out=$("$t" 2>&1); rc=$?
    printf '%s\n' "$out" | grep -v -E '^[0-9]+ passed, [0-9]+ failed$'
    line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed$' | tail -n 1)
    if [ -z "$line" ]; then
        echo "   $t: no result line (exit $rc)"; crashed=$((crashed + 1)); total_fail=$((total_fail + 1)); continue
    fi
    p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
    echo "   $line"
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then crashed=$((crashed + 1)); total_fail=$((total_fail + 1)); fi
done
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$crashed" -eq 0 ]
