//! shmwire: named shared memory between processes, made fast, safe and boring.
//!
//! # Segments
//!
//! A [`Segment`] is a named block of shared memory. One process creates it, others open it by
//! name, and all of them see the same bytes:
//!
//! ```
//! use shmwire::{Segment, SegmentOptions};
//! # let name = format!("doc-tutorial-{}", std::process::id());
//! // Process A: create 1 MiB, exclusive, owner-only; removed when `seg` is dropped.
//! let seg = Segment::create(&name, 1 << 20)?;
//! seg.write_at(0, b"frame 1")?;
//!
//! // Process B: open it read-only. The header tells B the exact size and who made it, and
//! // the OS enforces read-only: the pages are mapped without write permission.
//! let peer = Segment::open_read_only(&name)?;
//! assert_eq!(peer.len(), 1 << 20);
//! let mut buf = [0u8; 7];
//! peer.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"frame 1");
//! assert!(peer.write_at(0, b"x").is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every shmwire segment starts with a versioned, checksummed header (magic, layout version,
//! exact size, kind, creator pid and start time, creation time); the creator publishes it
//! last, so an opener never sees a half-built segment. The byte layout is in
//! `docs/layout.md`. [`SegmentOptions::open_or_create`] lets the first of several processes
//! create and fill a segment while the others wait for it.
//!
//! # Raw mode
//!
//! [`SegmentOptions::raw`] drops the header: byte 0 of the OS object is byte 0 of the
//! payload, for programs that do not speak shmwire. A raw segment named `frames` is what
//! Python's `SharedMemory(name="frames")` or a C program calling `shm_open("/frames")` /
//! `OpenFileMappingW(L"frames")` sees. Beware that on POSIX Python's resource tracker unlinks
//! a segment that a process merely attached to when that process exits (CPython gh-82300):
//! attach with `SharedMemory(name="frames", track=False)` (Python 3.13+), or call
//! `resource_tracker.unregister(shm._name, "shared_memory")` right after attaching.
//!
//! # Names and namespaces
//!
//! Names are used verbatim as OS names and validated by [`Name`]. On Windows they live in
//! `Local\` unless [`SegmentOptions::global`] asks for `Global\`.
//!
//! # Lifetime
//!
//! On POSIX a segment lives until it is removed; a creator either owns it (removes it on
//! drop, the default) or persists it ([`Segment::release_ownership`]). On Windows a section dies with
//! its last handle ([`NAMES_OUTLIVE_HANDLES`] is false there), so a persisted segment needs a
//! holder process ([`Segment::hold_until_removed`]); the `shmwire` CLI starts one for
//! `create --persist`. Segments left behind by processes that died are found and removed by
//! [`gc`] (`shmwire gc`), which keeps the ones marked persistent
//! ([`SegmentOptions::keep_in_gc`]).
//!
//! # Mapped files
//!
//! [`MappedFile`] maps a file read-only, read-write or copy-on-write; [`MappedFile::view`]
//! maps any offset and length (alignment is handled inside); [`WindowedReader`] reads files
//! larger than memory through one window at a time; [`FileView::flush`] makes writes
//! durable. The [`mod@file`] module explains durability, the `SIGBUS` caveat of truncated files,
//! and sharing a file mapping by name.
//!
//! # Synchronization
//!
//! [`sync`] has a [`RobustMutex`](sync::RobustMutex) that survives the death of its holder
//! (the next locker is told and can repair the data), [`Event`](sync::Event)s and
//! [`Semaphore`](sync::Semaphore)s, all living at offsets inside a segment, every wait with
//! a try / blocking / timeout form.
//!
//! # Channels
//!
//! [`channel`] moves messages: an SPSC ring of variable-length messages, an MPMC queue of
//! fixed-size slots, a broadcast ring with lag detection, and a blackboard (latest value,
//! seqlock); zero-copy loans, typed plain-old-data messages, wait strategies from spinning to
//! sleeping, and `Disconnected` when the other side is gone (closed or killed).
//!
//! # Trust
//!
//! Everything read from shared memory is untrusted: headers are validated before use, every
//! access is bounds-checked, and no `&[u8]` is ever formed over bytes another process may
//! write. A hostile peer can give you wrong bytes, never undefined behaviour.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod channel;
mod error;
pub mod file;
pub mod gc;
mod header;
mod inspect;
mod name;
#[allow(clippy::disallowed_types, clippy::disallowed_methods)] // the loom facade itself
mod primitive;
mod segment;
mod space;
pub mod sync;
#[allow(clippy::disallowed_types)] // hands out std atomics over mappings (`Segment::atomic_u32`)
mod view;

