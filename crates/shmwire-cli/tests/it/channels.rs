//! `shmwire send`/`recv` and `pub`/`sub`, driven through the real binary as separate
//! processes.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::{self, code, shmwire, spawn_retrying, stderr, stdout, Cleanup, TempDir, BIN};

fn unique(tag: &str) -> String {
    common::unique_with("swch", tag)
}

/// `len` pseudo-random bytes (`common::fill`): incompressible, reproducible.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0; len];
    common::fill(&mut v, seed);
    v
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Starts `shmwire ARGS` with stdin, stdout and stderr as given (stderr always piped).
fn start(args: &[&str], stdin: Stdio, stdout: Stdio) -> Child {
    spawn_retrying(
        Command::new(BIN)
            .args(args)
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::piped()),
    )
    .expect("start shmwire")
}

/// Polls until `cond` holds; panics after a minute (a hang guard, not a timing assertion).
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until the channel segment NAME exists (its first end has created it).
fn wait_until_created(name: &str) {
    wait_until(&format!("{name} exists"), || {
        code(&shmwire(&["info", name])) == 0
    });
}

fn assert_one_line(o: &Output) {
    let e = stderr(o);
    assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
}

#[test]
fn send_and_recv_move_a_file_byte_exactly_whichever_starts_first() {
    let dir = TempDir::new("both");
    // Not a multiple of any chunk size, and many chunks.
    let data = random_bytes(5 * 1024 * 1024 + 4321, 7);
    let input = dir.path("input.bin");
    fs::write(&input, &data).unwrap();

    // The receiver first; the default ring (4 MiB).
    let n = unique("recvfirst");
    let _c = Cleanup(n.clone());
    let out = dir.path("out1.bin");
    let rx = start(
        &["recv", &n, "--out", arg(&out)],
        Stdio::null(),
        Stdio::null(),
    );
    wait_until_created(&n);
    let tx = shmwire(&["send", &n, arg(&input)]);
    let rx = rx.wait_with_output().unwrap();
    assert_eq!(code(&tx), 0, "send: {}", stderr(&tx));
    assert_eq!(code(&rx), 0, "recv: {}", stderr(&rx));
    assert!(fs::read(&out).unwrap() == data, "the file arrived intact");
    assert!(
        stderr(&tx).contains("the receiver confirmed it"),
        "{}",
        stderr(&tx)
    );
    assert!(stderr(&rx).contains("verified"), "{}", stderr(&rx));
    assert!(
        stderr(&rx).contains("input.bin"),
        "the name came along: {}",
        stderr(&rx)
    );
    assert_eq!(code(&shmwire(&["info", &n])), 1, "the channel is gone");

    // The sender first, with a small ring (many wrap-arounds); the receiver takes the ring
    // size from the channel.
    let n = unique("sendfirst");
    let _c = Cleanup(n.clone());
    let out = dir.path("out2.bin");
    let tx = start(
        &["send", &n, arg(&input), "--capacity", "64KiB"],
        Stdio::null(),
        Stdio::null(),
    );
    wait_until_created(&n);
    let rx = shmwire(&["recv", &n, "--out", arg(&out)]);
    let tx = tx.wait_with_output().unwrap();
    assert_eq!(code(&rx), 0, "recv: {}", stderr(&rx));
    assert_eq!(code(&tx), 0, "send: {}", stderr(&tx));
    assert!(fs::read(&out).unwrap() == data, "the file arrived intact");
    assert_eq!(
        dir.entries().len(),
        3,
        "input and two outputs, no temporary files: {:?}",
        dir.entries()
    );
    assert_eq!(code(&shmwire(&["info", &n])), 1, "the channel is gone");
}

