//! Durations and times of day for humans: problem messages (model) and
//! every view say them the same way.

/// A duration for humans: 42s, 7m, 1.5h.
pub fn secs(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0}s")
    } else if s < 5400.0 {
        format!("{:.0}m", s / 60.0)
    } else {
        format!("{:.1}h", s / 3600.0)
    }
}

/// A rate per second: one decimal below 10 (0.8/s is not "0/s": the
/// queue is draining), whole numbers above.
pub fn rate(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.1}/s")
    } else {
        format!("{r:.0}/s")
    }
}

/// A byte count for humans: 812 B, 14.2 KB, 3.1 MB (powers of 1,000).
pub fn bytes(n: u64) -> String {
    match n {
        0..1_000 => format!("{n} B"),
        1_000..1_000_000 => format!("{:.1} KB", n as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// Time of day (UTC) of an epoch second: 22:21:58.
pub fn clock(t: i64) -> String {
    let d = t.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", d / 3600, d % 3600 / 60, d % 60)
}

/// Date and time (UTC) of an epoch second: 2026-11-28 22:30:00 UTC.
pub fn date_time(t: i64) -> String {
    match jiff::Timestamp::from_second(t) {
        Ok(ts) => ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => format!("epoch {t}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_rates_keep_a_decimal() {
        assert_eq!(rate(0.8), "0.8/s");
        assert_eq!(rate(0.0), "0.0/s");
        assert_eq!(rate(12.4), "12/s");
    }

    #[test]
    fn bytes_are_readable() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(14_249), "14.2 KB");
        assert_eq!(bytes(3_100_000), "3.1 MB");
        assert_eq!(bytes(2_500_000_000), "2.50 GB");
    }

    #[test]
    fn date_time_is_readable() {
        assert_eq!(date_time(1_795_905_000), "2026-11-28 22:30:00 UTC");
        assert_eq!(date_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
