//! The file-transfer protocol of `shmwire send` / `shmwire recv` (and the demo), on top of the
//! byte messages of an SPSC channel.
//!
//! | message | bytes (integers little-endian) |
//! |---|---|
//! | header  | `"SWFH"`, u32 version (1), u64 length (`u64::MAX`: unknown, e.g. stdin), then the file's name (UTF-8, at most 1024 bytes; empty for stdin) |
//! | data    | the next 1 or more bytes of the content, in order (chunks of at most 256 KiB) |
//! | end     | an empty message: no more data |
//! | trailer | `"SWFT"`, u32 version (1), u64 bytes sent, u64 xxh3-64 of all of them |
//!
//! The header's length is a hint for progress bars (a file may change while it is read); the
//! trailer's count and checksum are what the receiver verifies.
//!
//! **Acknowledgement.** The receiver keeps the trailer in the ring (holds its `RecvGuard`)
//! until it has verified the content and stored it (renamed `--out` into place, or flushed
//! stdout), and only then releases it. The sender waits with `Sender::wait_received` until
//! the trailer is consumed, so `send` succeeds only once the receiver has the verified file.
//! A receiver that rejects the transfer leaves without releasing the trailer: the sender sees
//! it go and fails too.
//!
//! **Trust.** Nothing from the channel is trusted: the header and trailer are parsed with
//! length checks, and the content is checked against the trailer's count and checksum. A
//! sender that disappears before the trailer (killed, or it failed) is reported by the
//! channel as disconnected once everything it sent was received: the transfer fails.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use indicatif::ProgressBar;
use shmwire::channel::{spsc, RecvError};
use xxhash_rust::xxh3::Xxh3;

use super::channels;
use crate::{units, No};

/// Ring size when `send`/`recv` create the channel.
pub const DEFAULT_CAPACITY: u64 = 4 << 20;
/// Largest data message.
pub const CHUNK: u64 = 256 << 10;

const HEADER_MAGIC: [u8; 4] = *b"SWFH";
const TRAILER_MAGIC: [u8; 4] = *b"SWFT";
const VERSION: u32 = 1;
const UNKNOWN_LEN: u64 = u64::MAX;
const MAX_NAME: usize = 1024;
const HEADER_FIXED: usize = 16;
const TRAILER_LEN: usize = 24;
/// How often a waiting receiver looks at its deadline and at Ctrl-C.
const SLICE: Duration = Duration::from_millis(100);

/// The first message of a transfer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The content's length, if known in advance.
    pub len: Option<u64>,
    /// The file's name, without its directory (empty for stdin).
    pub name: String,
}

impl Header {
    fn encode(&self) -> Vec<u8> {
        let mut name = self.name.as_str();
        while name.len() > MAX_NAME {
            let mut end = MAX_NAME;
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            name = &name[..end];
        }
        let mut m = Vec::with_capacity(HEADER_FIXED + name.len());
        m.extend_from_slice(&HEADER_MAGIC);
        m.extend_from_slice(&VERSION.to_le_bytes());
        m.extend_from_slice(&self.len.unwrap_or(UNKNOWN_LEN).to_le_bytes());
        m.extend_from_slice(name.as_bytes());
        m
    }

    fn decode(m: &[u8]) -> Option<Header> {
        if m.len() < HEADER_FIXED || m.len() > HEADER_FIXED + MAX_NAME {
            return None;
        }
        if m[..4] != HEADER_MAGIC || u32_at(m, 4) != VERSION {
            return None;
        }
        let len = u64_at(m, 8);
        Some(Header {
            len: (len != UNKNOWN_LEN).then_some(len),
            name: String::from_utf8_lossy(&m[HEADER_FIXED..]).into_owned(),
        })
    }

    /// `big.iso (1 GiB)`, `stdin`, …
    fn describe(&self) -> String {
        let name = if self.name.is_empty() {
            "a stream"
        } else {
            &self.name
        };
        match self.len {
            Some(len) => format!("{name} ({})", units::short(len)),
            None => name.to_owned(),
        }
    }
}

