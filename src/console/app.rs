//! Console state and `update(Action) -> effects`. No I/O here: the runner
//! (run.rs) feeds actions in and carries effects out, so every key path is
//! testable with constructed events.

use super::cmdline;
use super::filter::Filter;
use super::keymap::{Command, Key, Keymap, Lookup};
use super::rows::{self, Rows};
use crate::model::conflicts::CheckResult;
use crate::model::snapshot::StatusReport;
use crate::ops::runbook::{RunbookBoard, RunbookRun};
use ratatui::crossterm::event::{Event, KeyCode, KeyEvent, KeyEventKind};
use std::collections::{BTreeMap, VecDeque};
use tui_input::Input;

/// Pending-count samples kept per channel for the sparkline.
pub const SPARK_SAMPLES: usize = 60;

pub use super::view_id::ViewId;

/// A list view's filter and selection over its rows.
#[derive(Clone, Debug, Default)]
pub struct ListState {
    pub filter: Option<Filter>,
    /// Indices of the rows that pass the filter.
    pub matched: Vec<usize>,
    pub selected: usize,
}

impl ListState {
    fn refilter(&mut self, texts: impl Iterator<Item = (usize, String)>) {
        self.matched = texts
            .filter(|(_, t)| self.filter.as_ref().is_none_or(|f| f.matches(t)))
            .map(|(i, _)| i)
            .collect();
        self.selected = self.selected.min(self.matched.len().saturating_sub(1));
    }
    fn step(&mut self, delta: isize) {
        let last = self.matched.len().saturating_sub(1) as isize;
        self.selected = (self.selected as isize + delta).clamp(0, last) as usize;
    }
    pub fn selected_row(&self) -> Option<usize> {
        self.matched.get(self.selected).copied()
    }
}

pub enum Mode {
    Normal,
    Filter {
        input: Input,
        before: Option<Filter>,
    },
    Command(Input),
}

/// What the poller and runbooks delivered.
#[derive(Default)]
pub struct Data {
    pub report: Option<StatusReport>,
    /// Generation of `report`; older deliveries are dropped.
    pub generation: u64,
    /// The latest refresh failed as a whole (hosts keep their last data).
    pub refresh_error: Option<String>,
    pub check: Option<CheckResult>,
    /// The check in progress: its latest progress line.
    pub check_progress: Option<String>,
    pub runbooks: RunbookBoard,
    /// Config doctor per pair (read at start and on `D` / `:doctor`).
    pub doctor: BTreeMap<String, crate::check::doctor::DoctorReport>,
    /// "pair/channel" -> (report time, pending) samples, oldest first.
    pub spark: BTreeMap<String, VecDeque<(i64, u64)>>,
    /// GUID conflicts saved in the state dir (newest reintegrate report,
    /// last check), re-read after every refresh.
    pub guid_conflicts: Vec<crate::check::guid_conflicts::GuidConflict>,
    /// Each pair's recorded check (`last-check-PAIR.json`), read at start
    /// and after every refresh.
    pub saved_checks: BTreeMap<String, crate::check::last::LastCheck>,
}

/// The log view's own filters (besides `/`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogFilter {
    pub errors_only: bool,
    pub host: Option<String>,
}

