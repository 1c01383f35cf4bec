//! Waiting on shared words on POSIX: `futex` on Linux, a polling fallback on macOS. POSIX has
//! no named kernel mutexes/events/semaphores that we use: those types cannot be constructed
//! here (every constructor returns `Unsupported`).
//!
//! No unsafe code: rustix's futex takes `&AtomicU32`.

use std::io;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use crate::sync::{KernelEvent, KernelMutex, KernelSemaphore, MutexAcquired, WaitOutcome};
use crate::{ObjectName, Os, WordWait};

pub(crate) const KERNEL_SYNC_OBJECTS: bool = false;

#[cfg(linux_like)]
pub(crate) const WORD_WAIT_MECHANISM: &str = "futex";
#[cfg(not(linux_like))]
pub(crate) const WORD_WAIT_MECHANISM: &str = "polling (macOS fallback)";

#[cfg(linux_like)]
impl WordWait for Os {
    fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome {
        use rustix::io::Errno;
        use rustix::thread::futex;
        let ts = timeout.map(|t| futex::Timespec {
            tv_sec: t.as_secs().min(i64::MAX as u64) as i64,
            tv_nsec: i64::from(t.subsec_nanos()) as _,
        });
        // NOT `Flags::PRIVATE`: the word is in a mapping shared with other processes, and a
        // private futex is keyed by this process's address space alone.
        match futex::wait(word, futex::Flags::empty(), expected, ts.as_ref()) {
            Ok(()) => WaitOutcome::Woken,
            Err(Errno::AGAIN) => WaitOutcome::Changed,
            Err(Errno::TIMEDOUT) => WaitOutcome::TimedOut,
            Err(Errno::INTR) => WaitOutcome::Interrupted,
            // EFAULT/EINVAL cannot happen for a valid `&AtomicU32`; report as spurious.
            Err(_) => WaitOutcome::Woken,
        }
    }

    fn wake(word: &AtomicU32, n: u32) -> usize {
        use rustix::thread::futex;
        let n = n.min(i32::MAX as u32);
        futex::wake(word, futex::Flags::empty(), n).unwrap_or(0)
    }
}

#[cfg(not(linux_like))]
impl WordWait for Os {
    fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome {
        crate::sync::poll_wait(word, expected, timeout)
    }

    fn wake(_word: &AtomicU32, _n: u32) -> usize {
        0
    }
}

/// The Windows kernel objects do not exist here: no value of this type is ever made (every
/// constructor fails with `Unsupported`).
#[derive(Debug)]
pub struct NamedMutex(());
/// See [`NamedMutex`].
#[derive(Debug)]
pub struct NamedEvent(());
/// See [`NamedMutex`].
#[derive(Debug)]
pub struct NamedSemaphore(());

fn unsupported() -> io::Error {
    io::Error::new(
        io::ErrorKind::Unsupported,
        "named kernel synchronization objects exist only on Windows",
    )
}

impl KernelMutex for NamedMutex {
    fn open_or_create(_name: ObjectName<'_>, _tag: &str) -> io::Result<Self> {
        Err(unsupported())
    }
    fn lock(&self, _timeout: Option<Duration>) -> io::Result<Option<MutexAcquired>> {
        Err(unsupported())
    }
    fn unlock(&self) -> io::Result<()> {
        Err(unsupported())
    }
}

impl KernelEvent for NamedEvent {
    fn open_or_create(
        _name: ObjectName<'_>,
        _tag: &str,
        _manual_reset: bool,
        _initially_set: bool,
    ) -> io::Result<(Self, bool)> {
        Err(unsupported())
    }
    fn set(&self) -> io::Result<()> {
        Err(unsupported())
    }
    fn reset(&self) -> io::Result<()> {
        Err(unsupported())
    }
    fn wait(&self, _timeout: Option<Duration>) -> io::Result<bool> {
        Err(unsupported())
    }
}

impl KernelSemaphore for NamedSemaphore {
    fn open_or_create(
        _name: ObjectName<'_>,
        _tag: &str,
        _initial: u32,
        _max: u32,
    ) -> io::Result<(Self, bool)> {
        Err(unsupported())
    }
    fn post(&self, _n: u32) -> io::Result<()> {
        Err(unsupported())
    }
    fn wait(&self, _timeout: Option<Duration>) -> io::Result<bool> {
        Err(unsupported())
    }
}
