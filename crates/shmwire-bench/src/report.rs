//! From the rounds' raw measurements to the report: medians with ranges, ratios to the
//! floors taken per round, the table and the JSON.

use serde::{Deserialize, Serialize};

use crate::stats::{Percentiles, Spread};
use crate::system::Machine;
use crate::transport::{Class, Mode, Transport};
use crate::{Budget, Memcpy, Run, SIZES, STREAM_SIZES};

/// Everything one `shmwire bench` run measured (this is the `--json` output).
#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    /// The program and version that measured.
    pub tool: String,
    /// The machine.
    pub machine: Machine,
    /// The cores of the driver and the echo process, if pinned.
    pub cores: Option<(usize, usize)>,
    /// Sample counts and rounds.
    pub budget: Budget,
    /// Steal time of the pinned cores (or all) per round, in percent.
    pub steal_percent: Vec<Option<f64>>,
    /// One-way latency per contender, mode and size.
    pub latency: Vec<LatencyRow>,
    /// Stream throughput per contender, mode and size.
    pub stream: Vec<StreamRow>,
    /// Single-core memcpy (the copy floor) per size, cached, GB/s.
    pub memcpy: Vec<MemcpyRow>,
    /// Single-core memcpy of the largest stream size between buffers no cache holds.
    pub memcpy_uncached: MemcpyRow,
    /// Seconds each contender's runs took, summed over rounds (id, mode, seconds).
    pub seconds: Vec<(String, Mode, f64)>,
    /// Runs that failed.
    pub failures: Vec<Failure>,
}

/// One contender's latency at one size and mode, over all rounds.
#[derive(Debug, Serialize, Deserialize)]
pub struct LatencyRow {
    /// Contender id.
    pub id: String,
    /// Contender label.
    pub label: String,
    /// Floor, ours, kernel or peer.
    pub class: Class,
    /// Wait mode.
    pub mode: Mode,
    /// Payload bytes.
    pub size: usize,
    /// Zero-copy contender: compared with the floor's smallest message.
    pub zero_copy: bool,
    /// The rounds' p50s (ns): median and range.
    pub p50_ns: Spread,
    /// Percentiles of all rounds' samples pooled (ns).
    pub pooled_ns: Percentiles,
    /// p50 ÷ the floor's p50 (same mode; same size, or 8 B for zero-copy), per round.
    pub x_floor: Option<Spread>,
    /// The highest steal time (percent) of a run this row's samples came from.
    pub max_steal_percent: Option<f64>,
}

/// One contender's stream throughput at one size and mode, over all rounds.
#[derive(Debug, Serialize, Deserialize)]
pub struct StreamRow {
    /// Contender id.
    pub id: String,
    /// Contender label.
    pub label: String,
    /// Floor, ours, kernel or peer.
    pub class: Class,
    /// Wait mode.
    pub mode: Mode,
    /// Payload bytes.
    pub size: usize,
    /// Zero-copy contender: only 8 bytes of each message are written and read, so
    /// `gb_per_s` counts bytes lent, not copied.
    pub zero_copy: bool,
    /// Messages per second: median and range over rounds.
    pub messages_per_s: Spread,
    /// GB/s (10^9 bytes): median and range over rounds.
    pub gb_per_s: Spread,
    /// GB/s ÷ cached single-core memcpy of the same size, per round.
    pub x_memcpy: Option<Spread>,
}

/// memcpy bandwidth at one size.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemcpyRow {
    /// Bytes per copy.
    pub size: usize,
    /// GB/s: median and range over rounds.
    pub gb_per_s: Spread,
}

/// A run that did not complete.
#[derive(Debug, Serialize, Deserialize)]
pub struct Failure {
    /// Contender id.
    pub id: String,
    /// Wait mode.
    pub mode: Mode,
    /// Round (from 1).
    pub round: usize,
    /// What went wrong.
    pub error: String,
}

