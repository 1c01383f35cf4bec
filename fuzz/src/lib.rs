//! What the fuzz targets share: a shared-memory object whose bytes the harness writes the way
//! a hostile process would (through its file in `/dev/shm`, behind the library's back), a
//! header stamper (so that fuzzed header fields get past the checksum), and snapshots of real
//! channels (so that fuzzed patches start from states the library itself leaves behind).
//!
//! Linux only: objects are written through `/dev/shm/<name>`. Names start with `swfz-`;
//! `ci/fuzz.sh` removes any that a crashed run left behind.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

use shmwire::channel::{blackboard, broadcast, mpmc, spsc, ChannelOptions, WaitStrategy};
use shmwire::SegmentOptions;

/// Size of the segment header page (docs/layout.md).
pub const HEADER: usize = 4096;
/// Offset of `init_state` in the header.
pub const INIT_STATE: usize = 384;
/// `init_state` once the header is published.
pub const INIT_READY: u32 = 0x5245_4459;
/// Payload offset of the peer table's `closing` word.
const CLOSING: usize = 128 + 20;
/// Bytes covered by the header checksum; the checksum follows them.
const CHECKSUMMED: usize = 336;

/// A POSIX shared-memory object of this process, written through its file.
#[derive(Debug)]
pub struct Object {
    name: String,
    path: PathBuf,
}

impl Object {
    /// The object `swfz-<tag>-<pid>` (not created yet). A leftover of that name is removed.
    pub fn new(tag: &str) -> Object {
        let name = format!("swfz-{tag}-{}", std::process::id());
        let path = PathBuf::from("/dev/shm").join(&name);
        let _ = std::fs::remove_file(&path);
        Object { name, path }
    }

    /// The shm name (what `Segment::open` takes).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// (Re)creates the object with exactly `size` bytes: `bytes` at 0 (cut to `size`), zeros
    /// after. Returns the file, to patch it later.
    pub fn fill(&self, size: u64, bytes: &[u8]) -> File {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.path)
            .expect("creating the fuzz object in /dev/shm");
        file.set_len(size).expect("sizing the fuzz object");
        let n = bytes.len().min(size as usize);
        file.write_all_at(&bytes[..n], 0)
            .expect("writing the fuzz object");
        file
    }

    /// Removes the object (ignoring "not found": a channel's last endpoint may have done it).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for Object {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Writes `bytes` at `offset` of `file`, cut to the file's `size` (a hostile write while the
/// library has the object mapped: the page cache is shared with the mapping).
pub fn patch(file: &File, size: u64, offset: u64, bytes: &[u8]) {
    if size == 0 {
        return;
    }
    let offset = offset % size;
    let n = bytes.len().min((size - offset) as usize);
    let _ = file.write_all_at(&bytes[..n], offset);
}

/// Recomputes the header checksum over the first bytes of `page` (a page too short to hold
/// the checksum is left alone).
pub fn fix_checksum(page: &mut [u8]) {
    if page.len() < CHECKSUMMED + 8 {
        return;
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&page[..CHECKSUMMED]);
    page[CHECKSUMMED..CHECKSUMMED + 8].copy_from_slice(&sum.to_le_bytes());
}

/// Stamps what a published header needs on `page` (magic, version 1, payload at 4096,
/// `payload_size`, `kind`, checksum, `init_state` ready), leaving every other byte as is.
pub fn stamp_header(page: &mut [u8], payload_size: u64, kind: u32) {
    if page.len() < HEADER {
        return;
    }
    page[..8].copy_from_slice(b"SHMWIRE\0");
    page[8..12].copy_from_slice(&1u32.to_le_bytes());
    page[16..24].copy_from_slice(&(HEADER as u64).to_le_bytes());
    page[24..32].copy_from_slice(&payload_size.to_le_bytes());
    page[32..36].copy_from_slice(&kind.to_le_bytes());
    // name_len at 72 must be <= 256.
    page[72..76].copy_from_slice(&0u32.to_le_bytes());
    fix_checksum(page);
    page[INIT_STATE..INIT_STATE + 4].copy_from_slice(&INIT_READY.to_le_bytes());
}

/// The channel flavors, in the order of their kinds (3..=6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Flavor {
    Spsc,
    Mpmc,
    Broadcast,
    Blackboard,
}

impl Flavor {
    pub fn from_byte(b: u8) -> Flavor {
        match b % 4 {
            0 => Flavor::Spsc,
            1 => Flavor::Mpmc,
            2 => Flavor::Broadcast,
            _ => Flavor::Blackboard,
        }
    }
}

/// Small blackboard value type.
pub type Small = [u8; 8];
/// Large blackboard value type (several cache lines).
pub type Large = [u64; 40];

/// The options of each flavor and shape (0 or 1): what the snapshot was made with.
pub fn options(flavor: Flavor, shape: u8) -> ChannelOptions {
    let o = ChannelOptions::new().wait(WaitStrategy::Spin);
    match (flavor, shape % 2) {
        (Flavor::Spsc, 0) => o.capacity(16 * 1024),
        (Flavor::Spsc, _) => o.capacity(32 * 1024),
        (Flavor::Mpmc | Flavor::Broadcast, 0) => o.capacity(4).message_size(64),
        (Flavor::Mpmc | Flavor::Broadcast, _) => o.capacity(8).message_size(300),
        (Flavor::Blackboard, _) => o,
    }
}

/// The message size of the slot channels of `shape` (see [`options`]).
pub fn slot_size(shape: u8) -> usize {
    if shape.is_multiple_of(2) {
        64
    } else {
        300
    }
}

