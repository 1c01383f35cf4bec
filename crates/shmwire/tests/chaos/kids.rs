//! Child processes of the chaos driver: re-executions of this test binary playing a role.
//!
//! A child reports to the driver with lines `CHAOS:<key>=<value>` on stdout; the driver's
//! reader thread stamps each with the time it arrived. The only command a child reads is
//! `stop` (finish cleanly); EOF on stdin means the driver went away, and the child exits at
//! once. A child reports from its work loop only (never from a helper thread), so a child
//! whose reports stop is stuck, not merely quiet: that is how the driver sees a process that
//! waits for ever.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Environment variable naming the role of a re-executed test binary.
pub const ROLE_VAR: &str = "SHMWIRE_CHAOS_ROLE";
/// Prefix of a child's report lines.
const PREFIX: &str = "CHAOS:";
/// Stdout lines of a child kept for diagnostics.
const KEEP_LINES: usize = 40;

// ---------------------------------------------------------------------------- child side

static STOP: AtomicBool = AtomicBool::new(false);

/// The role this process plays, if the driver started it.
pub fn role() -> Option<String> {
    std::env::var(ROLE_VAR).ok()
}

/// A required environment variable of a child.
pub fn env_str(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("the driver sets {var}"))
}

/// A required numeric environment variable of a child.
pub fn env_u64(var: &str) -> u64 {
    env_str(var)
        .parse()
        .unwrap_or_else(|_| panic!("{var} is a number"))
}

/// Starts the thread that listens to the driver: `stop` asks the work loop to finish
/// (see [`stop_requested`]); EOF (the driver is gone) ends the process at once.
pub fn listen_to_driver() {
    std::thread::spawn(|| {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            match line {
                Ok(l) if l.trim() == "stop" => STOP.store(true, Ordering::Relaxed),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        std::process::exit(3);
    });
}

/// Whether the driver asked this child to finish.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::Relaxed)
}

/// Reports `key=value` to the driver (flushed at once).
pub fn report(key: &str, value: impl std::fmt::Display) {
    let mut out = std::io::stdout().lock();
    // A broken pipe means the driver is gone: the stdin thread ends us.
    let _ = writeln!(out, "{PREFIX}{key}={value}");
    let _ = out.flush();
}

/// Paces the heartbeat reports of a work loop.
#[derive(Debug)]
pub struct Beat(Instant);

impl Beat {
    /// Every this long, a work loop reports its progress.
    pub const EVERY: Duration = Duration::from_millis(100);

    pub fn new() -> Beat {
        Beat(Instant::now())
    }

    /// Whether a heartbeat is due (and if so, starts the next period).
    pub fn due(&mut self) -> bool {
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
pub fn wall_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// Reports `disc=<wall time>` when a child is told `Disconnected`: at once the first time
/// after something else, then at most every 10 ms while it lasts (so a streak that began
/// before the driver's last kill shows the new death within 10 ms).
#[derive(Debug, Default)]
pub struct Disc(Option<Instant>);

impl Disc {
    pub fn seen(&mut self) {
        if self
            .0
            .is_none_or(|t| t.elapsed() >= Duration::from_millis(10))
        {
            report("disc", wall_micros());
            self.0 = Some(Instant::now());
        }
    }

    pub fn clear(&mut self) {
        self.0 = None;
    }
}

// --------------------------------------------------------------------------- driver side

/// One report of a child, stamped with the time the driver's reader thread got it.
#[derive(Clone, Debug)]
pub struct Report {
    pub at: Instant,
    pub key: String,
    pub value: String,
}

impl Report {
    /// The value as a number (0 if it is not one).
    pub fn num(&self) -> u64 {
        self.value.parse().unwrap_or(0)
    }
}

enum Line {
    Report(Report),
    Other(String),
}

/// A running child process of the driver. Dropping it kills the child (by its own handle)
/// if it still runs, and reaps it.
pub struct Kid {
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
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<Line>,
    seen: VecDeque<String>,
    stderr: Option<JoinHandle<String>>,
    stderr_text: Option<String>,
    status: Option<ExitStatus>,
}

impl std::fmt::Debug for Kid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} #{} (pid {})", self.role, self.gen, self.child.id())
    }
}

