//! Garbage collection (`shmwire::gc`) against real processes: creators and endpoints killed
//! with SIGKILL, processes that map a segment or only hold it open, half-created segments,
//! persistent ones, channels left with messages, foreign objects, and a header that names a
//! recycled pid.
//!
//! Hermetic: every test judges and collects with a name prefix of its own (a unique name
//! ending in '_', so no other test's name starts with it), and asserts only about its own
//! segments; segments are removed at the end by `Cleanup` guards. Children re-run this test
//! binary (see `common/mod.rs`).
//!
//! Processes gc cannot inspect: where some exist (e.g. a more privileged pid 1 in a
//! container, or any root process when not run as root), the default verdict for an
//! abandoned segment is "uncertain" instead of "stale". The tests that want removals say
//! `ignore_unseen(true)`; `killed_creator_is_stale_and_removed` checks the default too.

use crate::common::{child_env, child_segment, report, unique_name, wait_for_command};
#[cfg(unix)]
use crate::common::{spawn_child, ChildProc, Cleanup};
#[cfg(target_os = "linux")]
use shmwire::gc::GcReport;
use shmwire::gc::{self, GcOptions, Verdict};
#[cfg(unix)]
use shmwire::OpenError;
use shmwire::SegmentOptions;

/// What a "creator" child makes (see [`child_creator`]).
const MODE_VAR: &str = "SHMWIRE_TEST_GC_MODE";
/// "exit": the child leaves cleanly after creating; otherwise it waits to be killed.
const EXIT_VAR: &str = "SHMWIRE_TEST_GC_EXIT";
/// Messages a "sender" child sends.
const COUNT_VAR: &str = "SHMWIRE_TEST_GC_COUNT";

/// The child processes' roles (see `child_entry` in `main.rs`).
pub(crate) const CHILDREN: &[crate::Role] = &[
    ("creator", child_creator),
    ("mapper", child_mapper),
    ("initializer", child_initializer),
    ("sender", child_sender),
    ("receiver", child_receiver),
];

// ------------------------------------------------------------------------------ children

/// Creates the segment (persisted, so that it outlives this process) as MODE_VAR says:
/// `plain`, `persistent` (marked), `raw-zero`, `raw-junk` (raw, non-zero bytes).
fn child_creator() {
    let name = child_segment();
    let mode = child_env(MODE_VAR);
    let opts = SegmentOptions::new().remove_on_drop(false);
    let seg = match mode.as_str() {
        "plain" => opts.create(&name, 1000),
        "persistent" => opts.keep_in_gc(true).create(&name, 1000),
        "raw-zero" => opts.raw(true).create(&name, 8192),
        "raw-junk" => opts.raw(true).create(&name, 8192),
        other => panic!("unknown mode {other}"),
    }
    .expect("the child creates its segment");
    if mode == "raw-junk" {
        seg.write_at(0, b"not a shmwire header, just somebody's bytes")
            .unwrap();
    }
    report("created", std::process::id());
    if std::env::var(EXIT_VAR).as_deref() != Ok("exit") {
        wait_for_command(); // killed here
    }
}

/// Maps the segment and waits (to be killed, or told to go).
fn child_mapper() {
    let seg = SegmentOptions::new()
        .read_only(true)
        .open(&child_segment())
        .expect("the child opens the segment");
    report("mapped", std::process::id());
    wait_for_command();
    drop(seg);
}

/// Creates the segment and dies (killed) inside its initializer, before publishing it.
fn child_initializer() {
    let name = child_segment();
    let _ = SegmentOptions::new()
        .remove_on_drop(false)
        .open_or_create(&name, 4096, |_| {
            report("initializing", std::process::id());
            wait_for_command(); // killed here
            panic!("the parent was to kill this child");
        });
}

fn channel_options() -> shmwire::channel::ChannelOptions {
    shmwire::channel::ChannelOptions::new().capacity(64 * 1024)
}

