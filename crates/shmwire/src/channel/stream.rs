//! Verified, acknowledged byte streams (a file, stdin, a recording) through an SPSC channel:
//! the protocol `shmwire send` / `shmwire recv` speak, for any program.
//!
//! [`spsc::Sender::send_stream`] reads an [`io::Read`] to its end and returns once the
//! receiver has verified and stored everything; [`spsc::Receiver::recv_stream`] writes the
//! stream to an [`io::Write`], checks its length and xxh3-64 checksum, lets the caller make
//! the result final ([`StreamObserver::verified`]: rename a temporary file into place, say),
//! and only then confirms it to the sender.
//!
//! ```
//! use shmwire::channel::stream::StreamHeader;
//! use shmwire::channel::{spsc, ChannelOptions};
//! # let name = format!("doc-stream-{}", std::process::id());
//! let opts = ChannelOptions::new().capacity(64 * 1024);
//! let mut tx = spsc::Sender::open(&name, &opts)?;
//! let mut rx = spsc::Receiver::open(&name, &opts)?;
//! let receiver = std::thread::spawn(move || {
//!     let mut out = Vec::new();
//!     let summary = rx.recv_stream(&mut out, &mut ()).unwrap();
//!     (out, summary)
//! });
//! let header = StreamHeader { len: Some(11), name: "greeting.txt".into() };
//! let sent = tx.send_stream(&b"hello world"[..], &header, &mut ())?;
//! let (out, received) = receiver.join().unwrap();
//! assert_eq!(out, b"hello world");
//! assert_eq!((sent.bytes, sent.xxh3), (received.bytes, received.xxh3));
//! assert_eq!(received.header.name, "greeting.txt");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Wire format
//!
//! One stream is a sequence of SPSC messages (integers little-endian; also in
//! `docs/layout.md`, "Streams"):
//!
//! | message | bytes |
//! |---|---|
//! | header  | `"SWFH"`, u32 version (1), u64 length (`u64::MAX`: unknown), then the name (UTF-8, at most 1024 bytes; may be empty) |
//! | data    | the next 1 or more bytes of the content, in order |
//! | end     | an empty message: no more data |
//! | trailer | `"SWFT"`, u32 version (1), u64 bytes sent, u64 xxh3-64 of all of them |
//!
//! The header's length is a hint (a file may change while it is read); the trailer's count
//! and checksum are what the receiver verifies.
//!
//! **Acknowledgement.** The sender sends nothing before a receiver is attached, and waits
//! until the header is taken. The receiver holds the trailer in the ring (its
//! [`spsc::RecvGuard`]) until the content is verified and [`StreamObserver::verified`]
//! succeeded, then releases it; the sender waits until the trailer is consumed
//! ([`spsc::Sender::wait_received`]). A receiver that refuses the stream
//! ([`spsc::RecvGuard::reject`]) leaves without releasing the trailer, and the sender
//! fails with [`StreamSendError::NotConfirmed`].
//!
//! **Trust.** Nothing from the channel is trusted: header and trailer are parsed with
//! length checks, the content is checked against the trailer's count and checksum, and a
//! sender that disappears before the trailer (killed, or it failed) ends the stream with
//! [`StreamRecvError::SenderGone`].

use std::io::{self, Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use xxhash_rust::xxh3::Xxh3;

use super::spsc;
use super::{RecvTimeoutError, SendError, SendTimeoutError};

/// Largest data message: 256 KiB.
pub const CHUNK: u64 = 256 << 10;

const HEADER_MAGIC: [u8; 4] = *b"SWFH";
const TRAILER_MAGIC: [u8; 4] = *b"SWFT";
const VERSION: u32 = 1;
const UNKNOWN_LEN: u64 = u64::MAX;
/// Longest name in a header, in bytes.
pub const MAX_NAME: usize = 1024;
const HEADER_FIXED: usize = 16;
/// Bytes of an encoded trailer.
pub const TRAILER_LEN: usize = 24;
/// How often a waiting stream call asks its observer whether to go on.
const TICK: Duration = Duration::from_millis(100);

/// The first message of a stream: what is coming.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamHeader {
    /// The content's length, if known in advance (a hint for progress bars).
    pub len: Option<u64>,
    /// A name for the content (a file name without its directory; may be empty). Cut to
    /// [`MAX_NAME`] bytes when sent.
    pub name: String,
}

