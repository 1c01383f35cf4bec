//! What holds for every flavor: channels describe themselves and refuse the wrong flavor,
//! type or capacity; a channel goes with its last endpoint; and regressions (a refused
//! opener, the `try_` forms after a disconnect).

use shmwire::channel::{blackboard, broadcast, mpmc, spsc};

use super::mpmc::mpmc_opts;
use super::spsc::DYING_RING;
use super::*;

// ------------------------------------------------------------ 8. self-description

const DESCRIBED_RING: u64 = 64 * 1024;
const DESCRIBED_SLOTS: u64 = 16;

/// Child: creates an SPSC channel (holding its sender), an MPMC channel of u64 (holding a
/// receiver) and a blackboard of u64 (holding the writer), then waits.
pub(super) fn child_describer() {
    let spsc_name = child_segment();
    let _tx = spsc::Sender::open(&spsc_name, &ring(DESCRIBED_RING)).unwrap();
    let _rx = mpmc::Receiver::open(
        &child_env(AUX_VAR),
        &ChannelOptions::new()
            .capacity(DESCRIBED_SLOTS)
            .message_type::<u64>(),
    )
    .unwrap();
    let mut w =
        blackboard::Writer::<u64>::open(&child_env(AUX2_VAR), &ChannelOptions::new()).unwrap();
    w.write(&7);
    report("ready", 1);
    assert_eq!(wait_for_command(), "exit");
}

#[track_caller]
fn expect_wrong_kind<T: std::fmt::Debug>(
    got: Result<T, ChannelOpenError>,
    expected: Kind,
    found: Kind,
) {
    match got {
        Err(ChannelOpenError::Segment(OpenOrCreateError::Open(OpenError::WrongKind {
            expected: e,
            found: f,
            ..
        }))) => assert_eq!((e, f), (expected, found)),
        other => panic!("expected WrongKind {expected} / {found}, got {other:?}"),
    }
}

#[track_caller]
fn expect_mismatch<T: std::fmt::Debug>(got: Result<T, ChannelOpenError>, name: &str) {
    match got {
        Err(e @ ChannelOpenError::Mismatch { .. }) => {
            assert!(e.to_string().contains(name), "{e}");
        }
        other => panic!("expected Mismatch, got {other:?}"),
    }
}

