//! Named segments: create, open, open-or-create; the header protocol; raw mode.
//!
//! # Safety
//!
//! The only unsafe code builds [`Mapping`]s over a segment's [`View`] (answering the
//! contract of `Mapping::new` in `view.rs`). Invariants: each mapping lies inside the view
//! (create sizes the view to hold header and payload; open validates the header's offsets
//! against the mapped size first), is writable only if the view is, and never outlives the
//! view: `Segment` declares its mappings before `view`, so they are dropped first, and the
//! temporary one in `open` is not used after the view moves.
#![allow(unsafe_code)]

use std::io;
// The public accessors hand out std's atomics (for users' own flags and counters), not the
// loom facade's: the one place besides `view.rs` that names them.
use std::sync::atomic::Ordering;
#[allow(clippy::disallowed_types)]
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::time::{Duration, Instant};

use shmwire_platform::{
    Access, Lifetime, Namespace, ObjectName, Os, Permissions, SharedMemory, Shm, View,
};

use crate::header::{self, HeaderState, SegmentInfo};
use crate::view::{Mapping, Region};
use crate::{
    AccessError, CreateError, InitError, Kind, Name, OpenError, OpenOrCreateError, RemoveError,
};

/// An opener's wait for a creator: sleeps with a growing backoff (100 µs to 10 ms) until the
/// init timeout.
struct InitWait {
    /// `None`: a timeout too long for a deadline, i.e. no limit.
    deadline: Option<Instant>,
    backoff: Duration,
}

impl InitWait {
    fn new(timeout: Duration) -> InitWait {
        InitWait {
            deadline: Instant::now().checked_add(timeout),
            backoff: Duration::from_micros(100),
        }
    }

    /// Sleeps once more, or fails with `NotInitialized` if the deadline passed.
    fn wait(&mut self, name: &Name, timeout: Duration) -> Result<(), OpenError> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(OpenError::NotInitialized {
                name: name.as_str().to_owned(),
                waited: timeout,
            });
        }
        std::thread::sleep(self.backoff);
        self.backoff = (self.backoff * 2).min(Duration::from_millis(10));
        Ok(())
    }
}

/// Whether the object was made (sized) longer than `age` ago, as far as the OS records it.
fn older_than(shm: &Shm, age: Duration) -> bool {
    shm.changed()
        .ok()
        .flatten()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|elapsed| elapsed > age)
}

/// Runs a creator's `init` on its unpublished segment, then publishes it; on an error of
/// `init` the segment is dropped unpublished, which removes it (its creator owns it until
/// published: ownership is decided by the options only after this).
fn run_init(
    mut seg: Segment,
    init: impl FnOnce(&Segment) -> Result<(), InitError>,
) -> Result<Segment, OpenOrCreateError> {
    let keep = seg.owned;
    seg.owned = true;
    match init(&seg) {
        Ok(()) => {
            seg.publish();
            seg.owned = keep;
            Ok(seg)
        }
        Err(e) => Err(OpenOrCreateError::Init {
            name: seg.name().to_string(),
            source: e.into_inner(),
        }),
    }
}

/// How to create or open a segment. Start from [`SegmentOptions::new`] (or
/// [`Segment::options`]), set what differs from the defaults, then call
/// [`create`](Self::create), [`open`](Self::open) or [`open_or_create`](Self::open_or_create).
///
/// Defaults: a shmwire header, read-write, permissions `0o600` (owner only), Windows `Local\`
/// namespace, the creator owns the segment (removes it on drop), kind [`Kind::BYTES`], openers
/// wait up to 2 s for a creator to finish.
#[derive(Clone, Debug)]
pub struct SegmentOptions {
    raw: bool,
    mode: u32,
    namespace: Namespace,
    remove_on_drop: bool,
    keep_in_gc: bool,
    kind: Option<Kind>,
    type_tag: u64,
    init_timeout: Duration,
    access: Access,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions {
            raw: false,
            mode: 0o600,
            namespace: Namespace::Local,
            remove_on_drop: true,
            keep_in_gc: false,
            kind: None,
            type_tag: 0,
            init_timeout: Duration::from_secs(2),
            access: Access::ReadWrite,
        }
    }
}

