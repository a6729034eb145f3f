#!/usr/bin/env bash
# Runs each quoted command N times, alternating (A B C, A B C, ...), and
# prints the min and median of the `median_step_s=` each one printed: the
# side-by-side timing that BENCHMARKS.md reports. Alternating spreads a
# noisy host's slow spells over all commands alike.
#   bench/ab.sh 4 "target/release/ddsas bench step ARGS" "python bench/ref_search_step.py ARGS"
set -uo pipefail
n=${1:?usage: bench/ab.sh N "command" ["command" ...]}
shift
declare -a results
for _ in $(seq "$n"); do
    for j in $(seq 0 $(($# - 1))); do
        cmd=${*:$((j + 1)):1}
        v=$(eval "$cmd" 2>/dev/null | sed -n 's/^median_step_s=//p')
        results[j]="${results[j]:-} ${v:-nan}"
    done
done
for j in $(seq 0 $(($# - 1))); do
    cmd=${*:$((j + 1)):1}
    echo "${results[j]}" | tr ' ' '\n' | grep . | sort -g |
        awk -v c="$cmd" '{a[NR] = $1} END {printf "min %.4f  median %.4f  (n=%d)  %s\n", a[1], a[int((NR + 1) / 2)], NR, c}'
done
