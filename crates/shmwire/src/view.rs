//! The one place that turns mapped bytes into typed things: bounds-checked copies, atomics,
//! structures of atomics, and messages lent in place.
//!
//! # Safety
//!
//! 1. A [`Mapping`] is made (unsafely, by its owner: a segment or a file view) from a
//!    pointer and length that stay mapped, readable, and writable if `writable` says so, for
//!    as long as the `Mapping` lives; the pointer is page-aligned (or the length is 0).
//! 2. A [`Region<'m>`] borrows a `Mapping` (or a part of one) for `'m`, so every reference
//!    it hands out (`&'m AtomicU64`, `&'m T`, [`Lent<'m>`]) dies before the mapping is
//!    unmapped. It is neither `Clone` nor `Copy`: it cannot be kept past its borrow.
//! 3. Every accessor checks offset, length and alignment against the region (with overflow
//!    checks) before touching memory, so no value read from shared memory can lead outside
//!    the mapping.
//! 4. Bytes are copied in and out with `ptr::copy`; no `&[u8]`/`&mut [u8]` is formed over
//!    them (another process may write them at any moment) except by the `unsafe fn`s of
//!    [`Lent`] and [`LentMut`], whose callers promise exclusivity.
//! 5. References are handed out only to atomics and to types that promise, by implementing
//!    [`SharedAtomics`], to be made of atomics only: memory that other processes write
//!    concurrently is what atomics are for.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

/// Types that may be viewed in place in shared memory.
///
/// # Safety
///
/// The type is `#[repr(C)]` (or transparent over such), made of atomics only (directly or
/// through arrays and other `SharedAtomics` types), so that any bytes are a valid value and
/// concurrent writes by other processes are allowed; its size and field offsets are fixed
/// by compile-time asserts next to it and documented in `docs/layout.md`.
pub(crate) unsafe trait SharedAtomics {}

// The six protocol structs: each is `#[repr(C)]` and made of `AtomicU32`/`AtomicU64` fields
// (and arrays of them, and other types listed here) only, with its size and offsets asserted
// at compile time in its own module. Under `cfg(loom)` they are built of loom's atomics;
// loom models keep them in `Arc`s and never view a mapping through them.
//
// SAFETY: see above.
unsafe impl SharedAtomics for crate::sync::mutex::RawMutex {}
// SAFETY: see above.
unsafe impl SharedAtomics for crate::sync::event::RawEvent {}
// SAFETY: see above.
unsafe impl SharedAtomics for crate::sync::semaphore::RawSemaphore {}
// SAFETY: see above.
unsafe impl SharedAtomics for crate::channel::peers::RawPeers {}
// SAFETY: see above (a cursor, a doorbell of two atomics, and reserved atomics).
unsafe impl SharedAtomics for crate::channel::Line {}
// SAFETY: see above (two `AtomicU64`s).
unsafe impl SharedAtomics for crate::channel::mpmc::SlotCtl {}

/// A mapped byte range shared with other processes, owned with the mapping it lies in.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: *mut u8,
    len: usize,
    writable: bool,
}

// SAFETY: a Mapping is a plain address range; all access goes through atomics or raw copies
// (point 4 of the module's contract), which are valid from any thread: the memory is shared
// across processes already.
unsafe impl Send for Mapping {}
// SAFETY: as for Send; `&Mapping` methods never create references to non-atomic shared
// bytes.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// # Safety
    ///
    /// 1. `[ptr, ptr + len)` stays mapped and readable for as long as the `Mapping` lives,
    /// 2. and writable too if `writable` is true;
    /// 3. `ptr` is page-aligned, or `len == 0`.
    #[inline]
    pub(crate) unsafe fn new(ptr: *mut u8, len: usize, writable: bool) -> Mapping {
        Mapping { ptr, len, writable }
    }

    /// The whole range, to access.
    #[inline]
    pub(crate) fn region(&self) -> Region<'_> {
        Region {
            ptr: self.ptr,
            len: self.len,
            writable: self.writable,
            _mapping: PhantomData,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    #[inline]
    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }
}

/// The identity of a mapping a placement was checked against: its address, length and
/// access. The facts a placement proves (bounds, alignment, writability) depend only on
/// these three, so they hold for any mapping that has them, and for no other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Anchor {
    base: usize,
    len: usize,
    writable: bool,
}

