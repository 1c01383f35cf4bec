//! MPMC under fire: several producer and consumer processes, killed at random and replaced.
//!
//! Promised (`channel::mpmc` docs): each message goes to exactly one receiver; a dead
//! sender's unfinished message is skipped, never delivered half-written; the message a
//! receiver was copying when it died is lost with it; receivers get `Disconnected` when every
//! sender is gone and the queue is empty, senders when the queue is full and every receiver
//! is gone.
//!
//! Checked: every message's checksum; per consumer, each producer's messages in order;
//! delivery at most once, exactly: a message's bit in the "delivered" bitmap of the state
//! segment is set by the consumer that verified it, and a bit already set is a duplicate.
//! Loss is counted exactly as well: producers take message indices from a counter and set
//! the "sent" bit once `send` returned; at the end (and whenever every producer is dead and
//! every consumer has been told `Disconnected`) a message sent but not delivered must be one
//! of those a killed consumer was in the middle of receiving (a per-consumer "busy" word).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use shmwire::channel::{
    mpmc, ChannelOptions, RecvTimeoutError, SendTimeoutError, TrySendError, WaitStrategy,
};
use shmwire::Segment;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use super::check::fail;
use super::drive::{kill_delay, Cfg, Crew, Progress, Stats};
use super::kids::{self, Beat};
use crate::common::{self, child_env, child_env_u64, fill, report, Rng};

const PRODUCERS: usize = 3;
const CONSUMERS: usize = 3;
const SLOTS: u64 = 64;
const SLOT: u64 = 4096;
/// Message header: index, producer generation (bit 0: an abandoned loan), checksum.
const HDR: usize = 24;
/// State segment: the index counter, per-slot busy words, then two bitmaps.
const COUNTER: u64 = 0;
const PROD_BUSY: u64 = 64;
const CONS_BUSY: u64 = 256;
const SENT: u64 = 4096;
const BITS: u64 = 1 << 26;
const DELIVERED: u64 = SENT + BITS / 8;
const STATE_SIZE: u64 = DELIVERED + BITS / 8;

const CH: &str = "SHMWIRE_CHAOS_CH";
const ST: &str = "SHMWIRE_CHAOS_ST";
const GEN: &str = "SHMWIRE_CHAOS_GEN";
const SLOT_VAR: &str = "SHMWIRE_CHAOS_SLOT";
const SEED: &str = "SHMWIRE_CHAOS_SEED";

fn word(st: &Segment, at: u64) -> &AtomicU64 {
    st.atomic_u64(at).expect("inside the state segment")
}

/// Sets bit `i` of the bitmap at `base`; whether it was set already.
fn set_bit(st: &Segment, base: u64, i: u64) -> bool {
    let w = word(st, base + i / 64 * 8);
    w.fetch_or(1 << (i % 64), Ordering::SeqCst) & 1 << (i % 64) != 0
}

fn opts(rng: &mut Rng) -> ChannelOptions {
    let wait = match rng.below(3) {
        0 => WaitStrategy::Spin,
        1 => WaitStrategy::Block,
        _ => WaitStrategy::default(),
    };
    ChannelOptions::new()
        .capacity(SLOTS)
        .message_size(SLOT)
        .wait(wait)
}

fn encode(buf: &mut Vec<u8>, idx: u64, tag: u64, payload: usize) {
    buf.clear();
    buf.resize(HDR + payload, 0);
    fill(&mut buf[HDR..], idx ^ tag << 32);
    let sum = xxh3_64_with_seed(&buf[HDR..], idx ^ tag.rotate_left(29));
    buf[..8].copy_from_slice(&idx.to_le_bytes());
    buf[8..16].copy_from_slice(&tag.to_le_bytes());
    buf[16..24].copy_from_slice(&sum.to_le_bytes());
}

