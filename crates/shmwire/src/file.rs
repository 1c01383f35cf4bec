//! Mapped files: views of any range of a file, a sliding window over files larger than memory,
//! flushing for durability, and sharing a file mapping between processes.
//!
//! # Mapping a file
//!
//! [`MappedFile`] prepares a file for mapping read-only, read-write or copy-on-write
//! ([`FileAccess`]); [`MappedFile::view`] then maps exactly the bytes asked for, at any offset
//! and length. The OS only maps from offsets that are multiples of the allocation granularity
//! (64 KiB on Windows, the page size elsewhere): shmwire maps from the granule below and hands
//! back the range you asked for, so you never do that arithmetic.
//!
//! ```
//! use shmwire::{FileAccess, MappedFile};
//! # let path = std::env::temp_dir().join(format!("doc-file-{}", std::process::id()));
//! // Create map.dat and grow it to 1 MiB (new bytes are zero; the file is sparse where the
//! // file system allows), mapped read-write.
//! let file = MappedFile::create(&path, 1 << 20)?;
//! let view = file.view(100_003, 11)?;            // any offset, any length
//! view.write_at(0, b"hello, file")?;
//! view.flush()?;                                 // durable when this returns
//!
//! // Later, or in another process: map it read-only and read the bytes back.
//! let reader = MappedFile::open(&path, FileAccess::ReadOnly)?;
//! let mut buf = [0u8; 11];
//! reader.view(100_003, 11)?.read_at(0, &mut buf)?;
//! assert_eq!(&buf, b"hello, file");
//! # drop((view, file, reader)); std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A view is independent of the [`MappedFile`] it came from: it stays valid after the
//! `MappedFile` is dropped. Bytes are copied in and out with bounds-checked
//! [`FileView::read_at`] / [`FileView::write_at`]; other processes may write a shared file at
//! any time, so shmwire never hands out `&[u8]` over it. Raw pointers are there for
//! zero-copy use at your own risk.
//!
//! # Files larger than memory
//!
//! A [`WindowedReader`] maps one window of the file at a time (64 MiB by default,
//! [`WindowedReader::with_window_size`] to choose), so it reads files far larger than one view
//! or than RAM with memory bounded by the window. It implements [`std::io::Read`] and
//! [`std::io::Seek`] for sequential access and has [`WindowedReader::read_at`] /
//! [`WindowedReader::read_exact_at`] for random access. Reads that straddle two windows are
//! handled inside.
//!
//! ```
//! use std::io::{Read, Seek, SeekFrom};
//! use shmwire::{FileAccess, MappedFile, WindowedReader};
//! # let path = std::env::temp_dir().join(format!("doc-window-{}", std::process::id()));
//! # std::fs::write(&path, vec![7u8; 300_000])?;
//! let file = MappedFile::open(&path, FileAccess::ReadOnly)?;
//! let mut reader = WindowedReader::with_window_size(file, 128 << 10);
//! reader.seek(SeekFrom::Start(131_000))?;        // across a window boundary
//! let mut buf = vec![0u8; 2_000];
//! reader.read_exact(&mut buf)?;
//! let mut rest = Vec::new();
//! reader.read_to_end(&mut rest)?;
//! assert_eq!(rest.len(), 300_000 - 133_000);
//! # drop(reader); std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Durability: what `flush` guarantees
//!
//! Writes through a read-write view reach the OS page cache at once: another process that
//! maps or `read`s the same file sees them straight away, flushed or not (on Windows too,
//! for local files: views and `ReadFile` share one cache). What [`FileView::flush`] and
//! [`FileView::flush_range`] add is durability against a crash of the machine: when they
//! return `Ok`, the bytes of the range written through the view, and the file's size, have
//! been handed to the storage device as far as the OS can tell:
//!
//! * Linux: `msync(MS_SYNC)` of the range, then `fdatasync`.
//! * macOS: `msync(MS_SYNC)`, then `fcntl(F_FULLFSYNC)` (which also empties the drive's cache).
//! * Windows: `FlushViewOfFile`, then `FlushFileBuffers`. A mapping opened by name
//!   ([`MappedFile::open_shared`]) has no file handle, so its flush only starts the write-back
//!   (`FlushViewOfFile`) and does not wait for the disk: let the process that shares the file
//!   flush for durability.
//!
//! Nothing is promised for data that was never flushed (a crash may lose it, or write part of
//! it), nor for a drive that lies about its cache. Flushing a read-only or copy-on-write view
//! does nothing: copy-on-write pages never reach the file.
//!
//! # Truncation, `SIGBUS` and how to avoid it
//!
//! If another process shrinks a file while it is mapped, touching a mapped page past the new
//! end kills a POSIX process with `SIGBUS` (Windows refuses to shrink a file that has a
//! mapping, so there it cannot happen; an I/O error on a network or removable drive raises
//! `EXCEPTION_IN_PAGE_ERROR`, the Windows equivalent). shmwire guards what it can:
//!
//! * [`MappedFile::view`] reads the file's size (`fstat` / `GetFileInformationByHandle`)
//!   before every view and refuses ranges past the end with [`ViewError::OutOfRange`].
//! * [`WindowedReader`] reads the size again before it maps each window, so a file that
//!   shrank (or grew) between windows is seen as it is: reads end at the new end of file.
//!
//! What remains: a truncation *after* the size check, while a view or window is in use, can
//! still raise `SIGBUS` on POSIX. To be safe, do not let other processes truncate a file
//! that is mapped: agree on it (files only ever grow; replace a file by renaming a new one
//! over it, which leaves existing mappings intact), or lock it (an advisory lock the writers
//! honour), or copy the data out with plain `read` instead of mapping it.
//!
//! # Sharing a file mapping between processes
//!
//! On POSIX the path is the name: each process maps the same file, and they all see the same
//! bytes (the page cache is shared). On Windows a file mapping (section) can have a name of
//! its own, and another process can open it by that name without knowing the path
//! (`OpenFileMappingW`), as C programs do with `CreateFileMapping(hFile, ..., name)`.
//! [`FileOptions::share_as`] names the mapping (a Windows `Local\` name, owner-only access;
//! ignored on POSIX), [`MappedFile::share_name`] tells what another process should pass to
//! [`MappedFile::open_shared`]: the name on Windows, the path on POSIX. A named mapping lives
//! while some process has it open.
//!
//! # Platform-specific behavior
//!
//! * Windows fixes a named mapping's size when it is made: a file that grows later shows its
//!   new bytes only to unnamed mappings (which shmwire re-creates as needed). A mapping
//!   opened by name learns its size rounded up to a page (Windows tells openers nothing
//!   finer); the bytes past the file's end read as zero.
//! * New files get the default permissions (0o666 minus the umask on POSIX).
//!
//! # Safety
//!
//! The only unsafe code builds `Region`s over a [`FileView`]'s platform `View`.
//! Invariants: the region is `len` bytes at `delta` bytes into the view, where the view was
//! mapped as `delta + len` bytes (so the region lies inside it); it is writable only if the
//! view's access is; and it never outlives the view: `FileView` declares `region` before
//! `view`, so the region is dropped first. The mapped bytes are never turned into references.
#![allow(unsafe_code)]

