//! The one place that names every runbook: the list the console offers,
//! each kind's spec, and the dispatch of a step (and of an undo) to the
//! runbook's type. The engine, the CLI and the console come here; the
//! runbooks themselves never do.

use super::error::StepError;
use super::runbook::{RunbookKind, RunbookRun, RunbookSpec, StepKind, StepState};
use super::step::{Actor, Runbook, StepContext, Undone};
use super::{failover, hard_failover, repair, replace_replica, restart, resync, stuck};
use crate::config::Config;
use crate::model::human;
use crate::remote::HostConnection;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every runbook's spec, in the order the console lists them.
pub fn available() -> Vec<RunbookSpec> {
    RunbookKind::ALL.iter().map(|k| spec(*k)).collect()
}

/// The spec of runbook `kind`.
pub fn spec(kind: RunbookKind) -> RunbookSpec {
    match kind {
        RunbookKind::Resync => resync::SPEC,
        RunbookKind::Repair => repair::SPEC,
        RunbookKind::Quarantine => stuck::QUARANTINE,
        RunbookKind::Release => stuck::RELEASE,
        RunbookKind::Restart => restart::SPEC,
        RunbookKind::Failover => failover::SPEC,
        RunbookKind::UpgradeViaFailover => failover::upgrade::SPEC,
        RunbookKind::Promote => hard_failover::PROMOTE,
        RunbookKind::Reintegrate => hard_failover::REINTEGRATE,
        RunbookKind::ReplaceReplica => replace_replica::SPEC,
    }
}

/// The spec of the runbook an operator (or a journal) names by id.
pub fn by_id(id: &str) -> Option<RunbookSpec> {
    RunbookKind::parse(id).map(spec)
}

/// Step `idx` of a run of `kind`: dispatched to the runbook's type, its
/// memo read from and written back to the run's (journalled) JSON.
async fn execute(
    kind: RunbookKind,
    idx: usize,
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut serde_json::Value,
) -> StepState {
    match kind {
        RunbookKind::Resync => execute_as::<resync::Resync>(idx, cx, out, memo).await,
        RunbookKind::Repair => execute_as::<repair::Repair>(idx, cx, out, memo).await,
        RunbookKind::Quarantine => execute_as::<stuck::Quarantine>(idx, cx, out, memo).await,
        RunbookKind::Release => execute_as::<stuck::Release>(idx, cx, out, memo).await,
        RunbookKind::Restart => execute_as::<restart::Restart>(idx, cx, out, memo).await,
        RunbookKind::Failover => execute_as::<failover::Failover>(idx, cx, out, memo).await,
        RunbookKind::UpgradeViaFailover => {
            execute_as::<failover::upgrade::Upgrade>(idx, cx, out, memo).await
        }
        RunbookKind::Promote => execute_as::<hard_failover::Promote>(idx, cx, out, memo).await,
        RunbookKind::Reintegrate => {
            execute_as::<hard_failover::Reintegrate>(idx, cx, out, memo).await
        }
        RunbookKind::ReplaceReplica => {
            execute_as::<replace_replica::ReplaceReplica>(idx, cx, out, memo).await
        }
    }
}

async fn execute_as<R: Runbook>(
    idx: usize,
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut serde_json::Value,
) -> StepState {
    let Some(step) = <R::Step as StepKind>::of(idx) else {
        return StepState::Failed(format!("{} has no step {}", R::SPEC.id(), idx + 1));
    };
    let mut m: R::Memo = match memo_of(memo) {
        Ok(m) => m,
        // the journal's memo is left as it is: nothing was done
        Err(e) => return StepState::Failed(format!("{}: {e}", R::SPEC.id())),
    };
    let state = R::execute(step, cx, out, &mut m).await;
    *memo = serde_json::to_value(&m).unwrap_or_default();
    state
}

/// The typed memo in a run's (journalled) JSON: a run not started has
/// none yet (null: the default). One that cannot be read is an error,
/// never silently replaced by the default: an undo would then believe
/// nothing had been changed, and the next save would lose the original.
fn memo_of<M: serde::de::DeserializeOwned + Default>(
    memo: &serde_json::Value,
) -> Result<M, String> {
    if memo.is_null() {
        return Ok(M::default());
    }
    M::deserialize(memo).map_err(|e| {
        format!("the journal's memo of this run cannot be read ({e}); nothing was done")
    })
}

