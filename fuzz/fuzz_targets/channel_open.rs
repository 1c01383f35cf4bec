//! A channel segment (kinds 3-6) whose bytes are a real channel's, left behind by the library
//! after some traffic, then patched by the fuzzer — the description, peer table, cursors,
//! bells, records and slots — before and between operations. Every endpoint opens or fails
//! with an error, and a bounded number of non-blocking operations (`try_*`, timeouts of 0)
//! return Ok or an error: never a panic, a hang (libFuzzer's `-timeout`) or an access outside
//! the mapping. Delivered bytes may be anything (a hostile peer can write them); lengths and
//! positions must stay inside the channel, which is what `Lent` and the `Vec`s check.
//!
//! One thing is kept from the fuzzer: a zero `init_state` (an unpublished header) is put back
//! to ready, since every open would then wait out its 2 s init timeout — bounded (and tested
//! in tests/it/segments.rs), but libFuzzer would count a few of them as a hang.
#![no_main]

use std::os::unix::fs::FileExt;
use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use shmwire::channel::{blackboard, broadcast, mpmc, spsc, ChannelOptions};
use shmwire_fuzz::{
    fix_checksum, options, patch, slot_size, snapshot, Flavor, Large, Object, Recipe, Small,
    HEADER, INIT_READY, INIT_STATE,
};

#[derive(Arbitrary, Debug)]
struct Input {
    flavor: u8,
    shape: u8,
    sent: u8,
    taken: u8,
    /// Extra bytes after the channel's end (the header may promise more or less).
    slack: u8,
    /// Recompute the header checksum after the patches (so patched header fields count).
    fix_checksum: bool,
    patches: Vec<Patch>,
    ops: Vec<Op>,
}

/// Bytes written over the object, at a place aimed like a hostile peer would aim.
#[derive(Arbitrary, Debug)]
struct Patch {
    at: At,
    value: Value,
}

#[derive(Arbitrary, Debug)]
enum At {
    /// Anywhere in the header page.
    Header(u16),
    /// One of the header's fields.
    HeaderField(u8),
    /// Anywhere in the control page (description, peer table, cursor lines).
    Control(u16),
    /// One of the control page's words.
    ControlWord(u8),
    /// A peer entry's state and pid (`false`) or start time (`true`).
    Peer(u8, bool),
    /// In the data area at the producer's (`false`) or consumer's (`true`) cursor: the SPSC
    /// record there, or the slot control of that position; `u8` picks a word.
    Cursor(bool, u8),
    /// Anywhere in the data area.
    Data(u32),
}

/// Offsets of header fields: magic, version, payload offset and size, kind, name length,
/// checksum, init state.
const HEADER_FIELDS: [u64; 8] = [0, 8, 16, 24, 32, 72, 336, 384];
/// Payload offsets of the control words: description fields; peer table `ever`,
/// `detaches`, `gen`, `exclusive`, `closing`; producer and consumer cursor, bell seq and
/// waiters.
const CONTROL_WORDS: [u64; 21] = [
    0, 4, 8, 12, 16, 24, 32, 40, 48, 128, 132, 136, 140, 144, 148, 1280, 1288, 1292, 1408, 1416,
    1420,
];
const PAYLOAD: u64 = HEADER as u64;
const DATA: u64 = 2 * HEADER as u64;

/// What a patch writes. Besides plain values, values made from the channel's state as it is
/// when the patch is applied, as a peer that reads before it scribbles would make them.
#[derive(Arbitrary, Debug)]
enum Value {
    Bytes(Vec<u8>),
    U32(u32),
    U64(u64),
    /// `u64::MAX - n`, where overflows hide.
    NearMax(u8),
    /// The producer's (`false`) or consumer's (`true`) cursor plus a small delta.
    NearCursor(bool, i8),
    /// A slot state for the position at the consumer's cursor: the low 16 bits (phase,
    /// claimer entry and generation) and the lap of that position plus a small delta.
    SlotState(u16, i8),
    /// `2 * cursor + delta`: a broadcast or blackboard seq near the current message.
    Seq(bool, i8),
    /// An SPSC record header that the receiver at the consumer's cursor takes as published:
    /// its `seq` (cursor + 1), `len` and `size` (bit 31 filler, bit 30 payload offset),
    /// then the payload offset word.
    Record(u32, u32, u32),
}

