//! Cross-process waiting: the contracts of the two mechanisms shmwire's synchronization
//! objects are built on.
//!
//! * [`WordWait`]: sleep while a shared 32-bit word holds an expected value, and wake sleepers.
//!   Linux: `futex(FUTEX_WAIT/FUTEX_WAKE)` on the word in the mapping, **without**
//!   `FUTEX_PRIVATE_FLAG` (a private futex is keyed by the process's address space and would
//!   never see a wake from another process). macOS and Windows: a bounded polling fallback
//!   (see [`WORD_WAIT_MECHANISM`]); on Windows `WaitOnAddress` only works within one process.
//! * Named kernel objects ([`KernelMutex`], [`KernelEvent`], [`KernelSemaphore`]): Windows
//!   mutexes (with `WAIT_ABANDONED` when the owner dies), events and semaphores, named after
//!   the segment plus a suffix containing [`crate::DERIVED_MARKER`] so that they never share a
//!   name with a mapping. On POSIX these types exist but cannot be made (every constructor
//!   fails with `Unsupported`); [`KERNEL_SYNC_OBJECTS`] tells the layers above which of the
//!   two mechanisms to build on, without a `cfg` of their own.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use crate::ObjectName;

/// Whether this platform's synchronization objects are named kernel objects (Windows) rather
/// than word protocols in shared memory over [`WordWait`] (Linux, macOS).
pub const KERNEL_SYNC_OBJECTS: bool = crate::backend::sync::KERNEL_SYNC_OBJECTS;

/// How [`WordWait::wait`] sleeps here: `"futex"` (Linux), `"polling (macOS fallback)"`, or
/// `"polling (Windows: WaitOnAddress is process-local)"`. Never degrade silently: callers
/// report this (`shmwire::sync::wait_mechanism`).
pub const WORD_WAIT_MECHANISM: &str = crate::backend::sync::WORD_WAIT_MECHANISM;

/// Why a [`WordWait::wait`] returned. Every outcome may also be spurious: callers re-check
/// their condition in a loop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WaitOutcome {
    /// Woken by [`WordWait::wake`], or spuriously (the OS does not tell them apart).
    Woken,
    /// The word did not hold the expected value (checked atomically with going to sleep).
    Changed,
    /// The timeout passed.
    TimedOut,
    /// A signal interrupted the wait.
    Interrupted,
}

/// Sleeping on a 32-bit word in shared memory: the contract of [`crate::Os`].
///
/// The word may live in a mapping shared with other processes; a wake from any process that
/// maps the same object reaches sleepers in every process.
pub trait WordWait {
    /// Sleeps while `*word == expected`, up to `timeout` (`None`: no limit).
    ///
    /// The comparison and going to sleep are atomic with respect to [`WordWait::wake`]: if
    /// another thread changes the word and then calls `wake`, this call either sees the new
    /// value (returns [`WaitOutcome::Changed`]) or is woken. This is what makes a lost wakeup
    /// impossible for protocols that change the word before waking.
    ///
    /// # Platform-specific behavior
    ///
    /// With the polling fallback (macOS, Windows) the call sleeps in short steps (up to
    /// 1 ms) and returns once the value differs or the timeout passes; `wake` is a no-op.
    fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome;

    /// Wakes up to `n` sleepers of `word` (`u32::MAX`: all). Returns how many were woken,
    /// where the OS tells (0 otherwise).
    fn wake(word: &AtomicU32, n: u32) -> usize;
}

/// How a [`KernelMutex::lock`] succeeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MutexAcquired {
    /// The mutex was free, or released normally.
    Normally,
    /// Its previous owner ended without releasing it (`WAIT_ABANDONED`): the caller owns it
    /// now, and the data it guards may be half-updated.
    Abandoned,
}

