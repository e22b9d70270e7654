//! Runbook "replace-replica OLD:NEW": take a replica out of service with no
//! moment without a second up-to-date copy. NEW gets a sync-log channel of
//! its own beside OLD's (OLD keeps replicating throughout), every user is
//! copied to it (`sync_client -n CH -A`), it is checked clean (users that
//! differ are synced again: a Cyrus process started before the channel was
//! added never logs for it), and only then OLD's channel is retired: its
//! client stopped, the channel taken out of `sync_log_channels`, its queue
//! files kept (renamed) until the operator deletes them.
//!
//! Cyrus facts it relies on (lab, 3.6): `sync_client -n CH` reads
//! `CH_sync_host`/`CH_sync_port`; listing channels in `sync_log_channels`
//! stops the default channel unless `""` is listed; new processes read the
//! new imapd.conf, running ones keep the old list (hence the check and
//! per-user re-sync before OLD goes).
//!
//! Undo (before step 5, the point of no return) is decided from what the
//! master says: NEW's channel still listed, its client entry or process
//! there -> taken back (retire-channel in undo mode, client ended); NEW out
//! of the pair in the config. OLD is never touched before step 5.

use super::failover::precheck;
use super::failover::script::{Act, FailoverCall};
use super::host_probe::{probe_host, probe_host_with};
use super::runbook::{runbook_steps, LockOn, RunbookKind, RunbookSpec, StepState};
use super::step::{Runbook, Undone};
use super::StepContext;
use crate::cyrus::host_facts::channel_clients;
use crate::cyrus::host_facts::queue_lines;
use crate::cyrus::names::{check_name, NameKind};
use crate::cyrus::probe::HeartbeatRead;
use crate::ops::error::StepError;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

runbook_steps! {
    /// The replace-replica runbook's steps, in the run's order.
    pub enum Step {
        Precheck = read "Precheck: OLD replicates from the master; NEW is configured, in no pair, and its sync_server answers the master",
        AddChannel = write "Add NEW's channel on the master (OLD's kept; \"\" listed): CH_sync_host/port, DAEMON client, SIGHUP; NEW recorded in the pair",
        InitialSync = write "Initial sync: sync_client -n CH -A on the master (every user), under a timeout",
        CheckNew = write "Check NEW against the master; users that differ synced again; clean",
        RetireOld = write "Retire OLD's channel: client stopped, channel unlisted, queue files kept; OLD out of the pair",
        Verify = read "Verify: NEW's client runs and its queue drains; OLD's client is gone",
    }
}

pub const SPEC: RunbookSpec = RunbookSpec {
    kind: RunbookKind::ReplaceReplica,
    title: "Replace a replica with no gap",
    summary: "a channel for NEW beside OLD's, every user copied to it, checked clean, then OLD's channel retired",
    target: "OLD:NEW (replica hosts)",
    point_of_no_return: Some(Step::RetireOld.index()),
    lock_on: LockOn::Master,
    steps: Step::SPECS,
};

/// How long the initial `-A` may take (a site's whole spool).
const INITIAL_SYNC_TIMEOUT: Duration = Duration::from_secs(6 * 3600);
/// The master's mailbox list for the progress bar's total.
const INVENTORY_TIMEOUT: Duration = Duration::from_secs(600);

/// What the precheck decided, for every later step (journalled).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Memo {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    replace: Option<Plan>,
}

/// The run's facts, kept in the journal's memo from the precheck on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Plan {
    master: String,
    old: String,
    old_channel: String,
    new: String,
    new_channel: String,
    /// NEW's sync_server as the master reaches it.
    sync_host: String,
    sync_port: u16,
    /// The pair's replicas before the run (host, channel).
    before: Vec<(String, String)>,
}

