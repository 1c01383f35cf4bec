//! Segments shared between real processes. Each test re-executes this test binary as one or
//! more children (see `common/mod.rs`), whose roles are in [`CHILDREN`].

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::common::{
    child_env, child_segment, pattern, report, spawn_child, wait_for_command, Cleanup,
};
use shmwire::{
    Access, Liveness, OpenError, Opened, ProcessId, Segment, SegmentOptions, SegmentState,
};

const PARENT_PID_VAR: &str = "SHMWIRE_TEST_PARENT_PID";
const SIZE_VAR: &str = "SHMWIRE_TEST_SIZE";

// Offsets used by the two-process exchange.
const DATA_LEN: usize = 10_000;
const REPLY_OFFSET: u64 = 20_000;
const COUNTER_OFFSET: u64 = 30_000;
const EXCHANGE_SIZE: u64 = 40_000;

/// The child processes' roles (see `child_entry` in `main.rs`).
pub(crate) const CHILDREN: &[crate::Role] = &[
    ("reader", child_reader),
    ("persisting-creator", child_persisting_creator),
    ("read-only-writer", child_read_only_writer),
    ("slow-initializer", child_slow_initializer),
    ("stuck-initializer", child_stuck_initializer),
    ("racer", child_racer),
    ("big-reader", child_big_reader),
    #[cfg(unix)]
    ("umask-creator", child_umask_creator),
];

// ------------------------------------------------------------------ 1. two processes

/// Child: opens the parent's segment, checks header and data, answers in the segment.
fn child_reader() {
    let name = child_segment();
    let parent: u32 = child_env(PARENT_PID_VAR).parse().unwrap();
    let seg = Segment::open(&name).expect("child opens the parent's segment");
    assert_eq!(seg.len(), EXCHANGE_SIZE);
    assert_eq!(seg.access(), Access::ReadWrite);
    assert!(!seg.is_owned(), "an opener does not own the segment");
    let info = seg.info().expect("header");
    assert_eq!(info.size, EXCHANGE_SIZE);
    assert_eq!(info.name, name);
    assert_eq!(
        info.creator.pid, parent,
        "the header names the parent as creator"
    );
    assert_eq!(shmwire::liveness(info.creator), Liveness::Alive);

    let mut data = vec![0u8; DATA_LEN];
    seg.read_at(0, &mut data).unwrap();
    assert_eq!(data, pattern(1, DATA_LEN), "child sees the parent's bytes");

    seg.write_at(REPLY_OFFSET, &pattern(2, DATA_LEN)).unwrap();
    let counter = seg.atomic_u64(COUNTER_OFFSET).expect("aligned counter");
    // ORDERING: AcqRel, a plain shared counter; the parent reads it after we exited.
    counter.fetch_add(1, Ordering::AcqRel);
    report("verified", std::process::id());
}

#[test]
fn parent_creates_and_writes_child_opens_and_reads() {
    let c = Cleanup::unique("p2c");
    let seg = Segment::create(c.name(), EXCHANGE_SIZE).unwrap();
    seg.write_at(0, &pattern(1, DATA_LEN)).unwrap();
    let counter = seg.atomic_u64(COUNTER_OFFSET).unwrap();
    counter.store(41, Ordering::Release);

    let mut child = spawn_child(
        "reader",
        c.name(),
        &[(PARENT_PID_VAR, std::process::id().to_string())],
    );
    let pid: u32 = child.expect_report("verified").parse().unwrap();
    assert_eq!(pid, child.id());
    child.wait_success();

    // What the child wrote is visible here.
    let mut reply = vec![0u8; DATA_LEN];
    seg.read_at(REPLY_OFFSET, &mut reply).unwrap();
    assert_eq!(reply, pattern(2, DATA_LEN));
    assert_eq!(counter.load(Ordering::Acquire), 42);
    // The child's exit did not remove the parent's segment.
    assert!(Segment::open(c.name()).is_ok());
}

