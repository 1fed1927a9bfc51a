#!/usr/bin/env bash
# The test suite against sanitizer builds of the server: part of scripts/test.sh (so of CI).
#
#   scripts/sanitize.sh [asan|tsan|all]      (default: all, asan then tsan)
#
# asan  AddressSanitizer + LeakSanitizer + UndefinedBehaviorSanitizer + libstdc++'s assertions
#       (_GLIBCXX_ASSERTIONS), preset `asan`, into build-asan/: the unit tests, then the WHOLE
#       end-to-end suite (the browser tests included) against build-asan/bidding-server.
# tsan  ThreadSanitizer, preset `tsan`, into build-tsan/: the unit tests that run threads
#       (tests/CMakeLists.txt thread_test_sources: the database pool and what runs on it, the
#       watchdog, connection leases; the single-threaded ones would only repeat what the asan run
#       checks, and building them is half of the unit tests' compile time), then the
#       concurrency-heavy end-to-end tests (TSAN_E2E below).
#
# Each flavour builds only the server and its unit tests (no load tool: -DBIDDING_BUILD_BENCH=OFF),
# with ccache, once; the presets use -g1 (line tables: enough for the reports' stacks, a third less
# compile time than -g), and the unit tests are compiled at -O0 (BIDDING_UNIT_TEST_OPTIONS: they
# run in seconds either way, and compile a third faster). The tests that drive load use the
# normal build's tool, build/bidding-bench (built here when missing): a client, not what is
# being checked.
#
# In both, the overload flood lasts BIDDING_FLOOD_SECONDS (20 s here, 60 s in the normal run) and the
# soak BIDDING_SOAK_SECONDS (30 s here, 90 s in the normal run): the sanitized server is slower,
# and the budget of a .ci/run is small. The e2e harness reads BIDDING_SANITIZER to scale its time
# bounds and deadlines (harness.timing_bound), and fails any test during which a sanitizer wrote a
# report (every sanitized process writes them to test-artifacts/<flavour>/reports/, log_path),
# whatever the exit code. Sanitizer options are below; suppressions, for third-party code only,
# are in tests/sanitizers/.
#
# Environment: CCACHE_DIR and the rest as scripts/build.sh; BIDDING_SLOWDOWN overrides the
# harness's factor. Logs: test-artifacts/<flavour>/ (e2e artifacts, sanitizer reports).
# Exits non-zero when anything fails; every part runs even when an earlier one fails.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

what=${1:-all}
case $what in
    asan) flavours=(asan) ;;
    tsan) flavours=(tsan) ;;
    all) flavours=(asan tsan) ;;
    *) echo "usage: scripts/sanitize.sh [asan|tsan|all]" >&2; exit 2 ;;
esac

# The concurrency-heavy end-to-end tests run under ThreadSanitizer.
TSAN_E2E=(
    tests/e2e/test_multi_pod.py
    tests/e2e/test_concurrency.py
    tests/e2e/test_drain.py
    tests/e2e/test_redis_faults.py
    tests/e2e/test_postgres_faults.py
    tests/e2e/test_slow_consumers.py
    tests/e2e/test_soak.py
    tests/e2e/test_overload.py
    tests/e2e/test_timed_auctions.py
)

status=0
timings=()

# Runs "$@" as one timed part: its time goes to the summary at the end.
phase() {
    local label=$1
    shift
    local started=$SECONDS rc=0
    "$@" || rc=$?
    timings+=("$(printf '%-28s %4d s  %s' "$label" $((SECONDS - started)) "$([[ $rc == 0 ]] && echo ok || echo "FAILED ($rc)")")")
    return "$rc"
}

