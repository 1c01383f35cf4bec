//! The classic do-it-yourself recipe: a `shared_memory` segment (`ShmemConf`, named after the
//! link) with one slot per direction, the message copied into the slot and out of it, and
//! `raw_sync` events placed in the segment to signal: `BusyEvent` (a spinning flag) when
//! busy-polling, `Event` (a process-shared pthread mutex and condition variable) when blocking,
//! both auto-reset.
//!
//! Each direction has two events, "ready" (the slot holds a message) and "free" (the receiver
//! copied it out), so the sender can stream: it waits for "free" before it overwrites the
//! slot. A stream through one slot is therefore a handshake per message, which is what this
//! recipe gives a user who does not write a queue of their own.
//!
//! `BusyEvent` uses relaxed atomics only, so the message bytes are ordered by a release fence
//! before each `set` and an acquire fence after each `wait` (no cost on x86; `Event`'s mutex
//! orders them anyway).
//!
//! # Safety
//!
//! The segment is reached through the raw pointer `Shmem::as_ptr`. The layout (events, lengths,
//! slots at fixed offsets inside the mapping) is checked against the mapping's length when an
//! endpoint is made, and the handshake gives each slot and its length word to one process at a
//! time: the sender between "free" and "ready", the receiver between "ready" and "free".
#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{fence, Ordering};

use anyhow::{bail, Context};
use raw_sync::events::{BusyEvent, Event, EventImpl, EventInit, EventState};
use raw_sync::Timeout;
use shared_memory::{Shmem, ShmemConf};

use crate::transport::{tag_of, Class, Endpoint, Mode, Payload, Setup, Transport};

/// Bytes reserved for each event at the start of the segment (a pthread mutex and condition
/// variable need under 100).
const EVENT_STRIDE: usize = 256;
/// The events: driver → echo ready and free, echo → driver ready and free.
const AB_READY: usize = 0;
const AB_FREE: usize = 1;
const BA_READY: usize = 2;
const BA_FREE: usize = 3;
/// The length of the message in each slot (`u64`), driver → echo and echo → driver.
const AB_LEN: usize = 4 * EVENT_STRIDE;
const BA_LEN: usize = AB_LEN + 128;
/// The slots start after the first page.
const SLOTS: usize = 4096;

/// See the module docs.
#[derive(Debug)]
pub struct SharedMemoryRawSync;

impl Transport for SharedMemoryRawSync {
    fn id(&self) -> &'static str {
        "shared-memory-raw-sync"
    }
    fn label(&self) -> &'static str {
        "shared_memory + raw_sync (copy)"
    }
    fn class(&self) -> Class {
        Class::Peer
    }
    fn modes(&self) -> &'static [Mode] {
        &[Mode::Spin, Mode::Block]
    }
    fn driver(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let shmem = ShmemConf::new()
            .os_id(os_id(setup))
            .size(SLOTS + 2 * slot_len(setup.max))
            .create()
            .context("cannot create the shared_memory segment")?;
        let end = End::new(shmem, true, setup)?;
        setup.spawn()?;
        Ok(Box::new(end))
    }
    fn echo(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>> {
        let shmem = ShmemConf::new()
            .os_id(os_id(setup))
            .open()
            .context("cannot open the shared_memory segment")?;
        Ok(Box::new(End::new(shmem, false, setup)?))
    }
}

/// The segment's name: the link's name (a leading slash, as POSIX asks of `shm_open`).
fn os_id(setup: &Setup) -> String {
    format!("/{}-smrs", setup.name)
}

fn slot_len(max: usize) -> usize {
    max.max(8).next_multiple_of(4096)
}

/// One side of a link. Fields drop in order: the events (which point into the mapping)
/// before the mapping; the driver's `Shmem` owns the segment and unlinks it when dropped.
struct End {
    out_ready: Box<dyn EventImpl>,
    out_free: Box<dyn EventImpl>,
    in_ready: Box<dyn EventImpl>,
    in_free: Box<dyn EventImpl>,
    out_len: usize,
    in_len: usize,
    out_slot: usize,
    in_slot: usize,
    max: usize,
    payload: Payload,
    buf: Vec<u8>,
    base: *mut u8,
    _shmem: Shmem,
}

