//! Robust mutex, events and semaphores between real processes.
//!
//! Each test re-executes this test binary as child processes (see `common/mod.rs`), and kills
//! them with `Child::kill` (SIGKILL on Unix, `TerminateProcess` on Windows) where crash
//! behaviour is the point. Names are unique per test, process and call; segments are removed
//! at the end. The only time bounds are generous guards against hangs (a recovery must happen
//! within 5 s).

use std::time::{Duration, Instant};

use crate::common::{
    self, child_env, child_segment, report, spawn_child, wait_for_command, ChildProc, Cleanup, Rng,
};
use shmwire::sync::{
    Event, EventMode, LockError, LockTimeoutError, RobustMutex, Semaphore, TryLockError,
    TryWaitError, WaitTimeoutError,
};
use shmwire::Segment;

/// The argument of a child's role (a count, or the child's index).
const ARG_VAR: &str = "SHMWIRE_TEST_SYNC_ARG";

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

// ------------------------------------------------------------------------------ children

/// Starts a child playing `role` on segment `seg`, with argument `arg`.
fn spawn(role: &str, seg: &str, arg: &str) -> ChildProc {
    spawn_child(role, seg, &[(ARG_VAR, arg.to_owned())])
}

/// The child processes' roles (see `child_entry` in `main.rs`).
pub(crate) const CHILDREN: &[crate::Role] = &[
    ("churn", child_churn),
    ("hold", child_hold),
    ("pong", child_pong),
    ("take", child_take),
    ("gate", child_gate),
];

/// A child's segment (opened) and the argument of its role.
fn child_setup() -> (Segment, String) {
    let seg = Segment::open(&child_segment()).unwrap();
    (seg, child_env(ARG_VAR))
}

/// Child: locks and updates the guarded counters for ever (until killed), slowly enough that
/// a kill often lands inside the critical section.
fn child_churn() {
    let (seg, arg) = child_setup();
    common::listen_to_parent(); // it never reads a command: exit with the parent
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
            report("running", "");
            said = true;
        }
    }
}

/// Child: locks and holds until told to release.
fn child_hold() {
    let (seg, _) = child_setup();
    let m = RobustMutex::open_in(&seg, MUTEX).unwrap();
    let g = m.lock().unwrap();
    report("locked", "");
    assert_eq!(wait_for_command(), "release");
    drop(g);
    report("released", "");
}

/// Child: answers each ping with a pong, `arg` times.
fn child_pong() {
    let (seg, arg) = child_setup();
    let rounds: u32 = arg.parse().unwrap();
    let ping = Event::open_in(&seg, PING).unwrap();
    let pong = Event::open_in(&seg, PONG).unwrap();
    report("ready", "");
    for i in 0..rounds {
        assert!(
            ping.wait_timeout(Duration::from_secs(20)).is_ok(),
            "lost wakeup: ping {i} never arrived"
        );
        pong.set().unwrap();
    }
}

/// Child: takes `arg` permits.
fn child_take() {
    let (seg, arg) = child_setup();
    let n: u32 = arg.parse().unwrap();
    let sem = Semaphore::open_in(&seg, SEM).unwrap();
    report("ready", "");
    for i in 0..n {
        assert!(
            sem.wait_timeout(Duration::from_secs(20)).is_ok(),
            "permit {i} never came"
        );
    }
}

