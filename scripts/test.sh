#!/usr/bin/env bash
# The test command of the README (and of CI): installs PyTorch 2.11.0 into
# the cache venv if needed, builds, starts the services the tests use when
# they are not running (a throw-away PostgreSQL, scripts/postgres.sh, and
# a second one that accepts only TLS, scripts/postgres.sh --tls; a
# one-node Slurm cluster, scripts/slurm.sh, which needs root), runs every
# test in the release profile (one build serves the binary and the tests),
# builds the light build (no libtorch) and runs its tests, and stops again
# what it started. The full build has the `dist` feature (data-parallel
# training on c10d's Gloo) when Gloo's headers are there or, as root, once
# Debian's libgloo-dev is installed; without them its tests are skipped.
# It has the `turbojpeg` feature (ImageNet decoding by libjpeg-turbo) when
# pkg-config finds libturbojpeg or, as root, once Debian's
# libturbojpeg0-dev is installed; the ImageNet data tests then run a
# second time without it, as a machine without libjpeg-turbo builds them.
#
# A service that cannot be started here (no root, PostgreSQL not
# installed, no chromium for the browser tests) does not stop the command:
# the tests that need it are skipped, and one line per service after the
# tests says how many, why, and what would run them (the skipped tests are
# listed in target/skipped-tests.tsv). DDSAS_REQUIRE_SERVICES=1 (CI, which
# has root) makes every service mandatory: one that cannot be started, or
# a test that would be skipped, fails the command.
#
# Arguments go to `cargo test` (a filter: ./scripts/test.sh serve::).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
required="${DDSAS_REQUIRE_SERVICES:-}"
read -r -a features <<<"$(build_features)"
has_feature() { [[ ",${features[1]:-}," == *",$1,"* ]]; }
if [ "$required" = 1 ]; then
    has_feature dist || { echo "error: Gloo's headers (libgloo-dev) are missing and DDSAS_REQUIRE_SERVICES=1: the dist tests cannot be built" >&2; exit 1; }
    has_feature turbojpeg || { echo "error: libjpeg-turbo (libturbojpeg0-dev, pkg-config) is missing and DDSAS_REQUIRE_SERVICES=1: the turbojpeg tests cannot be built" >&2; exit 1; }
fi
cargo build --release --locked "${features[@]}"

# Each started service as "script [flags]", to stop it with the same flags.
started=()
stop_started() {
    local script flags
    for service in "${started[@]}"; do
        read -r script flags <<<"$service"
        # shellcheck disable=SC2086 # the flags are words
        "scripts/$script.sh" stop $flags >/dev/null || true
    done
}
trap stop_started EXIT

# Starts scripts/$1.sh ($2 in messages, the rest its flags); false, with a
# line saying why, when it cannot (and the command ends, when services are
# required).
start_service() {
    local script=$1 name=$2 err why
    shift 2
    echo ">> starting $name for the tests (scripts/$script.sh $*)" >&2
    if err="$("scripts/$script.sh" start "$@" 2>&1 >/dev/null)"; then
        started+=("$script $*")
        return 0
    fi
    why="$(printf '%s\n' "$err" | grep -v '^[[:space:]]*$' | tail -n 1 | sed 's/^error: //')"
    if [ "$required" = 1 ]; then
        echo "error: $name did not start and DDSAS_REQUIRE_SERVICES=1: $why" >&2
        exit 1
    fi
    echo ">> $name cannot be started here ($why): the tests that need it will be skipped (summary at the end)" >&2
    return 1
}

# DDSAS_TEST_POSTGRES set beforehand names a server to use instead.
if [ -z "${DDSAS_TEST_POSTGRES:-}" ]; then
    if scripts/postgres.sh url >/dev/null 2>&1 || start_service postgres PostgreSQL; then
        DDSAS_TEST_POSTGRES="$(scripts/postgres.sh url)"
        export DDSAS_TEST_POSTGRES
    fi
fi
# DDSAS_TEST_POSTGRES_TLS set beforehand names a TLS-only server instead
# (its URL with sslmode=verify-full, sslrootcert and a password).
if [ -z "${DDSAS_TEST_POSTGRES_TLS:-}" ]; then
    if scripts/postgres.sh url --tls >/dev/null 2>&1 || start_service postgres "PostgreSQL over TLS" --tls; then
        DDSAS_TEST_POSTGRES_TLS="$(scripts/postgres.sh url --tls)"
        export DDSAS_TEST_POSTGRES_TLS
    fi
