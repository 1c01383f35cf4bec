//! What the long-running commands (`send`, `recv`, `pub`, `sub`, and the demo) show and
//! catch on the terminal: one-write notes on stderr, spinners and byte counters, Ctrl-C.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Prints `line` to stderr in one write, so that the summaries of two ends sharing a
/// terminal do not interleave.
pub(crate) fn note(line: &str) {
    let _ = io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Set by Ctrl-C (or SIGTERM) once [`catch_interrupt`] installed the handler.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// From now on Ctrl-C (and SIGTERM) sets a flag that [`interrupted`] reports, so that the
/// command can clean up (remove a partial file, leave the channel). A second Ctrl-C exits at
/// once with status 130.
pub(crate) fn catch_interrupt() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")
}

/// Whether Ctrl-C was pressed since [`catch_interrupt`].
pub(crate) fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// A spinner on stderr saying `msg` while we wait for the other end; hidden unless stderr is
/// a terminal.
pub(crate) fn waiting(msg: String) -> ProgressBar {
    if !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr())
        .with_style(style("{spinner} {msg}"))
        .with_message(msg);
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

/// Turns `pb` into a byte counter: a bar if the total is known, a running count otherwise.
pub(crate) fn count_bytes(pb: &ProgressBar, total: Option<u64>, msg: String) {
    match total {
        Some(len) => {
            pb.set_style(style(
                "{msg} [{wide_bar}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
            ));
            pb.set_length(len);
        }
        None => pb.set_style(style("{spinner} {msg} {bytes} {binary_bytes_per_sec}")),
    }
    pb.set_message(msg);
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the progress templates are valid")
        .progress_chars("=> ")
}
