//! Doorbells and the one wait loop every channel operation uses.
//!
//! # The doorbell protocol
//!
//! A [`RawBell`] is two words next to the cursor it announces: `seq` and `waiters`.
//!
//! * **ring** (after the producer of a condition published it with a Release store): SeqCst
//!   fence, load `waiters`; only if it is not 0, `seq += 1` and wake the sleepers (futex on
//!   `seq`; Windows: post the bell's kernel semaphore). The common case, nobody asleep,
//!   costs a fence and a load: no system call.
//! * **sleep**: load `seq`, `waiters += 1`, SeqCst fence, check the condition again; if it
//!   still fails, futex-wait while `seq` is unchanged (Windows: wait on the semaphore), for
//!   at most one slice, then `waiters -= 1`.
//!
//! This is the counted-waiter handshake of [`primitive::counted_sleep`] /
//! [`primitive::counted_wake`], where the argument why no wakeup is lost is written: either
//! the ringer sees the sleeper counted and bumps `seq` — then the futex compare fails or the
//! wake finds the sleeper asleep — or the sleeper's re-check sees the published condition
//! and it never sleeps. On Windows a post made before the sleeper waits leaves a permit the
//! wait takes at once. Waiters killed while counted leave `waiters` too high, which costs
//! spurious wakes (bounded: the kernel semaphore's maximum is 64), never a missed one.
//!
//! Every sleep is one slice (at most [`SLICE`]) long; between slices the wait loop checks
//! whether the peers are still alive, so a dead peer costs a bounded delay, not a hang.

use std::time::{Duration, Instant};

pub(crate) use crate::primitive::Patience;

use shmwire_platform::{KernelSemaphore, NamedSemaphore};

use crate::primitive::{self, AtomicU32, Ordering, Slept};

/// Longest a blocked channel operation sleeps before it checks its peers' liveness.
pub(crate) const SLICE: Duration = primitive::LIVENESS_SLICE;

/// How often a spinning operation checks its peers' liveness.
const SPIN_CHECK: Duration = Duration::from_millis(10);

/// Permits a bell's kernel semaphore can hold (Windows): bounds the spurious wakes a stale
/// waiter count can cause.
pub(crate) const BELL_MAX: u32 = 64;

/// How a blocked channel operation waits for its peer.
///
/// The wake-up of a sleeping process on another core costs tens of microseconds, while a
/// message that arrives during a spin is seen within a hundred nanoseconds; a peer that is
/// quick to answer is best met spinning, an idle one by sleeping.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Poll without ever sleeping: lowest latency, one core busy while waiting.
    Spin,
    /// Poll for this long, then sleep until woken (the default, with 30 µs).
    SpinThenBlock(Duration),
    /// Sleep at once until woken: no CPU while waiting, a wake-up's latency.
    Block,
}

impl Default for WaitStrategy {
    fn default() -> Self {
        WaitStrategy::SpinThenBlock(Duration::from_micros(30))
    }
}

/// A doorbell as it lies in shared memory (8 bytes, inside a cursor line).
#[repr(C)]
#[derive(Debug)]
pub(crate) struct RawBell {
    seq: AtomicU32,
    waiters: AtomicU32,
}

impl RawBell {
    #[cfg(test)]
    pub(crate) fn new() -> RawBell {
        RawBell {
            seq: AtomicU32::new(0),
            waiters: AtomicU32::new(0),
        }
    }

    /// Wakes the sleepers, if any announced themselves. Call after publishing.
    pub(crate) fn ring(&self, kernel: Option<&NamedSemaphore>) {
        let Some(waiters) = primitive::counted_wake(&self.waiters) else {
            return;
        };
        self.seq.fetch_add(1, Ordering::Relaxed);
        match kernel {
            None => primitive::wake(&self.seq, u32::MAX),
            Some(sem) => {
                // Too many permits already: those wake someone anyway.
                if sem.post(waiters.min(BELL_MAX)).is_err() {
                    let _ = sem.post(1);
                }
            }
        }
    }

