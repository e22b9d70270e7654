//! What cyrdeck does by itself about a user that blocks replication, when
//! it runs with write access (console, `cyrdeck supervise`):
//! - a user already HELD (the operator quarantined it) whose new entries fail
//!   again is quarantined again at once: the held file grows instead of the
//!   whole queue stalling (new mail for a held user queues normally);
//! - with `auto_quarantine_secs = N` on the pair (off by default), a user
//!   failing with entries pending for N seconds in a row is quarantined.
//!
//! Deciding is pure (tested on constructed reports); acting runs the
//! quarantine runbook's writing steps in the background, audited like any
//! step. Nothing happens in observe mode (no write capability).

use super::registry::run_step;
use super::runbook::{RunbookRun, StepState};
use super::stuck;
use super::stuck::QuarantineStep;
use crate::config::Config;
use crate::model::health::RECENT_SECS;
use crate::model::snapshot::{PairStatus, StatusReport};
use crate::remote::HostConnection;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

/// After acting on a user, wait this long before judging it again (its
/// old error lines stay "recent" for RECENT_SECS).
const COOLDOWN_SECS: i64 = RECENT_SECS;

/// The autopilot's pair lock is a lease of this long: longer than its
/// bounded work (quarantine and unstick: each command at most 300 s, one
/// per channel and replica, three replicas at most: 30 minutes), so a live
/// supervise's never ends, and a dead one's frees the pair within an hour
/// (`runbook unlock` sooner).
pub const AUTOPILOT_LEASE_SECS: u64 = 3600;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub pair: String,
    pub user: String,
    pub why: String,
}

/// Per-user memory between refreshes.
#[derive(Default)]
pub struct Autopilot {
    failing_since: BTreeMap<(String, String), i64>,
    acted_at: BTreeMap<(String, String), i64>,
    running: Arc<Mutex<BTreeSet<(String, String)>>>,
    /// What the last actions did (newest last), for the report.
    pub outcomes: Arc<Mutex<Vec<String>>>,
}

/// Users of `p` failing right now (an error line in the last RECENT_SECS)
/// that still have entries in a queue; with whether they are held.
fn failing_with_pending(p: &PairStatus, now: i64) -> BTreeMap<String, bool> {
    let pending: BTreeSet<&str> = p
        .channels
        .iter()
        .flat_map(|c| c.queue.groups.iter().chain(c.queue.top.iter()))
        .filter_map(|g| g.user.as_deref())
        .collect();
    let held: BTreeSet<&str> = p
        .stuck
        .iter()
        .filter(|s| s.held_file.is_some())
        .filter_map(|s| s.user.as_deref())
        .collect();
    p.stuck
        .iter()
        .filter(|s| s.attempts > 0 && s.last_seen.is_some_and(|t| now - t <= RECENT_SECS))
        .filter_map(|s| s.user.as_deref())
        .filter(|u| pending.contains(u))
        .map(|u| (u.to_string(), held.contains(u)))
        .collect()
}

impl Autopilot {
    /// Who to quarantine now, given this refresh.
    pub fn decide(&mut self, cfg: &Config, report: &StatusReport) -> Vec<Decision> {
        let now = report.generated_at;
        let mut out = Vec::new();
        let mut seen = BTreeSet::new();
        for p in &report.pairs {
            let Some(pc) = cfg.pairs.get(&p.name) else {
                continue;
            };
            for (user, held) in failing_with_pending(p, now) {
                let key = (p.name.clone(), user.clone());
                seen.insert(key.clone());
                let since = *self.failing_since.entry(key.clone()).or_insert(now);
                let cooling = self
                    .acted_at
                    .get(&key)
                    .is_some_and(|t| now - t < COOLDOWN_SECS);
                if cooling {
                    continue;
                }
                let why = if held {
                    Some("held user failing again: new entries set aside too".to_string())
                } else {
                    pc.auto_quarantine
                        .filter(|after| now - since >= after.as_secs() as i64)
                        .map(|_| format!("failing with entries pending for {}s", now - since))
                };
                if let Some(why) = why {
                    self.acted_at.insert(key, now);
                    out.push(Decision {
                        pair: p.name.clone(),
                        user,
                        why,
                    });
                }
            }
        }
        self.failing_since.retain(|k, _| seen.contains(k));
        out
    }