fi
# DDSAS_TEST_SLURM_CONF set beforehand names a cluster's slurm.conf instead.
if [ -z "${DDSAS_TEST_SLURM_CONF:-}" ]; then
    if ! scripts/slurm.sh status | grep -q "not running" || start_service slurm "the one-node Slurm cluster"; then
        DDSAS_TEST_SLURM_CONF="$(scripts/slurm.sh env | sed 's/^SLURM_CONF=//')"
        export DDSAS_TEST_SLURM_CONF
    fi
fi

# Each skipped test adds a line (service, test, why, how to run it).
target="${CARGO_TARGET_DIR:-target}"
mkdir -p "$target"
DDSAS_TEST_SKIPPED="$(cd "$target" && pwd)/skipped-tests.tsv"
export DDSAS_TEST_SKIPPED
: >"$DDSAS_TEST_SKIPPED"
if ! has_feature dist; then
    printf '%s\t%s\t%s\t%s\n' "Gloo's headers" "nas::dist::tests" "libgloo-dev is not installed and this is not root" \
        "as root: \`./scripts/test.sh nas::dist\` (installs libgloo-dev), or set DDSAS_GLOO_INCLUDE" >>"$DDSAS_TEST_SKIPPED"
fi

if ! has_feature turbojpeg; then
    printf '%s\t%s\t%s\t%s\n' "libjpeg-turbo" "data::imagenet::tests::engine::libjpeg_turbo_and_zune_jpeg_decode_the_same_pixels" \
        "libturbojpeg0-dev (or pkg-config) is not installed and this is not root" \
        "as root: \`./scripts/test.sh data::imagenet\` (installs libturbojpeg0-dev and pkg-config)" >>"$DDSAS_TEST_SKIPPED"
fi

status=0
cargo test --release --locked --no-fail-fast "${features[@]}" "$@" || status=$?

# ImageNet's decoding without libjpeg-turbo (zune-jpeg, whole images, as
# a machine without libturbojpeg0-dev builds it): the data tests again,
# built without the turbojpeg feature (ddsas's library is rebuilt).
if has_feature turbojpeg && [ "$#" = 0 ]; then
    without=()
    if has_feature dist; then without=(--features dist); fi
    cargo test --release --locked --no-fail-fast "${without[@]}" --lib -- data::imagenet || status=1
fi

# The full build loads libtorch_cuda (and with it the CUDA libraries, ~350
# MB) only when a command asks for a GPU or NCCL, never at start: NCCL's
# part of the shim is a library of its own (libddsas_nccl.so).
if ldd "$target/release/ddsas" | grep -q libtorch_cuda; then
    echo "error: target/release/ddsas loads libtorch_cuda at start (something links it in; NCCL's code belongs in src/nas/dist/shim_nccl.cpp)" >&2
    status=1
fi

# The light build (`--no-default-features`: no libtorch, for reports and
# `serve` on a machine without torch): it must build, link no libtorch, and
# pass the library's tests and tests/light.rs (the training commands refuse
# in one line). It shares the target folder: only ddsas itself is rebuilt.
light_build() {
    cargo build --release --locked --no-default-features || return 1
    if ldd "$target/release/ddsas" | grep -i torch; then
        echo "error: the light build (--no-default-features) links libtorch" >&2
        return 1
    fi
    cargo test --release --locked --no-fail-fast --no-default-features --lib --test light "$@"
}
light_build "$@" || status=1
# Leave the full build's binary in place, as the build above made it.
cargo build --release --locked "${features[@]}"

# One line per service whose tests were skipped, after cargo's output.
if [ -s "$DDSAS_TEST_SKIPPED" ]; then
    echo
    awk -F'\t' '
        !($1 in n) { order[++k] = $1; why[$1] = $3; how[$1] = $4 }
        { n[$1]++ }
        END { for (i = 1; i <= k; i++) { s = order[i]; printf "skipped %d test(s) that need %s: %s; to run them: %s\n", n[s], s, why[s], how[s] } }
    ' "$DDSAS_TEST_SKIPPED"
    echo "(the skipped tests are listed in $DDSAS_TEST_SKIPPED)"
    if [ "$required" = 1 ] && [ "$status" = 0 ]; then
        status=1
    fi
fi
exit "$status"
