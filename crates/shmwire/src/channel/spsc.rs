//! Single-producer single-consumer channel of variable-length byte messages.
//!
//! One [`Sender`] and one [`Receiver`] at a time (a second one gets
//! [`ChannelOpenError::Busy`] while the first lives; a dead one is replaced). Messages are
//! delivered whole and in order, never torn, never lost while both ends live. A message is
//! freed only when its receive completes (or its [`RecvGuard`] drops): a receiver killed in
//! the middle leaves it to the next receiver, so delivery across receiver crashes is at
//! least once. The ring's
//! capacity is a power of two of at least 16 KiB; a message can be up to half of it less
//! 4160 bytes ([`Sender::message_size`]).
//!
//! ```
//! use shmwire::channel::{spsc, ChannelOptions};
//! # let name = format!("doc-spsc-{}", std::process::id());
//! let opts = ChannelOptions::new().capacity(64 * 1024);
//! let mut tx = spsc::Sender::open(&name, &opts)?;
//! let mut rx = spsc::Receiver::open(&name, &opts)?;
//!
//! // Copying.
//! tx.send(b"hello")?;
//! assert_eq!(rx.recv()?, b"hello");
//!
//! // Zero-copy: write in place, read in place.
//! let mut loan = tx.loan(4)?;
//! loan.write_at(0, b"abcd");
//! loan.send();
//! let msg = rx.recv_ref()?;
//! assert_eq!(msg.to_vec(), b"abcd");
//! drop(msg); // frees the bytes for the sender
//!
//! // Plain-old-data values.
//! tx.send_value(&[1.5f32, 2.5])?;
//! assert_eq!(rx.recv_value::<[f32; 2]>()?, [1.5, 2.5]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::time::Duration;

use bytemuck::Pod;

use super::error::{Failure, FromFailure};
use super::peers::Role;
use super::ring::{self, Consumer, Found, Producer, Reserved, Ring};
use super::wait::Patience;
use super::{
    ChannelOpenError, ChannelOptions, Core, Flavor, Lent, LentMut, RecvError, RecvTimeoutError,
    SendError, SendTimeoutError, TryRecvError, TrySendError, Wanted,
};
use crate::view::Region;

/// Default ring size: 1 MiB.
pub const DEFAULT_CAPACITY: u64 = 1 << 20;
/// Smallest ring.
pub const MIN_CAPACITY: u64 = 16 * 1024;
/// Largest ring: 2 GiB. (A record's size is 30 bits of a 32-bit word: a message is at most
/// half the ring, and a filler shorter than the message it makes room for, so every record
/// of a 2 GiB ring is below 1 GiB.)
pub const MAX_CAPACITY: u64 = 1 << 31;

fn wanted(name: &str, opts: &ChannelOptions) -> Result<Wanted, ChannelOpenError> {
    let requested = opts.capacity.unwrap_or(DEFAULT_CAPACITY);
    if requested == 0 || requested > MAX_CAPACITY {
        return Err(ChannelOpenError::Invalid {
            name: name.to_owned(),
            reason: format!(
                "a ring of {requested} bytes is not possible (1 to {MAX_CAPACITY} bytes)"
            ),
        });
    }
    let cap = requested.next_power_of_two().max(MIN_CAPACITY);
    let mut w = Wanted::new(Flavor::Spsc, opts, cap, ring::max_message(cap), cap);
    // The ring size is fixed; the largest message follows from it.
    w.slot_given = false;
    Ok(w)
}

fn check_ring(core: &Core) -> Result<u64, ChannelOpenError> {
    let cap = core.info.capacity;
    let ok = cap.is_power_of_two()
        && (MIN_CAPACITY..=MAX_CAPACITY).contains(&cap)
        && core.info.data_len == cap;
    if ok {
        Ok(cap)
    } else {
        Err(ChannelOpenError::Corrupt {
            name: core.name.to_string(),
            reason: format!(
                "a ring of {cap} bytes in a data area of {} is not valid",
                core.info.data_len
            ),
        })
    }
}

#[inline]
fn ring(core: &Core) -> Ring<'_, Region<'_>> {
    Ring {
        producer: core.producer(),
        consumer: core.consumer(),
        mem: core.data(),
        capacity: core.info.capacity,
    }
}

/// The sending end of an SPSC channel.
#[derive(Debug)]
pub struct Sender {
    core: Core,
    state: Producer,
}

