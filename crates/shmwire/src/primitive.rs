//! The one switch between the real world and loom's model of it (as in tokio's `src/loom`),
//! and the one waiting layer that every blocking call of `sync` and `channel` is built on.
//!
//! Protocol code (`sync/*`, `channel/*`) takes its atomics, its wait/wake, its view of other
//! processes, its [`Patience`] and its counted-waiter handshake ([`counted_sleep`] /
//! [`counted_wake`]) from here and from nowhere else (`clippy.toml` forbids std's atomics
//! elsewhere in the crate, but for `view.rs`, which hands them out over mappings):
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

use std::time::{Duration, Instant};

#[cfg(not(loom))]
use std::sync::atomic as backend;

#[cfg(loom)]
use loom::sync::atomic as backend;

pub(crate) use std::sync::atomic::Ordering;

/// The atomics protocol code uses: std's, or loom's under `--cfg loom`. A newtype (not a
/// re-export), so that `clippy.toml` can forbid naming std's atomics anywhere else in the
/// crate: code that did would escape loom's checks. Zero-cost: it derefs to the atomic.
macro_rules! atomic {
    ($name:ident, $int:ty) => {
        #[doc = concat!("An `", stringify!($name), "` of std, or of loom in a loom build.")]
        #[repr(transparent)]
        #[derive(Debug, Default)]
        pub(crate) struct $name(backend::$name);

        // Values in mappings are never constructed; tests and loom models construct them.
        #[cfg_attr(not(test), allow(dead_code))]
        impl $name {
            #[cfg(not(loom))]
            pub(crate) const fn new(v: $int) -> Self {
                $name(backend::$name::new(v))
            }

            #[cfg(loom)]
            pub(crate) fn new(v: $int) -> Self {
                $name(backend::$name::new(v))
            }
        }

        impl std::ops::Deref for $name {
            type Target = backend::$name;
            #[inline(always)]
            fn deref(&self) -> &backend::$name {
                &self.0
            }
        }
    };
}

atomic!(AtomicU32, u32);
atomic!(AtomicU64, u64);

/// A memory fence: std's, or loom's under `--cfg loom`.
#[inline(always)]
pub(crate) fn fence(order: Ordering) {
    backend::fence(order);
}

use shmwire_platform::{Liveness, ProcessId};

/// How long a blocked operation sleeps before it looks at its peers' liveness (channels) or
/// at a lock's owner (the robust mutex): the bound on how late a death is noticed.
pub(crate) const LIVENESS_SLICE: Duration = Duration::from_millis(20);

/// How long an event or semaphore waiter sleeps before it looks at its word again (a bound
/// on the cost of a waiter count left too high by a killed waiter).
pub(crate) const RECHECK_SLICE: Duration = Duration::from_millis(50);

/// How long a wait may last: the `try_` forms, the blocking forms, the `_timeout` forms.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Patience {
    /// Do not wait.
    Try,
    /// Until the deadline (`None`: for ever).
    Until(Option<Instant>),
}

impl Patience {
    /// The blocking forms: wait as long as it takes.
    pub(crate) const FOREVER: Patience = Patience::Until(None);

    /// The `_timeout` forms; a timeout too long to express as a deadline (`Duration::MAX`)
    /// is no limit.
    pub(crate) fn timeout(t: Duration) -> Patience {
        Patience::Until(Instant::now().checked_add(t))
    }

    /// How long to sleep next (at most `slice`), or `None` if the wait is over.
    pub(crate) fn next_slice(self, slice: Duration) -> Option<Duration> {
        match self {
            Patience::Try => None,
            Patience::Until(None) => Some(slice),
            Patience::Until(Some(d)) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left.min(slice)),
                _ => None,
            },
        }
    }
}

/// The sleeping half of the counted-waiter handshake that every wait/wake pair in the crate
/// uses (events, semaphores, channel doorbells): announce ourselves in `waiters`, fence,
/// then `sleep` (which re-checks the condition and sleeps only if it still fails, comparing
/// a word the waker changes before it wakes), then withdraw.
///
/// **Why no wakeup is lost.** The waker publishes its change, then calls [`counted_wake`]:
/// a SeqCst fence and a load of `waiters`. We increment `waiters`, then a SeqCst fence, then
/// re-check (and the futex compares). By the two fences, either the waker's load sees our
/// count (so it wakes us, and its change of the compared word makes the futex return at
/// once if we were not asleep yet), or our re-check sees its change and we do not sleep.
/// A waiter killed while counted leaves `waiters` too high: spurious wakes, never a missed
/// one.
pub(crate) fn counted_sleep<T>(waiters: &AtomicU32, sleep: impl FnOnce() -> T) -> T {
    waiters.fetch_add(1, Ordering::Relaxed);
    // ORDERING: SeqCst fence — orders our increment of `waiters` before the re-check and
    // the futex's compare; pairs with the SeqCst fence in `counted_wake`.
    fence(Ordering::SeqCst);
    let got = sleep();
    waiters.fetch_sub(1, Ordering::Relaxed);
    got
}

/// The waking half of the counted-waiter handshake (see [`counted_sleep`]): call it after
/// publishing; returns how many waiters are counted, `None` if none is (then nobody needs a
/// wake-up system call).
pub(crate) fn counted_wake(waiters: &AtomicU32) -> Option<u32> {
    // ORDERING: SeqCst fence — orders the caller's publishing store before our load of
    // `waiters`; pairs with the SeqCst fence in `counted_sleep`.
    fence(Ordering::SeqCst);
    let n = waiters.load(Ordering::Relaxed);
    (n != 0).then_some(n)
}

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
        match Os::wait(&word.0, expected, timeout) {
            WaitOutcome::TimedOut => Slept::TimedOut,
            _ => Slept::Returned,
        }
    }

    pub(crate) fn wake(word: &AtomicU32, n: u32) {
        Os::wake(&word.0, n);
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
