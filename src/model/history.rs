//! What successive refreshes tell that one cannot: drain rate (over a
//! window, so it does not jump), restarts, when a queue file was first
//! seen, when the queue last made progress, how long `log-run` has stayed
//! the same, when the log last grew, and the log cursor per host.

use crate::cyrus::loglines::LogEvent;
use crate::cyrus::probe::{LogCursor, ProbeReport, SyncFile};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Events kept per host between refreshes (for watch mode and the console).
const MAX_EVENTS: usize = 2000;
/// Client ends remembered (pid -> channel): a restart loop's for longer
/// than the events it logged are kept.
const MAX_EXITED: usize = 4096;
/// The drain rate is entries drained over (at most) this many seconds: one
/// refresh that happens to see a whole `log-run` vanish must not show
/// thousands a second, nor a pause of one refresh "not draining".
pub const DRAIN_WINDOW_SECS: u64 = 60;

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
    /// sync_client pid -> its channel, from Cyrus master's lines on its
    /// children's ends (a client in a restart loop lives between probes),
    /// the newest MAX_EXITED kept.
    exited: BTreeMap<u32, String>,
    /// Those pids, oldest first: which to forget past MAX_EXITED.
    exited_order: VecDeque<u32>,
    /// (channel) -> (epoch, entries drained since watching began), oldest
    /// first, reaching back one sample beyond DRAIN_WINDOW_SECS.
    drained: BTreeMap<String, VecDeque<(u64, u64)>>,
    /// (channel) -> the last refresh that found its queue empty (epoch).
    drained_at: BTreeMap<String, u64>,
    /// (channel) -> the last refresh at which entries drained or none were
    /// pending (first observation until then).
    progress_at: BTreeMap<String, u64>,
    /// (channel) -> `log-run` as (inode, size), when first seen so, and
    /// how many later refreshes found it the same.
    log_run_same: BTreeMap<String, ((u64, u64), u64, u32)>,
    /// (channel) -> the last refresh whose queue files differed from the
    /// previous one's (entries logged or taken): the pair is busy.
    queue_changed_at: BTreeMap<String, u64>,
    /// The last refresh that read new log lines (first read until then).
    log_grew_at: Option<u64>,
}

/// How long `log-run` has stayed exactly the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unchanged {
    pub secs: u64,
    /// Later refreshes that found it the same.
    pub refreshes: u32,
}

pub fn is_queue_file(name: &str) -> bool {
    name == "log" || name == "log-run"
}

/// A queue a cyrdeck runbook set aside for the record (failover.sh
/// `archive-queue`: `log-cyrdeck-retired-RUN` after replace-replica,
/// `log-cyrdeck-reintegrated-RUN` after reintegrate). Never replayed and
/// nothing waits on it: not a held file. `(runbook word, run id)`.
pub fn archived_queue(name: &str) -> Option<(&str, &str)> {
    let rest = name
        .strip_prefix("log-run-cyrdeck-")
        .or_else(|| name.strip_prefix("log-cyrdeck-"))?;
    let (word, run) = rest.split_once('-')?;
    matches!(word, "retired" | "reintegrated")
        .then_some((word, run))
        .filter(|(_, r)| !r.is_empty())
}

impl HostHistory {
    pub fn push_events(&mut self, ev: Vec<LogEvent>) {
        self.events.extend(ev);
        while self.events.len() > MAX_EVENTS {
            self.events.pop_front();
        }
    }

