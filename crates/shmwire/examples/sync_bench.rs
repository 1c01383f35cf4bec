//! Cross-process synchronization costs next to the machine's floors, measured in one run.
//!
//! ```text
//! cargo run --release -p shmwire --example sync_bench [-- ROUNDS]
//! ```
//!
//! Two processes, pinned to cores 0 and 1 with `taskset` when it is available (said in the
//! output), share one segment. Process A drives and measures; process B answers.
//!
//! * spin ping-pong: a cache-line round trip through shared memory (the latency floor);
//! * raw futex ping-pong: store + `FUTEX_WAKE`, answered from `FUTEX_WAIT` (the blocking
//!   floor), through the platform layer's word wait, nothing of shmwire's on top;
//! * event ping-pong: `Event::set` answered from `Event::wait` (auto-reset), both ways;
//! * mutex: uncontended lock + unlock in one process; then both processes hammer one
//!   `RobustMutex` and A times each `lock()` (contended handover).
//!
//! One-way latency = round trip / 2. Numbers are printed, never asserted.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a user of the library: std atomics are its own

use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmwire::sync::{Event, EventMode, RobustMutex};
use shmwire::{Segment, SegmentOptions};
use shmwire_platform::{Os, WordWait};

// Payload layout (each on its own 128-byte line).
const SPIN_A: u64 = 0;
const SPIN_B: u64 = 128;
const FUTEX_A: u64 = 256;
const FUTEX_B: u64 = 384;
const EVENT_A: u64 = 512;
const EVENT_B: u64 = 640;
const MUTEX: u64 = 768;
const PHASE: u64 = 896;
const SIZE: u64 = 1024;

fn word(seg: &Segment, off: u64) -> &AtomicU32 {
    seg.atomic_u32(off)
        .expect("aligned word in the bench segment")
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--role") => role(&args[2], &args[3], args[4].parse().unwrap()),
        _ => orchestrate(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(20_000)),
    }
}

