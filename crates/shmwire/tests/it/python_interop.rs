//! Raw segments are plain POSIX shared memory: Python's `multiprocessing.shared_memory` sees
//! a raw shmwire segment, and shmwire opens one Python made. Skipped (with a note) where
//! `python3` is not available.

use std::process::{Command, Output};

use crate::common::{self, pattern, Cleanup};
use shmwire::{OpenError, Segment, SegmentOptions};

/// Python that builds the same bytes as `common::pattern(seed, n)`.
const PY_PATTERN: &str =
    "def pattern(seed, n):\n    return bytes((i * 31 + seed * 7 + 1) % 256 for i in range(n))\n";

/// Python's resource tracker unlinks, when the interpreter exits, every segment the process
/// opened or created, even one it merely attached to (CPython gh-82300; Python 3.13 adds
/// `track=False`, the default still tracks); unregistering keeps it from touching ours, and
/// works on every version. The README gives the same advice.
const PY_UNTRACK: &str = "from multiprocessing import resource_tracker\n\
                          def untrack(shm):\n    \
                          resource_tracker.unregister(shm._name, 'shared_memory')\n";

/// Runs `python3 -c script` with `args`; `None` if there is no usable python3.
fn python(script: &str, args: &[&str]) -> Option<Output> {
    let probe = Command::new("python3")
        .args(["-c", "import multiprocessing.shared_memory"])
        .output();
    match probe {
        Ok(o) if o.status.success() => {}
        _ => {
            common::require(
                "python3",
                false,
                "python3 with multiprocessing.shared_memory not found",
            );
            return None;
        }
    }
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("running python3");
    Some(out)
}

fn assert_python_ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "python failed: {:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{stderr}",
        out.status,
    );
    // `output()` also waits for the resource tracker (it inherits stderr): it must have had
    // nothing to clean up.
    assert!(
        !stderr.contains("leaked"),
        "the resource tracker cleaned up: {stderr}"
    );
    stdout
}

#[test]
fn python_reads_a_raw_segment_created_by_shmwire() {
    let c = Cleanup::unique("py-read");
    let len = 10_000usize;
    let seg = SegmentOptions::new()
        .raw(true)
        .create(c.name(), len as u64)
        .unwrap();
    seg.write_at(0, &pattern(11, len)).unwrap();

    let script = format!(
        "import sys\n\
         from multiprocessing import shared_memory\n\
         {PY_PATTERN}{PY_UNTRACK}\
         name, n = sys.argv[1], int(sys.argv[2])\n\
         shm = shared_memory.SharedMemory(name=name)\n\
         untrack(shm)\n\
         try:\n    \
             assert bytes(shm.buf[:n]) == pattern(11, n), 'bytes differ'\n    \
             shm.buf[n - 1] = 0x5A\n    \
             print('size', shm.size)\n\
         finally:\n    \
             shm.close()\n"
    );
    let Some(out) = python(&script, &[c.name(), &len.to_string()]) else {
        return;
    };
    let stdout = assert_python_ok(&out);
    #[cfg(target_os = "linux")]
    assert_eq!(
        stdout.trim(),
        format!("size {len}"),
        "Python sees the exact size"
    );
    let _ = stdout;

    // Python's write is visible here, and Python did not unlink the segment on exit.
    let mut last = [0u8; 1];
    seg.read_at(len as u64 - 1, &mut last).unwrap();
    assert_eq!(last, [0x5A]);
    let again = SegmentOptions::new().raw(true).open(c.name()).unwrap();
    assert_eq!(again.len(), len as u64);
}

#[test]
fn shmwire_opens_raw_a_segment_created_by_python() {
    let c = Cleanup::unique("py-make");
    let len = 12_345usize;
    let script = format!(
        "import sys\n\
         from multiprocessing import shared_memory\n\
         {PY_PATTERN}{PY_UNTRACK}\
         name, n = sys.argv[1], int(sys.argv[2])\n\
         shm = shared_memory.SharedMemory(name=name, create=True, size=n)\n\
         untrack(shm)\n\
         shm.buf[:n] = pattern(12, n)\n\
         shm.close()\n\
         print('ok')\n"
    );
    let Some(out) = python(&script, &[c.name(), &len.to_string()]) else {
        return;
    };
    assert_eq!(assert_python_ok(&out).trim(), "ok");

    let seg = SegmentOptions::new()
        .raw(true)
        .open(c.name())
        .expect("open Python's segment raw");
    assert!(seg.is_raw());
    #[cfg(target_os = "linux")]
    assert_eq!(seg.len(), len as u64);
    assert!(seg.len() >= len as u64);
    let mut data = vec![0u8; len];
    seg.read_at(0, &mut data).unwrap();
    assert!(data == pattern(12, len), "bytes from Python differ");

    // It has no shmwire header: opening it as a shmwire segment says so, at once (its first
    // bytes are the non-zero pattern).
    match SegmentOptions::new()
        .init_timeout(std::time::Duration::from_secs(30))
        .open(c.name())
    {
        Err(OpenError::NotShmwire { name }) => assert_eq!(name, c.name()),
        other => panic!(
            "header open of Python's segment gave {:?}",
            other.map(|s| s.len())
        ),
    }
    assert_eq!(
        SegmentOptions::new().inspect(c.name()).unwrap().state,
        shmwire::SegmentState::Foreign
    );

    drop(seg);
    SegmentOptions::new().remove(c.name()).unwrap();
    assert!(matches!(
        Segment::open(c.name()),
        Err(OpenError::NotFound { .. })
    ));
}

/// The README's Python example, run as printed (with the segment's name in place of
/// `frames`): it reads the segment, and the segment is still there once Python has exited
/// (its resource tracker would otherwise unlink it: CPython gh-82300).
#[test]
fn the_readme_python_example_reads_and_leaves_the_segment_in_place() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let block = readme
        .split("```python\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ```python block in README.md");
    // The block is indented as part of a list item.
    let script: String = block
        .lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(script.contains("name=\"frames\""), "{script}");

    let c = Cleanup::unique("py-readme");
    let seg = SegmentOptions::new()
        .raw(true)
        .create(c.name(), 64)
        .unwrap();
    seg.write_at(0, b"hello").unwrap();
    let script = script.replace("\"frames\"", &format!("{:?}", c.name()));
    let Some(out) = python(&script, &[]) else {
        return;
    };
    assert_eq!(assert_python_ok(&out).trim(), "b'hello'");
    // Still there by name for the next process (`seg` keeps only the mapping alive): Python
    // neither unlinked it nor had its tracker unlink it.
    let again = SegmentOptions::new()
        .raw(true)
        .open(c.name())
        .expect("the segment outlives the Python process that attached to it");
    let mut five = [0u8; 5];
    again.read_at(0, &mut five).unwrap();
    assert_eq!(&five, b"hello");
    drop(seg);
}