/// The undo of a run of `kind` (None: it has none), dispatched by type.
pub async fn undo(
    kind: RunbookKind,
    cx: &StepContext<'_>,
    memo: &serde_json::Value,
    out: &mut Vec<String>,
) -> Option<Result<Undone, StepError>> {
    match kind {
        RunbookKind::Failover => undo_as::<failover::Failover>(cx, memo, out).await,
        RunbookKind::UpgradeViaFailover => {
            undo_as::<failover::upgrade::Upgrade>(cx, memo, out).await
        }
        RunbookKind::ReplaceReplica => {
            undo_as::<replace_replica::ReplaceReplica>(cx, memo, out).await
        }
        RunbookKind::Resync => undo_as::<resync::Resync>(cx, memo, out).await,
        RunbookKind::Repair => undo_as::<repair::Repair>(cx, memo, out).await,
        RunbookKind::Quarantine => undo_as::<stuck::Quarantine>(cx, memo, out).await,
        RunbookKind::Release => undo_as::<stuck::Release>(cx, memo, out).await,
        RunbookKind::Restart => undo_as::<restart::Restart>(cx, memo, out).await,
        RunbookKind::Promote => undo_as::<hard_failover::Promote>(cx, memo, out).await,
        RunbookKind::Reintegrate => undo_as::<hard_failover::Reintegrate>(cx, memo, out).await,
    }
}

async fn undo_as<R: Runbook>(
    cx: &StepContext<'_>,
    memo: &serde_json::Value,
    out: &mut Vec<String>,
) -> Option<Result<Undone, StepError>> {
    match memo_of::<R::Memo>(memo) {
        Ok(m) => R::undo(cx, &m, out).await,
        Err(e) => Some(Err(StepError::Failed(e))),
    }
}

/// Run step `idx` of `run` to its end: state, output and memo updated.
pub async fn run_step(
    cfg: &Config,
    conns: &BTreeMap<String, Arc<HostConnection>>,
    run: &mut RunbookRun,
    idx: usize,
) {
    if let Some(a) = run.attempts.get_mut(idx) {
        *a += 1;
    }
    run_step_live(cfg, conns, run, idx, &|_| {}).await
}

/// Step `idx` with the step's live lines sent to `progress` as they happen.
/// The caller counts the attempt first (the engine journals it BEFORE the
/// step runs: a step cut short must run again as attempt 2, so that it
/// re-plans or re-fences).
pub async fn run_step_live(
    cfg: &Config,
    conns: &BTreeMap<String, Arc<HostConnection>>,
    run: &mut RunbookRun,
    idx: usize,
    progress: &(dyn Fn(&str) + Send + Sync),
) {
    let spec = run.spec;
    let mut out = vec![format!("-- step {}: {}", idx + 1, spec.steps[idx].title)];
    let state = match cfg.pairs.get(&run.pair) {
        None => StepState::Failed(format!("pair {:?} is not configured", run.pair)),
        Some(p) => {
            let cx = StepContext {
                progress,
                attempt: run.attempts.get(idx).copied().unwrap_or(1),
                run_id: &run.run_id,
                options: &run.options,
                ..StepContext::new(cfg, p, &run.target, Actor::Runbook(spec), conns)
            };
            let before = bytes_moved(conns);
            let started = std::time::Instant::now();
            let state = execute(spec.kind, idx, &cx, &mut out, &mut run.memo).await;
            // what the step cost: its time and what crossed SSH (with the
            // console's own refreshes, when one runs meanwhile)
            let after = bytes_moved(conns);
            out.push(format!(
                "   step {} took {:.1}s; {} sent, {} received over SSH",
                idx + 1,
                started.elapsed().as_secs_f64(),
                human::bytes(after.0.saturating_sub(before.0)),
                human::bytes(after.1.saturating_sub(before.1))
            ));
            state
        }
    };
    run.steps[idx] = state;
    run.output.extend(out);
}

/// (sent, received) payload bytes over every connection so far.
fn bytes_moved(conns: &BTreeMap<String, Arc<HostConnection>>) -> (u64, u64) {
    conns
        .values()
        .map(|c| c.bytes_moved())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run not started has the default memo; a journalled memo reads
    /// back as written; one that cannot be read is an error, not the
    /// default (an undo would take "no roles" for "nothing changed").
    #[test]
    fn a_memo_is_read_back_or_refused_never_defaulted() {
        let fresh: failover::Memo = memo_of(&serde_json::Value::Null).unwrap();
        assert!(fresh.roles.is_none() && !fresh.allow_held);
        let written = failover::Memo {
            allow_held: true,
            ..Default::default()
        };
        let back: failover::Memo = memo_of(&serde_json::to_value(&written).unwrap()).unwrap();
        assert!(back.allow_held);
        let garbled = serde_json::json!({"roles": "not roles"});
        let e = memo_of::<failover::Memo>(&garbled).unwrap_err();
        assert!(e.contains("cannot be read"), "{e}");
        let unit: crate::ops::step::NoMemo = memo_of(&serde_json::Value::Null).unwrap();
        assert_eq!(unit, crate::ops::step::NoMemo);
    }
}
