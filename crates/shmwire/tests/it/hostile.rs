//! A hostile peer: one child process scribbles random bytes over live segments and channels
//! while another child, the victim, keeps using them.
//!
//! What is asserted is what shmwire promises against a peer that has write access (the trust
//! model in ARCHITECTURE.md): the victim never crashes — it exits cleanly, not by a signal or
//! a panic — and every operation returns, Ok or an error, in bounded time (the victim's
//! watchdog fails the run if one operation takes longer than [`OP_LIMIT`], the parent if the
//! whole victim takes longer than `HANG_GUARD`). Lengths handed out stay within the channel's
//! limits. What is *not* asserted is integrity: a message delivered while a scribbler writes
//! may hold scribbled bytes, and that is out of scope against a peer that can write the
//! memory. So that the test cannot pass vacuously, the victim must have had operations
//! succeed (before and during the scribbling), fail other than by "empty", "full" or
//! "timed out" (the scribbling had an effect), and, on channels, receive messages while
//! scribbled (the data path ran under attack).
//!
//! The scribbler writes random bytes and "interesting" words (0, 1, all ones, near the
//! cursors …) at random offsets, and on purpose at the header fields, the channel
//! description, the peer table, the cursor lines and the records or slots at the cursors.
//!
//! A random seed drives both children; it is printed (`test seed`) and can be replayed with
//! `SHMWIRE_TEST_SEED=<seed>` (the scribbler's timing relative to the victim still varies).
//! The victim runs for `SHMWIRE_HOSTILE_MS` milliseconds (default 1500); the channel victim
//! goes on, up to ten times as long, until it received 10 messages while scribbled (a slow
//! machine, Wine).
//! Plain child processes only, so this runs on Windows too.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{
    child_env, child_env_u64, child_segment, report, spawn_child, wait_for_command, ChildProc,
    Cleanup, Rng,
};
use shmwire::channel::{
    blackboard, broadcast, mpmc, spsc, ChannelOpenError, ChannelOptions, RecvError,
    RecvTimeoutError, SendError, SendTimeoutError,
};
use shmwire::{AccessError, OpenError, Segment, SegmentOptions};

const SEED_VAR: &str = "SHMWIRE_TEST_HOSTILE_SEED";
/// The scribbler's targets: `segment`, or the four channel names separated by commas.
const TARGETS_VAR: &str = "SHMWIRE_TEST_HOSTILE_TARGETS";

/// Longest a single victim operation may take before its watchdog declares a hang. The
/// slowest legitimate one is an open that waits for a header whose `init_state` the
/// scribbler zeroed: 2 s (the default init timeout).
const OP_LIMIT: Duration = Duration::from_secs(30);

/// The child processes' roles (see `child_entry` in `main.rs`).
pub(crate) const CHILDREN: &[crate::Role] = &[
    ("scribbler", child_scribbler),
    ("segment-victim", child_segment_victim),
    ("channel-victim", child_channel_victim),
];

// ------------------------------------------------------------------------------ helpers

