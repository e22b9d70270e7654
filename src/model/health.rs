//! Turning probe reports into a verdict per pair and channel. Pure: no I/O.
//!
//! Critical is decided from current STATE (processes, whether the replica's
//! sync_server answers, lag); log lines explain it (backoff, bail-outs) and
//! only warn on their own while recent, so a healed pair turns OK by itself.

use super::history::{archived_queue, is_queue_file, HostHistory, Unchanged};
use super::queue_age::{self, QueueFile};
use super::snapshot::*;
use crate::config::{Config, HostConfig, PairConfig, ReplicaConfig};
use crate::cyrus::host_facts::{channel_clients, cyrus_master};
use crate::cyrus::loglines::{LineKind, LogEvent};
use crate::cyrus::probe::{ProbeReport, Proc, ServiceEntry, SyncFile};
use std::collections::BTreeMap;

/// Log lines younger than this count as current.
/// Pending entries above which a switchover would wait too long to drain
/// (a pair's `failover_max_pending` overrides it).
pub const DEFAULT_MAX_PENDING: u64 = 100_000;
pub const RECENT_SECS: i64 = 60;
/// Bail-outs within RECENT_SECS that mean a hot loop.
const HOT_LOOP_BAILOUTS: usize = 5;
/// `log-run` unchanged this long (and over two refreshes or more) while
/// entries are pending: the client is not getting through its batch.
pub const LOG_RUN_STALL_SECS: u64 = 30;
/// No new Cyrus line for this long while the queue changes or holds
/// entries: the log source is probably no longer written.
pub const LOG_QUIET_SECS: u64 = 300;

/// What the poller knows of one host at evaluation time.
pub struct HostView<'a> {
    pub cfg: &'a HostConfig,
    /// This refresh's failure, if it failed.
    pub error: Option<String>,
    pub history: &'a HostHistory,
    pub probe_ms: Option<u64>,
    pub probe_bytes: Option<usize>,
}

impl HostView<'_> {
    fn report(&self) -> Option<&ProbeReport> {
        self.history.last_report.as_ref().map(|(r, _)| r)
    }
    fn age(&self) -> Option<f64> {
        self.history
            .last_report
            .as_ref()
            .map(|(_, t)| t.elapsed().as_secs_f64())
    }
}

fn well_known_port(name: &str) -> Option<u16> {
    Some(match name {
        "imap" => 143,
        "imaps" => 993,
        "pop3" => 110,
        "pop3s" => 995,
        "lmtp" => 24,
        "sieve" => 4190,
        "csync" => 2005,
        "http" => 80,
        "https" => 443,
        _ => return None,
    })
}

/// Whether a cyrus.conf `listen=` value is among the listening sockets.
/// None when it cannot be told (unix socket, unknown service name).
fn is_listening(listen: &str, sockets: &[String]) -> Option<bool> {
    if listen.starts_with('/') || sockets.iter().any(|s| s == "?") {
        return None;
    }
    let (addr, port) = match listen.rsplit_once(':') {
        Some((a, p)) => (Some(a.trim_matches(['[', ']'])), p),
        None => (None, listen),
    };
    let port: u16 = port.parse().ok().or_else(|| well_known_port(port))?;
    Some(sockets.iter().any(|s| {
        let Some((sa, sp)) = s.rsplit_once(':') else {
            return false;
        };
        let sa = sa.trim_matches(['[', ']']);
        sp == port.to_string()
            && (matches!(sa, "*" | "0.0.0.0" | "::") || addr.is_none_or(|a| a == sa))
    }))
}

fn services(r: &ProbeReport) -> Vec<ServiceState> {
    r.services
        .iter()
        .filter(|s: &&ServiceEntry| s.section == "SERVICES")
        .filter_map(|s| {
            let listen = s.listen.clone()?;
            Some(ServiceState {
                name: s.name.clone(),
                listening: is_listening(&listen, &r.listening)?,
                listen,
            })
        })
        .collect()
}

fn host_status(v: &HostView, role: &'static str) -> HostStatus {
    let conf = v.cfg.imapd_conf.display().to_string();
    let r = v.report();
    let master = r.and_then(|r| cyrus_master(r, &conf));
    HostStatus {
        name: v.cfg.name.clone(),
        role,
        ssh: v.cfg.target.to_string(),
        reachable: v.error.is_none() && r.is_some(),
        error: v.error.clone(),
        data_age_secs: v.age(),
        cyrus_version: r.and_then(|r| r.version.clone()),
        master_running: master.is_some(),
        master_pid: master.map(|p| p.pid),
        services: r.map(services).unwrap_or_default(),
        sync_server: r.and_then(|r| r.sync_server.clone()),
        log_quiet_secs: match (r, v.history.log_grew_at()) {
            (Some(r), Some(t)) if r.log.is_some() => Some(r.now.saturating_sub(t)),
            _ => None,
        },
        log_error: match r {
            Some(_) if !v.cfg.reads_log() => {
                Some("no syslog_file configured (nor log_source = \"journal\"): Cyrus's log lines are not read".into())
            }
            Some(r) => r.log_error.clone(),
            None => None,
        },
        probe_ms: v.probe_ms,
        probe_bytes: v.probe_bytes,
        writes_refused: r.and_then(|r| r.shutdown.clone()),
    }
}

/// A master with `msg/shutdown` takes no mail: CRITICAL, naming the
/// cyrdeck run that fenced it (its id ends in the epoch ms it started) and
/// how long ago, or the site's own message. On a replica a fence is the
/// normal state of an ex-master: a note.
fn fence_finding(
    h: &HostStatus,
    is_master: bool,
    now: Option<u64>,
) -> Option<Result<String, Problem>> {
    let line = h.writes_refused.as_ref()?;
    let run = line
        .split_once("(run ")
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(id, _)| id.to_string());
    let ago = run
        .as_deref()
        .and_then(|id| id.rsplit('-').next()?.parse::<u64>().ok())
        .zip(now)
        .filter(|(ms, now)| *ms / 1000 <= *now && *ms > 1_000_000_000_000)
        .map(|(ms, now)| format!(", {} ago", super::human::secs((now - ms / 1000) as f64)))
        .unwrap_or_default();
    let whose = match &run {
        Some(id) => format!("the fence of cyrdeck run {id}{ago}: `cyrdeck runbook list` says whether it is still open; an abandoned one is lifted with `cyrdeck runbook unlock`"),
        None => format!("msg/shutdown says {line:?}"),
    };
    Some(if is_master {
        Err(problem(
            Health::Critical,
            &h.name,
            None,
            format!(
                "writes are stopped on master {}: every delivery is refused (LMTP 421): {whose}",
                h.name
            ),
        ))
    } else {
        // a replica's fence keeps clients that still reach it from writing
        // there: nothing to lift, so no unlock advice
        let by = match &run {
            Some(id) => format!("fenced by cyrdeck run {id}{ago}"),
            None => format!("msg/shutdown says {line:?}"),
        };
        Ok(format!(
            "{} (replica) refuses writes: {by} (normal for an ex-master)",
            h.name
        ))
    })
}

