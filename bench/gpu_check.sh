#!/usr/bin/env bash
# The device check of issue 5, as one script for a lent GPU machine (no Rust,
# no internet there). Build here, then run it there with the binary carried:
#   carry: target/release/ddsas        command: bash bench/gpu_check.sh
# It points the loader at that machine's own torch 2.11, and writes its
# figures to $OUT (or /tmp/gpu_check). A dry run on CPU checks the flow:
#   DEVICE=cpu QUICK=1 bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
TORCH_DIR=$($PY -c 'import torch, os; print(os.path.dirname(torch.__file__))')
export LD_LIBRARY_PATH="$TORCH_DIR/lib:${LD_LIBRARY_PATH:-}"
B=target/release/ddsas
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

if [ "$QUICK" = 1 ]; then
    PAPER=(--layers 3 --C 4 --size 8 --batch 16); STEPS=3; IMAGES=200; SEARCH_STEPS=4; EPOCHS=1
else
    PAPER=(--layers 8 --C 16 --size 32 --batch 64); STEPS=20; IMAGES=10000; SEARCH_STEPS=150; EPOCHS=2
fi

log "machine"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi") | tee -a "$OUT/summary.txt"

log "1. search step at the paper config (ours, then the PyTorch reference)"
for method in ddsas darts; do
    "$B" bench step --device "$DEVICE" --method "$method" "${PAPER[@]}" --L 28 --steps "$STEPS" | tee -a "$OUT/summary.txt"
    if [ "$DEVICE" = cuda ]; then
        $PY bench/ref_device.py bench/ref_search_step.py --method "$method" "${PAPER[@]}" --L 28 --steps "$STEPS" 2>&1 | grep -v Warn | tee -a "$OUT/summary.txt"
    fi
done

# Peak GPU memory of whatever runs, sampled by nvidia-smi every 200 ms.
watch_mem() {
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 200 > "$OUT/$1.mem" &
        echo $!
    fi
}
peak_mem() { [ -f "$OUT/$1.mem" ] && sort -n "$OUT/$1.mem" | tail -1 | sed 's/$/ MiB peak (nvidia-smi, whole GPU)/'; }

log "2. one DDSAS search at the paper's settings on random CIFAR-shaped data"
$PY bench/make_random_cifar.py "$OUT/data" "$IMAGES"
W=$(watch_mem search)
"$B" search --device "$DEVICE" --db "$OUT/search.db" --set dataset=cifar10 --set "data_dir=$OUT/data" \
    --set epochs=$EPOCHS --set steps_per_epoch=$SEARCH_STEPS --set L=28 --set M=50 \
    $( [ "$QUICK" = 1 ] && echo "--set layers=3 --set init_channels=4 --set batch_size=16" ) 2>&1 \
    | grep -E "^run" | tee -a "$OUT/summary.txt"
[ -n "${W:-}" ] && kill "$W"
peak_mem search | tee -a "$OUT/summary.txt"
echo "(seconds per epoch above cover $SEARCH_STEPS steps + a validation pass over the 25,000-image half; a full epoch is 390 steps)" | tee -a "$OUT/summary.txt"

log "3. four searches at once on one GPU vs one alone"
cat > "$OUT/four.yaml" <<YAML
name: gpu_four
description: throughput of 4 concurrent searches on one GPU
base:
  dataset: cifar10
  data_dir: $OUT/data
  epochs: 1
  steps_per_epoch: $SEARCH_STEPS
  L: 28
  M: 50
$( [ "$QUICK" = 1 ] && printf '  layers: 3\n  init_channels: 4\n  batch_size: 16\n' )
seeds: [1, 2, 3, 4]
YAML
sed -e 's/gpu_four/gpu_one/' -e 's/seeds: \[1, 2, 3, 4\]/seeds: [5]/' "$OUT/four.yaml" > "$OUT/one.yaml"
GPUS=$( [ "$DEVICE" = cuda ] && echo "--gpus 0" || echo "--cpu-workers 1" )
for name in one four; do
    per=$( [ "$name" = four ] && echo 4 || echo 1 )
    W=$(watch_mem "$name")
    start=$(date +%s.%N)
    "$B" sweep run "$OUT/$name.yaml" $GPUS $( [ "$DEVICE" = cuda ] && echo "--runs-per-gpu $per" ) --db "$OUT/sweeps.db" > "$OUT/$name.log" 2>&1
    end=$(date +%s.%N)
    [ -n "${W:-}" ] && kill "$W"
    echo "$name: $($PY -c "print(round($end - $start, 1))") s wall for $( [ "$name" = four ] && echo 4 || echo 1 ) run(s)" | tee -a "$OUT/summary.txt"
    peak_mem "$name" | tee -a "$OUT/summary.txt"
done
log "done; figures in $OUT/summary.txt"
