//! loom models of the channel protocols: the same code the channels run (`Ring`, `Queue`,
//! `Lanes`, `Board`, the doorbell and the wait loop), over loom atomics and loom-checked
//! memory instead of a mapping. Run with `bash ci/loom.sh channel::`.
//!
//! * Message bytes of the SPSC ring and the MPMC queue live in `loom::cell::UnsafeCell`s, one
//!   per 16 bytes: loom fails a model if a reader and a writer touch the same bytes without
//!   a happens-before edge between them (that is, if the protocol lets a message be torn).
//! * The seqlocks (broadcast, blackboard) read bytes that may be written concurrently by
//!   design, so their bytes are relaxed atomics and the models check instead that a message
//!   or value handed out is never a mix of two writes.
//! * Waits use `WaitStrategy::Block` and timeouts that never fire (`Timeouts::Never`), so a
//!   lost wake-up is a deadlock that loom reports; the crash models let timeouts fire so
//!   that recovery runs.
#![allow(unsafe_code)]

use loom::cell::UnsafeCell;
use loom::sync::atomic::AtomicU8;
use loom::sync::Arc;
use loom::thread;

use super::blackboard::Board;
use super::broadcast::{Lanes, Look};
use super::mpmc::{Queue, SlotCtl, Slots};
use super::peers::Ticket;
use super::ring::{Mem, Ring};
use super::wait::{wait_for, Patience, WaitStrategy};
use super::Line;
use crate::primitive::model::{self, Timeouts};
use crate::primitive::{self, Ordering};

/// Memory whose every 16 bytes are a loom cell: unsynchronized overlapping access fails.
/// The record words (the first 8 bytes of each 16 in a mapping) are loom atomics apart.
struct Cells(Vec<UnsafeCell<[u8; 16]>>, Vec<primitive::AtomicU64>);

impl Cells {
    fn new(bytes: usize) -> Cells {
        Cells(
            (0..bytes / 16).map(|_| UnsafeCell::new([0; 16])).collect(),
            (0..bytes / 16)
                .map(|_| primitive::AtomicU64::new(0))
                .collect(),
        )
    }
}

impl Mem for Cells {
    fn word(&self, off: u64) -> Option<&primitive::AtomicU64> {
        (off % 16 == 0)
            .then(|| self.1.get(off as usize / 16))
            .flatten()
    }

    fn put(&self, off: u64, src: &[u8]) -> Option<()> {
        let off = off as usize;
        if off + src.len() > self.0.len() * 16 {
            return None;
        }
        for (k, b) in src.iter().enumerate() {
            let at = off + k;
            // SAFETY: loom's cell checks the access; the pointer is valid for the closure.
            self.0[at / 16].with_mut(|p| unsafe { (*p)[at % 16] = *b });
        }
        Some(())
    }

    fn get(&self, off: u64, dst: &mut [u8]) -> Option<()> {
        let off = off as usize;
        if off + dst.len() > self.0.len() * 16 {
            return None;
        }
        for (k, b) in dst.iter_mut().enumerate() {
            let at = off + k;
            // SAFETY: as in `put`.
            *b = self.0[at / 16].with(|p| unsafe { (*p)[at % 16] });
        }
        Some(())
    }
}

/// Memory of relaxed atomic bytes, for protocols that race by design (seqlocks).
struct Racy(Vec<AtomicU8>);

impl Racy {
    fn new(bytes: usize) -> Racy {
        Racy((0..bytes).map(|_| AtomicU8::new(0)).collect())
    }
}

impl Mem for Racy {
    fn word(&self, _off: u64) -> Option<&primitive::AtomicU64> {
        None
    }

    fn put(&self, off: u64, src: &[u8]) -> Option<()> {
        let cells = self.0.get(off as usize..off as usize + src.len())?;
        for (c, b) in cells.iter().zip(src) {
            c.store(*b, Ordering::Relaxed);
        }
        Some(())
    }

    fn get(&self, off: u64, dst: &mut [u8]) -> Option<()> {
        let cells = self.0.get(off as usize..off as usize + dst.len())?;
        for (c, b) in cells.iter().zip(dst) {
            *b = c.load(Ordering::Relaxed);
        }
        Some(())
    }
}

/// Blocks on `line`'s bell until `attempt` succeeds (no peers to lose, no deadline).
fn block<T>(line: &Line, attempt: &mut impl FnMut() -> Option<T>) -> T {
    wait_for::<T, ()>(
        WaitStrategy::Block,
        Patience::Until(None),
        &line.bell,
        None,
        attempt,
        &mut |_| None,
    )
    .unwrap_or_else(|_| unreachable!("no deadline and no peer check"))
}