/// How long the victim keeps going.
fn victim_time() -> Duration {
    let ms = std::env::var("SHMWIRE_HOSTILE_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1500);
    Duration::from_millis(ms)
}

/// Whether an error is one that happens without any scribbling too (empty, full, timed
/// out, lagged, out of range): the test counts the others to show that the scribbling had
/// an effect.
trait Benign {
    fn benign(&self) -> bool;
}

impl Benign for RecvError {
    fn benign(&self) -> bool {
        matches!(self, RecvError::Lagged { .. })
    }
}

impl Benign for RecvTimeoutError {
    fn benign(&self) -> bool {
        matches!(
            self,
            RecvTimeoutError::Timeout | RecvTimeoutError::Lagged { .. }
        )
    }
}

impl Benign for SendError {
    fn benign(&self) -> bool {
        false
    }
}

impl Benign for SendTimeoutError {
    fn benign(&self) -> bool {
        matches!(self, SendTimeoutError::Timeout)
    }
}

impl Benign for ChannelOpenError {
    fn benign(&self) -> bool {
        false
    }
}

impl Benign for OpenError {
    fn benign(&self) -> bool {
        false
    }
}

impl Benign for AccessError {
    fn benign(&self) -> bool {
        matches!(self, AccessError::OutOfRange { .. })
    }
}

/// Counts of the victim's operations: succeeded, failed benignly, failed otherwise.
#[derive(Default)]
struct Tally {
    ok: u64,
    benign: u64,
    hostile: u64,
    /// Messages received (or values read).
    delivered: u64,
    first_errors: Vec<String>,
}

impl Tally {
    fn count<T, E: std::fmt::Display + Benign>(&mut self, r: &Result<T, E>) -> bool {
        match r {
            Ok(_) => self.ok += 1,
            Err(e) if e.benign() => self.benign += 1,
            Err(e) => {
                self.hostile += 1;
                let e = e.to_string();
                if self.first_errors.len() < 6 && !self.first_errors.contains(&e) {
                    self.first_errors.push(e);
                }
            }
        }
        r.is_ok()
    }

    /// The counts since `before`, as the `done` report.
    fn since(&self, before: &Tally, slowest_ms: u64) -> String {
        format!(
            "ok={} benign={} hostile={} delivered={} slowest_ms={slowest_ms} errors={:?}",
            self.ok - before.ok,
            self.benign - before.benign,
            self.hostile - before.hostile,
            self.delivered - before.delivered,
            self.first_errors
        )
    }

    fn snapshot(&self) -> Tally {
        Tally {
            ok: self.ok,
            benign: self.benign,
            hostile: self.hostile,
            delivered: self.delivered,
            first_errors: Vec::new(),
        }
    }
}

/// Exits the victim with a distinct code if one operation runs longer than [`OP_LIMIT`].
/// The main loop calls [`Watchdog::tick`] before every operation.
struct Watchdog {
    last: Arc<AtomicU64>,
    slowest: u64,
    start: Instant,
}

impl Watchdog {
    fn start() -> Watchdog {
        let start = Instant::now();
        let last = Arc::new(AtomicU64::new(0));
        let seen = last.clone();
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(100));
            let now = start.elapsed().as_millis() as u64;
            let at = seen.load(Ordering::Relaxed);
            if now.saturating_sub(at) > OP_LIMIT.as_millis() as u64 {
                report("hung", format!("an operation ran for {} ms", now - at));
                std::process::exit(4);
            }
        });
        Watchdog {
            last,
            slowest: 0,
            start,
        }
    }

    fn tick(&mut self) {
        let now = self.start.elapsed().as_millis() as u64;
        self.slowest = self
            .slowest
            .max(now.saturating_sub(self.last.swap(now, Ordering::Relaxed)));
    }
}

/// Parses the victim's `done` report: operations that succeeded, and that failed other than
/// benignly.
fn parse_done(done: &str) -> (u64, u64) {
    let field = |key: &str| -> u64 {
        done.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in the victim's report {done:?}"))
    };
    (field("ok"), field("hostile"))
}

/// Waits for a child that must exit cleanly: exit code 0, not a panic (101), not a signal.
#[track_caller]
fn expect_clean_exit(child: &mut ChildProc, what: &str) {
    let status = child.wait();
    if !status.success() {
        #[cfg(unix)]
        let signal = std::os::unix::process::ExitStatusExt::signal(&status);
        #[cfg(not(unix))]
        let signal: Option<i32> = None;
        let out = child.output_so_far();
        panic!("the {what} did not exit cleanly: {status:?} (signal {signal:?})\n{out}");
    }
}

/// Runs one hostile round: the victim (already started, waiting for `go` after `ready`),
/// then the scribbler over `targets`; returns the victim's `done` report.
fn hostile_round(victim: &mut ChildProc, name: &str, targets: &str, seed: u64) -> String {
    victim.expect_report("ready");
    let mut scribbler = spawn_child(
        "scribbler",
        name,
        &[
            (SEED_VAR, seed.wrapping_mul(3).to_string()),
            (TARGETS_VAR, targets.to_owned()),
        ],
    );
    scribbler.expect_report("scribbling");
    victim.send("go");
    let done = victim.expect_report("done");
    expect_clean_exit(victim, "victim");
    scribbler.send("stop");
    let writes: u64 = scribbler.expect_report("writes").parse().unwrap();
    expect_clean_exit(&mut scribbler, "scribbler");
    eprintln!("victim: {done}; scribbler: {writes} writes");
    assert!(writes >= 100, "the scribbler wrote only {writes} times");
    done
}

// ------------------------------------------------------------------------ the scribbler

