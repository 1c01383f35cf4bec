//! Events in shared memory: auto-reset (a set releases one waiter) and manual-reset (a set
//! releases every waiter until reset), as Windows events.
//!
//! # The word protocol (Linux, macOS)
//!
//! [`RawEvent`] (128 bytes, 128-aligned; layout in `docs/layout.md`):
//!
//! | word      | values | meaning |
//! |-----------|--------|---------|
//! | `state`   | 0      | not set |
//! |           | 1      | set |
//! |           | other  | corrupt |
//! | `waiters` | n      | processes between announcing themselves and leaving a wait (a hint: a process killed while waiting leaves it too high, which costs only needless wakes) |
//! | `flags`   | bit 0  | manual reset (fixed at init; other bits corrupt) |
//!
//! * **set**: `state = 1` (Release), SeqCst fence, then if `waiters != 0` wake one sleeper
//!   (auto reset) or all (manual reset).
//! * **wait**: auto reset consumes with CAS `1 → 0` (Acquire); manual reset loads
//!   `state == 1` (Acquire). Otherwise `waiters += 1`, SeqCst fence, futex-wait on `state`
//!   expecting 0 for at most one slice, `waiters -= 1`, and look again.
//! * **reset**: `state = 0`.
//!
//! The waiter counting, fences and futex calls are `wait_counted` / `wake_counted` in
//! `sync/mod.rs`, shared with the semaphore.
//!
//! **Why no wakeup is lost**: the setter's store of `state` and load of `waiters`, and the
//! waiter's increment of `waiters` and the futex's compare of `state` (made atomically with
//! going to sleep, under the lock that `wake` also takes), are separated by SeqCst fences on
//! both sides (a store-buffering pair): either the setter sees the waiter's count and wakes
//! it, or the waiter's compare sees `state == 1` and it does not sleep. An auto-reset set wakes one sleeper; a woken waiter
//! always tries to consume before sleeping again, so a set is never left unconsumed while
//! someone sleeps unwoken (if a non-sleeping `try_wait` takes it first, there is nothing left
//! to wake for).
//!
//! # Windows
//!
//! A named kernel event `<ns><segment>~shmwire-event-<offset>` holds the state. The `state`
//! word mirrors it (best effort), so that when every handle was closed and the event is made
//! again by the next opener, it starts set if it was left set.

use std::time::{Duration, Instant};

use shmwire_platform::{KernelEvent, NamedEvent};

use super::{Patience, SyncOpenError, TryWaitError, WaitError, WaitTimeoutError};
use crate::primitive::{AtomicU32, Ordering};
use crate::Segment;

/// `"SWEV"`: the tag of an initialized event (layout version 1).
pub(crate) const TAG: u32 = u32::from_le_bytes(*b"SWEV");
const MANUAL: u32 = 1;

/// The event as it lies in shared memory.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct RawEvent {
    tag: AtomicU32,
    state: AtomicU32,
    waiters: AtomicU32,
    flags: AtomicU32,
    _reserved: [AtomicU32; 28],
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<RawEvent>() == 128 && align_of::<RawEvent>() == 128);
    assert!(offset_of!(RawEvent, tag) == 0);
    assert!(offset_of!(RawEvent, state) == 4);
    assert!(offset_of!(RawEvent, waiters) == 8);
    assert!(offset_of!(RawEvent, flags) == 12);
};

/// How an event resets after releasing waiters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventMode {
    /// A set releases one waiter, and the event resets as that waiter returns.
    AutoReset,
    /// A set releases every waiter, now and later, until [`Event::reset`].
    ManualReset,
}

impl RawEvent {
    #[cfg(test)]
    pub(crate) fn new(mode: EventMode) -> RawEvent {
        let e = RawEvent {
            tag: AtomicU32::new(0),
            state: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
            flags: AtomicU32::new(0),
            _reserved: std::array::from_fn(|_| AtomicU32::new(0)),
        };
        e.init(mode);
        e
    }

