//! The robust mutex: a lock in shared memory that survives the death of its holder.
//!
//! # The word protocol (Linux, macOS)
//!
//! [`RawMutex`] lives in the segment (`#[repr(C)]`, 128 bytes, 128-aligned; byte layout in
//! `docs/layout.md`). Its `state` word:
//!
//! | bits   | field         | meaning |
//! |--------|---------------|---------|
//! | 0..22  | owner pid     | 0: unlocked; else the pid of the holding process |
//! | 22..30 | epoch         | +1 (mod 256) at every acquisition, kept while unlocked |
//! | 30     | reserved      | always 0; set means corrupt |
//! | 31     | `HAS_WAITERS` | a process may sleep on the word: the unlocker must wake one |
//!
//! | state                          | meaning |
//! |--------------------------------|---------|
//! | pid 0, `HAS_WAITERS` clear      | unlocked (initially all zero) |
//! | pid p, `HAS_WAITERS` clear      | locked by process p, nobody asleep |
//! | pid p, `HAS_WAITERS` set        | locked by p, sleepers may exist |
//! | pid 0, `HAS_WAITERS` set; bit 30 | corrupt: no shmwire process writes these |
//!
//! * **Lock**: CAS `unlocked(e) → me | e+1` with Acquire. The winner then writes its identity
//!   (`owner_start`, then `owner_pid` with Release) for liveness checks.
//! * **Contention**: set `HAS_WAITERS` by CAS on the locked value `v`, then futex-wait on the
//!   word expecting `v | HAS_WAITERS`, for a slice of at most [`SLICE`]. A waiter that slept
//!   acquires with `HAS_WAITERS` set, since others may still sleep (as in Drepper's mutex).
//! * **Owner died**: after a slice times out (or at once in `try_lock`), the waiter checks
//!   the owner p seen in the word: if `owner_pid == p`, p is dead when the platform's
//!   pid + start time liveness says so (a reused pid has another start time; a zombie is
//!   dead); if `owner_pid != p` (p died between its CAS and publishing its identity), p is
//!   dead only if no process has pid p. Recovery is the CAS `v → me | e+1 | (v & HAS_WAITERS)`,
//!   so of several recoverers exactly one wins; the winner marks the data inconsistent and is
//!   told the owner died. The epoch makes an ABA (p dies, the lock passes through other hands,
//!   the pid p is reused and p takes it again between a checker's look and its CAS) need 256
//!   acquisitions plus a pid reuse in that window.
//! * **Unlock**: clear `owner_pid` (if still ours), then CAS `v → epoch(v)` with Release,
//!   only while the word still names us with our epoch (a stale guard after a takeover
//!   releases nothing: "double unlock" is refused); if `v` had `HAS_WAITERS`, wake one.
//!
//! **Why no wakeup is lost**: a waiter sleeps only through a futex wait that compares the
//! word with the value `v | HAS_WAITERS` it set itself, atomically with going to sleep; an
//! unlock changes the word before it wakes, so either the waiter's compare fails and it
//! does not sleep, or it is asleep when the unlocker, reading `HAS_WAITERS` in the value it
//! replaced, wakes it. A woken waiter re-sets `HAS_WAITERS` whenever it goes back to sleep,
//! so the flag is never cleared while someone sleeps unannounced. Slices bound the damage of
//! anything else (a peer that corrupts the word): no wait is longer than [`SLICE`] without
//! a fresh look.
//!
//! The `consistent` word: 1 consistent; 0 the data may be half-updated (an owner died; the
//! recoverer holds the lock and must repair, then call [`MutexGuard::mark_consistent`]); 2
//! not recoverable (the recoverer released without marking: every later lock fails with
//! [`LockError::NotRecoverable`], as `ENOTRECOVERABLE`). Other values are corrupt.
//!
//! # Windows
//!
//! The same public type is a named kernel mutex `<ns><segment>~shmwire-mutex-<offset>`;
//! `WAIT_ABANDONED` means the owner died. A kernel object dies with its last handle (and
//! the abandonment with it), so an acquirer that finds `owner_pid` still naming a process
//! that is not alive (a clean release clears it first) also treats the owner as dead. The `consistent` word and `owner_pid`/`owner_start`
//! still live in the segment, so repair and poisoning behave the same.

use std::marker::PhantomData;
use std::time::{Duration, Instant};

use shmwire_platform::{KernelMutex, Liveness, MutexAcquired, NamedMutex, ProcessId};

