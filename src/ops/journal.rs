//! The runbook journal: the state of a run on disk after every step change,
//! so `cyrdeck runbook resume` continues after the console or its SSH
//! connection died, never repeating a step that completed. A step that was
//! running when the process died is run again (every mutating step is
//! idempotent). Written to a temporary file, synced, then renamed: a crash
//! leaves the old journal or the new one, never half of one.

use super::runbook::{RunbookRun, StepState, UndoState};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Serialize, Deserialize)]
pub struct Journal {
    pub runbook: String,
    pub pair: String,
    pub target: String,
    /// The config file the run belongs to.
    pub config: PathBuf,
    pub steps: Vec<StepState>,
    /// How many times each step was started (a resumed step: 2).
    pub attempts: Vec<u32>,
    pub output: Vec<String>,
    pub memo: serde_json::Value,
    #[serde(default)]
    pub run_id: String,
    /// The host holding the pair lock for this run.
    #[serde(default)]
    pub lock_host: Option<String>,
    #[serde(default)]
    pub undo: UndoState,
    /// The operator's choices (RunbookSpec::options).
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, String>,
}

/// Where the run of `runbook` on `pair` is journalled.
/// `<runbook>-<pair>-<target>-<16 hex of the config file>.json`: two
/// configs' pairs of one name (a test lab's `lab` and the demo's) never
/// share a journal (issue 30, item 4).
pub fn path(runbook: &str, pair: &str, target: &str, config: &Path) -> PathBuf {
    let config = std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf());
    let hash = config
        .to_string_lossy()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let legacy = legacy_path(runbook, pair, target);
    let stem = legacy.file_stem().unwrap_or_default().to_string_lossy();
    legacy.with_file_name(format!("{stem}-{hash:016x}.json"))
}

/// The name a journal had before it was keyed by config: a run journalled
/// by an older cyrdeck is still found (and resumed) under it.
pub fn legacy_path(runbook: &str, pair: &str, target: &str) -> PathBuf {
    let safe = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    };
    crate::state::journal_dir().join(format!(
        "{}-{}-{}.json",
        safe(runbook),
        safe(pair),
        safe(target)
    ))
}

impl Journal {
    pub fn of(run: &RunbookRun, config: &Path) -> Journal {
        Journal {
            runbook: run.spec.id().to_string(),
            pair: run.pair.clone(),
            target: run.target.clone(),
            // resume may run from another directory
            config: std::fs::canonicalize(config).unwrap_or_else(|_| config.to_path_buf()),
            steps: run.steps.clone(),
            attempts: run.attempts.clone(),
            output: run.output.clone(),
            memo: run.memo.clone(),
            run_id: run.run_id.clone(),
            lock_host: run.lock_host.clone(),
            undo: run.undo.clone(),
            options: run.options.clone(),
        }
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let bytes = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        crate::state::write_atomic(path, &bytes, None)
    }

    pub fn load(path: &Path) -> Result<Journal, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{}: not a journal: {e}", path.display()))
    }

    /// The run to go on with: a step that was running is pending again; a
    /// failed step that can be retried is pending again only with `retry`.
    pub fn resume(&self, retry: bool) -> Result<RunbookRun, String> {
        let spec = super::registry::by_id(&self.runbook)
            .ok_or_else(|| format!("unknown runbook {:?} in the journal", self.runbook))?;
        if self.steps.len() != spec.steps.len() {
            return Err(format!(
                "the journal has {} steps, runbook {} has {}",
                self.steps.len(),
                spec.id(),
                spec.steps.len()
            ));
        }
        let mut run = RunbookRun::new(spec, &self.pair, &self.target);
        run.steps = self
            .steps
            .iter()
            .map(|s| match s {
                StepState::Running => StepState::Pending,
                other => other.clone(),
            })
            .collect();
        run.undo = self.undo.clone();
        if !self.run_id.is_empty() {
            run.run_id = self.run_id.clone();
        }
        run.lock_host = self.lock_host.clone();
        run.options = self.options.clone();
        // before the retry test: it asks whether a writing step ever ran
        run.attempts = self.attempts.clone();
        run.attempts.resize(run.steps.len(), 0);
        if retryable(&run) {
            let (i, why) = run
                .steps
                .iter()
                .enumerate()
                .find_map(|(i, s)| match s {
                    StepState::Failed(w) => Some((i, w.clone())),
                    _ => None,
                })
                .unwrap_or_default();
            if !retry {
                return Err(format!(
                    "step {} failed: {why}\nfix the cause, then `cyrdeck runbook resume --retry` runs it again",
                    i + 1
                ));
            }
            run.steps[i] = StepState::Pending;
        }
        run.output = self.output.clone();
        run.memo = self.memo.clone();
        Ok(run)
    }

    /// Did the run end (done, failed or refused), or can it go on?
    pub fn finished(&self) -> bool {
        self.resume(true)
            .map(|r| r.finished() && r.lock_host.is_none())
            .unwrap_or(true)
    }
}

/// A run that failed where going back is not possible (the failover past
/// its point of no return, or a failure the undo found past it): it stays
/// open so the failed step can be run again once its cause is fixed.
pub fn retryable(run: &RunbookRun) -> bool {
    // a run that never wrote (its read-only precheck failed) changed
    // nothing: it ends, and gives the pair lock back, instead of holding
    // the pair for a retry (found by the 3-host failover matrix: a precheck
    // refusing a user failing now left the pair locked)
    let wrote = run
        .spec
        .steps
        .iter()
        .zip(&run.attempts)
        .any(|(s, &a)| s.mutating && a > 0);
    // forward-only runbooks (promote, reintegrate) too: a new run cannot
    // start where a failed one stands (found by the hard failover matrix:
    // reintegrate failing at its start of replication ended the run)
    (run.spec.point_of_no_return.is_some() || run.spec.forward_only())
        && wrote
        && run.undo == UndoState::None
        && run.steps.iter().any(|s| matches!(s, StepState::Failed(_)))
}

