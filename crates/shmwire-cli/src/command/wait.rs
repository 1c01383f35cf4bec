//! `shmwire wait NAME [--timeout T]`: waits for the event of a sync segment.

use std::process::ExitCode;

use shmwire::sync::{Event, WaitTimeoutError};

use crate::cli::WaitArgs;
use crate::exit::No;
use crate::sync_segment::{self, EVENT_AT};

pub(super) fn run(args: WaitArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let seg = sync_segment::open(&args.target, args.event)?;
    let event = Event::open_in(&seg, EVENT_AT)?;
    match args.wait.timeout {
        None => event.wait()?,
        Some(t) => {
            if let Err(e) = event.wait_timeout(t) {
                return Err(match e {
                    WaitTimeoutError::Timeout => No(format!(
                        "timed out after {} waiting for a signal on {name:?}",
                        humantime::format_duration(t)
                    ))
                    .into(),
                    e => e.into(),
                });
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
