//! Child processes of the chaos driver: re-executions of this test binary playing a role,
//! through the common harness (`common::ChildProc`, roles prefixed `chaos-`).
//!
//! A child reports to the driver with `common::report` (`SHMWIRE:<key>=<value>` on stdout);
//! the harness stamps each report with the time it arrived. The only command a child reads is
//! `stop` (finish cleanly, see `common::listen_to_parent`); EOF on stdin means the driver went
//! away, and the child exits at once. A child reports from its work loop only (never from a
//! helper thread), so a child whose reports stop is stuck, not merely quiet: that is how the
//! driver sees a process that waits for ever.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, report, ChildProc, Report};

/// Prefix of the chaos roles among the roles of this test binary.
pub(super) const ROLE_PREFIX: &str = "chaos-";
/// Stdout lines of a child kept for diagnostics.
const KEEP_LINES: usize = 40;

// ---------------------------------------------------------------------------- child side

/// Paces the heartbeat reports of a work loop.
#[derive(Debug)]
pub(super) struct Beat(Instant);

impl Beat {
    /// Every this long, a work loop reports its progress.
    pub(super) const EVERY: Duration = Duration::from_millis(100);

    pub(super) fn new() -> Beat {
        Beat(Instant::now())
    }

    /// Whether a heartbeat is due (and if so, starts the next period).
    pub(super) fn due(&mut self) -> bool {
        if self.0.elapsed() >= Self::EVERY {
            self.0 = Instant::now();
            true
        } else {
            false
        }
    }
}

/// The wall clock in microseconds since the epoch: a time both the driver and a child can
/// read (for "when did the child notice").
pub(super) fn wall_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Reports `disc=<wall time>` when a child is told `Disconnected`: at once the first time
/// after something else, then at most every 10 ms while it lasts (so a streak that began
/// before the driver's last kill shows the new death within 10 ms).
#[derive(Debug, Default)]
pub(super) struct Disc(Option<Instant>);

impl Disc {
    pub(super) fn seen(&mut self) {
        if self
            .0
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(10))
        {
            report("disc", wall_micros());
            self.0 = Some(Instant::now());
        }
    }

    pub(super) fn clear(&mut self) {
        self.0 = None;
    }
}

// --------------------------------------------------------------------------- driver side

/// A running child process of the driver. Dropping it kills the child (by its own handle)
/// if it still runs, and reaps it.
pub(super) struct Kid {
    /// The role, without [`ROLE_PREFIX`].
    pub role: String,
    /// The scenario's slot this child fills (replacements inherit it).
    pub slot: usize,
    /// The child's generation (its number among the processes of its scenario).
    pub gen: u64,
    /// When the child reported `ready` (its endpoint is open).
    pub ready: Option<Instant>,
    /// Wall time (µs) at which the driver sent the kill.
    pub died: u64,
    /// When the driver last heard from the child (or started it).
    pub last_heard: Instant,
    /// The last value of each key the child reported.
    pub last: std::collections::HashMap<String, Report>,
    proc: ChildProc,
}

impl std::fmt::Debug for Kid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} #{} (pid {})", self.role, self.gen, self.proc.id())
    }
}

/// Starts this test binary as a child playing `role`.
pub(super) fn spawn(role: &str, slot: usize, gen: u64, env: &[(&str, String)]) -> Kid {
    let proc = common::spawn_role(&format!("{ROLE_PREFIX}{role}"), env).keep_last_lines(KEEP_LINES);
    Kid {
        role: role.to_owned(),
        slot,
        gen,
        ready: None,
        died: 0,
        last_heard: Instant::now(),
        last: Default::default(),
        proc,
    }
}

impl Kid {
    pub(super) fn pid(&self) -> u32 {
        self.proc.id()
    }

    /// Bookkeeping of reports taken from the child: `last_heard`, `ready`, `last`.
    fn note(&mut self, reports: &[Report]) {
        for r in reports {
            self.last_heard = self.last_heard.max(r.at);
            if r.key == "ready" && self.ready.is_none() {
                self.ready = Some(r.at);
            }
            self.last.insert(r.key.clone(), r.clone());
        }
    }

    /// The reports that arrived since the last call.
    pub(super) fn poll(&mut self) -> Vec<Report> {
        let reports = self.proc.try_reports();
        self.note(&reports);
        reports
    }

    /// The last reported value of `key` as a number (0 if never reported).
    pub(super) fn last_num(&self, key: &str) -> u64 {
        self.last.get(key).map_or(0, Report::num)
    }

    /// The exit status, if the child has exited.
    pub(super) fn exited(&mut self) -> Option<ExitStatus> {
        self.proc.exited()
    }

    /// Kills the running child (SIGKILL on Unix, `TerminateProcess` on Windows, by its own
    /// handle) and reaps it. An error (with the child's output) if it had exited already: a
    /// child of the chaos driver only ends when killed or told to stop.
    pub(super) fn kill(&mut self) -> Result<(), String> {
        self.died = wall_micros();
        self.proc
            .try_kill()
            .map(drop)
            .map_err(|e| format!("{self:?}: {e}"))
    }

    /// Asks the child to finish cleanly.
    pub(super) fn stop(&mut self) {
        let _ = self.proc.try_send("stop");
    }

    /// Waits (taking reports meanwhile, which are returned) for the child to exit
    /// successfully within `limit`; an error (after killing it) otherwise.
    pub(super) fn wait_success(&mut self, limit: Duration) -> Result<Vec<Report>, String> {
        let reports = self
            .proc
            .wait_reports(limit)
            .map_err(|e| format!("{self:?}, told to stop: {e}"))?;
        self.note(&reports);
        Ok(reports)
    }

    /// The child's last stdout lines and its stderr once it exited, or its stacks while it
    /// runs.
    pub(super) fn diagnostics(&mut self) -> String {
        let running = self.exited().is_none();
        let out = self.proc.output_so_far();
        if running {
            format!("{out}\n{}", backtrace(self.pid()))
        } else {
            out
        }
    }
}

/// The stacks of a process that seems stuck, if gdb is at hand (a diagnostic only).
fn backtrace(pid: u32) -> String {
    let out = Command::new("gdb")
        .args([
            "-batch",
            "-nx",
            "-ex",
            "thread apply all bt",
            "-p",
            &pid.to_string(),
        ])
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => {
            let text = String::from_utf8_lossy(&o.stdout);
            let frames: Vec<&str> = text
                .lines()
                .filter(|l| l.starts_with('#') || l.starts_with("Thread"))
                .collect();
            format!("--- its stacks (gdb) ---\n{}", frames.join("\n"))
        }
        Err(_) => "(no gdb for its stacks)".to_owned(),
    }
}