use super::{LockError, LockTimeoutError, Patience, SyncOpenError, TryLockError, UnlockError};
use crate::primitive::{self, AtomicU32, AtomicU64, Ordering, Slept};
use crate::Segment;

/// Longest a waiter sleeps before it looks at the lock again (and checks whether the owner
/// is alive). A dead owner's lock is recovered within about this long.
pub(crate) const SLICE: Duration = crate::primitive::LIVENESS_SLICE;

const PID_BITS: u32 = 22;
const PID_MASK: u32 = (1 << PID_BITS) - 1;
const EPOCH_SHIFT: u32 = PID_BITS;
const EPOCH_MASK: u32 = 0xFF << EPOCH_SHIFT;
const RESERVED_BIT: u32 = 1 << 30;
const HAS_WAITERS: u32 = 1 << 31;

const CONSISTENT: u32 = 1;
const INCONSISTENT: u32 = 0;
const NOT_RECOVERABLE: u32 = 2;

/// `"SWMX"`: the tag of an initialized mutex (layout version 1).
pub(crate) const TAG: u32 = u32::from_le_bytes(*b"SWMX");

/// The mutex as it lies in shared memory. Every field is atomic, so `&RawMutex` may alias
/// memory other processes write.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct RawMutex {
    tag: AtomicU32,
    state: AtomicU32,
    consistent: AtomicU32,
    owner_pid: AtomicU32,
    owner_start: AtomicU64,
    _reserved: [AtomicU32; 26],
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<RawMutex>() == 128 && align_of::<RawMutex>() == 128);
    assert!(offset_of!(RawMutex, tag) == 0);
    assert!(offset_of!(RawMutex, state) == 4);
    assert!(offset_of!(RawMutex, consistent) == 8);
    assert!(offset_of!(RawMutex, owner_pid) == 12);
    assert!(offset_of!(RawMutex, owner_start) == 16);
};

/// A successful acquisition: the state value we wrote (our ownership token) and whether an
/// owner died.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Held {
    token: u32,
    pub(crate) owner_died: bool,
}

/// A failure of the word protocol (the public wrapper adds names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RawLockError {
    WouldBlock,
    TimedOut,
    NotRecoverable,
    Corrupt(String),
}

fn pid_of(state: u32) -> u32 {
    state & PID_MASK
}

fn next_epoch(state: u32) -> u32 {
    (state & EPOCH_MASK).wrapping_add(1 << EPOCH_SHIFT) & EPOCH_MASK
}

fn check_state(state: u32) -> Result<(), RawLockError> {
    if state & RESERVED_BIT != 0 {
        return Err(RawLockError::Corrupt(format!(
            "its state word {state:#010x} has the reserved bit set"
        )));
    }
    if pid_of(state) == 0 && state & HAS_WAITERS != 0 {
        return Err(RawLockError::Corrupt(format!(
            "its state word {state:#010x} is unlocked but announces waiters"
        )));
    }
    Ok(())
}

impl RawMutex {
    /// A fresh, unlocked mutex (for models and tests; in a segment, see [`RawMutex::init`]).
    #[cfg(test)]
    pub(crate) fn new() -> RawMutex {
        let m = RawMutex {
            tag: AtomicU32::new(0),
            state: AtomicU32::new(0),
            consistent: AtomicU32::new(0),
            owner_pid: AtomicU32::new(0),
            owner_start: AtomicU64::new(0),
            _reserved: std::array::from_fn(|_| AtomicU32::new(0)),
        };
        m.init();
        m
    }

    /// Makes this an unlocked, consistent mutex. Only for memory nobody uses yet.
    pub(crate) fn init(&self) {
        self.state.store(0, Ordering::Relaxed);
        self.consistent.store(CONSISTENT, Ordering::Relaxed);
        self.owner_pid.store(0, Ordering::Relaxed);
        self.owner_start.store(0, Ordering::Relaxed);
        // ORDERING: Release — publishes the words above; pairs with the Acquire load of the
        // tag in `is_initialized` (openers that find the segment without the header's own
        // Release/Acquire, e.g. raw segments).
        self.tag.store(TAG, Ordering::Release);
    }

    pub(crate) fn is_initialized(&self) -> bool {
        // ORDERING: Acquire — pairs with the Release store of the tag in `init`.
        self.tag.load(Ordering::Acquire) == TAG
    }

    /// The process recorded as holding the lock, if any (informational: may be stale).
    pub(crate) fn owner(&self) -> Option<ProcessId> {
        // ORDERING: Acquire — pairs with the Release store in `publish_owner`, so the start
        // time read next belongs to this pid (or to a later holder).
        let pid = self.owner_pid.load(Ordering::Acquire);
        (pid != 0).then(|| ProcessId {
            pid,
            start_time: self.owner_start.load(Ordering::Relaxed),
        })
    }

