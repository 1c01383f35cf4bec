//! The API's conventions, checked as a user meets them: a `try_` miss allocates nothing
//! (counted by this binary's allocator), the try / blocking / timeout triads and their
//! per-operation errors, waiting for a peer instead of polling, creation modes, the 2 GiB
//! ring, and the stream protocol in the library (send, receive, reject, a sender that fails).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Read};
use std::time::{Duration, Instant};

use crate::common::{unique_name, Cleanup};
use shmwire::channel::stream::{StreamHeader, StreamObserver, StreamRecvError, StreamSendError};
use shmwire::channel::{
    blackboard, broadcast, mpmc, spsc, ChannelOpenError, ChannelOptions, RecvTimeoutError,
    SendTimeoutError, TryRecvError, TrySendError,
};
use shmwire::sync::{Event, EventMode, RobustMutex, Semaphore, TryLockError, TryWaitError};
use shmwire::{CreationMode, SegmentOptions};

/// Counts this thread's allocations (tests run in parallel threads: a global count would
/// see the others').
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards to the system allocator; the counter is a const-initialized thread-local
// `Cell`, which itself never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn a_try_miss_allocates_nothing() {
    let name = unique_name("alloc-spsc");
    let _c = Cleanup(name.clone());
    let opts = ChannelOptions::new().capacity(16 * 1024);
    let mut tx = spsc::Sender::open(&name, &opts).unwrap();
    let mut rx = spsc::Receiver::open(&name, &opts).unwrap();
    // Warm up (lazy one-time work such as the liveness cache).
    assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
    let n = allocations(|| {
        for _ in 0..1000 {
            assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
            assert!(matches!(rx.try_recv_ref(), Err(TryRecvError::Empty)));
        }
    });
    assert_eq!(n, 0, "spsc try_recv misses allocated {n} times");
    let big = vec![1u8; tx.message_size() as usize];
    while tx.try_send(&big).is_ok() {}
    let n = allocations(|| {
        for _ in 0..1000 {
            assert!(matches!(tx.try_send(&big), Err(TrySendError::Full)));
        }
    });
    assert_eq!(n, 0, "spsc try_send misses allocated {n} times");

    let name = unique_name("alloc-mpmc");
    let _c2 = Cleanup(name.clone());
    let opts = ChannelOptions::new().capacity(2).message_size(64);
    let mut mtx = mpmc::Sender::open(&name, &opts).unwrap();
    let mut mrx = mpmc::Receiver::open(&name, &opts).unwrap();
    let _ = mrx.try_recv();
    let n = allocations(|| {
        for _ in 0..1000 {
            assert!(matches!(mrx.try_recv(), Err(TryRecvError::Empty)));
        }
    });
    assert_eq!(n, 0, "mpmc try_recv misses allocated {n} times");
    while mtx.try_send(b"x").is_ok() {}
    let n = allocations(|| {
        for _ in 0..1000 {
            assert!(matches!(mtx.try_send(b"x"), Err(TrySendError::Full)));
        }
    });
    assert_eq!(n, 0, "mpmc try_send misses allocated {n} times");

    let name = unique_name("alloc-bc");
    let _c3 = Cleanup(name.clone());
    let opts = ChannelOptions::new().capacity(4).message_size(64);
    let _publisher = broadcast::Publisher::open(&name, &opts).unwrap();
    let mut sub = broadcast::Subscriber::open(&name, &opts).unwrap();
    let _ = sub.try_recv();
    let n = allocations(|| {
        for _ in 0..1000 {
            assert!(matches!(sub.try_recv(), Err(TryRecvError::Empty)));
        }
    });
    assert_eq!(n, 0, "broadcast try_recv misses allocated {n} times");

    let name = unique_name("alloc-bb");
    let _c4 = Cleanup(name.clone());
    let _w = blackboard::Writer::<u64>::open(&name, &ChannelOptions::new()).unwrap();
    let r = blackboard::Reader::<u64>::open(&name, &ChannelOptions::new()).unwrap();
    let _ = r.try_wait_newer(0);
    let n = allocations(|| {
        for _ in 0..1000 {
            assert!(matches!(r.try_wait_newer(0), Err(TryRecvError::Empty)));
        }
    });
    assert_eq!(n, 0, "blackboard try_wait_newer misses allocated {n} times");
}