/// Child: creates a persisted segment and fills it; exits when told to.
fn child_persisting_creator() {
    let name = child_segment();
    let size: u64 = child_env(SIZE_VAR).parse().unwrap();
    let seg = SegmentOptions::new()
        .remove_on_drop(false)
        .create(&name, size)
        .expect("child creates");
    assert!(!seg.is_owned());
    seg.write_at(0, &pattern(3, size as usize)).unwrap();
    report("created", std::process::id());
    // On Windows the section lives only while a handle is open: hold it until the parent
    // has opened it. On POSIX the parent tells us to go first, to show it persists.
    assert_eq!(wait_for_command(), "exit");
}

#[test]
fn child_creates_with_persist_and_parent_opens() {
    let c = Cleanup::unique("c2p");
    let size = 7777u64;
    let mut child = spawn_child(
        "persisting-creator",
        c.name(),
        &[(SIZE_VAR, size.to_string())],
    );
    let child_pid: u32 = child.expect_report("created").parse().unwrap();
    let mut early = None;
    if shmwire::NAMES_OUTLIVE_HANDLES {
        // The child is gone before we look: the segment outlives its creator.
        child.send("exit");
        child.wait_success();
    } else {
        early = Some(Segment::open(c.name()).unwrap());
        child.send("exit");
        child.wait_success();
    }

    let seg = match early {
        Some(s) => s,
        None => Segment::open(c.name()).expect("the persisted segment outlives its creator"),
    };
    assert_eq!(seg.len(), size);
    assert!(!seg.is_owned());
    let info = seg.info().unwrap();
    assert_eq!(info.creator.pid, child_pid);
    assert_ne!(info.creator.pid, std::process::id());
    assert_eq!(info.name, c.name());
    if shmwire::NAMES_OUTLIVE_HANDLES {
        // The child has exited and been reaped: its recorded identity is dead.
        assert_eq!(shmwire::liveness(info.creator), Liveness::Dead);
    }
    let mut data = vec![0u8; size as usize];
    seg.read_at(0, &mut data).unwrap();
    assert_eq!(data, pattern(3, size as usize));

    drop(seg);
    if shmwire::NAMES_OUTLIVE_HANDLES {
        SegmentOptions::new().remove(c.name()).unwrap();
    } // else the section died with our handle, the last one
    assert!(matches!(
        Segment::open(c.name()),
        Err(OpenError::NotFound { .. })
    ));
}

// ----------------------------------------------------------- 2. read-only is enforced

/// Child: opens read-only and writes through the payload pointer anyway. It must die.
fn child_read_only_writer() {
    let name = child_segment();
    let seg = Segment::open_read_only(&name).expect("child opens read-only");
    assert_eq!(seg.access(), Access::ReadOnly);
    assert!(seg.as_mut_ptr().is_none());
    let mut first = [0u8; 4];
    seg.read_at(0, &mut first).unwrap();
    assert_eq!(&first, b"RONL");
    report("about-to-write", 1);
    let p = seg.as_ptr() as *mut u8;
    // SAFETY: this is deliberately NOT sound: the pages are mapped without write permission,
    // and the point of this child is to prove that the OS faults on this store (SIGSEGV or
    // SIGBUS on Unix, an access violation on Windows) and kills the process before anything
    // is written. `p` points to the start of a live mapping of at least 4096 bytes, so the
    // only thing wrong with the store is the protection it violates.
    unsafe { std::ptr::write_volatile(p, b'X') };
    report("survived", 1); // never reached if the protection holds
}