pub enum Action {
    Key(KeyEvent),
    Report {
        generation: u64,
        report: StatusReport,
    },
    Check(CheckResult),
    CheckProgress(String),
    CheckFailed(String),
    Runbook(Box<RunbookRun>),
    Doctor(crate::check::doctor::DoctorReport),
    /// The GUID conflicts saved in the state dir.
    GuidConflicts(Vec<crate::check::guid_conflicts::GuidConflict>),
    SavedChecks(Vec<crate::check::last::LastCheck>),
    /// The config file was re-read (roles followed) or could not be: the
    /// words to show.
    ConfigReloaded(String),
    /// The wall clock, for data ages.
    Tick(i64),
    /// Rows of list area on screen (for paging).
    Resize {
        rows: u16,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    Quit,
    Refresh,
    StartRunbook {
        id: String,
        pair: String,
        target: String,
        options: Vec<(String, String)>,
    },
    RunStep,
    AbortRunbook,
    Check {
        pair: String,
        scope: crate::check::Scope,
    },
    /// Read every pair's config (doctor).
    Doctor,
    /// Stop the check in progress (it only reads).
    CancelCheck,
}

/// Tab pressed again on an ambiguous word: the next candidate.
#[derive(Clone, Debug)]
struct Cycle {
    head: String,
    candidates: Vec<String>,
    /// The candidate on the line now (None: the common prefix).
    at: Option<usize>,
}

pub struct App {
    pub keymap: Keymap,
    pub observe: bool,
    pub now: i64,
    pub data: Data,
    pub rows: Rows,
    lists: [ListState; 6],
    pub view: ViewId,
    pub mode: Mode,
    pub help: bool,
    /// First help line shown (the help scrolls when it does not fit).
    pub help_scroll: usize,
    /// First Overview line shown (it scrolls when a fleet or many problems
    /// do not fit; the view says how many lines are above and below).
    pub overview_scroll: usize,
    cycle: Option<Cycle>,
    /// Conflicts: the mailbox opened into its side-by-side table.
    pub detail: Option<String>,
    pub log_filter: LogFilter,
    /// One line for the operator: errors, hints, completions.
    pub message: Option<String>,
    typed: Vec<Key>,
    page: usize,
    pub quit: bool,
    /// The way the operator came by Enter (Queue -> Log): Esc goes back
    /// along it, as in k9s. Switching views by name or number forgets it.
    trail: Vec<ViewId>,
}

impl App {
    pub fn new(
        keymap: Keymap,
        keymap_errors: Vec<String>,
        observe: bool,
        board: RunbookBoard,
    ) -> App {
        let message = (!keymap_errors.is_empty()).then(|| {
            format!(
                "keymap ignored, defaults kept: {}",
                keymap_errors.join("; ")
            )
        });
        App {
            keymap,
            observe,
            now: 0,
            data: Data {
                runbooks: board,
                ..Default::default()
            },
            rows: Rows::default(),
            lists: Default::default(),
            view: ViewId::Overview,
            mode: Mode::Normal,
            help: false,
            help_scroll: 0,
            overview_scroll: 0,
            cycle: None,
            detail: None,
            log_filter: LogFilter::default(),
            message,
            typed: Vec::new(),
            page: 10,
            quit: false,
            trail: Vec::new(),
        }
    }

    pub fn list(&self, v: ViewId) -> &ListState {
        &self.lists[v.index()]
    }

    pub fn update(&mut self, action: Action) -> Vec<Effect> {
        match action {
            Action::Key(k) if k.kind != KeyEventKind::Release => return self.key(k),
            Action::Key(_) => {}
            Action::Report { generation, report } => {
                if generation >= self.data.generation {
                    self.data.generation = generation;
                    self.sample(&report);
                    self.data.report = Some(report);
                    self.rebuild();
                }
            }
            Action::Check(c) => {
                self.data.check = Some(c);
                self.data.check_progress = None;
                self.rebuild();
            }
            // a check the operator cancelled may still report once
            Action::CheckProgress(p) if self.data.check_progress.is_some() => {
                self.data.check_progress = Some(p)
            }
            Action::CheckProgress(_) => {}
            Action::CheckFailed(e) if self.data.check_progress.is_some() => {
                self.data.check_progress = None;
                self.message = Some(format!("check failed: {e}"));
            }
            Action::CheckFailed(_) => {}
            Action::Runbook(run) => {
                let was_open = self
                    .data
                    .runbooks
                    .active
                    .as_ref()
                    .is_some_and(|r| !r.finished());
                let ended = was_open && run.finished();
                self.data.runbooks.active = Some(*run);
                // a failover rewrote the roles: the next refresh re-reads
                // them now, not one interval later
                if ended {
                    return vec![Effect::Refresh];
                }
            }
            Action::ConfigReloaded(m) => self.message = Some(m),
            Action::Doctor(d) => {
                self.data.doctor.insert(d.pair.clone(), d);
            }
            Action::GuidConflicts(v) => self.data.guid_conflicts = v,
            Action::SavedChecks(v) => {
                self.data.saved_checks = v.into_iter().map(|c| (c.pair.clone(), c)).collect()
            }
            Action::Tick(now) => self.now = now,
            Action::Resize { rows } => self.page = rows.max(1) as usize,
        }
        vec![]
    }

