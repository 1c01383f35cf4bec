//! SPSC channel latency and throughput next to the machine's floors, measured in one run.
//!
//! ```text
//! cargo run --release -p shmwire --example channel_bench [-- ROUNDS]
//! ```
//!
//! Two processes, pinned to cores 0 and 1 with `taskset` when it is available (said in the
//! output). A drives and measures; B echoes. One-way latency = round trip / 2.
//!
//! * floors: a cache-line ping-pong through shared memory, a raw futex ping-pong (the
//!   platform's word wait, nothing of shmwire's on top), and single-core `memcpy` of 1 MiB;
//! * SPSC busy-poll (`WaitStrategy::Spin`) copy ping-pong for 8 B … 1 MiB;
//! * SPSC blocking (`WaitStrategy::Block`) ping-pong of 8 B;
//! * zero-copy loans (`loan` / `recv_ref`) ping-pong for 8 B … 4 MiB, touching 8 bytes;
//! * a stream of 1 MiB copying messages (A sends, B receives into a reused buffer).
//!
//! Numbers are printed, never asserted. The issue-6 bench crate will add the peers.

use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmwire::channel::{spsc, ChannelOptions, WaitStrategy};
use shmwire::{Segment, SegmentOptions};
use shmwire_platform::{Os, WordWait};

const SIZES: [usize; 6] = [8, 64, 4096, 65536, 1 << 20, 4 << 20];
const RING: u64 = 16 << 20;

/// Control commands from A to B on the spin ping channel (first byte).
const ECHO: u8 = 1;
const LOAN_ECHO: u8 = 2;
const SINK: u8 = 3;
const BLOCK_ECHO: u8 = 4;
const FLOORS: u8 = 5;
const EXIT: u8 = 6;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("--echo") => echo(&args[2]),
        _ => drive(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5_000)),
    }
}

fn opts(strategy: WaitStrategy) -> ChannelOptions {
    let ring = std::env::var("CB_RING")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(RING);
    ChannelOptions::new().capacity(ring).wait(strategy)
}

struct Pair {
    tx: spsc::Sender,
    rx: spsc::Receiver,
}

fn pair(base: &str, tag: &str, strategy: WaitStrategy, driver: bool) -> Pair {
    let (out, inn) = if driver {
        ("ping", "pong")
    } else {
        ("pong", "ping")
    };
    let o = opts(strategy);
    Pair {
        tx: spsc::Sender::open(&format!("{base}-{tag}-{out}"), &o).expect("open sender"),
        rx: spsc::Receiver::open(&format!("{base}-{tag}-{inn}"), &o).expect("open receiver"),
    }
}

fn word(seg: &Segment, off: u64) -> &AtomicU32 {
    seg.atomic_u32(off).expect("aligned word")
}