/// Opens (creating) an SPSC channel as its sender, sends COUNT_VAR messages, then waits to be
/// killed, or with EXIT_VAR=exit closes cleanly and exits.
fn child_sender() {
    let name = child_segment();
    let mut tx = shmwire::channel::spsc::Sender::open(&name, &channel_options()).unwrap();
    let count: usize = child_env(COUNT_VAR).parse().unwrap();
    for i in 0..count {
        tx.send(format!("message {i}").as_bytes()).unwrap();
    }
    report("attached", std::process::id());
    if std::env::var(EXIT_VAR).as_deref() != Ok("exit") {
        wait_for_command(); // killed here
    }
    drop(tx);
}

/// Opens the SPSC channel as its receiver and waits to be killed.
fn child_receiver() {
    let name = child_segment();
    let _rx = shmwire::channel::spsc::Receiver::open(&name, &channel_options()).unwrap();
    report("attached", std::process::id());
    wait_for_command(); // killed here
}

// ------------------------------------------------------------------------------ helpers

/// A prefix of this test's own: a unique name ending in '_', which no other name of any
/// test starts with.
fn own_prefix(tag: &str) -> String {
    let mut p = unique_name(tag);
    // Room for the '_' and a one-letter suffix on the shortest platform (macOS, 30 bytes).
    while p.len() + 2 > shmwire::Name::MAX_LEN {
        p.remove(4);
    }
    p.push('_');
    p
}

#[cfg(unix)]
fn spawn_creator(name: &str, mode: &str, exit: bool) -> (ChildProc, u32) {
    let mut env = vec![(MODE_VAR, mode.to_owned())];
    if exit {
        env.push((EXIT_VAR, "exit".to_owned()));
    }
    let mut child = spawn_child("creator", name, &env);
    let pid = child.expect_report("created").parse().unwrap();
    if exit {
        child.wait_success();
    }
    (child, pid)
}

/// Whether the name exists (opened raw, read-only, without waiting).
#[cfg(unix)]
fn exists(name: &str) -> bool {
    match SegmentOptions::new().raw(true).read_only(true).open(name) {
        Ok(_) => true,
        Err(OpenError::NotFound { .. }) => false,
        Err(e) => panic!("opening {name}: {e}"),
    }
}

fn names(findings: &[gc::Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.object.name.as_str()).collect()
}

