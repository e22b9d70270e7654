//! Timestamps of syslog lines, in both formats sites write:
//! - RFC 3339 (rsyslog's file format, `journalctl -o short-iso`):
//!   `2026-11-28T22:21:58.834748+00:00` (also `+0000`, `Z`);
//! - traditional BSD (`Dec  2 01:24:21`): no year, no zone. The host's
//!   local time, so the probe reports the host's zone (`@@tz NAME OFFSET`,
//!   from /etc/localtime) and the year is the latest one that puts the line
//!   at most a day after the host's clock (a December line read in January
//!   is last year's, a Jan 1st line read on Dec 31st next year's).

use jiff::tz::{Offset, TimeZone};
use jiff::{civil, Timestamp};

/// A host's time zone: its tz database name (DST-aware) when the host
/// names one the local tz database knows, else its current UTC offset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostZone {
    pub name: Option<String>,
    pub offset_secs: i32,
}

impl HostZone {
    /// `NAME +HHMM` (NAME may be missing) as the probe prints it.
    pub fn parse(arg: &str) -> Option<HostZone> {
        let mut w = arg.split_whitespace().rev();
        let off = w.next()?;
        let name = w.next().filter(|n| !n.is_empty()).map(str::to_string);
        let (sign, digits) = match off.as_bytes().first()? {
            b'+' => (1, &off[1..]),
            b'-' => (-1, &off[1..]),
            _ => return None,
        };
        if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let h: i32 = digits[..2].parse().ok()?;
        let m: i32 = digits[2..].parse().ok()?;
        Some(HostZone {
            name,
            offset_secs: sign * (h * 3600 + m * 60),
        })
    }

    fn tz(&self) -> TimeZone {
        self.name
            .as_deref()
            .and_then(|n| TimeZone::get(n).ok())
            .or_else(|| {
                Offset::from_seconds(self.offset_secs)
                    .ok()
                    .map(TimeZone::fixed)
            })
            .unwrap_or(TimeZone::UTC)
    }
}

/// What a line's time is read against: the host's clock and zone.
#[derive(Clone, Debug, Default)]
pub struct LineClock {
    /// The host's clock (epoch seconds) when the lines were read.
    pub now: i64,
    pub zone: HostZone,
}

