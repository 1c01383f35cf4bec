//! The segment header: layout version 1. Byte-level spec: `docs/layout.md`.
//!
//! The header occupies the first [`PAYLOAD_OFFSET`] bytes of a segment. The creator writes
//! [`HeaderFields`] (checksummed), then publishes [`INIT_READY`] in the `init_state` word with
//! Release; an opener loads `init_state` with Acquire and only then copies the fields out and
//! validates them. Everything in a header is untrusted: [`decode`] checks every field.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytemuck::{Pod, Zeroable};

use crate::Kind;

/// `b"SHMWIRE\0"`.
pub(crate) const MAGIC: [u8; 8] = *b"SHMWIRE\0";
/// The layout version this build writes and reads.
pub(crate) const VERSION: u32 = 1;
/// Where the payload starts: one 4 KiB page after the segment base, so the payload is
/// page-aligned (and 4096-aligned for O_DIRECT-style and SIMD users).
pub(crate) const PAYLOAD_OFFSET: u64 = 4096;
/// Offset of the `init_state` word (own 128-byte line, outside the checksummed fields).
pub(crate) const INIT_STATE_OFFSET: u64 = 384;
/// Longest name recorded in the header (longer names are recorded truncated).
pub(crate) const NAME_BYTES: usize = 256;
/// Bit of the header's `flags`: the creator meant the segment to outlive every process that
/// uses it (`shmwire create --persist`, the CLI's sync segments), so garbage collection keeps
/// it. Other bits are reserved (0) and ignored by readers.
pub(crate) const FLAG_PERSISTENT: u32 = 1;

/// `init_state` values.
///
/// | value        | meaning                                                    |
/// |--------------|------------------------------------------------------------|
/// | 0            | being created: fields not written yet (fresh pages are 0)  |
/// | `INIT_READY` | fields and initial payload complete; never changes again    |
/// | other        | corrupt                                                    |
pub(crate) const INIT_READY: u32 = 0x5245_4459; // "READY" in spirit; unlikely by accident

/// The checksummed, immutable part of the header, at offset 0.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub(crate) struct HeaderFields {
    pub magic: [u8; 8],
    pub version: u32,
    pub flags: u32,
    pub payload_offset: u64,
    pub payload_size: u64,
    pub kind: u32,
    pub reserved0: u32,
    pub type_tag: u64,
    pub creator_pid: u32,
    pub reserved1: u32,
    pub creator_start_time: u64,
    pub created_unix_ns: u64,
    pub name_len: u32,
    pub reserved2: u32,
    pub name: [u8; NAME_BYTES],
    /// xxh3-64 of every byte before this field.
    pub checksum: u64,
}

const _: () = {
    use std::mem::{offset_of, size_of};
    assert!(size_of::<HeaderFields>() == 344);
    assert!(offset_of!(HeaderFields, magic) == 0);
    assert!(offset_of!(HeaderFields, version) == 8);
    assert!(offset_of!(HeaderFields, flags) == 12);
    assert!(offset_of!(HeaderFields, payload_offset) == 16);
    assert!(offset_of!(HeaderFields, payload_size) == 24);
    assert!(offset_of!(HeaderFields, kind) == 32);
    assert!(offset_of!(HeaderFields, type_tag) == 40);
    assert!(offset_of!(HeaderFields, creator_pid) == 48);
    assert!(offset_of!(HeaderFields, creator_start_time) == 56);
    assert!(offset_of!(HeaderFields, created_unix_ns) == 64);
    assert!(offset_of!(HeaderFields, name_len) == 72);
    assert!(offset_of!(HeaderFields, name) == 80);
    assert!(offset_of!(HeaderFields, checksum) == 336);
    assert!((size_of::<HeaderFields>() as u64) <= INIT_STATE_OFFSET);
    assert!(INIT_STATE_OFFSET % 128 == 0 && INIT_STATE_OFFSET + 4 <= PAYLOAD_OFFSET);
};

/// Size of the checksummed fields in bytes.
pub(crate) const FIELDS_LEN: usize = std::mem::size_of::<HeaderFields>();
const CHECKSUM_OFFSET: usize = std::mem::offset_of!(HeaderFields, checksum);

/// What a valid header says, decoded into native types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Layout version of the header.
    pub version: u32,
    /// Exact payload size in bytes, as requested at create time.
    pub size: u64,
    /// Offset of the payload from the segment base.
    pub payload_offset: u64,
    /// What the payload holds.
    pub kind: Kind,
    /// A tag of the creator's choosing (e.g. a hash of the message type), 0 if none.
    pub type_tag: u64,
    /// The name the creator gave (as recorded in the header).
    pub name: String,
    /// The creating process.
    pub creator: shmwire_platform::ProcessId,
    /// When the segment was created.
    pub created: SystemTime,
    /// Whether the creator marked it persistent (meant to outlive every process using it;
    /// see [`SegmentOptions::keep_in_gc`](crate::SegmentOptions::keep_in_gc)).
    pub persistent: bool,
}

