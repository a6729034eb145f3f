#!/usr/bin/env bash
# The ImageNet input pipeline against torchvision (issue 22), reproducible
# from this repository alone: installs what the reference and the folder
# script need into the venv (torchvision of the venv's torch, Pillow,
# scikit-learn and scikit-image for their shipped photographs), makes the
# benchmark folder of 500x375 quality-90 JPEGs if DIR lacks it
# (bench/make_imagenet_bench.py), then runs `ddsas bench data --imagenet`
# and bench/ref_imagenet_loader.py alternately, ROUNDS times at each thread
# count, printing images/s and the CPU seconds (user + sys) of each run.
#
#   bench/imagenet_pipeline.sh [DIR]           (default: /tmp/inbench)
#   THREADS="1 2" CROP=224 BATCH=64 BATCHES=30 ROUNDS=2 bench/imagenet_pipeline.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
dir=${1:-/tmp/inbench}
threads=${THREADS:-1 2} crop=${CROP:-224} batch=${BATCH:-64} batches=${BATCHES:-30}
rounds=${ROUNDS:-2}
ddsas=target/release/ddsas
[ -x "$ddsas" ] || cargo build --release --locked

# torchvision's release that pairs with the venv's torch (2.11 -> 0.26).
vision=$(python -c "import torch; v = torch.__version__.split('+')[0].split('.'); print(f'0.{int(v[1]) + 15}.*')")
python -c "import torchvision, sklearn, skimage, PIL" 2>/dev/null ||
    python -m pip install -q "torchvision==$vision" pillow scikit-learn scikit-image
[ -d "$dir/train" ] || python bench/make_imagenet_bench.py "$dir" >/dev/null

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# One run: its images/s and the CPU seconds it took, on one line.
timed() {
    /usr/bin/time -f '%U %S' -o "$work/time" "$@" >"$work/out" 2>"$work/err" || {
        echo "failed: $*" >&2
        cat "$work/err" >&2
        exit 1
    }
    printf '%s %s\n' "$(sed -n 's/^images_per_s=//p' "$work/out")" \
        "$(awk '{printf "%.2f", $1 + $2}' "$work/time")"
}

echo "crop $crop, batch $batch, $batches batches timed, $dir"
printf '%-8s %-6s %-24s %-24s\n' threads round "ddsas images/s (CPU s)" "torchvision images/s (CPU s)"
for t in $threads; do
    for r in $(seq "$rounds"); do
        read -r ours ours_cpu < <(timed "$ddsas" bench data --imagenet "$dir" --threads "$t" \
            --batch "$batch" --crop "$crop" --batches "$batches")
        read -r ref ref_cpu < <(timed python bench/ref_imagenet_loader.py "$dir" --workers "$t" \
            --batch "$batch" --crop "$crop" --batches "$batches")
        printf '%-8s %-6s %-24s %-24s\n' "$t" "$r" "$ours ($ours_cpu)" "$ref ($ref_cpu)"
    done
done
