//! What garbage collection ([`crate::gc`]) needs of a channel segment, without attaching to
//! it: who is registered in the peer table, whether a queue still holds messages, and the
//! removal handshake that keeps an endpoint from attaching to a channel whose name is being
//! removed.
//!
//! Both functions take the *whole object* as a raw segment (header page included), so the
//! channel's payload offsets are shifted by [`PAYLOAD_OFFSET`]. Everything read is untrusted:
//! [`examine`] works on copies and only reports what they say.

use shmwire_platform::ProcessId;

use super::peers::{RawPeers, Role, ACTIVE, CLAIMING, MAX_PEERS, PHASE_MASK, ROLE_SHIFT};
use super::{ChannelInfo, Flavor, CONSUMER, DATA, PEERS, PRODUCER, TAG, VERSION};
use crate::header::PAYLOAD_OFFSET;
use crate::Segment;

/// A registered endpoint, as copied out of the peer table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    /// Claiming (pid being written; `process.pid` may still be 0) rather than active.
    pub(crate) claiming: bool,
    /// Receiving side (receiver, subscriber, reader) rather than sending.
    pub(crate) receiving: bool,
    /// Its process as registered.
    pub(crate) process: ProcessId,
}

/// What a channel segment's control page says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Leftover {
    /// Registered endpoints (active or claiming).
    pub(crate) endpoints: Vec<Endpoint>,
    /// An SPSC or MPMC queue holds messages sent and not yet received.
    pub(crate) queued: bool,
}

/// Reads the control page of the channel in `seg` (a raw segment over the whole object).
/// `None` if it holds no channel description of a known version (then there is nothing to
/// learn from it).
pub(crate) fn examine(seg: &Segment) -> Option<Leftover> {
    let base = PAYLOAD_OFFSET;
    let mut desc = [0u8; std::mem::size_of::<ChannelInfo>()];
    seg.read_at(base, &mut desc).ok()?;
    let info: ChannelInfo = bytemuck::pod_read_unaligned(&desc);
    if info.tag != TAG || info.version != VERSION {
        return None;
    }
    let mut table = [0u8; std::mem::size_of::<RawPeers>()];
    seg.read_at(base + PEERS as u64, &mut table).ok()?;
    let word = |at: usize| u32::from_le_bytes(table[at..at + 4].try_into().expect("4 bytes"));
    let mut endpoints = Vec::new();
    for i in 0..MAX_PEERS {
        let at = 128 + 16 * i;
        let state = word(at);
        let claiming = match state & PHASE_MASK {
            CLAIMING => true,
            ACTIVE => false,
            _ => continue, // free, or garbage (which a sweep frees)
        };
        endpoints.push(Endpoint {
            claiming,
            receiving: (state >> ROLE_SHIFT) & 0xF == Role::Recv as u32,
            process: ProcessId {
                pid: word(at + 4),
                start_time: u64::from_le_bytes(table[at + 8..at + 16].try_into().expect("8")),
            },
        });
    }
    let mut cursor = [0u8; 8];
    let mut read_cursor = |line: usize| {
        seg.read_at(base + line as u64, &mut cursor)
            .ok()
            .map(|()| u64::from_le_bytes(cursor))
    };
    let (tail, head) = (read_cursor(PRODUCER)?, read_cursor(CONSUMER)?);
    let queue = info.flavor == Flavor::Spsc as u32 || info.flavor == Flavor::Mpmc as u32;
    Some(Leftover {
        endpoints,
        queued: queue && tail != head,
    })
}

/// The peer table of the channel in `seg`, a read-write raw segment over the whole object.
fn peers(seg: &Segment) -> Option<&RawPeers> {
    // The whole control page must be there, as for an endpoint.
    if seg.len() < PAYLOAD_OFFSET + DATA {
        return None;
    }
    seg.payload
        .region()
        .at::<RawPeers>(PAYLOAD_OFFSET + PEERS as u64)
}

/// The removal handshake, as the last endpoint to leave does it (`Core::drop`): reaps the
/// entries of dead processes, then sets `closing` and checks, after a SeqCst fence, that
/// nobody is attached. `Some(true)`: nobody is, `closing` stays set, and the caller must
/// remove the name now (an endpoint attaching meanwhile sees the flag and opens again) or
/// call [`unretire`]. `Some(false)`: an endpoint is attached (the flag was cleared again).
/// `None`: `seg` is read-only or too small for a channel.
pub(crate) fn retire(seg: &Segment) -> Option<bool> {
    let peers = peers(seg)?;
    peers.sweep();
    Some(peers.leave_last(true))
}

/// Undoes a successful [`retire`] whose removal then failed, so that endpoints may use the
/// channel again.
pub(crate) fn unretire(seg: &Segment) {
    if let Some(peers) = peers(seg) {
        peers.reopen();
    }
}
