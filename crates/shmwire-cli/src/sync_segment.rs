//! The sync segment behind `shmwire lock`, `signal` and `wait`.
//!
//! NAME is a segment of kind `sync` (2) with a 4096-byte payload: a robust mutex at payload
//! offset 0 and an event at 128 (auto-reset unless created with `--manual`). The first of
//! lock/signal/wait to use a NAME creates it (open-or-create, so concurrent first uses agree)
//! and it stays until `shmwire rm NAME`, like `create --persist`: on Windows a detached
//! holder process keeps it. Layout: `docs/layout.md`, "CLI sync segment".

use anyhow::{bail, Context};
use shmwire::sync::{Event, EventMode, RobustMutex};
use shmwire::{Kind, Opened, Segment};

use crate::cli::{SyncEvent, SyncName, Target};
use crate::options;

/// Payload size of a sync segment.
pub(crate) const PAYLOAD: u64 = 4096;
/// Payload offset of the mutex.
pub(crate) const MUTEX_AT: u64 = 0;
/// Payload offset of the event.
pub(crate) const EVENT_AT: u64 = 128;

/// Opens NAME's sync segment, creating it on first use.
pub(crate) fn open(target: &Target<SyncName>, event: SyncEvent) -> anyhow::Result<Segment> {
    let name = target.name.as_str();
    let global = target.namespace.global;
    let mode = if event.manual {
        EventMode::ManualReset
    } else {
        EventMode::AutoReset
    };
    // A failed initialization removes the unpublished segment: nothing half-made is left.
    let (seg, opened) = options::segment(target.namespace)
        .kind(Kind::SYNC)
        .remove_on_drop(false)
        .keep_in_gc(true)
        .open_or_create(name, PAYLOAD, |seg| {
            RobustMutex::init_in(seg, MUTEX_AT)?;
            Event::init_in(seg, EVENT_AT, mode)?;
            Ok(())
        })
        .with_context(|| format!("cannot set up sync segment {name:?}"))?;
    if opened == Opened::Created && !shmwire::NAMES_OUTLIVE_HANDLES {
        crate::holder::spawn(name, global)
            .with_context(|| format!("cannot keep sync segment {name:?} alive"))?;
    }
    if event.manual {
        let found = Event::open_in(&seg, EVENT_AT)?.mode();
        if found != EventMode::ManualReset {
            bail!(
                "sync segment {name:?} has an auto-reset event (it was created without \
                 --manual); remove it with `{}` to change that",
                crate::advice::rm(name, global)
            );
        }
    }
    Ok(seg)
}
