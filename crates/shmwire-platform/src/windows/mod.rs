//! Windows backend: paging-file-backed sections (`CreateFileMappingW(INVALID_HANDLE_VALUE, ...)`),
//! `MapViewOfFile`, named events for the holder protocol, process handles for liveness.
//!
//! # Safety
//!
//! Every Win32 call here takes pointers to live, correctly sized locals or NUL-terminated
//! UTF-16 buffers that outlive the call, and handles that this module owns ([`OwnedHandle`]
//! closes each exactly once). A [`View`] owns the view `[ptr, ptr + len)` it mapped and
//! unmaps it once, in `Drop`. Shared bytes are never turned into Rust references.
#![allow(unsafe_code)]

mod file;
mod limits;
mod list;
mod process;
pub(crate) mod sync;

use std::io;
use std::ptr::{null_mut, NonNull};
use std::time::{Duration, Instant};

use windows_sys::Win32::Foundation::{
    CloseHandle, GetLastError, LocalFree, ERROR_ALREADY_EXISTS, ERROR_COMMITMENT_LIMIT,
    ERROR_NOT_ENOUGH_MEMORY, HANDLE, INVALID_HANDLE_VALUE, WAIT_OBJECT_0,
};
use windows_sys::Win32::Security::Authorization::{
    ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW, SDDL_REVISION_1,
};
use windows_sys::Win32::Security::{
    GetTokenInformation, TokenUser, PSECURITY_DESCRIPTOR, SECURITY_ATTRIBUTES, TOKEN_QUERY,
    TOKEN_USER,
};
use windows_sys::Win32::System::Memory::{
    CreateFileMappingW, MapViewOfFile, OpenFileMappingW, UnmapViewOfFile, VirtualQuery,
    FILE_MAP_READ, FILE_MAP_WRITE, MEMORY_BASIC_INFORMATION, MEMORY_MAPPED_VIEW_ADDRESS,
    PAGE_READWRITE, SEC_COMMIT,
};
use windows_sys::Win32::System::SystemInformation::{GetSystemInfo, SYSTEM_INFO};
use windows_sys::Win32::System::Threading::{
    CreateEventW, GetCurrentProcess, OpenEventW, OpenProcessToken, SetEvent, WaitForSingleObject,
    EVENT_MODIFY_STATE, INFINITE,
};

use crate::{
    Access, Lifetime, ListedObject, Namespace, ObjectKey, ObjectName, Permissions, SharedMemory,
    Users, DERIVED_MARKER,
};

pub use file::FileMap;
pub(crate) use file::FILE_MAPPINGS_HAVE_NAMES;
pub(crate) use limits::{is_too_many_open, shm_space};
pub use process::Os;

pub(crate) const NAME_MAX: usize = 200;
pub(crate) const NAMES_OUTLIVE_HANDLES: bool = false;

pub(crate) fn allocation_granularity() -> u64 {
    let mut info = std::mem::MaybeUninit::<SYSTEM_INFO>::zeroed();
    // SAFETY: GetSystemInfo fills the SYSTEM_INFO it is given and cannot fail.
    unsafe { GetSystemInfo(info.as_mut_ptr()) };
    // SAFETY: filled above; plain old data.
    u64::from(unsafe { info.assume_init() }.dwAllocationGranularity)
}

pub(crate) fn keep_stdio_from_children() {
    use std::os::windows::io::AsRawHandle;
    use windows_sys::Win32::Foundation::{SetHandleInformation, HANDLE_FLAG_INHERIT};
    let handles = [
        std::io::stdin().as_raw_handle(),
        std::io::stdout().as_raw_handle(),
        std::io::stderr().as_raw_handle(),
    ];
    for h in handles {
        if !h.is_null() {
            // SAFETY: a standard handle of this process (or an invalid value, which makes the
            // call fail harmlessly); clearing the inherit flag changes nothing else.
            unsafe { SetHandleInformation(h as HANDLE, HANDLE_FLAG_INHERIT, 0) };
        }
    }
}

/// `Local\name` or `Global\name` (plus a derived suffix), NUL-terminated UTF-16.
fn wide_name(name: ObjectName<'_>, suffix: &str) -> Vec<u16> {
    let ns = match name.namespace {
        Namespace::Local => "Local\\",
        Namespace::Global => "Global\\",
    };
    format!("{ns}{}{suffix}", name.name)
        .encode_utf16()
        .chain(Some(0))
        .collect()
}