    pub(crate) fn init(&self, mode: EventMode) {
        self.state.store(0, Ordering::Relaxed);
        self.waiters.store(0, Ordering::Relaxed);
        let flags = if mode == EventMode::ManualReset {
            MANUAL
        } else {
            0
        };
        self.flags.store(flags, Ordering::Relaxed);
        // ORDERING: Release — publishes the words above; pairs with the Acquire load in
        // `mode`.
        self.tag.store(TAG, Ordering::Release);
    }

    /// The mode, or `None` if no event was initialized here (or its flags are corrupt).
    pub(crate) fn mode(&self) -> Option<EventMode> {
        // ORDERING: Acquire — pairs with the Release store of the tag in `init`.
        if self.tag.load(Ordering::Acquire) != TAG {
            return None;
        }
        match self.flags.load(Ordering::Relaxed) {
            0 => Some(EventMode::AutoReset),
            MANUAL => Some(EventMode::ManualReset),
            _ => None,
        }
    }

    pub(crate) fn set(&self, mode: EventMode) {
        // ORDERING: Release — publishes what the setter wrote before; pairs with the Acquire
        // CAS/load in `try_consume`.
        self.state.store(1, Ordering::Release);
        let n = match mode {
            EventMode::ManualReset => u32::MAX,
            EventMode::AutoReset => 1,
        };
        super::wake_counted(&self.state, &self.waiters, n);
    }

    pub(crate) fn reset(&self) {
        self.state.store(0, Ordering::Relaxed);
    }

    /// Consumes (auto) or observes (manual) a set.
    pub(crate) fn try_consume(&self, mode: EventMode) -> Result<bool, String> {
        let ok = match mode {
            // ORDERING: Acquire — pairs with the Release store in `set`.
            EventMode::AutoReset => {
                match self
                    .state
                    .compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed)
                {
                    Ok(_) => true,
                    Err(0) => false,
                    Err(v) => return Err(format!("its state word holds {v}")),
                }
            }
            // ORDERING: Acquire — pairs with the Release store in `set`.
            EventMode::ManualReset => match self.state.load(Ordering::Acquire) {
                1 => true,
                0 => false,
                v => return Err(format!("its state word holds {v}")),
            },
        };
        Ok(ok)
    }

    /// Waits for a set (word protocol). `Ok(false)`: timed out (or `Try` found none).
    pub(crate) fn wait(&self, mode: EventMode, patience: Patience) -> Result<bool, String> {
        super::wait_counted(&self.state, &self.waiters, patience, || {
            self.try_consume(mode)
        })
    }

    /// Windows: the state word as a mirror of the kernel event.
    fn mirror(&self, set: bool) {
        self.state.store(u32::from(set), Ordering::Relaxed);
    }

    fn mirrored(&self) -> bool {
        self.state.load(Ordering::Relaxed) == 1
    }
}

enum Imp {
    Word,
    Kernel(NamedEvent),
}

impl std::fmt::Debug for Imp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Imp::Word => "word protocol",
            Imp::Kernel(_) => "kernel event",
        })
    }
}

/// An event in a segment: processes wait until another process sets it.
///
/// # Examples
///
/// ```
/// use shmwire::{Segment, sync::{Event, EventMode, TryWaitError}};
/// # let name = format!("doc-event-{}", std::process::id());
/// let seg = Segment::create(&name, 4096)?;
/// let ready = Event::init_in(&seg, 0, EventMode::AutoReset)?;
/// // Another process: Event::open_in(&seg, 0)?.wait()?;
/// ready.set()?;
/// ready.try_wait()?; // consumed ...
/// assert!(matches!(ready.try_wait(), Err(TryWaitError::WouldBlock))); // ... and reset
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Platform-specific behavior
///
/// Linux/macOS: a word protocol in the segment. Windows: a named kernel event derived from
/// the segment's name and the offset; it lives while some process has it open (the state is
/// mirrored in the segment so that it survives that, best effort).
#[derive(Debug)]
pub struct Event<'seg> {
    seg: &'seg Segment,
    offset: u64,
    raw: &'seg RawEvent,
    mode: EventMode,
    imp: Imp,
}

