//! `shmwire send NAME FILE [--capacity SIZE] [--timeout T]`: a file (or stdin) through an
//! SPSC channel to `shmwire recv NAME`. Protocol: [`crate::transfer`].

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::process::ExitCode;

use anyhow::{bail, Context};
use shmwire::channel::spsc;

use crate::cli::SendArgs;
use crate::transfer;
use crate::{options, terminal};
use shmwire::channel::stream::StreamHeader as Header;

pub(super) fn run(args: SendArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    // The input first: a missing file is an error before anything touches the channel.
    let (mut input, header, what) = open_input(&args.file)?;
    let mut tx = spsc::Sender::open(name, &options::transfer(args.target.namespace, args.ring))?;
    let progress = terminal::waiting(format!("waiting for a receiver on channel {name:?}"));
    let done = transfer::send(
        &mut tx,
        &mut input,
        &what,
        &header,
        args.wait.timeout,
        &progress,
    );
    progress.finish_and_clear();
    if done.is_err() && tx.try_wait_received().is_err() {
        // The channel would keep the rest of a failed transfer for the next receiver, which
        // could not make sense of it: remove it (the receiver, if any, is gone or failing).
        drop(tx);
        let _ = options::segment(args.target.namespace).remove(name);
    }
    let done = done?;
    if let Some(announced) = header.len.filter(|l| *l != done.bytes) {
        terminal::note(&format!(
            "shmwire: note: {what} changed size while it was sent ({announced} bytes when \
             opened, {} sent)",
            done.bytes
        ));
    }
    terminal::note(&format!(
        "sent {what} to channel {name:?}: {}; the receiver confirmed it",
        transfer::summary(&done)
    ));
    Ok(ExitCode::SUCCESS)
}

/// Opens FILE (or stdin for `-`): the reader, the transfer's header, and how to name it.
fn open_input(path: &Path) -> anyhow::Result<(Box<dyn Read>, Header, String)> {
    if path.as_os_str() == "-" {
        let header = Header {
            len: None,
            name: String::new(),
        };
        return Ok((Box::new(io::stdin().lock()), header, "stdin".to_owned()));
    }
    let what = path.display().to_string();
    // Asked before opening: Windows does not open directories as files.
    if path.is_dir() {
        bail!("{what} is a directory; send takes a file (or - for stdin)");
    }
    let file = File::open(path).with_context(|| format!("cannot open {what}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot open {what}"))?;
    let header = Header {
        // Pipes and devices have no length worth announcing.
        len: meta.is_file().then_some(meta.len()),
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    Ok((Box::new(file), header, what))
}
