//! `shmwire lock`, `signal` and `wait`, driven through the real binary. Long-running commands
//! under a lock are `shmwire wait OTHER --timeout 30` (portable: no `sleep` on Windows).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, code, shmwire, spawn_retrying, stderr, Cleanup, BIN};

fn unique(tag: &str) -> String {
    common::unique_with("swcs", tag)
}

fn start(args: &[&str]) -> Child {
    spawn_retrying(
        Command::new(BIN)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    )
    .expect("start shmwire")
}

/// Waits (bounded) until `shmwire lock NAME --timeout 0` says the lock is held.
fn wait_until_locked(name: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = shmwire(&["lock", name, "--timeout", "0", "--", BIN, "--version"]);
        if code(&o) == 1 {
            return;
        }
        assert!(Instant::now() < deadline, "the lock was never taken");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn lock_runs_the_command_and_passes_its_exit_status() {
    let n = unique("lock");
    let other = unique("other");
    let _c = (Cleanup(n.clone()), Cleanup(other.clone()));
    // `wait --timeout 0` on an unsignalled event: exits 1.
    let o = shmwire(&["lock", &n, "--", BIN, "wait", &other, "--timeout", "0"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    let o = assert_ok!(shmwire(&["lock", &n, "--", BIN, "--version"]));
    assert!(String::from_utf8_lossy(&o.stdout).contains("shmwire"));
    let o = shmwire(&["info", &n, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["kind"], "sync");
    let o = shmwire(&["lock", &n, "--", "shmwire-no-such-program-here"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains(&n), "{}", stderr(&o));
}

#[test]
fn lock_times_out_with_status_1_while_another_process_holds_it() {
    let n = unique("busy");
    let gate = unique("gate");
    let _c = (Cleanup(n.clone()), Cleanup(gate.clone()));
    let mut holder = start(&["lock", &n, "--", BIN, "wait", &gate, "--timeout", "60"]);
    wait_until_locked(&n);
    let o = shmwire(&["lock", &n, "--timeout", "200ms", "--", BIN, "--version"]);
    assert_eq!(code(&o), 1, "{}", stderr(&o));
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
    assert_ok!(shmwire(&["signal", &gate]));
    assert!(holder.wait().unwrap().success());
    assert_ok!(shmwire(&[
        "lock",
        &n,
        "--timeout",
        "5",
        "--",
        BIN,
        "--version"
    ]));
}

/// `shmwire lock NAME -- <long command>` killed with SIGKILL (TerminateProcess on Windows):
/// the next `lock` recovers within a few seconds, says so on stderr, tells the command, and
/// the lock is usable again after the command succeeds.
#[test]
fn lock_recovers_from_a_killed_holder() {
    let n = unique("dead");
    let gate = unique("gate");
    let _c = (Cleanup(n.clone()), Cleanup(gate.clone()));
    let mut holder = start(&["lock", &n, "--", BIN, "wait", &gate, "--timeout", "60"]);
    wait_until_locked(&n);
    holder.kill().unwrap();
    holder.wait().unwrap();
    let t = Instant::now();
    let o = assert_ok!(shmwire(&[
        "lock",
        &n,
        "--timeout",
        "5",
        "--",
        BIN,
        "--version"
    ]));
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(stderr(&o).contains("recovered lock"), "{}", stderr(&o));
    // The orphaned command still waits on the gate: release it.
    assert_ok!(shmwire(&["signal", &gate]));
    // Repaired (the command succeeded): the next lock is ordinary.
    let o = assert_ok!(shmwire(&[
        "lock",
        &n,
        "--timeout",
        "5",
        "--",
        BIN,
        "--version"
    ]));
    assert!(!stderr(&o).contains("recovered"), "{}", stderr(&o));
}

#[cfg(unix)]
#[test]
fn lock_tells_the_command_the_owner_died_and_a_failed_repair_poisons() {
    let n = unique("poison");
    let gate = unique("gate");
    let _c = (Cleanup(n.clone()), Cleanup(gate.clone()));
    let mut holder = start(&["lock", &n, "--", BIN, "wait", &gate, "--timeout", "60"]);
    wait_until_locked(&n);
    holder.kill().unwrap(); // SIGKILL; its command lives on until we signal the gate
    holder.wait().unwrap();
    let o = shmwire(&[
        "lock",
        &n,
        "--timeout",
        "5",
        "--",
        "sh",
        "-c",
        "test \"$SHMWIRE_OWNER_DIED\" = 1 && exit 7",
    ]);
    assert_eq!(
        code(&o),
        7,
        "the command saw SHMWIRE_OWNER_DIED=1 and failed"
    );
    let o = shmwire(&["lock", &n, "--timeout", "5", "--", "true"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not recoverable"), "{}", stderr(&o));
    assert!(stderr(&o).contains("shmwire rm"), "{}", stderr(&o));
    assert_ok!(shmwire(&["signal", &gate]));
}

#[test]
fn signal_and_wait_synchronise_shell_scripts() {
    let n = unique("sig");
    let _c = Cleanup(n.clone());
    let o = shmwire(&["wait", &n, "--timeout", "100ms"]);
    assert_eq!(code(&o), 1);
    assert!(stderr(&o).contains("timed out"), "{}", stderr(&o));
    assert!(stderr(&o).contains(&n), "{}", stderr(&o));

    // A signal before the wait is kept (auto reset) and consumed by one wait.
    assert_ok!(shmwire(&["signal", &n]));
    assert_ok!(shmwire(&["wait", &n, "--timeout", "5"]));
    assert_eq!(code(&shmwire(&["wait", &n, "--timeout", "0"])), 1);

    // A waiting process is released by a later signal.
    let mut waiter = start(&["wait", &n, "--timeout", "60"]);
    std::thread::sleep(Duration::from_millis(100));
    assert_ok!(shmwire(&["signal", &n]));
    assert!(waiter.wait().unwrap().success());
}

#[test]
fn manual_reset_releases_every_waiter_until_reset() {
    let n = unique("man");
    let _c = Cleanup(n.clone());
    assert_eq!(
        code(&shmwire(&["wait", &n, "--manual", "--timeout", "0"])),
        1
    );
    let waiters: Vec<_> = (0..2)
        .map(|_| start(&["wait", &n, "--timeout", "60"]))
        .collect();
    assert_ok!(shmwire(&["signal", &n]));
    for mut w in waiters {
        assert!(w.wait().unwrap().success());
    }
    assert_eq!(
        code(&shmwire(&["wait", &n, "--timeout", "0"])),
        0,
        "stays set"
    );
    assert_ok!(shmwire(&["signal", &n, "--reset"]));
    assert_eq!(code(&shmwire(&["wait", &n, "--timeout", "0"])), 1);

    // An auto-reset NAME refuses --manual.
    let auto = unique("auto");
    let _c2 = Cleanup(auto.clone());
    assert_ok!(shmwire(&["signal", &auto]));
    let o = shmwire(&["wait", &auto, "--manual", "--timeout", "0"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("auto-reset"), "{}", stderr(&o));
}

#[test]
fn a_bytes_segment_is_not_a_sync_segment() {
    let n = unique("bytes");
    let _c = Cleanup(n.clone());
    assert_eq!(
        code(&shmwire(&["create", &n, "--size", "4096", "--persist"])),
        0
    );
    let o = shmwire(&["signal", &n]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("not sync"), "{}", stderr(&o));
    let o = shmwire(&["wait", &n, "--timeout", "nonsense"]);
    assert_eq!(code(&o), 2);
}
