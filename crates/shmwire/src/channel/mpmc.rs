//! Multi-producer multi-consumer bounded queue of fixed-size slots.
//!
//! Any number of [`Sender`]s and [`Receiver`]s (up to 64 endpoints in all); each message goes
//! to exactly one receiver, in the order the senders claimed their slots. A message is at
//! most [`message_size`](ChannelOptions::message_size) bytes (default 1 KiB); the queue holds
//! [`capacity`](ChannelOptions::capacity) of them (default 1024).
//!
//! ```
//! use shmwire::channel::{mpmc, ChannelOptions};
//! # let name = format!("doc-mpmc-{}", std::process::id());
//! let opts = ChannelOptions::new().capacity(64).message_size(256);
//! let mut tx = mpmc::Sender::open(&name, &opts)?;
//! let mut rx1 = mpmc::Receiver::open(&name, &opts)?;
//! let mut rx2 = mpmc::Receiver::open(&name, &opts)?;
//! tx.send(b"job 1")?;
//! tx.send(b"job 2")?;
//! assert_eq!(rx1.recv()?, b"job 1");
//! assert_eq!(rx2.recv()?, b"job 2");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The slot protocol
//!
//! A bounded queue after Dmitry Vyukov's, made crash-tolerant by recording the claimer in
//! the slot. Positions are monotonic (`tail` on the producer line, `head` on the consumer
//! line); position `p` uses slot `p mod N` in lap `p / N`. Each slot has a 64-bit state word:
//!
//! | bits   | field |
//! |--------|-------|
//! | 0..2   | phase: 0 free, 1 writing, 2 ready, 3 reading |
//! | 2..8   | peer-table entry of the claimer (writing, reading) |
//! | 8..16  | that entry's generation |
//! | 16..64 | lap (mod 2^48) |
//!
//! * **send** at `p = tail`: the slot must be *free, lap L*; CAS it to *writing by me, lap
//!   L* (Acquire: pairs with the consumer's Release that freed it), help `tail` from `p` to
//!   `p + 1` (anyone who sees the claim may), write length and payload, store *ready, lap
//!   L* (Release: pairs with the consumer's Acquire load), ring the data bell. A slot of lap
//!   `L − 1` still there means the queue is full.
//! * **receive** at `p = head`: the slot must be *ready, lap L*; CAS it to *reading by me*
//!   (Acquire), help `head` on, copy out, store *free, lap L + 1* (Release), ring the space
//!   bell. A slot already in a later lap, in any phase, means position `p` is done (a slot
//!   enters lap L + 1 only once lap L's message was read, skipped or abandoned): anyone helps
//!   `head` past it. (A receiver killed between its claim and moving `head` leaves `head`
//!   behind; senders may recover the slot and use it again, even twice, before any receiver
//!   helps.)
//! * **recovery** (between sleeps, with liveness checks, and before a waiter is told that
//!   the other side is gone, so that no message stays hidden behind a dead sender's slot):
//!   a slot *writing* or *reading* by an
//!   endpoint that is dead (or no longer attached with that generation) is CASed to *free,
//!   lap L + 1*. A dead sender's unfinished message is skipped, never delivered half-written;
//!   the message a receiver was copying when it died is lost with it.
//!
//! Every value read from shared memory is checked: an unexpected state makes the operation
//! retry a bounded number of times, then behave as full / empty (and so wait, sleeping), never
//! spin for ever; a length larger than a slot is [`RecvError::Corrupt`]. Positions move by
//! wrapping addition: a cursor a hostile peer set near `u64::MAX` is wrong data, not an
//! overflow.

use std::time::Duration;

use bytemuck::Pod;

use super::error::{Failure, FromFailure};
use super::peers::{Role, Ticket};
use super::ring::Mem;
use super::wait::Patience;
use super::{
    round_up, ChannelOpenError, ChannelOptions, Core, Flavor, Lent, LentMut, RecvError,
    RecvTimeoutError, SendError, SendTimeoutError, TryRecvError, TrySendError, Wanted,
};
use crate::primitive::{AtomicU64, Ordering};
use crate::view::Region;

/// Default number of slots.
pub const DEFAULT_CAPACITY: u64 = 1024;
/// Default message size.
pub const DEFAULT_MESSAGE_SIZE: u64 = 1024;

const FREE: u64 = 0;
const WRITING: u64 = 1;
const READY: u64 = 2;
const READING: u64 = 3;
const LAP_BITS: u32 = 48;
const LAP_MASK: u64 = (1 << LAP_BITS) - 1;
/// Retries of an operation that finds an unexpected state before it counts as full/empty.
const RETRIES: usize = 64;

