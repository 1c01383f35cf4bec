//! One file per subcommand, each with a `run(args)`: adding a command touches its file, the
//! dispatch below and `cli.rs`. Each file is named after its subcommand, except `pub`
//! (a Rust keyword) and its partner `sub`, spelt out:
//!
//! | file | subcommand |
//! |---|---|
//! | `create.rs`, `write.rs`, `read.rs`, `info.rs`, `ls.rs`, `rm.rs`, `gc.rs` | the same name |
//! | `send.rs`, `recv.rs`, `map.rs`, `lock.rs`, `signal.rs`, `wait.rs`, `demo.rs` | the same name |
//! | `publish.rs` | `pub` |
//! | `subscribe.rs` | `sub` |
//! | `hold.rs` | `hold`, hidden: the Windows holder process (started by `crate::holder`) |
//! | none | `bench`: `shmwire_bench::main_with` |
//!
//! What commands share lives beside this directory, never in it, and imports no command:
//! `crate::report` (info, ls), `crate::transfer` (send, recv, demo), `crate::sync_segment`
//! (lock, signal, wait), `crate::options`, `crate::terminal`, `crate::holder`.

mod create;
mod demo;
mod gc;
mod hold;
mod info;
mod lock;
mod ls;
mod map;
mod publish;
mod read;
mod recv;
mod rm;
mod send;
mod signal;
mod subscribe;
mod wait;
mod write;

use std::process::ExitCode;

use crate::cli::Command;

pub(crate) fn run(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Demo(a) => demo::run(a),
        Command::Create(a) => create::run(a),
        Command::Write(a) => write::run(a),
        Command::Read(a) => read::run(a),
        Command::Info(a) => info::run(a),
        Command::Ls(a) => ls::run(a),
        Command::Rm(a) => rm::run(a),
        Command::Gc(a) => gc::run(a),
        Command::Send(a) => send::run(a),
        Command::Recv(a) => recv::run(a),
        Command::Pub(a) => publish::run(a),
        Command::Sub(a) => subscribe::run(a),
        Command::Map(a) => map::run(a),
        Command::Lock(a) => lock::run(a),
        Command::Signal(a) => signal::run(a),
        Command::Wait(a) => wait::run(a),
        Command::Bench(a) => shmwire_bench::main_with(&a, &shmwire_bench::builtin()),
        Command::Hold(a) => hold::run(a),
    }
}