    pub(crate) fn is_not_recoverable(&self) -> bool {
        self.consistent.load(Ordering::Relaxed) == NOT_RECOVERABLE
    }

    /// Acquires the lock for process `me` with the word protocol.
    pub(crate) fn lock(&self, me: ProcessId, patience: Patience) -> Result<Held, RawLockError> {
        if me.pid == 0 || me.pid > PID_MASK {
            return Err(RawLockError::Corrupt(format!(
                "this process's pid {} does not fit the lock word",
                me.pid
            )));
        }
        let mut slept = false;
        let mut check_owner = matches!(patience, Patience::Try);
        loop {
            let cur = self.state.load(Ordering::Relaxed);
            check_state(cur)?;
            if pid_of(cur) == 0 {
                let waiters = if slept { HAS_WAITERS } else { 0 };
                let new = me.pid | next_epoch(cur) | waiters;
                // ORDERING: Acquire — pairs with the Release CAS in `unlock` (and in a
                // recovery): the previous holder's writes to the guarded data and to
                // `consistent` happen before ours.
                if self
                    .state
                    .compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return self.acquired(me, new, false);
                }
                continue;
            }
            if check_owner {
                check_owner = false;
                if self.owner_is_dead(cur) {
                    let new = me.pid | next_epoch(cur) | (cur & HAS_WAITERS);
                    // ORDERING: Acquire — pairs with the dead owner's last Release (its own
                    // acquisition chain): what it wrote before dying is visible to the repair.
                    if self
                        .state
                        .compare_exchange(cur, new, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                    {
                        return self.acquired(me, new, true);
                    }
                    continue; // another recoverer won, or the word changed: look again
                }
            }
            let Some(slice) = patience.next_slice(SLICE) else {
                return Err(match patience {
                    Patience::Try => RawLockError::WouldBlock,
                    Patience::Until(_) => RawLockError::TimedOut,
                });
            };
            let expected = cur | HAS_WAITERS;
            if cur & HAS_WAITERS == 0
                && self
                    .state
                    .compare_exchange(cur, expected, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            slept = true;
            if primitive::wait(&self.state, expected, Some(slice)) == Slept::TimedOut {
                check_owner = true;
            }
        }
    }

    /// Whether the owner named in `state` is gone (see the module docs).
    fn owner_is_dead(&self, state: u32) -> bool {
        let p = pid_of(state);
        // ORDERING: Acquire — pairs with the Release store of owner_pid in `publish_owner`:
        // if we see p there, the start time we read next is p's (or a later holder's).
        let fp = self.owner_pid.load(Ordering::Acquire);
        let fs = self.owner_start.load(Ordering::Relaxed);
        if fp == p {
            match primitive::liveness(ProcessId {
                pid: p,
                start_time: fs,
            }) {
                Liveness::Dead => true,
                Liveness::Alive => false,
                _ => !primitive::process_exists(p),
            }
        } else {
            !primitive::process_exists(p)
        }
    }

    /// Called with the lock just taken (word protocol) with state value `token`.
    fn acquired(&self, me: ProcessId, token: u32, died: bool) -> Result<Held, RawLockError> {
        self.publish_owner(me);
        match self.after_acquire(died) {
            Ok(owner_died) => Ok(Held { token, owner_died }),
            Err(e) => {
                let _ = self.unlock(Held {
                    token,
                    owner_died: false,
                });
                Err(e)
            }
        }
    }

    /// Records the holder's identity for liveness checks (both backends).
    pub(crate) fn publish_owner(&self, me: ProcessId) {
        self.owner_start.store(me.start_time, Ordering::Relaxed);
        // ORDERING: Release — pairs with the Acquire load in `owner_is_dead`/`owner`: who
        // sees our pid also sees our start time, not the previous holder's.
        self.owner_pid.store(me.pid, Ordering::Release);
    }

    /// The `consistent` bookkeeping after any acquisition (both backends): `Ok(true)` if the
    /// data must be repaired. The caller holds the lock, so plain loads and stores suffice;
    /// the lock's own Acquire/Release orders them.
    pub(crate) fn after_acquire(&self, died: bool) -> Result<bool, RawLockError> {
        match self.consistent.load(Ordering::Relaxed) {
            CONSISTENT if died => {
                self.consistent.store(INCONSISTENT, Ordering::Relaxed);
                Ok(true)
            }
            CONSISTENT => Ok(false),
            // An owner died earlier and whoever recovered it died too before repairing.
            INCONSISTENT => Ok(true),
            NOT_RECOVERABLE => Err(RawLockError::NotRecoverable),
            other => Err(RawLockError::Corrupt(format!(
                "its consistency word holds {other}"
            ))),
        }
    }

    /// The bookkeeping before any release (both backends): poisons the mutex if the data
    /// was left unrepaired, and clears our identity.
    pub(crate) fn before_release(&self, me: u32, unrepaired: bool) {
        if unrepaired {
            self.consistent.store(NOT_RECOVERABLE, Ordering::Relaxed);
        }
        // Only if it is still ours: after a takeover it names the new owner.
        let _ = self
            .owner_pid
            .compare_exchange(me, 0, Ordering::Relaxed, Ordering::Relaxed);
    }

    pub(crate) fn mark_consistent(&self) {
        self.consistent.store(CONSISTENT, Ordering::Relaxed);
    }

    /// Releases a lock taken with the word protocol. `Err(())`: the word no longer names us
    /// (we were taken over); nothing was released.
    pub(crate) fn unlock(&self, held: Held) -> Result<(), ()> {
        let mine = held.token & (PID_MASK | EPOCH_MASK);
        let mut cur = self.state.load(Ordering::Relaxed);
        loop {
            if cur & (PID_MASK | EPOCH_MASK) != mine {
                return Err(());
            }
            // ORDERING: Release — publishes our writes to the guarded data and `consistent`;
            // pairs with the Acquire CAS of the next locker (or recoverer).
            match self.state.compare_exchange_weak(
                cur,
                cur & EPOCH_MASK,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if cur & HAS_WAITERS != 0 {
            primitive::wake(&self.state, 1);
        }
        Ok(())
    }

    /// Test hook: the first half of an acquisition (the CAS) without publishing identity,
    /// to model a holder killed in between.
    #[cfg(all(test, loom))]
    pub(crate) fn cas_only(&self, me: ProcessId) -> bool {
        let cur = self.state.load(Ordering::Relaxed);
        pid_of(cur) == 0
            && self
                .state
                .compare_exchange(
                    cur,
                    me.pid | next_epoch(cur),
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
    }

    #[cfg(test)]
    pub(crate) fn state_word(&self) -> u32 {
        self.state.load(Ordering::Relaxed)
    }
}

// ------------------------------------------------------------------------------ public API

enum Imp {
    Word,
    Kernel(NamedMutex),
}

impl std::fmt::Debug for Imp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Imp::Word => "word protocol",
            Imp::Kernel(_) => "kernel mutex",
        })
    }
}

