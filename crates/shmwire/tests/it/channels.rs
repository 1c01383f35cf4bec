//! Channels between real processes: SPSC, MPMC, broadcast and blackboard, including
//! endpoints killed in the middle of an operation.
//!
//! Each test re-executes this test binary as children (see `common/mod.rs`), whose roles
//! are in [`CHILDREN`]. Every message starts with its id
//! (a sequence number, or producer and sequence) and the xxh3 of its payload, so a torn,
//! misplaced, lost or duplicated message shows. The parent opens its endpoint first, so the
//! channel lives as long as the test on every platform (Windows removes a section with its
//! last handle). Children are killed with `Child::kill` (SIGKILL on Unix, `TerminateProcess`
//! on Windows). No test asserts on timing: every wait is bounded by [`HANG_GUARD`] only, so a
//! bug shows as a failure, never as a hung test run.
//!
//! A random seed drives message sizes and kill moments; it is printed (`test seed`) and can
//! be replayed with `SHMWIRE_TEST_SEED=<seed>`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::{
    self, child_env, child_env_u64, child_segment, fill, report, spawn_child, wait_for_command,
    ChildProc, Cleanup, Rng, HANG_GUARD,
};
use shmwire::channel::{
    blackboard, broadcast, mpmc, spsc, ChannelOpenError, ChannelOptions, RecvTimeoutError,
    SendTimeoutError, TryRecvError, TrySendError, WaitStrategy,
};
use shmwire::{Kind, OpenError, OpenOrCreateError, Segment};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Environment variables of the children (besides the channel name in `NAME_VAR`).
const SEED_VAR: &str = "SHMWIRE_TEST_CH_SEED";
const COUNT_VAR: &str = "SHMWIRE_TEST_CH_COUNT";
const ARG_VAR: &str = "SHMWIRE_TEST_CH_ARG";
const AUX_VAR: &str = "SHMWIRE_TEST_CH_AUX";
const AUX2_VAR: &str = "SHMWIRE_TEST_CH_AUX2";

/// The child processes' roles (see `child_entry` in `main.rs`).
pub(crate) const CHILDREN: &[crate::Role] = &[
    ("spsc-streamer", child_spsc_streamer),
    ("spsc-loaner", child_spsc_loaner),
    ("spsc-short-loan", child_spsc_short_loan),
    ("spsc-half-loan", child_spsc_half_loan),
    ("spsc-big-sender", child_spsc_big_sender),
    ("spsc-dying-receiver", child_spsc_dying_receiver),
    ("spsc-drainer", child_spsc_drainer),
    ("spsc-holder", child_spsc_holder),
    ("spsc-closer", child_spsc_closer),
    ("spsc-receiver-closer", child_spsc_receiver_closer),
    ("mpmc-producer", child_mpmc_producer),
    ("mpmc-consumer", child_mpmc_consumer),
    ("mpmc-loan-holder", child_mpmc_loan_holder),
    ("mpmc-waiter", child_mpmc_waiter),
    ("bc-fast", child_bc_fast),
    ("bc-slow", child_bc_slow),
    ("bc-late", child_bc_late),
    ("bb-writer", child_bb_writer),
    ("bb-reader", child_bb_reader),
    ("describer", child_describer),
    ("contender", child_contender),
];

// ------------------------------------------------------------------------------ helpers

/// Bytes before a message's payload: its id and the xxh3 of the payload (both u64 LE).
const HDR: usize = 16;

/// Builds message `id` with a payload of `payload_len` bytes into `out`.
fn encode_into(out: &mut Vec<u8>, id: u64, payload_len: usize) {
    out.clear();
    out.resize(HDR + payload_len, 0);
    fill(&mut out[HDR..], id);
    let sum = xxh3_64(&out[HDR..]);
    out[..8].copy_from_slice(&id.to_le_bytes());
    out[8..HDR].copy_from_slice(&sum.to_le_bytes());
}

fn encode(id: u64, payload_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    encode_into(&mut v, id, payload_len);
    v
}

/// The id of a received message, after checking its payload against its checksum.
#[track_caller]
fn decode(msg: &[u8]) -> u64 {
    assert!(
        msg.len() >= HDR,
        "a message of {} bytes has no header",
        msg.len()
    );
    let id = u64::from_le_bytes(msg[..8].try_into().unwrap());
    let sum = u64::from_le_bytes(msg[8..HDR].try_into().unwrap());
    let actual = xxh3_64(&msg[HDR..]);
    assert_eq!(
        actual,
        sum,
        "message {id} ({} bytes) is torn: its payload does not match its checksum",
        msg.len()
    );
    id
}

fn ring(capacity: u64) -> ChannelOptions {
    ChannelOptions::new().capacity(capacity)
}

/// Asserts that a receive ended with `Disconnected` (a `Timeout` means it hung for the
/// whole [`HANG_GUARD`]).
#[track_caller]
fn expect_disconnected<T: std::fmt::Debug, E: Into<RecvTimeoutError>>(
    got: Result<T, E>,
    what: &str,
) {
    match got.map_err(Into::into) {
        Err(RecvTimeoutError::Disconnected { .. }) => {}
        other => panic!("{what}: expected Disconnected, got {other:?}"),
    }
}