#[test]
fn send_reads_stdin_and_recv_writes_stdout() {
    let n = unique("stdio");
    let _c = Cleanup(n.clone());
    let data = random_bytes(3 * 1024 * 1024 + 5, 11);
    let rx = start(&["recv", &n], Stdio::null(), Stdio::piped());
    let mut tx = start(&["send", &n, "-"], Stdio::piped(), Stdio::null());
    let mut stdin = tx.stdin.take().unwrap();
    let feed = {
        let data = data.clone();
        // A thread: our reading of recv's stdout must go on while send's stdin is fed.
        std::thread::spawn(move || stdin.write_all(&data))
    };
    let rx = rx.wait_with_output().unwrap();
    feed.join().unwrap().unwrap();
    let tx = tx.wait_with_output().unwrap();
    assert_eq!(code(&tx), 0, "send: {}", stderr(&tx));
    assert_eq!(code(&rx), 0, "recv: {}", stderr(&rx));
    assert!(rx.stdout == data, "stdout holds exactly what stdin had");
    assert!(stderr(&rx).contains("written to stdout"), "{}", stderr(&rx));
}

/// The sender is killed mid-transfer: recv fails with one sentence and leaves neither the
/// output nor its temporary file. The sender reads a pipe that the test keeps open, so it is
/// mid-transfer for certain when it is killed (no race with a fast transfer).
#[test]
fn recv_out_leaves_nothing_when_the_sender_is_killed() {
    let dir = TempDir::new("kill");
    let n = unique("kill");
    let _c = Cleanup(n.clone());
    let out = dir.path("out.bin");
    let rx = start(
        &["recv", &n, "--out", arg(&out), "--capacity", "64KiB"],
        Stdio::null(),
        Stdio::null(),
    );
    let mut tx = start(
        &["send", &n, "-", "--capacity", "64KiB"],
        Stdio::piped(),
        Stdio::null(),
    );
    let mut stdin = tx.stdin.take().unwrap();
    stdin.write_all(&random_bytes(1024 * 1024, 3)).unwrap();
    stdin.flush().unwrap();
    // Part of it has arrived in the temporary file: the transfer is under way.
    wait_until("data arrives in the temporary file", || {
        dir.entries()
            .iter()
            .any(|f| f != "out.bin" && fs::metadata(dir.path(f)).is_ok_and(|m| m.len() > 0))
    });
    tx.kill().unwrap();
    tx.wait().unwrap();
    drop(stdin);
    let rx = rx.wait_with_output().unwrap();
    assert_eq!(code(&rx), 2, "{}", stderr(&rx));
    assert_one_line(&rx);
    assert!(stderr(&rx).contains("went away after"), "{}", stderr(&rx));
    assert!(stderr(&rx).contains("nothing was saved"), "{}", stderr(&rx));
    assert!(!out.exists(), "no output");
    assert_eq!(dir.entries(), Vec::<String>::new(), "no temporary file");
}

/// The receiver is killed mid-transfer: send fails with one sentence and removes the channel,
/// which would otherwise keep the rest of the transfer for the next receiver.
#[test]
fn send_fails_and_clears_the_channel_when_the_receiver_is_killed() {
    let dir = TempDir::new("killrx");
    let n = unique("killrx");
    let _c = Cleanup(n.clone());
    let mut rx = start(
        &[
            "recv",
            &n,
            "--out",
            arg(&dir.path("out.bin")),
            "--capacity",
            "64KiB",
        ],
        Stdio::null(),
        Stdio::null(),
    );
    let mut tx = start(
        &["send", &n, "-", "--capacity", "64KiB"],
        Stdio::piped(),
        Stdio::null(),
    );
    let mut stdin = tx.stdin.take().unwrap();
    stdin.write_all(&random_bytes(256 * 1024, 5)).unwrap();
    stdin.flush().unwrap();
    wait_until("data arrives in the temporary file", || {
        dir.entries()
            .iter()
            .any(|f| fs::metadata(dir.path(f)).is_ok_and(|m| m.len() > 0))
    });
    rx.kill().unwrap();
    rx.wait().unwrap();
    // More data, then the end: the sender finds nobody to take or confirm it. (It may have
    // noticed already, waiting for room, and be gone: a broken pipe then.)
    let _ = stdin.write_all(&random_bytes(256 * 1024, 6));
    drop(stdin);
    let tx = tx.wait_with_output().unwrap();
    assert_eq!(code(&tx), 2, "{}", stderr(&tx));
    assert_one_line(&tx);
    assert!(
        stderr(&tx).contains("receiver") && stderr(&tx).contains("channel"),
        "{}",
        stderr(&tx)
    );
    assert_eq!(code(&shmwire(&["info", &n])), 1, "the channel was removed");
}

