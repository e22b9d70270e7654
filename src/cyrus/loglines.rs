//! Classifying Cyrus syslog lines. Lines look like (rsyslog file format)
//! `2026-11-28T22:21:58.834748+00:00 vm cyrlab-master/sync_client[8850]: Error in do_sync(): bailing out! Bad protocol`
//! or (traditional) `Nov 28 22:21:58 vm cyrus/sync_client[8850]: ...`.
//! Seen in the lab with the replica's Cyrus stopped: `IOERROR: zero length response`,
//! `Promoting: MAILBOX user.bob -> USER bob`, `Error in do_sync(): bailing out!`,
//! then every 15 s doubling up to sync_reconnect_maxwait: `connect(127.0.0.2) failed: Connection refused`.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LineKind {
    GuidMismatch,
    BailingOut,
    SyncError,
    IoError,
    ConnectFailure,
    SyncNotice,
}

impl LineKind {
    pub fn is_error(self) -> bool {
        !matches!(self, LineKind::SyncNotice)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogEvent {
    /// Seconds since the epoch, when the line's timestamp could be read.
    pub time: Option<i64>,
    pub service: String,
    pub pid: Option<u32>,
    pub kind: LineKind,
    pub user: Option<String>,
    pub mailbox: Option<String>,
    pub text: String,
}

/// Split a syslog line into (time, tag, message).
fn split_line(line: &str) -> Option<(Option<i64>, &str, &str)> {
    let (time, rest) = if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let (ts, rest) = line.split_once(' ')?;
        (parse_rfc3339(ts), rest)
    } else {
        // "Nov 28 22:21:58 host ..." (no year: not converted)
        let mut n = 0;
        let idx = line
            .char_indices()
            .filter(|&(_, c)| c == ' ')
            .find(|_| {
                n += 1;
                n == 3
            })
            .map(|(i, _)| i)?;
        (None, line.get(idx + 1..)?.trim_start())
    };
    let (_host, rest) = rest.split_once(' ')?;
    let (tag, msg) = rest.split_once(": ")?;
    Some((time, tag, msg))
}

/// Minimal RFC 3339 parser: `YYYY-MM-DDTHH:MM:SS[.frac](Z|+HH:MM)`.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[10] != b'T' {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, se) = (n(11..13)?, n(14..16)?, n(17..19)?);
    let tz_start = s[19..].find(['Z', '+', '-']).map(|i| i + 19)?;
    let offset = match &s[tz_start..] {
        "Z" => 0,
        tz => {
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            let oh: i64 = tz.get(1..3)?.parse().ok()?;
            let om: i64 = tz.get(4..6)?.parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
    };
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    // days from civil (Howard Hinnant's algorithm)
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + h * 3600 + mi * 60 + se - offset)
}

fn classify_text(msg: &str) -> Option<LineKind> {
    let lower = msg.to_ascii_lowercase();
    if lower.contains("guid mismatch") {
        Some(LineKind::GuidMismatch)
    } else if lower.contains("bailing out") {
        Some(LineKind::BailingOut)
    } else if msg.contains("SYNCERROR") {
        Some(LineKind::SyncError)
    } else if msg.contains("IOERROR") {
        Some(LineKind::IoError)
    } else if (lower.contains("connect(") && lower.contains("failed"))
        || lower.contains("can not connect")
        || lower.contains("retrying in")
    {
        Some(LineKind::ConnectFailure)
    } else if msg.contains("SYNCNOTICE") {
        Some(LineKind::SyncNotice)
    } else {
        None
    }
}

/// `mailbox=<user.alice>` style attributes Cyrus puts in error lines.
fn angle_attr<'a>(msg: &'a str, key: &str) -> Option<&'a str> {
    let start = msg.find(&format!("{key}=<"))? + key.len() + 2;
    let end = msg[start..].find('>')? + start;
    Some(&msg[start..end])
}