/// Whether [`SegmentOptions::open_or_create`] created the segment or found it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// This call created it (and ran the initializer).
    Created,
    /// It existed; this call opened it.
    Existing,
}

impl SegmentOptions {
    /// The defaults (see the type's documentation).
    pub fn new() -> Self {
        Self::default()
    }

    /// Raw mode: no header, the payload starts at byte 0 of the OS object, for programs that
    /// do not speak shmwire (Python's `multiprocessing.shared_memory`, a C program using
    /// `CreateFileMapping`/`shm_open`).
    ///
    /// # Platform-specific behavior
    ///
    /// Opening raw on Windows gives the section's size rounded up to the page size: Windows
    /// does not tell an opener the exact size.
    pub fn raw(mut self, raw: bool) -> Self {
        self.raw = raw;
        self
    }

    /// Permission bits for a new segment (default `0o600`, owner only). The owner must keep
    /// read and write. On Windows this becomes a DACL (see `shmwire_platform::Permissions`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = mode;
        self
    }

    /// Windows: use the `Global\` namespace (visible to all sessions) instead of `Local\`.
    /// Creating there needs `SeCreateGlobalPrivilege`. Elsewhere names are machine-wide already
    /// and this has no effect.
    pub fn global(mut self, global: bool) -> Self {
        self.namespace = if global {
            Namespace::Global
        } else {
            Namespace::Local
        };
        self
    }

    /// Whether dropping the creator's [`Segment`] removes the segment's name (default
    /// `true`: the creator owns it). With `false` the segment outlives its creator; see
    /// [`Segment::release_ownership`] for what that means on Windows.
    pub fn remove_on_drop(mut self, remove: bool) -> Self {
        self.remove_on_drop = remove;
        self
    }

    /// Records in the new segment's header that garbage collection ([`crate::gc`]) keeps
    /// it once its creator and users are gone (the `PERSISTENT` bit of the header's
    /// `flags`, `docs/layout.md`), unless told to remove kept segments too. `shmwire create
    /// --persist` and the CLI's sync segments set it. Default: not kept. Ignored for raw
    /// segments (no header).
    ///
    /// This is a record for others to read, not a lifetime: whether dropping the creator's
    /// handle removes the segment is [`remove_on_drop`](Self::remove_on_drop)'s business.
    pub fn keep_in_gc(mut self, keep: bool) -> Self {
        self.keep_in_gc = keep;
        self
    }

    /// The kind recorded at create; when opening, a segment of another kind is refused with
    /// [`OpenError::WrongKind`] (by default any kind is accepted).
    pub fn kind(mut self, kind: Kind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// A tag of your choosing recorded in the header (e.g. a hash of the payload type).
    pub fn type_tag(mut self, tag: u64) -> Self {
        self.type_tag = tag;
        self
    }

    /// How long an opener waits for a creator that has not finished initializing (default
    /// 2 s). Zero means do not wait.
    pub fn init_timeout(mut self, timeout: Duration) -> Self {
        self.init_timeout = timeout;
        self
    }

    /// Open read-only: the pages are mapped without write permission, so even a stray write
    /// through a raw pointer faults. Ignored by `create`.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.access = if read_only {
            Access::ReadOnly
        } else {
            Access::ReadWrite
        };
        self
    }

    fn object_name<'a>(&self, name: &'a Name) -> ObjectName<'a> {
        ObjectName {
            name: name.as_str(),
            namespace: self.namespace,
        }
    }

    /// Creates a new segment with a payload of exactly `size` bytes, failing if the name is
    /// taken. The payload starts zeroed and the header is published before this returns.
    ///
    /// # Errors
    ///
    /// See [`CreateError`]; on any error nothing is left behind.
    #[doc(alias = "shm_open")]
    #[doc(alias = "CreateFileMappingW")]
    pub fn create(&self, name: &str, size: u64) -> Result<Segment, CreateError> {
        let seg = self.create_unpublished(name, size)?;
        seg.publish();
        Ok(seg)
    }

    fn create_unpublished(&self, name: &str, size: u64) -> Result<Segment, CreateError> {
        let name = Name::new(name)?;
        let n = || name.as_str().to_owned();
        if size == 0 {
            return Err(CreateError::ZeroSize { name: n() });
        }
        if self.mode > 0o777 || self.mode & 0o600 != 0o600 {
            return Err(CreateError::InvalidMode {
                name: n(),
                mode: self.mode,
            });
        }
        let offset = if self.raw { 0 } else { header::PAYLOAD_OFFSET };
        let total = size
            .checked_add(offset)
            .filter(|&t| t <= isize::MAX as u64)
            .and_then(|t| usize::try_from(t).ok())
            .ok_or(CreateError::TooLarge { name: n(), size })?;
        let oname = self.object_name(&name);
        let shm = Shm::create(oname, total as u64, Permissions { mode: self.mode })
            .map_err(|e| self.create_error(&name, size, e))?;
        let view = match shm.map(0, total, Access::ReadWrite) {
            Ok(v) => v,
            Err(source) => {
                let _ = Os::remove(oname);
                return Err(CreateError::Io {
                    name: n(),
                    op: "mapping it",
                    source,
                });
            }
        };
        // From here, dropping `seg` removes the object unless it is persisted below.
        let mut seg =
            Segment::assemble(name.clone(), self.namespace, shm, view, offset, size, None);
        seg.owned = true;
        if !self.raw {
            let fields = header::build(
                name.as_str(),
                size,
                self.kind.unwrap_or(Kind::BYTES),
                self.type_tag,
                if self.keep_in_gc {
                    header::FLAG_PERSISTENT
                } else {
                    0
                },
            );
            let h = seg
                .header
                .as_ref()
                .expect("header mode has a header region")
                .region();
            // The magic goes in last, in one atomic store, so a waiting opener sees either
            // zeros (still being created) or the whole magic, never a torn prefix that it
            // would take for another program's data.
            let mut unsigned = fields;
            unsigned.magic = [0; 8];
            h.write(0, bytemuck::bytes_of(&unsigned))
                .expect("the header fits in its page");
            h.atomic_u64(0)
                .expect("the header is writable and page-aligned")
                .store(u64::from_ne_bytes(header::MAGIC), Ordering::Relaxed);
            seg.info = Some(
                header::decode(
                    bytemuck::bytes_of(&fields)
                        .try_into()
                        .expect("fields length"),
                    total as u64,
                )
                .expect("a header we just built is valid"),
            );
        }
        seg.owned = self.remove_on_drop;
        Ok(seg)
    }

    fn create_error(&self, name: &Name, size: u64, source: io::Error) -> CreateError {
        let name = name.as_str().to_owned();
        if shmwire_platform::is_too_many_open(&source) {
            return CreateError::TooManyOpen { name, source };
        }
        match source.kind() {
            io::ErrorKind::AlreadyExists => CreateError::AlreadyExists { name, source },
            io::ErrorKind::StorageFull | io::ErrorKind::OutOfMemory => CreateError::NoSpace {
                name,
                size,
                // After the failed create undid itself: what is free now is what is free.
                space: crate::shm_space().ok().flatten(),
                source,
            },
            io::ErrorKind::PermissionDenied if self.namespace == Namespace::Global => {
                CreateError::GlobalPrivilege { name, source }
            }
            io::ErrorKind::PermissionDenied => CreateError::PermissionDenied { name, source },
            _ => CreateError::Io {
                name,
                op: "creating the object",
                source,
            },
        }
    }

    /// Opens an existing segment.
    ///
    /// With a header (the default), waits up to the init timeout for the creator to publish
    /// it, then validates every field (magic, version, checksum, offsets, and that the OS
    /// object really is as large as the header says) before touching the payload.
    ///
    /// # Errors
    ///
    /// See [`OpenError`].
    #[doc(alias = "OpenFileMappingW")]
    pub fn open(&self, name: &str) -> Result<Segment, OpenError> {
        let name = Name::new(name)?;
        let n = || name.as_str().to_owned();
        let shm = Shm::open(self.object_name(&name), self.access).map_err(|source| match source
            .kind()
        {
            io::ErrorKind::NotFound => OpenError::NotFound { name: n() },
            io::ErrorKind::PermissionDenied => OpenError::PermissionDenied { name: n(), source },
            _ => OpenError::Io {
                name: n(),
                op: "opening the object",
                source,
            },
        })?;
        if self.raw {
            return Segment::raw_from_handle(name, self.namespace, shm);
        }
        let mut patience = InitWait::new(self.init_timeout);
        let size = self.wait_sized(&name, &shm, &mut patience)?;
        let len = usize::try_from(size).map_err(|_| OpenError::Corrupt {
            name: n(),
            reason: format!("its size {size} does not fit in this address space"),
        })?;
        let view = shm
            .map(0, len, self.access)
            .map_err(|source| OpenError::Io {
                name: n(),
                op: "mapping it",
                source,
            })?;
        // SAFETY: the view is `len` bytes, mapped readable (and writable if ReadWrite) and
        // lives as long as the Segment that will own both it and this temporary region.
        let whole = unsafe { Mapping::new(view.as_ptr(), view.len(), false) };
        self.wait_published(&name, &shm, &whole.region(), &mut patience)?;
        let info = self.decode(&name, &whole.region(), size)?;
        let (offset, psize) = (info.payload_offset, info.size);
        Ok(Segment::assemble(
            name,
            self.namespace,
            shm,
            view,
            offset,
            psize,
            Some(info),
        ))
    }

    /// Phase 1 of [`open`](Self::open): the creator sizes the object in one step at create;
    /// a size of 0 means not yet. Returns the object's size (at least one header page).
    fn wait_sized(
        &self,
        name: &Name,
        shm: &Shm,
        patience: &mut InitWait,
    ) -> Result<u64, OpenError> {
        let n = || name.as_str().to_owned();
        loop {
            match shm.size() {
                Ok(0) => patience.wait(name, self.init_timeout)?,
                Ok(size) if size < header::PAYLOAD_OFFSET => {
                    return Err(OpenError::NotShmwire { name: n() })
                }
                Ok(size) => return Ok(size),
                Err(source) => {
                    return Err(OpenError::Io {
                        name: n(),
                        op: "reading its size",
                        source,
                    })
                }
            }
        }
    }

    /// Phase 2 of [`open`](Self::open): waits for the creator to publish the header.
    fn wait_published(
        &self,
        name: &Name,
        shm: &Shm,
        whole: &Region<'_>,
        patience: &mut InitWait,
    ) -> Result<(), OpenError> {
        let n = || name.as_str().to_owned();
        loop {
            match header::classify(whole) {
                HeaderState::Ready => return Ok(()),
                HeaderState::Foreign => return Err(OpenError::NotShmwire { name: n() }),
                HeaderState::BadInitState(v) => {
                    return Err(OpenError::Corrupt {
                        name: n(),
                        reason: format!("its init state has the unknown value {v:#x}"),
                    })
                }
                // Zeros where the magic goes: a creator that has not written its header
                // yet, or an object that is not shmwire's. One older than the init timeout
                // is not being created: say so at once instead of waiting it out.
                HeaderState::Blank if older_than(shm, self.init_timeout) => {
                    return Err(OpenError::NotShmwire { name: n() })
                }
                // Blank for the whole wait: the same, where the OS records an object's age
                // (it existed when the wait began, so it is older than the wait).
                HeaderState::Blank => {
                    patience
                        .wait(name, self.init_timeout)
                        .map_err(|e| match shm.changed() {
                            Ok(Some(_)) => OpenError::NotShmwire { name: n() },
                            _ => e,
                        })?
                }
                HeaderState::Initializing => patience.wait(name, self.init_timeout)?,
            }
        }
    }

    /// Phase 3 of [`open`](Self::open): copies the header fields out (never trusting them in
    /// place) and validates them, and the kind asked for.
    fn decode(&self, name: &Name, whole: &Region<'_>, size: u64) -> Result<SegmentInfo, OpenError> {
        let n = || name.as_str().to_owned();
        let mut bytes = [0u8; header::FIELDS_LEN];
        whole
            .read(0, &mut bytes)
            .expect("the object is at least one page");
        let info = header::decode(&bytes, size).map_err(|r| match r {
            header::Rejection::NotShmwire => OpenError::NotShmwire { name: n() },
            header::Rejection::Version(found) => OpenError::UnsupportedVersion {
                name: n(),
                found,
                supported: header::VERSION,
            },
            header::Rejection::Corrupt(reason) => OpenError::Corrupt { name: n(), reason },
        })?;
        match self.kind {
            Some(expected) if info.kind != expected => Err(OpenError::WrongKind {
                name: n(),
                expected,
                found: info.kind,
            }),
            _ => Ok(info),
        }
    }

    /// Opens the segment, or creates it if it does not exist. The creator runs `init` on the
    /// new segment before publishing it, so an opener never sees it half-filled: openers wait
    /// for it (up to the init timeout). If `init` fails, the unpublished segment is removed
    /// and nobody ever sees it.
    ///
    /// ```
    /// use shmwire::SegmentOptions;
    /// # let name = format!("doc-ooc-{}", std::process::id());
    /// let (cfg, how) = SegmentOptions::new().open_or_create(&name, 4096, |s| {
    ///     s.write_at(0, b"defaults")?;
    ///     Ok(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`OpenOrCreateError::Create`] or [`OpenOrCreateError::Open`], as for those
    /// operations; [`OpenOrCreateError::Init`] with `init`'s error.
    pub fn open_or_create(
        &self,
        name: &str,
        size: u64,
        init: impl FnOnce(&Segment) -> Result<(), InitError>,
    ) -> Result<(Segment, Opened), OpenOrCreateError> {
        let mut init = Some(init);
        // Create and open race with other processes doing the same (and with removal): retry
        // a few times when the name appears or vanishes between our two calls.
        for _ in 0..8 {
            match self.create_unpublished(name, size) {
                Ok(seg) => {
                    let init = init.take().expect("a segment is created at most once");
                    return run_init(seg, init).map(|seg| (seg, Opened::Created));
                }
                Err(CreateError::AlreadyExists { .. }) => {}
                Err(e) => return Err(e.into()),
            }
            match self.open(name) {
                // Raw sizes are page-rounded on Windows: there, at least `size` is what counts.
                Ok(seg) if seg.len() == size || (self.raw && seg.len() > size) => {
                    return Ok((seg, Opened::Existing))
                }
                Ok(seg) => {
                    return Err(OpenError::WrongSize {
                        name: name.to_owned(),
                        expected: size,
                        found: seg.len(),
                    }
                    .into())
                }
                Err(OpenError::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(OpenError::NotFound {
            name: name.to_owned(),
        }
        .into())
    }

    /// Creates the segment exclusively, runs `init` on it, then publishes it (see
    /// [`open_or_create`](Self::open_or_create); an error of `init` removes it again).
    ///
    /// # Errors
    ///
    /// [`OpenOrCreateError::Create`], or [`OpenOrCreateError::Init`] with `init`'s error.
    pub fn create_with(
        &self,
        name: &str,
        size: u64,
        init: impl FnOnce(&Segment) -> Result<(), InitError>,
    ) -> Result<Segment, OpenOrCreateError> {
        run_init(self.create_unpublished(name, size)?, init)
    }

    /// Removes a segment's name.
    ///
    /// # Platform-specific behavior
    ///
    /// POSIX: the name is gone at once (`shm_unlink`); processes that have it mapped keep
    /// using it until they unmap. Windows: a section lives while any handle is open; this asks
    /// the shmwire holder (see [`Segment::hold_until_removed`]) to let go, and the section
    /// disappears when the last program closes it.
    ///
    /// # Errors
    ///
    /// See [`RemoveError`].
    #[doc(alias = "shm_unlink")]
    pub fn remove(&self, name: &str) -> Result<(), RemoveError> {
        let name = Name::new(name)?;
        let n = name.as_str().to_owned();
        Os::remove(self.object_name(&name)).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => RemoveError::NotFound { name: n },
            io::ErrorKind::PermissionDenied => RemoveError::PermissionDenied { name: n, source },
            io::ErrorKind::WouldBlock => RemoveError::NotHeld { name: n },
            _ => RemoveError::Io { name: n, source },
        })
    }
}