    /// Record a refresh's queue files for `channel`, returning the drain
    /// rate (entries/s over DRAIN_WINDOW_SECS) once two refreshes exist.
    pub fn observe_queue(&mut self, channel: &str, now: u64, files: &[SyncFile]) -> Option<f64> {
        let queue: Vec<SyncFile> = files
            .iter()
            .filter(|f| f.channel == channel && is_queue_file(&f.name))
            .cloned()
            .collect();
        let empty = queue.iter().all(|f| f.lines == 0);
        if empty {
            self.drained_at.insert(channel.to_string(), now);
        }
        let seen = self.first_seen.entry(channel.to_string()).or_default();
        for f in &queue {
            seen.entry(f.inode).or_insert(now);
        }
        seen.retain(|ino, _| queue.iter().any(|f| f.inode == *ino));
        let key = |v: &[SyncFile]| {
            let mut k: Vec<(String, u64, u64)> = v
                .iter()
                .map(|f| (f.name.clone(), f.inode, f.size))
                .collect();
            k.sort();
            k
        };
        let drained_now = match self.prev_files.get(channel) {
            Some((then, prev)) if now > *then => {
                if key(prev) != key(&queue) {
                    self.queue_changed_at.insert(channel.to_string(), now);
                }
                // a queue file that vanished was fully processed by sync_client
                Some(
                    prev.iter()
                        .filter(|p| !queue.iter().any(|f| f.inode == p.inode))
                        .map(|p| p.lines)
                        .sum::<u64>(),
                )
            }
            _ => None,
        };
        if empty || drained_now.is_some_and(|d| d > 0) {
            self.progress_at.insert(channel.to_string(), now);
        } else {
            self.progress_at.entry(channel.to_string()).or_insert(now);
        }
        let samples = self.drained.entry(channel.to_string()).or_default();
        match (drained_now, samples.back().copied()) {
            (Some(d), Some((_, total))) => samples.push_back((now, total + d)),
            (None, None) => samples.push_back((now, 0)),
            _ => {}
        }
        // keep one sample at or before the window's start as its anchor
        while samples.len() > 2 && samples[1].0 + DRAIN_WINDOW_SECS <= now {
            samples.pop_front();
        }
        self.observe_log_run(channel, now, &queue);
        // two refreshes within one second: compare the next with the older
        if !matches!(self.prev_files.get(channel), Some((then, _)) if now <= *then) {
            self.prev_files.insert(channel.to_string(), (now, queue));
        }
        self.drain_rate(channel)
    }

    fn observe_log_run(&mut self, channel: &str, now: u64, queue: &[SyncFile]) {
        match queue.iter().find(|f| f.name == "log-run" && f.lines > 0) {
            None => {
                self.log_run_same.remove(channel);
            }
            Some(f) => {
                let id = (f.inode, f.size);
                let e = self
                    .log_run_same
                    .entry(channel.to_string())
                    .or_insert((id, now, 0));
                if e.0 == id {
                    if e.1 < now {
                        e.2 += 1;
                    }
                } else {
                    *e = (id, now, 0);
                }
            }
        }
    }

    /// How long `log-run` (with entries) has stayed the same inode and size.
    pub fn log_run_unchanged(&self, channel: &str, now: u64) -> Option<Unchanged> {
        self.log_run_same
            .get(channel)
            .map(|(_, since, refreshes)| Unchanged {
                secs: now.saturating_sub(*since),
                refreshes: *refreshes,
            })
    }

    /// Seconds since entries last drained (or none were pending).
    pub fn since_progress(&self, channel: &str, now: u64) -> Option<u64> {
        self.progress_at
            .get(channel)
            .map(|t| now.saturating_sub(*t))
    }

    /// The last refresh whose queue files differed from the one before.
    pub fn queue_changed_at(&self, channel: &str) -> Option<u64> {
        self.queue_changed_at.get(channel).copied()
    }

    /// Record whether a refresh read new log lines.
    pub fn observe_log(&mut self, now: u64, new_lines: bool) {
        if new_lines || self.log_grew_at.is_none() {
            self.log_grew_at = Some(now);
        }
    }

    /// The last refresh that read new log lines.
    pub fn log_grew_at(&self) -> Option<u64> {
        self.log_grew_at
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
        files
            .iter()
            .filter(|f| f.channel == channel && is_queue_file(&f.name) && f.lines > 0)
            .filter_map(|f| self.born(channel, f))
            .min()
    }

    /// A queue file's birth time, else when cyrdeck first saw it.
    pub fn born(&self, channel: &str, f: &SyncFile) -> Option<u64> {
        f.btime.or_else(|| {
            self.first_seen
                .get(channel)
                .and_then(|s| s.get(&f.inode).copied())
        })
    }

