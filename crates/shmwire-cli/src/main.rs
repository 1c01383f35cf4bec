//! `shmwire`: the command-line tool. `main` only parses, dispatches and reports errors.
#![forbid(unsafe_code)]

mod advice;
mod cli;
mod command;
mod exit;
mod holder;
mod options;
mod report;
mod sync_segment;
mod terminal;
mod transfer;
mod units;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `shmwire bench` re-runs this executable as its echo process.
    if let Some(code) = shmwire_bench::echo_main(&shmwire_bench::builtin()) {
        return code;
    }
    let cli = cli::Cli::parse();
    match command::run(cli.command) {
        Ok(code) => code,
        Err(err) => exit::report(&err),
    }
}
