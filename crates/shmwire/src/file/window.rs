//! A sliding window over a file: one mapped window at a time, sequential and random reads.

use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::{FileAccess, FileOpenError, FileView, MappedFile, ReadError};

/// The window size [`WindowedReader::new`] uses: 64 MiB.
pub const DEFAULT_WINDOW_SIZE: u64 = 64 << 20;

/// Reads a file of any size through one mapped window at a time, so that memory use is
/// bounded by the window (64 MiB by default), however large the file.
///
/// Windows are aligned to multiples of the window size, which is itself a multiple of the
/// allocation granularity. Before each window is mapped the file's size is read again, so a
/// file that grew or shrank between windows is read as it is now: reads stop at the new end
/// of file rather than touching pages past it. (A truncation while a window is in use can
/// still raise `SIGBUS` on POSIX: see the [module documentation](crate::file).)
///
/// Sequential access goes through [`Read`] and [`Seek`]; random access through
/// [`read_at`](Self::read_at) and [`read_exact_at`](Self::read_exact_at), which do not move
/// the position. Windows are mapped read-only, whatever the file's access.
///
/// # Performance
///
/// Sequential reads cost about what `read()` costs with the same buffer (on a warm page cache
/// the copy out of the window is the work; see `examples/scan_bench.rs`). A random read inside
/// the mapped window is cheaper than `pread` (no system call), but one outside it maps a new
/// window first: a few system calls and a page fault, roughly 10 µs on Linux. So random
/// access pays off with locality; for uniformly random reads over a file that fits the address
/// space, one [`MappedFile::view`] of the whole file is faster (its resident pages are then
/// bounded by the OS's page cache rather than by the window).
///
/// # Examples
///
/// ```
/// use std::io::Read;
/// use shmwire::WindowedReader;
/// # let path = std::env::temp_dir().join(format!("doc-reader-{}", std::process::id()));
/// # std::fs::write(&path, b"a file far larger than memory, in principle")?;
/// let mut reader = WindowedReader::open(&path)?;
/// let mut text = String::new();
/// reader.read_to_string(&mut text)?;
/// let mut word = [0u8; 6];
/// reader.read_exact_at(11, &mut word)?;
/// assert_eq!(&word, b"larger");
/// # drop(reader); std::fs::remove_file(&path)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct WindowedReader {
    file: MappedFile,
    window_size: u64,
    /// The window mapped now: starts at a multiple of `window_size`.
    window: Option<FileView>,
    pos: u64,
}

impl WindowedReader {
    /// A reader with the default window size ([`DEFAULT_WINDOW_SIZE`]).
    pub fn new(file: MappedFile) -> Self {
        Self::with_window_size(file, DEFAULT_WINDOW_SIZE)
    }

    /// A reader mapping `window_size` bytes at a time, rounded up to a multiple of the
    /// allocation granularity (and at least one granule).
    pub fn with_window_size(file: MappedFile, window_size: u64) -> Self {
        WindowedReader {
            file,
            window_size: round_window(window_size, super::allocation_granularity()),
            window: None,
            pos: 0,
        }
    }

    /// Opens `path` read-only with the default window size.
    ///
    /// # Errors
    ///
    /// As for [`MappedFile::open`].
    pub fn open(path: impl AsRef<Path>) -> Result<Self, FileOpenError> {
        Ok(Self::new(MappedFile::open(path, FileAccess::ReadOnly)?))
    }

    /// The window size in bytes (after rounding).
    pub fn window_size(&self) -> u64 {
        self.window_size
    }

    /// How many bytes are mapped now: at most [`window_size`](Self::window_size).
    pub fn mapped_len(&self) -> usize {
        self.window.as_ref().map_or(0, FileView::len)
    }

    /// The position [`Read`] continues from.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// The file's size now.
    ///
    /// # Errors
    ///
    /// [`ReadError::Io`] if the OS cannot tell the size.
    pub fn len(&self) -> Result<u64, ReadError> {
        Ok(self.file.len()?)
    }