#[test]
fn read_only_is_enforced_by_the_os() {
    let c = Cleanup::unique("rofault");
    let seg = Segment::create(c.name(), 4096).unwrap();
    seg.write_at(0, b"RONL").unwrap();

    let mut child = spawn_child("read-only-writer", c.name(), &[]);
    child.expect_report("about-to-write");
    let status = child.wait();
    let out = child.output_so_far();
    assert!(
        !out.contains("SHMWIRE:survived"),
        "the write did not fault\n{out}"
    );
    assert!(
        !status.success(),
        "child exited successfully: {status:?}\n{out}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        const SIGSEGV: i32 = 11;
        #[cfg(target_vendor = "apple")]
        const SIGBUS: i32 = 10;
        #[cfg(not(target_vendor = "apple"))]
        const SIGBUS: i32 = 7;
        assert!(
            matches!(status.signal(), Some(SIGSEGV | SIGBUS)),
            "child was not killed by SIGSEGV/SIGBUS: {status:?}\n{out}"
        );
    }
    #[cfg(windows)]
    {
        // STATUS_ACCESS_VIOLATION (0xC0000005) on Windows. Wine hands the unhandled fault to
        // winedbg first, and the process may end with another NTSTATUS error code instead
        // (0xC0000354 was seen), so accept any error-severity NTSTATUS.
        let code = status.code().map(|c| c as u32);
        assert!(
            matches!(code, Some(c) if c & 0xC000_0000 == 0xC000_0000),
            "child did not die of an exception: {status:?}\n{out}"
        );
    }
    #[cfg(not(any(unix, windows)))]
    assert_ne!(
        status.code(),
        Some(101),
        "the child panicked instead of faulting"
    );

    // Nothing was written.
    let mut first = [0u8; 4];
    seg.read_at(0, &mut first).unwrap();
    assert_eq!(&first, b"RONL");
}

// ------------------------------------------------- 4. half-initialised segments

/// Child: `open_or_create` whose initializer writes half the data, reports, waits for the
/// parent's "go", sleeps 300 ms and writes the other half.
fn child_slow_initializer() {
    let name = child_segment();
    let (seg, how) = SegmentOptions::new()
        .open_or_create(&name, 8192, |seg| {
            seg.write_at(0, &pattern(4, 4096)).unwrap();
            report("initializing", 1);
            assert_eq!(wait_for_command(), "go");
            std::thread::sleep(Duration::from_millis(300));
            seg.write_at(4096, &pattern(5, 4096))?;
            Ok(())
        })
        .expect("child open_or_create");
    report("opened", format!("{how:?}"));
    assert!(seg.is_owned());
    assert_eq!(wait_for_command(), "exit");
}

#[test]
fn an_opener_waits_for_a_slow_initializer_and_sees_everything() {
    let c = Cleanup::unique("slowinit");
    let mut child = spawn_child("slow-initializer", c.name(), &[]);
    child.expect_report("initializing");

    // The segment exists but is half-built: an opener that does not wait fails cleanly, and
    // inspect says what it is.
    match SegmentOptions::new()
        .init_timeout(Duration::ZERO)
        .open(c.name())
    {
        Err(OpenError::NotInitialized { name, .. }) => assert_eq!(name, c.name()),
        other => panic!("open of a half-built segment gave {other:?}"),
    }
    assert_eq!(
        SegmentOptions::new().inspect(c.name()).unwrap().state,
        SegmentState::Initializing
    );

    // Let the initializer finish; this open waits for it (it sleeps 300 ms first).
    child.send("go");
    let seg = SegmentOptions::new()
        .init_timeout(Duration::from_secs(5))
        .open(c.name())
        .expect("open waits for the initializer");
    let mut data = vec![0u8; 8192];
    seg.read_at(0, &mut data).unwrap();
    assert_eq!(&data[..4096], &pattern(4, 4096)[..]);
    assert_eq!(
        &data[4096..],
        &pattern(5, 4096)[..],
        "the opener returned before the initializer finished"
    );
    assert_eq!(seg.info().unwrap().creator.pid, child.id());
    assert_eq!(child.expect_report("opened"), "Created");
    child.send("exit");
    child.wait_success();
}

/// Child: `open_or_create` (persisted) whose initializer never returns; the parent kills it.
fn child_stuck_initializer() {
    let name = child_segment();
    let _ = SegmentOptions::new()
        .remove_on_drop(false)
        .open_or_create(&name, 4096, |seg| {
            seg.write_at(0, b"partial").unwrap();
            report("initializing", 1);
            let _ = wait_for_command(); // the parent kills us meanwhile
            panic!("the parent was supposed to kill this child");
        });
}

