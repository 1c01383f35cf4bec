//! `shmwire create NAME --size SIZE [--raw] [--mode M] [--persist]`.

use std::process::ExitCode;
use std::sync::mpsc;

use anyhow::Context;

use crate::cli::CreateArgs;
use crate::{holder, options, units};

pub(super) fn run(args: CreateArgs) -> anyhow::Result<ExitCode> {
    let name = args.target.name.as_str();
    let mut seg = options::segment(args.target.namespace)
        .raw(args.raw)
        .mode(args.mode)
        // Recorded in the header, so that `shmwire gc` keeps it (without --all).
        .keep_in_gc(args.persist)
        .create(name, args.size)?;
    let what = format!(
        "{} segment {name:?} of {}, mode {:03o}",
        if args.raw { "raw" } else { "shmwire" },
        units::size(args.size),
        args.mode
    );
    if args.persist {
        seg.release_ownership();
        if !shmwire::NAMES_OUTLIVE_HANDLES {
            holder::spawn(&args.target.name, args.target.namespace.global)?;
        }
        println!(
            "created {what}; it stays until `{}`",
            crate::advice::rm(name, args.target.namespace.global)
        );
        return Ok(ExitCode::SUCCESS);
    }
    // Owned: held by this process, removed when it ends (Ctrl-C or SIGTERM).
    let (tx, rx) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = tx.send(());
    })
    .context("cannot install the Ctrl-C handler")?;
    println!("created {what}; holding it until Ctrl-C, then removing it (--persist keeps it)");
    let _ = rx.recv();
    drop(seg);
    println!("removed segment {name:?}");
    Ok(ExitCode::SUCCESS)
}