    fn sample(&mut self, report: &StatusReport) {
        for p in &report.pairs {
            for c in &p.channels {
                let s = self
                    .data
                    .spark
                    .entry(format!("{}/{}", p.name, c.channel))
                    .or_default();
                s.push_back((report.generated_at, c.queue.pending));
                while s.len() > SPARK_SAMPLES {
                    s.pop_front();
                }
            }
        }
    }

    /// The check the failover verdict rests on for `pair`: one run in this
    /// console, else the newer recorded one.
    pub fn check_facts(&self, pair: &str) -> Option<crate::model::readiness::CheckFacts> {
        use crate::model::readiness::CheckFacts;
        let own = self.data.check.as_ref().filter(|c| c.pair == pair);
        let saved = self.data.saved_checks.get(pair);
        match (own, saved) {
            (Some(o), Some(s)) if s.finished_at > o.finished_at => Some(s.into()),
            (Some(o), _) => Some(o.into()),
            (None, s) => s.map(CheckFacts::from),
        }
    }

    /// Every GUID conflict known: the saved ones, a check run in this
    /// console replacing its pair's saved check.
    pub fn guid_conflicts(&self) -> Vec<crate::check::guid_conflicts::GuidConflict> {
        use crate::check::guid_conflicts::from_check;
        let mut v: Vec<_> = self
            .data
            .guid_conflicts
            .iter()
            .filter(|c| {
                c.source != "check" || self.data.check.as_ref().is_none_or(|k| k.pair != c.pair)
            })
            .cloned()
            .collect();
        v.extend(self.data.check.iter().flat_map(from_check));
        v
    }

    fn rebuild(&mut self) {
        self.rows = rows::build(self.data.report.as_ref(), self.data.check.as_ref());
        for v in ViewId::ALL {
            self.refilter(v);
        }
    }

    fn refilter(&mut self, v: ViewId) {
        let r = &self.rows;
        let lf = &self.log_filter;
        let l = &mut self.lists[v.index()];
        match v {
            ViewId::Queue => l.refilter(r.queue.iter().map(|x| x.text()).enumerate()),
            ViewId::Stuck => l.refilter(r.stuck.iter().map(|x| x.text()).enumerate()),
            ViewId::Conflicts => l.refilter(r.conflicts.iter().map(|x| x.text()).enumerate()),
            ViewId::Log => l.refilter(
                r.log
                    .iter()
                    .enumerate()
                    .filter(|(_, x)| !lf.errors_only || x.is_error())
                    .filter(|(_, x)| lf.host.as_ref().is_none_or(|h| *h == x.event.host))
                    .map(|(i, x)| (i, x.text())),
            ),
            ViewId::Runbooks => {
                let names: Vec<String> = self
                    .data
                    .runbooks
                    .available
                    .iter()
                    .map(|s| format!("{} {}", s.id(), s.title))
                    .collect();
                l.refilter(names.into_iter().enumerate())
            }
            ViewId::Overview => {}
        }
    }

