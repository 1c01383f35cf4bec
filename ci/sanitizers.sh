#!/usr/bin/env bash
# Sanitizers over the library's tests, with the nightly toolchain (Linux x86_64 only):
#
#   asan  AddressSanitizer + LeakSanitizer: out-of-bounds and use-after-free in our unsafe
#         code (views, regions, mappings) and leaks. std is not instrumented (not needed: a
#         bad access *from* std into our memory is still caught at the shadow check).
#   tsan  ThreadSanitizer: data races between threads of one process. Built with
#         -Zbuild-std so that std's own synchronization is instrumented (otherwise it reports
#         false races on Arc, channels, thread join). Needs the rust-src component.
#
# What runs: the unit tests of shmwire-platform (conformance suites, sync conformance) and
# shmwire, and every integration test of shmwire: the multi-threaded ones (sync, channels,
# loans) and the multi-process ones. Children of a sanitized test binary re-execute that
# binary, so they are sanitized too; a report in a child fails the child, hence the test.
# What a sanitizer cannot see: accesses by *other processes* (shared memory looks like
# plain memory written by no one), and futex-based waiting (only the atomics around it).
#
# Usage: ci/sanitizers.sh [asan] [tsan]   (default: both; extra cargo test args after --)
# Time on 2 busy cores: see the summary it prints (about 3 min per sanitizer when cached,
# plus ~4 min to build std for tsan the first time).
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-unknown-linux-gnu
BASE=${CARGO_TARGET_DIR:-$PWD/target}
PACKAGES=(-p shmwire-platform -p shmwire)

which=()
extra=()
while (($#)); do
    case $1 in
    asan | tsan) which+=("$1") ;;
    --) shift; extra=("$@"); break ;;
    *) echo "usage: $0 [asan] [tsan] [-- cargo test args]" >&2; exit 2 ;;
    esac
    shift
done
((${#which[@]})) || which=(asan tsan)

if [[ $(uname -sm) != "Linux x86_64" ]]; then
    echo "sanitizers: Linux x86_64 only" >&2
    exit 2
fi
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "sanitizers: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi

# rustix makes raw system calls on Linux, so the sanitizers' mmap/munmap interceptors would
# not see our mappings come and go: when a later mapping reuses an address, ThreadSanitizer
# takes its accesses for races with the earlier mapping's (seen: reports between unrelated
# tests on different segments). rustix's libc backend goes through the intercepted calls.
USE_LIBC="--cfg rustix_use_libc"

# A test whose child must die of SIGSEGV (a write through a read-only mapping, in
# multiprocess.rs) would instead be caught and turned into exit status 1 by the sanitizer's
# handler: let the signal through. Any other crash still fails its test.
export ASAN_OPTIONS="handle_segv=0:handle_sigbus=0:detect_leaks=1:${ASAN_OPTIONS:-}"
# Leaks a test makes on purpose (a "dead" endpoint is forgotten, not dropped), with reasons.
export LSAN_OPTIONS="suppressions=$PWD/ci/lsan-suppressions.txt:print_suppressions=0:${LSAN_OPTIONS:-}"
export TSAN_OPTIONS="handle_segv=0:handle_sigbus=0:second_deadlock_stack=1:${TSAN_OPTIONS:-}"
export RUST_BACKTRACE=1

summary=()
run() {
    local name=$1
    shift
    local t0=$SECONDS
    printf '\n=== %s\n' "$name"
    local status=0
    nice "$@" "${extra[@]}" || status=$?
    summary+=("$name: $(if ((status == 0)); then echo ok; else echo "FAILED ($status)"; fi) in $((SECONDS - t0))s")
    return 0
}

for s in "${which[@]}"; do
    case $s in
    asan)
        RUSTFLAGS="-Zsanitizer=address $USE_LIBC" CARGO_TARGET_DIR="$BASE/asan" \
            run "AddressSanitizer + LeakSanitizer" \
            cargo +nightly test --target "$TARGET" "${PACKAGES[@]}" --lib --tests --no-fail-fast
        ;;
    tsan)
        if ! rustup component list --toolchain nightly --installed 2>/dev/null | grep -q '^rust-src'; then
            rustup component add rust-src --toolchain nightly
        fi
        RUSTFLAGS="-Zsanitizer=thread $USE_LIBC" CARGO_TARGET_DIR="$BASE/tsan" \
            run "ThreadSanitizer" \
            cargo +nightly test -Zbuild-std --target "$TARGET" "${PACKAGES[@]}" --lib --tests --no-fail-fast
        ;;
    esac
done

printf '\n=== sanitizers summary\n'
printf '%s\n' "${summary[@]}"
! printf '%s\n' "${summary[@]}" | grep -q FAILED
