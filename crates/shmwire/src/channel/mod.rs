//! Message channels between processes, each living in one named segment.
//!
//! | channel | shape | loss | zero-copy |
//! |---|---|---|---|
//! | [`spsc`] | one sender, one receiver; variable-length byte messages in a ring | never | [`spsc::Sender::loan`], [`spsc::Receiver::recv_ref`] |
//! | [`mpmc`] | many senders, many receivers; fixed-size slots | never | [`mpmc::Sender::loan`], [`mpmc::Receiver::recv_ref`] |
//! | [`broadcast`] | one publisher, many subscribers, each with its own cursor | a slow subscriber is told how many it missed | no (copies, checked) |
//! | [`blackboard`] | the latest value of a plain-old-data type | older values | no (copies, checked) |
//!
//! Both ends open a channel by name; whichever comes first creates it:
//!
//! ```
//! use shmwire::channel::{spsc, ChannelOptions};
//! # let name = format!("doc-channel-{}", std::process::id());
//! let opts = ChannelOptions::new().capacity(1 << 20);
//! // Process A
//! let mut tx = spsc::Sender::open(&name, &opts)?;
//! tx.send(b"frame 1")?;
//! // Process B
//! let mut rx = spsc::Receiver::open(&name, &opts)?;
//! assert_eq!(rx.recv()?, b"frame 1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Every operation comes as `try_…` (never waits), blocking, and `…_timeout`, as in
//! crossbeam. A blocked operation waits as its [`WaitStrategy`] says: spin, spin then sleep
//! (the default), or sleep. The sleeping side announces itself in shared memory, and the
//! other side makes a wake-up system call only then: a stream between two busy processes
//! makes no system calls at all.
//!
//! # Peers
//!
//! Each endpoint registers its process (pid + start time) in the channel. A receiver whose
//! sender is gone — dropped, or killed — gets [`RecvError::Disconnected`] once it has received
//! everything that was sent, instead of waiting for ever; a sender whose receivers are all
//! gone gets [`SendError::Disconnected`] when it would have to wait for them. A clean close
//! is seen at once; a death within about 20 ms of waiting (liveness checks between sleeps).
//! "Gone" is about the current session: an endpoint that attaches when nobody else is
//! attached starts a new one and waits for a peer to come, even if messages of the last
//! session are still queued (it receives them).
//! The segment is removed when the last endpoint closes, unless an SPSC or MPMC queue still
//! holds messages for a receiver to come (POSIX; on Windows a segment dies with its last
//! handle, so messages sent with nobody attached are lost there). Endpoints killed without
//! closing leave the segment behind: the next endpoint to attach reuses it and reaps the dead
//! entries.
//!
//! # Messages are never torn
//!
//! A message becomes visible only when it is complete: a sender killed in the middle of a
//! message leaves nothing a receiver would see (the next sender overwrites it, and `mpmc`
//! receivers skip the slot of a dead sender). Nothing in the channel's shared state is
//! trusted: cursors, lengths and slot states are checked before use, and a corrupt value is
//! an error ([`RecvError::Corrupt`]), never a read outside the channel.
//!
//! # Typed messages
//!
//! Plain-old-data values ([`bytemuck::Pod`]) go through `send_value` / `recv_value` (or the
//! [`blackboard`]), copied as bytes with no `unsafe` in your code.
//! [`ChannelOptions::message_type`] records the type's size and name in the channel, so an
//! endpoint expecting another type gets [`ChannelOpenError::Mismatch`].
//!
//! # Memory
//!
//! Endpoints view their own segment's mapping through `crate::view` (no unsafe code here):
//! the control structures (peer table, cursor lines) are atomics-only types at fixed offsets
//! of the first payload page, checked at open to be inside the read-write mapping; message
//! bytes are copied in and out with bounds checks against the data area's size, a private
//! copy made at open.

pub mod blackboard;
pub mod broadcast;
mod error;
mod leftover;
#[cfg(all(test, loom))]
mod loom_models;
pub mod mpmc;
pub(crate) mod peers;
mod ring;
pub mod spsc;
pub mod stream;
mod wait;

use std::cell::Cell;
use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use shmwire_platform::{KernelSemaphore, NamedSemaphore};

pub use crate::view::{Lent, LentMut};
pub use error::{
    ChannelOpenError, RecvError, RecvTimeoutError, SendError, SendTimeoutError, TryRecvError,
    TrySendError,
};
use error::{Failure, FromFailure};
pub(crate) use leftover::{examine, retire, unretire, Leftover};
pub use wait::WaitStrategy;

