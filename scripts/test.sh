#!/usr/bin/env bash
# Builds and runs every test: the second of the README's two commands, and what CI runs.
#
#   scripts/test.sh [extra pytest args...]
#
# 1. installs the Debian packages (scripts/install-deps.sh) and builds (scripts/build.sh);
# 2. runs the C++ unit tests with ctest;
# 3. runs the end-to-end suite (tests/e2e) against the real build/bidding-server, with a
#    Postgres and a Redis that the tests start themselves in temporary folders on free ports;
#    the browser tests among them (test_browser.py: headless Chromium on the pages in web/) need
#    tests/browser's npm packages, which scripts/install-browser-deps.sh installs first;
# 4. runs each libFuzzer target (fuzz/) for 30 s (scripts/fuzz.sh: Clang, ASan + UBSan);
# 5. runs the suite again against sanitizer builds (scripts/sanitize.sh): the unit tests and the
#    whole end-to-end suite under AddressSanitizer + UndefinedBehaviorSanitizer + libstdc++'s
#    assertions, the threaded unit tests and the concurrency-heavy end-to-end tests under
#    ThreadSanitizer; BIDDING_SANITIZERS=0 skips it locally (never in CI, where CI=true);
# 6. builds the Docker image and checks it for real (scripts/container-test.sh: its own Docker
#    engine, the image's migrate/serve/healthcheck/drain, two containers as two pods); where Docker
#    cannot run it says so in one line (and fails only in CI).
# Exits non-zero when anything fails; every part runs even when an earlier one fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

"$root/scripts/install-deps.sh"
"$root/scripts/build.sh"

status=0

echo "== unit tests (ctest)"
ctest --test-dir build --output-on-failure --timeout 120 || status=1

echo "== browser test dependencies (Node packages of tests/browser)"
"$root/scripts/install-browser-deps.sh" || status=1

echo "== end-to-end tests (pytest tests/e2e, the browser tests included)"
# Debian's python3, whose packages (pytest, websockets, psycopg2) install-deps installed.
BIDDING_SERVER="$root/build/bidding-server" /usr/bin/python3 -m pytest -q tests/e2e "$@" || status=1

echo "== fuzzing (scripts/fuzz.sh: each libFuzzer target for FUZZ_SECONDS, 30 s by default)"
"$root/scripts/fuzz.sh" || status=1

if [[ ${CI:-} == true || ${BIDDING_SANITIZERS:-1} != 0 ]]; then
    echo "== sanitizers (scripts/sanitize.sh: ASan+UBSan+assertions, then TSan)"
    "$root/scripts/sanitize.sh" all || status=1
else
    echo "== sanitizers: skipped (BIDDING_SANITIZERS=0; CI always runs them)"
fi

echo "== container image (scripts/container-test.sh: build, run, drain, two pods)"
"$root/scripts/container-test.sh" || status=1

if ((status != 0)); then
    echo "test: FAILED (see above)" >&2
fi
exit "$status"