#[test]
fn channels_describe_themselves_and_refuse_the_wrong_flavor_type_or_capacity() {
    let a = Cleanup::unique("desc-spsc");
    let b = Cleanup::unique("desc-mpmc");
    let bb = Cleanup::unique("desc-bb");
    let mut child = spawn_child(
        "describer",
        a.name(),
        &[(AUX_VAR, b.0.clone()), (AUX2_VAR, bb.0.clone())],
    );
    child.expect_report("ready");
    let any = ChannelOptions::new();

    // The segment kind says which flavor a channel is.
    expect_wrong_kind(mpmc::Receiver::open(a.name(), &any), Kind::MPMC, Kind::SPSC);
    expect_wrong_kind(mpmc::Sender::open(a.name(), &any), Kind::MPMC, Kind::SPSC);
    expect_wrong_kind(
        broadcast::Subscriber::open(a.name(), &any),
        Kind::BROADCAST,
        Kind::SPSC,
    );
    expect_wrong_kind(
        blackboard::Reader::<u64>::open(a.name(), &any),
        Kind::BLACKBOARD,
        Kind::SPSC,
    );
    expect_wrong_kind(spsc::Receiver::open(b.name(), &any), Kind::SPSC, Kind::MPMC);
    expect_wrong_kind(
        mpmc::Sender::open(bb.name(), &any),
        Kind::MPMC,
        Kind::BLACKBOARD,
    );

    // The message type: size and name.
    let typed = |t: ChannelOptions| t.capacity(DESCRIBED_SLOTS);
    expect_mismatch(
        mpmc::Sender::open(
            b.name(),
            &typed(ChannelOptions::new().message_type::<[u8; 16]>()),
        ),
        b.name(),
    );
    expect_mismatch(
        mpmc::Sender::open(b.name(), &ChannelOptions::new().message_type::<i64>()),
        b.name(),
    );
    expect_mismatch(
        spsc::Receiver::open(a.name(), &ChannelOptions::new().message_type::<u64>()),
        a.name(),
    );
    expect_mismatch(blackboard::Reader::<u32>::open(bb.name(), &any), bb.name());
    expect_mismatch(blackboard::Reader::<i64>::open(bb.name(), &any), bb.name());
    let mut tx = mpmc::Sender::open(
        b.name(),
        &typed(ChannelOptions::new().message_type::<u64>()),
    )
    .expect("the right type opens");
    assert_eq!(tx.message_size(), 8);
    tx.send_value(&42u64).unwrap();
    let r = blackboard::Reader::<u64>::open(bb.name(), &any).expect("the right type opens");
    assert_eq!(r.read().unwrap(), Some(7));

    // Capacity and message size, when given explicitly.
    expect_mismatch(
        spsc::Receiver::open(a.name(), &ring(2 * DESCRIBED_RING)),
        a.name(),
    );
    expect_mismatch(
        mpmc::Receiver::open(
            b.name(),
            &ChannelOptions::new().capacity(2 * DESCRIBED_SLOTS),
        ),
        b.name(),
    );
    expect_mismatch(
        mpmc::Receiver::open(b.name(), &ChannelOptions::new().message_size(16)),
        b.name(),
    );
    let rx = spsc::Receiver::open(a.name(), &ring(DESCRIBED_RING)).expect("the same capacity");
    assert_eq!(rx.capacity(), DESCRIBED_RING);
    drop(rx);
    let rx = spsc::Receiver::open(a.name(), &any).expect("capacity taken from the channel");
    assert_eq!(rx.capacity(), DESCRIBED_RING);
    drop(rx);
    let mut rx = mpmc::Receiver::open(b.name(), &any).expect("untyped opener of a typed channel");
    assert_eq!(rx.recv_value::<u64>().unwrap(), 42);

    child.send("exit");
    child.wait_success();
}

// ---------------------------------------------------------------------- 9. cleanup

/// Child: opens the sender, sends one message, closes when told, reports.
pub(super) fn child_spsc_closer() {
    let name = child_segment();
    let mut tx = spsc::Sender::open(&name, &ring(DYING_RING)).expect("child opens");
    tx.send(&encode(0, 10)).unwrap();
    report("sent", 1);
    assert_eq!(wait_for_command(), "close");
    drop(tx);
    report("closed", 1);
}

/// Child: opens a receiver, receives one message, closes when told.
pub(super) fn child_spsc_receiver_closer() {
    let name = child_segment();
    let mut rx = spsc::Receiver::open(&name, &ring(DYING_RING)).expect("child opens");
    assert_eq!(decode(&rx.recv_timeout(HANG_GUARD).unwrap()), 0);
    report("received", 1);
    assert_eq!(wait_for_command(), "close");
    drop(rx);
    report("closed", 1);
}

#[track_caller]
fn assert_gone(name: &str) {
    match Segment::open(name) {
        Err(OpenError::NotFound { .. }) => {}
        other => panic!("{name} should be gone: {other:?}"),
    }
    let only_open = ring(DYING_RING).creation(shmwire::CreationMode::Open);
    match spsc::Receiver::open(name, &only_open) {
        Err(e) if e.is_not_found() => {}
        other => panic!("{name} should be gone: {other:?}"),
    }
}

