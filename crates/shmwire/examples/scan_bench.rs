//! Windowed file mapping vs plain file I/O, on a warm page cache.
//!
//! ```text
//! cargo run --release -p shmwire --example scan_bench -- [FILE_SIZE] [WINDOW] [READS]
//! ```
//!
//! Defaults: a 1 GiB file (written with non-zero data, so it is not sparse), 64 MiB windows,
//! 200 000 random reads. Two comparisons, each printed as p50 / p99 / p99.9 / max per call and
//! as a ratio to the plain-I/O floor measured in the same run:
//!
//! * sequential scan: `WindowedReader::read` with a 1 MiB buffer vs a `File::read` loop with
//!   the same buffer;
//! * random 4 KiB reads: `WindowedReader::read_exact_at` vs `pread` (`seek_read` on Windows),
//!   then the same reads folded into one window (no remapping: what locality buys), and one
//!   view of the whole file (never remapped) as the mapping's floor.
//!
//! The process is not pinned to a core; the machine's core count is printed. This is a
//! measurement, not a test: nothing here asserts on time.
#![allow(clippy::disallowed_types, clippy::disallowed_methods)] // a user of the library: std atomics are its own

use std::fs::File;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use shmwire::{FileAccess, MappedFile, WindowedReader};

const BUF: usize = 1 << 20;
const SMALL: usize = 4096;

fn parse(arg: Option<String>, default: u64) -> u64 {
    let Some(s) = arg else { return default };
    let s = s.trim();
    let (num, mul) = match s.char_indices().find(|(_, c)| c.is_alphabetic()) {
        Some((i, _)) => (
            &s[..i],
            match s[i..].to_ascii_lowercase().as_str() {
                "k" | "kib" => 1 << 10,
                "m" | "mib" => 1 << 20,
                "g" | "gib" => 1 << 30,
                other => panic!("unknown unit {other:?} (use KiB, MiB or GiB)"),
            },
        ),
        None => (s, 1),
    };
    num.trim().parse::<u64>().expect("a number") * mul
}

struct Stats {
    samples: Vec<Duration>,
}

impl Stats {
    fn new(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        Stats { samples }
    }
    fn pct(&self, p: f64) -> Duration {
        let i = ((self.samples.len() as f64 - 1.0) * p).round() as usize;
        self.samples[i]
    }
    fn total(&self) -> Duration {
        self.samples.iter().sum()
    }
}

fn ns(d: Duration) -> String {
    format!("{:>9.0} ns", d.as_nanos() as f64)
}

fn row(label: &str, s: &Stats, floor: &Stats, bytes: u64) {
    let gbs = bytes as f64 / s.total().as_secs_f64() / 1e9;
    println!(
        "  {label:<45} p50 {} p99 {} p99.9 {} max {}  {gbs:6.2} GB/s  p50 x{:.2} p99 x{:.2}",
        ns(s.pct(0.5)),
        ns(s.pct(0.99)),
        ns(s.pct(0.999)),
        ns(*s.samples.last().unwrap()),
        s.pct(0.5).as_secs_f64() / floor.pct(0.5).as_secs_f64(),
        s.pct(0.99).as_secs_f64() / floor.pct(0.99).as_secs_f64(),
    );
}

