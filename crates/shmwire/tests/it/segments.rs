//! Single-process behaviour of named segments through the public API: errors are typed, bad
//! input leaves nothing behind, headers round-trip through real shared memory and corrupt
//! ones are refused. Multi-process behaviour is in `multiprocess.rs`.

use std::time::{Duration, SystemTime};

use crate::common::{self, pattern, Cleanup};
use shmwire::{
    Access, AccessError, CreateError, Kind, Liveness, Name, NameProblem, OpenError,
    OpenOrCreateError, Opened, RemoveError, Segment, SegmentOptions, SegmentState,
};

/// Offsets inside the header (layout version 1, see docs/layout.md / src/header.rs).
const MAGIC_OFFSET: u64 = 0;
const VERSION_OFFSET: u64 = 8;
const PAYLOAD_SIZE_OFFSET: u64 = 24;
const INIT_STATE_OFFSET: u64 = 384;
const HEADER_LEN: u64 = 4096;

/// Opens `name` raw and read-write: the whole OS object, header included.
fn open_raw_rw(name: &str) -> Segment {
    SegmentOptions::new()
        .raw(true)
        .open(name)
        .expect("open raw read-write")
}

/// A long init timeout for cases that must fail without waiting: if the library waited
/// instead, the result would be `NotInitialized` after this long, and the test would fail on
/// the error variant rather than on a clock.
const MUST_NOT_WAIT: Duration = Duration::from_secs(30);