/// Bytes of one slot's control (state and length).
const CTL: u64 = 16;

/// One slot's control words, in the array at the start of the data area.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct SlotCtl {
    /// MPMC: the state word (phase, claimer, lap). Broadcast: the seqlock word.
    pub(crate) state: AtomicU64,
    /// Payload length.
    pub(crate) len: AtomicU64,
}

impl SlotCtl {
    #[cfg(all(test, loom))]
    pub(crate) fn new() -> SlotCtl {
        SlotCtl {
            state: AtomicU64::new(0),
            len: AtomicU64::new(0),
        }
    }
}

#[cfg(not(loom))]
const _: () = assert!(std::mem::size_of::<SlotCtl>() == CTL as usize);

fn enc(phase: u64, claimer: Option<Ticket>, lap: u64) -> u64 {
    let (idx, gen) = claimer.map_or((0, 0), |t| (u64::from(t.index), u64::from(t.gen)));
    phase | (idx & 0x3F) << 2 | (gen & 0xFF) << 8 | (lap & LAP_MASK) << 16
}

/// Whether lap `a` comes after lap `b` (modulo 2^48; "after" is the nearer half).
fn later_lap(a: u64, b: u64) -> bool {
    let ahead = a.wrapping_sub(b) & LAP_MASK;
    ahead != 0 && ahead < 1 << (LAP_BITS - 1)
}

struct Decoded {
    phase: u64,
    index: u32,
    gen: u32,
    lap: u64,
}

fn dec(s: u64) -> Decoded {
    Decoded {
        phase: s & 3,
        index: (s >> 2 & 0x3F) as u32,
        gen: (s >> 8 & 0xFF) as u32,
        lap: s >> 16,
    }
}

/// The layout of the data area: `n` slot controls, then `n` payloads of `stride` bytes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Slots {
    pub(crate) n: u64,
    pub(crate) size: u64,
    stride: u64,
    payloads: u64,
}

impl Slots {
    pub(crate) fn new(n: u64, size: u64) -> Option<Slots> {
        let stride = round_up(size.max(1), 64);
        let payloads = round_up(n.checked_mul(CTL)?, 4096);
        payloads.checked_add(n.checked_mul(stride)?)?;
        Some(Slots {
            n,
            size,
            stride,
            payloads,
        })
    }

    pub(crate) fn data_len(&self) -> u64 {
        self.payloads + self.n * self.stride
    }

    /// The slot controls at the start of `data`.
    pub(crate) fn ctl<'d>(&self, data: &Region<'d>) -> &'d [SlotCtl] {
        data.slice::<SlotCtl>(0, self.n as usize)
            .expect("slot controls are inside the validated, page-aligned data area")
    }

    pub(crate) fn payload(&self, i: u64) -> u64 {
        self.payloads + i * self.stride
    }
}

pub(crate) fn layout(
    name: &str,
    opts: &ChannelOptions,
    flavor: Flavor,
    default_n: u64,
) -> Result<(Wanted, Slots), ChannelOpenError> {
    let n = opts.capacity.unwrap_or(default_n);
    let size = match opts.elem {
        Some((s, _, _)) => u64::from(s),
        None => opts.message_size.unwrap_or(DEFAULT_MESSAGE_SIZE),
    };
    let invalid = |reason: String| ChannelOpenError::Invalid {
        name: name.to_owned(),
        reason,
    };
    if n == 0 || n > 1 << 24 {
        return Err(invalid(format!(
            "{n} slots is not possible (1 to 16777216)"
        )));
    }
    if size == 0 || size > 1 << 31 {
        return Err(invalid(format!(
            "a message size of {size} bytes is not possible (1 byte to 2 GiB)"
        )));
    }
    let slots =
        Slots::new(n, size).ok_or_else(|| invalid("the channel would be too large".into()))?;
    Ok((Wanted::new(flavor, opts, n, size, slots.data_len()), slots))
}

/// Checks the description an opener found and returns its slot layout.
pub(crate) fn check_slots(core: &Core) -> Result<Slots, ChannelOpenError> {
    let info = &core.info;
    match Slots::new(info.capacity, info.slot_size) {
        Some(s)
            if (1..=1 << 24).contains(&info.capacity)
                && (1..=1 << 31).contains(&info.slot_size)
                && s.data_len() == info.data_len =>
        {
            Ok(s)
        }
        _ => Err(ChannelOpenError::Corrupt {
            name: core.name.to_string(),
            reason: format!(
                "{} slots of {} bytes do not make a data area of {} bytes",
                info.capacity, info.slot_size, info.data_len
            ),
        }),
    }
}