#[derive(Arbitrary, Debug)]
enum Op {
    OpenRecv,
    OpenSend,
    DropRecv,
    DropSend,
    Recv,
    RecvRef(u16),
    RecvTimeout,
    Send(u16),
    Loan(u16, u8),
    WaitReceived,
    Patch(Patch),
    /// Both cursors set to one value (the whole queue moved: cursors stay consistent).
    SetCursors(Value),
}

const MAX_OPS: usize = 48;

fuzz_target!(|input: Input| {
    thread_local! {
        static OBJ: Object = Object::new("chan");
    }
    OBJ.with(|obj| run(obj, &input));
});

fn run(obj: &Object, input: &Input) {
    let recipe = Recipe::new(input.flavor, input.shape, input.sent, input.taken);
    let snap = snapshot(recipe);
    let size = snap.len() as u64 + u64::from(input.slack % 4) * 1024;
    let mut bytes = snap.as_ref().clone();
    for p in &input.patches {
        apply(&mut bytes, p);
    }
    if input.fix_checksum {
        fix_checksum(&mut bytes);
    }
    let file = obj.fill(size, &bytes);
    let ops = &input.ops[..input.ops.len().min(MAX_OPS)];
    let mut w = World {
        name: obj.name(),
        opts: options(recipe.flavor, recipe.shape).creation(shmwire::CreationMode::Open),
        slot_size: slot_size(recipe.shape),
        file: &file,
        size,
    };
    match recipe.flavor {
        Flavor::Spsc => spsc_ops(&mut w, ops),
        Flavor::Mpmc => mpmc_ops(&mut w, ops),
        Flavor::Broadcast => broadcast_ops(&mut w, ops),
        Flavor::Blackboard if recipe.shape == 0 => blackboard_ops::<Small>(&mut w, ops),
        Flavor::Blackboard => blackboard_ops::<Large>(&mut w, ops),
    }
    obj.remove();
}

/// The object's offset a patch aims at; `word(off)` reads the u64 at `off` (for cursors and
/// the description's capacity).
fn place(at: &At, size: u64, word: &dyn Fn(u64) -> u64) -> u64 {
    let data_len = size.saturating_sub(DATA).max(1);
    match *at {
        At::Header(off) => u64::from(off) % PAYLOAD,
        At::HeaderField(i) => HEADER_FIELDS[usize::from(i) % HEADER_FIELDS.len()],
        At::Control(off) => PAYLOAD + u64::from(off) % PAYLOAD,
        At::ControlWord(i) => PAYLOAD + CONTROL_WORDS[usize::from(i) % CONTROL_WORDS.len()],
        At::Peer(i, start) => PAYLOAD + 256 + 16 * u64::from(i % 64) + 8 * u64::from(start),
        At::Cursor(consumer, k) => {
            let cursor = word(PAYLOAD + if consumer { 1408 } else { 1280 });
            let capacity = word(PAYLOAD + 16).max(1);
            let flavor = word(PAYLOAD + 8) as u32;
            let off = if flavor == 1 {
                // SPSC: the record at the cursor: seq, len, size, payload offset.
                (cursor % capacity) / 16 * 16 + 4 * u64::from(k % 5)
            } else {
                // Slot control of the cursor's position: state, len.
                (cursor % capacity).wrapping_mul(16) + 8 * u64::from(k % 2)
            };
            DATA + off % data_len
        }
        At::Data(off) => DATA + u64::from(off) % data_len,
    }
}