#[test]
fn read_only_segment_refuses_writes_at_the_api_level() {
    let c = Cleanup::unique("ro-api");
    let data = pattern(1, 1000);
    let seg = Segment::create(c.name(), 4096).unwrap();
    seg.write_at(0, &data).unwrap();
    assert_eq!(seg.access(), Access::ReadWrite);
    assert!(seg.as_mut_ptr().is_some());

    for ro in [
        Segment::open_read_only(c.name()).unwrap(),
        SegmentOptions::new()
            .read_only(true)
            .raw(true)
            .open(c.name())
            .unwrap(),
    ] {
        assert_eq!(ro.access(), Access::ReadOnly);
        assert_eq!(ro.as_mut_ptr(), None);
        assert!(ro.atomic_u32(0).is_none());
        assert!(ro.atomic_u64(0).is_none());
        match ro.write_at(0, b"nope") {
            Err(AccessError::ReadOnly { name }) => assert_eq!(name, c.name()),
            other => panic!("write on a read-only segment gave {other:?}"),
        }
        // Even an empty or out-of-range write reports ReadOnly first, and writes nothing.
        assert!(matches!(
            ro.write_at(u64::MAX, b"x"),
            Err(AccessError::ReadOnly { .. })
        ));
        let err = ro.write_at(0, b"").unwrap_err();
        assert!(err.to_string().contains(c.name()), "{err}");
    }
    let ro = Segment::open_read_only(c.name()).unwrap();
    let mut back = vec![0u8; data.len()];
    ro.read_at(0, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn exclusive_create_of_an_existing_name_fails_and_leaves_it_untouched() {
    let c = Cleanup::unique("excl");
    let data = pattern(2, 5000);
    let first = SegmentOptions::new()
        .type_tag(0xabc)
        .create(c.name(), 5000)
        .unwrap();
    first.write_at(0, &data).unwrap();
    let info_before = first.info().unwrap().clone();

    let attempts = [
        SegmentOptions::new().create(c.name(), 5000),
        SegmentOptions::new().create(c.name(), 100), // another size
        SegmentOptions::new().raw(true).create(c.name(), 5000), // raw
        SegmentOptions::new()
            .remove_on_drop(false)
            .create(c.name(), 8192),
    ];
    for attempt in attempts {
        match attempt {
            Err(CreateError::AlreadyExists { name, source }) => {
                assert_eq!(name, c.name());
                assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists);
            }
            other => panic!("create of an existing name gave {other:?}"),
        }
    }
    let err = Segment::create(c.name(), 1).unwrap_err();
    assert!(err.to_string().contains(c.name()), "{err}");

    // The existing segment is intact, seen through the first handle and a fresh one; the
    // failed creates did not remove it either (they did not own it).
    let fresh = Segment::open(c.name()).unwrap();
    for seg in [&first, &fresh] {
        assert_eq!(seg.len(), 5000);
        assert_eq!(seg.info().unwrap(), &info_before);
        let mut back = vec![0u8; 5000];
        seg.read_at(0, &mut back).unwrap();
        assert_eq!(back, data);
    }

    // open_or_create finds it and does not run the initializer.
    let (seg, how) = SegmentOptions::new()
        .open_or_create(c.name(), 5000, |_| {
            panic!("init must not run on an existing segment")
        })
        .unwrap();
    assert_eq!(how, Opened::Existing);
    assert!(!seg.is_owned());
    let mut back = vec![0u8; 5000];
    seg.read_at(0, &mut back).unwrap();
    assert_eq!(back, data);
}

#[test]
fn bad_names_are_rejected_with_a_typed_error_and_leave_nothing_behind() {
    let too_long = "x".repeat(Name::MAX_LEN + 1);
    type IsExpected = fn(&NameProblem) -> bool;
    let cases: Vec<(&str, IsExpected)> = vec![
        ("", |p| matches!(p, NameProblem::Empty)),
        ("a/b", |p| matches!(p, NameProblem::BadChar('/'))),
        ("a\0b", |p| matches!(p, NameProblem::BadChar('\0'))),
        (".", |p| matches!(p, NameProblem::Dots)),
        ("..", |p| matches!(p, NameProblem::Dots)),
        ("a\\b", |p| matches!(p, NameProblem::BadChar('\\'))),
        ("x~shmwire-rm", |p| matches!(p, NameProblem::Reserved)),
        (&too_long, |p| matches!(p, NameProblem::TooLong { .. })),
    ];
    for (bad, is_expected) in &cases {
        for opts in [SegmentOptions::new(), SegmentOptions::new().raw(true)] {
            match opts.create(bad, 4096) {
                Err(CreateError::InvalidName(e)) => {
                    assert_eq!(e.name, *bad);
                    assert!(is_expected(&e.problem), "{bad:?}: {:?}", e.problem);
                }
                other => panic!("create({bad:?}) gave {other:?}"),
            }
            match opts.open_or_create(bad, 4096, |_| panic!("init ran for {bad:?}")) {
                Err(OpenOrCreateError::Create(CreateError::InvalidName(e))) => {
                    assert!(is_expected(&e.problem))
                }
                other => panic!("open_or_create({bad:?}) gave {other:?}"),
            }
            match opts.open(bad) {
                Err(OpenError::InvalidName(e)) => assert!(is_expected(&e.problem)),
                other => panic!("open({bad:?}) gave {other:?}"),
            }
        }
        match SegmentOptions::new().remove(bad) {
            Err(RemoveError::InvalidName(e)) => assert!(is_expected(&e.problem)),
            other => panic!("remove({bad:?}) gave {other:?}"),
        }
        match SegmentOptions::new().inspect(bad) {
            Err(OpenError::InvalidName(_)) => {}
            other => panic!("inspect({bad:?}) gave {other:?}"),
        }
    }
    assert_eq!(
        Name::new(&too_long).unwrap_err().problem,
        NameProblem::TooLong {
            len: Name::MAX_LEN + 1,
            max: Name::MAX_LEN
        }
    );
    assert!(Name::new(&too_long[1..]).is_ok(), "MAX_LEN itself is fine");

    #[cfg(target_os = "linux")]
    {
        // Nothing was created under these names (nor under the pieces of "a/b").
        let listed: Vec<String> = shmwire::list()
            .unwrap()
            .into_iter()
            .map(|o| o.name)
            .collect();
        for (bad, _) in &cases {
            assert!(!listed.iter().any(|n| n == bad), "{bad:?} left behind");
        }
        assert!(!std::path::Path::new("/dev/shm/a/b").exists());
        assert!(!common::dev_shm_has(&too_long));
        assert!(!common::dev_shm_has("x~shmwire-rm"));
        assert!(!common::dev_shm_has("a\\b"));
    }
}

#[test]
fn zero_and_oversized_sizes_are_rejected_and_leave_nothing_behind() {
    let c = Cleanup::unique("size0");
    for opts in [
        SegmentOptions::new(),
        SegmentOptions::new().raw(true),
        SegmentOptions::new().remove_on_drop(false),
    ] {
        match opts.create(c.name(), 0) {
            Err(CreateError::ZeroSize { name }) => assert_eq!(name, c.name()),
            other => panic!("create of size 0 gave {other:?}"),
        }
        match opts.open_or_create(c.name(), 0, |_| panic!("init ran for size 0")) {
            Err(OpenOrCreateError::Create(CreateError::ZeroSize { .. })) => {}
            other => panic!("open_or_create of size 0 gave {other:?}"),
        }
        // Sizes that cannot be mapped: the header pushes u64::MAX over, and anything above
        // isize::MAX cannot be a mapping.
        for size in [u64::MAX, u64::MAX - HEADER_LEN + 1, 1 << 63] {
            match opts.create(c.name(), size) {
                Err(CreateError::TooLarge { name, size: s }) => {
                    assert_eq!((name.as_str(), s), (c.name(), size));
                }
                other => panic!("create of size {size} gave {other:?}"),
            }
        }
    }
    let err = Segment::create(c.name(), 0).unwrap_err();
    assert!(err.to_string().contains(c.name()), "{err}");

    #[cfg(target_os = "linux")]
    assert!(
        !common::dev_shm_has(c.name()),
        "size 0 left an object behind"
    );
    for opts in [SegmentOptions::new(), SegmentOptions::new().raw(true)] {
        match opts.open(c.name()) {
            Err(OpenError::NotFound { name }) => assert_eq!(name, c.name()),
            other => panic!("open after a failed create gave {other:?}"),
        }
    }
    assert!(matches!(
        SegmentOptions::new().inspect(c.name()),
        Err(OpenError::NotFound { .. })
    ));
}

/// A full `/dev/shm` is an error at create time, not a SIGBUS later. Only where the tmpfs has
/// a size limit (otherwise the kernel would try to allocate the pages one by one).
#[cfg(target_os = "linux")]
#[test]
fn create_beyond_the_room_in_dev_shm_is_no_space_and_leaves_nothing_behind() {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let limited = mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some("/dev/shm") && l.contains("size="));
    require!("shm-limit", limited, "/dev/shm has no size limit");
    let c = Cleanup::unique("nospace");
    match SegmentOptions::new().create(c.name(), 1 << 50) {
        Err(CreateError::NoSpace { name, .. }) => assert_eq!(name, c.name()),
        other => panic!("create of 1 PiB gave {other:?}"),
    }
    assert!(!common::dev_shm_has(c.name()));
    assert!(matches!(
        Segment::open(c.name()),
        Err(OpenError::NotFound { .. })
    ));
}