/// A claimed slot.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Claim {
    pub(crate) slot: u64,
    lap: u64,
}

/// The slot protocol over a set of cursors, slot controls and payload memory (the channel's
/// data area, or loom-checked memory in the models). Bells are the callers' business.
pub(crate) struct Queue<'a, M: Mem> {
    pub(crate) tail: &'a AtomicU64,
    pub(crate) head: &'a AtomicU64,
    pub(crate) ctl: &'a [SlotCtl],
    pub(crate) mem: M,
    pub(crate) slots: Slots,
}

impl<M: Mem> Queue<'_, M> {
    /// Claims the slot at `tail` for writing, or `None` if the queue is full now.
    pub(crate) fn claim_send(&self, me: Ticket) -> Option<Claim> {
        let n = self.slots.n;
        for _ in 0..RETRIES {
            let pos = self.tail.load(Ordering::Relaxed);
            let (slot, lap) = (pos % n, (pos / n) & LAP_MASK);
            let st = &self.ctl[slot as usize].state;
            // ORDERING: Acquire — pairs with the Release store that freed the slot in
            // `finish_recv` (or `recover`): the previous message was read before we write.
            let s = st.load(Ordering::Acquire);
            let d = dec(s);
            if d.phase == FREE && d.lap == lap {
                if st
                    .compare_exchange(
                        s,
                        enc(WRITING, Some(me), lap),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    let _ = self.tail.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    return Some(Claim { slot, lap });
                }
            } else if d.lap == lap || (d.phase == FREE && d.lap == (lap + 1) & LAP_MASK) {
                // Claimed by another sender that has not moved `tail` yet, or already freed
                // again (a dead sender's claim, recovered): help `tail` on.
                let _ = self.tail.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            } else if d.lap == lap.wrapping_sub(1) & LAP_MASK {
                // Last lap's message is still there: full, unless `tail` moved meanwhile.
                if self.tail.load(Ordering::Relaxed) == pos {
                    return None;
                }
            }
        }
        None
    }

    /// Writes `msg` into a claimed slot.
    pub(crate) fn write(&self, c: Claim, msg: &[u8]) {
        self.mem
            .put(self.slots.payload(c.slot), msg)
            .expect("slot payloads are inside the validated data area");
    }

    /// Publishes a written slot of `len` bytes.
    pub(crate) fn finish_send(&self, c: Claim, len: u64) {
        let ctl = &self.ctl[c.slot as usize];
        ctl.len.store(len, Ordering::Relaxed);
        // ORDERING: Release — publishes length and payload; pairs with the Acquire load in
        // `claim_recv`.
        ctl.state.store(enc(READY, None, c.lap), Ordering::Release);
    }

    /// Frees a claimed slot unsent (a dropped loan): receivers skip it.
    pub(crate) fn abandon_send(&self, c: Claim) {
        // ORDERING: Release — pairs with the Acquire loads in `claim_recv`/`claim_send`.
        self.ctl[c.slot as usize]
            .state
            .store(enc(FREE, None, c.lap + 1), Ordering::Release);
    }

    /// Claims the slot at `head` for reading, or `None` if the queue is empty now. Returns
    /// the claim and the length the slot claims (unchecked).
    pub(crate) fn claim_recv(&self, me: Ticket) -> Option<(Claim, u64)> {
        let n = self.slots.n;
        for _ in 0..RETRIES {
            let pos = self.head.load(Ordering::Relaxed);
            let (slot, lap) = (pos % n, (pos / n) & LAP_MASK);
            let ctl = &self.ctl[slot as usize];
            // ORDERING: Acquire — pairs with the Release store in `finish_send`.
            let s = ctl.state.load(Ordering::Acquire);
            let d = dec(s);
            if d.lap == lap && d.phase == READY {
                if ctl
                    .state
                    .compare_exchange(
                        s,
                        enc(READING, Some(me), lap),
                        Ordering::Acquire,
                        Ordering::Relaxed,
                    )
                    .is_ok()
                {
                    let _ = self.head.compare_exchange(
                        pos,
                        pos.wrapping_add(1),
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                    let len = ctl.len.load(Ordering::Relaxed);
                    return Some((Claim { slot, lap }, len));
                }
            } else if (d.lap == lap && d.phase == READING) || later_lap(d.lap, lap) {
                // Taken by another receiver that has not moved `head`, or already in a later
                // lap (skipped; or freed, and even claimed again by a sender, while `head`
                // stayed behind: a receiver died between its claim and moving `head`, and a
                // waiting sender recovered its slot): position `pos` is done. Help.
                let _ = self.head.compare_exchange(
                    pos,
                    pos.wrapping_add(1),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            } else if d.lap == lap {
                // Being written, or not yet claimed: empty for now.
                if self.head.load(Ordering::Relaxed) == pos {
                    return None;
                }
            }
        }
        None
    }

    /// Copies the payload of a claimed slot out.
    pub(crate) fn read(&self, c: Claim, dst: &mut [u8]) {
        self.mem
            .get(self.slots.payload(c.slot), dst)
            .expect("slot payloads are inside the validated data area");
    }

    /// Frees a slot after reading it.
    pub(crate) fn finish_recv(&self, c: Claim) {
        // ORDERING: Release — our reads of the slot happen before a sender reuses it; pairs
        // with the Acquire load in `claim_send`.
        self.ctl[c.slot as usize]
            .state
            .store(enc(FREE, None, c.lap + 1), Ordering::Release);
    }

    /// Frees slots left writing or reading by endpoints that `alive(entry, generation)`
    /// says are gone. Returns whether it freed any.
    pub(crate) fn recover(&self, alive: &dyn Fn(u32, u32) -> bool) -> bool {
        let mut freed = false;
        for ctl in self.ctl {
            // ORDERING: Acquire — as the loads in `claim_send` / `claim_recv`.
            let s = ctl.state.load(Ordering::Acquire);
            let d = dec(s);
            if (d.phase == WRITING || d.phase == READING) && !alive(d.index, d.gen) {
                // ORDERING: Release — as the frees in `finish_recv` / `abandon_send`.
                freed |= ctl
                    .state
                    .compare_exchange(
                        s,
                        enc(FREE, None, d.lap + 1),
                        Ordering::Release,
                        Ordering::Relaxed,
                    )
                    .is_ok();
            }
        }
        freed
    }
}

/// The queue of an endpoint's channel.
fn queue(core: &Core, slots: Slots) -> Queue<'_, Region<'_>> {
    let mem = core.data();
    Queue {
        tail: &core.producer().cursor,
        head: &core.consumer().cursor,
        ctl: slots.ctl(&mem),
        mem,
        slots,
    }
}

/// Recovery with liveness checks of the claimers, waking everyone if it freed a slot.
fn recover(core: &Core, q: &Queue<'_, Region<'_>>) {
    let peers = core.peers();
    if q.recover(&|index, gen| peers.claimer_alive(index, gen)) {
        core.ring_both();
    }
}

/// A sending end of an MPMC channel.
#[derive(Debug)]
pub struct Sender {
    core: Core,
    slots: Slots,
}

impl Sender {
    /// Opens (or creates, as `opts` says) the channel `name` and attaches as a sender.
    ///
    /// # Errors
    ///
    /// See [`ChannelOpenError`].
    pub fn open(name: &str, opts: &ChannelOptions) -> Result<Sender, ChannelOpenError> {
        let (wanted, _) = layout(name, opts, Flavor::Mpmc, DEFAULT_CAPACITY)?;
        let core = Core::open(name, opts, &wanted, Role::Send, None)?;
        let slots = check_slots(&core)?;
        Ok(Sender { core, slots })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// Number of slots.
    pub fn capacity(&self) -> u64 {
        self.slots.n
    }

    /// The largest message.
    pub fn message_size(&self) -> u64 {
        self.slots.size
    }

    fn queue(&self) -> Queue<'_, Region<'_>> {
        queue(&self.core, self.slots)
    }

    fn claim<E: FromFailure>(&self, len: u64, patience: Patience) -> Result<Claim, E> {
        if len > self.slots.size {
            return Err(self.core.fail(Failure::TooLarge {
                len,
                max: self.slots.size,
            }));
        }
        let q = self.queue();
        let me = self.core.ticket();
        self.core
            .wait_recovering(1, patience, &mut || Ok(q.claim_send(me)), &mut || {
                recover(&self.core, &q)
            })
            .map_err(|f| self.core.fail(f))
    }

    fn send_with<E: FromFailure>(&mut self, msg: &[u8], patience: Patience) -> Result<(), E> {
        let c = self.claim(msg.len() as u64, patience)?;
        let q = self.queue();
        q.write(c, msg);
        q.finish_send(c, msg.len() as u64);
        self.core.producer().bell.ring(self.core.kernel(0));
        Ok(())
    }

    /// Sends `msg` if a slot is free now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`], [`TrySendError::Disconnected`] (the receivers are gone and
    /// the queue is full), [`TrySendError::TooLarge`].
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), TrySendError> {
        self.send_with(msg, Patience::Try)
    }

    /// Sends `msg`, waiting for a free slot as long as it takes.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`], [`SendError::TooLarge`].
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_with(msg, Patience::FOREVER)
    }

    /// Sends `msg`, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`], and as [`send`](Self::send).
    pub fn send_timeout(&mut self, msg: &[u8], timeout: Duration) -> Result<(), SendTimeoutError> {
        self.send_with(msg, Patience::timeout(timeout))
    }

    /// [`try_send`](Self::try_send) of a plain-old-data value as its bytes.
    ///
    /// # Errors
    ///
    /// As [`try_send`](Self::try_send).
    pub fn try_send_value<T: Pod>(&mut self, value: &T) -> Result<(), TrySendError> {
        self.try_send(bytemuck::bytes_of(value))
    }

    /// [`send`](Self::send) of a plain-old-data value as its bytes.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_value<T: Pod>(&mut self, value: &T) -> Result<(), SendError> {
        self.send(bytemuck::bytes_of(value))
    }

    /// [`send_timeout`](Self::send_timeout) of a plain-old-data value as its bytes.
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    pub fn send_value_timeout<T: Pod>(
        &mut self,
        value: &T,
        timeout: Duration,
    ) -> Result<(), SendTimeoutError> {
        self.send_timeout(bytemuck::bytes_of(value), timeout)
    }

    /// Claims a slot to write a message of `len` bytes (at most
    /// [`message_size`](Self::message_size)) in place, waiting for one. Receivers after this
    /// slot wait until it is sent or dropped.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn loan(&mut self, len: usize) -> Result<SendLoan<'_>, SendError> {
        self.loan_with(len, Patience::FOREVER)
    }

    /// [`loan`](Self::loan) if a slot is free now.
    ///
    /// # Errors
    ///
    /// As [`try_send`](Self::try_send).
    pub fn try_loan(&mut self, len: usize) -> Result<SendLoan<'_>, TrySendError> {
        self.loan_with(len, Patience::Try)
    }

    /// [`loan`](Self::loan), waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// As [`send_timeout`](Self::send_timeout).
    pub fn loan_timeout(
        &mut self,
        len: usize,
        timeout: Duration,
    ) -> Result<SendLoan<'_>, SendTimeoutError> {
        self.loan_with(len, Patience::timeout(timeout))
    }

    fn loan_with<E: FromFailure>(
        &mut self,
        len: usize,
        patience: Patience,
    ) -> Result<SendLoan<'_>, E> {
        let c = self.claim(len as u64, patience)?;
        let sender = &*self;
        let lent = sender
            .core
            .data()
            .lend_mut(sender.slots.payload(c.slot), len)
            .expect("slot payloads are inside the validated data area");
        Ok(SendLoan {
            sender,
            claim: Some(c),
            lent,
        })
    }

    /// Whether a receiver is attached now (no liveness check).
    pub fn has_receiver(&self) -> bool {
        self.core.peers().any_active(Role::Recv)
    }

    /// Waits until a receiver is attached, up to `timeout` (`Duration::MAX`: no limit).
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] only.
    pub fn wait_for_receiver(&self, timeout: Duration) -> Result<(), SendTimeoutError> {
        self.core
            .wait_for_peers(Role::Recv, 1, Patience::timeout(timeout))
    }
}

