//! Undoing a failover, level-triggered: observe both hosts now (who logs,
//! who runs a rolling client, who is fenced, what is queued), decide from
//! that alone what is left to do to bring the old master back, do it, and
//! observe again to prove it. Run after an abort, after a failed step before
//! the point of no return, and again on resume when an undo was cut short.
//!
//! The point of no return is observable: the new master unfenced while it
//! acts as a master (it may hold mail the old one never had). From there
//! the only way is forward.
//!
//! Order keeps the two invariants at every instant: never two hosts logging
//! with a client (the new master stops first), never writes on a host
//! without a running client (the old master is unfenced last, after its
//! client is proven running).

use super::roles::Roles;
use super::script::{hook, script, stop_client_on, wait_client, Act};
use crate::cyrus::host_facts::{Fence, HostFacts};
use crate::ops::error::StepError;
use crate::ops::host_probe::probe_host;
use crate::ops::step::Undone;
use crate::ops::StepContext;

/// One thing the undo does, in this order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndoAction {
    /// The new master stops logging and replicating (DAEMON entry out,
    /// sync_log 0, SIGHUP).
    StopNewMaster,
    /// The old master logs and replicates again (its DAEMON entry back,
    /// sync_log 1, sync_host/port of the replica, SIGHUP).
    RestoreOldMaster,
    /// Remove this run's fence from the old master (only once its client
    /// is proven running).
    UnfenceOldMaster,
    /// Remove this run's fence from the replica (it had none before).
    UnfenceReplica,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UndoPlan {
    /// The actions still needed (possibly none: the pair is as before).
    Undo(Vec<UndoAction>),
    /// Past the point of no return: the run can only go forward.
    Forward(String),
}

/// What is left to undo, from the hosts' facts alone.
pub fn plan(old: &HostFacts, new: &HostFacts, r: &Roles) -> UndoPlan {
    if new.fence == Fence::Open && new.master_like() {
        return UndoPlan::Forward(format!(
            "{} accepts writes and acts as the master: past the point of no return",
            new.host
        ));
    }
    let mut v = Vec::new();
    if new.master_like() {
        v.push(UndoAction::StopNewMaster);
    }
    if !old.replicating_master() {
        v.push(UndoAction::RestoreOldMaster);
    }
    if old.fence == Fence::Ours {
        v.push(UndoAction::UnfenceOldMaster);
    }
    if new.fence == Fence::Ours && !r.new_fenced_before {
        v.push(UndoAction::UnfenceReplica);
    }
    UndoPlan::Undo(v)
}

/// Both hosts' facts over every channel of the pair: the old master
/// replicates only when it does on all of them, the new master acts as a
/// master when it does on any (a pair with several replicas).
pub async fn observe(cx: &StepContext<'_>, r: &Roles) -> Result<(HostFacts, HostFacts), StepError> {
    let (o, n) = tokio::join!(probe_host(cx, &r.old_master), probe_host(cx, &r.new_master));
    let (o, n) = (o?, n?);
    let conf = |h: &str| {
        cx.connection(h)
            .map(|c| c.config().imapd_conf.display().to_string())
            .unwrap_or_default()
    };
    let per = |rep, host: &str| -> Vec<HostFacts> {
        r.channels()
            .iter()
            .map(|c| HostFacts::read(rep, host, &conf(host), c, cx.run_id))
            .collect()
    };
    Ok((
        merged(per(&o, &r.old_master), true),
        merged(per(&n, &r.new_master), false),
    ))
}

/// One channel's facts standing for all: `all` (the old master) keeps a
/// client only if every channel has one; otherwise any channel's counts.
fn merged(per: Vec<HostFacts>, all: bool) -> HostFacts {
    let mut it = per.into_iter();
    let mut f = it.next().expect("a pair has a channel");
    for g in it {
        if all {
            f.daemon_client &= g.daemon_client;
            if g.clients.is_empty() {
                f.clients.clear();
            }
        } else {
            f.daemon_client |= g.daemon_client;
            f.clients.extend(g.clients);
        }
        f.pending += g.pending;
    }
    f
}