#[test]
fn invalid_modes_are_rejected_and_leave_nothing_behind() {
    let c = Cleanup::unique("badmode");
    for mode in [0o400, 0o200, 0o000, 0o1777, 0o4600, 0o7777, 0o1000, 0o500] {
        for raw in [false, true] {
            match SegmentOptions::new()
                .raw(raw)
                .mode(mode)
                .create(c.name(), 4096)
            {
                Err(CreateError::InvalidMode { name, mode: m }) => {
                    assert_eq!((name.as_str(), m), (c.name(), mode));
                }
                other => panic!("create with mode {mode:o} gave {other:?}"),
            }
        }
    }
    #[cfg(target_os = "linux")]
    assert!(!common::dev_shm_has(c.name()));
    assert!(matches!(
        Segment::open(c.name()),
        Err(OpenError::NotFound { .. })
    ));
    // Valid modes are accepted.
    for mode in [0o600, 0o640, 0o666, 0o777, 0o700] {
        let seg = SegmentOptions::new()
            .mode(mode)
            .create(c.name(), 4096)
            .unwrap();
        drop(seg);
    }
}

#[test]
fn header_round_trips_through_a_real_segment() {
    let c = Cleanup::unique("hdr");
    let before = SystemTime::now();
    let kind = Kind(0x1_0042);
    let seg = SegmentOptions::new()
        .kind(kind)
        .type_tag(0xfeed_f00d_dead_beef)
        .create(c.name(), 12_345)
        .unwrap();
    let info = seg.info().expect("a header segment has info").clone();
    assert_eq!(info.version, 1);
    assert_eq!(info.size, 12_345);
    assert_eq!(info.payload_offset, HEADER_LEN);
    assert_eq!(info.kind, kind);
    assert_eq!(info.type_tag, 0xfeed_f00d_dead_beef);
    assert_eq!(info.name, c.name());
    assert_eq!(info.creator.pid, std::process::id());
    assert_eq!(info.creator, shmwire::current_process());
    assert_eq!(shmwire::liveness(info.creator), Liveness::Alive);
    assert!(
        info.created >= before - Duration::from_secs(1),
        "{:?}",
        info.created
    );
    assert!(info.created <= SystemTime::now());
    assert_eq!(seg.len(), 12_345);
    assert_eq!(seg.name().as_str(), c.name());
    assert!(!seg.is_raw());
    assert!(seg.is_owned());
    assert_eq!(seg.as_ptr() as usize % 4096, 0, "payload is page-aligned");

    // An opener decodes the very same header from the shared bytes.
    let opened = SegmentOptions::new().kind(kind).open(c.name()).unwrap();
    assert_eq!(opened.info(), Some(&info));
    assert_eq!(opened.len(), 12_345);
    assert!(!opened.is_owned());
    assert_eq!(opened.as_ptr() as usize % 4096, 0);

    // Inspecting reports the same.
    let ins = SegmentOptions::new().inspect(c.name()).unwrap();
    assert_eq!(ins.name, c.name());
    assert_eq!(ins.state, SegmentState::Shmwire(info.clone()));
    assert!(ins.os_size >= HEADER_LEN + 12_345);

    // The raw bytes are the documented layout: magic at 0, payload at 4096.
    let raw = SegmentOptions::new()
        .raw(true)
        .read_only(true)
        .open(c.name())
        .unwrap();
    assert!(raw.is_raw());
    assert_eq!(raw.info(), None);
    #[cfg(unix)]
    assert_eq!(raw.len(), HEADER_LEN + 12_345);
    let mut magic = [0u8; 8];
    raw.read_at(MAGIC_OFFSET, &mut magic).unwrap();
    assert_eq!(&magic, b"SHMWIRE\0");
    let mut size = [0u8; 8];
    raw.read_at(PAYLOAD_SIZE_OFFSET, &mut size).unwrap();
    assert_eq!(u64::from_le_bytes(size), 12_345);
    opened.write_at(0, b"payload!").unwrap();
    let mut p = [0u8; 8];
    raw.read_at(HEADER_LEN, &mut p).unwrap();
    assert_eq!(&p, b"payload!");
}

