//! What `shmwire send` / `shmwire recv` (and the demo) add to the library's stream protocol
//! ([`shmwire::channel::stream`]): the output file that appears only complete, progress
//! bars, Ctrl-C, and sentences.

use std::cell::RefCell;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use indicatif::ProgressBar;
use shmwire::channel::spsc;
use shmwire::channel::stream::{
    StreamHeader, StreamObserver, StreamRecvError, StreamSendError, StreamSummary,
};

use crate::exit::No;
use crate::{terminal, units};

/// `big.iso (1 GiB)`, `a stream`, …
fn describe(header: &StreamHeader) -> String {
    let name = if header.name.is_empty() {
        "a stream"
    } else {
        &header.name
    };
    match header.len {
        Some(len) => format!("{name} ({})", units::short(len)),
        None => name.to_owned(),
    }
}

/// `1 GiB (1073741824 bytes) in 0.52 s (2065 MB/s), xxh3 0123456789abcdef`.
pub(crate) fn summary(done: &StreamSummary) -> String {
    format!(
        "{} in {} ({}), xxh3 {:016x}",
        units::size(done.bytes),
        units::duration(done.elapsed),
        units::rate(done.bytes, done.elapsed),
        done.xxh3
    )
}

/// The CLI's [`StreamObserver`]: a progress bar, Ctrl-C and a caller's reason to give up at
/// every tick, and (receiving) the sink's commit once the stream is verified.
struct Observer<'a, 'b> {
    progress: &'a ProgressBar,
    verb: &'static str,
    give_up: &'a mut dyn FnMut() -> Option<String>,
    sink: Option<&'a RefCell<&'b mut Sink>>,
    verified: &'a mut dyn FnMut(&StreamSummary),
}

impl StreamObserver for Observer<'_, '_> {
    fn tick(&mut self) -> Result<(), String> {
        if terminal::interrupted() {
            return Err("interrupted".into());
        }
        (self.give_up)().map_or(Ok(()), Err)
    }

    fn started(&mut self, header: &StreamHeader) {
        terminal::count_bytes(
            self.progress,
            header.len,
            format!("{} {}", self.verb, describe(header)),
        );
    }

    fn progress(&mut self, n: u64) {
        self.progress.inc(n);
    }

    fn confirming(&mut self) {
        self.progress
            .set_message("waiting for the receiver to confirm");
    }

    fn verified(&mut self, summary: &StreamSummary) -> io::Result<()> {
        if let Some(sink) = self.sink {
            sink.borrow_mut()
                .commit()
                .map_err(|e| io::Error::other(format!("{e:#}")))?;
        }
        (self.verified)(summary);
        Ok(())
    }
}

/// Sends `input` as the stream `header` describes and waits until the receiver confirmed
/// it. `timeout` bounds the wait for a receiver to attach; nothing is sent before one has.
///
/// # Errors
///
/// [`No`] if no receiver came within `timeout`; an error sentence if reading fails, the
/// receiver goes away, or it does not confirm.
pub(crate) fn send(
    tx: &mut spsc::Sender,
    input: &mut dyn Read,
    what: &str,
    header: &StreamHeader,
    timeout: Option<Duration>,
    progress: &ProgressBar,
) -> anyhow::Result<StreamSummary> {
    let name = tx.name().to_owned();
    let mut observer = Observer {
        progress,
        verb: "sending",
        give_up: &mut || None,
        sink: None,
        verified: &mut |_| {},
    };
    let timeout_or_max = timeout.unwrap_or(Duration::MAX);
    tx.send_stream_timeout(input, header, timeout_or_max, &mut observer)
        .map_err(|e| match e {
            StreamSendError::Timeout => No(format!(
                "timed out after {} waiting for a receiver on channel {name:?}",
                humantime::format_duration(timeout.unwrap_or_default())
            ))
            .into(),
            StreamSendError::Read { bytes, source } => anyhow::Error::new(source).context(format!(
                "cannot read {what} after {} (transfer abandoned)",
                units::short(bytes)
            )),
            StreamSendError::Channel { bytes, source } => anyhow::Error::new(source).context(
                format!("the transfer stopped after {}", units::short(bytes)),
            ),
            StreamSendError::NotConfirmed { .. } => anyhow!(
                "the receiver of channel {name:?} did not confirm the transfer: it rejected it \
                 or went away (see its error)"
            ),
            e => e.into(),
        })
}

