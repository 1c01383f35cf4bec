//! The CLI contract, driven through the real `shmwire` binary as separate processes.

use std::process::{Command, Output, Stdio};

use crate::common::{self, code, shmwire, spawn_retrying, stderr, stdout, Cleanup, BIN};

fn unique(tag: &str) -> String {
    common::unique_with("swcli", tag)
}

/// `shmwire create NAME --size SIZE --persist`, which must succeed.
fn create_persisted(name: &str, size: &str) {
    let o = shmwire(&["create", name, "--size", size, "--persist"]);
    assert_eq!(code(&o), 0, "create {name}: {}", stderr(&o));
}

#[test]
fn create_write_read_info_rm_as_separate_commands() {
    let n = unique("flow");
    let _c = Cleanup(n.clone());
    let o = assert_ok!(shmwire(&["create", &n, "--size", "64KiB", "--persist"]));
    assert!(stdout(&o).contains("64 KiB"), "{}", stdout(&o));

    assert_ok!(shmwire(&["write", &n, "hello from another process"]));
    assert_ok!(shmwire(&["write", &n, "--offset", "6", "FROM"]));

    let o = assert_ok!(shmwire(&["read", &n, "--len", "26"]));
    assert_eq!(o.stdout, b"hello FROM another process");

    let o = shmwire(&["read", &n, "--offset", "6", "--len", "4", "--hex"]);
    assert_eq!(
        stdout(&o).trim_end(),
        format!("00000006: 4652 4f4d{}FROM", " ".repeat(32))
    );

    // Not a terminal: every byte of the payload comes out.
    let o = shmwire(&["read", &n]);
    assert_eq!(o.stdout.len(), 64 * 1024);

    let o = assert_ok!(shmwire(&["info", &n, "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["state"], "shmwire");
    assert_eq!(v["size"], 65536);
    assert_eq!(v["kind"], "bytes");
    assert_eq!(v["version"], 1);
    // The creating command has exited; pid + start time say so even if the pid is reused.
    assert_eq!(v["creator"], "dead");

    let o = shmwire(&["info", &n]);
    assert!(stdout(&o).contains("shmwire segment"), "{}", stdout(&o));

    assert_ok!(shmwire(&["rm", &n]));
    let o = shmwire(&["read", &n]);
    assert_eq!(code(&o), 1, "a missing segment is a plain no");
    assert_eq!(
        stderr(&o).trim(),
        format!("shmwire: segment {n:?} does not exist")
    );
}

#[test]
fn ls_lists_our_segment_as_json() {
    let n = unique("ls");
    let _c = Cleanup(n.clone());
    create_persisted(&n, "100");
    let o = assert_ok!(shmwire(&["ls", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = v
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == n.as_str())
        .expect("our segment is listed");
    assert_eq!(row["size"], 100);
    assert_eq!(row["state"], "shmwire");
    if cfg!(unix) {
        assert_eq!(row["mode"], "600");
    }
    let o = shmwire(&["ls"]);
    assert!(
        stdout(&o).lines().any(|l| l.starts_with(&n)),
        "{}",
        stdout(&o)
    );
}

#[test]
fn bad_input_gets_one_sentence_exit_2_and_leaves_nothing() {
    for (args, needle) in [
        (
            vec!["create", "a/b", "--size", "10"],
            "invalid segment name \"a/b\"",
        ),
        (vec!["create", "", "--size", "10"], "cannot be empty"),
        (vec!["create", "..", "--size", "10"], "'.' and '..'"),
    ] {
        let o = shmwire(&args);
        assert_eq!(code(&o), 2, "{args:?}");
        let e = stderr(&o);
        assert!(e.contains(needle), "{args:?}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "one line: {e}");
    }
    let n = unique("zero");
    let o = shmwire(&["create", &n, "--size", "0", "--persist"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("size 0"), "{}", stderr(&o));
    assert_eq!(
        code(&shmwire(&["info", &n])),
        1,
        "size 0 left nothing behind"
    );

    let o = shmwire(&["create", &n, "--size", "lots"]);
    assert_eq!(code(&o), 2, "clap usage errors exit 2");

    let o = shmwire(&["create", &n, "--size", "10", "--mode", "400", "--persist"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("owner read and write"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        code(&shmwire(&["info", &n])),
        1,
        "a bad mode left nothing behind"
    );
}

#[test]
fn exclusive_create_refuses_an_existing_name_and_keeps_its_data() {
    let n = unique("excl");
    let _c = Cleanup(n.clone());
    create_persisted(&n, "4KiB");
    assert_ok!(shmwire(&["write", &n, "precious"]));
    let o = shmwire(&["create", &n, "--size", "4KiB", "--persist"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    assert_eq!(shmwire(&["read", &n, "--len", "8"]).stdout, b"precious");
}

#[test]
fn a_write_that_does_not_fit_writes_nothing() {
    let n = unique("full");
    let _c = Cleanup(n.clone());
    create_persisted(&n, "16");
    assert_ok!(shmwire(&["write", &n, "0123456789abcdef"]));
    let o = shmwire(&["write", &n, "--offset", "10", "0123456789"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("do not fit"), "{}", stderr(&o));
    assert_eq!(shmwire(&["read", &n]).stdout, b"0123456789abcdef");
    let o = shmwire(&["read", &n, "--offset", "8", "--len", "9"]);
    assert_eq!(code(&o), 2);
}

#[test]
fn write_takes_files_and_stdin() {
    let n = unique("src");
    let _c = Cleanup(n.clone());
    create_persisted(&n, "1MiB");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let path = std::env::temp_dir().join(format!("{n}.bin"));
    std::fs::write(&path, &data).unwrap();
    assert_ok!(shmwire(&["write", &n, "--file", path.to_str().unwrap()]));
    let out = std::env::temp_dir().join(format!("{n}.out"));
    assert_ok!(shmwire(&[
        "read",
        &n,
        "--len",
        "300000",
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), data);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&out);

    let mut child = spawn_retrying(
        Command::new(BIN)
            .args(["write", &n, "--offset", "100", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null()),
    )
    .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"piped bytes")
        .unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        shmwire(&["read", &n, "--offset", "100", "--len", "11"]).stdout,
        b"piped bytes"
    );
}

#[test]
fn raw_segments_have_no_header() {
    let n = unique("raw");
    let _c = Cleanup(n.clone());
    assert_eq!(
        code(&shmwire(&[
            "create",
            &n,
            "--size",
            "8KiB",
            "--raw",
            "--persist"
        ])),
        0
    );
    // Without --raw, shmwire refuses and says why.
    let o = shmwire(&["write", &n, "x"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("open it raw"), "{}", stderr(&o));
    assert_ok!(shmwire(&["write", &n, "--raw", "bytes at zero"]));
    assert_eq!(
        shmwire(&["read", &n, "--raw", "--len", "13"]).stdout,
        b"bytes at zero"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&shmwire(&["info", &n, "--json"]).stdout).unwrap();
    assert_eq!(v["state"], "foreign");
}

#[test]
fn the_demo_runs_two_processes_and_checks_the_file() {
    let o = shmwire(&["demo"]);
    assert_eq!(code(&o), 0, "{}\n{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("[writer"), "{out}");
    assert!(out.contains("[reader"), "{out}");
    assert!(out.contains("got the message"), "{out}");
    assert!(out.contains("matches"), "{out}");
    assert!(out.contains("demo: success"), "{out}");
}

#[test]
fn help_explains_every_command() {
    let o = shmwire(&["--help"]);
    assert_eq!(code(&o), 0);
    let h = stdout(&o);
    for cmd in ["demo", "create", "write", "read", "info", "ls", "rm"] {
        assert!(
            h.contains(&format!("  {cmd} ")),
            "{cmd} missing from help:\n{h}"
        );
    }
    assert!(!h.contains("hold"), "internal commands stay hidden:\n{h}");
    assert!(h.contains("Exit status"), "{h}");
}

/// Without --persist, `create` holds the segment and removes it when told to stop.
#[cfg(unix)]
#[test]
fn create_without_persist_holds_until_terminated_then_removes() {
    use std::io::{BufRead, BufReader};
    let n = unique("hold");
    let _c = Cleanup(n.clone());
    let mut child = spawn_retrying(
        Command::new(BIN)
            .args(["create", &n, "--size", "4KiB"])
            .stdout(Stdio::piped()),
    )
    .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("holding it"), "{line}");
    let v: serde_json::Value =
        serde_json::from_slice(&shmwire(&["info", &n, "--json"]).stdout).unwrap();
    assert_eq!(v["creator"], "alive");
    let st = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    assert!(child.wait().unwrap().success());
    assert_eq!(code(&shmwire(&["info", &n])), 1, "removed on exit");
}

/// Owner-only by default: another user cannot open it. CI runs as root, so the child drops
/// to `nobody` with setpriv; skipped when not root or without setpriv.
#[cfg(target_os = "linux")]
#[test]
fn another_user_cannot_open_an_owner_only_segment() {
    let has_setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    require!("root", common::is_root(), "needs root");
    require!("setpriv", has_setpriv, "needs setpriv");
    let n = unique("perm");
    let _c = Cleanup(n.clone());
    create_persisted(&n, "4KiB");
    let as_nobody = |args: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", BIN])
            .args(args)
            .output()
            .unwrap()
    };
    let o = as_nobody(&["read", &n]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));

    // With --mode 644 others may read but not write.
    let m = unique("perm644");
    let _d = Cleanup(m.clone());
    assert_eq!(
        code(&shmwire(&[
            "create",
            &m,
            "--size",
            "4KiB",
            "--mode",
            "644",
            "--persist"
        ])),
        0
    );
    assert_ok!(shmwire(&["write", &m, "shared"]));
    let o = assert_ok!(as_nobody(&["read", &m, "--len", "6"]));
    assert_eq!(o.stdout, b"shared");
    let o = as_nobody(&["write", &m, "nope"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("permission denied"), "{}", stderr(&o));
}

/// A raw segment made by shmwire is read by Python, and one made by Python by shmwire.
#[cfg(unix)]
#[test]
fn python_multiprocessing_shared_memory_interoperates() {
    require!(
        "python3",
        Command::new("python3").arg("--version").output().is_ok(),
        "no python3"
    );
    let n = unique("py");
    let _c = Cleanup(n.clone());
    assert_eq!(
        code(&shmwire(&[
            "create",
            &n,
            "--size",
            "64",
            "--raw",
            "--persist"
        ])),
        0
    );
    assert_ok!(shmwire(&["write", &n, "--raw", "from shmwire"]));
    let py = format!(
        "from multiprocessing import shared_memory, resource_tracker\n\
         s = shared_memory.SharedMemory(name={n:?})\n\
         resource_tracker.unregister(s._name, 'shared_memory')\n\
         print(s.size, bytes(s.buf[:12]).decode())\n\
         s.close()\n"
    );
    let o = Command::new("python3").args(["-c", &py]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "64 from shmwire");

    let m = unique("pymade");
    let _d = Cleanup(m.clone());
    let py = format!(
        "from multiprocessing import shared_memory, resource_tracker\n\
         s = shared_memory.SharedMemory(name={m:?}, create=True, size=100)\n\
         resource_tracker.unregister(s._name, 'shared_memory')\n\
         s.buf[:11] = b'from python'\n\
         s.close()\n"
    );
    let o = Command::new("python3").args(["-c", &py]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let o = assert_ok!(shmwire(&["read", &m, "--raw"]));
    assert_eq!(o.stdout.len(), 100);
    assert_eq!(&o.stdout[..11], b"from python");
    // Without --raw: one sentence that says what to do.
    let o = shmwire(&["read", &m]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("open it raw"), "{}", stderr(&o));
}

/// kill -9 of the writer mid-exchange: the reader notices the death (pid + start time from the
/// header) and says so, instead of waiting forever. POSIX only: on Windows the segment dies
/// with the killed writer's last handle, so there is nothing left for the reader to open.
#[cfg(unix)]
#[test]
fn the_demo_reader_notices_a_killed_writer() {
    use std::io::{BufRead, BufReader};
    let n = unique("demokill");
    let _c = Cleanup(n.clone());
    let dir = std::env::temp_dir();
    let input = dir.join(format!("{n}.in"));
    let output = dir.join(format!("{n}.out"));
    std::fs::write(&input, b"some file").unwrap();
    let mut writer = spawn_retrying(
        Command::new(BIN)
            .args(["demo", "--role", "writer", "--segment", &n, "--file"])
            .arg(&input)
            .stdout(Stdio::piped()),
    )
    .unwrap();
    let mut lines = BufReader::new(writer.stdout.take().unwrap()).lines();
    // Wait until the message is posted, then kill the writer before any reader answers.
    loop {
        let l = lines.next().expect("writer output").unwrap();
        if l.contains("wrote a message") {
            break;
        }
    }
    writer.kill().unwrap();
    writer.wait().unwrap();
    let o = Command::new(BIN)
        .args(["demo", "--role", "reader", "--segment", &n, "--file"])
        .arg(&output)
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    assert!(stdout(&o).contains("got the message"), "{}", stdout(&o));
    assert!(
        stderr(&o).contains("died before it answered"),
        "{}",
        stderr(&o)
    );
    assert!(!output.exists());
    let _ = std::fs::remove_file(&input);
}

// ------------------------------------------------------------- advice that can be pasted

/// The `shmwire …` commands in `text` (each between backticks).
fn advice_in(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| s.starts_with("shmwire "))
        .map(str::to_owned)
        .collect()
}

/// Runs `command`, a `shmwire …` line the CLI printed as advice, as a person pasting it would:
/// on POSIX through `sh -c`, with this `shmwire` first on PATH; on Windows by handing the rest
/// of the line to shmwire.exe as its command line, as cmd.exe does with a line free of `%`.
fn paste(command: &str) -> Output {
    let rest = command
        .strip_prefix("shmwire ")
        .expect("advice starts with `shmwire `");
    #[cfg(unix)]
    {
        let _ = rest;
        let dir = std::path::Path::new(BIN).parent().unwrap();
        let path = format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Command::new("sh")
            .args(["-c", command])
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        Command::new(BIN)
            .raw_arg(rest)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// Removes a segment by name and namespace when the test ends (names may start with `-`).
struct RmGuard(String, bool);
impl Drop for RmGuard {
    fn drop(&mut self) {
        let mut args = vec!["rm"];
        if self.1 {
            args.push("--global");
        }
        args.extend(["--", &self.0]);
        let _ = shmwire(&args);
    }
}

/// `create --persist` says how to remove the segment: that command, pasted as printed,
/// removes exactly that segment, also when its name has spaces, quotes, `$`, `;` or a leading
/// `-`, and also in Windows' `Global\` namespace (`rm --global`). (Under Wine, creating in
/// `Global\` needs no SeCreateGlobalPrivilege: Wine does not enforce it, so this runs there
/// unprivileged; on real Windows it needs an elevated test run.)
#[test]
fn the_rm_advice_of_create_persist_works_when_pasted_as_printed() {
    let decoy = unique("decoy");
    let _d = Cleanup(decoy.clone());
    create_persisted(&decoy, "64");
    // Unquoted, `shmwire rm <decoy> it's …` would remove the decoy.
    let names = [
        format!("{decoy} it's $HOME; x"),
        format!("-{}", unique("dash")),
    ];
    for global in [false, true] {
        for name in &names {
            let _g = RmGuard(name.clone(), global);
            let mut args = vec!["create", "--size", "64", "--persist"];
            if global {
                args.push("--global");
            }
            args.extend(["--", name]);
            let o = assert_ok!(shmwire(&args));
            let advice = advice_in(&stdout(&o));
            assert_eq!(advice.len(), 1, "{}", stdout(&o));
            let rm = &advice[0];
            assert!(rm.starts_with("shmwire rm "), "{rm}");
            assert_eq!(rm.contains(" --global "), global, "{rm}");

            let pasted = paste(rm);
            assert_eq!(code(&pasted), 0, "{rm}: {}", stderr(&pasted));
            assert_eq!(
                stdout(&pasted),
                format!("removed segment {name:?}\n"),
                "{rm}"
            );
            let mut info = vec!["info"];
            if global {
                info.push("--global");
            }
            info.extend(["--", name]);
            assert_eq!(code(&shmwire(&info)), 1, "{rm} left {name:?} in place");
        }
    }
    assert_eq!(
        code(&shmwire(&["info", &decoy])),
        0,
        "the decoy was removed"
    );
}

/// `ls` lists the segments of Windows' `Global\` namespace next to the session's `Local\`
/// ones, marked (`"global": true`, a `global` NS column), and `rm --global` reaches them.
/// Elsewhere there is one namespace: `--global` has no effect and nothing is marked. (Under
/// Wine, creating in `Global\` needs no SeCreateGlobalPrivilege: Wine does not enforce it.)
#[test]
fn ls_lists_and_marks_global_segments_and_rm_global_removes_them() {
    let (l, g) = (unique("ls-local"), unique("ls-global"));
    let _gl = RmGuard(l.clone(), false);
    let _gg = RmGuard(g.clone(), true);
    create_persisted(&l, "100");
    assert_ok!(shmwire(&[
        "create",
        &g,
        "--global",
        "--size",
        "200",
        "--persist"
    ]));

    let o = assert_ok!(shmwire(&["ls", "--json"]));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = |n: &str| {
        let rows: Vec<_> = v
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["name"] == n)
            .cloned()
            .collect();
        assert_eq!(rows.len(), 1, "{n}: {rows:?}");
        rows[0].clone()
    };
    assert_eq!(row(&l)["global"], false);
    assert_eq!(row(&g)["global"], cfg!(windows));
    // Judged in its own namespace: a shmwire segment with its header, not an unknown.
    assert_eq!(row(&g)["state"], "shmwire", "{}", row(&g));
    assert_eq!(row(&g)["size"], 200);

    let text = stdout(&shmwire(&["ls"]));
    let line = |n: &str| {
        text.lines()
            .find(|line| line.split_whitespace().next() == Some(n))
            .unwrap_or_else(|| panic!("{n} not in\n{text}"))
            .to_owned()
    };
    if cfg!(windows) {
        assert!(text.lines().next().unwrap().contains(" NS "), "{text}");
        assert_eq!(line(&g).split_whitespace().nth(1), Some("global"), "{text}");
        assert_eq!(line(&l).split_whitespace().nth(1), Some("local"), "{text}");
        // Without --global the name is not found; with it, it is removed.
        assert_eq!(code(&shmwire(&["rm", &g])), 1);
    } else {
        assert!(!text.contains(" NS "), "{text}");
        line(&g);
    }
    assert_ok!(shmwire(&["rm", "--global", &g]));
    assert_eq!(code(&shmwire(&["info", "--global", &g])), 1);
    assert_eq!(code(&shmwire(&["info", &l])), 0, "the local one stays");
}

// ------------------------------------------------------------------ UTF-16 text

/// `text` as UTF-16LE bytes, as a program built with UNICODE writes a `wchar_t` string.
fn utf16le(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// Runs `shmwire ARGS` with `input` on stdin.
fn shmwire_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = spawn_retrying(
        Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// `write --encoding utf16le` stores UTF-16LE (surrogate pairs included, no BOM, nothing
/// after it), from TEXT or stdin; `read --encoding utf16le` prints it back as UTF-8, NUL code
/// units as NUL bytes (as utf8 prints zero bytes).
#[test]
fn utf16le_text_round_trips_through_write_and_read() {
    let n = unique("utf16");
    let _c = Cleanup(n.clone());
    create_persisted(&n, "64");
    let text = "héllo 𝄞 wörld";
    let bytes = utf16le(text);
    let len = bytes.len().to_string();
    let o = assert_ok!(shmwire(&["write", &n, "--encoding", "utf16le", text]));
    assert!(
        stdout(&o).contains(&format!("wrote {len} bytes")),
        "{}",
        stdout(&o)
    );
    // The bytes are UTF-16LE, and nothing more was written.
    let o = shmwire(&["read", &n, "--len", &(bytes.len() + 2).to_string()]);
    assert_eq!(o.stdout, [&bytes[..], &[0, 0]].concat());
    // Decoded back.
    let o = assert_ok!(shmwire(&[
        "read",
        &n,
        "--encoding",
        "utf16le",
        "--len",
        &len
    ]));
    assert_eq!(stdout(&o), text);
    // To the end (not a terminal): the zero code units that follow are NUL characters.
    let o = assert_ok!(shmwire(&["read", &n, "--encoding", "utf16le"]));
    let nuls = (64 - bytes.len()) / 2;
    assert_eq!(stdout(&o), format!("{text}{}", "\0".repeat(nuls)));
    // --out gets the UTF-8 text.
    let out = std::env::temp_dir().join(format!("{n}.txt"));
    assert_ok!(shmwire(&[
        "read",
        &n,
        "--encoding",
        "utf16le",
        "--len",
        &len,
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), text);
    let _ = std::fs::remove_file(&out);

    // From stdin (UTF-8 text in, UTF-16LE stored), at an offset.
    assert_ok!(shmwire_with_stdin(
        &["write", &n, "--encoding", "utf16le", "--offset", "40", "-"],
        "Ω≈ç".as_bytes(),
    ));
    let o = shmwire(&["read", &n, "--offset", "40", "--len", "6"]);
    assert_eq!(o.stdout, utf16le("Ω≈ç"));
    // Stdin that is not UTF-8 text is refused, and nothing is written.
    let o = shmwire_with_stdin(&["write", &n, "--encoding", "utf16le", "-"], b"ok\xff");
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("stdin is not UTF-8 text"),
        "{}",
        stderr(&o)
    );
    assert_eq!(shmwire(&["read", &n, "--len", "2"]).stdout, &bytes[..2]);
}

/// A buffer another program wrote as UTF-16LE (here: raw bytes, as `WCHAR buf[] = L"…"` holds
/// them) reads as text; invalid UTF-16 (an unpaired surrogate, also one cut off at the end)
/// and an odd byte count are one sentence and exit 2; --hex and --file do not take
/// --encoding.
#[test]
fn utf16le_from_another_writer_reads_and_invalid_utf16_is_one_sentence() {
    let n = unique("utf16raw");
    let _c = Cleanup(n.clone());
    assert_eq!(
        code(&shmwire(&[
            "create",
            &n,
            "--size",
            "64",
            "--raw",
            "--persist"
        ])),
        0
    );
    let dir = std::env::temp_dir();
    let file = dir.join(format!("{n}.bin"));
    let wide = [utf16le("Grüße, 世界 🎉"), vec![0, 0]].concat();
    std::fs::write(&file, &wide).unwrap();
    let write_file = |at: &str| {
        assert_ok!(shmwire(&[
            "write",
            &n,
            "--raw",
            "--offset",
            at,
            "--file",
            file.to_str().unwrap(),
        ]));
    };
    write_file("0");
    let len = (wide.len() - 2).to_string();
    let o = assert_ok!(shmwire(&[
        "read",
        &n,
        "--raw",
        "--encoding",
        "utf16le",
        "--len",
        &len
    ]));
    assert_eq!(stdout(&o), "Grüße, 世界 🎉");

    // A lone high surrogate followed by 'A' at offset 10; then one cut off by --len.
    std::fs::write(&file, [0x00, 0xD8, b'A', 0x00]).unwrap();
    write_file("10");
    for (args, offset) in [(["--len", "16"], 10), (["--len", "12"], 10)] {
        let o = shmwire(&[&["read", &n, "--raw", "--encoding", "utf16le"][..], &args].concat());
        let err = stderr(&o);
        assert_eq!(code(&o), 2, "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("unpaired surrogate 0xd800 at offset {offset}")),
            "{err}"
        );
    }
    let o = shmwire(&["read", &n, "--raw", "--encoding", "utf16le", "--len", "3"]);
    assert_eq!(code(&o), 2);
    assert!(
        stderr(&o).contains("not whole UTF-16 code units"),
        "{}",
        stderr(&o)
    );
    // A failed decode into --out leaves no file.
    let out = dir.join(format!("{n}.txt"));
    let o = shmwire(&[
        "read",
        &n,
        "--raw",
        "--encoding",
        "utf16le",
        "--len",
        "16",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 2);
    assert!(!out.exists());

    for args in [
        vec!["read", &n, "--raw", "--hex", "--encoding", "utf16le"],
        vec![
            "write",
            &n,
            "--raw",
            "--encoding",
            "utf16le",
            "--file",
            file.to_str().unwrap(),
        ],
    ] {
        let o = shmwire(&args);
        assert_eq!(code(&o), 2, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
    }
    let _ = std::fs::remove_file(&file);
}

/// UTF-16LE written by Python (as a Windows `wchar_t` program would) is read by shmwire, and
/// what shmwire writes as UTF-16LE Python decodes.
#[cfg(unix)]
#[test]
fn utf16le_interoperates_with_python() {
    require!(
        "python3",
        Command::new("python3").arg("--version").output().is_ok(),
        "no python3"
    );
    let n = unique("pyutf16");
    let _c = Cleanup(n.clone());
    let text = "naïve café ✓ 🐍";
    let py = format!(
        "import sys\n\
         from multiprocessing import shared_memory, resource_tracker\n\
         s = shared_memory.SharedMemory(name={n:?}, create=True, size=128)\n\
         resource_tracker.unregister(s._name, 'shared_memory')\n\
         b = {text:?}.encode('utf-16-le')\n\
         s.buf[:len(b)] = b\n\
         print(len(b))\n\
         s.close()\n"
    );
    let o = Command::new("python3").args(["-c", &py]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let len = stdout(&o).trim().to_owned();
    let o = assert_ok!(shmwire(&[
        "read",
        &n,
        "--raw",
        "--encoding",
        "utf16le",
        "--len",
        &len
    ]));
    assert_eq!(stdout(&o), text);

    let back = "from shmwire: ünïcødé ✓";
    assert_ok!(shmwire(&[
        "write",
        &n,
        "--raw",
        "--encoding",
        "utf16le",
        back
    ]));
    let py = format!(
        "from multiprocessing import shared_memory, resource_tracker\n\
         s = shared_memory.SharedMemory(name={n:?})\n\
         resource_tracker.unregister(s._name, 'shared_memory')\n\
         raw = bytes(s.buf[:256])\n\
         s.close()\n\
         end = next(i for i in range(0, len(raw), 2) if raw[i:i + 2] == b'\\x00\\x00')\n\
         print(raw[:end].decode('utf-16-le'), end='')\n"
    );
    let o = Command::new("python3").args(["-c", &py]).output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // Longer than Python's text, so it covers all of it; zeros follow.
    assert_eq!(stdout(&o), back);
}
