//! THE runbook engine, used by the CLI and the console alike. It runs one
//! step at a time and reports through events (the caller renders them);
//! it knows nothing of terminals or screens.
//!
//! What it guarantees for every runbook:
//! - the pair lock (pair_lock.rs) is held before the run's first write in
//!   this process, on the master host, and released only when the run is
//!   over — a run left open (a failed undo, a failure past the point of no
//!   return) keeps it, so nobody else writes to a pair in an unknown state;
//! - journalled runbooks (every runbook with a writing step) are on disk before
//!   and after every step, and an undo is journalled BEFORE it starts, so a
//!   crash during an undo resumes the undo;
//! - a failure before the runbook's point of no return, or the operator
//!   stopping it, runs the runbook's undo, which decides from what the
//!   servers say now (failover::undo), not from step flags;
//! - an undo that fails keeps the run open for `runbook resume`.

use super::journal::{self, Journal};
use super::pair_lock::{self, Holder, LockError};
use super::runbook::LockOn;
use super::runbook::{RunbookRun, RunbookSpec, StepState, UndoState};
use super::step::Undone;
use super::StepContext;
use crate::config::Config;
use crate::ops::error::{Refusal, StepError};
use crate::remote::HostConnection;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub type Connections = BTreeMap<String, Arc<HostConnection>>;