/// Proof that a `T` lies at `off` of a mapping (checked once by [`Mapping::place`], then used
/// on the hot path by [`Mapping::get`] at the cost of comparing the mapping's [`Anchor`]).
#[derive(Debug)]
pub(crate) struct Placed<T> {
    anchor: Anchor,
    off: usize,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Placed<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Placed<T> {}

/// Proof that `[off, off + len)` lies inside a mapping (as [`Placed`], for a byte range:
/// [`Mapping::place_range`], [`Mapping::region_at`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PlacedRange {
    anchor: Anchor,
    off: usize,
    sub_len: usize,
}

impl Mapping {
    #[inline]
    fn anchor(&self) -> Anchor {
        Anchor {
            base: self.ptr as usize,
            len: self.len,
            writable: self.writable,
        }
    }

    /// Panics unless this mapping is the one (by [`Anchor`]) a placement was checked
    /// against: using it on another one is a bug.
    #[inline]
    fn assert_is(&self, anchor: Anchor) {
        assert!(
            anchor == self.anchor(),
            "a placement used on a mapping it was not checked against"
        );
    }

    /// Checks once that a `T` can be viewed at `offset` (as [`Region::at`]).
    pub(crate) fn place<T: SharedAtomics>(&self, offset: u64) -> Option<Placed<T>> {
        self.region().at::<T>(offset)?;
        Some(Placed {
            anchor: self.anchor(),
            off: usize::try_from(offset).ok()?,
            _t: PhantomData,
        })
    }

    /// The `T` that `placed` proves to be there.
    ///
    /// # Panics
    ///
    /// If `placed` was made for another mapping (a bug).
    #[inline]
    pub(crate) fn get<T: SharedAtomics>(&self, placed: &Placed<T>) -> &T {
        self.assert_is(placed.anchor);
        // SAFETY: `place` checked, on a mapping of this very address, length and access, that
        // `[off, off + size_of::<T>())` is inside it, aligned for `T`, and writable (points
        // 3, 5); the mapping is valid while `&self` is (point 1), and `T: SharedAtomics`.
        unsafe { &*self.ptr.wrapping_add(placed.off).cast::<T>() }
    }

    /// Checks once that `[offset, offset + len)` is inside (as [`Region::sub`]).
    pub(crate) fn place_range(&self, offset: u64, len: usize) -> Option<PlacedRange> {
        self.region().sub(offset, len)?;
        Some(PlacedRange {
            anchor: self.anchor(),
            off: usize::try_from(offset).ok()?,
            sub_len: len,
        })
    }

    /// The region that `placed` proves to be inside.
    ///
    /// # Panics
    ///
    /// If `placed` was made for another mapping (a bug).
    #[inline]
    pub(crate) fn region_at(&self, placed: &PlacedRange) -> Region<'_> {
        self.assert_is(placed.anchor);
        Region {
            ptr: self.ptr.wrapping_add(placed.off),
            len: placed.sub_len,
            writable: self.writable,
            _mapping: PhantomData,
        }
    }
}

/// A borrowed, bounds-checked view of (part of) a [`Mapping`], valid for `'m`.
#[derive(Debug)]
pub(crate) struct Region<'m> {
    ptr: *mut u8,
    len: usize,
    writable: bool,
    _mapping: PhantomData<&'m Mapping>,
}

