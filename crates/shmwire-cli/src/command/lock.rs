//! `shmwire lock NAME [--timeout T] -- CMD...`: runs CMD holding the sync segment's robust
//! mutex.
//!
//! If the previous holder died (killed, crashed) the lock is recovered: a note goes to
//! stderr, CMD runs with `SHMWIRE_OWNER_DIED=1` (else `0`) so it can check and repair what
//! the lock protects, and the lock is marked repaired only if CMD exits with status 0;
//! otherwise the mutex is left not recoverable and later `lock`s fail (exit status 2) until
//! `shmwire rm NAME`. CMD's exit status becomes ours (128 + signal number if a signal ended
//! it, as shells report). Ctrl-C reaches CMD; shmwire waits for it and then releases the lock.

use std::process::{Command, ExitCode};

use anyhow::Context;
use shmwire::sync::{LockError, LockTimeoutError, RobustMutex};

use crate::cli::LockArgs;
use crate::exit::No;
use crate::sync_segment::{self, MUTEX_AT};

pub(super) fn run(args: LockArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let seg = sync_segment::open(&args.target, args.event)?;
    let mutex = RobustMutex::open_in(&seg, MUTEX_AT)?;
    let locked = match args.wait.timeout {
        Some(t) => mutex.lock_timeout(t),
        None => mutex.lock().map_err(LockTimeoutError::from),
    };
    let mut guard = match locked {
        Ok(g) => g,
        Err(LockTimeoutError::Timeout) => {
            return Err(No(format!(
                "timed out after {} waiting for the lock of {name:?}",
                humantime::format_duration(args.wait.timeout.unwrap_or_default())
            ))
            .into())
        }
        Err(LockTimeoutError::Lock(e @ LockError::NotRecoverable { .. })) => {
            return Err(anyhow::Error::from(e).context(format!(
                "cannot lock {name:?}; remove it with `{}` to start afresh",
                crate::advice::rm(name, args.target.namespace.global)
            )))
        }
        Err(e) => return Err(e.into()),
    };
    let died = guard.owner_died();
    if died {
        eprintln!(
            "shmwire: recovered lock {name:?} from a holder that died; running the command with \
             SHMWIRE_OWNER_DIED=1 (the lock counts as repaired if it succeeds)"
        );
    }
    // The terminal's Ctrl-C goes to the whole process group: let CMD decide, and release the
    // lock cleanly once it has ended.
    let _ = ctrlc::set_handler(|| {});
    let (program, rest) = args.command.split_first().context("no command given")?;
    let status = Command::new(program)
        .args(rest)
        .env("SHMWIRE_OWNER_DIED", if died { "1" } else { "0" })
        .status()
        .with_context(|| format!("cannot run {program:?} under lock {name:?}"))?;
    if died && status.success() {
        guard.mark_consistent();
    }
    guard.unlock()?;
    Ok(ExitCode::from(exit_code(status)))
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return code as u8;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return 128u8.wrapping_add(sig as u8);
        }
    }
    2
}
