//! Runbook "repair USER|MAILBOX": the guided fix for what the check found.
//! 1 plan (read-only): check the target, say what sync_client will do to
//!   each difference, remember every GUID on either side;
//! 2 protect: a message the replica EXPUNGED would be expunged on the
//!   master too by the sync (the side with the higher modseq wins), so it
//!   is first restored on the replica with `unexpunge -u` (new UID there;
//!   the sync then copies it back): never delete what is not kept elsewhere;
//! 3 sync: with `--replica-only copy-back`, first what only a replica has
//!   is copied to the master by `sync_client` run ON THAT REPLICA towards
//!   the master's sync_server (`-S HOST:PORT`): `-m` for its folders, `-u`
//!   for a user the master has no mailbox of (subscriptions and seen state
//!   come along); every GUID it held is then verified on the master before
//!   anything else runs; then `sync_client -u USER` / `-m MAILBOX` on the
//!   master;
//! 4 verify (read-only): re-check, and every GUID either side had before is
//!   on both sides now.
//!
//! Cyrus 3.6 behaviour this relies on (lab, sync_client -u): a message only
//! on the replica above the master's last UID is copied back with its UID;
//! same UID with two GUIDs: both get new UIDs on both sides; flags: the
//! side with the higher modseq wins; a higher UIDVALIDITY on the replica is
//! pushed to the master; a folder only on the master is created on the
//! replica; a folder only on the replica is left alone (neither copied back
//! nor deleted). Copy-back in the other direction (lab, 3.6): `sync_client
//! -S MASTER:PORT -m user/x/F` on the replica creates F on the master with
//! the same UIDVALIDITY, UIDs and GUIDs in ~0.03 s; `-u USER` creates the
//! user with its folders and subscriptions. Neither can expunge anything on
//! the master: it has no such mailbox. The replica needs sync_authname and
//! sync_password valid on the master (the lab: the same admin `repl`).

use super::runbook::{runbook_steps, LockOn, RunbookKind, RunbookSpec, StepState};
use super::step::Runbook;
use super::StepContext;
use crate::check::{self, compare, GuidsByMailbox, Scope};
use crate::config::HostConfig;
use crate::cyrus::names::{mailbox_arg, user_arg};
use crate::model::conflicts::{DiffKind, Difference};
use crate::ops::error::StepError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

runbook_steps! {
    /// The repair runbook's steps, in the run's order.
    pub enum Step {
        Plan = read "Plan: check the target and say what the sync will do",
        Protect = write "Protect: unexpunge on the replica what only the replica deleted",
        Sync = write "Sync: copy back what only the replica has (if chosen), then sync_client -u USER / -m MAILBOX on the master",
        Verify = read "Verify: re-check; every GUID from before is on both sides",
    }
}

pub const SPEC: RunbookSpec = RunbookSpec {
    kind: RunbookKind::Repair,
    title: "Repair a user or mailbox",
    summary: "check it, plan, keep replica-only deletions from spreading, sync_client -u/-m, verify nothing lost",
    target: "user or mailbox",
    point_of_no_return: None,
    lock_on: LockOn::Master,
    steps: Step::SPECS,
};

const TIMEOUT: Duration = Duration::from_secs(300);

/// What the plan leaves for the later steps.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Plan {
    /// Nothing diverges: later steps do nothing.
    in_sync: bool,
    /// (replica host, mailbox, uids) to unexpunge.
    protect: Vec<(String, String, Vec<u32>)>,
    /// Mailboxes sync_client leaves alone (only on the replica).
    left_alone: Vec<String>,
    /// (replica host, mailbox) only on that replica, to copy to the master
    /// (`--replica-only copy-back`).
    copy_back: Vec<(String, String)>,
    /// (replica host, user): the master has no mailbox of the user at all,
    /// so the whole user is copied (`sync_client -u` on the replica).
    copy_user: Option<(String, String)>,
    /// (mailbox, guid) the master deleted on purpose: not kept.
    deleted_on_master: Vec<(String, String)>,
    /// Per mailbox: the union of both sides' GUID multisets before.
    before: GuidsByMailbox,
    before_counts: Vec<(String, usize)>,
}