fn drive(rounds: usize) -> ExitCode {
    let base = format!("swcb-{}", std::process::id());
    let floor_seg = SegmentOptions::new()
        .create(&format!("{base}-floor"), 4096)
        .expect("create the floor segment");
    let exe = std::env::current_exe().unwrap();
    let pinned = Command::new("taskset").arg("--version").output().is_ok();
    let mut spin = pair(&base, "spin", WaitStrategy::Spin, true);
    let mut block = pair(&base, "block", WaitStrategy::Block, true);
    let mut child = if pinned {
        let mut c = Command::new("taskset");
        c.args(["-c", "1"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    let mut child = child.args(["--echo", &base]).spawn().expect("spawn B");
    if pinned {
        let _ = Command::new("taskset")
            .args(["-pc", "0", &std::process::id().to_string()])
            .output();
    }
    println!(
        "shmwire channel_bench: {rounds} rounds, {}, wait mechanism {}",
        if pinned {
            "A on core 0, B on core 1 (taskset)"
        } else {
            "not pinned"
        },
        shmwire::sync::wait_mechanism()
    );
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>8}",
        "one-way latency", "p50", "p99", "p99.9", "x floor"
    );

    // Floors.
    spin.tx.send(&[FLOORS]).unwrap();
    let (spin_floor, futex_floor) = floors(&floor_seg, rounds, true);
    row("floor: cache-line ping-pong", &spin_floor, None);
    row("floor: raw futex ping-pong", &futex_floor, None);
    let spin_p50 = pct(&spin_floor, 0.5);
    let futex_p50 = pct(&futex_floor, 0.5);

    // Copy ping-pong, busy-poll.
    let mut buf = Vec::new();
    for size in SIZES.into_iter().take(5) {
        let n = rounds_for(rounds, size);
        spin.tx.send(&cmd(ECHO, size, n)).unwrap();
        let msg = vec![7u8; size];
        let s = measure(n, || {
            spin.tx.send(&msg).unwrap();
            spin.rx.recv_into(&mut buf, None).unwrap();
        });
        row(
            &format!("spsc copy, spin, {}", human(size)),
            &s,
            Some(spin_p50),
        );
    }
    // Blocking.
    spin.tx.send(&cmd(BLOCK_ECHO, 8, rounds)).unwrap();
    let s = measure(rounds, || {
        block.tx.send(&[1u8; 8]).unwrap();
        block.rx.recv_into(&mut buf, None).unwrap();
    });
    row("spsc copy, block, 8 B (x futex)", &s, Some(futex_p50));
    // Zero-copy loans.
    for size in SIZES {
        let n = rounds_for(rounds, 8);
        spin.tx.send(&cmd(LOAN_ECHO, size, n)).unwrap();
        let s = measure(n, || {
            let mut l = spin.tx.loan(size).unwrap();
            l.write_at(0, &[1u8; 8]);
            l.send();
            let g = spin.rx.recv_ref().unwrap();
            let mut first = [0u8; 8];
            g.read_at(0, &mut first);
            drop(g);
        });
        row(
            &format!("spsc loan, spin, {}", human(size)),
            &s,
            Some(spin_p50),
        );
    }

    // Throughput: memcpy floor, then a stream of 1 MiB messages.
    let mib = 1 << 20;
    let src = vec![3u8; mib + 4096];
    let mut dst = vec![0u8; mib + 4096];
    let mut copies = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        dst[2048..2048 + mib].copy_from_slice(&src[..mib]);
        copies.push(t.elapsed());
        std::hint::black_box(&dst);
    }
    let memcpy = gbps(mib, pct(&copies, 0.5));
    // The same copy from and to memory no cache holds: 1 MiB pieces of two 256 MiB buffers.
    let big = 256 << 20;
    let src_big = vec![4u8; big];
    let mut dst_big = vec![1u8; big + 4096]; // written: no page faults while timing
    let mut cold = Vec::new();
    for i in 0..200 {
        let at = (i * mib) % big;
        let t = Instant::now();
        dst_big[at + 2048..at + 2048 + mib].copy_from_slice(&src_big[at..at + mib]);
        cold.push(t.elapsed());
        std::hint::black_box(&dst_big);
    }
    let memcpy_cold = gbps(mib, pct(&cold, 0.5));
    drop((src_big, dst_big));
    let count = 2000;
    spin.tx.send(&cmd(SINK, mib, count)).unwrap();
    let msg = vec![5u8; mib];
    let t = Instant::now();
    for _ in 0..count {
        spin.tx.send(&msg).unwrap();
    }
    spin.rx.recv_into(&mut buf, None).unwrap(); // B's ack after the last one
    let stream = gbps(mib * count, t.elapsed());
    println!();
    println!("throughput                          GB/s   x memcpy (cached)   x memcpy (uncached)");
    println!("{:<34} {:>6.2}", "floor: memcpy 1 MiB, cached", memcpy);
    println!(
        "{:<34} {:>6.2}",
        "floor: memcpy 1 MiB, uncached", memcpy_cold
    );
    println!(
        "{:<34} {:>6.2}   {:>17.2}   {:>19.2}",
        "spsc stream, 1 MiB copy messages",
        stream,
        stream / memcpy,
        stream / memcpy_cold
    );

    spin.tx.send(&[EXIT]).unwrap();
    let _ = child.wait();
    ExitCode::SUCCESS
}

