//! The holder process that keeps a segment in place where names do not outlive their handles
//! (Windows): `create --persist` and the sync segments of lock/signal/wait start a detached
//! `shmwire hold NAME` (`command/hold.rs`), which holds the segment until it is removed.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// The line `shmwire hold` prints once it holds the segment.
pub(crate) const READY: &str = "ready";

/// Starts a detached `shmwire hold NAME` and waits until it holds the segment.
pub(crate) fn spawn(name: &str, global: bool) -> anyhow::Result<()> {
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
    if line.trim() != READY {
        let status = child.wait()?;
        bail!("the holder process for segment {name:?} did not start ({status})");
    }
    Ok(())
}
