//! `shmwire-bench`: `shmwire bench` with the peer crates (build with `--features peers`).
//!
//! ```text
//! cargo run --release -p shmwire-bench --features peers -- [--quick] [--json] [--plot FILE]
//! ```
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

/// Measures shmwire next to the machine's floors, kernel IPC and the peer crates.
#[derive(Debug, Parser)]
#[command(name = "shmwire-bench", version)]
struct Cli {
    #[command(flatten)]
    args: shmwire_bench::BenchArgs,
}

fn contenders() -> Vec<Box<dyn shmwire_bench::Transport>> {
    #[allow(unused_mut)]
    let mut v = shmwire_bench::builtin();
    #[cfg(feature = "peers")]
    v.extend(shmwire_bench::peers::all());
    v
}

fn main() -> ExitCode {
    let contenders = contenders();
    if let Some(code) = shmwire_bench::echo_main(&contenders) {
        return code;
    }
    let cli = Cli::parse();
    match shmwire_bench::main_with(&cli.args, &contenders) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shmwire-bench: {e:#}");
            ExitCode::from(2)
        }
    }
}
