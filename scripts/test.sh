#!/usr/bin/env bash
# The test command of the README (and of CI): installs PyTorch 2.11.0 into
# the cache venv if needed, builds, starts the services the tests use when
# they are not running (a throw-away PostgreSQL, scripts/postgres.sh; a
# one-node Slurm cluster, scripts/slurm.sh, which needs root), runs every
# test in the release profile (one build serves the binary and the tests),
# and stops again what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --locked

started=()
stop_started() {
    for service in "${started[@]}"; do
        "scripts/$service.sh" stop >/dev/null || true
    done
}
trap stop_started EXIT
# DDSAS_TEST_POSTGRES set beforehand names a server to use instead.
if [ -z "${DDSAS_TEST_POSTGRES:-}" ]; then
    if ! scripts/postgres.sh url >/dev/null 2>&1; then
        echo ">> starting a throw-away PostgreSQL for the tests (scripts/postgres.sh)" >&2
        scripts/postgres.sh start >/dev/null
        started+=(postgres)
    fi
    DDSAS_TEST_POSTGRES="$(scripts/postgres.sh url)"
    export DDSAS_TEST_POSTGRES
fi
# DDSAS_TEST_SLURM_CONF set beforehand names a cluster's slurm.conf instead.
if [ -z "${DDSAS_TEST_SLURM_CONF:-}" ]; then
    if scripts/slurm.sh status | grep -q "not running"; then
        echo ">> starting a one-node Slurm cluster for the tests (scripts/slurm.sh)" >&2
        scripts/slurm.sh start >/dev/null
        started+=(slurm)
    fi
    DDSAS_TEST_SLURM_CONF="$(scripts/slurm.sh env | sed 's/^SLURM_CONF=//')"
    export DDSAS_TEST_SLURM_CONF
fi

cargo test --release --locked --no-fail-fast "$@"
