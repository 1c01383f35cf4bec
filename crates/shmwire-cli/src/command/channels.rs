//! What the channel commands (`send`, `recv`, `pub`, `sub`, and the demo) share: opening an
//! endpoint whichever end comes first, Ctrl-C, progress bars, and rates for the summaries.

use std::io::{self, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use shmwire::channel::ChannelOptions;

use crate::cli::{BroadcastShape, ChannelTarget};

/// Base options for the channel named on the command line.
pub fn options(target: &ChannelTarget) -> ChannelOptions {
    ChannelOptions::new().global(target.global)
}

/// Options for `pub`/`sub`: what the user gave; the rest is the existing channel's, or the
/// library's defaults if this command creates it.
pub fn broadcast_options(target: &ChannelTarget, shape: &BroadcastShape) -> ChannelOptions {
    let mut opts = options(target);
    if let Some(n) = shape.capacity {
        opts = opts.capacity(n);
    }
    if let Some(size) = shape.message_size {
        opts = opts.message_size(size);
    }
    opts
}

/// Options for `send`/`recv`: a capacity the user gave is required of the channel;
/// otherwise an existing channel is taken as it is, and only a channel this call creates
/// gets the CLI's default ring (so that `recv --capacity 64MiB` followed by a plain `send`
/// works, whichever starts first).
pub fn transfer_options(target: &ChannelTarget, capacity: Option<u64>) -> ChannelOptions {
    match capacity {
        Some(c) => options(target).capacity(c),
        None => options(target).capacity_if_created(super::transfer::DEFAULT_CAPACITY),
    }
}

/// Prints `line` to stderr in one write, so that the summaries of two ends sharing a
/// terminal do not interleave.
pub fn note(line: &str) {
    let _ = io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// Set by Ctrl-C (or SIGTERM) once [`catch_interrupt`] installed the handler.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

/// From now on Ctrl-C (and SIGTERM) sets a flag that [`interrupted`] reports, so that the
/// command can clean up (remove a partial file, leave the channel). A second Ctrl-C exits at
/// once with status 130.
pub fn catch_interrupt() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        if INTERRUPTED.swap(true, Ordering::Relaxed) {
            std::process::exit(130);
        }
    })
    .context("cannot install the Ctrl-C handler")
}

/// Whether Ctrl-C was pressed since [`catch_interrupt`].
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// A spinner on stderr saying `msg` while we wait for the other end; hidden unless stderr is
/// a terminal.
pub fn waiting(msg: String) -> ProgressBar {
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
pub fn count_bytes(pb: &ProgressBar, total: Option<u64>, msg: String) {
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

/// `0.52 s` or `12.3 ms`.
pub fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// `2065 MB/s` (decimal megabytes).
pub fn rate(bytes: u64, d: Duration) -> String {
    let mb = bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9);
    if mb >= 10.0 {
        format!("{mb:.0} MB/s")
    } else {
        format!("{mb:.2} MB/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_durations_read_well() {
        assert_eq!(duration(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(duration(Duration::from_millis(1520)), "1.52 s");
        assert_eq!(rate(2_000_000_000, Duration::from_secs(1)), "2000 MB/s");
        assert_eq!(rate(500_000, Duration::from_secs(1)), "0.50 MB/s");
        assert!(rate(1, Duration::ZERO).ends_with("MB/s"));
    }
}
