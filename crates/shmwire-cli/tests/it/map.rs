//! `shmwire map FILE [--offset N] [--len N] [--out F]`: ranges of files of any size, windowed.

use std::fs::{self, File};
use std::io::{Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::{shmwire, stderr};

/// A unique temporary path, removed (file or directory) when the test ends.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        static N: AtomicU32 = AtomicU32::new(0);
        TempPath(std::env::temp_dir().join(format!(
            "swt-cli-map-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }

    fn with(tag: &str, contents: &[u8]) -> TempPath {
        let t = TempPath::new(tag);
        fs::write(&t.0, contents).unwrap();
        t
    }

    fn arg(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
        let _ = fs::remove_dir(&self.0);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 11) as u8)
        .collect()
}

#[test]
fn map_dumps_markers_past_4_gib_of_a_sparse_file() {
    const GIB: u64 = 1 << 30;
    let size = 5 * GIB + 100;
    let t = TempPath::new("sparse");
    let mut f = File::create(&t.0).unwrap();
    f.set_len(size).unwrap();
    for (offset, m) in [
        (4 * GIB + 12_345, &b"past 4 GiB"[..]),
        (size - 8, b"the end!"),
    ] {
        f.seek(SeekFrom::Start(offset)).unwrap();
        f.write_all(m).unwrap();
    }
    drop(f);

    let o = shmwire(&[
        "map",
        t.arg(),
        "--offset",
        &(4 * GIB + 12_340).to_string(),
        "--len",
        "20",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, b"\0\0\0\0\0past 4 GiB\0\0\0\0\0");

    // To the end, with units, through small windows.
    let o = shmwire(&["map", t.arg(), "--offset", "5GiB", "--window", "64KiB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout.len(), 100);
    assert_eq!(&o.stdout[92..], b"the end!");
}

#[test]
fn map_copies_a_whole_file_across_windows_into_out() {
    let data = pattern((3 << 20) + 4321);
    let t = TempPath::with("whole", &data);
    let out = TempPath::new("whole-out");
    let o = shmwire(&["map", t.arg(), "--out", out.arg(), "--window", "1MiB"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert!(stderr(&o).contains("copied"), "{}", stderr(&o));
    assert_eq!(fs::read(&out.0).unwrap(), data);

    // An unaligned range across a window boundary, to stdout.
    let o = shmwire(&[
        "map",
        t.arg(),
        "--offset",
        "1048000",
        "--len",
        "1000",
        "--window",
        "1MiB",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(o.stdout, &data[1_048_000..1_049_000]);
}

#[test]
fn map_refuses_ranges_past_the_end() {
    let t = TempPath::with("past", &pattern(1000));
    for args in [
        vec!["--offset", "1001"],
        vec!["--offset", "10", "--len", "991"],
    ] {
        let mut all = vec!["map", t.arg()];
        all.extend(args);
        let o = shmwire(&all);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains(t.arg()), "{}", stderr(&o));
        assert!(stderr(&o).contains("past the end"), "{}", stderr(&o));
        assert!(o.stdout.is_empty());
    }
    // Exactly at the end: nothing to copy, and that is fine.
    let o = shmwire(&["map", t.arg(), "--offset", "1000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
}

#[test]
fn map_errors_name_the_file() {
    let missing = TempPath::new("missing");
    let o = shmwire(&["map", missing.arg()]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a missing file is a plain no: {}",
        stderr(&o)
    );
    assert!(stderr(&o).contains(missing.arg()), "{}", stderr(&o));

    let empty = TempPath::with("empty", b"");
    let o = shmwire(&["map", empty.arg()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("empty") && stderr(&o).contains(empty.arg()),
        "{}",
        stderr(&o)
    );

    let dir = TempPath::new("dir");
    fs::create_dir(&dir.0).unwrap();
    let o = shmwire(&["map", dir.arg()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("directory") && stderr(&o).contains(dir.arg()),
        "{}",
        stderr(&o)
    );

    let t = TempPath::with("self", b"precious");
    let o = shmwire(&["map", t.arg(), "--out", t.arg()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(fs::read(&t.0).unwrap(), b"precious");

    let o = shmwire(&["map", t.arg(), "--len", "lots"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}