/// A named shared-memory segment, mapped into this process.
///
/// Bytes are copied in and out with [`read_at`](Self::read_at) and
/// [`write_at`](Self::write_at), which check bounds; other processes may write the same bytes
/// at any time, so coordinate with the synchronization primitives or use the atomics from
/// [`atomic_u32`](Self::atomic_u32) / [`atomic_u64`](Self::atomic_u64). Raw pointers are
/// available for zero-copy use.
///
/// # Examples
///
/// ```
/// use shmwire::Segment;
/// # let name = format!("doc-segment-{}", std::process::id());
/// let seg = Segment::create(&name, 4096)?;          // owned: removed when dropped
/// seg.write_at(0, b"hello")?;
///
/// let peer = Segment::open(&name)?;                 // another process would do this
/// let mut buf = [0u8; 5];
/// peer.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"hello");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Segment {
    name: Name,
    namespace: Namespace,
    info: Option<SegmentInfo>,
    header: Option<Mapping>,
    pub(crate) payload: Mapping,
    owned: bool,
    // Field order matters: the regions above point into `view`, which unmaps on drop.
    _view: View,
    shm: Shm,
}

impl Segment {
    /// Creates a new segment of `size` payload bytes with the default options (exclusive,
    /// owner-only, removed when dropped). Shorthand for `SegmentOptions::new().create(..)`.
    ///
    /// # Errors
    ///
    /// See [`CreateError`].
    pub fn create(name: &str, size: u64) -> Result<Segment, CreateError> {
        SegmentOptions::new().create(name, size)
    }

