//! The one switch between the real world and loom's model of it (as in tokio's `src/loom`).
//!
//! Protocol code (`mutex.rs`, `event.rs`, `semaphore.rs`) takes its atomics, its wait/wake
//! and its view of other processes from here and from nowhere else:
//!
//! * without `--cfg loom`: `std` atomics, [`WordWait`] of the platform (futex on Linux), and
//!   the platform's process identity and liveness;
//! * with `--cfg loom`: loom's atomics, a futex modelled by a loom `Mutex` + `Condvar` (the
//!   compare-and-sleep is atomic with respect to wake, as the kernel's is), and a table of
//!   model "processes" (loom threads with a pid each) that a model can kill.
//!
//! In a model, a wait with a timeout either never times out ([`model::Timeouts::Never`], so
//! a lost wakeup shows up as a deadlock that loom reports) or may time out at once
//! ([`model::Timeouts::Fire`], to explore the liveness checks that run after a slice).

use std::time::Duration;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use shmwire_platform::{Liveness, ProcessId};

/// Whether a [`wait`] ended because its timeout passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slept {
    /// Woken, the word differed, interrupted, or spurious: re-check.
    Returned,
    /// The timeout passed (a good moment for liveness checks).
    TimedOut,
}

#[cfg(not(loom))]
mod imp {
    use super::*;
    use shmwire_platform::{Os, Processes, WaitOutcome, WordWait};

    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Slept {
        match Os::wait(word, expected, timeout) {
            WaitOutcome::TimedOut => Slept::TimedOut,
            _ => Slept::Returned,
        }
    }

    pub(crate) fn wake(word: &AtomicU32, n: u32) {
        Os::wake(word, n);
    }

    pub(crate) fn current_process() -> ProcessId {
        Os::current_process()
    }

    pub(crate) fn liveness(process: ProcessId) -> Liveness {
        Os::liveness(process)
    }

    pub(crate) fn process_exists(pid: u32) -> bool {
        Os::process_exists(pid)
    }
}

#[cfg(loom)]
mod imp {
    use super::*;
    use loom::sync::{Condvar, Mutex};

    pub(crate) struct Futex {
        lock: Mutex<()>,
        cv: Condvar,
    }

    /// Model processes have pids 1..=MAX_PIDS.
    pub(crate) const MAX_PIDS: usize = 4;

    pub(crate) struct World {
        pub(crate) dead: [loom::sync::atomic::AtomicBool; MAX_PIDS],
        pub(crate) timeouts_fire: loom::sync::atomic::AtomicBool,
    }

    loom::lazy_static! {
        pub(crate) static ref FUTEX: Futex = Futex { lock: Mutex::new(()), cv: Condvar::new() };
        pub(crate) static ref WORLD: World = World {
            dead: std::array::from_fn(|_| loom::sync::atomic::AtomicBool::new(false)),
            timeouts_fire: loom::sync::atomic::AtomicBool::new(false),
        };
    }

    loom::thread_local! {
        pub(crate) static PID: std::cell::Cell<u32> = std::cell::Cell::new(1);
    }

    pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Option<Duration>) -> Slept {
        let guard = FUTEX.lock.lock().unwrap();
        // The kernel compares under its hash-bucket lock (which `wake` also takes), after a
        // full barrier (callers that need one also issue their own `fence(SeqCst)`).
        fence(Ordering::SeqCst);
        if word.load(Ordering::Relaxed) != expected {
            return Slept::Returned;
        }
        if timeout.is_some() && WORLD.timeouts_fire.load(Ordering::SeqCst) {
            drop(guard);
            loom::thread::yield_now();
            return Slept::TimedOut;
        }
        drop(FUTEX.cv.wait(guard).unwrap());
        Slept::Returned
    }

    pub(crate) fn wake(_word: &AtomicU32, n: u32) {
        // Each model waits on one word only, so one condvar stands for the futex queue.
        let _guard = FUTEX.lock.lock().unwrap();
        if n == 1 {
            FUTEX.cv.notify_one();
        } else {
            FUTEX.cv.notify_all();
        }
    }

    pub(crate) fn current_process() -> ProcessId {
        ProcessId {
            pid: PID.with(|p| p.get()),
            start_time: 1,
        }
    }

    pub(crate) fn liveness(process: ProcessId) -> Liveness {
        if process_exists(process.pid) && process.start_time == 1 {
            Liveness::Alive
        } else {
            Liveness::Dead
        }
    }

    pub(crate) fn process_exists(pid: u32) -> bool {
        match (pid as usize)
            .checked_sub(1)
            .and_then(|i| WORLD.dead.get(i))
        {
            Some(dead) => !dead.load(Ordering::SeqCst),
            None => false,
        }
    }
}

pub(crate) use imp::{current_process, liveness, process_exists, wait, wake};

/// Controls for loom models.
#[cfg(all(test, loom))]
pub(crate) mod model {
    use super::imp::{PID, WORLD};
    use super::Ordering;

    /// Whether waits with a timeout may time out (see the module docs).
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Timeouts {
        Never,
        Fire,
    }

    /// Call first in every model execution.
    pub(crate) fn setup(timeouts: Timeouts) {
        WORLD
            .timeouts_fire
            .store(matches!(timeouts, Timeouts::Fire), Ordering::SeqCst);
    }

    /// Makes the calling loom thread the model process `pid` (1..=4).
    pub(crate) fn become_process(pid: u32) {
        PID.with(|p| p.set(pid));
    }

    /// Kills the calling model process: from now on it is dead to liveness checks. The
    /// caller then returns without releasing anything, as a killed process would.
    pub(crate) fn die() {
        let pid = PID.with(|p| p.get());
        WORLD.dead[pid as usize - 1].store(true, Ordering::SeqCst);
    }
}