/// A mutex in a segment that survives the death of its holder.
///
/// It guards whatever data the processes agree it guards (usually bytes next to it in the
/// same segment). When the process holding it dies (killed, crashed), the next process to
/// lock it gets it within about 20 ms of trying and is told that the owner died
/// ([`MutexGuard::owner_died`]): the data may be half-updated. It repairs the data and calls
/// [`MutexGuard::mark_consistent`]; if it releases the lock without doing so, the mutex
/// becomes permanently unusable ([`LockError::NotRecoverable`]), like a POSIX robust mutex
/// (`EOWNERDEAD` / `pthread_mutex_consistent` / `ENOTRECOVERABLE`) or a Windows mutex
/// (`WAIT_ABANDONED`).
///
/// A process's death is judged by pid **and** start time, so a recycled pid never keeps a
/// dead owner's lock alive, and a zombie (dead, not yet reaped) counts as dead.
///
/// # Examples
///
/// ```
/// use shmwire::{Segment, sync::RobustMutex};
/// # let name = format!("doc-mutex-{}", std::process::id());
/// let (seg, _) = Segment::options().open_or_create(&name, 4096, |seg| {
///     RobustMutex::init_in(seg, 0)?;
///     Ok(())
/// })?;
/// let mutex = RobustMutex::open_in(&seg, 0)?;
/// {
///     let mut guard = mutex.lock()?;
///     if guard.owner_died() {
///         // ... check and repair the data at 128.. ...
///         guard.mark_consistent();
///     }
///     seg.write_at(128, b"updated under the lock")?;
/// } // unlocked here
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Platform-specific behavior
///
/// Linux and macOS: a word protocol in the segment (futex on Linux; polling on macOS, see
/// [`wait_mechanism`](super::wait_mechanism)). Windows: a named kernel mutex derived from the
/// segment's name and the offset, plus the same words in the segment for repair state.
/// Robustness is per process on Linux and macOS (a thread that ends while holding the lock
/// in a live process keeps it held), per thread on Windows (the kernel abandons it).
///
/// Not reentrant: locking it again from the thread that holds it waits for itself (until
/// the timeout) on Linux and macOS, and is a caller bug on every platform.
#[derive(Debug)]
pub struct RobustMutex<'seg> {
    seg: &'seg Segment,
    offset: u64,
    raw: &'seg RawMutex,
    imp: Imp,
}

