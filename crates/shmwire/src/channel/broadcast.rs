//! One publisher, many subscribers: every subscriber sees every message, at its own pace,
//! unless it falls a whole ring behind.
//!
//! The [`Publisher`] never waits: it overwrites the oldest slot. A [`Subscriber`] keeps its
//! own cursor; one that fell behind gets [`TryRecvError::Lagged`] (or the `Lagged` of
//! [`RecvError`] and [`RecvTimeoutError`]) with the number of messages it
//! missed, then continues from the oldest one still there, and is never handed a message that
//! was being overwritten while it copied it. A subscriber that joins late starts at the
//! newest message already published (or at the next one, with [`Subscriber::open_from_next`]).
//!
//! ```
//! use shmwire::channel::{broadcast, ChannelOptions};
//! # let name = format!("doc-broadcast-{}", std::process::id());
//! let opts = ChannelOptions::new().capacity(4).message_size(64);
//! let mut publisher = broadcast::Publisher::open(&name, &opts)?;
//! let mut a = broadcast::Subscriber::open(&name, &opts)?;
//! for i in 0..6u32 {
//!     publisher.send(&i.to_le_bytes())?;
//! }
//! // `a` joined before message 0, but the ring holds 4: 0 and 1 were overwritten.
//! assert_eq!(a.try_recv().unwrap_err().to_string().contains("2 messages"), true);
//! assert_eq!(a.try_recv()?, 2u32.to_le_bytes());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The slot protocol (a seqlock per slot)
//!
//! Message `m` goes to slot `m mod N`, whose `seq` word reads `2m + 1` while it is written
//! and `2m + 2` once complete. The publisher stores `seq = 2m + 1` (Relaxed), a Release fence
//! (pairs with the subscriber's Acquire fence: a copy that saw any new byte sees the odd
//! seq on re-check), writes length and payload, stores `seq = 2m + 2` (Release), then
//! `tail = m + 1` (Release; pairs with the subscriber's Acquire load of `tail`) and rings.
//! A subscriber reading message `m` loads `seq` (Acquire), requires `2m + 2`, copies, issues
//! an Acquire fence and loads `seq` again: if it changed, the copy may be torn and is
//! discarded as lagged. A publisher killed mid-message leaves `tail` before it: the message
//! was never visible.

use std::time::{Duration, Instant};

use super::error::{Failure, FromFailure};
use super::mpmc::{check_slots, layout, SlotCtl, Slots};
use super::peers::Role;
use super::ring::Mem;
use super::wait::Patience;
use super::{
    ChannelOpenError, ChannelOptions, Core, Flavor, RecvError, RecvTimeoutError, SendError,
    TryRecvError,
};
use crate::primitive::{self, AtomicU64, Ordering};
use crate::view::Region;

/// Default number of slots.
pub const DEFAULT_CAPACITY: u64 = 256;

/// How often a publisher checks whether subscribers died.
const SWEEP_EVERY: Duration = Duration::from_millis(100);

/// The publishing end of a broadcast channel (one at a time).
#[derive(Debug)]
pub struct Publisher {
    core: Core,
    slots: Slots,
    tail: u64,
    last_sweep: Instant,
}

impl Publisher {
    /// Opens (or creates, as `opts` says) the channel `name` and attaches as its publisher.
    /// A new publisher continues the numbering where the previous one stopped.
    ///
    /// # Errors
    ///
    /// [`ChannelOpenError::Busy`] if another live process publishes; see
    /// [`ChannelOpenError`].
    pub fn open(name: &str, opts: &ChannelOptions) -> Result<Publisher, ChannelOpenError> {
        let (wanted, _) = layout(name, opts, Flavor::Broadcast, DEFAULT_CAPACITY)?;
        let core = Core::open(name, opts, &wanted, Role::Send, Some("publisher"))?;
        let slots = check_slots(&core)?;
        // ORDERING: Acquire — pairs with the Release store of `tail` by a previous publisher.
        let tail = core.producer().cursor.load(Ordering::Acquire);
        Ok(Publisher {
            core,
            slots,
            tail,
            last_sweep: Instant::now(),
        })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// The largest message.
    pub fn message_size(&self) -> u64 {
        self.slots.size
    }

    /// Publishes `msg`, overwriting the oldest message. Never waits.
    ///
    /// A publisher has nothing to wait for, so it is never told that its subscribers are
    /// gone; [`subscribers`](Self::subscribers) says how many are attached.
    ///
    /// # Errors
    ///
    /// [`SendError::TooLarge`] only.
    pub fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let len = msg.len() as u64;
        if len > self.slots.size {
            return Err(self.core.fail(Failure::TooLarge {
                len,
                max: self.slots.size,
            }));
        }
        let m = self.tail;
        self.lanes().publish(m, msg);
        self.tail = m.wrapping_add(1);
        self.core.producer().bell.ring(self.core.kernel(0));
        Ok(())
    }