/// The last message of a transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Trailer {
    len: u64,
    xxh3: u64,
}

impl Trailer {
    fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut m = [0u8; TRAILER_LEN];
        m[..4].copy_from_slice(&TRAILER_MAGIC);
        m[4..8].copy_from_slice(&VERSION.to_le_bytes());
        m[8..16].copy_from_slice(&self.len.to_le_bytes());
        m[16..24].copy_from_slice(&self.xxh3.to_le_bytes());
        m
    }

    fn decode(m: &[u8]) -> Option<Trailer> {
        if m.len() != TRAILER_LEN || m[..4] != TRAILER_MAGIC || u32_at(m, 4) != VERSION {
            return None;
        }
        Some(Trailer {
            len: u64_at(m, 8),
            xxh3: u64_at(m, 16),
        })
    }
}

fn u32_at(m: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(m[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(m: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(m[at..at + 8].try_into().expect("8 bytes"))
}

/// What a finished transfer moved.
#[derive(Clone, Debug)]
pub struct Done {
    /// The header the sender sent.
    pub header: Header,
    /// Bytes of content.
    pub bytes: u64,
    /// Data messages.
    pub messages: u64,
    /// xxh3-64 of the content.
    pub xxh3: u64,
    /// From the receiver's arrival (sender) or the header (receiver) to the confirmation.
    pub elapsed: Duration,
}

impl Done {
    /// `1 GiB (1073741824 bytes) in 0.52 s (2065 MB/s), xxh3 0123456789abcdef`.
    pub fn summary(&self) -> String {
        format!(
            "{} in {} ({}), xxh3 {:016x}",
            units::size(self.bytes),
            channels::duration(self.elapsed),
            channels::rate(self.bytes, self.elapsed),
            self.xxh3
        )
    }
}

/// The data message size for a ring: 256 KiB, or less so that a small ring still holds
/// about eight messages.
pub fn chunk_len(capacity: u64, max_message: u64) -> usize {
    CHUNK.min(capacity / 8).min(max_message).max(1) as usize
}

/// Sends `input` as the transfer `header` describes and waits until the receiver confirmed
/// it. `timeout` bounds the wait for a receiver to attach; nothing is sent before one has.
///
/// # Errors
///
/// [`No`] if no receiver came within `timeout`; an error if reading fails, the receiver goes
/// away, or it does not confirm.
pub fn send(
    tx: &mut spsc::Sender,
    input: &mut dyn Read,
    what: &str,
    header: &Header,
    timeout: Option<Duration>,
    progress: &ProgressBar,
) -> anyhow::Result<Done> {
    let name = tx.name().to_owned();
    // Nothing is sent before a receiver is there: the channel keeps unreceived messages for
    // a receiver to come, so a header sent by a sender that then gave up would greet the
    // next receiver. (Polling: there is no call that waits for a peer to attach.)
    let waited = Instant::now();
    while !tx.has_receiver() {
        if let Some(t) = timeout.filter(|t| waited.elapsed() >= *t) {
            return Err(No(format!(
                "timed out after {} waiting for a receiver on channel {name:?}",
                humantime::format_duration(t)
            ))
            .into());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    tx.send(&header.encode())
        .with_context(|| format!("cannot start the transfer on channel {name:?}"))?;
    if !tx.wait_received(None) {
        bail!("the receiver of channel {name:?} went away before the transfer started");
    }
    channels::count_bytes(
        progress,
        header.len,
        format!("sending {}", header.describe()),
    );
    let start = Instant::now();
    let mut buf = vec![0u8; chunk_len(tx.capacity(), tx.max_message_len())];
    let mut hasher = Xxh3::new();
    let mut bytes = 0u64;
    let mut messages = 0u64;
    loop {
        // One read per message, whatever it returns: a slow pipe's lines are passed on at
        // once rather than held back until a whole chunk is there.
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "cannot read {what} after {} (transfer abandoned)",
                        units::short(bytes)
                    )
                })
            }
        };
        tx.send(&buf[..n])
            .with_context(|| format!("the transfer stopped after {}", units::short(bytes)))?;
        hasher.update(&buf[..n]);
        bytes += n as u64;
        messages += 1;
        progress.inc(n as u64);
    }
    let xxh3 = hasher.digest();
    tx.send(&[])
        .and_then(|()| tx.send(&Trailer { len: bytes, xxh3 }.encode()))
        .context("the transfer stopped at its end")?;
    progress.set_message("waiting for the receiver to confirm");
    if !tx.wait_received(None) {
        bail!(
            "the receiver of channel {name:?} did not confirm the transfer: it rejected it or \
             went away (see its error)"
        );
    }
    Ok(Done {
        header: header.clone(),
        bytes,
        messages,
        xxh3,
        elapsed: start.elapsed(),
    })
}

