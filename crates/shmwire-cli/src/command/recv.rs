//! `shmwire recv NAME [--out F] [--capacity SIZE] [--timeout T]`: receives what `shmwire
//! send NAME` sends, verifies it, and confirms it to the sender. Protocol:
//! [`crate::transfer`].

use std::io;
use std::process::ExitCode;

use shmwire::channel::spsc;

use crate::cli::RecvArgs;
use crate::transfer::{self, OutFile, Sink};
use crate::{options, terminal};

pub(super) fn run(args: RecvArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let mut sink = match &args.out {
        Some(p) if p.as_os_str() != "-" => Sink::File(OutFile::create(p)?),
        _ => Sink::Stdout(io::stdout().lock()),
    };
    // Ctrl-C removes the partial output and leaves the channel cleanly.
    terminal::catch_interrupt()?;
    let mut rx = spsc::Receiver::open(name, &options::transfer(args.target.namespace, args.ring))?;
    let progress = terminal::waiting(format!("waiting for a sender on channel {name:?}"));
    let done = transfer::recv(
        &mut rx,
        args.target.namespace.global,
        &mut sink,
        args.wait.timeout,
        &progress,
        &mut || None,
        &mut |_| {},
    );
    progress.finish_and_clear();
    let done = done?;
    let what = if done.header.name.is_empty() {
        "a stream"
    } else {
        &done.header.name
    };
    terminal::note(&format!(
        "received {what} from channel {name:?}: {}, verified; {}",
        transfer::summary(&done),
        sink.stored()
    ));
    Ok(ExitCode::SUCCESS)
}