/// Waits for the child's report and checks it is `expected`.
#[track_caller]
fn expect_value(child: &mut ChildProc, key: &str, expected: impl std::fmt::Display) {
    let got = child.expect_report(key);
    assert_eq!(got, expected.to_string(), "child's report {key}");
}

// ------------------------------------------------------- 1. an SPSC stream, copying

const STREAM_RING: u64 = 1 << 20;
const STREAM_COUNT: u64 = 20_000;

/// Payload length of message `seq` of the stream: mostly small, every 10th up to 64 KiB,
/// every 50th 64 to 200 KiB (several per ring: they force the wrap-around filler), every
/// 1000th the largest the ring takes.
fn stream_payload_len(seed: u64, seq: u64, max_payload: usize) -> usize {
    let h = xxh3_64_with_seed(&seq.to_le_bytes(), seed);
    let r = (h >> 16) as usize;
    if seq % 1000 == 999 {
        max_payload
    } else if seq % 50 == 49 {
        64 * 1024 + r % (136 * 1024 + 1)
    } else if h % 10 == 0 {
        1 + r % (64 * 1024)
    } else {
        1 + r % 4096
    }
}

fn child_spsc_streamer() {
    let name = child_segment();
    let (seed, count) = (child_env_u64(SEED_VAR), child_env_u64(COUNT_VAR));
    let mut tx = spsc::Sender::open(&name, &ring(STREAM_RING)).expect("child opens the sender");
    let max_payload = tx.message_size() as usize - HDR;
    report("max-payload", max_payload);
    let mut msg = Vec::new();
    for seq in 0..count {
        encode_into(&mut msg, seq, stream_payload_len(seed, seq, max_payload));
        tx.send_timeout(&msg, HANG_GUARD)
            .unwrap_or_else(|e| panic!("sending message {seq}: {e}"));
    }
    report("sent", count);
    // Dropping the sender closes the channel cleanly.
}

#[test]
fn spsc_stream_of_varying_sizes_arrives_whole_in_order_then_disconnects() {
    let c = Cleanup::unique("spsc-stream");
    let (_, seed) = Rng::seeded();
    let mut rx = spsc::Receiver::open(c.name(), &ring(STREAM_RING)).unwrap();
    assert_eq!(rx.capacity(), STREAM_RING);
    assert!(!rx.has_sender());
    let mut child = spawn_child(
        "spsc-streamer",
        c.name(),
        &[
            (SEED_VAR, seed.to_string()),
            (COUNT_VAR, STREAM_COUNT.to_string()),
        ],
    );
    let max_payload: usize = child.expect_report("max-payload").parse().unwrap();
    assert!(
        max_payload > 200 * 1024,
        "a 1 MiB ring takes 200 KiB messages"
    );
    let mut buf = Vec::new();
    let (mut bytes, mut large) = (0u64, 0u64);
    for expected in 0..STREAM_COUNT {
        let len = rx
            .recv_into_timeout(&mut buf, HANG_GUARD)
            .unwrap_or_else(|e| {
                panic!(
                    "receiving message {expected}: {e}\n{}",
                    child.output_so_far()
                )
            });
        assert_eq!(len, buf.len());
        let seq = decode(&buf);
        assert_eq!(seq, expected, "messages out of order");
        assert_eq!(
            len - HDR,
            stream_payload_len(seed, seq, max_payload),
            "message {seq} has the wrong length"
        );
        bytes += len as u64;
        large += u64::from(len > 64 * 1024);
    }
    expect_value(&mut child, "sent", STREAM_COUNT);
    child.wait_success();
    expect_disconnected(
        rx.recv_timeout(HANG_GUARD).map(|m| m.len()),
        "receive after the sender exited",
    );
    // Still disconnected, and nothing left in the ring.
    expect_disconnected(
        rx.recv_timeout(HANG_GUARD).map(|m| m.len()),
        "second receive after the sender exited",
    );
    eprintln!(
        "{STREAM_COUNT} messages, {bytes} bytes ({} times the ring), {large} above 64 KiB",
        bytes / STREAM_RING
    );
    assert!(large >= STREAM_COUNT / 50);
}

// ----------------------------------------------------- 1b. SPSC zero-copy, both ends

const LOAN_RING: u64 = 64 * 1024;
const LOAN_COUNT: u64 = 3000;
const FILLER_PAYLOAD: usize = 1000;

/// Payload lengths from 1 byte to about 6 KiB: on both sides of the 4 KiB size from which
/// payloads are placed 2048 bytes into a page.
fn loan_payload_len(seq: u64) -> usize {
    (seq * 7919 % 6000) as usize + 1
}

fn loan_opts() -> ChannelOptions {
    // Block: every wait is a sleep, so the doorbell's wake-up path carries the stream.
    ring(LOAN_RING).wait(WaitStrategy::Block)
}

