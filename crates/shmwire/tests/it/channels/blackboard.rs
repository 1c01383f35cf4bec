//! Blackboards between processes: readers never see a torn value, even after the writer is
//! killed.

use shmwire::channel::blackboard;

use super::*;

// -------------------------------------------------------------------- 7. blackboard

/// A value with an internal invariant: every field equals the version it was written as.
#[derive(Clone, Copy, Debug, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
#[repr(C)]
struct Stamp {
    fields: [u64; 32],
}

impl Stamp {
    fn new(v: u64) -> Stamp {
        Stamp { fields: [v; 32] }
    }

    /// The version all fields agree on, or a panic describing the torn value.
    #[track_caller]
    fn version(&self) -> u64 {
        let v = self.fields[0];
        assert!(
            self.fields.iter().all(|&f| f == v),
            "an inconsistent value: {:?}",
            self.fields
        );
        v
    }
}

/// Reads of the reader child before it reports (it also needs this many distinct versions).
const BB_READS: u64 = 100_000;
const BB_VERSIONS: u64 = 1000;

pub(super) fn child_bb_writer() {
    common::listen_to_parent();
    let name = child_segment();
    let mut w =
        blackboard::Writer::<Stamp>::open(&name, &ChannelOptions::new()).expect("writer opens");
    for i in 0u64.. {
        let v = w.version() + 1;
        w.write(&Stamp::new(v));
        if i == 1000 {
            report("writing", v);
        }
    }
}

pub(super) fn child_bb_reader() {
    let name = child_segment();
    let r = blackboard::Reader::<Stamp>::open(&name, &ChannelOptions::new()).expect("reader opens");
    let (mut reads, mut distinct, mut last, mut errors) = (0u64, 0u64, 0u64, 0u64);
    let mut first_error = String::new();
    while reads < BB_READS || distinct < BB_VERSIONS {
        match r.read_versioned() {
            Ok(Some((v, stamp))) => {
                assert_eq!(stamp.version(), v, "a value under another version");
                assert!(v >= last, "version {v} after {last}");
                distinct += u64::from(v != last);
                last = v;
                reads += 1;
            }
            Ok(None) => panic!("nothing to read, though the writer had written"),
            // Documented: a writer that overwrites both copies 1000 times during one read.
            Err(e) => {
                if errors == 0 {
                    first_error = e.to_string();
                }
                errors += 1;
            }
        }
    }
    report(
        "checked",
        format!("reads={reads} distinct={distinct} errors={errors} last={last} {first_error}"),
    );
}

#[test]
fn blackboard_readers_never_see_a_torn_value_even_after_the_writer_is_killed() {
    let c = Cleanup::unique("bb");
    let opts = ChannelOptions::new();
    let r = blackboard::Reader::<Stamp>::open(c.name(), &opts).unwrap();
    assert_eq!(r.read().unwrap(), None);
    let mut writer = spawn_child("bb-writer", c.name(), &[]);
    writer.expect_report("writing");
    let mut reader = spawn_child("bb-reader", c.name(), &[]);
    let checked = reader.expect_report("checked");
    reader.wait_success();
    eprintln!("reader child: {checked}");
    let seen: u64 = checked
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("last="))
        .unwrap()
        .parse()
        .unwrap();
    let errors: u64 = checked
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("errors="))
        .unwrap()
        .parse()
        .unwrap();

    // One writer at a time.
    match blackboard::Writer::<Stamp>::open(c.name(), &opts) {
        Err(ChannelOpenError::Busy { role, pid, .. }) => {
            assert_eq!((role, pid), ("writer", writer.id()));
        }
        other => panic!("a second writer while the first lives: {other:?}"),
    }
    // Killed in its tight loop, most likely in the middle of a write.
    writer.kill_running();
    let (v, stamp) = r.read_versioned().unwrap().expect("a value");
    assert_eq!(stamp.version(), v);
    assert!(v >= seen, "version {v} after the reader saw {seen}");
    match r.wait_newer_timeout(v, HANG_GUARD) {
        Err(RecvTimeoutError::Disconnected { .. }) => {}
        other => panic!("waiting for a newer value of a dead writer: {other:?}"),
    }
    // A new writer takes over and continues the versions.
    let mut w = blackboard::Writer::<Stamp>::open(c.name(), &opts)
        .expect("a new writer replaces the killed one");
    assert!(w.version() >= v);
    let next = w.version() + 1;
    w.write(&Stamp::new(next));
    let (v2, stamp) = r.wait_newer_timeout(v, HANG_GUARD).unwrap();
    assert_eq!((v2, stamp.version()), (next, next));
    assert_eq!(r.read().unwrap(), Some(Stamp::new(next)));
    assert_eq!(
        errors, 0,
        "reads failed while the writer was running: {checked}"
    );
}
