//! The CLI when memory, objects or descriptors run out, and when another user is not allowed
//! in: one sentence on stderr, exit status 2, nothing left behind.
//!
//! The real `/dev/shm` is never filled: a size beyond the whole filesystem fails before any
//! page is reserved, and the small-`/dev/shm` cases run in a private mount namespace with a
//! tmpfs of their own (`unshare -m`, needs root). The other-user cases run the binary as
//! `nobody` (uid 65534) and need root too; CI runs as root. Each skips with a reason.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::common::{
    self, code, dev_shm_has, is_root, shmwire, stderr, stdout, Cleanup, TempDir, BIN,
};

fn unique(tag: &str) -> String {
    common::unique_with("swexh", tag)
}

// ------------------------------------------------------------------ running out of room

/// `create --size 100TiB`: one sentence with the sizes and what to do, exit 2, nothing left.
#[test]
fn a_create_larger_than_dev_shm_is_one_sentence_with_advice_and_exit_2() {
    const SIZE: u64 = 100 << 40;
    let space = shmwire::shm_space().unwrap();
    require!(
        "shm-limit",
        space.is_some(),
        "/dev/shm has no size limit, a huge create would really allocate"
    );
    let space = space.expect("checked");
    require!("shm-limit", space.total < SIZE, "/dev/shm holds 100 TiB");
    for extra in [&[][..], &["--persist"], &["--raw", "--persist"]] {
        let n = unique("huge");
        let _c = Cleanup(n.clone());
        let o = shmwire(&[&["create", &n, "--size", "100TiB"][..], extra].concat());
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{err}");
        assert_eq!(stdout(&o), "");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "shmwire: cannot create segment {n:?} of {SIZE} bytes: not enough shared memory: "
            )),
            "{err}"
        );
        assert!(err.contains("; /dev/shm has "), "{err}");
        if space.memory.is_some_and(|m| m < SIZE) {
            assert!(err.contains("(RAM + swap) in all"), "{err}");
            assert!(err.contains("use a smaller segment"), "{err}");
        } else {
            assert!(err.contains("--shm-size="), "{err}");
        }
        assert!(!dev_shm_has(&n), "{err}");
        assert_eq!(code(&shmwire(&["info", &n])), 1, "nothing was created");
    }
}

/// Whether this process may give a private mount namespace its own tmpfs on `/dev/shm`.
fn private_shm_works() -> bool {
    Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=1m swt-probe /dev/shm")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// In a private 16 MiB `/dev/shm` (a container's, shrunk) that may hold 3 objects: `ls` and
/// `info` note that it is small and how to raise it; the second 10 MiB segment does not fit,
/// with the advice; the first is untouched; the fourth object does not fit either, for want
/// of inodes, and says so.
#[test]
fn in_a_small_dev_shm_ls_and_info_say_so_and_a_create_that_does_not_fit_says_how_to_raise_it() {
    require!(
        "unshare",
        private_shm_works(),
        "cannot mount a private tmpfs on /dev/shm (needs root and unshare)"
    );
    let dir = TempDir::new("small");
    let (first, second) = (unique("first"), unique("second"));
    // Each step writes <label>.out, .err and .rc into the scratch directory.
    let script = r#"
        mount -t tmpfs -o size=16m,nr_inodes=4 swt-small /dev/shm || exit 99
        run() { label=$1; shift; "$BIN" "$@" >"$DIR/$label.out" 2>"$DIR/$label.err"; echo $? >"$DIR/$label.rc"; }
        run ls ls
        run a create "$FIRST" --size 10MiB --persist
        run write write "$FIRST" hello
        run b create "$SECOND" --size 10MiB --persist
        run info info "$FIRST"
        run read read "$FIRST" --len 5
        run t1 create "$FIRST-1" --size 1 --persist
        run t2 create "$FIRST-2" --size 1 --persist
        run t3 create "$FIRST-3" --size 1 --persist
        ls -A /dev/shm >"$DIR/dev-shm"
    "#;
    let st = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("BIN", BIN)
        .env("DIR", &dir.0)
        .env("FIRST", &first)
        .env("SECOND", &second)
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "{st:?}");
    let rc = |label: &str| dir.read(&format!("{label}.rc")).trim().to_owned();
    let note = "note: /dev/shm is only 16 MiB (16 MiB free), small as in a container \
                (Docker's default is 64 MiB); raise it with `docker run --shm-size=1g`, `mount \
                -o remount,size=1G /dev/shm` (as root), or in Kubernetes an `emptyDir` volume \
                with `medium: Memory` mounted on /dev/shm\n";
    assert_eq!(rc("ls"), "0", "{}", dir.read("ls.err"));
    assert_eq!(dir.read("ls.err"), note);
    assert_eq!(dir.read("ls.out"), "no shared-memory segments\n");

    assert_eq!(rc("a"), "0", "{}", dir.read("a.err"));
    assert_eq!(rc("write"), "0", "{}", dir.read("write.err"));
    let err = dir.read("b.err");
    assert_eq!(rc("b"), "2", "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            &format!("shmwire: cannot create segment {second:?} of 10485760 bytes: not enough shared memory: ")
        ),
        "{err}"
    );
    assert!(
        err.contains("; /dev/shm has 6 MiB free of 16 MiB (small, as in a container"),
        "{err}"
    );
    assert!(err.contains("make it larger (at least 20 MiB)"), "{err}");
    assert!(err.contains("`docker run --shm-size=1g`"), "{err}");
    assert!(err.contains("`mount -o remount,size=1G /dev/shm`"), "{err}");
    assert!(err.contains("`medium: Memory`"), "{err}");

    assert_eq!(rc("info"), "0", "{}", dir.read("info.err"));
    assert!(dir
        .read("info.err")
        .starts_with("note: /dev/shm is only 16 MiB ("));
    assert_eq!(rc("read"), "0");
    assert_eq!(dir.read("read.out"), "hello");

    assert_eq!((rc("t1"), rc("t2")), ("0".into(), "0".into()));
    let err = dir.read("t3.err");
    assert_eq!(rc("t3"), "2", "{err}");
    assert_eq!(
        err,
        format!(
            "shmwire: cannot create segment \"{first}-3\" of 1 bytes: not enough shared memory: \
             No space left on device (os error 28); /dev/shm holds as many objects as it may \
             (4, its nr_inodes limit): remove segments that are no longer needed or remount it \
             with a larger nr_inodes (`shmwire ls` lists the segments; `shmwire gc` removes the \
             abandoned ones)\n"
        )
    );
    assert_eq!(
        dir.read("dev-shm"),
        format!("{first}\n{first}-1\n{first}-2\n"),
        "a failed create left something"
    );
    // The tmpfs was the namespace's own: the real /dev/shm never saw either.
    assert!(!dev_shm_has(&first) && !dev_shm_has(&second));
}

