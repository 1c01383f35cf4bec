//! Helpers shared by the integration tests: unique segment names, cleanup guards, child
//! processes that re-run the current test binary; and, in files that use std only so that
//! the CLI's tests include them too, a seeded PRNG and payload bytes (`data.rs`) and
//! prerequisites, `/dev/shm` and starting processes (`host.rs`).
//!
//! # Child processes
//!
//! A multi-process test re-executes its own test binary (`std::env::current_exe()`) with
//! [`CHILD_ARGS`] (`--ignored --exact child_entry --nocapture --test-threads=1`) and the
//! environment variable [`ROLE_VAR`] set. The test binary has a `#[test] #[ignore] fn
//! child_entry()` (in `main.rs`), which a normal run skips, that dispatches on the role.
//! Children report to the parent with lines `SHMWIRE:<key>=<value>` on stdout (libtest's own
//! output is ignored), and read commands from stdin, one per line. EOF on stdin means the
//! parent went away: a child waiting for a command then panics instead of hanging, and one
//! that never reads commands calls [`listen_to_parent`] to exit with it.
//!
//! [`ChildProc`] is the parent's handle: it starts the child (retrying Wine's spurious
//! `CreateProcess` failures, see [`spawn_retrying`]), stamps each report with the time it
//! arrived, keeps the child's output for failure messages, bounds every wait by
//! [`HANG_GUARD`], and kills the child when dropped.
//!
//! Nothing here forks or uses Unix-only APIs, so the same tests run on Windows (Wine).
#![allow(dead_code)] // each test module uses a different subset, some only on one OS

mod data;
#[macro_use]
mod host;

pub(crate) use data::*;
pub(crate) use host::*;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, TryRecvError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shmwire::{Name, SegmentOptions};

/// Environment variable naming the role a re-executed test binary plays.
pub(crate) const ROLE_VAR: &str = "SHMWIRE_TEST_CHILD";
/// Environment variable carrying the segment name to a child.
pub(crate) const NAME_VAR: &str = "SHMWIRE_TEST_SEGMENT";
/// Prefix of the lines a child reports to its parent.
pub(crate) const REPORT_PREFIX: &str = "SHMWIRE:";
/// The arguments that make a test binary run its `child_entry` only (it is `#[ignore]`d, so
/// that a normal run does not count it as a test).
pub(crate) const CHILD_ARGS: [&str; 5] = [
    "--ignored",
    "--exact",
    "child_entry",
    "--nocapture",
    "--test-threads=1",
];

/// How long a parent waits for a child's next report or exit before declaring it hung. This
/// is a guard against hanging the test run, not a timing assertion.
pub(crate) const HANG_GUARD: Duration = Duration::from_secs(120);

/// A segment name unique to this test, process and call: `<tag>-<pid>-<n>`. The tag is
/// shortened if the whole would not fit in [`Name::MAX_LEN`] (30 bytes on macOS).
pub(crate) fn unique_name(tag: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let suffix = format!(
        "-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let room = Name::MAX_LEN.saturating_sub(suffix.len());
    let tag: String = format!("swt-{tag}").chars().take(room).collect();
    let name = format!("{tag}{suffix}");
    assert!(
        Name::new(&name).is_ok(),
        "test name {name:?} is not a valid name"
    );
    name
}

/// Removes the named segment when dropped, however the test ends (errors are ignored: the
/// test may already have removed it, or it may never have been created).
#[derive(Debug)]
pub(crate) struct Cleanup(pub String);

impl Cleanup {
    /// A fresh unique name and its guard.
    pub(crate) fn unique(tag: &str) -> Cleanup {
        Cleanup(unique_name(tag))
    }

    /// The guarded name.
    pub(crate) fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = SegmentOptions::new().remove(&self.0);
    }
}

// ---------------------------------------------------------------------------- child side

/// The role this process plays, if it was started as a child by a test.
pub(crate) fn child_role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// The segment name the parent gave this child.
pub(crate) fn child_segment() -> String {
    std::env::var(NAME_VAR).expect("the parent sets SHMWIRE_TEST_SEGMENT")
}

/// A required environment variable of a child.
pub(crate) fn child_env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("the parent sets {var}"))
}