/// Bring the old master back, from whatever state the hosts are in.
pub async fn run(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
) -> Result<Undone, StepError> {
    let (o, n) = observe(cx, r).await?;
    out.push(format!("  now: {}", o.summary()));
    out.push(format!("  now: {}", n.summary()));
    let actions = match plan(&o, &n, r) {
        UndoPlan::Forward(why) => return Ok(Undone::Forward(why)),
        UndoPlan::Undo(a) => a,
    };
    if n.master_like() && n.pending > 0 {
        out.push(format!(
            "  WARNING: {} has {} entries queued while fenced (admin changes?): they are not carried back",
            n.host, n.pending
        ));
    }
    for a in &actions {
        out.push(format!("  undo: {a:?}"));
        match a {
            UndoAction::StopNewMaster => {
                for c in r.channels() {
                    stop_client_on(cx, &r.new_master, &r.on_channel(&c), out).await?;
                }
            }
            UndoAction::RestoreOldMaster => {
                script(cx, &r.old_master, Act::BecomeMaster, r, &r.new_sync, out).await?;
                // become-master lists only the target's channel
                for o in &r.others {
                    let ro = r.on_channel(&o.channel);
                    script(cx, &r.old_master, Act::AddChannel, &ro, &o.sync, out).await?;
                }
            }
            UndoAction::UnfenceOldMaster => {
                // never writes without replication, on every channel
                for c in r.channels() {
                    wait_client(cx, &r.old_master, &c, true).await?;
                }
                script(
                    cx,
                    &r.old_master,
                    Act::StartWrites { any: false },
                    r,
                    &r.old_sync,
                    out,
                )
                .await?;
            }
            UndoAction::UnfenceReplica => {
                script(
                    cx,
                    &r.new_master,
                    Act::StartWrites { any: false },
                    r,
                    &r.old_sync,
                    out,
                )
                .await?;
            }
        }
    }
    // traffic back to the old master (VIP, DNS): idempotent by contract;
    // not when nothing was ever stopped (an observe-mode run, say)
    if !actions.is_empty() || r.writes_stopped_at.is_some() {
        hook(cx, r, "undo", out).await?;
    }
    // prove it: exactly the state before the run
    let (o, n) = observe(cx, r).await?;
    if !o.replicating_master() || n.master_like() || o.fence == Fence::Ours {
        return Err(format!(
            "after the undo the pair is not as before: {}; {}",
            o.summary(),
            n.summary()
        )
        .into());
    }
    Ok(Undone::Restored(format!(
        "roles unchanged; writes restored: {} keeps serving as master, replicating to {} ({} action(s))",
        r.old_master,
        r.new_master,
        actions.len()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(host: &str, master: bool, fence: Fence) -> HostFacts {
        HostFacts {
            host: host.into(),
            cyrus_running: true,
            sync_log: master,
            daemon_client: master,
            clients: if master { vec![7] } else { vec![] },
            sync_server_answers: true,
            fence,
            pending: 0,
        }
    }

    fn roles(fenced_before: bool) -> Roles {
        Roles {
            old_master: "m".into(),
            new_master: "r".into(),
            new_fenced_before: fenced_before,
            ..Default::default()
        }
    }

    use UndoAction::*;

    #[test]
    fn before_anything_changed_there_is_nothing_to_do() {
        let p = plan(
            &facts("m", true, Fence::Open),
            &facts("r", false, Fence::Open),
            &roles(false),
        );
        assert_eq!(p, UndoPlan::Undo(vec![]));
    }

    #[test]
    fn writes_stopped_only_unfences_both() {
        let p = plan(
            &facts("m", true, Fence::Ours),
            &facts("r", false, Fence::Ours),
            &roles(false),
        );
        assert_eq!(p, UndoPlan::Undo(vec![UnfenceOldMaster, UnfenceReplica]));
        // a replica fenced before the run stays fenced
        let p = plan(
            &facts("m", true, Fence::Ours),
            &facts("r", false, Fence::Ours),
            &roles(true),
        );
        assert_eq!(p, UndoPlan::Undo(vec![UnfenceOldMaster]));
    }

    #[test]
    fn after_the_switch_the_new_master_stops_before_the_old_one_restarts() {
        // defect 2: step 6 done or half done, then abort/failure
        let p = plan(
            &facts("m", false, Fence::Ours),
            &facts("r", true, Fence::Ours),
            &roles(false),
        );
        assert_eq!(
            p,
            UndoPlan::Undo(vec![
                StopNewMaster,
                RestoreOldMaster,
                UnfenceOldMaster,
                UnfenceReplica
            ])
        );
        // only sync_log flipped on the replica: still a master-like host
        let mut half = facts("r", false, Fence::Ours);
        half.sync_log = true;
        let p = plan(&facts("m", false, Fence::Ours), &half, &roles(false));
        assert!(matches!(p, UndoPlan::Undo(ref v) if v[0] == StopNewMaster));
    }

    #[test]
    fn an_unfenced_new_master_is_past_the_point_of_no_return() {
        let p = plan(
            &facts("m", false, Fence::Ours),
            &facts("r", true, Fence::Open),
            &roles(false),
        );
        assert!(matches!(p, UndoPlan::Forward(_)));
    }

    #[test]
    fn a_client_stopped_on_the_old_master_is_restored_before_writes() {
        let p = plan(
            &facts("m", false, Fence::Ours),
            &facts("r", false, Fence::Ours),
            &roles(true),
        );
        assert_eq!(p, UndoPlan::Undo(vec![RestoreOldMaster, UnfenceOldMaster]));
    }
}