/// Offsets of header fields (docs/layout.md): magic, version, payload offset and size, kind,
/// name length, checksum, init state.
const HEADER_FIELDS: [u64; 8] = [0, 8, 16, 24, 32, 72, 336, 384];
/// Payload offsets of a channel's control words: description fields, peer table header and
/// entries, cursor lines (cursor, bell seq, bell waiters).
const CONTROL_WORDS: [u64; 20] = [
    0, 4, 8, 12, 16, 24, 32, 40, 48, // description
    128, 132, 136, 140, 144, 148, // ever, detaches, gen, exclusive[2], closing
    1280, 1288, 1292, 1408, 1416, // producer and consumer lines
];
/// How many of [`CONTROL_WORDS`] are in the description.
const DESCRIPTION_WORDS: usize = 9;
/// Where a channel's data area starts in its object (header page + control page).
const DATA: u64 = 8192;

/// A word the scribbler writes: mostly values that make protocols take odd turns.
fn interesting(rng: &mut Rng, near: u64) -> u64 {
    match rng.below(10) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => u64::MAX - rng.below(64),
        4 => near.wrapping_add(rng.below(8)),
        5 => near.wrapping_sub(rng.below(8)),
        6 => 1 << rng.below(64),
        7 => rng.below(1 << 16),
        _ => rng.next(),
    }
}

fn child_scribbler() {
    let mut rng = Rng::new(child_env_u64(SEED_VAR));
    let targets = child_env(TARGETS_VAR);
    let names: Vec<String> = if targets == "segment" {
        vec![child_segment()]
    } else {
        targets.split(',').map(str::to_owned).collect()
    };
    let channels = targets != "segment";
    let stop = Arc::new(AtomicBool::new(false));
    let stopper = stop.clone();
    std::thread::spawn(move || {
        // "stop", or EOF: the parent is done or gone.
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        stopper.store(true, Ordering::Relaxed);
    });
    let open = |name: &str| SegmentOptions::new().raw(true).open(name).ok();
    let mut segs: Vec<Option<Segment>> = names.iter().map(|n| open(n)).collect();
    assert!(
        segs.iter().all(Option::is_some),
        "the scribbler opens its targets"
    );
    report("scribbling", names.len());
    // The header and the channel description only in the second half of the victim's time:
    // once they are scribbled, opens fail for good, and the first half is for endpoints that
    // are reopened and used under attack.
    let header_from = Instant::now() + victim_time() / 2;
    let mut writes = 0u64;
    let mut buf = [0u8; 64];
    while !stop.load(Ordering::Relaxed) {
        let i = rng.below(names.len() as u64) as usize;
        // Follow a name to a new object (a channel recreated after its last endpoint left).
        if rng.chance(1) {
            if let Some(s) = open(&names[i]) {
                segs[i] = Some(s);
            }
        }
        let Some(seg) = &segs[i] else { continue };
        let len = seg.len();
        let header = Instant::now() >= header_from;
        let cursor = |off: u64| {
            seg.atomic_u64(4096 + off)
                .map_or(0, |a| a.load(Ordering::Relaxed))
        };
        let (at, word) = match rng.below(100) {
            // The header: its fields, or anywhere in it.
            0..=4 if header && rng.chance(50) => (rng.pick(&HEADER_FIELDS), true),
            0..=4 if header => (rng.below(4096), false),
            // The channel's control page: its words (the description, which only opens
            // read, only in the second half).
            5..=44 if channels => {
                let skip = if header { 0 } else { DESCRIPTION_WORDS };
                (4096 + rng.pick(&CONTROL_WORDS[skip..]), true)
            }
            // A peer entry (state, pid, start time).
            45..=54 if channels => (4096 + 256 + 16 * rng.below(64) + 8 * rng.below(2), true),
            // The record or slot at a cursor (SPSC: record header fields; slot queues: the
            // slot's state and length).
            55..=74 if channels => {
                let c = cursor(if rng.chance(50) { 1280 } else { 1408 });
                let near = if i == 0 {
                    DATA + (c % SPSC_RING) / 16 * 16 + 4 * rng.below(5)
                } else {
                    DATA + (c % SLOTS) * 16 + 8 * rng.below(2)
                };
                (near, true)
            }
            // Anywhere at all (past the header, in the first half).
            _ if header => (rng.below(len), false),
            _ => (4096 + 128 + rng.below(len - 4096 - 128), false),
        };
        if word {
            let near = cursor(1280).max(cursor(1408));
            let v = interesting(&mut rng, near);
            let bytes = v.to_le_bytes();
            let n = if at % 8 == 0 && rng.chance(70) { 8 } else { 4 };
            let _ = seg.write_at(at, &bytes[..n]);
        } else {
            let n = 1 + rng.below(buf.len() as u64) as usize;
            for b in &mut buf[..n] {
                *b = rng.next() as u8;
            }
            let _ = seg.write_at(at, &buf[..n]);
        }
        writes += 1;
        if writes % 32 == 0 {
            // Leave the victim stretches of unscribbled time too.
            std::thread::sleep(Duration::from_micros(rng.below(1000)));
        }
    }
    report("writes", writes);
}