/// An exclusive lock on a journal for as long as a run uses it: a second
/// console or `resume` must not run the same steps at the same time.
pub struct Lock {
    /// Holding the file holds the lock (closing it releases it).
    _file: std::fs::File,
}

impl Lock {
    pub fn acquire(journal: &Path) -> Result<Lock, String> {
        use std::os::unix::io::AsRawFd;
        if let Some(d) = journal.parent() {
            std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
        }
        let path = journal.with_extension("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // SAFETY: flock on a descriptor we own; released when the file closes
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            return Err(format!(
                "another cyrdeck is running this runbook ({} is locked)",
                path.display()
            ));
        }
        Ok(Lock { _file: f })
    }
}

/// Journals of runs that can go on (oldest first).
pub fn unfinished() -> Vec<PathBuf> {
    let mut v: Vec<(std::time::SystemTime, PathBuf)> =
        std::fs::read_dir(crate::state::journal_dir())
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter(|p| Journal::load(p).is_ok_and(|j| !j.finished()))
            .map(|p| {
                (
                    std::fs::metadata(&p)
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH),
                    p,
                )
            })
            .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

/// A finished run's journal moves to `done/` (kept as a record).
pub fn archive(path: &Path) -> std::io::Result<PathBuf> {
    let done = crate::state::journal_dir().join("done");
    std::fs::create_dir_all(&done)?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let to = done.join(format!("{stamp}-{name}"));
    std::fs::rename(path, &to)?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed_at(step: usize) -> Journal {
        let mut run = RunbookRun::new(super::super::failover::SPEC, "p", "p");
        for s in run.steps.iter_mut().take(step) {
            *s = StepState::Done("ok".into());
        }
        run.steps[step] = StepState::Failed("canary lost".into());
        for a in run.attempts.iter_mut().take(step + 1) {
            *a = 1;
        }
        Journal::of(&run, Path::new("/nonexistent/c.toml"))
    }

    #[test]
    fn a_failed_precheck_ends_the_run_and_is_not_held_for_retry() {
        let mut run = RunbookRun::new(super::super::failover::SPEC, "p", "p");
        run.steps[0] = StepState::Failed("precheck failed: 1 failing now".into());
        run.attempts[0] = 1;
        assert!(!retryable(&run), "nothing was written: nothing to retry");
        assert!(run.finished());
    }

    #[test]
    fn a_failure_after_the_point_of_no_undo_stays_open_for_retry() {
        let j = failed_at(7);
        assert!(!j.finished(), "must stay open");
        let e = j.resume(false).unwrap_err();
        assert!(
            e.contains("step 8 failed: canary lost") && e.contains("--retry"),
            "{e}"
        );
        let run = j.resume(true).unwrap();
        assert_eq!(run.next_step(), Some(7));
    }

    #[test]
    fn a_forward_only_run_stays_open_for_retry_after_a_write() {
        let spec = super::super::hard_failover::REINTEGRATE;
        let mut run = RunbookRun::new(spec, "p", "p");
        for s in run.steps.iter_mut().take(5) {
            *s = StepState::Done("ok".into());
        }
        run.steps[5] = StepState::Failed("the old master's Cyrus is not running".into());
        for a in run.attempts.iter_mut().take(6) {
            *a = 1;
        }
        assert!(
            retryable(&run),
            "reintegrate has no undo: resumed, never ended"
        );
        // its first (writing) step failing before anything was attempted
        let mut fresh = RunbookRun::new(spec, "p", "p");
        fresh.steps[0] = StepState::Failed("unreachable".into());
        assert!(!retryable(&fresh));
    }

    #[test]
    fn a_failure_that_was_undone_ends_the_run() {
        let mut j = failed_at(2);
        j.undo = UndoState::Done("undone".into());
        assert!(j.finished());
        assert!(j.resume(true).unwrap().finished());
    }

    #[test]
    fn an_undo_cut_short_resumes_as_an_undo_never_forward() {
        let mut j = failed_at(2);
        j.undo = UndoState::Running("step 3 failed".into());
        let back: Journal = serde_json::from_slice(&serde_json::to_vec(&j).unwrap()).unwrap();
        assert!(!back.finished(), "an undo in progress keeps the run open");
        let r = back.resume(true).unwrap();
        assert_eq!(
            r.next_step(),
            None,
            "no forward step while an undo is pending"
        );
        assert!(r.undo.pending());
        assert_eq!(r.run_id, j.run_id);
    }

    #[test]
    fn a_step_running_at_the_crash_runs_again() {
        let mut run = RunbookRun::new(super::super::failover::SPEC, "p", "p");
        run.steps[0] = StepState::Done("ok".into());
        run.steps[1] = StepState::Running;
        run.attempts[1] = 1;
        let j = Journal::of(&run, Path::new("c.toml"));
        let back: Journal = serde_json::from_slice(&serde_json::to_vec(&j).unwrap()).unwrap();
        let r = back.resume(false).unwrap();
        assert_eq!((r.next_step(), r.attempts[1]), (Some(1), 1));
    }
}
