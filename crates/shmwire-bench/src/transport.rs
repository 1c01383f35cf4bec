//! The contract every contender implements: set up a duplex link between a driver process and
//! an echo process, then send and receive tagged messages.

use std::io::{self, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde::{Deserialize, Serialize};

/// How a contender waits for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Busy-polling: the lowest latency, a core each.
    Spin,
    /// Sleeping in the kernel until woken.
    Block,
}

impl Mode {
    /// `"spin"` or `"block"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Spin => "spin",
            Mode::Block => "block",
        }
    }

    /// How the report heads the mode's tables.
    pub fn title(self) -> &'static str {
        match self {
            Mode::Spin => "busy-poll",
            Mode::Block => "blocking",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<Mode> {
        match s {
            "spin" => Some(Mode::Spin),
            "block" => Some(Mode::Block),
            _ => None,
        }
    }
}

/// What a contender is, for grouping and ratios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    /// A floor: the least the machine can do (nothing of any library on top).
    Floor,
    /// shmwire itself.
    Ours,
    /// An operating-system IPC mechanism (socket, pipe).
    Kernel,
    /// Another crate users might pick instead.
    Peer,
}

/// A contender: one way of moving messages between two processes.
///
/// The runner creates a driver endpoint in its own process and an echo endpoint in a child
/// process (the same executable, re-run with an environment variable; see
/// [`crate::echo_main`]). The echo side answers every message with a message of the same
/// length and tag, except for the runner's commands.
pub trait Transport: Send + Sync {
    /// A stable identifier: `shmwire-spsc`, `uds`, … (used by `--only`, the JSON and the
    /// echo process).
    fn id(&self) -> &'static str;
    /// What a person reads in the table: `shmwire spsc (copy)`.
    fn label(&self) -> &'static str;
    /// Floor, ours, kernel or peer.
    fn class(&self) -> Class;
    /// The wait modes this contender offers.
    fn modes(&self) -> &'static [Mode];
    /// True if a message is lent in place and only its tag is written and read (zero-copy):
    /// its latency is compared with the floor's smallest message, not with a copy of the
    /// same size.
    fn zero_copy(&self) -> bool {
        false
    }
    /// False if the contender cannot stream (send many messages before the first is
    /// received); the runner then only measures its ping-pong latency.
    fn streams(&self) -> bool {
        true
    }
    /// Why this contender cannot run on this machine, if it cannot.
    fn unavailable(&self) -> Option<String> {
        None
    }
    /// The driver's side: create what the link needs, start the echo process with
    /// [`Setup::spawn`] or [`Setup::spawn_piped`] (exactly once), connect, return the
    /// endpoint. Must not wait for the echo process longer than it takes to start.
    fn driver(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>>;
    /// The echo process's side of the same link.
    fn echo(&self, setup: &mut Setup) -> anyhow::Result<Box<dyn Endpoint>>;
}

/// One end of a link. Messages are at least 8 bytes long (up to [`Setup::max`]); their
/// first 8 bytes carry a tag (little-endian `u64`).
pub trait Endpoint {
    /// Sends a message of `len` bytes tagged `tag`. A copying contender copies `len`
    /// prepared bytes (see [`Payload`]); a zero-copy one writes only the tag.
    fn send(&mut self, len: usize, tag: u64) -> io::Result<()>;
    /// Waits for the next message; returns its length and tag.
    fn recv(&mut self) -> io::Result<(usize, u64)>;
}

/// What a transport gets to set up one link.
#[derive(Debug)]
pub struct Setup {
    /// A name unique to this link (this process's pid and a counter), to derive object
    /// names, socket paths, service names from.
    pub name: String,
    /// The wait mode to use.
    pub mode: Mode,
    /// The largest message that will be sent, in bytes.
    pub max: usize,
    pub(crate) child_cmd: Option<Command>,
    pub(crate) child: Option<Child>,
}

impl Setup {
    /// Starts the echo process (driver side only), stdin and stdout not connected.
    ///
    /// # Errors
    ///
    /// The process cannot be started, or this is not the driver, or it was started already.
    pub fn spawn(&mut self) -> io::Result<()> {
        self.start(false).map(drop)
    }

