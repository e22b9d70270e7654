//! What status shows: plain data, serialised as the `status --json` shape
//! documented in docs/monitoring.md ("status --json shape").

use crate::cyrus::loglines::LogEvent;
use crate::cyrus::probe::SyncServerCheck;
use serde::Serialize;

/// Monitoring-plugin convention: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Ok,
    Warning,
    Unknown,
    Critical,
}

impl Health {
    pub fn exit_code(self) -> i32 {
        match self {
            Health::Ok => 0,
            Health::Warning => 1,
            Health::Critical => 2,
            Health::Unknown => 3,
        }
    }
    pub(crate) fn rank(self) -> u8 {
        match self {
            Health::Ok => 0,
            Health::Warning => 1,
            Health::Unknown => 2,
            Health::Critical => 3,
        }
    }
    pub fn worst(a: Health, b: Health) -> Health {
        if b.rank() > a.rank() {
            b
        } else {
            a
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Health::Ok => "OK",
            Health::Warning => "WARNING",
            Health::Unknown => "UNKNOWN",
            Health::Critical => "CRITICAL",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Problem {
    pub severity: Health,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ServiceState {
    pub name: String,
    pub listen: String,
    pub listening: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct HostStatus {
    pub name: String,
    pub role: &'static str,
    pub ssh: String,
    pub reachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Seconds since the data shown was read (it stays visible while a host
    /// is unreachable).
    pub data_age_secs: Option<f64>,
    pub cyrus_version: Option<String>,
    pub master_running: bool,
    pub master_pid: Option<u32>,
    pub services: Vec<ServiceState>,
    pub sync_server: Option<SyncServerCheck>,
    /// Why Cyrus's log lines could not be read, if they could not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
    /// Seconds since a refresh last read new log lines from this host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_quiet_secs: Option<u64>,
    pub probe_ms: Option<u64>,
    pub probe_bytes: Option<usize>,
    /// The first line of `msg/shutdown` when the host has one: Cyrus
    /// refuses every non-admin write there (LMTP 421, IMAP BYE).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub writes_refused: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClientStatus {
    pub running: bool,
    pub pid: Option<u32>,
    pub age_secs: Option<u64>,
    /// Distinct client processes seen minus one (master restarts it on exit).
    pub restarts_seen: usize,
    /// Seconds between the latest connect failures, when backing off.
    pub backoff_secs: Option<u64>,
    pub last_connect_failure: Option<String>,
    /// Bail-outs logged by the client in the last 60 s (what the hot-loop
    /// rule counts; the report's event list is capped, this is not).
    pub recent_bailouts: usize,
    /// When the newest of those was logged (epoch).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_bailout_at: Option<i64>,
    /// The client's `ps` STAT (T: stopped, so nothing drains).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Seconds since entries last drained, while some are pending.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secs_since_progress: Option<u64>,
}

impl ClientStatus {
    /// The client exists but is stopped (SIGSTOP): it drains nothing.
    pub fn stopped(&self) -> bool {
        self.state
            .as_deref()
            .is_some_and(|s| s.starts_with(['T', 't']))
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct FileStatus {
    pub name: String,
    pub lines: u64,
    pub bytes: u64,
    pub mtime: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct PendingEntry {
    pub count: u64,
    /// The raw sync log line.
    pub entry: String,
    pub kind: Option<String>,
    pub user: Option<String>,
    /// External, decoded name (`user/alice/Entwürfe`).
    pub mailbox: Option<String>,
    /// When its first occurrence was written, as far as its queue file
    /// tells (the console's Queue view). Not part of the JSON shape.
    #[serde(skip)]
    pub written: Option<crate::model::queue_age::Written>,
}

impl PendingEntry {
    /// One raw sync-log line seen `count` times, decoded.
    pub fn from_line(count: u64, line: &str) -> Self {
        let parsed = crate::cyrus::synclog::parse_entry(line);
        PendingEntry {
            count,
            entry: line.to_string(),
            kind: parsed.as_ref().map(|p| p.kind.clone()),
            user: parsed.as_ref().and_then(|p| p.user()),
            mailbox: parsed.as_ref().and_then(|p| p.external_mailbox()),
            written: None,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct QueueStatus {
    pub pending: u64,
    pub log_lines: u64,
    pub log_run_lines: u64,
    pub files: Vec<FileStatus>,
    /// held-* / aside files: entries taken out of the queue.
    pub held: Vec<FileStatus>,
    pub oldest_entry: Option<String>,
    /// Estimated lag: age of the oldest pending entry (its file's birth).
    pub oldest_pending_age_secs: Option<u64>,
    /// Entries drained per second between the last two refreshes (a lower
    /// bound: entries appended and drained in between are not seen).
    pub drain_rate_per_sec: Option<f64>,
    pub time_to_drain_secs: Option<f64>,
    /// Seconds `log-run` (with entries) has stayed the same inode and size.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log_run_unchanged_secs: Option<u64>,
    pub top: Vec<PendingEntry>,
    /// Distinct pending entries in queue order, oldest first (at most 500;
    /// the console's Queue view). Not part of the JSON shape.
    #[serde(skip)]
    pub groups: Vec<PendingEntry>,
    /// Distinct pending entries, uncapped.
    pub distinct_entries: u64,
    /// Entries pending per user over the whole queue, busiest first (at
    /// most 5000 users: counted on the host). Not part of the JSON shape.
    #[serde(skip)]
    pub users: Vec<(u64, String)>,
    /// How many users have entries pending (uncapped).
    #[serde(skip)]
    pub users_total: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ChannelStatus {
    /// "" is the default channel.
    pub channel: String,
    pub master: String,
    pub replica: String,
    pub health: Health,
    pub client: ClientStatus,
    pub queue: QueueStatus,
    /// Measured lag, when the pair has a heartbeat.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<HeartbeatStatus>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostEvent {
    pub host: String,
    #[serde(flatten)]
    pub event: LogEvent,
}

#[derive(Clone, Debug, Serialize)]
pub struct PairStatus {
    pub name: String,
    pub health: Health,
    /// Not problems, but worth knowing: mixed Cyrus releases between master
    /// and replicas (model/releases.rs), queues archived by a runbook.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub hosts: Vec<HostStatus>,
    pub channels: Vec<ChannelStatus>,
    /// Worst first.
    pub problems: Vec<Problem>,
    /// Classified Cyrus log lines (the newest 200 per host, newest last).
    pub events: Vec<HostEvent>,
    /// Users/mailboxes that keep failing, and held files.
    pub stuck: Vec<StuckEntry>,
    /// The pair's bound on pending entries for a failover (readiness).
    #[serde(skip)]
    pub failover_max_pending: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct StatusReport {
    pub generated_at: i64,
    pub health: Health,
    pub exit_code: i32,
    pub pairs: Vec<PairStatus>,
    /// What cyrdeck did by itself (auto-quarantine), newest last; only when
    /// it runs with write access (console, supervise).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<String>,
}
/// The measured lag (model/heartbeat.rs computes it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HeartbeatStatus {
    pub user: String,
    /// The newest heartbeat on the master (epoch seconds).
    pub master_at: Option<u64>,
    /// The newest heartbeat that reached the replica.
    pub replica_at: Option<u64>,
    /// 0 when the replica has the master's newest heartbeat; otherwise the
    /// age of the replica's newest one (an upper bound, to within the interval).
    pub lag_secs: Option<u64>,
    /// Age of the master's newest heartbeat.
    pub beat_age_secs: Option<u64>,
    /// No beat was written for several intervals (no `supervise`, only
    /// observe-mode consoles): the lag above proves nothing about now.
    pub stale: bool,
}

/// A user or mailbox that keeps failing (model/stuck.rs finds them).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StuckEntry {
    /// Host whose log named it (or the master, for held files).
    pub host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    pub user: Option<String>,
    pub mailbox: Option<String>,
    pub first_seen: Option<i64>,
    pub last_seen: Option<i64>,
    /// Error lines naming it.
    pub attempts: u64,
    pub last_error: String,
    /// Held file name and its entries, when its entries were set aside.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_file: Option<String>,
    pub held_entries: u64,
}

impl StuckEntry {
    /// What the operator calls it: the user, else the mailbox.
    pub fn subject(&self) -> &str {
        self.user
            .as_deref()
            .or(self.mailbox.as_deref())
            .unwrap_or("?")
    }
}
