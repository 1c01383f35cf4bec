//! Robust mutex, events and semaphores between real processes.
//!
//! Each test re-executes this test binary as child processes (`child_entry`, selected by the
//! environment variable `SHMWIRE_SYNC_CHILD`), and kills them with `Child::kill` (SIGKILL on
//! Unix, `TerminateProcess` on Windows) where crash behaviour is the point. Names are unique
//! per test, process and call; segments are removed at the end. The only time bounds are
//! generous guards against hangs (a recovery must happen within 5 s).
#![cfg(not(loom))]
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a user of the library: std atomics are its own

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use shmwire::sync::{
    Event, EventMode, LockError, LockTimeoutError, RobustMutex, Semaphore, TryLockError,
    TryWaitError, WaitTimeoutError,
};
use shmwire::{Segment, SegmentOptions};

const ROLE: &str = "SHMWIRE_SYNC_CHILD";
const SEG: &str = "SHMWIRE_SYNC_SEGMENT";
const ARG: &str = "SHMWIRE_SYNC_ARG";

/// Payload layout used by these tests.
const MUTEX: u64 = 0;
const PING: u64 = 128;
const PONG: u64 = 256;
const SEM: u64 = 384;
const MANUAL: u64 = 512;
/// Data guarded by the mutex: two counters that are equal whenever the lock is free.
const DATA_A: u64 = 1024;
const DATA_B: u64 = 1032;
/// Progress counter of each child (index * 8 from here), bumped after each critical section.
const PROGRESS: u64 = 2048;

/// The longest a recovery may take in these tests (the design bound is ~20 ms plus the
/// liveness check; this is a hang guard for loaded CI machines, not a timing assertion).
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "sws-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    assert!(name.len() <= shmwire::Name::MAX_LEN, "{name}");
    name
}

struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = SegmentOptions::new().remove(&self.0);
    }
}

/// Creates the test segment with every object initialized.
fn make_segment(name: &str) -> Segment {
    let (seg, _) = Segment::options()
        .open_or_create(name, 4096, |seg| {
            RobustMutex::init_in(seg, MUTEX)?;
            Event::init_in(seg, PING, EventMode::AutoReset)?;
            Event::init_in(seg, PONG, EventMode::AutoReset)?;
            Semaphore::init_in(seg, SEM, 0, 1000)?;
            Event::init_in(seg, MANUAL, EventMode::ManualReset)?;
            Ok(())
        })
        .unwrap();
    seg
}

fn read_u64(seg: &Segment, at: u64) -> u64 {
    let mut b = [0u8; 8];
    seg.read_at(at, &mut b).unwrap();
    u64::from_le_bytes(b)
}

fn write_u64(seg: &Segment, at: u64, v: u64) {
    seg.write_at(at, &v.to_le_bytes()).unwrap();
}

/// A small deterministic PRNG (xorshift64*), seeded per test run and printed on failure.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 32;
        eprintln!("rng seed {seed:#x}");
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}

// ------------------------------------------------------------------------------ children

struct Kid {
    child: Child,
    out: BufReader<ChildStdout>,
}

fn spawn(role: &str, seg: &str, arg: &str) -> Kid {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_entry",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ROLE, role)
        .env(SEG, seg)
        .env(ARG, arg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    Kid { child, out }
}

impl Kid {
    /// Waits for the child's line `SYNC:<what>` (other lines are libtest's).
    fn expect(&mut self, what: &str) {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self.out.read_line(&mut line).unwrap();
            assert!(n > 0, "child exited before saying {what}");
            // libtest may have printed "test child_entry ... " on the same line.
            if line.trim_end().ends_with(&format!("SYNC:{what}")) {
                return;
            }
        }
    }

    fn tell(&mut self, line: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    }

    fn finish(mut self) {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "child failed: {status:?}");
                return;
            }
            assert!(Instant::now() < deadline, "child hung");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill(); // only this child, by its own handle
            let _ = self.child.wait();
        }
    }
}

