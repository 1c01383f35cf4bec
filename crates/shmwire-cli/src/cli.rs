//! The command line, as clap sees it.
//!
//! A flag that several commands take is declared once and flattened into each command's
//! arguments: `NAME [--global]` ([`Target`], whose `--global` is [`Namespace`], also taken
//! by `rm`), `--timeout` ([`TimeoutArg`]), `--manual` ([`SyncEvent`]) and the `--capacity`
//! of `send`/`recv` ([`TransferRing`]).

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// Named shared memory between processes: segments, and channels that carry files and
/// messages.
#[derive(Debug, Parser)]
#[command(
    name = "shmwire",
    version,
    about,
    long_about = "Named shared memory between processes: create, inspect, read and write \
segments, and pass files and messages through channels, from scripts or a terminal.\n\n\
A segment is a named block of memory that several processes map at once. shmwire segments \
start with a small header (exact size, kind, creator, creation time); --raw segments are plain \
bytes, for programs that do not speak shmwire (Python's multiprocessing.shared_memory, a C \
program using shm_open or CreateFileMapping).\n\n\
A channel is a segment with a ring of messages in it: `send`/`recv` move a file of any size \
between two processes, `pub`/`sub` pass lines from one process to many. Either end may start \
first; the channel disappears when both ends are done.",
    after_help = "Sizes and offsets take units: 4096, 64KiB, 1.5MiB, 2GiB (or KB/MB/GB for powers of 1000).\n\
Exit status: 0 success; 1 a plain \"no\" (not found, timed out); 2 an error; \
`lock` passes on its command's status.\n\n\
Try `shmwire demo` to watch two processes exchange a message and a file.",
    max_term_width = 100
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Watch a writer and a reader process exchange a message (through a segment) and a file
    /// (through a channel).
    Demo(DemoArgs),
    /// Create a segment (held until Ctrl-C, or left in place with --persist).
    Create(CreateArgs),
    /// Write text, a file or stdin into a segment.
    Write(WriteArgs),
    /// Read bytes from a segment to stdout or a file.
    Read(ReadArgs),
    /// Show a segment's header: size, kind, creator, and whether the creator is alive.
    Info(InfoArgs),
    /// List the shared-memory segments on this machine.
    Ls(LsArgs),
    /// Remove segments by name.
    Rm(RmArgs),
    /// Remove segments that nobody uses any more: their creator and every user are dead.
    ///
    /// A shmwire segment is live, and never removed, while its creator runs (pid + start
    /// time, so a reused pid does not count), while an endpoint of a channel in it runs, or
    /// while any process maps it or holds it open (Linux: /proc/*/maps and /proc/*/fd); one
    /// still being created gets 10 s. Raw segments and other programs' objects are never
    /// touched. Abandoned segments meant to stay are kept unless --all: ones created with
    /// `create --persist`, sync segments of lock/signal/wait, and channels whose endpoints
    /// left cleanly with messages queued. Processes gc cannot inspect (other users', or more
    /// privileged ones, when not run as root) might use any segment: those segments are kept
    /// as "possibly stale" unless --ignore-unseen. Prints one line per segment removed or
    /// kept, then a summary; exit status 0 (also with nothing to do), 2 if a removal failed.
    /// `shmwire ls` shows each segment's verdict. Linux only in effect: Windows removes a
    /// segment with its last handle anyway, and macOS cannot list segments.
    Gc(GcArgs),
    /// Send a file (or stdin) through channel NAME to one `shmwire recv NAME`.
    ///
    /// Either end may start first. The file goes in 256 KiB messages, followed by its xxh3-64
    /// checksum; `send` exits 0 only once the receiver has verified and stored all of it.
    /// Exit status 1 if --timeout passes with no receiver; 2 if the receiver goes away or
    /// rejects the file.
    Send(SendArgs),
    /// Receive a file from `shmwire send NAME`, checksum-verified, to stdout or --out.
    ///
    /// Either end may start first. The byte count and xxh3-64 checksum are verified before
    /// the sender is told that the file arrived. --out appears only complete and verified;
    /// if the sender dies mid-transfer, nothing is left and the status is 2. Exit status 1 if
    /// --timeout passes before a sender starts.
    Recv(RecvArgs),
    /// Publish each line of stdin as a message on broadcast channel NAME.
    ///
    /// The publisher never waits: the channel keeps the last --capacity messages, and a
    /// subscriber that falls further behind misses some (and is told how many). Subscribers
    /// that come later start with the newest message; --subscribers N waits for N of them
    /// before the first line. At the end of stdin the publisher leaves, and its subscribers
    /// exit once they have printed everything.
    Pub(PubArgs),
    /// Print the messages published on broadcast channel NAME, one per line.
    ///
    /// Starts with the newest message already published (--from-next: with the next one).
    /// Exits 0 when the publisher is gone and everything was printed, after --count N
    /// messages, or on Ctrl-C; a note on stderr says how many messages were missed if this
    /// subscriber falls a whole ring behind.
    Sub(SubArgs),
    /// Dump any range of any file through a mapped window, in bounded memory.
    Map(MapArgs),
    /// Run a command with NAME's robust mutex locked (recovered if its last owner died).
    Lock(LockArgs),
    /// Set NAME's event, releasing a `shmwire wait NAME` (or the next one to come).
    Signal(SignalArgs),
    /// Wait until NAME's event is set (exit status 1 on timeout).
    Wait(WaitArgs),
    /// Measure latency and throughput: shmwire next to the machine's floors, a Unix socket
    /// and a pipe.
    ///
    /// Two processes pinned to two cores (--cores, default 0,1) ping-pong messages of 8 B to
    /// 4 MiB, busy-polling and blocking, then stream. Every contender runs once per round and
    /// the rounds are interleaved, so that a noisy machine hits all alike; the table gives
    /// the median of the rounds with its range, the tails of all samples, ratios to the
    /// floors measured in the same run, and the host's steal time. --quick takes under a
    /// minute; the full run a few minutes. The peer libraries (iceoryx2, shared_memory +
    /// raw_sync, ipc-channel) are in the bench crate:
    /// `cargo run --release -p shmwire-bench --features peers -- --quick`.
    Bench(shmwire_bench::BenchArgs),
    /// (internal) Hold a segment open until it is removed: the Windows half of --persist.
    #[command(hide = true)]
    Hold(HoldArgs),
}