#[test]
fn opening_with_the_wrong_kind_is_refused() {
    let c = Cleanup::unique("kind");
    let _seg = SegmentOptions::new()
        .kind(Kind(0x1_0001))
        .create(c.name(), 100)
        .unwrap();
    match SegmentOptions::new().kind(Kind::BYTES).open(c.name()) {
        Err(OpenError::WrongKind {
            name,
            expected,
            found,
        }) => {
            assert_eq!(name, c.name());
            assert_eq!(expected, Kind::BYTES);
            assert_eq!(found, Kind(0x1_0001));
        }
        other => panic!("open with the wrong kind gave {other:?}"),
    }
    // Without a kind, anything is accepted.
    assert_eq!(
        Segment::open(c.name()).unwrap().info().unwrap().kind,
        Kind(0x1_0001)
    );
}

#[test]
fn a_header_with_a_flipped_byte_is_corrupt() {
    let c = Cleanup::unique("corrupt");
    // Persisted, and `_creator` kept open so the section also lives on Windows.
    let _creator = SegmentOptions::new()
        .remove_on_drop(false)
        .create(c.name(), 10_000)
        .unwrap();
    let raw = open_raw_rw(c.name());
    // Byte 30 lies inside payload_size (offsets 24..32), covered by the checksum.
    let mut b = [0u8; 1];
    raw.read_at(30, &mut b).unwrap();
    raw.write_at(30, &[b[0] ^ 0x40]).unwrap();

    for opts in [
        SegmentOptions::new(),
        SegmentOptions::new().read_only(true),
        SegmentOptions::new().init_timeout(MUST_NOT_WAIT),
    ] {
        match opts.open(c.name()) {
            Err(OpenError::Corrupt { name, reason }) => {
                assert_eq!(name, c.name());
                assert!(reason.contains("checksum"), "{reason}");
            }
            other => panic!("open of a corrupt header gave {other:?}"),
        }
    }
    let err = Segment::open(c.name()).unwrap_err();
    assert!(err.to_string().contains(c.name()), "{err}");
    match SegmentOptions::new().inspect(c.name()).unwrap().state {
        SegmentState::Unreadable(reason) => assert!(reason.contains("checksum"), "{reason}"),
        other => panic!("inspect of a corrupt header gave {other:?}"),
    }
    // open_or_create does not paper over it (and does not re-create).
    assert!(matches!(
        SegmentOptions::new().open_or_create(c.name(), 10_000, |_| panic!("init ran")),
        Err(OpenOrCreateError::Open(OpenError::Corrupt { .. }))
    ));

    // Flipping it back restores a valid segment.
    raw.write_at(30, &b).unwrap();
    assert_eq!(Segment::open(c.name()).unwrap().len(), 10_000);
}

#[test]
fn a_header_with_garbage_magic_is_not_shmwire() {
    let c = Cleanup::unique("magic");
    let _creator = SegmentOptions::new()
        .remove_on_drop(false)
        .create(c.name(), 10_000)
        .unwrap();
    let raw = open_raw_rw(c.name());
    raw.write_at(MAGIC_OFFSET, b"GARBAGE!").unwrap();
    match SegmentOptions::new()
        .init_timeout(MUST_NOT_WAIT)
        .open(c.name())
    {
        Err(OpenError::NotShmwire { name }) => assert_eq!(name, c.name()),
        other => panic!("open with a garbage magic gave {other:?}"),
    }
    assert_eq!(
        SegmentOptions::new().inspect(c.name()).unwrap().state,
        SegmentState::Foreign
    );
    // Raw mode does not care.
    assert!(SegmentOptions::new().raw(true).open(c.name()).is_ok());
}