impl Plan {
    fn save(&self, memo: &mut Memo) {
        memo.replace = Some(self.clone());
    }
    fn load(memo: &Memo) -> Result<Plan, StepError> {
        memo.replace
            .clone()
            .ok_or_else(|| "the precheck has not passed".into())
    }
    /// The pair's replicas once NEW is added / once OLD is retired.
    fn with_new(&self) -> Vec<(String, String)> {
        let mut v = self.before.clone();
        if !v.iter().any(|(h, _)| *h == self.new) {
            v.push((self.new.clone(), self.new_channel.clone()));
        }
        v
    }
    fn after(&self) -> Vec<(String, String)> {
        self.with_new()
            .into_iter()
            .filter(|(h, _)| *h != self.old)
            .collect()
    }
}

/// "OLD:NEW" -> (OLD, NEW).
fn parse_target(target: &str) -> Result<(String, String), StepError> {
    let (old, new) = target.split_once(':').ok_or_else(|| {
        format!("replace-replica: target is OLD:NEW (replica hosts), not {target:?}")
    })?;
    if old.is_empty() || new.is_empty() || old == new {
        return Err(
            format!("replace-replica: OLD and NEW must be two hosts, not {target:?}").into(),
        );
    }
    Ok((old.to_string(), new.to_string()))
}

/// NEW's channel: its host name in letters and digits (a Cyrus channel
/// names a directory and a `CH_` option prefix; the DAEMON entry's name is
/// `syncclientCH`).
pub(crate) fn channel_for(host: &str) -> Result<String, StepError> {
    let ch: String = host.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
    if ch.is_empty() {
        return Err(format!("no channel name can be made of host name {host:?}").into());
    }
    check_name(NameKind::Channel, &ch)
        .map(|c| c.to_string())
        .map_err(StepError::from)
}

/// Replace-replica, for the engine's dispatch.
pub struct ReplaceReplica;

impl Runbook for ReplaceReplica {
    type Step = Step;
    type Memo = Memo;
    const SPEC: RunbookSpec = SPEC;
    async fn execute(
        step: Step,
        cx: &StepContext<'_>,
        out: &mut Vec<String>,
        memo: &mut Memo,
    ) -> StepState {
        execute(step, cx, out, memo).await
    }
    async fn undo(
        cx: &StepContext<'_>,
        memo: &Memo,
        out: &mut Vec<String>,
    ) -> Option<Result<Undone, StepError>> {
        Some(undo(cx, memo, out).await.map(Undone::Restored))
    }
}

pub async fn execute(
    step: Step,
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut Memo,
) -> StepState {
    if let Err(e) = SPEC.check_target(cx.target) {
        return StepState::Failed(e);
    }
    super::state_of(match step {
        Step::Precheck => precheck(cx, out, memo).await,
        _ => match Plan::load(memo) {
            Err(e) => Err(e),
            Ok(p) => match step {
                Step::Precheck => unreachable!("handled above"),
                Step::AddChannel => add_channel(cx, &p, out).await,
                Step::InitialSync => initial_sync(cx, &p, out).await,
                Step::CheckNew => verify_new(cx, &p, out).await,
                Step::RetireOld => retire_old(cx, &p, out).await,
                Step::Verify => verify_final(cx, &p, out).await,
            },
        },
    })
}

/// What the steps show about the plan before it runs (dry run).
pub fn plan(cx: &StepContext<'_>) -> Vec<String> {
    match parse_target(cx.target).and_then(|(o, n)| Ok((o, n.clone(), channel_for(&n)?))) {
        Ok((old, new, ch)) => vec![
            format!(
                "master {}: add channel {ch} -> {new}, sync_client -n {ch} -A, check {new}",
                cx.pair.master
            ),
            format!(
                "then retire {old}'s channel (its queue files kept); OLD replicates until then"
            ),
        ],
        Err(e) => vec![e.to_string()],
    }
}

