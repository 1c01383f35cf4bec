//! Error types of file mappings, one per operation. Each `Display` is one sentence naming the
//! file (or, for a mapping opened by name, the name); the OS error, where there is one, is the
//! `source()`.

use std::io;
use std::path::{Path, PathBuf};

use crate::{FileAccess, NameError};

/// Why opening or creating a [`MappedFile`](crate::MappedFile) failed. A file that
/// [`create`](crate::FileOptions::create) made is removed again on failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileOpenError {
    /// No such file (or, for [`MappedFile::open_shared`](crate::MappedFile::open_shared) on
    /// Windows, no file mapping of that name).
    #[error("cannot map {}: it does not exist", .path.display())]
    NotFound {
        /// The path (or name).
        path: PathBuf,
    },
    /// Exclusive create of a file that exists.
    #[error("cannot create {}: it already exists", .path.display())]
    AlreadyExists {
        /// The path.
        path: PathBuf,
        /// OS error.
        source: io::Error,
    },
    /// The OS refused the access asked for: a read-only file (or a handle opened read-only)
    /// mapped read-write, a file the user may not read, ...
    #[error("cannot map {} {access}: permission denied", .path.display())]
    PermissionDenied {
        /// The path (or name).
        path: PathBuf,
        /// The access asked for.
        access: FileAccess,
        /// OS error.
        source: io::Error,
    },
    /// A directory, device, pipe or socket: only regular files can be mapped.
    #[error("cannot map {}: it is {what}, not a regular file", .path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead ("a directory", ...).
        what: &'static str,
    },
    /// The file is empty: there is nothing to map (and Windows cannot map an empty file).
    /// Grow it first ([`FileOptions::create`](crate::FileOptions::create) with
    /// `exclusive(false)` extends an existing file).
    #[error("cannot map {}: the file is empty (0 bytes), and a mapping needs at least one byte", .path.display())]
    Empty {
        /// The path.
        path: PathBuf,
    },
    /// [`create`](crate::FileOptions::create) was asked for size 0.
    #[error("cannot create {} with size 0: a mapping needs at least one byte", .path.display())]
    ZeroSize {
        /// The path.
        path: PathBuf,
    },
    /// The file could not be extended to the size asked for (disk full, or larger than the
    /// file system allows).
    #[error("cannot grow {} to {size} bytes", .path.display())]
    NoSpace {
        /// The path.
        path: PathBuf,
        /// The size asked for.
        size: u64,
        /// OS error.
        source: io::Error,
    },
    /// The share name breaks a naming rule (see [`Name`](crate::Name)).
    #[error(transparent)]
    InvalidName(#[from] NameError),
    /// Windows: a file mapping (or segment) of that share name exists already.
    #[error("cannot share {} as {name:?}: a mapping of that name already exists", .path.display())]
    NameTaken {
        /// The path.
        path: PathBuf,
        /// The share name.
        name: String,
        /// OS error.
        source: io::Error,
    },
    /// Any other OS failure.
    #[error("cannot map {}: {op} failed", .path.display())]
    Io {
        /// The path (or name).
        path: PathBuf,
        /// The step that failed.
        op: &'static str,
        /// OS error.
        source: io::Error,
    },
}

/// Why [`MappedFile::view`](crate::MappedFile::view) (or [`MappedFile::len`](crate::MappedFile::len))
/// failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ViewError {
    /// The range is not inside the file as it is now (its size is read before every view).
    #[error("{len} bytes at offset {offset} are past the end of {} ({size} bytes)", .path.display())]
    OutOfRange {
        /// The path.
        path: PathBuf,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// The file's size when the view was asked for.
        size: u64,
    },
    /// The view (plus its alignment) does not fit in this process's address space.
    #[error("a view of {len} bytes of {} does not fit in this process's address space", .path.display())]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// Requested length.
        len: u64,
    },
    /// A view with more access than the file was mapped with.
    #[error("cannot make a {view} view of {}, which is mapped {file}", .path.display())]
    AccessNotAllowed {
        /// The path.
        path: PathBuf,
        /// The file's access.
        file: FileAccess,
        /// The access asked for.
        view: FileAccess,
    },
    /// Any other OS failure.
    #[error("cannot map a view of {}: {op} failed", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The step that failed.
        op: &'static str,
        /// OS error.
        source: io::Error,
    },
}

/// Why [`FileView::read_at`](crate::FileView::read_at) or
/// [`FileView::write_at`](crate::FileView::write_at) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ViewAccessError {
    /// The range is not inside the view.
    #[error("{len} bytes at offset {offset} do not fit in the {view_len}-byte view of {}", .path.display())]
    OutOfRange {
        /// The path.
        path: PathBuf,
        /// Requested offset, from the start of the view.
        offset: u64,
        /// Requested length.
        len: u64,
        /// The view's length.
        view_len: u64,
    },
    /// A write to a read-only view.
    #[error("the view of {} is read-only", .path.display())]
    ReadOnly {
        /// The path.
        path: PathBuf,
    },
}

/// Why [`FileView::flush`](crate::FileView::flush) or
/// [`FileView::flush_range`](crate::FileView::flush_range) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FlushError {
    /// The range is not inside the view.
    #[error("{len} bytes at offset {offset} do not fit in the {view_len}-byte view of {}", .path.display())]
    OutOfRange {
        /// The path.
        path: PathBuf,
        /// Requested offset, from the start of the view.
        offset: u64,
        /// Requested length.
        len: u64,
        /// The view's length.
        view_len: u64,
    },
    /// The OS could not write the data back (an I/O error, a full disk).
    #[error("cannot flush {} to storage", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// OS error.
        source: io::Error,
    },
}

/// Why a read through a [`WindowedReader`](crate::WindowedReader) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReadError {
    /// [`read_exact_at`](crate::WindowedReader::read_exact_at): the range is not inside the
    /// file as it is now (it may have been truncated).
    #[error("{len} bytes at offset {offset} are past the end of {} ({size} bytes)", .path.display())]
    OutOfRange {
        /// The path.
        path: PathBuf,
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// The file's size when it was last checked.
        size: u64,
    },
    /// Reading the file's size or mapping a window failed.
    #[error("cannot read {}: {op} failed", .path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The step that failed.
        op: &'static str,
        /// OS error.
        source: io::Error,
    },
}

impl From<ViewError> for ReadError {
    fn from(e: ViewError) -> Self {
        match e {
            ViewError::OutOfRange {
                path,
                offset,
                len,
                size,
            } => ReadError::OutOfRange {
                path,
                offset,
                len,
                size,
            },
            ViewError::Io { path, op, source } => ReadError::Io { path, op, source },
            other => ReadError::Io {
                path: other.path().to_path_buf(),
                op: "mapping a window",
                source: io::Error::other(other),
            },
        }
    }
}

impl ViewError {
    /// The file (or name) the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ViewError::OutOfRange { path, .. }
            | ViewError::TooLarge { path, .. }
            | ViewError::AccessNotAllowed { path, .. }
            | ViewError::Io { path, .. } => path,
        }
    }
}

impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> io::Error {
        let kind = match &e {
            ReadError::OutOfRange { .. } => io::ErrorKind::UnexpectedEof,
            ReadError::Io { source, .. } => source.kind(),
        };
        io::Error::new(kind, e)
    }
}
