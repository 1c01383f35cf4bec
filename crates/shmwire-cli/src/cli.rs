//! The command line, as clap sees it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Named shared memory between processes: create, inspect, read and write segments.
#[derive(Debug, Parser)]
#[command(
    name = "shmwire",
    version,
    about,
    long_about = "Named shared memory between processes: create, inspect, read and write \
segments, from scripts or a terminal.\n\n\
A segment is a named block of memory that several processes map at once. shmwire segments \
start with a small header (exact size, kind, creator, creation time); --raw segments are plain \
bytes, for programs that do not speak shmwire (Python's multiprocessing.shared_memory, a C \
program using shm_open or CreateFileMapping).",
    after_help = "Sizes and offsets take units: 4096, 64KiB, 1.5MiB, 2GiB (or KB/MB/GB for powers of 1000).\n\
Exit status: 0 success; 1 a plain \"no\" (not found, timed out); 2 an error; \
`lock` passes on its command's status.\n\n\
Try `shmwire demo` to watch two processes exchange a message and a file.",
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Watch a writer and a reader process exchange a message and a file through a segment.
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
    /// Dump any range of any file through a mapped window, in bounded memory.
    Map(MapArgs),
    /// Run a command with NAME's robust mutex locked (recovered if its last owner died).
    Lock(LockArgs),
    /// Set NAME's event, releasing a `shmwire wait NAME` (or the next one to come).
    Signal(SignalArgs),
    /// Wait until NAME's event is set (exit status 1 on timeout).
    Wait(WaitArgs),
    /// (internal) Hold a segment open until it is removed: the Windows half of --persist.
    #[command(hide = true)]
    Hold(HoldArgs),
}

/// How to find a segment.
#[derive(Debug, Args)]
pub struct Target {
    /// Segment name, used verbatim as the OS name (/dev/shm/NAME on Linux, Local\NAME on Windows).
    pub name: String,
    /// Windows: the Global\ namespace (all sessions) instead of Local\. No effect elsewhere.
    #[arg(long)]
    pub global: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
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
pub struct CreateArgs {
    #[command(flatten)]
    pub target: Target,
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

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["text", "file"]))]
pub struct WriteArgs {
    #[command(flatten)]
    pub target: Target,
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
}

#[derive(Debug, Args)]
pub struct ReadArgs {
    #[command(flatten)]
    pub target: Target,
    /// Where in the payload to start.
    #[arg(long, default_value = "0", value_parser = crate::units::parse_size)]
    pub offset: u64,
    /// How many bytes (default: to the end; to a terminal, trailing zero bytes are not shown).
    #[arg(long, value_parser = crate::units::parse_size)]
    pub len: Option<u64>,
    /// Write to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Print a hex dump.
    #[arg(long)]
    pub hex: bool,
    /// The segment has no shmwire header.
    #[arg(long)]
    pub raw: bool,
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub target: Target,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LsArgs {
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RmArgs {
    /// Segment names.
    #[arg(required = true)]
    pub names: Vec<String>,
    /// Windows: the Global\ namespace.
    #[arg(long)]
    pub global: bool,
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct MapArgs {
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

/// The sync segment NAME of `lock`, `signal` and `wait`.
#[derive(Debug, Args)]
pub struct SyncTarget {
    /// Sync segment name: a small segment of kind "sync" holding a robust mutex and an event,
    /// created on first use (by any of lock/signal/wait) and kept until `shmwire rm NAME`.
    pub name: String,
    /// Windows: the Global\ namespace (all sessions) instead of Local\. No effect elsewhere.
    #[arg(long)]
    pub global: bool,
    /// The event is manual-reset: a signal releases every waiter, now and later, until
    /// `signal --reset`. Applies when this command creates NAME; it must match an existing
    /// NAME.
    #[arg(long)]
    pub manual: bool,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    #[command(flatten)]
    pub target: SyncTarget,
    /// Give up after this long (e.g. 500ms, 10s, 2m; a bare number is seconds): exit status 1.
    #[arg(long, value_parser = crate::command::parse_timeout)]
    pub timeout: Option<std::time::Duration>,
    /// The command to run, after `--`. Its exit status becomes ours. If the lock was recovered
    /// from a dead holder, it runs with SHMWIRE_OWNER_DIED=1 and the lock is marked repaired
    /// only if it succeeds.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub command: Vec<std::ffi::OsString>,
}

#[derive(Debug, Args)]
pub struct SignalArgs {
    #[command(flatten)]
    pub target: SyncTarget,
    /// Reset the event instead of setting it (for --manual events).
    #[arg(long)]
    pub reset: bool,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    #[command(flatten)]
    pub target: SyncTarget,
    /// Give up after this long (e.g. 500ms, 10s, 2m; a bare number is seconds): exit status 1.
    #[arg(long, value_parser = crate::command::parse_timeout)]
    pub timeout: Option<std::time::Duration>,
}