/// The bytes of `v`; `word(off)` reads the u64 at object offset `off`.
fn value(v: &Value, word: &dyn Fn(u64) -> u64) -> Vec<u8> {
    let cursor = |consumer: bool| word(PAYLOAD + if consumer { 1408 } else { 1280 });
    let delta = |d: i8| d as i64 as u64;
    match v {
        Value::Bytes(b) => b.iter().copied().take(256).collect(),
        Value::U32(x) => x.to_le_bytes().to_vec(),
        Value::U64(x) => x.to_le_bytes().to_vec(),
        Value::NearMax(n) => (u64::MAX - u64::from(*n)).to_le_bytes().to_vec(),
        Value::NearCursor(consumer, d) => cursor(*consumer)
            .wrapping_add(delta(*d))
            .to_le_bytes()
            .to_vec(),
        Value::SlotState(low, d) => {
            let n = word(PAYLOAD + 16).max(1);
            let lap = (cursor(true) / n).wrapping_add(delta(*d)) & ((1 << 48) - 1);
            (u64::from(*low) | lap << 16).to_le_bytes().to_vec()
        }
        Value::Seq(consumer, d) => cursor(*consumer)
            .wrapping_mul(2)
            .wrapping_add(delta(*d))
            .to_le_bytes()
            .to_vec(),
        Value::Record(len, size, gap) => {
            let mut r = cursor(true).wrapping_add(1).to_le_bytes().to_vec();
            r.extend_from_slice(&len.to_le_bytes());
            r.extend_from_slice(&size.to_le_bytes());
            r.extend_from_slice(&gap.to_le_bytes());
            r
        }
    }
}

fn apply(bytes: &mut [u8], p: &Patch) {
    let word = |off: u64| {
        let off = off as usize;
        bytes
            .get(off..off + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()))
    };
    let at = place(&p.at, bytes.len() as u64, &word) as usize;
    let v = value(&p.value, &word);
    let n = v.len().min(bytes.len().saturating_sub(at));
    bytes[at..at + n].copy_from_slice(&v[..n]);
    if bytes.get(INIT_STATE..INIT_STATE + 4) == Some(&[0; 4]) {
        bytes[INIT_STATE..INIT_STATE + 4].copy_from_slice(&INIT_READY.to_le_bytes());
    }
}

struct World<'a> {
    name: &'a str,
    opts: ChannelOptions,
    /// Slot channels: the message size the snapshot was made with.
    slot_size: usize,
    file: &'a std::fs::File,
    size: u64,
}

impl World<'_> {
    /// The u64 at object offset `off` (0 past the end).
    fn word(&self, off: u64) -> u64 {
        let mut b = [0u8; 8];
        self.file
            .read_exact_at(&mut b, off)
            .map_or(0, |()| u64::from_le_bytes(b))
    }

    /// A hostile write while endpoints have the channel mapped. Header patches get a fresh
    /// checksum, so that later opens read the patched fields.
    fn patch(&self, p: &Patch) {
        let word = |off| self.word(off);
        let at = place(&p.at, self.size, &word);
        patch(self.file, self.size, at, &value(&p.value, &word));
        if word(INIT_STATE as u64) as u32 == 0 {
            let _ = self
                .file
                .write_all_at(&INIT_READY.to_le_bytes(), INIT_STATE as u64);
        }
        if matches!(p.at, At::Header(_) | At::HeaderField(_)) {
            let mut page = vec![0u8; HEADER];
            if self.file.read_exact_at(&mut page, 0).is_ok() {
                fix_checksum(&mut page);
                let _ = self.file.write_all_at(&page[336..344], 336);
            }
        }
    }

    /// Writes `v` over both cursors.
    fn set_cursors(&self, v: &Value) {
        let word = |off| self.word(off);
        let mut bytes = value(v, &word);
        bytes.resize(8, 0);
        for off in [1280, 1408] {
            patch(self.file, self.size, PAYLOAD + off, &bytes);
        }
    }
}

/// A received message's length is within the channel's limit, whatever the channel holds.
fn fits<E>(got: Result<usize, E>, max: usize) {
    if let Ok(len) = got {
        assert!(
            len <= max,
            "a message of {len} bytes from a channel of at most {max}"
        );
    }
}

/// Up to three endpoints of one side.
fn keep<T>(v: &mut Vec<T>, t: T) {
    if v.len() < 3 {
        v.push(t);
    }
}

fn msg(len: u16) -> Vec<u8> {
    vec![0xA5; usize::from(len) % 6000]
}