/// A named kernel mutex (Windows `CreateMutexW`), owned by a thread.
///
/// Errors are `io::Error`s with the OS code; `Unsupported` where there are no such objects.
pub trait KernelMutex: Sized + Send + Sync {
    /// Opens the mutex `<namespace><name>~shmwire-<tag>`, creating it unowned if it does not
    /// exist. New objects are owner-only.
    fn open_or_create(name: ObjectName<'_>, tag: &str) -> io::Result<Self>;

    /// Acquires it, waiting up to `timeout` (`None`: no limit). `Ok(None)`: timed out.
    ///
    /// The mutex is recursive and owned by the calling thread, which must also release it.
    fn lock(&self, timeout: Option<Duration>) -> io::Result<Option<MutexAcquired>>;

    /// Releases it (the calling thread must own it).
    fn unlock(&self) -> io::Result<()>;
}

/// A named kernel event (Windows `CreateEventW`).
pub trait KernelEvent: Sized + Send + Sync {
    /// Opens the event `<namespace><name>~shmwire-<tag>`, creating it if it does not exist
    /// with the given reset mode and initial state. Returns whether this call created it (if
    /// not, `manual_reset` and `initially_set` were ignored: the object keeps its own).
    fn open_or_create(
        name: ObjectName<'_>,
        tag: &str,
        manual_reset: bool,
        initially_set: bool,
    ) -> io::Result<(Self, bool)>;

    /// Sets it: releases all waiters (manual reset) or one (auto reset).
    fn set(&self) -> io::Result<()>;

    /// Resets it to not set.
    fn reset(&self) -> io::Result<()>;

    /// Waits until it is set, up to `timeout`; `Ok(false)` on timeout. An auto-reset event is
    /// reset by the wait that returns `true`.
    fn wait(&self, timeout: Option<Duration>) -> io::Result<bool>;
}

/// A named kernel counting semaphore (Windows `CreateSemaphoreW`).
pub trait KernelSemaphore: Sized + Send + Sync {
    /// Opens the semaphore `<namespace><name>~shmwire-<tag>`, creating it with `initial`
    /// permits (at most `max`) if it does not exist. Returns whether this call created it.
    fn open_or_create(
        name: ObjectName<'_>,
        tag: &str,
        initial: u32,
        max: u32,
    ) -> io::Result<(Self, bool)>;

    /// Adds `n` permits. Fails with `InvalidInput` if that would exceed the maximum (nothing
    /// is added then).
    fn post(&self, n: u32) -> io::Result<()>;

    /// Takes one permit, waiting up to `timeout`; `Ok(false)` on timeout.
    fn wait(&self, timeout: Option<Duration>) -> io::Result<bool>;
}

/// The name suffix of a derived object: `~shmwire-<tag>`.
#[cfg_attr(not(windows), allow(dead_code))]
pub(crate) fn derived_suffix(tag: &str) -> String {
    format!("{}{tag}", crate::DERIVED_MARKER)
}

/// The polling fallback of [`WordWait::wait`]: re-reads the word with a growing sleep (50 µs
/// up to 1 ms) until it differs from `expected` or `timeout` passes. Used where the OS has no
/// cross-process wait on an address that we can rely on (macOS before 14.4 and, as shipped
/// here, every macOS; Windows). A wake costs nothing and is noticed within about 1 ms.
#[cfg_attr(linux_like, allow(dead_code))]
pub(crate) fn poll_wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome {
    use std::sync::atomic::Ordering;
    use std::time::Instant;
    let start = Instant::now();
    let mut step = Duration::from_micros(50);
    loop {
        // Relaxed: the caller re-reads the word with its own ordering after we return.
        if word.load(Ordering::Relaxed) != expected {
            return WaitOutcome::Changed;
        }
        let left = match timeout {
            Some(t) => match t.checked_sub(start.elapsed()) {
                Some(left) if !left.is_zero() => left,
                _ => return WaitOutcome::TimedOut,
            },
            None => step,
        };
        std::thread::sleep(step.min(left));
        step = (step * 2).min(Duration::from_millis(1));
    }
}