use crate::primitive::{AtomicU32, AtomicU64, Ordering};
use crate::view::{Placed, PlacedRange, Region};
use crate::{CreationMode, Kind, OpenError, OpenOrCreateError, Segment, SegmentOptions};
use peers::{AttachError, RawPeers, Role, Ticket};
use wait::{Ended, Patience, RawBell};

/// `"SWCH"`: the tag of a channel description (layout version 1).
const TAG: u32 = u32::from_le_bytes(*b"SWCH");
const VERSION: u32 = 1;

/// Payload offsets of the control structures (docs/layout.md, "Channels").
const PEERS: usize = 128;
const PRODUCER: usize = 1280;
const CONSUMER: usize = 1408;
/// Where the data area starts: page-aligned, so that its addresses modulo 4096 are known.
const DATA: u64 = 4096;

/// The shapes of channel, as recorded in the segment header's kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flavor {
    Spsc = 1,
    Mpmc = 2,
    Broadcast = 3,
    Blackboard = 4,
}

impl Flavor {
    fn kind(self) -> Kind {
        match self {
            Flavor::Spsc => Kind::SPSC,
            Flavor::Mpmc => Kind::MPMC,
            Flavor::Broadcast => Kind::BROADCAST,
            Flavor::Blackboard => Kind::BLACKBOARD,
        }
    }
}

/// The channel's description, first in its payload. Written once by the creator before the
/// segment is published; every opener copies it out and validates it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
pub(crate) struct ChannelInfo {
    tag: u32,
    version: u32,
    flavor: u32,
    /// Size of the message type, if the channel is typed (0: bytes).
    elem_size: u32,
    /// SPSC: ring bytes (a power of two). Others: slots.
    capacity: u64,
    /// Largest message (SPSC) or slot payload (others), in bytes.
    slot_size: u64,
    data_offset: u64,
    data_len: u64,
    /// xxh3 of the message type's name, if typed (0: bytes).
    type_hash: u64,
    _reserved: [u64; 9],
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::size_of;
    assert!(size_of::<ChannelInfo>() == 128);
    assert!(size_of::<RawPeers>() + PEERS <= PRODUCER);
    assert!(size_of::<Line>() == 128 && CONSUMER + 128 <= DATA as usize);
};

/// A cursor and the doorbell that announces its moves, alone on their 128 bytes.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct Line {
    cursor: AtomicU64,
    bell: RawBell,
    _reserved: [AtomicU32; 28],
}

impl Line {
    #[cfg(test)]
    pub(crate) fn new() -> Line {
        Line {
            cursor: AtomicU64::new(0),
            bell: RawBell::new(),
            _reserved: std::array::from_fn(|_| AtomicU32::new(0)),
        }
    }
}

/// How to open or create a channel. Parameters left unset are taken from the channel if it
/// exists, or from the defaults if this call creates it.
#[derive(Clone, Debug, Default)]
pub struct ChannelOptions {
    capacity: Option<u64>,
    /// Whether an existing channel must have `capacity` (else it applies only at create).
    capacity_required: bool,
    message_size: Option<u64>,
    elem: Option<(u32, u64, &'static str)>,
    wait: WaitStrategy,
    mode: Option<u32>,
    global: bool,
    creation: CreationMode,
}

impl ChannelOptions {
    /// Defaults: open or create, capacity and message size from the channel (or each
    /// flavor's defaults), [`WaitStrategy::default`], owner-only permissions.
    pub fn new() -> Self {
        Self::default()
    }

    /// SPSC: ring size in bytes (rounded up to a power of two, at least 16 KiB; a message
    /// can be up to half of it less 4160 bytes). MPMC and broadcast: number of slots. An
    /// existing channel of another capacity is [`ChannelOpenError::Mismatch`].
    pub fn capacity(mut self, capacity: u64) -> Self {
        self.capacity = Some(capacity);
        self.capacity_required = true;
        self
    }

    /// As [`capacity`](Self::capacity), but only for a channel this call creates: an
    /// existing channel is opened whatever its capacity. For a program that has a preferred
    /// size but talks to whichever end came first (`shmwire send` and `recv` use it).
    pub fn capacity_if_created(mut self, capacity: u64) -> Self {
        self.capacity = Some(capacity);
        self.capacity_required = false;
        self
    }

