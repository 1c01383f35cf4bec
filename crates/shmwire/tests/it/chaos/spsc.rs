//! SPSC under fire: one producer and one consumer process, either killed at random moments
//! and replaced.
//!
//! Promised (`channel::spsc` docs): messages arrive whole and in order; a dead sender's
//! half-written message is never delivered; a message is freed only when its receive
//! completes, so across receiver crashes delivery is at least once; a receiver whose sender
//! died gets `Disconnected` once it has everything; a sender whose receiver died gets
//! `Disconnected` when it would have to wait for room.
//!
//! Checked: every message's checksum; its id against the previous one (the consumer's own,
//! or for a new consumer the one its predecessor recorded in the state segment) using the
//! senders' ledgers ([`Ledger::skipped`]): nothing certainly sent is skipped, nothing comes
//! twice except the message a consumer killed while holding it (`recv_ref`) had recorded;
//! at the end, a last producer that is never killed sends a tail, which the last consumer
//! must receive up to its very last message before `Disconnected`.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use shmwire::channel::{
    spsc, ChannelOptions, RecvTimeoutError, SendTimeoutError, TrySendError, WaitStrategy,
};
use shmwire::Segment;

use super::check::{self, decode, encode_into, fail, pack, payload_len, show, unpack, Ledger, HDR};
use super::drive::{kill_delay, Cfg, Crew, Progress, Stats, STALL};
use super::kids::{self, Beat};
use crate::common::{self, child_env, child_env_u64, report, Rng};

const RING: u64 = 512 * 1024;
const MAX_PAYLOAD: usize = 200 * 1024;
/// State segment: the consumers' record, then the producers' ledger.
const CONS_LAST: u64 = 0;
const CONS_PEND: u64 = 8;
const LEDGER: u64 = 64;
const GENS: u64 = 1 << 14;
const STATE_SIZE: u64 = LEDGER + GENS * 16;
/// Messages the last producer sends.
const TAIL: u64 = 200;

const CH: &str = "SHMWIRE_CHAOS_CH";
const ST: &str = "SHMWIRE_CHAOS_ST";
const GEN: &str = "SHMWIRE_CHAOS_GEN";
const SEED: &str = "SHMWIRE_CHAOS_SEED";
const COUNT: &str = "SHMWIRE_CHAOS_COUNT";

fn strategy(rng: &mut Rng) -> WaitStrategy {
    match rng.below(3) {
        0 => WaitStrategy::Spin,
        1 => WaitStrategy::Block,
        _ => WaitStrategy::default(),
    }
}

fn ledger(st: &Segment) -> Ledger<'_> {
    Ledger {
        seg: st,
        base: LEDGER,
        gens: GENS,
    }
}

fn word(st: &Segment, at: u64) -> &std::sync::atomic::AtomicU64 {
    st.atomic_u64(at).expect("inside the state segment")
}

// ------------------------------------------------------------------------------ children

