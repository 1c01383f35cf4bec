//! The SPSC ring protocol, over any memory that implements [`Mem`] (the channel's data area,
//! or loom-checked cells in the models).
//!
//! Two monotonic byte cursors: `tail` (producer line; written only by the sender) and `head`
//! (consumer line; written only by the receiver); `tail - head` bytes are in use, at ring
//! positions `cursor mod capacity`. Each side keeps its own cursor privately and never reads
//! it back from shared memory; the sender loads `head` (Acquire) only when its cached copy
//! says the ring is full, and checks `head <= tail <= head + capacity`.
//!
//! A record is a 16-byte header and a payload, 16-aligned, never wrapping around the end:
//!
//! | header field | meaning |
//! |---|---|
//! | `seq` (u64, atomic) | the record's cursor position + 1 once published (any other value: not published) |
//! | `len` (u32)  | payload bytes |
//! | `size` (u32) | record bytes (the cursor moves by this much); bit 31 marks a filler up to the end of the ring, bit 30 a recorded payload offset |
//! | (u32 at 16) | with bit 30 only: the payload's offset from the record start (32 or more, a multiple of 16) |
//!
//! Payloads placed for 4 KiB of more (see below) record their offset; others start right
//! after the header. The sender decides by the reserved length, so a loan sent shorter than
//! it was taken still says where its payload is.
//!
//! * **send**: if the record does not fit before the end, a filler takes the rest and the
//!   message goes at position 0. Write payload, `len` and `size`, then store `seq` with
//!   Release (pairs with the receiver's Acquire load of `seq`), filler first; then `tail`
//!   (for a later sender to continue from) and ring the data bell.
//! * **receive**: load the `seq` at `head` (Acquire): equal to `head + 1` means a record is
//!   there (the receiver polls one cache line, the one the message is in: no separate cursor
//!   line crosses between the cores on the fast path). Check `size` (a multiple of 16, at
//!   least 16, before the ring's end) and `len` (fits the record), skip fillers, copy (or
//!   lend) the payload, then `head += size` with Release (pairs with the sender's Acquire load
//!   of `head`, so the sender reuses the bytes only after they were read), and ring the
//!   space bell. A sender killed while writing leaves a record whose `seq` is stale; the next
//!   sender overwrites it. Positions never repeat (64-bit), so a stale `seq` never matches.
//!   One killed after publishing but before storing `tail` leaves complete records (a filler
//!   and a message at most) at `tail` and after: the next sender continues after them.
//!   Cursors come from shared memory, so position arithmetic wraps: a cursor a hostile peer
//!   set near `u64::MAX` gives wrong data or `Corrupt`, never an overflow panic.
//!
//! **4 KiB aliasing.** Copying between addresses whose distance modulo 4096 is small runs at
//! a fraction of the usual speed on x86 (loads falsely depend on earlier stores). Large
//! receive buffers usually start 16 bytes into a page (glibc's `mmap`ed chunks), so a
//! copying send places a large payload at least 1 KiB (mod 4096) away from both its source
//! buffer and that receiver alignment; payloads written in place (loans) go 2048 bytes into
//! a page. A receiver copying out into a buffer of another alignment may still hit the slow
//! case.

use crate::primitive::{AtomicU64, Ordering};

use super::{round_up, Line};

/// Bit of `size` marking a filler.
const PAD: u32 = 1 << 31;
/// Bit of `size` saying that the payload offset is recorded at record offset 16.
const GAP: u32 = 1 << 30;
/// Record header bytes.
pub(crate) const HEADER: u64 = 16;
/// Payloads at least this long are placed 2048 bytes into a page.
const ALIGNED_FROM: u64 = 4096;
/// Slack a message needs besides its payload, in the worst case.
pub(crate) const SLACK: u64 = 4096 + 64;

