//! Runbook "failover PAIR": a guided soft failover that proves every event
//! of the old master reached the replica before the roles change (models:
//! Patroni switchover, repmgr standby switchover, orchestrator graceful
//! takeover). Target = the pair's name. Steps use the roles recorded in the
//! memo at the precheck, never the config (step 9 rewrites it), so a resumed
//! run acts on the same hosts; every mutating step is idempotent, because a
//! step interrupted mid-way is run again on resume.
//!
//! Cyrus facts (verified in the lab, see docs/cyrus-behaviour.md):
//! - `{configdirectory}/msg/shutdown` stops writes without touching cyrus.conf:
//!   imapd says `BYE [ALERT]` to every non-admin command (open sessions too),
//!   lmtpd answers 421 (the MTA keeps the mail), `deliver` exits 75;
//!   sync_server is not affected. Left on the ex-master it keeps users off a
//!   replica (no split brain).
//! - removing SERVICES entries + SIGHUP is NOT safe: master reuses freed slots
//!   and the sync_server listener failed to rebind;
//! - commenting out the DAEMON sync_client + SIGHUP stops it for good and keeps
//!   every listener; touching sync_shutdown_file makes the running one exit;
//! - a replica becomes a master with sync_log: 1, sync_host/port pointing at the
//!   old master's sync_server and a DAEMON `sync_client -R`, then SIGHUP.

use crate::ops::error::StepError;
pub(crate) mod precheck;
pub mod roles;
pub mod script;
pub(crate) use script::{
    client_cmd, hook, script, script_on, stop_client_on, wait_client, Act, SCRIPT,
};
pub mod undo;
pub use roles::{now, Memo, OtherReplica, Roles};
pub mod upgrade;

use super::host_probe::{client_pids, master_pid, probe_host, probe_host_with};
use super::runbook::{runbook_steps, LockOn, RunbookKind, RunbookSpec, StepState};
use super::step::{Runbook, Undone};
use super::StepContext;
use crate::check::Scope;
use crate::cyrus::host_facts::{answers, queue_lines};
use crate::cyrus::probe::HeartbeatRead;
use std::time::{Duration, Instant};

runbook_steps! {
    /// The failover's steps, in the run's order (no index arithmetic elsewhere).
    pub enum Step {
        Precheck = read "Precheck: both reachable, replica healthy, queue bounded, nothing held, check clean",
        StopWrites = write "Stop writes on the master (msg/shutdown; hook stop-writes)",
        Drain = write "Drain the queue to zero (stops and restores writes if the replica fails)",
        FinalCheck = write "Final check: the pair must be identical",
        StopClient = write "Stop the master's rolling client (DAEMON entry out, sync_log 0)",
        BecomeMaster = write "Make the replica the master, replicating to the old master's sync_server",
        StartWrites = write "Start writes on the new master (hook start-writes)",
        Canary = write "Canary: a message on the new master reaches the old one",
        RecordRoles = write "Record the new roles in the config",
    }
}

pub const SPEC: RunbookSpec = RunbookSpec {
    kind: RunbookKind::Failover,
    title: "Soft failover to the replica",
    summary: "stop writes, drain, prove identical, swap roles, canary new -> old, record the roles",
    target: "pair",
    // start writes on the new master: from then on it holds mail the old one
    // may not have, so the only way is forward
    point_of_no_return: Some(Step::StartWrites.index()),
    lock_on: LockOn::Master,
    steps: Step::SPECS,
};

impl Step {
    /// Run again after an interruption, it fences both hosts first: an
    /// undo cut short may have lifted the fences.
    fn refences_when_rerun(self) -> bool {
        matches!(
            self,
            Step::Drain | Step::FinalCheck | Step::StopClient | Step::BecomeMaster
        )
    }
}

/// The drain gives up when the queue does not shrink for this long.
const DRAIN_STALL: Duration = Duration::from_secs(60);
const DRAIN_LIMIT: Duration = Duration::from_secs(1800);