#[test]
fn a_creator_killed_while_initializing_leaves_a_segment_openers_reject() {
    let c = Cleanup::unique("killed");
    let mut child = spawn_child("stuck-initializer", c.name(), &[]);
    child.expect_report("initializing");
    let child_pid = child.id();
    drop(child); // kills it (by pid) and reaps it

    let timeout = Duration::from_millis(100);
    let opened = SegmentOptions::new().init_timeout(timeout).open(c.name());
    if !shmwire::NAMES_OUTLIVE_HANDLES {
        // Windows: the section died with its only process.
        assert!(
            matches!(opened, Err(OpenError::NotFound { .. })),
            "{opened:?}"
        );
        return;
    }
    match opened {
        Err(OpenError::NotInitialized { name, waited }) => {
            assert_eq!((name.as_str(), waited), (c.name(), timeout));
        }
        other => panic!("open of a dead creator's segment gave {other:?}"),
    }
    assert_eq!(
        SegmentOptions::new().inspect(c.name()).unwrap().state,
        SegmentState::Initializing
    );
    // The unpublished header still names its creator, which is dead.
    let raw = SegmentOptions::new()
        .raw(true)
        .read_only(true)
        .open(c.name())
        .unwrap();
    let (mut pid, mut start) = ([0u8; 4], [0u8; 8]);
    raw.read_at(48, &mut pid).unwrap();
    raw.read_at(56, &mut start).unwrap();
    let creator = ProcessId {
        pid: u32::from_le_bytes(pid),
        start_time: u64::from_le_bytes(start),
    };
    assert_eq!(creator.pid, child_pid);
    assert_eq!(shmwire::liveness(creator), Liveness::Dead);
    let mut partial = [0u8; 7];
    raw.read_at(4096, &mut partial).unwrap();
    assert_eq!(&partial, b"partial");

    // Recovery: remove it and create afresh.
    drop(raw);
    SegmentOptions::new().remove(c.name()).unwrap();
    let (_seg, how) = SegmentOptions::new()
        .open_or_create(c.name(), 4096, |_| Ok(()))
        .unwrap();
    assert_eq!(how, Opened::Created);
}

// -------------------------------------------------- 8. open_or_create races

const RACE_SIZE: usize = 64 * 1024;

/// Child: waits for "go", then races the others to `open_or_create` the segment.
fn child_racer() {
    let name = child_segment();
    report("ready", std::process::id());
    assert_eq!(wait_for_command(), "go");
    let (seg, how) = SegmentOptions::new()
        .remove_on_drop(false)
        .open_or_create(&name, RACE_SIZE as u64, |seg| {
            seg.write_at(0, &pattern(6, RACE_SIZE)).unwrap();
            // Widen the window in which the others find it unpublished.
            std::thread::sleep(Duration::from_millis(100));
            Ok(())
        })
        .expect("racer open_or_create");
    let mut data = vec![0u8; RACE_SIZE];
    seg.read_at(0, &mut data).unwrap();
    assert!(data == pattern(6, RACE_SIZE), "racer saw partial content");
    report("opened", format!("{how:?}"));
    report("creator", seg.info().unwrap().creator.pid);
    // Keep the segment open until every racer is done (Windows needs a live handle).
    assert_eq!(wait_for_command(), "exit");
}

