//! `shmwire gc` and the gc marks of `ls` and `info`, with real processes: `shmwire create`
//! killed with SIGKILL (its segment stays behind), held (alive), persisted, raw.
//!
//! Hermetic: every `gc` here runs with `--prefix` of the test's own (a unique name ending in
//! '_'), and the tests assert only about their own names. `--ignore-unseen` is given where a
//! removal is expected, since some processes may be impossible to inspect here (a more
//! privileged pid 1 in a container, say); `killed_creator` checks the default too. POSIX
//! only: on Windows a segment dies with its last handle, so gc has nothing to do.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use crate::common::{code, shmwire, stdout, unique_with, Cleanup, BIN};
use serde_json::Value;

/// A prefix of this test's own: no other test's name starts with it.
fn own_prefix(tag: &str) -> String {
    format!("{}_", unique_with("swc-gc", tag))
}

/// `shmwire create NAME --size 100`, holding the segment until killed; returns once created.
struct Holder(Child);

impl Holder {
    fn start(name: &str) -> Holder {
        let mut child = Command::new(BIN)
            .args(["create", name, "--size", "100"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run shmwire create");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("created"), "{line}");
        Holder(child)
    }

    /// SIGKILL: the segment stays behind, its creator dead.
    fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn exists(name: &str) -> bool {
    code(&shmwire(&["info", name])) == 0
}

/// `shmwire gc ARGS --json`, parsed.
fn gc_json(args: &[&str]) -> Value {
    let mut all = vec!["gc", "--json"];
    all.extend_from_slice(args);
    let o = assert_ok!(shmwire(&all));
    serde_json::from_slice(&o.stdout).unwrap()
}

fn listed(v: &Value, list: &str) -> Vec<String> {
    let mut names: Vec<String> = v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// Runs `shmwire gc ARGS` until NAME is removed, tolerating a few rounds in which a
/// short-lived process (a parallel `shmwire ls`, say) held it open; returns the text output.
#[track_caller]
fn gc_removes(args: &[&str], name: &str) -> String {
    for _ in 0..20 {
        let o = assert_ok!(shmwire(&[&["gc"], args].concat()));
        let out = stdout(&o);
        if out
            .lines()
            .any(|l| l.starts_with(&format!("removed {name} ")))
        {
            return out;
        }
        let v = gc_json(args);
        let transient = v["live"].as_array().unwrap().iter().any(|r| {
            r["name"] == name
                && r["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("mapped or open by")
        });
        assert!(transient, "{name} not removed:\n{out}\n{v:#}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("{name} stayed in use");
}

#[test]
fn killed_creator_dry_run_then_gc() {
    let prefix = own_prefix("killed");
    let name = format!("{prefix}a");
    let _c = Cleanup(name.clone());
    Holder::start(&name).kill();
    assert!(exists(&name), "SIGKILL leaves the segment behind");

    let o = assert_ok!(shmwire(&[
        "gc",
        "--dry-run",
        "--prefix",
        &prefix,
        "--ignore-unseen"
    ]));
    let out = stdout(&o);
    assert!(
        out.lines().any(|l| l.starts_with(&format!(
            "would remove {name} (4.10 KiB): its creator, pid "
        ))),
        "{out}"
    );
    assert!(out.contains("would remove 1 abandoned segment"), "{out}");
    assert!(exists(&name), "a dry run removes nothing");

    // Without --ignore-unseen: removed, or kept as possibly stale where some processes
    // cannot be inspected; never an error.
    let v = gc_json(&["--dry-run", "--prefix", &prefix]);
    let (removed, uncertain) = (listed(&v, "removed"), listed(&v, "uncertain"));
    assert!(
        removed == [name.as_str()] && uncertain.is_empty()
            || removed.is_empty() && uncertain == [name.as_str()],
        "{v:#}"
    );
    if uncertain == [name.as_str()] {
        let o = shmwire(&["gc", "--prefix", &prefix]);
        assert!(stdout(&o).contains("(possibly stale)"), "{}", stdout(&o));
        assert!(exists(&name));
    }

    let out = gc_removes(&["--prefix", &prefix, "--ignore-unseen"], &name);
    assert!(
        out.contains("removed 1 abandoned segment (4.10 KiB)"),
        "{out}"
    );
    assert!(!exists(&name));
    // Nothing left to do: still exit status 0.
    let out = gc_removes_nothing(&prefix);
    assert!(
        out.starts_with("removed 0 abandoned segments (0 B)"),
        "{out}"
    );
}

fn gc_removes_nothing(prefix: &str) -> String {
    let o = assert_ok!(shmwire(&["gc", "--prefix", prefix, "--ignore-unseen"]));
    stdout(&o)
}

#[test]
fn live_persisted_raw_and_sync_segments_stay_and_all_takes_the_kept_ones() {
    let prefix = own_prefix("kinds");
    let live = format!("{prefix}live");
    let persisted = format!("{prefix}persist");
    let raw = format!("{prefix}raw");
    let sync = format!("{prefix}sync");
    let _c: Vec<Cleanup> = [&live, &persisted, &raw, &sync]
        .iter()
        .map(|n| Cleanup(n.to_string()))
        .collect();
    let holder = Holder::start(&live);
    assert_ok!(shmwire(&[
        "create",
        &persisted,
        "--size",
        "100",
        "--persist"
    ]));
    assert_ok!(shmwire(&[
        "create",
        &raw,
        "--size",
        "100",
        "--persist",
        "--raw"
    ]));
    assert_ok!(shmwire(&["signal", &sync]));

    let o = assert_ok!(shmwire(&["gc", "--prefix", &prefix, "--ignore-unseen"]));
    let out = stdout(&o);
    assert!(
        out.contains(&format!("kept {persisted}: marked persistent")),
        "{out}"
    );
    assert!(
        // Sync segments are kept by the flag their creator (lock/signal/wait) sets, like
        // `create --persist`: gc has no special case for them.
        out.contains(&format!("kept {sync}: marked persistent")),
        "{out}"
    );
    assert!(
        out.contains(
            "removed 0 abandoned segments (0 B); kept 2 abandoned segments on purpose \
             (--all removes them); 1 in use; 1 not shmwire's (never touched)"
        ),
        "{out}"
    );
    for n in [&live, &persisted, &raw, &sync] {
        assert!(exists(n), "{n}");
    }

    // --all takes the kept ones, never the live or the raw one.
    let v = gc_json(&["--prefix", &prefix, "--ignore-unseen", "--all"]);
    assert_eq!(
        listed(&v, "removed"),
        [persisted.as_str(), sync.as_str()],
        "{v:#}"
    );
    assert_eq!(listed(&v, "live"), [live.as_str()], "{v:#}");
    assert_eq!(v["foreign"], 1);
    assert!(exists(&live) && exists(&raw));
    assert!(!exists(&persisted) && !exists(&sync));
    let row = &v["live"][0];
    assert_eq!(row["verdict"], "live");
    assert!(
        row["reason"]
            .as_str()
            .unwrap()
            .starts_with("its creator, pid "),
        "{row}"
    );
    drop(holder);
}

#[test]
fn ls_and_info_show_the_verdict() {
    let prefix = own_prefix("marks");
    let live = format!("{prefix}live");
    let stale = format!("{prefix}stale");
    let kept = format!("{prefix}kept");
    let _c: Vec<Cleanup> = [&live, &stale, &kept]
        .iter()
        .map(|n| Cleanup(n.to_string()))
        .collect();
    let _holder = Holder::start(&live);
    Holder::start(&stale).kill();
    assert_ok!(shmwire(&["create", &kept, "--size", "100", "--persist"]));

    let o = assert_ok!(shmwire(&["ls", "--json"]));
    let rows: Value = serde_json::from_slice(&o.stdout).unwrap();
    let row = |n: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n} listed"))
            .clone()
    };
    assert_eq!(row(&live)["gc"], "live");
    assert_eq!(row(&kept)["gc"], "kept");
    let stale_mark = row(&stale)["gc"].as_str().unwrap().to_owned();
    assert!(
        stale_mark == "stale" || stale_mark == "uncertain",
        "{stale_mark}"
    );
    assert!(
        row(&stale)["gc_reason"]
            .as_str()
            .unwrap()
            .contains("is gone"),
        "{}",
        row(&stale)
    );

    let o = shmwire(&["ls"]);
    let text = stdout(&o);
    let mark = |n: &str| {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("{n} ")))
            .unwrap_or_else(|| panic!("{n} in\n{text}"));
        line.split_whitespace().nth(5).unwrap().to_owned()
    };
    assert!(text.lines().next().unwrap().contains("  GC  "), "{text}");
    assert_eq!(mark(&live), "live");
    assert_eq!(mark(&kept), "kept");
    let expected = if stale_mark == "stale" {
        "stale"
    } else {
        "stale?"
    };
    assert_eq!(mark(&stale), expected, "{text}");

    let o = assert_ok!(shmwire(&["info", &stale]));
    let gc_line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("gc:"))
        .unwrap()
        .to_owned();
    assert!(
        gc_line.starts_with(&format!("gc:        {stale_mark}: its creator, pid ")),
        "{gc_line}"
    );
    let v: Value = serde_json::from_slice(&shmwire(&["info", &kept, "--json"]).stdout).unwrap();
    assert_eq!(v["gc"], "kept");
}
