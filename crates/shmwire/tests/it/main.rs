//! The integration tests of the shmwire library, in one test binary: one link instead of one
//! per file (ripgrep's `tests/it` layout). Each former test file is a module; run one with
//! `cargo test -p shmwire --test it -- sync::`.
//!
//! Multi-process tests re-run this binary as children (see `common/mod.rs`): [`child_entry`]
//! is their entry point, and each module lists its children's roles in a `CHILDREN` table.
//!
//! `conventions` installs this binary's global allocator: it counts allocations per thread,
//! so it is harmless to the other tests that run beside it.
// A user of the library: std's atomics are its own (crates/shmwire/clippy.toml keeps them out
// of the library's code, which must use its loom facade).
#![allow(clippy::disallowed_types, clippy::disallowed_methods)]

#[macro_use]
mod common;

#[cfg(not(loom))]
mod channels;
#[cfg(all(target_os = "linux", not(loom)))]
mod chaos;
#[cfg(not(loom))]
mod conventions;
#[cfg(target_os = "linux")]
mod exhaustion;
mod file_mapping;
#[cfg(not(loom))]
mod gc;
#[cfg(not(loom))]
mod hostile;
mod multiprocess;
#[cfg(target_os = "linux")]
mod permissions;
#[cfg(unix)]
mod python_interop;
mod segments;
#[cfg(not(loom))]
mod sync;

/// A child process's role: its name (the value of [`common::ROLE_VAR`]) and what it runs.
type Role = (&'static str, fn());

/// The roles of every module.
fn roles() -> Vec<Role> {
    let tables: &[&[Role]] = &[
        #[cfg(not(loom))]
        channels::CHILDREN,
        #[cfg(all(target_os = "linux", not(loom)))]
        chaos::CHILDREN,
        #[cfg(target_os = "linux")]
        exhaustion::CHILDREN,
        file_mapping::CHILDREN,
        #[cfg(not(loom))]
        gc::CHILDREN,
        #[cfg(not(loom))]
        hostile::CHILDREN,
        multiprocess::CHILDREN,
        #[cfg(target_os = "linux")]
        permissions::CHILDREN,
        #[cfg(not(loom))]
        sync::CHILDREN,
    ];
    tables.concat()
}

/// The entry point of every child process (see [`common::CHILD_ARGS`]); ignored, so that a
/// normal test run neither runs nor counts it.
#[test]
#[ignore = "child process entry point"]
fn child_entry() {
    let Some(role) = common::child_role() else {
        eprintln!(
            "not started as a child by a test ({} is not set): nothing to do",
            common::ROLE_VAR
        );
        return;
    };
    let roles = roles();
    let mut names: Vec<&str> = roles.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    let twice: Vec<_> = names.windows(2).filter(|w| w[0] == w[1]).collect();
    assert!(twice.is_empty(), "child roles defined twice: {twice:?}");
    let Some((_, run)) = roles.iter().find(|(name, _)| *name == role) else {
        panic!("unknown child role {role:?}")
    };
    run();
}