    fn lanes(&self) -> Lanes<'_, Region<'_>> {
        lanes(&self.core, self.slots)
    }

    /// Publishes a plain-old-data value as its bytes.
    ///
    /// # Errors
    ///
    /// As [`send`](Self::send).
    pub fn send_value<T: bytemuck::Pod>(&mut self, value: &T) -> Result<(), SendError> {
        self.send(bytemuck::bytes_of(value))
    }

    /// Subscribers attached now; dead ones are reaped at most every 100 ms.
    pub fn subscribers(&mut self) -> usize {
        if self.last_sweep.elapsed() >= SWEEP_EVERY {
            self.core.peers().sweep();
            self.last_sweep = Instant::now();
        }
        self.core.peers().active(Role::Recv)
    }

    /// Waits until at least `n` subscribers are attached, up to `timeout` (`Duration::MAX`:
    /// no limit), sleeping on the channel's doorbell (an attaching endpoint rings it), so
    /// that messages published next reach them all.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`] only.
    pub fn wait_for_subscribers(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<(), RecvTimeoutError> {
        self.core
            .wait_for_peers(Role::Recv, n, Patience::timeout(timeout))
    }
}

/// A subscribing end of a broadcast channel.
#[derive(Debug)]
pub struct Subscriber {
    core: Core,
    slots: Slots,
    next: u64,
}

/// What a look at the next slot found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Look {
    Message(Vec<u8>),
    Lagged(u64),
    Corrupt(String),
}

impl Subscriber {
    /// Opens (or creates, as `opts` says) the channel `name` and subscribes, starting at the
    /// newest message already published.
    ///
    /// # Errors
    ///
    /// See [`ChannelOpenError`].
    pub fn open(name: &str, opts: &ChannelOptions) -> Result<Subscriber, ChannelOpenError> {
        let mut s = Self::open_from_next(name, opts)?;
        s.next = s.next.saturating_sub(1);
        Ok(s)
    }

    /// As [`open`](Self::open), but starts with the next message published.
    ///
    /// # Errors
    ///
    /// See [`ChannelOpenError`].
    pub fn open_from_next(
        name: &str,
        opts: &ChannelOptions,
    ) -> Result<Subscriber, ChannelOpenError> {
        let (wanted, _) = layout(name, opts, Flavor::Broadcast, DEFAULT_CAPACITY)?;
        // The starting position is read before we attach: a publisher waiting for us
        // (`wait_for_subscribers`) publishes only after, so we miss nothing it sends then.
        let mut next = 0;
        let core = Core::open_prepared(name, opts, &wanted, Role::Recv, None, &mut |core| {
            // ORDERING: Acquire — pairs with the Release store of `tail` in `send`.
            next = core.producer().cursor.load(Ordering::Acquire);
        })?;
        let slots = check_slots(&core)?;
        Ok(Subscriber { core, slots, next })
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        self.core.name()
    }

    fn recv_with<E: FromFailure>(&mut self, patience: Patience) -> Result<Vec<u8>, E> {
        let Subscriber { core, slots, next } = self;
        let l = lanes(core, *slots);
        let got = core.wait(0, patience, &mut || match l.look(next) {
            None => Ok(None),
            Some(Look::Message(m)) => Ok(Some(m)),
            Some(Look::Lagged(missed)) => Err(Failure::Lagged(missed)),
            Some(Look::Corrupt(reason)) => Err(Failure::Corrupt(reason)),
        });
        got.map_err(|f| core.fail(f))
    }

