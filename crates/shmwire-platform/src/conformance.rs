//! The backend contract, tested against the backend of the platform being built. The same
//! suite runs natively on Linux and, through `wine-ci.sh`, against the Windows backend.
#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::*;

pub(crate) fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "swp-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

pub(crate) fn name(n: &str) -> ObjectName<'_> {
    ObjectName {
        name: n,
        namespace: Namespace::Local,
    }
}

/// Removes the object when the test ends, however it ends.
struct Cleanup(String);
impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Os::remove(name(&self.0));
    }
}

#[test]
fn create_map_write_and_see_it_through_a_second_handle() {
    let n = unique("rw");
    let _c = Cleanup(n.clone());
    let a = Shm::create(name(&n), 10_000, Permissions::default()).unwrap();
    assert!(a.size().unwrap() >= 10_000);
    let va = a.map(0, 10_000, Access::ReadWrite).unwrap();
    // SAFETY: the view is 10 000 bytes long and writable; no other thread uses it.
    unsafe { va.as_ptr().wrapping_add(9_999).write(0xA5) };

    let b = Shm::open(name(&n), Access::ReadOnly).unwrap();
    assert_eq!(b.access(), Access::ReadOnly);
    let vb = b.map(0, 10_000, Access::ReadOnly).unwrap();
    // SAFETY: in bounds of a live 10 000-byte view.
    assert_eq!(unsafe { vb.as_ptr().wrapping_add(9_999).read() }, 0xA5);
    // SAFETY: in bounds; fresh pages are zero.
    assert_eq!(unsafe { vb.as_ptr().read() }, 0);
}

#[test]
fn exclusive_create_of_an_existing_name_fails() {
    let n = unique("excl");
    let _c = Cleanup(n.clone());
    let _a = Shm::create(name(&n), 4096, Permissions::default()).unwrap();
    let err = Shm::create(name(&n), 4096, Permissions::default()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
}

#[test]
fn opening_a_missing_name_is_not_found() {
    let n = unique("missing");
    let err = Shm::open(name(&n), Access::ReadWrite).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound, "{err}");
}

#[test]
fn empty_views_need_no_mapping() {
    let n = unique("empty");
    let _c = Cleanup(n.clone());
    let a = Shm::create(name(&n), 4096, Permissions::default()).unwrap();
    let v = a.map(0, 0, Access::ReadOnly).unwrap();
    assert!(v.is_empty());
}

#[test]
fn views_at_a_granularity_offset() {
    let n = unique("offset");
    let _c = Cleanup(n.clone());
    let g = allocation_granularity();
    let a = Shm::create(name(&n), 2 * g, Permissions::default()).unwrap();
    let whole = a.map(0, (2 * g) as usize, Access::ReadWrite).unwrap();
    // SAFETY: offset g is inside the 2g-byte writable view.
    unsafe { whole.as_ptr().wrapping_add(g as usize).write(7) };
    let second = a.map(g, g as usize, Access::ReadOnly).unwrap();
    // SAFETY: the view is g bytes long.
    assert_eq!(unsafe { second.as_ptr().read() }, 7);
}

