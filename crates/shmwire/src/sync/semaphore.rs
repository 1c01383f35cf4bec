//! Counting semaphores in shared memory.
//!
//! # The word protocol (Linux, macOS)
//!
//! [`RawSemaphore`] (128 bytes, 128-aligned; layout in `docs/layout.md`):
//!
//! | word      | values      | meaning |
//! |-----------|-------------|---------|
//! | `count`   | 0..=`max`   | permits available |
//! |           | > `max`     | corrupt |
//! | `waiters` | n           | processes inside a wait (a hint, as for events) |
//! | `max`     | 1..=2³¹−1   | the largest count, fixed at init |
//!
//! * **post**: CAS `c → c + 1` (Release) unless `c == max` (an error, nothing added); SeqCst
//!   fence; then if `waiters != 0` wake one sleeper.
//! * **wait**: CAS `c → c − 1` (Acquire) while `c > 0`; otherwise `waiters += 1`, SeqCst fence,
//!   futex-wait on `count` expecting 0 for at most one slice, `waiters -= 1`, look again.
//!
//! The waiter counting, fences and futex calls are `wait_counted` / `wake_counted` in
//! `sync/mod.rs`, shared with the event.
//!
//! **Why no wakeup is lost**: as for events, the poster's increment of `count` and load of
//! `waiters`, and the waiter's increment of `waiters` and the futex's compare of `count`,
//! are separated by SeqCst fences on both sides: the poster sees the waiter (and wakes one), or the waiter's
//! compare sees `count > 0` (and it does not sleep). Each post wakes one sleeper for the one
//! permit it adds, and a woken waiter tries to take a permit before it sleeps again.
//!
//! # Windows
//!
//! A named kernel semaphore `<ns><segment>~shmwire-semaphore-<offset>` holds the count;
//! `count` mirrors it (best effort) for when the object must be made again.

use std::time::{Duration, Instant};

use shmwire_platform::{KernelSemaphore, NamedSemaphore};

use super::{Patience, PostError, SyncOpenError, TryWaitError, WaitError, WaitTimeoutError};
use crate::primitive::{AtomicU32, Ordering};
use crate::Segment;

/// `"SWSM"`: the tag of an initialized semaphore (layout version 1).
pub(crate) const TAG: u32 = u32::from_le_bytes(*b"SWSM");
/// The largest maximum count (Windows' limit, applied everywhere).
pub const MAX_COUNT: u32 = i32::MAX as u32;

/// The semaphore as it lies in shared memory.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct RawSemaphore {
    tag: AtomicU32,
    count: AtomicU32,
    waiters: AtomicU32,
    max: AtomicU32,
    _reserved: [AtomicU32; 28],
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<RawSemaphore>() == 128 && align_of::<RawSemaphore>() == 128);
    assert!(offset_of!(RawSemaphore, tag) == 0);
    assert!(offset_of!(RawSemaphore, count) == 4);
    assert!(offset_of!(RawSemaphore, waiters) == 8);
    assert!(offset_of!(RawSemaphore, max) == 12);
};

/// Why a word-protocol post failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RawPostError {
    Overflow,
    Corrupt(String),
}

impl RawSemaphore {
    #[cfg(test)]
    pub(crate) fn new(initial: u32, max: u32) -> RawSemaphore {
        let s = RawSemaphore {
            tag: AtomicU32::new(0),
            count: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            max: AtomicU32::new(0),
            _reserved: std::array::from_fn(|_| AtomicU32::new(0)),
        };
        s.init(initial, max);
        s
    }

    pub(crate) fn init(&self, initial: u32, max: u32) {
        self.count.store(initial, Ordering::Relaxed);
        self.waiters.store(0, Ordering::Relaxed);
        self.max.store(max, Ordering::Relaxed);
        // ORDERING: Release — publishes the words above; pairs with the Acquire load in
        // `max`.
        self.tag.store(TAG, Ordering::Release);
    }

    /// The maximum, or `None` if no valid semaphore was initialized here.
    pub(crate) fn max(&self) -> Option<u32> {
        // ORDERING: Acquire — pairs with the Release store of the tag in `init`.
        if self.tag.load(Ordering::Acquire) != TAG {
            return None;
        }
        let max = self.max.load(Ordering::Relaxed);
        (1..=MAX_COUNT).contains(&max).then_some(max)
    }

    pub(crate) fn post(&self, max: u32) -> Result<(), RawPostError> {
        let mut c = self.count.load(Ordering::Relaxed);
        loop {
            if c > max {
                return Err(RawPostError::Corrupt(format!(
                    "its count {c} exceeds its maximum {max}"
                )));
            }
            if c == max {
                return Err(RawPostError::Overflow);
            }
            // ORDERING: Release — publishes the poster's writes; pairs with the Acquire CAS
            // in `try_take`.
            match self
                .count
                .compare_exchange_weak(c, c + 1, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => c = now,
            }
        }
        super::wake_counted(&self.count, &self.waiters, 1);
        Ok(())
    }

