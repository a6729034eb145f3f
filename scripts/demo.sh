#!/usr/bin/env bash
# The main job of the README: sets everything up (PyTorch in a cache venv,
# the build), runs the demo sweep on the bundled digits into results.db and
# draws every figure under reports/demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
# shellcheck disable=SC2046 # the flags are words
cargo build --release --locked $(build_features)
DDSAS=target/release/ddsas
"$DDSAS" sweep run sweeps/demo.yaml --db results.db
"$DDSAS" report all --sweep demo --db results.db --out reports/demo
echo
echo "done: the database is results.db, the figures are in reports/demo/ (open reports/demo/index.html)"
echo "ask it things, e.g.: $DDSAS runs list --sweep demo --sort -valid_acc"
