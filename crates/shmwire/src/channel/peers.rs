//! The peer table of a channel: who is attached, in which role, and whether they still live.
//!
//! [`RawPeers`] (1152 bytes; layout in `docs/layout.md`) holds a header line and 64 entries.
//! Each entry is claimed by one endpoint for its lifetime:
//!
//! | `state` bits | meaning |
//! |---|---|
//! | 0..4   | phase: 0 free, 1 claiming (pid being written), 2 active |
//! | 4..8   | role: 0 sender / publisher / writer, 1 receiver / subscriber / reader |
//! | 8..16  | generation: +1 (mod 256) at every claim of any entry, so that a slot claim naming an entry can tell a reused entry from its claimer |
//!
//! * **attach**: CAS `0 → claiming|role|gen` (Acquire), store pid and start time, set the
//!   role's `ever` bit, then store `active|role|gen` (Release; pairs with the Acquire loads
//!   of readers of the table).
//! * **detach** (clean): CAS `active… → 0`, `detaches += 1`, then the caller rings
//!   both doorbells so that sleepers look again.
//! * **sweep** (slow path, after a waiter's sleep timed out): an active entry whose process
//!   is dead (pid + start time) is CASed to 0 and counted in `detaches`; a claiming entry
//!   whose pid no longer exists likewise. The CAS makes exactly one sweeper reap it.
//!
//! "Disconnected" for one side means: the other role was attached at some point (`ever`),
//! and no entry of that role is active now. A process that attaches when nobody else is
//! attached restarts `ever` with its own bit (a CAS, so a concurrent attacher's bit is never
//! lost): a new session on a channel left behind does not start out disconnected.
//!
//! Everything here is read from shared memory and may be garbage: a bad entry can make a
//! peer look alive or dead (wrong data), never make us index out of bounds.

use crate::primitive::{self, AtomicU32, AtomicU64, Ordering};
use shmwire_platform::{Liveness, ProcessId};

/// Entries in the table: at most this many endpoints can be attached at once.
pub(crate) const MAX_PEERS: usize = 64;

pub(crate) const PHASE_MASK: u32 = 0xF;
pub(crate) const CLAIMING: u32 = 1;
pub(crate) const ACTIVE: u32 = 2;
pub(crate) const ROLE_SHIFT: u32 = 4;
const GEN_SHIFT: u32 = 8;

/// The side of a channel an endpoint is on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// Sender, publisher, writer.
    Send = 0,
    /// Receiver, subscriber, reader.
    Recv = 1,
}

impl Role {
    pub(crate) fn other(self) -> Role {
        match self {
            Role::Send => Role::Recv,
            Role::Recv => Role::Send,
        }
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawPeer {
    state: AtomicU32,
    pid: AtomicU32,
    start: AtomicU64,
}

/// The peer table as it lies in shared memory.
#[repr(C, align(128))]
#[derive(Debug)]
pub(crate) struct RawPeers {
    /// Bit per role: that role has been attached since the session began.
    ever: AtomicU32,
    /// +1 at every detach or reap (a statistic for diagnostics).
    detaches: AtomicU32,
    /// Source of generations.
    gen: AtomicU32,
    /// Per role: `entry + 1 | gen << 8` of the exclusive holder (SPSC ends, the publisher,
    /// the blackboard writer), or 0.
    exclusive: [AtomicU32; 2],
    /// 1 while the last endpoint to leave decides whether to remove the name (and for good
    /// once it did): an opener that sees it attaches elsewhere.
    closing: AtomicU32,
    _reserved: [AtomicU32; 26],
    entries: [RawPeer; MAX_PEERS],
}

#[cfg(not(loom))]
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<RawPeer>() == 16);
    assert!(size_of::<RawPeers>() == 128 + 64 * 16 && align_of::<RawPeers>() == 128);
    assert!(offset_of!(RawPeers, detaches) == 4);
    assert!(offset_of!(RawPeers, exclusive) == 12);
    assert!(offset_of!(RawPeers, closing) == 20);
    assert!(offset_of!(RawPeers, entries) == 128);
};

/// An endpoint's claim on one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    pub(crate) index: u32,
    pub(crate) gen: u32,
}

/// Why an attach failed.
#[derive(Debug)]
pub(crate) enum AttachError {
    /// All entries are taken.
    Full,
    /// An exclusive role is held by this live process.
    Busy { pid: u32 },
}

fn active_state(role: Role, gen: u32) -> u32 {
    ACTIVE | (role as u32) << ROLE_SHIFT | gen << GEN_SHIFT
}

fn exclusive_word(t: Ticket) -> u32 {
    (t.index + 1) | t.gen << GEN_SHIFT
}

