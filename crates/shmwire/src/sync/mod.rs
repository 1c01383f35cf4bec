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

pub use error::{
    LockError, LockTimeoutError, PostError, SyncOpenError, TryLockError, TryWaitError, UnlockError,
    WaitError, WaitTimeoutError,
};
pub use event::{Event, EventMode};
pub use mutex::{MutexGuard, RobustMutex};
pub use semaphore::{Semaphore, MAX_COUNT};

use crate::primitive;
pub(crate) use crate::primitive::Patience;
use crate::view::SharedAtomics;
use crate::Segment;

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

/// The waiting half of the protocol that events and semaphores share: `take` tries to
/// consume what the waker publishes in `word`; between tries, sleep on `word` while it holds
/// 0 (nothing to take), counted in `waiters` ([`primitive::counted_sleep`], where the
/// lost-wakeup argument is), in slices of at most [`primitive::RECHECK_SLICE`]. `Ok(false)`:
/// the patience ran out (or `Try` found nothing).
pub(crate) fn wait_counted(
    word: &primitive::AtomicU32,
    waiters: &primitive::AtomicU32,
    patience: Patience,
    mut take: impl FnMut() -> Result<bool, String>,
) -> Result<bool, String> {
    loop {
        if take()? {
            return Ok(true);
        }
        let Some(slice) = patience.next_slice(primitive::RECHECK_SLICE) else {
            return Ok(false);
        };
        primitive::counted_sleep(waiters, || primitive::wait(word, 0, Some(slice)));
    }
}

/// The waking half: call it after changing `word`; wakes up to `n` sleepers if any are
/// counted.
pub(crate) fn wake_counted(word: &primitive::AtomicU32, waiters: &primitive::AtomicU32, n: u32) {
    if primitive::counted_wake(waiters).is_some() {
        primitive::wake(word, n);
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