/// A `try_` miss that also runs the liveness sweep (due every 20 ms of a polling loop:
/// reading the peers' `/proc/<pid>/stat`) allocates nothing either (a regression: the read
/// built its path and contents on the heap, so a slow polling loop allocated now and then).
#[test]
fn a_try_miss_that_checks_liveness_allocates_nothing() {
    let name = unique_name("alloc-sweep");
    let _c = Cleanup(name.clone());
    let opts = ChannelOptions::new().capacity(16 * 1024);
    let _tx = spsc::Sender::open(&name, &opts).unwrap();
    let mut rx = spsc::Receiver::open(&name, &opts).unwrap();
    let _ = rx.try_recv();
    let mut n = 0;
    for _ in 0..5 {
        // Past the 20 ms liveness slice: the next miss sweeps the peer table.
        std::thread::sleep(Duration::from_millis(25));
        n += allocations(|| {
            assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
        });
    }
    assert_eq!(
        n, 0,
        "try_recv misses with liveness sweeps allocated {n} times"
    );
}

#[test]
fn sync_tries_and_timeouts_say_so_in_their_types() {
    let name = unique_name("sync");
    let seg = SegmentOptions::new().create(&name, 4096).unwrap();
    let m = RobustMutex::init_in(&seg, 0).unwrap();
    let e = Event::init_in(&seg, 128, EventMode::AutoReset).unwrap();
    let s = Semaphore::init_in(&seg, 256, 0, 4).unwrap();
    let _g = m.lock().unwrap();
    // The same process's other thread sees the lock held.
    std::thread::scope(|t| {
        t.spawn(|| {
            assert!(matches!(m.try_lock(), Err(TryLockError::WouldBlock)));
        });
    });
    let n = allocations(|| {
        for _ in 0..100 {
            assert!(matches!(e.try_wait(), Err(TryWaitError::WouldBlock)));
            assert!(matches!(s.try_wait(), Err(TryWaitError::WouldBlock)));
        }
    });
    assert_eq!(n, 0, "event and semaphore try misses allocated {n} times");
    assert!(e
        .wait_timeout(Duration::from_millis(20))
        .is_err_and(|e| matches!(e, shmwire::sync::WaitTimeoutError::Timeout)));
    e.set().unwrap();
    e.try_wait().unwrap();
    s.post().unwrap();
    s.wait_timeout(Duration::from_secs(5)).unwrap();
}

#[test]
fn a_sender_waits_for_its_receiver_without_polling_and_times_out_cleanly() {
    let name = unique_name("peer");
    let _c = Cleanup(name.clone());
    let opts = ChannelOptions::new().capacity(16 * 1024);
    let tx = spsc::Sender::open(&name, &opts).unwrap();
    assert!(!tx.has_receiver());
    let t0 = Instant::now();
    assert_eq!(
        tx.wait_for_receiver(Duration::from_millis(50)),
        Err(SendTimeoutError::Timeout)
    );
    assert!(t0.elapsed() >= Duration::from_millis(50));
    std::thread::scope(|s| {
        let name = &name;
        let opts = &opts;
        s.spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let rx = spsc::Receiver::open(name, opts).unwrap();
            std::thread::sleep(Duration::from_millis(200));
            drop(rx);
        });
        tx.wait_for_receiver(Duration::from_secs(30)).unwrap();
        assert!(tx.has_receiver());
    });

    let name = unique_name("subs");
    let _c2 = Cleanup(name.clone());
    let opts = ChannelOptions::new().capacity(4).message_size(16);
    let publisher = broadcast::Publisher::open(&name, &opts).unwrap();
    assert_eq!(
        publisher.wait_for_subscribers(1, Duration::from_millis(20)),
        Err(RecvTimeoutError::Timeout)
    );
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (name, opts) = (&name, &opts);
            s.spawn(move || {
                let sub = broadcast::Subscriber::open(name, opts).unwrap();
                std::thread::sleep(Duration::from_millis(300));
                drop(sub);
            });
        }
        publisher
            .wait_for_subscribers(2, Duration::from_secs(30))
            .unwrap();
    });
}

