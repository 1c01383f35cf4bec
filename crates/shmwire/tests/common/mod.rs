//! Helpers shared by the integration tests: unique segment names, cleanup guards, and child
//! processes that re-run the current test binary.
//!
//! # Child processes
//!
//! A multi-process test re-executes its own test binary (`std::env::current_exe()`) with
//! `--exact child_entry --nocapture --test-threads=1` and the environment variable
//! [`ROLE_VAR`] set. Each test binary has a `#[test] fn child_entry()` that does nothing
//! unless that variable is set, and otherwise dispatches on the role. Children report to the
//! parent with lines `SHMWIRE:<key>=<value>` on stdout (libtest's own output is ignored), and
//! read commands from stdin, one per line. EOF on stdin means the parent went away: a child
//! waiting for a command then panics instead of hanging.
//!
//! Nothing here forks or uses Unix-only APIs, so the same tests run on Windows (Wine).
#![allow(dead_code)] // each test binary uses a different subset

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use shmwire::{Name, SegmentOptions};

/// Environment variable naming the role a re-executed test binary plays.
pub const ROLE_VAR: &str = "SHMWIRE_TEST_CHILD";
/// Environment variable carrying the segment name to a child.
pub const NAME_VAR: &str = "SHMWIRE_TEST_SEGMENT";
/// Prefix of the lines a child reports to its parent.
pub const REPORT_PREFIX: &str = "SHMWIRE:";

/// How long a parent waits for a child's next report or exit before declaring it hung. This
/// is a guard against hanging the test run, not a timing assertion.
pub const HANG_GUARD: Duration = Duration::from_secs(120);

/// A segment name unique to this test, process and call: `<tag>-<pid>-<n>`. The tag is
/// shortened if the whole would not fit in [`Name::MAX_LEN`] (30 bytes on macOS).
pub fn unique_name(tag: &str) -> String {
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
pub struct Cleanup(pub String);

impl Cleanup {
    /// A fresh unique name and its guard.
    pub fn unique(tag: &str) -> Cleanup {
        Cleanup(unique_name(tag))
    }

    /// The guarded name.
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = SegmentOptions::new().remove(&self.0);
    }
}

/// A deterministic byte pattern, different for each `seed`, so misplaced reads show up.
pub fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u64)
                .wrapping_mul(31)
                .wrapping_add(u64::from(seed) * 7 + 1) as u8
        })
        .collect()
}

/// On Linux: whether `/dev/shm/<name>` exists (the file behind a POSIX shm object).
#[cfg(target_os = "linux")]
pub fn dev_shm_has(name: &str) -> bool {
    std::path::Path::new("/dev/shm").join(name).exists()
}

// ---------------------------------------------------------------------------- child side

/// The role this process plays, if it was started as a child by a test.
pub fn child_role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// The segment name the parent gave this child.
pub fn child_segment() -> String {
    std::env::var(NAME_VAR).expect("the parent sets SHMWIRE_TEST_SEGMENT")
}

/// A required environment variable of a child.
pub fn child_env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("the parent sets {var}"))
}

/// Reports `key=value` to the parent (flushed at once).
pub fn report(key: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{REPORT_PREFIX}{key}={value}").expect("writing to the parent");
    out.flush().expect("flushing to the parent");
}

/// Waits for the next command line from the parent; panics on EOF (the parent is gone).
pub fn wait_for_command() -> String {
    let mut line = String::new();
    let n = std::io::stdin()
        .read_line(&mut line)
        .expect("reading a command from the parent");
    assert!(n > 0, "the parent closed stdin before sending a command");
    line.trim_end().to_owned()
}

// --------------------------------------------------------------------------- parent side

/// A child process running one role of this test binary.
///
/// Stdout is read by a thread that forwards the `SHMWIRE:` reports; stderr is collected for
/// error messages. Dropping a `ChildProc` that is still running kills it (by its own pid).
#[derive(Debug)]
pub struct ChildProc {
    role: String,
    child: Child,
    stdin: Option<ChildStdin>,
    reports: Receiver<(String, String)>,
    stdout_log: Receiver<String>,
    stdout_seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
    stderr_seen: Option<String>,
    status: Option<ExitStatus>,
}

/// Starts this test binary as a child playing `role` on segment `name`, with extra
/// environment variables.
pub fn spawn_child(role: &str, name: &str, env: &[(&str, String)]) -> ChildProc {
    let exe = std::env::current_exe().expect("current test binary");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"]);
    spawn_command(cmd, role, name, env)
}

/// Like [`spawn_child`], for a command that ends up running this test binary (e.g. through
/// `sh -c 'umask 077; exec "$0" "$@"'`).
/// `cmd.spawn()`; on Windows retried a few times after `ERROR_INTERNAL_ERROR` (1359), which
/// Wine's `CreateProcess` returns now and then while its server is busy (seen in CI while
/// another test's child was deliberately faulting and Wine started its debugger).
fn spawn_retrying(cmd: &mut Command) -> std::io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Err(e) if cfg!(windows) && e.raw_os_error() == Some(1359) && tries < 5 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            result => return result,
        }
    }
}