#[test]
fn open_or_create_from_racing_processes_creates_exactly_once() {
    let c = Cleanup::unique("race");
    let mut racers: Vec<_> = (0..4)
        .map(|_| spawn_child("racer", c.name(), &[]))
        .collect();
    for r in &mut racers {
        r.expect_report("ready");
    }
    for r in &mut racers {
        r.send("go");
    }
    let mut created_by = Vec::new();
    let mut creators = Vec::new();
    for r in &mut racers {
        let how = r.expect_report("opened");
        assert!(how == "Created" || how == "Existing", "{how}");
        if how == "Created" {
            created_by.push(r.id());
        }
        creators.push(r.expect_report("creator").parse::<u32>().unwrap());
    }
    assert_eq!(
        created_by.len(),
        1,
        "exactly one racer creates: {created_by:?}"
    );
    assert!(
        creators.iter().all(|&p| p == created_by[0]),
        "every racer sees the same creator {created_by:?}: {creators:?}"
    );
    let seg = Segment::open(c.name()).unwrap();
    let mut data = vec![0u8; RACE_SIZE];
    seg.read_at(0, &mut data).unwrap();
    assert!(data == pattern(6, RACE_SIZE));
    for r in &mut racers {
        r.send("exit");
    }
    for r in &mut racers {
        r.wait_success();
    }
}

// --------------------------------------------------------- 7. beyond 4 GiB

const GIB4: u64 = 4 << 30;
const BIG_SIZE: u64 = GIB4 + 4096;
const HIGH_OFFSET: u64 = GIB4 + 100;
const LOW_OFFSET: u64 = 100;
const HIGH_REPLY_OFFSET: u64 = GIB4 + 2048;

/// Child: reads what the parent wrote above 4 GiB, answers there too.
fn child_big_reader() {
    let name = child_segment();
    let seg = Segment::open(&name).expect("child opens the big segment");
    assert_eq!(seg.len(), BIG_SIZE);
    let mut high = vec![0u8; 1000];
    let mut low = vec![0u8; 1000];
    seg.read_at(HIGH_OFFSET, &mut high).unwrap();
    seg.read_at(LOW_OFFSET, &mut low).unwrap();
    assert!(high == pattern(7, 1000), "bytes above 4 GiB differ");
    assert!(low == pattern(8, 1000), "bytes at the 32-bit alias differ");
    let mut last = [0u8; 8];
    seg.read_at(BIG_SIZE - 8, &mut last).unwrap();
    assert_eq!(&last, b"the end!");
    seg.write_at(HIGH_REPLY_OFFSET, b"child was here").unwrap();
    report("verified", 1);
}

#[cfg(target_pointer_width = "64")]
#[test]
fn data_above_4_gib_crosses_processes() {
    let c = Cleanup::unique("big");
    let seg = Segment::create(c.name(), BIG_SIZE).expect("create 4 GiB + 4 KiB");
    assert_eq!(seg.len(), BIG_SIZE);
    // Different data at 4 GiB + 100 and at 100, so a 32-bit truncation of offsets shows.
    seg.write_at(HIGH_OFFSET, &pattern(7, 1000)).unwrap();
    seg.write_at(LOW_OFFSET, &pattern(8, 1000)).unwrap();
    seg.write_at(BIG_SIZE - 8, b"the end!").unwrap();
    assert!(seg.write_at(BIG_SIZE - 7, b"the end!").is_err());

    let mut child = spawn_child("big-reader", c.name(), &[]);
    child.expect_report("verified");
    child.wait_success();
    let mut reply = [0u8; 14];
    seg.read_at(HIGH_REPLY_OFFSET, &mut reply).unwrap();
    assert_eq!(&reply, b"child was here");
}

// ------------------------------------------------------------- 9. permissions

/// Child (started under `umask 077`): creates persisted segments with several modes.
#[cfg(unix)]
fn child_umask_creator() {
    use std::os::unix::fs::PermissionsExt;
    let base = child_segment();
    // Prove the umask is in force: a new file asked 0o666 gets 0o600.
    let probe = std::env::temp_dir().join(format!("{base}-umask-probe"));
    let file = std::fs::File::create(&probe).unwrap();
    let file_mode = file.metadata().unwrap().permissions().mode() & 0o777;
    drop(file);
    std::fs::remove_file(&probe).unwrap();
    report("file-mode", format!("{file_mode:o}"));
    for (suffix, mode) in [("d", None), ("a", Some(0o640)), ("b", Some(0o666))] {
        let mut opts = SegmentOptions::new().remove_on_drop(false);
        if let Some(m) = mode {
            opts = opts.mode(m);
        }
        opts.create(&format!("{base}{suffix}"), 4096).unwrap();
    }
    report("created", 3);
}

