#!/usr/bin/env bash
# The chaos test of issue 14 at length: a sweep of small digits runs while
# a seeded injector kills (SIGKILL), stops (SIGSTOP, never continued) and
# terminates (SIGTERM) its workers and kills its orchestrator (restarting
# it), until every run is done; then it checks that every run is done once,
# every epoch recorded once and equal to an undisturbed sweep's, and prints
# the faults injected and survived. The test command runs a short form.
#
#   scripts/chaos.sh [FAULTS] [RUNS] [SEED]      (defaults: 100 40 14)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
export DDSAS_CHAOS_FAULTS="${1:-100}" DDSAS_CHAOS_RUNS="${2:-40}" DDSAS_CHAOS_SEED="${3:-14}"
cargo build --release --locked
cargo test --release --locked --test e2e chaos -- --nocapture --exact chaos::chaos_loses_no_run_and_no_epoch
