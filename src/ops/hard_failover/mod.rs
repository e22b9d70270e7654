//! Hard failover: `promote` (the master is dead: the replica takes over,
//! nothing drained) and `reintegrate` (the old master is back: fence it,
//! report what only it holds, copy that back, verify, then replicate
//! new -> old). Both are forward-only (no undo, point of no return None):
//! every step is idempotent and a resumed run repeats the interrupted one.
//!
//! Why the new master's client is held until reintegrate: the old master
//! comes back holding mail the new one never had. Its client would reach
//! the old master's sync_server the moment it returns, and replaying only
//! the new master's log leaves mailboxes changed only on the old master
//! (and its folders and users) behind. Reintegrate instead runs
//! `sync_client -u USER` ON THE OLD MASTER for every user that differs.
//! Cyrus 3.6 then (lab-measured; docs/cyrus-behaviour.md, "What a sync does to two diverged copies"):
//! pushes messages and folders only on the old master, creates its users,
//! copies back what only the new master has above the old LAST_UID, gives
//! BOTH messages of a same-UID/different-GUID pair new UIDs on both sides
//! (the "easy" UID policy), and takes deletions with the higher modseq
//! from either side. A user's subscriptions and sieve scripts follow the
//! old master's (its `-u` is authoritative for them).
//!
//! The "soft" UID policy (`--uid-policy soft`: keep the UID the owner saw
//! on the new master) cannot be had from Cyrus sync, which only adds
//! records above a side's LAST_UID and renumbers (or, when the other side
//! purged that UID, expunges as stale) any record at or below it that the
//! other side lacks or holds with another GUID (lab: tests/hard_failover_lab.rs
//! cyrus_36_sync_cannot_keep_a_seen_uid_of_a_clash). soft_uid.rs does it
//! without syncing that user from the old master: spool-file injection into
//! the new master, then the user rebuilt on the old one from the new.

use crate::ops::error::StepError;
mod common;
pub mod divergence;
pub use common::Memo;
use common::{pause_writes_on_new, sync_server_answers, CHECK_TIMEOUT, COPY_TIMEOUT};
mod inject;
mod rebuild;
pub mod soft_uid;

use super::failover::{self, Act, Roles};
use super::host_probe::probe_host;
use super::runbook::{runbook_steps, LockOn, RunbookKind, RunbookSpec, StepState};
use super::step::Runbook;
use super::StepContext;
use crate::check;
use divergence::Divergence;
use std::time::Duration;

runbook_steps! {
    /// The promote runbook's steps, in the run's order.
    pub enum PromoteStep {
        Precheck = read "Precheck: the master is down and the replica can take over (read-only)",
        FenceOld = write "Fence the old master where it can be reached (msg/shutdown, its client out, sync_log 0)",
        BecomeMasterHeld = write "Make the replica master with replication held (sync_log 1, no client yet)",
        StartWrites = write "Start writes on the new master (hook start-writes)",
        RecordRoles = write "Record the new roles in the config",
    }
}

pub const PROMOTE: RunbookSpec = RunbookSpec {
    kind: RunbookKind::Promote,
    title: "Promote the replica (hard failover: the master is dead)",
    summary: "the replica becomes master without a drain: what the dead master never replicated stays there until reintegrate copies it back",
    target: "pair",
    point_of_no_return: None,
    // the master is dead (its host may be gone): the lock lives where the
    // pair survives, the replica that becomes master
    lock_on: LockOn::Replica,
    steps: PromoteStep::SPECS,
};

runbook_steps! {
    /// The reintegrate runbook's steps, in the run's order.
    pub enum ReintegrateStep {
        Fence = write "Fence the old master (writes stopped, sync_log 0, its client ended)",
        Survey = read "Divergence report: what only the old master holds, clashes, its leftover queue (read-only)",
        CopyBack = write "Copy back: sync every listed user from the old master (clashing UIDs renumbered on both; soft policy: injected into the new master)",
        Verify = read "Verify: every GUID of those users is on the new master (read-only)",
        RebuildSoft = write "Soft UID policy only: rebuild its users on the old master from the new one (sync_reset -f, sync_client -u)",
        StartReplication = write "Start replication new -> old (the new master's rolling client)",
        Canary = write "Canary: a heartbeat on the new master reaches the old one",
    }
}