impl StreamHeader {
    /// The header message.
    pub fn encode(&self) -> Vec<u8> {
        let mut name = self.name.as_str();
        if name.len() > MAX_NAME {
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

    /// Parses a header message; `None` if `m` is not one (of this version). A name that is
    /// not UTF-8 is decoded lossily.
    pub fn decode(m: &[u8]) -> Option<StreamHeader> {
        if m.len() < HEADER_FIXED || m.len() > HEADER_FIXED + MAX_NAME {
            return None;
        }
        if m[..4] != HEADER_MAGIC || u32_at(m, 4) != VERSION {
            return None;
        }
        let len = u64_at(m, 8);
        Some(StreamHeader {
            len: (len != UNKNOWN_LEN).then_some(len),
            name: String::from_utf8_lossy(&m[HEADER_FIXED..]).into_owned(),
        })
    }
}

/// The last message of a stream: what was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamTrailer {
    /// Bytes of content sent.
    pub len: u64,
    /// xxh3-64 of the content.
    pub xxh3: u64,
}

impl StreamTrailer {
    /// The trailer message.
    pub fn encode(&self) -> [u8; TRAILER_LEN] {
        let mut m = [0u8; TRAILER_LEN];
        m[..4].copy_from_slice(&TRAILER_MAGIC);
        m[4..8].copy_from_slice(&VERSION.to_le_bytes());
        m[8..16].copy_from_slice(&self.len.to_le_bytes());
        m[16..24].copy_from_slice(&self.xxh3.to_le_bytes());
        m
    }

    /// Parses a trailer message; `None` if `m` is not one (of this version).
    pub fn decode(m: &[u8]) -> Option<StreamTrailer> {
        if m.len() != TRAILER_LEN || m[..4] != TRAILER_MAGIC || u32_at(m, 4) != VERSION {
            return None;
        }
        Some(StreamTrailer {
            len: u64_at(m, 8),
            xxh3: u64_at(m, 16),
        })
    }
}

fn u32_at(m: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&m[at..at + 4]);
    u32::from_le_bytes(b)
}

fn u64_at(m: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&m[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The data message size for a ring: [`CHUNK`], or less so that a small ring still holds
/// about eight messages.
pub fn chunk_len(capacity: u64, message_size: u64) -> usize {
    CHUNK.min(capacity / 8).min(message_size).max(1) as usize
}

/// What a finished stream moved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSummary {
    /// The header the sender sent.
    pub header: StreamHeader,
    /// Bytes of content.
    pub bytes: u64,
    /// Data messages.
    pub messages: u64,
    /// xxh3-64 of the content.
    pub xxh3: u64,
    /// Sender: from the header's receipt to the confirmation. Receiver: from the header to
    /// the verification.
    pub elapsed: Duration,
}

/// What a stream call tells its caller while it runs, and asks of it. Every method has a
/// default that does nothing; `()` is the observer that wants nothing.
pub trait StreamObserver {
    /// Called about every 100 ms while the call waits (for a peer, a header, data or the
    /// confirmation): an error stops the call with [`StreamSendError::Aborted`] /
    /// [`StreamRecvError::Aborted`] (Ctrl-C, a deadline of the caller's, a peer of the
    /// caller's that died).
    fn tick(&mut self) -> Result<(), String> {
        Ok(())
    }

    /// The header was sent (sender) or received (receiver).
    fn started(&mut self, header: &StreamHeader) {
        let _ = header;
    }

    /// `n` more bytes of content went through.
    fn progress(&mut self, n: u64) {
        let _ = n;
    }

    /// Sender: everything is sent; now waiting for the receiver's confirmation.
    fn confirming(&mut self) {}

    /// Receiver: the content matched the trailer. Make it final here (flush, rename a
    /// temporary file into place); an error rejects the stream, so that the sender is not
    /// told it arrived ([`StreamRecvError::Rejected`]).
    ///
    /// # Errors
    ///
    /// Whatever made the content impossible to keep.
    fn verified(&mut self, summary: &StreamSummary) -> io::Result<()> {
        let _ = summary;
        Ok(())
    }
}

impl StreamObserver for () {}

/// Why [`spsc::Sender::send_stream`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamSendError {
    /// No receiver attached within the timeout.
    #[error("timed out waiting for a receiver")]
    Timeout,
    /// The observer's [`tick`](StreamObserver::tick) said to stop.
    #[error("stopped: {reason}")]
    Aborted {
        /// The observer's reason.
        reason: String,
    },
    /// Reading the input failed after `bytes` bytes (the stream is abandoned unfinished).
    #[error("cannot read the input after {bytes} bytes")]
    Read {
        /// Bytes sent before.
        bytes: u64,
        /// The read error.
        #[source]
        source: io::Error,
    },
    /// The channel failed (the receiver left, corrupt state) after `bytes` bytes.
    #[error("the stream stopped after {bytes} bytes")]
    Channel {
        /// Bytes sent before.
        bytes: u64,
        /// The channel's error.
        #[source]
        source: SendError,
    },
    /// The receiver left, or rejected the stream, without confirming it.
    #[error(
        "the receiver of channel {name:?} did not confirm the stream: it rejected it or went away"
    )]
    NotConfirmed {
        /// Channel name.
        name: Arc<str>,
    },
}

