//! Process identity on POSIX: pid + start time.
//!
//! Linux reads field 22 (`starttime`, clock ticks since boot) of `/proc/<pid>/stat`; macOS asks
//! `proc_pidinfo(PROC_PIDTBSDINFO)` for the start time in microseconds since the epoch.

use crate::{Liveness, ProcessId, Processes};

/// The operating system: implements [`Processes`] and [`crate::Lifetime`].
#[derive(Debug)]
pub struct Os;

impl Processes for Os {
    fn current_process() -> ProcessId {
        let pid = rustix::process::getpid().as_raw_nonzero().get() as u32;
        ProcessId {
            pid,
            start_time: start_time(pid).unwrap_or(0),
        }
    }

    fn liveness(process: ProcessId) -> Liveness {
        match start_time(process.pid) {
            Some(_) if process.start_time == 0 => Liveness::Unknown,
            Some(t) if t == process.start_time => Liveness::Alive,
            Some(_) => Liveness::Dead,
            None => {
                if exists(process.pid) {
                    Liveness::Unknown
                } else {
                    Liveness::Dead
                }
            }
        }
    }
}

/// Whether any process has this pid (`kill(pid, 0)`: EPERM still means it exists).
fn exists(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    !matches!(
        rustix::process::test_kill_process(pid),
        Err(rustix::io::Errno::SRCH)
    )
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat_start_time(&stat)
}

/// Field 22 of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted after the last `)`.
#[cfg(any(target_os = "linux", target_os = "android", test))]
fn parse_stat_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ')' come field 3 (state) onwards: starttime is field 22, the 20th here.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(target_vendor = "apple")]
#[allow(unsafe_code)]
fn start_time(pid: u32) -> Option<u64> {
    let mut info = std::mem::MaybeUninit::<libc::proc_bsdinfo>::zeroed();
    let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
    // SAFETY: `info` is a writable buffer of exactly `size` bytes, as PROC_PIDTBSDINFO needs;
    // the kernel writes at most `size` bytes and returns how many it wrote.
    let n = unsafe {
        libc::proc_pidinfo(
            pid as libc::c_int,
            libc::PROC_PIDTBSDINFO,
            0,
            info.as_mut_ptr().cast(),
            size,
        )
    };
    if n != size {
        return None;
    }
    // SAFETY: the kernel filled the whole struct (n == size); it is plain old data.
    let info = unsafe { info.assume_init() };
    Some(info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_start_time_survives_odd_command_names() {
        let line =
            "1234 (a) b (c)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(parse_stat_start_time(line), Some(987654));
        assert_eq!(parse_stat_start_time("garbage"), None);
        assert_eq!(parse_stat_start_time("1 (x) S 1 2"), None);
    }

    #[test]
    fn current_process_is_alive_and_a_fake_start_time_is_dead() {
        let me = Os::current_process();
        assert_ne!(me.start_time, 0);
        assert_eq!(Os::liveness(me), Liveness::Alive);
        let impostor = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert_eq!(Os::liveness(impostor), Liveness::Dead);
    }
}
