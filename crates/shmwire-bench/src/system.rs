//! What the machine is and how busy its host was: CPU model, kernel, steal time.

use serde::{Deserialize, Serialize};

/// The machine the run measured.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// CPU model name (`/proc/cpuinfo`), or "unknown".
    pub cpu: String,
    /// Logical CPUs available to this process.
    pub cpus: usize,
    /// Operating system and kernel release.
    pub os: String,
    /// How shmwire's blocking waits sleep here (`futex`, …).
    pub wait_mechanism: String,
}

impl Machine {
    /// Reads the description of this machine.
    pub fn describe() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|s| format!(" {}", s.trim()))
            .unwrap_or_default();
        Machine {
            cpu,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os: format!("{}{kernel}", std::env::consts::OS),
            wait_mechanism: shmwire::sync::wait_mechanism().to_string(),
        }
    }
}

/// CPU time counters of some CPUs (`/proc/stat`, in clock ticks): total and stolen.
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuTimes {
    total: u64,
    steal: u64,
}

impl CpuTimes {
    /// The counters summed over `cpus` (all CPUs if empty); `None` where `/proc/stat` does
    /// not exist.
    pub fn read(cpus: &[usize]) -> Option<CpuTimes> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        Some(parse_stat(&stat, cpus))
    }

    /// The share of the time between `earlier` and `self` that the hypervisor gave to
    /// someone else, in percent.
    pub fn steal_since(&self, earlier: &CpuTimes) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        let steal = self.steal.saturating_sub(earlier.steal);
        if total == 0 {
            0.0
        } else {
            100.0 * steal as f64 / total as f64
        }
    }
}

fn parse_stat(stat: &str, cpus: &[usize]) -> CpuTimes {
    let mut t = CpuTimes::default();
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        let wanted = if cpus.is_empty() {
            name == "cpu"
        } else {
            name.strip_prefix("cpu")
                .and_then(|n| n.parse::<usize>().ok())
                .is_some_and(|n| cpus.contains(&n))
        };
        if !wanted {
            continue;
        }
        // user nice system idle iowait irq softirq steal guest guest_nice; guest time is
        // already counted in user.
        let v: Vec<u64> = fields.take(8).filter_map(|f| f.parse().ok()).collect();
        t.total += v.iter().sum::<u64>();
        t.steal += v.get(7).copied().unwrap_or(0);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steal_of_chosen_cpus() {
        let a =
            "cpu  10 0 10 70 0 0 0 10 0 0\ncpu0 5 0 5 35 0 0 0 5 0 0\ncpu1 5 0 5 35 0 0 0 5 0 0\n";
        let b = "cpu  20 0 20 140 0 0 0 20 0 0\ncpu0 10 0 10 70 0 0 0 10 0 0\ncpu1 5 0 5 75 0 0 0 15 0 0\n";
        let all = parse_stat(b, &[]).steal_since(&parse_stat(a, &[]));
        assert!((all - 10.0).abs() < 1e-9, "{all}");
        let one = parse_stat(b, &[1]).steal_since(&parse_stat(a, &[1]));
        assert!((one - 20.0).abs() < 1e-9, "{one}");
    }
}
