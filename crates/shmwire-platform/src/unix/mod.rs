//! POSIX backend: `shm_open` + `mmap`, `/proc` (Linux) or `proc_pidinfo` (macOS) for process
//! identity.
//!
//! # Safety
//!
//! The only unsafe code maps and unmaps memory ([`View`]). Its invariants: a `View` owns the
//! mapping `[ptr, ptr + len)` it was created with, nothing else unmaps it, and it is unmapped
//! exactly once, in `Drop`. The bytes of a shared mapping may change at any time (other
//! processes write them), so this module never forms references to them; callers receive raw
//! pointers.
#![allow(unsafe_code)]

mod file;
mod limits;
mod process;
pub(crate) mod sync;
mod users;

use std::io;
use std::ptr::NonNull;

use rustix::fd::OwnedFd;
use rustix::fs::Mode;
use rustix::mm::{MapFlags, ProtFlags};
use rustix::shm;

use crate::{
    Access, Lifetime, ListedObject, ObjectKey, ObjectName, Permissions, SharedMemory, Users,
};

pub use file::FileMap;
pub(crate) use file::FILE_MAPPINGS_HAVE_NAMES;
pub(crate) use limits::{is_too_many_open, shm_space};
pub use process::Os;

#[cfg(target_vendor = "apple")]
pub(crate) const NAME_MAX: usize = 30;
// 255 is the longest file name in /dev/shm, and rustix's `shm_open` counts the leading '/'.
#[cfg(not(target_vendor = "apple"))]
pub(crate) const NAME_MAX: usize = 254;

pub(crate) const NAMES_OUTLIVE_HANDLES: bool = true;

pub(crate) fn allocation_granularity() -> u64 {
    rustix::param::page_size() as u64
}

pub(crate) fn keep_stdio_from_children() {}

fn os_name(name: ObjectName<'_>) -> String {
    format!("/{}", name.name)
}

/// A POSIX shared-memory object (an open `shm_open` descriptor).
#[derive(Debug)]
pub struct Shm {
    fd: OwnedFd,
    access: Access,
}

impl SharedMemory for Shm {
    fn create(name: ObjectName<'_>, size: u64, perms: Permissions) -> io::Result<Self> {
        let path = os_name(name);
        let mode = Mode::from_raw_mode((perms.mode & 0o777) as _);
        let fd = shm::open(
            path.as_str(),
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            mode,
        )?;
        // From here on a failure must not leave a half-created object behind.
        let finish = || -> io::Result<()> {
            // shm_open applied the umask; set exactly the bits asked for.
            rustix::fs::fchmod(&fd, mode)?;
            reserve(&fd, size)
        };
        if let Err(e) = finish() {
            let _ = shm::unlink(path.as_str());
            return Err(e);
        }
        Ok(Shm {
            fd,
            access: Access::ReadWrite,
        })
    }

    fn open(name: ObjectName<'_>, access: Access) -> io::Result<Self> {
        let flags = match access {
            Access::ReadOnly => shm::OFlags::RDONLY,
            Access::ReadWrite => shm::OFlags::RDWR,
        };
        let fd = shm::open(os_name(name).as_str(), flags, Mode::empty())?;
        Ok(Shm { fd, access })
    }

    fn size(&self) -> io::Result<u64> {
        let st = rustix::fs::fstat(&self.fd)?;
        Ok(st.st_size.max(0) as u64)
    }

    fn map(&self, offset: u64, len: usize, access: Access) -> io::Result<View> {
        View::map(&self.fd, offset, len, access)
    }

    fn access(&self) -> Access {
        self.access
    }

    fn remove_if_same(&self, name: ObjectName<'_>) -> io::Result<()> {
        let path = os_name(name);
        let (a, b) = (rustix::fs::fstat(&self.fd)?, stat_name(&path)?);
        if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino) {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                "the name now belongs to another object",
            ));
        }
        shm::unlink(path.as_str()).map_err(Into::into)
    }

    fn try_clone(&self) -> io::Result<Self> {
        Ok(Shm {
            fd: self.fd.try_clone()?,
            access: self.access,
        })
    }

    fn key(&self) -> io::Result<Option<ObjectKey>> {
        use std::os::unix::fs::MetadataExt;
        let m = self.metadata()?;
        Ok(Some(ObjectKey::new(m.dev(), m.ino())))
    }

    fn changed(&self) -> io::Result<Option<std::time::SystemTime>> {
        use std::os::unix::fs::MetadataExt;
        let m = self.metadata()?;
        let at = |secs: i64, nanos: i64| {
            let d =
                std::time::Duration::new(secs.unsigned_abs(), nanos.clamp(0, 999_999_999) as u32);
            if secs >= 0 {
                std::time::UNIX_EPOCH + d
            } else {
                std::time::UNIX_EPOCH - d
            }
        };
        Ok(Some(
            at(m.mtime(), m.mtime_nsec()).max(at(m.ctime(), m.ctime_nsec())),
        ))
    }
}

