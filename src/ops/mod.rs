//! Runbooks: step machines the console drives one confirmed step at a
//! time. Every mutating command needs the transport's WriteCapability (none
//! in observe mode) and is written to the audit log.

pub mod audit;
pub mod autopilot;
pub mod failover;
pub mod heartbeat;
pub mod journal;
pub mod repair;
pub mod resync;
pub mod runbook;
pub mod stuck;
pub mod supervise;

use crate::config::{Config, PairConfig};
use crate::console::app::Action;
use crate::remote::{ExecOutput, HostConnection, RemoteError};
use runbook::{RunbookRun, RunbookSpec, StepState};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::{mpsc, Mutex};

/// What a step says when observe mode refused it (the runner shows it as
/// "refused", not "failed").
pub const OBSERVE_REFUSAL: &str = "observe mode: this step changes a host";

/// A step's result: refused when observe mode stopped it.
pub fn state_of(res: Result<String, String>) -> StepState {
    match res {
        Ok(m) => StepState::Done(m),
        Err(e) if e == OBSERVE_REFUSAL => StepState::Refused(e),
        Err(e) => StepState::Failed(e),
    }
}

/// The runbooks the console offers.
pub fn available() -> Vec<RunbookSpec> {
    vec![
        resync::SPEC,
        repair::SPEC,
        stuck::QUARANTINE,
        stuck::RELEASE,
        supervise::SPEC,
        failover::SPEC,
    ]
}

/// What a step needs: the pair, the target it was started on, connections.
pub struct StepContext<'a> {
    pub cfg: &'a Config,
    pub pair: &'a PairConfig,
    pub target: &'a str,
    pub runbook: &'a str,
    conns: &'a BTreeMap<String, Arc<HostConnection>>,
    /// Live lines of a long step (the drain's count), as they happen.
    progress: &'a (dyn Fn(&str) + Send + Sync),
    /// 1 the first time a step runs; more when it runs again (resumed after
    /// an interruption, or retried).
    pub attempt: u32,
}

impl<'a> StepContext<'a> {
    pub fn new(
        cfg: &'a Config,
        pair: &'a PairConfig,
        target: &'a str,
        runbook: &'a str,
        conns: &'a BTreeMap<String, Arc<HostConnection>>,
    ) -> Self {
        StepContext {
            cfg,
            pair,
            target,
            runbook,
            conns,
            progress: &|_| {},
            attempt: 1,
        }
    }

    pub fn progress(&self, line: &str) {
        (self.progress)(line)
    }

    pub fn connections(&self) -> &BTreeMap<String, Arc<HostConnection>> {
        self.conns
    }

    pub fn connection(&self, host: &str) -> Result<&HostConnection, String> {
        self.conns
            .get(host)
            .map(|c| c.as_ref())
            .ok_or_else(|| format!("host {host} is not configured"))
    }

    /// Run a command that changes `host`: it needs the transport's write
    /// capability (none in observe mode: refused), is shown as `host$ argv`
    /// (or as `shown`, for long scripts) and written to the audit log before
    /// its result is looked at. The caller judges the exit status.
    pub async fn write(
        &self,
        host: &str,
        argv: Vec<String>,
        shown: Option<Vec<String>>,
        timeout: std::time::Duration,
        out: &mut Vec<String>,
    ) -> Result<ExecOutput, String> {
        let conn = self.connection(host)?;
        let cap = conn.write_capability().ok_or(OBSERVE_REFUSAL)?;
        let shown = shown.unwrap_or_else(|| argv.clone());
        out.push(format!("{host}$ {}", shown.join(" ")));
        let res = conn
            .exec_timeout(&crate::remote::RemoteCommand::write(argv, &cap), timeout)
            .await;
        self.audit(host, &shown, &res, out);
        res.map_err(|e| format!("{host}: {e}"))
    }

    /// `sync_client -C CONF [-n CHANNEL]` on the master.
    pub fn sync_client_argv(&self, channel: &str) -> Result<Vec<String>, String> {
        let h = self.connection(&self.pair.master)?.config();
        let mut argv = vec![
            format!("{}/sync_client", h.bin_dir.display()),
            "-C".into(),
            h.imapd_conf.display().to_string(),
        ];
        if !channel.is_empty() {
            argv.extend(["-n".into(), channel.to_string()]);
        }
        Ok(argv)
    }