/// A slot lent to write one message in place; [`send`](Self::send) publishes it, dropping
/// it frees the slot unsent (receivers skip it). Write it through [`LentMut`]'s methods
/// (`write_at`, `as_mut_ptr`, …).
///
/// The bytes are in shared memory: they start with whatever was there before.
#[derive(Debug)]
#[must_use = "a loan publishes nothing unless sent"]
pub struct SendLoan<'a> {
    sender: &'a Sender,
    claim: Option<Claim>,
    lent: LentMut<'a>,
}

impl<'a> std::ops::Deref for SendLoan<'a> {
    type Target = LentMut<'a>;
    fn deref(&self) -> &LentMut<'a> {
        &self.lent
    }
}

impl<'a> std::ops::DerefMut for SendLoan<'a> {
    fn deref_mut(&mut self) -> &mut LentMut<'a> {
        &mut self.lent
    }
}

impl SendLoan<'_> {
    /// Publishes the message (all [`len`](LentMut::len) bytes).
    pub fn send(self) {
        let len = self.lent.len();
        self.send_len(len);
    }

    /// Publishes the first `len` bytes as the message.
    ///
    /// # Panics
    ///
    /// If `len` exceeds the loan.
    pub fn send_len(mut self, len: usize) {
        assert!(
            len <= self.lent.len(),
            "cannot send {len} bytes of a loan of {}",
            self.lent.len()
        );
        let c = self.claim.take().expect("a live loan holds its claim");
        self.sender.queue().finish_send(c, len as u64);
        let core = &self.sender.core;
        core.producer().bell.ring(core.kernel(0));
    }
}

