//! The console's hold on the engine: one run in progress, one step or undo
//! at a time on a background task. While a step or an undo runs, Enter and
//! `x` are refused (a step must never run beside an undo: writes restored on
//! the old master while its client is being stopped). Changes are reported
//! through a callback; ops knows nothing of the console's messages.

use super::engine::{Engine, Event};
use super::runbook::{RunbookRun, StepState};
use crate::live_config::LiveConfig;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Mutex;

pub type Notify = Arc<dyn Fn(RunbookRun) + Send + Sync>;

pub struct Runner {
    /// Read at each start: a run uses the roles the file says now.
    cfg: Arc<LiveConfig>,
    conns: super::engine::Connections,
    active: Mutex<Option<(Arc<Engine>, RunbookRun)>>,
    /// A step or an undo is running.
    busy: Arc<AtomicBool>,
}

impl Runner {
    pub fn new(cfg: Arc<LiveConfig>, conns: super::engine::Connections) -> Self {
        Runner {
            cfg,
            conns,
            active: Mutex::new(None),
            busy: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn busy(&self) -> bool {
        self.busy.load(Ordering::SeqCst)
    }

    /// Start `id` on `pair` (or go on with its journalled run).
    pub async fn start(
        &self,
        id: &str,
        pair: &str,
        target: &str,
        options: &[(String, String)],
        notify: Notify,
    ) {
        let Some(spec) = super::registry::by_id(id) else {
            return;
        };
        let mut guard = self.active.lock().await;
        if let Some((_, run)) = guard.as_ref().filter(|(_, r)| !r.finished()) {
            let mut run = run.clone();
            run.output
                .push("a runbook is in progress: finish it or stop it (x) first".into());
            notify(run);
            return;
        }
        // a finished (or undone) run's engine still holds its journal's
        // lock: give it up first, or starting again right after `x` is
        // refused as "another cyrdeck is running this runbook" (issue 30,
        // item 5)
        if let Some((engine, mut run)) = guard.take() {
            engine.leave(&mut run).await;
        }
        let opened = Engine::open(self.cfg.get(), self.conns.clone(), spec, pair, target).and_then(
            |(engine, mut run)| {
                run.set_options(options)?;
                for o in spec.options() {
                    run.output
                        .push(format!("--{} {} ({})", o.name, run.option(o.name), o.help));
                }
                Ok((engine, run))
            },
        );
        match opened {
            Ok((engine, run)) => {
                notify(run.clone());
                *guard = Some((Arc::new(engine), run));
            }
            Err(e) => {
                let mut run = RunbookRun::new(spec, pair, target);
                run.steps[0] = StepState::Failed(e);
                notify(run.clone());
                *guard = None;
            }
        }
    }

    /// The console is quitting: wait (bounded) for a step or an undo that
    /// is still running to end — its remote command, its journal entry and
    /// the lock's release must not be cut off — then give back the lock of
    /// a run that never wrote.
    pub async fn leave(&self, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        while self.busy() && started.elapsed() < limit {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if self.busy() {
            return;
        }
        if let Some((engine, run)) = self.active.lock().await.as_mut() {
            engine.leave(run).await;
        }
    }

    /// Run the next step (or go on with an undo cut short) in the background.
    pub async fn step(self: &Arc<Self>, notify: Notify) {
        self.background(notify, false).await
    }

    /// Stop the run: the engine undoes what the servers say is left.
    pub async fn abort(self: &Arc<Self>, notify: Notify) {
        self.background(notify, true).await
    }

    async fn background(self: &Arc<Self>, notify: Notify, abort: bool) {
        let guard = self.active.lock().await;
        let Some((engine, run)) = guard.as_ref() else {
            return;
        };
        if self
            .busy
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            let mut run = run.clone();
            run.output
                .push("busy: a step or an undo is running; wait for it to end".into());
            notify(run);
            return;
        }
        let (engine, mut work) = (engine.clone(), run.clone());
        drop(guard);
        let me = self.clone();
        tokio::spawn(async move {
            let n = notify.clone();
            let sink = move |e: Event<'_>| {
                if let Event::Changed(r) = e {
                    n(r.clone())
                }
            };
            if abort {
                engine.abort(&mut work, &sink).await;
            } else if work.undo.pending() {
                engine.resume_undo(&mut work, &sink).await;
            } else {
                engine.step(&mut work, &sink).await;
            }
            {
                let mut active = me.active.lock().await;
                if work.finished() && engine.closed() {
                    // over (journal archived, pair lock given back): its
                    // journal lock goes too, so another cyrdeck can start
                    // it at once; the console keeps showing the run
                    *active = None;
                } else if let Some((_, run)) = active.as_mut() {
                    *run = work.clone();
                }
            }
            drop(engine);
            me.busy.store(false, Ordering::SeqCst);
            notify(work);
        });
    }
}