impl RawPeers {
    /// Claims an entry for `me` in `role`; with `exclusive`, fails with `Busy` if another
    /// live endpoint holds the role.
    pub(crate) fn attach(
        &self,
        me: ProcessId,
        role: Role,
        exclusive: bool,
    ) -> Result<Ticket, AttachError> {
        self.sweep();
        // A session restarts in this channel: it is no longer being removed.
        let gen = self.gen.fetch_add(1, Ordering::Relaxed).wrapping_add(1) & 0xFF;
        let claim = CLAIMING | (role as u32) << ROLE_SHIFT | gen << GEN_SHIFT;
        let mut ticket = None;
        for (i, e) in self.entries.iter().enumerate() {
            // ORDERING: Acquire — takes the entry after the Release that freed it (detach,
            // reap), so our stores below come after the previous holder's.
            if e.state
                .compare_exchange(0, claim, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                e.pid.store(me.pid, Ordering::Relaxed);
                e.start.store(me.start_time, Ordering::Relaxed);
                ticket = Some(Ticket {
                    index: i as u32,
                    gen,
                });
                break;
            }
        }
        let t = ticket.ok_or(AttachError::Full)?;
        let entry = &self.entries[t.index as usize];
        // Alone (after the sweep) means a new session: departures of a previous one do not
        // count, so `ever` restarts with our bit. The reset is a CAS from the value read
        // before looking at the entries, so it cannot wipe the bit of an endpoint that
        // attached meanwhile (then the CAS fails and we only add our bit).
        // ORDERING: Acquire — pairs with the Release `fetch_or` of another attacher: if we
        // see its bit, we also see its claimed entry below (it is not alone then).
        let old = self.ever.load(Ordering::Acquire);
        let alone = self.entries.iter().enumerate().all(|(i, e)| {
            // ORDERING: Acquire — pairs with the Release stores in `attach` and `detach`.
            i == t.index as usize || e.state.load(Ordering::Acquire) & PHASE_MASK == 0
        });
        let reset = alone
            && self
                .ever
                // ORDERING: AcqRel — as the `fetch_or` below.
                .compare_exchange(old, role.bit(), Ordering::AcqRel, Ordering::Acquire)
                .is_ok();
        if !reset {
            // ORDERING: Release — publishes our claimed entry with our bit; pairs with the
            // Acquire load of `ever` above in a later attacher.
            self.ever.fetch_or(role.bit(), Ordering::Release);
        }
        // ORDERING: Release — publishes pid and start time with the active state; pairs with
        // the Acquire loads of `state` in `holder_alive`, `sweep` and `any_active`.
        entry
            .state
            .store(active_state(role, gen), Ordering::Release);
        if exclusive {
            if let Err(pid) = self.take_exclusive(role, t) {
                self.detach(t, role);
                return Err(AttachError::Busy { pid });
            }
        }
        Ok(t)
    }

    /// Takes the exclusive word of `role` for `t`, replacing a holder that is gone.
    fn take_exclusive(&self, role: Role, t: Ticket) -> Result<(), u32> {
        let word = &self.exclusive[role as usize];
        let mine = exclusive_word(t);
        // ORDERING: Acquire — pairs with the Release CAS in `detach` that gave the role up.
        let mut cur = word.load(Ordering::Acquire);
        for _ in 0..4 {
            if cur != 0 {
                if let Some(pid) = self.holder_alive(cur, role) {
                    return Err(pid);
                }
            }
            // ORDERING: AcqRel — the exclusive role passes from the previous holder (whose
            // detach released it) to us.
            match word.compare_exchange(cur, mine, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return Ok(()),
                Err(now) => cur = now,
            }
        }
        Err(self.holder_alive(cur, role).unwrap_or(0))
    }

    /// The pid of the endpoint that `word` (an exclusive word) names, if that endpoint is
    /// still attached in `role` and its process lives.
    fn holder_alive(&self, word: u32, role: Role) -> Option<u32> {
        let index = (word & 0xFF).checked_sub(1)? as usize;
        let gen = word >> GEN_SHIFT & 0xFF;
        let e = self.entries.get(index)?;
        // ORDERING: Acquire — pairs with the Release store of the active state in `attach`,
        // so pid and start time are the holder's.
        if e.state.load(Ordering::Acquire) != active_state(role, gen) {
            return None;
        }
        let p = ProcessId {
            pid: e.pid.load(Ordering::Relaxed),
            start_time: e.start.load(Ordering::Relaxed),
        };
        (primitive::liveness(p) == Liveness::Alive).then_some(p.pid)
    }

    /// Whether the endpoint holding ticket `t` (as recorded in a slot claim) is still
    /// attached and alive. Slow: a liveness check.
    pub(crate) fn claimer_alive(&self, index: u32, gen: u32) -> bool {
        let Some(e) = self.entries.get(index as usize) else {
            return false;
        };
        // ORDERING: Acquire — pairs with the Release store of the active state in `attach`.
        let s = e.state.load(Ordering::Acquire);
        if s & PHASE_MASK != ACTIVE || s >> GEN_SHIFT & 0xFF != gen {
            return false;
        }
        let p = ProcessId {
            pid: e.pid.load(Ordering::Relaxed),
            start_time: e.start.load(Ordering::Relaxed),
        };
        primitive::liveness(p) == Liveness::Alive
    }

