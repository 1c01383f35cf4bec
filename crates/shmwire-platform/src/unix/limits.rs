//! The limits a create can run into: the room in `/dev/shm` and the number of open files.

use std::io;

use crate::ShmSpace;

/// `EMFILE` (this process) or `ENFILE` (the system).
pub(crate) fn is_too_many_open(e: &io::Error) -> bool {
    use rustix::io::Errno;
    let code = e.raw_os_error();
    code == Some(Errno::MFILE.raw_os_error()) || code == Some(Errno::NFILE.raw_os_error())
}

/// `statvfs("/dev/shm")`, plus RAM + swap from `/proc/meminfo`.
#[cfg(linux_like)]
pub(crate) fn shm_space() -> io::Result<Option<ShmSpace>> {
    const PATH: &str = "/dev/shm";
    let st = rustix::fs::statvfs(PATH)?;
    if st.f_blocks == 0 {
        // A tmpfs mounted with size=0 has no limit of its own (only memory).
        return Ok(None);
    }
    let unit = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    };
    Ok(Some(ShmSpace {
        path: PATH,
        total: st.f_blocks.saturating_mul(unit),
        free: st.f_bavail.saturating_mul(unit),
        // tmpfs reports 0 files when mounted with nr_inodes=0 (no limit).
        max_objects: (st.f_files > 0).then_some(st.f_files),
        free_objects: st.f_ffree,
        memory: memory(),
    }))
}

/// POSIX systems without `/dev/shm` (macOS) have no filesystem limit of their own.
#[cfg(not(linux_like))]
pub(crate) fn shm_space() -> io::Result<Option<ShmSpace>> {
    Ok(None)
}

/// `MemTotal` + `SwapTotal` of `/proc/meminfo`, in bytes.
#[cfg(linux_like)]
fn memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib = |key: &str| -> Option<u64> {
        let rest = text.lines().find_map(|l| l.strip_prefix(key))?;
        rest.trim().strip_suffix("kB")?.trim().parse().ok()
    };
    let total = kib("MemTotal:")?.saturating_add(kib("SwapTotal:").unwrap_or(0));
    Some(total.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustix::io::Errno;

    #[test]
    fn out_of_descriptors_is_recognized_and_nothing_else() {
        for e in [Errno::MFILE, Errno::NFILE] {
            assert!(is_too_many_open(&io::Error::from_raw_os_error(
                e.raw_os_error()
            )));
        }
        for e in [Errno::NOSPC, Errno::NOMEM, Errno::ACCESS] {
            assert!(!is_too_many_open(&io::Error::from_raw_os_error(
                e.raw_os_error()
            )));
        }
        assert!(!is_too_many_open(&io::Error::other("no code")));
    }

    /// Compared with what `df` would say: the numbers come from the filesystem mounted on
    /// `/dev/shm`, whatever that is here.
    #[cfg(linux_like)]
    #[test]
    fn dev_shm_space_is_that_of_its_filesystem() {
        let st = rustix::fs::statvfs("/dev/shm").expect("/dev/shm exists on Linux");
        match shm_space().unwrap() {
            None => assert_eq!(st.f_blocks, 0, "only an unlimited tmpfs gives None"),
            Some(s) => {
                assert_eq!(s.path, "/dev/shm");
                assert_eq!(s.total, st.f_blocks * st.f_frsize);
                assert!(s.free <= s.total);
                assert_eq!(s.max_objects, (st.f_files > 0).then_some(st.f_files));
                assert!(s.memory.is_some_and(|m| m > 0), "{s:?}");
            }
        }
    }
}