mod error;
mod window;

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use shmwire_platform::{FileMap, FileMapping, Namespace, ObjectName, View};

use crate::view::Mapping;
use crate::{CreationMode, Name};

pub use error::{FileOpenError, FlushError, ReadError, ViewAccessError, ViewError};
pub use shmwire_platform::FileAccess;
pub use window::{WindowedReader, DEFAULT_WINDOW_SIZE};

/// Whether file mappings can have names of their own: true on Windows, where
/// [`FileOptions::share_as`] names the mapping object; false on POSIX, where the path is the
/// name. See "Sharing a file mapping between processes" above.
pub const FILE_MAPPINGS_HAVE_NAMES: bool = shmwire_platform::FILE_MAPPINGS_HAVE_NAMES;

/// The allocation granularity: views are mapped from multiples of it (64 KiB on Windows, the
/// page size elsewhere). [`MappedFile::view`] handles it for you; this is for choosing window
/// sizes and for the curious.
pub fn allocation_granularity() -> u64 {
    shmwire_platform::allocation_granularity()
}

/// How to open or create a [`MappedFile`]. Start from [`FileOptions::new`] (or
/// [`MappedFile::options`]), set what differs from the defaults, then call
/// [`open`](Self::open), [`create`](Self::create) or [`from_file`](Self::from_file).
///
/// Defaults: read-only, not shared by name, `create` is exclusive (fails if the file exists:
/// [`CreationMode::Create`]).
#[derive(Clone, Debug)]
pub struct FileOptions {
    access: FileAccess,
    share_name: Option<String>,
    creation: CreationMode,
}

