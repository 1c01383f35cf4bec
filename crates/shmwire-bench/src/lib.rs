//! shmwire's benchmark harness: one-way ping-pong latency and stream throughput of shmwire
//! next to the machine's floors, kernel IPC and (with the `peers` feature) the crates users
//! would pick instead.
//!
//! ```text
//! shmwire bench [--quick] [--json] [--plot FILE]                # floors, shmwire, UDS, pipe
//! cargo run --release -p shmwire-bench --features peers -- ...  # the same plus the peers
//! ```
//!
//! # Method
//!
//! * Two processes: the driver (this process) and an echo process (the same executable,
//!   re-run with [`ECHO_ENV`] set), each pinned to one core (`--cores`, default 0 and 1).
//! * **Latency**: the driver sends a message of N bytes and waits for the echo's answer of N
//!   bytes; one-way latency = round trip / 2, reported as p50 / p99 / p99.9 / max, busy-poll
//!   and blocking.
//! * **Throughput**: the driver sends a stream of messages; the echo process receives them
//!   all and answers once. Messages/s and GB/s.
//! * **Floors** measured in the same run: the [`builtin::Floor`] transport (a raw cache-line
//!   ping-pong through shared memory when busy-polled, a raw futex ping-pong when blocking,
//!   with the same copy in and out as a copying transport) and single-core `memcpy`.
//! * **Interleaved rounds**: every round runs every contender once, in an order rotated per
//!   round, so that a change of the host (vCPU placement, steal) hits all contenders alike.
//!   Per contender and size, the p50 is the median of the rounds' p50s with their range;
//!   ratios to the floor are taken per round, then the median with the range. The tail
//!   percentiles pool all rounds' samples. Steal time (`/proc/stat`) is recorded per round.
//!
//! Numbers are reported, never asserted.
#![deny(unsafe_code)]

pub mod builtin;
#[cfg(feature = "peers")]
pub mod peers;
mod plot;
mod report;
pub mod stats;
pub mod system;
pub mod transport;

use std::io::IsTerminal;
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

pub use report::Report;
pub use transport::{Class, Endpoint, Framed, Mode, Payload, Setup, Transport};

/// The environment variable that turns a process into an echo process:
/// `ID MODE NAME MAX CORE` (CORE is `-` when not pinned).
pub const ECHO_ENV: &str = "SHMWIRE_BENCH_ECHO";

/// A tag that ends the echo process.
const EXIT: u64 = u64::MAX;
/// A tag with these bits set asks the echo process to receive the number of messages in the
/// low 48 bits, then answer once with [`ACK`].
const SINK: u64 = 0xFFFF_0000_0000_0000;
const ACK: u64 = SINK - 1;

/// The payload sizes of the latency runs.
pub const SIZES: [usize; 6] = [8, 64, 4096, 65536, 1 << 20, 4 << 20];
/// The payload sizes of the throughput runs.
pub const STREAM_SIZES: [usize; 3] = [64, 4096, 1 << 20];

/// The options of `shmwire bench` and of the bench crate's binary.
#[derive(Clone, Debug, clap::Args)]
pub struct BenchArgs {
    /// A short run (3 rounds, fewer samples): under a minute.
    #[arg(long)]
    pub quick: bool,
    /// Rounds of interleaved measurements (default 5, with --quick 3).
    #[arg(long, value_name = "N")]
    pub rounds: Option<usize>,
    /// Print the report as JSON on stdout (progress still goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON report to FILE (and print the table).
    #[arg(long, value_name = "FILE")]
    pub save: Option<std::path::PathBuf>,
    /// Also write a plot of latency against payload size (SVG) to FILE.
    #[arg(long, value_name = "FILE")]
    pub plot: Option<std::path::PathBuf>,
    /// The two cores to pin the driver and the echo process to.
    #[arg(long, value_name = "A,B", default_value = "0,1", value_parser = parse_cores)]
    pub cores: (usize, usize),
    /// Do not pin the processes to cores.
    #[arg(long, conflicts_with = "cores")]
    pub no_pin: bool,
    /// Only these contenders (comma-separated ids; see --list). The floors always run.
    #[arg(long, value_name = "IDS", value_delimiter = ',')]
    pub only: Vec<String>,
    /// List the contenders and exit.
    #[arg(long)]
    pub list: bool,
    /// Print the table and draw --plot from a report saved with --save, measuring nothing.
    #[arg(long, value_name = "JSON")]
    pub replay: Option<std::path::PathBuf>,
    /// Tiny sample counts: checks that everything runs, measures nothing (for tests).
    #[arg(long, hide = true)]
    pub smoke: bool,
}