impl<'seg> Event<'seg> {
    /// Bytes an event occupies in a segment.
    pub const SIZE: u64 = 128;
    /// Required alignment of its offset.
    pub const ALIGN: u64 = 128;

    /// Initializes a not-set event at payload `offset` (a multiple of 128) and opens it. For
    /// the creator only, before other processes use it.
    ///
    /// # Errors
    ///
    /// See [`SyncOpenError`].
    pub fn init_in(
        seg: &'seg Segment,
        offset: u64,
        mode: EventMode,
    ) -> Result<Self, SyncOpenError> {
        let raw: &RawEvent = super::place(seg, offset, "event")?;
        raw.init(mode);
        Self::open_in(seg, offset)
    }

    /// Opens the event that [`init_in`](Self::init_in) made at payload `offset`.
    ///
    /// # Errors
    ///
    /// [`SyncOpenError::NotInitialized`] if there is none; see [`SyncOpenError`].
    pub fn open_in(seg: &'seg Segment, offset: u64) -> Result<Self, SyncOpenError> {
        let raw: &RawEvent = super::place(seg, offset, "event")?;
        let mode = raw.mode().ok_or_else(|| SyncOpenError::NotInitialized {
            name: seg.name().to_string(),
            what: "event",
            offset,
        })?;
        let imp = if shmwire_platform::KERNEL_SYNC_OBJECTS {
            let (e, _) = NamedEvent::open_or_create(
                seg.object_name(),
                &format!("event-{offset}"),
                mode == EventMode::ManualReset,
                raw.mirrored(),
            )
            .map_err(|source| SyncOpenError::Os {
                name: seg.name().to_string(),
                what: "event",
                offset,
                source,
            })?;
            Imp::Kernel(e)
        } else {
            Imp::Word
        };
        Ok(Event {
            seg,
            offset,
            raw,
            mode,
            imp,
        })
    }

    /// The reset mode chosen at init.
    pub fn mode(&self) -> EventMode {
        self.mode
    }

