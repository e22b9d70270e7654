//! Runbook "upgrade-via-failover PAIR": the way operators upgrade a pair
//! through replication. The replica is upgraded first (a newer release may
//! replicate FROM an older master: upstream's supported direction, for an
//! upgrade only); this runbook proves that, then runs the soft failover
//! unchanged (its steps, its point of no return, its undo: the same step
//! indices), so everything the failover guarantees holds across releases.
//! Its last step reads what the old master runs now and tells the operator
//! what to do there: upgrade it (the new master replicates to an OLDER
//! release until then, which upstream does not support), check the pair,
//! and fail back with `failover` if the old master should serve again.
//!
//! Seen in the lab (Cyrus 3.6.1 master, 3.10.2 replica, Debian packages):
//! the failover, its canary new -> old and continuous delivery work in both
//! directions; after the old master's Cyrus is replaced by 3.10 on the same
//! spool (its cyrus.index files minor 17 are upgraded to 19 as 3.10 opens
//! them), the pair checks identical and fails back.

use super::super::host_probe::probe_host;
use super::super::runbook::{LockOn, RunbookKind, RunbookSpec, StepSpec, StepState};
use super::super::step::{Runbook, Undone};
use super::super::StepContext;
use super::roles::{Memo, Releases};
use super::Step as F;
use crate::model::releases::{self, Mix};
use crate::ops::error::{Refusal, StepError};

/// The upgrade's steps: its own version gate before the failover's
/// precheck, the failover's steps unchanged (same index, same undo, same
/// point of no return), then its report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The version gate, then the failover's precheck.
    Precheck,
    /// One of the failover's steps after its precheck.
    Failover(F),
    /// What the old master runs now and the way on.
    Report,
}

impl crate::ops::runbook::StepKind for Step {
    fn of(index: usize) -> Option<Step> {
        match F::of(index) {
            Some(F::Precheck) => Some(Step::Precheck),
            Some(f) => Some(Step::Failover(f)),
            None if index == F::ALL.len() => Some(Step::Report),
            None => None,
        }
    }
}

pub const SPEC: RunbookSpec = RunbookSpec {
    kind: RunbookKind::UpgradeViaFailover,
    title: "Upgrade through a failover to the newer replica",
    summary: "prove the replica runs the newer release, soft failover to it, then say how to upgrade the old master and fail back",
    target: "pair",
    point_of_no_return: super::SPEC.point_of_no_return,
    lock_on: LockOn::Master,
    steps: &[
        StepSpec {
            title: "Precheck: the replica runs a NEWER Cyrus release; the failover's precheck (check clean)",
            mutating: false,
        },
        F::StopWrites.spec(),
        F::Drain.spec(),
        F::FinalCheck.spec(),
        F::StopClient.spec(),
        F::BecomeMaster.spec(),
        F::StartWrites.spec(),
        F::Canary.spec(),
        F::RecordRoles.spec(),
        StepSpec {
            title: "The old master: what it runs now, how to upgrade it, then check and fail back",
            mutating: false,
        },
    ],
};

/// The upgrade, for the engine's dispatch.
pub struct Upgrade;

impl Runbook for Upgrade {
    type Step = Step;
    type Memo = Memo;
    const SPEC: RunbookSpec = SPEC;
    async fn execute(
        step: Step,
        cx: &StepContext<'_>,
        out: &mut Vec<String>,
        memo: &mut Memo,
    ) -> StepState {
        match step {
            Step::Precheck => {
                // refused, not failed: nothing to retry (a failed precheck
                // keeps the run open for `resume --retry`), the run just ends
                if let Err(e) = version_gate(cx, out, memo).await {
                    let refusal = Refusal::Precondition(e.to_string());
                    return super::super::state_of(Err(StepError::Refused(refusal)));
                }
                super::execute(F::Precheck, cx, out, memo).await
            }
            Step::Failover(f) => super::execute(f, cx, out, memo).await,
            Step::Report => super::super::state_of(report(cx, out, memo).await),
        }
    }
    async fn undo(
        cx: &StepContext<'_>,
        memo: &Memo,
        out: &mut Vec<String>,
    ) -> Option<Result<Undone, StepError>> {
        Some(super::undo_from(cx, memo, out).await)
    }
}

