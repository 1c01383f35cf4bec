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
Exit status: 0 success; 1 a plain \"no\" (not found, timed out); 2 an error.\n\n\
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
