#!/usr/bin/env bash
# Model-checks shmwire's synchronization protocols with loom (crates/shmwire/src/sync/*:
# lost wakeups, exclusion, owner-died handover, one recoverer, stale "double" unlock) and
# its channel protocols (crates/shmwire/src/channel/loom_models.rs: SPSC ring, MPMC slots
# with a dead sender, broadcast and blackboard seqlocks, doorbells).
# Developers run the same script. Extra arguments go to the test binary (e.g. a filter).
#
#   bash ci/loom.sh                      # every model
#   bash ci/loom.sh owner_died           # one of them
#
# Knobs: LOOM_MAX_PREEMPTIONS (default 3: every bug we know of in such protocols shows up
# within 2-3 preemptions; unbounded exploration of the 3-thread models takes hours).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUSTFLAGS="--cfg loom ${RUSTFLAGS:-}"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/loom}
export LOOM_MAX_PREEMPTIONS=${LOOM_MAX_PREEMPTIONS:-3}
t0=$SECONDS
if [ $# -eq 0 ]; then set -- sync:: channel::; fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test -p shmwire --lib --release -- --test-threads=2 "$@" 2>&1 | tee "$log"
# A filter that no longer matches (a renamed module) would pass with nothing checked: count
# the models that ran, from libtest's "test result: ok. N passed; ..." lines.
ran=$(sed -n 's/^test result: [a-zA-Z]*\. \([0-9][0-9]*\) passed;.*/\1/p' "$log" | awk '{n += $1} END {print n + 0}')
if [ "$ran" -eq 0 ]; then
    echo "ci/loom.sh: no loom model ran (filters: $*); failing" >&2
    exit 1
fi
echo "loom models done: $ran passed in $((SECONDS - t0))s (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