/// Where received content goes.
#[derive(Debug)]
pub enum Sink {
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
    pub fn stored(&self) -> String {
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
pub struct OutFile {
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
    pub fn create(dest: &Path) -> anyhow::Result<OutFile> {
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Header,
    Data,
    Trailer,
}

/// Receives one transfer into `sink`, verifies it, commits the sink, calls `verified`, and
/// only then confirms it to the sender. The wait for the header ends after `timeout`, or
/// when `give_up` (asked every 100 ms) returns an error; Ctrl-C (if caught) stops it.
///
/// # Errors
///
/// [`No`] if no transfer started within `timeout`; an error if the sender went away before
/// the end, the content does not match the trailer, or the sink fails. The sink is not
/// committed then.
pub fn recv(
    rx: &mut spsc::Receiver,
    sink: &mut Sink,
    timeout: Option<Duration>,
    progress: &ProgressBar,
    give_up: &mut dyn FnMut() -> Option<anyhow::Error>,
    verified: &mut dyn FnMut(&Done),
) -> anyhow::Result<Done> {
    let name = rx.name().to_owned();
    let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
    let mut stage = Stage::Header;
    let mut header = None;
    let mut hasher = Xxh3::new();
    let mut bytes = 0u64;
    let mut messages = 0u64;
    let mut buf = Vec::new();
    let mut start = Instant::now();
    loop {
        if channels::interrupted() {
            bail!("interrupted; {}", sink.discarded());
        }
        let slice = match deadline {
            Some(d) if stage == Stage::Header => d.saturating_duration_since(Instant::now()),
            _ => SLICE,
        };
        let msg = match rx.recv_ref_timeout(slice.min(SLICE)) {
            Ok(m) => m,
            Err(RecvError::Timeout { .. }) => {
                if stage == Stage::Header && deadline.is_some_and(|d| Instant::now() >= d) {
                    let t = timeout.unwrap_or_default();
                    return Err(No(format!(
                        "timed out after {} waiting for a sender on channel {name:?}",
                        humantime::format_duration(t)
                    ))
                    .into());
                }
                if stage == Stage::Header {
                    if let Some(e) = give_up() {
                        return Err(e);
                    }
                }
                continue;
            }
            Err(RecvError::Disconnected { .. }) => {
                if stage == Stage::Header {
                    bail!("the sender on channel {name:?} went away before it sent anything");
                }
                let of = header
                    .as_ref()
                    .and_then(|h: &Header| h.len)
                    .map(|l| format!(" of {}", units::short(l)))
                    .unwrap_or_default();
                bail!(
                    "the sender on channel {name:?} went away after {}{of}: the transfer is \
                     incomplete and {}",
                    units::short(bytes),
                    sink.discarded()
                );
            }
            Err(e) => return Err(e.into()),
        };
        match stage {
            Stage::Header => {
                let mut m = vec![0u8; msg.len().min(HEADER_FIXED + MAX_NAME + 1)];
                msg.read_at(0, &mut m);
                drop(msg);
                let h = Header::decode(&m).ok_or_else(|| {
                    anyhow!(
                        "channel {name:?} does not start with a `shmwire send` header (another \
                         program is sending on it, or it holds the rest of a failed transfer: \
                         `shmwire rm {name}` clears it)"
                    )
                })?;
                // A sender stays attached until its header is taken: a header without one
                // was left by a sender that died before any receiver came.
                if !rx.has_sender() {
                    bail!(
                        "channel {name:?} holds a transfer whose sender is gone (`shmwire rm \
                         {name}` clears it)"
                    );
                }
                channels::count_bytes(progress, h.len, format!("receiving {}", h.describe()));
                header = Some(h);
                stage = Stage::Data;
                start = Instant::now();
            }
            Stage::Data if msg.is_empty() => stage = Stage::Trailer,
            Stage::Data => {
                let n = msg.len();
                if buf.len() < n {
                    buf.resize(n, 0);
                }
                msg.read_at(0, &mut buf[..n]);
                drop(msg);
                hasher.update(&buf[..n]);
                sink.write_all(&buf[..n])?;
                bytes += n as u64;
                messages += 1;
                progress.inc(n as u64);
            }
            Stage::Trailer => {
                let mut m = [0u8; TRAILER_LEN];
                let trailer = (msg.len() == TRAILER_LEN && msg.read_at(0, &mut m))
                    .then(|| Trailer::decode(&m))
                    .flatten();
                let xxh3 = hasher.digest();
                let verdict = match trailer {
                    None => Err(anyhow!(
                        "channel {name:?} sent no valid trailer after the data; {}",
                        sink.discarded()
                    )),
                    Some(t) if t.len != bytes => Err(anyhow!(
                        "the sender on channel {name:?} says it sent {} bytes, but {bytes} \
                         arrived; {}",
                        t.len,
                        sink.discarded()
                    )),
                    Some(t) if t.xxh3 != xxh3 => Err(anyhow!(
                        "checksum mismatch on channel {name:?}: the sender's xxh3 is {:016x}, \
                         the {bytes} bytes received hash to {xxh3:016x}; {}",
                        t.xxh3,
                        sink.discarded()
                    )),
                    Some(_) => sink.commit(),
                };
                if let Err(e) = verdict {
                    // Not released: the sender sees us leave without confirming.
                    std::mem::forget(msg);
                    return Err(e);
                }
                let done = Done {
                    header: header.expect("the header came first"),
                    bytes,
                    messages,
                    xxh3,
                    elapsed: start.elapsed(),
                };
                verified(&done);
                // Releasing the trailer confirms the transfer to the sender.
                drop(msg);
                return Ok(done);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_trailers_round_trip_and_reject_garbage() {
        for h in [
            Header {
                len: Some(5 << 30),
                name: "big.iso".into(),
            },
            Header {
                len: None,
                name: String::new(),
            },
        ] {
            assert_eq!(Header::decode(&h.encode()), Some(h));
        }
        let long = Header {
            len: Some(1),
            name: "é".repeat(MAX_NAME),
        };
        let back = Header::decode(&long.encode()).unwrap();
        assert!(back.name.len() <= MAX_NAME && back.name.chars().all(|c| c == 'é'));
        assert_eq!(Header::decode(b"SWFH"), None);
        assert_eq!(Header::decode(&[0u8; 16]), None);
        let mut other_version = long.encode();
        other_version[4] = 2;
        assert_eq!(Header::decode(&other_version), None);

        let t = Trailer { len: 7, xxh3: 42 };
        assert_eq!(Trailer::decode(&t.encode()), Some(t));
        assert_eq!(Trailer::decode(&t.encode()[..23]), None);
        assert_eq!(Trailer::decode(&[0u8; TRAILER_LEN]), None);
    }

    #[test]
    fn chunks_are_large_but_leave_room_in_small_rings() {
        assert_eq!(chunk_len(4 << 20, (2 << 20) - 4160), 256 << 10);
        assert_eq!(chunk_len(64 << 10, (32 << 10) - 4160), 8 << 10);
        assert_eq!(chunk_len(16 << 10, 4032), 2048);
    }

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
