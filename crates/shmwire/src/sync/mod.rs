//! Synchronization between processes, living in a segment: a [`RobustMutex`] that survives
//! the death of its holder, [`Event`]s (auto and manual reset) and counting [`Semaphore`]s.
//!
//! Each object occupies 128 bytes at a 128-aligned payload offset of a [`Segment`]. The
//! creator initializes it (`init_in`, typically inside the `init` closure of
//! [`SegmentOptions::open_or_create`](crate::SegmentOptions::open_or_create), so nobody sees
//! it half-made); every process then opens it (`open_in`) at the same offset:
//!
//! ```
//! use shmwire::{Segment, sync::{Event, EventMode, RobustMutex}};
//! # let name = format!("doc-sync-{}", std::process::id());
//! // Every process runs this; the first one creates and initializes.
//! let (seg, _) = Segment::options().open_or_create(&name, 4096, |seg| {
//!     RobustMutex::init_in(seg, 0)?;
//!     Event::init_in(seg, 128, EventMode::AutoReset)?;
//!     Ok(())
//! })?;
//! let lock = RobustMutex::open_in(&seg, 0)?;
//! let ready = Event::open_in(&seg, 128)?;
//!
//! let guard = lock.lock()?;
//! seg.write_at(256, b"data")?;
//! drop(guard);
//! ready.set()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every wait comes in three forms: `try_…` (never waits), blocking, and `…_timeout`.
//! Internally every wait sleeps in slices of at most a few tens of milliseconds and looks
//! again, so a dead peer or a corrupted word costs a bounded delay or an error, never a hang.
//!
//! # Mechanisms
//!
//! | | Linux | macOS | Windows |
//! |---|---|---|---|
//! | sleeping | `futex` on the word in the segment (shared, not private) | polling fallback (≤ 1 ms steps), reported by [`wait_mechanism`] | named kernel objects |
//! | owner died | pid + start time of the holder, read from the word | same | `WAIT_ABANDONED` |
//!
//! Kernel objects are named `<Local\|Global\><segment>~shmwire-<kind>-<offset>`, which never
//! collides with a segment name (names may not contain `~shmwire-`).
//!
//! # Memory
//!
//! `place` views a protocol struct in place through `crate::view` (no unsafe code here): it
//! checks that the struct lies inside the read-write payload at an offset that is a multiple
//! of 128, so that it can say which of those failed; the view checks bounds and alignment
//! again and hands out a reference that cannot outlive the `&Segment`. Every field of the
//! structs is an atomic (reserved words too), so other processes writing the same bytes at
//! any time is allowed.

mod error;
pub(crate) mod event;
pub(crate) mod mutex;
pub(crate) mod semaphore;
pub(crate) mod shim;

use std::time::{Duration, Instant};

pub use error::{
    LockError, LockTimeoutError, PostError, SyncOpenError, TryLockError, TryWaitError, UnlockError,
    WaitError, WaitTimeoutError,
};
pub use event::{Event, EventMode};
pub use mutex::{MutexGuard, RobustMutex};
pub use semaphore::{Semaphore, MAX_COUNT};

use crate::view::SharedAtomics;
use crate::Segment;

/// Longest an event or semaphore waiter sleeps before it looks at the word again.
pub(crate) const SLICE: Duration = Duration::from_millis(50);

/// How this platform's synchronization objects wait: `"futex"` (Linux),
/// `"polling (macOS fallback)"` (macOS: `os_sync_wait_on_address` is not used yet), or
/// `"windows-kernel-objects"`.
pub fn wait_mechanism() -> &'static str {
    if shmwire_platform::KERNEL_SYNC_OBJECTS {
        "windows-kernel-objects"
    } else {
        shmwire_platform::WORD_WAIT_MECHANISM
    }
}

/// How long a wait may last.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Patience {
    /// Do not wait.
    Try,
    /// Until the deadline (`None`: for ever).
    Until(Option<Instant>),
}

impl Patience {
    /// How long to sleep next (at most `slice`), or `None` if the wait is over.
    pub(crate) fn next_slice(self, slice: Duration) -> Option<Duration> {
        match self {
            Patience::Try => None,
            Patience::Until(None) => Some(slice),
            Patience::Until(Some(d)) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left.min(slice)),
                _ => None,
            },
        }
    }
}

/// The waiting half of the counted-waiter protocol that events and semaphores share: `take`
/// tries to consume what the waker publishes in `word`; between tries, sleep on `word` while
/// it holds 0 (nothing to take), counted in `waiters`, in slices of at most [`SLICE`].
///
/// No lost wakeup: we increment `waiters`, fence, then the futex compares `word` with 0; the
/// waker ([`wake_counted`]) changes `word`, fences, then loads `waiters`. By the two SeqCst
/// fences, either the waker sees our count and wakes us, or our futex compare sees its
/// change and does not sleep. `Ok(false)`: the patience ran out (or `Try` found nothing).
pub(crate) fn wait_counted(
    word: &shim::AtomicU32,
    waiters: &shim::AtomicU32,
    patience: Patience,
    mut take: impl FnMut() -> Result<bool, String>,
) -> Result<bool, String> {
    loop {
        if take()? {
            return Ok(true);
        }
        let Some(slice) = patience.next_slice(SLICE) else {
            return Ok(false);
        };
        waiters.fetch_add(1, shim::Ordering::Relaxed);
        // ORDERING: SeqCst fence — orders our increment of `waiters` before the futex's
        // compare of `word`; pairs with the SeqCst fence in `wake_counted`.
        shim::fence(shim::Ordering::SeqCst);
        shim::wait(word, 0, Some(slice));
        waiters.fetch_sub(1, shim::Ordering::Relaxed);
    }
}

/// The waking half of the counted-waiter protocol: call it after changing `word`; wakes up
/// to `n` sleepers if any are counted (see [`wait_counted`] for why none is lost).
pub(crate) fn wake_counted(word: &shim::AtomicU32, waiters: &shim::AtomicU32, n: u32) {
    // ORDERING: SeqCst fence — orders the caller's change of `word` before our load of
    // `waiters`; pairs with the SeqCst fence in `wait_counted`.
    shim::fence(shim::Ordering::SeqCst);
    if waiters.load(shim::Ordering::Relaxed) != 0 {
        shim::wake(word, n);
    }
}

/// The protocol struct `T` at payload `offset` of `seg` (see "Memory" in the module docs).
fn place<'s, T: SharedAtomics>(
    seg: &'s Segment,
    offset: u64,
    what: &'static str,
) -> Result<&'s T, SyncOpenError> {
    let name = || seg.name().to_string();
    if !seg.is_writable() {
        return Err(SyncOpenError::ReadOnly { name: name(), what });
    }
    let needed = std::mem::size_of::<T>() as u64;
    let fits = offset
        .checked_add(needed)
        .is_some_and(|end| end <= seg.len());
    if !fits {
        return Err(SyncOpenError::OutOfRange {
            name: name(),
            what,
            offset,
            needed,
            size: seg.len(),
        });
    }
    let misaligned = || SyncOpenError::Misaligned {
        name: name(),
        what,
        offset,
    };
    if offset % 128 != 0 {
        return Err(misaligned());
    }
    seg.payload.region().at::<T>(offset).ok_or_else(misaligned)
}