/// What a repair covers: `kind` is the `target` option (`auto`: a
/// mailbox when the name has a `/`, else a user).
pub fn scope_of(target: &str, kind: &str) -> Scope {
    let mailbox = match kind {
        "mailbox" => true,
        "user" => false,
        _ => target.contains('/'),
    };
    if mailbox {
        Scope {
            mailbox: Some(target.to_string()),
            user: None,
        }
    } else {
        Scope {
            user: Some(target.to_string()),
            mailbox: None,
        }
    }
}

fn target_scope(cx: &StepContext<'_>) -> Scope {
    scope_of(cx.target, cx.option("target"))
}

/// The repair runbook, for the engine's dispatch.
pub struct Repair;

impl Runbook for Repair {
    type Step = Step;
    type Memo = Plan;
    const SPEC: RunbookSpec = SPEC;
    async fn execute(
        step: Step,
        cx: &StepContext<'_>,
        out: &mut Vec<String>,
        memo: &mut Plan,
    ) -> StepState {
        execute(step, cx, out, memo).await
    }
}

/// Step `step`; the plan (the memo) is made by the first and read by the rest.
pub async fn execute(
    step: Step,
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut Plan,
) -> StepState {
    if let Err(e) = SPEC.check_target(cx.target) {
        return StepState::Failed(e);
    }
    let plan = memo.clone();
    super::state_of(match step {
        Step::Plan => plan_step(cx, out).await.map(|(p, msg)| {
            *memo = p;
            msg
        }),
        Step::Protect if cx.attempt > 1 => {
            // run again after an interruption: unexpunge only what is still
            // expunged on the replica alone (a second unexpunge of the same
            // UID would make a second copy)
            match plan_step(cx, out).await {
                Ok((fresh, _)) => {
                    let plan = Plan {
                        protect: fresh.protect,
                        ..plan
                    };
                    protect_step(cx, &plan, out).await
                }
                Err(e) => Err(e),
            }
        }
        Step::Protect => protect_step(cx, &plan, out).await,
        Step::Sync => sync_step(cx, &plan, out).await,
        Step::Verify => verify_step(cx, &plan, out).await,
    })
}

fn hosts(cx: &StepContext<'_>) -> Vec<String> {
    std::iter::once(cx.pair.master.clone())
        .chain(cx.pair.replicas.iter().map(|r| r.host.clone()))
        .collect()
}

async fn snapshot(
    cx: &StepContext<'_>,
    scope: &Scope,
) -> Result<Vec<(String, GuidsByMailbox)>, StepError> {
    let mut v = Vec::new();
    for h in hosts(cx) {
        let g = check::guid_multiset(cx.connections(), &h, scope, TIMEOUT).await?;
        v.push((h, g));
    }
    Ok(v)
}

fn messages(g: &GuidsByMailbox) -> usize {
    g.values()
        .flat_map(|m| m.values())
        .map(|c| *c as usize)
        .sum()
}