#[test]
fn a_header_of_a_future_version_is_unsupported() {
    let c = Cleanup::unique("version");
    let _creator = SegmentOptions::new()
        .remove_on_drop(false)
        .create(c.name(), 10_000)
        .unwrap();
    let raw = open_raw_rw(c.name());
    raw.write_at(VERSION_OFFSET, &2u32.to_le_bytes()).unwrap();
    match SegmentOptions::new()
        .init_timeout(MUST_NOT_WAIT)
        .open(c.name())
    {
        Err(OpenError::UnsupportedVersion {
            name,
            found,
            supported,
        }) => {
            assert_eq!(name, c.name());
            assert_eq!((found, supported), (2, 1));
        }
        other => panic!("open of a version-2 header gave {other:?}"),
    }
    match SegmentOptions::new().inspect(c.name()).unwrap().state {
        SegmentState::Unreadable(reason) => assert!(reason.contains("version 2"), "{reason}"),
        other => panic!("inspect of a version-2 header gave {other:?}"),
    }
}

#[test]
fn an_unknown_init_state_is_corrupt() {
    let c = Cleanup::unique("initstate");
    let _creator = SegmentOptions::new()
        .remove_on_drop(false)
        .create(c.name(), 100)
        .unwrap();
    let raw = open_raw_rw(c.name());
    raw.write_at(INIT_STATE_OFFSET, &0xdead_beef_u32.to_le_bytes())
        .unwrap();
    match SegmentOptions::new()
        .init_timeout(MUST_NOT_WAIT)
        .open(c.name())
    {
        Err(OpenError::Corrupt { name, reason }) => {
            assert_eq!(name, c.name());
            // One line, the value in hex (it used to be a pretty-printed `Some(..)`).
            assert_eq!(reason, "its init state has the unknown value 0xdeadbeef");
        }
        other => panic!("open with a garbage init state gave {other:?}"),
    }
}

/// A segment whose creator wrote the header fields but died before publishing it: openers
/// time out with `NotInitialized`, inspect says `Initializing`.
#[test]
fn a_header_never_published_times_out_as_not_initialized() {
    let c = Cleanup::unique("unpub");
    let _creator = SegmentOptions::new()
        .remove_on_drop(false)
        .create(c.name(), 100)
        .unwrap();
    let raw = open_raw_rw(c.name());
    raw.write_at(INIT_STATE_OFFSET, &[0; 4]).unwrap();
    let timeout = Duration::from_millis(100);
    match SegmentOptions::new().init_timeout(timeout).open(c.name()) {
        Err(OpenError::NotInitialized { name, waited }) => {
            assert_eq!(name, c.name());
            assert_eq!(waited, timeout);
        }
        other => panic!("open of an unpublished header gave {other:?}"),
    }
    // Zero timeout: fail at once, without waiting.
    assert!(matches!(
        SegmentOptions::new()
            .init_timeout(Duration::ZERO)
            .open(c.name()),
        Err(OpenError::NotInitialized { .. })
    ));
    assert_eq!(
        SegmentOptions::new().inspect(c.name()).unwrap().state,
        SegmentState::Initializing
    );
}

/// (4b) A raw object of zero bytes looks like a creator that has not written its header yet:
/// an opener in header mode waits at most its init timeout, then fails cleanly: "not a
/// shmwire segment" where the OS records the object's age (it stayed blank longer than any
/// creator may take), "not initialized" where it does not (Windows).
#[test]
fn a_zeroed_raw_object_opened_with_a_header_is_not_initialized() {
    for size in [4096, 4097, 3 * 4096] {
        // A fresh name each time: on Windows a name cannot be removed while we hold it.
        let c = Cleanup::unique("zeros");
        let _raw = SegmentOptions::new()
            .raw(true)
            .remove_on_drop(false)
            .create(c.name(), size)
            .unwrap();
        let timeout = Duration::from_millis(100);
        match SegmentOptions::new().init_timeout(timeout).open(c.name()) {
            Err(OpenError::NotShmwire { name }) if cfg!(unix) => assert_eq!(name, c.name()),
            Err(OpenError::NotInitialized { name, waited }) if cfg!(windows) => {
                assert_eq!(name, c.name());
                assert_eq!(waited, timeout);
            }
            other => panic!("header open of {size} zero bytes gave {other:?}"),
        }
        let ins = SegmentOptions::new().inspect(c.name()).unwrap();
        assert_eq!(ins.state, SegmentState::Foreign, "zero pages look foreign");
        #[cfg(unix)]
        assert_eq!(ins.os_size, size);
    }
}