/// A master and a replica on different Cyrus releases: a note (upgrade
/// direction), or a problem (replica older: unsupported).
fn release_mix(m: &HostStatus, r: &HostStatus) -> Option<Result<String, Problem>> {
    use super::releases::{assess, describe, Mix};
    let mix = assess(m.cyrus_version.as_deref()?, r.cyrus_version.as_deref()?)?;
    let text = describe(&mix, &m.name, &r.name)?;
    Some(match mix {
        Mix::Downgrade { .. } => Err(problem(Health::Warning, &r.name, None, text)),
        _ => Ok(text),
    })
}

fn file_status(f: &SyncFile) -> FileStatus {
    FileStatus {
        name: f.name.clone(),
        lines: f.lines,
        bytes: f.size,
        mtime: f.mtime,
    }
}

fn problem(sev: Health, host: &str, channel: Option<&str>, msg: String) -> Problem {
    Problem {
        severity: sev,
        host: Some(host.to_string()),
        channel: channel.map(channel_label),
        message: msg,
    }
}

pub fn channel_label(c: &str) -> String {
    if c.is_empty() {
        "default".into()
    } else {
        c.to_string()
    }
}

struct ChannelEval {
    status: ChannelStatus,
    problems: Vec<Problem>,
    /// What the operator should know that is not a problem.
    notes: Vec<String>,
}

/// What one channel's rules and status read, gathered once from the
/// master's report and history so every rule sees the same values.
struct ChannelCtx<'a> {
    cfg: &'a Config,
    history: &'a HostHistory,
    report: Option<&'a ProbeReport>,
    channel: &'a str,
    label: String,
    /// The master's name.
    mname: &'a str,
    /// The replica's name.
    rname: &'a str,
    replica_status: &'a HostStatus,
    now: u64,
    client: Option<&'a Proc>,
    /// The master's sync_client events younger than RECENT_SECS.
    recent: Vec<&'a LogEvent>,
    connects: Vec<&'a LogEvent>,
    backoff_secs: Option<u64>,
    bailouts: usize,
    files: Vec<&'a SyncFile>,
    log_lines: u64,
    log_run_lines: u64,
    pending: u64,
    oldest_age: Option<u64>,
    rate: Option<f64>,
    held: Vec<FileStatus>,
    log_run_same: Option<Unchanged>,
}

impl<'a> ChannelCtx<'a> {
    /// Computes every input of the channel's rules up front, from the
    /// master's latest report and kept history.
    fn gather(
        cfg: &'a Config,
        master: &'a HostView,
        replica: &'a HostView,
        replica_status: &'a HostStatus,
        channel: &'a str,
        conf: &'a str,
    ) -> Self {
        let history = master.history;
        let report = master.report();
        let now = report.map(|r| r.now).unwrap_or(0);
        let recent = recent_client_events(history, now, channel);
        let connects: Vec<&LogEvent> = recent
            .iter()
            .copied()
            .filter(|e| e.kind == LineKind::ConnectFailure)
            .collect();
        let bailouts = recent
            .iter()
            .filter(|e| e.kind == LineKind::BailingOut)
            .count();
        let files = channel_files(report, channel);
        let (log_lines, log_run_lines) =
            (queue_lines(&files, "log"), queue_lines(&files, "log-run"));
        let pending = log_lines + log_run_lines;
        let since = report.and_then(|r| history.oldest_pending_since(channel, &r.sync_files));
        ChannelCtx {
            cfg,
            history,
            report,
            channel,
            label: channel_label(channel),
            mname: master.cfg.name.as_str(),
            rname: replica.cfg.name.as_str(),
            replica_status,
            now,
            client: report.and_then(|r| channel_clients(r, conf, channel).next()),
            recent,
            backoff_secs: backoff_secs(&connects),
            connects,
            bailouts,
            held: held_files(&files),
            files,
            log_lines,
            log_run_lines,
            pending,
            oldest_age: since.map(|s| now.saturating_sub(s)),
            rate: history.drain_rate(channel),
            log_run_same: history
                .log_run_unchanged(channel, now)
                .filter(|_| pending > 0),
        }
    }

    /// A problem of this channel, on the master.
    fn on_master(&self, sev: Health, msg: String) -> Problem {
        problem(sev, self.mname, Some(self.channel), msg)
    }

    /// A problem of this channel, on the replica.
    fn on_replica(&self, sev: Health, msg: String) -> Problem {
        problem(sev, self.rname, Some(self.channel), msg)
    }
}

/// The master's sync_client events of this channel younger than
/// RECENT_SECS (undated ones count): only current lines raise problems, so
/// a healed pair turns OK. A line is the channel's whose client pid wrote
/// it (issue 30, item 3: another channel's bail-outs were shown here);
/// a line of a pid never tied to a channel counts only where the master
/// has one channel.
fn recent_client_events<'h>(
    history: &'h HostHistory,
    now: u64,
    channel: &str,
) -> Vec<&'h LogEvent> {
    let alone = history.channels_watched() <= 1;
    history
        .events
        .iter()
        .filter(|e| e.service == "sync_client")
        .filter(|e| e.time.is_none_or(|t| now as i64 - t <= RECENT_SECS))
        .filter(|e| match e.pid.and_then(|p| history.channel_of_pid(p)) {
            Some(ch) => ch == channel,
            None => alone,
        })
        .collect()
}

/// The client's retry interval: the gap between its last two connect
/// failures, when both are dated and in order.
fn backoff_secs(connects: &[&LogEvent]) -> Option<u64> {
    match connects {
        [.., a, b] => match (a.time, b.time) {
            (Some(x), Some(y)) if y > x => Some((y - x) as u64),
            _ => None,
        },
        _ => None,
    }
}

/// The files of the channel's sync directory, as the master's probe listed
/// them (none without a report).
fn channel_files<'r>(report: Option<&'r ProbeReport>, channel: &str) -> Vec<&'r SyncFile> {
    report
        .map(|r| {
            r.sync_files
                .iter()
                .filter(|f| f.channel == channel)
                .collect()
        })
        .unwrap_or_default()
}

/// Lines in the queue file `name` (0 when absent): what is pending.
fn queue_lines(files: &[&SyncFile], name: &str) -> u64 {
    files
        .iter()
        .find(|f| f.name == name)
        .map(|f| f.lines)
        .unwrap_or(0)
}