impl<'m> Region<'m> {
    /// `offset..offset + len` if it lies inside the region.
    #[inline]
    fn check(&self, offset: u64, len: usize) -> Option<usize> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.len).then_some(start)
    }

    /// The address of byte `start` (checked by the caller to be at most `len`).
    #[inline]
    fn addr(&self, start: usize) -> *mut u8 {
        self.ptr.wrapping_add(start)
    }

    /// The part `[offset, offset + len)`, if inside.
    #[inline]
    pub(crate) fn sub(&self, offset: u64, len: usize) -> Option<Region<'m>> {
        let start = self.check(offset, len)?;
        Some(Region {
            ptr: self.addr(start),
            len,
            writable: self.writable,
            _mapping: PhantomData,
        })
    }

    /// Copies `buf.len()` bytes from `offset` out of the region; `None` if out of bounds.
    #[must_use]
    #[inline]
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> Option<()> {
        let start = self.check(offset, buf.len())?;
        // SAFETY: `[start, start + buf.len())` is inside the region (checked, point 3), which
        // is mapped and readable (point 1); `buf` is the caller's, not shared memory.
        unsafe { std::ptr::copy(self.addr(start), buf.as_mut_ptr(), buf.len()) };
        Some(())
    }

    /// Copies `data` into the region at `offset`; `None` if out of bounds or read-only.
    #[must_use]
    #[inline]
    pub(crate) fn write(&self, offset: u64, data: &[u8]) -> Option<()> {
        if !self.writable {
            return None;
        }
        let start = self.check(offset, data.len())?;
        // SAFETY: in bounds (checked, point 3) and writable (checked, point 1); `data` is the
        // caller's buffer.
        unsafe { std::ptr::copy(data.as_ptr(), self.addr(start), data.len()) };
        Some(())
    }

    /// The address of `[offset, offset + len)`; `None` if out of bounds.
    #[inline]
    pub(crate) fn range(&self, offset: u64, len: usize) -> Option<*mut u8> {
        let start = self.check(offset, len)?;
        Some(self.addr(start))
    }

    /// The `T` at `offset`: in bounds, aligned, in a writable region; else `None`.
    #[inline]
    pub(crate) fn at<T: SharedAtomics>(&self, offset: u64) -> Option<&'m T> {
        self.slice::<T>(offset, 1).map(|s| &s[0])
    }

    /// `n` consecutive `T`s from `offset`: in bounds, aligned, in a writable region; else
    /// `None`.
    #[inline]
    pub(crate) fn slice<T: SharedAtomics>(&self, offset: u64, n: usize) -> Option<&'m [T]> {
        let bytes = std::mem::size_of::<T>().checked_mul(n)?;
        let start = self.check(offset, bytes)?;
        let ptr = self.addr(start);
        if !self.writable || ptr as usize % std::mem::align_of::<T>() != 0 {
            return None;
        }
        // SAFETY: `[ptr, ptr + n * size_of::<T>())` is inside the region (checked, point 3),
        // mapped read-write for `'m` (points 1 and 2), and aligned for `T` (checked); `T` is
        // made of atomics only (`SharedAtomics`, point 5), so any bytes are a valid value
        // and other processes writing them concurrently is allowed.
        Some(unsafe { std::slice::from_raw_parts(ptr.cast::<T>(), n) })
    }

    /// The `AtomicU32` at `offset` (4-aligned, in bounds, writable region), else `None`.
    #[inline]
    pub(crate) fn atomic_u32(&self, offset: u64) -> Option<&'m AtomicU32> {
        self.at::<AtomicU32>(offset)
    }

    /// The `AtomicU64` at `offset` (8-aligned, in bounds, writable region), else `None`.
    #[inline]
    pub(crate) fn atomic_u64(&self, offset: u64) -> Option<&'m AtomicU64> {
        self.at::<AtomicU64>(offset)
    }

    /// Loads the `u64` at `offset` atomically with `order`, also on read-only regions.
    #[inline]
    pub(crate) fn load_u64(&self, offset: u64, order: Ordering) -> Option<u64> {
        let start = self.check(offset, 8)?;
        let ptr = self.addr(start);
        if ptr as usize % 8 != 0 {
            return None;
        }
        // SAFETY: in bounds (point 3) and aligned (checked); a 64-bit atomic load is a plain
        // load on x86_64 and aarch64, so a read-only mapping is fine. The reference does not
        // outlive this call.
        Some(unsafe { AtomicU64::from_ptr(ptr.cast()) }.load(order))
    }

    /// Loads the `u32` at `offset` atomically with `order`, also on read-only regions.
    #[inline]
    pub(crate) fn load_u32(&self, offset: u64, order: Ordering) -> Option<u32> {
        let start = self.check(offset, 4)?;
        let ptr = self.addr(start);
        if ptr as usize % 4 != 0 {
            return None;
        }
        // SAFETY: as in `load_u64`, for a 32-bit load.
        Some(unsafe { AtomicU32::from_ptr(ptr.cast()) }.load(order))
    }

    /// `[offset, offset + len)` lent to read a message in place, if inside.
    #[inline]
    pub(crate) fn lend(&self, offset: u64, len: usize) -> Option<Lent<'m>> {
        let ptr = NonNull::new(self.range(offset, len)?)?;
        Some(Lent {
            ptr,
            len,
            _mapping: PhantomData,
        })
    }

    /// `[offset, offset + len)` lent to write a message in place, if inside a writable
    /// region.
    #[inline]
    pub(crate) fn lend_mut(&self, offset: u64, len: usize) -> Option<LentMut<'m>> {
        if !self.writable {
            return None;
        }
        let ptr = NonNull::new(self.range(offset, len)?)?;
        Some(LentMut {
            ptr,
            len,
            _mapping: PhantomData,
        })
    }
}

