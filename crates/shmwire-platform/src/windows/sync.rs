//! Named kernel mutexes, events and semaphores on Windows, and the polling fallback for word
//! waits (`WaitOnAddress` wakes only threads of the same process, so it cannot serve).
//!
//! Object names are `<Local\|Global\><segment>~shmwire-<tag>`: the marker keeps them apart
//! from every mapping name (kernel objects of all types share one namespace). New objects get
//! the owner-only DACL of `SecurityDescriptor::for_mode(0o600)`.
//!
//! The unsafe calls follow the module-level contract of `windows/mod.rs`: NUL-terminated
//! UTF-16 names and security attributes that outlive each call, handles owned by
//! `OwnedHandle`.

use std::io;
use std::ptr::null_mut;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use windows_sys::Win32::Foundation::{
    GetLastError, ERROR_ACCESS_DENIED, ERROR_ALREADY_EXISTS, ERROR_TOO_MANY_POSTS, HANDLE,
    WAIT_ABANDONED, WAIT_EVENT, WAIT_FAILED, WAIT_OBJECT_0, WAIT_TIMEOUT,
};
use windows_sys::Win32::System::Threading::{
    CreateEventW, CreateMutexW, CreateSemaphoreW, OpenEventW, OpenMutexW, OpenSemaphoreW,
    ReleaseMutex, ReleaseSemaphore, ResetEvent, SetEvent, WaitForSingleObject, EVENT_MODIFY_STATE,
    INFINITE, MUTEX_MODIFY_STATE, SEMAPHORE_MODIFY_STATE, SYNCHRONIZATION_SYNCHRONIZE,
};

use super::{last_error, wide_name, OwnedHandle, SecurityDescriptor};
use crate::sync::{
    derived_suffix, KernelEvent, KernelMutex, KernelSemaphore, MutexAcquired, WaitOutcome,
};
use crate::{ObjectName, Os, WordWait};

pub(crate) const KERNEL_SYNC_OBJECTS: bool = true;
pub(crate) const WORD_WAIT_MECHANISM: &str = "polling (Windows: WaitOnAddress is process-local)";

impl WordWait for Os {
    fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> WaitOutcome {
        crate::sync::poll_wait(word, expected, timeout)
    }

    fn wake(_word: &AtomicU32, _n: u32) -> usize {
        0
    }
}

fn derived(name: ObjectName<'_>, tag: &str) -> Vec<u16> {
    wide_name(name, &derived_suffix(tag))
}

/// Milliseconds for `WaitForSingleObject`, rounded up so a short timeout still waits.
fn millis(timeout: Option<Duration>) -> u32 {
    match timeout {
        None => INFINITE,
        Some(t) => {
            let ms = t.as_nanos().div_ceil(1_000_000);
            // INFINITE is u32::MAX: longer waits are capped just below it (~49 days).
            ms.min(u128::from(INFINITE - 1)) as u32
        }
    }
}

/// Waits for an event or semaphore: `true` signalled, `false` timed out.
fn wait_signalled(h: HANDLE, timeout: Option<Duration>) -> io::Result<bool> {
    match wait_handle(h, timeout)? {
        WAIT_OBJECT_0 => Ok(true),
        WAIT_TIMEOUT => Ok(false),
        other => Err(io::Error::other(format!(
            "WaitForSingleObject returned {other:#x}"
        ))),
    }
}

fn wait_handle(h: HANDLE, timeout: Option<Duration>) -> io::Result<WAIT_EVENT> {
    // SAFETY: `h` is a live handle owned by the caller's object for the whole call.
    let r = unsafe { WaitForSingleObject(h, millis(timeout)) };
    if r == WAIT_FAILED {
        Err(last_error())
    } else {
        Ok(r)
    }
}

/// Creates-or-opens through `create`; if the object exists but its DACL refuses the full
/// access `Create*W` asks for, opens it with only the rights we use through `open`.
fn create_or_open(
    create: impl FnOnce(&windows_sys::Win32::Security::SECURITY_ATTRIBUTES) -> HANDLE,
    open: impl FnOnce() -> HANDLE,
) -> io::Result<(OwnedHandle, bool)> {
    let sd = SecurityDescriptor::for_mode(0o600)?;
    let sa = sd.attributes();
    let h = create(&sa);
    // SAFETY: reads the thread's last-error value right after the call.
    let code = unsafe { GetLastError() };
    if !h.is_null() {
        return Ok((OwnedHandle(h), code != ERROR_ALREADY_EXISTS));
    }
    if code == ERROR_ACCESS_DENIED {
        return Ok((OwnedHandle::from_raw(open())?, false));
    }
    Err(io::Error::from_raw_os_error(code as i32))
}

/// A named Windows mutex (`CreateMutexW`).
#[derive(Debug)]
pub struct NamedMutex(OwnedHandle);