/// SPSC: three messages through a 128-byte ring (the third wraps with a filler and must wait
/// for the first two to be read), sender and receiver both blocking on the doorbells:
/// delivered whole, in order, no lost wake-up.
#[test]
fn spsc_ring_in_order_without_lost_wakeups() {
    loom::model(|| {
        model::setup(Timeouts::Never);
        let lines = Arc::new((Line::new(), Line::new()));
        let mem = Arc::new(Cells::new(128));
        let msgs: [&[u8]; 3] = [&[1; 20], &[2; 4], &[3; 40]];
        let (l2, m2) = (lines.clone(), mem.clone());
        let sender = thread::spawn(move || {
            let ring = Ring {
                producer: &l2.0,
                consumer: &l2.1,
                mem: &*m2,
                capacity: 128,
            };
            let mut p = ring.producer();
            for m in msgs {
                block(&l2.1, &mut || {
                    ring.try_push(&mut p, m).unwrap().then_some(())
                });
                l2.0.bell.ring(None);
            }
        });
        let ring = Ring {
            producer: &lines.0,
            consumer: &lines.1,
            mem: &*mem,
            capacity: 128,
        };
        let mut c = ring.consumer();
        for want in msgs {
            let f = block(&lines.0, &mut || ring.peek(&mut c).unwrap());
            let mut got = vec![0; f.len as usize];
            ring.mem.get(f.payload, &mut got).unwrap();
            assert_eq!(got, want);
            ring.release(&mut c, f);
            lines.1.bell.ring(None);
        }
        sender.join().unwrap();
    });
}

fn slots_queue<'a, M: Mem>(
    lines: &'a (Line, Line),
    ctl: &'a [SlotCtl],
    mem: &'a M,
    slots: Slots,
) -> Queue<'a, &'a M> {
    Queue {
        tail: &lines.0.cursor,
        head: &lines.1.cursor,
        ctl,
        mem,
        slots,
    }
}

/// MPMC: two senders race for the slots of a 1-slot queue (so the second must wait for the
/// receiver to free it); the receiver gets both messages once, whole.
#[test]
fn mpmc_two_senders_exactly_once() {
    // Three threads: two preemptions already cover every interleaving of the two claims
    // with the free (the default bound of 3 takes minutes).
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(|| {
        model::setup(Timeouts::Never);
        let slots = Slots::new(1, 16).unwrap();
        let lines = Arc::new((Line::new(), Line::new()));
        let ctl = Arc::new(vec![SlotCtl::new()]);
        let mem = Arc::new(Cells::new(slots.data_len() as usize));
        let senders: Vec<_> = (1..=2u8)
            .map(|id| {
                let (lines, ctl, mem) = (lines.clone(), ctl.clone(), mem.clone());
                thread::spawn(move || {
                    let q = slots_queue(&lines, &ctl, &*mem, slots);
                    let me = Ticket {
                        index: u32::from(id),
                        gen: 1,
                    };
                    let c = block(&lines.1, &mut || q.claim_send(me));
                    q.write(c, &[id; 3]);
                    q.finish_send(c, 3);
                    lines.0.bell.ring(None);
                })
            })
            .collect();
        let q = slots_queue(&lines, &ctl, &*mem, slots);
        let me = Ticket { index: 3, gen: 1 };
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (c, len) = block(&lines.0, &mut || q.claim_recv(me));
            assert_eq!(len, 3);
            let mut got = [0u8; 3];
            q.read(c, &mut got);
            assert!(got[0] == 1 || got[0] == 2);
            assert_eq!(got, [got[0]; 3], "torn message");
            seen.push(got[0]);
            q.finish_recv(c);
            lines.1.bell.ring(None);
        }
        seen.sort_unstable();
        assert_eq!(seen, [1, 2]);
        for s in senders {
            s.join().unwrap();
        }
    });
}