impl End {
    /// The driver (which created `shmem`) initializes the events, both slots free; the echo
    /// process attaches to them.
    fn new(shmem: Shmem, driver: bool, setup: &Setup) -> anyhow::Result<End> {
        let slot = slot_len(setup.max);
        if shmem.len() < SLOTS + 2 * slot {
            bail!(
                "the shared_memory segment has {} bytes, {} needed",
                shmem.len(),
                SLOTS + 2 * slot
            );
        }
        let base = shmem.as_ptr();
        let event = |i: usize| -> anyhow::Result<Box<dyn EventImpl>> {
            // SAFETY: `base + i * EVENT_STRIDE` is inside the mapping (checked above: the
            // events' page comes first) and stays mapped as long as the event, which `End`
            // drops before `_shmem`. The driver initializes each event before it starts the echo
            // process, which only attaches to initialized events; `raw_sync` checks that
            // `EVENT_STRIDE` suffices below.
            let at = base.wrapping_add(i * EVENT_STRIDE);
            let made = match (setup.mode, driver) {
                // SAFETY: see above.
                (Mode::Spin, true) => unsafe { BusyEvent::new(at, true) },
                // SAFETY: as above.
                (Mode::Spin, false) => unsafe { BusyEvent::from_existing(at) },
                // SAFETY: as above.
                (Mode::Block, true) => unsafe { Event::new(at, true) },
                // SAFETY: as above.
                (Mode::Block, false) => unsafe { Event::from_existing(at) },
            };
            let (event, used) = made.map_err(|e| anyhow::anyhow!("raw_sync event: {e}"))?;
            if used > EVENT_STRIDE {
                bail!("a raw_sync event takes {used} bytes, more than the {EVENT_STRIDE} reserved");
            }
            Ok(event)
        };
        let ab = (event(AB_READY)?, event(AB_FREE)?, AB_LEN, SLOTS);
        let ba = (event(BA_READY)?, event(BA_FREE)?, BA_LEN, SLOTS + slot);
        if driver {
            set(ab.1.as_ref())?;
            set(ba.1.as_ref())?;
        }
        let (out, inn) = if driver { (ab, ba) } else { (ba, ab) };
        Ok(End {
            out_ready: out.0,
            out_free: out.1,
            in_ready: inn.0,
            in_free: inn.1,
            out_len: out.2,
            in_len: inn.2,
            out_slot: out.3,
            in_slot: inn.3,
            max: setup.max.max(8),
            payload: Payload::new(setup.max, 0),
            buf: vec![0u8; setup.max.max(8)],
            base,
            _shmem: shmem,
        })
    }
}

fn set(event: &dyn EventImpl) -> io::Result<()> {
    // ORDERING: Release — publishes what this side wrote to (or read from) the slot before the
    // peer's `wait` returns; pairs with the Acquire fence after `wait` (`BusyEvent` stores
    // and swaps its flag with relaxed atomics only).
    fence(Ordering::Release);
    event
        .set(EventState::Signaled)
        .map_err(|e| io::Error::other(format!("raw_sync set: {e}")))
}

fn wait(event: &dyn EventImpl) -> io::Result<()> {
    event
        .wait(Timeout::Infinite)
        .map_err(|e| io::Error::other(format!("raw_sync wait: {e}")))?;
    // ORDERING: Acquire — pairs with the Release fence in the peer's `set`.
    fence(Ordering::Acquire);
    Ok(())
}

impl Endpoint for End {
    fn send(&mut self, len: usize, tag: u64) -> io::Result<()> {
        wait(self.out_free.as_ref())?;
        let msg = self.payload.message(len, tag);
        // SAFETY: the slot (`slot_len(max)` bytes, `msg.len() <= max`) and the 8-byte-aligned
        // length word are inside the mapping (checked in `End::new`); after "free" the echo side
        // no longer touches them until "ready" is set below, and `msg` is our own buffer.
        unsafe {
            std::ptr::copy_nonoverlapping(
                msg.as_ptr(),
                self.base.wrapping_add(self.out_slot),
                msg.len(),
            )
        };
        // SAFETY: as above, for the length word (8-aligned: checked in `End::new`).
        #[allow(clippy::cast_ptr_alignment)]
        unsafe {
            self.base
                .wrapping_add(self.out_len)
                .cast::<u64>()
                .write(msg.len() as u64)
        };
        set(self.out_ready.as_ref())
    }

    fn recv(&mut self) -> io::Result<(usize, u64)> {
        wait(self.in_ready.as_ref())?;
        #[allow(clippy::cast_ptr_alignment)] // 8-aligned: checked in `End::new`
        // SAFETY: as in `send`: inside the mapping, and the peer does not touch the length word
        // or the slot between its "ready" and our "free".
        let len = unsafe { self.base.wrapping_add(self.in_len).cast::<u64>().read() } as usize;
        if len > self.max {
            return Err(io::Error::other("the peer announced an impossible length"));
        }
        // SAFETY: as above; `len <= max`, the size of both the slot and `buf`.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.base.wrapping_add(self.in_slot),
                self.buf.as_mut_ptr(),
                len,
            )
        };
        set(self.in_free.as_ref())?;
        Ok((len, tag_of(&self.buf[..len])))
    }
}