/// NEW must hold no mailbox: `sync_client -A` towards a reused replica or
/// an ex-master copies its records back to the live master, renumbers
/// clashes and pushes a higher UIDVALIDITY (issue 26, item 7). Refused,
/// naming a few of them; emptying NEW is the operator's call.
async fn new_is_empty(cx: &StepContext<'_>, new: &str) -> Result<(), StepError> {
    let some = crate::check::some_mailboxes(cx.conns, new, 3, INVENTORY_TIMEOUT).await?;
    if some.is_empty() {
        return Ok(());
    }
    let named: Vec<String> = some
        .iter()
        .map(|m| crate::cyrus::names::external(m))
        .collect();
    Err(StepError::Refused(crate::ops::error::Refusal::Precondition(format!(
        "{new} already holds mailboxes ({}{}): an initial sync towards it would copy them back to the live master. \
         Give it an empty Cyrus (stop it; remove its mailboxes.db, spool and metadata; start it) and run again; nothing was changed",
        named.join(", "),
        if some.len() >= 3 { ", ..." } else { "" }
    ))))
}

async fn precheck(
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut Memo,
) -> Result<String, StepError> {
    let (old, new) = parse_target(cx.target)?;
    let pair = cx.pair;
    let before: Vec<(String, String)> = pair
        .replicas
        .iter()
        .map(|r| (r.host.clone(), r.channel.clone()))
        .collect();
    // a resumed run finds the config it changed: the journal's plan holds
    if let Ok(p) = Plan::load(memo) {
        out.push(format!(
            "  resumed: {} -> {} on channel {}",
            p.old, p.new, p.new_channel
        ));
        return Ok("plan from the journal".into());
    }
    let Some((_, old_channel)) = before.iter().find(|(h, _)| *h == old) else {
        return Err(format!("{old} is not a replica of pair {}", pair.name).into());
    };
    if new == pair.master || before.iter().any(|(h, _)| *h == new) {
        return Err(format!("{new} is already part of pair {}", pair.name).into());
    }
    if let Some((name, _)) = cx
        .cfg
        .pairs
        .iter()
        .find(|(_, p)| p.master == new || p.replicas.iter().any(|r| r.host == new))
    {
        return Err(format!("{new} is part of pair {name}: a replica serves one master").into());
    }
    let new_channel = channel_for(&new)?;
    if before.iter().any(|(_, c)| *c == new_channel) {
        return Err(format!(
            "channel {new_channel} is already used in pair {}",
            pair.name
        )
        .into());
    }
    let master = probe_host(cx, &pair.master).await?;
    let conf = cx
        .connection(&pair.master)?
        .config()
        .imapd_conf
        .display()
        .to_string();
    if crate::ops::host_probe::master_pid(cx, &pair.master, &master).is_none() {
        return Err(format!("{}: Cyrus master is not running", pair.master).into());
    }
    let listed = master
        .conf
        .get("sync_log_channels")
        .cloned()
        .unwrap_or_default();
    if listed.split_whitespace().any(|c| c == new_channel) {
        return Err(format!(
            "the master already logs channel {new_channel} (sync_log_channels: {listed}): an earlier run? `runbook list`"
        ).into());
    }
    let old_clients = channel_clients(&master, &conf, old_channel).count();
    out.push(format!(
        "  {old} on channel {}: {old_clients} client(s), {} pending",
        label(old_channel),
        queue_lines(&master, old_channel)
    ));
    let rep = probe_host(cx, &new).await?;
    new_is_empty(cx, &new).await?;
    let sync = precheck::sync_server_of(cx, &new, &rep)?;
    let banner = precheck::reaches(cx, &pair.master, &sync.0, sync.1).await?;
    out.push(format!(
        "  {new}'s sync_server {}:{} answers the master: {banner}",
        sync.0, sync.1
    ));
    let p = Plan {
        master: pair.master.clone(),
        old: old.clone(),
        old_channel: old_channel.clone(),
        new: new.clone(),
        new_channel,
        sync_host: sync.0,
        sync_port: sync.1,
        before,
    };
    p.save(memo);
    Ok(format!(
        "replace {old} by {new} (channel {})",
        p.new_channel
    ))
}

