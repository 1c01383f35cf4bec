//! Crash chaos: producers, consumers and lock holders run as real processes and are killed
//! with SIGKILL at random moments, again and again; afterwards nothing may have waited for
//! ever, no torn or lost message may have been delivered, every lock must be recoverable and
//! gc must leave nothing behind.
//!
//! Four scenarios run at the same time, each in a thread of the driver with its own crew of
//! children (re-executions of this test binary, see `chaos/kids.rs`):
//!
//! * `spsc`: one producer, one consumer (`chaos/spsc.rs`);
//! * `mpmc`: three producers, three consumers (`chaos/mpmc.rs`);
//! * `board`: a broadcast publisher with two subscribers, a blackboard writer with two
//!   readers (`chaos/board.rs`);
//! * `mutex`: three robust-mutex holders updating a checksummed record (`chaos/lock.rs`).
//!
//! The children check every message and value they get (checksums, order, ledgers of what
//! was sent: see `chaos/check.rs`) and exit with a panic naming what broke. The driver kills
//! a child after a random delay (often a few milliseconds, so kills land mid-send, mid-loan,
//! mid-`recv_ref`, inside the critical section, or while the child is still opening its
//! endpoint) and starts a replacement; sometimes it withholds the replacement to measure how
//! soon the survivors are told `Disconnected`. A child that reports nothing for
//! [`drive::STALL`] is stuck ("no process waits for ever"), and a scenario whose endpoints
//! are all up but which makes no progress for as long is wedged: both fail the test. At the
//! end each scenario winds down cleanly and checks its totals. Then every child is reaped;
//! a last crew opens one channel of each kind and a mutex segment and is killed in
//! mid-stream (`chaos/debris.rs`); [`shmwire::gc`] must remove all that the killed processes
//! left under this run's name prefix, and nothing with that prefix may remain.
//!
//! # Modes
//!
//! * Bounded (the default, for CI): 30 s of chaos, about 32 s in all.
//! * Long: `SHMWIRE_CHAOS_SECS=600 cargo test --release -p shmwire --test it -- chaos::
//!   --nocapture`, and/or `SHMWIRE_CHAOS_KILLS=N` (end once every scenario killed N
//!   processes; without `SHMWIRE_CHAOS_SECS` there is then no time limit).
//! * `SHMWIRE_CHAOS_ONLY=spsc,mutex` runs only the named scenarios.
//!
//! The random choices (delays, victims, sizes, receive and send flavours) come from a seed,
//! printed at the start and taken from `SHMWIRE_TEST_SEED` if set. A replay starts from the
//! same random stream, but how many draws happen when, and where a kill lands, depend on
//! timing: it is a similar run, not a repeat. Failures print the driver's last actions, the
//! victim's or hung child's output and stacks (if gdb is installed), and the channel's
//! cursors, slot states and peer table.
//!
//! Linux only: the end needs `shmwire::list` and gc, which cannot list objects on macOS and
//! have nothing to collect on Windows (a section dies with its last handle). The scenarios
//! themselves use nothing Linux-specific (`Child::kill` is `TerminateProcess` on Windows).

mod board;
mod check;
mod debris;
mod drive;
mod kids;
mod lock;
mod mpmc;
mod spsc;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use drive::{Cfg, Stats};
use shmwire::gc::GcOptions;

use crate::common;

/// The child processes' roles (see `child_entry` in `main.rs`).
pub(crate) const CHILDREN: &[crate::Role] = &[
    ("chaos-spsc-producer", spsc::child_producer),
    ("chaos-spsc-consumer", spsc::child_consumer),
    ("chaos-mpmc-producer", mpmc::child_producer),
    ("chaos-mpmc-consumer", mpmc::child_consumer),
    ("chaos-bc-publisher", board::child_publisher),
    ("chaos-bc-subscriber", board::child_subscriber),
    ("chaos-bb-writer", board::child_writer),
    ("chaos-bb-reader", board::child_reader),
    ("chaos-mutex-holder", lock::child_holder),
    ("chaos-debris", debris::child),
];

/// Seconds of chaos in the bounded mode.
const BOUNDED_SECS: f64 = 30.0;

type Scenario = fn(&Cfg<'_>) -> Result<Stats, String>;

const SCENARIOS: [(&str, Scenario); 4] = [
    ("spsc", spsc::run),
    ("mpmc", mpmc::run),
    ("board", board::run),
    ("mutex", lock::run),
];

fn env_num(var: &str) -> Option<f64> {
    std::env::var(var).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{var}={v:?} is not a number"))
    })
}