impl KernelMutex for NamedMutex {
    fn open_or_create(name: ObjectName<'_>, tag: &str) -> io::Result<Self> {
        let wide = derived(name, tag);
        let (h, _) = create_or_open(
            // SAFETY: `sa` and `wide` outlive the call; not initially owned.
            |sa| unsafe { CreateMutexW(sa, 0, wide.as_ptr()) },
            // SAFETY: `wide` is NUL-terminated and outlives the call.
            || unsafe {
                OpenMutexW(
                    SYNCHRONIZATION_SYNCHRONIZE | MUTEX_MODIFY_STATE,
                    0,
                    wide.as_ptr(),
                )
            },
        )?;
        Ok(NamedMutex(h))
    }

    fn lock(&self, timeout: Option<Duration>) -> io::Result<Option<MutexAcquired>> {
        match wait_handle(self.0.raw(), timeout)? {
            WAIT_OBJECT_0 => Ok(Some(MutexAcquired::Normally)),
            WAIT_ABANDONED => Ok(Some(MutexAcquired::Abandoned)),
            WAIT_TIMEOUT => Ok(None),
            other => Err(io::Error::other(format!(
                "WaitForSingleObject returned {other:#x}"
            ))),
        }
    }

    fn unlock(&self) -> io::Result<()> {
        // SAFETY: a live mutex handle we own; fails (ERROR_NOT_OWNER) if this thread does not
        // own the mutex, which we report.
        if unsafe { ReleaseMutex(self.0.raw()) } == 0 {
            return Err(last_error());
        }
        Ok(())
    }
}

/// A named Windows event (`CreateEventW`).
#[derive(Debug)]
pub struct NamedEvent(OwnedHandle);

impl KernelEvent for NamedEvent {
    fn open_or_create(
        name: ObjectName<'_>,
        tag: &str,
        manual_reset: bool,
        initially_set: bool,
    ) -> io::Result<(Self, bool)> {
        let wide = derived(name, tag);
        let (h, created) = create_or_open(
            // SAFETY: `sa` and `wide` outlive the call.
            |sa| unsafe {
                CreateEventW(
                    sa,
                    i32::from(manual_reset),
                    i32::from(initially_set),
                    wide.as_ptr(),
                )
            },
            // SAFETY: `wide` is NUL-terminated and outlives the call.
            || unsafe {
                OpenEventW(
                    SYNCHRONIZATION_SYNCHRONIZE | EVENT_MODIFY_STATE,
                    0,
                    wide.as_ptr(),
                )
            },
        )?;
        Ok((NamedEvent(h), created))
    }

    fn set(&self) -> io::Result<()> {
        // SAFETY: a live event handle we own.
        if unsafe { SetEvent(self.0.raw()) } == 0 {
            return Err(last_error());
        }
        Ok(())
    }

    fn reset(&self) -> io::Result<()> {
        // SAFETY: a live event handle we own.
        if unsafe { ResetEvent(self.0.raw()) } == 0 {
            return Err(last_error());
        }
        Ok(())
    }

    fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        wait_signalled(self.0.raw(), timeout)
    }
}

/// A named Windows semaphore (`CreateSemaphoreW`).
#[derive(Debug)]
pub struct NamedSemaphore(OwnedHandle);

impl KernelSemaphore for NamedSemaphore {
    fn open_or_create(
        name: ObjectName<'_>,
        tag: &str,
        initial: u32,
        max: u32,
    ) -> io::Result<(Self, bool)> {
        let wide = derived(name, tag);
        let max = max.clamp(1, i32::MAX as u32) as i32;
        let initial = (initial.min(i32::MAX as u32) as i32).min(max);
        let (h, created) = create_or_open(
            // SAFETY: `sa` and `wide` outlive the call; 0 <= initial <= max, max >= 1.
            |sa| unsafe { CreateSemaphoreW(sa, initial, max, wide.as_ptr()) },
            // SAFETY: `wide` is NUL-terminated and outlives the call.
            || unsafe {
                OpenSemaphoreW(
                    SYNCHRONIZATION_SYNCHRONIZE | SEMAPHORE_MODIFY_STATE,
                    0,
                    wide.as_ptr(),
                )
            },
        )?;
        Ok((NamedSemaphore(h), created))
    }

    fn post(&self, n: u32) -> io::Result<()> {
        let n = i32::try_from(n).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, "too many permits in one post")
        })?;
        // SAFETY: a live semaphore handle we own; the previous count is not asked for.
        if unsafe { ReleaseSemaphore(self.0.raw(), n, null_mut()) } == 0 {
            // SAFETY: reads the thread's last-error value right after the call.
            let code = unsafe { GetLastError() };
            if code == ERROR_TOO_MANY_POSTS {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the semaphore would exceed its maximum count",
                ));
            }
            return Err(io::Error::from_raw_os_error(code as i32));
        }
        Ok(())
    }

    fn wait(&self, timeout: Option<Duration>) -> io::Result<bool> {
        wait_signalled(self.0.raw(), timeout)
    }
}