fn label(channel: &str) -> &str {
    if channel.is_empty() {
        "default"
    } else {
        channel
    }
}

/// failover.sh `act` on the master for `channel`.
async fn channel_script(
    cx: &StepContext<'_>,
    p: &Plan,
    act: Act,
    channel: &str,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let action = act.name();
    let h = cx.connection(&p.master)?.config().clone();
    let report = probe_host(cx, &p.master).await?;
    let cfgdir = report
        .conf
        .get("configdirectory")
        .cloned()
        .ok_or_else(|| format!("{}: configdirectory not found", p.master))?;
    let pid = crate::ops::host_probe::master_pid(cx, &p.master, &report)
        .ok_or_else(|| format!("{}: Cyrus master is not running", p.master))?;
    let argv = FailoverCall {
        act,
        host: &h,
        cfgdir,
        master_pid: pid,
        shutdown_file: String::new(),
        channel,
        sync: &(p.sync_host.clone(), p.sync_port),
        run_id: cx.run_id,
    }
    .argv();
    let shown = vec![
        "cyrdeck-failover".into(),
        action.into(),
        p.master.clone(),
        label(channel).into(),
    ];
    let o = cx
        .write(&p.master, argv, Some(shown), Duration::from_secs(60), out)
        .await?;
    let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if !o.success() {
        return Err(format!(
            "{}: {action} failed (exit {:?}): {}",
            p.master,
            o.exit_status,
            String::from_utf8_lossy(&o.stderr).trim()
        )
        .into());
    }
    out.push(format!("  {text}"));
    Ok(text)
}