fn child_spsc_loaner() {
    let name = child_segment();
    let mut tx = spsc::Sender::open(&name, &loan_opts()).expect("child opens the sender");
    let mut msg = Vec::new();
    for seq in 0..LOAN_COUNT {
        encode_into(&mut msg, seq, loan_payload_len(seq));
        if seq % 7 == 3 {
            // A loan dropped unsent publishes nothing, although it holds a valid-looking
            // message.
            let mut junk = tx.loan_timeout(msg.len(), HANG_GUARD).unwrap();
            junk.write_at(0, &encode(u64::MAX, msg.len() - HDR));
            drop(junk);
        }
        if seq % 2 == 0 {
            let mut loan = tx.loan_timeout(msg.len(), HANG_GUARD).unwrap();
            assert_eq!(loan.len(), msg.len());
            loan.write_at(HDR, &msg[HDR..]);
            loan.write_at(0, &msg[..HDR]);
            loan.send();
        } else {
            // A loan larger than the message, sent short. (Not across the 4 KiB size from
            // which payloads are placed differently: see `spsc_loan_sent_short_…`.)
            let extra = if msg.len() < 4096 {
                (4095 - msg.len()).min(100)
            } else {
                100
            };
            let mut loan = tx.loan_timeout(msg.len() + extra, HANG_GUARD).unwrap();
            loan.write_at(0, &msg);
            loan.write_at(msg.len(), &vec![0xEE; extra]);
            loan.send_len(msg.len());
        }
    }
    report("streamed", LOAN_COUNT);
    // The parent now holds the last message in place: fill the rest of the ring.
    let mut filled = 0;
    loop {
        encode_into(&mut msg, LOAN_COUNT + filled, FILLER_PAYLOAD);
        match tx.try_send(&msg) {
            Ok(()) => filled += 1,
            Err(TrySendError::Full) => break,
            Err(e) => panic!("filling the ring: {e}"),
        }
    }
    report("full", filled);
}

#[test]
fn spsc_zero_copy_loans_and_borrowed_receives_across_processes() {
    let c = Cleanup::unique("spsc-loan");
    let mut rx = spsc::Receiver::open(c.name(), &loan_opts()).unwrap();
    let mut child = spawn_child("spsc-loaner", c.name(), &[]);
    for expected in 0..LOAN_COUNT {
        let guard = rx.recv_ref_timeout(HANG_GUARD).unwrap_or_else(|e| {
            panic!(
                "receiving message {expected}: {e}\n{}",
                child.output_so_far()
            )
        });
        assert_eq!(guard.len(), HDR + loan_payload_len(expected));
        // Copy out in two pieces, through both accessors.
        let mut msg = vec![0u8; guard.len()];
        assert!(guard.read_at(0, &mut msg[..HDR]));
        assert!(guard.read_at(HDR, &mut msg[HDR..]));
        assert!(!guard.read_at(1, &mut msg[..]), "a read past the message");
        assert_eq!(msg, guard.to_vec());
        assert_eq!(decode(&msg), expected, "messages out of order");
        if expected + 1 < LOAN_COUNT {
            continue;
        }
        // Hold the last message in place while the sender fills the ring: its bytes must
        // stay intact until the guard is dropped.
        expect_value(&mut child, "streamed", LOAN_COUNT);
        let filled: u64 = child.expect_report("full").parse().unwrap();
        assert!(filled > 0, "the sender found no room at all");
        assert_eq!(
            decode(&guard.to_vec()),
            expected,
            "a borrowed message was overwritten"
        );
        drop(guard);
        for i in 0..filled {
            let m = rx.recv_timeout(HANG_GUARD).unwrap();
            assert_eq!(
                (decode(&m), m.len()),
                (LOAN_COUNT + i, HDR + FILLER_PAYLOAD)
            );
        }
    }
    child.wait_success();
    expect_disconnected(rx.recv_ref_timeout(HANG_GUARD).map(|g| g.len()), "the end");
}

/// (loan length, length sent) pairs: loans of 4 KiB or more sent shorter than 4 KiB.
const SHORT_LOANS: [(usize, usize); 5] = [
    (5000, 4000),
    (4096, 4095),
    (8192, 100),
    (4200, 4096),
    (4096, 16),
];

/// Child: sends each of [`SHORT_LOANS`] through a loan sent short.
fn child_spsc_short_loan() {
    let name = child_segment();
    let mut tx = spsc::Sender::open(&name, &loan_opts()).expect("child opens the sender");
    for (id, &(loan_len, sent)) in SHORT_LOANS.iter().enumerate() {
        let msg = encode(id as u64, sent - HDR);
        let mut loan = tx.loan_timeout(loan_len, HANG_GUARD).unwrap();
        loan.write_at(0, &msg);
        loan.send_len(sent);
    }
    report("sent", SHORT_LOANS.len());
}

