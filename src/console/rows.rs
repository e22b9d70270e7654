//! Rows each list view shows, built once per snapshot (not per frame) so
//! filtering 100,000 rows happens on data or filter change only.

use crate::cyrus::loglines::LineKind;
use crate::model::conflicts::{CheckResult, Difference};
use crate::model::health::channel_label;
use crate::model::snapshot::StuckEntry;
use crate::model::snapshot::{HostEvent, StatusReport};

/// Pending entries of one user+mailbox on one channel, in queue order.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueRow {
    pub pair: String,
    pub channel: String,
    pub user: String,
    pub mailbox: String,
    /// Sync-log entry kinds (APPEND, MAILBOX, SEEN ...), joined.
    pub kinds: String,
    pub count: u64,
    /// 1-based position of its oldest entry among the distinct entries.
    pub position: usize,
    /// When that oldest entry was written (bounds from its queue file).
    pub written: Option<crate::model::queue_age::Written>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct StuckRow {
    pub pair: String,
    pub entry: StuckEntry,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ConflictRow {
    pub pair: String,
    pub diff: Difference,
}

/// Identical lines (same host, service, kind and text) as one row: the
/// newest one, how many, since when (a hot loop is one row, `×894`).
#[derive(Clone, Debug, PartialEq)]
pub struct LogRow {
    pub pair: String,
    pub event: HostEvent,
    pub count: usize,
    pub oldest: Option<i64>,
}

impl QueueRow {
    pub fn text(&self) -> String {
        format!(
            "{} {} {} {} {}",
            self.user, self.mailbox, self.kinds, self.pair, self.channel
        )
    }
}
impl StuckRow {
    pub fn text(&self) -> String {
        let e = &self.entry;
        format!(
            "{} {} {} {} {}",
            e.subject(),
            e.mailbox.as_deref().unwrap_or(""),
            e.host,
            e.last_error,
            e.held_file.as_deref().unwrap_or("")
        )
    }
}
impl ConflictRow {
    pub fn text(&self) -> String {
        format!(
            "{} {} {} {}",
            self.diff.mailbox,
            self.diff.kind.label(),
            self.diff.detail,
            self.pair
        )
    }
}
impl LogRow {
    pub fn text(&self) -> String {
        let e = &self.event.event;
        format!(
            "{} {} {} {} {}",
            self.event.host,
            e.user.as_deref().unwrap_or(""),
            e.mailbox.as_deref().unwrap_or(""),
            e.service,
            e.text
        )
    }
    pub fn is_error(&self) -> bool {
        self.event.event.kind.is_error() && self.event.event.kind != LineKind::SyncNotice
    }
}

#[derive(Clone, Debug, Default)]
pub struct Rows {
    pub queue: Vec<QueueRow>,
    pub stuck: Vec<StuckRow>,
    pub conflicts: Vec<ConflictRow>,
    pub log: Vec<LogRow>,
    /// Log lines before identical ones were grouped.
    pub log_lines: usize,
}

/// Group identical lines (newest first in, newest first out): each group
/// sits where its newest line was.
fn group_log(rows: Vec<LogRow>) -> Vec<LogRow> {
    let mut at: std::collections::HashMap<(String, String, String, String), usize> =
        Default::default();
    let mut out: Vec<LogRow> = Vec::new();
    for r in rows {
        let e = &r.event;
        let key = (
            r.pair.clone(),
            e.host.clone(),
            e.event.service.clone(),
            format!("{:?} {}", e.event.kind, e.event.text),
        );
        match at.get(&key) {
            Some(&i) => {
                let g = &mut out[i];
                g.count += 1;
                g.oldest = match (g.oldest, r.oldest) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            None => {
                at.insert(key, out.len());
                out.push(r);
            }
        }
    }
    out
}

pub fn build(report: Option<&StatusReport>, check: Option<&CheckResult>) -> Rows {
    let mut rows = Rows::default();
    if let Some(r) = report {
        for p in &r.pairs {
            for c in &p.channels {
                queue_rows(
                    &p.name,
                    &channel_label(&c.channel),
                    &c.queue.groups,
                    &mut rows.queue,
                );
            }
            rows.stuck.extend(p.stuck.iter().map(|e| StuckRow {
                pair: p.name.clone(),
                entry: e.clone(),
            }));
            rows.log.extend(p.events.iter().map(|e| LogRow {
                pair: p.name.clone(),
                event: e.clone(),
                count: 1,
                oldest: e.event.time,
            }));
        }
    }
    // newest first: the operator looks at what just happened
    rows.log.reverse();
    rows.log_lines = rows.log.len();
    rows.log = group_log(std::mem::take(&mut rows.log));
    if let Some(c) = check {
        let mut diffs: Vec<&Difference> = c.differences.iter().collect();
        diffs.sort_by(|a, b| {
            a.kind
                .cmp(&b.kind)
                .then(a.mailbox.cmp(&b.mailbox))
                .then(a.uid.cmp(&b.uid))
        });
        rows.conflicts = diffs
            .into_iter()
            .map(|d| ConflictRow {
                pair: c.pair.clone(),
                diff: d.clone(),
            })
            .collect();
    }
    rows
}

/// Group distinct sync-log entries (queue order) by user and mailbox.
pub fn queue_rows(
    pair: &str,
    channel: &str,
    groups: &[crate::model::snapshot::PendingEntry],
    out: &mut Vec<QueueRow>,
) {
    let start = out.len();
    let mut index: std::collections::HashMap<(String, String), usize> = Default::default();
    for (i, g) in groups.iter().enumerate() {
        let user = g.user.clone().unwrap_or_default();
        let mailbox = g.mailbox.clone().unwrap_or_else(|| {
            if g.user.is_some() {
                String::new()
            } else {
                g.entry.clone()
            }
        });
        let kind = g.kind.clone().unwrap_or_else(|| "?".into());
        match index.get(&(user.clone(), mailbox.clone())) {
            Some(&at) => {
                let row: &mut QueueRow = &mut out[at];
                row.count += g.count;
                if !row.kinds.split(',').any(|k| k == kind) {
                    row.kinds.push(',');
                    row.kinds.push_str(&kind);
                }
            }
            None => {
                index.insert((user.clone(), mailbox.clone()), out.len());
                out.push(QueueRow {
                    pair: pair.to_string(),
                    channel: channel.to_string(),
                    user,
                    mailbox,
                    kinds: kind,
                    count: g.count,
                    position: i + 1,
                    written: g.written.clone(),
                });
            }
        }
    }
    debug_assert!(out[start..]
        .windows(2)
        .all(|w| w[0].position < w[1].position));
}
