//! One module per subcommand.

mod create;
mod demo;
mod info;
mod ls;
mod read;
mod rm;
mod write;

use std::process::ExitCode;

use shmwire::SegmentOptions;

use crate::cli::{Command, Target};

pub fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo(a) => demo::run(a),
        Command::Create(a) => create::run(a),
        Command::Write(a) => write::run(a),
        Command::Read(a) => read::run(a),
        Command::Info(a) => info::run(a),
        Command::Ls(a) => ls::run(a),
        Command::Rm(a) => rm::run(a),
        Command::Hold(a) => create::hold(a),
    }
}

/// Options for a segment named on the command line.
fn options(target: &Target) -> SegmentOptions {
    SegmentOptions::new().global(target.global)
}
