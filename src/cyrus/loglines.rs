//! Classifying Cyrus syslog lines. Lines look like (rsyslog file format)
//! `2026-11-28T22:21:58.834748+00:00 vm cyrlab-master/sync_client[8850]: Error in do_sync(): bailing out! Bad protocol`
//! or (traditional) `Nov 28 22:21:58 vm cyrus/sync_client[8850]: ...`.
//! Seen in the lab with the replica's Cyrus stopped: `IOERROR: zero length response`,
//! `Promoting: MAILBOX user.bob -> USER bob`, `Error in do_sync(): bailing out!`,
//! then every 15 s doubling up to sync_reconnect_maxwait: `connect(127.0.0.2) failed: Connection refused`.

pub use super::logtime::parse_rfc3339;
use super::logtime::{parse_traditional, LineClock};
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

/// Split a syslog line into (time, tag, message). RFC 3339 or traditional
/// timestamps (read against the host's clock and zone: see logtime.rs).
fn split_line<'a>(line: &'a str, clock: &LineClock) -> Option<(Option<i64>, &'a str, &'a str)> {
    let (time, rest) = if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        let (ts, rest) = line.split_once(' ')?;
        (parse_rfc3339(ts), rest)
    } else {
        let (t, rest) = parse_traditional(line, clock)?;
        (Some(t), rest)
    };
    let (_host, rest) = rest.split_once(' ')?;
    let (tag, msg) = rest.split_once(": ")?;
    Some((time, tag, msg))
}

/// A syslog line in the words an operator reads on 80 columns: the time
/// of day, the service and the message (`00:12:33 sync_client[812]:
/// IOERROR ...`): no date, no host name (said once above the lines), no
/// `cyrus/` prefix. A line of another shape is returned as it was.
pub fn compact(line: &str) -> String {
    let parts = || -> Option<(String, &str)> {
        let (time, rest) = if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
            let (ts, rest) = line.split_once(' ')?;
            let (_, t) = ts.split_once('T')?;
            (t.get(..8)?.to_string(), rest)
        } else {
            // "Dec  8 00:12:33 host ..."
            let mut it = line.splitn(2, ' ');
            let (_month, rest) = (it.next()?, it.next()?.trim_start());
            let (_day, rest) = rest.split_once(' ')?;
            let (t, rest) = rest.split_once(' ')?;
            (t.get(..8)?.to_string(), rest)
        };
        if !time.bytes().all(|b| b.is_ascii_digit() || b == b':') {
            return None;
        }
        let (_host, rest) = rest.split_once(' ')?;
        let (tag, msg) = rest.split_once(": ")?;
        let service = tag.rsplit_once('/').map(|(_, s)| s).unwrap_or(tag);
        Some((format!("{time} {service}: "), msg))
    };
    match parts() {
        Some((head, msg)) => format!("{head}{msg}"),
        None => line.to_string(),
    }
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
pub fn classify(line: &str, prefix: Option<&str>, clock: &LineClock) -> Option<LogEvent> {
    let (time, tag, msg) = split_line(line, clock)?;
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
        .or_else(|| mailbox.as_deref().and_then(super::names::owner_of))
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

/// Cyrus's master reporting a child's end: `process type:DAEMON
/// name:syncclientr2 path:/usr/lib/cyrus/bin/sync_client age:0.5s
/// pid:25344 exited, status 1` (or `signaled to death by ...`): the
/// service name and the pid. A rolling client that bails out exits and is
/// started again under a new pid, often between two probes: this line is
/// what ties its log lines to its channel (issue 30, item 3).
pub fn child_exit(line: &str, prefix: Option<&str>, clock: &LineClock) -> Option<(String, u32)> {
    let (_, tag, msg) = split_line(line, clock)?;
    let ident = tag.split_once('[').map_or(tag, |(i, _)| i);
    let (pfx, service) = ident.rsplit_once('/').unwrap_or(("", ident));
    if prefix.is_some_and(|want| pfx != want) || service != "master" {
        return None;
    }
    let rest = msg.strip_prefix("process type:")?;
    let word = |key: &str| {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_string)
    };
    Some((word("name:")?, word("pid:")?.parse().ok()?))
}