/// `SendLoan::send_len` publishes the first `len` bytes of the loan, whatever the loan's
/// own length. (Regression: the receiver derived the payload offset from the length sent,
/// the sender had placed the payload by the loan's length.)
#[test]
fn spsc_loan_sent_short_across_the_4k_alignment_threshold() {
    let c = Cleanup::unique("spsc-short");
    let mut rx = spsc::Receiver::open(c.name(), &loan_opts()).unwrap();
    let mut child = spawn_child("spsc-short-loan", c.name(), &[]);
    expect_value(&mut child, "sent", SHORT_LOANS.len());
    child.wait_success();
    for (id, &(loan_len, sent)) in SHORT_LOANS.iter().enumerate() {
        let m = rx.recv_timeout(HANG_GUARD).unwrap();
        assert_eq!(m.len(), sent);
        let expected = encode(id as u64, sent - HDR);
        let first_diff = m.iter().zip(&expected).position(|(a, b)| a != b);
        assert!(
            first_diff.is_none(),
            "a loan of {loan_len} bytes sent as {sent} arrived with other bytes, from offset \
             {first_diff:?} (bytes 0..16: {:02x?})",
            &m[..16]
        );
    }
    expect_disconnected(rx.recv_timeout(HANG_GUARD).map(|m| m.len()), "the end");
}

// ------------------------------------------------ 2. SPSC senders killed mid-message

const KILL_RING: u64 = 1 << 20;
const HALF_LOAN_PAYLOAD: usize = 300 * 1024;

fn child_spsc_half_loan() {
    let name = child_segment();
    let count = child_env_u64(COUNT_VAR);
    let mut tx = spsc::Sender::open(&name, &ring(KILL_RING)).expect("child opens the sender");
    for seq in 0..count {
        tx.send_timeout(&encode(seq, 100 + seq as usize * 37), HANG_GUARD)
            .unwrap();
    }
    let whole = encode(count, HALF_LOAN_PAYLOAD);
    let mut loan = tx.loan_timeout(whole.len(), HANG_GUARD).unwrap();
    // A header claiming a whole message, and half of its payload.
    loan.write_at(0, &whole[..whole.len() / 2]);
    report("half-written", count);
    let _ = wait_for_command(); // the parent kills us meanwhile
    panic!("the parent was supposed to kill this child");
}

#[test]
fn spsc_sender_killed_inside_a_loan_leaves_only_whole_messages() {
    let c = Cleanup::unique("spsc-kill-loan");
    let count = 50u64;
    let mut rx = spsc::Receiver::open(c.name(), &ring(KILL_RING)).unwrap();
    let mut child = spawn_child(
        "spsc-half-loan",
        c.name(),
        &[(COUNT_VAR, count.to_string())],
    );
    expect_value(&mut child, "half-written", count);
    child.kill_running();
    for expected in 0..count {
        let m = rx.recv_timeout(HANG_GUARD).unwrap();
        assert_eq!(
            (decode(&m), m.len()),
            (expected, HDR + 100 + expected as usize * 37)
        );
    }
    expect_disconnected(
        rx.recv_timeout(HANG_GUARD).map(|m| m.len()),
        "after the last whole message of a killed sender",
    );
    // A new sender takes over the dead one's place and overwrites its abandoned bytes: its
    // message arrives, the half-written one never does.
    let mut tx = spsc::Sender::open(c.name(), &ring(KILL_RING))
        .expect("a new sender replaces the killed one");
    tx.send(&encode(count, 1234)).unwrap();
    let m = rx.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!((decode(&m), m.len()), (count, HDR + 1234));
    drop(tx);
    expect_disconnected(rx.recv_timeout(HANG_GUARD).map(|m| m.len()), "the end");
}

/// Child: sends messages as large as the ring takes, for ever (until killed). They are
/// built once, so the child spends its time inside `send` (copying or waiting for room).
fn child_spsc_big_sender() {
    let name = child_segment();
    let mut tx = spsc::Sender::open(&name, &ring(KILL_RING)).expect("child opens the sender");
    let max = tx.message_size() as usize;
    let mut variants: Vec<Vec<u8>> = (0..3)
        .map(|v| encode(v, max - HDR - v as usize * 1000))
        .collect();
    report("max", max);
    for seq in 0u64.. {
        let msg = &mut variants[(seq % 3) as usize];
        msg[..8].copy_from_slice(&seq.to_le_bytes());
        tx.send_timeout(msg, HANG_GUARD)
            .unwrap_or_else(|e| panic!("sending message {seq}: {e}"));
    }
}