/// Why [`spsc::Receiver::recv_stream`] failed. The content written so far is incomplete
/// or unverified: the caller discards it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamRecvError {
    /// No stream started within the timeout.
    #[error("timed out waiting for a stream")]
    Timeout,
    /// The observer's [`tick`](StreamObserver::tick) said to stop.
    #[error("stopped: {reason}")]
    Aborted {
        /// The observer's reason.
        reason: String,
    },
    /// The first message is not a stream header (another protocol, or the rest of a
    /// failed stream).
    #[error("channel {name:?} does not start with a stream header")]
    NotAStream {
        /// Channel name.
        name: Arc<str>,
    },
    /// The channel holds a header whose sender is gone (it died before a receiver came).
    #[error("channel {name:?} holds a stream whose sender is gone")]
    Orphaned {
        /// Channel name.
        name: Arc<str>,
    },
    /// The sender went away (or the channel failed) before the trailer: `bytes` arrived.
    #[error("the sender on channel {name:?} went away after {bytes} bytes, before the end of the stream")]
    SenderGone {
        /// Channel name.
        name: Arc<str>,
        /// Bytes received.
        bytes: u64,
        /// The length the header announced, if any.
        announced: Option<u64>,
    },
    /// The message after the end marker is not a trailer.
    #[error("channel {name:?} sent no valid trailer after the data")]
    BadTrailer {
        /// Channel name.
        name: Arc<str>,
    },
    /// The trailer's count is not what arrived.
    #[error("the sender on channel {name:?} says it sent {sent} bytes, but {received} arrived")]
    LengthMismatch {
        /// Channel name.
        name: Arc<str>,
        /// The trailer's count.
        sent: u64,
        /// Bytes received.
        received: u64,
    },
    /// The checksum of what arrived is not the trailer's.
    #[error("checksum mismatch on channel {name:?}: the sender's xxh3 is {sent:016x}, the {bytes} bytes received hash to {received:016x}")]
    ChecksumMismatch {
        /// Channel name.
        name: Arc<str>,
        /// Bytes received.
        bytes: u64,
        /// The trailer's checksum.
        sent: u64,
        /// The checksum of what arrived.
        received: u64,
    },
    /// Writing the output failed after `bytes` bytes.
    #[error("cannot write the output after {bytes} bytes")]
    Write {
        /// Bytes written before.
        bytes: u64,
        /// The write error.
        #[source]
        source: io::Error,
    },
    /// [`StreamObserver::verified`] failed: the stream was rejected.
    #[error("the verified stream could not be kept")]
    Rejected {
        /// The observer's error.
        #[source]
        source: io::Error,
    },
    /// The channel's state is corrupt.
    #[error(transparent)]
    Channel(RecvTimeoutError),
}