fn spsc_ops(w: &mut World<'_>, ops: &[Op]) {
    let mut rx: Vec<spsc::Receiver> = Vec::new();
    let mut tx: Vec<spsc::Sender> = Vec::new();
    for op in ops {
        match op {
            Op::OpenRecv => {
                if let Ok(r) = spsc::Receiver::open(w.name, &w.opts) {
                    keep(&mut rx, r);
                }
            }
            Op::OpenSend => {
                if let Ok(s) = spsc::Sender::open(w.name, &w.opts) {
                    keep(&mut tx, s);
                }
            }
            Op::DropRecv => drop(rx.pop()),
            Op::DropSend => drop(tx.pop()),
            Op::Recv => {
                if let Some(r) = rx.last_mut() {
                    let max = (r.capacity() / 2) as usize;
                    fits(r.try_recv().map(|m| m.len()), max);
                    let mut buf = Vec::new();
                    fits(r.try_recv_into(&mut buf), max);
                }
            }
            Op::RecvRef(at) => {
                if let Some(r) = rx.last_mut() {
                    let max = (r.capacity() / 2) as usize;
                    if let Ok(g) = r.try_recv_ref() {
                        fits(Ok::<_, ()>(g.len()), max);
                        let mut b = [0u8; 8];
                        g.read_at(usize::from(*at), &mut b);
                        let _ = g.to_vec();
                    }
                }
            }
            Op::RecvTimeout => {
                if let Some(r) = rx.last_mut() {
                    let max = (r.capacity() / 2) as usize;
                    fits(r.recv_timeout(Duration::ZERO).map(|m| m.len()), max);
                    let _ = r.has_sender();
                }
            }
            Op::Send(len) => {
                if let Some(s) = tx.last_mut() {
                    let _ = s.try_send(&msg(*len));
                    let _ = s.send_timeout(&msg(len / 3), Duration::ZERO);
                }
            }
            Op::Loan(len, how) => {
                if let Some(s) = tx.last_mut() {
                    if let Ok(mut loan) = s.try_loan(usize::from(*len) % 6000) {
                        let n = loan.len();
                        loan.write_at(0, &vec![7; n.min(64)]);
                        match how % 3 {
                            0 => loan.send(),
                            1 => loan.send_len(n / 2),
                            _ => drop(loan),
                        }
                    }
                }
            }
            Op::WaitReceived => {
                if let Some(s) = tx.last_mut() {
                    let _ = s.try_wait_received();
                    let _ = s.has_receiver();
                }
            }
            Op::Patch(p) => w.patch(p),
            Op::SetCursors(v) => w.set_cursors(v),
        }
    }
}

fn mpmc_ops(w: &mut World<'_>, ops: &[Op]) {
    let mut rx: Vec<mpmc::Receiver> = Vec::new();
    let mut tx: Vec<mpmc::Sender> = Vec::new();
    for op in ops {
        match op {
            Op::OpenRecv => {
                if let Ok(r) = mpmc::Receiver::open(w.name, &w.opts) {
                    keep(&mut rx, r);
                }
            }
            Op::OpenSend => {
                if let Ok(s) = mpmc::Sender::open(w.name, &w.opts) {
                    keep(&mut tx, s);
                }
            }
            Op::DropRecv => drop(rx.pop()),
            Op::DropSend => drop(tx.pop()),
            Op::Recv => {
                if let Some(r) = rx.last_mut() {
                    let max = r.message_size() as usize;
                    fits(r.try_recv().map(|m| m.len()), max);
                }
            }
            Op::RecvRef(at) => {
                if let Some(r) = rx.last_mut() {
                    let max = r.message_size() as usize;
                    if let Ok(g) = r.try_recv_ref() {
                        fits(Ok::<_, ()>(g.len()), max);
                        let mut b = [0u8; 8];
                        g.read_at(usize::from(*at), &mut b);
                        let _ = g.to_vec();
                    }
                }
            }
            Op::RecvTimeout => {
                if let Some(r) = rx.last_mut() {
                    let max = r.message_size() as usize;
                    fits(r.recv_timeout(Duration::ZERO).map(|m| m.len()), max);
                }
            }
            Op::Send(len) => {
                if let Some(s) = tx.last_mut() {
                    let _ = s.try_send(&msg(*len));
                    let _ = s.send_timeout(&msg(len / 3), Duration::ZERO);
                }
            }
            Op::Loan(len, how) => {
                if let Some(s) = tx.last_mut() {
                    if let Ok(mut loan) = s.try_loan(usize::from(*len) % 2000) {
                        let n = loan.len();
                        loan.write_at(0, &vec![7; n]);
                        if how % 2 == 0 {
                            loan.send_len(n / 2);
                        }
                    }
                }
            }
            Op::WaitReceived => {}
            Op::Patch(p) => w.patch(p),
            Op::SetCursors(v) => w.set_cursors(v),
        }
    }
}

