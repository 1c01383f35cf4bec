//! What the host offers the tests: prerequisites that may be missing (root, `unshare`,
//! `python3` …, see [`require!`](crate::require)), `/dev/shm`, and starting processes.
//!
//! Shared by the library's and the CLI's integration tests (the CLI's `common/mod.rs`
//! includes this file with `#[path]`), so it uses std only: no shmwire, no helper of either.
#![allow(dead_code)] // each test crate uses a different subset

use std::process::{Child, Command};

// ------------------------------------------------------------------ prerequisites

/// The environment variable that turns a skip into a failure: a comma-separated list of the
/// prerequisites that must be there (`root`, `setpriv`, `unshare`, `python3`, `shm-limit`,
/// …), or `all`. CI sets it (`.ci/run`) to what it guarantees, so a test that CI expects to
/// run cannot pass by skipping.
pub(crate) const REQUIRE_VAR: &str = "SHMWIRE_TEST_REQUIRE";

/// Whether `list` (the value of [`REQUIRE_VAR`]) names `prerequisite`, or says `all`.
pub(crate) fn names_prerequisite(list: &str, prerequisite: &str) -> bool {
    list.split(',')
        .map(str::trim)
        .any(|p| p == "all" || p == prerequisite)
}

/// `true` if the prerequisite is `met`. Otherwise the test fails if [`REQUIRE_VAR`] names
/// `prerequisite`, and else prints `skipped: {why}` and returns `false` (the caller returns:
/// see [`require!`](crate::require)).
#[track_caller]
pub(crate) fn require(prerequisite: &str, met: bool, why: &str) -> bool {
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

/// Whether this process runs as root (uid 0).
#[cfg(target_os = "linux")]
pub(crate) fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// On Linux: whether `/dev/shm/<name>` exists (the file behind a POSIX shm object).
#[cfg(target_os = "linux")]
pub(crate) fn dev_shm_has(name: &str) -> bool {
    std::path::Path::new("/dev/shm").join(name).exists()
}

// ------------------------------------------------------------------ processes

/// `cmd.spawn()`; on Windows retried a few times after `ERROR_INTERNAL_ERROR` (1359), which
/// Wine's `CreateProcess` returns now and then while its server is busy (seen in CI while
/// another test's child was deliberately faulting and Wine started its debugger).
pub(crate) fn spawn_retrying(cmd: &mut Command) -> std::io::Result<Child> {
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
