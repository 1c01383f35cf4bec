//! `shmwire bench`: a smoke run with tiny counts (numbers are never asserted, only that
//! every contender ran in both processes and the report is complete), and its errors.

use std::process::{Command, Stdio};

use crate::common::{code, shmwire, spawn_retrying, TempDir, BIN};

#[test]
fn smoke_run_measures_every_contender_and_writes_json_and_a_plot() {
    let dir = TempDir::new("bench");
    let plot = dir.path("latency.svg");
    let saved = dir.path("report.json");
    let child = spawn_retrying(
        Command::new(BIN)
            .args(["bench", "--smoke", "--no-pin", "--json", "--plot"])
            .arg(&plot)
            .arg("--save")
            .arg(&saved)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    let pid = child.id();
    let out = assert_ok!(child.wait_with_output().unwrap());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert!(report["failures"].as_array().unwrap().is_empty());
    let rows = report["latency"].as_array().unwrap();
    let mut expected = vec![
        ("floor", "spin"),
        ("floor", "block"),
        ("shmwire-spsc", "spin"),
        ("shmwire-spsc", "block"),
        ("shmwire-spsc-loan", "spin"),
        ("pipe", "block"),
    ];
    if cfg!(unix) {
        expected.push(("uds", "block"));
    }
    for (id, mode) in expected {
        let sizes: Vec<u64> = rows
            .iter()
            .filter(|r| r["id"] == id && r["mode"] == mode)
            .map(|r| r["size"].as_u64().unwrap())
            .collect();
        assert_eq!(
            sizes,
            [8, 64, 4096, 65536, 1 << 20, 4 << 20],
            "{id} ({mode}) latency sizes"
        );
        for r in rows.iter().filter(|r| r["id"] == id && r["mode"] == mode) {
            assert!(r["pooled_ns"]["p50"].as_u64().unwrap() > 0, "{r}");
            assert!(r["pooled_ns"]["samples"].as_u64().unwrap() >= 10, "{r}");
            // Every contender gets a ratio to the floor of its mode measured in the same run.
            assert!(r["x_floor"]["median"].as_f64().unwrap() > 0.0, "{r}");
        }
    }
    let streams = report["stream"].as_array().unwrap();
    assert!(streams
        .iter()
        .any(|r| r["id"] == "shmwire-spsc" && r["size"] == 1 << 20));
    assert!(
        !streams.iter().any(|r| r["id"] == "floor"),
        "the floor does not stream"
    );
    let svg = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(svg.starts_with("<svg") && svg.contains("shmwire spsc (copy)"));
    // The saved report replays into the table without measuring.
    let replayed = assert_ok!(shmwire(&["bench", "--replay", saved.to_str().unwrap()]));
    let table = String::from_utf8_lossy(&replayed.stdout);
    assert!(table.contains("One-way latency, busy-poll") && table.contains("shmwire spsc (copy)"));
    // Nothing left behind by either process (the links are named swb-<driver pid>-<n>…).
    let prefix = format!("swb-{pid}-");
    let left: Vec<String> = shmwire::list()
        .unwrap()
        .into_iter()
        .map(|o| o.name)
        .filter(|n| n.starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn list_names_the_contenders() {
    let out = assert_ok!(shmwire(&["bench", "--list"]));
    let text = String::from_utf8_lossy(&out.stdout);
    for id in ["floor", "shmwire-spsc", "shmwire-spsc-loan", "pipe"] {
        assert!(text.lines().any(|l| l.starts_with(id)), "{text}");
    }
}

#[test]
fn bad_options_are_one_sentence_and_exit_2() {
    let out = shmwire(&["bench", "--only", "zeromq"]);
    assert_eq!(code(&out), 2);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("there is no contender \"zeromq\""), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let out = shmwire(&["bench", "--cores", "1,1"]);
    assert_eq!(code(&out), 2);
}
