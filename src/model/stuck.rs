//! Users and mailboxes that keep failing: grouped from classified error
//! lines (which name a user or mailbox) and from held files (entries set
//! aside out of the queue). Pure.

use super::snapshot::{ChannelStatus, StuckEntry};
use crate::cyrus::loglines::LineKind;
use crate::cyrus::loglines::LogEvent;
use std::collections::BTreeMap;

/// Errors naming the same user or mailbox this many times make it stuck.
pub const STUCK_ATTEMPTS: u64 = 2;

fn counts_as_failure(kind: LineKind) -> bool {
    matches!(
        kind,
        LineKind::BailingOut | LineKind::SyncError | LineKind::IoError | LineKind::GuidMismatch
    )
}

/// Group failures by (host, user or mailbox); add held files of the channels.
/// `events` are (host, line) pairs, borrowed: this runs on every refresh
/// over every kept line.
/// Failures older than `replicated_since` (the last time every channel's
/// queue was seen empty) are over: the user replicated again after them.
pub fn stuck_entries<'a>(
    events: impl IntoIterator<Item = (&'a str, &'a LogEvent)>,
    channels: &[ChannelStatus],
    replicated_since: Option<i64>,
) -> Vec<StuckEntry> {
    let mut by_key: BTreeMap<(String, String), StuckEntry> = BTreeMap::new();
    for (host, ev) in events
        .into_iter()
        .filter(|(_, e)| counts_as_failure(e.kind))
    {
        let Some(subject) = ev.user.clone().or_else(|| ev.mailbox.clone()) else {
            continue;
        };
        let s = by_key
            .entry((host.to_string(), subject))
            .or_insert_with(|| StuckEntry {
                host: host.to_string(),
                channel: None,
                user: ev.user.clone(),
                mailbox: ev.mailbox.clone(),
                first_seen: ev.time,
                last_seen: ev.time,
                attempts: 0,
                last_error: String::new(),
                held_file: None,
                held_entries: 0,
            });
        s.attempts += 1;
        s.first_seen = s.first_seen.min(ev.time).or(ev.time);
        s.last_seen = s.last_seen.max(ev.time);
        s.last_error = ev.text.clone();
        if s.mailbox.is_none() {
            s.mailbox = ev.mailbox.clone();
        }
    }
    let mut out: Vec<StuckEntry> = by_key
        .into_values()
        .filter(|s| s.attempts >= STUCK_ATTEMPTS)
        .filter(|s| match (s.last_seen, replicated_since) {
            (Some(t), Some(r)) => t >= r,
            _ => true,
        })
        .collect();
    for ch in channels {
        for h in &ch.queue.held {
            out.push(StuckEntry {
                host: ch.master.clone(),
                channel: Some(ch.channel.clone()),
                user: held_user(&h.name),
                mailbox: None,
                first_seen: None,
                last_seen: Some(h.mtime as i64),
                attempts: 0,
                last_error: String::new(),
                held_file: Some(h.name.clone()),
                held_entries: h.lines,
            });
        }
    }
    // still failing (blocking others) first, newest first; then held ones
    out.sort_by(|a, b| {
        (b.attempts > 0)
            .cmp(&(a.attempts > 0))
            .then(b.last_seen.cmp(&a.last_seen))
            .then(b.attempts.cmp(&a.attempts))
    });
    out
}

/// `held-<user>` (or `releasing-<user>`, the snapshot a release replays)
/// names the user whose entries it holds; other names don't.
fn held_user(file: &str) -> Option<String> {
    let base = file.rsplit('/').next()?;
    base.strip_prefix("held-")
        .or_else(|| base.strip_prefix("releasing-"))
        .filter(|u| !u.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::snapshot::HostEvent;

    fn ev(host: &str, t: i64, kind: LineKind, user: Option<&str>, text: &str) -> HostEvent {
        HostEvent {
            host: host.into(),
            event: LogEvent {
                time: Some(t),
                service: "sync_client".into(),
                pid: Some(1),
                kind,
                user: user.map(str::to_string),
                mailbox: None,
                text: text.into(),
            },
        }
    }

    #[test]
    fn repeated_failures_group_by_user_and_single_ones_do_not_count() {
        let evs = [
            ev("m", 10, LineKind::SyncError, Some("bob"), "first"),
            ev("m", 20, LineKind::SyncError, Some("bob"), "second"),
            ev("m", 15, LineKind::SyncError, Some("alice"), "once"),
            ev("m", 16, LineKind::ConnectFailure, Some("carol"), "refused"),
            ev("m", 17, LineKind::ConnectFailure, Some("carol"), "refused"),
            ev("m", 18, LineKind::SyncNotice, Some("dave"), "notice"),
            ev("m", 19, LineKind::SyncNotice, Some("dave"), "notice"),
        ];
        let s = stuck_entries(evs.iter().map(|e| (e.host.as_str(), &e.event)), &[], None);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].subject(), "bob");
        assert_eq!((s[0].first_seen, s[0].last_seen), (Some(10), Some(20)));
        assert_eq!(s[0].attempts, 2);
        assert_eq!(s[0].last_error, "second");
    }

    /// Defect 12: once the queue was seen empty after a user's last
    /// failure, that user replicated again: no longer stuck.
    #[test]
    fn failures_before_the_queue_last_drained_are_over() {
        let evs = [
            ev("m", 10, LineKind::SyncError, Some("bob"), "first"),
            ev("m", 20, LineKind::SyncError, Some("bob"), "second"),
        ];
        let of = |since| stuck_entries(evs.iter().map(|e| (e.host.as_str(), &e.event)), &[], since);
        assert_eq!(of(Some(15)).len(), 1, "failed again after the drain");
        assert!(of(Some(21)).is_empty(), "drained after the last failure");
        assert_eq!(of(None).len(), 1, "never seen drained");
    }

    #[test]
    fn held_file_names_its_user() {
        assert_eq!(held_user("held-bob").as_deref(), Some("bob"));
        assert_eq!(held_user("ch1/held-x.y").as_deref(), Some("x.y"));
        assert_eq!(held_user("aside"), None);
        assert_eq!(held_user("held-"), None);
        assert_eq!(held_user("releasing-bob").as_deref(), Some("bob"));
    }
}