fn last_error() -> io::Error {
    // SAFETY: reads the calling thread's last-error value; no preconditions.
    let code = unsafe { GetLastError() };
    match code {
        ERROR_COMMITMENT_LIMIT | ERROR_NOT_ENOUGH_MEMORY => io::Error::new(
            io::ErrorKind::StorageFull,
            format!(
                "the system commit limit is reached ({})",
                io::Error::from_raw_os_error(code as i32)
            ),
        ),
        _ => io::Error::from_raw_os_error(code as i32),
    }
}

/// A handle closed on drop.
#[derive(Debug)]
pub(crate) struct OwnedHandle(HANDLE);

// SAFETY: kernel handles are process-wide, usable from any thread.
unsafe impl Send for OwnedHandle {}
// SAFETY: see Send; we only pass the handle value to thread-safe Win32 calls.
unsafe impl Sync for OwnedHandle {}

impl OwnedHandle {
    /// Wraps a handle returned by a Win32 call, turning null into the last error.
    fn from_raw(h: HANDLE) -> io::Result<OwnedHandle> {
        if h.is_null() || h == INVALID_HANDLE_VALUE {
            Err(last_error())
        } else {
            Ok(OwnedHandle(h))
        }
    }

    pub(crate) fn raw(&self) -> HANDLE {
        self.0
    }
}

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: we own this handle and close it exactly once.
        unsafe { CloseHandle(self.0) };
    }
}

/// A security descriptor built from SDDL, freed with LocalFree.
struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

impl SecurityDescriptor {
    fn for_mode(mode: u32) -> io::Result<SecurityDescriptor> {
        let sddl = crate::sddl::sddl_for(mode, &current_user_sid()?);
        let wide: Vec<u16> = sddl.encode_utf16().chain(Some(0)).collect();
        let mut sd: PSECURITY_DESCRIPTOR = null_mut();
        // SAFETY: `wide` is a NUL-terminated UTF-16 string alive for the call; `sd` receives a
        // LocalAlloc'ed descriptor that `Drop` frees.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                wide.as_ptr(),
                SDDL_REVISION_1,
                &mut sd,
                null_mut(),
            )
        };
        if ok == 0 {
            return Err(last_error());
        }
        Ok(SecurityDescriptor(sd))
    }

    fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: std::mem::size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        }
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW with
        // LocalAlloc; freed once.
        unsafe { LocalFree(self.0) };
    }
}

/// The current user's SID as a string (`S-1-5-21-...`).
fn current_user_sid() -> io::Result<String> {
    let mut token: HANDLE = null_mut();
    // SAFETY: the pseudo-handle of the current process needs no closing; `token` receives a
    // real handle that `OwnedHandle` closes.
    if unsafe { OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &mut token) } == 0 {
        return Err(last_error());
    }
    let token = OwnedHandle(token);
    let mut buf = vec![0u64; 128]; // 1 KiB, 8-aligned: ample for TOKEN_USER + SID
    let mut len = 0u32;
    // SAFETY: `buf` is writable for the byte length given; `len` receives the size needed.
    let ok = unsafe {
        GetTokenInformation(
            token.raw(),
            TokenUser,
            buf.as_mut_ptr().cast(),
            (buf.len() * 8) as u32,
            &mut len,
        )
    };
    if ok == 0 {
        return Err(last_error());
    }
    // SAFETY: GetTokenInformation(TokenUser) wrote a TOKEN_USER at the start of `buf`, which
    // is 8-aligned and large enough.
    let user = unsafe { &*buf.as_ptr().cast::<TOKEN_USER>() };
    let mut wide: *mut u16 = null_mut();
    // SAFETY: `user.User.Sid` points into `buf` (alive); `wide` receives a LocalAlloc'ed string.
    if unsafe { ConvertSidToStringSidW(user.User.Sid, &mut wide) } == 0 {
        return Err(last_error());
    }
    // SAFETY: `wide` is a NUL-terminated UTF-16 string from the call above.
    let n = (0..).take_while(|&i| unsafe { *wide.add(i) } != 0).count();
    // SAFETY: `n` u16s before the NUL are initialized.
    let s = String::from_utf16_lossy(unsafe { std::slice::from_raw_parts(wide, n) });
    // SAFETY: allocated by ConvertSidToStringSidW with LocalAlloc; freed once.
    unsafe { LocalFree(wide.cast()) };
    Ok(s)
}