#[test]
fn remove_then_open_is_not_found_on_systems_where_names_outlive_handles() {
    let n = unique("rm");
    let a = Shm::create(name(&n), 4096, Permissions::default()).unwrap();
    if NAMES_OUTLIVE_HANDLES {
        Os::remove(name(&n)).unwrap();
        assert_eq!(
            Shm::open(name(&n), Access::ReadOnly).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
        assert_eq!(
            Os::remove(name(&n)).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    } else {
        // Not held by a holder process: remove says so; the object dies with `a`.
        assert_eq!(
            Os::remove(name(&n)).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        drop(a);
        assert_eq!(
            Shm::open(name(&n), Access::ReadOnly).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}

#[test]
fn sizes_above_4_gib_are_not_truncated() {
    // Mapping 5 GiB of address space costs nothing until touched; creating it reserves the
    // pages, so use a size the machine can afford only where reservation is lazy... it is not
    // on Linux tmpfs (fallocate), hence the modest 4 GiB + 2 pages.
    let n = unique("big");
    let _c = Cleanup(n.clone());
    let g = allocation_granularity();
    let size = (4u64 << 30) + 2 * g;
    let a = Shm::create(name(&n), size, Permissions::default()).unwrap();
    assert!(a.size().unwrap() >= size);
    // A view past 4 GiB: the offset's high half must reach the OS.
    let v = a.map(4u64 << 30, g as usize, Access::ReadWrite).unwrap();
    // SAFETY: in bounds of a g-byte writable view.
    unsafe { v.as_ptr().write(42) };
    let w = a.map(0, g as usize, Access::ReadOnly).unwrap();
    // SAFETY: in bounds; a truncated offset would have written here.
    assert_eq!(unsafe { w.as_ptr().read() }, 0);
}

#[test]
fn an_owner_removes_only_its_own_object() {
    let n = unique("own");
    let _c = Cleanup(n.clone());
    let a = Shm::create(name(&n), 4096, Permissions::default()).unwrap();
    if NAMES_OUTLIVE_HANDLES {
        Os::remove(name(&n)).unwrap();
        let b = Shm::create(name(&n), 8192, Permissions::default()).unwrap();
        assert!(a.remove_if_same(name(&n)).is_err(), "a's name went to b");
        assert!(Shm::open(name(&n), Access::ReadOnly).is_ok(), "b survives");
        b.remove_if_same(name(&n)).unwrap();
    } else {
        a.remove_if_same(name(&n)).unwrap();
        drop(a);
    }
    assert_eq!(
        Shm::open(name(&n), Access::ReadOnly).unwrap_err().kind(),
        io::ErrorKind::NotFound
    );
}

#[test]
fn list_finds_a_new_object_with_its_size() {
    let n = unique("list");
    let _c = Cleanup(n.clone());
    let _a = Shm::create(name(&n), 10_000, Permissions::default()).unwrap();
    match Os::list() {
        Ok(all) => {
            let me = all.iter().find(|o| o.name == n).expect("listed");
            assert!(me.size >= 10_000, "{me:?}");
        }
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}"),
    }
}

/// Windows lists the sections of `Global\` as well as the session's `Local\` ones, and marks
/// them, so that a person or gc opens each in its own namespace; POSIX has one namespace and
/// marks nothing. (Creating in `Global\` takes SeCreateGlobalPrivilege on Windows. Wine does
/// not enforce it, so under Wine this test creates there unprivileged; on real Windows an
/// unprivileged run checks the `Local\` object only.)
#[test]
fn list_marks_the_objects_of_the_global_namespace() {
    let (l, g) = (unique("list-l"), unique("list-g"));
    let _c = Cleanup(l.clone());
    let global = |n| ObjectName {
        name: n,
        namespace: Namespace::Global,
    };
    let _local = Shm::create(name(&l), 4096, Permissions::default()).unwrap();
    let made_global = match Shm::create(global(&g), 8192, Permissions::default()) {
        Ok(shm) => Some(shm),
        Err(e) if cfg!(windows) && e.kind() == io::ErrorKind::PermissionDenied => None,
        Err(e) => panic!("creating {g:?} in Global: {e}"),
    };
    let all = match Os::list() {
        Ok(all) => all,
        Err(e) => return assert_eq!(e.kind(), io::ErrorKind::Unsupported, "{e}"),
    };
    let of = |n: &str| all.iter().filter(|o| o.name == n).collect::<Vec<_>>();
    let local_rows = of(&l);
    assert_eq!(local_rows.len(), 1, "{local_rows:?}");
    assert!(!local_rows[0].global, "{local_rows:?}");
    if made_global.is_some() {
        let rows = of(&g);
        assert_eq!(rows.len(), 1, "{rows:?}");
        // One namespace (POSIX, and Windows' session 0, where Local\ is Global\): the name
        // is simply the one object, found without asking for Global\, and not marked.
        let one_namespace = Shm::open(name(&g), Access::ReadOnly).is_ok();
        assert_eq!(rows[0].global, !one_namespace, "{rows:?}");
        assert!(rows[0].size >= 8192, "{rows:?}");
        if !cfg!(windows) {
            assert!(one_namespace);
        }
    }
    drop(made_global);
    let _ = Os::remove(global(&g));
}

#[test]
fn the_current_process_is_alive() {
    let me = Os::current_process();
    assert_eq!(me.pid, std::process::id());
    assert_eq!(Os::liveness(me), Liveness::Alive);
    let gone = ProcessId {
        pid: me.pid,
        start_time: me.start_time.wrapping_add(12345),
    };
    assert_eq!(Os::liveness(gone), Liveness::Dead);
}

#[test]
fn a_clone_is_the_same_object_and_keys_tell_objects_apart() {
    let n = unique("clone");
    let _c = Cleanup(n.clone());
    let a = Shm::create(name(&n), 4096, Permissions::default()).unwrap();
    let b = Shm::open(name(&n), Access::ReadOnly).unwrap();
    let c = b.try_clone().unwrap();
    assert_eq!(c.access(), Access::ReadOnly);
    let va = a.map(0, 4096, Access::ReadWrite).unwrap();
    // SAFETY: in bounds of a live, writable 4096-byte view used by this thread only.
    unsafe { va.as_ptr().wrapping_add(100).write(0x5C) };
    let vc = c.map(0, 4096, Access::ReadOnly).unwrap();
    // SAFETY: in bounds of a live 4096-byte view.
    assert_eq!(unsafe { vc.as_ptr().wrapping_add(100).read() }, 0x5C);

    let other_name = unique("clone-other");
    let _c2 = Cleanup(other_name.clone());
    let other = Shm::create(name(&other_name), 4096, Permissions::default()).unwrap();
    match a.key().unwrap() {
        Some(k) => {
            assert_eq!(b.key().unwrap(), Some(k));
            assert_eq!(c.key().unwrap(), Some(k));
            assert_ne!(other.key().unwrap(), Some(k));
        }
        None => assert!(other.key().unwrap().is_none()),
    }
    if let Some(t) = a.changed().unwrap() {
        let age = std::time::SystemTime::now().duration_since(t);
        assert!(age.as_ref().is_ok_and(|d| d.as_secs() < 600), "{age:?}");
    }
}

#[test]
fn users_sees_our_mapping_but_not_our_handles() {
    let n = unique("users");
    let _c = Cleanup(n.clone());
    let a = Shm::create(name(&n), 4096, Permissions::default()).unwrap();
    let Some(key) = a.key().unwrap() else {
        assert!(Os::users().unwrap().is_none(), "no keys, no users");
        return;
    };
    let Some(users) = Os::users().unwrap() else {
        return; // this OS cannot tell (macOS)
    };
    assert_eq!(
        users.of(key),
        &[] as &[u32],
        "an open handle of ours does not count"
    );
    let view = a.map(0, 4096, Access::ReadOnly).unwrap();
    let users = Os::users().unwrap().expect("as before");
    assert_eq!(users.of(key), &[std::process::id()], "our mapping counts");
    drop(view);
    let users = Os::users().unwrap().expect("as before");
    assert_eq!(users.of(key), &[] as &[u32], "unmapped: no use left");
}