impl Report {
    pub(crate) fn build(
        transports: &[Box<dyn Transport>],
        runs: &[Run],
        memcpy: &[Memcpy],
        steal: Vec<Option<f64>>,
        budget: Budget,
        cores: Option<(usize, usize)>,
        machine: Machine,
    ) -> Report {
        let floor = transports.iter().position(|t| t.class() == Class::Floor);
        let floor_p50 = |mode: Mode, round: usize, size: usize| -> Option<f64> {
            let r = runs.iter().find(|r| {
                Some(r.transport) == floor
                    && r.mode == mode
                    && r.round == round
                    && r.error.is_none()
            })?;
            let (_, s) = r.latency.iter().find(|(sz, _)| *sz == size)?;
            let mut s = s.clone();
            Some(Percentiles::of(&mut s).p50 as f64)
        };
        let mut latency = Vec::new();
        let mut stream = Vec::new();
        let mut seen: Vec<(usize, Mode)> = Vec::new();
        for r in runs {
            if !seen.contains(&(r.transport, r.mode)) {
                seen.push((r.transport, r.mode));
            }
        }
        // Floors first, then in the contenders' order.
        seen.sort_by_key(|&(t, m)| (transports[t].class() != Class::Floor, m, t));
        for &(ti, mode) in &seen {
            let t = &transports[ti];
            let mine: Vec<&Run> = runs
                .iter()
                .filter(|r| r.transport == ti && r.mode == mode && r.error.is_none())
                .collect();
            if mine.is_empty() {
                continue;
            }
            let max_steal = mine
                .iter()
                .filter_map(|r| r.steal)
                .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
            for size in SIZES {
                let mut pooled = Vec::new();
                let mut p50s = Vec::new();
                let mut ratios = Vec::new();
                for r in &mine {
                    let Some((_, s)) = r.latency.iter().find(|(sz, _)| *sz == size) else {
                        continue;
                    };
                    let mut s = s.clone();
                    let p50 = Percentiles::of(&mut s).p50 as f64;
                    pooled.extend_from_slice(&s);
                    p50s.push(p50);
                    let against = if t.zero_copy() { SIZES[0] } else { size };
                    if let Some(f) = floor_p50(mode, r.round, against) {
                        ratios.push(p50 / f.max(1.0));
                    }
                }
                let Some(p50_ns) = Spread::of(&p50s) else {
                    continue;
                };
                latency.push(LatencyRow {
                    id: t.id().to_owned(),
                    label: t.label().to_owned(),
                    class: t.class(),
                    mode,
                    size,
                    zero_copy: t.zero_copy(),
                    p50_ns,
                    pooled_ns: Percentiles::of(&mut pooled),
                    x_floor: Spread::of(&ratios),
                    max_steal_percent: max_steal,
                });
            }
            for size in STREAM_SIZES {
                let mut rates = Vec::new();
                let mut gbs = Vec::new();
                let mut ratios = Vec::new();
                for r in &mine {
                    let Some(&(_, n, d)) = r.stream.iter().find(|(sz, _, _)| *sz == size) else {
                        continue;
                    };
                    let secs = d.as_secs_f64().max(1e-9);
                    let gb = (n * size) as f64 / secs / 1e9;
                    rates.push(n as f64 / secs);
                    gbs.push(gb);
                    let m = memcpy.iter().find(|m| m.round == r.round);
                    let copies = !t.zero_copy();
                    if let Some((_, c)) = m
                        .and_then(|m| m.cached.iter().find(|(s, _)| *s == size))
                        .filter(|_| copies)
                    {
                        ratios.push(gb / c);
                    }
                }
                let (Some(messages_per_s), Some(gb_per_s)) = (Spread::of(&rates), Spread::of(&gbs))
                else {
                    continue;
                };
                stream.push(StreamRow {
                    id: t.id().to_owned(),
                    label: t.label().to_owned(),
                    class: t.class(),
                    mode,
                    size,
                    zero_copy: t.zero_copy(),
                    messages_per_s,
                    gb_per_s,
                    x_memcpy: Spread::of(&ratios),
                });
            }
        }
        let memcpy_rows = STREAM_SIZES
            .iter()
            .filter_map(|&size| {
                let v: Vec<f64> = memcpy
                    .iter()
                    .filter_map(|m| m.cached.iter().find(|(s, _)| *s == size).map(|x| x.1))
                    .collect();
                Some(MemcpyRow {
                    size,
                    gb_per_s: Spread::of(&v)?,
                })
            })
            .collect();
        let unc: Vec<f64> = memcpy.iter().map(|m| m.uncached.1).collect();
        let failures = runs
            .iter()
            .filter_map(|r| {
                Some(Failure {
                    id: transports[r.transport].id().to_owned(),
                    mode: r.mode,
                    round: r.round + 1,
                    error: r.error.clone()?,
                })
            })
            .collect();
        let seconds = seen
            .iter()
            .map(|&(t, m)| {
                let s = runs.iter().filter(|r| r.transport == t && r.mode == m);
                (transports[t].id().to_owned(), m, s.map(|r| r.seconds).sum())
            })
            .collect();
        Report {
            seconds,
            tool: format!("shmwire bench {}", env!("CARGO_PKG_VERSION")),
            machine,
            cores,
            budget,
            steal_percent: steal,
            latency,
            stream,
            memcpy: memcpy_rows,
            memcpy_uncached: MemcpyRow {
                size: memcpy.first().map_or(0, |m| m.uncached.0),
                gb_per_s: Spread::of(&unc).unwrap_or_default(),
            },
            failures,
        }
    }