    /// Decide, then run each decision's quarantine in the background (one
    /// at a time per user).
    pub fn act(
        &mut self,
        cfg: &Arc<Config>,
        conns: &BTreeMap<String, Arc<HostConnection>>,
        report: &StatusReport,
    ) {
        let writable = |pair: &str| {
            cfg.pairs.get(pair).is_some_and(|p| {
                conns
                    .get(&p.master)
                    .is_some_and(|c| c.write_capability().is_some())
            })
        };
        for d in self.decide(cfg, report) {
            if !writable(&d.pair) {
                continue;
            }
            let key = (d.pair.clone(), d.user.clone());
            if !self
                .running
                .lock()
                .map(|mut r| r.insert(key.clone()))
                .unwrap_or(false)
            {
                continue;
            }
            let (cfg, conns) = (cfg.clone(), conns.clone());
            let (running, outcomes) = (self.running.clone(), self.outcomes.clone());
            tokio::spawn(async move {
                let line = quarantine(&cfg, &conns, &d).await;
                if let Ok(mut o) = outcomes.lock() {
                    o.push(line);
                    let excess = o.len().saturating_sub(20);
                    o.drain(..excess);
                }
                if let Ok(mut r) = running.lock() {
                    r.remove(&key);
                }
            });
        }
    }
}

impl Autopilot {
    /// Wait (up to `limit`) for the actions in flight to finish, so a process
    /// that is about to exit does not cut a quarantine short.
    pub async fn settle(&self, limit: std::time::Duration) {
        let started = std::time::Instant::now();
        while started.elapsed() < limit && self.running.lock().is_ok_and(|r| !r.is_empty()) {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// The quarantine runbook's writing steps (quarantine, unstick if the queue
/// does not drain); one line saying what happened.
async fn quarantine(
    cfg: &Config,
    conns: &BTreeMap<String, Arc<HostConnection>>,
    d: &Decision,
) -> String {
    let mut run = RunbookRun::new(stuck::QUARANTINE, &d.pair, &d.user);
    let mut said = format!("auto-quarantine {} on {} ({}):", d.user, d.pair, d.why);
    // the pair lock, like every writing runbook: never beside a failover or
    // an operator's runbook
    let Some(pair) = cfg.pairs.get(&d.pair) else {
        return format!("{said} pair not configured");
    };
    // the user comes from the hosts' logs: hostile input like any other
    if let Err(e) = run.spec.check_target(&d.user) {
        return format!("{said} not done: {e}");
    }
    // a lease: nothing journals the autopilot's run, so a supervise killed
    // between acquire and release must not lock the pair for good
    let holder = super::pair_lock::Holder::new(&run.run_id, "autopilot quarantine", &d.pair)
        .with_lease(AUTOPILOT_LEASE_SECS);
    let mut out = Vec::new();
    let cx = super::StepContext::new(cfg, pair, &d.user, super::Actor::Autopilot, conns);
    if let Err(e) = super::pair_lock::acquire(&cx, &pair.master, &holder, &mut out).await {
        return format!("{said} not done: {}", e.message(&pair.master));
    }
    // the quarantine itself and its unstick; the evidence and the verify are
    // the operator's (the autopilot reports, it does not wait for a drain)
    for step in [QuarantineStep::Quarantine, QuarantineStep::Unstick] {
        let idx = step.index();
        run_step(cfg, conns, &mut run, idx).await;
        match &run.steps[idx] {
            StepState::Done(m) => said.push_str(&format!(" {m};")),
            StepState::Failed(e) | StepState::Refused(e) => {
                said.push_str(&format!(
                    " step {} {}: {e}",
                    idx + 1,
                    run.steps[idx].label()
                ));
                break;
            }
            other => {
                said.push_str(&format!(" step {} {}", idx + 1, other.label()));
                break;
            }
        }
    }
    if let Err(e) = super::pair_lock::release(&cx, &pair.master, &holder, &mut out).await {
        said.push_str(&format!(
            " (pair lock not released: {})",
            e.message(&pair.master)
        ));
    }
    said
}