#[test]
fn creation_modes_open_create_or_either() {
    let name = unique_name("mode");
    let _c = Cleanup(name.clone());
    let open_only = ChannelOptions::new().creation(CreationMode::Open);
    let e = spsc::Receiver::open(&name, &open_only).unwrap_err();
    assert!(e.is_not_found(), "{e}");
    let created = ChannelOptions::new()
        .capacity(32 * 1024)
        .creation(CreationMode::Create);
    let rx = spsc::Receiver::open(&name, &created).unwrap();
    assert!(
        spsc::Sender::open(&name, &created).is_err(),
        "Create on an existing one"
    );
    // A preferred capacity only applies at creation; a required one must match.
    let tx = spsc::Sender::open(&name, &ChannelOptions::new().capacity_if_created(1 << 20))
        .expect("an existing channel is taken as it is");
    assert_eq!(tx.capacity(), 32 * 1024);
    drop(tx);
    let e = spsc::Sender::open(&name, &ChannelOptions::new().capacity(1 << 20)).unwrap_err();
    assert!(matches!(e, ChannelOpenError::Mismatch { .. }), "{e}");
    drop(rx);
}

/// The docs promise rings up to 2 GiB: one is made, and a message of the largest size (half
/// the ring less 4160 bytes, a record just under 1 GiB) goes through it whole.
#[test]
fn a_two_gib_ring_carries_its_largest_message() {
    let name = unique_name("2gib");
    let _c = Cleanup(name.clone());
    let opts = ChannelOptions::new().capacity(spsc::MAX_CAPACITY);
    assert_eq!(spsc::MAX_CAPACITY, 2 << 30);
    let mut tx = spsc::Sender::open(&name, &opts).unwrap();
    let mut rx = spsc::Receiver::open(&name, &opts).unwrap();
    assert_eq!(tx.capacity(), 2 << 30);
    let len = tx.message_size() as usize;
    assert_eq!(len as u64, (1 << 30) - 4160);
    for round in 0..3u8 {
        let mut loan = tx.try_loan(len).unwrap();
        loan.write_at(0, &[round; 4096]);
        loan.write_at(len - 4096, &[round ^ 0xFF; 4096]);
        loan.send();
        let got = rx.try_recv_ref().unwrap();
        assert_eq!(got.len(), len);
        let (mut head, mut tail) = ([0u8; 4096], [0u8; 4096]);
        assert!(got.read_at(0, &mut head) && got.read_at(len - 4096, &mut tail));
        assert!(head.iter().all(|&b| b == round));
        assert!(tail.iter().all(|&b| b == round ^ 0xFF));
    }
    assert!(matches!(
        tx.try_send(&vec![0; len + 1]),
        Err(TrySendError::TooLarge { .. })
    ));
}

/// Records what the stream calls tell their observer.
#[derive(Default)]
struct Record {
    started: Option<StreamHeader>,
    bytes: u64,
    verified: bool,
    reject: bool,
}

impl StreamObserver for Record {
    fn started(&mut self, header: &StreamHeader) {
        self.started = Some(header.clone());
    }
    fn progress(&mut self, n: u64) {
        self.bytes += n;
    }
    fn verified(&mut self, _: &shmwire::channel::stream::StreamSummary) -> io::Result<()> {
        self.verified = true;
        if self.reject {
            Err(io::Error::other("no room to keep it"))
        } else {
            Ok(())
        }
    }
}

fn stream_pair(tag: &str) -> (Cleanup, spsc::Sender, spsc::Receiver) {
    let name = unique_name(tag);
    let opts = ChannelOptions::new().capacity(64 * 1024);
    let tx = spsc::Sender::open(&name, &opts).unwrap();
    let rx = spsc::Receiver::open(&name, &opts).unwrap();
    (Cleanup(name), tx, rx)
}

#[test]
fn a_stream_arrives_verified_and_confirmed() {
    let (_c, mut tx, mut rx) = stream_pair("stream");
    let content: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
    let header = StreamHeader {
        len: Some(content.len() as u64),
        name: "frames.bin".into(),
    };
    let (sent, (out, received, seen)) = std::thread::scope(|s| {
        let receiver = s.spawn(move || {
            let mut out = Vec::new();
            let mut seen = Record::default();
            let summary = rx
                .recv_stream_timeout(&mut out, Duration::from_secs(60), &mut seen)
                .unwrap();
            (out, summary, seen)
        });
        let mut mine = Record::default();
        let sent = tx
            .send_stream_timeout(&content[..], &header, Duration::from_secs(60), &mut mine)
            .unwrap();
        assert_eq!(mine.bytes, content.len() as u64);
        (sent, receiver.join().unwrap())
    });
    assert_eq!(out, content);
    assert_eq!(received.header, header);
    assert_eq!((sent.bytes, sent.xxh3), (received.bytes, received.xxh3));
    assert_eq!(received.xxh3, xxhash_rust::xxh3::xxh3_64(&content));
    assert!(seen.verified && seen.started == Some(header));
    assert_eq!(seen.bytes, content.len() as u64);
}