/// What sync_client will do to one difference (`copy_back`: the operator
/// chose to copy what only the replica has back to the master).
fn action(d: &Difference, copy_back: bool) -> String {
    let uid = d.uid.map(|u| format!(" UID {u}")).unwrap_or_default();
    match d.kind {
        DiffKind::MissingOnReplica if d.detail.ends_with(compare::EXPUNGED_ON_REPLICA) => format!(
            "{}{uid}: the replica expunged it; the sync would expunge it on the master too: restored on the replica first (step 2)",
            d.mailbox
        ),
        DiffKind::MissingOnReplica => format!("{}{uid}: copied to the replica", d.mailbox),
        DiffKind::MissingOnMaster if d.detail.ends_with(compare::EXPUNGED_ON_MASTER) => {
            format!("{}{uid}: the master deleted it; the deletion reaches the replica", d.mailbox)
        }
        DiffKind::MissingOnMaster => format!("{}{uid}: copied back to the master, UID kept", d.mailbox),
        DiffKind::GuidConflict => format!(
            "{}{uid}: two messages share the UID: both get new UIDs on both sides, nothing lost (clients see new UIDs)",
            d.mailbox
        ),
        DiffKind::FlagsDiffer => format!("{}{uid}: flags of the side changed last win ({})", d.mailbox, d.detail),
        DiffKind::UidvalidityDiffers => format!(
            "{}: the higher UIDVALIDITY wins on both sides ({}); clients resync the folder",
            d.mailbox, d.detail
        ),
        DiffKind::MailboxOnlyOnMaster => format!("{}: created on the replica", d.mailbox),
        DiffKind::MailboxOnlyOnReplica if copy_back => format!(
            "{}: only on the replica: COPIED BACK to the master (sync_client on the replica), every GUID verified there",
            d.mailbox
        ),
        DiffKind::MailboxOnlyOnReplica => format!(
            "{}: LEFT ALONE (sync_client neither copies a replica-only folder back nor deletes it): `--replica-only copy-back` copies it to the master",
            d.mailbox
        ),
        DiffKind::MetadataDiffers => format!("{}: mailbox state pushed from the side changed last", d.mailbox),
        DiffKind::InFlight => format!("{}{uid}: in flight: the rolling client delivers it", d.mailbox),
        DiffKind::DeletedPurgedOnOneSide => format!(
            "{}: delayed-delete mailbox purged on one host only: nothing to repair (each host's cyr_expire purges it)",
            d.mailbox
        ),
        DiffKind::AclDiffers => format!("{}: the master's ACL pushed to the replica ({})", d.mailbox, d.detail),
        // lab, 3.6.1: sync_client -u exits 1 on it and changes nothing
        DiffKind::MailboxRecreated => format!(
            "{}: two different mailboxes under one name ({}): sync_client cannot settle this (it fails): copy back what only the replica's holds (the per-message lines), delete the replica's copy, then repair again to create the master's there",
            d.mailbox, d.detail
        ),
        DiffKind::QuotaDiffers => format!(
            "{}: the master's quota limits pushed to the replica ({})",
            d.mailbox, d.detail
        ),
        // sync_client -u sends SUB/UNSUB until the replica's list is the
        // master's: a folder only the replica had subscribed is named here,
        // the one record of it (copy-back does not carry subscriptions)
        // sync_client -u makes the replica's sieve directory the master's:
        // lab, 3.6.1, a source, its .bc and the defaultbc link placed by
        // hand on the replica only were removed by sync_server
        DiffKind::SieveDiffers => format!(
            "{}: the master's sieve scripts and active script made the replica's ({}); a script only the replica had is REMOVED there: put it with ManageSieve on the master first to keep it",
            d.mailbox, d.detail
        ),
        // lab, 3.6.1: a value set on the replica only went to the master
        // (the side with the higher modseq wins, as for flags)
        DiffKind::AnnotationsDiffer => format!(
            "{}: the annotations of the side changed last win on both sides, as flags do ({})",
            d.mailbox, d.detail
        ),
        // sync_support.c sync_do_user_seen: the master's records are sent
        // (APPLY SEEN) where they differ; one only the replica holds is
        // never deleted ("XXX - delete seen on the replica ...")
        DiffKind::SeenDiffers => format!(
            "{}: the master's seen state of others' folders written to the replica ({}); a record only the replica holds is LEFT there (sync_client never deletes one): the user marks those messages on the master to keep it",
            d.mailbox, d.detail
        ),
        DiffKind::SubscriptionsDiffer => format!(
            "{}: the master's subscriptions written to the replica ({}); a subscription only the replica had is dropped there: subscribe it on the master as the user to keep it",
            d.mailbox, d.detail
        ),
    }
}

/// "[replica2] detail" -> ("replica2", detail) when a pair has several replicas.
fn replica_of<'a>(cx: &'a StepContext<'_>, d: &'a Difference) -> &'a str {
    if let Some(rest) = d.detail.strip_prefix('[') {
        if let Some((h, _)) = rest.split_once("] ") {
            return h;
        }
    }
    cx.pair
        .replicas
        .first()
        .map(|r| r.host.as_str())
        .unwrap_or("")
}

