//! The waiting contract ([`WordWait`]) and the named kernel objects, tested against the
//! backend being built: natively on Linux, under Wine for Windows.
#![allow(unsafe_code)]

use std::io;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::conformance::{name, unique};
use crate::*;

#[test]
fn a_wait_on_a_word_that_differs_returns_at_once() {
    let w = AtomicU32::new(1);
    let t = Instant::now();
    let r = Os::wait(&w, 0, Some(Duration::from_secs(30)));
    assert_eq!(r, WaitOutcome::Changed);
    assert!(t.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_wait_times_out() {
    let w = AtomicU32::new(0);
    let r = Os::wait(&w, 0, Some(Duration::from_millis(20)));
    // A signal could interrupt it, or (futex) a spurious wakeup; never `Changed`.
    assert!(
        matches!(
            r,
            WaitOutcome::TimedOut | WaitOutcome::Interrupted | WaitOutcome::Woken
        ),
        "{r:?}"
    );
}

/// The word is seen through two different mappings of one shared object, as two processes
/// see it. A futex with `FUTEX_PRIVATE_FLAG` is keyed by the virtual address and would sleep
/// through the wake sent through the other mapping until its timeout: this test would fail.
#[test]
fn a_wake_through_another_mapping_of_the_object_reaches_the_sleeper() {
    struct Cleanup(String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = Os::remove(name(&self.0));
        }
    }
    let n = unique("futex");
    let _c = Cleanup(n.clone());
    let shm = Shm::create(name(&n), 4096, Permissions::default()).unwrap();
    let a = Arc::new(shm.map(0, 4096, Access::ReadWrite).unwrap());
    let b = shm.map(0, 4096, Access::ReadWrite).unwrap();
    assert_ne!(a.as_ptr(), b.as_ptr());
    // SAFETY: both views are 4096 bytes, page-aligned, read-write, and outlive every use
    // below (`a` is kept alive by the Arc until the thread is joined; `b` until the end).
    let word_b = unsafe { AtomicU32::from_ptr(b.as_ptr().cast()) };
    let a2 = Arc::clone(&a);
    let sleeper = std::thread::spawn(move || {
        // SAFETY: see above; the Arc keeps view `a` mapped for this thread.
        let word_a = unsafe { AtomicU32::from_ptr(a2.as_ptr().cast()) };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut outcomes = Vec::new();
        while word_a.load(Ordering::Acquire) == 0 && Instant::now() < deadline {
            outcomes.push(Os::wait(word_a, 0, Some(Duration::from_secs(20))));
        }
        outcomes
    });
    std::thread::sleep(Duration::from_millis(50)); // let it fall asleep (not required)
    word_b.store(1, Ordering::Release);
    Os::wake(word_b, u32::MAX);
    let outcomes = sleeper.join().unwrap();
    assert!(
        !outcomes.contains(&WaitOutcome::TimedOut),
        "the sleeper was not woken: {outcomes:?}"
    );
}

#[test]
fn kernel_objects_exist_exactly_where_announced() {
    let n = unique("kobj");
    let m = NamedMutex::open_or_create(name(&n), "mutex-0");
    let e = NamedEvent::open_or_create(name(&n), "event-0", false, false);
    let s = NamedSemaphore::open_or_create(name(&n), "sem-0", 0, 1);
    if KERNEL_SYNC_OBJECTS {
        assert!(m.is_ok() && e.is_ok() && s.is_ok());
    } else {
        for err in [m.err(), e.err(), s.err()].into_iter().flatten() {
            assert_eq!(err.kind(), io::ErrorKind::Unsupported);
        }
    }
}

#[test]
fn kernel_mutex_excludes_and_reports_an_abandoned_owner() {
    if !KERNEL_SYNC_OBJECTS {
        return;
    }
    let n = unique("kmutex");
    let a = NamedMutex::open_or_create(name(&n), "mutex-128").unwrap();
    assert_eq!(
        a.lock(Some(Duration::ZERO)).unwrap(),
        Some(MutexAcquired::Normally)
    );
    let n2 = n.clone();
    // Another thread with its own handle: excluded while we hold it.
    let other = std::thread::spawn(move || {
        let b = NamedMutex::open_or_create(name(&n2), "mutex-128").unwrap();
        let first = b.lock(Some(Duration::from_millis(10))).unwrap();
        let second = b.lock(Some(Duration::from_secs(20))).unwrap();
        // Ends without unlocking: the mutex is abandoned.
        (first, second)
    });
    std::thread::sleep(Duration::from_millis(50));
    a.unlock().unwrap();
    let (first, second) = other.join().unwrap();
    assert_eq!(first, None);
    assert_eq!(second, Some(MutexAcquired::Normally));
    assert_eq!(
        a.lock(Some(Duration::from_secs(20))).unwrap(),
        Some(MutexAcquired::Abandoned)
    );
    a.unlock().unwrap();
    assert_eq!(
        a.lock(Some(Duration::ZERO)).unwrap(),
        Some(MutexAcquired::Normally)
    );
    a.unlock().unwrap();
    assert!(
        a.unlock().is_err(),
        "a mutex we do not own cannot be released"
    );
}

#[test]
fn kernel_events_auto_and_manual_reset() {
    if !KERNEL_SYNC_OBJECTS {
        return;
    }
    let n = unique("kevent");
    let (auto, created) = NamedEvent::open_or_create(name(&n), "event-0", false, false).unwrap();
    assert!(created);
    let (auto2, created) = NamedEvent::open_or_create(name(&n), "event-0", true, true).unwrap();
    assert!(!created, "the second call opens the first object");
    assert!(!auto2.wait(Some(Duration::ZERO)).unwrap());
    auto.set().unwrap();
    assert!(auto2.wait(Some(Duration::ZERO)).unwrap());
    assert!(!auto.wait(Some(Duration::ZERO)).unwrap(), "auto reset");

    let (manual, _) = NamedEvent::open_or_create(name(&n), "event-128", true, false).unwrap();
    manual.set().unwrap();
    assert!(manual.wait(Some(Duration::ZERO)).unwrap());
    assert!(manual.wait(Some(Duration::ZERO)).unwrap(), "stays set");
    manual.reset().unwrap();
    assert!(!manual.wait(Some(Duration::from_millis(1))).unwrap());
}

#[test]
fn kernel_semaphores_count_and_refuse_overflow() {
    if !KERNEL_SYNC_OBJECTS {
        return;
    }
    let n = unique("ksem");
    let (s, created) = NamedSemaphore::open_or_create(name(&n), "sem-0", 1, 2).unwrap();
    assert!(created);
    assert!(s.wait(Some(Duration::ZERO)).unwrap());
    assert!(!s.wait(Some(Duration::ZERO)).unwrap());
    s.post(2).unwrap();
    let err = s.post(1).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(s.wait(None).unwrap());
    assert!(s.wait(None).unwrap());
    assert!(!s.wait(Some(Duration::from_millis(1))).unwrap());
}

#[test]
fn process_exists_for_us_and_not_for_a_reaped_child() {
    assert!(Os::process_exists(std::process::id()));
    // Unix allocates pids in sequence, so a just-reaped pid is not reused at once (Windows
    // reuses small pids eagerly: there only our own pid is checked).
    #[cfg(unix)]
    {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!Os::process_exists(pid));
    }
}