/// (4c) Non-zero garbage where the header would be: not shmwire, at once.
#[test]
fn a_raw_object_of_garbage_opened_with_a_header_is_not_shmwire() {
    // Garbage only in the magic (init state still 0), across the whole first page (init
    // state too), and in an object smaller than a header.
    let cases: [(u64, usize); 3] = [(4096, 8), (8192, 4096), (100, 100)];
    for (size, garbage_len) in cases {
        let c = Cleanup::unique("garbage");
        let raw = SegmentOptions::new()
            .raw(true)
            .remove_on_drop(false)
            .create(c.name(), size)
            .unwrap();
        raw.write_at(0, &vec![0xA7; garbage_len]).unwrap();
        for opts in [
            SegmentOptions::new().init_timeout(MUST_NOT_WAIT),
            SegmentOptions::new()
                .init_timeout(MUST_NOT_WAIT)
                .read_only(true),
        ] {
            match opts.open(c.name()) {
                Err(OpenError::NotShmwire { name }) => assert_eq!(name, c.name()),
                other => panic!("header open of {size} bytes of garbage gave {other:?}"),
            }
        }
        let err = Segment::open(c.name()).unwrap_err();
        assert!(err.to_string().contains("no shmwire header"), "{err}");
        assert_eq!(
            SegmentOptions::new().inspect(c.name()).unwrap().state,
            SegmentState::Foreign
        );
        drop(raw);
    }
}

/// A header promising more payload than the object holds (the object was truncated by
/// someone else) is refused before the payload is touched.
#[cfg(target_os = "linux")]
#[test]
fn a_truncated_object_is_corrupt() {
    let c = Cleanup::unique("trunc");
    drop(
        SegmentOptions::new()
            .remove_on_drop(false)
            .create(c.name(), 10_000)
            .unwrap(),
    );
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(std::path::Path::new("/dev/shm").join(c.name()))
        .unwrap();
    file.set_len(HEADER_LEN + 9_999).unwrap();
    match SegmentOptions::new()
        .init_timeout(MUST_NOT_WAIT)
        .open(c.name())
    {
        Err(OpenError::Corrupt { reason, .. }) => assert!(reason.contains("truncated"), "{reason}"),
        other => panic!("open of a truncated segment gave {other:?}"),
    }
    assert!(matches!(
        SegmentOptions::new().inspect(c.name()).unwrap().state,
        SegmentState::Unreadable(_)
    ));
    // Shorter than the header itself: not a shmwire segment at all.
    file.set_len(HEADER_LEN - 1).unwrap();
    assert!(matches!(
        SegmentOptions::new()
            .init_timeout(MUST_NOT_WAIT)
            .open(c.name()),
        Err(OpenError::NotShmwire { .. })
    ));
}

#[test]
fn reads_and_writes_are_bounds_checked() {
    let c = Cleanup::unique("bounds");
    let seg = Segment::create(c.name(), 1000).unwrap();
    let ones = [1u8; 16];
    seg.write_at(0, &[0xEE; 1000]).unwrap();

    let out_of_range = |r: Result<(), AccessError>, offset: u64, len: u64| match r {
        Err(AccessError::OutOfRange {
            name,
            offset: o,
            len: l,
            size,
        }) => {
            assert_eq!(name, c.name());
            assert_eq!((o, l, size), (offset, len, 1000));
        }
        other => panic!("access of {len} at {offset} gave {other:?}"),
    };
    // Straddling the end: nothing written.
    out_of_range(seg.write_at(990, &ones), 990, 16);
    out_of_range(seg.write_at(1000, &ones[..1]), 1000, 1);
    out_of_range(seg.write_at(u64::MAX, &ones), u64::MAX, 16);
    out_of_range(seg.write_at(u64::MAX - 7, &ones), u64::MAX - 7, 16);
    let mut buf = [0u8; 16];
    out_of_range(seg.read_at(990, &mut buf), 990, 16);
    out_of_range(seg.read_at(u64::MAX, &mut buf), u64::MAX, 16);
    assert_eq!(buf, [0; 16], "a failed read leaves the buffer alone");
    let mut all = vec![0u8; 1000];
    seg.read_at(0, &mut all).unwrap();
    assert!(
        all.iter().all(|&b| b == 0xEE),
        "a failed write wrote something"
    );

    // The last byte and empty accesses at the end are fine.
    seg.write_at(999, &[7]).unwrap();
    seg.write_at(1000, &[]).unwrap();
    seg.read_at(1000, &mut []).unwrap();
    let mut last = [0u8; 1];
    seg.read_at(999, &mut last).unwrap();
    assert_eq!(last, [7]);

    // Atomics: aligned and in bounds only.
    assert!(seg.atomic_u32(0).is_some());
    assert!(seg.atomic_u32(2).is_none());
    assert!(seg.atomic_u32(996).is_some());
    assert!(seg.atomic_u32(1000).is_none());
    assert!(seg.atomic_u64(992).is_some());
    assert!(seg.atomic_u64(996).is_none());
    assert!(seg.atomic_u64(u64::MAX - 7).is_none());
}

