//! `shmwire ls [--json]`.

use std::process::ExitCode;

use anyhow::Context;
use shmwire::OpenError;

use crate::cli::LsArgs;
use crate::report::{describe, set_verdict, Described};

pub(super) fn run(args: LsArgs) -> anyhow::Result<ExitCode> {
    // Every object, looked at and judged as `shmwire gc` would (objects removed meanwhile
    // are left out).
    let findings = shmwire::gc::scan().context("cannot list shared-memory segments")?;
    let mut rows: Vec<Described> = Vec::with_capacity(findings.len());
    for f in &findings {
        let o = &f.object;
        let mut d = match &f.inspection {
            Ok(i) => describe(i),
            Err(e) => {
                let state = match e {
                    OpenError::PermissionDenied { .. } => "no-access",
                    _ => "unreadable",
                };
                Described {
                    name: o.name.clone(),
                    state,
                    size: o.size,
                    os_size: o.size,
                    problem: Some(e.to_string()),
                    ..Described::default()
                }
            }
        };
        set_verdict(&mut d, &f.verdict);
        d.global = o.global;
        d.mode = o.mode.map(|m| format!("{m:03o}"));
        d.uid = o.uid;
        rows.push(d);
    }
    crate::advice::note_small_shm();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no shared-memory segments");
        return Ok(ExitCode::SUCCESS);
    }
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    // Windows lists `Global\` sections too: a column says which namespace each name is in
    // (`--global` reaches the `global` ones). Elsewhere there is one namespace, and no column.
    let namespaces = rows.iter().any(|r| r.global);
    let ns = |global: bool| match (namespaces, global) {
        (false, _) => String::new(),
        (true, false) => format!("{:<6}  ", "local"),
        (true, true) => format!("{:<6}  ", "global"),
    };
    println!(
        "{:<w$}  {}{:>10}  {:>4}  {:<12}  {:<6}  CREATOR",
        "NAME",
        if namespaces { "NS      " } else { "" },
        "SIZE",
        "MODE",
        "KIND",
        "GC"
    );
    for r in &rows {
        let kind = match r.state {
            "shmwire" => r.kind.clone().unwrap_or_default(),
            "foreign" => "raw".to_owned(),
            s => s.to_owned(),
        };
        let creator = match (r.creator_pid, r.creator) {
            (Some(pid), Some(l)) => format!("pid {pid} ({l})"),
            _ => "-".to_owned(),
        };
        // What `shmwire gc` would do: remove "stale" ones (with --all, "kept" ones too; with
        // --ignore-unseen, "stale?" ones too), never "live" ones.
        let gc = match r.gc {
            Some("uncertain") => "stale?",
            Some("foreign") | None => "-",
            Some(word) => word,
        };
        println!(
            "{:<w$}  {}{:>10}  {:>4}  {:<12}  {gc:<6}  {creator}",
            r.name,
            ns(r.global),
            humansize::format_size(r.size, humansize::BINARY),
            r.mode.as_deref().unwrap_or("-"),
            kind,
        );
    }
    Ok(ExitCode::SUCCESS)
}
