#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) and runs each for a bounded time: a CI-sized fuzzing step.
#
#   scripts/fuzz.sh
#
# 1. installs packages.txt [build] [build-cache] [fuzz] (Clang 14, its libFuzzer and sanitizer
#    runtimes, llvm-symbolizer) through scripts/install-deps.sh;
# 2. builds the fuzz preset (Clang, ASan + UBSan, bidding_logic and the targets only) through
#    scripts/build.sh, with ccache;
# 3. runs each target for FUZZ_SECONDS on a COPY of its seeds (fuzz/corpus/TARGET/ and
#    fuzz/regressions/TARGET/) in a temporary folder, so nothing is written into the checkout;
# 4. prints, per target, its executions per second and coverage (libFuzzer's cov: and ft:).
# Exits non-zero when a target crashed, leaked, timed out or broke an invariant; the input is
# saved under test-artifacts/fuzz/TARGET/ with the log, and the command to reproduce it printed.
#
# Environment:
#   FUZZ_SECONDS  seconds per target (default 30)
#   FUZZ_TARGETS  the targets to run, separated by spaces or commas (default: every target of
#                 fuzz/targets.cmake)
#   FUZZ_KEEP_CORPUS=1  keeps the grown corpus folders (printed) instead of deleting them
#   BUILD_JOBS    parallel compile jobs (default 2); BUILD_DIR as in scripts/build.sh (default build-fuzz)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { echo "fuzz: $*"; }
seconds=${FUZZ_SECONDS:-30}
[[ $seconds =~ ^[0-9]+$ ]] && ((seconds > 0)) || { echo "fuzz: FUZZ_SECONDS must be a positive integer" >&2; exit 2; }

# The targets, as fuzz/targets.cmake lists them.
mapfile -t all_targets < <(sed -n '/^set(bidding_fuzz_targets/,/^)/{/^  [a-z_]*$/p}' fuzz/targets.cmake | tr -d ' ')
((${#all_targets[@]} > 0)) || { echo "fuzz: no targets found in fuzz/targets.cmake" >&2; exit 1; }
targets=()
if [[ -n ${FUZZ_TARGETS:-} ]]; then
    for t in ${FUZZ_TARGETS//,/ }; do
        if [[ " ${all_targets[*]} " != *" $t "* ]]; then
            echo "fuzz: no target '$t' (targets: ${all_targets[*]})" >&2
            exit 2
        fi
        targets+=("$t")
    done
else
    targets=("${all_targets[@]}")
fi

# Inputs larger than the server ever reads gain nothing: sized to each target's own limit.
max_len_of() {
    case $1 in
    http_request) echo 20000 ;;  # 8 KiB of head + 16 KiB of body, cut a little short
    config) echo 10000 ;;        # .env.example is 7.4 KB
    ws_frames) echo 8192 ;;      # past the 4096-byte message limit
    timed_auction) echo 1024 ;;  # a time, a duration or a small body
    *) echo 4096 ;;              # MAX_MESSAGE_BYTES' default, and far beyond any URL or price
    esac
}
dict_of() {
    case $1 in
    price) echo price ;;
    client_message) echo json ;;
    config) echo env ;;
    url) echo url ;;
    http_request) echo http ;;
    bus_message) echo bus ;;
    timed_auction) echo json ;;
    esac
}

# ---------------------------------------------------------------------------- packages, build
"$root/scripts/install-deps.sh" build build-cache fuzz
build_dir=${BUILD_DIR:-$root/build-fuzz}
build_start=$SECONDS
BUILD_PRESET=fuzz BUILD_JOBS=${BUILD_JOBS:-2} BUILD_DIR="$build_dir" "$root/scripts/build.sh"
log "build: $((SECONDS - build_start)) s"

# Function names and lines in a crash's stack.
for symbolizer in /usr/lib/llvm-14/bin/llvm-symbolizer "$(command -v llvm-symbolizer || true)"; do
    if [[ -x $symbolizer ]]; then
        export ASAN_SYMBOLIZER_PATH=$symbolizer
        break
    fi