/// A required numeric environment variable of a child.
pub(crate) fn child_env_u64(var: &str) -> u64 {
    let v = child_env(var);
    v.parse()
        .unwrap_or_else(|_| panic!("{var}={v:?} is not a number"))
}

/// Reports `key=value` to the parent (flushed at once).
pub(crate) fn report(key: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{REPORT_PREFIX}{key}={value}").expect("writing to the parent");
    out.flush().expect("flushing to the parent");
}

/// Waits for the next command line from the parent; panics on EOF (the parent is gone).
pub(crate) fn wait_for_command() -> String {
    let mut line = String::new();
    let n = std::io::stdin()
        .read_line(&mut line)
        .expect("reading a command from the parent");
    assert!(n > 0, "the parent closed stdin before sending a command");
    line.trim_end().to_owned()
}

static STOP: AtomicBool = AtomicBool::new(false);

/// For a child that works in a loop instead of waiting for commands: starts a thread that
/// reads stdin, where the command `stop` asks the loop to finish (see [`stop_requested`]),
/// and EOF (the parent is gone, or closed stdin) ends the process at once, with status 3.
pub(crate) fn listen_to_parent() {
    std::thread::spawn(|| {
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if l.trim() == "stop" => STOP.store(true, Ordering::Relaxed),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::process::exit(3);
    });
}

/// Whether the parent sent `stop` (see [`listen_to_parent`]).
pub(crate) fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

// --------------------------------------------------------------------------- parent side

/// One report of a child, stamped with the time the parent's reader thread got it.
#[derive(Clone, Debug)]
pub(crate) struct Report {
    pub at: Instant,
    pub key: String,
    pub value: String,
}

impl Report {
    /// The value as a number (0 if it is not one).
    pub(crate) fn num(&self) -> u64 {
        self.value.parse().unwrap_or(0)
    }
}

/// The report in a line of a child's stdout, if there is one. libtest prints "test
/// child_entry ... " without a newline before running the test, so a report may start
/// mid-line.
fn parse_report(line: &str) -> Option<(&str, &str)> {
    let at = line.find(REPORT_PREFIX)?;
    let rest = &line[at + REPORT_PREFIX.len()..];
    Some(rest.split_once('=').unwrap_or((rest, "")))
}

/// A child process running one role of this test binary.
///
/// Stdout is read by a thread that stamps each line with its arrival time; the parent takes
/// the `SHMWIRE:` reports from them ([`expect_report`](Self::expect_report),
/// [`try_reports`](Self::try_reports)) and keeps the last lines for error messages, with
/// stderr. Dropping a `ChildProc` that is still running kills it (by its own pid).
#[derive(Debug)]
pub(crate) struct ChildProc {
    role: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<(Instant, String)>,
    /// The reader thread saw EOF, and every line it read was taken.
    stdout_done: bool,
    /// Reports taken from the lines but not yet by the test.
    pending: VecDeque<Report>,
    stdout_seen: VecDeque<String>,
    keep_lines: usize,
    stderr: Option<JoinHandle<String>>,
    stderr_seen: Option<String>,
    status: Option<ExitStatus>,
}

/// A command that runs this test binary's `child_entry`.
pub(crate) fn child_command() -> Command {
    let exe = std::env::current_exe().expect("current test binary");
    let mut cmd = Command::new(exe);
    cmd.args(CHILD_ARGS);
    cmd
}

/// Starts this test binary as a child playing `role` on segment `name`, with extra
/// environment variables.
pub(crate) fn spawn_child(role: &str, name: &str, env: &[(&str, String)]) -> ChildProc {
    spawn_command(child_command(), role, name, env)
}

/// Like [`spawn_child`], for a command that ends up running this test binary with
/// [`CHILD_ARGS`] (e.g. through `sh -c 'umask 077; exec "$0" "$@"'`).
pub(crate) fn spawn_command(
    mut cmd: Command,
    role: &str,
    name: &str,
    env: &[(&str, String)],
) -> ChildProc {
    cmd.env(NAME_VAR, name);
    ChildProc::start(cmd, role, env)
}

/// Starts this test binary as a child playing `role`, with environment variables `env` only
/// (no segment name).
pub(crate) fn spawn_role(role: &str, env: &[(&str, String)]) -> ChildProc {
    ChildProc::start(child_command(), role, env)
}