/// Proof of holding a [`RobustMutex`]; releases it when dropped.
///
/// Not `Send`: a lock is released by the thread that took it (Windows requires it).
#[must_use = "the mutex is released as soon as the guard is dropped"]
#[derive(Debug)]
pub struct MutexGuard<'a> {
    mutex: &'a RobustMutex<'a>,
    held: Held,
    me: u32,
    owner_died: bool,
    repaired: bool,
    released: bool,
    _not_send: PhantomData<*const ()>,
}

impl<'seg> RobustMutex<'seg> {
    /// Bytes a mutex occupies in a segment.
    pub const SIZE: u64 = 128;
    /// Required alignment of its offset.
    pub const ALIGN: u64 = 128;

    /// Initializes an unlocked, consistent mutex at payload `offset` of `seg` (a multiple of
    /// 128) and opens it. For the creator only, before other processes use it: typically in
    /// the `init` closure of [`SegmentOptions::open_or_create`](crate::SegmentOptions::open_or_create).
    ///
    /// # Errors
    ///
    /// [`SyncOpenError`]: out of range, misaligned, read-only segment, or (Windows) the
    /// kernel object could not be made.
    pub fn init_in(seg: &'seg Segment, offset: u64) -> Result<Self, SyncOpenError> {
        let raw: &RawMutex = super::place(seg, offset, "mutex")?;
        raw.init();
        Self::open_in(seg, offset)
    }

    /// Opens the mutex that [`init_in`](Self::init_in) made at payload `offset` of `seg`.
    ///
    /// # Errors
    ///
    /// [`SyncOpenError::NotInitialized`] if there is none; others as for `init_in`.
    pub fn open_in(seg: &'seg Segment, offset: u64) -> Result<Self, SyncOpenError> {
        let raw: &RawMutex = super::place(seg, offset, "mutex")?;
        if !raw.is_initialized() {
            return Err(SyncOpenError::NotInitialized {
                name: seg.name().to_string(),
                what: "mutex",
                offset,
            });
        }
        let imp = if shmwire_platform::KERNEL_SYNC_OBJECTS {
            let m = NamedMutex::open_or_create(seg.object_name(), &format!("mutex-{offset}"))
                .map_err(|source| SyncOpenError::Os {
                    name: seg.name().to_string(),
                    what: "mutex",
                    offset,
                    source,
                })?;
            Imp::Kernel(m)
        } else {
            Imp::Word
        };
        Ok(RobustMutex {
            seg,
            offset,
            raw,
            imp,
        })
    }