async fn plan_step(
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
) -> Result<(Plan, String), StepError> {
    let scope = target_scope(cx);
    let result = cx.scoped_check(&scope, Duration::from_secs(20)).await?;
    if !result.errors.is_empty() {
        return Err(format!("the check could not read: {}", result.errors.join("; ")).into());
    }
    let mut plan = Plan {
        in_sync: result.in_sync(),
        ..Default::default()
    };
    plan_differences(cx, &result, &mut plan, out);
    let snap = snapshot(cx, &scope).await?;
    skip_restored(&result, &snap, &mut plan, out);
    record_before(cx, &scope, &snap, &mut plan);
    let counts: Vec<String> = plan
        .before_counts
        .iter()
        .map(|(h, n)| format!("{h} {n} messages"))
        .collect();
    let msg = if plan.in_sync {
        format!("in sync ({}); nothing to repair", counts.join(", "))
    } else {
        format!(
            "{} difference(s), {} to protect, {} folder(s) left alone, {} to copy back{}; before: {}",
            result.divergent().count(),
            plan.protect.iter().map(|p| p.2.len()).sum::<usize>(),
            plan.left_alone.len(),
            plan.copy_back.len(),
            if plan.copy_user.is_some() {
                " (the whole user: the master has none of it)"
            } else {
                ""
            },
            counts.join(", ")
        )
    };
    Ok((plan, msg))
}

/// What the sync will do about each difference: UIDs to protect (only the
/// replica expunged them), what only the master deleted, the folders only
/// the replica has (copied back when asked, else left alone).
fn plan_differences(
    cx: &StepContext<'_>,
    result: &crate::model::conflicts::CheckResult,
    plan: &mut Plan,
    out: &mut Vec<String>,
) {
    let copy_back = cx.option("replica-only") == "copy-back";
    for d in &result.differences {
        out.push(format!("  {}", action(d, copy_back)));
        match d.kind {
            DiffKind::MissingOnReplica if d.detail.ends_with(compare::EXPUNGED_ON_REPLICA) => {
                let host = replica_of(cx, d).to_string();
                let uid = d.uid.unwrap_or(0);
                match plan
                    .protect
                    .iter_mut()
                    .find(|(h, m, _)| *h == host && *m == d.mailbox)
                {
                    Some((_, _, uids)) => uids.push(uid),
                    None => plan.protect.push((host, d.mailbox.clone(), vec![uid])),
                }
            }
            DiffKind::MissingOnMaster if d.detail.ends_with(compare::EXPUNGED_ON_MASTER) => {
                if let Some(r) = &d.replica {
                    plan.deleted_on_master
                        .push((d.mailbox.clone(), r.guid.clone()));
                }
            }
            DiffKind::MailboxOnlyOnReplica if copy_back => plan
                .copy_back
                .push((replica_of(cx, d).to_string(), d.mailbox.clone())),
            DiffKind::MailboxOnlyOnReplica => plan.left_alone.push(d.mailbox.clone()),
            _ => {}
        }
    }
}

/// A message the replica expunged but already holds live again (an
/// earlier protect restored it under a new UID, and that run was cut
/// short) needs no second unexpunge: it would make a second copy.
fn skip_restored(
    result: &crate::model::conflicts::CheckResult,
    snap: &[(String, GuidsByMailbox)],
    plan: &mut Plan,
    out: &mut Vec<String>,
) {
    let live_on = |host: &str, mailbox: &str, guid: &str| {
        snap.iter()
            .find(|(h, _)| h == host)
            .and_then(|(_, g)| g.get(mailbox))
            .and_then(|m| m.get(guid))
            .copied()
            .unwrap_or(0)
    };
    let master_guid = |mailbox: &str, uid: u32| {
        result
            .differences
            .iter()
            .find(|d| d.mailbox == mailbox && d.uid == Some(uid))
            .and_then(|d| d.master.as_ref())
            .map(|m| m.guid.clone())
    };
    for (host, mailbox, uids) in plan.protect.iter_mut() {
        uids.retain(|uid| {
            master_guid(mailbox, *uid).is_none_or(|g| {
                let there = live_on(host, mailbox, &g);
                if there > 0 {
                    out.push(format!(
                        "  {mailbox} UID {uid}: already live again on {host}: not restored twice"
                    ));
                }
                there == 0
            })
        });
    }
    plan.protect.retain(|(_, _, uids)| !uids.is_empty());
}