pub const REINTEGRATE: RunbookSpec = RunbookSpec {
    kind: RunbookKind::Reintegrate,
    title: "Reintegrate the old master as the new replica (after promote)",
    summary: "fence it, report what only it holds, copy that back user by user, verify every GUID, then replicate new -> old",
    target: "pair",
    point_of_no_return: None,
    lock_on: LockOn::Master,
    steps: ReintegrateStep::SPECS,
};

const COPY_ATTEMPTS: u32 = 3;

fn single_replica(cx: &StepContext<'_>) -> Result<(String, String), StepError> {
    match cx.pair.replicas.as_slice() {
        [r] => Ok((r.host.clone(), r.channel.clone())),
        _ => Err("promote/reintegrate handle one replica per pair".into()),
    }
}

fn cfgdirs(rep: &crate::cyrus::probe::ProbeReport) -> Option<(String, String)> {
    Some((
        rep.conf.get("configdirectory")?.clone(),
        rep.conf
            .get("sync_shutdown_file")
            .cloned()
            .unwrap_or_default(),
    ))
}

/// The target IS the pair (as for the failover); anything else names
/// nothing these runbooks act on.
fn target_is_pair(cx: &StepContext<'_>, spec: &RunbookSpec) -> Result<(), StepError> {
    if cx.target != cx.pair.name {
        return Err(format!(
            "{}: the target is the pair ({:?}), not {:?}",
            spec.id(),
            cx.pair.name,
            cx.target
        )
        .into());
    }
    Ok(())
}

/// Promote, for the engine's dispatch.
pub struct Promote;

impl Runbook for Promote {
    type Step = PromoteStep;
    type Memo = Memo;
    const SPEC: RunbookSpec = PROMOTE;
    async fn execute(
        step: PromoteStep,
        cx: &StepContext<'_>,
        out: &mut Vec<String>,
        memo: &mut Memo,
    ) -> StepState {
        if let Err(e) = target_is_pair(cx, &PROMOTE) {
            return crate::ops::state_of(Err(e));
        }
        super::state_of(promote(step, cx, out, memo).await)
    }
}

/// Reintegrate, for the engine's dispatch.
pub struct Reintegrate;

impl Runbook for Reintegrate {
    type Step = ReintegrateStep;
    type Memo = Memo;
    const SPEC: RunbookSpec = REINTEGRATE;
    async fn execute(
        step: ReintegrateStep,
        cx: &StepContext<'_>,
        out: &mut Vec<String>,
        memo: &mut Memo,
    ) -> StepState {
        if let Err(e) = target_is_pair(cx, &REINTEGRATE) {
            return crate::ops::state_of(Err(e));
        }
        super::state_of(reintegrate(step, cx, out, memo).await)
    }
}

async fn promote(
    step: PromoteStep,
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut Memo,
) -> Result<String, StepError> {
    if step == PromoteStep::Precheck {
        return promote_precheck(cx, out, memo).await;
    }
    let mut r = memo.roles()?;
    let res = match step {
        PromoteStep::Precheck => unreachable!("handled above"),
        PromoteStep::FenceOld => fence_old(cx, &r, out, true).await,
        PromoteStep::BecomeMasterHeld => {
            failover::script(
                cx,
                &r.new_master,
                Act::BecomeMasterHeld,
                &r,
                &r.old_sync,
                out,
            )
            .await
        }
        PromoteStep::StartWrites => {
            let said = failover::script(
                cx,
                &r.new_master,
                Act::StartWrites { any: true },
                &r,
                &r.old_sync,
                out,
            )
            .await?;
            failover::hook(cx, &r, "start-writes", out).await?;
            r.writes_started_at = Some(failover::now());
            Ok(said)
        }
        PromoteStep::RecordRoles => failover::record_roles(cx, &r, out).await.map(|s| {
            format!(
                "{s}; replication is held until `cyrdeck run reintegrate {}`",
                cx.pair.name
            )
        }),
    };
    memo.save_roles(&r);
    res
}