fn parse_cores(s: &str) -> Result<(usize, usize), String> {
    let (a, b) = s
        .split_once(',')
        .ok_or_else(|| format!("expected two cores like 0,1, got {s:?}"))?;
    let p = |x: &str| {
        x.trim()
            .parse::<usize>()
            .map_err(|_| format!("{x:?} is not a core number"))
    };
    let (a, b) = (p(a)?, p(b)?);
    if a == b {
        return Err("the two cores must differ".into());
    }
    Ok((a, b))
}

/// The contenders that need no extra dependency (what `shmwire bench` runs).
pub fn builtin() -> Vec<Box<dyn Transport>> {
    let mut v: Vec<Box<dyn Transport>> = vec![
        Box::new(builtin::Floor),
        Box::new(builtin::SpscCopy),
        Box::new(builtin::SpscLoan),
    ];
    #[cfg(unix)]
    v.push(Box::new(builtin::Uds));
    v.push(Box::new(builtin::Pipe));
    v
}

/// How many samples and messages a run takes.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct Budget {
    /// Round trips per latency measurement of a message up to 4 KiB; fewer for larger ones.
    pub round_trips: usize,
    /// Bytes streamed per throughput measurement (at most `stream_messages` messages).
    pub stream_bytes: usize,
    /// At most this many messages per throughput measurement.
    pub stream_messages: usize,
    /// Rounds.
    pub rounds: usize,
}

impl Budget {
    fn from_args(args: &BenchArgs) -> Budget {
        let (round_trips, stream_bytes, stream_messages, rounds) = if args.smoke {
            (20, 256 << 10, 4096, 1)
        } else if args.quick {
            (2_000, 128 << 20, 50_000, 3)
        } else {
            (10_000, 1 << 30, 200_000, 5)
        };
        Budget {
            round_trips,
            stream_bytes,
            stream_messages,
            rounds: args.rounds.unwrap_or(rounds).max(1),
        }
    }

    /// Round trips for messages of `size` bytes: the full count up to 4 KiB, then fewer, so
    /// that a size costs about the same time.
    fn round_trips(&self, size: usize) -> usize {
        let n = match size {
            s if s <= 4096 => self.round_trips,
            s if s <= 65536 => self.round_trips / 5,
            s if s <= 1 << 20 => self.round_trips / 30,
            _ => self.round_trips / 100,
        };
        n.max(10)
    }

    fn stream_count(&self, size: usize) -> usize {
        (self.stream_bytes / size).clamp(10, self.stream_messages)
    }
}

/// If this process was started as an echo process ([`ECHO_ENV`] is set), runs it and
/// returns its exit status; otherwise `None`. Call it first thing in `main`.
pub fn echo_main(transports: &[Box<dyn Transport>]) -> Option<ExitCode> {
    let spec = std::env::var(ECHO_ENV).ok()?;
    Some(match echo(&spec, transports) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shmwire bench: echo process ({spec}): {e:#}");
            ExitCode::from(2)
        }
    })
}

fn echo(spec: &str, transports: &[Box<dyn Transport>]) -> anyhow::Result<()> {
    let f: Vec<&str> = spec.split(' ').collect();
    let [id, mode, name, max, core] = f[..] else {
        bail!("malformed {ECHO_ENV}");
    };
    let t = transports
        .iter()
        .find(|t| t.id() == id)
        .with_context(|| format!("no contender {id:?}"))?;
    let mode = Mode::parse(mode).context("bad mode")?;
    if let Ok(core) = core.parse::<usize>() {
        core_affinity::set_for_current(core_affinity::CoreId { id: core });
    }
    let mut setup = Setup {
        name: name.to_owned(),
        mode,
        max: max.parse().context("bad size")?,
        child_cmd: None,
        child: None,
    };
    let mut ep = t.echo(&mut setup)?;
    loop {
        let (len, tag) = ep.recv()?;
        if tag == EXIT {
            return Ok(());
        } else if tag & SINK == SINK {
            for _ in 0..tag & !SINK {
                ep.recv()?;
            }
            ep.send(8, ACK)?;
        } else {
            ep.send(len, tag)?;
        }
    }
}

/// One contender's measurements in one round.
#[derive(Debug)]
pub(crate) struct Run {
    pub transport: usize,
    pub mode: Mode,
    pub round: usize,
    /// (payload size, one-way latencies in ns).
    pub latency: Vec<(usize, Vec<u64>)>,
    /// (payload size, messages, elapsed).
    pub stream: Vec<(usize, usize, Duration)>,
    pub steal: Option<f64>,
    pub seconds: f64,
    pub error: Option<String>,
}

