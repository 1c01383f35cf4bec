//! The integration tests of the `shmwire` command-line tool, in one test binary: one link
//! instead of one per file (ripgrep's `tests/it` layout). Each former test file is a module;
//! run one with `cargo test -p shmwire-cli --test it -- gc::`.
//!
//! The tests run the built binary (`CARGO_BIN_EXE_shmwire`, see `common/mod.rs`).

#[macro_use]
mod common;

mod bench;
mod channels;
mod cli;
#[cfg(target_os = "linux")]
mod exhaustion;
#[cfg(target_os = "linux")]
mod gc;
mod map;
mod sync;