/// Memory a ring lives in: bounds-checked copies, and the atomic word at a record's start.
pub(crate) trait Mem {
    /// Copies `src` to `off`; `None` if out of bounds.
    fn put(&self, off: u64, src: &[u8]) -> Option<()>;
    /// Copies out of `off`; `None` if out of bounds.
    fn get(&self, off: u64, dst: &mut [u8]) -> Option<()>;
    /// The 64-bit atomic at `off` (a multiple of 16); `None` if out of bounds.
    fn word(&self, off: u64) -> Option<&AtomicU64>;
}

impl<T: Mem> Mem for &T {
    fn put(&self, off: u64, src: &[u8]) -> Option<()> {
        (**self).put(off, src)
    }
    fn get(&self, off: u64, dst: &mut [u8]) -> Option<()> {
        (**self).get(off, dst)
    }
    fn word(&self, off: u64) -> Option<&AtomicU64> {
        (**self).word(off)
    }
}

impl Mem for crate::view::Region<'_> {
    fn put(&self, off: u64, src: &[u8]) -> Option<()> {
        self.write(off, src)
    }
    fn get(&self, off: u64, dst: &mut [u8]) -> Option<()> {
        self.read(off, dst)
    }
    fn word(&self, off: u64) -> Option<&AtomicU64> {
        self.at::<AtomicU64>(off)
    }
}

/// Payload offset from the record start for a payload of `len` bytes at position `pos`:
/// 16 for small payloads; for large ones at least 32 (the word at offset 16 records it) and
/// chosen so that the payload's position is `want` modulo 4096 (a multiple of 16).
fn gap(pos: u64, len: u64, want: u64) -> u64 {
    if len < ALIGNED_FROM {
        HEADER
    } else {
        let p = (pos + 2 * HEADER) % 4096;
        2 * HEADER + (want % 4096 / 16 * 16 + 4096 - p) % 4096
    }
}

/// Record bytes for a payload of `len` at `pos` (see [`gap`]).
fn need(pos: u64, len: u64, want: u64) -> u64 {
    round_up(gap(pos, len, want) + len, 16)
}

/// Where a receiver's buffer probably starts modulo 4096: large heap buffers are `mmap`ed
/// chunks whose data starts 16 bytes into a page (glibc).
const RECEIVER: u64 = 16;

/// Where a payload copied from `src` should start modulo 4096: as far as possible from both
/// `src` and a typical receiver buffer ([`RECEIVER`]), at least 1 KiB from each (the middle
/// of the larger arc between them on the 4096 circle).
pub(crate) fn placement(src: *const u8) -> u64 {
    let x = src as u64 % 4096;
    let d = (x + 4096 - RECEIVER) % 4096;
    let p = if d >= 2048 {
        RECEIVER + d / 2
    } else {
        x + (4096 - d) / 2
    };
    p % 4096
}

/// Placement of payloads written in place (loans): 2048 bytes into a page, 2 KiB away from
/// the usual start of large heap buffers (16 bytes into a page).
pub(crate) const IN_PLACE: u64 = 2048;

/// The largest message a ring of `capacity` bytes takes.
pub(crate) fn max_message(capacity: u64) -> u64 {
    (capacity / 2).saturating_sub(SLACK)
}

/// The `len` and `size` fields of a header (bytes 8..16).
fn fields(len: u32, size: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[..4].copy_from_slice(&len.to_le_bytes());
    h[4..].copy_from_slice(&size.to_le_bytes());
    h
}

/// Where a message goes, once there is room.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reserved {
    /// Filler bytes before the record (at the old position), 0 if none.
    pad: u64,
    /// Ring position of the record.
    pub(crate) at: u64,
    /// Payload offset from `at`.
    pub(crate) gap: u64,
    /// Record bytes.
    size: u64,
}

impl Reserved {
    /// Ring position of the payload.
    pub(crate) fn payload(&self) -> u64 {
        self.at + self.gap
    }
}

/// The sender's private state.
#[derive(Debug, Default)]
pub(crate) struct Producer {
    tail: u64,
    head_cache: u64,
}