/// Starts this test binary as a child playing `role`.
pub fn spawn(role: &str, slot: usize, gen: u64, env: &[(&str, String)]) -> Kid {
    let exe = std::env::current_exe().expect("the current test binary");
    let mut cmd = Command::new(exe);
    cmd.args([
        "--ignored",
        "--exact",
        "child_entry",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(ROLE_VAR, role)
    .env_remove("RUST_TEST_THREADS")
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("starting child {role}: {e}"));
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("piped stdout");
    let mut stderr = child.stderr.take().expect("piped stderr");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let at = Instant::now();
            // libtest prints "test child_entry ... " without a newline first.
            let msg = match line.find(PREFIX) {
                Some(i) => {
                    let rest = &line[i + PREFIX.len()..];
                    let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                    Line::Report(Report {
                        at,
                        key: k.to_owned(),
                        value: v.to_owned(),
                    })
                }
                None => Line::Other(line),
            };
            if tx.send(msg).is_err() {
                break;
            }
        }
    });
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let now = Instant::now();
    Kid {
        role: role.to_owned(),
        slot,
        gen,
        ready: None,
        died: 0,
        last_heard: now,
        last: Default::default(),
        child,
        stdin,
        lines,
        seen: VecDeque::new(),
        stderr: Some(stderr),
        stderr_text: None,
        status: None,
    }
}

impl Kid {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The reports that arrived since the last call (bookkeeping: `last_heard`, `ready`,
    /// `last`).
    pub fn poll(&mut self) -> Vec<Report> {
        let mut out = Vec::new();
        while let Ok(line) = self.lines.try_recv() {
            let text = match line {
                Line::Report(r) => {
                    self.last_heard = self.last_heard.max(r.at);
                    if r.key == "ready" && self.ready.is_none() {
                        self.ready = Some(r.at);
                    }
                    let text = format!("{}{}={}", PREFIX, r.key, r.value);
                    self.last.insert(r.key.clone(), r.clone());
                    out.push(r);
                    text
                }
                Line::Other(l) => l,
            };
            if self.seen.len() == KEEP_LINES {
                self.seen.pop_front();
            }
            self.seen.push_back(text);
        }
        out
    }

    /// The last reported value of `key` as a number (0 if never reported).
    pub fn last_num(&self, key: &str) -> u64 {
        self.last.get(key).map_or(0, Report::num)
    }

    /// The exit status, if the child has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(s)) = self.child.try_wait() {
                self.status = Some(s);
            }
        }
        self.status
    }

    /// Kills the running child (SIGKILL on Unix, `TerminateProcess` on Windows, by its own
    /// handle) and reaps it. An error (with the child's output) if it had exited already: a
    /// child of the chaos driver only ends when killed or told to stop.
    pub fn kill(&mut self) -> Result<(), String> {
        if let Some(status) = self.exited() {
            return Err(format!(
                "{self:?} exited by itself ({status}) before the driver killed it\n{}",
                self.diagnostics()
            ));
        }
        self.died = wall_micros();
        let _ = self.child.kill();
        let status = self
            .child
            .wait()
            .map_err(|e| format!("reaping {self:?}: {e}"))?;
        self.status = Some(status);
        self.stdin = None;
        Ok(())
    }

    /// Asks the child to finish cleanly.
    pub fn stop(&mut self) {
        if let Some(stdin) = self.stdin.as_mut() {
            let _ = writeln!(stdin, "stop");
            let _ = stdin.flush();
        }
    }

    /// Waits (polling reports meanwhile, which are returned) for the child to exit
    /// successfully within `limit`; an error (after killing it) otherwise.
    pub fn wait_success(&mut self, limit: Duration) -> Result<Vec<Report>, String> {
        let deadline = Instant::now() + limit;
        let mut got = Vec::new();
        loop {
            got.extend(self.poll());
            if let Some(status) = self.exited() {
                // The last lines may still be in the pipe.
                std::thread::sleep(Duration::from_millis(20));
                got.extend(self.poll());
                if status.success() {
                    return Ok(got);
                }
                return Err(format!(
                    "{self:?} failed ({status})\n{}",
                    self.diagnostics()
                ));
            }
            if Instant::now() >= deadline {
                let _ = self.kill();
                return Err(format!(
                    "{self:?} did not finish within {limit:?} of being told to stop\n{}",
                    self.diagnostics()
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The child's last stdout lines, and its stderr once it exited.
    pub fn diagnostics(&mut self) -> String {
        self.poll();
        let stderr = if self.exited().is_some() {
            if let Some(h) = self.stderr.take() {
                self.stderr_text = Some(h.join().unwrap_or_default());
            }
            self.stderr_text.clone().unwrap_or_default()
        } else {
            format!("(still running)\n{}", backtrace(self.pid()))
        };
        format!(
            "--- {self:?}: last stdout lines ---\n{}\n--- stderr ---\n{stderr}",
            self.seen.iter().cloned().collect::<Vec<_>>().join("\n")
        )
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.exited().is_none() {
            // Only this child, by its own handle.
            let _ = self.child.kill();
            let _ = self.child.wait();
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