/// The GUIDs on each host before the sync (verify proves none is lost),
/// and whether the whole user is copied back (the master has none of it).
fn record_before(
    cx: &StepContext<'_>,
    scope: &Scope,
    snap: &[(String, GuidsByMailbox)],
    plan: &mut Plan,
) {
    // a user the master has no mailbox of is copied whole (its
    // subscriptions and seen state too); otherwise folder by folder
    let on_master = snap
        .iter()
        .find(|(h, _)| *h == cx.pair.master)
        .is_some_and(|(_, g)| !g.is_empty());
    if let (Some(user), Some((replica, _)), false) =
        (&scope.user, plan.copy_back.first(), on_master)
    {
        plan.copy_user = Some((replica.clone(), user.clone()));
    }
    for (host, g) in snap {
        plan.before_counts.push((host.clone(), messages(g)));
        for (mailbox, guids) in g {
            let u = plan.before.entry(mailbox.clone()).or_default();
            for (guid, n) in guids {
                let e = u.entry(guid.clone()).or_insert(0);
                *e = (*e).max(*n);
            }
        }
    }
}

/// Repair's plan and protect steps for the target mailbox, for `resync`:
/// restore on the replica what only the replica expunged, so a push with
/// `sync_client -m` cannot carry that deletion to the master (Cyrus: the
/// side with the higher modseq wins, and an expunge raises it).
pub(super) async fn protect_target(
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let (plan, said) = plan_step(cx, out).await?;
    out.push(format!("  plan: {said}"));
    protect_step(cx, &plan, out).await
}

/// UIDs per unexpunge command (11 bytes each at most: 22 KB).
const UIDS_PER_UNEXPUNGE: usize = 2_000;

/// `unexpunge -C CONF -u -v MAILBOX UID...` (the mailbox comes from the
/// hosts' mailbox lists: checked, never an option).
pub fn unexpunge_argv(
    h: &HostConfig,
    mailbox: &str,
    uids: &[u32],
) -> Result<Vec<String>, StepError> {
    let mut argv = vec![
        format!("{}/unexpunge", h.bin_dir.display()),
        "-C".into(),
        h.imapd_conf.display().to_string(),
        "-u".into(),
        "-v".into(),
        mailbox_arg(mailbox)?,
    ];
    argv.extend(uids.iter().map(u32::to_string));
    Ok(argv)
}

/// `-u USER` or `-m MAILBOX` for sync_client, the name checked.
pub fn sync_target_args(scope: &Scope) -> Result<[String; 2], StepError> {
    match (&scope.user, &scope.mailbox) {
        (Some(u), _) => Ok(["-u".into(), user_arg(u)?]),
        (_, Some(m)) => Ok(["-m".into(), mailbox_arg(m)?]),
        _ => Err("no target".into()),
    }
}

