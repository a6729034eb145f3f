#!/usr/bin/env bash
# The README's screenshot: serves DB (default results.db, the demo's) and
# has headless chromium photograph the sweep page of SWEEP (default demo)
# into docs/img/sweep_page.png.
set -euo pipefail
cd "$(dirname "$0")/.."
DB="${1:-results.db}"
SWEEP="${2:-demo}"
BROWSER="$(scripts/browser.sh)"
OUT="$(mktemp -d)"
target/release/ddsas serve --db "$DB" --port 0 >"$OUT/serve.out" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$OUT"' EXIT
for _ in $(seq 50); do grep -q http "$OUT/serve.out" && break; sleep 0.1; done
URL="$(grep -o 'http://[^ ]*' "$OUT/serve.out" | head -1)"
"$BROWSER" --headless --no-sandbox --disable-gpu --hide-scrollbars --user-data-dir="$OUT/profile" \
    --window-size=1400,900 --virtual-time-budget=5000 \
    --screenshot="$PWD/docs/img/sweep_page.png" "${URL}sweep/$SWEEP" 2>/dev/null
echo "wrote docs/img/sweep_page.png from ${URL}sweep/$SWEEP"