    /// Takes the lock if that is possible without waiting. A lock whose owner is dead is
    /// recovered (the guard says so).
    ///
    /// # Errors
    ///
    /// [`TryLockError::WouldBlock`] if a live process holds it; otherwise as
    /// [`lock`](Self::lock).
    pub fn try_lock(&self) -> Result<MutexGuard<'_>, TryLockError> {
        self.lock_with(Patience::Try, Some(Duration::ZERO))?
            .ok_or(TryLockError::WouldBlock)
    }

    /// Takes the lock, waiting as long as it takes. A dead owner's lock is recovered within
    /// about 20 ms.
    ///
    /// # Errors
    ///
    /// [`LockError::NotRecoverable`], [`LockError::Corrupt`], [`LockError::Os`].
    pub fn lock(&self) -> Result<MutexGuard<'_>, LockError> {
        loop {
            // A wait without a deadline ends with the lock; were it ever to come back
            // empty-handed, it would simply wait again.
            if let Some(guard) = self.lock_with(Patience::Until(None), None)? {
                return Ok(guard);
            }
        }
    }

    /// Takes the lock, waiting at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`LockTimeoutError::Timeout`]; otherwise as [`lock`](Self::lock).
    pub fn lock_timeout(&self, timeout: Duration) -> Result<MutexGuard<'_>, LockTimeoutError> {
        let deadline = Instant::now().checked_add(timeout);
        self.lock_with(Patience::Until(deadline), Some(timeout))?
            .ok_or(LockTimeoutError::Timeout)
    }

    /// The process recorded as holding the lock now, if any. Informational: it may change
    /// at any moment, and may name a dead process until someone recovers the lock.
    pub fn owner(&self) -> Option<ProcessId> {
        self.raw.owner()
    }

    /// Whether the mutex is permanently unusable (an owner died and the data was never
    /// marked consistent).
    pub fn is_not_recoverable(&self) -> bool {
        self.raw.is_not_recoverable()
    }

    /// The payload offset of the mutex.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    fn name(&self) -> String {
        self.seg.name().to_string()
    }

    /// The error for `e`; `None` for "not now" (would block, timed out).
    fn raw_error(&self, e: RawLockError) -> Option<LockError> {
        let (name, offset) = (self.name(), self.offset);
        Some(match e {
            RawLockError::WouldBlock | RawLockError::TimedOut => return None,
            RawLockError::NotRecoverable => LockError::NotRecoverable { name, offset },
            RawLockError::Corrupt(reason) => LockError::Corrupt {
                name,
                offset,
                reason,
            },
        })
    }

    /// Takes the lock as `patience` says; `Ok(None)` if it was not free in time.
    fn lock_with(
        &self,
        patience: Patience,
        timeout: Option<Duration>,
    ) -> Result<Option<MutexGuard<'_>>, LockError> {
        let me = primitive::current_process();
        let held = match &self.imp {
            Imp::Word => match self.raw.lock(me, patience) {
                Ok(held) => held,
                Err(e) => return self.raw_error(e).map_or(Ok(None), Err),
            },
            Imp::Kernel(m) => {
                let os = |source| LockError::Os {
                    name: self.name(),
                    offset: self.offset,
                    source,
                };
                let got = m.lock(timeout).map_err(os)?;
                let Some(how) = got else {
                    return Ok(None);
                };
                // A kernel mutex dies with its last handle, and with it the news of an
                // abandonment: if every process had closed it, we just made a fresh one.
                // The segment remembers: a clean release clears `owner_pid` first, so a
                // recorded owner that is not alive died holding the lock.
                let stale = self
                    .raw
                    .owner()
                    .is_some_and(|o| primitive::liveness(o) != Liveness::Alive);
                self.raw.publish_owner(me);
                match self
                    .raw
                    .after_acquire(how == MutexAcquired::Abandoned || stale)
                {
                    Ok(owner_died) => Held {
                        token: 0,
                        owner_died,
                    },
                    Err(e) => {
                        self.raw.before_release(me.pid, false);
                        m.unlock().map_err(os)?;
                        return self.raw_error(e).map_or(Ok(None), Err);
                    }
                }
            }
        };
        Ok(Some(MutexGuard {
            mutex: self,
            held,
            me: me.pid,
            owner_died: held.owner_died,
            repaired: false,
            released: false,
            _not_send: PhantomData,
        }))
    }
}

impl MutexGuard<'_> {
    /// Whether the previous owner died holding the lock: the guarded data may be half
    /// updated. Repair it, then call [`mark_consistent`](Self::mark_consistent).
    #[doc(alias = "EOWNERDEAD")]
    #[doc(alias = "WAIT_ABANDONED")]
    pub fn owner_died(&self) -> bool {
        self.owner_died
    }

    /// Declares the data repaired: the mutex stays usable after this guard releases it.
    /// Without this call, releasing a lock recovered from a dead owner makes the mutex
    /// permanently unusable ([`LockError::NotRecoverable`]). No effect if the owner did not
    /// die.
    #[doc(alias = "pthread_mutex_consistent")]
    pub fn mark_consistent(&mut self) {
        if self.owner_died {
            self.mutex.raw.mark_consistent();
            self.repaired = true;
        }
    }

    /// Releases the lock now, reporting failures that dropping the guard would ignore.
    ///
    /// # Errors
    ///
    /// [`UnlockError::NotOwner`] if another process took the lock over meanwhile;
    /// [`UnlockError::Os`] if the OS refused (Windows).
    pub fn unlock(mut self) -> Result<(), UnlockError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), UnlockError> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        let m = self.mutex;
        m.raw
            .before_release(self.me, self.owner_died && !self.repaired);
        match &m.imp {
            Imp::Word => m.raw.unlock(self.held).map_err(|()| UnlockError::NotOwner {
                name: m.name(),
                offset: m.offset,
            }),
            Imp::Kernel(k) => k.unlock().map_err(|source| UnlockError::Os {
                name: m.name(),
                offset: m.offset,
                source,
            }),
        }
    }
}

