//! The latency floor: a message copied into shared memory and announced by one word, with
//! nothing of any library on top. Busy-polled, it is a cache-line ping-pong (messages up to
//! 56 bytes travel in the announcing word's own cache line); blocking, it is a raw futex
//! ping-pong (the platform's word wait, woken on every message).

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use shmwire::{Segment, SegmentOptions};
use shmwire_platform::{Os, WordWait};

use super::io_err;
use crate::transport::{tag_of, Class, Endpoint, Mode, Payload, Setup, Transport};

/// Bytes of a message that travel in the announcing line.
const INLINE: usize = 56;
/// The driver → echo line and the echo → driver line (128 bytes apart: no false sharing).
const LINE_A: u64 = 0;
const LINE_B: u64 = 128;
/// Larger messages go to a slot per direction, after the lines.
const SLOTS: u64 = 4096;

/// See the module docs.
#[derive(Debug)]
pub struct Floor;

impl Transport for Floor {
    fn id(&self) -> &'static str {
        "floor"
    }
    fn label(&self) -> &'static str {
        "floor: raw shared memory"
    }
    fn class(&self) -> Class {
        Class::Floor
    }
    fn modes(&self) -> &'static [Mode] {
        &[Mode::Spin, Mode::Block]
    }
    fn streams(&self) -> bool {
        false // one slot per direction; the throughput floor is memcpy
    }
    fn driver(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let slot = slot_len(setup.max);
        let seg = SegmentOptions::new().create(&setup.name, SLOTS + 2 * slot)?;
        setup.spawn()?;
        Ok(Box::new(End::new(seg, true, setup)))
    }
    fn echo(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let seg = Segment::open(&setup.name)?;
        Ok(Box::new(End::new(seg, false, setup)))
    }
}

fn slot_len(max: usize) -> u64 {
    (max.max(8) as u64).next_multiple_of(4096)
}

struct End {
    seg: Segment,
    out_line: u64,
    in_line: u64,
    out_slot: u64,
    in_slot: u64,
    sent: u32,
    seen: u32,
    mode: Mode,
    max: usize,
    payload: Payload,
    buf: Vec<u8>,
}

impl End {
    fn new(seg: Segment, driver: bool, setup: &Setup) -> End {
        let slot = slot_len(setup.max);
        let (a, b) = ((LINE_A, SLOTS), (LINE_B, SLOTS + slot));
        let ((out_line, out_slot), (in_line, in_slot)) = if driver { (a, b) } else { (b, a) };
        End {
            seg,
            out_line,
            in_line,
            out_slot,
            in_slot,
            sent: 0,
            seen: 0,
            mode: setup.mode,
            max: setup.max.max(8),
            payload: Payload::new(setup.max, 0),
            buf: vec![0u8; setup.max.max(8)],
        }
    }

    fn word(&self, offset: u64) -> io::Result<&AtomicU32> {
        self.seg
            .atomic_u32(offset)
            .ok_or_else(|| io::Error::other("the floor segment is too small"))
    }
}

impl Endpoint for End {
    fn send(&mut self, len: usize, tag: u64) -> io::Result<()> {
        let msg = self.payload.message(len, tag);
        let n = msg.len();
        let at = if n <= INLINE {
            self.out_line + 8
        } else {
            self.out_slot
        };
        self.seg.write_at(at, msg).map_err(io_err)?;
        self.word(self.out_line + 4)?
            .store(n as u32, Ordering::Relaxed);
        self.sent = self.sent.wrapping_add(1);
        let seq = self.word(self.out_line)?;
        // ORDERING: Release — publishes the message bytes and length written above; pairs
        // with the Acquire load of this word in the peer's `recv`.
        seq.store(self.sent, Ordering::Release);
        if self.mode == Mode::Block {
            Os::wake(seq, 1);
        }
        Ok(())
    }

    fn recv(&mut self) -> io::Result<(usize, u64)> {
        let want = self.seen.wrapping_add(1);
        let seq = self.word(self.in_line)?;
        loop {
            // ORDERING: Acquire — pairs with the peer's Release store in `send`, so the bytes
            // copied below are the ones it wrote.
            let v = seq.load(Ordering::Acquire);
            if v == want {
                break;
            }
            match self.mode {
                Mode::Spin => std::hint::spin_loop(),
                Mode::Block => {
                    Os::wait(seq, v, None);
                }
            }
        }
        self.seen = want;
        let len = self.word(self.in_line + 4)?.load(Ordering::Relaxed) as usize;
        if len > self.max {
            return Err(io::Error::other(
                "the floor peer announced an impossible length",
            ));
        }
        let at = if len <= INLINE {
            self.in_line + 8
        } else {
            self.in_slot
        };
        self.seg.read_at(at, &mut self.buf[..len]).map_err(io_err)?;
        Ok((len, tag_of(&self.buf[..len])))
    }
}