use std::fmt;

pub use error::{AccessError, CreateError, InitError, OpenError, OpenOrCreateError, RemoveError};
pub use file::{
    FileAccess, FileOpenError, FileOptions, FileView, FlushError, MappedFile, ReadError,
    ViewAccessError, ViewError, WindowedReader,
};
pub use header::SegmentInfo;
pub use inspect::{Inspection, SegmentState};
pub use name::{Name, NameError, NameProblem};
pub use segment::{Opened, Segment, SegmentOptions};
pub use shmwire_platform::{Access, ListedObject, Liveness, ProcessId};
pub use space::{shm_space, ShmSpace};

/// Whether a call that opens an object by name may create it, as
/// [`ChannelOptions::creation`](channel::ChannelOptions::creation) and
/// [`FileOptions::creation`] take it. (Segments say it with their terminal methods:
/// [`SegmentOptions::open`], [`create`](SegmentOptions::create) and
/// [`open_or_create`](SegmentOptions::open_or_create).)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CreationMode {
    /// Only open an existing object; a missing one is a not-found error.
    Open,
    /// Only create a new object; an existing one is an already-exists error.
    Create,
    /// Open the object if it exists, else create it (whichever process comes first creates).
    #[default]
    OpenOrCreate,
}

/// Whether named objects outlive their last handle on this platform (true on POSIX, false on
/// Windows). See "Lifetime" in the crate docs.
pub const NAMES_OUTLIVE_HANDLES: bool = shmwire_platform::NAMES_OUTLIVE_HANDLES;

/// What a segment's payload holds, as recorded in its header.
///
/// Values 1 to 0xFFFF are shmwire's (the registry is in `docs/layout.md`); 0x10000 and up
/// are free for applications.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Kind(pub u32);

impl Kind {
    /// Plain bytes (`shmwire create`).
    pub const BYTES: Kind = Kind(1);
    /// A sync segment of the CLI (`shmwire lock`/`signal`/`wait`): a robust mutex at payload
    /// offset 0 and an event at 128 (see `docs/layout.md`).
    pub const SYNC: Kind = Kind(2);
    /// A single-producer single-consumer byte-message ring ([`channel::spsc`]).
    pub const SPSC: Kind = Kind(3);
    /// A multi-producer multi-consumer queue of fixed-size slots ([`channel::mpmc`]).
    pub const MPMC: Kind = Kind(4);
    /// A one-publisher, many-subscriber broadcast ring ([`channel::broadcast`]).
    pub const BROADCAST: Kind = Kind(5);
    /// The latest value of a plain-old-data type ([`channel::blackboard`]).
    pub const BLACKBOARD: Kind = Kind(6);
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Kind::BYTES => f.write_str("bytes"),
            Kind::SYNC => f.write_str("sync"),
            Kind::SPSC => f.write_str("spsc channel"),
            Kind::MPMC => f.write_str("mpmc channel"),
            Kind::BROADCAST => f.write_str("broadcast channel"),
            Kind::BLACKBOARD => f.write_str("blackboard"),
            Kind(k) => write!(f, "kind {k:#x}"),
        }
    }
}

/// Whether the process recorded as `process` (pid + start time) is still running. A recycled
/// pid is reported [`Liveness::Dead`], since its start time differs.
pub fn liveness(process: ProcessId) -> Liveness {
    use shmwire_platform::Processes;
    shmwire_platform::Os::liveness(process)
}

/// The calling process's identity.
pub fn current_process() -> ProcessId {
    use shmwire_platform::Processes;
    shmwire_platform::Os::current_process()
}

/// Stops child processes started from now on from implicitly inheriting this process's
/// standard streams (needed on Windows before starting a detached helper process; a no-op
/// elsewhere). See `shmwire_platform::keep_stdio_from_children`.
pub fn keep_stdio_from_children() {
    shmwire_platform::keep_stdio_from_children();
}

/// Lists the named shared-memory objects on this machine that this process can see.
///
/// # Errors
///
/// `Unsupported` where the OS cannot enumerate them (macOS); the OS error if the place they
/// are listed from cannot be read.
///
/// # Platform-specific behavior
///
/// Linux: the files of `/dev/shm`. Windows: the sections of this session's `Local\`
/// namespace and of the `Global\` one (`NtQueryDirectoryObject`), the latter marked
/// [`ListedObject::global`]; sizes are page-rounded, and mode and owner are not given.
pub fn list() -> std::io::Result<Vec<ListedObject>> {
    use shmwire_platform::Lifetime;
    shmwire_platform::Os::list()
}