    /// Receives the next message if it is there now.
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`], [`TryRecvError::Lagged`] (then receive again),
    /// [`TryRecvError::Disconnected`] (the publisher is gone and every message was
    /// received), [`TryRecvError::Corrupt`].
    pub fn try_recv(&mut self) -> Result<Vec<u8>, TryRecvError> {
        self.recv_with(Patience::Try)
    }

    /// Receives the next message, waiting as long as it takes.
    ///
    /// # Errors
    ///
    /// [`RecvError::Lagged`] (then receive again), [`RecvError::Disconnected`],
    /// [`RecvError::Corrupt`].
    pub fn recv(&mut self) -> Result<Vec<u8>, RecvError> {
        self.recv_with(Patience::FOREVER)
    }

    /// Receives the next message, waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], and as [`recv`](Self::recv).
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Vec<u8>, RecvTimeoutError> {
        self.recv_with(Patience::timeout(timeout))
    }

    fn recv_value_with<T: bytemuck::Pod, E: FromFailure>(
        &mut self,
        patience: Patience,
    ) -> Result<T, E> {
        let msg = self.recv_with::<E>(patience)?;
        bytemuck::try_pod_read_unaligned(&msg).map_err(|_| {
            self.core.fail(Failure::WrongSize {
                len: msg.len() as u64,
                expected: std::mem::size_of::<T>() as u64,
            })
        })
    }

    /// [`try_recv`](Self::try_recv) of a plain-old-data value sent with
    /// [`Publisher::send_value`].
    ///
    /// # Errors
    ///
    /// [`TryRecvError::WrongSize`] if the message is not `size_of::<T>()` bytes (it is
    /// consumed); otherwise as [`try_recv`](Self::try_recv).
    pub fn try_recv_value<T: bytemuck::Pod>(&mut self) -> Result<T, TryRecvError> {
        self.recv_value_with(Patience::Try)
    }

    /// [`recv`](Self::recv) of a plain-old-data value sent with [`Publisher::send_value`].
    ///
    /// # Errors
    ///
    /// [`RecvError::WrongSize`] if the message is not `size_of::<T>()` bytes (it is
    /// consumed); otherwise as [`recv`](Self::recv).
    pub fn recv_value<T: bytemuck::Pod>(&mut self) -> Result<T, RecvError> {
        self.recv_value_with(Patience::FOREVER)
    }

    /// [`recv_timeout`](Self::recv_timeout) of a plain-old-data value sent with
    /// [`Publisher::send_value`].
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::WrongSize`] if the message is not `size_of::<T>()` bytes (it is
    /// consumed); otherwise as [`recv_timeout`](Self::recv_timeout).
    pub fn recv_value_timeout<T: bytemuck::Pod>(
        &mut self,
        timeout: Duration,
    ) -> Result<T, RecvTimeoutError> {
        self.recv_value_with(Patience::timeout(timeout))
    }

    /// Whether the publisher is attached now (no liveness check).
    pub fn has_publisher(&self) -> bool {
        self.core.peers().any_active(Role::Send)
    }
}

/// The seq word of slot holding complete message `m`: `2m + 2` (wrapping).
fn seq_of(m: u64) -> u64 {
    m.wrapping_mul(2).wrapping_add(2)
}

/// The broadcast protocol over a `tail` cursor, slot controls and payload memory (the
/// channel's data area, or loom-checked memory in the models).
pub(crate) struct Lanes<'a, M: Mem> {
    pub(crate) tail: &'a AtomicU64,
    pub(crate) ctl: &'a [SlotCtl],
    pub(crate) mem: M,
    pub(crate) slots: Slots,
}

fn lanes(core: &Core, slots: Slots) -> Lanes<'_, Region<'_>> {
    let mem = core.data();
    Lanes {
        tail: &core.producer().cursor,
        ctl: slots.ctl(&mem),
        mem,
        slots,
    }
}

