//! `shmwire ls [--json]`.

use std::process::ExitCode;

use anyhow::Context;
use shmwire::{OpenError, SegmentOptions};

use super::info::{describe, Described};
use crate::cli::LsArgs;

pub fn run(args: LsArgs) -> anyhow::Result<ExitCode> {
    let objects = shmwire::list().context("cannot list shared-memory segments")?;
    let opts = SegmentOptions::new();
    let mut rows: Vec<Described> = Vec::with_capacity(objects.len());
    for o in &objects {
        let mut d = match opts.inspect(&o.name) {
            Ok(i) => describe(&i),
            Err(e) => {
                let state = match e {
                    OpenError::PermissionDenied { .. } => "no-access",
                    OpenError::NotFound { .. } => continue, // removed meanwhile
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
        d.mode = o.mode.map(|m| format!("{m:03o}"));
        d.uid = o.uid;
        rows.push(d);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    if rows.is_empty() {
        println!("no shared-memory segments");
        return Ok(ExitCode::SUCCESS);
    }
    let w = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<w$}  {:>10}  {:>4}  {:<12}  CREATOR",
        "NAME", "SIZE", "MODE", "KIND"
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
        println!(
            "{:<w$}  {:>10}  {:>4}  {:<12}  {creator}",
            r.name,
            humansize::format_size(r.size, humansize::BINARY),
            r.mode.as_deref().unwrap_or("-"),
            kind,
        );
    }
    Ok(ExitCode::SUCCESS)
}