/// A transfer whose sender died before any receiver came is refused, not waited on for ever.
/// POSIX only: on Windows the channel dies with its sender's last handle, so there is nothing
/// left over to find.
#[cfg(unix)]
#[test]
fn recv_refuses_a_transfer_left_by_a_dead_sender() {
    use shmwire::channel::{spsc, ChannelOptions};
    let n = unique("stale");
    let _c = Cleanup(n.clone());
    let mut tx = spsc::Sender::open(&n, &ChannelOptions::new().capacity(1 << 20)).unwrap();
    let mut header = b"SWFH".to_vec();
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&5u64.to_le_bytes());
    tx.send(&header).unwrap();
    tx.send(b"hel").unwrap();
    drop(tx); // the channel keeps the unreceived messages
    let o = shmwire(&["recv", &n, "--timeout", "60"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_one_line(&o);
    assert!(stderr(&o).contains("sender is gone"), "{}", stderr(&o));
}

/// A sender that lies (speaking the protocol through the library): recv refuses the data,
/// and does not confirm it, so the sender learns that it was rejected.
#[test]
fn recv_rejects_a_checksum_mismatch_and_does_not_confirm() {
    use shmwire::channel::{spsc, ChannelOptions, SendTimeoutError};
    let dir = TempDir::new("badsum");
    let n = unique("badsum");
    let _c = Cleanup(n.clone());
    let opts = ChannelOptions::new().capacity(1 << 20);
    let mut tx = spsc::Sender::open(&n, &opts).unwrap();
    let out = dir.path("out.bin");
    let rx = start(
        &["recv", &n, "--out", arg(&out)],
        Stdio::null(),
        Stdio::null(),
    );

    // header: "SWFH", version 1, length 5, name
    let mut header = b"SWFH".to_vec();
    header.extend_from_slice(&1u32.to_le_bytes());
    header.extend_from_slice(&5u64.to_le_bytes());
    header.extend_from_slice(b"lie.txt");
    tx.send(&header).unwrap();
    tx.send(b"hello").unwrap();
    tx.send(b"").unwrap();
    // trailer: "SWFT", version 1, 5 bytes, a wrong xxh3
    let mut trailer = b"SWFT".to_vec();
    trailer.extend_from_slice(&1u32.to_le_bytes());
    trailer.extend_from_slice(&5u64.to_le_bytes());
    trailer.extend_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
    tx.send(&trailer).unwrap();
    assert!(
        matches!(
            tx.wait_received_timeout(Duration::from_secs(60)),
            Err(SendTimeoutError::Disconnected { .. })
        ),
        "the receiver does not confirm a bad transfer"
    );
    let rx = rx.wait_with_output().unwrap();
    assert_eq!(code(&rx), 2, "{}", stderr(&rx));
    assert_one_line(&rx);
    assert!(stderr(&rx).contains("checksum mismatch"), "{}", stderr(&rx));
    assert_eq!(dir.entries(), Vec::<String>::new(), "nothing saved");
}

#[test]
fn pub_and_sub_pass_lines_between_processes() {
    let n = unique("pubsub");
    let _c = Cleanup(n.clone());
    let lines: Vec<String> = (0..100)
        .map(|i| format!("line {i}: {}", "x".repeat(i)))
        .collect();
    let all = lines.join("\n") + "\n";

    let sub = start(&["sub", &n, "--from-next"], Stdio::null(), Stdio::piped());
    let first2 = start(
        &["sub", &n, "--from-next", "--count", "2"],
        Stdio::null(),
        Stdio::piped(),
    );
    // The publisher waits for both subscribers, so neither misses a line.
    let mut publisher = start(
        &["pub", &n, "--subscribers", "2", "--timeout", "60"],
        Stdio::piped(),
        Stdio::null(),
    );
    let mut stdin = publisher.stdin.take().unwrap();
    stdin.write_all(all.as_bytes()).unwrap();
    drop(stdin);
    let p = publisher.wait_with_output().unwrap();
    assert_eq!(code(&p), 0, "pub: {}", stderr(&p));
    assert!(
        stderr(&p).contains("published 100 messages"),
        "{}",
        stderr(&p)
    );

    // The publisher is gone: the subscriber prints what is left, then exits 0.
    let s = sub.wait_with_output().unwrap();
    assert_eq!(code(&s), 0, "sub: {}", stderr(&s));
    assert_eq!(stdout(&s), all);
    let s = first2.wait_with_output().unwrap();
    assert_eq!(code(&s), 0, "sub --count 2: {}", stderr(&s));
    assert_eq!(stdout(&s), format!("{}\n{}\n", lines[0], lines[1]));
}

#[test]
fn timeouts_without_a_peer_exit_1_and_leave_no_channel() {
    let dir = TempDir::new("timeout");
    let input = dir.path("in.txt");
    fs::write(&input, b"nobody takes this").unwrap();
    for args in [
        vec!["recv", "NAME", "--timeout", "200ms"],
        vec!["send", "NAME", arg(&input), "--timeout", "200ms"],
        vec!["sub", "NAME", "--timeout", "200ms"],
        vec!["pub", "NAME", "--subscribers", "1", "--timeout", "200ms"],
    ] {
        let n = unique("timeout");
        let _c = Cleanup(n.clone());
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "NAME" { n.as_str() } else { a })
            .collect();
        let o = shmwire(&args);
        assert_eq!(code(&o), 1, "{args:?}: {}", stderr(&o));
        assert_one_line(&o);
        assert!(
            stderr(&o).contains("timed out after 200ms"),
            "{}",
            stderr(&o)
        );
        assert_eq!(
            code(&shmwire(&["info", &n])),
            1,
            "{args:?} left the channel behind"
        );
    }
}