    /// Whether the file is empty now.
    ///
    /// # Errors
    ///
    /// As for [`len`](Self::len).
    pub fn is_empty(&self) -> Result<bool, ReadError> {
        Ok(self.len()? == 0)
    }

    /// The file being read.
    pub fn file(&self) -> &MappedFile {
        &self.file
    }

    /// Unmaps the window and gives the file back.
    pub fn into_inner(self) -> MappedFile {
        self.file
    }

    /// Makes sure the window holding `offset` is mapped; `false` at or past the end of file.
    fn map_window_for(&mut self, offset: u64) -> Result<bool, ReadError> {
        if let Some(w) = &self.window {
            if offset >= w.offset() && offset - w.offset() < w.len() as u64 {
                return Ok(true);
            }
        }
        // The size is read before every window is mapped: a window never covers pages past
        // the end of file as it is now.
        let size = self.file.len()?;
        if offset >= size {
            return Ok(false);
        }
        let start = offset - offset % self.window_size;
        // At most `window_size`, which fits a usize (see `round_window`).
        let len = (size - start).min(self.window_size) as usize;
        // Unmap the old window first: at most one window is mapped at any time.
        self.window = None;
        self.window = Some(
            self.file
                .view_within(start, len, FileAccess::ReadOnly, size)?,
        );
        Ok(true)
    }

    /// Copies up to `buf.len()` bytes from `offset` into `buf`, like `pread`: fewer only at
    /// the end of file (0 at or past it). Does not move the [`Read`] position.
    ///
    /// # Errors
    ///
    /// [`ReadError::Io`] if the size cannot be read or a window cannot be mapped.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, ReadError> {
        let mut done = 0;
        while done < buf.len() {
            let Some(at) = offset.checked_add(done as u64) else {
                break;
            };
            if !self.map_window_for(at)? {
                break;
            }
            let w = self
                .window
                .as_ref()
                .expect("map_window_for mapped a window");
            let in_window = at - w.offset();
            let n = (w.len() as u64 - in_window).min((buf.len() - done) as u64) as usize;
            w.read_at(in_window, &mut buf[done..done + n])
                .expect("the range lies inside the window");
            done += n;
        }
        Ok(done)
    }

    /// Fills `buf` from `offset`. Does not move the [`Read`] position.
    ///
    /// # Errors
    ///
    /// [`ReadError::OutOfRange`] if the file (as it is now) ends before `offset + buf.len()`;
    /// `buf`'s contents are then unspecified. [`ReadError::Io`] as for
    /// [`read_at`](Self::read_at).
    pub fn read_exact_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), ReadError> {
        let n = self.read_at(offset, buf)?;
        if n < buf.len() {
            return Err(ReadError::OutOfRange {
                path: self.file.path().to_path_buf(),
                offset,
                len: buf.len() as u64,
                size: self.len()?,
            });
        }
        Ok(())
    }
}

/// `size` rounded up to a multiple of `granularity`, at least one granule, and small enough to
/// map (at most `isize::MAX` rounded down).
fn round_window(size: u64, granularity: u64) -> u64 {
    let max = (isize::MAX as u64) / granularity * granularity;
    size.max(1)
        .div_ceil(granularity)
        .saturating_mul(granularity)
        .min(max)
}

impl Read for WindowedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.read_at(self.pos, buf)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for WindowedReader {
    /// Seeking past the end is allowed (reads there return 0 bytes), as for files.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len()?.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let new = new.ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "cannot seek {} to a negative or overflowing position",
                    self.file.path().display()
                ),
            )
        })?;
        self.pos = new;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_are_rounded_to_the_granularity() {
        assert_eq!(round_window(0, 4096), 4096);
        assert_eq!(round_window(1, 4096), 4096);
        assert_eq!(round_window(4096, 4096), 4096);
        assert_eq!(round_window(4097, 65536), 65536);
        assert_eq!(round_window(64 << 20, 65536), 64 << 20);
        let huge = round_window(u64::MAX, 65536);
        assert!(huge <= isize::MAX as u64 && huge % 65536 == 0);
    }
}
