//! MPMC channels between processes: three producers and three consumers, and producers
//! killed holding a loan or between claiming a slot and moving the tail.

use shmwire::channel::mpmc;

use super::*;

// -------------------------------------------------------------------------- 5. MPMC

const MPMC_SLOTS: u64 = 64;
const MPMC_MSG: u64 = 256;
const MPMC_PRODUCERS: u64 = 3;
const MPMC_PER_PRODUCER: u64 = 3000;

pub(super) fn mpmc_opts() -> ChannelOptions {
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
pub(super) fn child_mpmc_producer() {
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

pub(super) fn child_mpmc_consumer() {
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
pub(super) fn child_mpmc_loan_holder() {
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
pub(super) fn child_mpmc_waiter() {
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
