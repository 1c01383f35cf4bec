//! The robust mutex under fire: holder processes update a checksummed record under the lock
//! and are killed at random points, inside the critical section too.
//!
//! Promised (`sync::RobustMutex` docs, ARCHITECTURE.md "Crash semantics"): the next locker
//! gets a dead holder's lock within about 20 ms of trying and is told the owner died; it
//! repairs and marks the data consistent; a live holder is never taken over.
//!
//! The record: `W` words that all hold the total count `c`, one count per holder slot (their
//! sum is `c`), and an xxh3 checksum. A holder copies the record to a backup (checksummed
//! too), then increments the words one by one (pausing now and then, so kills land in the
//! middle), bumps its slot's count, and writes the checksum. A `holder` word names the
//! process inside the critical section.
//!
//! Checked by every locker: if not told "owner died", the record is intact and `holder` is
//! 0 (whoever left did so cleanly); if told, a torn record (bad checksum) is restored from
//! the backup, which must be intact; `c` equals the sum of the slot counts (no lost update:
//! mutual exclusion held); `holder` still names us when we leave; `NotRecoverable` never
//! happens. Checked by the driver: after killing the holder of the lock, another process
//! takes it over within [`STALL`]; at the end it locks the mutex itself, and every slot's
//! count is at least what its processes reported.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmwire::sync::{LockTimeoutError, RobustMutex, TryLockError};
use shmwire::Segment;
use xxhash_rust::xxh3::xxh3_64;

use super::check::fail;
use super::drive::{kill_delay, Cfg, Crew, Progress, Stats, STALL};
use super::kids::{self, Beat};
use crate::common::{self, child_env, child_env_u64, report, Rng};

const HOLDERS: usize = 3;
const W: usize = 16;
const SLOTS: usize = 8;
const MUTEX: u64 = 0;
const MAIN: u64 = 128;
const BACKUP: u64 = 512;
const HOLDER: u64 = 1024;
const SIZE: u64 = 4096;
/// Record layout: W words, SLOTS counts, checksum.
const RECORD_WORDS: usize = W + SLOTS + 1;

const SEG: &str = "SHMWIRE_CHAOS_SEG";
const SLOT_VAR: &str = "SHMWIRE_CHAOS_SLOT";
const SEED: &str = "SHMWIRE_CHAOS_SEED";

