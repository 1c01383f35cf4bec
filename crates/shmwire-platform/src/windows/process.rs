//! Process identity on Windows: pid + creation time (`GetProcessTimes`).

use windows_sys::Win32::Foundation::{FILETIME, STILL_ACTIVE};
use windows_sys::Win32::System::Threading::{
    GetCurrentProcessId, GetExitCodeProcess, GetProcessTimes, OpenProcess,
    PROCESS_QUERY_LIMITED_INFORMATION,
};

use super::OwnedHandle;
use crate::{Liveness, ProcessId, Processes};

/// The operating system: implements [`Processes`] and [`crate::Lifetime`].
#[derive(Debug)]
pub struct Os;

/// What `OpenProcess` + `GetProcessTimes` + `GetExitCodeProcess` tell of a pid.
enum Probe {
    Running { start_time: u64 },
    Exited,
    NoSuchProcess,
    NoAccess,
}

fn probe(pid: u32) -> Probe {
    // SAFETY: plain call; the returned handle (if any) is owned below.
    let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    let handle = match OwnedHandle::from_raw(h) {
        Ok(h) => h,
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Probe::NoAccess,
        Err(_) => return Probe::NoSuchProcess,
    };
    let zero = FILETIME {
        dwLowDateTime: 0,
        dwHighDateTime: 0,
    };
    let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
    // SAFETY: four writable FILETIMEs and a live process handle.
    let ok = unsafe {
        GetProcessTimes(
            handle.raw(),
            &mut created,
            &mut exited,
            &mut kernel,
            &mut user,
        )
    };
    if ok == 0 {
        return Probe::NoAccess;
    }
    let mut code = 0u32;
    // SAFETY: a writable u32 and a live process handle.
    if unsafe { GetExitCodeProcess(handle.raw(), &mut code) } == 0 {
        return Probe::NoAccess;
    }
    if code != STILL_ACTIVE as u32 {
        return Probe::Exited;
    }
    Probe::Running {
        start_time: (u64::from(created.dwHighDateTime) << 32) | u64::from(created.dwLowDateTime),
    }
}

impl Processes for Os {
    fn current_process() -> ProcessId {
        // SAFETY: no preconditions.
        let pid = unsafe { GetCurrentProcessId() };
        crate::cached_identity(pid, || match probe(pid) {
            Probe::Running { start_time } => start_time,
            _ => 0,
        })
    }

    fn liveness(process: ProcessId) -> Liveness {
        match probe(process.pid) {
            Probe::Running { .. } if process.start_time == 0 => Liveness::Unknown,
            Probe::Running { start_time } if start_time == process.start_time => Liveness::Alive,
            Probe::Running { .. } | Probe::Exited | Probe::NoSuchProcess => Liveness::Dead,
            Probe::NoAccess => Liveness::Unknown,
        }
    }

    fn process_exists(pid: u32) -> bool {
        matches!(probe(pid), Probe::Running { .. } | Probe::NoAccess)
    }
}
