#!/usr/bin/env bash
# Times the history commands of two ddsas builds side by side on one
# database: each command N times per binary, alternating, wall clock from
# the shell; prints the min and median per (command, binary). What
# BENCHMARKS.md reports for the light build (no libtorch) against the full
# one.
#   bench/history_startup.sh N DB FULL_BINARY LIGHT_BINARY
# A paper-scale DB: run the demo (scripts/demo.sh), then
#   python ../shared/bench/make_paper_scale_db.py results.db paper.db
set -uo pipefail
n=${1:?usage: bench/history_startup.sh N DB FULL LIGHT}
db=${2:?database}
full=${3:?full binary}
light=${4:?light binary}
run_id=$("$light" sql --db "$db" --format csv "SELECT max(id) FROM runs" | tail -n 1)
commands=(
    "--version"
    "runs list --db $db --sweep paper"
    "runs list --db $db --where L=28"
    "runs show $run_id --db $db"
    "runs best --db $db --sweep paper"
    "sweep status paper --db $db"
    "sql --db $db 'SELECT count(*) FROM epochs'"
)
ms() { echo $(( $(date +%s%N) / 1000000 )); }
for cmd in "${commands[@]}"; do
    for bin in "$full" "$light"; do
        : >"/tmp/history_startup.$$.$(basename "$bin")"
    done
    for _ in $(seq "$n"); do
        for bin in "$full" "$light"; do
            start=$(ms)
            eval "\"\$bin\" $cmd" >/dev/null 2>&1 || echo "warning: $bin $cmd failed" >&2
            echo $(( $(ms) - start )) >>"/tmp/history_startup.$$.$(basename "$bin")"
        done
    done
    for bin in "$full" "$light"; do
        sort -n "/tmp/history_startup.$$.$(basename "$bin")" |
            awk -v c="$cmd" -v b="$(basename "$bin")" '{a[NR] = $1} END {printf "%-8s min %4d ms  median %4d ms  (n=%d)  ddsas %s\n", b, a[1], a[int((NR + 1) / 2)], NR, c}'
        rm -f "/tmp/history_startup.$$.$(basename "$bin")"
    done
done
