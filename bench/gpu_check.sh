#!/usr/bin/env bash
# The device check of issue 5, as one script for a lent GPU machine (no Rust,
# no internet there). Build here (`source scripts/env.sh && cargo build
# --release`), then run it there with the binary carried:
#   carry: target/release/ddsas        command: bash bench/gpu_check.sh
# It points the loader at that machine's own torch 2.11 and writes its
# figures to $OUT/summary.txt (or /tmp/gpu_check). Every stage has its own
# time limit, so one slow stage cannot eat the others' device time; the whole
# script stays under ~8 minutes. A dry run on CPU checks the flow:
#   DEVICE=cpu QUICK=1 bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
PY=${PYTHON:-python3}
TORCH_DIR=$($PY -c 'import torch, os; print(os.path.dirname(torch.__file__))')
export LD_LIBRARY_PATH="$TORCH_DIR/lib:${LD_LIBRARY_PATH:-}"
B=target/release/ddsas
T0=$(date +%s)
log() { echo "== [$(( $(date +%s) - T0 )) s] $*" | tee -a "$SUMMARY"; }
say() { tee -a "$SUMMARY"; }

if [ "$QUICK" = 1 ]; then
    PAPER=(--layers 3 --C 4 --size 8 --batch 16); STEPS=3; IMAGES=200; SEARCH_STEPS=4; EPOCHS=1
    TRAIN=(--layers 3 --C 4 --batch 16 --size 8)
    SMALL_NET=(--set layers=3 --set init_channels=4 --set batch_size=16)
else
    PAPER=(--layers 8 --C 16 --size 32 --batch 64); STEPS=20; IMAGES=10000; SEARCH_STEPS=150; EPOCHS=2
    TRAIN=(--layers 20 --C 36 --batch 96 --size 32)
    SMALL_NET=()
fi

# Peak GPU memory while a command runs: nvidia-smi samples every 100 ms,
# minus what was in use before it started (whole GPU, so CUDA context and
# the caching allocator's reserve count, for ours and the reference alike).
MEM_PID=""
mem_start() {
    MEM_FILE="$OUT/$1.mem"
    if command -v nvidia-smi >/dev/null; then
        MEM_BASE=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 | head -1)
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 -lms 100 > "$MEM_FILE" &
        MEM_PID=$!
    fi
}
mem_stop() {
    if [ -n "$MEM_PID" ]; then
        kill "$MEM_PID" 2>/dev/null; wait "$MEM_PID" 2>/dev/null
        MEM_PID=""
        echo "  peak GPU memory ($1): $(( $(sort -n "$MEM_FILE" | tail -1) - MEM_BASE )) MiB above idle (nvidia-smi)" | say
    fi
}