/// Receives one stream into `sink`, verifies it, commits the sink, calls `verified`, and
/// only then confirms it to the sender. The wait for the header ends after `timeout`, or
/// when `give_up` (asked every 100 ms) returns a reason; Ctrl-C (if caught) stops it.
///
/// # Errors
///
/// [`No`] if no transfer started within `timeout`; an error sentence if the sender went
/// away before the end, the content does not match the trailer, or the sink fails. The sink
/// is not committed then.
pub(crate) fn recv(
    rx: &mut spsc::Receiver,
    global: bool,
    sink: &mut Sink,
    timeout: Option<Duration>,
    progress: &ProgressBar,
    give_up: &mut dyn FnMut() -> Option<String>,
    verified: &mut dyn FnMut(&StreamSummary),
) -> anyhow::Result<StreamSummary> {
    let name = rx.name().to_owned();
    let result = {
        // The library writes the data and the observer commits: both reach the sink.
        let cell = RefCell::new(&mut *sink);
        let mut observer = Observer {
            progress,
            verb: "receiving",
            give_up,
            sink: Some(&cell),
            verified,
        };
        rx.recv_stream_timeout(
            CellWriter(&cell),
            timeout.unwrap_or(Duration::MAX),
            &mut observer,
        )
    };
    result.map_err(|e| {
        let discarded = sink.discarded();
        let clear = format!("`{}` clears it", crate::advice::rm(&name, global));
        match e {
            StreamRecvError::Timeout => No(format!(
                "timed out after {} waiting for a sender on channel {name:?}",
                humantime::format_duration(timeout.unwrap_or_default())
            ))
            .into(),
            StreamRecvError::Aborted { reason } => anyhow!("{reason}; {discarded}"),
            StreamRecvError::NotAStream { .. } => anyhow!(
                "channel {name:?} does not start with a `shmwire send` header (another program \
                 is sending on it, or it holds the rest of a failed transfer: {clear})"
            ),
            StreamRecvError::Orphaned { .. } => {
                anyhow!("channel {name:?} holds a transfer whose sender is gone ({clear})")
            }
            StreamRecvError::SenderGone {
                bytes: 0,
                announced: None,
                ..
            } => anyhow!("the sender on channel {name:?} went away before it sent anything"),
            StreamRecvError::SenderGone {
                bytes, announced, ..
            } => {
                let of = announced
                    .map(|l| format!(" of {}", units::short(l)))
                    .unwrap_or_default();
                anyhow!(
                    "the sender on channel {name:?} went away after {}{of}: the transfer is \
                     incomplete and {discarded}",
                    units::short(bytes)
                )
            }
            // The sink's own sentences (its path and the OS error).
            StreamRecvError::Write { source, .. } | StreamRecvError::Rejected { source } => {
                anyhow!("{source}; {discarded}")
            }
            e => anyhow::Error::new(e).context(discarded),
        }
    })
}

/// The sink in its cell, as the library's [`Write`].
struct CellWriter<'a, 'b>(&'a RefCell<&'b mut Sink>);

impl Write for CellWriter<'_, '_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.0
            .borrow_mut()
            .write_all(data)
            .map_err(|e| io::Error::other(format!("{e:#}")))?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        // The commit (flush or rename) is the observer's, once the stream is verified.
        Ok(())
    }
}

/// Where received content goes.
#[derive(Debug)]
pub(crate) enum Sink {
    Stdout(io::StdoutLock<'static>),
    File(OutFile),
}

impl Sink {
    fn write_all(&mut self, data: &[u8]) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(s) => s.write_all(data).context("cannot write to stdout"),
            Sink::File(f) => f.write_all(data),
        }
    }

    /// Makes the content final: flushes stdout, or renames the file into place.
    fn commit(&mut self) -> anyhow::Result<()> {
        match self {
            Sink::Stdout(s) => s.flush().context("cannot write to stdout"),
            Sink::File(f) => f.commit(),
        }
    }

    /// What happens to the output when the transfer fails, as a clause.
    fn discarded(&self) -> String {
        match self {
            Sink::Stdout(_) => "what was written to stdout is incomplete".to_owned(),
            Sink::File(f) if f.tmp.is_none() => {
                format!("what was written to {} is incomplete", f.dest.display())
            }
            Sink::File(f) => format!("nothing was saved to {}", f.dest.display()),
        }
    }

    /// `saved as F` / `written to stdout`.
    pub(crate) fn stored(&self) -> String {
        match self {
            Sink::Stdout(_) => "written to stdout".to_owned(),
            Sink::File(f) => format!("saved as {}", f.dest.display()),
        }
    }
}