/// Producer: streams messages of generation `GEN` until killed, told to stop, or `COUNT`
/// messages were sent.
pub(super) fn child_producer() {
    common::listen_to_parent();
    let st = Segment::open(&child_env(ST)).expect("the state segment");
    let ledger = ledger(&st);
    let gen = child_env_u64(GEN);
    let mut rng = Rng::new(child_env_u64(SEED));
    let count = std::env::var(COUNT).ok().map(|c| c.parse::<u64>().unwrap());
    let opts = ChannelOptions::new()
        .capacity(RING)
        .wait(strategy(&mut rng));
    let mut tx = spsc::Sender::open(&child_env(CH), &opts)
        .unwrap_or_else(|e| fail(format!("opening the sender: {e}")));
    report("ready", gen);
    let (mut seq, mut buf, mut beat, mut disc) =
        (0u64, Vec::new(), Beat::new(), kids::Disc::default());
    while !common::stop_requested() && count.is_none_or(|c| seq < c) {
        if beat.due() {
            report("n", seq);
        }
        let id = pack(gen, seq);
        encode_into(&mut buf, id, payload_len(&mut rng, MAX_PAYLOAD));
        if rng.chance(2) {
            // A loan dropped unsent: its (valid-looking) message must never arrive.
            if let Ok(mut junk) = tx.try_loan(buf.len()) {
                junk.write_at(0, &buf);
            }
        }
        ledger.begin(gen, seq);
        let sent = match rng.below(10) {
            0..=4 => tx.send(&buf).map_err(SendTimeoutError::from),
            5 => tx.send_timeout(&buf, Duration::from_millis(rng.between(1, 500))),
            6..=8 => tx
                .loan(buf.len())
                .map(|mut loan| {
                    // In pieces: payload first, header last, as a frame encoder would.
                    let mid = HDR + (buf.len() - HDR) / 2;
                    loan.write_at(mid, &buf[mid..]);
                    loan.write_at(HDR, &buf[HDR..mid]);
                    loan.write_at(0, &buf[..HDR]);
                    loan.send();
                })
                .map_err(SendTimeoutError::from),
            _ => loop {
                match tx.try_send(&buf) {
                    Err(TrySendError::Full) if !common::stop_requested() => {
                        std::thread::yield_now();
                        if beat.due() {
                            report("n", seq);
                        }
                    }
                    other => break other.map_err(SendTimeoutError::from),
                }
            },
        };
        match sent {
            Ok(()) => {
                ledger.commit(gen, seq);
                seq += 1;
                disc.clear();
            }
            Err(SendTimeoutError::Disconnected { .. }) => {
                disc.seen();
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(SendTimeoutError::Timeout) => {}
            Err(e) => fail(format!("sending {}: {e}", show(id))),
        }
    }
    drop(tx);
    report("done", seq);
}

/// Consumer: receives and checks until killed, or (told to stop) until `Disconnected`.
pub(super) fn child_consumer() {
    common::listen_to_parent();
    let st = Segment::open(&child_env(ST)).expect("the state segment");
    let ledger = ledger(&st);
    let (last, pend) = (word(&st, CONS_LAST), word(&st, CONS_PEND));
    let mut rng = Rng::new(child_env_u64(SEED));
    let opts = ChannelOptions::new()
        .capacity(RING)
        .wait(strategy(&mut rng));
    let mut rx = spsc::Receiver::open(&child_env(CH), &opts)
        .unwrap_or_else(|e| fail(format!("opening the receiver: {e}")));
    // What the previous consumer recorded: its last message, and whether it was in the
    // middle of a copying receive (then it may have taken one message unrecorded).
    let recorded = last.load(Ordering::SeqCst).checked_sub(1);
    let copying = pend.load(Ordering::SeqCst) == 1;
    report("ready", recorded.map_or("none".into(), show));
    let mut prev = recorded;
    let (mut n, mut beat, mut disc, mut buf) =
        (0u64, Beat::new(), kids::Disc::default(), Vec::new());
    // Checks `id` after `prev`; the first message may repeat the recorded one (a guard
    // held by a killed consumer) or skip one (a killed copying receive).
    let check = |prev: Option<u64>, id: u64, first: bool| {
        if first && !copying && prev == Some(id) {
            return;
        }
        let allowed = u64::from(first && copying);
        match ledger.skipped(prev, id) {
            Ok(k) if k <= allowed => {}
            Ok(k) => fail(format!(
                "LOST: {k} message(s) certainly sent between {} and {} were never received \
                 (first message of this consumer: {first}, predecessor mid-copy: {copying})",
                prev.map_or("the start".into(), show),
                show(id)
            )),
            Err(e) => fail(format!(
                "{e} (first message of this consumer: {first}, predecessor mid-copy: \
                 {copying}, recorded: {})",
                recorded.map_or("none".into(), show)
            )),
        }
    };
    loop {
        if beat.due() {
            report("n", n);
        }
        let got = match rng.below(10) {
            0..=4 => match rx.recv_ref() {
                Ok(guard) => {
                    // In pieces, holding the message in place.
                    let mut msg = vec![0u8; guard.len()];
                    let cut = guard.len() / 3;
                    guard.read_at(cut, &mut msg[cut..]);
                    guard.read_at(0, &mut msg[..cut]);
                    let id = decode(&msg).unwrap_or_else(|e| fail(e));
                    check(prev, id, n == 0);
                    last.store(id + 1, Ordering::SeqCst);
                    drop(guard);
                    Ok(id)
                }
                Err(e) => Err(RecvTimeoutError::from(e)),
            },
            r => {
                pend.store(1, Ordering::SeqCst);
                let got = match r {
                    5..=6 => rx.recv().map_err(RecvTimeoutError::from),
                    7 => rx.recv_timeout(Duration::from_millis(rng.between(1, 300))),
                    8 => rx
                        .recv_into(&mut buf)
                        .map_err(RecvTimeoutError::from)
                        .map(|_| std::mem::take(&mut buf)),
                    _ => rx.try_recv().map_err(RecvTimeoutError::from),
                };
                let out = got.map(|msg| {
                    let id = decode(&msg).unwrap_or_else(|e| fail(e));
                    check(prev, id, n == 0);
                    last.store(id + 1, Ordering::SeqCst);
                    id
                });
                pend.store(0, Ordering::SeqCst);
                out
            }
        };
        match got {
            Ok(id) => {
                prev = Some(id);
                n += 1;
                disc.clear();
            }
            Err(RecvTimeoutError::Disconnected { .. }) => {
                disc.seen();
                if common::stop_requested() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(e) => fail(format!(
                "receiving after {}: {e}",
                prev.map_or("the start".into(), show)
            )),
        }
    }
    report("n", n);
    report("final", prev.map_or(0, |p| p + 1));
}

// -------------------------------------------------------------------------------- driver

struct Driver<'a> {
    cfg: &'a Cfg<'a>,
    rng: Rng,
    ch: String,
    st_name: String,
    crew: Crew,
    gen: u64,
    consumers: u64,
    stats: Stats,
    verified: u64,
}

impl Driver<'_> {
    fn spawn_producer(&mut self, count: Option<u64>) {
        self.gen += 1;
        assert!(
            self.gen < GENS,
            "more producer generations than the ledger holds"
        );
        let mut env = vec![
            (CH, self.ch.clone()),
            (ST, self.st_name.clone()),
            (GEN, self.gen.to_string()),
            (SEED, self.rng.next().to_string()),
        ];
        if let Some(c) = count {
            env.push((COUNT, c.to_string()));
        }
        let k = kids::spawn("spsc-producer", 0, self.gen, &env);
        self.crew.add(k);
    }

    fn spawn_consumer(&mut self) {
        self.consumers += 1;
        let env = [
            (CH, self.ch.clone()),
            (ST, self.st_name.clone()),
            (SEED, self.rng.next().to_string()),
        ];
        let k = kids::spawn("spsc-consumer", 1, self.consumers, &env);
        self.crew.add(k);
    }

    fn consumer_count(&self) -> u64 {
        self.crew
            .find("spsc-consumer", 1)
            .map_or(0, |i| self.crew.kids[i].last_num("n"))
    }
}

