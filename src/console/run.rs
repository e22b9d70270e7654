//! The runner: owns the terminal, reads keys on a thread, polls on a task,
//! runs runbook steps on a task, and draws after each batch of actions.
//! A hung SSH call only delays a refresh; input and drawing never wait.

use super::app::{Action, App, Effect};
use super::keymap::Keymap;
use super::theme::Theme;
use crate::config::Config;
use crate::live_config::{LiveConfig, Reload};
use crate::ops::runbook::RunbookBoard;
use crate::ops::runner::Runner;
use crate::poll::Poller;
use crate::views;
use color_eyre::eyre::Result;
use ratatui::crossterm::event::{self, Event};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

pub struct Options {
    pub config: Arc<Config>,
    pub observe: bool,
    /// `--keymap FILE` (must exist), else the XDG default (may be absent).
    pub keymap: Option<PathBuf>,
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn list_rows(height: u16) -> u16 {
    // chrome, borders and the table header
    height.saturating_sub(views::CHROME_ROWS + 3)
}

pub async fn run(opts: Options) -> Result<()> {
    let (keymap, errors) = match &opts.keymap {
        Some(p) => Keymap::load(Some(p), true),
        None => {
            let p = dirs::config_dir().map(|d| d.join("cyrdeck/keymap.toml"));
            Keymap::load(p.as_deref(), false)
        }
    };
    let observe = opts.observe;
    let live = crate::live_config::LiveConfig::new(opts.config.clone());
    let poller = Poller::new(live.get(), observe)
        .supervising()
        .wait_at_most(opts.config.refresh.max(Duration::from_secs(1)));
    let conns = poller.connections();
    let runner = Arc::new(Runner::new(live.clone(), conns.clone()));
    let board = RunbookBoard {
        available: crate::ops::registry::available(),
        active: None,
    };
    let mut app = App::new(keymap, errors, observe, board);
    app.update(Action::Tick(now()));
    let theme = Theme::from_env();
    let (tx, mut rx) = mpsc::unbounded_channel::<Action>();

    let refresh_now = Arc::new(Notify::new());
    let interval = opts.config.refresh;
    tokio::spawn(poll_loop(
        poller,
        tx.clone(),
        interval,
        refresh_now.clone(),
        live.clone(),
    ));
    let effects = Effects {
        refresh_now,
        runner,
        config: live,
        conns,
        check: Default::default(),
    };

    // the config doctor once at start (read-only; `D` / `:doctor` re-reads)
    effects.apply(Effect::Doctor, &tx).await;
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, &mut app, &theme, tx, &mut rx, &effects).await;
    ratatui::restore();
    result
}

async fn poll_loop(
    mut poller: Poller,
    tx: mpsc::UnboundedSender<Action>,
    interval: Duration,
    refresh_now: Arc<Notify>,
    live: Arc<LiveConfig>,
) {
    let mut generation = 0;
    loop {
        // roles as the file says now (a failover rewrote them)
        match poller.follow(&live) {
            Reload::Unchanged => {}
            Reload::Applied(changes) => {
                let m = format!("roles re-read from the config: {}", changes.join("; "));
                let _ = tx.send(Action::ConfigReloaded(m));
            }
            Reload::Refused(why) => {
                let _ = tx.send(Action::ConfigReloaded(why));
            }
        }
        let pairs = crate::check::last::PairRef::all(&live.get());
        // before the first report, so the verdict needs no key
        let dir = crate::state::dir();
        let saved = pairs
            .iter()
            .filter_map(|p| crate::check::last::load(&dir, p));
        let _ = tx.send(Action::SavedChecks(saved.collect()));
        let report = poller.refresh().await;
        generation += 1;
        if tx.send(Action::Report { generation, report }).is_err() {
            return;
        }
        // a few small files: what reintegrate and `cyrdeck check` saved
        let saved = crate::check::guid_conflicts::collect(&crate::state::dir(), &pairs);
        let _ = tx.send(Action::GuidConflicts(saved));
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = refresh_now.notified() => {}
        }
    }
}

fn spawn_input(tx: mpsc::UnboundedSender<Action>) {
    std::thread::spawn(move || loop {
        let action = match event::read() {
            Ok(Event::Key(k)) => Action::Key(k),
            Ok(Event::Resize(_, h)) => Action::Resize { rows: list_rows(h) },
            Ok(_) => continue,
            Err(_) => return,
        };
        if tx.send(action).is_err() {
            return;
        }
    });
}

