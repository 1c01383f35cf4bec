//! Any bytes, and any size, as a shared-memory object: every way of opening it (header,
//! read-only, raw, with an expected kind, `inspect`) and every accessor on what opened, and
//! the sync objects at fuzzed offsets, return Ok or an error. Never a panic, a hang (opens do
//! not wait: `init_timeout(0)`) or an access outside the mapping.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;
use shmwire::sync::{Event, RobustMutex, Semaphore};
use shmwire::{Kind, Segment, SegmentOptions};
use shmwire_fuzz::{fix_checksum, stamp_header, Object, HEADER};

#[derive(Arbitrary, Debug)]
struct Input {
    /// The object's size: bytes (any), or header page + this many payload bytes.
    size: Size,
    /// Header fields forced before the checksum is fixed, so that later checks are reached.
    stamp: Stamp,
    /// The object's first bytes.
    bytes: Vec<u8>,
    /// Reads of the payload (offset, length) on each segment that opened.
    reads: Vec<(u32, u16)>,
    /// Payload offsets of a mutex, an event and a semaphore to open and try.
    sync_at: [u16; 3],
    /// Write the sync objects' tags at their offsets.
    sync_tags: bool,
}

#[derive(Arbitrary, Debug)]
enum Size {
    Bytes(u16),
    Payload(u16),
}

#[derive(Arbitrary, Debug)]
enum Stamp {
    /// The bytes as they are.
    Nothing,
    /// Only the checksum fixed.
    Checksum,
    /// A valid published header of this payload size and kind (other fields fuzzed).
    Header { payload: u16, kind: u8 },
}

fuzz_target!(|input: Input| {
    thread_local! {
        static OBJ: Object = Object::new("seg");
    }
    OBJ.with(|obj| run(obj, &input));
});

fn run(obj: &Object, input: &Input) {
    let size = match input.size {
        Size::Bytes(n) => u64::from(n),
        Size::Payload(n) => HEADER as u64 + u64::from(n),
    };
    let mut bytes = input.bytes.clone();
    match input.stamp {
        Stamp::Nothing => {}
        Stamp::Checksum => fix_checksum(&mut bytes),
        Stamp::Header { payload, kind } => {
            if bytes.len() < HEADER {
                bytes.resize(HEADER, 0);
            }
            stamp_header(&mut bytes, u64::from(payload), u32::from(kind % 8));
        }
    }
    if input.sync_tags {
        for (at, tag) in input.sync_at.iter().zip([b"SWMX", b"SWEV", b"SWSM"]) {
            let at = HEADER + usize::from(*at) / 128 * 128;
            if bytes.len() < at + 128 {
                bytes.resize(at + 128, 0);
            }
            bytes[at..at + 4].copy_from_slice(tag);
        }
    }
    let _file = obj.fill(size, &bytes);
    let name = obj.name();
    let now = SegmentOptions::new().init_timeout(Duration::ZERO);

    let _ = now.inspect(name);
    for opts in [
        now.clone(),
        now.clone().read_only(true),
        now.clone().kind(Kind::SPSC),
        now.clone().raw(true),
        now.clone().raw(true).read_only(true),
    ] {
        if let Ok(seg) = opts.open(name) {
            use_segment(&seg, input);
        }
    }
    obj.remove();
}

fn use_segment(seg: &Segment, input: &Input) {
    let _ = seg.info();
    let len = seg.len();
    let mut buf = Vec::new();
    for &(off, n) in input.reads.iter().take(16) {
        buf.resize(usize::from(n), 0);
        let off = u64::from(off);
        let inside = off.checked_add(u64::from(n)).is_some_and(|end| end <= len);
        assert_eq!(seg.read_at(off, &mut buf).is_ok(), inside, "read_at bounds");
        if let Some(a) = seg.atomic_u32(off) {
            a.load(std::sync::atomic::Ordering::Relaxed);
        }
        if let Some(a) = seg.atomic_u64(off) {
            a.load(std::sync::atomic::Ordering::Relaxed);
        }
    }
    let [m, e, s] = input.sync_at.map(|o| u64::from(o) / 128 * 128);
    if let Ok(mutex) = RobustMutex::open_in(seg, m) {
        let _ = mutex.owner();
        if let Ok(mut guard) = mutex.try_lock() {
            guard.mark_consistent();
            let _ = guard.unlock();
        }
    }
    if let Ok(event) = Event::open_in(seg, e) {
        let _ = event.try_wait();
        let _ = event.set();
        let _ = event.wait_timeout(Duration::ZERO);
        let _ = event.reset();
    }
    if let Ok(sem) = Semaphore::open_in(seg, s) {
        let _ = sem.try_wait();
        let _ = sem.post();
        let _ = sem.wait_timeout(Duration::ZERO);
    }
}