    fn key(&mut self, k: KeyEvent) -> Vec<Effect> {
        match &mut self.mode {
            Mode::Filter { input, before } => {
                match k.code {
                    KeyCode::Enter => self.mode = Mode::Normal,
                    KeyCode::Esc => {
                        let before = before.take();
                        self.mode = Mode::Normal;
                        self.set_filter(before);
                    }
                    _ => {
                        input.handle(
                            tui_input::backend::crossterm::to_input_request(&Event::Key(k))
                                .unwrap_or(tui_input::InputRequest::GoToEnd),
                        );
                        let text = input.value().to_string();
                        self.live_filter(&text);
                    }
                }
                return vec![];
            }
            Mode::Command(input) => {
                match k.code {
                    KeyCode::Enter => {
                        let line = input.value().to_string();
                        self.mode = Mode::Normal;
                        self.cycle = None;
                        self.message = None;
                        return self.run_command_line(&line);
                    }
                    KeyCode::Esc => {
                        // the candidate line goes with the command line
                        self.mode = Mode::Normal;
                        self.cycle = None;
                        self.message = None;
                    }
                    KeyCode::Tab => {
                        let line = input.value().to_string();
                        self.tab(&line);
                    }
                    _ => {
                        self.cycle = None;
                        if let Some(req) =
                            tui_input::backend::crossterm::to_input_request(&Event::Key(k))
                        {
                            input.handle(req);
                        }
                    }
                }
                return vec![];
            }
            Mode::Normal => {}
        }
        self.message = None;
        let key = Key::from_event(&k);
        if self.help {
            // the movement keys scroll the help; any other key closes it
            // (`?` and Esc only close it)
            self.typed.push(key);
            let found = self.keymap.lookup(self.view.context(), &self.typed);
            if found == Lookup::Prefix {
                return vec![]; // `g g`
            }
            self.typed.clear();
            if let Lookup::Command(c) = found {
                let last = super::help::line_count(
                    &self.keymap,
                    self.view.context(),
                    self.observe,
                    &self.data.runbooks.available,
                )
                .saturating_sub(1);
                let page = self.page;
                let at = self.help_scroll;
                let to = match c {
                    Command::Down => Some(at + 1),
                    Command::Up => Some(at.saturating_sub(1)),
                    Command::PageDown => Some(at + page),
                    Command::PageUp => Some(at.saturating_sub(page)),
                    Command::Top => Some(0),
                    Command::Bottom => Some(last),
                    _ => None,
                };
                if let Some(to) = to {
                    self.help_scroll = to.min(last);
                    return vec![];
                }
            }
            self.help = false;
            if matches!(k.code, KeyCode::Esc | KeyCode::Char('?')) {
                return vec![];
            }
        }
        self.typed.push(key);
        let ctx = self.view.context();
        match self.keymap.lookup(ctx, &self.typed) {
            Lookup::Command(c) => {
                self.typed.clear();
                self.command(c)
            }
            Lookup::Prefix => vec![],
            Lookup::Unbound => {
                let chord = self.typed.len() > 1;
                self.typed.clear();
                if chord {
                    // a broken chord: the last key may still mean something
                    if let Lookup::Command(c) = self.keymap.lookup(ctx, &[key]) {
                        return self.command(c);
                    }
                }
                vec![]
            }
        }
    }

    fn live_filter(&mut self, text: &str) {
        if text.is_empty() {
            self.set_filter(None);
            return;
        }
        match Filter::parse(text) {
            Ok(f) => self.set_filter(Some(f)),
            Err(e) => self.message = Some(e),
        }
    }

    fn set_filter(&mut self, f: Option<Filter>) {
        let v = self.view;
        self.lists[v.index()].filter = f;
        self.lists[v.index()].selected = 0;
        self.refilter(v);
    }

    fn switch(&mut self, v: ViewId) {
        self.view = v;
        self.detail = None;
        self.trail.clear();
    }

    /// Open `v` from the current view by Enter, filtered to `who`;
    /// remembered so Esc comes back.
    fn follow(&mut self, v: ViewId, who: &str) {
        let from = self.view;
        let mut trail = std::mem::take(&mut self.trail);
        self.switch(v);
        trail.push(from);
        self.trail = trail;
        self.set_filter(Filter::parse(&regex::escape(who)).ok());
    }

    fn move_by(&mut self, delta: isize) {
        let v = self.view;
        if v == ViewId::Overview {
            // clamped when drawn (the height is the renderer's)
            self.overview_scroll = self.overview_scroll.saturating_add_signed(delta);
            return;
        }
        self.lists[v.index()].step(delta);
    }

