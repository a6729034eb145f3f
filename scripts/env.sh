# Sourced by the other scripts: makes sure PyTorch 2.11.0 is installed in a
# cache venv outside the repository and points the tch build at it.
# Nothing here needs to be run by hand.
set -euo pipefail

TORCH_VERSION=2.11.0
DDSAS_CACHE="${DDSAS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ddsas}"
DDSAS_VENV="$DDSAS_CACHE/torch-$TORCH_VERSION"

torch_ok() {
    [ -x "$DDSAS_VENV/bin/python" ] &&
        "$DDSAS_VENV/bin/python" -c "import torch, sys; sys.exit(0 if torch.__version__.split('+')[0] == '$TORCH_VERSION' else 1)" 2>/dev/null
}

if ! torch_ok; then
    echo ">> installing torch==$TORCH_VERSION into $DDSAS_VENV (once; reused by every clone)"
    mkdir -p "$DDSAS_CACHE"
    python3 -m venv "$DDSAS_VENV"
    "$DDSAS_VENV/bin/pip" install --disable-pip-version-check -q "torch==$TORCH_VERSION"
    torch_ok || { echo "error: torch $TORCH_VERSION did not install into $DDSAS_VENV" >&2; exit 1; }
fi

# torch-sys reads the torch of the active venv; build.rs bakes its lib/ into
# the binary's rpath, so nothing is needed at run time.
export VIRTUAL_ENV="$DDSAS_VENV"
export PATH="$DDSAS_VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
unset LIBTORCH || true

# The cargo flags of the full build: `--features dist` (data-parallel
# training, `nas::dist`) when Gloo's headers are there, installing Debian's
# libgloo-dev first as root; nothing otherwise (one line on stderr says
# what --nproc then needs). DDSAS_GLOO_INCLUDE names another folder.
dist_features() {
    local dir="${DDSAS_GLOO_INCLUDE:-/usr/include}"
    if [ ! -f "$dir/gloo/algorithm.h" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo ">> installing libgloo-dev (apt-get; once) for the dist feature" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgloo-dev; } >&2 || true
    fi
    if [ -f "$dir/gloo/algorithm.h" ]; then
        echo "--features dist"
    else
        echo ">> building without the dist feature (ddsas train --nproc N needs Gloo's headers: sudo apt-get install libgloo-dev)" >&2
    fi
}