impl Drop for MutexGuard<'_> {
    fn drop(&mut self) {
        let _ = self.release();
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn me() -> ProcessId {
        primitive::current_process()
    }

    #[test]
    fn lock_unlock_and_the_epoch_advances() {
        let m = RawMutex::new();
        let h = m.lock(me(), Patience::Try).unwrap();
        assert!(!h.owner_died);
        assert_eq!(pid_of(m.state_word()), me().pid);
        assert_eq!(m.owner(), Some(me()));
        assert_eq!(m.lock(me(), Patience::Try), Err(RawLockError::WouldBlock));
        m.before_release(me().pid, false);
        m.unlock(h).unwrap();
        assert_eq!(m.state_word(), 1 << EPOCH_SHIFT);
        assert_eq!(m.owner(), None);
        // A stale token releases nothing.
        let h2 = m.lock(me(), Patience::Try).unwrap();
        assert_eq!(m.unlock(h), Err(()));
        m.unlock(h2).unwrap();
    }

    #[test]
    fn a_dead_owner_is_recovered_and_repair_is_required() {
        let m = RawMutex::new();
        // A "process" that does not exist: pid 0x3FFFFF is beyond Linux's default pid_max.
        m.state.store(0x3F_FFFF | HAS_WAITERS, Ordering::Relaxed);
        m.owner_pid.store(0x3F_FFFF, Ordering::Relaxed);
        m.owner_start.store(12345, Ordering::Relaxed);
        let h = m.lock(me(), Patience::Try).unwrap();
        assert!(h.owner_died);
        assert_ne!(m.state_word() & HAS_WAITERS, 0, "sleepers stay announced");
        // Released without repair: not recoverable from now on.
        m.before_release(me().pid, true);
        m.unlock(h).unwrap();
        assert_eq!(
            m.lock(me(), Patience::Try),
            Err(RawLockError::NotRecoverable)
        );
        assert!(m.is_not_recoverable());
    }

    #[test]
    fn a_live_owner_with_a_recycled_looking_pid_is_not_taken_over() {
        let m = RawMutex::new();
        let h = m.lock(me(), Patience::Try).unwrap();
        // Same pid, same start time: alive. Another thread must not take it.
        let r = m.lock(me(), Patience::Until(Some(Instant::now() + SLICE * 3)));
        assert_eq!(r, Err(RawLockError::TimedOut));
        m.unlock(h).unwrap();
        // Our pid with another start time: a dead predecessor whose pid we reuse.
        let h = m.lock(me(), Patience::Try).unwrap();
        m.owner_start.store(me().start_time + 1, Ordering::Relaxed);
        let h2 = m.lock(me(), Patience::Try).unwrap();
        assert!(h2.owner_died);
        assert_eq!(m.unlock(h), Err(()));
        m.unlock(h2).unwrap();
    }

    #[test]
    fn corrupt_words_are_errors_not_hangs() {
        let m = RawMutex::new();
        m.state.store(RESERVED_BIT, Ordering::Relaxed);
        assert!(matches!(
            m.lock(me(), Patience::Until(None)),
            Err(RawLockError::Corrupt(_))
        ));
        m.state.store(HAS_WAITERS, Ordering::Relaxed);
        assert!(matches!(
            m.lock(me(), Patience::Until(None)),
            Err(RawLockError::Corrupt(_))
        ));
        m.state.store(0, Ordering::Relaxed);
        m.consistent.store(77, Ordering::Relaxed);
        assert!(matches!(
            m.lock(me(), Patience::Try),
            Err(RawLockError::Corrupt(_))
        ));
        assert_eq!(m.state_word() & PID_MASK, 0, "released again");
    }

    #[test]
    fn threads_exclude_each_other_and_sleepers_are_woken() {
        let m = Arc::new(RawMutex::new());
        let counter = Arc::new(crate::primitive::AtomicU64::new(0));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (m, counter) = (Arc::clone(&m), Arc::clone(&counter));
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        let h = m.lock(me(), Patience::Until(None)).unwrap();
                        // Not atomic as a whole: only exclusion keeps the count exact.
                        let v = counter.load(std::sync::atomic::Ordering::Relaxed);
                        counter.store(v + 1, std::sync::atomic::Ordering::Relaxed);
                        m.unlock(h).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(counter.load(std::sync::atomic::Ordering::Relaxed), 8000);
        assert_eq!(pid_of(m.state_word()), 0);
    }
}

