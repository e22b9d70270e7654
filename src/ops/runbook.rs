//! The shape every runbook shares: a list of steps, each read-only or
//! mutating, and the state of a run. Mutating steps go through the
//! transport's WriteCapability, so observe mode refuses them in one place.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StepSpec {
    pub title: &'static str,
    /// Changes a host (refused in observe mode).
    pub mutating: bool,
}

/// Declares a runbook's steps as an enum, in the run's order, each with its
/// title and whether it writes (`read` / `write`). Derived from it: the
/// spec's step table (`Step::SPECS`), `Step::ALL`, and the mapping between a
/// step and its index (the journal and the engine count steps by index;
/// the runbooks never do).
macro_rules! runbook_steps {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $rw:ident $title:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every step, in the run's order.
            pub const ALL: &'static [$name] = &[ $( $name::$variant, )+ ];
            /// The spec's step table.
            pub const SPECS: &'static [$crate::ops::runbook::StepSpec] = &[
                $( $crate::ops::runbook::StepSpec {
                    title: $title,
                    mutating: $crate::ops::runbook::runbook_steps!(@writes $rw),
                }, )+
            ];
            /// The step at `index` of a run, if the runbook has one there.
            pub fn of(index: usize) -> Option<$name> {
                Self::ALL.get(index).copied()
            }
            /// This step's index in a run.
            pub const fn index(self) -> usize {
                self as usize
            }
            /// This step's line of the spec.
            pub const fn spec(self) -> $crate::ops::runbook::StepSpec {
                Self::SPECS[self as usize]
            }
        }

        impl $crate::ops::runbook::StepKind for $name {
            fn of(index: usize) -> Option<$name> {
                $name::of(index)
            }
        }
    };
    (@writes read) => { false };
    (@writes write) => { true };
}
pub(crate) use runbook_steps;

/// A runbook's steps as a type: the engine and the journal count steps by
/// index; this is the one way from an index to a step.
pub trait StepKind: Copy + Send + Sync + std::fmt::Debug {
    fn of(index: usize) -> Option<Self>;
}

/// Every runbook, by type: what the engine, the journal, the console and
/// the CLI dispatch on. Serialized as the runbook's id ("replace-replica").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunbookKind {
    Resync,
    Repair,
    Quarantine,
    Release,
    Restart,
    Failover,
    UpgradeViaFailover,
    Promote,
    Reintegrate,
    ReplaceReplica,
}

impl RunbookKind {
    /// In the order the console lists them.
    pub const ALL: [RunbookKind; 10] = [
        RunbookKind::Resync,
        RunbookKind::Repair,
        RunbookKind::Quarantine,
        RunbookKind::Release,
        RunbookKind::Restart,
        RunbookKind::Failover,
        RunbookKind::UpgradeViaFailover,
        RunbookKind::Promote,
        RunbookKind::Reintegrate,
        RunbookKind::ReplaceReplica,
    ];

    /// The name an operator types (`cyrdeck run ID`) and the journal keeps.
    pub const fn id(self) -> &'static str {
        match self {
            RunbookKind::Resync => "resync",
            RunbookKind::Repair => "repair",
            RunbookKind::Quarantine => "quarantine",
            RunbookKind::Release => "release",
            RunbookKind::Restart => "restart",
            RunbookKind::Failover => "failover",
            RunbookKind::UpgradeViaFailover => "upgrade-via-failover",
            RunbookKind::Promote => "promote",
            RunbookKind::Reintegrate => "reintegrate",
            RunbookKind::ReplaceReplica => "replace-replica",
        }
    }

    pub fn parse(id: &str) -> Option<RunbookKind> {
        Self::ALL.into_iter().find(|k| k.id() == id)
    }
}

impl std::fmt::Display for RunbookKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RunbookSpec {
    /// Which runbook (serialized as its id, "replace-replica").
    #[serde(rename = "id")]
    pub kind: RunbookKind,
    pub title: &'static str,
    pub summary: &'static str,
    /// What the operator names when starting it ("mailbox").
    pub target: &'static str,
    pub steps: &'static [StepSpec],
    /// Steps before this index can be undone (the engine undoes them on an
    /// abort or a failure, deciding what to undo from what the servers say);
    /// from it on the run only goes forward (resume, `--retry`). None: the
    /// runbook has nothing to undo (each step stands on its own).
    pub point_of_no_return: Option<usize>,
    /// Which host of the pair holds the pair lock while it runs.
    pub lock_on: LockOn,
}

/// Where a runbook takes the pair lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LockOn {
    /// The pair's master (every runbook but promote).
    Master,
    /// The pair's one replica: promote, whose master may be a host that
    /// is gone (refused connections, dropped packets, a name that no
    /// longer resolves); the replica becomes the master and the lock goes
    /// on with the pair.
    Replica,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum StepState {
    Pending,
    Running,
    Done(String),
    Failed(String),
    /// Not run: observe mode, or the pair is locked by another run.
    Refused(String),
    /// Not run: the operator stopped the runbook (what could be undone was).
    Aborted(String),
}

