//! Broadcast and blackboard under fire: the publisher / writer is killed mid-write (mostly),
//! subscribers and readers sometimes, and each is replaced.
//!
//! Promised (`channel::broadcast`, `channel::blackboard` docs): a subscriber sees every
//! message, in order, unless it falls a ring behind (then `Lagged` says how many it missed),
//! and never one that was being overwritten while it copied it; a publisher killed mid-message
//! leaves it invisible; a blackboard reader always gets the newest complete value — also after
//! a writer was killed in the middle of a write — and never a torn one.
//!
//! Checked: checksums of every message and value; broadcast ids against the publishers'
//! ledgers ([`Ledger::skipped`]) whenever no `Lagged` came in between (nothing certainly
//! published may be skipped silently); blackboard versions never go back, a value carries the
//! version the reader got it with, and a value once seen never becomes unreadable (`None`,
//! or an error).

use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use shmwire::channel::{blackboard, broadcast, ChannelOptions, RecvTimeoutError, WaitStrategy};
use shmwire::Segment;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::check::{decode, encode_into, fail, pack, show, Ledger};
use super::drive::{kill_delay, Cfg, Crew, Progress, Stats};
use super::kids::{self, Beat};
use crate::common::{self, child_env, child_env_u64, fill, report, Rng};

const BC_SLOTS: u64 = 32;
const BC_SLOT: u64 = 8192;
const SUBSCRIBERS: usize = 2;
const READERS: usize = 2;
const LEDGER: u64 = 0;
const GENS: u64 = 1 << 14;
const STATE_SIZE: u64 = GENS * 16;

const BC: &str = "SHMWIRE_CHAOS_BC";
const BB: &str = "SHMWIRE_CHAOS_BB";
const ST: &str = "SHMWIRE_CHAOS_ST";
const GEN: &str = "SHMWIRE_CHAOS_GEN";
const SEED: &str = "SHMWIRE_CHAOS_SEED";

/// The blackboard's value: 2 KiB, checksummed, carrying the version it was written as.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable, Debug)]
pub(super) struct Value {
    gen: u64,
    seq: u64,
    version: u64,
    sum: u64,
    words: [u64; 252],
}

impl Value {
    fn new(gen: u64, seq: u64, version: u64) -> Value {
        let mut v = Value::zeroed();
        v.gen = gen;
        v.seq = seq;
        v.version = version;
        fill(bytemuck::bytes_of_mut(&mut v.words), pack(gen, seq));
        v.sum = v.checksum();
        v
    }

    fn checksum(&self) -> u64 {
        let head = [self.gen, self.seq, self.version];
        xxh3_64_with_seed(
            bytemuck::bytes_of(&self.words),
            xxh3_64_with_seed(bytemuck::bytes_of(&head), 7),
        )
    }
}

fn wait(rng: &mut Rng) -> WaitStrategy {
    match rng.below(3) {
        0 => WaitStrategy::Spin,
        1 => WaitStrategy::Block,
        _ => WaitStrategy::default(),
    }
}

fn bc_opts(rng: &mut Rng) -> ChannelOptions {
    ChannelOptions::new()
        .capacity(BC_SLOTS)
        .message_size(BC_SLOT)
        .wait(wait(rng))
}

fn ledger(st: &Segment) -> Ledger<'_> {
    Ledger {
        seg: st,
        base: LEDGER,
        gens: GENS,
    }
}

/// A short, random pause of a writer: subscribers mostly keep up, sometimes fall behind.
fn pace(rng: &mut Rng) {
    match rng.below(100) {
        0..=69 => {}
        70..=94 => std::thread::yield_now(),
        _ => std::thread::sleep(Duration::from_micros(rng.below(2000))),
    }
}

// ------------------------------------------------------------------------------ children