#[test]
fn atomics_are_shared_between_handles() {
    use std::sync::atomic::Ordering;
    let c = Cleanup::unique("atomics");
    let a = Segment::create(c.name(), 64).unwrap();
    let b = Segment::open(c.name()).unwrap();
    assert_ne!(a.as_ptr(), b.as_ptr(), "two separate mappings");
    a.atomic_u64(8).unwrap().store(41, Ordering::Release);
    assert_eq!(b.atomic_u64(8).unwrap().fetch_add(1, Ordering::AcqRel), 41);
    assert_eq!(a.atomic_u64(8).unwrap().load(Ordering::Acquire), 42);
    let mut bytes = [0u8; 8];
    a.read_at(8, &mut bytes).unwrap();
    assert_eq!(u64::from_ne_bytes(bytes), 42);
}

#[test]
fn an_owned_segment_is_removed_on_drop() {
    let c = Cleanup::unique("owned");
    let seg = Segment::create(c.name(), 100).unwrap();
    assert!(seg.is_owned());
    drop(seg);
    assert!(matches!(
        Segment::open(c.name()),
        Err(OpenError::NotFound { .. })
    ));
    #[cfg(target_os = "linux")]
    assert!(!common::dev_shm_has(c.name()));
    match SegmentOptions::new().remove(c.name()) {
        Err(RemoveError::NotFound { name }) => assert_eq!(name, c.name()),
        other => panic!("remove of a removed segment gave {other:?}"),
    }
    // The name is free again.
    let again = Segment::create(c.name(), 100).unwrap();
    assert_eq!(again.len(), 100);
}

#[test]
fn a_persisted_segment_outlives_its_creator_handle() {
    require!(
        "names-outlive-handles",
        shmwire::NAMES_OUTLIVE_HANDLES,
        "sections die with their last handle on this platform"
    );
    let c = Cleanup::unique("persist");
    let mut seg = Segment::create(c.name(), 100).unwrap();
    seg.write_at(0, b"still here").unwrap();
    seg.release_ownership();
    assert!(!seg.is_owned());
    drop(seg);
    // The same through the options.
    let c2 = Cleanup::unique("persist2");
    let seg2 = SegmentOptions::new()
        .remove_on_drop(false)
        .create(c2.name(), 10)
        .unwrap();
    assert!(!seg2.is_owned());
    drop(seg2);
    assert!(Segment::open(c2.name()).is_ok());

    let opened = Segment::open(c.name()).unwrap();
    let mut buf = [0u8; 10];
    opened.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"still here");
    drop(opened);
    SegmentOptions::new().remove(c.name()).unwrap();
    assert!(matches!(
        Segment::open(c.name()),
        Err(OpenError::NotFound { .. })
    ));
    // Nothing needs holding here.
    let seg = Segment::create(c.name(), 1).unwrap();
    let err = seg.hold_until_removed(&mut || {}).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
}

#[test]
fn open_or_create_in_one_process_creates_once() {
    let c = Cleanup::unique("ooc");
    let mut ran = 0;
    let (a, how) = SegmentOptions::new()
        .open_or_create(c.name(), 256, |seg| {
            ran += 1;
            seg.write_at(0, b"initialised")?;
            Ok(())
        })
        .unwrap();
    assert_eq!((how, ran), (Opened::Created, 1));
    assert!(a.is_owned());
    let (b, how) = SegmentOptions::new()
        .open_or_create(c.name(), 256, |_| panic!("init ran twice"))
        .unwrap();
    assert_eq!(how, Opened::Existing);
    let mut buf = [0u8; 11];
    b.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"initialised");
    assert_eq!(b.info(), a.info());
}

#[test]
fn raw_segments_have_no_header() {
    let c = Cleanup::unique("raw");
    let data = pattern(3, 100);
    let seg = SegmentOptions::new()
        .raw(true)
        .create(c.name(), 100)
        .unwrap();
    assert!(seg.is_raw());
    assert_eq!(seg.info(), None);
    assert_eq!(seg.len(), 100);
    seg.write_at(0, &data).unwrap();

    let opened = SegmentOptions::new().raw(true).open(c.name()).unwrap();
    assert!(opened.is_raw());
    if cfg!(unix) {
        assert_eq!(opened.len(), 100, "POSIX reports the exact size");
    } else {
        assert!(opened.len() >= 100, "Windows rounds up to the page size");
    }
    let mut back = vec![0u8; 100];
    opened.read_at(0, &mut back).unwrap();
    assert_eq!(back, data);
    // Byte 0 of the object is byte 0 of the payload.
    // SAFETY: a live mapping of at least 100 bytes; we read one byte, and no other thread or
    // process writes this segment.
    let x = unsafe { seg.as_ptr().read_volatile() };
    // SAFETY: as above, through the other handle.
    let y = unsafe { opened.as_ptr().read_volatile() };
    assert_eq!((x, y), (data[0], data[0]));
}