async fn promote_precheck(
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut Memo,
) -> Result<String, StepError> {
    let (replica, channel) = single_replica(cx)?;
    let master = cx.pair.master.clone();
    let mut r = Roles {
        old_master: master.clone(),
        new_master: replica.clone(),
        channel: channel.clone(),
        started_at: failover::now(),
        ..Default::default()
    };
    match probe_host(cx, &master).await {
        Err(e) => out.push(format!(
            "  {master} unreachable ({e}): it cannot be fenced now; keep it off the network until reintegrate"
        )),
        Ok(rep) => {
            if crate::ops::host_probe::master_pid(cx, &master, &rep).is_some() {
                return Err(format!(
                    "{master}'s Cyrus is running: it is not dead. Use `cyrdeck failover` (soft: drains first, nothing left behind)"
                ).into());
            }
            let queued = crate::cyrus::host_facts::queue_lines(&rep, &channel);
            out.push(format!(
                "  {master} reachable, Cyrus down: {queued} queue line(s) never replicated (reintegrate copies them back)"
            ));
            if let Some(d) = cfgdirs(&rep) {
                r.dirs.insert(master.clone(), d);
            }
        }
    }
    let rp = probe_host(cx, &replica).await?;
    if crate::ops::host_probe::master_pid(cx, &replica, &rp).is_none() {
        return Err(format!("{replica}'s Cyrus is not running: it cannot take over").into());
    }
    if rp.conf.get("sync_log").map(String::as_str) == Some("1") {
        return Err(format!(
            "{replica} already logs changes (sync_log 1): is it master already? (a promote resumed? `cyrdeck runbook list`)"
        ).into());
    }
    if let Some(d) = cfgdirs(&rp) {
        r.dirs.insert(replica.clone(), d);
    }
    r.new_fenced_before = crate::cyrus::host_facts::Fence::of(&rp, "").refuses_writes();
    out.push(format!(
        "  RISK: whatever {master} accepted and never replicated is unknown until it returns; \
         {replica} takes writes now and logs them (sync_log 1) but replicates nothing until \
         `cyrdeck run reintegrate {}` has copied the old master's mail back",
        cx.pair.name
    ));
    memo.save_roles(&r);
    Ok(format!("{replica} can take over from {master}"))
}

/// Fence the old master: writes stopped (taking over an earlier cyrdeck
/// fence), its client out of cyrus.conf, sync_log 0 — with its Cyrus down
/// too (the files are what it reads when it starts). `tolerate_unreachable`:
/// promote goes on when the dead host cannot be reached, and says so.
async fn fence_old(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
    tolerate_unreachable: bool,
) -> Result<String, StepError> {
    let old = &r.old_master;
    failover::hook(cx, r, "stop-writes", out).await?;
    let first = failover::script_on(
        cx,
        old,
        Act::StopWrites { replace: true },
        r,
        &r.new_sync,
        out,
        true,
    )
    .await;
    if let Err(e) = &first {
        if tolerate_unreachable && e.host_unreachable() {
            return Ok(format!(
                "{old} NOT fenced (unreachable: {e}); reintegrate fences it first: it must not come back as master before"
            ));
        }
    }
    let said = first?;
    failover::script_on(cx, old, Act::StopClient, r, &r.new_sync, out, true).await?;
    failover::script_on(cx, old, Act::EndClient, r, &r.new_sync, out, true).await?;
    Ok(format!(
        "{old} fenced: {said}; its client out of cyrus.conf, sync_log 0"
    ))
}