fn say(what: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "SYNC:{what}").unwrap();
    out.flush().unwrap();
}

fn read_command() -> String {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).unwrap();
    line.trim_end().to_owned()
}

#[test]
#[ignore = "child process entry point"]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE) else {
        return; // an ordinary test run
    };
    let name = std::env::var(SEG).unwrap();
    let arg = std::env::var(ARG).unwrap_or_default();
    let seg = Segment::open(&name).unwrap();
    match role.as_str() {
        // Locks and updates the guarded counters for ever (until killed), slowly enough that
        // a kill often lands inside the critical section.
        "churn" => {
            let index: u64 = arg.parse().unwrap();
            let m = RobustMutex::open_in(&seg, MUTEX).unwrap();
            let mut said = false;
            for round in 0u64.. {
                let mut g = m.lock_timeout(RECOVERY_BOUND).unwrap();
                let (a, b) = (read_u64(&seg, DATA_A), read_u64(&seg, DATA_B));
                if g.owner_died() {
                    write_u64(&seg, DATA_B, a); // repair: the update of B was lost
                    g.mark_consistent();
                } else {
                    assert_eq!(a, b, "inconsistent data under a cleanly released lock");
                }
                write_u64(&seg, DATA_A, a + 1);
                if round % 4 == 0 {
                    std::thread::sleep(Duration::from_micros(200));
                } else {
                    std::hint::spin_loop();
                }
                write_u64(&seg, DATA_B, a + 1);
                drop(g);
                write_u64(&seg, PROGRESS + 8 * index, round + 1);
                if !said {
                    say("running");
                    said = true;
                }
            }
        }
        // Locks and holds until told to release.
        "hold" => {
            let m = RobustMutex::open_in(&seg, MUTEX).unwrap();
            let g = m.lock().unwrap();
            say("locked");
            assert_eq!(read_command(), "release");
            drop(g);
            say("released");
        }
        // Answers each ping with a pong, `arg` times.
        "pong" => {
            let rounds: u32 = arg.parse().unwrap();
            let ping = Event::open_in(&seg, PING).unwrap();
            let pong = Event::open_in(&seg, PONG).unwrap();
            say("ready");
            for i in 0..rounds {
                assert!(
                    ping.wait_timeout(Duration::from_secs(20)).is_ok(),
                    "lost wakeup: ping {i} never arrived"
                );
                pong.set().unwrap();
            }
        }
        // Takes `arg` permits.
        "take" => {
            let n: u32 = arg.parse().unwrap();
            let sem = Semaphore::open_in(&seg, SEM).unwrap();
            say("ready");
            for i in 0..n {
                assert!(
                    sem.wait_timeout(Duration::from_secs(20)).is_ok(),
                    "permit {i} never came"
                );
            }
        }
        // Waits once on the manual-reset event.
        "gate" => {
            let gate = Event::open_in(&seg, MANUAL).unwrap();
            say("ready");
            assert!(gate.wait_timeout(Duration::from_secs(20)).is_ok());
        }
        other => panic!("unknown child role {other}"),
    }
}

// ------------------------------------------------------------------------------- tests

