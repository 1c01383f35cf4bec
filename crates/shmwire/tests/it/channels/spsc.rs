//! SPSC channels between processes: a stream of varying sizes, zero-copy at both ends,
//! senders killed mid-message, a receiver that dies, and ends that are exclusive.

use shmwire::channel::spsc;

use super::*;

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

pub(super) fn child_spsc_streamer() {
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

pub(super) fn child_spsc_loaner() {
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
pub(super) fn child_spsc_short_loan() {
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

pub(super) fn child_spsc_half_loan() {
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
pub(super) fn child_spsc_big_sender() {
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

pub(super) const DYING_RING: u64 = 64 * 1024;
const DYING_PAYLOAD: usize = 1000;

pub(super) fn child_spsc_dying_receiver() {
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
pub(super) fn child_spsc_drainer() {
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

pub(super) fn child_spsc_holder() {
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
