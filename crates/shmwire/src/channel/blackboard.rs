//! The latest value of a plain-old-data type: one writer, any number of readers, who read
//! whenever they like and never wait for the writer (a seqlock).
//!
//! ```
//! use shmwire::channel::{blackboard, ChannelOptions};
//! # let name = format!("doc-blackboard-{}", std::process::id());
//! #[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable, Debug, PartialEq)]
//! #[repr(C)]
//! struct Pose { x: f64, y: f64, heading: f64 }
//!
//! let opts = ChannelOptions::new();
//! let mut w = blackboard::Writer::<Pose>::open(&name, &opts)?;
//! let r = blackboard::Reader::<Pose>::open(&name, &opts)?;
//! assert_eq!(r.read()?, None);
//! w.write(&Pose { x: 1.0, y: 2.0, heading: 0.5 });
//! assert_eq!(r.read()?, Some(Pose { x: 1.0, y: 2.0, heading: 0.5 }));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # The protocol
//!
//! Two copies, each with a `seq` word: version `v` (from 1) is written to copy `v mod 2`,
//! whose `seq` reads `2v − 1` while it is written and `2v` when complete. The writer stores
//! the odd seq (Relaxed), a Release fence, the value, the even seq (Release), and rings.
//! A reader picks the copy with the larger even seq (Acquire), copies it, issues an Acquire
//! fence and re-loads `seq`: unchanged means the copy is whole. Because the writer alternates
//! copies, the newest complete version is always readable — also after a writer was killed
//! in the middle of a write, which leaves only the copy it was writing odd: the next writer
//! writes that version again, into that copy (and if it dies too, the complete one is still
//! untouched).

use std::marker::PhantomData;
use std::time::Duration;

use bytemuck::Pod;

use super::error::{Failure, FromFailure};
use super::peers::Role;
use super::ring::Mem;
use super::wait::Patience;
use super::{
    round_up, ChannelOpenError, ChannelOptions, Core, Flavor, RecvError, RecvTimeoutError,
    TryRecvError, Wanted,
};
use crate::primitive::{self, AtomicU64, Ordering};
use crate::view::Region;

/// Reads retried this many times while the writer keeps overwriting, then fail.
const READ_RETRIES: usize = 1000;

fn wanted<T: Pod>(opts: &ChannelOptions) -> (ChannelOptions, Wanted, u64) {
    let opts = opts.clone().message_type::<T>();
    let size = std::mem::size_of::<T>() as u64;
    let stride = round_up(size.max(1), 64);
    let data_len = 128 + 2 * stride;
    let mut w = Wanted::new(Flavor::Blackboard, &opts, 2, size, data_len);
    w.capacity_given = false;
    (opts, w, stride)
}

/// Offset of copy `i` in the data area.
fn copy_at(stride: u64, i: u64) -> u64 {
    128 + i * stride
}

fn check<T>(core: &Core, stride: u64) -> Result<(), ChannelOpenError> {
    let size = std::mem::size_of::<T>() as u64;
    if core.info.slot_size != size || core.info.data_len != 128 + 2 * stride {
        return Err(ChannelOpenError::Corrupt {
            name: core.name.to_string(),
            reason: format!(
                "a blackboard of {}-byte values has a data area of {} bytes",
                core.info.slot_size, core.info.data_len
            ),
        });
    }
    Ok(())
}

/// The writing end of a blackboard (one at a time).
#[derive(Debug)]
pub struct Writer<T: Pod> {
    core: Core,
    stride: u64,
    version: u64,
    _t: PhantomData<fn(T)>,
}