impl Sender {
    /// Opens (or creates, as `opts` says) the channel `name` and attaches as its sender.
    ///
    /// # Errors
    ///
    /// [`ChannelOpenError::Busy`] if another live process is the sender; see
    /// [`ChannelOpenError`].
    pub fn open(name: &str, opts: &ChannelOptions) -> Result<Sender, ChannelOpenError> {
        let core = Core::open(name, opts, &wanted(name, opts)?, Role::Send, Some("sender"))?;
        check_ring(&core)?;
        let state = ring(&core).producer();
        Ok(Sender { core, state })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> u64 {
        self.core.info.capacity
    }

    /// The largest message this channel takes: half the ring less 4160 bytes.
    pub fn message_size(&self) -> u64 {
        ring::max_message(self.core.info.capacity)
    }

    fn reserve(&mut self, len: u64, want: u64, patience: Patience) -> Result<Reserved, Failure> {
        let max = self.message_size();
        if len > max {
            return Err(Failure::TooLarge { len, max });
        }
        let Sender { core, state } = self;
        let ring = ring(core);
        core.wait(1, patience, &mut || {
            ring.reserve(state, len, want).map_err(Failure::Corrupt)
        })
    }

    fn send_with<E: FromFailure>(&mut self, msg: &[u8], patience: Patience) -> Result<(), E> {
        let r = self
            .reserve(msg.len() as u64, ring::placement(msg.as_ptr()), patience)
            .map_err(|f| self.core.fail(f))?;
        self.core
            .data()
            .write(r.payload(), msg)
            .expect("a reserved payload is inside the ring");
        self.commit(r, msg.len() as u64);
        Ok(())
    }

    fn commit(&mut self, r: Reserved, len: u64) {
        commit(&self.core, &mut self.state, r, len);
    }

    /// Sends `msg` if there is room now.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`], [`TrySendError::Disconnected`] (the receiver is gone and the
    /// ring is full), [`TrySendError::TooLarge`], [`TrySendError::Corrupt`].
    pub fn try_send(&mut self, msg: &[u8]) -> Result<(), TrySendError> {
        self.send_with(msg, Patience::Try)
    }

    /// Sends `msg`, waiting for room as long as it takes.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`], [`SendError::TooLarge`], [`SendError::Corrupt`].
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        self.send_with(msg, Patience::FOREVER)
    }

    /// Sends `msg`, waiting for room up to `timeout`.
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

    /// Lends `len` bytes of the ring to write a message in place, waiting for room.
    /// [`SendLoan::send`] publishes it; dropping the loan abandons it.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn loan(&mut self, len: usize) -> Result<SendLoan<'_>, SendError> {
        self.loan_with(len, Patience::FOREVER)
    }

    /// [`loan`](Self::loan) if there is room now.
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
        let r = self
            .reserve(len as u64, ring::IN_PLACE, patience)
            .map_err(|f| self.core.fail(f))?;
        let Sender { core, state } = self;
        let lent = core
            .data()
            .lend_mut(r.payload(), len)
            .expect("a reserved payload is inside the ring");
        Ok(SendLoan {
            core,
            state,
            reserved: r,
            lent,
        })
    }

    fn wait_received_with<E: FromFailure>(&mut self, patience: Patience) -> Result<(), E> {
        let Sender { core, state } = self;
        let ring = ring(core);
        core.wait(1, patience, &mut || Ok(ring.drained(state).then_some(())))
            .map_err(|f| core.fail(f))
    }

    /// Whether the receiver has taken every message sent so far.
    ///
    /// # Errors
    ///
    /// [`TrySendError::Full`]: messages are still in the ring;
    /// [`TrySendError::Disconnected`]: the receiver is gone and messages are still in the
    /// ring.
    pub fn try_wait_received(&mut self) -> Result<(), TrySendError> {
        self.wait_received_with(Patience::Try)
    }

    /// Waits until the receiver has taken every message sent so far.
    ///
    /// # Errors
    ///
    /// [`SendError::Disconnected`]: the receiver left (or died) before taking them all.
    pub fn wait_received(&mut self) -> Result<(), SendError> {
        self.wait_received_with(Patience::FOREVER)
    }

    /// [`wait_received`](Self::wait_received), waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`], and as [`wait_received`](Self::wait_received).
    pub fn wait_received_timeout(&mut self, timeout: Duration) -> Result<(), SendTimeoutError> {
        self.wait_received_with(Patience::timeout(timeout))
    }

    /// Whether a receiver is attached now (no liveness check).
    pub fn has_receiver(&self) -> bool {
        self.core.peers().any_active(Role::Recv)
    }

    /// Waits until a receiver is attached, up to `timeout` (`Duration::MAX`: no limit),
    /// sleeping on the channel's doorbell: an attaching endpoint rings it.
    ///
    /// # Errors
    ///
    /// [`SendTimeoutError::Timeout`] only.
    pub fn wait_for_receiver(&self, timeout: Duration) -> Result<(), SendTimeoutError> {
        self.core
            .wait_for_peers(Role::Recv, 1, Patience::timeout(timeout))
    }
}