/// Collects until `name` is removed, tolerating a few rounds in which some short-lived
/// process (a parallel `shmwire ls`, say) held it open. Returns the report that removed it.
#[cfg(target_os = "linux")]
#[track_caller]
fn collect_removes(opts: &GcOptions, name: &str) -> GcReport {
    let mut last = None;
    for _ in 0..20 {
        let report = gc::collect(opts).expect("collect");
        if names(&report.removed).contains(&name) {
            return report;
        }
        let transient = report
            .live
            .iter()
            .any(|f| f.object.name == name && f.verdict.reason().starts_with("mapped or open by"));
        if !transient {
            panic!("{name} was not removed: {report:#?}");
        }
        last = Some(report);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{name} stayed in use: {last:#?}");
}

/// The verdict on `name`, waiting out a few rounds in which some short-lived process of
/// another test (one scanning every object, say) holds it open; for verdicts other than
/// "live because mapped".
#[cfg(target_os = "linux")]
#[track_caller]
fn judge_settled(opts: &GcOptions, name: &str) -> Verdict {
    for _ in 0..20 {
        match opts.judge(name).expect("judge") {
            Verdict::Live(why) if why.starts_with("mapped or open by") => {
                std::thread::sleep(std::time::Duration::from_millis(100))
            }
            other => return other,
        }
    }
    panic!("{name} stayed in use by other processes")
}

#[cfg(unix)]
fn ignoring_unseen(prefix: &str) -> GcOptions {
    GcOptions::new().prefix(prefix).ignore_unseen(true)
}

// -------------------------------------------------------------------------------- tests

#[cfg(target_os = "linux")]
#[test]
fn killed_creator_is_stale_and_removed() {
    let prefix = own_prefix("gc-killed");
    let name = format!("{prefix}a");
    let _c = Cleanup(name.clone());
    let (mut child, pid) = spawn_creator(&name, "plain", false);
    assert!(
        matches!(gc::judge(&name), Ok(Verdict::Live(ref why)) if why.contains(&format!("creator, pid {pid}, is alive"))),
        "{:?}",
        gc::judge(&name)
    );
    child.kill_running();

    let strict = GcOptions::new().prefix(&prefix);
    let relaxed = ignoring_unseen(&prefix);
    match judge_settled(&relaxed, &name) {
        Verdict::Stale(why) => {
            assert!(why.contains(&format!("pid {pid}, is gone")), "{why}");
            assert!(why.contains("maps it"), "{why}");
        }
        other => panic!("{other:?}"),
    }

    // A dry run says it would go, and removes nothing.
    let dry = gc::collect(&relaxed.clone().dry_run(true)).unwrap();
    assert!(dry.dry_run);
    assert_eq!(names(&dry.removed), [name.as_str()]);
    assert!(exists(&name), "a dry run removes nothing");

    // The default does not guess about processes it cannot see.
    match judge_settled(&strict, &name) {
        Verdict::Stale(_) => {
            collect_removes(&strict, &name);
        }
        Verdict::Uncertain(why) => {
            assert!(why.contains("cannot see what"), "{why}");
            let report = gc::collect(&strict).unwrap();
            assert_eq!(names(&report.uncertain), [name.as_str()], "{report:#?}");
            assert!(report.removed.is_empty());
            assert!(exists(&name), "an uncertain segment stays");
            collect_removes(&relaxed, &name);
        }
        other => panic!("{other:?}"),
    }
    assert!(!exists(&name), "removed");
    assert!(matches!(gc::judge(&name), Err(OpenError::NotFound { .. })));
}

#[cfg(target_os = "linux")]
#[test]
fn dead_creator_but_a_live_mapper_is_live() {
    let prefix = own_prefix("gc-mapped");
    let name = format!("{prefix}a");
    let _c = Cleanup(name.clone());
    let (mut creator, _) = spawn_creator(&name, "plain", false);
    let mut mapper = spawn_child("mapper", &name, &[]);
    let mapper_pid: u32 = mapper.expect_report("mapped").parse().unwrap();
    creator.kill_running();

    let opts = ignoring_unseen(&prefix).include_kept(true);
    match opts.judge(&name).unwrap() {
        Verdict::Live(why) => assert_eq!(why, format!("mapped or open by pid {mapper_pid}")),
        other => panic!("{other:?}"),
    }
    let report = gc::collect(&opts).unwrap();
    assert_eq!(names(&report.live), [name.as_str()], "{report:#?}");
    assert!(report.removed.is_empty());
    assert!(exists(&name));

    mapper.kill_running();
    collect_removes(&opts, &name);
    assert!(!exists(&name));
}

#[cfg(target_os = "linux")]
#[test]
fn a_process_holding_only_a_descriptor_is_a_user() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    let prefix = own_prefix("gc-fd");
    let name = format!("{prefix}a");
    let _c = Cleanup(name.clone());
    spawn_creator(&name, "plain", true);
    // A shell that opens /dev/shm/NAME on descriptor 3 and maps nothing.
    let mut sh = Command::new("sh")
        .args([
            "-c",
            "exec 3< \"/dev/shm/$1\" && echo ready && read _",
            "sh",
            &name,
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sh.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");

    let opts = ignoring_unseen(&prefix);
    match opts.judge(&name).unwrap() {
        Verdict::Live(why) => assert_eq!(why, format!("mapped or open by pid {}", sh.id())),
        other => panic!("{other:?}"),
    }
    assert!(gc::collect(&opts).unwrap().removed.is_empty());
    assert!(exists(&name));

    writeln!(sh.stdin.take().unwrap()).unwrap();
    assert!(sh.wait().unwrap().success());
    collect_removes(&opts, &name);
}

#[cfg(unix)]
#[test]
fn a_live_creator_keeps_its_segment() {
    let prefix = own_prefix("gc-live");
    // Ours: created by this process, which is alive.
    let ours = format!("{prefix}a");
    let seg = SegmentOptions::new().create(&ours, 100).unwrap();
    // Another live process's.
    let theirs = format!("{prefix}b");
    let _c = Cleanup(theirs.clone());
    let (_child, pid) = spawn_creator(&theirs, "plain", false);

    let opts = ignoring_unseen(&prefix).include_kept(true);
    let me = std::process::id();
    for (name, creator) in [(&ours, me), (&theirs, pid)] {
        match opts.judge(name).unwrap() {
            Verdict::Live(why) => {
                assert_eq!(why, format!("its creator, pid {creator}, is alive"))
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    if cfg!(target_os = "linux") {
        let report = gc::collect(&opts).unwrap();
        let mut live = names(&report.live);
        live.sort();
        assert_eq!(live, [ours.as_str(), theirs.as_str()], "{report:#?}");
        assert!(report.removed.is_empty());
        assert!(exists(&ours) && exists(&theirs));
    }
    drop(seg);
}

/// A segment whose header names this process's pid with another start time: the pid was
/// "reused", so the creator is dead. The header is written by hand, from `docs/layout.md`.
#[cfg(target_os = "linux")]
#[test]
fn a_recycled_creator_pid_is_dead() {
    let prefix = own_prefix("gc-recycled");
    let me = shmwire::current_process();
    assert_ne!(me.start_time, 0);
    let impostor = format!("{prefix}a");
    let genuine = format!("{prefix}b");
    let _c1 = Cleanup(impostor.clone());
    let _c2 = Cleanup(genuine.clone());
    for (name, start) in [(&impostor, me.start_time + 1), (&genuine, me.start_time)] {
        let size = 100u64;
        let seg = SegmentOptions::new()
            .raw(true)
            .remove_on_drop(false)
            .create(name, 4096 + size)
            .unwrap();
        seg.write_at(0, &header(name, size, me.pid, start)).unwrap();
        // Published, as a creator does last.
        seg.write_at(384, &0x5245_4459u32.to_le_bytes()).unwrap();
        // Unmapped: this process must not count as a user.
    }
    let opts = ignoring_unseen(&prefix);
    match judge_settled(&opts, &impostor) {
        Verdict::Stale(why) => {
            assert!(why.contains(&format!("pid {}, is gone", me.pid)), "{why}")
        }
        other => panic!("{other:?}"),
    }
    match opts.judge(&genuine).unwrap() {
        Verdict::Live(why) => assert!(why.contains("is alive"), "{why}"),
        other => panic!("{other:?}"),
    }
    let report = collect_removes(&opts, &impostor);
    assert_eq!(names(&report.live), [genuine.as_str()]);
    assert!(exists(&genuine));
}

/// Header bytes of layout version 1 (`docs/layout.md`, "Segment header").
#[cfg(target_os = "linux")]
fn header(name: &str, size: u64, pid: u32, start: u64) -> Vec<u8> {
    let mut h = vec![0u8; 344];
    h[0..8].copy_from_slice(b"SHMWIRE\0");
    h[8..12].copy_from_slice(&1u32.to_le_bytes()); // version
    h[16..24].copy_from_slice(&4096u64.to_le_bytes()); // payload offset
    h[24..32].copy_from_slice(&size.to_le_bytes());
    h[32..36].copy_from_slice(&1u32.to_le_bytes()); // kind: bytes
    h[48..52].copy_from_slice(&pid.to_le_bytes());
    h[56..64].copy_from_slice(&start.to_le_bytes());
    h[64..72].copy_from_slice(&1u64.to_le_bytes()); // created
    h[72..76].copy_from_slice(&(name.len() as u32).to_le_bytes());
    h[80..80 + name.len()].copy_from_slice(name.as_bytes());
    let sum = xxhash_rust::xxh3::xxh3_64(&h[..336]);
    h[336..344].copy_from_slice(&sum.to_le_bytes());
    h
}

#[cfg(target_os = "linux")]
#[test]
fn a_channel_is_live_while_an_endpoint_lives_and_removed_once_all_were_killed() {
    let prefix = own_prefix("gc-chan");
    let name = format!("{prefix}a");
    let _c = Cleanup(name.clone());
    let mut sender = spawn_child("sender", &name, &[(COUNT_VAR, "3".to_owned())]);
    let sender_pid: u32 = sender.expect_report("attached").parse().unwrap();
    let mut receiver = spawn_child("receiver", &name, &[]);
    let receiver_pid: u32 = receiver.expect_report("attached").parse().unwrap();
    let opts = ignoring_unseen(&prefix).include_kept(true);

    // The sender created the channel; with it dead, the live receiver (registered in the
    // peer table) keeps it.
    sender.kill_running();
    match opts.judge(&name).unwrap() {
        Verdict::Live(why) => assert_eq!(
            why,
            format!("its receiving endpoint, pid {receiver_pid}, is alive")
        ),
        other => panic!("{other:?}"),
    }
    let report = gc::collect(&opts).unwrap();
    assert_eq!(names(&report.live), [name.as_str()], "{report:#?}");
    assert!(exists(&name));

    // Both killed, messages still queued: killed is not "left cleanly", so it is stale.
    receiver.kill_running();
    match judge_settled(&opts, &name) {
        Verdict::Stale(why) => {
            assert!(why.contains(&format!("pid {sender_pid}, is gone")), "{why}");
            assert!(why.contains("its 2 channel endpoints are dead"), "{why}");
        }
        other => panic!("{other:?}"),
    }
    collect_removes(&ignoring_unseen(&prefix), &name);
    assert!(!exists(&name));
}

#[cfg(target_os = "linux")]
#[test]
fn a_channel_left_cleanly_with_messages_is_kept_unless_all() {
    let prefix = own_prefix("gc-queued");
    let name = format!("{prefix}a");
    let _c = Cleanup(name.clone());
    let mut sender = spawn_child(
        "sender",
        &name,
        &[(COUNT_VAR, "3".to_owned()), (EXIT_VAR, "exit".to_owned())],
    );
    sender.expect_report("attached");
    sender.wait_success();
    assert!(
        exists(&name),
        "a queue with messages outlives its endpoints"
    );

    let opts = ignoring_unseen(&prefix);
    match judge_settled(&opts, &name) {
        Verdict::Kept(why) => assert!(why.contains("messages queued"), "{why}"),
        other => panic!("{other:?}"),
    }
    let report = gc::collect(&opts).unwrap();
    assert_eq!(names(&report.kept), [name.as_str()], "{report:#?}");
    assert!(exists(&name));
    collect_removes(&opts.include_kept(true), &name);
    assert!(!exists(&name));
}

#[cfg(target_os = "linux")]
#[test]
fn a_persistent_segment_is_kept_unless_all() {
    let prefix = own_prefix("gc-persist");
    let name = format!("{prefix}a");
    let plain = format!("{prefix}b");
    let _c = Cleanup(name.clone());
    let _c2 = Cleanup(plain.clone());
    spawn_creator(&name, "persistent", true);
    spawn_creator(&plain, "plain", true);

    let opts = ignoring_unseen(&prefix);
    let info = SegmentOptions::new().open(&name).unwrap();
    assert!(info.info().unwrap().persistent);
    drop(info);
    match judge_settled(&opts, &name) {
        Verdict::Kept(why) => assert!(why.contains("marked persistent"), "{why}"),
        other => panic!("{other:?}"),
    }
    // One collection: the plain one goes, the persistent one stays.
    let report = collect_removes(&opts, &plain);
    assert_eq!(names(&report.kept), [name.as_str()], "{report:#?}");
    assert!(exists(&name) && !exists(&plain));
    collect_removes(&opts.include_kept(true), &name);
    assert!(!exists(&name));
}

#[cfg(target_os = "linux")]
#[test]
fn foreign_objects_are_never_touched() {
    let prefix = own_prefix("gc-foreign");
    let zero = format!("{prefix}a");
    let junk = format!("{prefix}b");
    // Not a name shmwire would accept, so certainly not a segment of ours.
    let odd = format!("{prefix}c~shmwire-x");
    let _c1 = Cleanup(zero.clone());
    let _c2 = Cleanup(junk.clone());
    let odd_path = std::path::Path::new("/dev/shm").join(&odd);
    struct RmFile(std::path::PathBuf);
    impl Drop for RmFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _c3 = RmFile(odd_path.clone());
    spawn_creator(&zero, "raw-zero", true);
    spawn_creator(&junk, "raw-junk", true);
    std::fs::write(&odd_path, vec![0u8; 8192]).unwrap();

    let everything = ignoring_unseen(&prefix)
        .include_kept(true)
        .init_grace(std::time::Duration::ZERO);
    let report = gc::collect(&everything).unwrap();
    let mut foreign = names(&report.foreign);
    foreign.sort();
    assert_eq!(
        foreign,
        [zero.as_str(), junk.as_str(), odd.as_str()],
        "{report:#?}"
    );
    assert!(report.removed.is_empty() && report.failed.is_empty());
    assert!(exists(&zero) && exists(&junk) && odd_path.exists());
    for f in &report.foreign {
        assert!(matches!(f.verdict, Verdict::Foreign(_)));
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_half_created_segment_waits_its_grace_then_goes() {
    let prefix = own_prefix("gc-init");
    let name = format!("{prefix}a");
    let _c = Cleanup(name.clone());
    let mut child = spawn_child("initializer", &name, &[]);
    let pid: u32 = child.expect_report("initializing").parse().unwrap();
    // While its creator works on it, it is live whatever its age.
    let no_grace = ignoring_unseen(&prefix).init_grace(std::time::Duration::ZERO);
    assert!(matches!(no_grace.judge(&name).unwrap(), Verdict::Live(_)));
    child.kill_running();

    match ignoring_unseen(&prefix).judge(&name).unwrap() {
        Verdict::Live(why) => assert!(why.starts_with("still being created"), "{why}"),
        other => panic!("a fresh one gets its grace: {other:?}"),
    }
    match judge_settled(&no_grace, &name) {
        Verdict::Stale(why) => assert!(
            why.contains(&format!("pid {pid}, died before finishing it")),
            "{why}"
        ),
        other => panic!("{other:?}"),
    }
    collect_removes(&no_grace, &name);
    assert!(!exists(&name));
}

#[cfg(target_os = "linux")]
#[test]
fn a_prefix_keeps_collect_away_from_other_names() {
    let prefix = own_prefix("gc-prefix");
    let mine = format!("{prefix}a");
    let other_prefix = own_prefix("gc-prefix");
    let other = format!("{other_prefix}a");
    let _c1 = Cleanup(mine.clone());
    let _c2 = Cleanup(other.clone());
    spawn_creator(&mine, "plain", true);
    spawn_creator(&other, "plain", true);
    let report = collect_removes(&ignoring_unseen(&prefix), &mine);
    assert_eq!(names(&report.removed), [mine.as_str()]);
    assert!(exists(&other), "outside the prefix: not touched");
    // It was stale too.
    collect_removes(&ignoring_unseen(&other_prefix), &other);
}

/// Windows removes a section with its last handle: whatever exists is in use.
#[cfg(windows)]
#[test]
fn on_windows_everything_that_exists_is_live() {
    let prefix = own_prefix("gc-win");
    let name = format!("{prefix}a");
    let seg = SegmentOptions::new().create(&name, 100).unwrap();
    let opts = GcOptions::new()
        .prefix(&prefix)
        .ignore_unseen(true)
        .include_kept(true);
    assert!(matches!(opts.judge(&name).unwrap(), Verdict::Live(_)));
    match gc::collect(&opts) {
        Ok(report) => {
            assert!(report.removed.is_empty(), "{report:#?}");
            assert_eq!(names(&report.live), [name.as_str()]);
        }
        // Listing may be unavailable (e.g. an old Wine).
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::Unsupported, "{e}"),
    }
    drop(seg);
}
