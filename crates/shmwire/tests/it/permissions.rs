//! Who may open a segment: the mode bits of its creator, enforced by the OS for another user.
//!
//! The creator is this test process, running as root (as CI does); the other user is a child
//! re-executing this test binary as `nobody` (uid and gid 65534, no supplementary groups;
//! `std`'s `CommandExt::uid` drops them). Without root the tests skip and say so.
//!
//! The child must be able to execute the test binary: if a directory on the way to `target/`
//! is closed to others, it runs a copy in a scratch directory (mode 0755) instead.
//!
//! Windows ACLs are not enforced under Wine; the DACL built from a mode is unit-tested in
//! `shmwire-platform` (`sddl.rs`) on every platform.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{self, child_segment, is_root, pattern, report, spawn_command, Cleanup};
use shmwire::{
    Access, AccessError, CreateError, OpenError, OpenOrCreateError, RemoveError, Segment,
    SegmentOptions,
};

const NOBODY: u32 = 65534;
const SIZE: u64 = 8192;

/// The child processes' roles (see `child_entry` in `main.rs`).
pub(crate) const CHILDREN: &[crate::Role] = &[
    ("owner-only", child_owner_only),
    ("read-for-others", child_read_for_others),
    ("write-for-others", child_write_for_others),
];

/// The test binary at a path `nobody` can execute, and the scratch directory of the copy if
/// one was needed (removed on drop).
struct Executable {
    path: PathBuf,
    scratch: Option<PathBuf>,
}