fn word(seg: &Segment, at: u64) -> &AtomicU64 {
    seg.atomic_u64(at).expect("inside the mutex segment")
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Record([u64; RECORD_WORDS]);

impl Record {
    fn read(seg: &Segment, at: u64) -> Record {
        let mut r = [0; RECORD_WORDS];
        for (i, w) in r.iter_mut().enumerate() {
            *w = word(seg, at + i as u64 * 8).load(Ordering::Relaxed);
        }
        Record(r)
    }

    fn sum_of(words: &[u64]) -> u64 {
        xxh3_64(bytemuck::cast_slice(words))
    }

    fn valid(&self) -> bool {
        Self::sum_of(&self.0[..W + SLOTS]) == self.0[W + SLOTS]
    }

    fn count(&self) -> u64 {
        self.0[0]
    }

    /// Whether the words agree and the slot counts add up to them.
    fn coherent(&self) -> bool {
        self.0[..W].iter().all(|&w| w == self.0[0])
            && self.0[W..W + SLOTS].iter().sum::<u64>() == self.0[0]
    }

    fn write(&self, seg: &Segment, at: u64) {
        for (i, w) in self.0.iter().enumerate() {
            word(seg, at + i as u64 * 8).store(*w, Ordering::Relaxed);
        }
    }

    fn fresh() -> Record {
        let mut r = [0; RECORD_WORDS];
        r[W + SLOTS] = Self::sum_of(&r[..W + SLOTS]);
        Record(r)
    }
}

/// A pause inside the critical section, sometimes.
fn dawdle(rng: &mut Rng) {
    match rng.below(1000) {
        0..=899 => {}
        900..=989 => std::thread::yield_now(),
        _ => std::thread::sleep(Duration::from_micros(rng.below(3000))),
    }
}

// ------------------------------------------------------------------------------ children

/// A holder in slot `SLOT_VAR`: locks, checks, updates, unlocks, until killed or stopped.
pub(super) fn child_holder() {
    common::listen_to_parent();
    let seg = Segment::open(&child_env(SEG)).expect("the mutex segment");
    let slot = child_env_u64(SLOT_VAR) as usize;
    let mut rng = Rng::new(child_env_u64(SEED));
    let mutex = RobustMutex::open_in(&seg, MUTEX).expect("the mutex");
    let me = u64::from(std::process::id());
    report("ready", slot);
    let (mut n, mut beat) = (0u64, Beat::new());
    let mut timeouts = 0u64;
    while !common::stop_requested() {
        if beat.due() {
            report("n", n);
        }
        let locked = match rng.below(10) {
            0..=4 => mutex.lock().map_err(LockTimeoutError::from),
            5..=7 => mutex.lock_timeout(Duration::from_millis(rng.between(1, 2000))),
            _ => loop {
                match mutex.try_lock() {
                    Err(TryLockError::WouldBlock) if !common::stop_requested() => {
                        std::thread::yield_now();
                        if beat.due() {
                            report("n", n);
                        }
                    }
                    other => break other.map_err(LockTimeoutError::from),
                }
            },
        };
        let mut guard = match locked {
            Ok(g) => g,
            Err(LockTimeoutError::Timeout) => {
                timeouts += 1;
                continue;
            }
            Err(e) => fail(format!("locking: {e}")),
        };
        let holder = word(&seg, HOLDER).load(Ordering::Relaxed);
        let mut rec = Record::read(&seg, MAIN);
        if guard.owner_died() {
            // When, whose lock (if the dead one got as far as saying so), and torn or not.
            report(
                "od",
                format!(
                    "{}:{holder}:{}",
                    kids::wall_micros(),
                    u8::from(!rec.valid())
                ),
            );
            if !rec.valid() {
                let backup = Record::read(&seg, BACKUP);
                if !backup.valid() {
                    fail(format!(
                        "the record is torn and so is its backup (previous holder {holder})"
                    ));
                }
                backup.write(&seg, MAIN);
                rec = backup;
            }
            if rng.chance(5) {
                // Die, maybe, before marking the repair done: the next locker is told again.
                dawdle(&mut rng);
            }
            guard.mark_consistent();
        } else {
            if holder != 0 {
                fail(format!(
                    "OWNER DIED UNREPORTED: process {holder} left the critical section without \
                     leaving it, and the lock was handed on without \"owner died\""
                ));
            }
            if !rec.valid() {
                fail("TORN RECORD without \"owner died\": the last holder did not finish");
            }
        }
        if !rec.coherent() {
            fail(format!(
                "LOST UPDATE: an intact record is inconsistent: {rec:?}"
            ));
        }
        word(&seg, HOLDER).store(me, Ordering::Relaxed);
        rec.write(&seg, BACKUP);
        let c = rec.count();
        for i in 0..W {
            word(&seg, MAIN + i as u64 * 8).store(c + 1, Ordering::Relaxed);
            dawdle(&mut rng);
        }
        let mut next = rec;
        next.0[..W].fill(c + 1);
        next.0[W + slot] += 1;
        next.0[W + SLOTS] = Record::sum_of(&next.0[..W + SLOTS]);
        word(&seg, MAIN + (W + slot) as u64 * 8).store(next.0[W + slot], Ordering::Relaxed);
        dawdle(&mut rng);
        word(&seg, MAIN + (W + SLOTS) as u64 * 8).store(next.0[W + SLOTS], Ordering::Relaxed);
        let still = word(&seg, HOLDER).load(Ordering::Relaxed);
        if still != me {
            fail(format!(
                "MUTUAL EXCLUSION BROKEN: process {still} entered the critical section while \
                 this one held it"
            ));
        }
        word(&seg, HOLDER).store(0, Ordering::Relaxed);
        if let Err(e) = guard.unlock() {
            fail(format!("unlocking: {e}"));
        }
        n += 1;
    }
    report("n", n);
    report("timeouts", timeouts);
    report("final", n);
}

// -------------------------------------------------------------------------------- driver

pub(super) fn run(cfg: &Cfg<'_>) -> Result<Stats, String> {
    let name = format!("{}mtx", cfg.prefix);
    let (seg, _) = Segment::options()
        .open_or_create(&name, SIZE, |seg| {
            RobustMutex::init_in(seg, MUTEX)?;
            Record::fresh().write(seg, MAIN);
            Record::fresh().write(seg, BACKUP);
            Ok(())
        })
        .map_err(|e| e.to_string())?;
    assert!(seg.is_owned(), "the driver created the mutex segment");
    let mutex = RobustMutex::open_in(&seg, MUTEX).map_err(|e| e.to_string())?;
    let mut rng = cfg.rng(4);
    let mut crew = Crew::default();
    let mut stats = Stats::default();
    let mut gen = 0;
    // Per slot: commits reported by its processes (lower bounds for killed ones).
    let mut reported = [0u64; SLOTS];
    // Recoveries seen (`od` reports), and the kill times of recent victims by pid.
    let mut od = Recoveries::default();
    let mut spawn = |crew: &mut Crew, rng: &mut Rng, slot: usize| {
        gen += 1;
        let env = [
            (SEG, name.clone()),
            (SLOT_VAR, slot.to_string()),
            (SEED, rng.next().to_string()),
        ];
        crew.add(kids::spawn("mutex-holder", slot, gen, &env));
    };
    for s in 0..HOLDERS {
        spawn(&mut crew, &mut rng, s);
    }
    let commits = |crew: &Crew, reported: &[u64; SLOTS]| {
        crew.kids.iter().map(|k| k.last_num("n")).sum::<u64>() + reported.iter().sum::<u64>()
    };
    let mut progress = Progress::new();
    let mut next_kill = Instant::now() + kill_delay(&mut rng);
    while cfg.go_on(stats.total_kills()) {
        od.take(crew.poll()?, &mut stats);
        let all_up = crew.kids.len() == HOLDERS
            && crew.kids.iter().all(|k| {
                k.ready
                    .is_some_and(|r| r.elapsed() > Duration::from_millis(500))
            });
        progress.update(
            commits(&crew, &reported),
            all_up,
            &mut stats,
            "the mutex holders",
        )?;
        if Instant::now() < next_kill {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let i = rng.below(crew.kids.len() as u64) as usize;
        if crew.kids[i].ready.is_none() && !rng.chance(10) {
            continue;
        }
        let pid = crew.kids[i].pid();
        let victim = crew.kill(i, &mut stats)?;
        let killed_at = Instant::now();
        progress.reset();
        reported[victim.slot] += victim.last_num("n");
        od.died.insert(u64::from(pid), victim.died);
        if mutex.owner().is_some_and(|o| o.pid == pid) {
            // Killed holding the lock, and nobody took it over yet: a survivor must.
            loop {
                od.take(crew.poll()?, &mut stats);
                if mutex.owner().is_none_or(|o| o.pid != pid) {
                    break;
                }
                if killed_at.elapsed() > STALL {
                    return Err(format!(
                        "STUCK LOCK: the mutex still names killed process {pid} after {STALL:?}"
                    ));
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        spawn(&mut crew, &mut rng, victim.slot);
        next_kill = Instant::now() + kill_delay(&mut rng);
    }
    if cfg.abort.load(Ordering::Relaxed) {
        return Ok(stats);
    }
    od.take(crew.finish_all()?, &mut stats);
    for k in &crew.kids {
        reported[k.slot] += k.last_num("final");
    }
    let guard = mutex
        .lock_timeout(STALL)
        .map_err(|e| format!("the driver cannot take the lock at the end: {e}"))?;
    let rec = Record::read(&seg, MAIN);
    if guard.owner_died() || !rec.valid() || !rec.coherent() {
        return Err(format!(
            "after every holder finished cleanly: owner died {}, record {rec:?}",
            guard.owner_died()
        ));
    }
    for (s, (&counted, &told)) in rec.0[W..W + SLOTS].iter().zip(&reported).enumerate() {
        if counted < told {
            return Err(format!(
                "LOST COMMITS: slot {s} counts {counted} updates, its processes reported {told}"
            ));
        }
    }
    drop(guard);
    stats.add("critical sections completed (record count)", rec.count());
    stats.add("owner-died recoveries", od.recovered);
    stats.add("of which the record was torn and restored", od.torn);
    stats.add(
        "of which the dead holder was identified (latency measured)",
        od.matched,
    );
    Ok(stats)
}

/// The holders' `od` reports: recoveries, and the time from a holder's death to the lock's
/// takeover when the recoverer could tell whose lock it took (the dead holder had written
/// its pid in the record's `holder` word).
#[derive(Default)]
struct Recoveries {
    died: std::collections::HashMap<u64, u64>,
    recovered: u64,
    torn: u64,
    matched: u64,
}

impl Recoveries {
    fn take(&mut self, reports: Vec<(usize, common::Report)>, stats: &mut Stats) {
        for (_, r) in reports {
            if r.key != "od" {
                continue;
            }
            let f: Vec<u64> = r.value.split(':').map(|x| x.parse().unwrap_or(0)).collect();
            let [at, holder, torn] = f[..] else { continue };
            self.recovered += 1;
            self.torn += torn;
            if let Some(died) = self.died.remove(&holder) {
                self.matched += 1;
                stats.latency(
                    "lock taken over after its holder was killed",
                    Duration::from_micros(at.saturating_sub(died)),
                );
            }
        }
    }
}
