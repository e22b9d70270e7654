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
    fn date_time_is_readable() {
        assert_eq!(date_time(1_795_905_000), "2026-11-28 22:30:00 UTC");
        assert_eq!(date_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(date_time(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