impl<M: Mem> Lanes<'_, M> {
    /// Writes message `m` into its slot and publishes it (`tail = m + 1`).
    pub(crate) fn publish(&self, m: u64, msg: &[u8]) {
        let i = m % self.slots.n;
        let ctl = &self.ctl[i as usize];
        // Message numbers come from shared memory (a new publisher continues from `tail`):
        // the arithmetic wraps, so that a hostile `tail` near `u64::MAX` is wrong data, not
        // an overflow.
        ctl.state
            .store(seq_of(m).wrapping_sub(1), Ordering::Relaxed);
        // ORDERING: Release fence — orders the odd seq before the payload writes; pairs with
        // the Acquire fence in `look`.
        primitive::fence(Ordering::Release);
        ctl.len.store(msg.len() as u64, Ordering::Relaxed);
        self.mem
            .put(self.slots.payload(i), msg)
            .expect("slot payloads are inside the validated data area");
        // ORDERING: Release — completes the slot; pairs with the Acquire load in `look`.
        ctl.state.store(seq_of(m), Ordering::Release);
        // ORDERING: Release — pairs with the Acquire load of `tail` in `look`.
        self.tail.store(m.wrapping_add(1), Ordering::Release);
    }

    /// Looks at message `*next`, if published.
    pub(crate) fn look(&self, next: &mut u64) -> Option<Look> {
        let n = self.slots.n;
        // ORDERING: Acquire — pairs with the Release store of `tail` in `publish`.
        let tail = self.tail.load(Ordering::Acquire);
        if tail == *next {
            return None;
        }
        if tail < *next {
            // A new channel session restarted the numbering: follow it.
            *next = tail;
            return None;
        }
        if tail - *next > n {
            let oldest = tail - n;
            let missed = oldest - *next;
            *next = oldest;
            return Some(Look::Lagged(missed));
        }
        let m = *next;
        let i = m % n;
        let ctl = &self.ctl[i as usize];
        // ORDERING: Acquire — pairs with the Release store of the even seq in `publish`.
        let s1 = ctl.state.load(Ordering::Acquire);
        if s1 != seq_of(m) {
            if s1 > seq_of(m) {
                // Overwritten by a later lap already.
                return Some(self.lag_from(next, tail));
            }
            return Some(Look::Corrupt(format!(
                "slot {i} holds sequence {s1}, but message {m} was published"
            )));
        }
        let len = ctl.len.load(Ordering::Relaxed);
        let mut buf = vec![0; len.min(self.slots.size) as usize];
        if len <= self.slots.size {
            self.mem
                .get(self.slots.payload(i), &mut buf)
                .expect("slot payloads are inside the validated data area");
        }
        // ORDERING: Acquire fence — pairs with the Release fence in `publish`: if our copy
        // (or length) saw anything of a newer message, the load below sees its odd seq.
        primitive::fence(Ordering::Acquire);
        if ctl.state.load(Ordering::Relaxed) != s1 {
            return Some(self.lag_from(next, tail));
        }
        if len > self.slots.size {
            return Some(Look::Corrupt(format!(
                "slot {i} claims {len} bytes, more than the slot size {}",
                self.slots.size
            )));
        }
        *next = m + 1;
        Some(Look::Message(buf))
    }

    /// Skips to the oldest message that is safe to read after an overwrite was seen.
    fn lag_from(&self, next: &mut u64, tail: u64) -> Look {
        // ORDERING: Acquire — as in `look`.
        let now = self.tail.load(Ordering::Acquire).max(tail);
        // One past the oldest: the oldest itself may be the next to be overwritten.
        let oldest = now
            .saturating_add(1)
            .saturating_sub(self.slots.n)
            .max(*next + 1);
        let missed = oldest - *next;
        *next = oldest;
        Look::Lagged(missed)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A `tail` a hostile peer set to `u64::MAX`: subscribers and a new publisher carry on
    /// (with wrong data at worst), where `2m + 2` and `m + 1` used to overflow (debug builds).
    #[test]
    fn message_numbers_at_u64_max_wrap_instead_of_overflowing() {
        let name = format!("swu-bc-wrap-{}", std::process::id());
        // Removed however the test ends.
        struct Remove<'a>(&'a str);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                let _ = crate::SegmentOptions::new().remove(self.0);
            }
        }
        let _remove = Remove(&name);
        let opts = ChannelOptions::new().capacity(4).message_size(16);
        let mut early = Subscriber::open(&name, &opts).unwrap();
        early
            .core
            .producer()
            .cursor
            .store(u64::MAX, Ordering::Relaxed);
        // Joins at message u64::MAX - 1, whose seq wraps to 0: that of an empty slot, so it
        // may be handed an empty message (wrong data), or an error; never a panic.
        let mut late = Subscriber::open(&name, &opts).unwrap();
        let _ = late.try_recv();
        let mut publisher = Publisher::open(&name, &opts).unwrap();
        publisher.send(b"wraps").unwrap();
        publisher.send(b"after").unwrap();
        // `early` waits at message 0, which the publisher reached by wrapping.
        assert_eq!(early.try_recv().unwrap(), b"after");
        let _ = late.try_recv();
        drop((early, late, publisher));
    }
}