/// Bytes of the ring lent to write one message in place. [`send`](Self::send) publishes
/// it; dropping the loan publishes nothing. Write it through [`LentMut`]'s methods
/// (`write_at`, `as_mut_ptr`, …).
///
/// The bytes are in shared memory: they start with whatever was there before.
#[derive(Debug)]
#[must_use = "a loan publishes nothing unless sent"]
pub struct SendLoan<'a> {
    core: &'a Core,
    state: &'a mut Producer,
    reserved: Reserved,
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
    pub fn send_len(self, len: usize) {
        assert!(
            len <= self.lent.len(),
            "cannot send {len} bytes of a loan of {}",
            self.lent.len()
        );
        let SendLoan {
            core,
            state,
            reserved,
            ..
        } = self;
        commit(core, state, reserved, len as u64);
    }
}

/// Publishes a reserved record and rings the data bell.
#[inline]
fn commit(core: &Core, state: &mut Producer, r: Reserved, len: u64) {
    ring(core).commit(state, r, len);
    core.producer().bell.ring(core.kernel(0));
}

/// The receiving end of an SPSC channel.
#[derive(Debug)]
pub struct Receiver {
    core: Core,
    state: Consumer,
}

impl Receiver {
    /// Opens (or creates, as `opts` says) the channel `name` and attaches as its receiver.
    ///
    /// # Errors
    ///
    /// [`ChannelOpenError::Busy`] if another live process is the receiver; see
    /// [`ChannelOpenError`].
    pub fn open(name: &str, opts: &ChannelOptions) -> Result<Receiver, ChannelOpenError> {
        let core = Core::open(
            name,
            opts,
            &wanted(name, opts)?,
            Role::Recv,
            Some("receiver"),
        )?;
        check_ring(&core)?;
        let state = ring(&core).consumer();
        Ok(Receiver { core, state })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// The ring's size in bytes.
    pub fn capacity(&self) -> u64 {
        self.core.info.capacity
    }

    fn next(&mut self, patience: Patience) -> Result<Found, Failure> {
        let Receiver { core, state } = self;
        let ring = ring(core);
        core.wait(0, patience, &mut || {
            ring.peek(state).map_err(Failure::Corrupt)
        })
    }

    fn release(&mut self, f: Found) {
        release(&self.core, &mut self.state, f);
    }

    fn recv_vec<E: FromFailure>(&mut self, patience: Patience) -> Result<Vec<u8>, E> {
        let mut buf = Vec::new();
        self.recv_into_with(&mut buf, patience)?;
        Ok(buf)
    }

    fn recv_into_with<E: FromFailure>(
        &mut self,
        buf: &mut Vec<u8>,
        patience: Patience,
    ) -> Result<usize, E> {
        let f = self.next(patience).map_err(|f| self.core.fail(f))?;
        let len = f.len as usize;
        buf.clear();
        buf.resize(len, 0);
        self.core
            .data()
            .read(f.payload, buf)
            .expect("a checked record is inside the ring");
        self.release(f);
        Ok(len)
    }

    /// Receives a message if one is there now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], [`TryRecvError::Disconnected`] (the sender is gone and
    /// everything was received), [`TryRecvError::Corrupt`].
    pub fn try_recv(&mut self) -> Result<Vec<u8>, TryRecvError> {
        self.recv_vec(Patience::Try)
    }

    /// Receives a message, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`], [`RecvError::Corrupt`].
    pub fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_vec(Patience::FOREVER)
    }

