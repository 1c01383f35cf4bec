//! From what the command line names to the library's options: [`SegmentOptions`] and
//! [`ChannelOptions`] in the namespace asked for, with the CLI's defaults for channels.

use shmwire::channel::ChannelOptions;
use shmwire::SegmentOptions;

use crate::cli::{BroadcastShape, Namespace, TransferRing};

/// Ring size of the channel of `send`/`recv` (and of the demo's file) when the CLI creates
/// it.
pub(crate) const TRANSFER_CAPACITY: u64 = 4 << 20;

/// Options for a segment named on the command line.
pub(crate) fn segment(ns: Namespace) -> SegmentOptions {
    SegmentOptions::new().global(ns.global)
}

/// Base options for a channel named on the command line.
fn channel(ns: Namespace) -> ChannelOptions {
    ChannelOptions::new().global(ns.global)
}

/// Options for `pub`/`sub`: what the user gave; the rest is the existing channel's, or the
/// library's defaults if this command creates it.
pub(crate) fn broadcast(ns: Namespace, shape: &BroadcastShape) -> ChannelOptions {
    let mut opts = channel(ns);
    if let Some(n) = shape.capacity {
        opts = opts.capacity(n);
    }
    if let Some(size) = shape.message_size {
        opts = opts.message_size(size);
    }
    opts
}

/// Options for `send`/`recv`: a capacity the user gave is required of the channel;
/// otherwise an existing channel is taken as it is, and only a channel this call creates
/// gets [`TRANSFER_CAPACITY`] (so that `recv --capacity 64MiB` followed by a plain `send`
/// works, whichever starts first).
pub(crate) fn transfer(ns: Namespace, ring: TransferRing) -> ChannelOptions {
    match ring.capacity {
        Some(c) => channel(ns).capacity(c),
        None => channel(ns).capacity_if_created(TRANSFER_CAPACITY),
    }
}