// ---------------------------------------------------------------- a plain segment's victim

const SEGMENT_SIZE: u64 = 64 * 1024;

fn child_segment_victim() {
    let name = child_segment();
    let mut rng = Rng::new(child_env_u64(SEED_VAR));
    let mut tally = Tally::default();
    let opts = SegmentOptions::new().init_timeout(Duration::from_millis(50));
    let mut seg = opts.open(&name).expect("the victim opens the segment");
    let mut buf = vec![0u8; 4096];
    for off in (0..SEGMENT_SIZE).step_by(4096) {
        tally.count(&seg.read_at(off, &mut buf));
    }
    assert_eq!(tally.hostile + tally.benign, 0, "clean reads");
    report("ready", tally.ok);
    assert_eq!(wait_for_command(), "go");
    let before = tally.snapshot();
    let mut dog = Watchdog::start();
    let start = Instant::now();
    while start.elapsed() < victim_time() {
        dog.tick();
        match rng.below(10) {
            // Open again: the header is read and checked anew.
            0 => {
                let again = if rng.chance(50) {
                    opts.open(&name)
                } else {
                    opts.clone().read_only(true).open(&name)
                };
                if tally.count(&again) {
                    seg = again.unwrap();
                    let _ = seg.info();
                }
            }
            1 => {
                // Never an error for a present object: a bad header is reported in it.
                tally.count(&opts.inspect(&name));
            }
            // Reads anywhere, some past the end: in bounds or an error.
            _ => {
                let off = rng.below(seg.len() + 64);
                let n = rng.below(4096) as usize;
                let r = seg.read_at(off, &mut buf[..n]);
                assert_eq!(
                    r.is_ok(),
                    off + n as u64 <= seg.len(),
                    "read of {n} at {off}"
                );
                tally.count(&r);
                if let Some(a) = seg.atomic_u64(off / 8 * 8) {
                    a.load(Ordering::Relaxed);
                }
            }
        }
    }
    dog.tick();
    report("done", tally.since(&before, dog.slowest));
}

#[test]
fn a_scribbled_segment_is_read_or_refused_never_crashes_the_reader() {
    let (mut rng, _) = Rng::seeded();
    let c = Cleanup::unique("hostile-seg");
    let seg = Segment::create(c.name(), SEGMENT_SIZE).unwrap();
    seg.write_at(0, &vec![0x5A; SEGMENT_SIZE as usize]).unwrap();
    let seed = rng.next();
    let mut victim = spawn_child("segment-victim", c.name(), &[(SEED_VAR, seed.to_string())]);
    let done = hostile_round(&mut victim, c.name(), "segment", seed);
    let (ok, hostile) = parse_done(&done);
    assert!(
        ok > 0 && hostile > 0,
        "while scribbled, the victim must both succeed and see the damage: {done}"
    );
    drop(seg);
}

// ------------------------------------------------------------------ the channels' victim

/// SPSC ring size (the scribbler aims at the record at `cursor mod SPSC_RING`).
const SPSC_RING: u64 = 64 * 1024;
/// Slots of the MPMC and broadcast channels.
const SLOTS: u64 = 8;
const SLOT_SIZE: u64 = 512;

type Value = [u64; 4];

fn spsc_opts() -> ChannelOptions {
    ChannelOptions::new().capacity(SPSC_RING)
}

fn slot_opts() -> ChannelOptions {
    ChannelOptions::new()
        .capacity(SLOTS)
        .message_size(SLOT_SIZE)
}

/// The victim's endpoints; `None` after a failed reopen (tried again later).
struct Endpoints {
    names: Vec<String>,
    spsc_tx: Option<spsc::Sender>,
    spsc_rx: Option<spsc::Receiver>,
    mpmc_tx: Option<mpmc::Sender>,
    mpmc_rx: Option<mpmc::Receiver>,
    bc_tx: Option<broadcast::Publisher>,
    bc_rx: Option<broadcast::Subscriber>,
    bb_w: Option<blackboard::Writer<Value>>,
    bb_r: Option<blackboard::Reader<Value>>,
}