#[test]
fn a_channel_is_removed_when_its_last_endpoint_closes() {
    // The child's sender closes last: its process removes the name.
    let c = Cleanup::unique("clean-a");
    let mut rx = spsc::Receiver::open(c.name(), &ring(DYING_RING)).unwrap();
    let mut child = spawn_child("spsc-closer", c.name(), &[]);
    child.expect_report("sent");
    assert_eq!(decode(&rx.recv_timeout(HANG_GUARD).unwrap()), 0);
    drop(rx);
    assert!(
        Segment::open(c.name()).is_ok(),
        "removed while the sender lives"
    );
    child.send("close");
    child.expect_report("closed");
    child.wait_success();
    assert_gone(c.name());

    // The parent's sender closes last, after the child's receiver.
    let c = Cleanup::unique("clean-b");
    let mut tx = spsc::Sender::open(c.name(), &ring(DYING_RING)).unwrap();
    let mut child = spawn_child("spsc-receiver-closer", c.name(), &[]);
    tx.send(&encode(0, 10)).unwrap();
    child.expect_report("received");
    child.send("close");
    child.expect_report("closed");
    child.wait_success();
    assert!(!tx.has_receiver());
    assert!(
        Segment::open(c.name()).is_ok(),
        "removed while the sender lives"
    );
    drop(tx);
    assert_gone(c.name());

    // Every flavor, endpoints in this process.
    let c = Cleanup::unique("clean-c");
    let opts = ChannelOptions::new().capacity(4).message_size(8);
    let (tx, rx) = (
        mpmc::Sender::open(c.name(), &opts).unwrap(),
        mpmc::Receiver::open(c.name(), &opts).unwrap(),
    );
    drop((tx, rx));
    assert!(matches!(
        Segment::open(c.name()),
        Err(OpenError::NotFound { .. })
    ));
    let (p, s) = (
        broadcast::Publisher::open(c.name(), &opts).unwrap(),
        broadcast::Subscriber::open(c.name(), &opts).unwrap(),
    );
    drop((s, p));
    assert!(matches!(
        Segment::open(c.name()),
        Err(OpenError::NotFound { .. })
    ));
    let (w, r) = (
        blackboard::Writer::<u64>::open(c.name(), &ChannelOptions::new()).unwrap(),
        blackboard::Reader::<u64>::open(c.name(), &ChannelOptions::new()).unwrap(),
    );
    drop((w, r));
    assert!(matches!(
        Segment::open(c.name()),
        Err(OpenError::NotFound { .. })
    ));
}

#[test]
fn a_channel_whose_only_endpoint_was_killed_is_reused_by_the_next() {
    let c = Cleanup::unique("clean-kill");
    let mut child = spawn_child("spsc-holder", c.name(), &[]);
    child.expect_report("attached");
    // No one else has it open when the child dies.
    child.kill_running();
    let opened = Segment::open(c.name());
    if !shmwire::NAMES_OUTLIVE_HANDLES {
        // Windows: a section dies with its last handle, the killed process's included; the
        // next endpoint starts a new channel.
        assert!(
            matches!(opened, Err(OpenError::NotFound { .. })),
            "{opened:?}"
        );
        return;
    }
    // POSIX: the name outlives the killed endpoint (nobody closed it). The next endpoint
    // reuses the channel and reaps the dead entry: the role is free again.
    assert!(opened.is_ok(), "{opened:?}");
    drop(opened);
    let tx = spsc::Sender::open(
        c.name(),
        &ring(DYING_RING).creation(shmwire::CreationMode::Open),
    )
    .expect("the killed sender's place is free");
    let mut rx = spsc::Receiver::open(c.name(), &ring(DYING_RING)).unwrap();
    // A new session: not disconnected from the start.
    assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    drop((tx, rx));
    assert_gone(c.name());
}

// ------------------------------------- 10. regressions: bugs these tests found

/// Child: on "try", attempts twice to open the receiving end (held by the parent) and
/// reports what happened.
pub(super) fn child_contender() {
    let name = child_segment();
    loop {
        match wait_for_command().as_str() {
            "try" => {}
            "exit" => return,
            other => panic!("unknown command {other:?}"),
        }
        let results: Vec<String> = (0..2)
            .map(|_| match spsc::Receiver::open(&name, &ring(DYING_RING)) {
                Err(ChannelOpenError::Busy { pid, .. }) => format!("busy:{pid}"),
                Ok(_rx) => "opened".to_owned(),
                Err(e) => format!("error:{e}"),
            })
            .collect();
        report("tried", results.join(","));
    }
}

