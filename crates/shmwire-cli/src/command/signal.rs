//! `shmwire signal NAME [--reset]`: sets (or resets) the event of a sync segment.

use std::process::ExitCode;

use shmwire::sync::Event;

use crate::cli::SignalArgs;
use crate::sync_segment::{self, EVENT_AT};

pub(super) fn run(args: SignalArgs) -> anyhow::Result<ExitCode> {
    let seg = sync_segment::open(&args.target, args.event)?;
    let event = Event::open_in(&seg, EVENT_AT)?;
    if args.reset {
        event.reset()?;
    } else {
        event.set()?;
    }
    Ok(ExitCode::SUCCESS)
}