/// `--global`: which namespace a name is in.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct Namespace {
    /// Windows: the Global\ namespace (all sessions) instead of Local\. No effect elsewhere.
    #[arg(long)]
    pub global: bool,
}

/// `NAME [--global]`: the object a command is about. `K` says what NAME names, for its help.
#[derive(Debug, Args)]
pub(crate) struct Target<K: NameKind> {
    #[arg(help = K::HELP)]
    pub name: String,
    #[command(flatten)]
    pub namespace: Namespace,
    #[arg(skip)]
    kind: PhantomData<K>,
}

/// What the NAME of a [`Target`] names.
pub(crate) trait NameKind {
    /// The help text of NAME. As printed: clap drops the final period of a one-paragraph doc
    /// comment, so these have none.
    const HELP: &'static str;
}

/// NAME is a segment (`create`, `write`, `read`, `info`).
#[derive(Debug)]
pub(crate) enum SegmentName {}

impl NameKind for SegmentName {
    const HELP: &'static str = "Segment name, used verbatim as the OS name (/dev/shm/NAME on \
        Linux, Local\\NAME on Windows)";
}

/// NAME is a channel (`send`, `recv`, `pub`, `sub`).
#[derive(Debug)]
pub(crate) enum ChannelName {}

impl NameKind for ChannelName {
    const HELP: &'static str = "Channel name: the name of its segment, used verbatim \
        (/dev/shm/NAME on Linux, Local\\NAME on Windows). Both ends give the same NAME";
}