/// xorshift64*: deterministic offsets, no dependency.
fn rng(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

#[cfg(unix)]
fn pread(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(f, buf, offset)
}

#[cfg(windows)]
fn pread(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(f, buf, offset)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let size = parse(args.next(), 1 << 30);
    let window = parse(args.next(), shmwire::file::DEFAULT_WINDOW_SIZE);
    let reads = parse(args.next(), 200_000) as usize;
    let path = std::env::temp_dir().join(format!("shmwire-scan-bench-{}", std::process::id()));
    struct Cleanup(std::path::PathBuf);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let _cleanup = Cleanup(path.clone());

    println!(
        "file {} ({} MiB), window {} KiB, buffer {} KiB, {} random {}-byte reads; cores: {} available, not pinned",
        path.display(),
        size >> 20,
        window >> 10,
        BUF >> 10,
        reads,
        SMALL,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    {
        let mut f = std::io::BufWriter::new(File::create(&path)?);
        let mut chunk = vec![0u8; BUF];
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut left = size;
        while left > 0 {
            for w in chunk.chunks_mut(8) {
                w.copy_from_slice(&rng(&mut state).to_le_bytes()[..w.len()]);
            }
            let n = left.min(BUF as u64) as usize;
            f.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        f.flush()?;
    }

    // Warm the page cache, so both sides read from memory.
    let mut buf = vec![0u8; BUF];
    let mut f = File::open(&path)?;
    while f.read(&mut buf)? > 0 {}

    // Sequential scan.
    let mut sum = 0u64;
    let mut plain = Vec::new();
    let mut f = File::open(&path)?;
    loop {
        let t = Instant::now();
        let n = f.read(&mut buf)?;
        plain.push(t.elapsed());
        if n == 0 {
            break;
        }
        sum = sum.wrapping_add(u64::from(buf[n - 1]));
    }
    let mut mapped = Vec::new();
    let mut r =
        WindowedReader::with_window_size(MappedFile::open(&path, FileAccess::ReadOnly)?, window);
    loop {
        let t = Instant::now();
        let n = r.read(&mut buf)?;
        mapped.push(t.elapsed());
        if n == 0 {
            break;
        }
        sum = sum.wrapping_sub(u64::from(buf[n - 1]));
    }
    assert_eq!(sum, 0, "both scans read the same bytes");
    let (plain, mapped) = (Stats::new(plain), Stats::new(mapped));
    println!("sequential scan, per {} KiB call:", BUF >> 10);
    row("File::read (floor)", &plain, &plain, size);
    row("WindowedReader::read", &mapped, &plain, size);

    // Random 4 KiB reads at 4 KiB-aligned offsets.
    let mut state = 0xD1B5_4A32_D192_ED03u64;
    let offsets: Vec<u64> = (0..reads)
        .map(|_| rng(&mut state) % (size / SMALL as u64) * SMALL as u64)
        .collect();
    let mut small = [0u8; SMALL];
    let f = File::open(&path)?;
    let mut t_pread = Vec::with_capacity(reads);
    for &o in &offsets {
        let t = Instant::now();
        pread(&f, &mut small, o)?;
        t_pread.push(t.elapsed());
        sum = sum.wrapping_add(u64::from(small[0]));
    }
    let mut t_window = Vec::with_capacity(reads);
    for &o in &offsets {
        let t = Instant::now();
        r.read_exact_at(o, &mut small)?;
        t_window.push(t.elapsed());
        sum = sum.wrapping_sub(u64::from(small[0]));
    }
    // The same reads folded into one window: what a reader with locality pays.
    let mut t_local = Vec::with_capacity(reads);
    let span = window.min(size) / SMALL as u64 * SMALL as u64;
    for &o in &offsets {
        let o = o % (span - SMALL as u64 + 1) / SMALL as u64 * SMALL as u64;
        let t = Instant::now();
        r.read_exact_at(o, &mut small)?;
        t_local.push(t.elapsed());
        sum = sum.wrapping_add(u64::from(small[0]));
    }
    let whole = MappedFile::open(&path, FileAccess::ReadOnly)?.view(0, usize::try_from(size)?)?;
    let mut t_whole = Vec::with_capacity(reads);
    for &o in &offsets {
        let t = Instant::now();
        whole.read_at(o, &mut small)?;
        t_whole.push(t.elapsed());
        sum = sum.wrapping_add(u64::from(small[0]));
    }
    std::hint::black_box(sum);
    let (p, w, v) = (
        Stats::new(t_pread),
        Stats::new(t_window),
        Stats::new(t_whole),
    );
    let l = Stats::new(t_local);
    let bytes = (reads * SMALL) as u64;
    println!("random {SMALL}-byte reads, per call:");
    row("pread (floor)", &p, &p, bytes);
    row(
        &format!(
            "WindowedReader::read_exact_at, {} KiB windows",
            window >> 10
        ),
        &w,
        &p,
        bytes,
    );
    row("  the same, within one window", &l, &p, bytes);
    row("FileView::read_at, whole file", &v, &p, bytes);
    Ok(())
}