/// A Windows section backed by the paging file.
#[derive(Debug)]
pub struct Shm {
    handle: OwnedHandle,
    access: Access,
}

impl SharedMemory for Shm {
    fn create(name: ObjectName<'_>, size: u64, perms: Permissions) -> io::Result<Self> {
        let sd = SecurityDescriptor::for_mode(perms.mode)?;
        let sa = sd.attributes();
        let wide = wide_name(name, "");
        // SAFETY: `sa` and `wide` outlive the call; INVALID_HANDLE_VALUE asks for a section
        // backed by the paging file; SEC_COMMIT commits (reserves) every page now.
        let h = unsafe {
            CreateFileMappingW(
                INVALID_HANDLE_VALUE,
                &sa,
                PAGE_READWRITE | SEC_COMMIT,
                (size >> 32) as u32,
                size as u32,
                wide.as_ptr(),
            )
        };
        // ERROR_ALREADY_EXISTS comes with a valid handle to the existing object.
        // SAFETY: reads the thread's last-error value right after the call.
        let existed = !h.is_null() && unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
        let handle = OwnedHandle::from_raw(h)?;
        if existed {
            return Err(io::Error::from_raw_os_error(ERROR_ALREADY_EXISTS as i32));
        }
        Ok(Shm {
            handle,
            access: Access::ReadWrite,
        })
    }

    fn open(name: ObjectName<'_>, access: Access) -> io::Result<Self> {
        let wide = wide_name(name, "");
        let rights = match access {
            Access::ReadOnly => FILE_MAP_READ,
            Access::ReadWrite => FILE_MAP_READ | FILE_MAP_WRITE,
        };
        // SAFETY: `wide` is NUL-terminated and outlives the call.
        let h = unsafe { OpenFileMappingW(rights, 0, wide.as_ptr()) };
        Ok(Shm {
            handle: OwnedHandle::from_raw(h)?,
            access,
        })
    }

    fn size(&self) -> io::Result<u64> {
        // Only a view tells the size (page-rounded): map it all, ask, unmap.
        let view = map_view(&self.handle, 0, 0, Access::ReadOnly)?;
        Ok(view.len as u64)
    }

    fn map(&self, offset: u64, len: usize, access: Access) -> io::Result<View> {
        if len == 0 {
            return Ok(View {
                ptr: NonNull::dangling(),
                len: 0,
            });
        }
        map_view(&self.handle, offset, len, access)
    }

    fn access(&self) -> Access {
        self.access
    }

    fn remove_if_same(&self, _name: ObjectName<'_>) -> io::Result<()> {
        Ok(())
    }

    fn try_clone(&self) -> io::Result<Self> {
        use windows_sys::Win32::Foundation::{DuplicateHandle, DUPLICATE_SAME_ACCESS};
        let mut dup: HANDLE = null_mut();
        // SAFETY: duplicates a live section handle we own within this process; `dup`
        // receives a new handle that the returned `OwnedHandle` closes.
        let ok = unsafe {
            DuplicateHandle(
                GetCurrentProcess(),
                self.handle.raw(),
                GetCurrentProcess(),
                &mut dup,
                0,
                0,
                DUPLICATE_SAME_ACCESS,
            )
        };
        if ok == 0 {
            return Err(last_error());
        }
        Ok(Shm {
            handle: OwnedHandle::from_raw(dup)?,
            access: self.access,
        })
    }

    fn key(&self) -> io::Result<Option<ObjectKey>> {
        Ok(None)
    }

    fn changed(&self) -> io::Result<Option<std::time::SystemTime>> {
        Ok(None)
    }
}

/// Maps a view; `len == 0` maps everything from `offset` to the end of the section.
pub(crate) fn map_view(
    handle: &OwnedHandle,
    offset: u64,
    len: usize,
    access: Access,
) -> io::Result<View> {
    let rights = match access {
        Access::ReadOnly => FILE_MAP_READ,
        Access::ReadWrite => FILE_MAP_READ | FILE_MAP_WRITE,
    };
    // SAFETY: `handle` is a live section handle; the new view is owned by the `View` below.
    let addr = unsafe {
        MapViewOfFile(
            handle.raw(),
            rights,
            (offset >> 32) as u32,
            offset as u32,
            len,
        )
    };
    let ptr = NonNull::new(addr.Value.cast::<u8>()).ok_or_else(last_error)?;
    let len = if len == 0 {
        let mut info = std::mem::MaybeUninit::<MEMORY_BASIC_INFORMATION>::zeroed();
        // SAFETY: `info` is a writable MEMORY_BASIC_INFORMATION of the size given.
        let n = unsafe {
            VirtualQuery(
                ptr.as_ptr().cast(),
                info.as_mut_ptr(),
                std::mem::size_of::<MEMORY_BASIC_INFORMATION>(),
            )
        };
        if n == 0 {
            let e = last_error();
            // SAFETY: unmapping the view we just mapped and own.
            unsafe {
                UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
                    Value: ptr.as_ptr().cast(),
                })
            };
            return Err(e);
        }
        // SAFETY: VirtualQuery filled `info`.
        unsafe { info.assume_init() }.RegionSize
    } else {
        len
    };
    Ok(View { ptr, len })
}