/// Builds the header fields for a new segment.
pub(crate) fn build(name: &str, size: u64, kind: Kind, type_tag: u64, flags: u32) -> HeaderFields {
    use shmwire_platform::Processes;
    let me = shmwire_platform::Os::current_process();
    let mut f = HeaderFields::zeroed();
    f.magic = MAGIC;
    f.version = VERSION;
    f.flags = flags;
    f.payload_offset = PAYLOAD_OFFSET;
    f.payload_size = size;
    f.kind = kind.0;
    f.type_tag = type_tag;
    f.creator_pid = me.pid;
    f.creator_start_time = me.start_time;
    f.created_unix_ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let n = name.len().min(NAME_BYTES);
    f.name[..n].copy_from_slice(&name.as_bytes()[..n]);
    f.name_len = n as u32;
    f.checksum = checksum(bytemuck::bytes_of(&f));
    f
}

fn checksum(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(&bytes[..CHECKSUM_OFFSET])
}

/// Why a header was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No shmwire magic: another program's object (or garbage).
    NotShmwire,
    /// A version this build does not read.
    Version(u32),
    /// Magic and version fine, the rest inconsistent.
    Corrupt(String),
}

/// Decodes and validates header bytes copied out of a segment whose OS size is `object_size`.
pub(crate) fn decode(bytes: &[u8; FIELDS_LEN], object_size: u64) -> Result<SegmentInfo, Rejection> {
    let f: HeaderFields = bytemuck::pod_read_unaligned(bytes);
    if f.magic != MAGIC {
        return Err(Rejection::NotShmwire);
    }
    if f.version != VERSION {
        return Err(Rejection::Version(f.version));
    }
    if f.checksum != checksum(bytes) {
        return Err(Rejection::Corrupt(
            "its header checksum does not match".into(),
        ));
    }
    if f.payload_offset != PAYLOAD_OFFSET {
        return Err(Rejection::Corrupt(format!(
            "its header puts the payload at offset {}, not {PAYLOAD_OFFSET}",
            f.payload_offset
        )));
    }
    let end = f.payload_offset.checked_add(f.payload_size);
    if end.is_none_or(|end| end > object_size) {
        return Err(Rejection::Corrupt(format!(
            "its header promises {} payload bytes but the object has only {object_size} bytes in all \
             (was it truncated?)",
            f.payload_size
        )));
    }
    if f.name_len as usize > NAME_BYTES {
        return Err(Rejection::Corrupt(format!(
            "its header records a name of {} bytes (at most {NAME_BYTES})",
            f.name_len
        )));
    }
    Ok(SegmentInfo {
        version: f.version,
        size: f.payload_size,
        payload_offset: f.payload_offset,
        kind: Kind(f.kind),
        type_tag: f.type_tag,
        name: String::from_utf8_lossy(&f.name[..f.name_len as usize]).into_owned(),
        creator: shmwire_platform::ProcessId {
            pid: f.creator_pid,
            start_time: f.creator_start_time,
        },
        created: UNIX_EPOCH + Duration::from_nanos(f.created_unix_ns),
        persistent: f.flags & FLAG_PERSISTENT != 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(f: &HeaderFields) -> [u8; FIELDS_LEN] {
        bytemuck::bytes_of(f).try_into().unwrap()
    }

    #[test]
    fn header_round_trips() {
        let f = build("frames", 1 << 33, Kind::BYTES, 0xfeed, 0);
        let info = decode(&bytes(&f), PAYLOAD_OFFSET + (1 << 33)).unwrap();
        assert_eq!(info.size, 1 << 33);
        assert_eq!(info.name, "frames");
        assert_eq!(info.kind, Kind::BYTES);
        assert_eq!(info.type_tag, 0xfeed);
        assert_eq!(info.creator.pid, std::process::id());
        assert!(info.created <= SystemTime::now());
    }

    #[test]
    fn the_persistent_flag_round_trips() {
        let plain = decode(
            &bytes(&build("x", 1, Kind::BYTES, 0, 0)),
            PAYLOAD_OFFSET + 1,
        )
        .unwrap();
        assert!(!plain.persistent);
        let f = build("x", 1, Kind::BYTES, 0, FLAG_PERSISTENT);
        assert_eq!(f.flags, 1);
        assert!(decode(&bytes(&f), PAYLOAD_OFFSET + 1).unwrap().persistent);
        // Unknown bits are reserved and ignored, not rejected.
        let f = build("x", 1, Kind::BYTES, 0, 0x8000_0000);
        assert!(!decode(&bytes(&f), PAYLOAD_OFFSET + 1).unwrap().persistent);
    }

    #[test]
    fn every_single_bit_flip_in_the_fields_is_rejected() {
        let f = build("x", 100, Kind::BYTES, 0, 0);
        let good = bytes(&f);
        for byte in 0..FIELDS_LEN {
            for bit in 0..8 {
                let mut b = good;
                b[byte] ^= 1 << bit;
                assert!(
                    decode(&b, PAYLOAD_OFFSET + 100).is_err(),
                    "flip of bit {bit} in byte {byte} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn a_header_promising_more_than_the_object_holds_is_rejected() {
        let f = build("x", 10_000, Kind::BYTES, 0, 0);
        let e = decode(&bytes(&f), PAYLOAD_OFFSET + 9_999).unwrap_err();
        assert!(
            matches!(e, Rejection::Corrupt(ref s) if s.contains("truncated")),
            "{e:?}"
        );
        // Overflowing sizes do not wrap around.
        let mut f = build("x", u64::MAX, Kind::BYTES, 0, 0);
        f.checksum = checksum(bytemuck::bytes_of(&f));
        assert!(decode(&bytes(&f), u64::MAX).is_err());
    }

    #[test]
    fn foreign_and_future_headers_are_told_apart() {
        assert_eq!(
            decode(&[0; FIELDS_LEN], 1 << 20),
            Err(Rejection::NotShmwire)
        );
        let mut f = build("x", 1, Kind::BYTES, 0, 0);
        f.version = 2;
        f.checksum = checksum(bytemuck::bytes_of(&f));
        assert_eq!(decode(&bytes(&f), 1 << 20), Err(Rejection::Version(2)));
    }

    /// Golden layout: if this changes, docs/layout.md and VERSION must change with it.
    #[test]
    fn golden_layout() {
        use std::mem::offset_of;
        let layout = format!(
            "magic@{} version@{} flags@{} payload_offset@{} payload_size@{} kind@{} type_tag@{} \
             creator_pid@{} creator_start_time@{} created_unix_ns@{} name_len@{} name@{} \
             checksum@{} size={} init_state@{INIT_STATE_OFFSET} payload@{PAYLOAD_OFFSET}",
            offset_of!(HeaderFields, magic),
            offset_of!(HeaderFields, version),
            offset_of!(HeaderFields, flags),
            offset_of!(HeaderFields, payload_offset),
            offset_of!(HeaderFields, payload_size),
            offset_of!(HeaderFields, kind),
            offset_of!(HeaderFields, type_tag),
            offset_of!(HeaderFields, creator_pid),
            offset_of!(HeaderFields, creator_start_time),
            offset_of!(HeaderFields, created_unix_ns),
            offset_of!(HeaderFields, name_len),
            offset_of!(HeaderFields, name),
            offset_of!(HeaderFields, checksum),
            FIELDS_LEN,
        );
        assert_eq!(
            layout,
            "magic@0 version@8 flags@12 payload_offset@16 payload_size@24 kind@32 type_tag@40 \
             creator_pid@48 creator_start_time@56 created_unix_ns@64 name_len@72 name@80 \
             checksum@336 size=344 init_state@384 payload@4096"
        );
    }
}

/// What the first page of an object says about its header, read without waiting (the one
/// classification `open` and `inspect` share).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HeaderState {
    /// Published: the fields can be copied out and validated.
    Ready,
    /// The magic is there, the init state not yet ready (a creator at work).
    Initializing,
    /// Zeros where the magic goes: a creator that has not started, or a raw object.
    Blank,
    /// Something else than the magic: not a shmwire segment.
    Foreign,
    /// The magic with an init state no shmwire process writes.
    BadInitState(u32),
}

/// Classifies the header in `page` (a region of at least one page over the object).
pub(crate) fn classify(page: &crate::view::Region<'_>) -> HeaderState {
    use std::sync::atomic::Ordering;
    // ORDERING: Acquire — pairs with the Release store of INIT_READY in `Segment::publish`:
    // once we see it, the header fields (and initial payload) written before it are visible
    // to the copies the caller makes next.
    let init = page.load_u32(INIT_STATE_OFFSET, Ordering::Acquire);
    // Atomic, like the creator's store: never a torn magic.
    let magic = page
        .load_u64(0, Ordering::Relaxed)
        .map(u64::to_ne_bytes)
        .unwrap_or_default();
    match (magic == MAGIC, magic == [0; 8], init) {
        (true, _, Some(INIT_READY)) => HeaderState::Ready,
        (true, _, Some(0)) => HeaderState::Initializing,
        (true, _, other) => HeaderState::BadInitState(other.unwrap_or_default()),
        (false, true, _) => HeaderState::Blank,
        (false, false, _) => HeaderState::Foreign,
    }
}