impl Default for FileOptions {
    fn default() -> Self {
        FileOptions {
            access: FileAccess::ReadOnly,
            share_name: None,
            creation: CreationMode::Create,
        }
    }
}

impl FileOptions {
    /// The defaults (see the type's documentation).
    pub fn new() -> Self {
        Self::default()
    }

    /// Read-only, read-write or copy-on-write (default read-only). `create` always maps
    /// read-write.
    pub fn access(mut self, access: FileAccess) -> Self {
        self.access = access;
        self
    }

    /// Shares the mapping under `name` (validated like a segment [`Name`]), so that other
    /// processes can [`MappedFile::open_shared`] it while this process keeps it.
    ///
    /// # Platform-specific behavior
    ///
    /// Windows: the file mapping object is named `Local\<name>`, with owner-only access.
    /// POSIX: file mappings have no names, the path is the name; the name is only validated.
    pub fn share_as(mut self, name: &str) -> Self {
        self.share_name = Some(name.to_owned());
        self
    }

    /// What [`create`](Self::create) does about an existing file:
    /// [`CreationMode::Create`] (the default) fails if the file exists;
    /// [`CreationMode::OpenOrCreate`] opens an existing file and grows it to the size asked
    /// for if it is smaller (never shrinks it); [`CreationMode::Open`] does the same but
    /// fails with [`FileOpenError::NotFound`] if there is no file. ([`open`](Self::open)
    /// never creates.)
    pub fn creation(mut self, mode: CreationMode) -> Self {
        self.creation = mode;
        self
    }

    /// Opens an existing, non-empty regular file for mapping with the chosen access.
    ///
    /// # Errors
    ///
    /// [`FileOpenError::NotFound`], [`FileOpenError::PermissionDenied`] (for instance a
    /// read-only file opened read-write), [`FileOpenError::NotAFile`] (a directory),
    /// [`FileOpenError::Empty`], [`FileOpenError::NameTaken`], [`FileOpenError::Io`].
    #[doc(alias = "mmap")]
    #[doc(alias = "CreateFileMappingW")]
    pub fn open(&self, path: impl AsRef<Path>) -> Result<MappedFile, FileOpenError> {
        self.open_path(path.as_ref(), None)
    }

    /// Creates a file of `size` bytes (zero-filled; sparse where the file system allows) and
    /// maps it read-write: the classic "create map.dat and grow it to 1 MiB" step. Exclusive
    /// by default; see [`creation`](Self::creation).
    ///
    /// # Errors
    ///
    /// [`FileOpenError::ZeroSize`], [`FileOpenError::AlreadyExists`],
    /// [`FileOpenError::NoSpace`], and those of [`open`](Self::open). A file this call created
    /// is removed again on error.
    pub fn create(&self, path: impl AsRef<Path>, size: u64) -> Result<MappedFile, FileOpenError> {
        self.open_path(path.as_ref(), Some(size))
    }

    /// Maps a file you opened yourself; `path` is only used in messages. The handle must be
    /// open for reading, and for writing too for [`FileAccess::ReadWrite`].
    ///
    /// # Errors
    ///
    /// [`FileOpenError::PermissionDenied`] if the handle lacks the access needed (a file
    /// opened read-only, mapped read-write), and those of [`open`](Self::open).
    pub fn from_file(
        &self,
        file: File,
        path: impl AsRef<Path>,
    ) -> Result<MappedFile, FileOpenError> {
        let path = path.as_ref();
        let meta = file.metadata().map_err(|source| FileOpenError::Io {
            path: path.to_path_buf(),
            op: "reading its metadata",
            source,
        })?;
        if !meta.is_file() {
            return Err(FileOpenError::NotAFile {
                path: path.to_path_buf(),
                what: describe(&meta),
            });
        }
        if meta.len() == 0 {
            return Err(FileOpenError::Empty {
                path: path.to_path_buf(),
            });
        }
        self.finish(file, path)
    }