async fn protect_step(
    cx: &StepContext<'_>,
    plan: &Plan,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    if plan.protect.is_empty() {
        return Ok("nothing to protect: no message was expunged only on a replica".into());
    }
    let mut restored = 0;
    // a mailbox emptied on the replica only may name thousands of UIDs:
    // unexpunge takes them as arguments, so in runs of a bounded size
    let mut runs: Vec<(&String, &String, &[u32])> = Vec::new();
    for (host, mailbox, uids) in &plan.protect {
        for c in uids.chunks(UIDS_PER_UNEXPUNGE) {
            runs.push((host, mailbox, c));
        }
    }
    for (host, mailbox, uids) in runs {
        let argv = unexpunge_argv(cx.connection(host)?.config(), mailbox, uids)?;
        let o = cx.write(host, argv, None, TIMEOUT, out).await?;
        let text =
            String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
        out.extend(text.lines().map(|l| format!("  {l}")));
        if !o.success() {
            return Err(format!(
                "unexpunge on {host} failed (exit {:?}): nothing synced",
                o.exit_status
            )
            .into());
        }
        restored += text
            .lines()
            .filter(|l| l.starts_with("Unexpunged "))
            .count();
    }
    let wanted: usize = plan.protect.iter().map(|p| p.2.len()).sum();
    if restored < wanted {
        return Err(format!(
            "only {restored} of {wanted} expunged messages could be restored (already cleaned up?): not syncing"
        ).into());
    }
    Ok(format!(
        "{restored} message(s) restored on the replica with new UIDs"
    ))
}

async fn sync_step(
    cx: &StepContext<'_>,
    plan: &Plan,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    if plan.in_sync {
        return Ok("in sync: nothing to push".into());
    }
    let copied = copy_back_step(cx, plan, out).await?;
    let scope = target_scope(cx);
    for r in &cx.pair.replicas {
        let mut argv = cx.sync_client_argv(&r.channel)?;
        argv.extend(sync_target_args(&scope)?);
        let o = cx.write(&cx.pair.master, argv, None, TIMEOUT, out).await?;
        let stderr = String::from_utf8_lossy(&o.stderr);
        for l in stderr.lines() {
            out.push(format!("  {l}"));
        }
        if !o.success() {
            let why = crate::cyrus::known_bugs::recognise(&stderr)
                .map(|b| format!(": {}", b.explanation))
                .unwrap_or_default();
            return Err(
                format!("sync_client to {} exited {:?}{why}", r.host, o.exit_status).into(),
            );
        }
    }
    Ok(format!("{copied}sync_client finished"))
}

/// What only a replica has, copied to the master by sync_client run on
/// that replica, then every GUID the plan saw there verified on the
/// master. Run again after an interruption it syncs the same mailboxes
/// once more: a merge both ways (what the master took meanwhile above the
/// replica's last UID comes back), never an expunge of what either holds.
async fn copy_back_step(
    cx: &StepContext<'_>,
    plan: &Plan,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    if plan.copy_back.is_empty() {
        return Ok(String::new());
    }
    let master = &cx.pair.master;
    let rep = super::host_probe::probe_host(cx, master).await?;
    let server = super::failover::precheck::sync_server_of(cx, master, &rep)?;
    let mut replicas: Vec<&str> = plan.copy_back.iter().map(|(h, _)| h.as_str()).collect();
    replicas.sort_unstable();
    replicas.dedup();
    for replica in replicas {
        // `-u USER`, or `-m` with the folders in runs of a bounded size
        let targets: Vec<Vec<String>> = match &plan.copy_user {
            Some((h, user)) if h == replica => vec![vec!["-u".into(), user_arg(user)?]],
            _ => {
                let boxes = plan
                    .copy_back
                    .iter()
                    .filter(|(h, _)| h == replica)
                    .map(|(_, m)| mailbox_arg(m))
                    .collect::<Result<Vec<_>, _>>()?;
                super::arg_chunks(&boxes)
                    .into_iter()
                    .map(|c| {
                        std::iter::once("-m".to_string())
                            .chain(c.iter().cloned())
                            .collect()
                    })
                    .collect()
            }
        };
        for target in targets {
            let mut argv = cx.sync_client_on(replica, "", Some(&server))?;
            argv.extend(target);
            let o = cx.write(replica, argv, None, TIMEOUT, out).await?;
            for l in String::from_utf8_lossy(&o.stderr).lines() {
                out.push(format!("  {l}"));
            }
            if !o.success() {
                return Err(format!(
                    "copy-back from {replica} to {master} exited {:?}: the master's sync was not run",
                    o.exit_status
                ).into());
            }
        }
    }
    // every GUID (with its count) the plan saw in those mailboxes, now on
    // the master: checked before anything else syncs
    let on_master =
        check::guid_multiset(cx.connections(), master, &target_scope(cx), TIMEOUT).await?;
    let (mut missing, mut guids) = (Vec::new(), 0usize);
    for (_, mailbox) in &plan.copy_back {
        for (guid, n) in plan.before.get(mailbox).into_iter().flatten() {
            guids += 1;
            let have = on_master
                .get(mailbox)
                .and_then(|m| m.get(guid))
                .copied()
                .unwrap_or(0);
            if have < *n {
                missing.push(format!("{mailbox} GUID {guid} ({have} of {n})"));
            }
        }
    }
    for m in &missing {
        out.push(format!("  NOT ON {master}: {m}"));
    }
    if !missing.is_empty() {
        return Err(format!(
            "{} of {guids} GUID(s) copied back are not on {master}: nothing else synced",
            missing.len()
        )
        .into());
    }
    let said = format!(
        "{} mailbox(es) copied back to {master}, all {guids} GUID(s) verified there; ",
        plan.copy_back.len()
    );
    out.push(format!("  {said}"));
    Ok(said)
}