/// The `--out` file. A regular file (or a new name) is written under a temporary name next
/// to it, renamed into place by [`commit`](Self::commit), and removed if dropped before.
/// Anything else that exists (a device such as `/dev/null`, a FIFO) is written directly:
/// renaming over it would replace it.
#[derive(Debug)]
pub(crate) struct OutFile {
    /// As given, for messages.
    dest: PathBuf,
    /// Where the content goes in the end (a symbolic link resolved).
    target: PathBuf,
    /// The temporary file; `None` when writing `target` directly.
    tmp: Option<PathBuf>,
    file: Option<File>,
    committed: bool,
}

impl OutFile {
    /// Creates `.NAME.shmwire-PID.partial` next to `dest`, or opens `dest` if it is not a
    /// regular file.
    ///
    /// # Errors
    ///
    /// If `dest` is a directory, or the file cannot be created or opened.
    pub(crate) fn create(dest: &Path) -> anyhow::Result<OutFile> {
        if dest.is_dir() {
            bail!("{} is a directory; --out takes a file name", dest.display());
        }
        // Through a link: keep the link, replace what it points to.
        let target = match fs::symlink_metadata(dest) {
            Ok(m) if m.file_type().is_symlink() => {
                fs::canonicalize(dest).unwrap_or_else(|_| dest.to_owned())
            }
            _ => dest.to_owned(),
        };
        let special = fs::metadata(&target).is_ok_and(|m| !m.is_file());
        let (tmp, file) = if special {
            let file = File::options()
                .write(true)
                .open(&target)
                .with_context(|| format!("cannot open {}", dest.display()))?;
            (None, file)
        } else {
            let file_name = target
                .file_name()
                .ok_or_else(|| anyhow!("{} does not name a file", dest.display()))?;
            let mut tmp_name = std::ffi::OsString::from(".");
            tmp_name.push(file_name);
            tmp_name.push(format!(".shmwire-{}.partial", std::process::id()));
            let tmp = target.with_file_name(tmp_name);
            let file = File::options()
                .write(true)
                .create_new(true)
                .open(&tmp)
                .with_context(|| format!("cannot create {}", tmp.display()))?;
            (Some(tmp), file)
        };
        Ok(OutFile {
            dest: dest.to_owned(),
            target,
            tmp,
            file: Some(file),
            committed: false,
        })
    }

    fn write_all(&mut self, data: &[u8]) -> anyhow::Result<()> {
        let file = self.file.as_mut().context("the output is closed")?;
        file.write_all(data).with_context(|| {
            format!(
                "cannot write {}",
                self.tmp.as_ref().unwrap_or(&self.target).display()
            )
        })
    }

    fn commit(&mut self) -> anyhow::Result<()> {
        // Closed first: Windows does not rename open files.
        drop(self.file.take());
        if let Some(tmp) = &self.tmp {
            fs::rename(tmp, &self.target).with_context(|| {
                format!(
                    "cannot rename {} to {}",
                    tmp.display(),
                    self.target.display()
                )
            })?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for OutFile {
    fn drop(&mut self) {
        drop(self.file.take());
        if let Some(tmp) = self.tmp.as_ref().filter(|_| !self.committed) {
            let _ = fs::remove_file(tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_file_appears_only_when_committed() {
        let dir = std::env::temp_dir().join(format!("swt-partial-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("out.bin");
        let mut p = OutFile::create(&dest).unwrap();
        p.write_all(b"abc").unwrap();
        assert!(!dest.exists());
        drop(p);
        assert_eq!(
            fs::read_dir(&dir).unwrap().count(),
            0,
            "removed when dropped"
        );
        let mut p = OutFile::create(&dest).unwrap();
        p.write_all(b"abc").unwrap();
        p.commit().unwrap();
        drop(p);
        assert_eq!(fs::read(&dest).unwrap(), b"abc");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
        assert!(OutFile::create(&dir).is_err(), "a directory is refused");
        #[cfg(unix)]
        {
            // Written directly, not replaced by a rename.
            let mut null = OutFile::create(Path::new("/dev/null")).unwrap();
            assert!(null.tmp.is_none());
            null.write_all(b"abc").unwrap();
            null.commit().unwrap();
            use std::os::unix::fs::FileTypeExt;
            let t = fs::metadata("/dev/null").unwrap().file_type();
            assert!(t.is_char_device(), "/dev/null is still a device");
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