/// What the engine tells its caller.
pub enum Event<'a> {
    /// The run changed (a step started or ended, an undo began or ended).
    Changed(&'a RunbookRun),
    /// A live line of a long step (the drain's count).
    Line(&'a str),
}

pub type Sink<'a> = &'a (dyn Fn(Event<'_>) + Send + Sync);

/// Does this runbook keep a journal? Every runbook that writes: a run cut
/// short resumes (its interrupted step runs again: every writing step is
/// idempotent) and gives the pair lock back at its end.
pub fn journalled(spec: &RunbookSpec) -> bool {
    spec.steps.iter().any(|s| s.mutating)
}

pub struct Engine {
    cfg: Arc<Config>,
    conns: Connections,
    journal: Option<PathBuf>,
    /// One cyrdeck per journal on this machine (flock).
    _flock: Option<journal::Lock>,
    /// The pair lock was taken (or found ours) by this process.
    lock_checked: AtomicBool,
}

impl Engine {
    /// A new run of `spec`, or the unfinished journalled run of the same
    /// runbook, pair and target (it goes on where it stopped).
    pub fn open(
        cfg: Arc<Config>,
        conns: Connections,
        spec: RunbookSpec,
        pair: &str,
        target: &str,
    ) -> Result<(Engine, RunbookRun), String> {
        // before the journal, the lock or any connection: a name that
        // could be an option never gets that far
        spec.check_target(target)?;
        if !cfg.pairs.contains_key(pair) {
            return Err(format!(
                "pair {pair:?} is not configured (pairs: {})",
                cfg.pairs.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        let mut run = RunbookRun::new(spec, pair, target);
        let mut engine = Engine {
            cfg,
            conns,
            journal: None,
            _flock: None,
            lock_checked: AtomicBool::new(false),
        };
        if journalled(&spec) {
            let file = &engine.cfg.file;
            let mut path = journal::path(spec.id(), pair, target, file);
            // a run journalled by an older cyrdeck (not keyed by config)
            // of this config is still this run
            let legacy = journal::legacy_path(spec.id(), pair, target);
            if !path.exists()
                && Journal::load(&legacy)
                    .is_ok_and(|j| std::fs::canonicalize(file).is_ok_and(|c| c == j.config))
            {
                path = legacy;
            }
            engine._flock = Some(journal::Lock::acquire(&path)?);
            if path.exists() {
                match Journal::load(&path).and_then(|j| j.resume(false)) {
                    Ok(resumed) if !resumed.finished() || resumed.lock_host.is_some() => {
                        run = resumed;
                        run.output
                            .push(format!("-- resumed from {}", path.display()));
                    }
                    Err(e) if !e.contains("not a journal") => return Err(e),
                    _ => {
                        journal::archive(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                    }
                }
            }
            engine.journal = Some(path);
        }
        Ok((engine, run))
    }

    /// The run is over as far as this machine knows: its journal was
    /// archived (or it never had one).
    pub fn closed(&self) -> bool {
        self.journal.as_ref().is_none_or(|p| !p.exists())
    }

    /// The journalled run at `path` (`cyrdeck runbook resume`).
    pub fn reopen(
        cfg: Arc<Config>,
        conns: Connections,
        path: PathBuf,
        retry: bool,
    ) -> Result<(Engine, RunbookRun), String> {
        let flock = journal::Lock::acquire(&path)?;
        let run = Journal::load(&path)?.resume(retry)?;
        // a journal is a file on disk: its target is checked like a new one
        run.spec.check_target(&run.target)?;
        Ok((
            Engine {
                cfg,
                conns,
                journal: Some(path),
                _flock: Some(flock),
                lock_checked: AtomicBool::new(false),
            },
            run,
        ))
    }

    pub fn journal_path(&self) -> Option<&PathBuf> {
        self.journal.as_ref()
    }

    fn save(&self, run: &RunbookRun) -> Result<(), String> {
        match &self.journal {
            Some(p) => Journal::of(run, &self.cfg.file)
                .save(p)
                .map_err(|e| format!("journal {}: {e}", p.display())),
            None => Ok(()),
        }
    }

    /// Save, and say so when it fails (the run goes on: the hosts matter
    /// more than the journal, but the operator must know).
    fn save_and_tell(&self, run: &mut RunbookRun, sink: Sink<'_>) {
        if let Err(e) = self.save(run) {
            run.output.push(format!("WARNING: {e}"));
        }
        sink(Event::Changed(run));
    }

    fn context<'a>(&'a self, run: &'a RunbookRun) -> Result<StepContext<'a>, StepError> {
        let pair = self
            .cfg
            .pairs
            .get(&run.pair)
            .ok_or_else(|| format!("pair {:?} is not configured", run.pair))?;
        Ok(StepContext {
            run_id: &run.run_id,
            options: &run.options,
            ..StepContext::new(
                &self.cfg,
                pair,
                &run.target,
                super::Actor::Runbook(run.spec),
                &self.conns,
            )
        })
    }

    fn can_write(&self, run: &RunbookRun) -> bool {
        self.cfg
            .pairs
            .get(&run.pair)
            .and_then(|p| self.conns.get(&p.master))
            .is_some_and(|c| c.write_capability().is_some())
    }

    /// Take (or confirm) the pair lock before this process writes.
    async fn ensure_lock(&self, run: &mut RunbookRun) -> Result<(), StepError> {
        if self.lock_checked.load(Ordering::SeqCst) {
            return Ok(());
        }
        let host = match &run.lock_host {
            Some(h) => h.clone(),
            None => {
                let p = self
                    .cfg
                    .pairs
                    .get(&run.pair)
                    .ok_or_else(|| format!("pair {:?} is not configured", run.pair))?;
                match (run.spec.lock_on, p.replicas.as_slice()) {
                    (LockOn::Master, _) => p.master.clone(),
                    (LockOn::Replica, [r]) => r.host.clone(),
                    (LockOn::Replica, _) => {
                        return Err(format!(
                            "{} takes the pair lock on the pair's one replica; {:?} has {}",
                            run.spec.id(),
                            run.pair,
                            p.replicas.len()
                        )
                        .into())
                    }
                }
            }
        };
        let holder = Holder::new(&run.run_id, run.spec.id(), &run.pair);
        let mut out = Vec::new();
        // a fresh lock on the master: the servers must agree that it is the
        // master (a stale config would lock the free ex-master)
        if run.lock_host.is_none() && run.spec.lock_on == LockOn::Master {
            let cx = self.context(run)?;
            super::roles_check::servers_agree(&cx).await?;
        }
        let res = {
            let cx = self.context(run)?;
            pair_lock::acquire(&cx, &host, &holder, &mut out).await
        };
        run.output.extend(out);
        match res {
            Ok(()) => {
                run.lock_host = Some(host);
                self.lock_checked.store(true, Ordering::SeqCst);
                Ok(())
            }
            Err(LockError::Other(e)) => Err(e.into()),
            Err(held) => Err(StepError::Refused(Refusal::Locked(held.message(&host)))),
        }
    }

    /// Run the next step of `run`, if it can go on. Returns its index.
    pub async fn step(&self, run: &mut RunbookRun, sink: Sink<'_>) -> Option<usize> {
        let idx = run.next_step()?;
        // the lock before the first step of a runbook with an undo (the
        // failover): a second run must not even precheck a pair another run
        // is changing. Others take it before their first writing step. In
        // observe mode (no write capability) the first writing step is
        // refused anyway, and the read-only ones may run.
        let early = run.spec.point_of_no_return.is_some() && self.can_write(run);
        if run.spec.steps[idx].mutating || early {
            if let Err(e) = self.ensure_lock(run).await {
                // nothing of this run has written yet (or the lock is ours):
                // the step is refused, the run is over
                run.steps[idx] = StepState::Refused(e.to_string());
                self.save_and_tell(run, sink);
                self.finish(run, sink).await;
                return Some(idx);
            }
        }
        run.steps[idx] = StepState::Running;
        if let Some(a) = run.attempts.get_mut(idx) {
            *a += 1;
        }
        self.save_and_tell(run, sink);
        super::fault::at(idx, super::fault::Point::BeforeRemote);
        let progress = |l: &str| sink(Event::Line(l));
        super::registry::run_step_live(&self.cfg, &self.conns, run, idx, &progress).await;
        super::fault::at(idx, super::fault::Point::AfterRemote);
        self.save_and_tell(run, sink);
        if let StepState::Failed(why) = &run.steps[idx] {
            let before_no_return = run.spec.point_of_no_return.is_some_and(|p| idx < p);
            let why = format!("step {} failed: {why}", idx + 1);
            if before_no_return && wrote(run) {
                self.undo(run, &why, sink).await;
            } else if before_no_return {
                // nothing written yet: the run simply ends here
                run.abort_pending(&why);
                self.save_and_tell(run, sink);
            }
        }
        self.finish(run, sink).await;
        Some(idx)
    }

    /// The operator stops the run between steps: undo what the servers
    /// say is left to undo (runbooks with undo), else just stop.
    pub async fn abort(&self, run: &mut RunbookRun, sink: Sink<'_>) {
        if run.steps.contains(&StepState::Running) {
            run.output
                .push("a step is running: stop once it has ended".into());
            sink(Event::Changed(run));
            return;
        }
        if run.spec.forward_only() && wrote(run) && !run.finished() {
            // nothing to undo, and a new run cannot start where this one
            // stands (promote's precheck refuses a replica that is master
            // already): the operator's stop is a pause, the lock kept
            run.output.push(format!(
                "stopped by the operator: {} goes forward only (every step can run again); \
                 the run stays open: `cyrdeck runbook resume` goes on from here",
                run.spec.id()
            ));
            self.save_and_tell(run, sink);
            return;
        }
        if run.spec.point_of_no_return.is_some() && !run.finished() {
            self.undo(run, "aborted by the operator", sink).await;
        } else {
            run.abort_pending("aborted by the operator");
            self.save_and_tell(run, sink);
        }
        self.finish(run, sink).await;
    }

    /// Go on with an undo that a crash or a failure cut short.
    pub async fn resume_undo(&self, run: &mut RunbookRun, sink: Sink<'_>) {
        let why = match &run.undo {
            UndoState::Running(w) | UndoState::Failed(w) => w.clone(),
            _ => return,
        };
        self.undo(run, &why, sink).await;
        self.finish(run, sink).await;
    }

    async fn undo(&self, run: &mut RunbookRun, why: &str, sink: Sink<'_>) {
        // on disk before anything is touched: a crash now resumes the undo
        run.undo = UndoState::Running(why.to_string());
        run.output.push(format!("-- undo: {why}"));
        self.save_and_tell(run, sink);
        let mut out = Vec::new();
        // nothing past the read-only steps was attempted: nothing to undo,
        // and no lock needed to say so
        let res = if !wrote(run) {
            Ok(Undone::Restored("nothing was changed".into()))
        } else {
            self.undo_with_lock(run, &mut out).await
        };
        run.output.extend(out);
        self.end_undo(run, why, res, sink);
    }

    async fn undo_with_lock(
        &self,
        run: &mut RunbookRun,
        out: &mut Vec<String>,
    ) -> Result<Undone, StepError> {
        self.ensure_lock(run).await?;
        let cx = self.context(run)?;
        undo_runbook(&cx, run, out).await
    }

    fn end_undo(
        &self,
        run: &mut RunbookRun,
        why: &str,
        res: Result<Undone, StepError>,
        sink: Sink<'_>,
    ) {
        match res {
            Ok(Undone::Restored(said)) => {
                let said = format!("{why}. Undone: {said}");
                run.output.push(said.clone());
                run.undo = UndoState::Done(said);
                run.abort_pending(why);
            }
            Ok(Undone::Forward(said)) => {
                run.output.push(format!(
                    "{said}: nothing undone; `cyrdeck runbook resume` finishes the run"
                ));
                run.undo = UndoState::None;
            }
            Err(e) => {
                run.output.push(format!(
                    "UNDO FAILED: {e}; the run stays open: `cyrdeck runbook resume` goes on with the undo"
                ));
                run.undo = UndoState::Failed(format!("{why}; undo failed: {e}"));
            }
        }
        self.save_and_tell(run, sink);
    }

    /// The operator leaves a run that never wrote (the console quitting
    /// after a read-only step): its pair lock goes back; nothing else
    /// changes (the journal stays, so the run can still be resumed).
    pub async fn leave(&self, run: &mut RunbookRun) {
        if wrote(run) || run.finished() {
            return;
        }
        let Some(host) = run.lock_host.clone() else {
            return;
        };
        let holder = Holder::new(&run.run_id, run.spec.id(), &run.pair);
        let mut out = Vec::new();
        if let Ok(cx) = self.context(run) {
            if pair_lock::release(&cx, &host, &holder, &mut out)
                .await
                .is_ok()
            {
                run.lock_host = None;
                self.lock_checked.store(false, Ordering::SeqCst);
                let _ = self.save(run);
            }
        }
    }

    /// A run that is over gives the pair lock back and its journal goes to
    /// `done/`; one left open (retry, failed undo) keeps both, and so does
    /// one whose lock could not be given back (resume releases it).
    pub async fn finish(&self, run: &mut RunbookRun, sink: Sink<'_>) {
        if !run.finished() || journal::retryable(run) {
            return;
        }
        if let Some(host) = run.lock_host.clone() {
            let holder = Holder::new(&run.run_id, run.spec.id(), &run.pair);
            let mut out = Vec::new();
            let res = match self.context(run) {
                Ok(cx) => pair_lock::release(&cx, &host, &holder, &mut out).await,
                Err(e) => Err(LockError::Other(e.to_string())),
            };
            run.output.extend(out);
            match res {
                Ok(()) => run.lock_host = None,
                Err(e) => run.output.push(format!(
                    "WARNING: the pair lock on {host} was not released: {}",
                    e.message(&host)
                )),
            }
        }
        self.save_and_tell(run, sink);
        if run.lock_host.is_some() {
            return;
        }
        if let Some(p) = &self.journal {
            if p.exists() {
                if let Err(e) = journal::archive(p) {
                    run.output
                        .push(format!("WARNING: journal not archived: {e}"));
                }
            }
        }
    }
}

/// Was a writing step of `run` ever started (by any process)?
fn wrote(run: &RunbookRun) -> bool {
    run.spec
        .steps
        .iter()
        .zip(&run.attempts)
        .any(|(s, &a)| s.mutating && a > 0)
}

async fn undo_runbook(
    cx: &StepContext<'_>,
    run: &RunbookRun,
    out: &mut Vec<String>,
) -> Result<Undone, StepError> {
    super::registry::undo(run.spec.kind, cx, &run.memo, out)
        .await
        .unwrap_or_else(|| Err(format!("runbook {} has no undo", run.spec.id()).into()))
}
