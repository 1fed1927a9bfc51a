#!/usr/bin/env bash
# Installs what the browser tests (tests/e2e/test_browser.py -> tests/browser/run.mjs) need:
#   - Node.js and npm (Debian's nodejs + npm when `node` is missing);
#   - Chromium (Debian's chromium, from packages.txt [test]) when /usr/bin/chromium is missing;
#   - tests/browser/node_modules from package-lock.json (`npm ci`), only when the lock file changed
#     since the last install (a stamp in node_modules/ remembers it), so a warm machine pays nothing.
# Run by scripts/test.sh before the end-to-end suite, and by test_browser.py when something is missing.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dir="$root/tests/browser"

sudo=()
if ((EUID != 0)) && command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
fi

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "install-browser-deps: installing Debian's nodejs and npm"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -q
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
        install -y -q --no-install-recommends nodejs npm
fi

if [[ ! -x /usr/bin/chromium ]]; then
    "$root/scripts/install-deps.sh" test
fi

stamp="$dir/node_modules/.installed-lock-sha256"
want="$(sha256sum "$dir/package-lock.json" | cut -d' ' -f1) node-$(node --version)"
if [[ -f $stamp && $(cat "$stamp") == "$want" && -d $dir/node_modules/playwright-core ]]; then
    echo "install-browser-deps: tests/browser/node_modules is up to date"
    exit 0
fi

echo "install-browser-deps: npm ci in tests/browser"
cd "$dir"
# A registry can hiccup: try a few times.
for attempt in 1 2 3; do
    if npm ci --no-audit --no-fund --loglevel=error; then
        echo "$want" >"$stamp"
        echo "install-browser-deps: done"
        exit 0
    fi
    echo "install-browser-deps: npm ci failed (attempt $attempt of 3)" >&2
    sleep $((attempt * 5))
done
echo "install-browser-deps: could not install tests/browser's npm packages" >&2
exit 1
