//! Error types of the synchronization objects, one per operation. Each `Display` is one
//! sentence naming the object (kind and offset) and the segment; the OS error, where there
//! is one, is the `source()`.

use std::io;

/// Why placing a synchronization object in a segment (`init_in` / `open_in`) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SyncOpenError {
    /// The object would not fit in the payload.
    #[error("a {what} at offset {offset} does not fit in segment {name:?} of {size} bytes (it needs {needed})")]
    OutOfRange {
        /// Segment name.
        name: String,
        /// `"mutex"`, `"event"` or `"semaphore"`.
        what: &'static str,
        /// Requested payload offset.
        offset: u64,
        /// Bytes the object needs.
        needed: u64,
        /// Payload size.
        size: u64,
    },
    /// The offset is not a multiple of the object's alignment (128).
    #[error(
        "a {what} in segment {name:?} must be at an offset that is a multiple of 128, not {offset}"
    )]
    Misaligned {
        /// Segment name.
        name: String,
        /// Object kind.
        what: &'static str,
        /// Requested offset.
        offset: u64,
    },
    /// The segment is open read-only; synchronization needs to write.
    #[error("cannot use a {what} in segment {name:?}: the segment is open read-only")]
    ReadOnly {
        /// Segment name.
        name: String,
        /// Object kind.
        what: &'static str,
    },
    /// No object of this kind was initialized at the offset.
    #[error("there is no initialized {what} at offset {offset} of segment {name:?}")]
    NotInitialized {
        /// Segment name.
        name: String,
        /// Object kind.
        what: &'static str,
        /// Offset.
        offset: u64,
    },
    /// Invalid parameters for a new object (e.g. a semaphore whose initial count exceeds its
    /// maximum).
    #[error("cannot make a {what} at offset {offset} of segment {name:?}: {reason}")]
    Invalid {
        /// Segment name.
        name: String,
        /// Object kind.
        what: &'static str,
        /// Offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The OS refused (Windows: creating or opening the named kernel object).
    #[error("cannot open the {what} at offset {offset} of segment {name:?}")]
    Os {
        /// Segment name.
        name: String,
        /// Object kind.
        what: &'static str,
        /// Offset.
        offset: u64,
        /// OS error.
        source: io::Error,
    },
}

/// Why [`RobustMutex::lock`](super::RobustMutex::lock) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// An owner died, and the one that recovered the lock released it without marking the
    /// data consistent: the mutex is permanently unusable (as `ENOTRECOVERABLE`).
    #[error("the mutex at offset {offset} of segment {name:?} is not recoverable: an owner died and the data was never marked consistent")]
    NotRecoverable {
        /// Segment name.
        name: String,
        /// Offset.
        offset: u64,
    },
    /// The mutex's words hold values no shmwire process writes.
    #[error("the mutex at offset {offset} of segment {name:?} is corrupt: {reason}")]
    Corrupt {
        /// Segment name.
        name: String,
        /// Offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The OS failed (Windows: waiting on the kernel mutex).
    #[error("waiting for the mutex at offset {offset} of segment {name:?} failed")]
    Os {
        /// Segment name.
        name: String,
        /// Offset.
        offset: u64,
        /// OS error.
        source: io::Error,
    },
}

/// Why [`RobustMutex::try_lock`](super::RobustMutex::try_lock) did not take the lock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TryLockError {
    /// Another live process (or thread) holds it.
    #[error("the mutex is held by another process or thread")]
    WouldBlock,
    /// As in [`LockError`].
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Why [`RobustMutex::lock_timeout`](super::RobustMutex::lock_timeout) did not take the
/// lock.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockTimeoutError {
    /// Not acquired before the deadline.
    #[error("timed out")]
    Timeout,
    /// As in [`LockError`].
    #[error(transparent)]
    Lock(#[from] LockError),
}

/// Why [`MutexGuard::unlock`](super::MutexGuard::unlock) failed. The guard is gone either way.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnlockError {
    /// Another process took the lock over while we held it (it judged us dead: for example
    /// after a pid namespace change or a corrupted owner word). Nothing was released.
    #[error("the mutex at offset {offset} of segment {name:?} was taken over by another process while this one held it")]
    NotOwner {
        /// Segment name.
        name: String,
        /// Offset.
        offset: u64,
    },
    /// The OS failed (Windows: `ReleaseMutex`).
    #[error("releasing the mutex at offset {offset} of segment {name:?} failed")]
    Os {
        /// Segment name.
        name: String,
        /// Offset.
        offset: u64,
        /// OS error.
        source: io::Error,
    },
}

/// Why a blocking wait on an [`Event`](super::Event) or [`Semaphore`](super::Semaphore), or
/// setting an event, failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitError {
    /// The object's words hold values no shmwire process writes.
    #[error("the {what} at offset {offset} of segment {name:?} is corrupt: {reason}")]
    Corrupt {
        /// Segment name.
        name: String,
        /// `"event"` or `"semaphore"`.
        what: &'static str,
        /// Offset.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The OS failed (Windows: the kernel event or semaphore).
    #[error("the {what} at offset {offset} of segment {name:?} failed")]
    Os {
        /// Segment name.
        name: String,
        /// Object kind.
        what: &'static str,
        /// Offset.
        offset: u64,
        /// OS error.
        source: io::Error,
    },
}

/// Why a `try_wait` on an [`Event`](super::Event) or [`Semaphore`](super::Semaphore) did not
/// succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TryWaitError {
    /// Not set (event) or no permit (semaphore) now.
    #[error("not signaled")]
    WouldBlock,
    /// As in [`WaitError`].
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// Why a `wait_timeout` on an [`Event`](super::Event) or [`Semaphore`](super::Semaphore) did
/// not succeed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WaitTimeoutError {
    /// Not signaled before the deadline.
    #[error("timed out")]
    Timeout,
    /// As in [`WaitError`].
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// Why [`Semaphore::post`](super::Semaphore::post) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    /// The count is at its maximum; nothing was added.
    #[error("the semaphore at offset {offset} of segment {name:?} is already at its maximum count {max}")]
    Overflow {
        /// Segment name.
        name: String,
        /// Offset.
        offset: u64,
        /// The maximum.
        max: u32,
    },
    /// Corrupt words, or an OS failure.
    #[error(transparent)]
    Wait(#[from] WaitError),
}

/// A `try_lock` is a lock with a timeout of zero: `WouldBlock` becomes `Timeout`. For code
/// that polls first and then waits, handling both in one `match`.
impl From<TryLockError> for LockTimeoutError {
    fn from(e: TryLockError) -> Self {
        match e {
            TryLockError::WouldBlock => LockTimeoutError::Timeout,
            TryLockError::Lock(e) => LockTimeoutError::Lock(e),
        }
    }
}

/// A `try_wait` is a wait with a timeout of zero: `WouldBlock` becomes `Timeout`.
impl From<TryWaitError> for WaitTimeoutError {
    fn from(e: TryWaitError) -> Self {
        match e {
            TryWaitError::WouldBlock => WaitTimeoutError::Timeout,
            TryWaitError::Wait(e) => WaitTimeoutError::Wait(e),
        }
    }
}
