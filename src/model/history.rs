//! What successive refreshes tell that one cannot: drain rate, restarts,
//! when a queue file was first seen, and the log cursor per host.

use crate::cyrus::loglines::LogEvent;
use crate::cyrus::probe::{LogCursor, ProbeReport, SyncFile};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Events kept per host between refreshes (for watch mode and the console).
const MAX_EVENTS: usize = 2000;

#[derive(Default, Clone)]
pub struct HostHistory {
    pub cursor: LogCursor,
    pub last_report: Option<(ProbeReport, std::time::Instant)>,
    pub events: VecDeque<LogEvent>,
    /// (channel) -> previous queue files and when they were read.
    prev_files: BTreeMap<String, (u64, Vec<SyncFile>)>,
    /// (channel) -> inode -> epoch first seen (when the fs has no birth time).
    first_seen: BTreeMap<String, BTreeMap<u64, u64>>,
    /// (channel) -> sync_client pids seen.
    client_pids: BTreeMap<String, BTreeSet<u32>>,
    /// (channel) -> last computed drain rate.
    drain_rate: BTreeMap<String, f64>,
    /// (channel) -> the last refresh that found its queue empty (epoch).
    drained_at: BTreeMap<String, u64>,
}

pub fn is_queue_file(name: &str) -> bool {
    name == "log" || name == "log-run"
}

impl HostHistory {
    pub fn push_events(&mut self, ev: Vec<LogEvent>) {
        self.events.extend(ev);
        while self.events.len() > MAX_EVENTS {
            self.events.pop_front();
        }
    }

    /// Record a refresh's queue files for `channel`, returning the drain
    /// rate (entries/s) when a previous refresh exists.
    pub fn observe_queue(&mut self, channel: &str, now: u64, files: &[SyncFile]) -> Option<f64> {
        let queue: Vec<SyncFile> = files
            .iter()
            .filter(|f| f.channel == channel && is_queue_file(&f.name))
            .cloned()
            .collect();
        if queue.iter().all(|f| f.lines == 0) {
            self.drained_at.insert(channel.to_string(), now);
        }
        let seen = self.first_seen.entry(channel.to_string()).or_default();
        for f in &queue {
            seen.entry(f.inode).or_insert(now);
        }
        seen.retain(|ino, _| queue.iter().any(|f| f.inode == *ino));
        let rate = match self.prev_files.get(channel) {
            Some((then, prev)) if now > *then => {
                // a queue file that vanished was fully processed by sync_client
                let drained: u64 = prev
                    .iter()
                    .filter(|p| !queue.iter().any(|f| f.inode == p.inode))
                    .map(|p| p.lines)
                    .sum();
                Some(drained as f64 / (now - then) as f64)
            }
            Some(_) => self.drain_rate.get(channel).copied(),
            None => None,
        };
        if let Some(r) = rate {
            self.drain_rate.insert(channel.to_string(), r);
        }
        self.prev_files.insert(channel.to_string(), (now, queue));
        rate
    }

    /// The last refresh that found `channel`'s queue empty: every entry
    /// logged before it reached the replica (the rolling client never drops
    /// one: a failing user keeps its batch, and the queue, from emptying).
    pub fn last_drained(&self, channel: &str) -> Option<u64> {
        self.drained_at.get(channel).copied()
    }

    /// When the oldest pending entry was written: the birth time of the
    /// oldest queue file, else when cyrdeck first saw that file.
    pub fn oldest_pending_since(&self, channel: &str, files: &[SyncFile]) -> Option<u64> {
        let seen = self.first_seen.get(channel);
        files
            .iter()
            .filter(|f| f.channel == channel && is_queue_file(&f.name) && f.lines > 0)
            .filter_map(|f| {
                f.btime
                    .or_else(|| seen.and_then(|s| s.get(&f.inode).copied()))
            })
            .min()
    }

    pub fn drain_rate(&self, channel: &str) -> Option<f64> {
        self.drain_rate.get(channel).copied()
    }

    pub fn restarts(&self, channel: &str) -> usize {
        self.client_pids
            .get(channel)
            .map(|s| s.len().saturating_sub(1))
            .unwrap_or(0)
    }

    pub fn observe_client(&mut self, channel: &str, pids: impl IntoIterator<Item = u32>) -> usize {
        let set = self.client_pids.entry(channel.to_string()).or_default();
        set.extend(pids);
        set.len().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(name: &str, inode: u64, lines: u64) -> SyncFile {
        SyncFile {
            channel: String::new(),
            name: name.into(),
            size: lines * 20,
            mtime: 0,
            btime: None,
            inode,
            lines,
        }
    }

    #[test]
    fn drain_rate_counts_vanished_files() {
        let mut h = HostHistory::default();
        assert_eq!(
            h.observe_queue("", 100, &[f("log-run", 1, 50), f("log", 2, 10)]),
            None
        );
        // log-run processed, log renamed to log-run (same inode), new log
        let r = h.observe_queue("", 110, &[f("log-run", 2, 10), f("log", 3, 4)]);
        assert_eq!(r, Some(5.0));
        let r = h.observe_queue("", 120, &[]);
        assert_eq!(r, Some(1.4));
    }

    #[test]
    fn oldest_pending_uses_first_seen_without_birth_time() {
        let mut h = HostHistory::default();
        h.observe_queue("", 100, &[f("log", 7, 3)]);
        h.observe_queue("", 130, &[f("log", 7, 9), f("log-run", 8, 0)]);
        assert_eq!(h.oldest_pending_since("", &[f("log", 7, 9)]), Some(100));
    }

    #[test]
    fn restarts_are_distinct_pids() {
        let mut h = HostHistory::default();
        assert_eq!(h.observe_client("", [10]), 0);
        assert_eq!(h.observe_client("", [10]), 0);
        assert_eq!(h.observe_client("", [11]), 1);
    }
}
