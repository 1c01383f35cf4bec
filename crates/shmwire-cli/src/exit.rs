//! How `shmwire` ends: its exit statuses, and the one line an error prints.
//!
//! 0 success; 1 a plain "no" ([`No`]: not found, timed out); 2 an error; `lock` passes on
//! its command's status (the top-level `--help` says the same).

use std::io;
use std::process::ExitCode;

/// A plain "no": not found, timed out. Exit status 1 rather than 2.
#[derive(Debug)]
pub(crate) struct No(pub String);

impl std::fmt::Display for No {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for No {}

/// Prints the error once, as one line with its causes, and picks the exit status.
pub(crate) fn report(err: &anyhow::Error) -> ExitCode {
    // Quiet on a closed pipe (`shmwire read x | head`).
    if err
        .chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
    {
        return ExitCode::SUCCESS;
    }
    // No message repeats its source (the library's errors keep it in `source()` only).
    let mut line = format!("shmwire: {err}");
    for cause in err.chain().skip(1) {
        line.push_str(": ");
        line.push_str(&cause.to_string());
    }
    if let Some(hint) = crate::advice::for_error(err) {
        line.push_str(&hint);
    }
    eprintln!("{line}");
    if is_plain_no(err) {
        ExitCode::from(1)
    } else {
        ExitCode::from(2)
    }
}

/// Whether `err` is a plain "no" (exit status 1): a [`No`], or a segment that does not exist.
fn is_plain_no(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.is::<No>()
            || matches!(
                e.downcast_ref::<shmwire::OpenError>(),
                Some(shmwire::OpenError::NotFound { .. })
            )
            || matches!(
                e.downcast_ref::<shmwire::RemoveError>(),
                Some(shmwire::RemoveError::NotFound { .. })
            )
    })
}