    /// Announces a sleeper, re-checks with `check`, and sleeps at most `slice` unless the
    /// check succeeded. Returns the check's result (if it succeeded) and how the sleep ended.
    pub(crate) fn sleep<T>(
        &self,
        kernel: Option<&NamedSemaphore>,
        slice: Duration,
        check: &mut impl FnMut() -> Option<T>,
    ) -> (Option<T>, Slept) {
        let seq = self.seq.load(Ordering::Relaxed);
        primitive::counted_sleep(&self.waiters, || {
            let found = check();
            if found.is_some() {
                return (found, Slept::Returned);
            }
            let slept = match kernel {
                None => primitive::wait(&self.seq, seq, Some(slice)),
                Some(sem) => match sem.wait(Some(slice)) {
                    Ok(false) => Slept::TimedOut,
                    Ok(true) => Slept::Returned,
                    // An OS failure: sleep out the slice by polling instead.
                    Err(_) => {
                        std::thread::sleep(slice.min(Duration::from_millis(1)));
                        Slept::TimedOut
                    }
                },
            };
            (None, slept)
        })
    }
}

/// How a wait ended without its condition.
#[derive(Debug)]
pub(crate) enum Ended<E> {
    /// `Try` found nothing, or the deadline passed.
    TimedOut,
    /// The peer check reported this (typically "disconnected").
    Peer(E),
}

/// Waits for `attempt` to succeed: spinning and/or sleeping on `bell` as `strategy` says,
/// and calling `peers(sweep)` to learn whether waiting is pointless — cheaply (`false`: no
/// liveness checks) after every wake-up and spin round, with liveness checks (`true`) after
/// every slice that timed out and every [`SPIN_CHECK`] of spinning.
pub(crate) fn wait_for<T, E>(
    strategy: WaitStrategy,
    patience: Patience,
    bell: &RawBell,
    kernel: Option<&NamedSemaphore>,
    attempt: &mut impl FnMut() -> Option<T>,
    peers: &mut impl FnMut(bool) -> Option<E>,
) -> Result<T, Ended<E>> {
    if let Some(t) = attempt() {
        return Ok(t);
    }
    if let Some(e) = peers(false) {
        // The peer may have published just before leaving.
        return attempt().ok_or(Ended::Peer(e));
    }
    let deadline = match patience {
        Patience::Try => return Err(Ended::TimedOut),
        Patience::Until(d) => d,
    };
    let start = Instant::now();
    let spin_for = match strategy {
        WaitStrategy::Spin => None,
        WaitStrategy::SpinThenBlock(d) => Some(d),
        WaitStrategy::Block => Some(Duration::ZERO),
    };
    let mut last_check = start;
    // Spin phase.
    if spin_for != Some(Duration::ZERO) {
        loop {
            for _ in 0..64 {
                std::hint::spin_loop();
                if let Some(t) = attempt() {
                    return Ok(t);
                }
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(Ended::TimedOut);
            }
            let sweep = now.duration_since(last_check) >= SPIN_CHECK;
            if sweep {
                last_check = now;
            }
            if let Some(e) = peers(sweep) {
                return attempt().ok_or(Ended::Peer(e));
            }
            if spin_for.is_some_and(|s| now.duration_since(start) >= s) {
                break;
            }
        }
    }
    // Block phase.
    loop {
        let Some(slice) = patience.next_slice(SLICE) else {
            return Err(Ended::TimedOut);
        };
        let (found, slept) = bell.sleep(kernel, slice, attempt);
        if let Some(t) = found {
            return Ok(t);
        }
        if let Some(t) = attempt() {
            return Ok(t);
        }
        if let Some(e) = peers(slept == Slept::TimedOut) {
            return attempt().ok_or(Ended::Peer(e));
        }
    }
}