    fn open_path(&self, path: &Path, create: Option<u64>) -> Result<MappedFile, FileOpenError> {
        let p = || path.to_path_buf();
        if let Some(name) = &self.share_name {
            Name::new(name)?;
        }
        if create == Some(0) {
            return Err(FileOpenError::ZeroSize { path: p() });
        }
        let access = if create.is_some() {
            FileAccess::ReadWrite
        } else {
            self.access
        };
        // Refuse directories and devices before opening: Windows cannot open a directory as
        // a file at all, and the message should say what the path is.
        let existed = match fs::metadata(path) {
            Ok(m) if !m.is_file() => {
                return Err(FileOpenError::NotAFile {
                    path: p(),
                    what: describe(&m),
                })
            }
            Ok(_) => true,
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && create.is_some()
                    && self.creation != CreationMode::Open =>
            {
                false
            }
            Err(e) => return Err(open_error(path, access, "reading its metadata", e)),
        };
        let mut oo = OpenOptions::new();
        oo.read(true).write(access == FileAccess::ReadWrite);
        let exclusive = self.creation == CreationMode::Create;
        match create {
            Some(_) if exclusive => oo.create_new(true),
            Some(_) => oo.create(true),
            None => &mut oo,
        };
        let file = oo
            .open(path)
            .map_err(|e| open_error(path, access, "opening it", e))?;
        let created = create.is_some() && (exclusive || !existed);
        // From here on, a file this call created is removed again on error.
        let result = (|| {
            let meta = file.metadata().map_err(|source| FileOpenError::Io {
                path: p(),
                op: "reading its metadata",
                source,
            })?;
            if !meta.is_file() {
                return Err(FileOpenError::NotAFile {
                    path: p(),
                    what: describe(&meta),
                });
            }
            let mut len = meta.len();
            if let Some(size) = create {
                if len < size {
                    file.set_len(size)
                        .map_err(|source| FileOpenError::NoSpace {
                            path: p(),
                            size,
                            source,
                        })?;
                    len = size;
                }
            }
            if len == 0 {
                return Err(FileOpenError::Empty { path: p() });
            }
            Ok(())
        })();
        let result = result.and_then(|()| {
            FileOptions {
                access,
                ..self.clone()
            }
            .finish(file, path)
        });
        if result.is_err() && created {
            let _ = fs::remove_file(path);
        }
        result
    }

    /// Makes the platform mapping for an open, non-empty regular file.
    fn finish(&self, file: File, path: &Path) -> Result<MappedFile, FileOpenError> {
        let name = match &self.share_name {
            Some(n) => Some(Name::new(n)?),
            None => None,
        };
        let object_name = name.as_ref().map(|n| ObjectName {
            name: n.as_str(),
            namespace: Namespace::Local,
        });
        let map = FileMap::new(&file, self.access, object_name).map_err(|source| {
            match (source.kind(), &name) {
                (io::ErrorKind::AlreadyExists, Some(n)) => FileOpenError::NameTaken {
                    path: path.to_path_buf(),
                    name: n.as_str().to_owned(),
                    source,
                },
                _ => open_error(path, self.access, "creating the mapping", source),
            }
        })?;
        let share_name = name.and_then(|n| {
            if FILE_MAPPINGS_HAVE_NAMES {
                Some(n.as_str().to_owned())
            } else {
                path.to_str().map(str::to_owned)
            }
        });
        Ok(MappedFile {
            path: Arc::from(path),
            // A named mapping on Windows cannot be re-created with a larger size (the name
            // would give back the old section), so its size stays fixed.
            resizable: share_name.is_none() || !FILE_MAPPINGS_HAVE_NAMES,
            file: Some(file),
            access: self.access,
            map: Mutex::new(Arc::new(map)),
            share_name,
        })
    }
}

/// What a non-regular file is, for messages.
fn describe(meta: &fs::Metadata) -> &'static str {
    if meta.is_dir() {
        "a directory"
    } else if meta.is_symlink() {
        "a symbolic link"
    } else {
        "a device, pipe or socket"
    }
}