#[test]
fn spsc_sender_killed_inside_a_large_send_never_delivers_a_torn_message() {
    let (mut rng, _) = Rng::seeded();
    for round in 0..3 {
        let c = Cleanup::unique("spsc-kill-send");
        let mut rx = spsc::Receiver::open(c.name(), &ring(KILL_RING)).unwrap();
        let mut child = spawn_child("spsc-big-sender", c.name(), &[]);
        let max: usize = child.expect_report("max").parse().unwrap();
        let check = |m: &[u8], expected: u64| {
            assert_eq!(decode(m), expected, "round {round}: out of order");
            assert_eq!(
                m.len(),
                max - (expected % 3) as usize * 1000,
                "round {round}"
            );
        };
        let before = 1 + rng.below(12);
        for expected in 0..before {
            check(&rx.recv_timeout(HANG_GUARD).unwrap(), expected);
        }
        // A random moment later: the child is inside `send`, copying or waiting for room.
        std::thread::sleep(Duration::from_micros(rng.below(3000)));
        child.kill_running();
        let mut next = before;
        loop {
            match rx.recv_timeout(HANG_GUARD) {
                Ok(m) => {
                    check(&m, next);
                    next += 1;
                }
                Err(RecvTimeoutError::Disconnected { .. }) => break,
                Err(e) => panic!("round {round}: after the kill: {e}"),
            }
        }
        eprintln!("round {round}: {before} messages before the kill, {next} in all");
        // Whatever the kill left beyond the write cursor is overwritten by the next sender.
        let mut tx = spsc::Sender::open(c.name(), &ring(KILL_RING)).unwrap();
        tx.send(&encode(next, 10)).unwrap();
        let m = rx.recv_timeout(HANG_GUARD).unwrap();
        assert_eq!((decode(&m), m.len()), (next, HDR + 10));
    }
}

// ---------------------------------------------------------- 3. an SPSC receiver dies

const DYING_RING: u64 = 64 * 1024;
const DYING_PAYLOAD: usize = 1000;

fn child_spsc_dying_receiver() {
    let name = child_segment();
    let mut rx = spsc::Receiver::open(&name, &ring(DYING_RING)).expect("child opens");
    report("attached", std::process::id());
    for expected in 0..4 {
        assert_eq!(decode(&rx.recv_timeout(HANG_GUARD).unwrap()), expected);
    }
    // Borrow message 4 and die holding it.
    let guard = rx.recv_ref_timeout(HANG_GUARD).unwrap();
    report("holding", decode(&guard.to_vec()));
    let _ = wait_for_command(); // the parent kills us meanwhile
    panic!("the parent was supposed to kill this child");
}

/// Child: receives until disconnected, checking that ids are consecutive.
fn child_spsc_drainer() {
    let name = child_segment();
    let mut rx = spsc::Receiver::open(&name, &ring(DYING_RING)).expect("child opens");
    report("attached", std::process::id());
    let (mut first, mut next, mut count) = (None, 0, 0u64);
    loop {
        match rx.recv_timeout(HANG_GUARD) {
            Ok(m) => {
                let id = decode(&m);
                if first.is_some() {
                    assert_eq!(id, next, "messages out of order");
                } else {
                    first = Some(id);
                }
                next = id + 1;
                count += 1;
            }
            Err(RecvTimeoutError::Disconnected { .. }) => break,
            Err(e) => panic!("draining: {e}"),
        }
    }
    report(
        "drained",
        format!(
            "first={} end={next} count={count}",
            first.unwrap_or(u64::MAX)
        ),
    );
}

#[test]
fn spsc_receiver_killed_disconnects_the_sender_and_a_new_receiver_takes_over() {
    let c = Cleanup::unique("spsc-rx-dies");
    let mut tx = spsc::Sender::open(c.name(), &ring(DYING_RING)).unwrap();
    let mut child = spawn_child("spsc-dying-receiver", c.name(), &[]);
    child.expect_report("attached");
    assert!(tx.has_receiver());
    for seq in 0..5 {
        tx.send_timeout(&encode(seq, DYING_PAYLOAD), HANG_GUARD)
            .unwrap();
    }
    expect_value(&mut child, "holding", 4);
    child.kill_running();

    // The sends that fit succeed; then, instead of waiting for ever for a dead receiver to
    // make room, the sender is told it is disconnected.
    let mut seq = 5;
    let err = loop {
        match tx.send_timeout(&encode(seq, DYING_PAYLOAD), HANG_GUARD) {
            Ok(()) => seq += 1,
            Err(e) => break e,
        }
    };
    assert!(
        matches!(err, SendTimeoutError::Disconnected { .. }),
        "a full ring with a dead receiver gave {err:?}"
    );
    assert!(seq > 5 + 20, "only {seq} messages fit a 64 KiB ring");
    assert!(
        !tx.has_receiver(),
        "the dead receiver's entry was not reaped"
    );

    // A new receiver (another process) attaches and gets everything still pending, from the
    // message the dead one borrowed but never released.
    let mut drainer = spawn_child("spsc-drainer", c.name(), &[]);
    drainer.expect_report("attached");
    assert!(tx.has_receiver());
    for _ in 0..3 {
        tx.send_timeout(&encode(seq, DYING_PAYLOAD), HANG_GUARD)
            .unwrap();
        seq += 1;
    }
    drop(tx);
    expect_value(
        &mut drainer,
        "drained",
        format!("first=4 end={seq} count={}", seq - 4),
    );
    drainer.wait_success();
}

// ---------------------------------------------------------- 4. SPSC ends are exclusive