/// The acceptance test of the robust mutex: holders killed at random points, many times.
///
/// Each iteration starts two children that take turns on the lock, kills one at a random
/// moment (often inside its critical section, sometimes between taking the lock and
/// recording its identity), checks that the survivor keeps making progress (so it recovered
/// the lock if needed), then kills the survivor too and takes the lock itself, within
/// [`RECOVERY_BOUND`]. Half of the time the parent locks before reaping the killed child (a
/// zombie must count as dead). The guarded data is repaired after each owner death and is
/// always consistent after a clean release.
#[test]
fn holders_killed_at_random_points_are_recovered_every_time() {
    let name = unique("kill");
    let _c = Cleanup(name.clone());
    let seg = make_segment(&name);
    let m = RobustMutex::open_in(&seg, MUTEX).unwrap();
    let mut rng = Rng::new();
    let started = Instant::now();
    let mut iterations = 0;
    let mut recovered = 0;
    while iterations < 50 && started.elapsed() < Duration::from_secs(20) {
        iterations += 1;
        let mut a = spawn("churn", &name, "0");
        let mut b = spawn("churn", &name, "1");
        a.expect("running");
        b.expect("running");
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        a.child.kill().unwrap();
        a.child.wait().unwrap();
        // The survivor must keep going: it recovers the lock if `a` died holding it.
        let before = read_u64(&seg, PROGRESS + 8);
        let deadline = Instant::now() + RECOVERY_BOUND;
        while read_u64(&seg, PROGRESS + 8) < before + 3 {
            assert!(
                Instant::now() < deadline,
                "iteration {iterations}: the surviving child made no progress after the kill"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_micros(rng.below(5_000)));
        b.child.kill().unwrap();
        let reap_first = iterations % 2 == 0;
        if reap_first {
            b.child.wait().unwrap();
        }
        let t = Instant::now();
        let mut g = match m.lock_timeout(RECOVERY_BOUND) {
            Ok(g) => g,
            Err(e) => panic!("iteration {iterations}: no recovery: {e}"),
        };
        assert!(t.elapsed() < RECOVERY_BOUND);
        let (da, db) = (read_u64(&seg, DATA_A), read_u64(&seg, DATA_B));
        if g.owner_died() {
            recovered += 1;
            write_u64(&seg, DATA_B, da);
            g.mark_consistent();
        } else {
            assert_eq!(da, db, "iteration {iterations}: clean release, torn data");
        }
        drop(g);
        if !reap_first {
            b.child.wait().unwrap();
        }
    }
    eprintln!(
        "{iterations} iterations in {:?}; the parent recovered from a dead owner {recovered} times",
        started.elapsed()
    );
    assert!(iterations >= 10, "too few iterations ran");
    assert!(
        recovered > 0,
        "no kill ever landed inside a critical section"
    );
    assert!(!m.is_not_recoverable());
}

#[test]
fn a_live_holder_is_not_taken_over() {
    let name = unique("live");
    let _c = Cleanup(name.clone());
    let seg = make_segment(&name);
    let m = RobustMutex::open_in(&seg, MUTEX).unwrap();
    let mut kid = spawn("hold", &name, "");
    kid.expect("locked");
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    let e = m.lock_timeout(Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, LockTimeoutError::Timeout), "{e}");
    let owner = m.owner().expect("the holder is recorded");
    assert_eq!(owner.pid, kid.child.id());
    assert_eq!(shmwire::liveness(owner), shmwire::Liveness::Alive);
    kid.tell("release");
    kid.expect("released");
    let g = m.lock_timeout(RECOVERY_BOUND).unwrap();
    assert!(!g.owner_died());
    drop(g);
    kid.finish();
}

#[test]
fn a_recovered_lock_released_without_repair_stays_poisoned() {
    let name = unique("poison");
    let _c = Cleanup(name.clone());
    let seg = make_segment(&name);
    let m = RobustMutex::open_in(&seg, MUTEX).unwrap();
    let mut kid = spawn("hold", &name, "");
    kid.expect("locked");
    kid.child.kill().unwrap();
    kid.child.wait().unwrap();
    let g = m.lock_timeout(RECOVERY_BOUND).unwrap();
    assert!(g.owner_died());
    g.unlock().unwrap(); // not marked consistent
    let e = m.lock_timeout(RECOVERY_BOUND).unwrap_err();
    assert!(
        matches!(e, LockTimeoutError::Lock(LockError::NotRecoverable { .. })),
        "{e}"
    );
    assert!(e.to_string().contains(&name), "{e}");
    assert!(m.is_not_recoverable());
}