    pub fn command(&mut self, c: Command) -> Vec<Effect> {
        let page = self.page as isize;
        match c {
            Command::Quit => {
                self.quit = true;
                return vec![Effect::Quit];
            }
            Command::Help => {
                self.help = true;
                self.help_scroll = 0;
            }
            Command::NextView => self.switch(ViewId::ALL[(self.view.index() + 1) % 6]),
            Command::PrevView => self.switch(ViewId::ALL[(self.view.index() + 5) % 6]),
            Command::ViewOverview => self.switch(ViewId::Overview),
            Command::ViewQueue => self.switch(ViewId::Queue),
            Command::ViewStuck => self.switch(ViewId::Stuck),
            Command::ViewConflicts => self.switch(ViewId::Conflicts),
            Command::ViewLog => self.switch(ViewId::Log),
            Command::ViewRunbooks => self.switch(ViewId::Runbooks),
            Command::Up => self.move_by(-1),
            Command::Down => self.move_by(1),
            Command::PageUp => self.move_by(-page),
            Command::PageDown => self.move_by(page),
            Command::Top => self.move_by(isize::MIN / 2),
            Command::Bottom => self.move_by(isize::MAX / 2),
            Command::Filter => {
                if self.view == ViewId::Overview {
                    self.message = Some("nothing to filter here: try Queue (2) or Log (5)".into());
                } else {
                    let before = self.lists[self.view.index()].filter.clone();
                    let text = before.as_ref().map(|f| f.text.clone()).unwrap_or_default();
                    self.mode = Mode::Filter {
                        input: Input::new(text),
                        before,
                    };
                }
            }
            Command::CommandLine => self.mode = Mode::Command(Input::default()),
            Command::Back => {
                if self.data.check_progress.is_some() && self.view == ViewId::Conflicts {
                    // the check says "Esc cancels" where it shows its progress
                    self.data.check_progress = None;
                    self.message = Some("check cancelled".into());
                    return vec![Effect::CancelCheck];
                } else if self.detail.is_some() {
                    self.detail = None;
                } else if let Some(from) = self.trail.pop() {
                    // the filter came with the Enter: it goes with the Esc
                    self.set_filter(None);
                    self.view = from;
                } else if self.lists[self.view.index()].filter.is_some() {
                    self.set_filter(None);
                } else {
                    self.switch(ViewId::Overview);
                }
            }
            Command::Refresh => {
                self.message = Some("refreshing…".into());
                return vec![Effect::Refresh];
            }
            Command::Open => self.open(),
            Command::CycleSeverity => {
                self.log_filter.errors_only = !self.log_filter.errors_only;
                self.refilter(ViewId::Log);
            }
            Command::CycleHost => {
                let hosts = self.host_names();
                self.log_filter.host = match &self.log_filter.host {
                    None => hosts.first().cloned(),
                    Some(h) => hosts
                        .iter()
                        .position(|x| x == h)
                        .and_then(|i| hosts.get(i + 1).cloned()),
                };
                self.refilter(ViewId::Log);
            }
            Command::RunStep => return self.run_step(),
            Command::RunCheck => return self.start_check(crate::check::Scope::default()),
            Command::RunDoctor => {
                self.message = Some("reading the hosts' config (doctor)…".into());
                return vec![Effect::Doctor];
            }
            Command::AbortRunbook => {
                if self.data.runbooks.active.is_some() {
                    return vec![Effect::AbortRunbook];
                }
                self.message = Some("no runbook in progress".into());
            }
        }
        vec![]
    }

    fn host_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .data
            .report
            .iter()
            .flat_map(|r| r.pairs.iter())
            .flat_map(|p| p.hosts.iter().map(|h| h.name.clone()))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    fn open(&mut self) {
        match self.view {
            ViewId::Overview => {
                self.switch(ViewId::Queue);
                self.trail.push(ViewId::Overview);
            }
            ViewId::Conflicts => {
                let l = self.list(ViewId::Conflicts);
                if let Some(i) = l.selected_row() {
                    self.detail = Some(self.rows.conflicts[i].diff.mailbox.clone());
                }
            }
            ViewId::Stuck => {
                let l = self.list(ViewId::Stuck);
                if let Some(i) = l.selected_row() {
                    let who = self.rows.stuck[i].entry.subject().to_string();
                    self.follow(ViewId::Log, &who);
                }
            }
            ViewId::Queue => {
                let l = self.list(ViewId::Queue);
                if let Some(i) = l.selected_row() {
                    let who = self.rows.queue[i].user.clone();
                    if !who.is_empty() {
                        self.follow(ViewId::Log, &who);
                    }
                }
            }
            ViewId::Log | ViewId::Runbooks => {}
        }
    }