    /// The payload offset of the event.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn os(&self, source: std::io::Error) -> WaitError {
        WaitError::Os {
            name: self.seg.name().to_string(),
            what: "event",
            offset: self.offset,
            source,
        }
    }

    fn corrupt(&self, reason: String) -> WaitError {
        WaitError::Corrupt {
            name: self.seg.name().to_string(),
            what: "event",
            offset: self.offset,
            reason,
        }
    }

    /// Sets the event: wakes one waiter (auto reset; if none waits, the next wait returns at
    /// once) or all of them (manual reset, until [`reset`](Self::reset)). Setting a set event
    /// changes nothing.
    ///
    /// # Errors
    ///
    /// [`WaitError::Os`] (Windows).
    #[doc(alias = "SetEvent")]
    pub fn set(&self) -> Result<(), WaitError> {
        match &self.imp {
            Imp::Word => {
                self.raw.set(self.mode);
                Ok(())
            }
            Imp::Kernel(e) => {
                self.raw.mirror(true);
                e.set().map_err(|e| self.os(e))
            }
        }
    }

    /// Resets the event to not set.
    ///
    /// # Errors
    ///
    /// [`WaitError::Os`] (Windows).
    #[doc(alias = "ResetEvent")]
    pub fn reset(&self) -> Result<(), WaitError> {
        match &self.imp {
            Imp::Word => {
                self.raw.reset();
                Ok(())
            }
            Imp::Kernel(e) => {
                self.raw.mirror(false);
                e.reset().map_err(|e| self.os(e))
            }
        }
    }

    /// Whether the event is set, without waiting (consuming the set if auto reset).
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

    /// Waits until the event is set.
    ///
    /// # Errors
    ///
    /// [`WaitError::Corrupt`], [`WaitError::Os`].
    #[doc(alias = "WaitForSingleObject")]
    pub fn wait(&self) -> Result<(), WaitError> {
        // A wait without a deadline ends signaled; were it ever to come back empty-handed,
        // it would simply wait again.
        while !self.wait_with(Patience::Until(None), None)? {}
        Ok(())
    }

    /// Waits at most `timeout` for the event.
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
                .wait(self.mode, patience)
                .map_err(|r| self.corrupt(r)),
            Imp::Kernel(e) => {
                let got = e.wait(timeout).map_err(|e| self.os(e))?;
                if got && self.mode == EventMode::AutoReset {
                    self.raw.mirror(false);
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
    fn auto_reset_is_consumed_manual_reset_stays() {
        let e = RawEvent::new(EventMode::AutoReset);
        assert_eq!(e.mode(), Some(EventMode::AutoReset));
        assert!(!e.wait(EventMode::AutoReset, Patience::Try).unwrap());
        e.set(EventMode::AutoReset);
        assert!(e.wait(EventMode::AutoReset, Patience::Try).unwrap());
        assert!(!e.wait(EventMode::AutoReset, Patience::Try).unwrap());

        let m = RawEvent::new(EventMode::ManualReset);
        m.set(EventMode::ManualReset);
        assert!(m.try_consume(EventMode::ManualReset).unwrap());
        assert!(m.try_consume(EventMode::ManualReset).unwrap());
        m.reset();
        assert!(!m.try_consume(EventMode::ManualReset).unwrap());
    }

    #[test]
    fn corrupt_words_are_errors() {
        let e = RawEvent::new(EventMode::AutoReset);
        e.state.store(9, Ordering::Relaxed);
        assert!(e.wait(EventMode::AutoReset, Patience::Until(None)).is_err());
        e.flags.store(6, Ordering::Relaxed);
        assert_eq!(e.mode(), None);
    }

    #[test]
    fn a_sleeping_waiter_is_woken_by_a_set_from_another_thread() {
        let e = Arc::new(RawEvent::new(EventMode::AutoReset));
        for _ in 0..200 {
            let e2 = Arc::clone(&e);
            let t = std::thread::spawn(move || {
                e2.wait(EventMode::AutoReset, Patience::Until(None))
                    .unwrap()
            });
            e.set(EventMode::AutoReset);
            assert!(t.join().unwrap());
        }
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::*;
    use crate::primitive::model::{self, Timeouts};
    use loom::sync::Arc;

    /// A waiter blocked without timeout must be released by a set from another thread, for
    /// both modes (a lost wakeup would deadlock the model).
    #[test]
    fn set_wakes_a_blocked_waiter() {
        for mode in [EventMode::AutoReset, EventMode::ManualReset] {
            loom::model(move || {
                model::setup(Timeouts::Never);
                let e = Arc::new(RawEvent::new(mode));
                let e2 = Arc::clone(&e);
                let waiter =
                    loom::thread::spawn(move || e2.wait(mode, Patience::Until(None)).unwrap());
                e.set(mode);
                assert!(waiter.join().unwrap());
                let left = e.try_consume(mode).unwrap();
                assert_eq!(left, mode == EventMode::ManualReset);
            });
        }
    }

    /// Manual reset: one set releases two blocked waiters.
    #[test]
    fn manual_set_releases_every_waiter() {
        loom::model(|| {
            model::setup(Timeouts::Never);
            let mode = EventMode::ManualReset;
            let e = Arc::new(RawEvent::new(mode));
            let waiters: Vec<_> = (0..2)
                .map(|_| {
                    let e = Arc::clone(&e);
                    loom::thread::spawn(move || e.wait(mode, Patience::Until(None)).unwrap())
                })
                .collect();
            e.set(mode);
            for w in waiters {
                assert!(w.join().unwrap());
            }
        });
    }
}