async fn reintegrate(
    step: ReintegrateStep,
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut Memo,
) -> Result<String, StepError> {
    let mut r = match memo.roles() {
        Ok(r) => r,
        Err(_) => {
            let (old, channel) = single_replica(cx)?;
            Roles {
                old_master: old,
                new_master: cx.pair.master.clone(),
                channel,
                started_at: failover::now(),
                ..Default::default()
            }
        }
    };
    let res = match step {
        ReintegrateStep::Fence => {
            let rep = probe_host(cx, &r.old_master).await?;
            if let Some(d) = cfgdirs(&rep) {
                r.dirs.insert(r.old_master.clone(), d);
            }
            let said = fence_old(cx, &r, out, false).await?;
            clear_stale_lock(cx, &r, out).await?;
            Ok(said)
        }
        ReintegrateStep::Survey => survey(cx, &r, out, memo).await,
        ReintegrateStep::CopyBack => copy_back(cx, &r, out, memo).await,
        ReintegrateStep::Verify => verify(cx, &r, out, memo).await,
        ReintegrateStep::RebuildSoft => rebuild::on_old_master(cx, &mut r, out, memo).await,
        ReintegrateStep::StartReplication => start_replication(cx, &mut r, out).await,
        ReintegrateStep::Canary => failover::canary(cx, &mut r, out).await,
    };
    memo.save_roles(&r);
    res
}

/// Both hosts' records of the mailboxes given, read at once.
async fn read_records(
    cx: &StepContext<'_>,
    r: &Roles,
    old: &[crate::cyrus::inventory::MailboxEntry],
    new: &[crate::cyrus::inventory::MailboxEntry],
) -> Result<(divergence::Records, divergence::Records), StepError> {
    let conns = cx.connections();
    let (o, n): (Vec<&_>, Vec<&_>) = (old.iter().collect(), new.iter().collect());
    tokio::try_join!(
        check::records(conns, &r.old_master, &o, CHECK_TIMEOUT),
        check::records(conns, &r.new_master, &n, CHECK_TIMEOUT)
    )
    .map_err(StepError::from)
}

/// A pair lock the old master still holds was taken before the promote
/// (a run on the master when it died): the pair's lock lives on the new
/// master now, so that one is recognised, said, and not obeyed; it is
/// removed (only that run's, as `runbook unlock` would) so it cannot block
/// a run once the old master is master again.
async fn clear_stale_lock(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
) -> Result<(), StepError> {
    let conn = cx.connection(&r.old_master)?;
    let Some(text) = super::pair_lock::read(conn).await? else {
        return Ok(());
    };
    let Some(h) = super::pair_lock::Holder::parse(&text) else {
        out.push(format!(
            "  {}: a lock file that is not cyrdeck's is left there (kept): {text}",
            r.old_master
        ));
        return Ok(());
    };
    if h.run_id == cx.run_id {
        return Ok(());
    }
    out.push(format!(
        "  {}: a pair lock from before the promote: {}; not obeyed (the pair's lock is on {} now): removed",
        r.old_master,
        h.describe(),
        r.new_master
    ));
    super::pair_lock::break_lock(cx, &r.old_master, &h.run_id, out)
        .await
        .map_err(|e| e.message(&r.old_master).into())
}

fn divergence_of(memo: &Memo) -> Result<Divergence, StepError> {
    memo.divergence
        .clone()
        .ok_or_else(|| "no divergence report: step 2 has not run".into())
}