    fn first_pair(&self) -> String {
        self.data
            .report
            .as_ref()
            .and_then(|r| r.pairs.first().map(|p| p.name.clone()))
            .unwrap_or_default()
    }

    fn start_check(&mut self, scope: crate::check::Scope) -> Vec<Effect> {
        if self.data.check_progress.is_some() {
            self.message = Some("a check is already running".into());
            return vec![];
        }
        let pair = self.first_pair();
        if pair.is_empty() {
            self.message = Some("no pair known yet: wait for the first refresh".into());
            return vec![];
        }
        self.data.check_progress = Some("starting the check…".into());
        self.switch(ViewId::Conflicts);
        vec![Effect::Check { pair, scope }]
    }

    fn run_step(&mut self) -> Vec<Effect> {
        if let Some(run) = &self.data.runbooks.active {
            if run.next_step().is_some() {
                return vec![Effect::RunStep];
            }
            if !run.finished() {
                self.message = Some("a step is running".into());
                return vec![];
            }
        }
        let l = self.list(ViewId::Runbooks);
        let Some(spec) = l
            .selected_row()
            .and_then(|i| self.data.runbooks.available.get(i))
        else {
            self.message = Some("no runbook selected".into());
            return vec![];
        };
        // runbooks need a target: prefill the command line
        self.mode = Mode::Command(Input::new(format!("{} ", spec.id())));
        self.message = Some(format!(
            "START {}: type the {} it works on after \"{} \", Enter starts it, Esc cancels (Tab completes)",
            spec.id(),
            spec.target,
            spec.id()
        ));
        vec![]
    }

    /// Tab: complete the last word; Tab again on an ambiguous word puts
    /// its candidates on the line one after the other.
    fn tab(&mut self, line: &str) {
        if let Some(c) = &mut self.cycle {
            let shown = match c.at {
                Some(i) => format!("{}{}", c.head, c.candidates[i]),
                None => line.to_string(),
            };
            if shown == line {
                let i = c.at.map_or(0, |i| (i + 1) % c.candidates.len());
                c.at = Some(i);
                let next = format!("{}{}", c.head, c.candidates[i]);
                self.message = Some(candidate_line(&c.candidates, Some(i)));
                self.mode = Mode::Command(Input::new(next));
                return;
            }
        }
        let done = cmdline::complete(line, &self.completion_words());
        self.mode = Mode::Command(Input::new(done.line));
        if done.candidates.is_empty() {
            self.cycle = None;
            self.message = None;
        } else {
            self.message = Some(candidate_line(&done.candidates, None));
            self.cycle = Some(Cycle {
                head: done.head,
                candidates: done.candidates,
                at: None,
            });
        }
    }

    /// Words the command line completes: commands, then mailbox and user
    /// names (seen in the data, and every mailbox the last check listed).
    fn completion_words(&self) -> cmdline::Words {
        let users: Vec<String> = self
            .rows
            .queue
            .iter()
            .map(|r| r.user.clone())
            .chain(
                self.rows
                    .stuck
                    .iter()
                    .map(|r| r.entry.subject().to_string()),
            )
            .filter(|u| !u.is_empty() && !u.contains('/'))
            .collect();
        let mut names: Vec<String> = self
            .rows
            .queue
            .iter()
            .map(|r| r.mailbox.clone())
            .chain(
                self.rows
                    .stuck
                    .iter()
                    .filter_map(|r| r.entry.mailbox.clone()),
            )
            .chain(self.rows.conflicts.iter().map(|r| r.diff.mailbox.clone()))
            .chain(
                self.data
                    .check
                    .iter()
                    .flat_map(|c| c.mailboxes.iter().cloned()),
            )
            // `user/al` completes to a user's INBOX
            .chain(users.iter().map(|u| format!("user/{u}")))
            .chain(users.iter().cloned())
            .filter(|s| !s.is_empty())
            .collect();
        names.sort();
        names.dedup();
        // a user is known from the queue, the stuck list or a mailbox name
        let mut users: Vec<String> = users
            .into_iter()
            .chain(names.iter().filter_map(|n| {
                let rest = n.strip_prefix("user/")?;
                Some(rest.split('/').next()?.to_string())
            }))
            .filter(|u| !u.is_empty())
            .collect();
        users.sort();
        users.dedup();
        let pairs = self.data.report.iter().flat_map(|r| r.pairs.iter());
        let mut channels: Vec<String> = pairs
            .clone()
            .flat_map(|p| p.channels.iter())
            .map(|c| crate::model::health::channel_label(&c.channel))
            .collect();
        channels.sort();
        channels.dedup();
        cmdline::Words {
            runbooks: self
                .data
                .runbooks
                .available
                .iter()
                .map(|s| s.id().to_string())
                .collect(),
            names,
            users,
            pairs: pairs.map(|p| p.name.clone()).collect(),
            hosts: self.host_names(),
            channels,
        }
    }