impl Executable {
    fn for_nobody() -> Executable {
        let exe = std::env::current_exe().expect("current test binary");
        if runs_as_nobody(&exe) {
            return Executable {
                path: exe,
                scratch: None,
            };
        }
        let dir = std::env::temp_dir().join(common::unique_name("exe"));
        std::fs::create_dir(&dir).unwrap();
        let scratch = Executable {
            path: dir.join("permissions-test"),
            scratch: Some(dir.clone()),
        };
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::copy(&exe, &scratch.path).unwrap();
        std::fs::set_permissions(&scratch.path, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(
            runs_as_nobody(&scratch.path),
            "nobody cannot run {} either",
            scratch.path.display()
        );
        scratch
    }

    /// This binary's `child_entry` as `nobody`, playing `role` on segment `name`.
    fn spawn_as_nobody(&self, role: &str, name: &str) -> common::ChildProc {
        let mut cmd = Command::new(&self.path);
        cmd.args(common::CHILD_ARGS).uid(NOBODY).gid(NOBODY);
        spawn_command(cmd, role, name, &[])
    }
}

impl Drop for Executable {
    fn drop(&mut self) {
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

fn runs_as_nobody(exe: &Path) -> bool {
    Command::new(exe)
        .arg("--list")
        .uid(NOBODY)
        .gid(NOBODY)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The permissions of this process's mapping of `/dev/shm/<name>` (`r--s`, `rw-s`), from
/// `/proc/self/maps`: what the OS enforces on every access.
fn mapping_permissions(name: &str) -> String {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let path = format!("/dev/shm/{name}");
    let perms: Vec<&str> = maps
        .lines()
        .filter(|l| l.split_whitespace().nth(5) == Some(path.as_str()))
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert_eq!(perms.len(), 1, "one mapping of {path}: {perms:?}");
    perms[0].to_owned()
}

/// Creates a segment with `mode`, filled with a known pattern.
fn create(c: &Cleanup, mode: u32) -> Segment {
    let seg = SegmentOptions::new()
        .mode(mode)
        .create(c.name(), SIZE)
        .unwrap();
    seg.write_at(0, &pattern(1, SIZE as usize)).unwrap();
    let meta = std::fs::metadata(Path::new("/dev/shm").join(c.name())).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, mode);
    assert_eq!((meta.uid(), meta.gid()), (0, 0));
    seg
}

fn assert_untouched(seg: &Segment) {
    let mut buf = vec![0; SIZE as usize];
    seg.read_at(0, &mut buf).unwrap();
    assert!(
        buf == pattern(1, buf.len()),
        "another user changed the bytes"
    );
}

// ------------------------------------------------------------------- 0600 (the default)

/// Child as nobody: no way in, and every refusal is `PermissionDenied` naming the segment.
fn child_owner_only() {
    let name = child_segment();
    for opts in [
        SegmentOptions::new(),
        SegmentOptions::new().read_only(true),
        SegmentOptions::new().raw(true).read_only(true),
    ] {
        match opts.open(&name) {
            Err(OpenError::PermissionDenied { name: n, source }) => {
                assert_eq!(n, name);
                assert_eq!(source.kind(), std::io::ErrorKind::PermissionDenied);
            }
            other => panic!("nobody opened root's 0600 segment: {other:?}"),
        }
    }
    let err = Segment::open_read_only(&name).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("permission denied opening segment {name:?}")
    );
    assert!(matches!(
        SegmentOptions::new().inspect(&name),
        Err(OpenError::PermissionDenied { .. })
    ));
    // It exists: creating it is refused as such, opening-or-creating it is denied.
    assert!(matches!(
        Segment::create(&name, SIZE),
        Err(CreateError::AlreadyExists { .. })
    ));
    assert!(matches!(
        SegmentOptions::new().open_or_create(&name, SIZE, |_| panic!("init ran")),
        Err(OpenOrCreateError::Open(OpenError::PermissionDenied { .. }))
    ));
    // /dev/shm is sticky: only the owner (or root) removes a name.
    assert!(matches!(
        SegmentOptions::new().remove(&name),
        Err(RemoveError::PermissionDenied { .. })
    ));
    report("refused", "all");
}

#[test]
fn another_user_cannot_open_an_owner_only_segment() {
    require!(
        "root",
        is_root(),
        "needs root, to run a child as another user"
    );
    let exe = Executable::for_nobody();
    let c = Cleanup::unique("perm600");
    let seg = create(&c, 0o600);
    let mut child = exe.spawn_as_nobody("owner-only", c.name());
    assert_eq!(child.expect_report("refused"), "all");
    child.wait_success();
    assert_untouched(&seg);
    assert!(common::dev_shm_has(c.name()), "nobody removed it");
}

// ------------------------------------------------------------------------------- 0644

/// Child as nobody: may open read-only and read; may not open read-write; a read-only
/// segment refuses writes in the API and is mapped without write permission.
fn child_read_for_others() {
    let name = child_segment();
    for opts in [SegmentOptions::new(), SegmentOptions::new().raw(true)] {
        assert!(
            matches!(opts.open(&name), Err(OpenError::PermissionDenied { .. })),
            "nobody opened a 0644 segment read-write"
        );
    }
    let seg = Segment::open_read_only(&name).expect("others may read a 0644 segment");
    assert_eq!(seg.access(), Access::ReadOnly);
    let mut buf = vec![0; SIZE as usize];
    seg.read_at(0, &mut buf).unwrap();
    assert!(buf == pattern(1, buf.len()), "nobody reads root's bytes");
    assert_eq!(
        seg.write_at(0, b"nobody"),
        Err(AccessError::ReadOnly { name: name.clone() })
    );
    assert!(seg.as_mut_ptr().is_none());
    assert!(seg.atomic_u32(0).is_none() && seg.atomic_u64(0).is_none());
    // The OS side: the pages are mapped read-only (a write through a raw pointer would
    // fault; `multiprocess.rs` shows that with a child that tries).
    assert_eq!(mapping_permissions(&name), "r--s");
    report("read", "ok");
}

#[test]
fn another_user_may_only_read_a_segment_made_readable_to_others() {
    require!(
        "root",
        is_root(),
        "needs root, to run a child as another user"
    );
    let exe = Executable::for_nobody();
    let c = Cleanup::unique("perm644");
    let seg = create(&c, 0o644);
    let mut child = exe.spawn_as_nobody("read-for-others", c.name());
    assert_eq!(child.expect_report("read"), "ok");
    child.wait_success();
    assert_untouched(&seg);
}

// ------------------------------------------------------------------------------- 0666

/// Child as nobody: opens read-write and writes.
fn child_write_for_others() {
    let name = child_segment();
    let seg = Segment::open(&name).expect("others may write a 0666 segment");
    assert_eq!(seg.access(), Access::ReadWrite);
    assert_eq!(mapping_permissions(&name), "rw-s");
    seg.write_at(0, b"nobody").unwrap();
    report("wrote", "ok");
}

#[test]
fn another_user_may_write_a_segment_made_writable_to_others() {
    require!(
        "root",
        is_root(),
        "needs root, to run a child as another user"
    );
    let exe = Executable::for_nobody();
    let c = Cleanup::unique("perm666");
    let seg = create(&c, 0o666);
    let mut child = exe.spawn_as_nobody("write-for-others", c.name());
    assert_eq!(child.expect_report("wrote"), "ok");
    child.wait_success();
    let mut buf = [0; 6];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"nobody");
}

// ------------------------------------------------------------- the owner's own handles

/// For the owner too, read-only is enforced by the page protection, not only by the API.
#[test]
fn a_read_only_open_is_mapped_without_write_permission() {
    let c = Cleanup::unique("perm-ro");
    let _seg = create(&c, 0o600);
    let ro = Segment::open_read_only(c.name()).unwrap();
    assert_eq!(ro.access(), Access::ReadOnly);
    let rw_and_ro = std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter(|l| l.ends_with(&format!("/dev/shm/{}", c.name())))
        .map(|l| l.split_whitespace().nth(1).unwrap().to_owned())
        .collect::<Vec<_>>();
    // The creator's mapping and the read-only one, in whichever order they were placed.
    let mut sorted = rw_and_ro.clone();
    sorted.sort();
    assert_eq!(sorted, ["r--s", "rw-s"], "{rw_and_ro:?}");
    assert!(matches!(
        ro.write_at(0, b"x"),
        Err(AccessError::ReadOnly { .. })
    ));
}