#[test]
fn crash_chaos() {
    let seed = common::run_seed();
    let secs = env_num("SHMWIRE_CHAOS_SECS");
    let kills = env_num("SHMWIRE_CHAOS_KILLS").map(|n| n as u64);
    let secs = match (secs, kills) {
        (Some(s), _) => Some(s),
        (None, Some(_)) => None,
        (None, None) => Some(BOUNDED_SECS),
    };
    let only = std::env::var("SHMWIRE_CHAOS_ONLY").ok();
    let chosen: Vec<_> = SCENARIOS
        .iter()
        .filter(|(n, _)| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|x| x == *n))
        })
        .collect();
    assert!(!chosen.is_empty(), "SHMWIRE_CHAOS_ONLY names no scenario");
    let prefix = format!("swx{}-", std::process::id());
    eprintln!(
        "crash chaos: seed {seed} (replay with SHMWIRE_TEST_SEED={seed}), {}, names {prefix}*",
        match (secs, kills) {
            (Some(s), Some(k)) => format!("{s} s or {k} kills per scenario"),
            (Some(s), None) => format!("{s} s"),
            (None, Some(k)) => format!("{k} kills per scenario"),
            (None, None) => unreachable!(),
        }
    );
    let started = Instant::now();
    let abort = AtomicBool::new(false);
    let cfg = Cfg {
        prefix: &prefix,
        seed,
        until: secs.map(|s| started + Duration::from_secs_f64(s)),
        kills,
        abort: &abort,
    };
    let results: Vec<(&str, Result<Stats, String>)> = std::thread::scope(|s| {
        let handles: Vec<_> = chosen
            .iter()
            .map(|&&(name, run)| {
                let cfg = &cfg;
                let h = s.spawn(move || {
                    let r = run(cfg);
                    if r.is_err() {
                        cfg.abort.store(true, Ordering::Relaxed);
                    }
                    r
                });
                (name, h)
            })
            .collect();
        handles
            .into_iter()
            .map(|(name, h)| {
                let r = h.join().unwrap_or_else(|p| {
                    abort.store(true, Ordering::Relaxed);
                    Err(format!(
                        "the driver panicked: {}",
                        p.downcast_ref::<String>()
                            .cloned()
                            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default()
                    ))
                });
                (name, r)
            })
            .collect()
    });
    // Every child is reaped now (a scenario's crew kills and reaps what is left when it is
    // dropped), and the drivers' own segments are removed. The scenarios end cleanly, so
    // their channels are normally gone too; to give gc something to do, a last crew opens
    // one channel of each kind and a mutex segment, and is killed in mid-stream.
    let debris = if abort.load(Ordering::Relaxed) {
        Ok(Vec::new())
    } else {
        debris::leave(&prefix)
    };
    let gc = GcOptions::new()
        .prefix(prefix.clone())
        // Our segments are owner-only (0600): processes gc cannot inspect (other users')
        // cannot map them.
        .ignore_unseen(true)
        .collect()
        .expect("gc runs");
    let left: Vec<String> = shmwire::list()
        .expect("listing the shared-memory objects")
        .into_iter()
        .map(|o| o.name)
        .filter(|n| n.starts_with(&prefix))
        .collect();
    let mut summary = format!(
        "crash chaos, seed {seed}, {:.1?} in all:",
        started.elapsed()
    );
    let mut failures = Vec::new();
    for (name, r) in &results {
        match r {
            Ok(stats) => summary += &format!("\n  {}", stats.render(name)),
            Err(e) => {
                summary += &format!("\n  {name}: FAILED");
                failures.push(format!("scenario {name} (seed {seed}): {e}"));
            }
        }
    }
    match &debris {
        Ok(names) => {
            summary += &format!("\n  left for gc by killed processes: {}", names.join(", "))
        }
        Err(e) => failures.push(format!("leaving debris for gc: {e}")),
    }
    summary += &format!(
        "\n  gc: removed {} ({}), kept {}, live {}, uncertain {}, failed {}",
        gc.removed.len(),
        gc.removed
            .iter()
            .map(|f| f.object.name.trim_start_matches(&prefix).to_owned())
            .collect::<Vec<_>>()
            .join(", "),
        gc.kept.len(),
        gc.live.len(),
        gc.uncertain.len(),
        gc.failed.len()
    );
    eprintln!("{summary}");
    for f in gc.kept.iter().chain(&gc.live).chain(&gc.uncertain) {
        eprintln!("  gc left {}: {}", f.object.name, f.verdict);
    }
    // Whatever the outcome, leave /dev/shm clean.
    for n in &left {
        let _ = shmwire::SegmentOptions::new().remove(n);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(
        left.is_empty(),
        "gc left objects of this run behind: {left:?} (removed by hand now)"
    );
}