    /// The integrity check of one user or mailbox of this pair.
    pub async fn scoped_check(
        &self,
        scope: &crate::check::Scope,
        drain_wait: std::time::Duration,
    ) -> Result<crate::model::conflicts::CheckResult, String> {
        let opts = crate::check::CheckOptions {
            drain_wait,
            exec_timeout: std::time::Duration::from_secs(300),
        };
        crate::check::run(self.cfg, self.conns, &self.pair.name, scope, &opts, &|_| {}).await
    }

    /// Write a mutation to the audit log; a failure to write is shown.
    pub fn audit(
        &self,
        host: &str,
        argv: &[String],
        res: &Result<ExecOutput, RemoteError>,
        out: &mut Vec<String>,
    ) {
        let path = self
            .cfg
            .audit_log
            .clone()
            .unwrap_or_else(audit::default_path);
        let elapsed = res.as_ref().map(|o| o.elapsed).unwrap_or_default();
        if let Err(e) = audit::record(&path, host, argv, self.runbook, res, elapsed) {
            out.push(format!(
                "WARNING: audit log {} not written: {e}",
                path.display()
            ));
        }
    }
}

async fn execute(
    spec: &RunbookSpec,
    step: usize,
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut serde_json::Value,
) -> StepState {
    match spec.id {
        "resync" => resync::execute(step, cx, out).await,
        "repair" => repair::execute(step, cx, out, memo).await,
        "quarantine" | "release" => stuck::execute(spec, step, cx, out).await,
        "restart" => supervise::execute(step, cx, out).await,
        "failover" => failover::execute(step, cx, out, memo).await,
        other => StepState::Failed(format!("unknown runbook {other}")),
    }
}

/// Run step `idx` of `run` to its end: state, output and memo updated.
pub async fn run_step(
    cfg: &Config,
    conns: &BTreeMap<String, Arc<HostConnection>>,
    run: &mut RunbookRun,
    idx: usize,
) {
    run_step_live(cfg, conns, run, idx, &|_| {}).await
}

/// run_step, with the step's live lines sent to `progress` as they happen.
pub async fn run_step_live(
    cfg: &Config,
    conns: &BTreeMap<String, Arc<HostConnection>>,
    run: &mut RunbookRun,
    idx: usize,
    progress: &(dyn Fn(&str) + Send + Sync),
) {
    if let Some(a) = run.attempts.get_mut(idx) {
        *a += 1;
    }
    let spec = run.spec;
    let mut out = vec![format!("-- step {}: {}", idx + 1, spec.steps[idx].title)];
    let state = match cfg.pairs.get(&run.pair) {
        None => StepState::Failed(format!("pair {:?} is not configured", run.pair)),
        Some(p) => {
            let cx = StepContext {
                progress,
                attempt: run.attempts.get(idx).copied().unwrap_or(1),
                ..StepContext::new(cfg, p, &run.target, spec.id, conns)
            };
            execute(&spec, idx, &cx, &mut out, &mut run.memo).await
        }
    };
    run.steps[idx] = state;
    run.output.extend(out);
}

/// Holds the run in progress and executes its steps off the UI task.
pub struct Runner {
    cfg: Arc<Config>,
    conns: BTreeMap<String, Arc<HostConnection>>,
    run: Mutex<Option<RunbookRun>>,
    /// Held while a journalled run is in progress here.
    lock: std::sync::Mutex<Option<journal::Lock>>,
}

impl Runner {
    pub fn new(cfg: Arc<Config>, conns: BTreeMap<String, Arc<HostConnection>>) -> Self {
        Runner {
            cfg,
            conns,
            run: Mutex::new(None),
            lock: std::sync::Mutex::new(None),
        }
    }