/// The soft failover, for the engine's dispatch.
pub struct Failover;

impl Runbook for Failover {
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
        Some(undo_from(cx, memo, out).await)
    }
}

/// The failover's undo (the upgrade's too): from what the servers say.
pub async fn undo_from(
    cx: &StepContext<'_>,
    memo: &Memo,
    out: &mut Vec<String>,
) -> Result<Undone, StepError> {
    let Ok(r) = memo.roles() else {
        return Ok(Undone::Restored(
            "nothing was changed (the precheck had not passed)".into(),
        ));
    };
    undo::run(cx, &r, out).await
}

pub async fn execute(
    step: Step,
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut Memo,
) -> StepState {
    if step == Step::Precheck {
        return super::state_of(precheck::precheck(cx, out, memo).await);
    }
    let mut r = match memo.roles() {
        Ok(r) => r,
        Err(e) => return crate::ops::state_of(Err(e)),
    };
    // run again (resumed or retried): whatever happened meanwhile, writes
    // must be stopped on both hosts before the drain, check or switch
    if cx.attempt > 1 && step.refences_when_rerun() {
        if let Err(e) = fence_both(cx, &r, out).await {
            return super::state_of(Err(e));
        }
    }
    let res = match step {
        Step::Precheck => unreachable!("handled above"),
        Step::StopWrites => stop_writes(cx, &mut r, out).await,
        Step::Drain => drain(cx, &r, out).await,
        Step::FinalCheck => final_check(cx, &r, out).await,
        Step::StopClient => stop_client(cx, &r, out).await,
        Step::BecomeMaster => become_master(cx, &r, out).await,
        Step::StartWrites => start_writes(cx, &mut r, out).await,
        Step::Canary => canary(cx, &mut r, out).await,
        Step::RecordRoles => record_roles(cx, &r, out).await,
    };
    // a failure is undone (or not) by the engine, from what the servers say
    memo.save_roles(&r);
    super::state_of(res)
}

/// The exact commands each later step runs (the dry run's plan).
pub fn plan(cx: &StepContext<'_>, memo: &Memo) -> Vec<String> {
    let Ok(r) = memo.roles() else {
        return vec!["(no plan: the precheck did not pass)".into()];
    };
    let hook = cx
        .pair
        .failover_hook
        .as_deref()
        .map(|h| format!("; local hook `{h}` with CYRDECK_PHASE=stop-writes"))
        .unwrap_or_default();
    let conf = |h: &str| {
        cx.connection(h)
            .map(|c| c.config().imapd_conf.display().to_string())
            .unwrap_or_default()
    };
    let others: String = r
        .others
        .iter()
        .map(|o| {
            format!(
                "; add-channel {} -> {}:{} ({}, which keeps its channel)",
                precheck::shown_channel(&o.channel),
                o.sync.0,
                o.sync.1,
                o.host
            )
        })
        .collect();
    let every = if r.others.is_empty() {
        ""
    } else {
        " of every channel"
    };
    vec![
        format!("2. {}: cyrdeck-failover stop-writes (write {{configdirectory}}/msg/shutdown){hook}", r.old_master),
        format!("3. poll {} every 1 s until log and log-run{every} are empty; stop (and restore writes) if {} stops answering or the queue stalls {}s", r.old_master, r.new_master, DRAIN_STALL.as_secs()),
        "4. integrity check of the whole pair: must be identical".into(),
        format!("5. {}: cyrdeck-failover stop-client (comment out the DAEMON sync_client in cyrus.conf, sync_log: 0, touch sync_shutdown_file, SIGHUP master)", r.old_master),
        format!("6. {}: cyrdeck-failover become-master (sync_log: 1, sync_host: {}, sync_port: {}, DAEMON `{}`, SIGHUP master){others}", r.new_master, r.old_sync.0, r.old_sync.1, client_cmd(&conf(&r.new_master), &r.channel)),
        format!("7. {}: cyrdeck-failover start-writes (remove a cyrdeck msg/shutdown){}", r.new_master, if cx.pair.failover_hook.is_some() { "; hook with CYRDECK_PHASE=start-writes" } else { "" }),
        format!("8. {}: deliver a canary to the heartbeat user; wait until {}'s copy has it", r.new_master, r.new_replicas().join("'s and ")),
        format!("9. {}: [pairs.{}] master = {:?}, replica = {:?}", cx.cfg.file.display(), cx.pair.name, r.new_master, r.old_master),
    ]
}