pub fn spawn_command(
    mut cmd: Command,
    role: &str,
    name: &str,
    env: &[(&str, String)],
) -> ChildProc {
    cmd.env(ROLE_VAR, role)
        .env(NAME_VAR, name)
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
    let (tx, reports) = mpsc::channel();
    let (log_tx, stdout_log) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            // libtest prints "test child_entry ... " without a newline before running the
            // test, so a report may start mid-line.
            if let Some(at) = line.find(REPORT_PREFIX) {
                let rest = &line[at + REPORT_PREFIX.len()..];
                let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                let _ = tx.send((k.to_owned(), v.to_owned()));
            }
            let _ = log_tx.send(line);
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
        reports,
        stdout_log,
        stdout_seen: Vec::new(),
        stderr: Some(stderr),
        stderr_seen: None,
        status: None,
    }
}

impl ChildProc {
    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the child's next report, which must have key `key`; returns its value.
    /// Panics (with the child's output) if the child exits or hangs first.
    pub fn expect_report(&mut self, key: &str) -> String {
        match self.reports.recv_timeout(HANG_GUARD) {
            Ok((k, v)) if k == key => v,
            Ok((k, v)) => {
                let out = self.output_so_far();
                panic!(
                    "child {} reported {k}={v}, expected {key}\n{out}",
                    self.role
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
    pub fn send(&mut self, command: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{command}").expect("writing to the child");
        stdin.flush().expect("flushing to the child");
    }

    /// Closes the child's stdin (it sees EOF).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the child to exit (bounded by [`HANG_GUARD`]; then it is killed).
    pub fn wait(&mut self) -> ExitStatus {
        if let Some(s) = self.status {
            return s;
        }
        self.stdin = None;
        let deadline = std::time::Instant::now() + HANG_GUARD;
        loop {
            if let Some(s) = self.child.try_wait().expect("waiting for the child") {
                self.status = Some(s);
                return s;
            }
            if std::time::Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("child {} hung; killed it", self.role);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits for the child to exit and asserts it succeeded.
    pub fn wait_success(&mut self) {
        let status = self.wait();
        if !status.success() {
            let out = self.output_so_far();
            panic!("child {} failed: {status:?}\n{out}", self.role);
        }
    }

    /// Everything the child printed so far (stdout lines received, stderr once it exited).
    pub fn output_so_far(&mut self) -> String {
        self.stdout_seen.extend(self.stdout_log.try_iter());
        let stderr = if self.status.is_some() || matches!(self.child.try_wait(), Ok(Some(_))) {
            if let Some(h) = self.stderr.take() {
                self.stderr_seen = Some(h.join().unwrap_or_default());
            }
            self.stderr_seen.clone().unwrap_or_default()
        } else {
            String::from("(still running)")
        };
        format!(
            "--- child stdout ---\n{}\n--- child stderr ---\n{stderr}",
            self.stdout_seen.join("\n")
        )
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            // Only this child, by its own pid.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl ChildProc {
    /// Kills the child while it is still running (SIGKILL on Unix, `TerminateProcess` on
    /// Windows, by its own handle) and reaps it. Panics, with the child's output, if it had
    /// already exited: a test that means to kill a child mid-operation must not silently
    /// "kill" one that crashed or finished early.
    pub fn kill_running(&mut self) -> ExitStatus {
        if let Ok(Some(status)) = self.child.try_wait() {
            self.status = Some(status);
            let out = self.output_so_far();
            panic!(
                "child {} exited ({status:?}) before the parent killed it\n{out}",
                self.role
            );
        }
        let _ = self.child.kill();
        let status = self.child.wait().expect("reaping the killed child");
        self.status = Some(status);
        self.stdin = None;
        status
    }
}

// ------------------------------------------------------------------ prerequisites

/// The environment variable that turns a skip into a failure: a comma-separated list of the
/// prerequisites that must be there (`root`, `setpriv`, `unshare`, `python3`, `shm-limit`,
/// …), or `all`. CI sets it (`.ci/run`) to what it guarantees, so a test that CI expects to
/// run cannot pass by skipping.
pub const REQUIRE_VAR: &str = "SHMWIRE_TEST_REQUIRE";

/// Whether `list` (the value of [`REQUIRE_VAR`]) names `prerequisite`, or says `all`.
pub fn names_prerequisite(list: &str, prerequisite: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|p| p == "all" || p == prerequisite)
}

/// `true` if the prerequisite is `met`. Otherwise the test fails if [`REQUIRE_VAR`] names
/// `prerequisite`, and else prints `skipped: {why}` and returns `false` (the caller returns:
/// see [`require!`](crate::require)).
#[track_caller]
pub fn require(prerequisite: &str, met: bool, why: &str) -> bool {
    if met {
        return true;
    }
    let list = std::env::var(REQUIRE_VAR).unwrap_or_default();
    if names_prerequisite(&list, prerequisite) {
        panic!("{why}, but {REQUIRE_VAR}={list} says {prerequisite:?} must be there");
    }
    eprintln!("skipped: {why} (with {REQUIRE_VAR}={prerequisite} this fails instead)");
    false
}

/// `require!("root", is_root(), "needs root, to …")`: returns from the test (skips it) if the
/// prerequisite is not met, or fails it if [`REQUIRE_VAR`] says the prerequisite must be
/// there. See [`require`].
#[macro_export]
macro_rules! require {
    ($prerequisite:literal, $met:expr, $why:expr $(,)?) => {
        if !$crate::common::require($prerequisite, $met, $why) {
            return;
        }
    };
}