fn broadcast_ops(w: &mut World<'_>, ops: &[Op]) {
    let mut rx: Vec<broadcast::Subscriber> = Vec::new();
    let mut tx: Vec<broadcast::Publisher> = Vec::new();
    for op in ops {
        match op {
            Op::OpenRecv => {
                let r = if rx.len().is_multiple_of(2) {
                    broadcast::Subscriber::open(w.name, &w.opts)
                } else {
                    broadcast::Subscriber::open_from_next(w.name, &w.opts)
                };
                if let Ok(r) = r {
                    keep(&mut rx, r);
                }
            }
            Op::OpenSend => {
                if let Ok(s) = broadcast::Publisher::open(w.name, &w.opts) {
                    keep(&mut tx, s);
                }
            }
            Op::DropRecv => drop(rx.pop()),
            Op::DropSend => drop(tx.pop()),
            Op::Recv | Op::RecvRef(_) => {
                if let Some(r) = rx.last_mut() {
                    fits(r.try_recv().map(|m| m.len()), w.slot_size);
                }
            }
            Op::RecvTimeout => {
                if let Some(r) = rx.last_mut() {
                    fits(r.recv_timeout(Duration::ZERO).map(|m| m.len()), w.slot_size);
                }
            }
            Op::Send(len) | Op::Loan(len, _) => {
                if let Some(s) = tx.last_mut() {
                    let _ = s.send(&msg(*len % 400));
                }
            }
            Op::WaitReceived => {
                if let Some(s) = tx.last_mut() {
                    let _ = s.subscribers();
                }
            }
            Op::Patch(p) => w.patch(p),
            Op::SetCursors(v) => w.set_cursors(v),
        }
    }
}

fn blackboard_ops<T: FromU16>(w: &mut World<'_>, ops: &[Op]) {
    let mut rx: Vec<blackboard::Reader<T>> = Vec::new();
    let mut tx: Vec<blackboard::Writer<T>> = Vec::new();
    for op in ops {
        match op {
            Op::OpenRecv => {
                if let Ok(r) = blackboard::Reader::<T>::open(w.name, &w.opts) {
                    keep(&mut rx, r);
                }
            }
            Op::OpenSend => {
                if let Ok(s) = blackboard::Writer::<T>::open(w.name, &w.opts) {
                    keep(&mut tx, s);
                }
            }
            Op::DropRecv => drop(rx.pop()),
            Op::DropSend => drop(tx.pop()),
            Op::Recv | Op::RecvRef(_) => {
                if let Some(r) = rx.last() {
                    let _ = r.read();
                    let _ = r.read_versioned();
                }
            }
            Op::RecvTimeout => {
                if let Some(r) = rx.last() {
                    let _ = r.wait_newer_timeout(0, Duration::ZERO);
                }
            }
            Op::Send(x) | Op::Loan(x, _) => {
                if let Some(s) = tx.last_mut() {
                    s.write(&T::from_u16(*x));
                    let _ = s.version();
                }
            }
            Op::WaitReceived => {}
            Op::Patch(p) => w.patch(p),
            Op::SetCursors(v) => w.set_cursors(v),
        }
    }
}

/// Blackboard values made from a fuzzed number.
trait FromU16: bytemuck::Pod {
    fn from_u16(x: u16) -> Self;
}

impl FromU16 for Small {
    fn from_u16(x: u16) -> Self {
        [x as u8; 8]
    }
}

impl FromU16 for Large {
    fn from_u16(x: u16) -> Self {
        [u64::from(x); 40]
    }
}