/// A message found by the receiver.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Found {
    /// Ring position of the payload.
    pub(crate) payload: u64,
    pub(crate) len: u64,
    /// `head` after this message.
    next: u64,
}

/// The receiver's private state.
#[derive(Debug, Default)]
pub(crate) struct Consumer {
    head: u64,
}

/// One ring: the two cursor lines and the capacity (a power of two).
pub(crate) struct Ring<'a, M: Mem> {
    pub(crate) producer: &'a Line,
    pub(crate) consumer: &'a Line,
    pub(crate) mem: M,
    pub(crate) capacity: u64,
}

impl<M: Mem> Ring<'_, M> {
    /// Takes over the cursors as they are (a new sender continues where the last stopped).
    pub(crate) fn producer(&self) -> Producer {
        // ORDERING: Acquire — pairs with the Release stores of `tail` by a previous sender
        // and of `head` by the receiver.
        let mut tail = self.producer.cursor.load(Ordering::Acquire);
        // A sender killed between publishing a commit (a filler, a record) and storing
        // `tail` left `tail` before records the receiver may have taken or be reading:
        // continue after them. A `seq` equal to position + 1 at `tail` can only have been
        // published there in this lap, by that sender (positions never repeat).
        for _ in 0..2 {
            let pos = tail & (self.capacity - 1);
            let Some(seq) = self.mem.word(pos) else { break };
            // ORDERING: Acquire — pairs with the Release store of `seq` in `commit`: the
            // header read next is the one published with it.
            if seq.load(Ordering::Acquire) != tail.wrapping_add(1) {
                break;
            }
            let Some(h) = self.header(pos) else { break };
            let size = u64::from(u32::from_le_bytes(h[4..].try_into().unwrap()) & !(PAD | GAP));
            if size < HEADER || size % 16 != 0 || size > self.capacity - pos {
                break;
            }
            tail = tail.wrapping_add(size);
        }
        // As if the ring were full: the first reserve loads and checks `head`.
        Producer {
            tail,
            head_cache: tail.saturating_sub(self.capacity),
        }
    }

    /// The `len` and `size` fields of the record header at `pos`.
    fn header(&self, pos: u64) -> Option<[u8; 8]> {
        let mut h = [0u8; 8];
        self.mem.get(pos + 8, &mut h)?;
        Some(h)
    }

    pub(crate) fn consumer(&self) -> Consumer {
        // ORDERING: Acquire — as in `producer`.
        Consumer {
            head: self.consumer.cursor.load(Ordering::Acquire),
        }
    }

    /// Room for a payload of `len` bytes to start at `want` modulo 4096 (see [`placement`]),
    /// or `Ok(None)` if the ring is too full now.
    pub(crate) fn reserve(
        &self,
        p: &mut Producer,
        len: u64,
        want: u64,
    ) -> Result<Option<Reserved>, String> {
        let cap = self.capacity;
        // The first `tail` was read from shared memory; records start on 16 bytes.
        if p.tail % 16 != 0 {
            return Err(format!(
                "its write cursor {} is not a multiple of 16",
                p.tail
            ));
        }
        let pos = p.tail & (cap - 1);
        let to_end = cap - pos;
        let here = need(pos, len, want);
        let r = if here <= to_end {
            Reserved {
                pad: 0,
                at: pos,
                gap: gap(pos, len, want),
                size: here,
            }
        } else {
            Reserved {
                pad: to_end,
                at: 0,
                gap: gap(0, len, want),
                size: need(0, len, want),
            }
        };
        let total = r.pad + r.size;
        if p.tail.wrapping_sub(p.head_cache) + total > cap {
            // ORDERING: Acquire — pairs with the Release store of `head` in `release`: the
            // receiver is done with the bytes before we overwrite them.
            let head = self.consumer.cursor.load(Ordering::Acquire);
            // Modulo 2^64: `head` is at most `cap` bytes behind `tail`.
            if p.tail.wrapping_sub(head) > cap {
                return Err(format!(
                    "its read cursor {head} is not within {cap} bytes before the write cursor {}",
                    p.tail
                ));
            }
            p.head_cache = head;
            if p.tail.wrapping_sub(head) + total > cap {
                return Ok(None);
            }
        }
        Ok(Some(r))
    }

    /// Writes the headers of `r` (a payload of `len` bytes, already written) and publishes
    /// it. The caller rings the data bell.
    pub(crate) fn commit(&self, p: &mut Producer, r: Reserved, len: u64) {
        let cap = self.capacity;
        let publish = |at: u64, position: u64, len: u32, size: u32| {
            self.mem
                .put(at + 8, &fields(len, size))
                .expect("a reserved record is inside the ring");
            // ORDERING: Release — publishes the record (fields and payload); pairs with the
            // Acquire load of `seq` in `peek`.
            self.mem
                .word(at)
                .expect("a reserved record is inside the ring")
                .store(position.wrapping_add(1), Ordering::Release);
        };
        if r.pad > 0 {
            publish(p.tail & (cap - 1), p.tail, 0, r.pad as u32 | PAD);
        }
        if r.gap > HEADER {
            self.mem
                .put(r.at + HEADER, &(r.gap as u32).to_le_bytes())
                .expect("a reserved record is inside the ring");
        }
        let flag = if r.gap > HEADER { GAP } else { 0 };
        publish(
            r.at,
            p.tail.wrapping_add(r.pad),
            len as u32,
            r.size as u32 | flag,
        );
        p.tail = p.tail.wrapping_add(r.pad + r.size);
        // ORDERING: Release — for a later sender, which continues from here (Acquire load
        // in `producer`).
        self.producer.cursor.store(p.tail, Ordering::Release);
    }

    /// Copying send: reserve, copy, commit. `Ok(false)`: no room now.
    #[cfg(test)]
    pub(crate) fn try_push(&self, p: &mut Producer, msg: &[u8]) -> Result<bool, String> {
        let Some(r) = self.reserve(p, msg.len() as u64, placement(msg.as_ptr()))? else {
            return Ok(false);
        };
        self.mem
            .put(r.payload(), msg)
            .expect("a reserved payload is inside the ring");
        self.commit(p, r, msg.len() as u64);
        Ok(true)
    }

    /// The next message, if any (fillers are skipped).
    pub(crate) fn peek(&self, c: &mut Consumer) -> Result<Option<Found>, String> {
        let cap = self.capacity;
        // A filler runs to the ring's end and a record always fits at position 0, so a
        // sender never writes two fillers in a row. The bound keeps a peer that keeps
        // writing fillers ahead of us from holding us here.
        for _ in 0..2 {
            let pos = c.head & (cap - 1);
            let seq = self
                .mem
                .word(pos)
                .ok_or_else(|| format!("position {pos} is outside the ring"))?;
            // ORDERING: Acquire — pairs with the Release store of `seq` in `commit`.
            if seq.load(Ordering::Acquire) != c.head.wrapping_add(1) {
                return Ok(None);
            }
            let mut h = [0u8; 8];
            self.mem
                .get(pos + 8, &mut h)
                .ok_or_else(|| format!("position {pos} is outside the ring"))?;
            let len = u64::from(u32::from_le_bytes(h[..4].try_into().unwrap()));
            let size_word = u32::from_le_bytes(h[4..].try_into().unwrap());
            let size = u64::from(size_word & !(PAD | GAP));
            let to_end = cap - pos;
            if size < HEADER || size % 16 != 0 || size > to_end {
                return Err(format!(
                    "a record at position {pos} claims {size} bytes ({to_end} before the end)"
                ));
            }
            if size_word & PAD != 0 {
                c.head = c.head.wrapping_add(size);
                continue;
            }
            let gap = if size_word & GAP == 0 {
                HEADER
            } else {
                let mut g = [0u8; 4];
                if size < 2 * HEADER + 4 || self.mem.get(pos + HEADER, &mut g).is_none() {
                    return Err(format!("a record at position {pos} has no payload offset"));
                }
                let g = u64::from(u32::from_le_bytes(g));
                if g < 2 * HEADER || g % 16 != 0 {
                    return Err(format!("a record at position {pos} has payload offset {g}"));
                }
                g
            };
            if gap + len > size {
                return Err(format!(
                    "a record at position {pos} of {size} bytes claims a payload of {len}"
                ));
            }
            return Ok(Some(Found {
                payload: pos + gap,
                len,
                next: c.head.wrapping_add(size),
            }));
        }
        Err(format!(
            "a filler follows a filler at position {}",
            c.head & (cap - 1)
        ))
    }

    /// Frees `f` (and any filler before it) for the sender. The caller rings the space bell.
    pub(crate) fn release(&self, c: &mut Consumer, f: Found) {
        c.head = f.next;
        // ORDERING: Release — our reads of the record happen before the sender may reuse
        // its bytes; pairs with the Acquire load of `head` in `reserve`.
        self.consumer.cursor.store(c.head, Ordering::Release);
    }

    /// Whether everything sent has been received (for a sender: checks the receiver's
    /// cursor).
    pub(crate) fn drained(&self, p: &Producer) -> bool {
        // ORDERING: Acquire — pairs with the Release store in `release`.
        self.consumer.cursor.load(Ordering::Acquire) == p.tail
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::VecDeque;

    /// Plain memory for single-threaded tests: bytes, and the record words apart (in a
    /// mapping they overlap the first 8 bytes of each 16; the ring never copies those).
    struct Vec8(RefCell<Vec<u8>>, Vec<AtomicU64>);

    impl Vec8 {
        fn new(bytes: Vec<u8>) -> Vec8 {
            let words = bytes
                .chunks(16)
                .map(|c| AtomicU64::new(u64::from_le_bytes(c[..8].try_into().unwrap())))
                .collect();
            Vec8(RefCell::new(bytes), words)
        }
    }

    impl Mem for Vec8 {
        fn word(&self, off: u64) -> Option<&AtomicU64> {
            (off % 16 == 0)
                .then(|| self.1.get(off as usize / 16))
                .flatten()
        }
        fn put(&self, off: u64, src: &[u8]) -> Option<()> {
            let mut v = self.0.borrow_mut();
            let o = off as usize;
            v.get_mut(o..o + src.len())?.copy_from_slice(src);
            Some(())
        }
        fn get(&self, off: u64, dst: &mut [u8]) -> Option<()> {
            let v = self.0.borrow();
            let o = off as usize;
            dst.copy_from_slice(v.get(o..o + dst.len())?);
            Some(())
        }
    }

    fn pop<M: Mem>(ring: &Ring<'_, M>, c: &mut Consumer) -> Option<Vec<u8>> {
        let f = ring.peek(c).unwrap()?;
        let mut out = vec![0; f.len as usize];
        ring.mem.get(f.payload, &mut out).unwrap();
        ring.release(c, f);
        Some(out)
    }

    #[test]
    fn large_payloads_are_placed_2048_bytes_from_their_source() {
        for pos in (0..8192).step_by(16) {
            for want in [0, 16, 2048, 4080, 4095] {
                let g = gap(pos, 5000, want);
                assert_eq!((pos + g) % 4096, want / 16 * 16);
                assert!((32..32 + 4096).contains(&g) && g % 16 == 0);
            }
        }
        assert_eq!(gap(32, 100, 0), 16);
        let circ = |a: u64, b: u64| ((a + 4096 - b) % 4096).min((b + 4096 - a) % 4096);
        for x in (0..4096u64).step_by(16) {
            let p = placement(std::ptr::without_provenance(4096 * 7 + x as usize));
            assert!(
                circ(p, x) >= 1024 && circ(p, RECEIVER) >= 1024,
                "x {x} p {p}"
            );
        }
    }

    /// A sender killed after publishing a record (here a filler and a message after it) but
    /// before moving the shared `tail`: the next sender continues after that record, whether
    /// the receiver took it already or not. (Regression, found while writing the crash
    /// chaos test: the next sender started at the stale `tail`, and either failed with
    /// `Corrupt` for good, the receiver being ahead of it, or wrote over a published record
    /// the receiver might be reading.)
    #[test]
    fn a_sender_killed_between_publishing_and_moving_tail_is_continued_after() {
        for taken in [false, true] {
            let cap = 1024;
            let mem = Vec8::new(vec![0; cap]);
            let (pl, cl) = (Line::new(), Line::new());
            let ring = Ring {
                producer: &pl,
                consumer: &cl,
                mem: &mem,
                capacity: cap as u64,
            };
            let (mut p, mut c) = (ring.producer(), ring.consumer());
            assert!(ring.try_push(&mut p, b"a").unwrap());
            assert!(ring.try_push(&mut p, &[6; 600]).unwrap());
            assert_eq!(pop(&ring, &mut c).unwrap(), b"a");
            assert_eq!(pop(&ring, &mut c).unwrap(), [6; 600]);
            // Does not fit before the end: a filler, then the message at 0; then "killed".
            let stale = pl.cursor.load(Ordering::Relaxed);
            assert!(ring.try_push(&mut p, &[7; 500]).unwrap());
            pl.cursor.store(stale, Ordering::Relaxed);
            if taken {
                assert_eq!(pop(&ring, &mut c).unwrap(), [7; 500]);
            }
            let mut next = ring.producer();
            assert!(ring.try_push(&mut next, b"b").unwrap(), "taken: {taken}");
            if !taken {
                assert_eq!(pop(&ring, &mut c).unwrap(), [7; 500]);
            }
            assert_eq!(pop(&ring, &mut c).unwrap(), b"b", "taken: {taken}");
            assert_eq!(pop(&ring, &mut c), None);
        }
    }

    #[test]
    fn a_write_cursor_off_the_record_grid_is_an_error_not_a_panic() {
        let mem = Vec8::new(vec![0; 1024]);
        let (pl, cl) = (Line::new(), Line::new());
        for bad in [1, 8, 12345, u64::MAX] {
            pl.cursor.store(bad, Ordering::Relaxed);
            cl.cursor.store(bad, Ordering::Relaxed);
            let ring = Ring {
                producer: &pl,
                consumer: &cl,
                mem: &mem,
                capacity: 1024,
            };
            let mut p = ring.producer();
            assert!(ring.try_push(&mut p, b"x").is_err(), "write cursor {bad}");
            // Zeroed memory holds no message, whatever the cursor.
            let mut c = ring.consumer();
            assert!(
                !matches!(ring.peek(&mut c), Ok(Some(_))),
                "read cursor {bad}"
            );
        }
    }

    /// Two fillers in a row (a sender never writes them: a record always fits at position
    /// 0) are corrupt, so that a peer racing ahead with fillers cannot keep `peek` looping.
    #[test]
    fn a_filler_after_a_filler_is_corrupt() {
        let cap = 1024u64;
        let mut bytes = vec![0u8; cap as usize];
        let mut put = |at: usize, seq: u64, size: u32| {
            bytes[at..at + 8].copy_from_slice(&seq.to_le_bytes());
            bytes[at + 12..at + 16].copy_from_slice(&(size | PAD).to_le_bytes());
        };
        // At head 512: a filler to the end, then at 0 (head 1024) a filler of the whole ring.
        put(512, 513, 512);
        put(0, 1025, cap as u32);
        let mem = Vec8::new(bytes);
        let (pl, cl) = (Line::new(), Line::new());
        cl.cursor.store(512, Ordering::Relaxed);
        let ring = Ring {
            producer: &pl,
            consumer: &cl,
            mem: &mem,
            capacity: cap,
        };
        let mut c = ring.consumer();
        let e = ring.peek(&mut c).unwrap_err();
        assert!(e.contains("filler follows a filler"), "{e}");
    }

    proptest::proptest! {
        /// Any sequence of sends and receives matches a VecDeque model: same messages, same
        /// order, "full" only when the model's bytes would not fit.
        #[test]
        fn matches_a_vecdeque(ops in proptest::collection::vec((proptest::bool::ANY, 0usize..9000), 1..300)) {
            let cap = 32 * 1024;
            let mem = Vec8::new(vec![0; cap]);
            let (pl, cl) = (Line::new(), Line::new());
            let ring = Ring { producer: &pl, consumer: &cl, mem: &mem, capacity: cap as u64 };
            let (mut p, mut c) = (ring.producer(), ring.consumer());
            let mut model = VecDeque::new();
            let mut n = 0u32;
            for (send, len) in ops {
                if send {
                    let len = len.min(max_message(cap as u64) as usize);
                    n += 1;
                    let msg: Vec<u8> = (0..len).map(|i| (i as u32 ^ n) as u8).collect();
                    if ring.try_push(&mut p, &msg).unwrap() {
                        model.push_back(msg);
                    } else {
                        // Full is only allowed when the ring really holds a lot.
                        proptest::prop_assert!(!model.is_empty());
                    }
                } else {
                    proptest::prop_assert_eq!(pop(&ring, &mut c), model.pop_front());
                }
            }
            while let Some(m) = model.pop_front() {
                proptest::prop_assert_eq!(pop(&ring, &mut c), Some(m));
            }
            proptest::prop_assert_eq!(pop(&ring, &mut c), None);
        }

        /// Cursors a hostile peer set anywhere near the end of `u64`: messages still go
        /// through (positions wrap), never an overflow panic.
        #[test]
        fn cursors_near_u64_max_wrap_around(start in 0u64..64, lens in proptest::collection::vec(0usize..300, 1..80)) {
            let cap = 1024;
            let mem = Vec8::new(vec![0; cap]);
            let (pl, cl) = (Line::new(), Line::new());
            let cursor = u64::MAX - 16 * start - 15;
            pl.cursor.store(cursor, Ordering::Relaxed);
            cl.cursor.store(cursor, Ordering::Relaxed);
            let ring = Ring { producer: &pl, consumer: &cl, mem: &mem, capacity: cap as u64 };
            let (mut p, mut c) = (ring.producer(), ring.consumer());
            for (i, len) in lens.into_iter().enumerate() {
                let msg: Vec<u8> = (0..len).map(|j| (i + j) as u8).collect();
                proptest::prop_assert!(ring.try_push(&mut p, &msg).unwrap());
                proptest::prop_assert_eq!(pop(&ring, &mut c), Some(msg));
            }
        }

        /// Whatever bytes a hostile peer leaves in the ring and cursors, the receiver returns
        /// messages or an error, never panics or reads outside the ring.
        #[test]
        fn garbage_is_an_error_not_a_crash(bytes in proptest::collection::vec(proptest::num::u8::ANY, 1024), head in 0u64..4096) {
            let cap = 1024;
            let mem = Vec8::new(bytes);
            let (pl, cl) = (Line::new(), Line::new());
            cl.cursor.store(head, Ordering::Relaxed);
            let ring = Ring { producer: &pl, consumer: &cl, mem: &mem, capacity: cap };
            let mut c = ring.consumer();
            for _ in 0..100 {
                match ring.peek(&mut c) {
                    Ok(Some(f)) => {
                        let mut out = vec![0; f.len as usize];
                        proptest::prop_assert!(ring.mem.get(f.payload, &mut out).is_some());
                        ring.release(&mut c, f);
                    }
                    Ok(None) | Err(_) => break,
                }
            }
        }
    }
}
