#!/usr/bin/env bash
# Fuzzes shmwire against hostile shared memory (fuzz/: a cargo-fuzz crate with its own
# workspace). Targets:
#   segment_open  any bytes, any object size, as a segment: every way to open it, reads, and
#                 the sync objects at fuzzed offsets
#   channel_open  a real channel's bytes, patched before and between non-blocking operations
#                 of every flavor's endpoints
# Fails on a crash: a panic (built with debug assertions and overflow checks, `-a`), an
# access outside the mapping (AddressSanitizer), or a hang (libFuzzer's -timeout).
# Developers run the same script.
#
#   bash ci/fuzz.sh                    # every target, FUZZ_SECONDS each
#   bash ci/fuzz.sh channel_open       # one target
#
# Knobs: FUZZ_SECONDS (per target, default 20), FUZZ_TIMEOUT (seconds one input may take,
# default 10). The corpus grows in fuzz/corpus/<target> (not committed); a crash is saved in
# fuzz/artifacts/<target>/ and replayed with `cargo +nightly fuzz run -a <target> <file>`
# from fuzz/. Needs a nightly toolchain; installs cargo-fuzz if missing. Linux only: the
# harness writes its objects through /dev/shm (names `swfz-<target>-<pid>`).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
SECS=${FUZZ_SECONDS:-20}
TIMEOUT=${FUZZ_TIMEOUT:-10}
t0=$SECONDS

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --locked
fi
if [ $# -eq 0 ]; then
    mapfile -t targets < <(cargo +nightly fuzz list)
else
    targets=("$@")
fi

# Objects of fuzz processes that are gone (a crash skips the harness's own cleanup).
sweep() {
    local f pid
    for f in /dev/shm/swfz-*; do
        [ -e "$f" ] || continue
        pid=${f##*-}
        if ! kill -0 "$pid" 2>/dev/null; then rm -f "$f"; fi
    done
}

cargo +nightly fuzz build -a
echo "fuzz targets built in $((SECONDS - t0))s"

failed=()
for t in "${targets[@]}"; do
    log=$(mktemp)
    mkdir -p "corpus/$t"
    echo "=== $t: ${SECS}s"
    if cargo +nightly fuzz run -a "$t" "corpus/$t" -- \
        -max_total_time="$SECS" -timeout="$TIMEOUT" -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^#[0-9]+[[:space:]]+DONE|^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' "$log" || true
    else
        failed+=("$t")
        echo "--- $t FAILED; the end of its log:"
        tail -n 60 "$log"
    fi
    rm -f "$log"
    sweep
done

echo "fuzzing done in $((SECONDS - t0))s"
if [ ${#failed[@]} -ne 0 ]; then
    echo "crashed: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