/// MPMC crash: sender 1 claims the first slot and dies before publishing; sender 2 sends
/// into the next. The receiver, waiting on the dead sender's slot, recovers it (liveness
/// check between sleeps) and gets sender 2's message, never the unfinished one.
#[test]
fn mpmc_dead_sender_slot_is_skipped() {
    loom::model(|| {
        model::setup(Timeouts::Fire);
        let slots = Slots::new(2, 16).unwrap();
        let lines = Arc::new((Line::new(), Line::new()));
        let ctl = Arc::new(vec![SlotCtl::new(), SlotCtl::new()]);
        let mem = Arc::new(Cells::new(slots.data_len() as usize));
        let (l1, c1, m1) = (lines.clone(), ctl.clone(), mem.clone());
        let doomed = thread::spawn(move || {
            model::become_process(1);
            let q = slots_queue(&l1, &c1, &*m1, slots);
            let c = q
                .claim_send(Ticket { index: 0, gen: 1 })
                .expect("an empty queue has room");
            q.write(c, &[9; 2]);
            model::die();
        });
        // Sender 2 starts after the doomed one claimed (it joins first), as in a real run
        // where both claims happened and one process was killed.
        doomed.join().unwrap();
        let (l2, c2, m2) = (lines.clone(), ctl.clone(), mem.clone());
        let sender = thread::spawn(move || {
            model::become_process(2);
            let q = slots_queue(&l2, &c2, &*m2, slots);
            let c = q
                .claim_send(Ticket { index: 1, gen: 1 })
                .expect("one slot is left");
            q.write(c, &[7; 2]);
            q.finish_send(c, 2);
            l2.0.bell.ring(None);
        });
        model::become_process(3);
        let q = slots_queue(&lines, &ctl, &*mem, slots);
        let alive = |index: u32, _gen: u32| primitive::process_exists(index + 1);
        let got = wait_for::<_, ()>(
            WaitStrategy::Block,
            Patience::Until(None),
            &lines.0.bell,
            None,
            &mut || q.claim_recv(Ticket { index: 2, gen: 1 }),
            &mut |sweep| {
                if sweep {
                    q.recover(&alive);
                }
                None
            },
        );
        let (c, len) = got.unwrap_or_else(|_| unreachable!());
        let mut buf = [0u8; 2];
        q.read(c, &mut buf);
        assert_eq!((len, buf), (2, [7, 7]));
        q.finish_recv(c);
        sender.join().unwrap();
    });
}

/// Broadcast: a publisher writes three 2-byte messages into 2 slots while a subscriber
/// reads; every message handed out is whole (both bytes equal its number), in increasing
/// order, and lagging is reported rather than a mix of two messages.
#[test]
fn broadcast_never_hands_out_a_torn_message() {
    loom::model(|| {
        model::setup(Timeouts::Never);
        let slots = Slots::new(2, 2).unwrap();
        let tail = Arc::new(Line::new());
        let ctl = Arc::new(vec![SlotCtl::new(), SlotCtl::new()]);
        let mem = Arc::new(Racy::new(slots.data_len() as usize));
        let (t2, c2, m2) = (tail.clone(), ctl.clone(), mem.clone());
        let publisher = thread::spawn(move || {
            let lanes = Lanes {
                tail: &t2.cursor,
                ctl: &c2,
                mem: &*m2,
                slots,
            };
            for m in 0..3u8 {
                lanes.publish(u64::from(m), &[m + 1; 2]);
            }
        });
        let lanes = Lanes {
            tail: &tail.cursor,
            ctl: &ctl,
            mem: &*mem,
            slots,
        };
        let mut next = 0;
        let mut last = 0;
        while next < 3 {
            match lanes.look(&mut next) {
                None => thread::yield_now(),
                Some(Look::Message(m)) => {
                    assert_eq!(m.len(), 2);
                    assert_eq!(m[0], m[1], "torn message {m:?}");
                    assert!(m[0] > last, "out of order");
                    last = m[0];
                }
                Some(Look::Lagged(n)) => assert!(n >= 1),
                Some(Look::Corrupt(e)) => panic!("{e}"),
            }
        }
        publisher.join().unwrap();
    });
}

/// Blackboard: a writer writes versions 1..=3 (both bytes = version) while a reader reads
/// twice: each read is nothing yet or one whole version, and versions never go back.
#[test]
fn blackboard_reads_whole_values() {
    loom::model(|| {
        model::setup(Timeouts::Never);
        let seqs = Arc::new((primitive::AtomicU64::new(0), primitive::AtomicU64::new(0)));
        let mem = Arc::new(Racy::new(128 + 2 * 64));
        let (s2, m2) = (seqs.clone(), mem.clone());
        let writer = thread::spawn(move || {
            let board = Board {
                seqs: [&s2.0, &s2.1],
                mem: &*m2,
                stride: 64,
            };
            for v in 1..=3u8 {
                board.write(u64::from(v), &[v; 2]);
            }
        });
        let board = Board {
            seqs: [&seqs.0, &seqs.1],
            mem: &*mem,
            stride: 64,
        };
        let mut last = 0;
        for _ in 0..2 {
            let mut out = [0u8; 2];
            let v = board
                .read(&mut out)
                .expect("two copies: one is always whole");
            if v > 0 {
                assert_eq!(out, [v as u8; 2], "torn value at version {v}");
                assert!(v >= last, "went back from {last} to {v}");
                last = v;
            }
        }
        writer.join().unwrap();
        let mut out = [0u8; 2];
        assert_eq!(board.read(&mut out), Some(3));
        assert_eq!(out, [3, 3]);
    });
}