/// An RFC 3339 timestamp (seconds since the epoch).
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    if let Ok(t) = s.parse::<Timestamp>() {
        return Some(t.as_second());
    }
    // `+0000` (journalctl's short-iso) is not RFC 3339: insert the colon.
    // Byte positions: the cut must fall on a character boundary (a hostile
    // line's first word may be any UTF-8)
    let cut = s.len().checked_sub(5).filter(|&c| s.is_char_boundary(c))?;
    let (head, off) = s.split_at(cut);
    let b = off.as_bytes();
    if (b[0] == b'+' || b[0] == b'-') && b[1..].iter().all(u8::is_ascii_digit) {
        let fixed = format!("{head}{}:{}", &off[..3], &off[3..]);
        return fixed.parse::<Timestamp>().ok().map(|t| t.as_second());
    }
    None
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Dec  2 01:24:21 REST` -> (epoch seconds, REST). None when the line
/// does not start with a traditional timestamp.
pub fn parse_traditional<'a>(line: &'a str, clock: &LineClock) -> Option<(i64, &'a str)> {
    let month = MONTHS.iter().position(|m| line.get(..3) == Some(m))? as i8 + 1;
    let rest = line.get(3..)?.strip_prefix(' ')?.trim_start_matches(' ');
    let (day, rest) = rest.split_once(' ')?;
    let day: i8 = day.parse().ok()?;
    let (time, rest) = rest.split_once(' ')?;
    let mut hms = time.split(':').map(|x| x.parse::<i8>().ok());
    let (h, mi, s) = (hms.next()??, hms.next()??, hms.next()??);
    if hms.next().is_some() {
        return None;
    }
    let tz = clock.zone.tz();
    let now = Timestamp::from_second(clock.now).ok()?.to_zoned(tz.clone());
    let at = |year: i16| -> Option<i64> {
        let dt = civil::DateTime::new(year, month, day, h, mi, s, 0).ok()?;
        Some(dt.to_zoned(tz.clone()).ok()?.timestamp().as_second())
    };
    // the latest year that puts the line at most a day after the host's
    // clock: next year's (a Jan 1st line read just before midnight), this
    // year's, or last year's (a December line read in January); a year
    // without the date (Feb 29) is skipped
    let t = [now.year() + 1, now.year(), now.year() - 1]
        .into_iter()
        .filter_map(at)
        .find(|&t| t <= clock.now.saturating_add(86_400))?;
    Some((t, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(now: &str) -> LineClock {
        LineClock {
            now: parse_rfc3339(now).unwrap(),
            zone: HostZone::parse("Etc/UTC +0000").unwrap(),
        }
    }

    /// Found by tests/fuzz_parsers.rs: the `+0000` fallback split the word
    /// 5 bytes from its end, inside a multi-byte character: a panic on a
    /// hostile log line (any line starting with a digit reaches it).
    #[test]
    fn non_ascii_timestamps_are_not_a_panic() {
        for s in [
            "🛜𞥐",
            "1\u{1f6dc}\u{1e950}",
            "2026-11-28T22:21:58+00é0",
            "12345é",
        ] {
            assert_eq!(parse_rfc3339(s), None, "{s:?}");
        }
    }

    #[test]
    fn rfc3339_variants() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00+01:00"), Some(951865200));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00+0100"), Some(951865200));
        assert_eq!(
            parse_rfc3339("2026-11-28T22:21:58.855258+00:00"),
            parse_rfc3339("2026-11-28T22:21:58Z")
        );
        assert_eq!(parse_rfc3339("garbage-but-long-enough"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("é"), None);
        assert_eq!(parse_rfc3339(""), None);
    }

    #[test]
    fn traditional_in_utc() {
        // a real line from the lab's rsyslogd (RSYSLOG_TraditionalFileFormat)
        let line = "Dec  2 07:05:16 vm cyrlab24300-master/sync_client[7366]: bailing out";
        let (t, rest) = parse_traditional(line, &utc("2026-12-02T07:06:00Z")).unwrap();
        assert_eq!(Some(t), parse_rfc3339("2026-12-02T07:05:16Z"));
        assert!(rest.starts_with("vm cyrlab24300-master/"));
        let (t, _) =
            parse_traditional("Nov 28 22:00:00 h x: y", &utc("2026-12-02T00:00:00Z")).unwrap();
        assert_eq!(Some(t), parse_rfc3339("2026-11-28T22:00:00Z"));
    }

    #[test]
    fn year_rolls_over() {
        // read on Jan 1st: Dec 31st is last year's
        let jan = utc("2027-01-01T00:00:30Z");
        let (t, _) = parse_traditional("Dec 31 23:59:59 h x: y", &jan).unwrap();
        assert_eq!(Some(t), parse_rfc3339("2026-12-31T23:59:59Z"));
        // a line a few hours "ahead" (clock skew) stays in this year
        let (t, _) = parse_traditional("Jan  1 03:00:00 h x: y", &jan).unwrap();
        assert_eq!(Some(t), parse_rfc3339("2027-01-01T03:00:00Z"));
        // found by tests/fuzz_parsers.rs: read a second before midnight on
        // Dec 31st, a line of Jan 1st 00:00 (written after the probe read
        // its clock) is NEXT year's, not a year old
        let dec = utc("2026-12-31T23:59:59Z");
        let (t, _) = parse_traditional("Jan  1 00:00:00 h x: y", &dec).unwrap();
        assert_eq!(Some(t), parse_rfc3339("2027-01-01T00:00:00Z"));
        // Feb 29th read in a year without one
        let (t, _) =
            parse_traditional("Feb 29 12:00:00 h x: y", &utc("2029-03-01T00:00:00Z")).unwrap();
        assert_eq!(Some(t), parse_rfc3339("2028-02-29T12:00:00Z"));
    }

    #[test]
    fn host_zone_and_dst() {
        let paris = |now: &str| LineClock {
            now: parse_rfc3339(now).unwrap(),
            zone: HostZone::parse("Europe/Paris +0100").unwrap(),
        };
        // winter: UTC+1
        let (t, _) =
            parse_traditional("Dec  2 01:24:21 h x: y", &paris("2026-12-02T01:00:00Z")).unwrap();
        assert_eq!(Some(t), parse_rfc3339("2026-12-02T00:24:21Z"));
        // summer, read in winter: the zone's rules, not today's offset (UTC+2)
        let (t, _) =
            parse_traditional("Jul 14 12:00:00 h x: y", &paris("2026-12-02T01:00:00Z")).unwrap();
        assert_eq!(Some(t), parse_rfc3339("2026-07-14T10:00:00Z"));
        // an unknown zone name falls back to the offset the host reported
        let odd = LineClock {
            now: parse_rfc3339("2026-12-02T01:00:00Z").unwrap(),
            zone: HostZone::parse("Nowhere/Land -0330").unwrap(),
        };
        let (t, _) = parse_traditional("Dec  2 00:00:00 h x: y", &odd).unwrap();
        assert_eq!(Some(t), parse_rfc3339("2026-12-02T03:30:00Z"));
        // no name at all
        assert_eq!(
            HostZone::parse(" +0530"),
            Some(HostZone {
                name: None,
                offset_secs: 19800
            })
        );
    }

    #[test]
    fn not_traditional() {
        let c = utc("2026-12-02T00:00:00Z");
        for l in [
            "",
            "Dec",
            "Dec 2",
            "Dec 32 00:00:00 h x: y",
            "Dec  2 25:00:00 h x: y",
            "Dec  2 1:2 h",
            "Dex  2 01:00:00 h x: y",
            "Dec  2 01:00:00:00 h x: y",
            "2026-12-02T00:00:00Z h x: y",
            "Dé  2 01:00:00 h",
        ] {
            assert_eq!(parse_traditional(l, &c), None, "{l:?}");
        }
        assert_eq!(HostZone::parse("UTC 0000"), None);
        assert_eq!(HostZone::parse(""), None);
    }
}