// SAFETY: atomics themselves (the real ones; what `Segment::atomic_u32`/`_u64` hand out).
unsafe impl SharedAtomics for AtomicU32 {}
// SAFETY: as above.
unsafe impl SharedAtomics for AtomicU64 {}
// SAFETY: the atomics protocols are written over (`crate::primitive`): `repr(transparent)`
// over std's atomics (or loom's, in loom builds, whose models never view a mapping).
unsafe impl SharedAtomics for crate::primitive::AtomicU32 {}
// SAFETY: as above.
unsafe impl SharedAtomics for crate::primitive::AtomicU64 {}

/// A message lent in place from shared memory: what [`spsc::RecvGuard`](crate::channel::spsc::RecvGuard)
/// and [`mpmc::RecvGuard`](crate::channel::mpmc::RecvGuard) dereference to. Its bytes stay
/// valid, and unchanged by well-behaved peers, while the guard lives.
///
/// There is no safe `&[u8]` view: the bytes are in shared memory, which a hostile process
/// could change while the slice lives. Copy them ([`read_at`](Self::read_at),
/// [`to_vec`](Self::to_vec)), use the pointer, or [`as_slice`](Self::as_slice) (unsafe).
#[derive(Debug)]
pub struct Lent<'m> {
    ptr: NonNull<u8>,
    len: usize,
    _mapping: PhantomData<&'m [u8]>,
}

impl Lent<'_> {
    /// The message's length.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the message is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the message, valid for [`len`](Self::len) bytes while the guard lives.
    #[inline]
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Copies bytes from `offset` of the message into `buf`; `false` (nothing copied) if
    /// the range is outside the message.
    #[inline]
    pub fn read_at(&self, offset: usize, buf: &mut [u8]) -> bool {
        let fits = offset.checked_add(buf.len()).is_some_and(|e| e <= self.len);
        if fits {
            // SAFETY: inside the message (checked), which `Region::lend` checked to lie
            // inside its region, mapped for `'m` (point 2); `buf` is the caller's.
            unsafe {
                std::ptr::copy(
                    self.ptr.as_ptr().wrapping_add(offset),
                    buf.as_mut_ptr(),
                    buf.len(),
                )
            };
        }
        fits
    }

    /// A copy of the message.
    #[inline]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = vec![0; self.len];
        self.read_at(0, &mut v);
        v
    }

    /// The message as a slice, without copying.
    ///
    /// # Safety
    ///
    /// No process may write these bytes while the slice lives. A well-behaved sender does
    /// not (the bytes are not free before the guard drops); a buggy or hostile process with
    /// write access to the channel could, which is why this is `unsafe`.
    #[inline]
    pub unsafe fn as_slice(&self) -> &[u8] {
        // SAFETY: in bounds and mapped for as long as `self` (see `read_at`); that nobody
        // writes them meanwhile is the caller's promise.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

/// Bytes of a channel lent to write one message in place: what the `SendLoan`s of
/// [`spsc`](crate::channel::spsc::SendLoan) and [`mpmc`](crate::channel::mpmc::SendLoan)
/// dereference to. They start with whatever was there before.
#[derive(Debug)]
pub struct LentMut<'m> {
    ptr: NonNull<u8>,
    len: usize,
    _mapping: PhantomData<&'m mut [u8]>,
}

impl LentMut<'_> {
    /// Bytes lent.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the loan is of 0 bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start of the lent bytes, valid for [`len`](Self::len) bytes until the loan is sent or
    /// dropped.
    #[inline]
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Copies `data` into the loan at `offset`.
    ///
    /// # Panics
    ///
    /// If `offset + data.len()` exceeds [`len`](Self::len) (a bug of the caller).
    #[inline]
    pub fn write_at(&mut self, offset: usize, data: &[u8]) {
        let end = offset.checked_add(data.len());
        assert!(
            end.is_some_and(|e| e <= self.len),
            "write of {} bytes at {offset} outside a loan of {}",
            data.len(),
            self.len
        );
        // SAFETY: inside the loan (checked), which `Region::lend_mut` checked to lie inside
        // its writable region, mapped read-write for `'m` (points 1, 2); `data` is the
        // caller's.
        unsafe {
            std::ptr::copy(
                data.as_ptr(),
                self.ptr.as_ptr().wrapping_add(offset),
                data.len(),
            )
        };
    }

    /// The lent bytes as a slice, to fill in place (e.g. decode a frame into it).
    ///
    /// # Safety
    ///
    /// No other process may access these bytes while the slice lives. The receiver does not
    /// before the loan is sent; a process that writes into the channel's free space (a buggy
    /// or hostile peer with write access) breaks this, which is why this is `unsafe`.
    #[inline]
    pub unsafe fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: in bounds and mapped read-write (see `write_at`); exclusivity is the
        // caller's promise.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}
