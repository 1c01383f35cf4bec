//! Running out: a `/dev/shm` too small or full, too many objects, too many open files, no
//! address space. Each must be a typed error at create time that says what to do, and leave
//! nothing behind.
//!
//! The real `/dev/shm` is never filled (other tests run beside these). Requests larger than
//! its *size* fail before the kernel reserves a single page (tmpfs refuses at once a
//! `fallocate` larger than the whole filesystem). Genuinely full filesystems are made in a
//! child process with a private mount namespace (`unshare -m`) and a tiny tmpfs of its own on
//! `/dev/shm`, which vanishes with the child. Those tests need root (or `CAP_SYS_ADMIN`) and
//! say so when they skip.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crate::common::{self, child_segment, pattern, report, spawn_command, Cleanup};
use shmwire::{CreateError, OpenError, Segment, SegmentOptions};

const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// The child processes' roles (see `child_entry` in `main.rs`).
pub(crate) const CHILDREN: &[crate::Role] = &[
    ("fill", child_fill),
    ("objects", child_objects),
    ("no-address-space", child_no_address_space),
    ("open-files", child_open_files),
];

// ------------------------------------------------------------------------------ helpers

/// Whether this process may make a private mount namespace with its own tmpfs on `/dev/shm`
/// (probed once, in a throw-away namespace).
fn private_shm_works() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c"])
            .arg("mount -t tmpfs -o size=1m swt-probe /dev/shm")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A command that runs this test binary's `child_entry` in a private mount namespace whose
/// `/dev/shm` is a fresh tmpfs mounted with `options`.
fn in_private_shm(options: &str) -> Command {
    let exe = std::env::current_exe().expect("current test binary");
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c"])
        .arg(format!(
            "mount -t tmpfs -o {options} swt-private /dev/shm && exec \"$0\" \"$@\""
        ))
        .arg(exe)
        .args(common::CHILD_ARGS);
    cmd
}

