//! Error types, one per operation. Each `Display` is one sentence naming the segment; the OS
//! error, where there is one, is the `source()`.

use std::io;
use std::time::Duration;

use crate::{Kind, NameError};

/// Why [`crate::SegmentOptions::create`] failed. Nothing is left behind on failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CreateError {
    /// The name breaks a naming rule.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Size 0 was asked for.
    #[error("cannot create segment {name:?} of size 0: a segment needs at least one byte")]
    ZeroSize {
        /// Segment name.
        name: String,
    },
    /// The size does not fit this machine's address space.
    #[error(
        "cannot create segment {name:?}: {size} bytes do not fit in this process's address space"
    )]
    TooLarge {
        /// Segment name.
        name: String,
        /// Requested payload size.
        size: u64,
    },
    /// Bad permission bits.
    #[error("cannot create segment {name:?} with mode {mode:o}: the mode must be at most 777 and give the owner read and write (6xx)")]
    InvalidMode {
        /// Segment name.
        name: String,
        /// Requested mode.
        mode: u32,
    },
    /// Exclusive create of a name that exists.
    #[error("segment {name:?} already exists")]
    AlreadyExists {
        /// Segment name.
        name: String,
        /// OS error.
        source: io::Error,
    },
    /// No memory to reserve the pages (`/dev/shm` or the commit limit is full), or no room for
    /// one more object in `/dev/shm`. `space` says how full `/dev/shm` was (the `shmwire` CLI
    /// turns it into advice: `docker run --shm-size`, `mount -o remount,size=`, Kubernetes
    /// `emptyDir`).
    #[error("cannot create segment {name:?} of {size} bytes: not enough shared memory")]
    NoSpace {
        /// Segment name.
        name: String,
        /// Requested payload size.
        size: u64,
        /// `/dev/shm` as it was just after the failure (`None` where it does not apply).
        space: Option<crate::ShmSpace>,
        /// OS error.
        source: io::Error,
    },
    /// This process or the system has too many files (handles) open (`EMFILE`, `ENFILE`): every
    /// open segment holds one.
    #[error("cannot create segment {name:?}: too many files are open")]
    TooManyOpen {
        /// Segment name.
        name: String,
        /// OS error.
        source: io::Error,
    },
    /// The OS refused.
    #[error("permission denied creating segment {name:?}")]
    PermissionDenied {
        /// Segment name.
        name: String,
        /// OS error.
        source: io::Error,
    },
    /// Windows: `Global\` needs `SeCreateGlobalPrivilege` (administrators and services have it).
    #[error("cannot create segment {name:?} in the Global\\ namespace: this needs SeCreateGlobalPrivilege (run as administrator or a service), or use the default Local\\ namespace")]
    GlobalPrivilege {
        /// Segment name.
        name: String,
        /// OS error.
        source: io::Error,
    },
    /// Any other OS failure.
    #[error("cannot create segment {name:?}: {op} failed")]
    Io {
        /// Segment name.
        name: String,
        /// The step that failed.
        op: &'static str,
        /// OS error.
        source: io::Error,
    },
}

/// Why [`crate::SegmentOptions::open`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The name breaks a naming rule.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No segment of that name.
    #[error("segment {name:?} does not exist")]
    NotFound {
        /// Segment name.
        name: String,
    },
    /// The OS refused (owner-only permissions, say).
    #[error("permission denied opening segment {name:?}")]
    PermissionDenied {
        /// Segment name.
        name: String,
        /// OS error.
        source: io::Error,
    },
    /// The creator did not publish the header in time.
    #[error("segment {name:?} was not initialized within {waited:?}: its creator may have died while creating it, or it is not a shmwire segment (open it raw)")]
    NotInitialized {
        /// Segment name.
        name: String,
        /// How long we waited.
        waited: Duration,
    },
    /// Another program's object: no shmwire header.
    #[error(
        "segment {name:?} has no shmwire header (was it created by another program? open it raw)"
    )]
    NotShmwire {
        /// Segment name.
        name: String,
    },
    /// A header of a layout version this build cannot read.
    #[error("segment {name:?} has header layout version {found}, and this shmwire reads version {supported}")]
    UnsupportedVersion {
        /// Segment name.
        name: String,
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// The header is inconsistent.
    #[error("segment {name:?} is corrupt: {reason}")]
    Corrupt {
        /// Segment name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The segment holds something else than the caller expects.
    #[error("segment {name:?} holds {found}, not {expected}")]
    WrongKind {
        /// Segment name.
        name: String,
        /// Expected kind.
        expected: Kind,
        /// Kind found.
        found: Kind,
    },
    /// `open_or_create` found an existing segment of another size.
    #[error("segment {name:?} exists with {found} payload bytes, not the {expected} asked for")]
    WrongSize {
        /// Segment name.
        name: String,
        /// Size asked for.
        expected: u64,
        /// Size found.
        found: u64,
    },
    /// Any other OS failure.
    #[error("cannot open segment {name:?}: {op} failed")]
    Io {
        /// Segment name.
        name: String,
        /// The step that failed.
        op: &'static str,
        /// OS error.
        source: io::Error,
    },
}

/// Why [`crate::SegmentOptions::open_or_create`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenOrCreateError {
    /// Creating failed (other than because the name existed).
    #[error(transparent)]
    Create(#[from] CreateError),
    /// The name existed and opening it failed.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// This call created the segment and its initializer failed: the segment was removed
    /// unpublished.
    #[error("initializing the new segment {name:?} failed")]
    Init {
        /// Segment name.
        name: String,
        /// The initializer's error.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// An initializer's error (see [`SegmentOptions::open_or_create`](crate::SegmentOptions::open_or_create)):
/// any error converts into it with `?`, as into `Box<dyn Error>`.
#[derive(Debug)]
pub struct InitError(Box<dyn std::error::Error + Send + Sync>);

impl InitError {
    /// The error inside.
    pub fn into_inner(self) -> Box<dyn std::error::Error + Send + Sync> {
        self.0
    }
}

impl<E: Into<Box<dyn std::error::Error + Send + Sync>>> From<E> for InitError {
    fn from(e: E) -> Self {
        InitError(e.into())
    }
}

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a read or write of segment bytes failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AccessError {
    /// The range is not inside the payload.
    #[error("{len} bytes at offset {offset} do not fit in segment {name:?} of {size} bytes")]
    OutOfRange {
        /// Segment name.
        name: String,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// Payload size.
        size: u64,
    },
    /// A write to a segment opened read-only.
    #[error("segment {name:?} is open read-only")]
    ReadOnly {
        /// Segment name.
        name: String,
    },
}

/// Why [`crate::SegmentOptions::remove`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoveError {
    /// The name breaks a naming rule.
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// No segment of that name.
    #[error("segment {name:?} does not exist")]
    NotFound {
        /// Segment name.
        name: String,
    },
    /// The OS refused.
    #[error("permission denied removing segment {name:?}")]
    PermissionDenied {
        /// Segment name.
        name: String,
        /// OS error.
        source: io::Error,
    },
    /// Windows: the segment exists, but no shmwire holder keeps it: it goes away when the
    /// last program that has it open closes it.
    #[error("segment {name:?} is not held by shmwire; it disappears when the last program that has it open closes it")]
    NotHeld {
        /// Segment name.
        name: String,
    },
    /// Any other OS failure.
    #[error("cannot remove segment {name:?}")]
    Io {
        /// Segment name.
        name: String,
        /// OS error.
        source: io::Error,
    },
}