/// Broadcast publisher of generation `GEN`.
pub(super) fn child_publisher() {
    common::listen_to_parent();
    let st = Segment::open(&child_env(ST)).expect("the state segment");
    let ledger = ledger(&st);
    let gen = child_env_u64(GEN);
    let mut rng = Rng::new(child_env_u64(SEED));
    let mut tx = broadcast::Publisher::open(&child_env(BC), &bc_opts(&mut rng))
        .unwrap_or_else(|e| fail(format!("opening the publisher: {e}")));
    report("ready", gen);
    let (mut seq, mut beat, mut buf) = (0u64, Beat::new(), Vec::new());
    while !common::stop_requested() {
        if beat.due() {
            report("n", seq);
        }
        let id = pack(gen, seq);
        encode_into(
            &mut buf,
            id,
            rng.below(BC_SLOT - super::check::HDR as u64 + 1) as usize,
        );
        ledger.begin(gen, seq);
        tx.send(&buf)
            .unwrap_or_else(|e| fail(format!("publishing {}: {e}", show(id))));
        ledger.commit(gen, seq);
        seq += 1;
        pace(&mut rng);
    }
    drop(tx);
    report("done", seq);
}

/// Broadcast subscriber.
pub(super) fn child_subscriber() {
    common::listen_to_parent();
    let st = Segment::open(&child_env(ST)).expect("the state segment");
    let ledger = ledger(&st);
    let mut rng = Rng::new(child_env_u64(SEED));
    let opts = bc_opts(&mut rng);
    let mut rx = if rng.chance(50) {
        broadcast::Subscriber::open(&child_env(BC), &opts)
    } else {
        broadcast::Subscriber::open_from_next(&child_env(BC), &opts)
    }
    .unwrap_or_else(|e| fail(format!("subscribing: {e}")));
    report("ready", 0);
    let (mut n, mut beat, mut disc) = (0u64, Beat::new(), kids::Disc::default());
    let (mut prev, mut lagged, mut lags) = (None::<u64>, true, 0u64);
    loop {
        if beat.due() {
            report("n", n);
            report("lagged", lags);
        }
        let got = match rng.below(10) {
            0..=5 => rx.recv().map_err(RecvTimeoutError::from),
            6..=7 => rx.recv_timeout(Duration::from_millis(rng.between(1, 300))),
            _ => rx.try_recv().map_err(RecvTimeoutError::from),
        };
        match got {
            Ok(msg) => {
                let id = decode(&msg).unwrap_or_else(|e| fail(e));
                if lagged {
                    if prev.is_some_and(|p| id <= p) {
                        fail(format!(
                            "OUT OF ORDER: {} after {} (with a lag between)",
                            show(id),
                            show(prev.unwrap())
                        ));
                    }
                } else {
                    match ledger.skipped(prev, id) {
                        Ok(0) => {}
                        Ok(k) => fail(format!(
                            "LOST: {k} message(s) certainly published between {} and {} were \
                             skipped without a Lagged error",
                            show(prev.unwrap_or(0)),
                            show(id)
                        )),
                        Err(e) => fail(e),
                    }
                }
                prev = Some(id);
                lagged = false;
                n += 1;
                disc.clear();
            }
            Err(RecvTimeoutError::Lagged { .. }) => {
                lagged = true;
                lags += 1;
            }
            Err(RecvTimeoutError::Disconnected { .. }) => {
                disc.seen();
                if common::stop_requested() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(RecvTimeoutError::Timeout) => {
                if common::stop_requested() {
                    break;
                }
            }
            Err(e) => fail(format!(
                "receiving after {}: {e}",
                prev.map_or("the start".into(), show)
            )),
        }
    }
    report("n", n);
    report("lagged", lags);
    report("final", n);
}

/// Blackboard writer of generation `GEN`.
pub(super) fn child_writer() {
    common::listen_to_parent();
    let gen = child_env_u64(GEN);
    let mut rng = Rng::new(child_env_u64(SEED));
    let opts = ChannelOptions::new().wait(wait(&mut rng));
    let mut w = blackboard::Writer::<Value>::open(&child_env(BB), &opts)
        .unwrap_or_else(|e| fail(format!("opening the writer: {e}")));
    report("ready", gen);
    let (mut seq, mut beat) = (0u64, Beat::new());
    while !common::stop_requested() {
        if beat.due() {
            report("n", seq);
        }
        w.write(&Value::new(gen, seq, w.version() + 1));
        seq += 1;
        pace(&mut rng);
    }
    drop(w);
    report("done", seq);
}

/// Blackboard reader.
pub(super) fn child_reader() {
    common::listen_to_parent();
    let mut rng = Rng::new(child_env_u64(SEED));
    let opts = ChannelOptions::new().wait(wait(&mut rng));
    let r = blackboard::Reader::<Value>::open(&child_env(BB), &opts)
        .unwrap_or_else(|e| fail(format!("opening a reader: {e}")));
    report("ready", 0);
    let (mut n, mut beat, mut disc) = (0u64, Beat::new(), kids::Disc::default());
    let mut seen: Option<(u64, Value)> = None;
    loop {
        if beat.due() {
            report("n", n);
        }
        let got = if rng.chance(80) {
            r.read_versioned()
                .inspect(|v| {
                    if v.is_none() && seen.is_some() {
                        fail("VANISHED: the blackboard reads empty after a value was seen");
                    }
                })
                .map_err(RecvTimeoutError::from)
        } else {
            let after = seen.map_or(0, |(v, _)| v);
            r.wait_newer_timeout(after, Duration::from_millis(rng.between(1, 300)))
                .map(Some)
        };
        match got {
            Ok(Some((version, value))) => {
                if value.checksum() != value.sum {
                    fail(format!(
                        "TORN value: version {version} does not match its checksum"
                    ));
                }
                if value.version != version {
                    fail(format!(
                        "value written as version {} read as version {version}",
                        value.version
                    ));
                }
                if let Some((v0, old)) = seen {
                    if version < v0 {
                        fail(format!("BACKWARDS: version {version} after {v0}"));
                    }
                    if version == v0 && (old.gen, old.seq) != (value.gen, value.seq) {
                        fail(format!(
                            "version {version} held {}:{} and then {}:{}",
                            old.gen, old.seq, value.gen, value.seq
                        ));
                    }
                }
                seen = Some((version, value));
                n += 1;
                disc.clear();
            }
            Ok(None) => {}
            Err(RecvTimeoutError::Disconnected { .. }) => {
                disc.seen();
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(e) => fail(format!(
                "reading after version {}: {e}",
                seen.map_or(0, |(v, _)| v)
            )),
        }
        if common::stop_requested() {
            break;
        }
    }
    report("n", n);
    report("final", n);
}

// -------------------------------------------------------------------------------- driver

const PUB: &str = "bc-publisher";
const SUB: &str = "bc-subscriber";
const WRITER: &str = "bb-writer";
const READER: &str = "bb-reader";

pub(super) fn run(cfg: &Cfg<'_>) -> Result<Stats, String> {
    let st_name = format!("{}bc-st", cfg.prefix);
    let st = Segment::create(&st_name, STATE_SIZE).map_err(|e| e.to_string())?;
    let (bc, bb) = (format!("{}bc", cfg.prefix), format!("{}bb", cfg.prefix));
    let mut rng = cfg.rng(3);
    let mut crew = Crew::default();
    let mut stats = Stats::default();
    let (mut gen, mut wgen) = (0u64, 0u64);
    let mut totals: std::collections::BTreeMap<&'static str, u64> = Default::default();
    let mut spawn = |crew: &mut Crew, rng: &mut Rng, role: &'static str, slot: usize| {
        let g = match role {
            PUB => {
                gen += 1;
                assert!(gen < GENS, "more publishers than the ledger holds");
                gen
            }
            WRITER => {
                wgen += 1;
                wgen
            }
            _ => 0,
        };
        let env = [
            (BC, bc.clone()),
            (BB, bb.clone()),
            (ST, st_name.clone()),
            (GEN, g.to_string()),
            (SEED, rng.next().to_string()),
        ];
        crew.add(kids::spawn(role, slot, g, &env));
    };
    for s in 0..SUBSCRIBERS {
        spawn(&mut crew, &mut rng, SUB, s);
    }
    for s in 0..READERS {
        spawn(&mut crew, &mut rng, READER, s);
    }
    spawn(&mut crew, &mut rng, PUB, 0);
    spawn(&mut crew, &mut rng, WRITER, 0);
    let received = |crew: &Crew, totals: &std::collections::BTreeMap<&str, u64>| {
        crew.kids
            .iter()
            .filter(|k| k.role == SUB || k.role == READER)
            .map(|k| k.last_num("n"))
            .sum::<u64>()
            + totals.values().sum::<u64>()
    };
    let mut progress = Progress::new();
    let mut next_kill = Instant::now() + kill_delay(&mut rng);
    while cfg.go_on(stats.total_kills()) {
        crew.poll()?;
        let all_up = crew.kids.len() == SUBSCRIBERS + READERS + 2
            && crew.kids.iter().all(|k| {
                k.ready
                    .is_some_and(|r| r.elapsed() > Duration::from_millis(500))
            });
        progress.update(
            received(&crew, &totals),
            all_up,
            &mut stats,
            "broadcast + blackboard",
        )?;
        if Instant::now() < next_kill {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        let role = match rng.below(100) {
            0..=34 => PUB,
            35..=69 => WRITER,
            70..=84 => SUB,
            _ => READER,
        };
        let slot = rng.below(if role == SUB { SUBSCRIBERS } else { READERS } as u64) as usize;
        let slot = if role == PUB || role == WRITER {
            0
        } else {
            slot
        };
        let i = crew.find(role, slot).expect("every role is filled");
        if crew.kids[i].ready.is_none() && !rng.chance(10) {
            continue;
        }
        // Withhold the replacement of a publisher / writer sometimes: the listener in slot 0
        // must be told `Disconnected` (if it attached while the victim lived; one that
        // attached later started a new session and waits for a writer to come).
        let listener = if role == PUB { SUB } else { READER };
        let withhold = (role == PUB || role == WRITER)
            && crew.kids[i].ready.is_some()
            && crew
                .find(listener, 0)
                .is_some_and(|l| crew.kids[l].ready.is_some())
            && rng.chance(25);
        let victim = crew.kill(i, &mut stats)?;
        progress.reset();
        if role == SUB || role == READER {
            *totals.entry(role).or_default() += victim.last_num("n");
            if role == SUB {
                stats.add("broadcast Lagged errors", victim.last_num("lagged"));
            }
        }
        if withhold {
            let i = crew.find(listener, 0).expect("a listener");
            let what = if role == PUB {
                "subscriber told Disconnected after publisher kill"
            } else {
                "blackboard reader told Disconnected after writer kill"
            };
            let took = crew.wait_disc(i, victim.died)?;
            stats.latency(what, took);
        }
        spawn(&mut crew, &mut rng, role, slot);
        next_kill = Instant::now() + kill_delay(&mut rng);
    }
    if cfg.abort.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(stats);
    }
    crew.finish_all()?;
    for k in &crew.kids {
        if k.role == SUB || k.role == READER {
            *totals.entry("final").or_default() += k.last_num("final");
        }
        if k.role == SUB {
            stats.add("broadcast Lagged errors", k.last_num("lagged"));
        }
    }
    stats.add("messages and values verified", totals.values().sum());
    stats.add("publisher generations", gen);
    stats.add("writer generations", wgen);
    drop(st);
    Ok(stats)
}