    /// Opens an existing shmwire segment read-write.
    ///
    /// # Errors
    ///
    /// See [`OpenError`].
    pub fn open(name: &str) -> Result<Segment, OpenError> {
        SegmentOptions::new().open(name)
    }

    /// Opens an existing shmwire segment read-only (enforced by the page protection).
    ///
    /// # Errors
    ///
    /// See [`OpenError`].
    pub fn open_read_only(name: &str) -> Result<Segment, OpenError> {
        SegmentOptions::new().read_only(true).open(name)
    }

    /// Default options, to customize.
    pub fn options() -> SegmentOptions {
        SegmentOptions::new()
    }

    fn assemble(
        name: Name,
        namespace: Namespace,
        shm: Shm,
        view: View,
        payload_offset: u64,
        payload_len: u64,
        info: Option<SegmentInfo>,
    ) -> Segment {
        let writable = shm.access() == Access::ReadWrite;
        let off = payload_offset as usize;
        debug_assert!(off as u64 + payload_len <= view.len() as u64);
        // SAFETY: `off + payload_len <= view.len()` (checked by the callers: create sizes the
        // view so; open validated the header against the mapped size); the view is readable,
        // writable iff `writable`, and outlives the regions (field order in `Segment`).
        let payload = unsafe {
            Mapping::new(
                view.as_ptr().wrapping_add(off),
                payload_len as usize,
                writable,
            )
        };
        let header = (payload_offset > 0).then(|| {
            // SAFETY: the header page `[0, off)` is inside the view; as above.
            unsafe { Mapping::new(view.as_ptr(), off, writable) }
        });
        Segment {
            name,
            namespace,
            info,
            header,
            payload,
            owned: false,
            _view: view,
            shm,
        }
    }