impl Drop for SendLoan<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.claim.take() {
            self.sender.queue().abandon_send(c);
            let core = &self.sender.core;
            core.producer().bell.ring(core.kernel(0));
        }
    }
}

/// A receiving end of an MPMC channel.
#[derive(Debug)]
pub struct Receiver {
    core: Core,
    slots: Slots,
}

impl Receiver {
    /// Opens (or creates, as `opts` says) the channel `name` and attaches as a receiver.
    ///
    /// # Errors
    ///
    /// See [`ChannelOpenError`].
    pub fn open(name: &str, opts: &ChannelOptions) -> Result<Receiver, ChannelOpenError> {
        let (wanted, _) = layout(name, opts, Flavor::Mpmc, DEFAULT_CAPACITY)?;
        let core = Core::open(name, opts, &wanted, Role::Recv, None)?;
        let slots = check_slots(&core)?;
        Ok(Receiver { core, slots })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// Number of slots.
    pub fn capacity(&self) -> u64 {
        self.slots.n
    }

    /// The largest message.
    pub fn message_size(&self) -> u64 {
        self.slots.size
    }

    fn queue(&self) -> Queue<'_, Region<'_>> {
        queue(&self.core, self.slots)
    }

    /// Frees a read slot and wakes a sender waiting for room.
    fn free(&self, c: Claim) {
        self.queue().finish_recv(c);
        self.core.consumer().bell.ring(self.core.kernel(1));
    }

    fn claim<E: FromFailure>(&self, patience: Patience) -> Result<(Claim, u64), E> {
        let q = self.queue();
        let me = self.core.ticket();
        let (c, len) = self
            .core
            .wait_recovering(0, patience, &mut || Ok(q.claim_recv(me)), &mut || {
                recover(&self.core, &q)
            })
            .map_err(|f| self.core.fail(f))?;
        if len > self.slots.size {
            self.free(c);
            return Err(self.core.fail(Failure::Corrupt(format!(
                "a slot claims {len} bytes, more than the slot size {}",
                self.slots.size
            ))));
        }
        Ok((c, len))
    }

    fn recv_with<E: FromFailure>(&mut self, patience: Patience) -> Result<Vec<u8>, E> {
        let (c, len) = self.claim(patience)?;
        let mut buf = vec![0; len as usize];
        self.queue().read(c, &mut buf);
        self.free(c);
        Ok(buf)
    }

    /// Receives a message if one is ready now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], [`TryRecvError::Disconnected`] (every sender is gone and
    /// the queue is empty), [`TryRecvError::Corrupt`].
    pub fn try_recv(&mut self) -> Result<Vec<u8>, TryRecvError> {
        self.recv_with(Patience::Try)
    }

    /// Receives a message, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`], [`RecvError::Corrupt`].
    pub fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_with(Patience::FOREVER)
    }