fn child_spsc_holder() {
    let name = child_segment();
    let _tx = spsc::Sender::open(&name, &ring(DYING_RING)).expect("child opens the sender");
    report("attached", std::process::id());
    assert_eq!(wait_for_command(), "exit"); // or the parent kills us
}

#[test]
fn spsc_second_sender_is_busy_until_the_first_process_dies() {
    let c = Cleanup::unique("spsc-busy");
    let opts = ring(DYING_RING);
    let mut rx = spsc::Receiver::open(c.name(), &opts).unwrap();
    let mut holder = spawn_child("spsc-holder", c.name(), &[]);
    let pid: u32 = holder.expect_report("attached").parse().unwrap();
    assert_eq!(pid, holder.id());

    match spsc::Sender::open(c.name(), &opts) {
        Err(ChannelOpenError::Busy { name, role, pid: p }) => {
            assert_eq!((name.as_str(), role, p), (c.name(), "sender", pid));
        }
        other => panic!("a second sender while the first lives: {other:?}"),
    }
    // The receiving end is exclusive too (held here, by this process).
    match spsc::Receiver::open(c.name(), &opts) {
        Err(ChannelOpenError::Busy { role, pid: p, .. }) => {
            assert_eq!((role, p), ("receiver", std::process::id()));
        }
        other => panic!("a second receiver while the first lives: {other:?}"),
    }
    assert!(rx.has_sender(), "a refused opener disturbed the holder");

    holder.kill_running();
    let mut tx = spsc::Sender::open(c.name(), &opts)
        .expect("once the holder is dead, a new sender attaches");
    tx.send(&encode(1, 10)).unwrap();
    assert_eq!(decode(&rx.recv_timeout(HANG_GUARD).unwrap()), 1);
    // And the new one is now the one that excludes others.
    assert!(matches!(
        spsc::Sender::open(c.name(), &opts),
        Err(ChannelOpenError::Busy { .. })
    ));
}

// -------------------------------------------------------------------------- 5. MPMC

const MPMC_SLOTS: u64 = 64;
const MPMC_MSG: u64 = 256;
const MPMC_PRODUCERS: u64 = 3;
const MPMC_PER_PRODUCER: u64 = 3000;

fn mpmc_opts() -> ChannelOptions {
    ChannelOptions::new()
        .capacity(MPMC_SLOTS)
        .message_size(MPMC_MSG)
}

fn mpmc_id(producer: u64, seq: u64) -> u64 {
    producer << 32 | seq
}

fn mpmc_payload_len(id: u64) -> usize {
    (xxh3_64(&id.to_le_bytes()) % (MPMC_MSG - HDR as u64 + 1)) as usize
}

/// Child: sends its share when told "go"; producer 1 writes through loans.
fn child_mpmc_producer() {
    let name = child_segment();
    let producer = child_env_u64(ARG_VAR);
    let count = child_env_u64(COUNT_VAR);
    let mut tx = mpmc::Sender::open(&name, &mpmc_opts()).expect("producer opens");
    assert_eq!((tx.capacity(), tx.message_size()), (MPMC_SLOTS, MPMC_MSG));
    report("ready", producer);
    assert_eq!(wait_for_command(), "go");
    let mut msg = Vec::new();
    for seq in 0..count {
        let id = mpmc_id(producer, seq);
        encode_into(&mut msg, id, mpmc_payload_len(id));
        if producer == 1 {
            let mut loan = tx.loan(msg.len()).unwrap();
            assert_eq!(loan.len(), msg.len());
            loan.write_at(0, &msg);
            loan.send();
        } else {
            tx.send_timeout(&msg, HANG_GUARD).unwrap();
        }
    }
    report("sent", count);
}

/// Receives from an MPMC channel until disconnected; checks each message and that each
/// producer's messages come in order. Returns the ids.
fn mpmc_drain(rx: &mut mpmc::Receiver, borrow: bool) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut last: BTreeMap<u64, u64> = BTreeMap::new();
    loop {
        let got = if borrow {
            rx.recv_ref()
                .map(|g| g.to_vec())
                .map_err(RecvTimeoutError::from)
        } else {
            rx.recv_timeout(HANG_GUARD)
        };
        match got {
            Ok(m) => {
                let id = decode(&m);
                assert_eq!(m.len(), HDR + mpmc_payload_len(id), "message {id:#x}");
                let (p, s) = (id >> 32, id & 0xFFFF_FFFF);
                if let Some(&prev) = last.get(&p) {
                    assert!(
                        s > prev,
                        "producer {p}: message {s} after {prev} at one receiver"
                    );
                }
                last.insert(p, s);
                ids.push(id);
            }
            Err(RecvTimeoutError::Disconnected { .. }) => return ids,
            Err(e) => panic!("receiving: {e}"),
        }
    }
}

fn child_mpmc_consumer() {
    let name = child_segment();
    let borrow = child_env(ARG_VAR) == "borrow";
    let mut rx = mpmc::Receiver::open(&name, &mpmc_opts()).expect("consumer opens");
    report("ready", std::process::id());
    let ids = mpmc_drain(&mut rx, borrow);
    let list: Vec<String> = ids.iter().map(u64::to_string).collect();
    report("ids", list.join(","));
}