impl spsc::Sender {
    /// Sends `input` to its end as one stream described by `header`, and returns once the
    /// receiver has confirmed it. Waits as long as it takes for a receiver to attach
    /// (nothing is sent before one has).
    ///
    /// # Errors
    ///
    /// See [`StreamSendError`] ([`Timeout`](StreamSendError::Timeout) only from
    /// [`send_stream_timeout`](Self::send_stream_timeout)). After an error the channel may
    /// hold the start of the stream: remove it, or let the receiver fail on it.
    pub fn send_stream(
        &mut self,
        input: impl Read,
        header: &StreamHeader,
        observer: &mut dyn StreamObserver,
    ) -> Result<StreamSummary, StreamSendError> {
        self.send_stream_timeout(input, header, Duration::MAX, observer)
    }

    /// [`send_stream`](Self::send_stream), waiting at most `timeout` for a receiver to
    /// attach.
    ///
    /// # Errors
    ///
    /// As [`send_stream`](Self::send_stream).
    pub fn send_stream_timeout(
        &mut self,
        mut input: impl Read,
        header: &StreamHeader,
        timeout: Duration,
        observer: &mut dyn StreamObserver,
    ) -> Result<StreamSummary, StreamSendError> {
        let deadline = Instant::now().checked_add(timeout);
        // Nothing is sent before a receiver is there: the channel keeps unreceived messages
        // for a receiver to come, so a header sent by a sender that then gave up would greet
        // the next receiver.
        loop {
            let slice = slice_until(deadline).ok_or(StreamSendError::Timeout)?;
            match self.wait_for_receiver(slice) {
                Ok(()) => break,
                Err(SendTimeoutError::Timeout) => tick(observer, StreamSendError::aborted)?,
                Err(e) => return Err(channel_failed(0, e)),
            }
        }
        let channel = |bytes| move |e: SendTimeoutError| channel_failed(bytes, e);
        self.send(&header.encode())
            .map_err(|e| channel_failed(0, e.into()))?;
        self.confirm(observer)?;
        observer.started(header);
        let start = Instant::now();
        let mut buf = vec![0u8; chunk_len(self.capacity(), self.message_size())];
        let mut hasher = Xxh3::new();
        let (mut bytes, mut messages) = (0u64, 0u64);
        loop {
            // One read per message, whatever it returns: a slow pipe's lines are passed on
            // at once rather than held back until a whole chunk is there.
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(StreamSendError::Read { bytes, source }),
            };
            self.send_ticking(&buf[..n], observer, channel(bytes))?;
            hasher.update(&buf[..n]);
            bytes += n as u64;
            messages += 1;
            observer.progress(n as u64);
        }
        let xxh3 = hasher.digest();
        self.send_ticking(&[], observer, channel(bytes))?;
        let trailer = StreamTrailer { len: bytes, xxh3 }.encode();
        self.send_ticking(&trailer, observer, channel(bytes))?;
        observer.confirming();
        self.confirm(observer)?;
        Ok(StreamSummary {
            header: header.clone(),
            bytes,
            messages,
            xxh3,
            elapsed: start.elapsed(),
        })
    }

    /// Sends `msg`, asking the observer between waits of one [`TICK`].
    fn send_ticking(
        &mut self,
        msg: &[u8],
        observer: &mut dyn StreamObserver,
        failed: impl Fn(SendTimeoutError) -> StreamSendError,
    ) -> Result<(), StreamSendError> {
        loop {
            match self.send_timeout(msg, TICK) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout) => tick(observer, StreamSendError::aborted)?,
                Err(e) => return Err(failed(e)),
            }
        }
    }

    /// Waits until everything sent was taken (the receiver's confirmation).
    fn confirm(&mut self, observer: &mut dyn StreamObserver) -> Result<(), StreamSendError> {
        loop {
            match self.wait_received_timeout(TICK) {
                Ok(()) => return Ok(()),
                Err(SendTimeoutError::Timeout) => tick(observer, StreamSendError::aborted)?,
                Err(_) => {
                    return Err(StreamSendError::NotConfirmed {
                        name: self.name().into(),
                    })
                }
            }
        }
    }
}

