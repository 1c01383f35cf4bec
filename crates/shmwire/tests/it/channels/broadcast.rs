//! Broadcast channels between processes: a slow subscriber lags, a fast one sees everything,
//! a late joiner starts at the newest message.

use shmwire::channel::broadcast;

use super::*;

// --------------------------------------------------------------------- 6. broadcast

const BC_SLOTS: u64 = 64;
const BC_MSG: u64 = 1024;
const BC_TOTAL: u64 = 3000;
/// Messages published before the slow subscriber starts reading (well beyond a ring).
const BC_BEFORE_GO: u64 = 500;
/// The publisher stays at most this many messages ahead of the fast subscriber.
const BC_WINDOW: u64 = 32;

fn bc_opts() -> ChannelOptions {
    ChannelOptions::new()
        .capacity(BC_SLOTS)
        .message_size(BC_MSG)
}

fn bc_payload_len(id: u64) -> usize {
    (xxh3_64(&id.to_le_bytes()) % (BC_MSG - HDR as u64 + 1)) as usize
}

/// Child: receives every message in order, acknowledging each in a counter the publisher
/// paces itself on.
pub(super) fn child_bc_fast() {
    let name = child_segment();
    let mut sub = broadcast::Subscriber::open(&name, &bc_opts()).expect("subscriber opens");
    let ack_seg = Segment::open(&child_env(AUX_VAR)).expect("the ack segment");
    let ack = ack_seg.atomic_u64(0).unwrap();
    report("ready", std::process::id());
    let mut expected = 0;
    loop {
        match sub.recv_timeout(HANG_GUARD) {
            Ok(m) => {
                assert_eq!(decode(&m), expected, "the fast subscriber missed a message");
                assert_eq!(m.len(), HDR + bc_payload_len(expected));
                expected += 1;
                // ORDERING: Release, a progress counter; the publisher's Acquire load only
                // paces it.
                ack.store(expected, Ordering::Release);
            }
            Err(RecvTimeoutError::Disconnected { .. }) => break,
            Err(e) => panic!("the fast subscriber at message {expected}: {e}"),
        }
    }
    report("received", expected);
}