/// Single-core memcpy in one round: (size, GB/s), cached; plus uncached at the largest
/// stream size.
#[derive(Debug)]
pub(crate) struct Memcpy {
    pub round: usize,
    pub cached: Vec<(usize, f64)>,
    pub uncached: (usize, f64),
}

/// Runs `shmwire bench` with the given contenders: measures, prints the table (or JSON),
/// writes the plot.
///
/// # Errors
///
/// Bad options, or the plot cannot be written. A contender that fails is reported in the
/// table and makes the exit status 2, after everything else was measured.
pub fn main_with(args: &BenchArgs, transports: &[Box<dyn Transport>]) -> anyhow::Result<ExitCode> {
    if args.list {
        for t in transports {
            let modes: Vec<&str> = t.modes().iter().map(|m| m.as_str()).collect();
            let note = t.unavailable().map(|u| format!("  (unavailable: {u})"));
            println!(
                "{:<22} {:<36} {}{}",
                t.id(),
                t.label(),
                modes.join(","),
                note.unwrap_or_default()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = &args.replay {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the report {}", path.display()))?;
        let report: Report = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a report saved by --save", path.display()))?;
        return finish(args, &report);
    }
    for id in &args.only {
        if !transports.iter().any(|t| t.id() == id) {
            let ids: Vec<&str> = transports.iter().map(|t| t.id()).collect();
            bail!(
                "there is no contender {id:?} (there are: {})",
                ids.join(", ")
            );
        }
    }
    let chosen: Vec<usize> = (0..transports.len())
        .filter(|&i| {
            let t = &transports[i];
            t.class() == Class::Floor
                || args.only.is_empty()
                || args.only.iter().any(|o| o == t.id())
        })
        .collect();
    let budget = Budget::from_args(args);
    let machine = system::Machine::describe(); // before pinning narrows what we see
    let cores = pin_plan(args);
    if let Some((a, _)) = cores {
        core_affinity::set_for_current(core_affinity::CoreId { id: a });
    }
    let mut jobs: Vec<(usize, Mode)> = Vec::new();
    for &i in &chosen {
        let t = &transports[i];
        if let Some(why) = t.unavailable() {
            eprintln!("shmwire bench: skipping {}: {why}", t.id());
            continue;
        }
        jobs.extend(t.modes().iter().map(|&m| (i, m)));
    }
    let started = Instant::now();
    let tty = std::io::stderr().is_terminal();
    let mut runs = Vec::new();
    let mut memcpy = Vec::new();
    let mut steal = Vec::new();
    for round in 0..budget.rounds {
        let before = cpu_times(cores);
        memcpy.push(measure_memcpy(round));
        let k = round % jobs.len().max(1);
        for &(i, mode) in jobs[k..].iter().chain(&jobs[..k]) {
            if tty {
                eprint!(
                    "\rshmwire bench: round {}/{}: {:<40}",
                    round + 1,
                    budget.rounds,
                    format!("{} ({})", transports[i].id(), mode.as_str())
                );
            }
            runs.push(run_one(transports, i, mode, round, &budget, cores));
        }
        let after = cpu_times(cores);
        steal.push(steal_since(before, after));
        if !tty {
            eprintln!(
                "shmwire bench: round {}/{} done after {:.1} s",
                round + 1,
                budget.rounds,
                started.elapsed().as_secs_f64()
            );
        }
    }
    if tty {
        eprintln!(
            "\rshmwire bench: {} rounds in {:.1} s{:40}",
            budget.rounds,
            started.elapsed().as_secs_f64(),
            ""
        );
    }
    let report = Report::build(transports, &runs, &memcpy, steal, budget, cores, machine);
    finish(args, &report)
}

/// Prints (or saves) the report and draws the plot, as the options say.
fn finish(args: &BenchArgs, report: &Report) -> anyhow::Result<ExitCode> {
    if args.json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        report.print();
    }
    if let Some(path) = &args.save {
        std::fs::write(path, serde_json::to_string_pretty(report)? + "\n")
            .with_context(|| format!("cannot write the report to {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot::write(report, path)
            .with_context(|| format!("cannot write the plot to {}", path.display()))?;
        eprintln!("shmwire bench: plot written to {}", path.display());
    }
    Ok(if report.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn pin_plan(args: &BenchArgs) -> Option<(usize, usize)> {
    if args.no_pin {
        return None;
    }
    let ids = core_affinity::get_core_ids().unwrap_or_default();
    let (a, b) = args.cores;
    if ids.iter().any(|c| c.id == a) && ids.iter().any(|c| c.id == b) {
        Some((a, b))
    } else {
        eprintln!("shmwire bench: cores {a} and {b} are not both available; not pinning");
        None
    }
}

/// The CPU time counters of the pinned cores (all CPUs if not pinned).
fn cpu_times(cores: Option<(usize, usize)>) -> Option<system::CpuTimes> {
    system::CpuTimes::read(&cores.map_or(vec![], |(a, b)| vec![a, b]))
}

/// Steal time between two readings, in percent, where both exist.
fn steal_since(before: Option<system::CpuTimes>, after: Option<system::CpuTimes>) -> Option<f64> {
    before.zip(after).map(|(b, a)| a.steal_since(&b))
}

static LINKS: AtomicU64 = AtomicU64::new(0);

/// A name prefix unique to this process, for everything a link creates.
fn prefix() -> String {
    format!("swb-{}", std::process::id())
}

fn run_one(
    transports: &[Box<dyn Transport>],
    i: usize,
    mode: Mode,
    round: usize,
    budget: &Budget,
    cores: Option<(usize, usize)>,
) -> Run {
    let t = &transports[i];
    let mut run = Run {
        transport: i,
        mode,
        round,
        latency: Vec::new(),
        stream: Vec::new(),
        steal: None,
        seconds: 0.0,
        error: None,
    };
    let t0 = Instant::now();
    let before = cpu_times(cores);
    if let Err(e) = drive(t.as_ref(), mode, budget, cores, &mut run) {
        run.error = Some(format!("{e:#}"));
    }
    let after = cpu_times(cores);
    run.steal = steal_since(before, after);
    run.seconds = t0.elapsed().as_secs_f64();
    run
}

/// How long one contender's run in one round may take before it is declared hung: generous,
/// since busy-polling processes that share an overloaded core (unpinned, under a debugger or
/// an emulator) hand over only when the scheduler says so.
fn deadline(budget: &Budget) -> Duration {
    Duration::from_secs(
        120 + (budget.round_trips as u64 / 100) + (budget.stream_bytes >> 24) as u64,
    )
}

fn drive(
    t: &dyn Transport,
    mode: Mode,
    budget: &Budget,
    cores: Option<(usize, usize)>,
    run: &mut Run,
) -> anyhow::Result<()> {
    let max = *SIZES.iter().max().expect("sizes");
    let name = format!("{}-{}", prefix(), LINKS.fetch_add(1, Ordering::Relaxed));
    let mut cmd = Command::new(std::env::current_exe().context("cannot find this executable")?);
    let core = cores.map_or("-".to_owned(), |(_, b)| b.to_string());
    cmd.env(
        ECHO_ENV,
        format!("{} {} {name} {max} {core}", t.id(), mode.as_str()),
    );
    let mut setup = Setup {
        name: name.clone(),
        mode,
        max,
        child_cmd: Some(cmd),
        child: None,
    };
    let ep = t.driver(&mut setup);
    let Some(child) = setup.child.take() else {
        ep?;
        bail!("the contender did not start its echo process");
    };
    let child = Arc::new(Mutex::new(child));
    let (done, finished) = mpsc::channel::<()>();
    let watchdog = {
        let child = Arc::clone(&child);
        let limit = deadline(budget);
        let what = format!("{} ({})", t.id(), mode.as_str());
        std::thread::spawn(move || watch(&child, &finished, limit, &what))
    };
    let result = ep.and_then(|mut ep| measure(ep.as_mut(), budget, t.streams(), run));
    drop(done);
    let _ = watchdog.join();
    let mut child = child.lock().expect("child");
    if result.is_err() {
        // The echo process may be waiting for a message that will not come.
        let _ = child.kill();
    }
    let status = child.wait();
    result?;
    match status {
        Ok(s) if s.success() => Ok(()),
        Ok(s) => bail!("the echo process ended with {s}"),
        Err(e) => Err(e.into()),
    }
}

/// Waits for the run to finish (`finished` closes); kills the echo process and this whole
/// process if it takes longer than `limit` (a hung contender cannot be interrupted from
/// outside), and lets the driver see an error if the echo process dies first.
fn watch(
    child: &Mutex<std::process::Child>,
    finished: &mpsc::Receiver<()>,
    limit: Duration,
    what: &str,
) {
    let start = Instant::now();
    let mut died: Option<Instant> = None;
    loop {
        match finished.recv_timeout(Duration::from_millis(50)) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let exited = child.lock().expect("child").try_wait().ok().flatten();
        if let (Some(status), None) = (exited, died) {
            if !status.success() {
                died = Some(Instant::now());
            }
        }
        let grace_over = died.is_some_and(|d| d.elapsed() > Duration::from_secs(3));
        if start.elapsed() > limit || grace_over {
            let _ = child.lock().expect("child").kill();
            eprintln!(
                "\nshmwire bench: {what} {}; stopping",
                if grace_over {
                    "hangs after its echo process died"
                } else {
                    "did not finish in time"
                }
            );
            clean_up();
            std::process::exit(2);
        }
    }
}

/// Removes what this process's links left (after a hang): shared-memory objects and files
/// in the temporary directory named after them (sockets, iceoryx2 domains).
fn clean_up() {
    let p = prefix();
    for o in shmwire::list().unwrap_or_default() {
        if o.name.starts_with(&p) {
            let _ = shmwire::Segment::options().remove(&o.name);
        }
    }
    let tmp = std::env::temp_dir();
    for entry in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_string_lossy()
            .starts_with(&format!("{p}-"))
        {
            let path = entry.path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
    }
}

fn measure(
    ep: &mut dyn Endpoint,
    budget: &Budget,
    streams: bool,
    run: &mut Run,
) -> anyhow::Result<()> {
    let mut tag = 0u64;
    for size in SIZES {
        let n = budget.round_trips(size);
        // A tenth, and for large messages enough to cycle through a transport's buffers
        // once (page faults), up to n.
        let cycle = if size >= 65536 {
            ((32 << 20) / size).min(n)
        } else {
            0
        };
        let warm = (n / 10).max(cycle).max(2);
        let mut samples = Vec::with_capacity(n);
        for k in 0..warm + n {
            tag += 1;
            let t0 = Instant::now();
            ep.send(size, tag)?;
            let (len, got) = ep.recv()?;
            let rtt = t0.elapsed();
            if got != tag || len != size {
                bail!("echo of message {tag} ({size} B) came back as {got} ({len} B)");
            }
            if k >= warm {
                samples.push(rtt.as_nanos() as u64 / 2);
            }
        }
        run.latency.push((size, samples));
    }
    if streams {
        for size in STREAM_SIZES {
            let n = budget.stream_count(size);
            // A short stream first: both sides warm, the buffers faulted in.
            for count in [(n / 10).max(1), n] {
                ep.send(8, SINK | count as u64)?;
                let t0 = Instant::now();
                for _ in 0..count {
                    tag += 1;
                    ep.send(size, tag)?;
                }
                let (_, got) = ep.recv()?;
                let elapsed = t0.elapsed();
                if got != ACK {
                    bail!("the stream of {count} messages of {size} B was not acknowledged");
                }
                if count == n {
                    run.stream.push((size, n, elapsed));
                }
            }
        }
    }
    ep.send(8, EXIT)?;
    Ok(())
}

fn measure_memcpy(round: usize) -> Memcpy {
    let max = *STREAM_SIZES.iter().max().expect("sizes");
    let src = vec![3u8; max + 4096];
    let mut dst = vec![0u8; max + 4096];
    let mut cached = Vec::new();
    for size in STREAM_SIZES {
        // Small copies are timed in batches, so that reading the clock does not dominate.
        let batch = (65536 / size).max(1);
        let mut times: Vec<u64> = (0..200)
            .map(|_| {
                let t = Instant::now();
                for _ in 0..batch {
                    // 2048 bytes apart modulo 4 KiB, as a transport would place them.
                    dst[2048..2048 + size].copy_from_slice(std::hint::black_box(&src[..size]));
                    std::hint::black_box(&mut dst);
                }
                t.elapsed().as_nanos() as u64
            })
            .collect();
        let p50 = stats::Percentiles::of(&mut times).p50.max(1);
        cached.push((size, (size * batch) as f64 / p50 as f64));
    }
    // The largest size again from and to memory no cache holds: pieces of 256 MiB buffers.
    let big = 256 << 20;
    let src = vec![4u8; big];
    let mut dst = vec![1u8; big + 4096];
    let mut times: Vec<u64> = (0..100)
        .map(|i| {
            let at = (i * max) % (big - max);
            let t = Instant::now();
            dst[at + 2048..at + 2048 + max].copy_from_slice(&src[at..at + max]);
            std::hint::black_box(&mut dst);
            t.elapsed().as_nanos() as u64
        })
        .collect();
    let p50 = stats::Percentiles::of(&mut times).p50.max(1);
    Memcpy {
        round,
        cached,
        uncached: (max, max as f64 / p50 as f64),
    }
}