impl Shm {
    /// `fstat` of the object, through std's portable accessors.
    fn metadata(&self) -> io::Result<std::fs::Metadata> {
        std::fs::File::from(self.fd.try_clone()?).metadata()
    }
}

/// The object `path` (`/NAME`) names now. Linux: a `stat` of `/dev/shm/NAME`, the file
/// `shm_open` opens, which takes no descriptor: an owner at its limit of open files must
/// still be able to remove its segment. Elsewhere: open it and `fstat`.
fn stat_name(path: &str) -> io::Result<rustix::fs::Stat> {
    #[cfg(linux_like)]
    {
        Ok(rustix::fs::stat(format!("/dev/shm{path}"))?)
    }
    #[cfg(not(linux_like))]
    {
        let other = shm::open(path, shm::OFlags::RDONLY, Mode::empty())?;
        Ok(rustix::fs::fstat(&other)?)
    }
}

/// Gives the new object its size and, where the OS can, backs every page now.
fn reserve(fd: &OwnedFd, size: u64) -> io::Result<()> {
    #[cfg(linux_like)]
    {
        loop {
            match rustix::fs::fallocate(fd, rustix::fs::FallocateFlags::empty(), 0, size) {
                Ok(()) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                // Not tmpfs, or a filesystem without fallocate: size it, pages come lazily.
                Err(rustix::io::Errno::OPNOTSUPP) => break,
                Err(rustix::io::Errno::NOSPC) => {
                    return Err(io::Error::new(
                        io::ErrorKind::StorageFull,
                        "no space left in /dev/shm to reserve the segment's pages",
                    ))
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    rustix::fs::ftruncate(fd, size).map_err(|e| match e {
        rustix::io::Errno::NOSPC | rustix::io::Errno::FBIG => io::Error::new(
            io::ErrorKind::StorageFull,
            format!("no room for the segment's size ({e})"),
        ),
        e => e.into(),
    })
}

/// A mapped view of a shared-memory object or file. Unmapped on drop.
#[derive(Debug)]
pub struct View {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `View` is an owned address range; the bytes behind it are shared memory that any
// thread (or process) may access through raw pointers. Nothing in `View` is thread-bound.
unsafe impl Send for View {}
// SAFETY: `&View` only hands out raw pointers and the length; see `Send`.
unsafe impl Sync for View {}

impl View {
    pub(crate) fn map(fd: &OwnedFd, offset: u64, len: usize, access: Access) -> io::Result<View> {
        if len == 0 {
            return Ok(View {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        let prot = match access {
            Access::ReadOnly => ProtFlags::READ,
            Access::ReadWrite => ProtFlags::READ | ProtFlags::WRITE,
        };
        // SAFETY: a null hint lets the kernel choose a fresh range, so no existing Rust object
        // is replaced; the result is owned by the returned `View` alone and unmapped once in
        // `Drop`. `len > 0`; `offset` alignment is checked by the kernel (EINVAL).
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                MapFlags::SHARED,
                fd,
                offset,
            )?
        };
        let ptr =
            NonNull::new(ptr.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok(View { ptr, len })
    }

    /// Start of the view.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Length of the view in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the view is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for View {
    fn drop(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: `[ptr, ptr + len)` is the mapping this `View` created and owns; nothing else
        // unmaps it, and after `drop` no pointer from this view is used by safe code of ours.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

impl Lifetime for Os {
    fn remove(name: ObjectName<'_>) -> io::Result<()> {
        shm::unlink(os_name(name).as_str()).map_err(Into::into)
    }

    fn hold_until_removed(_name: ObjectName<'_>, _ready: &mut dyn FnMut()) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "POSIX shared memory lives until it is removed; nothing needs to hold it",
        ))
    }

    fn list() -> io::Result<Vec<ListedObject>> {
        list_dev_shm()
    }

    fn users() -> io::Result<Option<Users>> {
        users::users()
    }
}

#[cfg(linux_like)]
fn list_dev_shm() -> io::Result<Vec<ListedObject>> {
    use std::fs;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    let mut out = Vec::new();
    for entry in fs::read_dir("/dev/shm")? {
        let entry = entry?;
        let Ok(meta) = entry.metadata() else { continue };
        if !meta.is_file() {
            continue;
        }
        out.push(ListedObject {
            name: entry.file_name().to_string_lossy().into_owned(),
            size: meta.len(),
            mode: Some(meta.permissions().mode() & 0o777),
            uid: Some(meta.uid()),
            global: false,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

#[cfg(not(linux_like))]
fn list_dev_shm() -> io::Result<Vec<ListedObject>> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "this OS cannot enumerate POSIX shared-memory objects",
    ))
}