impl<T: Pod> Writer<T> {
    /// Opens (or creates, as `opts` says) the blackboard `name` for values of `T` and
    /// attaches as its writer. Versions continue from the last one written.
    ///
    /// # Errors
    ///
    /// [`ChannelOpenError::Busy`] if another live process writes;
    /// [`ChannelOpenError::Mismatch`] if the blackboard holds another type; see
    /// [`ChannelOpenError`].
    pub fn open(name: &str, opts: &ChannelOptions) -> Result<Self, ChannelOpenError> {
        let (opts, wanted, stride) = wanted::<T>(opts);
        let core = Core::open(name, &opts, &wanted, Role::Send, Some("writer"))?;
        check::<T>(&core, stride)?;
        let data = core.data();
        // ORDERING: Acquire — pairs with the Release stores of the seqs by the last writer.
        let seqs = [0, 1].map(|i| {
            data.at::<AtomicU64>(i * 8)
                .map_or(0, |s| s.load(Ordering::Acquire))
        });
        // Continue after the newest complete version: a version a killed writer left odd is
        // written again, into the copy it left unfinished, never over the last complete one
        // (which must stay readable while we write, and if we die too).
        let version = seqs.iter().map(|s| s / 2).max().unwrap_or(0);
        Ok(Writer {
            core,
            stride,
            version,
            _t: PhantomData,
        })
    }

    /// Publishes `value` as the latest.
    pub fn write(&mut self, value: &T) {
        // Versions continue from seqs read in shared memory: wrapping, so that a hostile
        // seq near `u64::MAX` is wrong data, not an overflow.
        self.version = self.version.wrapping_add(1);
        if self.version.wrapping_mul(2) == 0 {
            // Its complete seq would read 0, "never written": skip it.
            self.version = self.version.wrapping_add(1);
        }
        let v = self.version;
        self.board().write(v, bytemuck::bytes_of(value));
        self.core.producer().bell.ring(self.core.kernel(0));
    }

    fn board(&self) -> Board<'_, Region<'_>> {
        board(self.core.data(), self.stride)
    }

    /// The version of the last value written (0: none yet).
    pub fn version(&self) -> u64 {
        self.version
    }
}

/// A reading end of a blackboard.
#[derive(Debug)]
pub struct Reader<T: Pod> {
    core: Core,
    stride: u64,
    _t: PhantomData<fn() -> T>,
}

impl<T: Pod> Reader<T> {
    /// Opens (or creates, as `opts` says) the blackboard `name` for values of `T`.
    ///
    /// # Errors
    ///
    /// [`ChannelOpenError::Mismatch`] if the blackboard holds another type; see
    /// [`ChannelOpenError`].
    pub fn open(name: &str, opts: &ChannelOptions) -> Result<Self, ChannelOpenError> {
        let (opts, wanted, stride) = wanted::<T>(opts);
        let core = Core::open(name, &opts, &wanted, Role::Recv, None)?;
        check::<T>(&core, stride)?;
        Ok(Reader {
            core,
            stride,
            _t: PhantomData,
        })
    }

    /// The latest value and its version (from 1), or `None` if nothing was written yet.
    ///
    /// # Errors
    ///
    /// [`RecvError::Corrupt`] if the writer overwrote both copies 1000 times while we read
    /// (a writer far faster than any reader, or a hostile one).
    pub fn read_versioned(&self) -> Result<Option<(u64, T)>, RecvError> {
        self.look().map_err(|f| self.core.fail(f))
    }

    fn look(&self) -> Result<Option<(u64, T)>, Failure> {
        let mut value = T::zeroed();
        match board(self.core.data(), self.stride).read(bytemuck::bytes_of_mut(&mut value)) {
            Some(0) => Ok(None),
            Some(v) => Ok(Some((v, value))),
            None => Err(Failure::Corrupt(
                "no copy of the value stayed unchanged while it was read".into(),
            )),
        }
    }

    /// The latest value, or `None` if nothing was written yet.
    ///
    /// # Errors
    ///
    /// As [`read_versioned`](Self::read_versioned).
    pub fn read(&self) -> Result<Option<T>, RecvError> {
        Ok(self.read_versioned()?.map(|(_, v)| v))
    }

