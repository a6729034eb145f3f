#!/usr/bin/env bash
# The chaos test of issue 14 at length: a sweep of small digits runs while
# a seeded injector kills (SIGKILL), stops (SIGSTOP, never continued) and
# terminates (SIGTERM) its workers and kills its orchestrator (restarting
# it), until every run is done; then it checks that every run is done once,
# every epoch recorded once and equal to an undisturbed sweep's, and prints
# the faults injected and survived. The test command runs a short form.
#
#   scripts/chaos.sh [FAULTS] [RUNS] [SEED] [sqlite|postgres]
#                                         (defaults: 100 40 14 sqlite)
#
# With postgres the history is a database of its own on DDSAS_TEST_POSTGRES
# or, when that is unset, on the throw-away server of scripts/postgres.sh
# (started here if it is not running, and then stopped at the end).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export DDSAS_CHAOS_FAULTS="${1:-100}" DDSAS_CHAOS_RUNS="${2:-40}" DDSAS_CHAOS_SEED="${3:-14}"
backend="${4:-sqlite}"
case "$backend" in
    sqlite) test=chaos::chaos_loses_no_run_and_no_epoch ;;
    postgres)
        test=chaos::chaos_loses_no_run_and_no_epoch_on_postgres
        if [ -z "${DDSAS_TEST_POSTGRES:-}" ]; then
            if ! scripts/postgres.sh url >/dev/null 2>&1; then
                scripts/postgres.sh start >/dev/null
                trap 'scripts/postgres.sh stop >/dev/null' EXIT
            fi
            DDSAS_TEST_POSTGRES="$(scripts/postgres.sh url)"
            export DDSAS_TEST_POSTGRES
        fi
        ;;
    *) echo "chaos.sh: the backend is sqlite or postgres, not '$backend'" >&2; exit 2 ;;
esac
cargo build --release --locked
cargo test --release --locked --test e2e chaos -- --nocapture --exact "$test"