    /// MPMC and broadcast: the largest message, i.e. the payload size of a slot.
    pub fn message_size(mut self, bytes: u64) -> Self {
        self.message_size = Some(bytes);
        self
    }

    /// Records (at create) or checks (at open) that the channel carries values of `T`: its
    /// size and type name. For slot channels the message size becomes `size_of::<T>()`.
    pub fn message_type<T: Pod>(mut self) -> Self {
        let name = std::any::type_name::<T>();
        self.elem = Some((
            std::mem::size_of::<T>() as u32,
            xxhash_rust::xxh3::xxh3_64(name.as_bytes()),
            name,
        ));
        self
    }

    /// How blocked operations wait.
    pub fn wait(mut self, strategy: WaitStrategy) -> Self {
        self.wait = strategy;
        self
    }

    /// Permission bits if this call creates the segment (default `0o600`).
    pub fn mode(mut self, mode: u32) -> Self {
        self.mode = Some(mode);
        self
    }

    /// Windows: the `Global\` namespace (see [`SegmentOptions::global`]).
    pub fn global(mut self, global: bool) -> Self {
        self.global = global;
        self
    }

    /// Whether opening may create the channel (default [`CreationMode::OpenOrCreate`]:
    /// whichever end comes first creates it). With [`CreationMode::Open`] a missing channel
    /// is an error for which [`ChannelOpenError::is_not_found`] is true; with
    /// [`CreationMode::Create`] an existing one is an error.
    pub fn creation(mut self, mode: CreationMode) -> Self {
        self.creation = mode;
        self
    }

    /// The wait strategy chosen.
    pub fn wait_strategy(&self) -> WaitStrategy {
        self.wait
    }
}

/// What a flavor asks of the channel: the description it would create, and how to compare.
pub(crate) struct Wanted {
    flavor: Flavor,
    /// The description to create with (capacity etc. already resolved from options).
    info: ChannelInfo,
    /// Whether the options fixed capacity / slot size (else any existing value is fine).
    capacity_given: bool,
    slot_given: bool,
}

impl Wanted {
    pub(crate) fn new(
        flavor: Flavor,
        opts: &ChannelOptions,
        capacity: u64,
        slot_size: u64,
        data_len: u64,
    ) -> Wanted {
        let (elem_size, type_hash) = opts.elem.map_or((0, 0), |(s, h, _)| (s, h));
        Wanted {
            flavor,
            info: ChannelInfo {
                tag: TAG,
                version: VERSION,
                flavor: flavor as u32,
                elem_size,
                capacity,
                slot_size,
                data_offset: DATA,
                data_len,
                type_hash,
                _reserved: [0; 9],
            },
            capacity_given: opts.capacity.is_some() && opts.capacity_required,
            slot_given: opts.message_size.is_some() || opts.elem.is_some(),
        }
    }
}

/// Where an endpoint's control structures and data area are, checked once at open against
/// the segment's mapping (so that the hot path only compares the mapping's identity).
#[derive(Debug)]
struct Places {
    peers: Placed<RawPeers>,
    producer: Placed<Line>,
    consumer: Placed<Line>,
    data: PlacedRange,
}

impl Places {
    fn check(seg: &Segment, info: &ChannelInfo) -> Option<Places> {
        let m = &seg.payload;
        Some(Places {
            peers: m.place(PEERS as u64)?,
            producer: m.place(PRODUCER as u64)?,
            consumer: m.place(CONSUMER as u64)?,
            data: m.place_range(DATA, usize::try_from(info.data_len).ok()?)?,
        })
    }
}

/// What every endpoint has: its segment, its validated description, its place in the peer
/// table, and the wake-up objects.
pub(crate) struct Core {
    seg: Segment,
    /// The control structures and the data area, checked once at open.
    places: Places,
    name: Arc<str>,
    info: ChannelInfo,
    role: Role,
    /// `None` until attached (an endpoint refused at attach detaches nothing).
    ticket: Option<Ticket>,
    strategy: WaitStrategy,
    /// Windows: the kernel semaphores behind the producer's and the consumer's bell.
    kernel: [Option<NamedSemaphore>; 2],
    /// When the peers' liveness was last checked.
    last_sweep: Cell<std::time::Instant>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("capacity", &self.info.capacity)
            .field("slot_size", &self.info.slot_size)
            .finish()
    }
}

