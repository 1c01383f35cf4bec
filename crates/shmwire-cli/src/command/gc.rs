//! `shmwire gc [--dry-run] [--all] [--prefix PREFIX] [--ignore-unseen] [--json]`: removes
//! the segments nobody uses any more. The rules are the library's (`shmwire::gc`).

use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use shmwire::gc::{Finding, GcOptions, GcReport};

use crate::cli::GcArgs;

/// One segment in the JSON output.
#[derive(Debug, Serialize)]
struct Row {
    name: String,
    /// The OS object's size in bytes (what removing it frees).
    size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    verdict: &'static str,
    reason: String,
}

/// A removal that failed, in the JSON output.
#[derive(Debug, Serialize)]
struct Failure {
    name: String,
    error: String,
}

#[derive(Debug, Serialize)]
struct Json {
    dry_run: bool,
    /// Removed (or, with --dry-run, to be removed).
    removed: Vec<Row>,
    kept: Vec<Row>,
    uncertain: Vec<Row>,
    failed: Vec<Failure>,
    live: Vec<Row>,
    /// How many objects were not judged (raw, another program's, unreadable).
    foreign: usize,
}

fn row(f: &Finding) -> Row {
    Row {
        name: f.object.name.clone(),
        size: f.object.size,
        kind: f.kind().map(|k| k.to_string()),
        verdict: f.verdict.word(),
        reason: f.verdict.reason().to_owned(),
    }
}

pub(super) fn run(args: GcArgs) -> anyhow::Result<ExitCode> {
    let mut opts = GcOptions::new()
        .dry_run(args.dry_run)
        .include_kept(args.all)
        .ignore_unseen(args.ignore_unseen);
    if let Some(p) = &args.prefix {
        opts = opts.prefix(p.as_str());
    }
    let report = shmwire::gc::collect(&opts).context("cannot collect abandoned segments")?;
    let status = if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    };
    if args.json {
        let json = Json {
            dry_run: report.dry_run,
            removed: report.removed.iter().map(row).collect(),
            kept: report.kept.iter().map(row).collect(),
            uncertain: report.uncertain.iter().map(row).collect(),
            failed: report
                .failed
                .iter()
                .map(|(f, e)| Failure {
                    name: f.object.name.clone(),
                    error: e.to_string(),
                })
                .collect(),
            live: report.live.iter().map(row).collect(),
            foreign: report.foreign.len(),
        };
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(status);
    }
    print_text(&report, args.all);
    Ok(status)
}

fn print_text(report: &GcReport, all: bool) {
    let removed = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for f in &report.removed {
        println!(
            "{removed} {} ({}): {}",
            f.object.name,
            humansize::format_size(f.object.size, humansize::BINARY),
            f.verdict.reason()
        );
    }
    for f in &report.kept {
        println!("kept {}: {}", f.object.name, f.verdict.reason());
    }
    for f in &report.uncertain {
        println!(
            "kept {} (possibly stale): {}",
            f.object.name,
            f.verdict.reason()
        );
    }
    for (f, e) in &report.failed {
        eprintln!("shmwire: cannot remove segment {:?}: {e}", f.object.name);
    }
    let freed: u64 = report.removed.iter().map(|f| f.object.size).sum();
    let mut summary = vec![format!(
        "{removed} {} ({})",
        count(report.removed.len(), "abandoned segment"),
        humansize::format_size(freed, humansize::BINARY)
    )];
    if !report.kept.is_empty() {
        summary.push(format!(
            "kept {} on purpose{}",
            count(report.kept.len(), "abandoned segment"),
            if all { "" } else { " (--all removes them)" }
        ));
    }
    if !report.uncertain.is_empty() {
        summary.push(format!(
            "kept {} that processes gc cannot inspect might use (--ignore-unseen removes them)",
            count(report.uncertain.len(), "possibly stale segment"),
        ));
    }
    if !report.failed.is_empty() {
        summary.push(format!("failed to remove {}", report.failed.len()));
    }
    summary.push(format!("{} in use", report.live.len()));
    summary.push(format!(
        "{} not shmwire's (never touched)",
        report.foreign.len()
    ));
    println!("{}", summary.join("; "));
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}