    /// The pair a runbook acts on: the failover's target IS a pair; other
    /// runbooks take `--pair NAME`, or the only pair there is.
    fn runbook_pair(
        &self,
        id: &str,
        target: &str,
        named: Option<String>,
    ) -> Result<String, String> {
        let pairs: Vec<String> = self
            .data
            .report
            .as_ref()
            .map(|r| r.pairs.iter().map(|p| p.name.clone()).collect())
            .unwrap_or_default();
        let target_is_pair = self
            .data
            .runbooks
            .available
            .iter()
            .any(|s| s.id() == id && s.target == "pair");
        let pair = match (named, target_is_pair) {
            (Some(p), _) => p,
            // `PAIR:HOST`: the failover's chosen replica of a pair with several
            (None, true) => target.split(':').next().unwrap_or(target).to_string(),
            (None, false) => match &pairs[..] {
                [only] => only.clone(),
                [] => return Err("no pair known yet: wait for the first refresh".into()),
                _ => {
                    return Err(format!(
                        "several pairs ({}): add --pair NAME",
                        pairs.join(", ")
                    ))
                }
            },
        };
        if !pairs.is_empty() && !pairs.contains(&pair) {
            return Err(format!("no pair {pair:?} (pairs: {})", pairs.join(", ")));
        }
        Ok(pair)
    }

    fn run_command_line(&mut self, line: &str) -> Vec<Effect> {
        match cmdline::parse(line, &self.completion_words().runbooks) {
            Err(e) => {
                self.message = Some(e);
                vec![]
            }
            Ok(cmdline::Parsed::Command(c)) => self.command(c),
            Ok(cmdline::Parsed::View(v)) => {
                self.switch(v);
                vec![]
            }
            Ok(cmdline::Parsed::FilterIn(v, pattern)) => {
                self.switch(v);
                match Filter::parse(&pattern) {
                    Ok(f) => self.set_filter(Some(f)),
                    Err(e) => self.message = Some(e),
                }
                vec![]
            }
            Ok(cmdline::Parsed::Check(scope)) => self.start_check(scope),
            Ok(cmdline::Parsed::Runbook {
                id,
                target,
                pair,
                options,
            }) => {
                if self
                    .data
                    .runbooks
                    .active
                    .as_ref()
                    .is_some_and(|r| !r.finished())
                {
                    self.message =
                        Some("a runbook is in progress: finish or abort it (x) first".into());
                    return vec![];
                }
                let pair = match self.runbook_pair(&id, &target, pair) {
                    Ok(p) => p,
                    Err(e) => {
                        self.message = Some(e);
                        return vec![];
                    }
                };
                self.switch(ViewId::Runbooks);
                vec![Effect::StartRunbook {
                    id,
                    pair,
                    target,
                    options,
                }]
            }
        }
    }
}

/// The candidates on one line, the one on the command line in brackets.
fn candidate_line(candidates: &[String], at: Option<usize>) -> String {
    let shown: Vec<String> = candidates
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if Some(i) == at {
                format!("[{c}]")
            } else {
                c.clone()
            }
        })
        .collect();
    match at {
        Some(i) => format!("Tab {}/{}: {}", i + 1, candidates.len(), shown.join("  ")),
        None => format!("Tab: {}", shown.join("  ")),
    }
}