impl Core {
    /// Opens (or creates) the channel `name` of `wanted`'s flavor and attaches in `role`.
    pub(crate) fn open(
        name: &str,
        opts: &ChannelOptions,
        wanted: &Wanted,
        role: Role,
        exclusive: Option<&'static str>,
    ) -> Result<Core, ChannelOpenError> {
        Self::open_prepared(name, opts, wanted, role, exclusive, &mut |_| {})
    }

    /// [`open`](Self::open), calling `before_attach` on the validated channel just before
    /// this endpoint becomes visible to its peers: what it reads there (a broadcast
    /// subscriber's starting position) is settled before anyone waiting for the endpoint
    /// (`wait_for_subscribers`) is told it is there.
    pub(crate) fn open_prepared(
        name: &str,
        opts: &ChannelOptions,
        wanted: &Wanted,
        role: Role,
        exclusive: Option<&'static str>,
        before_attach: &mut dyn FnMut(&Core),
    ) -> Result<Core, ChannelOpenError> {
        let mut segopts = SegmentOptions::new()
            .kind(wanted.flavor.kind())
            .global(opts.global)
            .remove_on_drop(false)
            .type_tag(wanted.info.type_hash);
        if let Some(mode) = opts.mode {
            segopts = segopts.mode(mode);
        }
        let size = DATA + wanted.info.data_len;
        let invalid = |reason: String| ChannelOpenError::Invalid {
            name: name.to_owned(),
            reason,
        };
        if wanted.info.data_len == 0 || size > isize::MAX as u64 {
            return Err(invalid("the channel would be empty or too large".into()));
        }
        for _ in 0..100 {
            let core = Self::open_once(
                name,
                opts,
                wanted,
                role,
                exclusive,
                &segopts,
                size,
                before_attach,
            )?;
            if !core.peers().closing() {
                return Ok(core);
            }
            // The last endpoint is removing this segment's name: leave quietly (no removal,
            // no wake-ups) and open again, which finds the name gone or a new channel.
            let mut core = core;
            if let Some(t) = core.ticket.take() {
                core.peers().detach(t, role);
            }
            std::thread::yield_now();
        }
        Err(ChannelOpenError::Corrupt {
            name: name.to_owned(),
            reason: "it stayed in the middle of being removed".into(),
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn open_once(
        name: &str,
        opts: &ChannelOptions,
        wanted: &Wanted,
        role: Role,
        exclusive: Option<&'static str>,
        segopts: &SegmentOptions,
        size: u64,
        before_attach: &mut dyn FnMut(&Core),
    ) -> Result<Core, ChannelOpenError> {
        let mut tries = 0;
        let seg = loop {
            tries += 1;
            let opened = match opts.creation {
                CreationMode::Create => {
                    segopts.create_with(name, size, |seg| init(seg, &wanted.info))
                }
                mode => match segopts.open(name) {
                    Ok(seg) => Ok(seg),
                    Err(OpenError::NotFound { .. }) if mode == CreationMode::OpenOrCreate => {
                        segopts
                            .open_or_create(name, size, |seg| init(seg, &wanted.info))
                            .map(|(seg, _)| seg)
                    }
                    Err(e) => Err(e.into()),
                },
            };
            match opened {
                Ok(seg) => break seg,
                // Created concurrently with another size: open what is there.
                Err(OpenOrCreateError::Open(OpenError::WrongSize { .. })) if tries < 4 => {}
                Err(e) => return Err(e.into()),
            }
        };
        let info = validate(&seg, name, wanted)?;
        // The control page is viewed in place (`Core::at`): it needs a read-write mapping.
        if !seg.is_writable() {
            return Err(ChannelOpenError::ReadOnly {
                name: name.to_owned(),
            });
        }
        let kernel = if shmwire_platform::KERNEL_SYNC_OBJECTS {
            let bell = |offset: usize| {
                NamedSemaphore::open_or_create(
                    seg.object_name(),
                    &format!("bell-{offset}"),
                    0,
                    wait::BELL_MAX,
                )
                .map(|(s, _)| Some(s))
                .map_err(|source| ChannelOpenError::Os {
                    name: name.to_owned(),
                    source,
                })
            };
            [bell(PRODUCER)?, bell(CONSUMER)?]
        } else {
            [None, None]
        };
        let places = Places::check(&seg, &info).ok_or_else(|| ChannelOpenError::Corrupt {
            name: name.to_owned(),
            reason: "its control page or data area does not fit the segment".into(),
        })?;
        let mut core = Core {
            seg,
            places,
            name: name.into(),
            info,
            role,
            ticket: None,
            strategy: opts.wait,
            kernel,
            last_sweep: Cell::new(std::time::Instant::now()),
        };
        before_attach(&core);
        let me = crate::current_process();
        let ticket = core
            .peers()
            .attach(me, role, exclusive.is_some())
            .map_err(|e| match e {
                AttachError::Full => ChannelOpenError::TooManyPeers {
                    name: name.to_owned(),
                },
                AttachError::Busy { pid } => ChannelOpenError::Busy {
                    name: name.to_owned(),
                    role: exclusive.unwrap_or("peer"),
                    pid,
                },
            })?;
        core.ticket = Some(ticket);
        // Someone waiting for a peer to arrive looks again.
        core.ring_both();
        Ok(core)
    }

    #[inline]
    pub(crate) fn peers(&self) -> &RawPeers {
        self.seg.payload.get(&self.places.peers)
    }

    #[inline]
    pub(crate) fn producer(&self) -> &Line {
        self.seg.payload.get(&self.places.producer)
    }

    #[inline]
    pub(crate) fn consumer(&self) -> &Line {
        self.seg.payload.get(&self.places.consumer)
    }

    /// The kernel semaphore of the producer's (`0`) or consumer's (`1`) bell.
    #[inline]
    fn kernel(&self, which: usize) -> Option<&NamedSemaphore> {
        self.kernel[which].as_ref()
    }

    /// Wakes everyone sleeping on either bell.
    fn ring_both(&self) {
        self.producer().bell.ring(self.kernel(0));
        self.consumer().bell.ring(self.kernel(1));
    }

    /// The data area (validated at open: `DATA + data_len` fits the payload).
    #[inline]
    pub(crate) fn data(&self) -> Region<'_> {
        self.seg.payload.region_at(&self.places.data)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// This endpoint's peer entry.
    pub(crate) fn ticket(&self) -> Ticket {
        self.ticket.expect("an open endpoint is attached")
    }

    /// Whether the other side is gone; `sweep` (or a last sweep older than a wait slice)
    /// also reaps dead peers first (slow: liveness checks).
    fn other_side_gone(&self, sweep: bool) -> bool {
        let peers = self.peers();
        let now = std::time::Instant::now();
        if sweep || now.duration_since(self.last_sweep.get()) >= wait::SLICE {
            self.last_sweep.set(now);
            peers.sweep();
        }
        peers.gone(self.role.other())
    }

    /// Waits on `bell` (0: producer's, 1: consumer's) until `attempt` gives a result
    /// (`Ok(Some)`) or fails (`Err`, e.g. corrupt shared state).
    fn wait<T>(
        &self,
        which: usize,
        patience: Patience,
        attempt: &mut impl FnMut() -> Result<Option<T>, Failure>,
    ) -> Result<T, Failure> {
        self.wait_recovering(which, patience, attempt, &mut || {})
    }

    /// [`wait`](Self::wait), calling `recover` at every liveness sweep and before the other
    /// side is reported gone (to repair what dead peers left half-done: a dead sender's
    /// claimed slot must not hide the messages behind it from the last attempt).
    fn wait_recovering<T>(
        &self,
        which: usize,
        patience: Patience,
        attempt: &mut impl FnMut() -> Result<Option<T>, Failure>,
        recover: &mut impl FnMut(),
    ) -> Result<T, Failure> {
        let line = if which == 0 {
            self.producer()
        } else {
            self.consumer()
        };
        // An attempt's failure ends the wait at once: it is carried out as the "result".
        let mut attempt = || attempt().transpose();
        let got = wait::wait_for(
            self.strategy,
            patience,
            &line.bell,
            self.kernel(which),
            &mut attempt,
            &mut |sweep| {
                let gone = self.other_side_gone(sweep);
                if sweep || gone {
                    recover();
                }
                gone.then_some(())
            },
        );
        match got {
            Ok(result) => result,
            Err(Ended::Peer(())) => Err(Failure::Disconnected),
            Err(Ended::TimedOut) => Err(Failure::NotNow),
        }
    }

    /// The public error `E` of an operation for `f`.
    #[inline]
    fn fail<E: FromFailure>(&self, f: Failure) -> E {
        E::from_failure(f, &self.name)
    }

    /// Waits on the producer's bell until at least `n` endpoints of `role` are attached.
    fn wait_for_peers<E: FromFailure>(
        &self,
        role: Role,
        n: usize,
        patience: Patience,
    ) -> Result<(), E> {
        let peers = self.peers();
        // Peer checks are about leaving; here a missing peer is what we wait for, so the
        // bell wait runs without them (attaching endpoints ring both bells).
        let mut attempt = || (peers.active(role) >= n).then_some(Ok(()));
        wait::wait_for(
            self.strategy,
            patience,
            &self.producer().bell,
            self.kernel(0),
            &mut attempt,
            &mut |sweep| {
                if sweep {
                    peers.sweep();
                }
                None::<()>
            },
        )
        .unwrap_or(Err(Failure::NotNow))
        .map_err(|f| self.fail(f))
    }
}

impl Drop for Core {
    fn drop(&mut self) {
        let Some(ticket) = self.ticket else {
            return;
        };
        let peers = self.peers();
        peers.detach(ticket, self.role);
        // Queues keep messages sent but not yet received for a receiver still to come.
        let queue =
            self.info.flavor == Flavor::Spsc as u32 || self.info.flavor == Flavor::Mpmc as u32;
        // ORDERING: Acquire — pairs with the Release stores of the cursors (`commit`,
        // `release`, the slot claims' cursor moves are Relaxed: a hint is enough here).
        let pending = queue
            && self.producer().cursor.load(Ordering::Acquire)
                != self.consumer().cursor.load(Ordering::Acquire);
        // Where names die with their last handle (Windows) there is nothing to remove.
        if peers.leave_last(!pending && crate::NAMES_OUTLIVE_HANDLES) {
            // The last one out removes the name (POSIX; a no-op where names die with their
            // last handle). A newer object under the name is left alone.
            self.seg.unlink_if_same();
        }
        self.ring_both();
    }
}

/// The creator's initialization: the description; every other byte is zero already.
fn init(seg: &Segment, info: &ChannelInfo) -> Result<(), crate::InitError> {
    seg.write_at(0, bytemuck::bytes_of(info))?;
    Ok(())
}

/// Copies the description out of `seg` and checks it against the segment and `wanted`.
fn validate(seg: &Segment, name: &str, wanted: &Wanted) -> Result<ChannelInfo, ChannelOpenError> {
    let corrupt = |reason: String| ChannelOpenError::Corrupt {
        name: name.to_owned(),
        reason,
    };
    let mut bytes = [0u8; std::mem::size_of::<ChannelInfo>()];
    seg.read_at(0, &mut bytes)
        .map_err(|_| corrupt("the segment is too small for a channel".into()))?;
    let info: ChannelInfo = bytemuck::pod_read_unaligned(&bytes);
    if info.tag != TAG || info.version != VERSION {
        return Err(corrupt(format!(
            "no channel description of version {VERSION} (tag {:#x}, version {})",
            info.tag, info.version
        )));
    }
    if info.flavor != wanted.flavor as u32 {
        return Err(corrupt(format!(
            "the description says flavor {}, the header {:?}",
            info.flavor, wanted.flavor
        )));
    }
    let fits = info.data_offset == DATA
        && DATA
            .checked_add(info.data_len)
            .is_some_and(|end| end <= seg.len());
    if !fits {
        return Err(corrupt(format!(
            "its data area ({} bytes at {}) does not fit the segment of {} bytes",
            info.data_len,
            info.data_offset,
            seg.len()
        )));
    }
    let w = &wanted.info;
    let mismatch = |what: &str, expected: u64, found: u64| ChannelOpenError::Mismatch {
        name: name.to_owned(),
        expected: format!("{what} {expected}"),
        found: format!("{what} {found}"),
    };
    if w.type_hash != 0 && (info.type_hash != w.type_hash || info.elem_size != w.elem_size) {
        return Err(ChannelOpenError::Mismatch {
            name: name.to_owned(),
            expected: format!("messages of a {}-byte type", w.elem_size),
            found: if info.type_hash == 0 {
                "untyped byte messages".to_owned()
            } else {
                format!("messages of another {}-byte type", info.elem_size)
            },
        });
    }
    if wanted.capacity_given && info.capacity != w.capacity {
        return Err(mismatch("capacity", w.capacity, info.capacity));
    }
    if wanted.slot_given && info.slot_size != w.slot_size {
        return Err(mismatch("message size", w.slot_size, info.slot_size));
    }
    Ok(info)
}

/// Rounds `n` up to a multiple of `to` (a power of two).
pub(crate) fn round_up(n: u64, to: u64) -> u64 {
    (n + to - 1) & !(to - 1)
}