fn open_error(
    path: &Path,
    access: FileAccess,
    op: &'static str,
    source: io::Error,
) -> FileOpenError {
    let path = path.to_path_buf();
    match source.kind() {
        io::ErrorKind::NotFound => FileOpenError::NotFound { path },
        io::ErrorKind::AlreadyExists => FileOpenError::AlreadyExists { path, source },
        io::ErrorKind::PermissionDenied => FileOpenError::PermissionDenied {
            path,
            access,
            source,
        },
        io::ErrorKind::IsADirectory => FileOpenError::NotAFile {
            path,
            what: "a directory",
        },
        _ => FileOpenError::Io { path, op, source },
    }
}

/// A file prepared for mapping: make [`view`](Self::view)s of any range, or read it through a
/// [`WindowedReader`]. See the [module documentation](crate::file) for a tutorial.
///
/// # Examples
///
/// ```
/// use shmwire::{FileAccess, MappedFile};
/// # let path = std::env::temp_dir().join(format!("doc-mapped-{}", std::process::id()));
/// # std::fs::write(&path, b"0123456789")?;
/// let file = MappedFile::open(&path, FileAccess::CopyOnWrite)?;
/// let view = file.view(3, 4)?;
/// view.write_at(0, b"abcd")?;                      // private to this process
/// let mut buf = [0u8; 4];
/// view.read_at(0, &mut buf)?;
/// assert_eq!(&buf, b"abcd");
/// assert_eq!(std::fs::read(&path)?, b"0123456789"); // the file is unchanged
/// # drop((view, file)); std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct MappedFile {
    /// For messages: the path, or the name for a mapping opened by name.
    path: Arc<Path>,
    /// `None` for a mapping opened by name (Windows).
    file: Option<File>,
    access: FileAccess,
    /// Windows sections have a fixed size; an unnamed one is replaced when the file grows.
    map: Mutex<Arc<FileMap>>,
    resizable: bool,
    share_name: Option<String>,
}

impl MappedFile {
    /// Opens an existing file with `access`. Shorthand for
    /// `FileOptions::new().access(access).open(path)`.
    ///
    /// # Errors
    ///
    /// See [`FileOptions::open`].
    pub fn open(path: impl AsRef<Path>, access: FileAccess) -> Result<MappedFile, FileOpenError> {
        FileOptions::new().access(access).open(path)
    }

    /// Creates a new file of `size` bytes and maps it read-write. Shorthand for
    /// `FileOptions::new().create(path, size)`.
    ///
    /// # Errors
    ///
    /// See [`FileOptions::create`].
    pub fn create(path: impl AsRef<Path>, size: u64) -> Result<MappedFile, FileOpenError> {
        FileOptions::new().create(path, size)
    }

    /// Default options, to customize.
    pub fn options() -> FileOptions {
        FileOptions::new()
    }

    /// Opens a file mapping that another process shares: pass what its
    /// [`share_name`](Self::share_name) returned.
    ///
    /// # Platform-specific behavior
    ///
    /// Windows: opens the file mapping object `Local\<name>` (`OpenFileMappingW`); the
    /// process that shared it must still have it open. Its size is the section's, rounded up
    /// to a page, and [`FileView::flush`] cannot wait for the disk (there is no file handle).
    /// POSIX: `name` is the file's path, opened as by [`MappedFile::open`].
    ///
    /// # Errors
    ///
    /// [`FileOpenError::NotFound`] if no such mapping (or file) exists; otherwise as for
    /// [`FileOptions::open`].
    #[doc(alias = "OpenFileMappingW")]
    pub fn open_shared(name: &str, access: FileAccess) -> Result<MappedFile, FileOpenError> {
        if !FILE_MAPPINGS_HAVE_NAMES {
            return MappedFile::open(name, access);
        }
        let valid = Name::new(name)?;
        let object_name = ObjectName {
            name: valid.as_str(),
            namespace: Namespace::Local,
        };
        let map = FileMap::open_named(object_name, access)
            .map_err(|e| open_error(Path::new(name), access, "opening the named mapping", e))?;
        Ok(MappedFile {
            path: Arc::from(Path::new(name)),
            file: None,
            access,
            map: Mutex::new(Arc::new(map)),
            resizable: false,
            share_name: Some(name.to_owned()),
        })
    }