    /// Receives a message, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], and as [`recv`](Self::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_vec(Patience::timeout(timeout))
    }

    /// [`try_recv`](Self::try_recv) into `buf` (replacing its contents, reusing its
    /// allocation). Returns the message's length.
    ///
    /// # Errors
    ///
    /// As [`try_recv`](Self::try_recv).
    pub fn try_recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, TryRecvError> {
        self.recv_into_with(buf, Patience::Try)
    }

    /// [`recv`](Self::recv) into `buf` (replacing its contents, reusing its allocation).
    /// Returns the message's length.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_into(&mut self, buf: &mut Vec<u8>) -> Result<usize, RecvError> {
        self.recv_into_with(buf, Patience::FOREVER)
    }

    /// [`recv_timeout`](Self::recv_timeout) into `buf` (replacing its contents, reusing its
    /// allocation). Returns the message's length.
    ///
    /// # Errors
    ///
    /// As [`recv_timeout`](Self::recv_timeout).
    pub fn recv_into_timeout(
        &mut self,
        buf: &mut Vec<u8>,
        timeout: Duration,
    ) -> Result<usize, RecvTimeoutError> {
        self.recv_into_with(buf, Patience::timeout(timeout))
    }

    fn recv_value_with<T: Pod, E: FromFailure>(&mut self, patience: Patience) -> Result<T, E> {
        let f = self.next(patience).map_err(|f| self.core.fail(f))?;
        let mut value = T::zeroed();
        let bytes = bytemuck::bytes_of_mut(&mut value);
        let ok = f.len == bytes.len() as u64;
        if ok {
            self.core
                .data()
                .read(f.payload, bytes)
                .expect("a checked record is inside the ring");
        }
        self.release(f);
        if ok {
            Ok(value)
        } else {
            Err(self.core.fail(Failure::WrongSize {
                len: f.len,
                expected: std::mem::size_of::<T>() as u64,
            }))
        }
    }

    /// [`try_recv`](Self::try_recv) of a plain-old-data value sent with
    /// [`Sender::send_value`].
    ///
    /// # Errors
    ///
    /// [`TryRecvError::WrongSize`] if the message's length is not `size_of::<T>()` (the
    /// message is consumed); otherwise as [`try_recv`](Self::try_recv).
    pub fn try_recv_value<T: Pod>(&mut self) -> Result<T, TryRecvError> {
        self.recv_value_with(Patience::Try)
    }

    /// [`recv`](Self::recv) of a plain-old-data value sent with [`Sender::send_value`].
    ///
    /// # Errors
    ///
    /// [`RecvError::WrongSize`] if the message's length is not `size_of::<T>()` (the
    /// message is consumed); otherwise as [`recv`](Self::recv).
    pub fn recv_value<T: Pod>(&mut self) -> Result<T, RecvError> {
        self.recv_value_with(Patience::FOREVER)
    }

    /// [`recv_timeout`](Self::recv_timeout) of a plain-old-data value sent with
    /// [`Sender::send_value`].
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::WrongSize`] if the message's length is not `size_of::<T>()` (the
    /// message is consumed); otherwise as [`recv_timeout`](Self::recv_timeout).
    pub fn recv_value_timeout<T: Pod>(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.recv_value_with(Patience::timeout(timeout))
    }

    /// Borrows the next message in place, waiting as long as it takes. Its bytes stay the
    /// sender's to not overwrite until the guard is dropped.
    ///
    /// # Errors
    ///
    /// As [`recv`](Self::recv).
    pub fn recv_ref(&mut self) -> Result<RecvGuard<'_>, RecvError> {
        self.recv_ref_with(Patience::FOREVER)
    }

    /// [`recv_ref`](Self::recv_ref) if a message is there now.
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
        let found = self.next(patience).map_err(|f| self.core.fail(f))?;
        let Receiver { core, state } = self;
        let lent = core
            .data()
            .lend(found.payload, found.len as usize)
            .expect("a checked record is inside the ring");
        Ok(RecvGuard {
            core,
            state,
            found,
            lent,
            release: true,
        })
    }

    /// Whether a sender is attached now (no liveness check).
    pub fn has_sender(&self) -> bool {
        self.core.peers().any_active(Role::Send)
    }

    /// Waits until a sender is attached, up to `timeout` (`Duration::MAX`: no limit).
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] only.
    pub fn wait_for_sender(&self, timeout: Duration) -> Result<(), RecvTimeoutError> {
        self.core
            .wait_for_peers(Role::Send, 1, Patience::timeout(timeout))
    }
}

/// A message borrowed in place from the ring; the sender may reuse its bytes only after the
/// guard is dropped. Read it through [`Lent`]'s methods (`read_at`, `to_vec`, `as_ptr`, …).
#[derive(Debug)]
pub struct RecvGuard<'a> {
    core: &'a Core,
    state: &'a mut Consumer,
    found: Found,
    lent: Lent<'a>,
    /// Whether dropping the guard frees the message (false after [`RecvGuard::reject`]).
    release: bool,
}

impl RecvGuard<'_> {
    /// Whether a sender is attached now (no liveness check), asked while the message is
    /// still held.
    pub fn has_sender(&self) -> bool {
        self.core.peers().any_active(Role::Send)
    }

    /// Leaves the message in the ring, unconfirmed, instead of freeing it: the sender's
    /// [`Sender::wait_received`] does not see it taken, and a receiver that attaches later
    /// (after this one closes or dies) gets it again. For a receiver that cannot accept
    /// what it was sent (a failed checksum, no room to store it) and must not acknowledge
    /// it; this endpoint should then close, since the message stays first in line.
    pub fn reject(mut self) {
        self.release = false;
    }
}

impl<'a> std::ops::Deref for RecvGuard<'a> {
    type Target = Lent<'a>;
    fn deref(&self) -> &Lent<'a> {
        &self.lent
    }
}

impl Drop for RecvGuard<'_> {
    fn drop(&mut self) {
        if self.release {
            release(self.core, self.state, self.found);
        }
    }
}

/// Frees a received record and rings the space bell.
#[inline]
fn release(core: &Core, state: &mut Consumer, f: Found) {
    ring(core).release(state, f);
    core.consumer().bell.ring(core.kernel(1));
}
