//! Bounds-checked access to bytes that other processes share.
//!
//! # Safety
//!
//! A [`Region`] is created (unsafely) from a pointer and length that stay mapped for the
//! region's lifetime, readable, and writable if `writable` is set. Every accessor checks its
//! offset and length against `len` (with overflow checks) before touching memory, so no value
//! read from shared memory can lead us outside the mapping. Bytes are copied in and out with
//! `ptr::copy`; we never form `&[u8]`/`&mut [u8]` over them, because another process may
//! write them at any moment. Atomics are handed out by reference: `AtomicU32`/`AtomicU64`
//! are designed for memory that is written concurrently, and the mapping outlives `&self`.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, AtomicU64};

/// A mapped byte range shared with other processes.
#[derive(Debug)]
pub(crate) struct Region {
    ptr: *mut u8,
    len: usize,
    writable: bool,
}

// SAFETY: a Region is a plain address range; all access goes through atomics or raw copies,
// which are valid from any thread (the memory is already shared across processes).
unsafe impl Send for Region {}
// SAFETY: as for Send; `&Region` methods never create references to non-atomic shared bytes.
unsafe impl Sync for Region {}

impl Region {
    /// # Safety
    ///
    /// `[ptr, ptr + len)` must stay mapped and readable for as long as the `Region` lives,
    /// and writable too if `writable` is true. `ptr` must be page-aligned or `len == 0`.
    pub(crate) unsafe fn new(ptr: *mut u8, len: usize, writable: bool) -> Region {
        Region { ptr, len, writable }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn is_writable(&self) -> bool {
        self.writable
    }

    pub(crate) fn as_ptr(&self) -> *mut u8 {
        self.ptr
    }

    /// `offset..offset + len` if it lies inside the region.
    fn check(&self, offset: u64, len: usize) -> Option<usize> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        (end <= self.len).then_some(start)
    }

    /// Copies `buf.len()` bytes from `offset` out of the region; `None` if out of bounds.
    #[must_use]
    pub(crate) fn read(&self, offset: u64, buf: &mut [u8]) -> Option<()> {
        let start = self.check(offset, buf.len())?;
        // SAFETY: `start + buf.len() <= len` (checked), the range is mapped and readable
        // (constructor contract), and `buf` is a distinct local buffer.
        unsafe { std::ptr::copy(self.ptr.add(start), buf.as_mut_ptr(), buf.len()) };
        Some(())
    }

    /// Copies `data` into the region at `offset`; `None` if out of bounds or read-only.
    #[must_use]
    pub(crate) fn write(&self, offset: u64, data: &[u8]) -> Option<()> {
        if !self.writable {
            return None;
        }
        let start = self.check(offset, data.len())?;
        // SAFETY: in bounds (checked) and writable (checked, constructor contract); `data` is
        // the caller's buffer, never inside a shared mapping we hand out as a slice.
        unsafe { std::ptr::copy(data.as_ptr(), self.ptr.add(start), data.len()) };
        Some(())
    }

    /// The `AtomicU32` at `offset` (4-aligned, in bounds, writable region), else `None`.
    pub(crate) fn atomic_u32(&self, offset: u64) -> Option<&AtomicU32> {
        let start = self.check(offset, 4)?;
        if !self.writable || (self.ptr as usize + start) % 4 != 0 {
            return None;
        }
        // SAFETY: in bounds, aligned for AtomicU32, mapped read-write for `'self`; atomics
        // may alias memory written concurrently by other processes.
        Some(unsafe { AtomicU32::from_ptr(self.ptr.add(start).cast()) })
    }

    /// The `AtomicU64` at `offset` (8-aligned, in bounds, writable region), else `None`.
    pub(crate) fn atomic_u64(&self, offset: u64) -> Option<&AtomicU64> {
        let start = self.check(offset, 8)?;
        if !self.writable || (self.ptr as usize + start) % 8 != 0 {
            return None;
        }
        // SAFETY: as for `atomic_u32`, with 8-byte alignment checked.
        Some(unsafe { AtomicU64::from_ptr(self.ptr.add(start).cast()) })
    }

    /// Loads the `u64` at `offset` atomically with `order`, also on read-only regions.
    pub(crate) fn load_u64(&self, offset: u64, order: std::sync::atomic::Ordering) -> Option<u64> {
        let start = self.check(offset, 8)?;
        if (self.ptr as usize + start) % 8 != 0 {
            return None;
        }
        // SAFETY: in bounds and aligned; a 64-bit atomic load is a plain load on x86_64 and
        // aarch64, so a read-only mapping is fine. The reference does not outlive this call.
        Some(unsafe { AtomicU64::from_ptr(self.ptr.add(start).cast()) }.load(order))
    }

    /// Loads the `u32` at `offset` atomically with `order`, also on read-only regions.
    pub(crate) fn load_u32(&self, offset: u64, order: std::sync::atomic::Ordering) -> Option<u32> {
        let start = self.check(offset, 4)?;
        if (self.ptr as usize + start) % 4 != 0 {
            return None;
        }
        // SAFETY: in bounds and aligned; a load does not write, so a read-only mapping is
        // fine (x86_64 and aarch64 atomic 32-bit loads are plain loads). The reference does
        // not outlive this call.
        Some(unsafe { AtomicU32::from_ptr(self.ptr.add(start).cast()) }.load(order))
    }
}