/// The engine's run changes become the console's actions.
fn notify(tx: &mpsc::UnboundedSender<Action>) -> crate::ops::runner::Notify {
    let tx = tx.clone();
    Arc::new(move |run| {
        let _ = tx.send(Action::Runbook(Box::new(run)));
    })
}

/// Where effects go: the poll task, the runbook runner, the check task.
struct Effects {
    refresh_now: Arc<Notify>,
    runner: Arc<Runner>,
    config: Arc<LiveConfig>,
    conns: crate::check::Connections,
    /// The check in progress, so Esc can stop it (it only reads).
    check: std::sync::Mutex<Option<tokio::task::AbortHandle>>,
}

impl Effects {
    /// Ok(false) to quit.
    async fn apply(&self, effect: Effect, tx: &mpsc::UnboundedSender<Action>) -> bool {
        match effect {
            Effect::Quit => {
                // a step finishing (its journal entry, the lock's release)
                // is not cut off; a run that never wrote gives the lock back
                self.runner.leave(std::time::Duration::from_secs(10)).await;
                return false;
            }
            Effect::Refresh => self.refresh_now.notify_one(),
            Effect::StartRunbook {
                id,
                pair,
                target,
                options,
            } => {
                self.runner
                    .start(&id, &pair, &target, &options, notify(tx))
                    .await
            }
            Effect::RunStep => self.runner.step(notify(tx)).await,
            Effect::AbortRunbook => self.runner.abort(notify(tx)).await,
            Effect::Doctor => {
                for pair in self.config.get().pairs.values() {
                    let (conns, tx, pair) = (self.conns.clone(), tx.clone(), pair.clone());
                    tokio::spawn(async move {
                        let d = crate::check::doctor::run(&conns, &pair).await;
                        let _ = tx.send(Action::Doctor(d));
                    });
                }
            }
            Effect::CancelCheck => {
                if let Some(h) = self.check.lock().ok().and_then(|mut c| c.take()) {
                    h.abort();
                }
            }
            Effect::Check { pair, scope } => {
                let (cfg, conns, tx) = (self.config.get(), self.conns.clone(), tx.clone());
                let task = tokio::spawn(async move {
                    let ptx = tx.clone();
                    let progress = move |line: String| {
                        let _ = ptx.send(Action::CheckProgress(line));
                    };
                    // the console completes mailbox names from the last check
                    let opts = crate::check::CheckOptions {
                        list_mailboxes: true,
                        ..Default::default()
                    };
                    let res =
                        crate::check::run(&cfg, &conns, &pair, &scope, &opts, &progress).await;
                    // a whole-pair check is the pair's record, as the CLI's
                    // is (issue 30, item 4: the console's own was lost)
                    if let (Ok(r), true) = (&res, scope == crate::check::Scope::default()) {
                        if let Err(e) = crate::check::last::record(&cfg, r) {
                            let _ = tx.send(Action::CheckProgress(format!("check not saved: {e}")));
                        }
                    }
                    let _ = tx.send(match res {
                        Ok(r) => Action::Check(r),
                        Err(e) => Action::CheckFailed(e),
                    });
                });
                if let Ok(mut c) = self.check.lock() {
                    *c = Some(task.abort_handle());
                }
            }
        }
        true
    }
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    app: &mut App,
    theme: &Theme,
    tx: mpsc::UnboundedSender<Action>,
    rx: &mut mpsc::UnboundedReceiver<Action>,
    effects: &Effects,
) -> Result<()> {
    spawn_input(tx.clone());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    if let Ok(size) = terminal.size() {
        app.update(Action::Resize {
            rows: list_rows(size.height),
        });
    }
    loop {
        terminal.draw(|f| views::render(app, theme, f))?;
        let first = tokio::select! {
            a = rx.recv() => match a { Some(a) => a, None => return Ok(()) },
            _ = tick.tick() => Action::Tick(now()),
            _ = term.recv() => {
                effects.runner.leave(Duration::from_secs(5)).await;
                return Ok(());
            }
            _ = hup.recv() => {
                effects.runner.leave(Duration::from_secs(5)).await;
                return Ok(());
            }
        };
        // apply everything queued, then draw once
        let mut batch = vec![first];
        while let Ok(a) = rx.try_recv() {
            batch.push(a);
        }
        for a in batch {
            for effect in app.update(a) {
                if !effects.apply(effect, &tx).await {
                    return Ok(());
                }
            }
        }
    }
}