/// The ring's cursors and the record words around the read cursor, for a failure report
/// (payload offsets from docs/layout.md: producer line 1280, consumer line 1408, data 4096).
fn ring_state(ch: &str) -> String {
    let Ok(seg) = Segment::open(ch) else {
        return format!("(channel {ch} cannot be opened)");
    };
    let at = |off: u64| {
        seg.atomic_u64(off)
            .map_or(u64::MAX, |w| w.load(Ordering::SeqCst))
    };
    let (tail, head) = (at(1280), at(1408));
    let word = |pos: u64| {
        let p = pos & (RING - 1);
        let mut h = [0u8; 8];
        let _ = seg.read_at(4096 + p + 8, &mut h);
        format!(
            "[pos {pos}: seq {} len {} size {:#x}]",
            at(4096 + p),
            u32::from_le_bytes(h[..4].try_into().unwrap()),
            u32::from_le_bytes(h[4..].try_into().unwrap())
        )
    };
    // The peer table at 128: ever, detaches, gen, exclusive[2], closing; entries from 256.
    let w32 = |off: u64| {
        let mut b = [0u8; 4];
        let _ = seg.read_at(off, &mut b);
        u32::from_le_bytes(b)
    };
    let mut peers = format!(
        "peers: ever {:#x}, detaches {}, gen {}, exclusive {:#x} {:#x}, closing {}; entries",
        w32(128),
        w32(132),
        w32(136),
        w32(140),
        w32(144),
        w32(148)
    );
    for e in 0..64 {
        let st = w32(256 + e * 16);
        if st != 0 {
            peers += &format!(" [{e}: state {st:#x} pid {}]", w32(256 + e * 16 + 4));
        }
    }
    format!(
        "ring: tail (shared) {tail}, head {head}, tail - head {}; record at head {}, at tail {}\n{peers}",
        tail.wrapping_sub(head),
        word(head),
        word(tail)
    )
}