    /// Receives a message, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], and as [`recv`](Self::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_with(Patience::timeout(timeout))
    }

    fn recv_value_with<T: Pod, E: FromFailure>(&mut self, patience: Patience) -> Result<T, E> {
        let (c, len) = self.claim(patience)?;
        let mut value = T::zeroed();
        let bytes = bytemuck::bytes_of_mut(&mut value);
        let ok = len == bytes.len() as u64;
        if ok {
            self.queue().read(c, bytes);
        }
        self.free(c);
        if ok {
            Ok(value)
        } else {
            Err(self.core.fail(Failure::WrongSize {
                len,
                expected: std::mem::size_of::<T>() as u64,
            }))
        }
    }

    /// [`try_recv`](Self::try_recv) of a plain-old-data value sent with
    /// [`Sender::send_value`].
    ///
    /// # Errors
    ///
    /// [`TryRecvError::WrongSize`] if the message is not `size_of::<T>()` bytes (it is
    /// consumed); otherwise as [`try_recv`](Self::try_recv).
    pub fn try_recv_value<T: Pod>(&mut self) -> Result<T, TryRecvError> {
        self.recv_value_with(Patience::Try)
    }

    /// [`recv`](Self::recv) of a plain-old-data value sent with [`Sender::send_value`].
    ///
    /// # Errors
    ///
    /// [`RecvError::WrongSize`] if the message is not `size_of::<T>()` bytes (it is
    /// consumed); otherwise as [`recv`](Self::recv).
    pub fn recv_value<T: Pod>(&mut self) -> Result<T, RecvError> {
        self.recv_value_with(Patience::FOREVER)
    }

    /// [`recv_timeout`](Self::recv_timeout) of a plain-old-data value sent with
    /// [`Sender::send_value`].
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::WrongSize`] if the message is not `size_of::<T>()` bytes (it is
    /// consumed); otherwise as [`recv_timeout`](Self::recv_timeout).
    pub fn recv_value_timeout<T: Pod>(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_value_with(Patience::timeout(timeout))
    }

    /// Borrows the next message in its slot, waiting as long as it takes; the slot is freed
    /// when the guard drops.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_ref(&mut self) -> Result<RecvGuard<'_>, RecvError> {
        self.recv_ref_with(Patience::FOREVER)
    }

    /// [`recv_ref`](Self::recv_ref) if a message is ready now.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv).
    pub fn try_recv_ref(&mut self) -> Result<RecvGuard<'_>, TryRecvError> {
        self.recv_ref_with(Patience::Try)
    }

    /// [`recv_ref`](Self::recv_ref), waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_ref_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<RecvGuard<'_>, RecvTimeoutError> {
        self.recv_ref_with(Patience::timeout(timeout))
    }

    fn recv_ref_with<E: FromFailure>(&mut self, patience: Patience) -> Result<RecvGuard<'_>, E> {
        let (c, len) = self.claim(patience)?;
        let receiver = &*self;
        let lent = receiver
            .core
            .data()
            .lend(receiver.slots.payload(c.slot), len as usize)
            .expect("slot payloads are inside the validated data area");
        Ok(RecvGuard {
            receiver,
            claim: c,
            lent,
        })
    }

    /// Whether a sender is attached now (no liveness check).
    pub fn has_sender(&self) -> bool {
        self.core.peers().any_active(Role::Send)
    }
}

/// A message borrowed in its slot; the slot is freed when the guard drops. Read it through
/// [`Lent`]'s methods (`read_at`, `to_vec`, `as_ptr`, …).
#[derive(Debug)]
pub struct RecvGuard<'a> {
    receiver: &'a Receiver,
    claim: Claim,
    lent: Lent<'a>,
}

impl<'a> std::ops::Deref for RecvGuard<'a> {
    type Target = Lent<'a>;
    fn deref(&self) -> &Lent<'a> {
        &self.lent
    }
}

impl Drop for RecvGuard<'_> {
    fn drop(&mut self) {
        self.receiver.free(self.claim);
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// Every sender died, one in the middle of a message that came before another one's
    /// message: a receiver gets that message (recovering the dead sender's slot) before it
    /// is told `Disconnected`. (Regression, found by the crash chaos test: the first receive
    /// after the senders' deaths said `Disconnected` at once, without recovering the slot,
    /// and the message behind it stayed in the queue for as long as no sender lived.)
    #[test]
    fn a_dead_senders_slot_does_not_hide_messages_from_a_disconnected_receiver() {
        let name = format!("swu-mpmc-dead-{}", std::process::id());
        // Removed however the test ends (the dead senders' endpoints never close).
        struct Remove<'a>(&'a str);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                let _ = crate::SegmentOptions::new().remove(self.0);
            }
        }
        let _remove = Remove(&name);
        let opts = ChannelOptions::new().capacity(4).message_size(16);
        let mut rx = Receiver::open(&name, &opts).unwrap();
        let mut dying = Sender::open(&name, &opts).unwrap();
        let mut other = Sender::open(&name, &opts).unwrap();
        // `dying` claims position 0 and dies writing it; `other` sends position 1 and dies.
        std::mem::forget(dying.loan(16).unwrap());
        other.send(b"after").unwrap();
        for tx in [dying, other] {
            // Dead: its peer entry (16 bytes from 128 into the table) now names a process
            // started at another time.
            let at = super::super::PEERS as u64 + 128 + 16 * u64::from(tx.core.ticket().index);
            let start = tx.core.seg.atomic_u64(at + 8).unwrap();
            start.fetch_add(1, Ordering::Relaxed);
            std::mem::forget(tx);
        }
        // Past a liveness-check slice: the receive looks at the peers at once.
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), b"after");
        assert!(matches!(
            rx.try_recv(),
            Err(TryRecvError::Disconnected { .. })
        ));
    }

    /// Payload memory for the slot protocol (the slot words live apart, in `SlotCtl`s).
    struct Bytes(std::cell::RefCell<Vec<u8>>);

    impl Mem for Bytes {
        fn put(&self, off: u64, src: &[u8]) -> Option<()> {
            let o = off as usize;
            self.0
                .borrow_mut()
                .get_mut(o..o + src.len())?
                .copy_from_slice(src);
            Some(())
        }
        fn get(&self, off: u64, dst: &mut [u8]) -> Option<()> {
            let o = off as usize;
            dst.copy_from_slice(self.0.borrow().get(o..o + dst.len())?);
            Some(())
        }
        fn word(&self, _off: u64) -> Option<&AtomicU64> {
            None
        }
    }

    /// A receiver killed between claiming the slot at `head` and moving `head` on, whose
    /// slot a sender waiting for room then recovered and filled again (lap L + 1) before any
    /// receiver helped `head`: receivers skip it. (Regression, found by the crash chaos
    /// test: receivers met a lap they did not expect at `head` and waited for ever while
    /// the queue filled up.)
    #[test]
    fn a_slot_refilled_while_head_stayed_behind_is_skipped() {
        // Refilled (lap L + 1), or also claimed and abandoned again (free, lap L + 2).
        for again in [false, true] {
            refilled_while_head_stayed_behind(again);
        }
    }

    fn refilled_while_head_stayed_behind(again: bool) {
        let n = 4;
        let slots = Slots::new(n, 8).unwrap();
        let ctl: Vec<SlotCtl> = (0..n)
            .map(|_| SlotCtl {
                state: AtomicU64::new(0),
                len: AtomicU64::new(0),
            })
            .collect();
        let mem = Bytes(std::cell::RefCell::new(vec![0; slots.data_len() as usize]));
        let (tail, head) = (AtomicU64::new(0), AtomicU64::new(0));
        let q = Queue {
            tail: &tail,
            head: &head,
            ctl: &ctl,
            mem: &mem,
            slots,
        };
        let sender = Ticket { index: 0, gen: 1 };
        let (dead, live) = (Ticket { index: 1, gen: 2 }, Ticket { index: 2, gen: 3 });
        let send = |v: u8| {
            let c = q.claim_send(sender).expect("room in the queue");
            q.write(c, &[v]);
            q.finish_send(c, 1);
        };
        for v in 0..4 {
            send(v);
        }
        // The dead receiver claimed position 0 (message 0 dies with it), then `head` is
        // where it was: the receiver was killed before it moved it.
        q.claim_recv(dead).expect("a message");
        head.store(0, Ordering::Relaxed);
        // A sender waiting for room recovers the slot and fills it again, as position 4.
        assert!(q.recover(&|index, _| index != dead.index));
        if again {
            let c = q.claim_send(sender).expect("the recovered slot");
            q.abandon_send(c);
        } else {
            send(4);
        }
        let mut got = Vec::new();
        while let Some((c, len)) = q.claim_recv(live) {
            let mut b = vec![0; len as usize];
            q.read(c, &mut b);
            q.finish_recv(c);
            got.extend(b);
        }
        let expected: &[u8] = if again { &[1, 2, 3] } else { &[1, 2, 3, 4] };
        assert_eq!(got, expected, "abandoned again: {again}");
        // And the queue goes on.
        send(9);
        let (c, _) = q.claim_recv(live).expect("the next message");
        let mut b = [0];
        q.read(c, &mut b);
        assert_eq!(b, [9]);
    }

    /// Positions a hostile peer set to the end of `u64`: the queue carries on across the
    /// wrap, where it used to panic on an overflowing `pos + 1` (in debug builds).
    #[test]
    fn positions_at_u64_max_wrap_instead_of_overflowing() {
        let name = format!("swu-mpmc-wrap-{}", std::process::id());
        // Removed however the test ends.
        struct Remove<'a>(&'a str);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                let _ = crate::SegmentOptions::new().remove(self.0);
            }
        }
        let _remove = Remove(&name);
        let opts = ChannelOptions::new().capacity(4).message_size(16);
        let mut tx = Sender::open(&name, &opts).unwrap();
        let mut rx = Receiver::open(&name, &opts).unwrap();
        let pos = u64::MAX;
        tx.core.producer().cursor.store(pos, Ordering::Relaxed);
        tx.core.consumer().cursor.store(pos, Ordering::Relaxed);
        // The slot of position `pos` is free in `pos`'s lap, as if the queue had got there.
        tx.queue().ctl[(pos % 4) as usize]
            .state
            .store(enc(FREE, None, pos / 4), Ordering::Relaxed);
        tx.try_send(b"last").unwrap();
        assert_eq!(rx.try_recv().unwrap(), b"last");
        // Both cursors wrapped to 0, where slot 0 is free in lap 0.
        tx.try_send(b"first").unwrap();
        assert_eq!(rx.try_recv().unwrap(), b"first");
        drop((tx, rx));
    }
}