#[test]
fn a_rejected_stream_is_not_confirmed_to_the_sender() {
    let (_c, mut tx, mut rx) = stream_pair("reject");
    let header = StreamHeader::default();
    let (sent, received) = std::thread::scope(|s| {
        let receiver = s.spawn(move || {
            let mut seen = Record {
                reject: true,
                ..Record::default()
            };
            let got = rx.recv_stream_timeout(io::sink(), Duration::from_secs(60), &mut seen);
            assert!(seen.verified, "rejected after verification");
            got
        });
        let sent = tx.send_stream_timeout(&b"abc"[..], &header, Duration::from_secs(60), &mut ());
        (sent, receiver.join().unwrap())
    });
    assert!(
        matches!(received, Err(StreamRecvError::Rejected { .. })),
        "{received:?}"
    );
    assert!(
        matches!(sent, Err(StreamSendError::NotConfirmed { .. })),
        "{sent:?}"
    );
}

/// A reader that fails after some bytes.
struct Failing(u64);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.0 == 0 {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.0 as usize).min(1000);
        buf[..n].fill(9);
        self.0 -= n as u64;
        Ok(n)
    }
}

#[test]
fn a_sender_whose_input_fails_leaves_the_receiver_with_an_incomplete_stream() {
    let (_c, mut tx, mut rx) = stream_pair("failing");
    let header = StreamHeader {
        len: Some(10_000),
        name: "x".into(),
    };
    let (sent, received) = std::thread::scope(|s| {
        let receiver = s.spawn(move || {
            let mut out = Vec::new();
            rx.recv_stream_timeout(&mut out, Duration::from_secs(60), &mut ())
        });
        let sent = tx.send_stream_timeout(Failing(5000), &header, Duration::from_secs(60), &mut ());
        drop(tx); // as a failed `shmwire send` does: it leaves
        (sent, receiver.join().unwrap())
    });
    assert!(
        matches!(sent, Err(StreamSendError::Read { bytes: 5000, .. })),
        "{sent:?}"
    );
    match received {
        Err(StreamRecvError::SenderGone {
            bytes: 5000,
            announced: Some(10_000),
            ..
        }) => {}
        other => panic!("expected SenderGone after 5000 bytes, got {other:?}"),
    }
}

#[test]
fn no_receiver_in_time_is_a_timeout_and_sends_nothing() {
    let (_c, mut tx, rx) = stream_pair("noone");
    drop(rx);
    let got = tx.send_stream_timeout(
        &b"abc"[..],
        &StreamHeader::default(),
        Duration::from_millis(50),
        &mut (),
    );
    assert!(matches!(got, Err(StreamSendError::Timeout)), "{got:?}");
    assert!(tx.try_wait_received().is_ok(), "nothing was sent");
}

/// A publisher that waited for its subscribers loses none of them a message: a subscriber
/// settles its starting position before it counts as attached (a regression: it used to
/// attach first, so a publisher woken at once could publish before the subscriber read its
/// position, and the subscriber skipped those messages).
#[test]
fn a_subscriber_the_publisher_waited_for_misses_nothing() {
    for round in 0..50u32 {
        let name = unique_name("bc-race");
        let _c = Cleanup(name.clone());
        let opts = ChannelOptions::new().capacity(64).message_size(8);
        let mut publisher = broadcast::Publisher::open(&name, &opts).unwrap();
        std::thread::scope(|s| {
            let (name, opts) = (&name, &opts);
            let sub = s.spawn(move || {
                let mut sub = broadcast::Subscriber::open_from_next(name, opts).unwrap();
                sub.recv_timeout(Duration::from_secs(30)).unwrap()
            });
            publisher
                .wait_for_subscribers(1, Duration::from_secs(30))
                .unwrap();
            for i in 0..32u32 {
                publisher.send(&i.to_le_bytes()).unwrap();
            }
            let first = sub.join().unwrap();
            assert_eq!(
                first,
                0u32.to_le_bytes(),
                "round {round}: the first message was missed"
            );
        });
    }
}
