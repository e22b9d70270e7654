//! The shape every runbook shares: a list of steps, each read-only or
//! mutating, and the state of a run. Mutating steps go through the
//! transport's WriteCapability, so observe mode refuses them in one place.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct StepSpec {
    pub title: &'static str,
    /// Changes a host (refused in observe mode).
    pub mutating: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct RunbookSpec {
    pub id: &'static str,
    pub title: &'static str,
    pub summary: &'static str,
    /// What the operator names when starting it ("mailbox").
    pub target: &'static str,
    pub steps: &'static [StepSpec],
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "detail")]
pub enum StepState {
    Pending,
    Running,
    Done(String),
    Failed(String),
    /// Not run: observe mode, or the operator aborted.
    Refused(String),
}

impl StepState {
    pub fn label(&self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Done(_) => "done",
            StepState::Failed(_) => "FAILED",
            StepState::Refused(_) => "refused",
        }
    }
    pub fn detail(&self) -> &str {
        match self {
            StepState::Done(d) | StepState::Failed(d) | StepState::Refused(d) => d,
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
        }
    }
    /// Index of the next step to run, if the run can go on.
    pub fn next_step(&self) -> Option<usize> {
        if self.steps.iter().any(|s| {
            matches!(
                s,
                StepState::Running | StepState::Failed(_) | StepState::Refused(_)
            )
        }) {
            return None;
        }
        self.steps.iter().position(|s| *s == StepState::Pending)
    }
    pub fn finished(&self) -> bool {
        self.next_step().is_none() && !self.steps.contains(&StepState::Running)
    }
}

/// Runbooks the console offers, and the one in progress.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunbookBoard {
    pub available: Vec<RunbookSpec>,
    pub active: Option<RunbookRun>,
}
