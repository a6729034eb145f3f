#!/usr/bin/env bash
# The test command of the README (and of CI): installs PyTorch 2.11.0 into
# the cache venv if needed, builds, and runs every test in the release
# profile (one build serves the binary and the tests).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
cargo build --release --locked
cargo test --release --locked --no-fail-fast "$@"
