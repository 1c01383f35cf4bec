//! `shmwire create`, and the hidden `shmwire hold` that keeps a persisted segment alive on
//! Windows.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;

use anyhow::{bail, Context};
use shmwire::Segment;

use crate::cli::{CreateArgs, HoldArgs};
use crate::units;

pub fn run(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let mut seg = super::options(&args.target)
        .raw(args.raw)
        .mode(args.mode)
        // Recorded in the header, so that `shmwire gc` keeps it (without --all).
        .keep_in_gc(args.persist)
        .create(name, args.size)?;
    let what = format!(
        "{} segment {name:?} of {}, mode {:03o}",
        if args.raw { "raw" } else { "shmwire" },
        units::size(args.size),
        args.mode
    );
    if args.persist {
        seg.release_ownership();
        if !shmwire::NAMES_OUTLIVE_HANDLES {
            spawn_holder(&args.target.name, args.target.global)?;
        }
        println!(
            "created {what}; it stays until `{}`",
            crate::advice::rm(name, args.target.global)
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Owned: held by this process, removed when it ends (Ctrl-C or SIGTERM).
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("cannot install the Ctrl-C handler")?;
    println!("created {what}; holding it until Ctrl-C, then removing it (--persist keeps it)");
    let _ = rx.recv();
    drop(seg);
    println!("removed segment {name:?}");
    Ok(ExitCode::SUCCESS)
}

/// Starts a detached `shmwire hold NAME` and waits until it holds the segment.
pub(super) fn spawn_holder(name: &str, global: bool) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find the shmwire executable")?;
    let mut cmd = Command::new(exe);
    cmd.arg("hold");
    if global {
        cmd.arg("--global");
    }
    // `--`: a name may start with '-'.
    cmd.arg("--").arg(name);
    // Nothing of ours stays attached to it: a caller reading our output must not wait for it.
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        const DETACHED_PROCESS: u32 = 0x0000_0008;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        cmd.creation_flags(DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP);
    }
    shmwire::keep_stdio_from_children();
    let mut child = cmd.spawn().context("cannot start the holder process")?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    if line.trim() != "ready" {
        let status = child.wait()?;
        bail!("the holder process for segment {name:?} did not start ({status})");
    }
    Ok(())
}

pub fn hold(args: HoldArgs) -> anyhow::Result<ExitCode> {
    let seg: Segment = super::options(&args.target)
        .raw(true)
        .read_only(true)
        .open(&args.target.name)?;
    seg.hold_until_removed(&mut || {
        println!("ready");
    })
    .with_context(|| format!("cannot hold segment {:?}", args.target.name))?;
    Ok(ExitCode::SUCCESS)
}
