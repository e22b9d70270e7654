//! "Is it safe to fail over now?" from what status knows: a verdict with
//! reasons. The failover runbook's prechecks build on the same rules.

use super::conflicts::CheckResult;
use super::snapshot::PairStatus;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Safe,
    NotSafe,
    /// Nothing blocks it, but the pair has not been proven identical.
    Unproven,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub verdict: Verdict,
    pub reasons: Vec<String>,
}

/// Queue depth above which a switchover would wait too long to drain.
pub const MAX_PENDING_FOR_FAILOVER: u64 = 1000;

pub fn failover_readiness(pair: &PairStatus, check: Option<&CheckResult>) -> Readiness {
    let mut reasons = Vec::new();
    for h in &pair.hosts {
        if !h.reachable {
            reasons.push(format!("{} is unreachable", h.name));
        } else if !h.master_running {
            reasons.push(format!("Cyrus is not running on {}", h.name));
        }
    }
    for c in &pair.channels {
        if !c.client.running {
            reasons.push(format!("no rolling sync_client to {}", c.replica));
        }
        if c.queue.pending > MAX_PENDING_FOR_FAILOVER {
            reasons.push(format!(
                "{} entries pending to {}",
                c.queue.pending, c.replica
            ));
        }
        if !c.queue.held.is_empty() {
            reasons.push(format!("held entries for {}", c.replica));
        }
    }
    for h in pair.hosts.iter().filter(|h| h.role == "replica") {
        if h.sync_server.as_ref().is_some_and(|s| !s.answered) {
            reasons.push(format!("sync_server on {} does not answer", h.name));
        }
    }
    let stuck = pair.stuck.iter().filter(|s| s.held_entries == 0).count();
    if stuck > 0 {
        reasons.push(format!("{stuck} stuck user(s)/mailbox(es)"));
    }
    match check {
        Some(c) if !c.in_sync() => reasons.push(format!(
            "last check found {} difference(s)",
            c.divergent().count()
        )),
        _ => {}
    }
    let verdict = if !reasons.is_empty() {
        Verdict::NotSafe
    } else if check.is_none() {
        reasons.push("no integrity check run yet".to_string());
        Verdict::Unproven
    } else {
        Verdict::Safe
    };
    Readiness { verdict, reasons }
}
