//! The file-mapping contract, tested against the backend of the platform being built (natively
//! on Linux, and against the Windows backend through `wine-ci.sh`).
#![allow(unsafe_code)]

use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::*;

/// A temporary file, removed when the test ends however it ends.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str, contents: &[u8]) -> TempFile {
        static N: AtomicU32 = AtomicU32::new(0);
        let path = std::env::temp_dir().join(format!(
            "swp-file-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn open_rw(&self) -> File {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.0)
            .unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

/// Copies `len` bytes out of a view.
fn read(view: &View, offset: usize, len: usize) -> Vec<u8> {
    assert!(offset + len <= view.len());
    let mut out = vec![0u8; len];
    // SAFETY: in bounds of a live view (asserted); `out` is a distinct buffer.
    unsafe { std::ptr::copy(view.as_ptr().wrapping_add(offset), out.as_mut_ptr(), len) };
    out
}

fn write(view: &View, offset: usize, data: &[u8]) {
    assert!(offset + data.len() <= view.len());
    // SAFETY: in bounds of a live writable view (asserted; callers pass writable views).
    unsafe {
        std::ptr::copy(
            data.as_ptr(),
            view.as_ptr().wrapping_add(offset),
            data.len(),
        )
    };
}

#[test]
fn read_only_views_see_the_file_at_any_granular_offset() {
    let g = allocation_granularity() as usize;
    let data = pattern(3 * g + 100);
    let t = TempFile::new("ro", &data);
    let map = FileMap::new(&File::open(&t.0).unwrap(), FileAccess::ReadOnly, None).unwrap();
    assert_eq!(map.access(), FileAccess::ReadOnly);
    if let Some(limit) = map.limit() {
        assert_eq!(limit, data.len() as u64);
    }
    let v = map.map(0, data.len(), FileAccess::ReadOnly).unwrap();
    assert_eq!(read(&v, 0, data.len()), data);
    let tail = map.map(3 * g as u64, 100, FileAccess::ReadOnly).unwrap();
    assert_eq!(read(&tail, 0, 100), &data[3 * g..]);
    assert!(map
        .map(g as u64, 0, FileAccess::ReadOnly)
        .unwrap()
        .is_empty());
}

#[test]
fn read_write_views_reach_the_file_and_flush() {
    let g = allocation_granularity() as usize;
    let t = TempFile::new("rw", &vec![0u8; 2 * g]);
    let map = FileMap::new(&t.open_rw(), FileAccess::ReadWrite, None).unwrap();
    let v = map.map(g as u64, g, FileAccess::ReadWrite).unwrap();
    write(&v, 10, b"through the map");
    map.flush(&v, 10, 15).unwrap();
    map.flush(&v, 0, v.len()).unwrap();
    map.flush(&v, 0, 0).unwrap();
    assert_eq!(&fs::read(&t.0).unwrap()[g + 10..g + 25], b"through the map");
    let e = map.flush(&v, g - 1, 2).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
}

#[test]
fn copy_on_write_views_never_reach_the_file() {
    let data = pattern(5000);
    let t = TempFile::new("cow", &data);
    let map = FileMap::new(&File::open(&t.0).unwrap(), FileAccess::CopyOnWrite, None).unwrap();
    let v = map.map(0, data.len(), FileAccess::CopyOnWrite).unwrap();
    write(&v, 0, b"private");
    assert_eq!(read(&v, 0, 7), b"private");
    map.flush(&v, 0, v.len()).unwrap();
    drop(v);
    assert_eq!(fs::read(&t.0).unwrap(), data);
    // A second mapping sees the file, not our private pages.
    let w = map.map(0, 7, FileAccess::ReadOnly).unwrap();
    assert_eq!(read(&w, 0, 7), &data[..7]);
}

#[test]
fn a_read_only_handle_cannot_make_a_read_write_mapping() {
    let t = TempFile::new("rofile", b"some bytes");
    let e = FileMap::new(&File::open(&t.0).unwrap(), FileAccess::ReadWrite, None).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::PermissionDenied, "{e}");
}

#[test]
fn views_cannot_exceed_the_mapping_access() {
    let t = TempFile::new("acc", b"some bytes");
    let ro = FileMap::new(&File::open(&t.0).unwrap(), FileAccess::ReadOnly, None).unwrap();
    for a in [FileAccess::ReadWrite, FileAccess::CopyOnWrite] {
        let e = ro.map(0, 10, a).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    }
    let rw = FileMap::new(&t.open_rw(), FileAccess::ReadWrite, None).unwrap();
    // A private copy-on-write view of a read-write mapping is allowed.
    let v = rw.map(0, 10, FileAccess::CopyOnWrite).unwrap();
    write(&v, 0, b"X");
    drop(v);
    assert_eq!(fs::read(&t.0).unwrap(), b"some bytes");
}

#[test]
fn views_above_4_gib_of_a_sparse_file() {
    let g = allocation_granularity();
    let t = TempFile::new("big", b"");
    let size = (4u64 << 30) + 3 * g;
    let mut f = t.open_rw();
    f.set_len(size).unwrap();
    f.seek(SeekFrom::Start((4 << 30) + g + 7)).unwrap();
    f.write_all(b"past 4 GiB").unwrap();
    let map = FileMap::new(&f, FileAccess::ReadOnly, None).unwrap();
    let v = map
        .map((4 << 30) + g, g as usize, FileAccess::ReadOnly)
        .unwrap();
    assert_eq!(read(&v, 7, 10), b"past 4 GiB");
    // A truncated offset would land here instead.
    let low = map.map(g, g as usize, FileAccess::ReadOnly).unwrap();
    assert_eq!(read(&low, 7, 10), [0u8; 10]);
}

#[test]
fn named_mappings_are_shared_where_they_exist() {
    let t = TempFile::new("named", b"shared by name");
    let n = format!("swp-fmap-{}", std::process::id());
    let name = ObjectName {
        name: &n,
        namespace: Namespace::Local,
    };
    let rw = t.open_rw();
    if !FILE_MAPPINGS_HAVE_NAMES {
        let e = FileMap::open_named(name, FileAccess::ReadOnly).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}");
        // The name is ignored: the path is the name.
        FileMap::new(&rw, FileAccess::ReadWrite, Some(name)).unwrap();
        return;
    }
    let e = FileMap::open_named(name, FileAccess::ReadOnly).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
    let owner = FileMap::new(&rw, FileAccess::ReadWrite, Some(name)).unwrap();
    let e = FileMap::new(&rw, FileAccess::ReadWrite, Some(name)).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");

    let peer = FileMap::open_named(name, FileAccess::ReadWrite).unwrap();
    let limit = peer.limit().unwrap();
    assert!(limit >= 14 && limit % 4096 == 0, "{limit}");
    let v = peer.map(0, 14, FileAccess::ReadWrite).unwrap();
    assert_eq!(read(&v, 0, 14), b"shared by name");
    write(&v, 0, b"SHARED");
    peer.flush(&v, 0, 6).unwrap();
    let w = owner.map(0, 14, FileAccess::ReadOnly).unwrap();
    assert_eq!(read(&w, 0, 14), b"SHARED by name");
    assert_eq!(fs::read(&t.0).unwrap(), b"SHARED by name");
    drop((v, w, peer, owner));
    let e = FileMap::open_named(name, FileAccess::ReadOnly).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::NotFound, "{e}");
}