    /// Starts the echo process with its stdin and stdout connected to pipes, and returns
    /// this side's ends: write to the child's stdin, read from its stdout.
    ///
    /// # Errors
    ///
    /// As [`spawn`](Self::spawn).
    pub fn spawn_piped(&mut self) -> io::Result<(ChildStdin, ChildStdout)> {
        let child = self.start(true)?;
        let pipes = child.stdin.take().zip(child.stdout.take());
        pipes.ok_or_else(|| io::Error::other("the echo process has no pipes"))
    }

    fn start(&mut self, piped: bool) -> io::Result<&mut Child> {
        let mut cmd = self.child_cmd.take().ok_or_else(|| {
            io::Error::other("the echo process was started already (or this is the echo side)")
        })?;
        let io = |p: bool| if p { Stdio::piped() } else { Stdio::null() };
        cmd.stdin(io(piped)).stdout(io(piped));
        Ok(self.child.insert(cmd.spawn()?))
    }
}

/// Prepared message bytes for copying contenders: a buffer of `max` bytes of a fixed
/// pattern whose first 8 bytes are rewritten with each message's tag.
#[derive(Debug)]
pub struct Payload {
    buf: Vec<u8>,
    header: usize,
}

impl Payload {
    /// A payload of up to `max` bytes (at least 8), after `header` zero bytes of room for a
    /// frame header (see [`Payload::framed`]).
    pub fn new(max: usize, header: usize) -> Payload {
        let mut buf = vec![0u8; header + max.max(8)];
        for (i, b) in buf[header..].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        Payload { buf, header }
    }

    /// The first `len` message bytes (at least 8), tagged with `tag`.
    pub fn message(&mut self, len: usize, tag: u64) -> &[u8] {
        let h = self.header;
        self.buf[h..h + 8].copy_from_slice(&tag.to_le_bytes());
        &self.buf[h..h + len.max(8)]
    }

    /// The message with its frame header in front: the `header` bytes given to
    /// [`Payload::new`], filled by `fill`, then the message.
    pub fn framed(&mut self, len: usize, tag: u64, fill: impl FnOnce(&mut [u8])) -> &[u8] {
        let h = self.header;
        self.message(len, tag);
        fill(&mut self.buf[..h]);
        &self.buf[..h + len.max(8)]
    }
}

/// The tag in the first 8 bytes of a received message (0 if it is shorter).
pub fn tag_of(msg: &[u8]) -> u64 {
    msg.get(..8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// A length-prefixed stream link (sockets, pipes): each message is an 8-byte little-endian
/// length, then the message; written with one `write_all`, read with two `read_exact`s.
#[derive(Debug)]
pub struct Framed<R, W> {
    reader: R,
    writer: W,
    payload: Payload,
    buf: Vec<u8>,
    max: usize,
}

impl<R: Read, W: Write> Framed<R, W> {
    /// A framed link over a reader and a writer, for messages of up to `max` bytes.
    pub fn new(reader: R, writer: W, max: usize) -> Self {
        Framed {
            reader,
            writer,
            payload: Payload::new(max, 8),
            buf: vec![0u8; max.max(8)],
            max,
        }
    }
}

impl<R: Read, W: Write> Endpoint for Framed<R, W> {
    fn send(&mut self, len: usize, tag: u64) -> io::Result<()> {
        let frame = self.payload.framed(len, tag, |h| {
            h.copy_from_slice(&(len as u64).to_le_bytes());
        });
        self.writer.write_all(frame)?;
        self.writer.flush()
    }

    fn recv(&mut self) -> io::Result<(usize, u64)> {
        let mut h = [0u8; 8];
        self.reader.read_exact(&mut h)?;
        let len = u64::from_le_bytes(h);
        if len > self.max.max(8) as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a frame of {len} bytes (the largest is {})", self.max),
            ));
        }
        let len = len as usize;
        self.reader.read_exact(&mut self.buf[..len])?;
        Ok((len, tag_of(&self.buf[..len])))
    }
}
