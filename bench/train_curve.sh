#!/usr/bin/env bash
# Side-by-side learning curves of the evaluation stage (issue 27): `ddsas
# train` and the PyTorch reference (bench/ref_train_curve.py, DARTS's recipe
# on ref_train_step.py's network) train the same genotype on the same real
# images, the bundled digits written as a CIFAR-10 binary folder
# (bench/make_digits_cifar.py), one thread each, for every seed given.
# Prints train and test accuracy per epoch of both, then the final test
# accuracies and their means: the figures BENCHMARKS.md keeps.
#
#   bench/train_curve.sh [SEED ...]            (default: 0 1 2)
#   DROP=0.3 EPOCHS=8 LAYERS=5 C=8 BATCH=64 GENOTYPE=darts_v2 bench/train_curve.sh 0 1
#
# Needs numpy in the venv (`pip install numpy` into ~/.cache/ddsas/torch-2.11.0).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(0 1 2)
drop=${DROP:-0.3} epochs=${EPOCHS:-8} layers=${LAYERS:-5} c=${C:-8} batch=${BATCH:-64}
genotype=${GENOTYPE:-darts_v2}
ddsas=target/release/ddsas
[ -x "$ddsas" ] || cargo build --release --locked
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python bench/make_digits_cifar.py "$work" >/dev/null

echo "genotype $genotype, $layers cells x $c channels, batch $batch, $epochs epochs, drop path $drop, no cutout, 1 thread"
printf '%-5s %-6s %-22s %-22s\n' seed epoch "reference train/test" "ddsas train/test"
finals=()
for seed in "${seeds[@]}"; do
    python bench/ref_train_curve.py --data "$work" --epochs "$epochs" --layers "$layers" \
        --C "$c" --batch "$batch" --drop-path "$drop" --seed "$seed" --genotype "$genotype" \
        --threads 1 | sed -n 's/^epoch=\([0-9]*\) train_acc=\([0-9.]*\) test_acc=\([0-9.]*\).*/\1 \2 \3/p' \
        >"$work/ref-$seed"
    "$ddsas" train --genotype "$genotype" --db "$work/h.db" --threads 1 \
        --set dataset=cifar10 --set data_dir="$work" --set epochs="$epochs" \
        --set layers="$layers" --set init_channels="$c" --set batch_size="$batch" \
        --set cutout=0 --set drop_path_prob="$drop" --set seed="$seed" 2>/dev/null |
        sed -n 's/^train run [0-9]* epoch *\([0-9]*\)\/[0-9]*  train *\([0-9.]*\)% ([^)]*)  test *\([0-9.]*\)%.*/\1 \2 \3/p' |
        awk '{printf "%d %.3f %.3f\n", $1 - 1, $2 / 100, $3 / 100}' >"$work/ours-$seed"
    join "$work/ref-$seed" "$work/ours-$seed" |
        awk -v s="$seed" '{printf "%-5s %-6s %.3f / %.3f          %.3f / %.3f\n", s, $1, $2, $3, $4, $5}'
    finals+=("$(tail -1 "$work/ref-$seed" | cut -d' ' -f3) $(tail -1 "$work/ours-$seed" | cut -d' ' -f3)")
done
printf '%s\n' "${finals[@]}" | awk '
    {r[NR] = $1; o[NR] = $2; rs += $1; os += $2; rl = rl sprintf(" %.3f", $1); ol = ol sprintf(" %.3f", $2)}
    END {printf "final test acc  reference:%s  mean %.3f\n                ddsas:    %s  mean %.3f\n", rl, rs / NR, ol, os / NR}'