impl ChildProc {
    fn start(mut cmd: Command, role: &str, env: &[(&str, String)]) -> ChildProc {
        cmd.env(ROLE_VAR, role)
            .env_remove("RUST_TEST_THREADS")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child =
            spawn_retrying(&mut cmd).unwrap_or_else(|e| panic!("starting child {role}: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            // Reads to the end even when nobody listens any more, so that the child never
            // writes into a closed pipe while it runs.
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send((Instant::now(), line));
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        ChildProc {
            role: role.to_owned(),
            child,
            stdin,
            lines,
            stdout_done: false,
            pending: VecDeque::new(),
            stdout_seen: VecDeque::new(),
            keep_lines: usize::MAX,
            stderr: Some(stderr),
            stderr_seen: None,
            status: None,
        }
    }

    /// Keeps only the last `n` stdout lines for error messages (for a chatty child).
    pub(crate) fn keep_last_lines(mut self, n: usize) -> ChildProc {
        self.keep_lines = n;
        self
    }

    /// The role the child plays.
    pub(crate) fn role(&self) -> &str {
        &self.role
    }

    /// The child's pid.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// Takes the stdout lines that arrived, waiting up to `timeout` for one if none did:
    /// keeps them for error messages and queues their reports. `false` if no line came.
    fn pull(&mut self, timeout: Duration) -> bool {
        let mut got = false;
        loop {
            let next = if got || timeout.is_zero() {
                self.lines.try_recv().map_err(|e| match e {
                    TryRecvError::Empty => RecvTimeoutError::Timeout,
                    TryRecvError::Disconnected => RecvTimeoutError::Disconnected,
                })
            } else {
                self.lines.recv_timeout(timeout)
            };
            match next {
                Ok((at, line)) => {
                    got = true;
                    if let Some((key, value)) = parse_report(&line) {
                        self.pending.push_back(Report {
                            at,
                            key: key.to_owned(),
                            value: value.to_owned(),
                        });
                    }
                    if self.stdout_seen.len() >= self.keep_lines {
                        self.stdout_seen.pop_front();
                    }
                    self.stdout_seen.push_back(line);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.stdout_done = true;
                    return got;
                }
                Err(RecvTimeoutError::Timeout) => return got,
            }
        }
    }

    /// The child's next report, waiting at most `timeout`. `Disconnected` once the child
    /// closed its stdout (it exited) and every report was taken.
    pub(crate) fn next_report(&mut self, timeout: Duration) -> Result<Report, RecvTimeoutError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(r) = self.pending.pop_front() {
                return Ok(r);
            }
            if self.stdout_done {
                return Err(RecvTimeoutError::Disconnected);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if !self.pull(left) && left.is_zero() {
                return Err(RecvTimeoutError::Timeout);
            }
        }
    }

    /// The reports that arrived since the last call, without waiting.
    pub(crate) fn try_reports(&mut self) -> Vec<Report> {
        self.pull(Duration::ZERO);
        self.pending.drain(..).collect()
    }

    /// The reports still to come once the child exited: up to the end of its stdout, or for
    /// at most `limit` (a grandchild may hold the pipe open).
    fn remaining_reports(&mut self, limit: Duration) -> Vec<Report> {
        let deadline = Instant::now() + limit;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_report(left) {
                Ok(r) => out.push(r),
                Err(_) => return out,
            }
        }
    }

    /// Waits for the child's next report, which must have key `key`; returns its value.
    /// Panics (with the child's output) if the child exits or hangs first.
    pub(crate) fn expect_report(&mut self, key: &str) -> String {
        match self.next_report(HANG_GUARD) {
            Ok(r) if r.key == key => r.value,
            Ok(r) => {
                let out = self.output_so_far();
                panic!(
                    "child {} reported {}={}, expected {key}\n{out}",
                    self.role, r.key, r.value
                )
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.wait();
                let out = self.output_so_far();
                panic!(
                    "child {} exited ({status:?}) before reporting {key}\n{out}",
                    self.role
                )
            }
            Err(RecvTimeoutError::Timeout) => {
                panic!("child {} hung before reporting {key}", self.role)
            }
        }
    }

    /// Sends one command line to the child.
    pub(crate) fn send(&mut self, command: &str) {
        self.try_send(command).expect("writing to the child");
    }

