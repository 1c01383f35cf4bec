//! Helpers shared by the CLI test files: unique names, clean-up, running the binary.
#![allow(dead_code)] // each test file uses its own subset

use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub const BIN: &str = env!("CARGO_BIN_EXE_shmwire");

/// A segment name unique to this test process and call: `<prefix>-<tag>-<pid>-<n>`.
pub fn unique_with(prefix: &str, tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes the segment when the test ends, however it ends.
pub struct Cleanup(pub String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["rm", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs `shmwire ARGS` with no stdin and collects its output.
pub fn shmwire(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run shmwire")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
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
