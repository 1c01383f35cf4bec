//! Channels between real processes: SPSC, MPMC, broadcast and blackboard, including
//! endpoints killed in the middle of an operation.
//!
//! One module per flavor, and `endpoints` for what holds for all of them. Each test
//! re-executes this test binary as children (see `common/mod.rs`), whose roles are in
//! [`CHILDREN`]. Every message starts with its id (a sequence number, or producer and
//! sequence) and the xxh3 of its payload, so a torn, misplaced, lost or duplicated message
//! shows. The parent opens its endpoint first, so the
//! channel lives as long as the test on every platform (Windows removes a section with its
//! last handle). Children are killed with `Child::kill` (SIGKILL on Unix, `TerminateProcess`
//! on Windows). No test asserts on timing: every wait is bounded by [`HANG_GUARD`] only, so a
//! bug shows as a failure, never as a hung test run.
//!
//! A random seed drives message sizes and kill moments; it is printed (`test seed`) and can
//! be replayed with `SHMWIRE_TEST_SEED=<seed>`.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::{
    self, child_env, child_env_u64, child_segment, fill, report, spawn_child, wait_for_command,
    ChildProc, Cleanup, Rng, HANG_GUARD,
};
use shmwire::channel::{
    ChannelOpenError, ChannelOptions, RecvTimeoutError, SendTimeoutError, TryRecvError,
    TrySendError, WaitStrategy,
};
use shmwire::{Kind, OpenError, OpenOrCreateError, Segment};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

/// Environment variables of the children (besides the channel name in `NAME_VAR`).
const SEED_VAR: &str = "SHMWIRE_TEST_CH_SEED";
const COUNT_VAR: &str = "SHMWIRE_TEST_CH_COUNT";
const ARG_VAR: &str = "SHMWIRE_TEST_CH_ARG";
const AUX_VAR: &str = "SHMWIRE_TEST_CH_AUX";
const AUX2_VAR: &str = "SHMWIRE_TEST_CH_AUX2";

/// The child processes' roles (see `child_entry` in `main.rs`).
pub(crate) const CHILDREN: &[crate::Role] = &[
    ("spsc-streamer", spsc::child_spsc_streamer),
    ("spsc-loaner", spsc::child_spsc_loaner),
    ("spsc-short-loan", spsc::child_spsc_short_loan),
    ("spsc-half-loan", spsc::child_spsc_half_loan),
    ("spsc-big-sender", spsc::child_spsc_big_sender),
    ("spsc-dying-receiver", spsc::child_spsc_dying_receiver),
    ("spsc-drainer", spsc::child_spsc_drainer),
    ("spsc-holder", spsc::child_spsc_holder),
    ("spsc-closer", endpoints::child_spsc_closer),
    (
        "spsc-receiver-closer",
        endpoints::child_spsc_receiver_closer,
    ),
    ("mpmc-producer", mpmc::child_mpmc_producer),
    ("mpmc-consumer", mpmc::child_mpmc_consumer),
    ("mpmc-loan-holder", mpmc::child_mpmc_loan_holder),
    ("mpmc-waiter", mpmc::child_mpmc_waiter),
    ("bc-fast", broadcast::child_bc_fast),
    ("bc-slow", broadcast::child_bc_slow),
    ("bc-late", broadcast::child_bc_late),
    ("bb-writer", blackboard::child_bb_writer),
    ("bb-reader", blackboard::child_bb_reader),
    ("describer", endpoints::child_describer),
    ("contender", endpoints::child_contender),
];

mod blackboard;
mod broadcast;
mod endpoints;
mod mpmc;
mod spsc;

// ------------------------------------------------------------------------------ helpers

/// Bytes before a message's payload: its id and the xxh3 of the payload (both u64 LE).
const HDR: usize = 16;

/// Builds message `id` with a payload of `payload_len` bytes into `out`.
fn encode_into(out: &mut Vec<u8>, id: u64, payload_len: usize) {
    out.clear();
    out.resize(HDR + payload_len, 0);
    fill(&mut out[HDR..], id);
    let sum = xxh3_64(&out[HDR..]);
    out[..8].copy_from_slice(&id.to_le_bytes());
    out[8..HDR].copy_from_slice(&sum.to_le_bytes());
}

fn encode(id: u64, payload_len: usize) -> Vec<u8> {
    let mut v = Vec::new();
    encode_into(&mut v, id, payload_len);
    v
}

/// The id of a received message, after checking its payload against its checksum.
#[track_caller]
fn decode(msg: &[u8]) -> u64 {
    assert!(
        msg.len() >= HDR,
        "a message of {} bytes has no header",
        msg.len()
    );
    let id = u64::from_le_bytes(msg[..8].try_into().unwrap());
    let sum = u64::from_le_bytes(msg[8..HDR].try_into().unwrap());
    let actual = xxh3_64(&msg[HDR..]);
    assert_eq!(
        actual,
        sum,
        "message {id} ({} bytes) is torn: its payload does not match its checksum",
        msg.len()
    );
    id
}

fn ring(capacity: u64) -> ChannelOptions {
    ChannelOptions::new().capacity(capacity)
}

/// Asserts that a receive ended with `Disconnected` (a `Timeout` means it hung for the
/// whole [`HANG_GUARD`]).
#[track_caller]
fn expect_disconnected<T: std::fmt::Debug, E: Into<RecvTimeoutError>>(
    got: Result<T, E>,
    what: &str,
) {
    match got.map_err(Into::into) {
        Err(RecvTimeoutError::Disconnected { .. }) => {}
        other => panic!("{what}: expected Disconnected, got {other:?}"),
    }
}

/// Waits for the child's report and checks it is `expected`.
#[track_caller]
fn expect_value(child: &mut ChildProc, key: &str, expected: impl std::fmt::Display) {
    let got = child.expect_report(key);
    assert_eq!(got, expected.to_string(), "child's report {key}");
}
