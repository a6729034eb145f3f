#!/usr/bin/env bash
# Times `ddsas report all` of two ddsas builds side by side on one
# database: N runs per binary, alternating, each into a fresh folder, wall
# clock and peak memory from GNU time (/usr/bin/time -v); prints every run
# and the best and worst per binary. What BENCHMARKS.md reports for the
# report of a paper-scale history.
#   bench/report_all.sh N DB SWEEP BEFORE_BINARY AFTER_BINARY
# A paper-scale DB: run the demo (scripts/demo.sh), then
#   python ../shared/bench/make_paper_scale_db.py results.db paper.db
set -uo pipefail
n=${1:?usage: bench/report_all.sh N DB SWEEP BEFORE AFTER}
db=${2:?database}
sweep=${3:?sweep}
bins=("${4:?before binary}" "${5:?after binary}")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for _ in $(seq "$n"); do
    for k in 0 1; do
        rm -rf "$work/out"
        /usr/bin/time -v "${bins[$k]}" report all --db "$db" --sweep "$sweep" --out "$work/out" \
            >/dev/null 2>"$work/time"
        wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$work/time" |
            awk -F: '{ if (NF == 3) print $1 * 3600 + $2 * 60 + $3; else print $1 * 60 + $2 }')
        rss=$(awk -F': ' '/Maximum resident set size/ {print int($2 / 1024)}' "$work/time")
        echo "$k $wall $rss" >>"$work/runs"
        echo "${bins[$k]}: ${wall} s, ${rss} MB"
    done
done
for k in 0 1; do
    awk -v k="$k" -v bin="${bins[$k]}" '$1 == k {
        if (!w || $2 < wmin) wmin = $2; if ($2 > wmax) wmax = $2;
        if (!w || $3 < rmin) rmin = $3; if ($3 > rmax) rmax = $3; w = 1 }
        END { printf "%s: wall %.2f–%.2f s, peak %d–%d MB\n", bin, wmin, wmax, rmin, rmax }' "$work/runs"
done