/// A mapped view. Unmapped on drop.
#[derive(Debug)]
pub struct View {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a `View` is an owned address range; see the module's Safety section.
unsafe impl Send for View {}
// SAFETY: `&View` only hands out raw pointers and the length.
unsafe impl Sync for View {}

impl View {
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
        // SAFETY: this view was mapped by `map_view` and is owned by `self`; unmapped once.
        unsafe {
            UnmapViewOfFile(MEMORY_MAPPED_VIEW_ADDRESS {
                Value: self.ptr.as_ptr().cast(),
            })
        };
    }
}

const HOLD_SUFFIX: &str = "rm";

fn holder_event_name(name: ObjectName<'_>) -> Vec<u16> {
    wide_name(name, &format!("{DERIVED_MARKER}{HOLD_SUFFIX}"))
}

impl Lifetime for Os {
    fn remove(name: ObjectName<'_>) -> io::Result<()> {
        let ev = holder_event_name(name);
        // SAFETY: `ev` is NUL-terminated and outlives the call.
        let h = unsafe { OpenEventW(EVENT_MODIFY_STATE, 0, ev.as_ptr()) };
        if let Ok(event) = OwnedHandle::from_raw(h) {
            // SAFETY: a live event handle opened with EVENT_MODIFY_STATE.
            if unsafe { SetEvent(event.raw()) } == 0 {
                return Err(last_error());
            }
            // The holder now closes its handle; wait (bounded) until the name is gone, so a
            // `create` right after `remove` does not find the old object.
            let deadline = Instant::now() + Duration::from_secs(2);
            while Instant::now() < deadline {
                match Shm::open(name, Access::ReadOnly) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                    _ => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            return Ok(()); // other programs still have it open; it goes when they close it
        }
        match Shm::open(name, Access::ReadOnly) {
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "no shmwire holder keeps it; it disappears when the last program that has it \
                 open closes it",
            )),
            Err(e) => Err(e),
        }
    }

    fn hold_until_removed(name: ObjectName<'_>, ready: &mut dyn FnMut()) -> io::Result<()> {
        let ev = holder_event_name(name);
        let sd = SecurityDescriptor::for_mode(0o600)?;
        let sa = sd.attributes();
        // SAFETY: `sa` and `ev` outlive the call. Manual-reset, initially non-signalled.
        let h = unsafe { CreateEventW(&sa, 1, 0, ev.as_ptr()) };
        // SAFETY: reads the thread's last-error value right after the call.
        let existed = !h.is_null() && unsafe { GetLastError() } == ERROR_ALREADY_EXISTS;
        let event = OwnedHandle::from_raw(h)?;
        if existed {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "another shmwire process already holds it",
            ));
        }
        ready();
        // SAFETY: a live event handle we own.
        match unsafe { WaitForSingleObject(event.raw(), INFINITE) } {
            WAIT_OBJECT_0 => Ok(()),
            _ => Err(last_error()),
        }
    }

    fn list() -> io::Result<Vec<ListedObject>> {
        let mut out = Vec::new();
        for (namespace, name) in list::section_names()? {
            if name.contains(DERIVED_MARKER) {
                continue;
            }
            let oname = ObjectName {
                name: &name,
                namespace,
            };
            // The size needs a view; a section we may not open is listed with size 0.
            let size = Shm::open(oname, Access::ReadOnly)
                .and_then(|s| s.size())
                .unwrap_or(0);
            out.push(ListedObject {
                name,
                size,
                mode: None,
                uid: None,
                global: namespace == Namespace::Global,
            });
        }
        Ok(out)
    }

    fn users() -> io::Result<Option<Users>> {
        // A section lives only while some process has it open: nothing to find out.
        Ok(None)
    }
}