/// Classify every complete line of a chunk.
pub fn classify_chunk(text: &str, prefix: Option<&str>, clock: &LineClock) -> Vec<LogEvent> {
    text.lines()
        .filter_map(|l| classify(l, prefix, clock))
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn compact_keeps_time_service_and_message() {
        assert_eq!(
            super::compact(
                "2026-12-08T00:12:33.123456+00:00 mx1 cyrus/sync_client[812]: IOERROR: x y"
            ),
            "00:12:33 sync_client[812]: IOERROR: x y"
        );
        assert_eq!(
            super::compact("Dec  8 00:12:33 mx1 cyrus/imap[9]: SYNCERROR: a"),
            "00:12:33 imap[9]: SYNCERROR: a"
        );
        assert_eq!(super::compact("garbage"), "garbage");
        assert_eq!(super::compact("9 not a time"), "9 not a time");
    }

    use super::*;

    const REAL: &str = include_str!("../../tests/fixtures/syslog_replica_down.txt");

    #[test]
    fn a_childs_end_names_its_service_and_pid() {
        let clock = LineClock::default();
        let line = "2026-12-07T21:06:56.494285+00:00 vm cyrlab24300-master/master[25333]: process type:DAEMON name:syncclient path:/usr/lib/cyrus/bin/sync_client age:44.825s pid:25344 signaled to death by signal 15 (Terminated)";
        assert_eq!(
            child_exit(line, Some("cyrlab24300-master"), &clock),
            Some(("syncclient".to_string(), 25344))
        );
        assert_eq!(child_exit(line, Some("other"), &clock), None);
        let client = line.replace("/master[25333]", "/sync_client[25333]");
        assert_eq!(child_exit(&client, None, &clock), None);
        let garbage = line.replace("pid:25344", "pid:x");
        assert_eq!(child_exit(&garbage, None, &clock), None);
    }

    #[test]
    fn a_hostile_timestamp_is_no_panic() {
        let clock = LineClock::default();
        let line = "1\u{1f6dc}\u{1e950} vm cyrus/sync_client[1]: Error in do_sync(): bailing out!";
        let e = classify(line, None, &clock).unwrap();
        assert_eq!(e.time, None);
    }

    #[test]
    fn real_replica_down_lines() {
        let ev = classify_chunk(REAL, Some("cyrlab24100-master"), &LineClock::default());
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
        assert!(classify_chunk(REAL, Some("other"), &LineClock::default()).is_empty());
        assert!(ev.iter().all(|e| !e.text.contains("Delivered")));
    }

    #[test]
    fn users_and_mailboxes_are_extracted() {
        let l = "2026-11-28T22:00:00Z h cyrus/sync_client[1]: SYNCERROR: guid mismatch: mailbox=<user.alice.Sent> uid=<8> rguid=<a> mguid=<b>";
        let e = classify(l, None, &LineClock::default()).unwrap();
        assert_eq!(e.kind, LineKind::GuidMismatch);
        assert_eq!(e.mailbox.as_deref(), Some("user.alice.Sent"));
        assert_eq!(e.user.as_deref(), Some("alice"));
        let l =
            "Nov 28 22:00:00 h cyrus/sync_client[1]: IOERROR: failed to open index for user.bob";
        let clock = LineClock {
            now: parse_rfc3339("2026-12-01T00:00:00Z").unwrap(),
            ..LineClock::default()
        };
        let e = classify(l, Some("cyrus"), &clock).unwrap();
        assert_eq!(
            (e.time, e.user.as_deref()),
            (parse_rfc3339("2026-11-28T22:00:00Z"), Some("bob"))
        );
    }

    /// Captured from the lab's traditional-format file (a replica mailbox
    /// unreadable: the client's hot loop).
    const TRADITIONAL: &str = include_str!("../../tests/fixtures/syslog_traditional.txt");

    #[test]
    fn real_traditional_lines_get_their_time_and_user() {
        let clock = LineClock {
            now: parse_rfc3339("2026-12-02T07:31:00Z").unwrap(),
            zone: super::super::logtime::HostZone::parse("Etc/UTC +0000").unwrap(),
        };
        let ev = classify_chunk(TRADITIONAL, Some("cyrlab24300-master"), &clock);
        let bail = ev.iter().find(|e| e.kind == LineKind::BailingOut).unwrap();
        assert_eq!(bail.time, parse_rfc3339("2026-12-02T07:30:25Z"));
        assert_eq!(bail.pid, Some(2496));
        assert!(ev.iter().all(|e| e.time.is_some()));
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
            let _ = classify(l, None, &LineClock::default());
        }
    }
}