/// How a snapshot is made: flavor, shape, messages sent, messages received afterwards,
/// and whether an MPMC loan is left claimed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Recipe {
    pub flavor: Flavor,
    pub shape: u8,
    pub sent: u8,
    pub taken: u8,
    pub held_loan: bool,
}

impl Recipe {
    /// A recipe from fuzz bytes (folded onto a small set, so snapshots are reused).
    pub fn new(flavor: u8, shape: u8, sent: u8, taken: u8) -> Recipe {
        Recipe {
            flavor: Flavor::from_byte(flavor),
            shape: shape % 2,
            sent: sent % 24,
            taken: taken % 24,
            held_loan: shape & 2 != 0,
        }
    }
}

/// Message `i` of a snapshot: lengths vary so that SPSC records pad, wrap and (in the
/// large shape) carry payload offsets.
fn message(i: u8, max: usize) -> Vec<u8> {
    let lens = [1usize, 17, 200, 1000, 3000, 5000, 0, 64];
    let len = lens[i as usize % lens.len()].min(max);
    (0..len).map(|j| (j as u8).wrapping_mul(31) ^ i).collect()
}

thread_local! {
    static SNAPSHOTS: RefCell<HashMap<Recipe, Rc<Vec<u8>>>> = RefCell::new(HashMap::new());
}

/// The bytes (header included) of a channel made by `recipe` after all its endpoints left,
/// made once per process and recipe with the library itself.
pub fn snapshot(recipe: Recipe) -> Rc<Vec<u8>> {
    if let Some(s) = SNAPSHOTS.with(|m| m.borrow().get(&recipe).cloned()) {
        return s;
    }
    let s = Rc::new(make_snapshot(recipe));
    SNAPSHOTS.with(|m| m.borrow_mut().insert(recipe, s.clone()));
    s
}

fn make_snapshot(r: Recipe) -> Vec<u8> {
    let obj = Object::new("snap");
    let name = obj.name().to_owned();
    let opts = options(r.flavor, r.shape).creation(shmwire::CreationMode::Create);
    // A raw view of the whole object, opened while the endpoints live: the last endpoint to
    // leave may remove the name, the mapping stays.
    let raw = |name: &str| {
        SegmentOptions::new()
            .raw(true)
            .open(name)
            .expect("a raw view of the snapshot channel")
    };
    let zero = Duration::ZERO;
    let view = match r.flavor {
        Flavor::Spsc => {
            let mut tx = spsc::Sender::open(&name, &opts).expect("snapshot sender");
            let reopen = opts.clone().creation(shmwire::CreationMode::Open);
            let mut rx = spsc::Receiver::open(&name, &reopen).expect("snapshot receiver");
            let max = tx.message_size() as usize;
            for i in 0..r.sent {
                let m = message(i, max);
                while tx.try_send(&m).is_err() {
                    rx.recv_timeout(zero).expect("a full ring has a message");
                }
            }
            for _ in 0..r.taken {
                if rx.try_recv().is_err() {
                    break;
                }
            }
            let view = raw(&name);
            drop((tx, rx));
            view
        }
        Flavor::Mpmc => {
            let mut tx = mpmc::Sender::open(&name, &opts).expect("snapshot sender");
            let reopen = opts.clone().creation(shmwire::CreationMode::Open);
            let mut rx = mpmc::Receiver::open(&name, &reopen).expect("snapshot receiver");
            let max = tx.message_size() as usize;
            for i in 0..r.sent {
                let m = message(i, max);
                while tx.try_send(&m).is_err() {
                    rx.try_recv().expect("a full queue has a message");
                }
            }
            for _ in 0..r.taken {
                if rx.try_recv().is_err() {
                    break;
                }
            }
            if r.held_loan {
                // A claimed slot whose claimer is gone: what a killed sender leaves.
                if let Ok(loan) = tx.try_loan(0) {
                    std::mem::forget(loan);
                }
            }
            let view = raw(&name);
            drop((tx, rx));
            view
        }
        Flavor::Broadcast => {
            let mut tx = broadcast::Publisher::open(&name, &opts).expect("snapshot publisher");
            let reopen = opts.clone().creation(shmwire::CreationMode::Open);
            let rx = broadcast::Subscriber::open(&name, &reopen).expect("snapshot subscriber");
            let max = tx.message_size() as usize;
            for i in 0..r.sent {
                tx.send(&message(i, max)).expect("publishing");
            }
            let view = raw(&name);
            drop((tx, rx));
            view
        }
        Flavor::Blackboard => {
            // The view is taken before the writer (the last endpoint) drops.
            if r.shape == 0 {
                let mut w = blackboard::Writer::<Small>::open(&name, &opts).expect("writer");
                for i in 0..r.sent {
                    w.write(&[i; 8]);
                }
                raw(&name)
            } else {
                let mut w = blackboard::Writer::<Large>::open(&name, &opts).expect("writer");
                for i in 0..r.sent {
                    w.write(&[u64::from(i); 40]);
                }
                raw(&name)
            }
        }
    };
    let mut bytes = vec![0u8; view.len() as usize];
    view.read_at(0, &mut bytes).expect("reading the snapshot");
    drop(view);
    obj.remove();
    // The last endpoint out set `closing` before removing the name; a channel found under a
    // name has it clear (else every open gives up: the fuzzer may still set it).
    let closing = HEADER + CLOSING;
    bytes[closing..closing + 4].fill(0);
    bytes
}