fn echo(base: &str) -> ExitCode {
    let floor_seg = Segment::open(&format!("{base}-floor")).expect("open the floor segment");
    let mut spin = pair(base, "spin", WaitStrategy::Spin, false);
    let mut block = pair(base, "block", WaitStrategy::Block, false);
    let mut buf = Vec::new();
    loop {
        let c = spin.rx.recv().expect("a command");
        let (size, n) = if c.len() == 17 {
            (
                u64::from_le_bytes(c[1..9].try_into().unwrap()) as usize,
                u64::from_le_bytes(c[9..17].try_into().unwrap()) as usize,
            )
        } else {
            (0, 0)
        };
        match c[0] {
            FLOORS => {
                floors(&floor_seg, 0, false);
            }
            ECHO => {
                for _ in 0..n + WARMUP {
                    spin.rx.recv_into(&mut buf, None).unwrap();
                    spin.tx.send(&buf).unwrap();
                }
            }
            BLOCK_ECHO => {
                for _ in 0..n + WARMUP {
                    block.rx.recv_into(&mut buf, None).unwrap();
                    block.tx.send(&buf).unwrap();
                }
            }
            LOAN_ECHO => {
                for _ in 0..n + WARMUP {
                    drop(spin.rx.recv_ref().unwrap());
                    let mut l = spin.tx.loan(size).unwrap();
                    l.write_at(0, &[2u8; 8]);
                    l.send();
                }
            }
            SINK => {
                for _ in 0..n {
                    spin.rx.recv_into(&mut buf, None).unwrap();
                }
                spin.tx.send(b"done").unwrap();
            }
            _ => return ExitCode::SUCCESS,
        }
    }
}

const WARMUP: usize = 100;

fn cmd(c: u8, size: usize, n: usize) -> Vec<u8> {
    let mut v = vec![c];
    v.extend_from_slice(&(size as u64).to_le_bytes());
    v.extend_from_slice(&(n as u64).to_le_bytes());
    v
}

fn rounds_for(rounds: usize, size: usize) -> usize {
    if size >= 1 << 20 {
        (rounds / 20).max(50)
    } else {
        rounds
    }
}

/// Runs `f` WARMUP + n times; returns the one-way latencies of the last n.
fn measure(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    for _ in 0..WARMUP {
        f();
    }
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed() / 2
        })
        .collect()
}

/// The floors; the driver measures (`rounds` each), the echo side answers.
fn floors(seg: &Segment, rounds: usize, driver: bool) -> (Vec<Duration>, Vec<Duration>) {
    let (a, b, fa, fb, go) = (
        word(seg, 0),
        word(seg, 128),
        word(seg, 256),
        word(seg, 384),
        word(seg, 512),
    );
    if driver {
        go.store(rounds as u32, Ordering::Release);
        let spin = measure(rounds, || {
            let v = a.load(Ordering::Relaxed) + 1;
            a.store(v, Ordering::Release);
            while b.load(Ordering::Acquire) != v {
                std::hint::spin_loop();
            }
        });
        let futex = measure(rounds, || {
            let v = fa.load(Ordering::Relaxed) + 1;
            fa.store(v, Ordering::Release);
            Os::wake(fa, 1);
            while fb.load(Ordering::Acquire) != v {
                Os::wait(fb, v - 1, None);
            }
        });
        (spin, futex)
    } else {
        while go.load(Ordering::Acquire) == 0 {
            std::hint::spin_loop();
        }
        let n = go.load(Ordering::Acquire) as usize + WARMUP;
        for v in 1..=n as u32 {
            while a.load(Ordering::Acquire) != v {
                std::hint::spin_loop();
            }
            b.store(v, Ordering::Release);
        }
        for v in 1..=n as u32 {
            while fa.load(Ordering::Acquire) != v {
                Os::wait(fa, v - 1, None);
            }
            fb.store(v, Ordering::Release);
            Os::wake(fb, 1);
        }
        (Vec::new(), Vec::new())
    }
}

fn pct(samples: &[Duration], p: f64) -> Duration {
    let mut s = samples.to_vec();
    s.sort_unstable();
    s[((s.len() as f64 - 1.0) * p) as usize]
}

fn row(what: &str, s: &[Duration], floor: Option<Duration>) {
    let p50 = pct(s, 0.5);
    let ratio = floor.map_or(String::new(), |f| {
        format!("{:.2}", p50.as_secs_f64() / f.as_secs_f64())
    });
    println!(
        "{what:<34} {:>10?} {:>10?} {:>10?} {:>8}",
        p50,
        pct(s, 0.99),
        pct(s, 0.999),
        ratio
    );
}

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn human(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{} MiB", s >> 20),
        s if s >= 1024 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}