async fn version_of(cx: &StepContext<'_>, host: &str) -> Result<String, StepError> {
    probe_host(cx, host)
        .await?
        .version
        .ok_or_else(|| format!("{host} did not say which Cyrus it runs (cyr_info version)").into())
}

async fn version_gate(
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut Memo,
) -> Result<(), StepError> {
    let pair = cx.pair;
    // the replica the failover will promote (`PAIR:HOST`), not the first
    // listed: gating on one and promoting another could "upgrade" the
    // pair to an older release (issue 26, item 5)
    let replica = super::precheck::chosen_replica(pair, cx.target)?;
    let (m, r) = (
        version_of(cx, &pair.master).await?,
        version_of(cx, &replica.host).await?,
    );
    out.push(format!("master {}: {m}", pair.master));
    out.push(format!("replica {}: {r}", replica.host));
    match releases::assess(&m, &r) {
        Some(Mix::Upgrade { master, replica: newer }) => {
            out.push(format!(
                "upgrade direction: {} ({master}) -> {} ({newer})",
                pair.master, replica.host
            ));
            memo.upgrade = Some(Releases {
                from: master.to_string(),
                to: newer.to_string(),
            });
            Ok(())
        }
        Some(Mix::Same) => Err(format!(
            "both hosts run the same release ({m}): upgrade the replica {} first, then run this again (a plain switch is `failover`)",
            replica.host
        ).into()),
        Some(Mix::Downgrade { .. }) => Err(format!(
            "the replica {} runs an OLDER release than the master: failing over to it would downgrade the pair",
            replica.host
        ).into()),
        None => Err(format!("cannot compare the releases {m:?} and {r:?}").into()),
    }
}

/// Read-only: what the old master (now the replica) runs, and the way on.
async fn report(
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &Memo,
) -> Result<String, StepError> {
    let roles = memo.roles()?;
    let (old, new) = (&roles.old_master, &roles.new_master);
    let (ov, nv) = (version_of(cx, old).await?, version_of(cx, new).await?);
    out.push(format!("new master {new}: {nv}"));
    out.push(format!("new replica {old}: {ov}"));
    let pair = &cx.pair.name;
    // master first: the old master (now the replica) OLDER = Downgrade
    match releases::assess(&nv, &ov) {
        Some(Mix::Same | Mix::Upgrade { .. }) => {
            out.push(format!(
                "{old} runs the new release: verify the pair with `cyrdeck check {pair}`; fail back with `cyrdeck run failover {pair}` if {old} should serve again"
            ));
            Ok(format!(
                "{old} is upgraded; check, then fail back if wanted"
            ))
        }
        Some(Mix::Downgrade { .. }) => {
            for l in [
                format!("{new} now replicates to an OLDER release on {old}: upstream supports this only for the upgrade; do it now:"),
                format!("  1. on {old}: upgrade the Cyrus packages (Debian: apt-get install -t <suite> cyrus-imapd cyrus-replication ...); its spool and config stay"),
                format!("  2. `cyrdeck status` until {old} shows the new release and the queue drains"),
                format!("  3. `cyrdeck check {pair}`: the pair must be identical"),
                format!("  4. optional fail back: `cyrdeck run failover {pair}`"),
            ] {
                out.push(l);
            }
            Ok(format!(
                "failed over to {new} ({}); upgrade {old} ({}) next, then check and fail back",
                releases::short(&nv),
                releases::short(&ov)
            ))
        }
        None => Err(format!("cannot compare the releases {nv:?} and {ov:?}").into()),
    }
}