/// (index, producer generation) of a message, after checking it.
fn decode(msg: &[u8]) -> (u64, u64) {
    if msg.len() < HDR {
        fail(format!("a message of {} bytes has no header", msg.len()));
    }
    let idx = u64::from_le_bytes(msg[..8].try_into().unwrap());
    let tag = u64::from_le_bytes(msg[8..16].try_into().unwrap());
    let sum = u64::from_le_bytes(msg[16..24].try_into().unwrap());
    if xxh3_64_with_seed(&msg[HDR..], idx ^ tag.rotate_left(29)) != sum {
        fail(format!(
            "TORN message: index {idx} of producer {} ({} bytes) does not match its checksum",
            tag >> 1,
            msg.len()
        ));
    }
    if tag & 1 != 0 {
        fail(format!(
            "ABANDONED LOAN DELIVERED: index {idx} of producer {} was dropped unsent",
            tag >> 1
        ));
    }
    (idx, tag >> 1)
}

// ------------------------------------------------------------------------------ children

/// Producer in slot `SLOT_VAR`: sends until killed or told to stop.
pub(super) fn child_producer() {
    common::listen_to_parent();
    let st = Segment::open(&child_env(ST)).expect("the state segment");
    let (gen, slot) = (child_env_u64(GEN), child_env_u64(SLOT_VAR));
    let mut rng = Rng::new(child_env_u64(SEED));
    let mut tx = mpmc::Sender::open(&child_env(CH), &opts(&mut rng))
        .unwrap_or_else(|e| fail(format!("opening a sender: {e}")));
    let busy = word(&st, PROD_BUSY + slot * 8);
    report("ready", gen);
    let (mut n, mut beat, mut disc, mut buf) =
        (0u64, Beat::new(), kids::Disc::default(), Vec::new());
    let mut idx = None;
    while !common::stop_requested() {
        if beat.due() {
            report("n", n);
        }
        if rng.chance(2) {
            // A loan dropped unsent, holding a valid-looking message marked abandoned.
            if let Ok(mut junk) = tx.try_loan(SLOT as usize) {
                encode(
                    &mut buf,
                    u64::MAX,
                    gen << 1 | 1,
                    rng.below(SLOT - HDR as u64) as usize,
                );
                junk.write_at(0, &buf);
            }
        }
        let i = *idx.get_or_insert_with(|| word(&st, COUNTER).fetch_add(1, Ordering::SeqCst));
        if i >= BITS {
            report("exhausted", i);
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        busy.store(i + 1, Ordering::SeqCst);
        encode(
            &mut buf,
            i,
            gen << 1,
            rng.below(SLOT - HDR as u64 + 1) as usize,
        );
        let sent = match rng.below(10) {
            0..=3 => tx.send(&buf).map_err(SendTimeoutError::from),
            4 => tx.send_timeout(&buf, Duration::from_millis(rng.between(1, 300))),
            5..=7 => tx
                .loan(buf.len())
                .map(|mut loan| {
                    let mid = buf.len() / 2;
                    loan.write_at(mid, &buf[mid..]);
                    loan.write_at(0, &buf[..mid]);
                    loan.send();
                })
                .map_err(SendTimeoutError::from),
            _ => loop {
                match tx.try_send(&buf) {
                    Err(TrySendError::Full) if !common::stop_requested() => {
                        std::thread::yield_now();
                        if beat.due() {
                            report("n", n);
                        }
                    }
                    other => break other.map_err(SendTimeoutError::from),
                }
            },
        };
        match sent {
            Ok(()) => {
                set_bit(&st, SENT, i);
                busy.store(0, Ordering::SeqCst);
                idx = None;
                n += 1;
                disc.clear();
            }
            Err(SendTimeoutError::Disconnected { .. }) => {
                disc.seen();
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(SendTimeoutError::Timeout) => {}
            Err(e) => fail(format!("sending index {i}: {e}")),
        }
    }
    busy.store(0, Ordering::SeqCst);
    drop(tx);
    report("done", n);
}

/// Consumer in slot `SLOT_VAR`: receives and checks until killed, or (told to stop) until
/// `Disconnected`.
pub(super) fn child_consumer() {
    common::listen_to_parent();
    let st = Segment::open(&child_env(ST)).expect("the state segment");
    let slot = child_env_u64(SLOT_VAR);
    let mut rng = Rng::new(child_env_u64(SEED));
    let mut rx = mpmc::Receiver::open(&child_env(CH), &opts(&mut rng))
        .unwrap_or_else(|e| fail(format!("opening a receiver: {e}")));
    let busy = word(&st, CONS_BUSY + slot * 8);
    report("ready", slot);
    let (mut n, mut beat, mut disc) = (0u64, Beat::new(), kids::Disc::default());
    let mut order: HashMap<u64, u64> = HashMap::new();
    let mut accept = |msg: &[u8]| {
        let (idx, gen) = decode(msg);
        if idx >= word(&st, COUNTER).load(Ordering::SeqCst) {
            fail(format!("index {idx} was never handed out"));
        }
        if let Some(&before) = order.get(&gen) {
            if idx <= before {
                fail(format!(
                    "OUT OF ORDER: producer {gen}'s index {idx} after {before}"
                ));
            }
        }
        order.insert(gen, idx);
        if set_bit(&st, DELIVERED, idx) {
            fail(format!(
                "DUPLICATE: index {idx} of producer {gen} was delivered twice"
            ));
        }
    };
    loop {
        if beat.due() {
            report("n", n);
        }
        busy.store(1, Ordering::SeqCst);
        let got = match rng.below(10) {
            0..=3 => rx.recv_ref().map_err(RecvTimeoutError::from).map(|guard| {
                let mut msg = vec![0u8; guard.len()];
                let cut = guard.len() / 2;
                guard.read_at(cut, &mut msg[cut..]);
                guard.read_at(0, &mut msg[..cut]);
                accept(&msg);
            }),
            4..=6 => rx
                .recv()
                .map_err(RecvTimeoutError::from)
                .map(|m| accept(&m)),
            7 => rx
                .recv_timeout(Duration::from_millis(rng.between(1, 300)))
                .map(|m| accept(&m)),
            _ => rx
                .try_recv()
                .map_err(RecvTimeoutError::from)
                .map(|m| accept(&m)),
        };
        busy.store(0, Ordering::SeqCst);
        match got {
            Ok(()) => {
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
            Err(e) => fail(format!("receiving: {e}")),
        }
    }
    report("n", n);
    report("final", n);
}

// -------------------------------------------------------------------------------- driver

struct Driver<'a> {
    rng: Rng,
    ch: String,
    st_name: String,
    st: &'a Segment,
    crew: Crew,
    gen: u64,
    stats: Stats,
    verified: u64,
    /// Kills of consumers that were in the middle of a receive: each may lose one message.
    losable: u64,
    /// Indices killed producers were sending: delivered, maybe, but never marked sent.
    unmarked_ok: Vec<u64>,
}

impl Driver<'_> {
    fn spawn(&mut self, producer: bool, slot: usize) {
        self.gen += 1;
        let env = [
            (CH, self.ch.clone()),
            (ST, self.st_name.clone()),
            (GEN, self.gen.to_string()),
            (SLOT_VAR, slot.to_string()),
            (SEED, self.rng.next().to_string()),
        ];
        let role = if producer {
            "mpmc-producer"
        } else {
            "mpmc-consumer"
        };
        self.crew.add(kids::spawn(role, slot, self.gen, &env));
    }

    /// Kills child `i`, accounting for what it was doing.
    fn kill(&mut self, i: usize) -> Result<kids::Kid, String> {
        let k = self.crew.kill(i, &mut self.stats)?;
        if k.role == "mpmc-consumer" {
            self.verified += k.last_num("n");
            if word(self.st, CONS_BUSY + k.slot as u64 * 8).swap(0, Ordering::SeqCst) != 0 {
                self.losable += 1;
            }
        } else if let Some(i) = word(self.st, PROD_BUSY + k.slot as u64 * 8)
            .swap(0, Ordering::SeqCst)
            .checked_sub(1)
        {
            self.unmarked_ok.push(i);
        }
        Ok(k)
    }

    fn delivered_count(&self) -> u64 {
        self.crew
            .kids
            .iter()
            .filter(|k| k.role == "mpmc-consumer")
            .map(|k| k.last_num("n"))
            .sum::<u64>()
            + self.verified
    }

    /// Compares the bitmaps: sent but not delivered must be few enough to be the messages
    /// of consumers killed mid-receive; delivered but not marked sent must be indices that
    /// killed producers were sending.
    fn audit(&mut self, when: &str) -> Result<(u64, u64), String> {
        // No producer lives and every consumer was told `Disconnected`: no message may be
        // left in the queue.
        let ready = ready_slots(&self.ch);
        if ready > 0 {
            return Err(format!(
                "DISCONNECTED TOO EARLY ({when}): every consumer was told Disconnected, but \
                 {ready} message(s) are still ready in the queue"
            ));
        }
        let end = word(self.st, COUNTER).load(Ordering::SeqCst).min(BITS);
        let (mut lost, mut unmarked) = (Vec::new(), Vec::new());
        for w in 0..end.div_ceil(64) {
            let s = word(self.st, SENT + w * 8).load(Ordering::SeqCst);
            let d = word(self.st, DELIVERED + w * 8).load(Ordering::SeqCst);
            for b in 0..64 {
                let i = w * 64 + b;
                if s & !d & 1 << b != 0 {
                    lost.push(i);
                }
                if d & !s & 1 << b != 0 {
                    unmarked.push(i);
                }
            }
        }
        if lost.len() as u64 > self.losable {
            return Err(format!(
                "LOST ({when}): {} message(s) sent but never delivered, while only {} \
                 consumer(s) were killed mid-receive; first indices {:?}",
                lost.len(),
                self.losable,
                &lost[..lost.len().min(10)]
            ));
        }
        if let Some(i) = unmarked.iter().find(|i| !self.unmarked_ok.contains(i)) {
            return Err(format!(
                "delivered index {i} was never sent (nor being sent by a killed producer)"
            ));
        }
        Ok((lost.len() as u64, end))
    }
}

/// How many slots of the queue hold a message ready to be received.
fn ready_slots(ch: &str) -> u64 {
    let Ok(seg) = Segment::open(ch) else {
        return 0;
    };
    (0..SLOTS)
        .filter(|i| {
            seg.atomic_u64(4096 + i * 16)
                .is_some_and(|w| w.load(Ordering::SeqCst) & 3 == 2)
        })
        .count() as u64
}

/// The queue's cursors and the slots from the read cursor on, for a failure report (payload
/// offsets from docs/layout.md: tail 1280, head 1408, slot controls from 4096).
fn queue_state(ch: &str) -> String {
    let Ok(seg) = Segment::open(ch) else {
        return format!("(channel {ch} cannot be opened)");
    };
    let at = |off: u64| {
        seg.atomic_u64(off)
            .map_or(u64::MAX, |w| w.load(Ordering::SeqCst))
    };
    let (tail, head) = (at(1280), at(1408));
    let phase = ["free", "writing", "ready", "reading"];
    let slots: Vec<String> = (head..head + 4)
        .map(|p| {
            let s = at(4096 + p % SLOTS * 16);
            format!(
                "[{p}: {} by entry {} gen {} lap {}]",
                phase[(s & 3) as usize],
                s >> 2 & 0x3F,
                s >> 8 & 0xFF,
                s >> 16
            )
        })
        .collect();
    format!(
        "queue: tail {tail}, head {head} (lap {}); slots from head: {}",
        head / SLOTS,
        slots.join(" ")
    )
}

pub(super) fn run(cfg: &Cfg<'_>) -> Result<Stats, String> {
    let ch = format!("{}mpmc", cfg.prefix);
    run_on(cfg).map_err(|e| format!("{e}\n{}", queue_state(&ch)))
}

fn run_on(cfg: &Cfg<'_>) -> Result<Stats, String> {
    let st_name = format!("{}mpmc-st", cfg.prefix);
    let st = Segment::create(&st_name, STATE_SIZE).map_err(|e| e.to_string())?;
    let mut d = Driver {
        rng: cfg.rng(2),
        ch: format!("{}mpmc", cfg.prefix),
        st_name,
        st: &st,
        crew: Crew::default(),
        gen: 0,
        stats: Stats::default(),
        verified: 0,
        losable: 0,
        unmarked_ok: Vec::new(),
    };
    for s in 0..CONSUMERS {
        d.spawn(false, s);
    }
    for s in 0..PRODUCERS {
        d.spawn(true, s);
    }
    let mut progress = Progress::new();
    let mut next_kill = Instant::now() + kill_delay(&mut d.rng);
    while cfg.go_on(d.stats.total_kills()) {
        d.crew.poll()?;
        let all_up = d.crew.kids.len() == PRODUCERS + CONSUMERS
            && d.crew.kids.iter().all(|k| {
                k.ready
                    .is_some_and(|r| r.elapsed() > Duration::from_millis(500))
            });
        let count = d.delivered_count();
        progress.update(count, all_up, &mut d.stats, "the MPMC queue")?;
        if Instant::now() < next_kill {
            std::thread::sleep(Duration::from_millis(1));
            continue;
        }
        next_kill = Instant::now() + kill_delay(&mut d.rng);
        progress.reset();
        let all_ready = |role: &str, crew: &Crew| {
            crew.kids
                .iter()
                .filter(|k| k.role == role)
                .all(|k| k.ready.is_some())
        };
        // The survivors must have attached while their peers lived (else they started a new
        // session, and wait for a peer to come, as documented).
        let everyone = all_ready("mpmc-producer", &d.crew) && all_ready("mpmc-consumer", &d.crew);
        match d.rng.below(100) {
            // Every producer at once: the consumers must be told `Disconnected` with
            // nothing left behind (a dead producer's claimed slot must not hide messages).
            0..=4 if everyone => {
                let mut slots = Vec::new();
                let mut killed_at = 0;
                while let Some(i) = d.crew.kids.iter().position(|k| k.role == "mpmc-producer") {
                    let k = d.kill(i)?;
                    slots.push(k.slot);
                    killed_at = k.died;
                }
                for c in 0..CONSUMERS {
                    let i = d.crew.find("mpmc-consumer", c).expect("a consumer");
                    let took = d.crew.wait_disc(i, killed_at)?;
                    d.stats.latency(
                        "consumers told Disconnected after all producers killed",
                        took,
                    );
                }
                // Everything the consumers verified is marked by now (they are idle).
                d.audit("all producers dead, consumers disconnected")?;
                d.stats.add("audits with every producer dead", 1);
                for s in slots {
                    d.spawn(true, s);
                }
            }
            // Every consumer at once: the producers must be told `Disconnected` once the
            // queue is full.
            5..=9 if everyone => {
                let mut slots = Vec::new();
                let mut killed_at = 0;
                while let Some(i) = d.crew.kids.iter().position(|k| k.role == "mpmc-consumer") {
                    let k = d.kill(i)?;
                    slots.push(k.slot);
                    killed_at = k.died;
                }
                for p in 0..PRODUCERS {
                    let i = d.crew.find("mpmc-producer", p).expect("a producer");
                    let took = d.crew.wait_disc(i, killed_at)?;
                    d.stats.latency(
                        "producers told Disconnected after all consumers killed",
                        took,
                    );
                }
                for s in slots {
                    d.spawn(false, s);
                }
            }
            _ => {
                let i = d.rng.below(d.crew.kids.len() as u64) as usize;
                if d.crew.kids[i].ready.is_none() && !d.rng.chance(10) {
                    continue;
                }
                let k = d.kill(i)?;
                d.spawn(k.role == "mpmc-producer", k.slot);
            }
        }
    }
    if cfg.abort.load(Ordering::Relaxed) {
        return Ok(d.stats);
    }
    // The end: kill every producer (some mid-send), let the consumers drain to
    // `Disconnected`, then nothing sent may be missing.
    while let Some(i) = d.crew.kids.iter().position(|k| k.role == "mpmc-producer") {
        d.kill(i)?;
    }
    let reports = d.crew.finish_all()?;
    for (i, r) in &reports {
        if r.key == "final" {
            d.verified += r.num();
            let _ = i;
        }
    }
    // The survivors' earlier heartbeats were counted in `delivered_count` only.
    let (lost, end) = d.audit("the end")?;
    d.stats.add("messages verified", d.verified);
    d.stats.add("message indices handed out", end);
    d.stats.add(
        "messages lost with a consumer killed mid-receive (allowed)",
        lost,
    );
    d.stats.add("consumer kills mid-receive", d.losable);
    if end >= BITS {
        d.stats
            .notes
            .push("the bitmaps filled up: later messages were not sent".into());
    }
    Ok(d.stats)
}
