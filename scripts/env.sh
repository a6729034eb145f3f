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

# The dist shim's NCCL path (build.rs) needs the CUDA runtime headers
# complete: the torch wheel's CUDA 13 folder (nvidia/cu13/include) has
# nccl.h beside it but lacks crt/ and CCCL's nv/target, which pip's
# nvidia-cuda-crt (a 130 KB wheel) and nvidia-cuda-cccl (a 3 MB wheel,
# 15 MB of headers) add, at the runtime's CUDA version. Installed once
# where the wheel has NCCL and lacks them; without them build.rs leaves
# NCCL out and says so in one warning (DDSAS_CUDA_INCLUDE names other
# folders).
cuda_headers() {
    local site inc cuda
    site="$("$DDSAS_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    inc="$site/nvidia/cu13/include"
    [ -f "$site/nvidia/nccl/include/nccl.h" ] && [ -d "$inc" ] || return 0
    [ -f "$inc/crt/host_defines.h" ] && [ -f "$inc/nv/target" ] && return 0
    cuda="$("$DDSAS_VENV/bin/python" -c "import importlib.metadata as m; print('.'.join(m.version('nvidia-cuda-runtime').split('.')[:2]))" 2>/dev/null)" || return 0
    echo ">> installing nvidia-cuda-crt and nvidia-cuda-cccl $cuda.* (CUDA headers for the NCCL path of the dist feature; once)" >&2
    "$DDSAS_VENV/bin/pip" install --disable-pip-version-check -q --no-deps \
        "nvidia-cuda-crt==$cuda.*" "nvidia-cuda-cccl==$cuda.*" >&2 ||
        echo ">> the CUDA headers did not install: the dist feature builds without NCCL" >&2
}
cuda_headers

# torch-sys reads the torch of the active venv; build.rs bakes its lib/ into
# the binary's rpath, so nothing is needed at run time.
export VIRTUAL_ENV="$DDSAS_VENV"
export PATH="$DDSAS_VENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
unset LIBTORCH || true

# Installs Debian packages, once, as root where apt-get is there; nothing
# otherwise (the caller says what is then missing).
apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo ">> installing $* (apt-get; once)" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >&2 || true
    fi
}

# The optional features of the full build, each on where what it needs is
# there: `dist` (data-parallel training, `nas::dist`) needs Gloo's headers
# (Debian's libgloo-dev; DDSAS_GLOO_INCLUDE names another folder),
# `turbojpeg` (ImageNet images decoded by libjpeg-turbo, at a reduced
# scale where the crop allows) the system's libturbojpeg found by
# pkg-config (libturbojpeg0-dev, pkg-config). As root, what is missing is
# installed first, in one apt-get run; a feature still missing is left
# out with one line on stderr saying what it would need.
gloo_found() {
    [ -f "${DDSAS_GLOO_INCLUDE:-/usr/include}/gloo/algorithm.h" ]
}

turbojpeg_found() {
    command -v pkg-config >/dev/null && pkg-config --exists libturbojpeg
}

# The cargo flags of the full build: `--features` and the optional
# features this machine can build, or nothing.
build_features() {
    local missing=() found=()
    gloo_found || missing+=(libgloo-dev)
    turbojpeg_found || missing+=(libturbojpeg0-dev pkg-config)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt_install "${missing[@]}"
    fi
    if gloo_found; then
        found+=(dist)
    else
        echo ">> building without the dist feature (ddsas train --nproc N needs Gloo's headers: sudo apt-get install libgloo-dev)" >&2
    fi
    if turbojpeg_found; then
        found+=(turbojpeg)
    else
        echo ">> building without the turbojpeg feature (ImageNet decoding falls back to zune-jpeg, whole images, slower: sudo apt-get install libturbojpeg0-dev pkg-config)" >&2
    fi
    if [ "${#found[@]}" -gt 0 ]; then
        (IFS=,; echo "--features ${found[*]}")
    fi
}