#[test]
fn mpmc_three_producers_three_consumers_every_message_exactly_once() {
    let c = Cleanup::unique("mpmc-all");
    let mut rx = mpmc::Receiver::open(c.name(), &mpmc_opts()).unwrap();
    let mut consumers: Vec<ChildProc> = ["copy", "borrow"]
        .iter()
        .map(|style| spawn_child("mpmc-consumer", c.name(), &[(ARG_VAR, style.to_string())]))
        .collect();
    for k in &mut consumers {
        k.expect_report("ready");
    }
    let mut producers: Vec<ChildProc> = (0..MPMC_PRODUCERS)
        .map(|p| {
            spawn_child(
                "mpmc-producer",
                c.name(),
                &[
                    (ARG_VAR, p.to_string()),
                    (COUNT_VAR, MPMC_PER_PRODUCER.to_string()),
                ],
            )
        })
        .collect();
    // Every producer is attached before any sends: consumers see "disconnected" only after
    // the last one left.
    for (p, k) in producers.iter_mut().enumerate() {
        expect_value(k, "ready", p);
    }
    for k in &mut producers {
        k.send("go");
    }
    let mut all = mpmc_drain(&mut rx, false);
    let mine = all.len();
    for k in &mut producers {
        expect_value(k, "sent", MPMC_PER_PRODUCER);
        k.wait_success();
    }
    let mut counts = vec![mine];
    for k in &mut consumers {
        let ids = k.expect_report("ids");
        let ids: Vec<u64> = ids
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| s.parse().unwrap())
            .collect();
        counts.push(ids.len());
        all.extend(ids);
        k.wait_success();
    }
    eprintln!("messages per consumer (parent, copy, borrow): {counts:?}");
    all.sort_unstable();
    let expected: Vec<u64> = (0..MPMC_PRODUCERS)
        .flat_map(|p| (0..MPMC_PER_PRODUCER).map(move |s| mpmc_id(p, s)))
        .collect();
    if all != expected {
        let mut seen = BTreeMap::new();
        for id in &all {
            *seen.entry(*id).or_insert(0) += 1;
        }
        let dup: Vec<_> = seen.iter().filter(|(_, &n)| n > 1).take(10).collect();
        let lost: Vec<_> = expected
            .iter()
            .filter(|id| !seen.contains_key(id))
            .take(10)
            .collect();
        panic!(
            "{} messages received, {} sent; duplicated (first 10): {dup:x?}; lost: {lost:x?}",
            all.len(),
            expected.len()
        );
    }
}

const LOAN_HOLDER_SENDS: u64 = 10;
const AFTER_LOAN_SENDS: u64 = 20;

/// Child: sends some messages, then claims a slot with a loan and dies holding it (or sends
/// normally and waits, as producer "after").
fn child_mpmc_loan_holder() {
    let name = child_segment();
    let who = child_env(ARG_VAR);
    let mut tx = mpmc::Sender::open(&name, &mpmc_opts()).expect("producer opens");
    let (producer, count) = if who == "holder" {
        (0, LOAN_HOLDER_SENDS)
    } else {
        (1, AFTER_LOAN_SENDS)
    };
    for seq in 0..count {
        let id = mpmc_id(producer, seq);
        tx.send_timeout(&encode(id, mpmc_payload_len(id)), HANG_GUARD)
            .unwrap();
    }
    if who == "holder" {
        let id = mpmc_id(producer, count);
        let msg = encode(id, 100);
        let mut loan = tx.loan(msg.len()).unwrap();
        loan.write_at(0, &msg);
        report("loaned", count);
        let _ = wait_for_command(); // killed meanwhile
        panic!("the parent was supposed to kill this child");
    }
    report("sent", count);
    assert_eq!(wait_for_command(), "exit");
}