log "machine"
(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi") | say
echo "torch: $($PY -c 'import torch; print(torch.__version__, torch.version.cuda)')" | say

log "0. smoke: can the binary reach the device?"
if ! timeout 120 "$B" bench step --device "$DEVICE" --layers 3 --C 4 --size 8 --batch 16 --L 16 --steps 2 2>&1 | say; then
    echo "FAILED: ddsas cannot run on $DEVICE here; nothing else would either" | say
    exit 1
fi

log "1. search step at the paper config: ours, ours with cuDNN autotuning, ours channels-last, the PyTorch reference"
for method in ddsas darts; do
    mem_start "ours_$method"
    timeout 150 "$B" bench step --device "$DEVICE" --method "$method" "${PAPER[@]}" --L 28 --steps "$STEPS" 2>&1 | say
    mem_stop "ours, $method"
    if [ "$DEVICE" = cuda ]; then
        echo "  with --cudnn-benchmark:" | say
        timeout 150 "$B" bench step --device cuda --cudnn-benchmark --method "$method" "${PAPER[@]}" --L 28 --steps "$STEPS" 2>&1 | say
        echo "  with --layout nhwc (channels-last, the CPU default):" | say
        timeout 150 "$B" bench step --device cuda --layout nhwc --method "$method" "${PAPER[@]}" --L 28 --steps "$STEPS" 2>&1 | say
        mem_start "ref_$method"
        echo "  reference:" | say
        timeout 150 $PY bench/ref_device.py bench/ref_search_step.py --method "$method" "${PAPER[@]}" --L 28 --steps "$STEPS" 2>&1 | grep -v Warn | say
        mem_stop "reference, $method"
    fi
done

log "1b. evaluation-network training step at the paper config (issue 12): ours, the reference, the reference channels-last"
mem_start train_ours
timeout 150 "$B" bench train --device "$DEVICE" "${TRAIN[@]}" --steps "$STEPS" 2>&1 | say
mem_stop "ours, train"
if [ "$DEVICE" = cuda ]; then
    echo "  reference:" | say
    mem_start train_ref
    timeout 150 $PY bench/ref_device.py bench/ref_train_step.py "${TRAIN[@]}" --steps "$STEPS" 2>&1 | grep -v Warn | say
    mem_stop "reference, train"
    echo "  reference, channels-last:" | say
    timeout 150 $PY bench/ref_device.py bench/ref_train_step.py "${TRAIN[@]}" --steps "$STEPS" --channels-last 2>&1 | grep -v Warn | say
fi

log "2. one DDSAS search at the paper's settings on random CIFAR-shaped data"
$PY bench/make_random_cifar.py "$OUT/data" "$IMAGES"
mem_start search
timeout 200 "$B" search --device "$DEVICE" --db "$OUT/search.db" --set dataset=cifar10 --set "data_dir=$OUT/data" \
    --set epochs=$EPOCHS --set steps_per_epoch=$SEARCH_STEPS --set L=28 --set M=50 ${SMALL_NET[@]+"${SMALL_NET[@]}"} \
    > "$OUT/search.log" 2>&1
echo "  exit status $?; last lines:" | say
grep -E "^run [0-9]+ epoch|error" "$OUT/search.log" | tail -6 | say
mem_stop "search"
echo "  (an epoch above is $SEARCH_STEPS search steps + a validation pass over the 25,000-image half; a full epoch is 390 steps)" | say
"$B" runs list --db "$OUT/search.db" 2>&1 | say
"$B" sql --db "$OUT/search.db" "SELECT run_id, epoch, round(wall_s, 2) AS wall_s, round(images_per_s) AS images_per_s, round(valid_acc, 3) AS valid_acc FROM epochs" 2>&1 | say

log "3. four searches at once on one GPU vs one alone (ddsas sweep run --runs-per-gpu)"
write_sweep() { # name seeds
    cat > "$OUT/$1.yaml" <<YAML
name: $1
description: throughput of concurrent searches on one GPU
base:
  dataset: cifar10
  data_dir: $OUT/data
  epochs: 1
  steps_per_epoch: $SEARCH_STEPS
  L: 28
  M: 50
$( [ "$QUICK" = 1 ] && printf '  layers: 3\n  init_channels: 4\n  batch_size: 16\n' )
seeds: $2
YAML
}
write_sweep gpu_one "[5]"
write_sweep gpu_four "[1, 2, 3, 4]"
for name in gpu_one gpu_four; do
    per=$( [ "$name" = gpu_four ] && echo 4 || echo 1 )
    if [ "$DEVICE" = cuda ]; then SLOTS=(--gpus 0 --runs-per-gpu "$per"); else SLOTS=(--cpu-workers 1); fi
    mem_start "$name"
    start=$(date +%s.%N)
    timeout 240 "$B" sweep run "$OUT/$name.yaml" "${SLOTS[@]}" --db "$OUT/sweeps.db" > "$OUT/$name.log" 2>&1
    status=$?
    end=$(date +%s.%N)
    mem_stop "$name"
    echo "  $name: exit $status, $($PY -c "print(round($end - $start, 1))") s wall for $per run(s) of $SEARCH_STEPS steps + validation" | say
done
"$B" runs list --db "$OUT/sweeps.db" 2>&1 | say
log "done; figures in $SUMMARY"