/// Files holding entries set aside: not the queue, not the shutdown file,
/// not Cyrus 3.12's own deferral markers (skipuser-*, not held queue
/// files), not a runbook's archived queue (a note instead).
fn held_files(files: &[&SyncFile]) -> Vec<FileStatus> {
    files
        .iter()
        .filter(|f| !is_queue_file(&f.name) && f.name != "shutdown")
        .filter(|f| !f.name.starts_with("skipuser-"))
        .filter(|f| archived_queue(&f.name).is_none())
        .map(|f| file_status(f))
        .collect()
}

/// The worst severity among the problems (OK when there are none).
fn worst_health(problems: &[Problem]) -> Health {
    problems
        .iter()
        .fold(Health::Ok, |h, p| Health::worst(h, p.severity))
}

/// One channel of a pair: its client, its queue, and what its rules find.
fn channel_status(
    cfg: &Config,
    master: &HostView,
    replica: &HostView,
    replica_status: &HostStatus,
    channel: &str,
) -> ChannelEval {
    let conf = master.cfg.imapd_conf.display().to_string();
    let ctx = ChannelCtx::gather(cfg, master, replica, replica_status, channel, &conf);
    let client = client_status(&ctx);
    let problems = channel_problems(&ctx, &client);
    let notes = archive_notes(&ctx.label, &ctx.files);
    ChannelEval {
        status: ChannelStatus {
            channel: channel.to_string(),
            master: ctx.mname.to_string(),
            replica: replica.cfg.name.clone(),
            health: worst_health(&problems),
            client,
            queue: queue_status(ctx),
            heartbeat: None,
        },
        problems,
        notes,
    }
}

/// The channel's client as status shows it: its process, and what its
/// recent log lines say (connect failures, bail-outs, progress).
fn client_status(ctx: &ChannelCtx) -> ClientStatus {
    let client = ctx.client;
    ClientStatus {
        running: client.is_some(),
        pid: client.map(|p| p.pid),
        age_secs: client.map(|p| p.age_secs),
        restarts_seen: ctx.history.restarts(ctx.channel),
        backoff_secs: ctx.backoff_secs,
        last_connect_failure: ctx.connects.last().map(|e| e.text.clone()),
        recent_bailouts: ctx.bailouts,
        last_bailout_at: ctx
            .recent
            .iter()
            .filter(|e| e.kind == LineKind::BailingOut)
            .filter_map(|e| e.time)
            .max(),
        state: client.map(|p| p.state.clone()).filter(|s| !s.is_empty()),
        secs_since_progress: ctx
            .history
            .since_progress(ctx.channel, ctx.now)
            .filter(|_| ctx.pending > 0),
    }
}

/// Every health rule of the channel, in the order its problems are listed;
/// none without a master report (the host's own problem says why).
fn channel_problems(ctx: &ChannelCtx, client: &ClientStatus) -> Vec<Problem> {
    let mut problems = Vec::new();
    if ctx.report.is_none() {
        return problems;
    }
    problems.extend(client_missing(ctx));
    problems.extend(
        not_moving(client, ctx.log_run_same, ctx.pending, &ctx.label)
            .map(|(sev, msg)| ctx.on_master(sev, msg)),
    );
    problems.extend(replica_down(ctx));
    problems.extend(connect_failures(ctx));
    problems.extend(bailout_problem(ctx, client));
    problems.extend(lag_problem(ctx));
    problems.extend(pending_problem(ctx));
    problems.extend(skip_marker_problems(ctx));
    problems.extend(held_problem(ctx));
    problems
}

/// Critical: no rolling sync_client for the channel, so nothing replays
/// its queue.
fn client_missing(ctx: &ChannelCtx) -> Option<Problem> {
    if ctx.client.is_some() {
        return None;
    }
    let (label, mname) = (&ctx.label, ctx.mname);
    Some(ctx.on_master(
        Health::Critical,
        format!("rolling sync_client for channel {label} is not running on {mname}"),
    ))
}

/// Critical: the reachable replica cannot take entries (Cyrus down, or its
/// sync_server does not answer).
fn replica_down(ctx: &ChannelCtx) -> Option<Problem> {
    let (label, pending, rname) = (&ctx.label, ctx.pending, ctx.rname);
    let rs = ctx.replica_status;
    if rs.reachable && !rs.master_running {
        Some(ctx.on_replica(
            Health::Critical,
            format!(
                "channel {label}: Cyrus is not running on replica {rname}; {pending} entries pending"
            ),
        ))
    } else if rs.reachable && rs.sync_server.as_ref().is_some_and(|s| !s.answered) {
        Some(ctx.on_replica(
            Health::Critical,
            format!(
                "channel {label}: sync_server on replica {rname} does not answer; {pending} entries pending"
            ),
        ))
    } else {
        None
    }
}

/// Warning: recent connect failures to the replica, with the retry
/// interval when it can be told.
fn connect_failures(ctx: &ChannelCtx) -> Option<Problem> {
    if ctx.connects.is_empty() {
        return None;
    }
    let label = &ctx.label;
    let n = ctx.connects.len();
    if ctx.pending == 0 && ctx.client.is_some() {
        // current evidence wins, as for bail-outs: the queue is empty and a
        // client runs, so it connects again; the failures stay a note
        let until = ctx
            .connects
            .last()
            .and_then(|e| e.time)
            .map(|t| format!(", until {}", super::human::clock(t)))
            .unwrap_or_default();
        return Some(ctx.on_master(
            Health::Warning,
            format!("channel {label}: recovered (queue empty); sync_client could not connect to the replica {n} times in {RECENT_SECS}s{until}"),
        ));
    }
    let mut msg = format!(
        "channel {label}: sync_client cannot connect to the replica ({n} failures in {RECENT_SECS}s"
    );
    if let Some(b) = ctx.backoff_secs {
        msg.push_str(&format!(", retrying every {b}s"));
    }
    msg.push(')');
    Some(ctx.on_master(Health::Warning, msg))
}

/// Recent bail-outs: recovered when the queue is empty (current evidence
/// wins), critical in a hot loop, else a warning.
fn bailout_problem(ctx: &ChannelCtx, client: &ClientStatus) -> Option<Problem> {
    let (label, bailouts) = (&ctx.label, ctx.bailouts);
    if bailouts > 0 && ctx.pending == 0 {
        // current evidence wins: the queue is empty, so it recovered
        Some(ctx.on_master(
            Health::Warning,
            format!(
                "channel {label}: recovered (queue empty); sync_client bailed out {bailouts} times in {RECENT_SECS}s{}",
                client
                    .last_bailout_at
                    .map(|t| format!(", until {}", super::human::clock(t)))
                    .unwrap_or_default()
            ),
        ))
    } else if bailouts >= HOT_LOOP_BAILOUTS {
        Some(ctx.on_master(
            Health::Critical,
            format!("channel {label}: sync_client bailed out {bailouts} times in {RECENT_SECS}s (hot loop: a mailbox may block replication)"),
        ))
    } else if bailouts > 0 {
        Some(ctx.on_master(
            Health::Warning,
            format!("channel {label}: sync_client bailed out {bailouts} times in {RECENT_SECS}s"),
        ))
    } else {
        None
    }
}

