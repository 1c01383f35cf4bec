//! Windows file mappings: a section for the file (`CreateFileMappingW(hFile, ...)`, optionally
//! named), views with `MapViewOfFile`, `FlushViewOfFile` + `FlushFileBuffers`.
//!
//! # Safety
//!
//! As in the parent module: Win32 calls get live handles this module owns ([`OwnedHandle`])
//! or borrows from a live `File` for the duration of the call, and NUL-terminated UTF-16
//! names that outlive the call. Each [`View`] owns the view `MapViewOfFile` returned and
//! unmaps it once, in `Drop`. `FlushViewOfFile` is only called on a sub-range of a live view
//! and does not modify it. No reference to mapped bytes is formed.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::os::windows::io::AsRawHandle;
use std::ptr::{null, NonNull};

use windows_sys::Win32::Foundation::{GetLastError, ERROR_ALREADY_EXISTS, HANDLE};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, FlushViewOfFile, MapViewOfFile, OpenFileMappingW, UnmapViewOfFile,
    VirtualQuery, FILE_MAP_COPY, FILE_MAP_READ, FILE_MAP_WRITE, MEMORY_BASIC_INFORMATION,
    MEMORY_MAPPED_VIEW_ADDRESS, PAGE_READONLY, PAGE_READWRITE, PAGE_WRITECOPY,
};

use super::{last_error, wide_name, OwnedHandle, SecurityDescriptor, View};
use crate::file::{access_not_allowed, check_flush_range};
use crate::{FileAccess, FileMapping, ObjectName};

/// Windows names its file mappings (sections).
pub(crate) const FILE_MAPPINGS_HAVE_NAMES: bool = true;

/// A section object for a file.
#[derive(Debug)]
pub struct FileMap {
    section: OwnedHandle,
    /// A duplicate of the file handle, for `FlushFileBuffers`; `None` when opened by name.
    file: Option<File>,
    access: FileAccess,
    limit: u64,
}

impl FileMapping for FileMap {
    fn new(file: &File, access: FileAccess, name: Option<ObjectName<'_>>) -> io::Result<Self> {
        let protect = match access {
            FileAccess::ReadOnly => PAGE_READONLY,
            FileAccess::ReadWrite => PAGE_READWRITE,
            FileAccess::CopyOnWrite => PAGE_WRITECOPY,
        };
        // The section gets the file's size now (maximum size 0, 0): learn it first, so that
        // `limit` never claims more than the section holds (a file that grows in between
        // gives a larger section, which is harmless).
        let limit = file.metadata()?.len();
        let wide = name.map(|n| wide_name(n, ""));
        let sd = match name {
            Some(_) => Some(SecurityDescriptor::for_mode(0o600)?),
            None => None,
        };
        let sa = sd.as_ref().map(SecurityDescriptor::attributes);
        // SAFETY: the file handle is live (borrowed from `file` for the call); `sa` and `wide`
        // outlive the call or are null; the returned section handle is owned below.
        let h = unsafe {
            CreateFileMappingW(
                file.as_raw_handle() as HANDLE,
                sa.as_ref().map_or(null(), |s| s as *const _),
                protect,
                0,
                0,
                wide.as_ref().map_or(null(), |w| w.as_ptr()),
            )
        };
        // SAFETY: reads the thread's last-error value right after the call.
        let existed = !h.is_null() && unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
        let section = OwnedHandle::from_raw(h)?;
        if existed {
            return Err(io::Error::from_raw_os_error(ERROR_ALREADY_EXISTS as i32));
        }
        Ok(FileMap {
            section,
            file: Some(file.try_clone()?),
            access,
            limit,
        })
    }

    fn open_named(name: ObjectName<'_>, access: FileAccess) -> io::Result<Self> {
        let rights = match access {
            FileAccess::ReadWrite => FILE_MAP_READ | FILE_MAP_WRITE,
            // Copy-on-write views need only read access to the section.
            FileAccess::ReadOnly | FileAccess::CopyOnWrite => FILE_MAP_READ,
        };
        let wide = wide_name(name, "");
        // SAFETY: `wide` is NUL-terminated and outlives the call.
        let h = unsafe { OpenFileMappingW(rights, 0, wide.as_ptr()) };
        let section = OwnedHandle::from_raw(h)?;
        let limit = section_size(&section)?;
        Ok(FileMap {
            section,
            file: None,
            access,
            limit,
        })
    }

    fn limit(&self) -> Option<u64> {
        Some(self.limit)
    }

    fn map(&self, offset: u64, len: usize, access: FileAccess) -> io::Result<View> {
        if !self.access.allows(access) {
            return Err(access_not_allowed(self.access, access));
        }
        if offset
            .checked_add(len as u64)
            .is_none_or(|end| end > self.limit)
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{len} bytes at offset {offset} are past the end of the file mapping ({} bytes)",
                    self.limit
                ),
            ));
        }
        if len == 0 {
            return Ok(View {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        let rights = match access {
            FileAccess::ReadOnly => FILE_MAP_READ,
            FileAccess::ReadWrite => FILE_MAP_READ | FILE_MAP_WRITE,
            FileAccess::CopyOnWrite => FILE_MAP_COPY,
        };
        // SAFETY: `section` is a live section handle; the new view is owned by the `View`.
        let addr = unsafe {
            MapViewOfFile(
                self.section.raw(),
                rights,
                (offset >> 32) as u32,
                offset as u32,
                len,
            )
        };
        let ptr = NonNull::new(addr.Value.cast::<u8>()).ok_or_else(last_error)?;
        Ok(View { ptr, len })
    }

    fn flush(&self, view: &View, offset: usize, len: usize) -> io::Result<()> {
        check_flush_range(view.len, offset, len)?;
        if self.access != FileAccess::ReadWrite {
            return Ok(());
        }
        // FlushViewOfFile(addr, 0) would flush the whole view: skip an empty range.
        if len > 0 {
            // SAFETY: `[offset, offset + len)` lies inside the live view (checked above).
            let ok = unsafe { FlushViewOfFile(view.ptr.as_ptr().add(offset).cast(), len) };
            if ok == 0 {
                return Err(last_error());
            }
        }
        match &self.file {
            // std's sync_data is FlushFileBuffers on Windows.
            Some(f) => f.sync_data(),
            None => Ok(()),
        }
    }

    fn access(&self) -> FileAccess {
        self.access
    }
}

/// The size of a section, rounded up to a page: maps it whole, asks, unmaps.
fn section_size(section: &OwnedHandle) -> io::Result<u64> {
    // SAFETY: a live section handle; length 0 maps the whole section; unmapped below.
    let addr = unsafe { MapViewOfFile(section.raw(), FILE_MAP_READ, 0, 0, 0) };
    if addr.Value.is_null() {
        return Err(last_error());
    }
    let mut info = std::mem::MaybeUninit::<MEMORY_BASIC_INFORMATION>::zeroed();
    // SAFETY: `info` is a writable MEMORY_BASIC_INFORMATION of the size given.
    let n = unsafe {
        VirtualQuery(
            addr.Value,
            info.as_mut_ptr(),
            std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
        )
    };
    let result = if n == 0 {
        Err(last_error())
    } else {
        // SAFETY: VirtualQuery filled `info`.
        Ok(unsafe { info.assume_init() }.RegionSize as u64)
    };
    // SAFETY: unmapping the view mapped above, which nothing else uses.
    unsafe { UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS { Value: addr.Value }) };
    result
}