    pub async fn start(
        &self,
        id: &str,
        pair: &str,
        target: &str,
        tx: mpsc::UnboundedSender<Action>,
    ) {
        let Some(spec) = available().into_iter().find(|s| s.id == id) else {
            return;
        };
        let mut run = RunbookRun::new(spec, pair, target);
        if !self.cfg.pairs.contains_key(pair) {
            run.steps[0] = StepState::Failed(format!("pair {pair:?} is not configured"));
        }
        // a journalled run that did not finish goes on where it stopped;
        // never while another cyrdeck runs it
        if let Some(path) = self.journal_path(&run) {
            match journal::Lock::acquire(&path) {
                Err(e) => run.steps[0] = StepState::Failed(e),
                Ok(lock) => {
                    if let Ok(lk) = self.lock.lock().as_mut() {
                        **lk = Some(lock);
                    }
                    match journal::Journal::load(&path).map(|j| j.resume(false)) {
                        Ok(Ok(resumed)) if !resumed.finished() => {
                            run = resumed;
                            run.output
                                .push(format!("-- resumed from {}", path.display()));
                        }
                        Ok(Err(e)) => run.steps[0] = StepState::Failed(e),
                        _ => {}
                    }
                }
            }
        }
        let _ = tx.send(Action::Runbook(run.clone()));
        *self.run.lock().await = Some(run);
    }

    /// Runs of the failover are journalled (see journal.rs).
    fn journal_path(&self, run: &RunbookRun) -> Option<std::path::PathBuf> {
        (run.spec.id == failover::SPEC.id)
            .then(|| journal::path(run.spec.id, &run.pair, &run.target))
    }

    fn save_journal(&self, run: &RunbookRun) {
        if let Some(path) = self.journal_path(run) {
            let j = journal::Journal::of(run, &self.cfg.file);
            if j.save(&path).is_ok() && run.finished() && !journal::retryable(run) {
                let _ = journal::archive(&path);
            }
            if run.finished() {
                if let Ok(mut lk) = self.lock.lock() {
                    *lk = None;
                }
            }
        }
    }

    pub async fn abort(self: &Arc<Self>, tx: mpsc::UnboundedSender<Action>) {
        let mut guard = self.run.lock().await;
        // a failover undoes what it can (writes back on the old master)
        if let Some(run) = guard.as_mut().filter(|r| r.spec.id == failover::SPEC.id) {
            if run.steps.contains(&StepState::Running) {
                run.output
                    .push("a step is running: abort once it has ended".into());
                let _ = tx.send(Action::Runbook(run.clone()));
                return;
            }
            let (memo, steps) = (run.memo.clone(), run.steps.clone());
            let (pair, target) = (run.pair.clone(), run.target.clone());
            drop(guard);
            let me = self.clone();
            tokio::spawn(async move {
                let mut out = vec!["-- abort".to_string()];
                let (said, over) = match me.cfg.pairs.get(&pair) {
                    Some(p) => {
                        let cx = StepContext::new(&me.cfg, p, &target, "failover", &me.conns);
                        failover::abort(&cx, &memo, &steps, &mut out).await
                    }
                    None => ("nothing was changed".into(), true),
                };
                let mut guard = me.run.lock().await;
                if let Some(run) = guard.as_mut() {
                    run.output.extend(out);
                    run.output.push(said);
                    if over {
                        for s in run.steps.iter_mut().filter(|s| **s == StepState::Pending) {
                            *s = StepState::Refused("aborted by the operator".into());
                        }
                    }
                    me.save_journal(run);
                    let _ = tx.send(Action::Runbook(run.clone()));
                }
            });
            return;
        }
        if let Some(run) = guard.as_mut() {
            for s in run.steps.iter_mut().filter(|s| **s == StepState::Pending) {
                *s = StepState::Refused("aborted by the operator".into());
            }
            let _ = tx.send(Action::Runbook(run.clone()));
        }
    }

    /// Run the next pending step in the background.
    pub async fn step(self: &Arc<Self>, tx: mpsc::UnboundedSender<Action>) {
        let (mut work, idx) = {
            let mut guard = self.run.lock().await;
            let Some(run) = guard.as_mut() else { return };
            let Some(idx) = run.next_step() else { return };
            run.steps[idx] = StepState::Running;
            self.save_journal(run);
            let _ = tx.send(Action::Runbook(run.clone()));
            (run.clone(), idx)
        };
        let me = self.clone();
        tokio::spawn(async move {
            run_step(&me.cfg, &me.conns, &mut work, idx).await;
            let mut guard = me.run.lock().await;
            if let Some(run) = guard.as_mut() {
                // an abort pressed while the step ran still holds
                for (j, s) in run.steps.iter().enumerate() {
                    if j != idx && matches!(s, StepState::Refused(_)) {
                        work.steps[j] = s.clone();
                    }
                }
                *run = work;
                me.save_journal(run);
                let _ = tx.send(Action::Runbook(run.clone()));
            }
        });
    }
}