/// Opens `slot` if it is empty; counts the attempt.
fn ensure<T, E: std::fmt::Display + Benign>(
    slot: &mut Option<T>,
    tally: &mut Tally,
    open: impl FnOnce() -> Result<T, E>,
) {
    if slot.is_none() {
        let r = open();
        if tally.count(&r) {
            *slot = r.ok();
        }
    }
}

impl Endpoints {
    fn open_missing(&mut self, tally: &mut Tally) {
        let n = &self.names;
        ensure(&mut self.spsc_tx, tally, || {
            spsc::Sender::open(&n[0], &spsc_opts())
        });
        ensure(&mut self.spsc_rx, tally, || {
            spsc::Receiver::open(&n[0], &spsc_opts())
        });
        ensure(&mut self.mpmc_tx, tally, || {
            mpmc::Sender::open(&n[1], &slot_opts())
        });
        ensure(&mut self.mpmc_rx, tally, || {
            mpmc::Receiver::open(&n[1], &slot_opts())
        });
        ensure(&mut self.bc_tx, tally, || {
            broadcast::Publisher::open(&n[2], &slot_opts())
        });
        ensure(&mut self.bc_rx, tally, || {
            broadcast::Subscriber::open(&n[2], &slot_opts())
        });
        ensure(&mut self.bb_w, tally, || {
            blackboard::Writer::open(&n[3], &ChannelOptions::new())
        });
        ensure(&mut self.bb_r, tally, || {
            blackboard::Reader::open(&n[3], &ChannelOptions::new())
        });
    }

    /// Drops one endpoint (to be reopened), never the last one of a channel: the channel
    /// must live on, so that the scribbler keeps writing over it.
    fn drop_one(&mut self, which: u64) {
        match which {
            0 if self.spsc_rx.is_some() => self.spsc_tx = None,
            1 if self.spsc_tx.is_some() => self.spsc_rx = None,
            2 if self.mpmc_rx.is_some() => self.mpmc_tx = None,
            3 if self.mpmc_tx.is_some() => self.mpmc_rx = None,
            4 if self.bc_rx.is_some() => self.bc_tx = None,
            5 if self.bc_tx.is_some() => self.bc_rx = None,
            6 if self.bb_r.is_some() => self.bb_w = None,
            7 if self.bb_w.is_some() => self.bb_r = None,
            _ => {}
        }
    }
}

/// One random operation on one channel, with a short timeout.
fn channel_op(e: &mut Endpoints, rng: &mut Rng, tally: &mut Tally) {
    let t = Duration::from_millis(rng.below(3));
    let msg = vec![rng.next() as u8; rng.below(2000) as usize];
    match rng.below(12) {
        0 => {
            if let Some(tx) = &mut e.spsc_tx {
                tally.count(&tx.send_timeout(&msg, t));
            }
        }
        1 => {
            if let Some(tx) = &mut e.spsc_tx {
                let r = tx.loan_timeout(msg.len(), t);
                if let Ok(mut loan) = r {
                    loan.write_at(0, &msg);
                    loan.send();
                    tally.ok += 1;
                } else {
                    tally.count(&r.map(drop));
                }
            }
        }
        2 => {
            if let Some(rx) = &mut e.spsc_rx {
                let max = rx.capacity() / 2;
                let r = rx.recv_timeout(t);
                if let Ok(m) = &r {
                    assert!(
                        m.len() as u64 <= max,
                        "an SPSC message of {} bytes",
                        m.len()
                    );
                }
                tally.count(&r);
            }
        }
        3 => {
            if let Some(rx) = &mut e.spsc_rx {
                let max = rx.capacity() / 2;
                let r = rx.recv_ref_timeout(t);
                if let Ok(g) = &r {
                    assert!(g.len() as u64 <= max, "an SPSC loan of {} bytes", g.len());
                    let _ = g.to_vec();
                    tally.delivered += 1;
                }
                tally.count(&r.map(drop));
            }
        }
        4 => {
            if let Some(tx) = &mut e.mpmc_tx {
                let m = &msg[..msg.len().min(SLOT_SIZE as usize)];
                tally.count(&tx.send_timeout(m, t));
            }
        }
        5 => {
            if let Some(rx) = &mut e.mpmc_rx {
                let r = rx.recv_timeout(t);
                if let Ok(m) = &r {
                    assert!(
                        m.len() as u64 <= SLOT_SIZE,
                        "an MPMC message of {}",
                        m.len()
                    );
                }
                tally.count(&r);
            }
        }
        6 => {
            if let Some(rx) = &mut e.mpmc_rx {
                let r = rx.recv_ref_timeout(t);
                if let Ok(g) = &r {
                    assert!(g.len() as u64 <= SLOT_SIZE, "an MPMC loan of {}", g.len());
                    let mut b = [0u8; 8];
                    g.read_at(0, &mut b[..g.len().min(8)]);
                    tally.delivered += 1;
                }
                tally.count(&r.map(drop));
            }
        }
        7 => {
            if let Some(tx) = &mut e.bc_tx {
                let m = &msg[..msg.len().min(SLOT_SIZE as usize)];
                tally.count(&tx.send(m));
            }
        }
        8 => {
            if let Some(rx) = &mut e.bc_rx {
                let r = rx.recv_timeout(t);
                if let Ok(m) = &r {
                    assert!(
                        m.len() as u64 <= SLOT_SIZE,
                        "a broadcast message of {}",
                        m.len()
                    );
                    tally.delivered += 1;
                }
                tally.count(&r);
            }
        }
        9 => {
            if let Some(w) = &mut e.bb_w {
                w.write(&[rng.next(); 4]);
                tally.ok += 1;
            }
        }
        10 => {
            if let Some(r) = &e.bb_r {
                if rng.chance(50) {
                    let got = r.read_versioned();
                    tally.delivered += u64::from(matches!(got, Ok(Some(_))));
                    tally.count(&got);
                } else {
                    tally.count(&r.wait_newer_timeout(rng.below(4), t));
                }
            }
        }
        _ => {
            e.drop_one(rng.below(8));
            e.open_missing(tally);
        }
    }
}