async fn survey(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
    memo: &mut Memo,
) -> Result<String, StepError> {
    let conns = cx.connections();
    let started = std::time::Instant::now();
    let (old_inv, new_inv) = tokio::try_join!(
        check::inventory(conns, &r.old_master, CHECK_TIMEOUT),
        check::inventory(conns, &r.new_master, CHECK_TIMEOUT)
    )?;
    // level 1 first (headers), as the check does: records only for the
    // mailboxes that differ or exist on one side
    let listed = std::time::Instant::now();
    let same = divergence::unchanged(&old_inv, &new_inv);
    let to_read = |inv: &crate::cyrus::inventory::Inventory| {
        inv.mailboxes
            .iter()
            .filter(|m| !m.tombstone && !same.contains(&m.name))
            .cloned()
            .collect::<Vec<_>>()
    };
    let (ob, nb) = (to_read(&old_inv), to_read(&new_inv));
    let (mut old_recs, mut new_recs) = read_records(cx, r, &ob, &nb).await?;
    let mut d = divergence::classify(&old_inv, &new_inv, &old_recs, &new_recs, &r.channel);
    // every GUID of a copied user must survive, in its unchanged
    // mailboxes too: read those now (the users to copy are few)
    let copied = |name: &str| {
        same.contains(name)
            && (divergence::user_of(name).is_some_and(|u| d.users_to_copy.contains(&u))
                || d.mailboxes_to_copy.iter().any(|m| m == name))
    };
    let (ob2, nb2): (Vec<_>, Vec<_>) = (
        old_inv
            .mailboxes
            .iter()
            .filter(|m| !m.tombstone && copied(&m.name))
            .cloned()
            .collect(),
        new_inv
            .mailboxes
            .iter()
            .filter(|m| !m.tombstone && copied(&m.name))
            .cloned()
            .collect(),
    );
    let (read_old, read_new) = (ob.len() + ob2.len(), nb.len() + nb2.len());
    if !ob2.is_empty() || !nb2.is_empty() {
        let (o2, n2) = read_records(cx, r, &ob2, &nb2).await?;
        old_recs.extend(o2);
        new_recs.extend(n2);
        d = divergence::classify(&old_inv, &new_inv, &old_recs, &new_recs, &r.channel);
    }
    out.push(format!(
        "  survey: {} and {} mailbox(es) listed, {} unchanged on both; records read for {} on {} and {} on {} ({:.1}s listing, {:.1}s records)",
        old_inv.mailboxes.len(),
        new_inv.mailboxes.len(),
        same.len(),
        read_old,
        r.old_master,
        read_new,
        r.new_master,
        (listed - started).as_secs_f64(),
        listed.elapsed().as_secs_f64()
    ));
    out.extend(d.describe(&r.old_master, &r.new_master));
    // every GUID conflict in the audit trail too (the run's output is
    // journalled; the audit log is what an operator reads afterwards)
    for c in &d.clashes {
        let what = vec![
            "guid-conflict".to_string(),
            c.mailbox.clone(),
            c.uid.to_string(),
            c.old_guid.clone(),
            c.new_guid.clone(),
        ];
        let detail = format!(
            "GUID conflict in {} UID {}: {} has {}, {} has {}; both kept, UIDs given at the copy-back by the {} UID policy; the UID was {}",
            c.mailbox,
            c.uid,
            r.old_master,
            c.old_guid,
            r.new_master,
            c.new_guid,
            cx.option("uid-policy"),
            c.shown_on(&r.old_master, &r.new_master)
        );
        cx.audit_finding(&r.old_master, &what, &detail, out);
    }
    save_report(cx, &d, out);
    if !d.unreadable.is_empty() {
        memo.divergence = Some(d.clone());
        return Err(format!(
            "{} mailbox(es) could not be read: fix them (see the report) and resume",
            d.unreadable.len()
        )
        .into());
    }
    let said = format!(
        "{} user(s) to copy back, {} GUID conflict(s) reported",
        d.users_to_copy.len(),
        d.clashes.len()
    );
    memo.divergence = Some(d.clone());
    Ok(said)
}

/// The report as `STATE/reintegrate-PAIR-RUNID.json` (the Conflicts view
/// and `cyrdeck conflicts` read the newest); saved again by verify with
/// the clashes' new UIDs.
fn save_report(cx: &StepContext<'_>, d: &Divergence, out: &mut Vec<String>) {
    let dir = crate::state::dir();
    let file = crate::state::reintegrate_report(&dir, &cx.pair.name, cx.run_id);
    let bytes = serde_json::to_vec_pretty(d).unwrap_or_default();
    let saved = std::fs::create_dir_all(&dir)
        .and_then(|()| crate::state::write_atomic(&file, &bytes, None));
    match saved {
        Ok(()) => out.push(format!("  report: {}", file.display())),
        Err(e) => out.push(format!("  report not saved ({}): {e}", file.display())),
    }
}