fn mailbox_in(msg: &str) -> Option<String> {
    if let Some(m) = angle_attr(msg, "mailbox").or_else(|| angle_attr(msg, "mboxname")) {
        return Some(m.to_string());
    }
    msg.split_whitespace()
        .map(|w| w.trim_matches(|c: char| "<>,;:()\"'".contains(c)))
        .find(|w| w.starts_with("user.") && w.len() > 5)
        .map(str::to_string)
}

/// Classify one line; None for lines status does not care about.
pub fn classify(line: &str, prefix: Option<&str>) -> Option<LogEvent> {
    let (time, tag, msg) = split_line(line)?;
    let (ident, pid) = match tag.split_once('[') {
        Some((i, p)) => (i, p.trim_end_matches(']').parse().ok()),
        None => (tag, None),
    };
    let (pfx, service) = ident.rsplit_once('/').unwrap_or(("", ident));
    if let Some(want) = prefix {
        if pfx != want {
            return None;
        }
    }
    let kind = classify_text(msg)?;
    let mailbox = mailbox_in(msg);
    let user = angle_attr(msg, "user")
        .map(str::to_string)
        .or_else(|| {
            mailbox
                .as_deref()
                .and_then(super::names::owner_of)
                .map(str::to_string)
        })
        .or_else(|| {
            msg.split_once("USER ")
                .and_then(|(_, u)| u.split_whitespace().next())
                .map(str::to_string)
        });
    Some(LogEvent {
        time,
        service: service.to_string(),
        pid,
        kind,
        user,
        mailbox,
        text: msg.trim_end().to_string(),
    })
}

/// Classify every complete line of a chunk.
pub fn classify_chunk(text: &str, prefix: Option<&str>) -> Vec<LogEvent> {
    text.lines().filter_map(|l| classify(l, prefix)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = include_str!("../../tests/fixtures/syslog_replica_down.txt");

    #[test]
    fn real_replica_down_lines() {
        let ev = classify_chunk(REAL, Some("cyrlab24100-master"));
        let kinds: Vec<LineKind> = ev.iter().map(|e| e.kind).collect();
        assert!(kinds.contains(&LineKind::BailingOut));
        assert!(kinds.contains(&LineKind::IoError));
        assert_eq!(
            kinds
                .iter()
                .filter(|k| **k == LineKind::ConnectFailure)
                .count(),
            2
        );
        let conn = ev
            .iter()
            .find(|e| e.kind == LineKind::ConnectFailure)
            .unwrap();
        assert_eq!(conn.service, "sync_client");
        assert_eq!(conn.pid, Some(11520));
        assert_eq!(conn.time, parse_rfc3339("2026-11-28T22:21:58.855258+00:00"));
        // other prefixes and unclassified lines are dropped
        assert!(classify_chunk(REAL, Some("other")).is_empty());
        assert!(ev.iter().all(|e| !e.text.contains("Delivered")));
    }

    #[test]
    fn users_and_mailboxes_are_extracted() {
        let l = "2026-11-28T22:00:00Z h cyrus/sync_client[1]: SYNCERROR: guid mismatch: mailbox=<user.alice.Sent> uid=<8> rguid=<a> mguid=<b>";
        let e = classify(l, None).unwrap();
        assert_eq!(e.kind, LineKind::GuidMismatch);
        assert_eq!(e.mailbox.as_deref(), Some("user.alice.Sent"));
        assert_eq!(e.user.as_deref(), Some("alice"));
        let l =
            "Nov 28 22:00:00 h cyrus/sync_client[1]: IOERROR: failed to open index for user.bob";
        let e = classify(l, Some("cyrus")).unwrap();
        assert_eq!((e.time, e.user.as_deref()), (None, Some("bob")));
    }

    #[test]
    fn time_parsing() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00+01:00"), Some(951865200));
        assert_eq!(parse_rfc3339("garbage-but-long-enough"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn garbage_never_panics() {
        for l in [
            "",
            ":",
            "x y z",
            "2026 a b: c",
            "2026-11-28T22:00:00.1+00:0 h t: IOERROR",
            "\u{fffd}\u{0}: bailing out",
            "a b c d e[: f",
        ] {
            let _ = classify(l, None);
        }
    }
}