#[cfg(unix)]
#[test]
fn modes_are_exact_despite_the_umask() {
    use crate::common::{spawn_command, unique_name, CHILD_ARGS};
    use std::process::Command;
    let base = unique_name("umask");
    let cleanups: Vec<Cleanup> = ["d", "a", "b"]
        .iter()
        .map(|s| Cleanup(format!("{base}{s}")))
        .collect();
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("umask 077 && exec \"$0\" \"$@\"")
        .arg(exe)
        .args(CHILD_ARGS);
    let mut child = spawn_command(cmd, "umask-creator", &base, &[]);
    assert_eq!(
        child.expect_report("file-mode"),
        "600",
        "umask 077 not in force"
    );
    child.expect_report("created");
    child.wait_success();

    for (c, mode) in cleanups.iter().zip([0o600, 0o640, 0o666]) {
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::fs::PermissionsExt;
            let meta = std::fs::metadata(std::path::Path::new("/dev/shm").join(c.name())).unwrap();
            assert_eq!(
                meta.permissions().mode() & 0o7777,
                mode,
                "{} has mode {:o}",
                c.name(),
                meta.permissions().mode()
            );
            let listed = shmwire::list().unwrap();
            let entry = listed.iter().find(|o| o.name == c.name()).expect("listed");
            assert_eq!(entry.mode, Some(mode));
            assert_eq!(entry.size, 4096 + 4096);
        }
        // Whatever the mode, the owner can open it read-write.
        let seg = Segment::open(c.name()).unwrap();
        seg.write_at(0, b"owner").unwrap();
        let _ = mode;
    }
}

/// Default options give owner-only access (checked on the file behind the object).
#[cfg(target_os = "linux")]
#[test]
fn default_mode_is_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let c = Cleanup::unique("mode");
    let mode_of = |name: &str| {
        std::fs::metadata(std::path::Path::new("/dev/shm").join(name))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    let a = Segment::create(c.name(), 10).unwrap();
    assert_eq!(mode_of(c.name()), 0o600);
    drop(a);
    let b = SegmentOptions::new()
        .mode(0o640)
        .create(c.name(), 10)
        .unwrap();
    assert_eq!(mode_of(c.name()), 0o640);
    drop(b);
    let r = SegmentOptions::new()
        .raw(true)
        .mode(0o644)
        .create(c.name(), 10)
        .unwrap();
    assert_eq!(mode_of(c.name()), 0o644);
    drop(r);
}

/// An initializer that fails leaves nothing behind: the unpublished segment is removed, the
/// error says why, and the next caller creates it afresh.
#[test]
fn a_failed_init_removes_the_unpublished_segment() {
    let c = Cleanup::unique("init-fails");
    let name = c.name().to_owned();
    let got = SegmentOptions::new().open_or_create(&name, 4096, |seg| {
        seg.write_at(0, b"half")?;
        seg.write_at(4096, b"out of range")?; // fails: past the payload
        Ok(())
    });
    match got {
        Err(shmwire::OpenOrCreateError::Init { name: n, source }) => {
            assert_eq!(n, name);
            assert!(source.to_string().contains("do not fit"), "{source}");
        }
        other => panic!("expected Init, got {other:?}"),
    }
    assert!(matches!(
        Segment::open(&name),
        Err(shmwire::OpenError::NotFound { .. })
    ));
    let (seg, how) = SegmentOptions::new()
        .open_or_create(&name, 4096, |_| Ok(()))
        .unwrap();
    assert_eq!(how, Opened::Created);
    let mut buf = [0u8; 4];
    seg.read_at(0, &mut buf).unwrap();
    assert_eq!(buf, [0; 4], "a fresh segment, not the failed one");
}