fn record(
    cx: &StepContext<'_>,
    replicas: &[(String, String)],
    out: &mut Vec<String>,
) -> Result<(), StepError> {
    crate::config::set_replicas(&cx.cfg.file, &cx.pair.name, replicas)?;
    out.push(format!(
        "  {}: [pairs.{}] replicas = {}",
        cx.cfg.file.display(),
        cx.pair.name,
        replicas
            .iter()
            .map(|(h, c)| format!("{h} ({})", label(c)))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    Ok(())
}

async fn add_channel(
    cx: &StepContext<'_>,
    p: &Plan,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    channel_script(cx, p, Act::AddChannel, &p.new_channel, out).await?;
    record(cx, &p.with_new(), out)?;
    Ok(format!(
        "channel {} -> {} added; {} replicates as before",
        p.new_channel, p.new, p.old
    ))
}

async fn initial_sync(
    cx: &StepContext<'_>,
    p: &Plan,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    // the users -A will copy (the master's mailbox list, streamed): the
    // progress bar's total; -v prints "USER name" as each one starts
    // (lab, 3.6)
    let total = crate::check::inventory(cx.connections(), &p.master, INVENTORY_TIMEOUT)
        .await
        .map(|inv| {
            inv.mailboxes
                .iter()
                .filter(|m| !m.tombstone)
                .filter_map(|m| crate::cyrus::names::owner_of(&m.name))
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        })
        .ok();
    let mut argv = cx.sync_client_on(&p.master, &p.new_channel, None)?;
    argv.extend(["-v".into(), "-A".into()]);
    let started = Instant::now();
    cx.progress(&format!(
        "  sync_client -n {} -A: copying every user to {}",
        p.new_channel, p.new
    ));
    let mut done = 0usize;
    let mut shown = Instant::now();
    let o = cx
        .write_lines(&p.master, argv, INITIAL_SYNC_TIMEOUT, out, |line| {
            if !line.starts_with("USER ") {
                return;
            }
            done += 1;
            // a line a second at most: a console and a terminal keep up
            if shown.elapsed() >= Duration::from_secs(1) || Some(done) == total {
                shown = Instant::now();
                cx.progress(&format!(
                    "  {}",
                    progress_bar(done, total, started.elapsed())
                ));
            }
        })
        .await?;
    out.push(format!(
        "  {}",
        progress_bar(done, total, started.elapsed())
    ));
    if !o.success() {
        // -A goes on past a failing user and exits 1: the check says which
        return Err(format!(
            "sync_client -A exited {:?} after {:.0?}: {}",
            o.exit_status,
            started.elapsed(),
            String::from_utf8_lossy(&o.stderr).trim()
        )
        .into());
    }
    Ok(format!(
        "every user copied to {} in {:.1?}",
        p.new,
        started.elapsed()
    ))
}

/// `[#########...........] 1,234/10,000 users  410/s  ETA 21s` (no total:
/// the count and rate only).
fn progress_bar(done: usize, total: Option<usize>, elapsed: Duration) -> String {
    let rate = done as f64 / elapsed.as_secs_f64().max(0.001);
    match total.filter(|t| *t > 0) {
        Some(t) => {
            let width = 20;
            let filled = (done.min(t) * width) / t;
            let eta = if rate > 0.0 && done < t {
                format!("  ETA {:.0}s", (t - done) as f64 / rate)
            } else {
                String::new()
            };
            format!(
                "[{}{}] {done}/{t} users  {rate:.0}/s{eta}",
                "#".repeat(filled),
                ".".repeat(width - filled)
            )
        }
        None => format!("{done} users copied  {rate:.0}/s"),
    }
}

/// The check of master against NEW alone.
async fn check_new(
    cx: &StepContext<'_>,
    p: &Plan,
) -> Result<crate::model::conflicts::CheckResult, StepError> {
    let mut cfg = cx.cfg.clone();
    let pair = cfg
        .pairs
        .get_mut(&cx.pair.name)
        .ok_or("the pair is gone from the config")?;
    pair.replicas = vec![crate::config::ReplicaConfig {
        host: p.new.clone(),
        channel: p.new_channel.clone(),
    }];
    // under live mail the queue seldom empties: a short wait, then what is
    // still covered by pending entries counts as in flight (not a difference)
    let opts = crate::check::CheckOptions {
        drain_wait: Duration::from_secs(10),
        exec_timeout: Duration::from_secs(600),
        ..Default::default()
    };
    let progress = |l: String| cx.progress(&format!("  {l}"));
    crate::check::run(
        &cfg,
        cx.connections(),
        &cx.pair.name,
        &crate::check::Scope::default(),
        &opts,
        &progress,
    )
    .await
    .map_err(StepError::from)
}

async fn verify_new(
    cx: &StepContext<'_>,
    p: &Plan,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    for round in 1..=3 {
        let r = check_new(cx, p).await?;
        if !r.errors.is_empty() {
            return Err(format!("the check could not read: {}", r.errors.join("; ")).into());
        }
        if r.in_sync() {
            return Ok(format!(
                "{} checks clean: {} mailboxes, {} in flight",
                p.new,
                r.mailboxes_checked,
                r.count(crate::model::conflicts::DiffKind::InFlight)
            ));
        }
        // the users whose mailboxes differ, synced again on NEW's channel
        let mut users: Vec<String> = r
            .divergent()
            .filter_map(|d| {
                let internal = crate::cyrus::names::external_to_internal(&d.mailbox);
                crate::cyrus::names::owner_of(&internal)
            })
            .collect();
        users.sort();
        users.dedup();
        out.push(format!(
            "  round {round}: {} difference(s) in {} user(s): syncing them again",
            r.divergent().count(),
            users.len()
        ));
        if users.is_empty() {
            return Err("differences outside user mailboxes: see `cyrdeck check`".into());
        }
        for u in &users {
            check_name(NameKind::User, u)?;
        }
        // thousands of users may differ: several commands, never one that
        // grows with the site
        for chunk in super::arg_chunks(&users) {
            let mut argv = cx.sync_client_on(&p.master, &p.new_channel, None)?;
            argv.push("-u".into());
            argv.extend(chunk.iter().cloned());
            let o = cx
                .write(&p.master, argv, None, Duration::from_secs(1800), out)
                .await?;
            if !o.success() {
                out.push(format!("  sync_client -u exited {:?}", o.exit_status));
            }
        }
    }
    Err(format!(
        "{} still differs after 3 rounds: see `cyrdeck check`",
        p.new
    )
    .into())
}

async fn retire_old(
    cx: &StepContext<'_>,
    p: &Plan,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    channel_script(
        cx,
        p,
        Act::RetireChannel { undo: false },
        &p.old_channel,
        out,
    )
    .await?;
    // master no longer restarts it: the running client ends
    channel_script(cx, p, Act::EndClient, &p.old_channel, out).await?;
    channel_script(cx, p, Act::ArchiveRetiredQueue, &p.old_channel, out).await?;
    record(cx, &p.after(), out)?;
    Ok(format!(
        "{} retired; {} replicates on channel {}",
        p.old, p.new, p.new_channel
    ))
}

async fn verify_final(
    cx: &StepContext<'_>,
    p: &Plan,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let conf = cx
        .connection(&p.master)?
        .config()
        .imapd_conf
        .display()
        .to_string();
    let started = Instant::now();
    let user = cx.pair.heartbeat.as_ref().map(|h| h.user.clone());
    // the heartbeat INBOX's last UID after a beat on the master: NEW has it
    // only by replication (under live mail the queue is seldom empty)
    let mut canary: Option<u32> = None;
    loop {
        let r = probe_host_with(cx, &p.master, user.as_deref()).await?;
        let new_clients = channel_clients(&r, &conf, &p.new_channel).count();
        let old_clients = channel_clients(&r, &conf, &p.old_channel).count();
        let pending = queue_lines(&r, &p.new_channel);
        if old_clients > 0 {
            return Err(format!("{old_clients} client(s) of the retired channel still run").into());
        }
        if new_clients > 0 && pending == 0 {
            return Ok(format!(
                "{}'s client runs and its queue is empty ({:.0?}); {} no longer replicates",
                p.new,
                started.elapsed(),
                p.old
            ));
        }
        if new_clients > 0 && user.is_some() {
            let uid = match canary {
                Some(u) => u,
                None => {
                    super::heartbeat::beat_on(cx, &p.master).await?;
                    let rep = probe_host_with(cx, &p.master, user.as_deref()).await?;
                    let Some(HeartbeatRead::Seen { last_uid, .. }) = rep.heartbeat else {
                        return Err(
                            format!("{}: the heartbeat INBOX cannot be read", p.master).into()
                        );
                    };
                    out.push(format!(
                        "  canary: heartbeat INBOX last UID {last_uid} on {}",
                        p.master
                    ));
                    canary = Some(last_uid);
                    last_uid
                }
            };
            let rep = probe_host_with(cx, &p.new, user.as_deref()).await?;
            if let Some(HeartbeatRead::Seen { last_uid, .. }) = rep.heartbeat {
                if last_uid >= uid {
                    return Ok(format!(
                        "{}'s client runs and the canary (UID {uid}) reached it after {:.1?} ({pending} entries queued behind it); {} no longer replicates",
                        p.new,
                        started.elapsed(),
                        p.old
                    ));
                }
            }
        }
        if started.elapsed() > Duration::from_secs(90) {
            return Err(format!(
                "{new_clients} client(s) for {}, {pending} pending after 90 s",
                p.new
            )
            .into());
        }
        out.push(format!("  {new_clients} client(s), {pending} pending"));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Take NEW's channel back, as far as the master and the config say it
/// went: OLD was never touched before the point of no return.
pub async fn undo(
    cx: &StepContext<'_>,
    memo: &Memo,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let Ok(p) = Plan::load(memo) else {
        return Ok("nothing was changed (the precheck had not passed)".into());
    };
    let conf = cx
        .connection(&p.master)?
        .config()
        .imapd_conf
        .display()
        .to_string();
    let r = probe_host(cx, &p.master).await?;
    let listed = r
        .conf
        .get("sync_log_channels")
        .is_some_and(|v| v.split_whitespace().any(|c| c == p.new_channel));
    let keys = r.conf.contains_key(&format!("{}_sync_host", p.new_channel));
    let clients = channel_clients(&r, &conf, &p.new_channel).count();
    let mut said = Vec::new();
    if listed || keys || clients > 0 {
        channel_script(
            cx,
            &p,
            Act::RetireChannel { undo: true },
            &p.new_channel,
            out,
        )
        .await?;
        channel_script(cx, &p, Act::EndClient, &p.new_channel, out).await?;
        said.push(format!("channel {} taken off the master", p.new_channel));
    }
    let now: Vec<(String, String)> = crate::config::Config::load(&cx.cfg.file)
        .ok()
        .and_then(|c| c.pairs.get(&cx.pair.name).cloned())
        .map(|pc| {
            pc.replicas
                .iter()
                .map(|r| (r.host.clone(), r.channel.clone()))
                .collect()
        })
        .unwrap_or_default();
    if now.iter().any(|(h, _)| *h == p.new) {
        record(cx, &p.before, out)?;
        said.push(format!("{} out of the pair again", p.new));
    }
    if said.is_empty() {
        said.push("nothing of the new channel was left".into());
    }
    Ok(format!(
        "{}; {} replicates as before",
        said.join(", "),
        p.old
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bar_fills_with_the_users_copied() {
        let s = Duration::from_secs(10);
        assert_eq!(
            progress_bar(0, Some(100), s),
            "[....................] 0/100 users  0/s"
        );
        assert_eq!(
            progress_bar(50, Some(100), s),
            "[##########..........] 50/100 users  5/s  ETA 10s"
        );
        assert_eq!(
            progress_bar(100, Some(100), s),
            "[####################] 100/100 users  10/s"
        );
        // more than counted (a user created meanwhile): full, no overflow
        assert!(progress_bar(120, Some(100), s).starts_with("[####################] 120/100"));
        assert_eq!(progress_bar(7, None, s), "7 users copied  1/s");
    }

    #[test]
    fn targets_and_channel_names() {
        assert_eq!(parse_target("r1:r2").unwrap(), ("r1".into(), "r2".into()));
        for bad in ["r1", ":r2", "r1:", "r1:r1"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        assert_eq!(channel_for("mail-3.example").unwrap(), "mail3example");
        assert!(channel_for("--").is_err());
    }

    #[test]
    fn the_plan_survives_the_journal_and_keeps_the_other_replicas() {
        let p = Plan {
            master: "m".into(),
            old: "r1".into(),
            old_channel: String::new(),
            new: "r3".into(),
            new_channel: "r3".into(),
            sync_host: "10.0.0.3".into(),
            sync_port: 2005,
            before: vec![("r1".into(), String::new()), ("r2".into(), "r2".into())],
        };
        let mut memo = Memo::default();
        p.save(&mut memo);
        // through the journal's JSON, in the shape earlier releases wrote
        let json = serde_json::to_value(&memo).unwrap();
        assert_eq!(json["replace"]["sync_host"], "10.0.0.3");
        assert_eq!(json["replace"]["sync_port"], 2005);
        let memo: Memo = serde_json::from_value(json).unwrap();
        let back = Plan::load(&memo).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.with_new().len(), 3);
        assert_eq!(
            back.after(),
            vec![
                ("r2".to_string(), "r2".to_string()),
                ("r3".to_string(), "r3".to_string())
            ]
        );
        assert!(Plan::load(&Memo::default()).is_err());
    }
}
