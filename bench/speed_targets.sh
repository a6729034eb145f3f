#!/usr/bin/env bash
# Every speed and memory target of issues 22 and 23 in one run of one
# build against the PyTorch references (channels-last), as BENCHMARKS.md
# "Session 17" records it: the search step at the paper and mid configs
# (1 and 2 threads, the reference's own subspace through bench/ref_mask.py),
# its peak RSS, the evaluation-network step, the 224 px ImageNet step, and
# `report all` of a paper-scale history (made from a demo sweep). About 15
# minutes on 2 cores; run it on an idle machine.
#   bench/speed_targets.sh [DDSAS_BINARY]      (default: target/release/ddsas)
#   REF_DIR=../shared/bench (the references with --channels-last)
set -uo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
set +e
D=$(realpath "${1:-target/release/ddsas}")
P=python
R=${REF_DIR:-../shared/bench}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
A="--layers 8 --C 16 --size 32 --batch 64 --L 28"
M="--layers 5 --C 8 --size 16 --batch 32 --L 20"
echo "== $D, $(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
$P bench/ref_mask.py "$work/m_paper.json" $A --threads 1 >/dev/null
$P bench/ref_mask.py "$work/m_mid.json" $M --threads 1 >/dev/null
for t in 1 2; do
    echo "== search step, paper config, $t thread(s)"
    bench/ab.sh 2 "$D bench step $A --steps 2 --threads $t --mask $work/m_paper.json" \
        "$P $R/ref_search_step.py $A --steps 2 --threads $t --channels-last"
done
for t in 1 2; do
    echo "== search step, mid config, $t thread(s)"
    bench/ab.sh 4 "$D bench step $M --steps 3 --threads $t --mask $work/m_mid.json" \
        "$P $R/ref_search_step.py $M --steps 3 --threads $t --channels-last"
done
echo "== peak RSS, search step, paper config, 1 thread, 1 step"
/usr/bin/time -f "ddsas maxrss_kb=%M" "$D" bench step $A --steps 1 --threads 1 --mask "$work/m_paper.json" 2>&1 | grep maxrss
/usr/bin/time -f "reference maxrss_kb=%M" $P "$R/ref_search_step.py" $A --steps 1 --threads 1 --channels-last 2>&1 | grep maxrss
# ddsas's training step against the reference's, both given ARGS, at 2
# then 1 thread(s), STEPS2 and STEPS1 timed steps, N alternating runs each.
train_steps() {
    local title=$1 args=$2 n=$5 t s
    for t in 2 1; do
        s=$([ "$t" = 2 ] && echo "$3" || echo "$4")
        echo "== $title, $t thread(s)"
        bench/ab.sh "$n" "$D bench train $args --threads $t --steps $s" \
            "$P $R/ref_train_step.py $args --channels-last --threads $t --steps $s"
    done
}
train_steps "evaluation-network step" "--layers 8 --C 16 --batch 32" 8 5 10
train_steps "ImageNet step, 224 px, batch 8" "--imagenet --batch 8" 3 2 6
echo "== report all of a paper-scale history"
"$D" sweep run sweeps/demo.yaml --db "$work/results.db" >"$work/demo.log" 2>&1 || { cat "$work/demo.log"; exit 1; }
$P "$R/make_paper_scale_db.py" "$work/results.db" "$work/paper.db" >/dev/null
bench/report_all.sh 3 "$work/paper.db" paper "$D" "$D"
echo "== end $(date +%T), load $(cut -d' ' -f1-3 /proc/loadavg)"