    /// The path (or, for a mapping opened by name, the name).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The access the file was mapped with.
    pub fn access(&self) -> FileAccess {
        self.access
    }

    /// What another process passes to [`MappedFile::open_shared`] to map the same file:
    /// `None` unless the mapping was shared with [`FileOptions::share_as`]; then the name on
    /// Windows and the path on POSIX (`None` if the path is not UTF-8).
    pub fn share_name(&self) -> Option<&str> {
        self.share_name.as_deref()
    }

    /// The file's size now. It is read from the OS on every call (the file may change size
    /// under us); for a mapping opened by name on Windows it is the section's size, rounded
    /// up to a page.
    ///
    /// # Errors
    ///
    /// [`ViewError::Io`] if the OS cannot tell the size.
    pub fn len(&self) -> Result<u64, ViewError> {
        let limit = self.mapping().limit();
        let Some(file) = &self.file else {
            return Ok(limit.unwrap_or(0));
        };
        let len = file
            .metadata()
            .map_err(|source| ViewError::Io {
                path: self.path.to_path_buf(),
                op: "reading the file's size",
                source,
            })?
            .len();
        Ok(match limit {
            Some(limit) if !self.resizable => len.min(limit),
            _ => len,
        })
    }

    /// Whether the file is empty now (see [`len`](Self::len)).
    ///
    /// # Errors
    ///
    /// As for [`len`](Self::len).
    pub fn is_empty(&self) -> Result<bool, ViewError> {
        Ok(self.len()? == 0)
    }

    fn mapping(&self) -> Arc<FileMap> {
        Arc::clone(&self.map.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// A mapping that reaches `end`, re-creating a fixed-size (Windows) one if the file grew.
    fn mapping_reaching(&self, end: u64) -> Result<Arc<FileMap>, ViewError> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if let (Some(limit), Some(file)) = (map.limit(), &self.file) {
            if end > limit && self.resizable {
                let fresh =
                    FileMap::new(file, self.access, None).map_err(|source| ViewError::Io {
                        path: self.path.to_path_buf(),
                        op: "re-creating the mapping for the grown file",
                        source,
                    })?;
                *map = Arc::new(fresh);
            }
        }
        Ok(Arc::clone(&map))
    }

    /// Maps exactly `len` bytes from `offset` of the file, with the file's access. Any offset
    /// and length will do: alignment is handled inside. The file's size is read first, and a
    /// range past its end is refused, so the view never covers pages past the end of file.
    ///
    /// # Errors
    ///
    /// [`ViewError::OutOfRange`] if the range is not inside the file as it is now;
    /// [`ViewError::TooLarge`] if it does not fit the address space; [`ViewError::Io`] if the
    /// OS cannot map it.
    #[doc(alias = "mmap")]
    #[doc(alias = "MapViewOfFile")]
    pub fn view(&self, offset: u64, len: usize) -> Result<FileView, ViewError> {
        self.view_with(offset, len, self.access)
    }

    /// Like [`view`](Self::view), with a narrower access: a read-only view of any file, or a
    /// private copy-on-write view of a read-write one.
    ///
    /// # Errors
    ///
    /// [`ViewError::AccessNotAllowed`] for more access than the file's; otherwise as for
    /// [`view`](Self::view).
    pub fn view_with(
        &self,
        offset: u64,
        len: usize,
        access: FileAccess,
    ) -> Result<FileView, ViewError> {
        let path = || self.path.to_path_buf();
        if !self.access.allows(access) {
            return Err(ViewError::AccessNotAllowed {
                path: path(),
                file: self.access,
                view: access,
            });
        }
        self.view_within(offset, len, access, self.len()?)
    }

    /// [`view_with`](Self::view_with) for a caller that has just read the file's size.
    pub(crate) fn view_within(
        &self,
        offset: u64,
        len: usize,
        access: FileAccess,
        size: u64,
    ) -> Result<FileView, ViewError> {
        let path = || self.path.to_path_buf();
        let end = offset.checked_add(len as u64);
        let Some(end) = end.filter(|&e| e <= size) else {
            return Err(ViewError::OutOfRange {
                path: path(),
                offset,
                len: len as u64,
                size,
            });
        };
        let (aligned, delta) = align_down(offset, allocation_granularity());
        let (map_len, delta) = if len == 0 {
            (0, 0)
        } else {
            let l = delta
                .checked_add(len)
                .filter(|&l| l <= isize::MAX as usize)
                .ok_or(ViewError::TooLarge {
                    path: path(),
                    len: len as u64,
                })?;
            (l, delta)
        };
        let map = self.mapping_reaching(end)?;
        let view = map
            .map(aligned, map_len, access)
            .map_err(|source| ViewError::Io {
                path: path(),
                op: "mapping the range",
                source,
            })?;
        // SAFETY: the view is `map_len = delta + len` bytes (or empty, with `delta = 0` and
        // `len = 0`), so `[delta, delta + len)` lies inside it; it is readable, and writable
        // iff `access.is_writable()` (ReadWrite and CopyOnWrite views are mapped writable);
        // the region is dropped before the view (field order in `FileView`).
        let region =
            unsafe { Mapping::new(view.as_ptr().wrapping_add(delta), len, access.is_writable()) };
        Ok(FileView {
            region,
            view,
            map,
            path: Arc::clone(&self.path),
            offset,
            delta,
            access,
        })
    }
}

/// `offset` rounded down to a multiple of `granularity`, and the distance rounded off.
fn align_down(offset: u64, granularity: u64) -> (u64, usize) {
    let delta = offset % granularity;
    // `delta < granularity`, which is at most 64 KiB: it fits a usize.
    (offset - delta, delta as usize)
}

/// Exactly the range of a file asked for in [`MappedFile::view`], mapped into this process.
/// Unmapped on drop; it does not need the [`MappedFile`] to stay alive.
#[derive(Debug)]
pub struct FileView {
    // Field order matters: `region` points into `view`, which unmaps on drop.
    region: Mapping,
    view: View,
    map: Arc<FileMap>,
    path: Arc<Path>,
    offset: u64,
    /// How far into `view` the requested range starts (alignment).
    delta: usize,
    access: FileAccess,
}

impl FileView {
    /// Where in the file the view starts (as asked for, not aligned).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Length in bytes (as asked for).
    pub fn len(&self) -> usize {
        self.region.len()
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.region.len() == 0
    }