# The sanitizer options of `flavour` as VAR=value words, into the array senv; with a reports
# folder, every sanitized process writes its reports there (log_path: one file per process,
# report.<pid>), so that none is lost, whoever started the process and wherever its stderr went.
sanitizer_env() {
    local flavour=$1 reports=${2:-}
    local log=${reports:+:log_path=$reports/report}
    senv=(BIDDING_SANITIZER="$flavour")
    if [[ $flavour == asan ]]; then
        # halt/abort: the first report ends the process (and fails its test); handle_abort: a
        # failed _GLIBCXX_ASSERTIONS check (abort) gets a stack trace too; detect_leaks: the
        # server frees everything on its way out after SIGTERM (the drain's DRAIN_TIMEOUT
        # fallback, _Exit, skips the check).
        senv+=(ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=1:handle_abort=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1$log"
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1$log"
               LSAN_OPTIONS="suppressions=$root/tests/sanitizers/lsan.supp:print_suppressions=0")
    else
        senv+=(TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$root/tests/sanitizers/tsan.supp:print_suppressions=0$log")
    fi
}

run_flavour() {
    local flavour=$1 rc=0
    local build_dir="$root/build-$flavour"
    local artifacts="$root/test-artifacts/$flavour"
    local reports="$artifacts/reports"

    echo "== $flavour: build (BUILD_PRESET=$flavour: bidding-server, bidding_unit_tests; ccache)"
    local unit_tests=all
    [[ $flavour == tsan ]] && unit_tests=threads
    if ! phase "$flavour build" env BUILD_PRESET="$flavour" BUILD_TARGETS="bidding-server bidding_unit_tests" \
        "$root/scripts/build.sh" -DBIDDING_BUILD_BENCH=OFF -DBIDDING_UNIT_TESTS="$unit_tests" \
        -DBIDDING_UNIT_TEST_OPTIONS=-O0; then
        echo "sanitize: the $flavour build failed: its tests are not run" >&2
        return 1
    fi
    rm -rf "$artifacts"
    mkdir -p "$reports"

    # Unit tests: a report goes to ctest's output (no log_path) and fails its test.
    echo "== $flavour: unit tests (ctest --test-dir build-$flavour)"
    sanitizer_env "$flavour"
    phase "$flavour unit tests" env "${senv[@]}" \
        ctest --test-dir "$build_dir" --output-on-failure --timeout 300 -j "$(nproc)" || rc=1

    local tests=(tests/e2e)
    [[ $flavour == tsan ]] && tests=("${TSAN_E2E[@]}")
    echo "== $flavour: end-to-end tests (pytest ${tests[*]} against build-$flavour/bidding-server)"
    sanitizer_env "$flavour" "$reports"
    phase "$flavour e2e" env "${senv[@]}" \
        BIDDING_SERVER="$build_dir/bidding-server" BIDDING_BENCH="$root/build/bidding-bench" \
        BIDDING_SANITIZER_REPORTS="$reports" BIDDING_E2E_ARTIFACTS="$artifacts/e2e" \
        BIDDING_FLOOD_SECONDS="${BIDDING_FLOOD_SECONDS:-20}" BIDDING_SOAK_SECONDS="${BIDDING_SOAK_SECONDS:-30}" \
        /usr/bin/python3 -m pytest -q --durations=15 "${tests[@]}" || rc=1
    if compgen -G "$reports/report.*" >/dev/null; then
        echo "sanitize: $flavour: sanitizer reports in $reports:" >&2
        ls -l "$reports" >&2
        rc=1
    fi
    return "$rc"
}

main() {
    # The load tool of the normal build (a client of the server under test, never sanitized).
    if [[ ! -x $root/build/bidding-bench ]]; then
        echo "== the load tool (build/bidding-bench, the dev preset)"
        BUILD_TARGETS=bidding-bench "$root/scripts/build.sh" || status=1
    fi

    for flavour in "${flavours[@]}"; do
        run_flavour "$flavour" || status=1
    done

    echo "== sanitizers: times"
    printf '  %s\n' "${timings[@]}"
    if ((status != 0)); then
        echo "sanitize: FAILED (see above)" >&2
    fi
    return "$status"
}

# Everything is read before anything runs: an edit of this file during a run cannot break it.
main "$@"
exit
