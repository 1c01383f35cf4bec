//! The driver's side of a scenario: its crew of children, the kill schedule, hang detection
//! and the numbers it reports.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::kids::Kid;
use crate::common::{Report, Rng};

/// A child that reports nothing for this long is stuck: "no process waits for ever". Its
/// work loop reports every 100 ms and every blocking call it makes returns within ~20 ms of
/// its peer's death by design; this bound is for a loaded 2-core machine, not a timing
/// assertion.
pub(super) const STALL: Duration = Duration::from_secs(10);

/// How long a child may take to finish cleanly once told to stop.
pub(super) const FINISH: Duration = Duration::from_secs(30);

/// What every scenario gets from the test.
pub(super) struct Cfg<'a> {
    /// Prefix of every name of this run (for gc).
    pub prefix: &'a str,
    pub seed: u64,
    /// End of the chaos phase, if the run is timed.
    pub until: Option<Instant>,
    /// Kills per scenario after which the chaos phase ends, if given.
    pub kills: Option<u64>,
    /// Set when any scenario failed: the others wind down.
    pub abort: &'a AtomicBool,
}

impl Cfg<'_> {
    /// Whether the chaos phase goes on after `kills` kills.
    pub(super) fn go_on(&self, kills: u64) -> bool {
        !self.abort.load(Ordering::Relaxed)
            && self.until.is_none_or(|t| Instant::now() < t)
            && self.kills.is_none_or(|n| kills < n)
    }

    /// This scenario's random stream.
    pub(super) fn rng(&self, scenario: u64) -> Rng {
        Rng::new(self.seed ^ scenario.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }
}

/// What a scenario saw.
#[derive(Debug, Default)]
pub(super) struct Stats {
    pub kills: BTreeMap<String, u64>,
    /// Name → count (messages verified, recoveries, …).
    pub counts: BTreeMap<&'static str, u64>,
    /// Name → samples (disconnect or recovery latencies).
    pub latencies: BTreeMap<&'static str, Vec<Duration>>,
    /// The longest time without progress while every endpoint was alive.
    pub max_stall: Duration,
    pub notes: Vec<String>,
}

impl Stats {
    pub(super) fn total_kills(&self) -> u64 {
        self.kills.values().sum()
    }

    pub(super) fn add(&mut self, what: &'static str, n: u64) {
        *self.counts.entry(what).or_default() += n;
    }

    pub(super) fn latency(&mut self, what: &'static str, d: Duration) {
        self.latencies.entry(what).or_default().push(d);
    }

    pub(super) fn killed(&mut self, kid: &Kid) {
        *self.kills.entry(kid.role.clone()).or_default() += 1;
    }

    /// Lines for the summary.
    pub(super) fn render(&self, name: &str) -> String {
        let mut s = format!(
            "{name}: {} kills ({})",
            self.total_kills(),
            self.kills
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for (k, v) in &self.counts {
            s += &format!("\n    {k}: {v}");
        }
        for (k, v) in &self.latencies {
            let mut v = v.clone();
            v.sort();
            let pct = |p: usize| v[(v.len() - 1) * p / 100];
            if v.is_empty() {
                continue;
            }
            s += &format!(
                "\n    {k}: n={} p50={:.1?} p99={:.1?} max={:.1?}",
                v.len(),
                pct(50),
                pct(99),
                v[v.len() - 1]
            );
        }
        s += &format!(
            "\n    longest stretch without progress, all endpoints up: {:.1?}",
            self.max_stall
        );
        for n in &self.notes {
            s += &format!("\n    note: {n}");
        }
        s
    }
}

/// The children of a scenario, and a log of the driver's last actions (for failures).
#[derive(Default)]
pub(super) struct Crew {
    pub kids: Vec<Kid>,
    log: std::collections::VecDeque<String>,
    t0: Option<Instant>,
}

impl Crew {
    /// Notes a driver action in the log.
    pub(super) fn note(&mut self, what: String) {
        let t0 = *self.t0.get_or_insert_with(Instant::now);
        if self.log.len() == 40 {
            self.log.pop_front();
        }
        self.log.push_back(format!("{:.3?} {what}", t0.elapsed()));
    }

    /// The log, for a failure report.
    pub(super) fn history(&self) -> String {
        format!(
            "the driver's last actions:\n  {}",
            self.log.iter().cloned().collect::<Vec<_>>().join("\n  ")
        )
    }

    /// Adds a freshly spawned child.
    pub(super) fn add(&mut self, kid: Kid) {
        self.note(format!("spawned {kid:?}"));
        self.kids.push(kid);
    }

    /// Collects every child's new reports; an error if a child exited by itself (a failed
    /// check panics) or has not reported for [`STALL`].
    pub(super) fn poll(&mut self) -> Result<Vec<(usize, Report)>, String> {
        self.poll_inner().map_err(|e| {
            let others: Vec<String> = self
                .kids
                .iter_mut()
                .map(|k| {
                    format!(
                        "{k:?}: ready {}, last reports {:?}",
                        k.ready.is_some(),
                        k.last
                            .values()
                            .map(|r| format!("{}={}", r.key, r.value))
                            .collect::<Vec<_>>()
                    )
                })
                .collect();
            format!("{e}\nthe crew: {}\n{}", others.join("; "), self.history())
        })
    }

