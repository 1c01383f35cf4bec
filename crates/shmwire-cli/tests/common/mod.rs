//! Helpers shared by the CLI test files: unique names, clean-up, running the binary; and,
//! shared with the library's tests (std-only files of its `tests/it/common`), a seeded PRNG
//! and payload bytes (`data.rs`), prerequisites, `/dev/shm` and starting processes
//! (`host.rs`).
#![allow(dead_code)] // each test file uses its own subset

#[path = "../../../shmwire/tests/it/common/data.rs"]
mod data;
#[path = "../../../shmwire/tests/it/common/host.rs"]
#[macro_use]
mod host;

#[allow(unused_imports)] // each test file uses a different subset
pub use data::*;
#[allow(unused_imports)]
pub use host::*;

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
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    spawn_retrying(&mut cmd)
        .and_then(|child| child.wait_with_output())
        .expect("run shmwire")
}

/// `assert_ok!(shmwire(&[…]))`: asserts that the command exited with status 0, showing its
/// stderr if not; evaluates to its `Output`.
#[macro_export]
macro_rules! assert_ok {
    ($output:expr $(,)?) => {{
        let output: ::std::process::Output = $output;
        assert_eq!(
            $crate::common::code(&output),
            0,
            "{}",
            $crate::common::stderr(&output)
        );
        output
    }};
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
