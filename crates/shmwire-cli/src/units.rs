//! Parsing and printing sizes, modes, times and rates for people.

use std::time::{Duration, SystemTime};

/// `4096`, `64KiB`, `1.5 MiB`, `2GB` (KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024).
pub(crate) fn parse_size(s: &str) -> Result<u64, String> {
    parse_size::parse_size(s).map_err(|e| format!("{e} (examples: 4096, 64KiB, 1GiB)"))
}

/// Octal permission bits: `600`, `0640`, `0o660`.
pub(crate) fn parse_mode(s: &str) -> Result<u32, String> {
    let digits = s.trim_start_matches("0o");
    u32::from_str_radix(digits, 8)
        .ok()
        .filter(|m| *m <= 0o777)
        .ok_or_else(|| format!("{s:?} is not an octal mode like 600 or 640"))
}

/// `--timeout`: `500ms`, `10s`, `2m`, or a bare number of seconds (`1.5`).
pub(crate) fn parse_timeout(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("{s:?} is not a duration: seconds must be >= 0"));
    }
    humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration ({e})"))
}

/// `64 MiB (67108864 bytes)`, or just `100 bytes` when small.
pub(crate) fn size(n: u64) -> String {
    if n < 1024 {
        format!("{n} bytes")
    } else {
        format!(
            "{} ({n} bytes)",
            humansize::format_size(n, humansize::BINARY)
        )
    }
}

/// `900.05 KiB`: for use inside parentheses.
pub(crate) fn short(n: u64) -> String {
    humansize::format_size(n, humansize::BINARY)
}

/// `2026-11-22T03:57:36Z (5m 3s ago)`.
pub(crate) fn time(t: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(t);
    match SystemTime::now().duration_since(t) {
        Ok(d) => {
            let d = std::time::Duration::from_secs(d.as_secs());
            format!("{stamp} ({} ago)", humantime::format_duration(d))
        }
        Err(_) => stamp.to_string(),
    }
}

/// `0.52 s` or `12.3 ms`.
pub(crate) fn duration(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// `2065 MB/s` (decimal megabytes).
pub(crate) fn rate(bytes: u64, d: Duration) -> String {
    let mb = bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9);
    if mb >= 10.0 {
        format!("{mb:.0} MB/s")
    } else {
        format!("{mb:.2} MB/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("1 MiB"), Ok(1 << 20));
        assert_eq!(parse_size("5GiB"), Ok(5 << 30));
        assert_eq!(parse_size("1MB"), Ok(1_000_000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1").is_err());
    }

    #[test]
    fn modes_are_octal() {
        assert_eq!(parse_mode("600"), Ok(0o600));
        assert_eq!(parse_mode("0640"), Ok(0o640));
        assert_eq!(parse_mode("0o660"), Ok(0o660));
        assert!(parse_mode("800").is_err());
        assert!(parse_mode("1777").is_err());
    }

    #[test]
    fn timeouts_parse_with_and_without_units() {
        assert_eq!(parse_timeout("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_timeout("0.25"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_timeout("300ms"), Ok(Duration::from_millis(300)));
        assert_eq!(parse_timeout("1m"), Ok(Duration::from_secs(60)));
        assert!(parse_timeout("-1").is_err());
        assert!(parse_timeout("soon").is_err());
    }

    #[test]
    fn rates_and_durations_read_well() {
        assert_eq!(duration(Duration::from_micros(12_340)), "12.3 ms");
        assert_eq!(duration(Duration::from_millis(1520)), "1.52 s");
        assert_eq!(rate(2_000_000_000, Duration::from_secs(1)), "2000 MB/s");
        assert_eq!(rate(500_000, Duration::from_secs(1)), "0.50 MB/s");
        assert!(rate(1, Duration::ZERO).ends_with("MB/s"));
    }
}