async fn verify_step(
    cx: &StepContext<'_>,
    plan: &Plan,
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    let scope = target_scope(cx);
    let result = cx.scoped_check(&scope, Duration::from_secs(30)).await?;
    let remaining: Vec<&Difference> = result
        .divergent()
        .filter(|d| {
            !(d.kind == DiffKind::MailboxOnlyOnReplica && plan.left_alone.contains(&d.mailbox))
        })
        .collect();
    for d in &remaining {
        out.push(format!("  still differs: {} {}", d.kind.label(), d.mailbox));
    }
    let snap = snapshot(cx, &scope).await?;
    let mut lost = Vec::new();
    for (mailbox, guids) in &plan.before {
        if plan.left_alone.contains(mailbox) {
            continue;
        }
        for (guid, n) in guids {
            if plan
                .deleted_on_master
                .iter()
                .any(|(m, g)| m == mailbox && g == guid)
            {
                continue;
            }
            for (host, g) in &snap {
                let have = g
                    .get(mailbox)
                    .and_then(|m| m.get(guid))
                    .copied()
                    .unwrap_or(0);
                if have < *n {
                    lost.push(format!("{host}: {mailbox} GUID {guid} ({have} of {n})"));
                }
            }
        }
    }
    for l in &lost {
        out.push(format!("  MISSING {l}"));
    }
    let after: Vec<String> = snap
        .iter()
        .map(|(h, g)| format!("{h} {} messages", messages(g)))
        .collect();
    let before: Vec<String> = plan
        .before_counts
        .iter()
        .map(|(h, n)| format!("{h} {n}"))
        .collect();
    let summary = format!("before: {}; after: {}", before.join(", "), after.join(", "));
    if !lost.is_empty() {
        return Err(format!("{} message(s) not on both sides; {summary}", lost.len()).into());
    }
    if !remaining.is_empty() || !result.errors.is_empty() {
        return Err(format!("{} difference(s) remain; {summary}", remaining.len()).into());
    }
    if plan.left_alone.is_empty() {
        Ok(format!("in sync, every message kept; {summary}"))
    } else {
        Ok(format!(
            "in sync except what was left alone ({}), every message kept; {summary}",
            plan.left_alone.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_with_a_slash_are_mailboxes() {
        assert_eq!(
            scope_of("user/alice/Sent", "auto").mailbox.as_deref(),
            Some("user/alice/Sent")
        );
        assert_eq!(scope_of("alice", "auto").user.as_deref(), Some("alice"));
        // a domain's top-level shared folder reads like a user: said by --mailbox
        assert_eq!(
            scope_of("sales@example.com", "mailbox").mailbox.as_deref(),
            Some("sales@example.com")
        );
        assert_eq!(
            scope_of("sales@example.com", "auto").user.as_deref(),
            Some("sales@example.com")
        );
    }
}