    fn wait_newer_with<E: FromFailure>(
        &self,
        after: u64,
        patience: Patience,
    ) -> Result<(u64, T), E> {
        self.core
            .wait(0, patience, &mut || {
                Ok(self.look()?.filter(|&(v, _)| v > after))
            })
            .map_err(|f| self.core.fail(f))
    }

    /// The latest value and its version if that version is newer than `after` (0: any
    /// value).
    ///
    /// # Errors
    ///
    /// [`TryRecvError::Empty`] (nothing newer), [`TryRecvError::Disconnected`] (the writer
    /// is gone and nothing newer came), [`TryRecvError::Corrupt`].
    pub fn try_wait_newer(&self, after: u64) -> Result<(u64, T), TryRecvError> {
        self.wait_newer_with(after, Patience::Try)
    }

    /// Waits for a version newer than `after` (0: any value) and returns it.
    ///
    /// # Errors
    ///
    /// [`RecvError::Disconnected`] (the writer is gone), [`RecvError::Corrupt`].
    pub fn wait_newer(&self, after: u64) -> Result<(u64, T), RecvError> {
        self.wait_newer_with(after, Patience::FOREVER)
    }

    /// [`wait_newer`](Self::wait_newer), waiting up to `timeout`.
    ///
    /// # Errors
    ///
    /// [`RecvTimeoutError::Timeout`], and as [`wait_newer`](Self::wait_newer).
    pub fn wait_newer_timeout(
        &self,
        after: u64,
        timeout: Duration,
    ) -> Result<(u64, T), RecvTimeoutError> {
        self.wait_newer_with(after, Patience::timeout(timeout))
    }
}

/// The blackboard protocol over two seq words and payload memory (the channel's data area,
/// or loom-checked memory in the models): seqs at 0 and 8, copies at [`copy_at`].
pub(crate) struct Board<'a, M: Mem> {
    pub(crate) seqs: [&'a AtomicU64; 2],
    pub(crate) mem: M,
    pub(crate) stride: u64,
}

fn board(data: Region<'_>, stride: u64) -> Board<'_, Region<'_>> {
    let seq = |i: u64| {
        data.at::<AtomicU64>(i * 8)
            .expect("the seq words are inside the validated data area")
    };
    Board {
        seqs: [seq(0), seq(1)],
        mem: data,
        stride,
    }
}