    /// Publishes the header: openers waiting in `open` proceed.
    fn publish(&self) {
        if let Some(h) = &self.header {
            let state = h
                .region()
                .atomic_u32(header::INIT_STATE_OFFSET)
                .expect("the creator's header is writable and aligned");
            // ORDERING: Release — makes the header fields and any initial payload written
            // before it visible to an opener whose Acquire load in `open` sees INIT_READY.
            state.store(header::INIT_READY, Ordering::Release);
        }
    }

    /// The segment's name.
    pub fn name(&self) -> &Name {
        &self.name
    }

    /// The name and namespace as the platform layer takes them (for derived kernel objects).
    pub(crate) fn object_name(&self) -> ObjectName<'_> {
        ObjectName {
            name: self.name.as_str(),
            namespace: self.namespace,
        }
    }

    /// Payload size in bytes: exact for segments with a header; for raw segments, the OS
    /// object's size (page-rounded on Windows).
    pub fn len(&self) -> u64 {
        self.payload.len() as u64
    }

    /// Whether the payload is empty (only possible for a raw segment of size 0).
    pub fn is_empty(&self) -> bool {
        self.payload.len() == 0
    }

    /// Whether this segment was opened or created without a header.
    pub fn is_raw(&self) -> bool {
        self.header.is_none()
    }

    /// Read-only or read-write.
    pub fn access(&self) -> Access {
        self.shm.access()
    }

    /// What the header says (`None` in raw mode).
    pub fn info(&self) -> Option<&SegmentInfo> {
        self.info.as_ref()
    }

    fn out_of_range(&self, offset: u64, len: usize) -> AccessError {
        AccessError::OutOfRange {
            name: self.name.as_str().to_owned(),
            offset,
            len: len as u64,
            size: self.len(),
        }
    }

    /// Copies `buf.len()` payload bytes starting at `offset` into `buf`.
    ///
    /// # Errors
    ///
    /// [`AccessError::OutOfRange`] if the range is not inside the payload.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        self.payload
            .region()
            .read(offset, buf)
            .ok_or_else(|| self.out_of_range(offset, buf.len()))
    }

    /// Copies `data` into the payload at `offset`. Nothing is written if it does not fit.
    ///
    /// # Errors
    ///
    /// [`AccessError::ReadOnly`] on a read-only segment; [`AccessError::OutOfRange`] if the
    /// range is not inside the payload.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), AccessError> {
        if !self.payload.is_writable() {
            return Err(AccessError::ReadOnly {
                name: self.name.as_str().to_owned(),
            });
        }
        self.payload
            .region()
            .write(offset, data)
            .ok_or_else(|| self.out_of_range(offset, data.len()))
    }

    /// The `AtomicU32` at payload `offset` (must be 4-aligned and in bounds), for flags and
    /// counters shared with other processes. `None` if misaligned, out of bounds, or the
    /// segment is read-only.
    #[allow(clippy::disallowed_types)]
    pub fn atomic_u32(&self, offset: u64) -> Option<&AtomicU32> {
        self.payload.region().atomic_u32(offset)
    }

    /// The `AtomicU64` at payload `offset` (8-aligned, in bounds, read-write segment).
    #[allow(clippy::disallowed_types)]
    pub fn atomic_u64(&self, offset: u64) -> Option<&AtomicU64> {
        self.payload.region().atomic_u64(offset)
    }

    /// Start of the payload, for zero-copy use. Other processes may write these bytes at any
    /// time; reading or writing through the pointer is up to you (stay within [`len`](Self::len)).
    pub fn as_ptr(&self) -> *const u8 {
        self.payload.as_ptr()
    }

    /// Whether the segment is mapped read-write.
    pub(crate) fn is_writable(&self) -> bool {
        self.payload.is_writable()
    }

    /// Start of the payload for writing, or `None` if the segment is read-only.
    pub fn as_mut_ptr(&self) -> Option<*mut u8> {
        self.payload.is_writable().then(|| self.payload.as_ptr())
    }

    /// Whether dropping this handle removes the segment (true for a creator that did not
    /// persist it).
    pub fn is_owned(&self) -> bool {
        self.owned
    }

    /// Gives up ownership: the segment is kept after this handle is dropped (the creator
    /// removes it otherwise).
    ///
    /// # Platform-specific behavior
    ///
    /// POSIX: the segment lives until [`SegmentOptions::remove`]. Windows: a section dies with
    /// its last handle whatever we do; to keep one alive without a process using it, a process
    /// must hold it: [`Segment::hold_until_removed`] (what `shmwire create --persist` does in
    /// a detached holder process).
    pub fn release_ownership(&mut self) {
        self.owned = false;
    }

    /// Removes the segment `name` (in the `Local\` namespace on Windows): the same as
    /// [`SegmentOptions::remove`] with the default options.
    ///
    /// # Errors
    ///
    /// See [`RemoveError`].
    #[doc(alias = "shm_unlink")]
    pub fn remove(name: &str) -> Result<(), RemoveError> {
        SegmentOptions::new().remove(name)
    }

    /// Blocks, keeping this segment alive, until [`SegmentOptions::remove`] is called for its
    /// name (from any process). `ready` runs once removal can be requested.
    ///
    /// # Errors
    ///
    /// `Unsupported` where segments outlive their handles ([`NAMES_OUTLIVE_HANDLES`] is true,
    /// i.e. POSIX), since nothing needs holding there; an OS error otherwise.
    ///
    /// [`NAMES_OUTLIVE_HANDLES`]: crate::NAMES_OUTLIVE_HANDLES
    pub fn hold_until_removed(&self, ready: &mut dyn FnMut()) -> io::Result<()> {
        Os::hold_until_removed(
            ObjectName {
                name: self.name.as_str(),
                namespace: self.namespace,
            },
            ready,
        )
    }
}