    /// Sends one command line to the child; an error if it is gone (or stdin was closed).
    pub(crate) fn try_send(&mut self, command: &str) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().ok_or(std::io::ErrorKind::BrokenPipe)?;
        writeln!(stdin, "{command}")?;
        stdin.flush()
    }

    /// Closes the child's stdin (it sees EOF).
    pub(crate) fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The exit status, if the child has exited (it is reaped then).
    pub(crate) fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
            }
        }
        self.status
    }

    /// Waits for the child to exit (bounded by [`HANG_GUARD`]; then it is killed).
    pub(crate) fn wait(&mut self) -> ExitStatus {
        self.stdin = None;
        let deadline = Instant::now() + HANG_GUARD;
        loop {
            if let Some(s) = self.exited() {
                return s;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("child {} hung; killed it", self.role);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the child to exit and asserts it succeeded.
    pub(crate) fn wait_success(&mut self) {
        let status = self.wait();
        if !status.success() {
            let out = self.output_so_far();
            panic!("child {} failed: {status:?}\n{out}", self.role);
        }
    }

    /// Closes stdin, waits for the child to exit successfully (bounded by [`HANG_GUARD`]),
    /// and returns the reports not taken yet, as `(key, value)`.
    pub(crate) fn finish(&mut self) -> Vec<(String, String)> {
        self.close_stdin();
        match self.wait_reports(HANG_GUARD) {
            Ok(reports) => reports.into_iter().map(|r| (r.key, r.value)).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    /// Waits for the child to exit successfully within `limit`, taking its reports meanwhile
    /// (returned); an error with its output if it fails, or if it is still running at
    /// `limit` (it is killed then).
    pub(crate) fn wait_reports(&mut self, limit: Duration) -> Result<Vec<Report>, String> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        loop {
            got.extend(self.try_reports());
            if let Some(status) = self.exited() {
                // The last lines may still be in the pipe.
                got.extend(self.remaining_reports(Duration::from_secs(5)));
                if status.success() {
                    return Ok(got);
                }
                let out = self.output_so_far();
                return Err(format!("child {} failed ({status:?})\n{out}", self.role));
            }
            if Instant::now() >= deadline {
                let _ = self.try_kill();
                let out = self.output_so_far();
                return Err(format!(
                    "child {} did not finish within {limit:?}\n{out}",
                    self.role
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Everything the child printed so far (the stdout lines received, or the last ones
    /// kept; stderr once it exited).
    pub(crate) fn output_so_far(&mut self) -> String {
        self.pull(Duration::ZERO);
        let stderr = if self.exited().is_some() {
            if let Some(h) = self.stderr.take() {
                self.stderr_seen = Some(h.join().unwrap_or_default());
            }
            self.stderr_seen.clone().unwrap_or_default()
        } else {
            String::from("(still running)")
        };
        format!(
            "--- child {} (pid {}) stdout ---\n{}\n--- child stderr ---\n{stderr}",
            self.role,
            self.id(),
            self.stdout_seen
                .iter()
                .cloned()
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    /// Kills the child while it is still running (SIGKILL on Unix, `TerminateProcess` on
    /// Windows, by its own handle) and reaps it. Panics, with the child's output, if it had
    /// already exited: a test that means to kill a child mid-operation must not silently
    /// "kill" one that crashed or finished early.
    pub(crate) fn kill_running(&mut self) -> ExitStatus {
        self.try_kill().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`kill_running`](Self::kill_running), with an error instead of a panic.
    pub(crate) fn try_kill(&mut self) -> Result<ExitStatus, String> {
        self.kill_unreaped()?;
        let status = self
            .child
            .wait()
            .map_err(|e| format!("reaping child {}: {e}", self.role))?;
        self.status = Some(status);
        Ok(status)
    }

    /// Kills the running child without reaping it: until [`wait`](Self::wait), it may stay
    /// a zombie on Unix (which must count as dead). An error, with the child's output, if it
    /// had already exited.
    pub(crate) fn kill_unreaped(&mut self) -> Result<(), String> {
        if let Some(status) = self.exited() {
            let out = self.output_so_far();
            return Err(format!(
                "child {} exited ({status:?}) before the parent killed it\n{out}",
                self.role
            ));
        }
        let _ = self.child.kill();
        self.stdin = None;
        Ok(())
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if self.exited().is_none() {
            // Only this child, by its own pid.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