    pub(crate) fn try_take(&self, max: u32) -> Result<bool, String> {
        let mut c = self.count.load(Ordering::Relaxed);
        loop {
            if c > max {
                return Err(format!("its count {c} exceeds its maximum {max}"));
            }
            if c == 0 {
                return Ok(false);
            }
            // ORDERING: Acquire — pairs with the Release CAS in `post`.
            match self
                .count
                .compare_exchange_weak(c, c - 1, Ordering::Acquire, Ordering::Relaxed)
            {
                Ok(_) => return Ok(true),
                Err(now) => c = now,
            }
        }
    }

    pub(crate) fn wait(&self, max: u32, patience: Patience) -> Result<bool, String> {
        super::wait_counted(&self.count, &self.waiters, patience, || self.try_take(max))
    }

    /// The count now (informational; Windows: the best-effort mirror).
    pub(crate) fn count(&self) -> u32 {
        self.count.load(Ordering::Relaxed)
    }

    fn mirror_add(&self, max: u32) {
        let _ = self
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                (c < max).then_some(c + 1)
            });
    }

    fn mirror_sub(&self) {
        let _ = self
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_sub(1));
    }
}

enum Imp {
    Word,
    Kernel(NamedSemaphore),
}

impl std::fmt::Debug for Imp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Imp::Word => "word protocol",
            Imp::Kernel(_) => "kernel semaphore",
        })
    }
}

/// A counting semaphore in a segment: [`post`](Self::post) adds a permit, a wait takes one.
///
/// # Examples
///
/// ```
/// use shmwire::{Segment, sync::{Semaphore, TryWaitError}};
/// # let name = format!("doc-sem-{}", std::process::id());
/// let seg = Segment::create(&name, 4096)?;
/// let slots = Semaphore::init_in(&seg, 0, 2, 2)?; // 2 permits, at most 2
/// slots.try_wait()?;
/// slots.try_wait()?;
/// assert!(matches!(slots.try_wait(), Err(TryWaitError::WouldBlock)));
/// slots.post()?;
/// slots.wait_timeout(std::time::Duration::from_secs(1))?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Platform-specific behavior
///
/// Linux/macOS: a word protocol in the segment. Windows: a named kernel semaphore derived
/// from the segment's name and the offset.
#[derive(Debug)]
pub struct Semaphore<'seg> {
    seg: &'seg Segment,
    offset: u64,
    raw: &'seg RawSemaphore,
    max: u32,
    imp: Imp,
}

impl<'seg> Semaphore<'seg> {
    /// Bytes a semaphore occupies in a segment.
    pub const SIZE: u64 = 128;
    /// Required alignment of its offset.
    pub const ALIGN: u64 = 128;

    /// Initializes a semaphore with `initial` permits and at most `max` (1 ≤ `max` ≤
    /// [`MAX_COUNT`], `initial` ≤ `max`) at payload `offset` (a multiple of 128), and opens it.
    /// For the creator only, before other processes use it.
    ///
    /// # Errors
    ///
    /// [`SyncOpenError::Invalid`] for bad counts; see [`SyncOpenError`].
    pub fn init_in(
        seg: &'seg Segment,
        offset: u64,
        initial: u32,
        max: u32,
    ) -> Result<Self, SyncOpenError> {
        let raw: &RawSemaphore = super::place(seg, offset, "semaphore")?;
        if max == 0 || max > MAX_COUNT || initial > max {
            return Err(SyncOpenError::Invalid {
                name: seg.name().to_string(),
                what: "semaphore",
                offset,
                reason: format!(
                    "the counts must satisfy initial <= max and 1 <= max <= {MAX_COUNT} \
                     (initial {initial}, max {max})"
                ),
            });
        }
        raw.init(initial, max);
        Self::open_in(seg, offset)
    }

    /// Opens the semaphore that [`init_in`](Self::init_in) made at payload `offset`.
    ///
    /// # Errors
    ///
    /// [`SyncOpenError::NotInitialized`] if there is none; see [`SyncOpenError`].
    pub fn open_in(seg: &'seg Segment, offset: u64) -> Result<Self, SyncOpenError> {
        let raw: &RawSemaphore = super::place(seg, offset, "semaphore")?;
        let max = raw.max().ok_or_else(|| SyncOpenError::NotInitialized {
            name: seg.name().to_string(),
            what: "semaphore",
            offset,
        })?;
        let imp = if shmwire_platform::KERNEL_SYNC_OBJECTS {
            let (s, _) = NamedSemaphore::open_or_create(
                seg.object_name(),
                &format!("semaphore-{offset}"),
                raw.count().min(max),
                max,
            )
            .map_err(|source| SyncOpenError::Os {
                name: seg.name().to_string(),
                what: "semaphore",
                offset,
                source,
            })?;
            Imp::Kernel(s)
        } else {
            Imp::Word
        };
        Ok(Semaphore {
            seg,
            offset,
            raw,
            max,
            imp,
        })
    }

    /// The maximum count chosen at init.
    pub fn max(&self) -> u32 {
        self.max
    }

