//! Fault injection for the runbook fault matrix (tests/fault_matrix.rs,
//! scripts/matrix.sh). Inert unless `CYRDECK_FAULT=STEP:KIND` is set
//! (STEP 1-based):
//! - `kill-before`: SIGKILL this cyrdeck once the step is journalled as
//!   running, before its remote action;
//! - `kill-after`: SIGKILL it after the step's remote action returned,
//!   before its result is journalled;
//! - `exec`: run `CYRDECK_FAULT_CMD` (sh -c) just before the step's remote
//!   action (the harness stops a host's sshd or Cyrus there).
//!
//! The process dies the way a crash or `kill -9` kills it: no cleanup runs.

/// Where in a step the engine asks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Point {
    BeforeRemote,
    AfterRemote,
}

fn wanted(step_idx: usize) -> Option<String> {
    let v = std::env::var("CYRDECK_FAULT").ok()?;
    let (step, kind) = v.split_once(':')?;
    (step.trim().parse::<usize>().ok()? == step_idx + 1).then(|| kind.trim().to_string())
}

pub fn at(step_idx: usize, point: Point) {
    let Some(kind) = wanted(step_idx) else {
        return;
    };
    match (kind.as_str(), point) {
        ("kill-before", Point::BeforeRemote) | ("kill-after", Point::AfterRemote) => {
            eprintln!("fault injection: SIGKILL at step {} ({kind})", step_idx + 1);
            // SAFETY: signalling our own process
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
        ("exec", Point::BeforeRemote) => {
            let cmd = std::env::var("CYRDECK_FAULT_CMD").unwrap_or_default();
            eprintln!("fault injection: `{cmd}` before step {}", step_idx + 1);
            let _ = std::process::Command::new("sh").args(["-c", &cmd]).status();
        }
        _ => {}
    }
}

/// `CYRDECK_FAULT=write:kill-after-intent`: SIGKILL this cyrdeck once a
/// write's intent is in the audit log, before the command is sent (a crash
/// mid-command: the log must still tell).
pub fn after_audit_intent() {
    if std::env::var("CYRDECK_FAULT").is_ok_and(|v| v == "write:kill-after-intent") {
        eprintln!("fault injection: SIGKILL after the audit intent");
        // SAFETY: signalling our own process
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
