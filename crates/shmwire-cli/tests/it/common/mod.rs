//! Helpers shared by the CLI test files: unique names, clean-up, running the binary; and,
//! shared with the library's tests (std-only files of its `tests/it/common`), a seeded PRNG
//! and payload bytes (`data.rs`), prerequisites, `/dev/shm` and starting processes
//! (`host.rs`).
#![allow(dead_code)] // not every helper is used on every OS

#[path = "../../../../shmwire/tests/it/common/data.rs"]
mod data;
#[path = "../../../../shmwire/tests/it/common/host.rs"]
#[macro_use]
mod host;

pub(crate) use data::*;
pub(crate) use host::*;

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_shmwire");

/// A segment name unique to this test process and call: `<prefix>-<tag>-<pid>-<n>`.
pub(crate) fn unique_with(prefix: &str, tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Removes the segment when the test ends, however it ends.
pub(crate) struct Cleanup(pub String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new(BIN)
            .args(["rm", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A unique scratch directory (mode 0755 on Unix, so that another user may read it),
/// removed with its contents when the test ends, however it ends.
pub(crate) struct TempDir(pub PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique_with("swt-cli", tag));
        std::fs::create_dir(&dir).expect("creating a scratch directory");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        TempDir(dir)
    }

    /// The path of `file` in the directory.
    pub(crate) fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    /// The names in the directory.
    pub(crate) fn entries(&self) -> Vec<String> {
        std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// The contents of `file` in the directory.
    pub(crate) fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.0.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs `shmwire ARGS` with no stdin and collects its output.
pub(crate) fn shmwire(args: &[&str]) -> Output {
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

pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().expect("exited normally")
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