    fn poll_inner(&mut self) -> Result<Vec<(usize, Report)>, String> {
        let mut out = Vec::new();
        for (i, k) in self.kids.iter_mut().enumerate() {
            out.extend(k.poll().into_iter().map(|r| (i, r)));
            if let Some(status) = k.exited() {
                return Err(format!(
                    "{k:?} exited by itself ({status})\n{}",
                    k.diagnostics()
                ));
            }
            let quiet = k.last_heard.elapsed();
            if quiet > STALL {
                return Err(format!(
                    "HANG: {k:?} has reported nothing for {quiet:.1?} (it reports every \
                     100 ms from its work loop, so it is stuck in a call)\n{}",
                    k.diagnostics()
                ));
            }
        }
        Ok(out)
    }

    /// The index of the child in `slot` with role `role`.
    pub(super) fn find(&self, role: &str, slot: usize) -> Option<usize> {
        self.kids
            .iter()
            .position(|k| k.role == role && k.slot == slot)
    }

    /// Kills child `i` and takes it out of the crew (with its last reports).
    pub(super) fn kill(&mut self, i: usize, stats: &mut Stats) -> Result<Kid, String> {
        let mut k = self.kids.remove(i);
        k.kill()?;
        self.note(format!("killed {k:?} (ready: {})", k.ready.is_some()));
        // Reports written before the kill may still be in the pipe.
        std::thread::sleep(Duration::from_millis(5));
        k.poll();
        stats.killed(&k);
        Ok(k)
    }

    /// Waits, polling the crew, until child `i` reports that it was told `Disconnected`
    /// (the `disc` report, see `kids::Disc`) at or after the wall time `since` (µs); how long
    /// after `since` it noticed. An error after [`STALL`].
    pub(super) fn wait_disc(&mut self, i: usize, since: u64) -> Result<Duration, String> {
        let deadline = Instant::now() + STALL;
        loop {
            for (j, r) in self.poll()? {
                if j == i && r.key == "disc" && r.num() >= since {
                    return Ok(Duration::from_micros(r.num() - since));
                }
            }
            if Instant::now() >= deadline {
                let k = &mut self.kids[i];
                let diag = k.diagnostics();
                let k = format!("{k:?}");
                return Err(format!(
                    "HANG: {k} was not told Disconnected within {STALL:?} of its peers' deaths\n{diag}\n{}",
                    self.history()
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Tells every child to stop and waits for each to finish cleanly; the reports they made
    /// meanwhile.
    pub(super) fn finish_all(&mut self) -> Result<Vec<(usize, Report)>, String> {
        for k in &mut self.kids {
            k.stop();
        }
        let mut out = Vec::new();
        for (i, k) in self.kids.iter_mut().enumerate() {
            out.extend(k.wait_success(FINISH)?.into_iter().map(|r| (i, r)));
        }
        Ok(out)
    }
}

/// How long to wait before the next kill: often very short (the victim is mid-operation,
/// or still opening its endpoint), sometimes long enough for a steady state.
pub(super) fn kill_delay(rng: &mut Rng) -> Duration {
    let ms = match rng.below(100) {
        0..=24 => rng.below(5_000),
        25..=59 => rng.between(5_000, 50_000),
        60..=89 => rng.between(50_000, 400_000),
        _ => rng.between(400_000, 1_500_000),
    };
    Duration::from_micros(ms)
}

/// Tracks the longest stretch without progress while all endpoints were up.
#[derive(Debug)]
pub(super) struct Progress {
    count: u64,
    since: Instant,
}

impl Progress {
    pub(super) fn new() -> Progress {
        Progress {
            count: 0,
            since: Instant::now(),
        }
    }

    /// Records the current progress count; `all_up`: every endpoint is running and has
    /// been ready for a while. An error ("wedged") after [`STALL`] without progress.
    pub(super) fn update(
        &mut self,
        count: u64,
        all_up: bool,
        stats: &mut Stats,
        what: &str,
    ) -> Result<(), String> {
        let now = Instant::now();
        if count != self.count || !all_up {
            if all_up {
                stats.max_stall = stats.max_stall.max(now - self.since);
            }
            self.count = count;
            self.since = now;
            return Ok(());
        }
        let stuck = now - self.since;
        stats.max_stall = stats.max_stall.max(stuck);
        if stuck > STALL {
            return Err(format!(
                "WEDGED: {what} made no progress for {stuck:.1?} although every endpoint is alive"
            ));
        }
        Ok(())
    }

    /// Forget the current stretch (after an endpoint was replaced).
    pub(super) fn reset(&mut self) {
        self.since = Instant::now();
    }
}