    /// Entries drained per second over the window (None before two
    /// refreshes).
    pub fn drain_rate(&self, channel: &str) -> Option<f64> {
        let s = self.drained.get(channel)?;
        let ((t0, d0), (t1, d1)) = (*s.front()?, *s.back()?);
        (t1 > t0).then(|| (d1 - d0) as f64 / (t1 - t0) as f64)
    }

    pub fn restarts(&self, channel: &str) -> usize {
        self.client_pids
            .get(channel)
            .map(|s| s.len().saturating_sub(1))
            .unwrap_or(0)
    }

    /// A sync_client of `channel` with this pid ended (Cyrus master's line).
    pub fn observe_exit(&mut self, pid: u32, channel: String) {
        // a pid used again: its newest channel counts, its old place goes
        if self.exited.insert(pid, channel).is_some() {
            self.exited_order.retain(|p| *p != pid);
        }
        self.exited_order.push_back(pid);
        while self.exited_order.len() > MAX_EXITED {
            if let Some(old) = self.exited_order.pop_front() {
                self.exited.remove(&old);
            }
        }
    }

    /// The channel whose sync_client had this pid, when known: seen running
    /// by a probe, or its end logged by Cyrus master.
    pub fn channel_of_pid(&self, pid: u32) -> Option<&str> {
        self.client_pids
            .iter()
            .find(|(_, pids)| pids.contains(&pid))
            .map(|(ch, _)| ch.as_str())
            // a lookup per recent line: a map, not a scan of every end kept
            .or_else(|| self.exited.get(&pid).map(String::as_str))
    }

    /// The channels this host's clients were watched for.
    pub fn channels_watched(&self) -> usize {
        self.client_pids.len()
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
        // over the window: 64 entries in 20 s
        let r = h.observe_queue("", 120, &[]);
        assert_eq!(r, Some(3.2));
    }

    #[test]
    fn drain_rate_does_not_jump_with_one_refresh() {
        let mut h = HostHistory::default();
        // stopped for a minute: log-run unchanged, nothing drains
        for t in (0..=60).step_by(2) {
            h.observe_queue("", t, &[f("log-run", 1, 3600)]);
        }
        assert_eq!(h.drain_rate(""), Some(0.0));
        assert_eq!(h.since_progress("", 60), Some(60));
        let u = h.log_run_unchanged("", 60).unwrap();
        assert_eq!((u.secs, u.refreshes), (60, 30));
        // resumed: the whole log-run vanishes within one refresh; the rate
        // is over the window (3600 in 60 s), not 3600 in 2 s
        let r = h.observe_queue("", 62, &[]).unwrap();
        assert!((r - 60.0).abs() < 1e-9, "{r}");
        assert_eq!(h.since_progress("", 62), Some(0));
        assert_eq!(h.log_run_unchanged("", 62), None);
        // and it stays positive for the window, then decays, no cliff
        let r = h.observe_queue("", 64, &[]).unwrap();
        assert!(r > 50.0, "{r}");
        for t in (66..=200).step_by(2) {
            h.observe_queue("", t, &[]);
        }
        assert_eq!(h.drain_rate(""), Some(0.0));
    }

    #[test]
    fn log_run_changing_is_not_unchanged() {
        let mut h = HostHistory::default();
        h.observe_queue("", 0, &[f("log-run", 1, 10)]);
        h.observe_queue("", 2, &[f("log-run", 2, 10)]);
        assert_eq!(h.log_run_unchanged("", 2).map(|u| u.refreshes), Some(0));
        assert_eq!(h.queue_changed_at(""), Some(2));
    }

    #[test]
    fn log_growth() {
        let mut h = HostHistory::default();
        h.observe_log(100, false);
        assert_eq!(h.log_grew_at(), Some(100));
        h.observe_log(200, false);
        assert_eq!(h.log_grew_at(), Some(100));
        h.observe_log(300, true);
        assert_eq!(h.log_grew_at(), Some(300));
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