#[cfg(all(test, loom))]
mod models {
    use super::*;
    use crate::primitive::model::{self, Timeouts};
    use loom::sync::Arc;

    fn pid(p: u32) -> ProcessId {
        model::become_process(p);
        primitive::current_process()
    }

    /// Two processes lock, bump a counter non-atomically, unlock. Waits never time out, so
    /// a lost wakeup would be a deadlock; a broken exclusion would lose an increment.
    #[test]
    fn lost_wakeup_and_exclusion() {
        loom::model(|| {
            model::setup(Timeouts::Never);
            let m = Arc::new(RawMutex::new());
            let data = Arc::new(AtomicU32::new(0));
            let threads: Vec<_> = (1..=2)
                .map(|p| {
                    let (m, data) = (Arc::clone(&m), Arc::clone(&data));
                    loom::thread::spawn(move || {
                        let me = pid(p);
                        let h = m.lock(me, Patience::Until(None)).unwrap();
                        let v = data.load(Ordering::Relaxed);
                        data.store(v + 1, Ordering::Relaxed);
                        m.before_release(me.pid, false);
                        m.unlock(h).unwrap();
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(data.load(Ordering::Relaxed), 2);
            assert_eq!(pid_of(m.state_word()), 0);
        });
    }

    /// A holder dies (after publishing its identity, or between its CAS and that); the next
    /// locker recovers and is told.
    #[test]
    fn owner_died_handover() {
        for publish in [true, false] {
            loom::model(move || {
                model::setup(Timeouts::Fire);
                let m = Arc::new(RawMutex::new());
                let m1 = Arc::clone(&m);
                let holder = loom::thread::spawn(move || {
                    let me = pid(1);
                    if publish {
                        let _held = m1.lock(me, Patience::Until(None)).unwrap();
                    } else {
                        // Killed right after its CAS (if it won it), before publishing.
                        let _ = m1.cas_only(me);
                    }
                    model::die();
                });
                let me = pid(2);
                let h = m.lock(me, Patience::Until(None)).unwrap();
                if h.owner_died {
                    // The repair state is recorded for whoever comes next.
                    assert!(m.after_acquire(false).unwrap());
                    m.mark_consistent();
                }
                m.before_release(me.pid, false);
                m.unlock(h).unwrap();
                holder.join().unwrap();
            });
        }
    }

    /// Two processes find the same dead owner: exactly one recovers, the other waits for it
    /// and then finds the data repaired.
    #[test]
    fn one_recoverer_wins() {
        loom::model(|| {
            model::setup(Timeouts::Fire);
            let m = Arc::new(RawMutex::new());
            let dead = pid(3);
            m.lock(dead, Patience::Try).unwrap();
            model::die(); // holding it
            let recovered = Arc::new(AtomicU32::new(0));
            let threads: Vec<_> = (1..=2)
                .map(|p| {
                    let (m, recovered) = (Arc::clone(&m), Arc::clone(&recovered));
                    loom::thread::spawn(move || {
                        let me = pid(p);
                        let h = m.lock(me, Patience::Until(None)).unwrap();
                        if h.owner_died {
                            recovered.fetch_add(1, Ordering::Relaxed);
                            m.mark_consistent();
                        }
                        m.before_release(me.pid, false);
                        m.unlock(h).unwrap();
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap();
            }
            assert_eq!(recovered.load(Ordering::Relaxed), 1);
        });
    }

    /// A holder wrongly judged dead (it still runs) unlocks after being taken over: its
    /// stale unlock is refused and the new owner's lock stays intact ("double unlock").
    #[test]
    fn double_unlock_after_takeover_is_refused() {
        loom::model(|| {
            model::setup(Timeouts::Fire);
            let m = Arc::new(RawMutex::new());
            let first = pid(1);
            let h1 = m.lock(first, Patience::Try).unwrap();
            let m2 = Arc::clone(&m);
            let taker = loom::thread::spawn(move || {
                let me = pid(2);
                let h2 = m2.lock(me, Patience::Until(None)).unwrap();
                let st = m2.state_word();
                assert_eq!(pid_of(st), 2, "we hold it");
                m2.before_release(me.pid, false);
                m2.unlock(h2).unwrap();
                h2.owner_died
            });
            model::die(); // judged dead from now on, but it keeps running
            let stale = m.unlock(h1);
            let took_over = taker.join().unwrap();
            assert_eq!(stale.is_err(), took_over);
            assert_eq!(pid_of(m.state_word()), 0);
        });
    }
}