/// A refused opener (Busy) must leave the holder attached, whatever the holder's entry and
/// generation in the peer table. The holder is re-attached every round, so its generation
/// takes every value in turn. (Regression: a refused opener's endpoint was dropped with a
/// placeholder ticket, entry 0 generation 0, and detached the holder of that entry.)
#[test]
fn a_refused_opener_never_detaches_the_holder() {
    let c = Cleanup::unique("busy-gen");
    let opts = ring(DYING_RING);
    let mut holder = spsc::Receiver::open(c.name(), &opts).unwrap();
    // Keeps the channel (and its generation counter) alive while the holder is replaced.
    let tx = spsc::Sender::open(c.name(), &opts).unwrap();
    let mut child = spawn_child("contender", c.name(), &[]);
    let me = std::process::id();
    for round in 0..300 {
        child.send("try");
        let tried = child.expect_report("tried");
        assert_eq!(
            tried,
            format!("busy:{me},busy:{me}"),
            "round {round}: another process took the receiving end from a live holder"
        );
        assert!(
            tx.has_receiver(),
            "round {round}: a refused opener detached the live receiver"
        );
        drop(holder);
        holder = spsc::Receiver::open(c.name(), &opts).unwrap();
    }
    child.send("exit");
    child.wait_success();
    drop(holder);
}

/// `try_recv` / `try_send` document `Disconnected` once the other side is gone and nothing
/// can ever arrive / make room, however often they are asked. (Regression: they returned
/// Empty / Full.)
#[test]
fn try_forms_report_disconnected() {
    let c = Cleanup::unique("try-disc");
    let mut rx = spsc::Receiver::open(c.name(), &ring(DYING_RING)).unwrap();
    let mut child = spawn_child("spsc-closer", c.name(), &[]);
    child.expect_report("sent");
    child.send("close");
    child.expect_report("closed");
    child.wait_success();
    assert_eq!(decode(&rx.try_recv().unwrap()), 0);
    for attempt in 0..3 {
        expect_disconnected(
            rx.try_recv().map(|m| m.len()),
            &format!("spsc try_recv {attempt} with the sender gone"),
        );
    }
    expect_disconnected(rx.recv_timeout(HANG_GUARD).map(|m| m.len()), "recv");
    expect_disconnected(rx.try_recv().map(|m| m.len()), "try_recv after recv");
    drop(rx);

    let c = Cleanup::unique("try-disc2");
    let mut tx = spsc::Sender::open(c.name(), &ring(DYING_RING)).unwrap();
    let mut child = spawn_child("spsc-receiver-closer", c.name(), &[]);
    tx.send(&encode(0, 10)).unwrap();
    child.expect_report("received");
    child.send("close");
    child.expect_report("closed");
    child.wait_success();
    let mut sent = 0;
    for attempt in 0..3 {
        let err = loop {
            match tx.try_send(&encode(1, 1000)) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
        };
        assert!(
            matches!(err, TrySendError::Disconnected { .. }),
            "spsc try_send {attempt}, ring full after {sent}, receiver gone: {err:?}"
        );
    }

    // MPMC: the same, after a blocking receive saw the senders go.
    let c = Cleanup::unique("try-disc3");
    let mut rx = mpmc::Receiver::open(c.name(), &mpmc_opts()).unwrap();
    let tx = mpmc::Sender::open(c.name(), &mpmc_opts()).unwrap();
    drop(tx);
    expect_disconnected(rx.recv_timeout(HANG_GUARD).map(|m| m.len()), "mpmc recv");
    expect_disconnected(rx.try_recv().map(|m| m.len()), "mpmc try_recv after recv");
}