done
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# ---------------------------------------------------------------------------- runs
work=$(mktemp -d /tmp/bidding-fuzz.XXXXXX)
cleanup() {
    if [[ ${FUZZ_KEEP_CORPUS:-0} == 1 ]]; then
        log "kept the grown corpora in $work/*/corpus"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
artifacts="$root/test-artifacts/fuzz"
rm -rf "$artifacts"
mkdir -p "$artifacts"

failed=()
summary=()
for t in "${targets[@]}"; do
    binary="$build_dir/fuzz/$t"
    [[ -x $binary ]] || { echo "fuzz: $binary was not built" >&2; exit 1; }
    dir="$work/$t"
    mkdir -p "$dir/corpus" "$dir/crashes"
    for seeds in "fuzz/corpus/$t" "fuzz/regressions/$t"; do
        [[ -d $seeds ]] && find "$seeds" -maxdepth 1 -type f -exec cp {} "$dir/corpus/" \;
    done
    args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len="$(max_len_of "$t")"
        -print_final_stats=1 -artifact_prefix="$dir/crashes/")
    dict=$(dict_of "$t")
    [[ -n $dict ]] && args+=(-dict="$root/fuzz/dict/$dict.dict")
    log "== $t: ${seconds} s, $(find "$dir/corpus" -type f | wc -l) seeds, -max_len=$(max_len_of "$t")${dict:+, -dict=fuzz/dict/$dict.dict}"
    status=0
    # libFuzzer stops itself after max_total_time; the outer bound only catches a stuck process.
    (cd "$dir" && timeout -k 10 $((seconds + 120)) "$binary" "${args[@]}" "$dir/corpus") >"$dir/log" 2>&1 || status=$?
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/log" | tail -n 1 || true)
    [[ -n $done_line ]] || done_line=$(grep -E '^#[0-9]+[[:space:]]+(pulse|NEW|REDUCE|INITED)' "$dir/log" | tail -n 1 || true)
    cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$done_line")
    ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$done_line")
    execs=$(sed -nE 's/^stat::number_of_executed_units:[[:space:]]+([0-9]+)/\1/p' "$dir/log" | tail -n 1)
    rate=$(sed -nE 's/^stat::average_exec_per_sec:[[:space:]]+([0-9]+)/\1/p' "$dir/log" | tail -n 1)
    corpus_size=$(find "$dir/corpus" -type f | wc -l)
    if ((status == 0)); then
        result=ok
    else
        result="FAILED (exit $status)"
        failed+=("$t")
        mkdir -p "$artifacts/$t"
        cp "$dir/log" "$artifacts/$t/log"
        grep -E 'fuzz check failed|ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer)|runtime error|SUMMARY' "$dir/log" | head -n 5 | sed 's/^/  /' >&2 || true
        found=false
        for input in "$dir/crashes"/*; do
            [[ -f $input ]] || continue
            found=true
            cp "$input" "$artifacts/$t/"
            saved="test-artifacts/fuzz/$t/$(basename "$input")"
            log "$t: input saved as $saved; reproduce with:"
            echo "  ${build_dir#"$root"/}/fuzz/$t $saved"
            echo "  (once fixed, keep it: cp $saved fuzz/regressions/$t/WHAT_IT_BROKE)"
        done
        $found || log "$t: no input was saved; its log: test-artifacts/fuzz/$t/log"
    fi
    summary+=("$(printf '%-15s %10s %8s %7s %7s %7s  %s' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "$corpus_size" "$result")")
done

echo
printf '%-15s %10s %8s %7s %7s %7s  %s\n' target execs exec/s cov ft corpus result
printf '%s\n' "${summary[@]}"
if ((${#failed[@]} > 0)); then
    log "FAILED: ${failed[*]} (inputs and logs in test-artifacts/fuzz/)" >&2
    exit 1
fi
log "${#targets[@]} targets, ${seconds} s each: no crash"