/// 1000 round trips through two auto-reset events between two processes: a single lost
/// wakeup would stall a round for the 20 s guard and fail it.
#[test]
fn events_ping_pong_between_processes_without_lost_wakeups() {
    const ROUNDS: u32 = 1000;
    let name = unique("ping");
    let _c = Cleanup(name.clone());
    let seg = make_segment(&name);
    let ping = Event::open_in(&seg, PING).unwrap();
    let pong = Event::open_in(&seg, PONG).unwrap();
    let mut kid = spawn("pong", &name, &ROUNDS.to_string());
    kid.expect("ready");
    let t = Instant::now();
    for i in 0..ROUNDS {
        ping.set().unwrap();
        assert!(
            pong.wait_timeout(Duration::from_secs(20)).is_ok(),
            "lost wakeup: pong {i} never arrived"
        );
    }
    eprintln!(
        "{ROUNDS} round trips in {:?} ({})",
        t.elapsed(),
        shmwire::sync::wait_mechanism()
    );
    kid.finish();
    assert!(matches!(pong.try_wait(), Err(TryWaitError::WouldBlock)));
}

#[test]
fn a_manual_reset_event_releases_every_waiting_process() {
    let name = unique("gate");
    let _c = Cleanup(name.clone());
    let seg = make_segment(&name);
    let gate = Event::open_in(&seg, MANUAL).unwrap();
    assert_eq!(gate.mode(), EventMode::ManualReset);
    let mut kids: Vec<_> = (0..3).map(|_| spawn("gate", &name, "")).collect();
    for k in &mut kids {
        k.expect("ready");
    }
    gate.set().unwrap();
    for k in kids {
        k.finish();
    }
    assert!(gate.try_wait().is_ok(), "stays set");
    gate.reset().unwrap();
    assert!(matches!(
        gate.wait_timeout(Duration::from_millis(10)),
        Err(WaitTimeoutError::Timeout)
    ));
}

#[test]
fn semaphore_permits_are_counted_across_processes() {
    let name = unique("sem");
    let _c = Cleanup(name.clone());
    let seg = make_segment(&name);
    let sem = Semaphore::open_in(&seg, SEM).unwrap();
    let mut kids: Vec<_> = (0..3).map(|_| spawn("take", &name, "100")).collect();
    for k in &mut kids {
        k.expect("ready");
    }
    for _ in 0..300 {
        sem.post().unwrap();
    }
    for k in kids {
        k.finish();
    }
    assert!(
        matches!(sem.try_wait(), Err(TryWaitError::WouldBlock)),
        "every permit was taken exactly once"
    );
    for _ in 0..1000 {
        sem.post().unwrap();
    }
    assert!(matches!(
        sem.post(),
        Err(shmwire::sync::PostError::Overflow { max: 1000, .. })
    ));
}

#[test]
fn objects_are_validated_when_placed() {
    use shmwire::sync::SyncOpenError;
    let name = unique("place");
    let _c = Cleanup(name.clone());
    let seg = make_segment(&name);
    assert!(matches!(
        RobustMutex::open_in(&seg, 4096 - 64),
        Err(SyncOpenError::OutOfRange { .. })
    ));
    assert!(matches!(
        RobustMutex::open_in(&seg, 64),
        Err(SyncOpenError::Misaligned { .. })
    ));
    let e = RobustMutex::open_in(&seg, 1536).unwrap_err();
    assert!(matches!(e, SyncOpenError::NotInitialized { .. }), "{e}");
    assert!(e.to_string().contains(&name), "{e}");
    // An event is not a mutex.
    assert!(matches!(
        RobustMutex::open_in(&seg, PING),
        Err(SyncOpenError::NotInitialized { .. })
    ));
    assert!(matches!(
        Semaphore::init_in(&seg, 1536, 3, 2),
        Err(SyncOpenError::Invalid { .. })
    ));
    let ro = Segment::open_read_only(&name).unwrap();
    assert!(matches!(
        Event::open_in(&ro, PING),
        Err(SyncOpenError::ReadOnly { .. })
    ));
    let mechanism = shmwire::sync::wait_mechanism();
    assert!(
        [
            "futex",
            "windows-kernel-objects",
            "polling (macOS fallback)"
        ]
        .contains(&mechanism),
        "{mechanism}"
    );
}