/// The names in `/dev/shm` (the private one, in a child).
fn dev_shm_names() -> BTreeSet<String> {
    std::fs::read_dir("/dev/shm")
        .expect("listing /dev/shm")
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn free_bytes() -> u64 {
    shmwire::shm_space()
        .unwrap()
        .expect("/dev/shm has a size")
        .free
}

/// Nothing of a test's names is in the real `/dev/shm`.
fn assert_no_trace_of(prefix: &str) {
    let left: Vec<_> = dev_shm_names()
        .into_iter()
        .filter(|n| n.starts_with(prefix))
        .collect();
    assert!(left.is_empty(), "left behind in /dev/shm: {left:?}");
}

// ----------------------------------------------- 1. larger than /dev/shm, larger than RAM

/// A segment larger than the whole `/dev/shm`, and one larger than RAM + swap: `NoSpace` at
/// create time, with the sizes and what to do in the message, and no object left behind.
/// Skipped if `/dev/shm` has no size limit: then the kernel would really try to back the
/// pages.
#[test]
fn larger_than_dev_shm_or_memory_is_no_space_with_advice_and_leaves_nothing() {
    let space = shmwire::shm_space().unwrap();
    require!(
        "shm-limit",
        space.is_some(),
        "/dev/shm has no size limit, a huge create would really allocate"
    );
    let space = space.expect("checked");
    assert_eq!(space.path, "/dev/shm");
    assert!(space.free <= space.total && space.total > 0, "{space:?}");
    let memory = space.memory.expect("/proc/meminfo has MemTotal");
    // Both exceed the filesystem's size, so tmpfs refuses before reserving anything (a
    // request between "free" and "size" would first fill /dev/shm, then give up).
    let above_dev_shm = space.total + GIB;
    let above_memory = space.total.max(memory) + GIB;
    for (size, expect) in [(above_dev_shm, "free of"), (above_memory, "RAM + swap")] {
        for raw in [false, true] {
            let c = Cleanup::unique("huge");
            let err = SegmentOptions::new()
                .raw(raw)
                .create(c.name(), size)
                .expect_err("a segment larger than /dev/shm");
            let text = err.to_string();
            let has_source = std::error::Error::source(&err).is_some();
            let CreateError::NoSpace {
                name,
                size: s,
                space: Some(seen),
                ..
            } = err
            else {
                panic!("create of {size} bytes gave {err:?}");
            };
            assert_eq!((name.as_str(), s), (c.name(), size));
            assert_eq!((seen.path, seen.total), ("/dev/shm", space.total));
            // The facts only: the OS error is the source, the advice is the CLI's (from
            // `space`, checked in its own tests).
            assert_eq!(
                text,
                format!(
                    "cannot create segment {:?} of {size} bytes: not enough shared memory",
                    c.name()
                )
            );
            assert!(has_source, "the OS error is the source");
            if expect == "RAM + swap" {
                assert!(seen.memory.is_some_and(|m| size > m), "{seen:?}");
            } else {
                assert!(size > seen.free, "{seen:?}");
            }
            assert!(!common::dev_shm_has(c.name()), "{text}");
            assert!(matches!(
                Segment::open(c.name()),
                Err(OpenError::NotFound { .. })
            ));
            assert!(!shmwire::list().unwrap().iter().any(|o| o.name == c.name()));
        }
    }
}

// --------------------------------------------------------- 2. a genuinely full /dev/shm

const FILL_TMPFS: u64 = 16 * MIB;
const FILL_SEGMENT: u64 = 3 * MIB;

/// Child, in a private 16 MiB `/dev/shm`: creates 3 MiB segments until one does not fit.
fn child_fill() {
    let prefix = child_segment();
    let space = shmwire::shm_space().unwrap().expect("a sized tmpfs");
    assert_eq!((space.total, space.free), (FILL_TMPFS, FILL_TMPFS), "fresh");
    assert!(dev_shm_names().is_empty());

    let mut segments = Vec::new();
    let (failed, err) = loop {
        let name = format!("{prefix}-{}", segments.len());
        let before = free_bytes();
        match Segment::create(&name, FILL_SEGMENT) {
            Ok(seg) => {
                // Every page is really there: writing all of it cannot SIGBUS.
                let seed = segments.len() as u8;
                seg.write_at(0, &pattern(seed, FILL_SEGMENT as usize))
                    .unwrap();
                segments.push(seg);
            }
            Err(e) => {
                assert_eq!(free_bytes(), before, "the failed create kept pages");
                break (name, e);
            }
        }
        assert!(segments.len() < 100, "16 MiB never filled up");
    };
    // Header page + 3 MiB each: five fit in 16 MiB, the sixth does not.
    assert_eq!(segments.len(), 5);
    let text = err.to_string();
    assert!(
        matches!(&err, CreateError::NoSpace { name, space: Some(_), .. } if *name == failed),
        "{err:?}"
    );
    assert!(text.ends_with("not enough shared memory"), "{text}");
    let CreateError::NoSpace {
        space: Some(seen), ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!((seen.path, seen.total), ("/dev/shm", 16 << 20), "{seen:?}");

    // Nothing half-created; the others are intact, seen through fresh handles.
    let names: BTreeSet<String> = segments.iter().map(|s| s.name().to_string()).collect();
    assert_eq!(dev_shm_names(), names);
    assert!(matches!(
        Segment::open(&failed),
        Err(OpenError::NotFound { .. })
    ));
    for (i, seg) in segments.iter().enumerate() {
        let again = Segment::open_read_only(seg.name().as_str()).unwrap();
        let mut buf = vec![0; FILL_SEGMENT as usize];
        again.read_at(0, &mut buf).unwrap();
        assert!(buf == pattern(i as u8, buf.len()), "segment {i} changed");
    }
    // Room again once one is gone.
    drop(segments.pop());
    let last = Segment::create(&failed, FILL_SEGMENT).expect("fits after a removal");
    drop(last);
    drop(segments);
    assert!(dev_shm_names().is_empty());
    assert_eq!(free_bytes(), FILL_TMPFS);
    report("created", 5);
    report("error", text);
}

#[test]
fn a_full_dev_shm_fails_the_segment_that_does_not_fit_and_spares_the_others() {
    require!(
        "unshare",
        private_shm_works(),
        "cannot mount a private tmpfs on /dev/shm (needs root and unshare)"
    );
    let prefix = common::unique_name("full");
    let mut child = spawn_command(
        in_private_shm(&format!("size={FILL_TMPFS}")),
        "fill",
        &prefix,
        &[],
    );
    assert_eq!(child.expect_report("created"), "5");
    let error = child.expect_report("error");
    eprintln!("the sixth segment: {error}");
    child.wait_success();
    // The child's tmpfs was its own: the real /dev/shm never saw its segments.
    assert_no_trace_of(&prefix);
}

// -------------------------------------------------------------- 3. too many objects

/// Child, in a private `/dev/shm` that may hold 8 inodes: creates one-page segments until
/// none fits, though bytes are plenty.
fn child_objects() {
    let prefix = child_segment();
    let space = shmwire::shm_space().unwrap().expect("a sized tmpfs");
    assert_eq!(space.max_objects, Some(8));
    let room = space.free_objects; // the root directory takes one
    let mut segments = Vec::new();
    let err = loop {
        match Segment::create(&format!("{prefix}-{}", segments.len()), 100) {
            Ok(seg) => segments.push(seg),
            Err(e) => break e,
        }
        assert!(segments.len() < 100, "the inode limit never hit");
    };
    assert_eq!(segments.len() as u64, room);
    let text = err.to_string();
    let CreateError::NoSpace {
        space: Some(seen), ..
    } = &err
    else {
        panic!("{err:?}");
    };
    assert_eq!(seen.free_objects, 0);
    assert_eq!(seen.max_objects, Some(8), "{seen:?}");
    assert!(text.ends_with("not enough shared memory"), "{text}");
    assert_eq!(dev_shm_names().len() as u64, room);
    drop(segments);
    assert!(dev_shm_names().is_empty());
    report("created", room);
    report("error", text);
}

#[test]
fn a_dev_shm_out_of_inodes_says_so() {
    require!(
        "unshare",
        private_shm_works(),
        "cannot mount a private tmpfs on /dev/shm (needs root and unshare)"
    );
    let prefix = common::unique_name("inodes");
    let mut child = spawn_command(
        in_private_shm("size=16m,nr_inodes=8"),
        "objects",
        &prefix,
        &[],
    );
    assert_eq!(child.expect_report("created"), "7");
    eprintln!("the eighth segment: {}", child.expect_report("error"));
    child.wait_success();
    assert_no_trace_of(&prefix);
}

// ------------------------------------------------------- 4. no address space left to map

/// `VmSize` of this process, in bytes.
fn vm_size() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .expect("VmSize in /proc/self/status");
    kib * 1024
}

/// Child, in a private 128 MiB `/dev/shm`: with its address space limited to what it uses
/// plus 16 MiB, a 64 MiB create gets the object and its pages, then fails to map them. The
/// object must be removed again.
fn child_no_address_space() {
    let name = child_segment();
    let used = vm_size();
    if used > 1 << 40 {
        // AddressSanitizer reserves terabytes of shadow memory; RLIMIT_AS would break it.
        report("result", "skipped");
        return;
    }
    let st = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--as={}", used + 16 * MIB))
        .status()
        .expect("running prlimit");
    assert!(st.success(), "prlimit failed");
    let err = Segment::create(&name, 64 * MIB).expect_err("no address space for 64 MiB");
    assert!(
        matches!(
            &err,
            CreateError::Io {
                op: "mapping it",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(dev_shm_names().is_empty(), "{:?}", dev_shm_names());
    assert_eq!(free_bytes(), 128 * MIB, "its pages were not given back");
    report("result", err);
}

#[test]
fn a_create_that_cannot_map_removes_the_object_it_made() {
    require!(
        "unshare",
        private_shm_works(),
        "cannot mount a private tmpfs on /dev/shm (needs root and unshare)"
    );
    let name = common::unique_name("nomap");
    let mut child = spawn_command(in_private_shm("size=128m"), "no-address-space", &name, &[]);
    let text = child.expect_report("result");
    child.wait_success();
    assert!(!common::dev_shm_has(&name));
    require!(
        "rlimit-as",
        text != "skipped",
        "RLIMIT_AS cannot be used under a sanitizer"
    );
    assert!(
        text.starts_with(&format!(
            "cannot create segment {name:?}: mapping it failed"
        )),
        "{text}"
    );
}

// ------------------------------------------------------------- 5. too many open files

/// Descriptor numbers above the highest one open that the child's limit leaves free.
const FD_HEADROOM: usize = 8;

/// Child: lowers its own limit of open files to [`FD_HEADROOM`] above its highest open
/// descriptor, then creates segments (each keeps one descriptor) until the limit stops it.
fn child_open_files() {
    let prefix = child_segment();
    // The limit caps descriptor *numbers*: every free number below it can be used (a test
    // harness may leave a high descriptor open, with a gap below it).
    let open: Vec<usize> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().parse().unwrap())
        .collect();
    // The listing's own descriptor is among them, closed by now.
    let limit = open.iter().max().unwrap() + 1 + FD_HEADROOM;
    let room = limit - (open.len() - 1);
    let st = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .expect("running prlimit");
    assert!(st.success(), "prlimit failed");

    let mut segments = Vec::new();
    let (failed, err) = loop {
        let name = format!("{prefix}-{}", segments.len());
        match Segment::create(&name, 4096) {
            Ok(seg) => segments.push(seg),
            Err(e) => break (name, e),
        }
        assert!(segments.len() <= room, "the limit did not hold");
    };
    assert_eq!(segments.len(), room);
    let text = err.to_string();
    assert!(
        matches!(&err, CreateError::TooManyOpen { name, .. } if *name == failed),
        "{err:?}"
    );
    assert!(!common::dev_shm_has(&failed));
    for seg in &segments {
        assert!(common::dev_shm_has(seg.name().as_str()));
    }
    // At the limit still, dropping the owners must remove every segment.
    drop(segments);
    let left: Vec<_> = dev_shm_names()
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "dropped owners left {left:?} behind");
    report("created", room);
    report("error", text);
}

#[test]
fn too_many_open_files_is_a_typed_error_and_leaves_nothing() {
    let prefix = common::unique_name("nofile");
    let mut child = common::spawn_child("open-files", &prefix, &[]);
    let created: usize = child.expect_report("created").parse().unwrap();
    assert!(created >= FD_HEADROOM, "{created}");
    let text = child.expect_report("error");
    // The facts only (the OS error is the source; the advice is the CLI's).
    assert_eq!(
        text,
        format!("cannot create segment \"{prefix}-{created}\": too many files are open")
    );
    child.wait_success();
    assert_no_trace_of(&prefix);
}
