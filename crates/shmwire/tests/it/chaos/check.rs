//! What the chaos children check: checksummed messages, and ledgers in shared memory from
//! which a receiver can tell whether it missed a message that was really sent.
//!
//! # Ids and ledgers
//!
//! A stream (SPSC, broadcast) is made by a succession of sender processes, each with its own
//! generation `g` (1, 2, …) numbering its messages 0, 1, …; a message's id packs `(g, seq)`.
//! A new sender starts only after the previous one was killed or finished and was reaped,
//! so the stream is gen 1's messages, then gen 2's, and so on.
//!
//! Each sender keeps a ledger entry in a state segment: `pend = seq + 1` before it sends
//! `seq`, `last = seq + 1` once the send returned. A sender killed mid-send leaves
//! `pend = last + 1`: that message may or may not have been sent. So gen `g` sent between
//! `last` and `pend` messages, and a receiver that jumps from `(g, s)` to `(g2, s2)` can
//! compute how many messages it must have skipped at least ([`Ledger::skipped`]).

use shmwire::Segment;
use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::common::{fill, Rng};

/// Bytes before a stream message's payload: its id and the xxh3 of the payload seeded with
/// the id (both u64 LE), so a header of one message on the payload of another shows.
pub(super) const HDR: usize = 16;

/// Builds the message `id` with a payload of `payload_len` bytes into `out`.
pub(super) fn encode_into(out: &mut Vec<u8>, id: u64, payload_len: usize) {
    out.clear();
    out.resize(HDR + payload_len, 0);
    fill(&mut out[HDR..], id ^ payload_len as u64);
    let sum = xxh3_64_with_seed(&out[HDR..], id);
    out[..8].copy_from_slice(&id.to_le_bytes());
    out[8..HDR].copy_from_slice(&sum.to_le_bytes());
}

/// The id of a received message, after checking its payload against its checksum.
pub(super) fn decode(msg: &[u8]) -> Result<u64, String> {
    if msg.len() < HDR {
        return Err(format!("a message of {} bytes has no header", msg.len()));
    }
    let id = u64::from_le_bytes(msg[..8].try_into().unwrap());
    let sum = u64::from_le_bytes(msg[8..HDR].try_into().unwrap());
    if xxh3_64_with_seed(&msg[HDR..], id) != sum {
        return Err(format!(
            "TORN message: {} ({} bytes) does not match its checksum",
            show(id),
            msg.len()
        ));
    }
    Ok(id)
}

/// Bits of an id holding the sequence number.
const SEQ_BITS: u32 = 40;

pub(super) fn pack(gen: u64, seq: u64) -> u64 {
    gen << SEQ_BITS | seq
}

pub(super) fn unpack(id: u64) -> (u64, u64) {
    (id >> SEQ_BITS, id & ((1 << SEQ_BITS) - 1))
}

/// An id for messages: `gen:seq`.
pub(super) fn show(id: u64) -> String {
    let (g, s) = unpack(id);
    format!("{g}:{s}")
}

/// Payload length of a stream message: mostly small, some medium, some large (up to `max`).
pub(super) fn payload_len(rng: &mut Rng, max: usize) -> usize {
    let max = max as u64;
    let n = match rng.below(100) {
        0..=59 => rng.between(1, 256),
        60..=84 => rng.between(257, 16 * 1024),
        _ => rng.between(16 * 1024, max),
    };
    n.min(max) as usize
}

/// The senders' ledger entries in a state segment: 16 bytes per generation from `base`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Ledger<'a> {
    pub seg: &'a Segment,
    pub base: u64,
    pub gens: u64,
}

impl Ledger<'_> {
    fn word(&self, gen: u64, which: u64) -> &std::sync::atomic::AtomicU64 {
        assert!(gen < self.gens, "generation {gen} beyond the ledger");
        self.seg
            .atomic_u64(self.base + gen * 16 + which * 8)
            .expect("the ledger is inside the state segment")
    }

    /// Sender side: about to send `seq`.
    pub(super) fn begin(&self, gen: u64, seq: u64) {
        self.word(gen, 1)
            .store(seq + 1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Sender side: `seq` was sent.
    pub(super) fn commit(&self, gen: u64, seq: u64) {
        self.word(gen, 0)
            .store(seq + 1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Messages of `gen` certainly sent, and possibly sent.
    pub(super) fn sent(&self, gen: u64) -> (u64, u64) {
        let last = self.word(gen, 0).load(std::sync::atomic::Ordering::SeqCst);
        let pend = self.word(gen, 1).load(std::sync::atomic::Ordering::SeqCst);
        (last, last.max(pend))
    }

    /// How many messages certainly sent lie strictly between `prev` (`None`: the start of
    /// the stream) and `next` in the stream; an error if `next` does not come after `prev`.
    /// Every generation before `next`'s must be finished (its sender reaped).
    pub(super) fn skipped(&self, prev: Option<u64>, next: u64) -> Result<u64, String> {
        let (g2, s2) = unpack(next);
        let Some(prev) = prev else {
            let before: u64 = (1..g2).map(|g| self.sent(g).0).sum();
            return Ok(before + s2);
        };
        let (g, s) = unpack(prev);
        if next <= prev {
            return Err(format!("OUT OF ORDER: {} after {}", show(next), show(prev)));
        }
        if g2 == g {
            return Ok(s2 - s - 1);
        }
        let (last, possible) = self.sent(g);
        if s >= possible {
            return Err(format!(
                "{} was received, but its sender's ledger says it sent at most {possible}",
                show(prev)
            ));
        }
        let rest_of_g = last.saturating_sub(s + 1);
        let between: u64 = (g + 1..g2).map(|x| self.sent(x).0).sum();
        Ok(rest_of_g + between + s2)
    }
}

/// A check failed in a child: panics with the message (the driver reports the child's
/// stderr).
#[track_caller]
pub(super) fn fail(what: impl std::fmt::Display) -> ! {
    panic!(
        "CHAOS CHECK FAILED in {} (pid {}): {what}",
        crate::common::child_role().unwrap_or_default(),
        std::process::id()
    )
}