fn orchestrate(rounds: u32) -> ExitCode {
    let name = format!("shmwire-syncbench-{}", std::process::id());
    let seg = SegmentOptions::new()
        .create(&name, SIZE)
        .expect("create the bench segment");
    Event::init_in(&seg, EVENT_A, EventMode::AutoReset).unwrap();
    Event::init_in(&seg, EVENT_B, EventMode::AutoReset).unwrap();
    RobustMutex::init_in(&seg, MUTEX).unwrap();
    let exe = std::env::current_exe().unwrap();
    let pinned = Command::new("taskset").arg("--version").output().is_ok();
    let spawn = |r: &str, core: &str| {
        let mut c = if pinned {
            let mut c = Command::new("taskset");
            c.args(["-c", core]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        c.args(["--role", r, &name, &rounds.to_string()])
            .spawn()
            .unwrap()
    };
    println!(
        "shmwire sync_bench: {rounds} rounds, {} CPUs, wait mechanism {}, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        shmwire::sync::wait_mechanism(),
        if pinned {
            "A on core 0, B on core 1 (taskset)"
        } else {
            "not pinned (no taskset)"
        }
    );
    let mut b = spawn("b", "1");
    let mut a = spawn("a", "0");
    let ok = a.wait().unwrap().success() & b.wait().unwrap().success();
    drop(seg);
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Both roles step through numbered phases; A announces each, B acknowledges.
fn phase_sync(seg: &Segment, leader: bool, p: u32) {
    let w = word(seg, PHASE);
    if leader {
        // ORDERING: SeqCst — a plain rendezvous between the two roles (not on a timed path).
        w.store(p * 2, Ordering::SeqCst);
        while w.load(Ordering::SeqCst) != p * 2 + 1 {
            std::hint::spin_loop();
        }
    } else {
        while w.load(Ordering::SeqCst) != p * 2 {
            std::hint::spin_loop();
        }
        w.store(p * 2 + 1, Ordering::SeqCst); // ORDERING: SeqCst, as above
    }
}

fn role(r: &str, name: &str, rounds: u32) -> ExitCode {
    let seg = Segment::open(name).expect("open the bench segment");
    let leader = r == "a";
    let ev_a = Event::open_in(&seg, EVENT_A).unwrap();
    let ev_b = Event::open_in(&seg, EVENT_B).unwrap();
    let mutex = RobustMutex::open_in(&seg, MUTEX).unwrap();
    let (sa, sb) = (word(&seg, SPIN_A), word(&seg, SPIN_B));
    let (fa, fb) = (word(&seg, FUTEX_A), word(&seg, FUTEX_B));
    let mut report = Vec::new();

    // 1. Spin ping-pong: the latency floor.
    phase_sync(&seg, leader, 1);
    let spin_rounds = rounds * 10;
    if leader {
        let mut s = Vec::with_capacity(spin_rounds as usize);
        for i in 1..=spin_rounds {
            let t = Instant::now();
            // ORDERING: Release/Acquire — each side publishes its round number and waits for
            // the other's; pairs with the peer's Acquire load / Release store.
            sa.store(i, Ordering::Release);
            while sb.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            s.push(t.elapsed() / 2);
        }
        report.push(("spin ping-pong (floor)", s));
    } else {
        for i in 1..=spin_rounds {
            while sa.load(Ordering::Acquire) != i {
                std::hint::spin_loop();
            }
            sb.store(i, Ordering::Release); // ORDERING: see the leader's loop
        }
    }

    // 2. Raw futex ping-pong: the blocking floor.
    phase_sync(&seg, leader, 2);
    let futex_wait_for = |w: &AtomicU32, i: u32| loop {
        // ORDERING: Acquire — pairs with the peer's Release store before its wake.
        let v = w.load(Ordering::Acquire);
        if v == i {
            break;
        }
        Os::wait(w, v, None);
    };
    if leader {
        let mut s = Vec::with_capacity(rounds as usize);
        for i in 1..=rounds {
            let t = Instant::now();
            fa.store(i, Ordering::Release); // ORDERING: pairs with the peer's Acquire load
            Os::wake(fa, 1);
            futex_wait_for(fb, i);
            s.push(t.elapsed() / 2);
        }
        report.push(("raw futex ping-pong (floor)", s));
    } else {
        for i in 1..=rounds {
            futex_wait_for(fa, i);
            fb.store(i, Ordering::Release); // ORDERING: pairs with the leader's Acquire load
            Os::wake(fb, 1);
        }
    }

    // 3. Event ping-pong.
    phase_sync(&seg, leader, 3);
    if leader {
        let mut s = Vec::with_capacity(rounds as usize);
        for _ in 0..rounds {
            let t = Instant::now();
            ev_a.set().unwrap();
            ev_b.wait().unwrap();
            s.push(t.elapsed() / 2);
        }
        report.push(("event ping-pong", s));
    } else {
        for _ in 0..rounds {
            ev_a.wait().unwrap();
            ev_b.set().unwrap();
        }
    }

    // 4. Uncontended mutex (A alone; B waits at the next phase).
    if leader {
        let mut s = Vec::with_capacity(rounds as usize);
        for _ in 0..rounds {
            let t = Instant::now();
            for _ in 0..100 {
                drop(mutex.lock().unwrap());
            }
            s.push(t.elapsed() / 100);
        }
        report.push(("mutex lock+unlock, uncontended", s));
    }

    // 5. Contended: both lock and unlock as fast as they can; A times each lock().
    phase_sync(&seg, leader, 5);
    let mut s = Vec::with_capacity(rounds as usize);
    for _ in 0..rounds {
        let t = Instant::now();
        let g = mutex.lock().unwrap();
        s.push(t.elapsed());
        std::hint::black_box(&g);
        drop(g);
    }
    if leader {
        report.push(("mutex lock(), contended by another process", s));
    }
    phase_sync(&seg, leader, 6);

    if leader {
        let floor_of = |label: &str| -> Option<Duration> {
            report
                .iter()
                .find(|(l, _)| l.starts_with(label))
                .map(|(_, s)| pct(s, 50.0))
        };
        let spin = floor_of("spin").unwrap();
        let futex = floor_of("raw futex").unwrap();
        println!(
            "{:<44} {:>10} {:>10} {:>10} {:>10}  ratio to floor (p50)",
            "one-way latency / per operation", "p50", "p99", "p99.9", "max"
        );
        for (label, s) in &report {
            let floor = if label.starts_with("event") {
                futex
            } else {
                spin
            };
            let ratio = if label.starts_with("mutex") {
                String::new()
            } else {
                format!(
                    "{:.2}x {}",
                    pct(s, 50.0).as_secs_f64() / floor.as_secs_f64(),
                    if label.starts_with("event") {
                        "futex"
                    } else {
                        "spin"
                    }
                )
            };
            println!(
                "{label:<44} {:>10?} {:>10?} {:>10?} {:>10?}  {ratio}",
                pct(s, 50.0),
                pct(s, 99.0),
                pct(s, 99.9),
                pct(s, 100.0)
            );
        }
    }
    ExitCode::SUCCESS
}

fn pct(samples: &[Duration], p: f64) -> Duration {
    let mut v = samples.to_vec();
    v.sort_unstable();
    let i = ((p / 100.0) * (v.len() - 1) as f64).round() as usize;
    v[i.min(v.len() - 1)]
}