#[test]
fn bad_input_gets_one_sentence_and_exit_2() {
    let dir = TempDir::new("bad");
    let input = dir.path("in.txt");
    fs::write(&input, b"x").unwrap();
    for (args, needle) in [
        (vec!["send", "a/b", arg(&input)], "invalid segment name"),
        (vec!["recv", "a/b"], "invalid segment name"),
        (vec!["pub", "a/b"], "invalid segment name"),
        (vec!["sub", "a/b"], "invalid segment name"),
        (vec!["send", "ok", arg(&dir.path("missing"))], "cannot open"),
        (vec!["send", "ok", arg(&dir.0)], "is a directory"),
        (vec!["recv", "ok", "--out", arg(&dir.0)], "is a directory"),
        (
            vec!["send", "ok", arg(&input), "--capacity", "4GiB"],
            "not possible",
        ),
    ] {
        let o = shmwire(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert_one_line(&o);
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }

    // A line longer than the channel's messages.
    let n = unique("long");
    let _c = Cleanup(n.clone());
    let mut p = start(
        &["pub", &n, "--message-size", "8"],
        Stdio::piped(),
        Stdio::null(),
    );
    p.stdin
        .take()
        .unwrap()
        .write_all(b"short\nthis line is too long\n")
        .unwrap();
    let o = p.wait_with_output().unwrap();
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_one_line(&o);
    assert!(
        stderr(&o).contains("cannot publish line 2"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn help_lists_the_channel_commands_and_their_options() {
    let h = stdout(&shmwire(&["--help"]));
    for cmd in ["send", "recv", "pub", "sub"] {
        assert!(h.contains(&format!("  {cmd} ")), "{cmd} missing:\n{h}");
    }
    for (cmd, options) in [
        ("send", &["--capacity", "--timeout"][..]),
        ("recv", &["--out", "--capacity", "--timeout"]),
        (
            "pub",
            &["--capacity", "--message-size", "--subscribers", "--timeout"],
        ),
        (
            "sub",
            &[
                "--capacity",
                "--message-size",
                "--from-next",
                "--count",
                "--timeout",
            ],
        ),
    ] {
        let o = shmwire(&[cmd, "--help"]);
        assert_eq!(code(&o), 0);
        for opt in options {
            assert!(
                stdout(&o).contains(opt),
                "{cmd} --help lacks {opt}:\n{}",
                stdout(&o)
            );
        }
    }
}