impl StreamSendError {
    fn aborted(reason: String) -> Self {
        StreamSendError::Aborted { reason }
    }
}

impl StreamRecvError {
    fn aborted(reason: String) -> Self {
        StreamRecvError::Aborted { reason }
    }
}

fn channel_failed(bytes: u64, e: SendTimeoutError) -> StreamSendError {
    let source = match e {
        SendTimeoutError::Timeout => unreachable!("timeouts are ticks, handled by the caller"),
        SendTimeoutError::Disconnected { name } => SendError::Disconnected { name },
        SendTimeoutError::TooLarge { name, len, max } => SendError::TooLarge { name, len, max },
        SendTimeoutError::Corrupt { name, reason } => SendError::Corrupt { name, reason },
    };
    StreamSendError::Channel { bytes, source }
}

/// The observer's verdict at a tick, as the error `aborted` makes.
fn tick<E>(observer: &mut dyn StreamObserver, aborted: fn(String) -> E) -> Result<(), E> {
    observer.tick().map_err(aborted)
}

/// The next wait: one [`TICK`], or less to meet `deadline`; `None` once it passed.
fn slice_until(deadline: Option<Instant>) -> Option<Duration> {
    match deadline {
        None => Some(TICK),
        Some(d) => {
            let left = d.checked_duration_since(Instant::now())?;
            (!left.is_zero()).then(|| left.min(TICK))
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Header,
    Data,
    Trailer,
}

impl spsc::Receiver {
    /// Receives one stream into `output`, verifies it, calls
    /// [`StreamObserver::verified`], and only then confirms it to the sender. Waits as long
    /// as it takes for the stream to start.
    ///
    /// # Errors
    ///
    /// See [`StreamRecvError`] ([`Timeout`](StreamRecvError::Timeout) only from
    /// [`recv_stream_timeout`](Self::recv_stream_timeout)). The output then holds an
    /// incomplete or unverified stream, and the sender is not confirmed.
    pub fn recv_stream(
        &mut self,
        output: impl Write,
        observer: &mut dyn StreamObserver,
    ) -> Result<StreamSummary, StreamRecvError> {
        self.recv_stream_timeout(output, Duration::MAX, observer)
    }

    /// [`recv_stream`](Self::recv_stream), waiting at most `timeout` for the stream's
    /// header.
    ///
    /// # Errors
    ///
    /// As [`recv_stream`](Self::recv_stream).
    pub fn recv_stream_timeout(
        &mut self,
        mut output: impl Write,
        timeout: Duration,
        observer: &mut dyn StreamObserver,
    ) -> Result<StreamSummary, StreamRecvError> {
        let name: Arc<str> = self.name().into();
        let deadline = Instant::now().checked_add(timeout);
        let mut stage = Stage::Header;
        let mut header: Option<StreamHeader> = None;
        let mut hasher = Xxh3::new();
        let (mut bytes, mut messages) = (0u64, 0u64);
        let mut buf = Vec::new();
        let mut start = Instant::now();
        loop {
            let slice = match stage {
                Stage::Header => slice_until(deadline).ok_or(StreamRecvError::Timeout)?,
                _ => TICK,
            };
            let msg = match self.recv_ref_timeout(slice) {
                Ok(m) => m,
                Err(RecvTimeoutError::Timeout) => {
                    tick(observer, StreamRecvError::aborted)?;
                    continue;
                }
                Err(RecvTimeoutError::Disconnected { .. }) => {
                    return Err(StreamRecvError::SenderGone {
                        name,
                        bytes,
                        announced: header.and_then(|h| h.len),
                    })
                }
                Err(e) => return Err(StreamRecvError::Channel(e)),
            };
            match stage {
                Stage::Header => {
                    let mut m = vec![0u8; msg.len().min(HEADER_FIXED + MAX_NAME + 1)];
                    msg.read_at(0, &mut m);
                    // A sender stays attached until its header is taken (released): one not
                    // attached while we still hold the header died before any receiver came.
                    // (Asked before the release: after it, a sender may run on, fail and
                    // leave at once, which is `SenderGone`, not an orphan.)
                    let orphaned = !msg.has_sender();
                    drop(msg);
                    let h = StreamHeader::decode(&m)
                        .ok_or_else(|| StreamRecvError::NotAStream { name: name.clone() })?;
                    if orphaned {
                        return Err(StreamRecvError::Orphaned { name });
                    }
                    observer.started(&h);
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
                    output
                        .write_all(&buf[..n])
                        .map_err(|source| StreamRecvError::Write { bytes, source })?;
                    bytes += n as u64;
                    messages += 1;
                    observer.progress(n as u64);
                }
                Stage::Trailer => {
                    let mut m = [0u8; TRAILER_LEN];
                    let trailer = (msg.len() == TRAILER_LEN && msg.read_at(0, &mut m))
                        .then(|| StreamTrailer::decode(&m))
                        .flatten();
                    let xxh3 = hasher.digest();
                    let summary = StreamSummary {
                        header: header.take().expect("the header came first"),
                        bytes,
                        messages,
                        xxh3,
                        elapsed: start.elapsed(),
                    };
                    let verdict = match trailer {
                        None => Err(StreamRecvError::BadTrailer { name }),
                        Some(t) if t.len != bytes => Err(StreamRecvError::LengthMismatch {
                            name,
                            sent: t.len,
                            received: bytes,
                        }),
                        Some(t) if t.xxh3 != xxh3 => Err(StreamRecvError::ChecksumMismatch {
                            name,
                            bytes,
                            sent: t.xxh3,
                            received: xxh3,
                        }),
                        Some(_) => output
                            .flush()
                            .map_err(|source| StreamRecvError::Write { bytes, source })
                            .and_then(|()| {
                                observer
                                    .verified(&summary)
                                    .map_err(|source| StreamRecvError::Rejected { source })
                            }),
                    };
                    if let Err(e) = verdict {
                        // Not released: the sender sees us leave without confirming.
                        msg.reject();
                        return Err(e);
                    }
                    // Releasing the trailer confirms the stream to the sender.
                    drop(msg);
                    return Ok(summary);
                }
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn headers_and_trailers_round_trip_and_reject_garbage() {
        for h in [
            StreamHeader {
                len: Some(5 << 30),
                name: "big.iso".into(),
            },
            StreamHeader {
                len: None,
                name: String::new(),
            },
        ] {
            assert_eq!(StreamHeader::decode(&h.encode()), Some(h));
        }
        let long = StreamHeader {
            len: Some(1),
            name: "é".repeat(MAX_NAME),
        };
        let back = StreamHeader::decode(&long.encode()).unwrap();
        assert!(back.name.len() <= MAX_NAME && back.name.chars().all(|c| c == 'é'));
        assert_eq!(StreamHeader::decode(b"SWFH"), None);
        assert_eq!(StreamHeader::decode(&[0u8; 16]), None);
        let mut other_version = long.encode();
        other_version[4] = 2;
        assert_eq!(StreamHeader::decode(&other_version), None);

        let t = StreamTrailer { len: 7, xxh3: 42 };
        assert_eq!(StreamTrailer::decode(&t.encode()), Some(t));
        assert_eq!(StreamTrailer::decode(&t.encode()[..23]), None);
        assert_eq!(StreamTrailer::decode(&[0u8; TRAILER_LEN]), None);
    }

    #[test]
    fn chunks_are_large_but_leave_room_in_small_rings() {
        assert_eq!(chunk_len(4 << 20, (2 << 20) - 4160), 256 << 10);
        assert_eq!(chunk_len(64 << 10, (32 << 10) - 4160), 8 << 10);
        assert_eq!(chunk_len(16 << 10, 4032), 2048);
    }
}