    /// The view's access.
    pub fn access(&self) -> FileAccess {
        self.access
    }

    /// The file's path (or name).
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn out_of_range(&self, offset: u64, len: usize) -> ViewAccessError {
        ViewAccessError::OutOfRange {
            path: self.path.to_path_buf(),
            offset,
            len: len as u64,
            view_len: self.len() as u64,
        }
    }

    /// Copies `buf.len()` bytes from `offset` (counted from the start of the view) into `buf`.
    ///
    /// # Errors
    ///
    /// [`ViewAccessError::OutOfRange`] if the range is not inside the view.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), ViewAccessError> {
        self.region
            .region()
            .read(offset, buf)
            .ok_or_else(|| self.out_of_range(offset, buf.len()))
    }

    /// Copies `data` into the view at `offset` (from the start of the view). Nothing is
    /// written if it does not fit. For a read-write view the bytes go to the file; for a
    /// copy-on-write view they stay private to this process.
    ///
    /// # Errors
    ///
    /// [`ViewAccessError::ReadOnly`] for a read-only view; [`ViewAccessError::OutOfRange`] if
    /// the range is not inside the view.
    pub fn write_at(&self, offset: u64, data: &[u8]) -> Result<(), ViewAccessError> {
        if !self.region.is_writable() {
            return Err(ViewAccessError::ReadOnly {
                path: self.path.to_path_buf(),
            });
        }
        self.region
            .region()
            .write(offset, data)
            .ok_or_else(|| self.out_of_range(offset, data.len()))
    }

    /// Start of the view, for zero-copy use. Other processes may write these bytes at any time
    /// (a read-write mapped file is shared), and touching them after another process
    /// truncated the file raises `SIGBUS` on POSIX: see the
    /// [module documentation](crate::file).
    pub fn as_ptr(&self) -> *const u8 {
        self.region.as_ptr()
    }

    /// Start of the view for writing, or `None` if the view is read-only.
    pub fn as_mut_ptr(&self) -> Option<*mut u8> {
        self.region.is_writable().then(|| self.region.as_ptr())
    }