#[test]
fn mpmc_producer_killed_holding_a_loan_is_skipped_not_waited_for() {
    let c = Cleanup::unique("mpmc-loan-kill");
    let mut rx = mpmc::Receiver::open(c.name(), &mpmc_opts()).unwrap();
    let mut holder = spawn_child("mpmc-loan-holder", c.name(), &[(ARG_VAR, "holder".into())]);
    expect_value(&mut holder, "loaned", LOAN_HOLDER_SENDS);
    // These are claimed after the loaned slot: receivers reach them only past it.
    let mut after = spawn_child("mpmc-loan-holder", c.name(), &[(ARG_VAR, "after".into())]);
    expect_value(&mut after, "sent", AFTER_LOAN_SENDS);

    for seq in 0..LOAN_HOLDER_SENDS {
        let m = rx.recv_timeout(HANG_GUARD).unwrap();
        assert_eq!(decode(&m), mpmc_id(0, seq));
    }
    // The claimed slot holds everything behind it while its claimer lives (documented).
    assert!(
        matches!(rx.try_recv(), Err(TryRecvError::Empty)),
        "a receiver went past a slot still claimed by a live sender"
    );
    holder.kill_running();
    // The receiver waiting at the dead sender's slot recovers it and moves on.
    for seq in 0..AFTER_LOAN_SENDS {
        let m = rx.recv_timeout(HANG_GUARD).unwrap_or_else(|e| {
            panic!("receiving past the dead sender's slot (message {seq}): {e}")
        });
        assert_eq!(
            decode(&m),
            mpmc_id(1, seq),
            "the loaned message or a misorder"
        );
    }
    after.send("exit");
    after.wait_success();
    expect_disconnected(rx.recv_timeout(HANG_GUARD).map(|m| m.len()), "the end");
    // The channel still works after the recovery, across a whole lap of slots.
    let mut tx = mpmc::Sender::open(c.name(), &mpmc_opts()).unwrap();
    for round in 0..3 * MPMC_SLOTS {
        tx.send(&encode(round, 8)).unwrap();
        assert_eq!(decode(&rx.recv_timeout(HANG_GUARD).unwrap()), round);
    }
}

/// Child: receives and reports each id until disconnected.
fn child_mpmc_waiter() {
    let name = child_segment();
    let mut rx = mpmc::Receiver::open(&name, &mpmc_opts()).expect("consumer opens");
    report("ready", std::process::id());
    loop {
        match rx.recv_timeout(HANG_GUARD) {
            Ok(m) => report("got", decode(&m)),
            Err(RecvTimeoutError::Disconnected { .. }) => return,
            Err(e) => panic!("waiting: {e}"),
        }
    }
}

/// Payload offset of the MPMC slot controls (`docs/layout.md`, "Channels": the data area at
/// 4096, a 16-byte control per slot, `state` u64 first).
const MPMC_CTL: u64 = 4096;

/// A sender killed after claiming a slot but before moving `tail` past it (two adjacent
/// CASes: no real kill lands there reliably, so the test writes the state such a kill
/// leaves, as `docs/layout.md` specifies it: slot `tail mod capacity` *writing, lap L*,
/// claimed by a peer entry that is not attached). A receiver waiting at that slot recovers
/// it; after that the queue must still carry messages. (Regression: recovery freed the slot
/// for lap L + 1 while `tail` still pointed at it, and senders reported Full for ever.)
#[test]
fn mpmc_sender_killed_between_claim_and_tail_move_does_not_wedge_the_queue() {
    let c = Cleanup::unique("mpmc-wedge");
    let mut tx = mpmc::Sender::open(c.name(), &mpmc_opts()).unwrap();
    let mut waiter = spawn_child("mpmc-waiter", c.name(), &[]);
    waiter.expect_report("ready");
    for id in 0..3 {
        tx.send(&encode(id, 10)).unwrap();
        expect_value(&mut waiter, "got", id);
    }
    // Position 3 (lap 0) claimed by entry 63, generation 0x5A, which nobody holds.
    let raw = Segment::open(c.name()).unwrap();
    let state = raw.atomic_u64(MPMC_CTL + 3 * 16).unwrap();
    // ORDERING: SeqCst, a test's stand-in for the dead sender's claim.
    state.store(1 | 63 << 2 | 0x5A << 8, Ordering::SeqCst);
    // The waiting receiver frees it (phase 0) at its next liveness sweep.
    let deadline = Instant::now() + HANG_GUARD;
    while state.load(Ordering::SeqCst) & 3 != 0 {
        assert!(Instant::now() < deadline, "the slot was never recovered");
        std::thread::sleep(Duration::from_millis(1));
    }
    // 63 of 64 slots are free and nobody else sends.
    match tx.try_send(&encode(3, 10)) {
        Ok(()) => {}
        Err(e) => panic!(
            "a send after the recovery: {e} (slot state {:#x})",
            state.load(Ordering::SeqCst)
        ),
    }
    expect_value(&mut waiter, "got", 3);
    drop(tx);
    waiter.wait_success();
}

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
fn child_bc_fast() {
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
fn child_bc_slow() {
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

fn child_bc_late() {
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

fn child_bb_writer() {
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

fn child_bb_reader() {
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

// ------------------------------------------------------------ 8. self-description

const DESCRIBED_RING: u64 = 64 * 1024;
const DESCRIBED_SLOTS: u64 = 16;

/// Child: creates an SPSC channel (holding its sender), an MPMC channel of u64 (holding a
/// receiver) and a blackboard of u64 (holding the writer), then waits.
fn child_describer() {
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
fn child_spsc_closer() {
    let name = child_segment();
    let mut tx = spsc::Sender::open(&name, &ring(DYING_RING)).expect("child opens");
    tx.send(&encode(0, 10)).unwrap();
    report("sent", 1);
    assert_eq!(wait_for_command(), "close");
    drop(tx);
    report("closed", 1);
}

/// Child: opens a receiver, receives one message, closes when told.
fn child_spsc_receiver_closer() {
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
fn child_contender() {
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
