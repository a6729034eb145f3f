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