/// NAME is a sync segment (`lock`, `signal`, `wait`).
#[derive(Debug)]
pub(crate) enum SyncName {}

impl NameKind for SyncName {
    const HELP: &'static str = "Sync segment name: a small segment of kind \"sync\" holding a \
        robust mutex and an event, created on first use (by any of lock/signal/wait) and kept \
        until `shmwire rm NAME`";
}

/// `--timeout T` of a command that waits: the flag and its help are the same everywhere but
/// for what is waited for, which the command `W` says ([`Waits::GIVE_UP`]).
#[derive(Debug, Args)]
pub(crate) struct TimeoutArg<W: Waits> {
    #[arg(long, value_parser = crate::units::parse_timeout, help = timeout_help(W::GIVE_UP))]
    pub timeout: Option<Duration>,
    #[arg(skip)]
    waits: PhantomData<W>,
}

/// The arguments of a command that takes a [`TimeoutArg`].
pub(crate) trait Waits {
    /// When it gives up, as in "Give up {GIVE_UP} (e.g. 500ms, …)".
    const GIVE_UP: &'static str;
}

/// The help of `--timeout`.
fn timeout_help(give_up: &str) -> String {
    format!(
        "Give up {give_up} (e.g. 500ms, 10s, 2m; a bare number is seconds): exit status 1. \
         Default: wait for ever"
    )
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the demo's files (input and output bitmap) in this directory.
    #[arg(long, value_name = "DIR")]
    pub keep: Option<PathBuf>,
    #[arg(long, hide = true)]
    pub role: Option<String>,
    #[arg(long, hide = true)]
    pub segment: Option<String>,
    #[arg(long, hide = true)]
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    pub target: Target<SegmentName>,
    /// Payload size, e.g. 4096, 64KiB, 1GiB.
    #[arg(long, short, value_parser = crate::units::parse_size)]
    pub size: u64,
    /// No header: the payload starts at byte 0 (for programs that do not speak shmwire).
    #[arg(long)]
    pub raw: bool,
    /// Permission bits in octal; the owner must keep read and write.
    #[arg(long, default_value = "600", value_parser = crate::units::parse_mode)]
    pub mode: u32,
    /// Leave the segment in place when this command exits, until `shmwire rm NAME`.
    #[arg(long)]
    pub persist: bool,
}

/// How a segment stores text, for `write` and `read`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Encoding {
    /// UTF-8: the bytes as they are.
    #[default]
    Utf8,
    /// UTF-16 little-endian, no BOM: what Windows programs built with UNICODE (`wchar_t`,
    /// `TCHAR`, `WCHAR`) read and write.
    Utf16le,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["text", "file"]))]
pub(crate) struct WriteArgs {
    #[command(flatten)]
    pub target: Target<SegmentName>,
    /// The text to write, or - to read the bytes from stdin.
    pub text: Option<String>,
    /// Write this file's bytes.
    #[arg(long, short, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Where in the payload to start.
    #[arg(long, default_value = "0", value_parser = crate::units::parse_size)]
    pub offset: u64,
    /// The segment has no shmwire header.
    #[arg(long)]
    pub raw: bool,
    /// How to store the text (TEXT, or UTF-8 text on stdin): utf8 as it is, or utf16le
    /// converted to UTF-16 little-endian for programs built with UNICODE. Nothing is added:
    /// no BOM, no terminating NUL (a fresh segment is all zeros). Not with --file, whose
    /// bytes are written as they are.
    #[arg(long, value_enum, default_value_t = Encoding::Utf8, conflicts_with = "file")]
    pub encoding: Encoding,
}

