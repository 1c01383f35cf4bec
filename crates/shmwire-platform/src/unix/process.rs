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
        crate::cached_identity(pid, || start_time(pid).unwrap_or(0))
    }

    fn liveness(process: ProcessId) -> Liveness {
        match probe(process.pid) {
            // Ended, waiting to be reaped: it will never run again (nor unlock anything).
            Some(p) if p.zombie => Liveness::Dead,
            Some(_) if process.start_time == 0 => Liveness::Unknown,
            Some(p) if p.start_time == process.start_time => Liveness::Alive,
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

    fn process_exists(pid: u32) -> bool {
        match probe(pid) {
            Some(p) => !p.zombie,
            None => exists(pid),
        }
    }
}

/// What the OS tells of a running (or zombie) process.
struct Probe {
    start_time: u64,
    zombie: bool,
}

fn start_time(pid: u32) -> Option<u64> {
    probe(pid).map(|p| p.start_time)
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

/// Reads `/proc/<pid>/stat` without allocating (liveness checks run inside channel
/// operations, whose `try_` forms promise not to allocate): the path and the contents live
/// on the stack. The line is about 300 bytes (the command name is at most 16); anything
/// past 1 KiB is not read, and a line cut there fails to parse (`None`), as a vanished
/// process does.
#[cfg(linux_like)]
fn probe(pid: u32) -> Option<Probe> {
    use std::io::Write;
    let mut path = [0u8; 32];
    let mut cursor = std::io::Cursor::new(&mut path[..]);
    write!(cursor, "/proc/{pid}/stat").ok()?;
    let n = usize::try_from(cursor.position()).ok()?;
    let path = std::str::from_utf8(&path[..n]).ok()?;
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 1024];
    let mut len = 0;
    while len < buf.len() {
        match rustix::io::read(&fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => len += n,
            Err(rustix::io::Errno::INTR) => {}
            Err(_) => return None,
        }
    }
    // Fields after the command name are ASCII; the name itself may be any bytes.
    let close = buf[..len].iter().rposition(|&b| b == b')')?;
    let stat = std::str::from_utf8(&buf[close..len]).ok()?;
    Some(Probe {
        start_time: parse_stat_start_time(stat)?,
        zombie: matches!(parse_stat_state(stat), Some('Z' | 'X' | 'x')),
    })
}

/// Field 3 of `/proc/<pid>/stat`: the state letter (`Z` zombie, `X`/`x` dead).
#[cfg(any(linux_like, test))]
fn parse_stat_state(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_ascii_whitespace().next()?.chars().next()
}

/// Field 22 of `/proc/<pid>/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted after the last `)`.
#[cfg(any(linux_like, test))]
fn parse_stat_start_time(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // After ')' come field 3 (state) onwards: starttime is field 22, the 20th here.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

#[cfg(target_vendor = "apple")]
#[allow(unsafe_code)]
fn probe(pid: u32) -> Option<Probe> {
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
    Some(Probe {
        start_time: info.pbi_start_tvsec * 1_000_000 + info.pbi_start_tvusec,
        zombie: info.pbi_status == libc::SZOMB,
    })
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
        assert_eq!(parse_stat_state(line), Some('S'));
        assert_eq!(parse_stat_state("7 (a) b) Z 1"), Some('Z'));
        assert_eq!(parse_stat_state("garbage"), None);
    }

    #[cfg(linux_like)]
    #[test]
    fn a_zombie_is_dead_and_does_not_exist() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        // Not reaped yet: it becomes a zombie once it exits.
        while probe(pid).is_some_and(|p| !p.zombie) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        let p = probe(pid).expect("an unreaped child is still in /proc");
        assert!(p.zombie);
        let id = ProcessId {
            pid,
            start_time: p.start_time,
        };
        assert_eq!(Os::liveness(id), Liveness::Dead);
        assert!(!Os::process_exists(pid));
        child.wait().unwrap();
        assert!(Os::process_exists(std::process::id()));
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