    /// The payload offset of the semaphore.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn os(&self, source: std::io::Error) -> WaitError {
        WaitError::Os {
            name: self.seg.name().to_string(),
            what: "semaphore",
            offset: self.offset,
            source,
        }
    }

    fn corrupt(&self, reason: String) -> WaitError {
        WaitError::Corrupt {
            name: self.seg.name().to_string(),
            what: "semaphore",
            offset: self.offset,
            reason,
        }
    }

    /// Adds one permit, waking one waiter if any.
    ///
    /// # Errors
    ///
    /// [`PostError::Overflow`] if the count is at its maximum (nothing is added).
    #[doc(alias = "ReleaseSemaphore")]
    #[doc(alias = "sem_post")]
    pub fn post(&self) -> Result<(), PostError> {
        let overflow = || PostError::Overflow {
            name: self.seg.name().to_string(),
            offset: self.offset,
            max: self.max,
        };
        match &self.imp {
            Imp::Word => self.raw.post(self.max).map_err(|e| match e {
                RawPostError::Overflow => overflow(),
                RawPostError::Corrupt(r) => self.corrupt(r).into(),
            }),
            Imp::Kernel(s) => match s.post(1) {
                Ok(()) => {
                    self.raw.mirror_add(self.max);
                    Ok(())
                }
                Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Err(overflow()),
                Err(e) => Err(self.os(e).into()),
            },
        }
    }

    /// Takes a permit if one is available now.
    ///
    /// # Errors
    ///
    /// [`TryWaitError::WouldBlock`] if not signaled now; otherwise as `wait`.
    pub fn try_wait(&self) -> Result<(), TryWaitError> {
        match self.wait_with(Patience::Try, Some(Duration::ZERO))? {
            true => Ok(()),
            false => Err(TryWaitError::WouldBlock),
        }
    }

    /// Takes a permit, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`WaitError::Corrupt`], [`WaitError::Os`].
    #[doc(alias = "sem_wait")]
    pub fn wait(&self) -> Result<(), WaitError> {
        // A wait without a deadline ends signaled; were it ever to come back empty-handed,
        // it would simply wait again.
        while !self.wait_with(Patience::Until(None), None)? {}
        Ok(())
    }

    /// Takes a permit, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`WaitTimeoutError::Timeout`]; otherwise as `wait`.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), WaitTimeoutError> {
        let deadline = Instant::now().checked_add(timeout);
        match self.wait_with(Patience::Until(deadline), Some(timeout))? {
            true => Ok(()),
            false => Err(WaitTimeoutError::Timeout),
        }
    }

    fn wait_with(&self, patience: Patience, timeout: Option<Duration>) -> Result<bool, WaitError> {
        match &self.imp {
            Imp::Word => self
                .raw
                .wait(self.max, patience)
                .map_err(|r| self.corrupt(r)),
            Imp::Kernel(s) => {
                let got = s.wait(timeout).map_err(|e| self.os(e))?;
                if got {
                    self.raw.mirror_sub();
                }
                Ok(got)
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_and_refuses_overflow() {
        let s = RawSemaphore::new(1, 2);
        assert_eq!(s.max(), Some(2));
        assert!(s.try_take(2).unwrap());
        assert!(!s.try_take(2).unwrap());
        s.post(2).unwrap();
        s.post(2).unwrap();
        assert_eq!(s.post(2), Err(RawPostError::Overflow));
        assert_eq!(s.count(), 2);
        s.count.store(5, Ordering::Relaxed);
        assert!(s.try_take(2).is_err());
        assert!(matches!(s.post(2), Err(RawPostError::Corrupt(_))));
    }

    #[test]
    fn permits_pass_between_threads_without_loss() {
        let s = Arc::new(RawSemaphore::new(0, MAX_COUNT));
        let takers: Vec<_> = (0..3)
            .map(|_| {
                let s = Arc::clone(&s);
                std::thread::spawn(move || {
                    for _ in 0..500 {
                        assert!(s.wait(MAX_COUNT, Patience::Until(None)).unwrap());
                    }
                })
            })
            .collect();
        for _ in 0..1500 {
            s.post(MAX_COUNT).unwrap();
        }
        for t in takers {
            t.join().unwrap();
        }
        assert_eq!(s.count(), 0);
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::*;
    use crate::primitive::model::{self, Timeouts};
    use loom::sync::Arc;

    /// Two blocked waiters, two posts from two threads: each post wakes one sleeper, and no
    /// waiter may be left asleep with a permit available (a deadlock in the model).
    #[test]
    fn every_post_reaches_a_waiter() {
        loom::model(|| {
            model::setup(Timeouts::Never);
            let s = Arc::new(RawSemaphore::new(0, 4));
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let s = Arc::clone(&s);
                    loom::thread::spawn(move || s.wait(4, Patience::Until(None)).unwrap())
                })
                .collect();
            let s2 = Arc::clone(&s);
            let poster = loom::thread::spawn(move || s2.post(4).unwrap());
            s.post(4).unwrap();
            poster.join().unwrap();
            for w in waiters {
                assert!(w.join().unwrap());
            }
            assert_eq!(s.count(), 0);
        });
    }
}