    /// Prints the report as tables.
    pub fn print(&self) {
        let pin = match self.cores {
            Some((a, b)) => format!("driver on core {a}, echo process on core {b}"),
            None => "processes not pinned".to_owned(),
        };
        println!(
            "{}: {} interleaved round(s); {pin}",
            self.tool, self.budget.rounds
        );
        println!(
            "machine: {}, {} CPUs, {}; blocking waits: {}",
            self.machine.cpu, self.machine.cpus, self.machine.os, self.machine.wait_mechanism
        );
        let steal: Vec<String> = self
            .steal_percent
            .iter()
            .map(|s| s.map_or("?".to_owned(), |s| format!("{s:.1} %")))
            .collect();
        println!("steal time per round: {}", steal.join(", "));
        for mode in [Mode::Spin, Mode::Block] {
            let rows: Vec<&LatencyRow> = self.latency.iter().filter(|r| r.mode == mode).collect();
            if rows.is_empty() {
                continue;
            }
            println!();
            println!(
                "One-way latency, {} (round trip / 2). p50: median of the rounds [range]; tails: all rounds pooled.",
                mode.title()
            );
            println!(
                "{:<8} {:<32} {:>22} {:>10} {:>10} {:>10}  x floor [range]",
                "size", "contender", "p50 [range]", "p99", "p99.9", "max"
            );
            for size in SIZES {
                let mut first = true;
                for r in rows.iter().filter(|r| r.size == size) {
                    let ratio = r.x_floor.map_or("-".to_owned(), |x| {
                        let star = if r.zero_copy { " (vs 8 B)" } else { "" };
                        format!("{:.2} [{:.2}–{:.2}]{star}", x.median, x.min, x.max)
                    });
                    println!(
                        "{:<8} {:<32} {:>22} {:>10} {:>10} {:>10}  {ratio}",
                        if first {
                            human_size(size)
                        } else {
                            String::new()
                        },
                        r.label,
                        format!(
                            "{} [{}–{}]",
                            ns(r.p50_ns.median),
                            ns(r.p50_ns.min),
                            ns(r.p50_ns.max)
                        ),
                        ns(r.pooled_ns.p99 as f64),
                        ns(r.pooled_ns.p999 as f64),
                        ns(r.pooled_ns.max as f64),
                    );
                    first = false;
                }
            }
        }
        if !self.stream.is_empty() {
            println!();
            println!(
                "Stream throughput: median of the rounds [range]; x memcpy = GB/s ÷ single-core memcpy of that size (cached)."
            );
            println!(
                "Zero-copy contenders write and read only 8 bytes of each message: no GB/s for them."
            );
            println!(
                "{:<8} {:<32} {:<6} {:>12} {:>20}  x memcpy",
                "size", "contender", "mode", "msg/s", "GB/s [range]"
            );
            for size in STREAM_SIZES {
                let mut first = true;
                for r in self.stream.iter().filter(|r| r.size == size) {
                    println!(
                        "{:<8} {:<32} {:<6} {:>12} {:>20}  {}",
                        if first {
                            human_size(size)
                        } else {
                            String::new()
                        },
                        r.label,
                        r.mode.as_str(),
                        rate(r.messages_per_s.median),
                        if r.zero_copy {
                            "(not copied)".to_owned()
                        } else {
                            format!(
                                "{:.2} [{:.2}–{:.2}]",
                                r.gb_per_s.median, r.gb_per_s.min, r.gb_per_s.max
                            )
                        },
                        r.x_memcpy.map_or("-".to_owned(), |x| format!(
                            "{:.2} [{:.2}–{:.2}]",
                            x.median, x.min, x.max
                        )),
                    );
                    first = false;
                }
            }
            let m: Vec<String> = self
                .memcpy
                .iter()
                .map(|m| format!("{} {:.1}", human_size(m.size), m.gb_per_s.median))
                .collect();
            println!(
                "floor: memcpy GB/s (cached): {}; {} from and to memory no cache holds: {:.1}",
                m.join(", "),
                human_size(self.memcpy_uncached.size),
                self.memcpy_uncached.gb_per_s.median
            );
        }
        let secs: Vec<String> = self
            .seconds
            .iter()
            .map(|(id, m, s)| format!("{id} ({}) {s:.1}", m.as_str()))
            .collect();
        println!();
        println!("seconds per contender, all rounds: {}", secs.join(", "));
        if !self.failures.is_empty() {
            println!();
            println!("Failed runs:");
            for f in &self.failures {
                println!(
                    "  {} ({}), round {}: {}",
                    f.id,
                    f.mode.as_str(),
                    f.round,
                    f.error
                );
            }
        }
    }
}

/// `8 B`, `4 KiB`, `1 MiB`.
pub(crate) fn human_size(size: usize) -> String {
    match size {
        s if s >= 1 << 20 && s % (1 << 20) == 0 => format!("{} MiB", s >> 20),
        s if s >= 1024 && s % 1024 == 0 => format!("{} KiB", s >> 10),
        s => format!("{s} B"),
    }
}

fn ns(v: f64) -> String {
    if v < 1e3 {
        format!("{v:.0} ns")
    } else if v < 1e6 {
        format!("{:.2} µs", v / 1e3)
    } else {
        format!("{:.2} ms", v / 1e6)
    }
}

fn rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.1} k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}