/// Creates and opens a segment whose name is `len` bytes long; checks the header keeps it.
fn round_trip_name_of_len(len: usize) {
    let base = common::unique_name("longest");
    let name = format!("{base}{}", "n".repeat(len - base.len()));
    assert_eq!(name.len(), len);
    let c = Cleanup(name);
    let seg = Segment::create(c.name(), 10).unwrap();
    assert_eq!(seg.info().unwrap().name, c.name());
    let opened = Segment::open(c.name()).unwrap();
    assert_eq!(opened.info().unwrap().name, c.name());
    #[cfg(target_os = "linux")]
    assert!(common::dev_shm_has(c.name()));
}

#[test]
fn a_name_one_byte_below_the_maximum_round_trips() {
    round_trip_name_of_len(Name::MAX_LEN - 1);
}

/// The longest name `Name` accepts must also work with the OS.
#[test]
fn the_longest_valid_name_round_trips() {
    round_trip_name_of_len(Name::MAX_LEN);
}

/// An init timeout of `Duration::MAX` means "wait as long as it takes", not a panic.
#[test]
fn an_unbounded_init_timeout_does_not_panic() {
    let c = Cleanup::unique("maxwait");
    let _seg = Segment::create(c.name(), 10).unwrap();
    let opened = SegmentOptions::new()
        .init_timeout(Duration::MAX)
        .open(c.name())
        .unwrap();
    assert_eq!(opened.len(), 10);
}

/// A zero-length object, as another program leaves it after `shm_open` without
/// `ftruncate`: raw mode opens it empty, header mode waits and gives up cleanly.
#[cfg(target_os = "linux")]
#[test]
fn an_empty_object_from_another_program() {
    let c = Cleanup::unique("empty");
    std::fs::File::create(std::path::Path::new("/dev/shm").join(c.name())).unwrap();
    let raw = SegmentOptions::new().raw(true).open(c.name()).unwrap();
    assert_eq!(raw.len(), 0);
    assert!(raw.is_empty());
    raw.read_at(0, &mut []).unwrap();
    assert!(matches!(
        raw.read_at(0, &mut [0]),
        Err(AccessError::OutOfRange { size: 0, .. })
    ));
    let timeout = Duration::from_millis(100);
    assert!(matches!(
        SegmentOptions::new().init_timeout(timeout).open(c.name()),
        Err(OpenError::NotInitialized { waited, .. }) if waited == timeout
    ));
    let ins = SegmentOptions::new().inspect(c.name()).unwrap();
    assert_eq!((ins.os_size, ins.state), (0, SegmentState::Foreign));
}

/// An owner's drop removes its own segment only, never a newer one that took the name.
#[test]
fn an_owner_drop_spares_a_newer_segment_of_the_same_name() {
    let c = Cleanup::unique("newer");
    let a = Segment::create(c.name(), 10).unwrap();
    if shmwire::NAMES_OUTLIVE_HANDLES {
        SegmentOptions::new().remove(c.name()).unwrap();
        let _b = SegmentOptions::new()
            .remove_on_drop(false)
            .create(c.name(), 20)
            .unwrap();
        drop(a);
        assert_eq!(
            Segment::open(c.name()).unwrap().len(),
            20,
            "b survives a's drop"
        );
    } else {
        drop(a);
    }
}

/// `open_or_create` refuses an existing segment of another size.
#[test]
fn open_or_create_checks_the_size_of_an_existing_segment() {
    let c = Cleanup::unique("wrongsize");
    let _a = Segment::create(c.name(), 100).unwrap();
    let err = SegmentOptions::new()
        .open_or_create(c.name(), 1 << 20, |_| panic!("must not initialize"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            shmwire::OpenOrCreateError::Open(OpenError::WrongSize {
                expected: 1048576,
                found: 100,
                ..
            })
        ),
        "{err}"
    );
}

/// Defect d of API 0.1: a raw object older than the init timeout, whose first page is still
/// zeros, is not a segment being created: opening it says "not a shmwire segment" at once,
/// where it used to wait out the timeout and then report an unfinished initialization.
#[test]
#[cfg(unix)]
fn an_old_raw_object_is_not_shmwire_at_once() {
    let c = Cleanup::unique("old-raw");
    let _raw = SegmentOptions::new()
        .raw(true)
        .create(c.name(), 8192)
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let e = SegmentOptions::new()
        .init_timeout(Duration::from_secs(1))
        .open(c.name())
        .unwrap_err();
    assert!(matches!(e, OpenError::NotShmwire { .. }), "{e}");
}