    /// Releases the entry of `t`. Idempotent: a ticket reaped by a sweep releases nothing.
    pub(crate) fn detach(&self, t: Ticket, role: Role) {
        let Some(e) = self.entries.get(t.index as usize) else {
            return;
        };
        let _ = self.exclusive[role as usize].compare_exchange(
            exclusive_word(t),
            0,
            // ORDERING: Release — hands the exclusive role on; pairs with the AcqRel CAS in
            // `take_exclusive`.
            Ordering::Release,
            Ordering::Relaxed,
        );
        // ORDERING: Release — our last writes to the channel happen before the entry is
        // seen free; pairs with the Acquire CAS in `attach` and loads in `any_active`.
        if e.state
            .compare_exchange(
                active_state(role, t.gen),
                0,
                Ordering::Release,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.detaches.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Reaps entries of dead processes (liveness checks: a slow path).
    pub(crate) fn sweep(&self) {
        for e in &self.entries {
            // ORDERING: Acquire — pairs with the Release store in `attach`.
            let s = e.state.load(Ordering::Acquire);
            let dead = match s & PHASE_MASK {
                0 => false,
                ACTIVE => {
                    let p = ProcessId {
                        pid: e.pid.load(Ordering::Relaxed),
                        start_time: e.start.load(Ordering::Relaxed),
                    };
                    primitive::liveness(p) == Liveness::Dead
                }
                CLAIMING => {
                    let pid = e.pid.load(Ordering::Relaxed);
                    pid != 0 && !primitive::process_exists(pid)
                }
                // Garbage: free it.
                _ => true,
            };
            // ORDERING: Release — as in `detach`; pairs with the Acquire CAS in `attach`.
            if dead
                && e.state
                    .compare_exchange(s, 0, Ordering::Release, Ordering::Relaxed)
                    .is_ok()
            {
                self.detaches.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// After claiming our entry: whether the last endpoint is removing the channel (then the
    /// caller detaches and opens again). Pairs with [`Self::leave_last`]: a store-buffering
    /// pair of SeqCst fences (our claim then its flag, its flag then our claim), so either it
    /// sees us attached and keeps the name, or we see its flag.
    pub(crate) fn closing(&self) -> bool {
        // ORDERING: SeqCst fence — orders our claimed entry before the load of `closing`;
        // pairs with the SeqCst fence in `leave_last`.
        primitive::fence(Ordering::SeqCst);
        self.closing.load(Ordering::Relaxed) != 0
    }

    /// Called after detaching: whether nobody is attached any more, in which case `closing`
    /// stays set (the caller removes the name); otherwise it is cleared again.
    pub(crate) fn leave_last(&self, may_remove: bool) -> bool {
        if !may_remove {
            return false;
        }
        self.closing.store(1, Ordering::Relaxed);
        // ORDERING: SeqCst fence — orders the flag before our loads of the entries; pairs
        // with the SeqCst fence in `closing`.
        primitive::fence(Ordering::SeqCst);
        if self.any_attached() {
            self.closing.store(0, Ordering::Relaxed);
            false
        } else {
            true
        }
    }

    /// Clears `closing` after a [`Self::leave_last`] that returned true but whose caller
    /// could not remove the name after all (garbage collection: `leftover::unretire`), so
    /// that openers stop retrying and attach.
    pub(crate) fn reopen(&self) {
        self.closing.store(0, Ordering::Relaxed);
    }

    /// Whether some entry is active in `role` (no liveness check: see [`Self::sweep`]).
    pub(crate) fn any_active(&self, role: Role) -> bool {
        let want = ACTIVE | (role as u32) << ROLE_SHIFT;
        self.entries.iter().any(|e| {
            // ORDERING: Acquire — pairs with the Release stores in `attach`.
            e.state.load(Ordering::Acquire) & 0xFF == want
        })
    }

    /// How many entries are active in `role` (no liveness check: see [`Self::sweep`]).
    pub(crate) fn active(&self, role: Role) -> usize {
        let want = ACTIVE | (role as u32) << ROLE_SHIFT;
        self.entries
            .iter()
            .filter(|e| {
                // ORDERING: Acquire — pairs with the Release stores in `attach`.
                e.state.load(Ordering::Acquire) & 0xFF == want
            })
            .count()
    }

    /// Whether any entry is taken at all.
    pub(crate) fn any_attached(&self) -> bool {
        // ORDERING: Acquire — pairs with the Release stores in `attach` and `detach`.
        self.entries
            .iter()
            .any(|e| e.state.load(Ordering::Acquire) & PHASE_MASK != 0)
    }

    /// Whether `role` attached at some point this session and is now gone: the other side
    /// is disconnected.
    pub(crate) fn gone(&self, role: Role) -> bool {
        self.ever.load(Ordering::Relaxed) & role.bit() != 0 && !self.any_active(role)
    }
}
