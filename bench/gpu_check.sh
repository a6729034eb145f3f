#!/usr/bin/env bash
# The device check of issue 5, as one script for a lent GPU machine (no Rust,
# no internet there). Build here (`source scripts/env.sh && cargo build
# --release --features dist`), then run it there with the binary carried,
# and beside it the NCCL half of the shim (loaded only for NCCL runs):
#   carry: target/release/ddsas target/release/libddsas_nccl.so
#   command: bash bench/gpu_check.sh
# It points the loader at that machine's own torch 2.11 and writes its
# figures to $OUT/summary.txt (or /tmp/gpu_check). Every stage has its own
# time limit, so one slow stage cannot eat the others' device time; the whole
# script stays under ~8 minutes, plus up to ~10 for stage 4 (the scaling
# check of data-parallel training, which needs 2 GPUs or more; SKIP_SCALING=1
# leaves it out). A dry run on CPU checks the flow:
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

# Data-parallel scaling (issue 25): the ImageNet network trained by
# `ddsas train --nproc 1` and `--nproc N` (one GPU per rank, NCCL where the
# binary has it), 128 images per rank per step as the appendix's 1024 on 8
# GPUs, on the same folder of JPEGs; images/s of the second epoch (the
# first pays for cuDNN's and NCCL's set-up). Target: N ranks at least
# 0.9 x N x one rank. The folder: IMAGENET_SRC, made on a machine with
# scikit-learn by `python bench/make_imagenet_bench.py DIR --classes 10
# --train 20 --val 4` and carried (about 1 MB), else made here if this
# Python can; its files are linked many times over so that an epoch has
# the steps asked for. `ddsas bench train --imagenet` gives one GPU's
# step on random tensors beside it (no decoding).
log "4. data-parallel scaling of the ImageNet network: ddsas train --nproc 1 vs --nproc N (images/s)"
if [ "$DEVICE" = cuda ]; then
    NPROC=${NPROC:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')}
    SCALE_NET=(--set layers=14 --set init_channels=48 --set crop_size=224)
    PER_RANK=128; SCALE_STEPS=${SCALE_STEPS:-30}; SCALE_BENCH=()
else
    NPROC=${NPROC:-2}
    SCALE_NET=(--set layers=3 --set init_channels=4 --set crop_size=32)
    PER_RANK=8; SCALE_STEPS=${SCALE_STEPS:-3}; SCALE_BENCH=(--layers 3 --C 4 --size 32)
fi
IMAGENET_SRC=${IMAGENET_SRC:-$OUT/inbench_src}
if [ ! -d "$IMAGENET_SRC/train" ]; then
    $PY bench/make_imagenet_bench.py "$IMAGENET_SRC" --classes 10 --train 20 --val 4 > /dev/null 2>&1 ||
        echo "  (no JPEG folder: carry one made by bench/make_imagenet_bench.py and set IMAGENET_SRC)" | say
fi
# Links enough training images for SCALE_STEPS steps of NPROC ranks.
link_imagenet() { # src dst copies
    for split in train val; do
        for class in "$1/$split"/*/; do
            name=$(basename "$class"); mkdir -p "$2/$split/$name"
            copies=$([ "$split" = train ] && echo "$3" || echo 1)
            for k in $(seq 1 "$copies"); do
                for f in "$class"*.JPEG; do ln -sf "$(realpath "$f")" "$2/$split/$name/${k}_$(basename "$f")"; done
            done
        done
    done
}
scale_ips() { # nproc: images/s of epoch 1 of a fresh run
    local db="$OUT/scale_$1.db"
    rm -f "$db"*
    timeout 280 "$B" train --quiet --device "$DEVICE" --nproc "$1" --genotype darts_v2 --db "$db" \
        --set dataset=imagenet --set "data_dir=$OUT/inbench" "${SCALE_NET[@]}" \
        --set batch_size=$((PER_RANK * $1)) --set epochs=2 --set warmup_epochs=0 \
        --set steps_per_epoch="$SCALE_STEPS" > "$OUT/scale_$1.log" 2>&1
    echo "  --nproc $1: exit $?; $(tail -1 "$OUT/scale_$1.log")" | say >&2
    "$B" sql --db "$db" --format csv "SELECT round(images_per_s, 1) FROM train_epochs WHERE epoch = 1" 2>/dev/null | tail -1
}
if [ "${SKIP_SCALING:-0}" = 1 ]; then
    echo "  skipped (SKIP_SCALING=1)" | say
elif [ -d "$IMAGENET_SRC/train" ] && [ "$NPROC" -ge 2 ]; then
    per_class=$(find "$IMAGENET_SRC/train" -name '*.JPEG' | wc -l)
    per_class=$(( per_class / $(find "$IMAGENET_SRC/train" -mindepth 1 -maxdepth 1 -type d | wc -l) ))
    link_imagenet "$IMAGENET_SRC" "$OUT/inbench" $(( (SCALE_STEPS * PER_RANK * NPROC) / (10 * per_class) + 1 ))
    ONE=$(scale_ips 1)
    MANY=$(scale_ips "$NPROC")
    echo "  images/s: 1 rank $ONE, $NPROC ranks $MANY" | say
    $PY -c "
one, many, n = float('${ONE:-0}' or 0), float('${MANY:-0}' or 0), $NPROC
ratio = many / (n * one) if one > 0 else float('nan')
print(f'  scaling: {ratio:.2f} x linear on {n} ranks (target 0.9): ' + ('ok' if ratio >= 0.9 else 'BELOW TARGET'))" | say
    echo "  one GPU on random tensors (bench train --imagenet, batch $PER_RANK, no decoding):" | say
    timeout 150 "$B" bench train --imagenet --device "$DEVICE" --batch "$PER_RANK" --steps "$STEPS" ${SCALE_BENCH[@]+"${SCALE_BENCH[@]}"} 2>&1 | say
else
    echo "  skipped: needs 2 devices or more (NPROC=$NPROC) and a JPEG folder" | say
fi
log "done; figures in $SUMMARY"