/// Child: waits once on the manual-reset event.
fn child_gate() {
    let (seg, _) = child_setup();
    let gate = Event::open_in(&seg, MANUAL).unwrap();
    report("ready", "");
    assert!(gate.wait_timeout(Duration::from_secs(20)).is_ok());
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
    let c = Cleanup::unique("kill");
    let name = c.name();
    let seg = make_segment(name);
    let m = RobustMutex::open_in(&seg, MUTEX).unwrap();
    let (mut rng, _) = Rng::seeded();
    let started = Instant::now();
    let mut iterations = 0;
    let mut recovered = 0;
    while iterations < 50 && started.elapsed() < Duration::from_secs(20) {
        iterations += 1;
        let mut a = spawn("churn", name, "0");
        let mut b = spawn("churn", name, "1");
        a.expect_report("running");
        b.expect_report("running");
        std::thread::sleep(Duration::from_micros(rng.below(20_000)));
        a.kill_running();
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
        b.kill_unreaped().unwrap_or_else(|e| panic!("{e}"));
        let reap_first = iterations % 2 == 0;
        if reap_first {
            b.wait();
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
            b.wait();
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
    let c = Cleanup::unique("live");
    let name = c.name();
    let seg = make_segment(name);
    let m = RobustMutex::open_in(&seg, MUTEX).unwrap();
    let mut kid = spawn("hold", name, "");
    kid.expect_report("locked");
    assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
    let e = m.lock_timeout(Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, LockTimeoutError::Timeout), "{e}");
    let owner = m.owner().expect("the holder is recorded");
    assert_eq!(owner.pid, kid.id());
    assert_eq!(shmwire::liveness(owner), shmwire::Liveness::Alive);
    kid.send("release");
    kid.expect_report("released");
    let g = m.lock_timeout(RECOVERY_BOUND).unwrap();
    assert!(!g.owner_died());
    drop(g);
    kid.wait_success();
}

#[test]
fn a_recovered_lock_released_without_repair_stays_poisoned() {
    let c = Cleanup::unique("poison");
    let name = c.name();
    let seg = make_segment(name);
    let m = RobustMutex::open_in(&seg, MUTEX).unwrap();
    let mut kid = spawn("hold", name, "");
    kid.expect_report("locked");
    kid.kill_running();
    let g = m.lock_timeout(RECOVERY_BOUND).unwrap();
    assert!(g.owner_died());
    g.unlock().unwrap(); // not marked consistent
    let e = m.lock_timeout(RECOVERY_BOUND).unwrap_err();
    assert!(
        matches!(e, LockTimeoutError::Lock(LockError::NotRecoverable { .. })),
        "{e}"
    );
    assert!(e.to_string().contains(name), "{e}");
    assert!(m.is_not_recoverable());
}

/// 1000 round trips through two auto-reset events between two processes: a single lost
/// wakeup would stall a round for the 20 s guard and fail it.
#[test]
fn events_ping_pong_between_processes_without_lost_wakeups() {
    const ROUNDS: u32 = 1000;
    let c = Cleanup::unique("ping");
    let name = c.name();
    let seg = make_segment(name);
    let ping = Event::open_in(&seg, PING).unwrap();
    let pong = Event::open_in(&seg, PONG).unwrap();
    let mut kid = spawn("pong", name, &ROUNDS.to_string());
    kid.expect_report("ready");
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
    kid.wait_success();
    assert!(matches!(pong.try_wait(), Err(TryWaitError::WouldBlock)));
}

#[test]
fn a_manual_reset_event_releases_every_waiting_process() {
    let c = Cleanup::unique("gate");
    let name = c.name();
    let seg = make_segment(name);
    let gate = Event::open_in(&seg, MANUAL).unwrap();
    assert_eq!(gate.mode(), EventMode::ManualReset);
    let mut kids: Vec<_> = (0..3).map(|_| spawn("gate", name, "")).collect();
    for k in &mut kids {
        k.expect_report("ready");
    }
    gate.set().unwrap();
    for mut k in kids {
        k.wait_success();
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
    let c = Cleanup::unique("sem");
    let name = c.name();
    let seg = make_segment(name);
    let sem = Semaphore::open_in(&seg, SEM).unwrap();
    let mut kids: Vec<_> = (0..3).map(|_| spawn("take", name, "100")).collect();
    for k in &mut kids {
        k.expect_report("ready");
    }
    for _ in 0..300 {
        sem.post().unwrap();
    }
    for mut k in kids {
        k.wait_success();
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
    let c = Cleanup::unique("place");
    let name = c.name();
    let seg = make_segment(name);
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
    assert!(e.to_string().contains(name), "{e}");
    // An event is not a mutex.
    assert!(matches!(
        RobustMutex::open_in(&seg, PING),
        Err(SyncOpenError::NotInitialized { .. })
    ));
    assert!(matches!(
        Semaphore::init_in(&seg, 1536, 3, 2),
        Err(SyncOpenError::Invalid { .. })
    ));
    let ro = Segment::open_read_only(name).unwrap();
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