impl Segment {
    /// The whole object behind an open handle as a raw, unowned segment (what a raw open
    /// does after opening; `gc` maps a clone of the handle it judges and removes through).
    pub(crate) fn raw_from_handle(
        name: Name,
        namespace: Namespace,
        shm: Shm,
    ) -> Result<Segment, OpenError> {
        let io_err = |op: &'static str, name: &Name| {
            let name = name.as_str().to_owned();
            move |source| OpenError::Io { name, op, source }
        };
        let size = shm.size().map_err(io_err("reading its size", &name))?;
        let len = usize::try_from(size).map_err(|_| OpenError::Corrupt {
            name: name.as_str().to_owned(),
            reason: format!("its size {size} does not fit in this address space"),
        })?;
        let view = shm
            .map(0, len, shm.access())
            .map_err(io_err("mapping it", &name))?;
        Ok(Segment::assemble(name, namespace, shm, view, 0, size, None))
    }

    /// Removes the name if it still refers to this segment's object (a newer object under
    /// the name is left alone). Returns whether it was removed.
    pub(crate) fn unlink_if_same(&self) -> bool {
        self.shm.remove_if_same(self.object_name()).is_ok()
    }
}

impl Drop for Segment {
    fn drop(&mut self) {
        if self.owned {
            let _ = self.shm.remove_if_same(ObjectName {
                name: self.name.as_str(),
                namespace: self.namespace,
            });
        }
    }
}
