//! Who maps or holds open which shared-memory object: `/proc` on Linux; unknown on macOS.
//!
//! Linux puts the objects of `shm_open` in the tmpfs mounted on `/dev/shm`. A process uses
//! one if a line of `/proc/<pid>/maps` maps a file of that filesystem (matched by device
//! `major:minor` and inode, so a name taken by a newer object, or a mapping of an unlinked
//! one, is not confused with it), or if one of the links in `/proc/<pid>/fd` points into
//! `/dev/shm` at a file with its device and inode. Reading another user's (or a more
//! privileged) process's entries fails with `EACCES`: such processes are reported as unseen,
//! except kernel threads (flag `PF_KTHREAD` in `/proc/<pid>/stat`), which map no shared
//! memory. A process that ends while we look at it is skipped.

use std::io;

use crate::Users;

#[cfg(linux_like)]
pub(super) fn users() -> io::Result<Option<Users>> {
    linux::scan().map(Some)
}

#[cfg(not(linux_like))]
pub(super) fn users() -> io::Result<Option<Users>> {
    Ok(None)
}

#[cfg(any(linux_like, test))]
mod parse {
    /// The inode of a `/proc/<pid>/maps` line if it maps a file of device `major:minor`.
    ///
    /// A line is `start-end perms offset major:minor inode [path]`, the numbers of the device
    /// in hex, the inode in decimal.
    pub(super) fn maps_line_inode(line: &str, major: u32, minor: u32) -> Option<u64> {
        let mut fields = line.split_ascii_whitespace();
        let dev = fields.nth(3)?;
        let inode = fields.next()?;
        let (maj, min) = dev.split_once(':')?;
        let same = u32::from_str_radix(maj, 16).ok()? == major
            && u32::from_str_radix(min, 16).ok()? == minor;
        let inode: u64 = inode.parse().ok()?;
        (same && inode != 0).then_some(inode)
    }

    /// Whether `/proc/<pid>/stat` describes a kernel thread (`PF_KTHREAD` in field 9, the
    /// flags). Fields are counted after the last `)`, since the command name may contain
    /// spaces and parentheses.
    pub(super) fn is_kernel_thread(stat: &str) -> bool {
        const PF_KTHREAD: u64 = 0x0020_0000;
        let Some(at) = stat.rfind(')') else {
            return false;
        };
        // After ')': field 3 (state) onwards; the flags are field 9, the 7th here.
        stat[at + 1..]
            .split_ascii_whitespace()
            .nth(6)
            .and_then(|f| f.parse::<u64>().ok())
            .is_some_and(|flags| flags & PF_KTHREAD != 0)
    }
}

#[cfg(linux_like)]
mod linux {
    use std::fs;
    use std::io;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::os::unix::fs::MetadataExt;
    use std::path::PathBuf;

    use super::parse;
    use crate::{ObjectKey, UnseenProcess, Users};

    /// Where `shm_open` keeps its objects.
    const SHM_DIR: &str = "/dev/shm";

    pub(super) fn scan() -> io::Result<Users> {
        let dir = fs::canonicalize(SHM_DIR)?;
        let device = fs::metadata(&dir)?.dev();
        let mut prefix = dir.into_os_string().into_vec();
        prefix.push(b'/');
        let fs = Filesystem {
            device,
            major: rustix::fs::major(device),
            minor: rustix::fs::minor(device),
            prefix,
        };
        let me = std::process::id();
        let mut users = Users::default();
        for entry in fs::read_dir("/proc")? {
            let Ok(entry) = entry else { continue };
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            match fs.look_at(pid, pid == me, &mut users) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                    let stat = fs::read_to_string(format!("/proc/{pid}/stat"));
                    match stat {
                        Ok(stat) if parse::is_kernel_thread(&stat) => {}
                        // Gone meanwhile.
                        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                        _ => users.add_unseen(UnseenProcess {
                            pid,
                            name: fs::read_to_string(format!("/proc/{pid}/comm"))
                                .ok()
                                .map(|s| s.trim_end().to_owned()),
                        }),
                    }
                }
                // Ended while we looked (ENOENT, ESRCH): it uses nothing any more.
                Err(_) => {}
            }
        }
        Ok(users)
    }

    /// The filesystem of `/dev/shm`.
    struct Filesystem {
        device: u64,
        major: u32,
        minor: u32,
        /// Its canonical path with a trailing '/'.
        prefix: Vec<u8>,
    }

    impl Filesystem {
        /// Records what process `pid` maps (and, unless it is this process, holds open).
        fn look_at(&self, pid: u32, me: bool, users: &mut Users) -> io::Result<()> {
            let maps = fs::read_to_string(format!("/proc/{pid}/maps"))?;
            for line in maps.lines() {
                if let Some(inode) = parse::maps_line_inode(line, self.major, self.minor) {
                    users.add(ObjectKey::new(self.device, inode), pid);
                }
            }
            if me {
                // Our own descriptors include the caller's handle to the object it asks
                // about; a use of ours shows as a mapping.
                return Ok(());
            }
            for fd in fs::read_dir(format!("/proc/{pid}/fd"))? {
                let path: PathBuf = fd?.path();
                let target = match fs::read_link(&path) {
                    Ok(t) => t,
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => return Err(e),
                    Err(_) => continue, // closed meanwhile
                };
                if !target.as_os_str().as_bytes().starts_with(&self.prefix) {
                    continue;
                }
                // The link resolves to the open file itself, even if its name was removed.
                if let Ok(m) = fs::metadata(&path) {
                    if m.dev() == self.device {
                        users.add(ObjectKey::new(m.dev(), m.ino()), pid);
                    }
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse::*;

    #[test]
    fn maps_lines_are_matched_by_device_and_inode() {
        let line = "7f561520b000-7f561520c000 rw-s 00000000 00:1b 343615                     \
                    /dev/shm/a name (deleted)";
        assert_eq!(maps_line_inode(line, 0, 0x1b), Some(343615));
        assert_eq!(maps_line_inode(line, 0, 0x1c), None);
        assert_eq!(maps_line_inode(line, 1, 0x1b), None);
        // Anonymous mappings have inode 0; long device numbers print wider than 2 digits.
        assert_eq!(
            maps_line_inode("7f00-7f01 rw-p 00000000 00:00 0", 0, 0),
            None
        );
        assert_eq!(
            maps_line_inode("7f00-7f01 r--s 00000000 103:1f2 77 /x", 0x103, 0x1f2),
            Some(77)
        );
        assert_eq!(maps_line_inode("garbage", 0, 0), None);
        assert_eq!(maps_line_inode("a b c zz:1 5", 0, 1), None);
    }

    #[test]
    fn kernel_threads_are_told_by_their_flags() {
        let kthread = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 7 0 0";
        let user = "77 (a) b) S 1 77 77 0 -1 4194560 10 0 0 0 0 0 0 0 20 0 1 0 9 0 0";
        assert!(is_kernel_thread(kthread));
        assert!(!is_kernel_thread(user));
        assert!(!is_kernel_thread("garbage"));
    }
}