    /// Makes everything written through this view durable; see
    /// [`flush_range`](Self::flush_range).
    ///
    /// # Errors
    ///
    /// As for [`flush_range`](Self::flush_range).
    #[doc(alias = "msync")]
    #[doc(alias = "FlushViewOfFile")]
    pub fn flush(&self) -> Result<(), FlushError> {
        self.flush_range(0, self.len())
    }

    /// Makes the bytes `[offset, offset + len)` of the view (from its start) durable: when
    /// this returns `Ok`, they and the file's size have been handed to the storage device
    /// (`msync` + `fdatasync`, `F_FULLFSYNC` on macOS, `FlushViewOfFile` +
    /// `FlushFileBuffers` on Windows). See "Durability" in the
    /// [module documentation](crate::file) for exactly what is promised. Does nothing for
    /// read-only and copy-on-write views.
    ///
    /// # Errors
    ///
    /// [`FlushError::OutOfRange`] if the range is not inside the view; [`FlushError::Io`] if
    /// the OS could not write the data back.
    pub fn flush_range(&self, offset: u64, len: usize) -> Result<(), FlushError> {
        let in_view = usize::try_from(offset)
            .ok()
            .and_then(|o| o.checked_add(len).filter(|&e| e <= self.len()).map(|_| o));
        let Some(start) = in_view else {
            return Err(FlushError::OutOfRange {
                path: self.path.to_path_buf(),
                offset,
                len: len as u64,
                view_len: self.len() as u64,
            });
        };
        if self.access != FileAccess::ReadWrite {
            return Ok(());
        }
        self.map
            .flush(&self.view, self.delta + start, len)
            .map_err(|source| FlushError::Io {
                path: self.path.to_path_buf(),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn align_down_keeps_the_distance() {
        assert_eq!(align_down(0, 4096), (0, 0));
        assert_eq!(align_down(4095, 4096), (0, 4095));
        assert_eq!(align_down(4096, 4096), (4096, 0));
        assert_eq!(align_down((4 << 30) + 12345, 65536), (4 << 30, 12345));
        assert_eq!(align_down(u64::MAX, 65536), (u64::MAX - 65535, 65535));
    }

    #[test]
    fn messages_are_one_sentence_naming_the_path() {
        let path = PathBuf::from("/data/map.dat");
        let cases: Vec<String> = vec![
            FileOpenError::NotFound { path: path.clone() }.to_string(),
            FileOpenError::Empty { path: path.clone() }.to_string(),
            FileOpenError::NotAFile {
                path: path.clone(),
                what: "a directory",
            }
            .to_string(),
            FileOpenError::PermissionDenied {
                path: path.clone(),
                access: FileAccess::ReadWrite,
                source: io::Error::from(io::ErrorKind::PermissionDenied),
            }
            .to_string(),
            ViewError::OutOfRange {
                path: path.clone(),
                offset: 10,
                len: 5,
                size: 12,
            }
            .to_string(),
            ViewAccessError::ReadOnly { path: path.clone() }.to_string(),
            FlushError::Io {
                path: path.clone(),
                source: io::Error::other("disk on fire"),
            }
            .to_string(),
            ReadError::OutOfRange {
                path: path.clone(),
                offset: 10,
                len: 5,
                size: 12,
            }
            .to_string(),
        ];
        for m in cases {
            assert!(m.contains("/data/map.dat"), "{m}");
            assert!(!m.contains('\n') && !m.ends_with('.'), "{m}");
        }
        assert_eq!(
            FileOpenError::PermissionDenied {
                path,
                access: FileAccess::ReadWrite,
                source: io::Error::from(io::ErrorKind::PermissionDenied),
            }
            .to_string(),
            "cannot map /data/map.dat read-write: permission denied"
        );
    }

    #[test]
    fn read_errors_become_io_errors_of_the_right_kind() {
        let e: io::Error = ReadError::OutOfRange {
            path: PathBuf::from("f"),
            offset: 1,
            len: 2,
            size: 0,
        }
        .into();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e: io::Error = ReadError::from(ViewError::Io {
            path: PathBuf::from("f"),
            op: "mapping the range",
            source: io::Error::from(io::ErrorKind::OutOfMemory),
        })
        .into();
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
        assert!(e.to_string().contains('f'));
    }
}