fn child_channel_victim() {
    let names: Vec<String> = child_env(TARGETS_VAR)
        .split(',')
        .map(str::to_owned)
        .collect();
    let mut rng = Rng::new(child_env_u64(SEED_VAR));
    let mut tally = Tally::default();
    let mut e = Endpoints {
        names,
        spsc_tx: None,
        spsc_rx: None,
        mpmc_tx: None,
        mpmc_rx: None,
        bc_tx: None,
        bc_rx: None,
        bb_w: None,
        bb_r: None,
    };
    e.open_missing(&mut tally);
    // Before any scribbling, everything works (errors are only "empty", "full" …).
    for _ in 0..200 {
        channel_op(&mut e, &mut rng, &mut tally);
    }
    assert_eq!(
        tally.hostile, 0,
        "before scribbling: {:?}",
        tally.first_errors
    );
    report("ready", tally.ok);
    assert_eq!(wait_for_command(), "go");
    let before = tally.snapshot();
    let mut dog = Watchdog::start();
    let start = Instant::now();
    // On a slow machine (or Wine), go on (up to 10 times as long) until a few messages were
    // received under attack.
    while start.elapsed() < victim_time()
        || (tally.delivered - before.delivered < 10 && start.elapsed() < 10 * victim_time())
    {
        dog.tick();
        channel_op(&mut e, &mut rng, &mut tally);
    }
    dog.tick();
    report("done", tally.since(&before, dog.slowest));
    // Dropping the endpoints (in a scribbled peer table) must not crash either.
    drop(e);
}

#[test]
fn scribbled_channels_give_errors_or_messages_never_crash_or_hang_the_victim() {
    let (mut rng, _) = Rng::seeded();
    let guards: Vec<Cleanup> = ["h-spsc", "h-mpmc", "h-bc", "h-bb"]
        .iter()
        .map(|t| Cleanup::unique(t))
        .collect();
    let names: Vec<&str> = guards.iter().map(Cleanup::name).collect();
    let targets = names.join(",");
    let seed = rng.next();
    let mut victim = spawn_child(
        "channel-victim",
        names[0],
        &[(SEED_VAR, seed.to_string()), (TARGETS_VAR, targets.clone())],
    );
    let done = hostile_round(&mut victim, names[0], &targets, seed);
    let (ok, hostile) = parse_done(&done);
    assert!(
        ok > 0 && hostile > 0,
        "while scribbled, the victim must both succeed and see the damage: {done}"
    );
    assert!(
        !done.contains(" delivered=0 "),
        "the victim must have received messages while scribbled: {done}"
    );
}