// ------------------------------------------------------------------ another user

const NOBODY: u32 = 65534;

/// The `shmwire` binary at a path `nobody` can run: where cargo built it if every directory
/// on the way lets others in, else a copy (mode 0755) in a scratch directory.
fn binary_for_nobody() -> (PathBuf, Option<TempDir>) {
    let runs = |bin: &Path| {
        Command::new(bin)
            .arg("--version")
            .uid(NOBODY)
            .gid(NOBODY)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if runs(Path::new(BIN)) {
        return (PathBuf::from(BIN), None);
    }
    let dir = TempDir::new("bin");
    let copy = dir.0.join("shmwire");
    std::fs::copy(BIN, &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(runs(&copy), "nobody cannot run {} either", copy.display());
    (copy, Some(dir))
}

fn as_nobody(bin: &Path, args: &[&str]) -> Output {
    Command::new(bin)
        .args(args)
        .uid(NOBODY)
        .gid(NOBODY)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn create_with_mode(name: &str, mode: &str) {
    assert_ok!(shmwire(&[
        "create",
        name,
        "--size",
        "4KiB",
        "--mode",
        mode,
        "--persist",
    ]));
    assert_ok!(shmwire(&["write", name, "root's"]));
}

fn read_as_root(name: &str) -> Vec<u8> {
    let o = assert_ok!(shmwire(&["read", name, "--len", "6"]));
    o.stdout
}

/// Owner-only (the default), read for others (644), read-write for others (666), as seen by
/// `nobody` through the CLI: every refusal is one sentence naming the segment, exit 2, and
/// changes nothing.
#[test]
fn another_user_gets_what_the_mode_allows_and_one_sentence_otherwise() {
    require!(
        "root",
        is_root(),
        "needs root, to run the CLI as another user"
    );
    let (bin, _copy) = binary_for_nobody();
    let private = unique("p600");
    let readable = unique("p644");
    let shared = unique("p666");
    let _c = [&private, &readable, &shared].map(|n| Cleanup(n.clone()));
    create_with_mode(&private, "600");
    create_with_mode(&readable, "644");
    create_with_mode(&shared, "666");
    let denied = |what: &str, n: &str| {
        format!(
            "shmwire: permission denied {what} segment {n:?}: Permission denied (os error 13)\n"
        )
    };

    // 600: nothing at all.
    for args in [
        &["read", &private][..],
        &["info", &private],
        &["write", &private, "nobody's"],
    ] {
        let o = as_nobody(&bin, args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), denied("opening", &private), "{args:?}");
    }
    let o = as_nobody(&bin, &["rm", &private]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!("shmwire: permission denied removing segment {private:?}: Operation not permitted (os error 1)\n"),
        "/dev/shm is sticky: only the owner removes"
    );
    assert!(dev_shm_has(&private), "nobody removed root's segment");
    let o = assert_ok!(as_nobody(&bin, &["ls", "--json"]));
    let rows: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = |n: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n} not listed"))
            .clone()
    };
    assert_eq!(row(&private)["state"], "no-access");
    assert_eq!(row(&private)["mode"], "600");
    assert_eq!(row(&readable)["state"], "shmwire");

    // 644: read, but no write.
    let o = assert_ok!(as_nobody(&bin, &["read", &readable, "--len", "6"]));
    assert_eq!(o.stdout, b"root's");
    let o = as_nobody(&bin, &["write", &readable, "nobody"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(stderr(&o), denied("opening", &readable));

    // 666: read and write.
    assert_ok!(as_nobody(&bin, &["write", &shared, "nobody"]));

    assert_eq!(read_as_root(&private), b"root's");
    assert_eq!(read_as_root(&readable), b"root's");
    assert_eq!(read_as_root(&shared), b"nobody");
}
