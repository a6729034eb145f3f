#!/usr/bin/env bash
# Makes sure Debian's headless-capable `chromium` is installed (the browser
# tests of `ddsas serve` drive it): installs it with apt as root, else says
# what to run. Prints the browser's path.
set -euo pipefail
for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null 2>&1; then command -v "$b"; exit 0; fi
done
if [ "$(id -u)" != 0 ]; then
    echo "error: chromium is not installed and this is not root: run \`sudo apt-get install -y chromium\` (Debian) and rerun the tests" >&2
    exit 1
fi
echo ">> installing chromium (apt-get; once)" >&2
apt-get update -qq >&2
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
command -v chromium