/// Where the undo of a run stands. Journalled BEFORE the undo starts, so a
/// crash during an undo resumes the undo, never the forward steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum UndoState {
    #[default]
    None,
    /// Started (why); not known to have ended.
    Running(String),
    /// Ended: the pair is back in its state before the run.
    Done(String),
    /// Could not finish (why): the run stays open, `runbook resume` goes on
    /// with the undo.
    Failed(String),
}

impl UndoState {
    /// An undo began and has not ended well: the run must not go forward.
    pub fn pending(&self) -> bool {
        matches!(self, UndoState::Running(_) | UndoState::Failed(_))
    }
}

/// A choice the operator makes when starting a run (`--NAME VALUE` on the
/// CLI and after the console's `:RUNBOOK TARGET`); journalled with the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct OptionSpec {
    pub name: &'static str,
    /// The values allowed; the first is the default.
    pub values: &'static [&'static str],
    pub help: &'static str,
}

const REPAIR_OPTIONS: &[OptionSpec] = &[
    OptionSpec {
        name: "replica-only",
        values: &["report", "copy-back"],
        help: "a folder or user only the replica has: keep reporting it, or copy it back to the master",
    },
    // a domain's top-level shared folder (`sales@example.com`) reads like a
    // user: `repair --mailbox` says which it is
    OptionSpec {
        name: "target",
        values: &["auto", "user", "mailbox"],
        help: "what TARGET names: auto = a mailbox when it has a `/`, else a user",
    },
];

// "soft" keeps the UID the owner was shown on the new master; Cyrus sync
// cannot (docs/cyrus-behaviour.md, "the soft UID policy"), so hard_failover/soft_uid.rs
// does it by spool injection and a rebuild of the user on the old master.
const REINTEGRATE_OPTIONS: &[OptionSpec] = &[OptionSpec {
    name: "uid-policy",
    values: &["easy", "soft"],
    help: "same UID, two GUIDs: easy = both messages get new UIDs on both hosts; soft = the new master's message keeps its UID, the old master's gets a new one (per user; a user with a UID shown on the old master takes easy)",
}];

impl RunbookSpec {
    /// No undo and no way back (hard failover): every step can run again,
    /// so an interrupted run, the operator's stop included, is resumed.
    pub fn forward_only(&self) -> bool {
        matches!(self.kind, RunbookKind::Promote | RunbookKind::Reintegrate)
    }

    /// The runbook's id ("replace-replica").
    pub fn id(&self) -> &'static str {
        self.kind.id()
    }

    /// The options this runbook takes (one table for CLI and console).
    pub fn options(&self) -> &'static [OptionSpec] {
        match self.kind {
            RunbookKind::Repair => REPAIR_OPTIONS,
            RunbookKind::Reintegrate => REINTEGRATE_OPTIONS,
            _ => &[],
        }
    }

    /// `name` = `value` checked against the options table.
    pub fn check_option(&self, name: &str, value: &str) -> Result<(), String> {
        let o = self
            .options()
            .iter()
            .find(|o| o.name == name)
            .ok_or_else(|| format!("{} takes no option --{name}", self.id()))?;
        if o.values.contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "{}: --{name} is one of {}, not {value:?}",
                self.id(),
                o.values.join(", ")
            ))
        }
    }

    /// Refuse a target that could reach a Cyrus tool as an option (`-x`,
    /// `--help`), or is empty or has control characters: checked where a
    /// run is opened (CLI, console, journal, autopilot), before anything
    /// runs. The argv builders check again.
    pub fn check_target(&self, target: &str) -> Result<(), String> {
        use crate::cyrus::names::{check_name, NameKind};
        let id = self.id();
        let kind = match self.kind {
            RunbookKind::Resync => NameKind::Mailbox,
            RunbookKind::Repair if target.contains('/') => NameKind::Mailbox,
            RunbookKind::Repair | RunbookKind::Quarantine | RunbookKind::Release => NameKind::User,
            RunbookKind::Restart if target == "default" => return Ok(()),
            RunbookKind::Restart => NameKind::Channel,
            // OLD:NEW: each a host whose name becomes a channel name and
            // lands in argv (`sync_client -n`); the whole first, so "-x"
            // is refused as itself
            RunbookKind::ReplaceReplica => {
                check_name(NameKind::Channel, target).map_err(|e| format!("{id}: {e}"))?;
                for host in target.split(':') {
                    check_name(NameKind::Channel, host).map_err(|e| format!("{id}: {e}"))?;
                }
                return Ok(());
            }
            // failover: PAIR or PAIR:HOST, looked up in the config (never
            // in argv); an option-like HOST is refused all the same
            RunbookKind::Failover if target.contains(':') => {
                for part in target.split(':') {
                    check_name(NameKind::Channel, part).map_err(|e| format!("{id}: {e}"))?;
                }
                return Ok(());
            }
            // other pair targets are configured pairs, looked up by name
            _ => return Ok(()),
        };
        check_name(kind, target)
            .map(|_| ())
            .map_err(|e| format!("{id}: {e}"))
    }
}