/// Lag: the oldest pending entry's age against crit_lag, then warn_lag.
fn lag_problem(ctx: &ChannelCtx) -> Option<Problem> {
    let age = ctx.oldest_age?;
    let sev = if age >= ctx.cfg.thresholds.crit_lag.as_secs() {
        Health::Critical
    } else if age >= ctx.cfg.thresholds.warn_lag.as_secs() {
        Health::Warning
    } else {
        return None;
    };
    let label = &ctx.label;
    Some(ctx.on_master(
        sev,
        format!("channel {label}: oldest pending entry is {age}s old"),
    ))
}

/// Warning: more entries pending than warn_pending.
fn pending_problem(ctx: &ChannelCtx) -> Option<Problem> {
    let (label, pending) = (&ctx.label, ctx.pending);
    (pending >= ctx.cfg.thresholds.warn_pending).then(|| {
        ctx.on_master(
            Health::Warning,
            format!("channel {label}: {pending} entries pending"),
        )
    })
}

/// Warning per Cyrus skipuser- marker, saying what it does on this channel.
fn skip_marker_problems(ctx: &ChannelCtx) -> Vec<Problem> {
    let label = &ctx.label;
    // seen on 3.12.3: with no channel name the client does not defer the
    // user, it bails out on it ("Mailbox is locked") in a hot loop and
    // every other user waits
    let effect = if ctx.channel.is_empty() {
        "on the default channel Cyrus does not defer the user, the client bails out on it (use cyrdeck's quarantine instead)"
    } else {
        "Cyrus defers this user's changes on this channel until the file is removed"
    };
    ctx.files
        .iter()
        .filter_map(|f| f.name.strip_prefix("skipuser-"))
        .map(|user| {
            ctx.on_master(
                Health::Warning,
                format!("channel {label}: Cyrus skip marker skipuser-{user}: {effect}"),
            )
        })
        .collect()
}

/// Warning: held files keep entries out of the queue.
fn held_problem(ctx: &ChannelCtx) -> Option<Problem> {
    if ctx.held.is_empty() {
        return None;
    }
    let label = &ctx.label;
    let n: u64 = ctx.held.iter().map(|h| h.lines).sum();
    Some(ctx.on_master(
        Health::Warning,
        format!(
            "channel {label}: {} held file(s) with {n} entries set aside",
            ctx.held.len()
        ),
    ))
}

/// The channel's queue as status shows it; takes the context because its
/// held files move into the status.
fn queue_status(ctx: ChannelCtx) -> QueueStatus {
    let (report, channel, pending) = (ctx.report, ctx.channel, ctx.pending);
    let groups = pending_groups(&ctx);
    let users = report
        .and_then(|r| r.pending_users.get(channel).cloned())
        .unwrap_or_default();
    let users_total = report
        .and_then(|r| r.pending_users_total.get(channel).copied())
        .unwrap_or(users.len() as u64);
    let distinct = report
        .and_then(|r| r.pending_distinct.get(channel).copied())
        .unwrap_or(groups.len() as u64);
    QueueStatus {
        pending,
        log_lines: ctx.log_lines,
        log_run_lines: ctx.log_run_lines,
        files: ctx
            .files
            .iter()
            .filter(|f| is_queue_file(&f.name))
            .map(|f| file_status(f))
            .collect(),
        held: ctx.held,
        oldest_entry: report.and_then(|r| r.oldest_entry.get(channel).cloned()),
        oldest_pending_age_secs: ctx.oldest_age,
        drain_rate_per_sec: ctx.rate,
        time_to_drain_secs: ctx.rate.filter(|r| *r > 0.0).map(|r| pending as f64 / r),
        log_run_unchanged_secs: ctx.log_run_same.map(|u| u.secs),
        top: top_entries(report, channel),
        groups,
        distinct_entries: distinct,
        users,
        users_total,
    }
}

/// The channel's most frequent pending entries, decoded.
fn top_entries(report: Option<&ProbeReport>, channel: &str) -> Vec<PendingEntry> {
    report
        .and_then(|r| r.pending_top.get(channel))
        .map(|v| {
            v.iter()
                .map(|(c, e)| PendingEntry::from_line(*c, e))
                .collect()
        })
        .unwrap_or_default()
}

/// The channel's queue files in queue order (log-run, then log, as the
/// probe reads them) with their birth: what dates a pending entry.
fn queue_files(ctx: &ChannelCtx) -> Vec<QueueFile> {
    ["log-run", "log"]
        .iter()
        .filter_map(|n| ctx.files.iter().find(|f| f.name == *n))
        .map(|f| QueueFile {
            name: f.name.clone(),
            lines: f.lines,
            born: ctx.history.born(ctx.channel, f),
            mtime: f.mtime,
        })
        .collect()
}

