//! File mappings: views at any offset, windows over files larger than one view, copy-on-write,
//! flushing, sharing with another process, and the error cases.
//!
//! Multi-process tests re-execute this test binary as children (see `common/mod.rs`). Every
//! test uses its own temporary files (test tag + pid + counter) and removes them.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::common::{child_env, report, spawn_role};

use shmwire::{
    FileAccess, FileOpenError, FlushError, MappedFile, ReadError, ViewAccessError, ViewError,
    WindowedReader,
};

/// The file a child works on.
const PATH_VAR: &str = "SHMWIRE_TEST_FILE_PATH";
/// The argument of a child's role.
const ARG_VAR: &str = "SHMWIRE_TEST_FILE_ARG";

fn granularity() -> u64 {
    shmwire::file::allocation_granularity()
}

/// A unique temporary path, removed (file or directory) when the test ends however it ends.
struct TempPath(PathBuf);

impl TempPath {
    fn new(tag: &str) -> TempPath {
        static N: AtomicU32 = AtomicU32::new(0);
        TempPath(std::env::temp_dir().join(format!(
            "swt-file-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }

    fn with(tag: &str, contents: &[u8]) -> TempPath {
        let t = TempPath::new(tag);
        fs::write(&t.0, contents).unwrap();
        t
    }
}

impl Drop for TempPath {
    fn drop(&mut self) {
        if self.0.is_dir() {
            let _ = fs::remove_dir(&self.0);
        } else {
            if let Ok(m) = fs::metadata(&self.0) {
                let mut p = m.permissions();
                #[allow(clippy::permissions_set_readonly_false)]
                p.set_readonly(false);
                let _ = fs::set_permissions(&self.0, p);
            }
            let _ = fs::remove_file(&self.0);
        }
    }
}

/// Deterministic, position-dependent bytes, so that a shifted read is caught.
fn pattern(len: usize) -> Vec<u8> {
    (0..len as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

fn read_view(v: &shmwire::FileView) -> Vec<u8> {
    let mut buf = vec![0u8; v.len()];
    v.read_at(0, &mut buf).unwrap();
    buf
}

fn write_at(path: &Path, offset: u64, data: &[u8]) {
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(data).unwrap();
}

// ---------------------------------------------------------------- child processes

/// Runs this test binary again as a child with `role`, to the end; returns its reports.
fn run_child(role: &str, path: &str, arg: &str) -> Vec<(String, String)> {
    spawn_role(
        role,
        &[(PATH_VAR, path.to_owned()), (ARG_VAR, arg.to_owned())],
    )
    .finish()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// The child processes' roles (see `child_entry` in `main.rs`).
pub(crate) const CHILDREN: &[crate::Role] = &[
    ("read", child_read),
    ("write", child_write),
    ("shared", child_shared),
    ("truncate", child_truncate),
];

/// Child: reads `len` bytes at `offset` through a mapping and with plain file I/O.
fn child_read() {
    let path = child_env(PATH_VAR);
    let arg = child_env(ARG_VAR);
    let (offset, len) = arg.split_once(',').unwrap();
    let (offset, len): (u64, usize) = (offset.parse().unwrap(), len.parse().unwrap());
    let file = MappedFile::open(&path, FileAccess::ReadOnly).unwrap();
    report("mapped", hex(&read_view(&file.view(offset, len).unwrap())));
    let mut f = File::open(&path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).unwrap();
    report("read", hex(&buf));
}

/// Child: writes `arg` at offset 12345 through a read-write mapping, flushes, exits.
fn child_write() {
    let path = child_env(PATH_VAR);
    let arg = child_env(ARG_VAR);
    let file = MappedFile::open(&path, FileAccess::ReadWrite).unwrap();
    let view = file.view(12_345, arg.len()).unwrap();
    view.write_at(0, arg.as_bytes()).unwrap();
    view.flush().unwrap();
    report("flushed", arg.len());
}

/// Child: opens a shared file mapping by its share name, reads the greeting at 70000 and
/// writes a reply after it.
fn child_shared() {
    let path = child_env(PATH_VAR);
    let file = MappedFile::open_shared(&path, FileAccess::ReadWrite).unwrap();
    let view = file.view(70_000, 32).unwrap();
    let mut greeting = [0u8; 5];
    view.read_at(0, &mut greeting).unwrap();
    report("greeting", String::from_utf8_lossy(&greeting));
    view.write_at(5, b" back").unwrap();
    view.flush().unwrap();
    report("len", file.len().unwrap());
}

/// Child: truncates the file to `arg` bytes.
fn child_truncate() {
    let path = child_env(PATH_VAR);
    let arg = child_env(ARG_VAR);
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    match f.set_len(arg.parse().unwrap()) {
        Ok(()) => report("truncated", "yes"),
        Err(e) => report("truncated", format!("no: {e}")),
    }
}

// ---------------------------------------------------------------- views

#[test]
fn views_at_unaligned_offsets_are_exactly_the_range_asked_for() {
    let g = granularity() as usize;
    let data = pattern(3 * g + 17);
    let t = TempPath::with("views", &data);
    let file = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap();
    assert_eq!(file.len().unwrap(), data.len() as u64);
    for (offset, len) in [
        (0, 1),
        (1, 10),
        (g - 1, 2),
        (g - 3, g + 6),
        (g, g),
        (2 * g + 5, g + 12),
        (3 * g + 16, 1),
        (0, data.len()),
        (7, 0),
    ] {
        let v = file.view(offset as u64, len).unwrap();
        assert_eq!(v.offset(), offset as u64);
        assert_eq!(v.len(), len);
        assert_eq!(read_view(&v), &data[offset..offset + len], "{offset}+{len}");
    }

    // Writes through an unaligned read-write view land at exactly that offset.
    let rw = MappedFile::open(&t.0, FileAccess::ReadWrite).unwrap();
    let v = rw.view(g as u64 - 2, 4).unwrap();
    v.write_at(0, b"ABCD").unwrap();
    v.flush().unwrap();
    let now = fs::read(&t.0).unwrap();
    assert_eq!(&now[g - 2..g + 2], b"ABCD");
    assert_eq!(&now[..g - 2], &data[..g - 2]);
    assert_eq!(&now[g + 2..], &data[g + 2..]);
}

#[test]
fn a_view_outlives_its_mapped_file() {
    let t = TempPath::with("outlive", b"still here");
    let file = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap();
    let v = file.view(6, 4).unwrap();
    drop(file);
    assert_eq!(read_view(&v), b"here");
}

#[test]
fn create_makes_a_zeroed_file_of_the_size_asked_for() {
    let t = TempPath::new("create");
    let file = MappedFile::create(&t.0, 1 << 20).unwrap();
    assert_eq!(file.access(), FileAccess::ReadWrite);
    assert_eq!(fs::metadata(&t.0).unwrap().len(), 1 << 20);
    let v = file.view((1 << 20) - 5, 5).unwrap();
    assert_eq!(read_view(&v), [0u8; 5]);
    v.write_at(0, b"tail!").unwrap();
    v.flush_range(1, 3).unwrap();
    v.flush().unwrap();
    assert_eq!(&fs::read(&t.0).unwrap()[(1 << 20) - 5..], b"tail!");

    // Exclusive by default.
    let e = MappedFile::create(&t.0, 10).unwrap_err();
    assert!(matches!(e, FileOpenError::AlreadyExists { .. }), "{e}");
    assert!(e.to_string().contains(&t.0.display().to_string()), "{e}");
    // Not exclusive: grows a smaller file, never shrinks a larger one.
    let grown = MappedFile::options()
        .creation(shmwire::CreationMode::OpenOrCreate)
        .create(&t.0, 2 << 20)
        .unwrap();
    assert_eq!(grown.len().unwrap(), 2 << 20);
    assert_eq!(&fs::read(&t.0).unwrap()[(1 << 20) - 5..1 << 20], b"tail!");
    MappedFile::options()
        .creation(shmwire::CreationMode::OpenOrCreate)
        .create(&t.0, 100)
        .unwrap();
    assert_eq!(fs::metadata(&t.0).unwrap().len(), 2 << 20);
}

// ---------------------------------------------------------------- windows

#[test]
fn windowed_reads_across_window_boundaries_at_unaligned_offsets() {
    let g = granularity();
    let data = pattern((5 * g + 123) as usize);
    let t = TempPath::with("window", &data);
    let file = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap();
    let mut r = WindowedReader::with_window_size(file, g);
    assert_eq!(r.window_size(), g);

    for (offset, len) in [
        (g - 1, 2),
        (g - 100, 300),
        (2 * g - 7, g + 14),
        (3, 4 * g),
        (4 * g + 1, g + 122),
    ] {
        let mut buf = vec![0u8; len as usize];
        r.read_exact_at(offset, &mut buf).unwrap();
        assert_eq!(
            buf,
            &data[offset as usize..(offset + len) as usize],
            "{offset}+{len}"
        );
        assert!(r.mapped_len() as u64 <= g);
    }

    // Sequential, in odd-sized chunks that keep crossing boundaries.
    let mut all = Vec::new();
    let mut chunk = vec![0u8; 7777];
    loop {
        let n = r.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        all.extend_from_slice(&chunk[..n]);
        assert!(r.mapped_len() as u64 <= g);
    }
    assert_eq!(all, data);
    assert_eq!(r.position(), data.len() as u64);
}

#[test]
fn the_last_partial_window() {
    let g = granularity();
    let size = 2 * g + 1000;
    let data = pattern(size as usize);
    let t = TempPath::with("partial", &data);
    let mut r =
        WindowedReader::with_window_size(MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap(), g);
    let mut buf = vec![0u8; 1000];
    // Straddles the end: a short read, like pread.
    assert_eq!(r.read_at(size - 500, &mut buf).unwrap(), 500);
    assert_eq!(&buf[..500], &data[(size - 500) as usize..]);
    assert_eq!(r.mapped_len(), 1000);
    // At and past the end: nothing.
    assert_eq!(r.read_at(size, &mut buf).unwrap(), 0);
    assert_eq!(r.read_at(size + 10 * g, &mut buf).unwrap(), 0);
    assert_eq!(r.read_at(u64::MAX - 3, &mut buf).unwrap(), 0);
    // The exact variant says why, naming the file.
    let e = r.read_exact_at(size - 500, &mut buf).unwrap_err();
    assert!(
        matches!(e, ReadError::OutOfRange { offset, len: 1000, size: s, .. } if offset == size - 500 && s == size),
        "{e}"
    );
    assert!(e.to_string().contains(&t.0.display().to_string()), "{e}");
    // Seek from the end.
    assert_eq!(r.seek(SeekFrom::End(-10)).unwrap(), size - 10);
    let mut tail = Vec::new();
    r.read_to_end(&mut tail).unwrap();
    assert_eq!(tail, &data[(size - 10) as usize..]);
    assert!(r.seek(SeekFrom::Current(-(size as i64) - 1)).is_err());
}

#[test]
fn a_sparse_file_of_several_gib_with_markers_past_4_gib() {
    const GIB: u64 = 1 << 30;
    let size = 6 * GIB + 12_345;
    let t = TempPath::new("sparse");
    {
        let f = File::create(&t.0).unwrap();
        f.set_len(size).unwrap();
    }
    let markers: [(u64, &[u8]); 4] = [
        (4 * GIB + 12_345, b"marker past 4 GiB"),
        (5 * GIB - 3, b"across a 1 MiB window boundary"),
        (3, b"near the start"),
        (size - 7, b"the end"),
    ];
    for (offset, m) in markers {
        write_at(&t.0, offset, m);
    }

    let file = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap();
    assert_eq!(file.len().unwrap(), size);
    // Views, directly.
    for (offset, m) in markers {
        assert_eq!(read_view(&file.view(offset, m.len()).unwrap()), m);
    }
    // Through 1 MiB windows, randomly and sequentially.
    let mut r = WindowedReader::with_window_size(file, 1 << 20);
    for (offset, m) in markers {
        let mut buf = vec![0u8; m.len()];
        r.read_exact_at(offset, &mut buf).unwrap();
        assert_eq!(buf, m);
        assert!(r.mapped_len() <= 1 << 20);
    }
    r.seek(SeekFrom::Start(4 * GIB + 12_340)).unwrap();
    let mut buf = [0u8; 27];
    r.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"\0\0\0\0\0marker past 4 GiB\0\0\0\0\0");
    // The zeros around the markers are really there (a truncated offset would show a marker).
    let mut low = [0u8; 17];
    r.read_exact_at(12_345, &mut low).unwrap();
    assert_eq!(low, [0u8; 17]);
    let mut last = Vec::new();
    r.seek(SeekFrom::End(-7)).unwrap();
    r.read_to_end(&mut last).unwrap();
    assert_eq!(last, b"the end");
}

// ---------------------------------------------------------------- copy-on-write, flush, sharing

#[test]
fn copy_on_write_never_reaches_the_file() {
    let data = pattern(200_000);
    let t = TempPath::with("cow", &data);
    let cow = MappedFile::open(&t.0, FileAccess::CopyOnWrite).unwrap();
    let v = cow.view(65_530, 20).unwrap();
    v.write_at(0, b"private to this proc").unwrap();
    assert_eq!(read_view(&v), b"private to this proc");
    v.flush().unwrap(); // nothing to flush: the pages are private
                        // Another mapping and plain reads see the file as it was.
    let ro = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap();
    assert_eq!(
        read_view(&ro.view(65_530, 20).unwrap()),
        &data[65_530..65_550]
    );
    drop((v, cow));
    assert_eq!(fs::read(&t.0).unwrap(), data);

    // A private view of a read-write file, too.
    let rw = MappedFile::open(&t.0, FileAccess::ReadWrite).unwrap();
    let p = rw.view_with(0, 4, FileAccess::CopyOnWrite).unwrap();
    p.write_at(0, b"mine").unwrap();
    drop(p);
    assert_eq!(fs::read(&t.0).unwrap(), data);
}

#[test]
fn flush_makes_writes_visible_to_a_reader_process() {
    let t = TempPath::new("flush-reader");
    let file = MappedFile::create(&t.0, 1 << 20).unwrap();
    let v = file.view(100_003, 26).unwrap();
    v.write_at(0, b"abcdefghijklmnopqrstuvwxyz").unwrap();
    v.flush_range(0, 26).unwrap();
    let got = run_child("read", t.0.to_str().unwrap(), "100003,26");
    let want = hex(b"abcdefghijklmnopqrstuvwxyz");
    assert!(got.contains(&("mapped".into(), want.clone())), "{got:?}");
    assert!(got.contains(&("read".into(), want)), "{got:?}");
}

#[test]
fn a_writer_process_flushes_and_its_bytes_are_in_the_file() {
    let t = TempPath::with("flush-writer", &[0u8; 20_000]);
    let got = run_child("write", t.0.to_str().unwrap(), "written by a child");
    assert!(got.contains(&("flushed".into(), "18".into())), "{got:?}");
    let now = fs::read(&t.0).unwrap();
    assert_eq!(&now[12_345..12_345 + 18], b"written by a child");
    let file = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap();
    assert_eq!(
        read_view(&file.view(12_345, 18).unwrap()),
        b"written by a child"
    );
}

#[test]
fn a_file_mapping_is_shared_by_name_with_another_process() {
    let t = TempPath::with("shared", &[0u8; 100_000]);
    let name = format!("swt-fshare-{}", std::process::id());
    let file = MappedFile::options()
        .access(FileAccess::ReadWrite)
        .share_as(&name)
        .open(&t.0)
        .unwrap();
    let share = file.share_name().unwrap().to_owned();
    if shmwire::file::FILE_MAPPINGS_HAVE_NAMES {
        assert_eq!(share, name);
    } else {
        assert_eq!(Path::new(&share), t.0);
    }
    let v = file.view(70_000, 32).unwrap();
    v.write_at(0, b"hello").unwrap();
    let got = run_child("shared", &share, "");
    assert!(
        got.contains(&("greeting".into(), "hello".into())),
        "{got:?}"
    );
    let len: u64 = got
        .iter()
        .find(|(k, _)| k == "len")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(len >= 100_000, "{len}");
    let mut reply = [0u8; 10];
    v.read_at(0, &mut reply).unwrap();
    assert_eq!(&reply, b"hello back");

    // The same share name cannot be taken twice while the first is alive (Windows), and a
    // name nobody shares cannot be opened.
    if shmwire::file::FILE_MAPPINGS_HAVE_NAMES {
        let e = MappedFile::options()
            .share_as(&name)
            .open(&t.0)
            .unwrap_err();
        assert!(matches!(e, FileOpenError::NameTaken { .. }), "{e}");
        let e = MappedFile::open_shared("swt-fshare-nobody", FileAccess::ReadOnly).unwrap_err();
        assert!(matches!(e, FileOpenError::NotFound { .. }), "{e}");
    }
    let e = MappedFile::options()
        .share_as("bad/name")
        .open(&t.0)
        .unwrap_err();
    assert!(matches!(e, FileOpenError::InvalidName(_)), "{e}");
}

// ---------------------------------------------------------------- size changes

#[test]
fn a_file_truncated_by_another_process_is_noticed_before_each_window() {
    let g = granularity();
    let data = pattern((4 * g) as usize);
    let t = TempPath::with("truncated", &data);
    let file = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap();
    let mut r = WindowedReader::with_window_size(file, g);
    let mut first = vec![0u8; g as usize];
    r.read_exact(&mut first).unwrap();
    assert_eq!(first, &data[..g as usize]);

    let new_len = g + g / 2;
    let got = run_child("truncate", t.0.to_str().unwrap(), &new_len.to_string());
    let truncated = &got.iter().find(|(k, _)| k == "truncated").unwrap().1;
    println!("truncating a mapped file in a child process: {truncated}");
    if truncated != "yes" {
        // Windows refuses to shrink a file that has a mapping: nothing to guard against.
        if !cfg!(windows) {
            panic!("truncate failed: {truncated}");
        }
        return;
    }
    // The next window is mapped only after the size is read again: the reader stops at the
    // new end instead of faulting on pages past it.
    let mut rest = Vec::new();
    r.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, &data[g as usize..new_len as usize]);
    let mut buf = [0u8; 8];
    let e = r.read_exact_at(2 * g, &mut buf).unwrap_err();
    assert!(
        matches!(e, ReadError::OutOfRange { size, .. } if size == new_len),
        "{e}"
    );
    let e = r.file().view(new_len - 4, 8).unwrap_err();
    assert!(
        matches!(e, ViewError::OutOfRange { size, .. } if size == new_len),
        "{e}"
    );
}

#[test]
fn a_file_that_grows_is_seen_by_new_views() {
    let g = granularity();
    let t = TempPath::with("grow", b"small");
    let file = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap();
    let e = file.view(3 * g, 4).unwrap_err();
    assert!(matches!(e, ViewError::OutOfRange { size: 5, .. }), "{e}");
    let mut r =
        WindowedReader::with_window_size(MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap(), g);
    let mut buf = [0u8; 5];
    r.read_exact_at(0, &mut buf).unwrap();

    OpenOptions::new()
        .write(true)
        .open(&t.0)
        .unwrap()
        .set_len(3 * g + 4)
        .unwrap();
    write_at(&t.0, 3 * g, b"more");
    write_at(&t.0, 5, b"+");
    assert_eq!(read_view(&file.view(3 * g, 4).unwrap()), b"more");
    // The reader's partial first window is re-mapped once a read goes past it.
    let mut buf = [0u8; 6];
    r.read_exact_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"small+");
    let mut more = [0u8; 4];
    r.read_exact_at(3 * g, &mut more).unwrap();
    assert_eq!(&more, b"more");
}

// ---------------------------------------------------------------- errors

fn names_the_path(e: &dyn std::error::Error, path: &Path) {
    let m = e.to_string();
    assert!(
        m.contains(&path.display().to_string()),
        "{m:?} does not name {path:?}"
    );
}

#[test]
fn an_empty_file_is_a_typed_error() {
    let t = TempPath::with("empty", b"");
    for access in [
        FileAccess::ReadOnly,
        FileAccess::ReadWrite,
        FileAccess::CopyOnWrite,
    ] {
        let e = MappedFile::open(&t.0, access).unwrap_err();
        assert!(matches!(e, FileOpenError::Empty { .. }), "{e}");
        names_the_path(&e, &t.0);
    }
    let e = WindowedReader::open(&t.0).unwrap_err();
    assert!(matches!(e, FileOpenError::Empty { .. }), "{e}");

    let n = TempPath::new("zero");
    let e = MappedFile::create(&n.0, 0).unwrap_err();
    assert!(matches!(e, FileOpenError::ZeroSize { .. }), "{e}");
    names_the_path(&e, &n.0);
    assert!(!n.0.exists(), "a failed create leaves nothing behind");
}

#[test]
fn ranges_past_the_end_are_typed_errors() {
    let t = TempPath::with("range", &pattern(10_000));
    let file = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap();
    for (offset, len) in [
        (9_999, 2),
        (10_001, 0),
        (0, 10_001),
        (u64::MAX, 1),
        (1 << 33, 10),
    ] {
        let e = file.view(offset, len).unwrap_err();
        assert!(
            matches!(e, ViewError::OutOfRange { offset: o, size: 10_000, .. } if o == offset),
            "{e}"
        );
        names_the_path(&e, &t.0);
    }
    assert!(file.view(10_000, 0).unwrap().is_empty());

    let v = file.view(100, 50).unwrap();
    let mut buf = [0u8; 10];
    let e = v.read_at(45, &mut buf).unwrap_err();
    assert!(
        matches!(e, ViewAccessError::OutOfRange { view_len: 50, .. }),
        "{e}"
    );
    names_the_path(&e, &t.0);
    let e = v.flush_range(40, 11).unwrap_err();
    assert!(matches!(e, FlushError::OutOfRange { .. }), "{e}");
    names_the_path(&e, &t.0);

    let mut r = WindowedReader::new(file);
    let e = r.read_exact_at(9_995, &mut buf).unwrap_err();
    assert!(
        matches!(e, ReadError::OutOfRange { size: 10_000, .. }),
        "{e}"
    );
    names_the_path(&e, &t.0);
    let io = std::io::Error::from(e);
    assert_eq!(io.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn a_read_only_file_cannot_be_mapped_for_writing() {
    let t = TempPath::with("readonly", b"do not touch");
    // A handle opened read-only, mapped read-write.
    let e = MappedFile::options()
        .access(FileAccess::ReadWrite)
        .from_file(File::open(&t.0).unwrap(), &t.0)
        .unwrap_err();
    assert!(
        matches!(
            e,
            FileOpenError::PermissionDenied {
                access: FileAccess::ReadWrite,
                ..
            }
        ),
        "{e}"
    );
    names_the_path(&e, &t.0);
    // The same handle is fine for read-only and copy-on-write mappings.
    for access in [FileAccess::ReadOnly, FileAccess::CopyOnWrite] {
        MappedFile::options()
            .access(access)
            .from_file(File::open(&t.0).unwrap(), &t.0)
            .unwrap();
    }

    // A file marked read-only, opened read-write. (Root ignores permissions on Unix: there
    // the OS lets the open succeed and there is nothing to test.)
    let mut perms = fs::metadata(&t.0).unwrap().permissions();
    perms.set_readonly(true);
    fs::set_permissions(&t.0, perms).unwrap();
    if OpenOptions::new().write(true).open(&t.0).is_err() {
        let e = MappedFile::open(&t.0, FileAccess::ReadWrite).unwrap_err();
        assert!(matches!(e, FileOpenError::PermissionDenied { .. }), "{e}");
        names_the_path(&e, &t.0);
    }

    // Writes through a read-only view, and views with more access than the file's.
    let ro = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap();
    let v = ro.view(0, 4).unwrap();
    assert!(v.as_mut_ptr().is_none());
    let e = v.write_at(0, b"x").unwrap_err();
    assert!(matches!(e, ViewAccessError::ReadOnly { .. }), "{e}");
    names_the_path(&e, &t.0);
    for access in [FileAccess::ReadWrite, FileAccess::CopyOnWrite] {
        let e = ro.view_with(0, 4, access).unwrap_err();
        assert!(matches!(e, ViewError::AccessNotAllowed { .. }), "{e}");
        names_the_path(&e, &t.0);
    }
    assert_eq!(fs::read(&t.0).unwrap(), b"do not touch");
}

#[test]
fn a_directory_is_a_typed_error() {
    let t = TempPath::new("dir");
    fs::create_dir(&t.0).unwrap();
    for access in [FileAccess::ReadOnly, FileAccess::ReadWrite] {
        let e = MappedFile::open(&t.0, access).unwrap_err();
        assert!(
            matches!(
                e,
                FileOpenError::NotAFile {
                    what: "a directory",
                    ..
                }
            ),
            "{e}"
        );
        names_the_path(&e, &t.0);
    }
    let e = MappedFile::options()
        .creation(shmwire::CreationMode::OpenOrCreate)
        .create(&t.0, 10)
        .unwrap_err();
    assert!(matches!(e, FileOpenError::NotAFile { .. }), "{e}");
    assert!(t.0.is_dir());
}

#[test]
fn a_missing_file_is_not_found() {
    let t = TempPath::new("missing");
    let e = MappedFile::open(&t.0, FileAccess::ReadOnly).unwrap_err();
    assert!(matches!(e, FileOpenError::NotFound { .. }), "{e}");
    names_the_path(&e, &t.0);
    assert!(!t.0.exists());
}