/// Child: reads message 0, waits until the publisher is far ahead, then reads slowly.
pub(super) fn child_bc_slow() {
    let name = child_segment();
    let mut sub = broadcast::Subscriber::open(&name, &bc_opts()).expect("subscriber opens");
    report("ready", std::process::id());
    assert_eq!(decode(&sub.recv_timeout(HANG_GUARD).unwrap()), 0);
    report("first", 0);
    assert_eq!(wait_for_command(), "go");
    let (mut expected, mut received, mut lags, mut first_lag) = (1u64, 1u64, 0u64, None);
    loop {
        match sub.recv_timeout(HANG_GUARD) {
            Ok(m) => {
                assert!(first_lag.is_some(), "no Lagged after falling a ring behind");
                // After `Lagged { missed }` the next message is the one `missed` later.
                assert_eq!(decode(&m), expected, "a message out of place");
                assert_eq!(m.len(), HDR + bc_payload_len(expected));
                expected += 1;
                received += 1;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(RecvTimeoutError::Lagged { missed, .. }) => {
                assert!(missed > 0, "Lagged with nothing missed");
                first_lag.get_or_insert(missed);
                lags += 1;
                expected += missed;
            }
            Err(RecvTimeoutError::Disconnected { .. }) => break,
            Err(e) => panic!("the slow subscriber at message {expected}: {e}"),
        }
    }
    report("first-lag", first_lag.unwrap_or(0));
    report("lags", lags);
    report("end", expected);
    report("received", received);
}

#[test]
fn broadcast_slow_subscriber_lags_fast_one_sees_all_none_torn() {
    let c = Cleanup::unique("bc-lag");
    let ack_name = Cleanup::unique("bc-ack");
    let ack_seg = Segment::create(ack_name.name(), 64).unwrap();
    let ack = ack_seg.atomic_u64(0).unwrap();
    let mut publisher = broadcast::Publisher::open(c.name(), &bc_opts()).unwrap();
    assert_eq!(publisher.message_size(), BC_MSG);
    let mut fast = spawn_child("bc-fast", c.name(), &[(AUX_VAR, ack_name.0.clone())]);
    let mut slow = spawn_child("bc-slow", c.name(), &[]);
    fast.expect_report("ready");
    slow.expect_report("ready");
    assert_eq!(publisher.subscribers(), 2);
    for m in 0..BC_TOTAL {
        // Pace on the fast subscriber only (never more than half a ring ahead of it).
        let deadline = Instant::now() + HANG_GUARD;
        // ORDERING: Acquire, pairs with the fast child's Release store (a plain counter).
        while m > ack.load(Ordering::Acquire) + BC_WINDOW {
            assert!(
                Instant::now() < deadline,
                "the fast subscriber stopped at {}\n{}",
                ack.load(Ordering::Acquire),
                fast.output_so_far()
            );
            std::thread::sleep(Duration::from_micros(50));
        }
        publisher.send(&encode(m, bc_payload_len(m))).unwrap();
        if m == 0 {
            expect_value(&mut slow, "first", 0);
        }
        if m + 1 == BC_BEFORE_GO {
            slow.send("go");
        }
    }
    drop(publisher);
    expect_value(&mut fast, "received", BC_TOTAL);
    let first_lag: u64 = slow.expect_report("first-lag").parse().unwrap();
    let lags: u64 = slow.expect_report("lags").parse().unwrap();
    expect_value(&mut slow, "end", BC_TOTAL);
    let received: u64 = slow.expect_report("received").parse().unwrap();
    eprintln!("slow subscriber: {received} received, {lags} lags, first missed {first_lag}");
    // It started reading at least BC_BEFORE_GO - 1 messages behind, with a ring of BC_SLOTS.
    assert!(
        (BC_BEFORE_GO - 1 - BC_SLOTS..BC_TOTAL).contains(&first_lag),
        "first Lagged missed {first_lag}"
    );
    // After its last Lagged it reads at least the ring's worth that was left.
    assert!(lags >= 1 && received > BC_SLOTS / 2);
    fast.wait_success();
    slow.wait_success();
}

pub(super) fn child_bc_late() {
    let name = child_segment();
    let mut newest = broadcast::Subscriber::open(&name, &bc_opts()).expect("subscriber opens");
    let mut next = broadcast::Subscriber::open_from_next(&name, &bc_opts()).unwrap();
    // One publisher at a time: the parent's.
    match broadcast::Publisher::open(&name, &bc_opts()) {
        Err(ChannelOpenError::Busy { role, pid, .. }) => {
            assert_eq!((role, pid), ("publisher", child_env_u64(ARG_VAR) as u32));
        }
        other => panic!("a second publisher while the first lives: {other:?}"),
    }
    let m = newest
        .try_recv()
        .expect("the newest message is there at once");
    assert!(matches!(newest.try_recv(), Err(TryRecvError::Empty)));
    assert!(matches!(next.try_recv(), Err(TryRecvError::Empty)));
    // Only now: the parent publishes the next message as soon as it reads this report.
    report("joined", decode(&m));
    assert_eq!(wait_for_command(), "more");
    for sub in [&mut newest, &mut next] {
        assert_eq!(decode(&sub.recv_timeout(HANG_GUARD).unwrap()), 10);
        expect_disconnected(sub.recv_timeout(HANG_GUARD).map(|m| m.len()), "late joiner");
    }
    report("done", 1);
}

#[test]
fn broadcast_late_joiner_starts_at_the_newest_message() {
    let c = Cleanup::unique("bc-late");
    let mut publisher = broadcast::Publisher::open(c.name(), &bc_opts()).unwrap();
    for m in 0..10 {
        publisher.send(&encode(m, 50)).unwrap();
    }
    let mut late = spawn_child(
        "bc-late",
        c.name(),
        &[(ARG_VAR, std::process::id().to_string())],
    );
    expect_value(&mut late, "joined", 9);
    publisher.send(&encode(10, 50)).unwrap();
    late.send("more");
    drop(publisher);
    late.expect_report("done");
    late.wait_success();
}