impl<M: Mem> Board<'_, M> {
    /// Writes version `v` (from 1, one more than the last).
    pub(crate) fn write(&self, v: u64, bytes: &[u8]) {
        let i = v % 2;
        let seq = self.seqs[i as usize];
        seq.store(v.wrapping_mul(2).wrapping_sub(1), Ordering::Relaxed);
        // ORDERING: Release fence — orders the odd seq before the value's bytes; pairs with
        // the Acquire fence in `read_copy`.
        primitive::fence(Ordering::Release);
        self.mem
            .put(copy_at(self.stride, i), bytes)
            .expect("the copies are inside the validated data area");
        // ORDERING: Release — completes the copy; pairs with the Acquire load in `read_copy`.
        seq.store(v.wrapping_mul(2), Ordering::Release);
    }

    /// Copies copy `i` into `out` if it is complete and stays so during the copy; returns
    /// its version.
    fn read_copy(&self, i: u64, out: &mut [u8]) -> Option<u64> {
        let seq = self.seqs[i as usize];
        // ORDERING: Acquire — pairs with the Release store of the even seq in `write`.
        let s1 = seq.load(Ordering::Acquire);
        if s1 == 0 || s1 % 2 == 1 || (s1 / 2) % 2 != i {
            return None;
        }
        self.mem.get(copy_at(self.stride, i), out)?;
        // ORDERING: Acquire fence — pairs with the Release fence in `write`: a copy that saw
        // bytes of a newer write sees its odd seq below.
        primitive::fence(Ordering::Acquire);
        (seq.load(Ordering::Relaxed) == s1).then_some(s1 / 2)
    }

    /// Copies the newest complete value into `out`: `Some(version)`, `Some(0)` if nothing
    /// was written yet, `None` if no copy stayed unchanged through [`READ_RETRIES`] tries.
    pub(crate) fn read(&self, out: &mut [u8]) -> Option<u64> {
        for _ in 0..READ_RETRIES {
            // ORDERING: Acquire — pairs with the Release stores in `write`.
            let seqs = self.seqs.map(|s| s.load(Ordering::Acquire));
            if seqs == [0, 0] {
                return Some(0);
            }
            // Newest copy first, then the other.
            let newest = u64::from(seqs[1] > seqs[0]);
            for i in [newest, 1 - newest] {
                if let Some(v) = self.read_copy(i, out) {
                    return Some(v);
                }
            }
            std::hint::spin_loop();
            #[cfg(loom)]
            loom::thread::yield_now();
        }
        None
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    /// A writer killed in the middle of a write, then its replacement killed in the middle of
    /// its first write: the last complete value is still readable. (Regression, found while
    /// writing the crash chaos test: the replacement wrote over the last complete copy, so
    /// while it wrote — and for good if it died — no copy was complete and readers failed
    /// with `Corrupt`.)
    #[test]
    fn two_writers_killed_mid_write_leave_the_last_complete_value_readable() {
        let name = format!("swu-bb-twice-{}", std::process::id());
        // Removed however the test ends.
        struct Remove<'a>(&'a str);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                let _ = crate::SegmentOptions::new().remove(self.0);
            }
        }
        let _remove = Remove(&name);
        let opts = ChannelOptions::new();
        let r = Reader::<u64>::open(&name, &opts).unwrap();
        let mut w = Writer::<u64>::open(&name, &opts).unwrap();
        w.write(&1);
        w.write(&2);
        // Killed writing version 3: its copy (3 mod 2) is left odd.
        let data = r.core.data();
        let seq = |v: u64| data.at::<AtomicU64>(v % 2 * 8).unwrap();
        seq(3).store(2 * 3 - 1, Ordering::Relaxed);
        drop(w);
        // The replacement dies in its first write, after marking its copy odd.
        let w = Writer::<u64>::open(&name, &opts).unwrap();
        let first = w.version() + 1;
        seq(first).store(2 * first - 1, Ordering::Relaxed);
        drop(w);
        assert_eq!(r.read_versioned().unwrap(), Some((2, 2)));
        // The next writer's value arrives, with a version above the last one read.
        let mut w = Writer::<u64>::open(&name, &opts).unwrap();
        w.write(&4);
        let (v, value) = r.read_versioned().unwrap().unwrap();
        assert!(v > 2 && value == 4, "version {v}, value {value}");
        drop((r, w));
    }

    /// A seq a hostile peer left at `u64::MAX`: the next writer's versions wrap, and the
    /// value it writes is read back, where `2v` used to overflow (debug builds).
    #[test]
    fn versions_beyond_u64_wrap_instead_of_overflowing() {
        let name = format!("swu-bb-wrap-{}", std::process::id());
        // Removed however the test ends.
        struct Remove<'a>(&'a str);
        impl Drop for Remove<'_> {
            fn drop(&mut self) {
                let _ = crate::SegmentOptions::new().remove(self.0);
            }
        }
        let _remove = Remove(&name);
        let opts = ChannelOptions::new();
        let r = Reader::<u64>::open(&name, &opts).unwrap();
        r.core
            .data()
            .at::<AtomicU64>(0)
            .unwrap()
            .store(u64::MAX, Ordering::Relaxed);
        let mut w = Writer::<u64>::open(&name, &opts).unwrap();
        w.write(&7);
        assert_eq!(r.read().unwrap(), Some(7));
        drop((r, w));
    }
}