pub(super) fn run(cfg: &Cfg<'_>) -> Result<Stats, String> {
    let ch = format!("{}spsc", cfg.prefix);
    run_on(cfg, &ch).map_err(|e| format!("{e}\n{}", ring_state(&ch)))
}

fn run_on(cfg: &Cfg<'_>, ch: &str) -> Result<Stats, String> {
    let ch = ch.to_owned();
    let st_name = format!("{}spsc-st", cfg.prefix);
    let st = Segment::create(&st_name, STATE_SIZE).map_err(|e| e.to_string())?;
    let mut d = Driver {
        cfg,
        rng: cfg.rng(1),
        ch,
        st_name,
        crew: Crew::default(),
        gen: 0,
        consumers: 0,
        stats: Stats::default(),
        verified: 0,
    };
    d.spawn_consumer();
    d.spawn_producer(None);
    let mut progress = Progress::new();
    let mut next_kill = Instant::now() + kill_delay(&mut d.rng);
    while d.cfg.go_on(d.stats.total_kills()) {
        d.crew.poll()?;
        let all_up = d.crew.kids.len() == 2
            && d.crew.kids.iter().all(|k| {
                k.ready
                    .is_some_and(|r| r.elapsed() > Duration::from_millis(500))
            });
        let count = d.consumer_count();
        progress.update(count, all_up, &mut d.stats, "the SPSC stream")?;
        if Instant::now() < next_kill {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        // Mostly ready victims; sometimes one still opening its endpoint.
        let i = d.rng.below(2) as usize;
        if d.crew.kids[i].ready.is_none() && !d.rng.chance(10) {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        // Both attached: the survivor's session includes the victim.
        let both_up = d.crew.kids.iter().all(|k| k.ready.is_some());
        let victim = d.crew.kill(i, &mut d.stats)?;
        progress.reset();
        // Withhold the replacement sometimes, to see the survivor told `Disconnected`. (A
        // survivor that attached after its peer's death started a new session: it waits for
        // a peer to come, as documented, and is never disconnected from the dead one.)
        let withhold = both_up && d.rng.chance(30);
        if victim.role == "spsc-consumer" {
            d.verified += victim.last_num("n");
            if withhold {
                let took = d.crew.wait_disc(0, victim.died)?;
                d.stats
                    .latency("producer told Disconnected after consumer kill", took);
            }
            d.spawn_consumer();
        } else {
            if withhold {
                let took = d.crew.wait_disc(0, victim.died)?;
                d.stats
                    .latency("consumer told Disconnected after producer kill", took);
            }
            d.spawn_producer(None);
        }
        next_kill = Instant::now() + kill_delay(&mut d.rng);
    }
    if cfg.abort.load(Ordering::Relaxed) {
        return Ok(d.stats);
    }
    // The end: stop the producer cleanly, send a tail nobody kills, drain.
    let p = d.crew.find("spsc-producer", 0).expect("a producer");
    let mut prod = d.crew.kids.remove(p);
    prod.stop();
    prod.wait_success(super::drive::FINISH)?;
    d.spawn_producer(Some(TAIL));
    let last_gen = d.gen;
    let p = d.crew.find("spsc-producer", 0).expect("the last producer");
    let mut prod = d.crew.kids.remove(p);
    let done = prod.wait_success(STALL * 3)?;
    if !done.iter().any(|r| r.key == "done" && r.num() == TAIL) {
        return Err(format!(
            "the last producer did not send its {TAIL} messages\n{}",
            prod.diagnostics()
        ));
    }
    let reports = d.crew.finish_all()?;
    let fin = reports
        .iter()
        .rev()
        .find(|(_, r)| r.key == "final")
        .map(|(_, r)| r.num())
        .ok_or("the last consumer reported no final message")?;
    let expected = pack(last_gen, TAIL - 1) + 1;
    if fin != expected {
        return Err(format!(
            "LOST TAIL: the last consumer ended at {} instead of {}",
            fin.checked_sub(1).map_or("nothing".into(), show),
            show(expected - 1)
        ));
    }
    d.verified += reports
        .iter()
        .rev()
        .find(|(_, r)| r.key == "n")
        .map_or(0, |(_, r)| r.num());
    d.stats.add("messages verified", d.verified);
    d.stats.add("producer generations", d.gen);
    let (g, _) = unpack(fin - 1);
    debug_assert_eq!(g, last_gen);
    drop(st);
    let _ = check::HDR;
    Ok(d.stats)
}
