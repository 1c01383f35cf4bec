//! The file-mapping contract: mapping ranges of an open file, and (on Windows) sharing that
//! mapping with other processes under a name.

use std::fmt;
use std::fs::File;
use std::io;

use crate::{ObjectName, View};

/// How the pages of a file mapping may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FileAccess {
    /// Read only: a write through the mapping faults. The file needs only read access.
    ReadOnly,
    /// Read and write: writes go to the file (`MAP_SHARED`; `PAGE_READWRITE`) and are seen
    /// by every process that maps or reads it. The file needs read and write access.
    ReadWrite,
    /// Copy-on-write: writes are allowed but stay private to this process and never reach
    /// the file (`MAP_PRIVATE`; `PAGE_WRITECOPY` + `FILE_MAP_COPY`). The file needs only read
    /// access.
    CopyOnWrite,
}

impl FileAccess {
    /// Whether the pages may be written (to the file or privately).
    pub fn is_writable(self) -> bool {
        !matches!(self, FileAccess::ReadOnly)
    }

    /// Whether a view with access `view` may be made from a mapping with access `self`:
    /// read-only views always; copy-on-write views from read-write or copy-on-write
    /// mappings; read-write views only from read-write mappings.
    pub fn allows(self, view: FileAccess) -> bool {
        match view {
            FileAccess::ReadOnly => true,
            FileAccess::CopyOnWrite => self != FileAccess::ReadOnly,
            FileAccess::ReadWrite => self == FileAccess::ReadWrite,
        }
    }
}

impl fmt::Display for FileAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FileAccess::ReadOnly => "read-only",
            FileAccess::ReadWrite => "read-write",
            FileAccess::CopyOnWrite => "copy-on-write",
        })
    }
}

/// A file prepared for mapping: the contract every backend's [`FileMap`](crate::FileMap)
/// implements.
///
/// POSIX keeps a duplicate of the file descriptor and `mmap`s it for each view; the path is
/// the only name a file has there. Windows creates a section object for the file
/// (`CreateFileMappingW(hFile, ...)`), optionally named so that other processes can open it
/// with [`FileMapping::open_named`], and maps views of the section.
///
/// Errors are `io::Error`s with the OS error code, and these kinds the layers above rely on:
/// `PermissionDenied` (the file handle lacks the access the mapping needs, or the OS refused),
/// `AlreadyExists` (a named mapping of that name exists), `NotFound` (no named mapping of that
/// name), `InvalidInput` (a view outside what the mapping covers, or an access the mapping
/// does not allow), `Unsupported` (named mappings on POSIX).
pub trait FileMapping: Sized + Send + Sync {
    /// Prepares `file` for mapping with `access`. The file must be open for reading, and for
    /// writing too if `access` is [`FileAccess::ReadWrite`]; otherwise this fails with
    /// `PermissionDenied`. The file must not be empty (the caller checks: Windows cannot map
    /// an empty file).
    ///
    /// `name`, where named mappings exist ([`FILE_MAPPINGS_HAVE_NAMES`](crate::FILE_MAPPINGS_HAVE_NAMES)),
    /// names the mapping object (owner-only access) so that other processes can
    /// [`open_named`](FileMapping::open_named) it while this one exists; `AlreadyExists` if
    /// the name is taken. On POSIX it is ignored: the path is the name.
    fn new(file: &File, access: FileAccess, name: Option<ObjectName<'_>>) -> io::Result<Self>;

    /// Opens a mapping another process created with a name. `Unsupported` on POSIX, where
    /// file mappings have no names (open the file by its path instead).
    fn open_named(name: ObjectName<'_>, access: FileAccess) -> io::Result<Self>;

    /// How many bytes from the file's start this mapping can map.
    ///
    /// `None` means views of any range can be made: POSIX maps the file as it is when each
    /// view is made (pages past the file's end then fault with `SIGBUS` on access, so the
    /// caller checks the size first). `Some(n)` means the mapping's size was fixed when it
    /// was made: Windows sections have the file's size at creation (and, when opened by name,
    /// the section's size rounded up to a page, since Windows tells openers nothing finer).
    fn limit(&self) -> Option<u64>;

    /// Maps `len` bytes from `offset`, which must be a multiple of
    /// [`allocation_granularity`](crate::allocation_granularity). `len` may be zero (an
    /// empty view). `access` must be allowed by the mapping's ([`FileAccess::allows`]),
    /// else `InvalidInput`. Beyond [`limit`](FileMapping::limit), `InvalidInput`.
    fn map(&self, offset: u64, len: usize, access: FileAccess) -> io::Result<View>;

    /// Makes the bytes `[offset, offset + len)` of `view` (a view of this mapping) durable:
    /// POSIX `msync(MS_SYNC)` of the pages, then `fdatasync` (`F_FULLFSYNC` on macOS) of the
    /// file; Windows `FlushViewOfFile`, then `FlushFileBuffers` if this mapping was made from
    /// a file handle (a mapping opened by name has none: its flush starts the writes but
    /// does not wait for the disk). `InvalidInput` if the range is not inside the view.
    /// Does nothing for a mapping that is not [`FileAccess::ReadWrite`] (none of its views can
    /// change the file; and Windows refuses `FlushFileBuffers` on a read-only handle).
    fn flush(&self, view: &View, offset: usize, len: usize) -> io::Result<()>;

    /// The access this mapping was made with.
    fn access(&self) -> FileAccess;
}

/// Checks that `[offset, offset + len)` lies inside a view of `view_len` bytes.
pub(crate) fn check_flush_range(view_len: usize, offset: usize, len: usize) -> io::Result<()> {
    match offset.checked_add(len) {
        Some(end) if end <= view_len => Ok(()),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{len} bytes at offset {offset} are not inside the view of {view_len} bytes"),
        )),
    }
}

/// The error for a view access the mapping does not allow.
pub(crate) fn access_not_allowed(mapping: FileAccess, view: FileAccess) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("a {view} view cannot be made from a {mapping} mapping"),
    )
}