async fn copy_back(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
    memo: &mut Memo,
) -> Result<String, StepError> {
    let d = divergence_of(memo)?;
    if cx.attempt > 1 {
        // a pause of this run cut short by a crash: writes back on
        pause_writes_on_new(cx, r, out, false).await?;
    }
    // decided from the survey's report (what the servers said), the same
    // on every attempt; step 5 reads it back
    let soft = if cx.option("uid-policy") == "soft" {
        let (soft, easy) = soft_uid::choose(&d);
        out.extend(easy.iter().map(|e| format!("  {e}")));
        soft
    } else {
        Vec::new()
    };
    memo.soft_users = soft.clone();
    if !d.users_to_copy.is_empty() || !d.mailboxes_to_copy.is_empty() {
        sync_server_answers(cx, &r.old_master, &r.new_master, out).await?;
    }
    // users by `-u`; shared folders (no user to sync) by `-m`
    let mut units = Vec::new();
    for user in d.users_to_copy.iter().filter(|u| !soft.contains(u)) {
        units.push(("-u", crate::cyrus::names::user_arg(user)?));
    }
    for m in &d.mailboxes_to_copy {
        let ext = crate::cyrus::names::external(m);
        units.push(("-m", crate::cyrus::names::mailbox_arg(&ext)?));
    }
    let mut failed = Vec::new();
    for (flag, user) in units {
        // the old master's own sync_host is the new master (its replica)
        let mut argv = cx.sync_client_on(&r.old_master, &r.channel, None)?;
        argv.extend([flag.to_string(), user.clone()]);
        // Lab, 3.6: a user the new master takes mail for DURING the sync
        // fails with "Mailbox has changed since last sync" (IMAP_SYNC_CHANGED:
        // the replica side changed between the state read and the apply)
        // and bails out. A few plain attempts first; then one with writes
        // paused on the new master (this run's msg/shutdown: lmtpd answers
        // 421, the MTA keeps the mail) for that run only. One user failing
        // never stops the others.
        let mut done = false;
        for attempt in 1..=COPY_ATTEMPTS + 1 {
            let paused = attempt > COPY_ATTEMPTS;
            if paused {
                out.push(format!(
                    "  {user}: its mailboxes keep changing on {}: writes paused there for one more attempt",
                    r.new_master
                ));
                pause_writes_on_new(cx, r, out, true).await?;
            }
            let res = cx
                .write(&r.old_master, argv.clone(), None, COPY_TIMEOUT, out)
                .await;
            if paused {
                pause_writes_on_new(cx, r, out, false).await?;
            }
            match res {
                Ok(o) if o.success() => {
                    out.push(format!("  {user}: copied back (attempt {attempt})"));
                    done = true;
                    break;
                }
                Ok(o) => out.push(format!(
                    "  {user}: sync_client exit {:?} (attempt {attempt}; its reason is in {}'s syslog)",
                    o.exit_status, r.old_master
                )),
                Err(e) if e.is_refusal() => return Err(e),
                Err(e) => out.push(format!("  {user}: {e} (attempt {attempt})")),
            }
            // gone since the first check: the next attempt would hang too
            sync_server_answers(cx, &r.old_master, &r.new_master, out).await?;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        if !done {
            failed.push(user);
        }
    }
    if !soft.is_empty() {
        failed.extend(inject::soft_users(cx, r, &d, &soft, out).await?);
    }
    if !failed.is_empty() {
        return Err(format!(
            "copy-back failed for {failed:?} (the others are done); fix and resume: it runs again"
        )
        .into());
    }
    let archived = failover::script_on(
        cx,
        &r.old_master,
        Act::ArchiveQueue,
        r,
        &r.new_sync,
        out,
        true,
    )
    .await?;
    Ok(format!(
        "{} user(s) and {} shared folder(s) copied back from {}; {archived}",
        d.users_to_copy.len(),
        d.mailboxes_to_copy.len(),
        r.old_master
    ))
}

async fn verify(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
    memo: &Memo,
) -> Result<String, StepError> {
    use std::collections::{BTreeMap, BTreeSet};
    let mut d = divergence_of(memo)?;
    let conns = cx.connections();
    let inv = check::inventory(conns, &r.new_master, CHECK_TIMEOUT).await?;
    // every mailbox the report lists GUIDs for (the copied users' and the
    // shared folders copied back)
    let boxes: Vec<&crate::cyrus::inventory::MailboxEntry> = inv
        .mailboxes
        .iter()
        .filter(|m| !m.tombstone)
        .filter(|m| {
            d.must_survive
                .contains_key(&crate::cyrus::names::external(&m.name))
        })
        .collect();
    let recs = check::records(conns, &r.new_master, &boxes, CHECK_TIMEOUT).await?;
    // per mailbox: live GUIDs, and GUIDs expunged there (a user's deletion
    // on the new master since the report, e.g. the heartbeat's ipurge)
    let mut live: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut gone: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let mut uid_of: BTreeMap<(String, &str), u32> = BTreeMap::new();
    for b in &boxes {
        let ext = crate::cyrus::names::external(&b.name);
        match recs.get(&b.uniqueid) {
            Some(Ok(x)) => {
                for rec in &x.records {
                    uid_of.insert((ext.clone(), rec.guid.as_str()), rec.uid);
                }
                live.entry(ext.clone())
                    .or_default()
                    .extend(x.records.iter().map(|r| r.guid.as_str()));
                gone.entry(ext)
                    .or_default()
                    .extend(x.expunged.iter().map(|(_, g)| g.as_str()));
            }
            Some(Err(e)) => return Err(format!("{}: {ext}: {e}", r.new_master).into()),
            None => return Err(format!("{}: {ext}: not read", r.new_master).into()),
        }
    }
    let (mut missing, mut deleted, mut checked) = (Vec::new(), 0usize, 0usize);
    for (mailbox, guids) in &d.must_survive {
        for g in guids {
            checked += 1;
            let has = |m: &BTreeMap<String, BTreeSet<&str>>| {
                m.get(mailbox).is_some_and(|s| s.contains(g.as_str()))
            };
            if has(&live) {
                continue;
            }
            if has(&gone) {
                deleted += 1;
                out.push(format!(
                    "  deleted on {} since the report (expunged there): {mailbox} {g}",
                    r.new_master
                ));
            } else {
                missing.push(format!("{mailbox} {g}"));
            }
        }
    }
    for m in missing.iter().take(20) {
        out.push(format!("  MISSING on {}: {m}", r.new_master));
    }
    // what became of each clash: the UIDs both messages carry now
    for c in d.clashes.iter_mut() {
        let now = |g: &str| uid_of.get(&(c.mailbox.clone(), g)).copied();
        c.uids_now = now(&c.old_guid).zip(now(&c.new_guid));
        if let Some((a, b)) = c.uids_now {
            out.push(format!(
                "  GUID conflict {} UID {}: {} now UID {a}, {} now UID {b}",
                c.mailbox, c.uid, c.old_guid, c.new_guid
            ));
        }
    }
    save_report(cx, &d, out);
    if !missing.is_empty() {
        return Err(format!(
            "{} of {checked} GUID(s) are not on {}: replication stays held",
            missing.len(),
            r.new_master
        )
        .into());
    }
    Ok(format!(
        "all {checked} GUID(s) of the copied users are on {} ({deleted} deleted there since the report)",
        r.new_master
    ))
}

async fn start_replication(
    cx: &StepContext<'_>,
    r: &mut Roles,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let rep = probe_host(cx, &r.old_master).await?;
    if crate::ops::host_probe::master_pid(cx, &r.old_master, &rep).is_none() {
        return Err(format!(
            "{}'s Cyrus is not running: start it (it comes up fenced, without a client) and resume",
            r.old_master
        )
        .into());
    }
    let old_sync = failover::precheck::sync_server_of(cx, &r.old_master, &rep)?;
    r.old_sync = old_sync;
    let said = failover::script(cx, &r.new_master, Act::BecomeMaster, r, &r.old_sync, out).await?;
    let rep = failover::wait_client(cx, &r.new_master, &r.channel, true).await?;
    let pid = crate::ops::host_probe::client_pids(cx, &r.new_master, &rep, &r.channel);
    Ok(format!("{said}; client pid {pid:?}"))
}
