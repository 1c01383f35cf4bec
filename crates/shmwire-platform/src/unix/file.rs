//! POSIX file mappings: `mmap` of a duplicated file descriptor, `msync` + `fdatasync`.
//!
//! # Safety
//!
//! Views made here follow the rules of the parent module: each [`View`] owns the fresh range
//! `mmap` returned (a null hint, so no existing object is replaced) and unmaps it once, in
//! `Drop`. `msync` is only called on a page-aligned sub-range of a live view, which it does
//! not modify. No reference to mapped bytes is formed.
#![allow(unsafe_code)]

use std::fs::File;
use std::io;
use std::ptr::NonNull;

use rustix::fs::OFlags;
use rustix::mm::{MapFlags, MsyncFlags, ProtFlags};

use super::View;
use crate::file::{access_not_allowed, check_flush_range};
use crate::{FileAccess, FileMapping, ObjectName};

/// Named file mappings do not exist on POSIX: the path is the name.
pub(crate) const FILE_MAPPINGS_HAVE_NAMES: bool = false;

/// A file prepared for mapping: a duplicate of its descriptor.
#[derive(Debug)]
pub struct FileMap {
    file: File,
    access: FileAccess,
}

impl FileMapping for FileMap {
    fn new(file: &File, access: FileAccess, _name: Option<ObjectName<'_>>) -> io::Result<Self> {
        let mode = rustix::fs::fcntl_getfl(file)? & OFlags::RWMODE;
        let readable = mode == OFlags::RDWR || mode == OFlags::RDONLY;
        let writable = mode == OFlags::RDWR || mode == OFlags::WRONLY;
        if !readable || (access == FileAccess::ReadWrite && !writable) {
            let needs = if access == FileAccess::ReadWrite {
                "read and write"
            } else {
                "read"
            };
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("a {access} mapping needs the file open for {needs} access"),
            ));
        }
        Ok(FileMap {
            file: file.try_clone()?,
            access,
        })
    }

    fn open_named(_name: ObjectName<'_>, _access: FileAccess) -> io::Result<Self> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "file mappings have no names on POSIX: open the file by its path",
        ))
    }

    fn limit(&self) -> Option<u64> {
        None
    }

    fn map(&self, offset: u64, len: usize, access: FileAccess) -> io::Result<View> {
        if !self.access.allows(access) {
            return Err(access_not_allowed(self.access, access));
        }
        if len == 0 {
            return Ok(View {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        let (prot, flags) = match access {
            FileAccess::ReadOnly => (ProtFlags::READ, MapFlags::SHARED),
            FileAccess::ReadWrite => (ProtFlags::READ | ProtFlags::WRITE, MapFlags::SHARED),
            FileAccess::CopyOnWrite => (ProtFlags::READ | ProtFlags::WRITE, MapFlags::PRIVATE),
        };
        // SAFETY: a null hint lets the kernel choose a fresh range, so no existing Rust object
        // is replaced; the result is owned by the returned `View` alone and unmapped once in
        // its `Drop`. `len > 0`; the kernel checks `offset`'s alignment (EINVAL).
        let ptr = unsafe {
            rustix::mm::mmap(std::ptr::null_mut(), len, prot, flags, &self.file, offset)?
        };
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(View { ptr, len })
    }

    fn flush(&self, view: &View, offset: usize, len: usize) -> io::Result<()> {
        check_flush_range(view.len, offset, len)?;
        if self.access != FileAccess::ReadWrite {
            return Ok(());
        }
        if len > 0 {
            let page = rustix::param::page_size();
            let start = offset - offset % page;
            let end = offset + len;
            // SAFETY: `[start, end)` lies inside the live mapping of `view` (checked above;
            // `start` is rounded down to a page, and the view itself starts on a page), which
            // msync requires to be mapped; MS_SYNC writes pages back and does not change them.
            unsafe {
                rustix::mm::msync(
                    view.ptr.as_ptr().wrapping_add(start).cast(),
                    end - start,
                    MsyncFlags::SYNC,
                )?
            };
        }
        self.file.sync_data()
    }

    fn access(&self) -> FileAccess {
        self.access
    }
}