#[derive(Debug, Args)]
pub(crate) struct ReadArgs {
    #[command(flatten)]
    pub target: Target<SegmentName>,
    /// Where in the payload to start.
    #[arg(long, default_value = "0", value_parser = crate::units::parse_size)]
    pub offset: u64,
    /// How many bytes (default: to the end; to a terminal, trailing zero bytes are not shown).
    #[arg(long, value_parser = crate::units::parse_size)]
    pub len: Option<u64>,
    /// Write to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print a hex dump (of the bytes as they are, so not with --encoding).
    #[arg(long)]
    pub hex: bool,
    /// The segment has no shmwire header.
    #[arg(long)]
    pub raw: bool,
    /// How the segment stores text: utf8 (the bytes as they are), or utf16le (UTF-16
    /// little-endian, as programs built with UNICODE write it), decoded and printed as UTF-8.
    /// utf16le reads whole 2-byte code units (an even --len) and fails on invalid UTF-16;
    /// NUL code units are printed as NUL bytes, as utf8 prints zero bytes.
    #[arg(long, value_enum, default_value_t = Encoding::Utf8, conflicts_with = "hex")]
    pub encoding: Encoding,
}

#[derive(Debug, Args)]
pub(crate) struct InfoArgs {
    #[command(flatten)]
    pub target: Target<SegmentName>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GcArgs {
    /// Say what would be removed, remove nothing.
    #[arg(long, short = 'n')]
    pub dry_run: bool,
    /// Remove the abandoned segments kept on purpose too (persistent ones, sync segments,
    /// channels holding messages for a receiver to come).
    #[arg(long)]
    pub all: bool,
    /// Only look at segments whose names start with PREFIX (others are not even opened).
    #[arg(long, value_name = "PREFIX")]
    pub prefix: Option<String>,
    /// Treat processes gc cannot inspect as using no segment (a risk taken knowingly; running
    /// as root shows every process on an ordinary Linux system).
    #[arg(long)]
    pub ignore_unseen: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// Segment names.
    #[arg(required = true)]
    pub names: Vec<String>,
    #[command(flatten)]
    pub namespace: Namespace,
}

#[derive(Debug, Args)]
pub(crate) struct HoldArgs {
    #[command(flatten)]
    pub target: Target<SegmentName>,
}

#[derive(Debug, Args)]
pub(crate) struct MapArgs {
    /// The file to read (any size; offsets above 4 GiB are fine).
    pub file: PathBuf,
    /// Where in the file to start.
    #[arg(long, default_value = "0", value_parser = crate::units::parse_size)]
    pub offset: u64,
    /// How many bytes (default: to the end of the file).
    #[arg(long, value_parser = crate::units::parse_size)]
    pub len: Option<u64>,
    /// Write to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// How much of the file is mapped at a time (rounded up to the allocation granularity).
    #[arg(long, default_value = "16MiB", value_parser = crate::units::parse_size)]
    pub window: u64,
}

/// `--manual` of `lock`, `signal` and `wait`: how the event of NAME behaves.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct SyncEvent {
    /// The event is manual-reset: a signal releases every waiter, now and later, until
    /// `signal --reset`. Applies when this command creates NAME; it must match an existing
    /// NAME.
    #[arg(long)]
    pub manual: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LockArgs {
    #[command(flatten)]
    pub target: Target<SyncName>,
    #[command(flatten)]
    pub event: SyncEvent,
    #[command(flatten)]
    pub wait: TimeoutArg<LockArgs>,
    /// The command to run, after `--`. Its exit status becomes ours. If the lock was recovered
    /// from a dead holder, it runs with SHMWIRE_OWNER_DIED=1 and the lock is marked repaired
    /// only if it succeeds.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

impl Waits for LockArgs {
    const GIVE_UP: &'static str = "after this long";
}

#[derive(Debug, Args)]
pub(crate) struct SignalArgs {
    #[command(flatten)]
    pub target: Target<SyncName>,
    #[command(flatten)]
    pub event: SyncEvent,
    /// Reset the event instead of setting it (for --manual events).
    #[arg(long)]
    pub reset: bool,
}

#[derive(Debug, Args)]
pub(crate) struct WaitArgs {
    #[command(flatten)]
    pub target: Target<SyncName>,
    #[command(flatten)]
    pub event: SyncEvent,
    #[command(flatten)]
    pub wait: TimeoutArg<WaitArgs>,
}

impl Waits for WaitArgs {
    const GIVE_UP: &'static str = "after this long";
}

#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub target: Target<ChannelName>,
    /// The file to send (any size), or - for stdin.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub ring: TransferRing,
    #[command(flatten)]
    pub wait: TimeoutArg<SendArgs>,
}

impl Waits for SendArgs {
    const GIVE_UP: &'static str = "if no receiver has come within this long";
}

#[derive(Debug, Args)]
pub(crate) struct RecvArgs {
    #[command(flatten)]
    pub target: Target<ChannelName>,
    /// Write to this file instead of stdout. It appears only complete and verified: the
    /// bytes go to a temporary file next to it, renamed on success and removed on failure.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub ring: TransferRing,
    #[command(flatten)]
    pub wait: TimeoutArg<RecvArgs>,
}

impl Waits for RecvArgs {
    const GIVE_UP: &'static str = "if no sender has started a transfer within this long";
}

/// `--capacity` of `send` and `recv`: the size of the channel's ring.
#[derive(Debug, Clone, Copy, Args)]
pub(crate) struct TransferRing {
    /// Ring size, e.g. 256KiB, 64MiB (rounded up to a power of two; 16KiB to 2GiB). Default:
    /// the existing channel's, or 4MiB if this command creates it. If given, both ends must
    /// agree.
    #[arg(long, value_parser = crate::units::parse_size)]
    pub capacity: Option<u64>,
}

/// The shape of a broadcast channel, for `pub` and `sub`.
#[derive(Debug, Args)]
pub(crate) struct BroadcastShape {
    /// How many messages the channel keeps for slow subscribers (slots). Default: the existing
    /// channel's, or 256 if this command creates it. If given, it must match the channel's.
    #[arg(long, value_name = "SLOTS")]
    pub capacity: Option<u64>,
    /// The longest message (line) in bytes, e.g. 4096, 64KiB. Default: the existing channel's,
    /// or 1KiB if this command creates it. If given, it must match the channel's.
    #[arg(long, value_name = "SIZE", value_parser = crate::units::parse_size)]
    pub message_size: Option<u64>,
}

#[derive(Debug, Args)]
#[command(mut_arg("timeout", |a| a.requires("subscribers")))]
pub(crate) struct PubArgs {
    #[command(flatten)]
    pub target: Target<ChannelName>,
    #[command(flatten)]
    pub shape: BroadcastShape,
    /// Before publishing, wait until this many subscribers are attached (a publisher never
    /// waits otherwise: subscribers that come later miss the earlier lines).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub subscribers: usize,
    // `--timeout` requires `--subscribers` (the `mut_arg` above).
    #[command(flatten)]
    pub wait: TimeoutArg<PubArgs>,
}

impl Waits for PubArgs {
    const GIVE_UP: &'static str = "waiting for --subscribers after this long";
}

#[derive(Debug, Args)]
pub(crate) struct SubArgs {
    #[command(flatten)]
    pub target: Target<ChannelName>,
    #[command(flatten)]
    pub shape: BroadcastShape,
    /// Start with the next message published, not with the newest one already there.
    #[arg(long)]
    pub from_next: bool,
    /// Exit after printing this many messages.
    #[arg(long, short = 'n', value_name = "N")]
    pub count: Option<u64>,
    #[command(flatten)]
    pub wait: TimeoutArg<SubArgs>,
}

impl Waits for SubArgs {
    const GIVE_UP: &'static str = "when no message has arrived for this long";
}