/// Fence both hosts: the replica first (it must not take writes while it
/// is promoted), then the master. Idempotent.
async fn fence_both(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
) -> Result<(), StepError> {
    script(
        cx,
        &r.new_master,
        Act::StopWrites { replace: true },
        r,
        &r.old_sync,
        out,
    )
    .await?;
    script(
        cx,
        &r.old_master,
        Act::StopWrites { replace: false },
        r,
        &r.old_sync,
        out,
    )
    .await?;
    Ok(())
}

async fn stop_writes(
    cx: &StepContext<'_>,
    r: &mut Roles,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    fence_both(cx, r, out).await?;
    if r.writes_stopped_at.is_none() {
        r.writes_stopped_at = Some(now());
    }
    hook(cx, r, "stop-writes", out).await?;
    Ok(format!(
        "writes stopped on {} and {} (msg/shutdown naming run {})",
        r.old_master, r.new_master, cx.run_id
    ))
}

async fn drain(
    cx: &StepContext<'_>,
    r: &Roles,
    _out: &mut Vec<String>,
) -> Result<String, StepError> {
    let started = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    let mut first = None;
    loop {
        let (m, rp) = tokio::join!(probe_host(cx, &r.old_master), probe_host(cx, &r.new_master));
        let m = m?;
        let rp = rp.map_err(|e| {
            format!(
                "replica {} stopped answering during the drain: {e}",
                r.new_master
            )
        })?;
        if master_pid(cx, &r.new_master, &rp).is_none() || !answers(&rp) {
            return Err(format!(
                "replica {}'s Cyrus or sync_server stopped during the drain ({} entries left)",
                r.new_master,
                queue_lines(&m, &r.channel)
            )
            .into());
        }
        // every channel: the other replicas must hold everything too
        let per: Vec<(String, u64)> = r
            .channels()
            .into_iter()
            .map(|c| {
                let n = queue_lines(&m, &c);
                (c, n)
            })
            .collect();
        let n: u64 = per.iter().map(|(_, n)| n).sum();
        if n == 0 {
            return Ok(format!(
                "queue{} empty after {:.1}s (from {} entries)",
                if per.len() > 1 {
                    "s of every channel"
                } else {
                    ""
                },
                started.elapsed().as_secs_f64(),
                first.unwrap_or(0)
            ));
        }
        first.get_or_insert(n);
        for (c, left) in per.iter().filter(|(_, n)| *n > 0) {
            if client_pids(cx, &r.old_master, &m, c).is_empty() {
                return Err(format!(
                    "the rolling client of channel {} on {} is not running ({left} entries left)",
                    precheck::shown_channel(c),
                    r.old_master
                )
                .into());
            }
        }
        if n < last.0 {
            last = (n, Instant::now());
            cx.progress(&format!("  {n} entries pending"));
        } else if last.1.elapsed() > DRAIN_STALL {
            return Err(format!(
                "the queue did not shrink for {}s ({n} entries)",
                DRAIN_STALL.as_secs()
            )
            .into());
        }
        if started.elapsed() > DRAIN_LIMIT {
            return Err(
                format!("not drained after {}s ({n} entries)", DRAIN_LIMIT.as_secs()).into(),
            );
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn final_check(
    cx: &StepContext<'_>,
    _r: &Roles,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let c = cx
        .scoped_check(&Scope::default(), Duration::from_secs(10))
        .await?;
    // the pair's record, as a CLI check's is: after the failover the
    // console's verdict rests on it (issue 30, item 4)
    if let Err(e) = crate::check::last::record(cx.cfg, &c) {
        out.push(format!("  check not saved: {e}"));
    }
    // in-flight entries cannot remain after the drain; a delayed-delete
    // mailbox purged on one host only is not live mail (defect 13)
    for d in c
        .differences
        .iter()
        .filter(|d| !d.kind.is_divergence())
        .take(5)
    {
        out.push(format!(
            "  not divergence: {} {} {}",
            d.mailbox,
            d.kind.label(),
            d.detail
        ));
    }
    if !c.in_sync() {
        for d in c.divergent().take(20) {
            out.push(format!("  {} {} {}", d.mailbox, d.kind.label(), d.detail));
        }
        for e in c.errors.iter().take(5) {
            out.push(format!("  error: {e}"));
        }
        return Err(format!(
            "the pair is not identical after the drain ({} differences, {} errors)",
            c.divergent().count(),
            c.errors.len()
        )
        .into());
    }
    Ok(format!("identical: {} mailboxes", c.mailboxes_checked))
}

async fn stop_client(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let mut said = Vec::new();
    for c in r.channels() {
        let rc = r.on_channel(&c);
        let (s, rep) = stop_client_on(cx, &r.old_master, &rc, out).await?;
        if !answers(&rep) {
            return Err(format!("{}'s sync_server stopped answering", r.old_master).into());
        }
        // entries logged after the final check (admin sessions, EVENTS jobs)
        // have no client left to carry them: replay them once, then prove the
        // queue empty, or the step fails (and the engine undoes the run)
        let mut left = queue_lines(&rep, &c);
        if left > 0 {
            out.push(format!(
                "  {left} entries were logged after the drain: replaying them"
            ));
            let sync = r.sync_of_channel(&c);
            script(cx, &r.old_master, Act::ReplayLeftovers, &rc, &sync, out).await?;
            left = queue_lines(&probe_host(cx, &r.old_master).await?, &c);
        }
        if left > 0 {
            return Err(format!(
                "{left} entries still queued on {} after its client stopped",
                r.old_master
            )
            .into());
        }
        said.push(s);
    }
    Ok(format!(
        "{}; no client left, queue empty, sync_server still answers",
        said.join("; ")
    ))
}

async fn become_master(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let said = script(cx, &r.new_master, Act::BecomeMaster, r, &r.old_sync, out).await?;
    // the other replicas' channels, after: become-master lists only its own
    for o in &r.others {
        script(
            cx,
            &r.new_master,
            Act::AddChannel,
            &r.on_channel(&o.channel),
            &o.sync,
            out,
        )
        .await?;
    }
    let mut pids = Vec::new();
    for c in r.channels() {
        let rep = wait_client(cx, &r.new_master, &c, true).await?;
        pids.extend(client_pids(cx, &r.new_master, &rep, &c));
    }
    Ok(format!("{said}; client pid(s) {pids:?}"))
}

async fn start_writes(
    cx: &StepContext<'_>,
    r: &mut Roles,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    // never writes without a running client: prove it before unfencing
    let rep = probe_host(cx, &r.new_master).await?;
    for c in r.channels() {
        if client_pids(cx, &r.new_master, &rep, &c).is_empty() {
            return Err(format!(
                "{}'s rolling client of channel {} is not running: writes stay stopped",
                r.new_master,
                precheck::shown_channel(&c)
            )
            .into());
        }
    }
    let said = script(
        cx,
        &r.new_master,
        Act::StartWrites { any: true },
        r,
        &r.old_sync,
        out,
    )
    .await?;
    hook(cx, r, "start-writes", out).await?;
    if r.writes_started_at.is_none() {
        r.writes_started_at = Some(now());
    }
    Ok(format!("{said}; {}", r.write_outage()))
}

/// The canary's token is the heartbeat INBOX's last UID on the new master
/// after the delivery: the old master (fenced, so nothing is delivered
/// there) reaches it only by replication. Clocks play no part.
pub(super) async fn canary(
    cx: &StepContext<'_>,
    r: &mut Roles,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let user = cx.pair.heartbeat.as_ref().map(|h| h.user.as_str());
    let uid = match r.canary_uid {
        Some(u) => u,
        None => {
            super::heartbeat::beat_on(cx, &r.new_master).await?;
            let rep = probe_host_with(cx, &r.new_master, user).await?.heartbeat;
            let Some(HeartbeatRead::Seen { last_uid, .. }) = rep else {
                return Err(format!(
                    "{}: the heartbeat INBOX cannot be read after the canary",
                    r.new_master
                )
                .into());
            };
            r.canary_uid = Some(last_uid);
            last_uid
        }
    };
    out.push(format!(
        "  canary delivered on {}: heartbeat INBOX last UID {uid}",
        r.new_master
    ));
    let started = Instant::now();
    let mut reached = Vec::new();
    for host in r.new_replicas() {
        loop {
            let rep = probe_host_with(cx, &host, user).await?.heartbeat;
            if let Some(HeartbeatRead::Seen { last_uid, .. }) = rep {
                if last_uid >= uid {
                    reached.push(format!(
                        "canary reached {host} (UID {uid}) after {:.1}s",
                        started.elapsed().as_secs_f64()
                    ));
                    break;
                }
            }
            if started.elapsed() > Duration::from_secs(60) {
                return Err(format!(
                    "the canary did not reach {host} within 60 s: replication {} -> {host} is not proven (writes are on at {})",
                    r.new_master, r.new_master
                ).into());
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(format!(
        "{}: replication flows {} -> {}",
        reached.join("; "),
        r.new_master,
        r.new_replicas().join(", ")
    ))
}

pub(super) async fn record_roles(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    if r.others.is_empty() {
        crate::config::set_roles(&cx.cfg.file, &cx.pair.name, &r.new_master, &r.old_master)?;
    } else {
        // the old master takes the target's channel, the others keep theirs
        let replicas: Vec<(String, String)> =
            std::iter::once((r.old_master.clone(), r.channel.clone()))
                .chain(r.others.iter().map(|o| (o.host.clone(), o.channel.clone())))
                .collect();
        crate::config::set_master_and_replicas(
            &cx.cfg.file,
            &cx.pair.name,
            &r.new_master,
            &replicas,
        )?;
    }
    out.push(format!(
        "  {}: [pairs.{}] master = {:?}",
        cx.cfg.file.display(),
        cx.pair.name,
        r.new_master
    ));
    let total = now() - r.started_at;
    // a console that ran this still holds the old roles in memory
    out.push("  a running console shows the new roles after a restart".into());
    Ok(format!(
        "roles recorded; failover took {total:.1}s, {}",
        r.write_outage()
    ))
}

impl Roles {
    /// The writes-unavailable window in words: from stop-writes to
    /// start-writes. A promote has no stop-writes of its own (the master
    /// died at a time nobody recorded): its window is counted from the
    /// run's start and said to be a lower bound.
    pub fn write_outage(&self) -> String {
        let Some(started) = self.writes_started_at else {
            return "writes not started yet".into();
        };
        match self.writes_stopped_at {
            Some(stopped) => format!("writes unavailable {:.1}s", started - stopped),
            None => format!(
                "writes unavailable at least {:.1}s (since this run started; the master stopped taking them before)",
                started - self.started_at
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_match_the_spec_and_the_point_of_no_return() {
        assert_eq!(Step::ALL.len(), SPEC.steps.len());
        for (i, s) in Step::ALL.iter().enumerate() {
            assert_eq!(Step::of(i), Some(*s));
            assert_eq!(s.index(), i);
            // only the precheck is read-only
            assert_eq!(SPEC.steps[i].mutating, *s != Step::Precheck);
        }
        assert_eq!(SPEC.point_of_no_return, Some(Step::StartWrites.index()));
        assert_eq!(Step::of(9), None);
    }
}
