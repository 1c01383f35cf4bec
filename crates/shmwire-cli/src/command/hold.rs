//! `shmwire hold NAME` (hidden): holds a segment open until it is removed, the Windows half
//! of `create --persist` and of the sync segments. Started by [`crate::holder::spawn`].

use std::process::ExitCode;

use anyhow::Context;
use shmwire::Segment;

use crate::cli::HoldArgs;
use crate::{holder, options};

pub(super) fn run(args: HoldArgs) -> anyhow::Result<ExitCode> {
    let seg: Segment = options::segment(args.target.namespace)
        .raw(true)
        .read_only(true)
        .open(&args.target.name)?;
    seg.hold_until_removed(&mut || {
        println!("{}", holder::READY);
    })
    .with_context(|| format!("cannot hold segment {:?}", args.target.name))?;
    Ok(ExitCode::SUCCESS)
}