/// Distinct pending entries in queue order, each dated by the queue file
/// its first occurrence was written to.
fn pending_groups(ctx: &ChannelCtx) -> Vec<PendingEntry> {
    let files = queue_files(ctx);
    ctx.report
        .and_then(|r| r.pending_groups.get(ctx.channel))
        .map(|v| {
            v.iter()
                .map(|(c, first, e)| PendingEntry {
                    written: queue_age::written(*first, &files),
                    ..PendingEntry::from_line(*c, e)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One note per runbook run whose archived queue is still in the channel's
/// directory: kept for the record, the operator deletes it when satisfied.
fn archive_notes(label: &str, files: &[&SyncFile]) -> Vec<String> {
    let mut runs: BTreeMap<(&str, &str), (u64, Vec<&str>)> = BTreeMap::new();
    for f in files {
        if let Some(key) = archived_queue(&f.name) {
            let e = runs.entry(key).or_default();
            e.0 += f.lines;
            e.1.push(&f.name);
        }
    }
    runs.into_iter()
        .map(|((word, run), (n, names))| {
            format!(
                "channel {label}: queue {word} by run {run} kept ({n} entries in {}; never replayed, delete when no longer needed)",
                names.join(", ")
            )
        })
        .collect()
}

/// Why a queue with entries does not move, when the client is there: it
/// is stopped (SIGSTOP), or its batch (`log-run`) has not changed across
/// refreshes (hung: e.g. waiting forever on a spinning sync_server).
fn not_moving(
    client: &ClientStatus,
    log_run: Option<Unchanged>,
    pending: u64,
    label: &str,
) -> Option<(Health, String)> {
    let pid = client.pid?;
    let since = client
        .secs_since_progress
        .map(|s| format!("; no progress for {}", super::human::secs(s as f64)))
        .unwrap_or_default();
    if client.stopped() {
        return Some((
            Health::Critical,
            format!(
                "channel {label}: sync_client {pid} is stopped (process state {}: SIGSTOP?), {pending} entries pending{since}",
                client.state.as_deref().unwrap_or("T")
            ),
        ));
    }
    let u = log_run.filter(|u| u.refreshes >= 2 && u.secs >= LOG_RUN_STALL_SECS)?;
    Some((
        Health::Warning,
        format!(
            "channel {label}: log-run unchanged for {} with {pending} entries pending: sync_client {pid} (state {}) is not getting through its batch{since}",
            super::human::secs(u.secs as f64),
            client.state.as_deref().unwrap_or("?")
        ),
    ))
}

/// The master's log source stopped growing while the pair is busy
/// (entries pending, or the queue changed since the last line).
fn log_quiet_problem(v: &HostView, pending: u64, channels: &[String]) -> Option<Problem> {
    let r = v.report()?;
    r.log.as_ref()?;
    let grew = v.history.log_grew_at()?;
    let quiet = r.now.saturating_sub(grew);
    let busy = pending > 0
        || channels
            .iter()
            .any(|c| v.history.queue_changed_at(c).is_some_and(|t| t > grew));
    (quiet >= LOG_QUIET_SECS && busy).then(|| {
        let source = match &v.cfg.syslog_file {
            Some(f) => format!("still writing {}", f.display()),
            None => "(the journal) still receiving Cyrus's lines".into(),
        };
        problem(
            Health::Warning,
            &v.cfg.name,
            None,
            format!(
                "{}: no Cyrus lines for {} while the pair is busy: is syslog {source}?",
                v.cfg.name,
                super::human::secs(quiet as f64)
            ),
        )
    })
}

fn host_problems(h: &HostStatus, is_master: bool) -> Vec<Problem> {
    let mut p = Vec::new();
    if !h.reachable {
        let age = h
            .data_age_secs
            .map(|a| format!(" (last data {a:.0}s old)"))
            .unwrap_or_default();
        p.push(problem(
            Health::Critical,
            &h.name,
            None,
            format!(
                "{} is unreachable: {}{age}",
                h.name,
                h.error.as_deref().unwrap_or("no data")
            ),
        ));
        return p;
    }
    if !h.master_running {
        p.push(problem(
            Health::Critical,
            &h.name,
            None,
            format!("Cyrus master process is not running on {}", h.name),
        ));
    }
    if let Some(e) = &h.log_error {
        p.push(problem(
            Health::Warning,
            &h.name,
            None,
            format!("{}: {e}", h.name),
        ));
    }
    for s in h.services.iter().filter(|s| !s.listening) {
        let sev = if is_master || s.name.contains("sync") {
            Health::Critical
        } else {
            Health::Warning
        };
        p.push(problem(
            sev,
            &h.name,
            None,
            format!(
                "service {} on {} is not listening on {}",
                s.name, h.name, s.listen
            ),
        ));
    }
    p
}

/// The verdict for one pair.
pub fn evaluate_pair<'a>(
    cfg: &Config,
    pair: &PairConfig,
    view: &dyn Fn(&str) -> HostView<'a>,
) -> PairStatus {
    let mv = view(&pair.master);
    let now = mv.report().map(|r| r.now);
    let mut hosts = vec![host_status(&mv, "master")];
    let mut problems = host_problems(&hosts[0], true);
    let mut channels = Vec::new();
    let mut notes = Vec::new();
    if let Some(Err(p)) = fence_finding(&hosts[0], true, now) {
        problems.push(p);
    }
    for r in &pair.replicas {
        let rv = view(&r.host);
        let rs = host_status(&rv, "replica");
        problems.extend(host_problems(&rs, false));
        if let Some(Ok(note)) = fence_finding(&rs, false, now) {
            notes.push(note);
        }
        match release_mix(&hosts[0], &rs) {
            Some(Err(p)) => problems.push(p),
            Some(Ok(note)) => notes.push(note),
            None => {}
        }
        let mut ce = channel_status(cfg, &mv, &rv, &rs, &r.channel);
        problems.extend(ce.problems);
        notes.extend(ce.notes);
        if let Some((status, problem)) = replica_heartbeat(cfg, pair, r, &mv, &rv) {
            ce.status.heartbeat = Some(status);
            problems.extend(problem.map(|mut p| {
                p.channel = Some(r.channel.clone());
                p
            }));
        }
        channels.push(ce.status);
        hosts.push(rs);
    }
    let pending: u64 = channels.iter().map(|c| c.queue.pending).sum();
    let names: Vec<String> = pair.replicas.iter().map(|r| r.channel.clone()).collect();
    problems.extend(log_quiet_problem(&mv, pending, &names));
    // every kept event feeds the stuck list (borrowed); the newest 200 per
    // host are shown
    let hosts_of_pair: Vec<&String> = std::iter::once(&pair.master)
        .chain(pair.replicas.iter().map(|r| &r.host))
        .collect();
    let views: Vec<(&String, HostView)> = hosts_of_pair.iter().map(|h| (*h, view(h))).collect();
    let events = shown_events(&views);
    let stuck = super::stuck::stuck_entries(
        views
            .iter()
            .flat_map(|(h, v)| v.history.events.iter().map(move |e| (h.as_str(), e))),
        &channels,
        replicated_since(pair, &mv),
    );
    problems.extend(stuck_problems(&mv, &stuck));
    problems.sort_by_key(|p| std::cmp::Reverse(p.severity.rank()));
    PairStatus {
        name: pair.name.clone(),
        health: worst_health(&problems),
        notes,
        hosts,
        channels,
        problems,
        events,
        stuck,
        failover_max_pending: pair.failover_max_pending.unwrap_or(DEFAULT_MAX_PENDING),
    }
}

/// The measured lag of one replica, when the pair has a heartbeat and the
/// master reported: its status, and a problem when it is late or missing.
fn replica_heartbeat(
    cfg: &Config,
    pair: &PairConfig,
    r: &ReplicaConfig,
    mv: &HostView,
    rv: &HostView,
) -> Option<(HeartbeatStatus, Option<Problem>)> {
    let (hb, mr) = (pair.heartbeat.as_ref()?, mv.report()?);
    Some(super::heartbeat::evaluate(
        &hb.user,
        mr.heartbeat,
        rv.report().and_then(|r| r.heartbeat),
        mr.now,
        super::heartbeat::Bounds {
            warn_lag_secs: cfg.thresholds.warn_lag.as_secs(),
            crit_lag_secs: cfg.thresholds.crit_lag.as_secs(),
            interval_secs: hb.interval.as_secs(),
        },
        (&pair.master, &r.host),
    ))
}

/// The events status shows: the newest 200 kept per host, oldest first.
fn shown_events(views: &[(&String, HostView)]) -> Vec<HostEvent> {
    let mut events = Vec::new();
    for (h, v) in views {
        let kept = &v.history.events;
        events.extend(
            kept.iter()
                .skip(kept.len().saturating_sub(200))
                .map(|e| HostEvent {
                    host: (*h).clone(),
                    event: e.clone(),
                }),
        );
    }
    events.sort_by_key(|e| e.event.time.unwrap_or(0));
    events
}

/// Since when every channel's queue has been seen empty: failures before
/// that are over (None until each channel drained once).
fn replicated_since(pair: &PairConfig, mv: &HostView) -> Option<i64> {
    pair.replicas
        .iter()
        .map(|r| mv.history.last_drained(&r.channel))
        .collect::<Option<Vec<u64>>>()
        .and_then(|v| v.into_iter().min())
        .map(|t| t as i64)
}

/// A user failing right now is a problem even when nothing bails out
/// (a corrupt replica index makes sync_server spin while the client waits).
fn stuck_problems(mv: &HostView, stuck: &[StuckEntry]) -> Vec<Problem> {
    let now = mv.history.last_report.as_ref().map(|(r, _)| r.now as i64);
    stuck
        .iter()
        .filter(|s| s.attempts > 0)
        .filter(|s| match (now, s.last_seen) {
            (Some(n), Some(t)) => n - t <= RECENT_SECS,
            _ => false,
        })
        .map(|s| {
            problem(
                Health::Warning,
                &s.host,
                None,
                format!(
                    "{} keeps failing on {} ({} errors; last: {})",
                    s.subject(),
                    s.host,
                    s.attempts,
                    s.last_error.chars().take(120).collect::<String>()
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fence_is_critical_on_a_master_and_a_note_on_a_replica() {
        let mut h = HostStatus {
            name: "mx1".into(),
            role: "master",
            ssh: "root@mx1:22".into(),
            reachable: true,
            error: None,
            data_age_secs: None,
            cyrus_version: None,
            master_running: true,
            master_pid: None,
            services: vec![],
            sync_server: None,
            log_error: None,
            log_quiet_secs: None,
            probe_ms: None,
            probe_bytes: None,
            writes_refused: None,
        };
        assert!(fence_finding(&h, true, Some(2_000_000_000)).is_none());
        h.writes_refused = Some("cyrdeck failover fence (run vm-7-1999999400000): stopped".into());
        let Some(Err(p)) = fence_finding(&h, true, Some(2_000_000_000)) else {
            panic!("a fenced master is a problem");
        };
        assert_eq!(p.severity, Health::Critical);
        assert!(
            p.message
                .contains("cyrdeck run vm-7-1999999400000, 10m ago"),
            "{}",
            p.message
        );
        let Some(Ok(note)) = fence_finding(&h, false, Some(2_000_000_000)) else {
            panic!("a fenced replica is a note");
        };
        assert!(note.contains("normal for an ex-master"), "{note}");
        assert!(
            note.contains("fenced by cyrdeck run vm-7-1999999400000, 10m ago"),
            "{note}"
        );
        assert!(
            !note.contains("unlock"),
            "a replica's fence is not to be lifted: {note}"
        );
        // a run id without a time, or a time in the future: no "ago"
        h.writes_refused = Some("cyrdeck failover fence (run x-9): stopped".into());
        let Some(Err(p)) = fence_finding(&h, true, Some(2_000_000_000)) else {
            panic!()
        };
        assert!(p.message.contains("cyrdeck run x-9:"), "{}", p.message);
        h.writes_refused = Some("maintenance until 6".into());
        let Some(Err(p)) = fence_finding(&h, true, None) else {
            panic!()
        };
        assert!(
            p.message.contains("\"maintenance until 6\""),
            "{}",
            p.message
        );
    }

    #[test]
    fn listening_checks() {
        let s = vec![
            "127.0.0.1:24100".to_string(),
            "0.0.0.0:143".into(),
            "[::]:993".into(),
        ];
        assert_eq!(is_listening("127.0.0.1:24100", &s), Some(true));
        assert_eq!(is_listening("127.0.0.2:24100", &s), Some(false));
        assert_eq!(is_listening("imap", &s), Some(true));
        assert_eq!(is_listening("imaps", &s), Some(true));
        assert_eq!(is_listening("/run/lmtp", &s), None);
        assert_eq!(is_listening("weird", &s), None);
    }

    /// A master with a rolling client and a replica that answers, as the
    /// poller would have them after refreshes fed to `observe_queue`.
    mod pair {
        use super::super::*;
        use crate::cyrus::loglines::LogEvent;
        use crate::cyrus::probe::{LogChunk, Proc, SyncServerCheck};

        pub fn cfg(defaults: &str) -> Config {
            let text = format!(
                "[defaults]\n{defaults}\n[hosts.m]\nssh = \"root@127.0.0.1:1\"\n\
                 syslog_file = \"/var/log/cyrus.log\"\n[hosts.r]\nssh = \"root@127.0.0.2:1\"\n\
                 syslog_file = \"/var/log/cyrus.log\"\n[pairs.p]\nmaster = \"m\"\nreplicas = [ {{ host = \"r\" }} ]\n"
            );
            Config::parse(
                std::path::Path::new("t.toml"),
                &text,
                std::path::Path::new("/nonexistent"),
            )
            .unwrap()
        }

        fn proc_(pid: u32, state: &str, args: &str) -> Proc {
            Proc {
                pid,
                ppid: 1,
                age_secs: 300,
                state: state.into(),
                args: args.into(),
            }
        }

        pub fn log_run(inode: u64, lines: u64) -> SyncFile {
            queue_file("log-run", inode, lines)
        }

        pub fn queue_file(name: &str, inode: u64, lines: u64) -> SyncFile {
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

        /// The master after a refresh at `now` seeing `files`, its client
        /// in `state`, and new log text or none.
        pub fn refresh(
            h: &mut HostHistory,
            now: u64,
            state: &str,
            files: Vec<SyncFile>,
            new_log: bool,
        ) {
            h.observe_queue("", now, &files);
            h.observe_log(now, new_log);
            let report = ProbeReport {
                now,
                processes: vec![
                    proc_(1, "Ss", "/usr/sbin/cyrmaster -d"),
                    proc_(17101, state, "/usr/lib/cyrus/bin/sync_client -r"),
                ],
                sync_files: files,
                log: Some(LogChunk::default()),
                ..Default::default()
            };
            h.last_report = Some((report, std::time::Instant::now()));
        }

        pub fn replica(now: u64) -> HostHistory {
            let mut h = HostHistory::default();
            let report = ProbeReport {
                now,
                processes: vec![
                    proc_(1, "Ss", "/usr/sbin/cyrmaster -d"),
                    proc_(5, "S", "sync_server"),
                ],
                sync_server: Some(SyncServerCheck {
                    endpoint: None,
                    answered: true,
                    banner: None,
                }),
                ..Default::default()
            };
            h.last_report = Some((report, std::time::Instant::now()));
            h
        }

        pub fn bailout(t: i64) -> LogEvent {
            LogEvent {
                time: Some(t),
                service: "sync_client".into(),
                pid: Some(17101),
                kind: LineKind::BailingOut,
                user: None,
                mailbox: None,
                text: "Error in do_sync(): bailing out! Bad protocol".into(),
            }
        }

        pub fn evaluate(cfg: &Config, m: &HostHistory, r: &HostHistory) -> PairStatus {
            let view = |name: &str| HostView {
                cfg: cfg.host(name),
                error: None,
                history: if name == "m" { m } else { r },
                probe_ms: None,
                probe_bytes: None,
            };
            evaluate_pair(cfg, &cfg.pairs["p"], &view)
        }
    }

    fn messages(p: &PairStatus) -> Vec<(Health, String)> {
        p.problems
            .iter()
            .map(|p| (p.severity, p.message.clone()))
            .collect()
    }

    #[test]
    fn a_healthy_pair_is_ok() {
        let cfg = pair::cfg("");
        let mut m = HostHistory::default();
        for t in (1000..1020).step_by(2) {
            pair::refresh(&mut m, t, "S", vec![], true);
        }
        let p = pair::evaluate(&cfg, &m, &pair::replica(1018));
        assert_eq!(p.health, Health::Ok, "{:?}", messages(&p));
    }

    #[test]
    fn lag_over_warn_lag_secs_warns_even_without_log_lines() {
        // pending entries first seen 70 s ago, draining nothing, no log line
        let cfg = pair::cfg("");
        let mut m = HostHistory::default();
        pair::refresh(
            &mut m,
            1000,
            "S",
            vec![pair::queue_file("log", 7, 12)],
            true,
        );
        pair::refresh(
            &mut m,
            1070,
            "S",
            vec![pair::queue_file("log", 7, 19)],
            true,
        );
        let p = pair::evaluate(&cfg, &m, &pair::replica(1070));
        assert!(
            messages(&p).contains(&(
                Health::Warning,
                "channel default: oldest pending entry is 70s old".into()
            )),
            "{:?}",
            messages(&p)
        );
        // a higher warn_lag_secs: not yet
        let cfg = pair::cfg("warn_lag_secs = 120");
        let p = pair::evaluate(&cfg, &m, &pair::replica(1070));
        assert_eq!(p.health, Health::Ok, "{:?}", messages(&p));
    }

    #[test]
    fn log_run_unchanged_across_refreshes_with_entries_pending_warns() {
        // the issue's case: pending 19, oldest 22 s, the same log-run
        let cfg = pair::cfg("");
        let mut m = HostHistory::default();
        for t in (1000..=1034).step_by(2) {
            pair::refresh(&mut m, t, "S", vec![pair::log_run(7, 19)], true);
        }
        let p = pair::evaluate(&cfg, &m, &pair::replica(1034));
        assert_eq!(p.health, Health::Warning, "{:?}", messages(&p));
        let msg = &p.problems[0].message;
        assert!(
            msg.contains("log-run unchanged for 34s with 19 entries pending")
                && msg.contains("sync_client 17101 (state S)")
                && msg.contains("no progress for 34s"),
            "{msg}"
        );
        assert_eq!(p.channels[0].queue.log_run_unchanged_secs, Some(34));
        assert_eq!(p.channels[0].client.secs_since_progress, Some(34));
        // one refresh with the same log-run is not yet a stall
        let mut m = HostHistory::default();
        pair::refresh(&mut m, 1000, "S", vec![pair::log_run(7, 19)], true);
        pair::refresh(&mut m, 1040, "S", vec![pair::log_run(7, 19)], true);
        let p = pair::evaluate(&cfg, &m, &pair::replica(1040));
        assert!(
            !messages(&p).iter().any(|(_, m)| m.contains("log-run")),
            "{:?}",
            messages(&p)
        );
    }

    #[test]
    fn a_stopped_client_is_named_as_why_nothing_drains() {
        let cfg = pair::cfg("");
        let mut m = HostHistory::default();
        pair::refresh(&mut m, 1000, "T", vec![pair::log_run(7, 1809)], true);
        pair::refresh(&mut m, 1010, "T", vec![pair::log_run(7, 1809)], true);
        let p = pair::evaluate(&cfg, &m, &pair::replica(1010));
        assert_eq!(p.health, Health::Critical);
        assert_eq!(
            p.problems[0].message,
            "channel default: sync_client 17101 is stopped (process state T: SIGSTOP?), 1809 entries pending; no progress for 10s"
        );
        assert!(p.channels[0].client.stopped());
    }

    #[test]
    fn a_cyrus_skipuser_marker_is_not_a_held_file_and_is_explained() {
        let cfg = pair::cfg("");
        let mut m = HostHistory::default();
        let files = vec![
            pair::log_run(7, 3),
            pair::queue_file("skipuser-alice", 9, 0),
        ];
        pair::refresh(&mut m, 1000, "S", files, true);
        let p = pair::evaluate(&cfg, &m, &pair::replica(1000));
        let texts: Vec<String> = messages(&p).into_iter().map(|(_, m)| m).collect();
        assert!(p.channels[0].queue.held.is_empty(), "{texts:?}");
        assert!(
            texts.iter().any(|t| t.contains("skipuser-alice")
                && t.contains("on the default channel Cyrus does not defer")),
            "{texts:?}"
        );
        assert!(!texts.iter().any(|t| t.contains("held file")), "{texts:?}");
    }

    #[test]
    fn a_queue_archived_by_a_runbook_is_a_note_not_a_held_file() {
        // seen in the lab: after replace-replica retired the default
        // channel with 2 entries pending, status warned "1 held file(s)"
        // forever, the stuck list showed it and the failover precheck
        // counted it as held entries
        let cfg = pair::cfg("");
        let mut m = HostHistory::default();
        let files = vec![
            pair::queue_file("log-cyrdeck-retired-vm-1-2", 9, 2),
            pair::queue_file("log-run-cyrdeck-retired-vm-1-2", 10, 1),
            pair::queue_file("log-cyrdeck-reintegrated-x7", 11, 4),
        ];
        pair::refresh(&mut m, 1000, "S", files, true);
        let p = pair::evaluate(&cfg, &m, &pair::replica(1000));
        assert_eq!(p.health, Health::Ok, "{:?}", messages(&p));
        assert!(p.channels[0].queue.held.is_empty());
        assert!(p.stuck.is_empty(), "{:?}", p.stuck);
        assert_eq!(p.notes.len(), 2, "{:?}", p.notes);
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("queue retired by run vm-1-2 kept (3 entries")),
            "{:?}",
            p.notes
        );
        // a held file beside them still warns
        let mut m = HostHistory::default();
        let files = vec![
            pair::queue_file("log-cyrdeck-retired-vm-1-2", 9, 2),
            pair::queue_file("held-alice", 12, 5),
        ];
        pair::refresh(&mut m, 1000, "S", files, true);
        let p = pair::evaluate(&cfg, &m, &pair::replica(1000));
        assert_eq!(p.health, Health::Warning);
        assert_eq!(p.channels[0].queue.held.len(), 1);
    }

    #[test]
    fn archived_queue_names_are_read_strictly() {
        use crate::model::history::archived_queue;
        assert_eq!(
            archived_queue("log-cyrdeck-retired-r1"),
            Some(("retired", "r1"))
        );
        assert_eq!(
            archived_queue("log-run-cyrdeck-reintegrated-vm-9-1"),
            Some(("reintegrated", "vm-9-1"))
        );
        for other in [
            "log",
            "held-bob",
            "log-cyrdeck-retired-",
            "log-cyrdeck-other-r1",
            "xlog-cyrdeck-retired-r1",
        ] {
            assert_eq!(archived_queue(other), None, "{other}");
        }
    }

    #[test]
    fn bail_outs_with_the_queue_empty_read_recovered_not_critical() {
        let cfg = pair::cfg("");
        let mut m = HostHistory::default();
        pair::refresh(&mut m, 6330, "S", vec![], true);
        pair::refresh(&mut m, 6340, "S", vec![], true);
        m.push_events((0..8).map(|i| pair::bailout(6300 + i)).collect());
        let p = pair::evaluate(&cfg, &m, &pair::replica(6340));
        assert_eq!(p.health, Health::Warning, "{:?}", messages(&p));
        assert_eq!(
            p.problems[0].message,
            "channel default: recovered (queue empty); sync_client bailed out 8 times in 60s, until 01:45:07"
        );
        assert_eq!(p.channels[0].client.last_bailout_at, Some(6307));
        // the same bail-outs with entries still pending: a hot loop
        pair::refresh(&mut m, 6342, "S", vec![pair::log_run(9, 3)], true);
        let p = pair::evaluate(&cfg, &m, &pair::replica(6342));
        assert_eq!(p.health, Health::Critical, "{:?}", messages(&p));
        assert!(p.problems[0].message.contains("hot loop"));
    }

    #[test]
    fn a_log_line_counts_on_the_channel_whose_client_pid_wrote_it() {
        let mut h = HostHistory::default();
        h.observe_client("", [100]);
        h.observe_client("replica2", [200]);
        // a client of replica2 that bailed out and ended between probes
        h.observe_exit(300, "replica2".into());
        let at = |pid: u32, t: i64| LogEvent {
            pid: Some(pid),
            ..pair::bailout(t)
        };
        h.push_events(vec![
            at(100, 990),
            at(200, 991),
            at(300, 992),
            at(300, 993),
            at(400, 994),
        ]);
        let pids = |ch: &str| -> Vec<u32> {
            recent_client_events(&h, 1000, ch)
                .iter()
                .filter_map(|e| e.pid)
                .collect()
        };
        assert_eq!(pids(""), [100]);
        assert_eq!(pids("replica2"), [200, 300, 300]);
        // one channel only: a pid never tied to it still counts there
        let mut one = HostHistory::default();
        one.observe_client("", [100]);
        one.push_events(vec![at(100, 990), at(400, 994)]);
        assert_eq!(recent_client_events(&one, 1000, "").len(), 2);
    }

    #[test]
    fn connect_failures_with_the_queue_empty_read_recovered() {
        let cfg = pair::cfg("");
        let mut m = HostHistory::default();
        pair::refresh(&mut m, 6330, "S", vec![], true);
        pair::refresh(&mut m, 6340, "S", vec![], true);
        let fail = |t: i64| LogEvent {
            kind: LineKind::ConnectFailure,
            text: "connect(127.0.0.3) failed: Connection refused".into(),
            ..pair::bailout(t)
        };
        m.push_events(vec![fail(6300), fail(6310), fail(6320)]);
        let p = pair::evaluate(&cfg, &m, &pair::replica(6340));
        assert_eq!(p.health, Health::Warning, "{:?}", messages(&p));
        assert_eq!(
            p.problems[0].message,
            "channel default: recovered (queue empty); sync_client could not connect to the replica 3 times in 60s, until 01:45:20"
        );
        // the same failures with entries pending: it still cannot connect
        pair::refresh(&mut m, 6342, "S", vec![pair::log_run(9, 3)], true);
        let p = pair::evaluate(&cfg, &m, &pair::replica(6342));
        assert!(
            messages(&p).iter().any(|m| m
                .1
                .contains("cannot connect to the replica (3 failures in 60s")),
            "{:?}",
            messages(&p)
        );
    }

    #[test]
    fn a_log_that_stopped_growing_while_the_pair_is_busy_warns() {
        let cfg = pair::cfg("");
        let mut m = HostHistory::default();
        pair::refresh(&mut m, 1000, "S", vec![], true);
        // entries come and go (the queue changes), no Cyrus line for 5 min
        for (i, t) in (1010..=1300).step_by(10).enumerate() {
            let files = if i % 2 == 0 {
                vec![pair::log_run(100 + i as u64, 3)]
            } else {
                vec![]
            };
            pair::refresh(&mut m, t, "S", files, false);
        }
        let p = pair::evaluate(&cfg, &m, &pair::replica(1300));
        assert!(
            messages(&p).contains(&(
                Health::Warning,
                "m: no Cyrus lines for 5m while the pair is busy: is syslog still writing /var/log/cyrus.log?".into()
            )),
            "{:?}",
            messages(&p)
        );
        assert_eq!(p.hosts[0].log_quiet_secs, Some(300));
        // an idle pair may well log nothing
        let mut m = HostHistory::default();
        pair::refresh(&mut m, 1000, "S", vec![], true);
        pair::refresh(&mut m, 1300, "S", vec![], false);
        let p = pair::evaluate(&cfg, &m, &pair::replica(1300));
        assert_eq!(p.health, Health::Ok, "{:?}", messages(&p));
    }
}