impl StepState {
    pub fn label(&self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Done(_) => "done",
            StepState::Failed(_) => "FAILED",
            StepState::Refused(_) => "refused",
            StepState::Aborted(_) => "aborted",
        }
    }
    pub fn detail(&self) -> &str {
        match self {
            StepState::Done(d)
            | StepState::Failed(d)
            | StepState::Refused(d)
            | StepState::Aborted(d) => d,
            _ => "",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RunbookRun {
    pub spec: RunbookSpec,
    pub pair: String,
    pub target: String,
    pub steps: Vec<StepState>,
    /// Output lines of the steps so far (commands and what they printed).
    pub output: Vec<String>,
    /// What one step leaves for the next (a plan, a "before" snapshot).
    #[serde(skip)]
    pub memo: serde_json::Value,
    /// How many times each step was started (2 = run again after a crash).
    pub attempts: Vec<u32>,
    /// Names this run in the pair lock, the journal and the failover fence.
    pub run_id: String,
    /// The host holding the pair lock for this run, once taken.
    pub lock_host: Option<String>,
    pub undo: UndoState,
    /// The operator's choices (RunbookSpec::options), fixed at the start.
    pub options: BTreeMap<String, String>,
}

impl RunbookRun {
    pub fn new(spec: RunbookSpec, pair: &str, target: &str) -> Self {
        RunbookRun {
            spec,
            pair: pair.to_string(),
            target: target.to_string(),
            steps: vec![StepState::Pending; spec.steps.len()],
            output: Vec::new(),
            memo: serde_json::Value::Null,
            attempts: vec![0; spec.steps.len()],
            run_id: new_run_id(),
            lock_host: None,
            undo: UndoState::None,
            options: BTreeMap::new(),
        }
    }
    /// The value of option `name`: chosen, else its default.
    pub fn option(&self, name: &str) -> &str {
        option_value(&self.spec, &self.options, name)
    }
    /// Fix the operator's choices on a run not started yet; a run going on
    /// keeps those it started with (a different choice is refused).
    pub fn set_options(&mut self, chosen: &[(String, String)]) -> Result<(), String> {
        for (k, v) in chosen {
            self.spec.check_option(k, v)?;
        }
        let started = self.attempts.iter().any(|&a| a > 0);
        for (k, v) in chosen {
            if started && self.option(k) != v {
                return Err(format!(
                    "the unfinished {} run was started with --{k} {}: finish it (`cyrdeck runbook resume`) or discard it first",
                    self.spec.id(),
                    self.option(k)
                ));
            }
            if !started {
                self.options.insert(k.clone(), v.clone());
            }
        }
        Ok(())
    }
    /// Index of the next step to run, if the run can go on.
    pub fn next_step(&self) -> Option<usize> {
        if self.undo.pending()
            || self.steps.iter().any(|s| {
                matches!(
                    s,
                    StepState::Running
                        | StepState::Failed(_)
                        | StepState::Refused(_)
                        | StepState::Aborted(_)
                )
            })
        {
            return None;
        }
        self.steps.iter().position(|s| *s == StepState::Pending)
    }
    pub fn finished(&self) -> bool {
        self.next_step().is_none()
            && !self.steps.contains(&StepState::Running)
            && !self.undo.pending()
    }
    /// Has a step at or past the point of no return been started?
    pub fn past_point_of_no_return(&self) -> bool {
        self.spec.point_of_no_return.is_some_and(|p| {
            self.steps
                .iter()
                .skip(p)
                .any(|s| !matches!(s, StepState::Pending | StepState::Aborted(_)))
        })
    }
    /// Mark every step not run yet as aborted.
    pub fn abort_pending(&mut self, why: &str) {
        for s in self.steps.iter_mut().filter(|s| **s == StepState::Pending) {
            *s = StepState::Aborted(why.to_string());
        }
    }
}

/// `name`'s value in `chosen`, else the spec's default ("" if unknown).
pub fn option_value<'a>(
    spec: &RunbookSpec,
    chosen: &'a BTreeMap<String, String>,
    name: &str,
) -> &'a str {
    chosen.get(name).map(String::as_str).unwrap_or_else(|| {
        spec.options()
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.values.first().copied())
            .unwrap_or("")
    })
}

/// Runbooks the console offers, and the one in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunbookBoard {
    pub available: Vec<RunbookSpec>,
    pub active: Option<RunbookRun>,
}

/// A fresh run id: machine, pid, time (unique enough to tell runs apart).
pub fn new_run_id() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}-{}-{}{:03}",
        super::audit::machine()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(20)
            .collect::<String>(),
        std::process::id(),
        t.as_secs(),
        t.subsec_millis()
    )
}
