//! "Is it safe to fail over now?": THE rules, one function for the
//! console's verdict and the failover's precheck. Each side gathers the same
//! facts its own way (a PairStatus; fresh probes and the master's log) and
//! `rules` judges them, so both apply the same pending bound and the same
//! stuck rule. The console adds what only it has: the last check, and
//! whether entries logged since void it.

use super::conflicts::CheckResult;
use super::health::RECENT_SECS;
use super::human::{clock, secs};
use super::snapshot::PairStatus;
use super::snapshot::StuckEntry;
use crate::model::last_check::LastCheck;
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

/// One host as the rules see it.
#[derive(Clone, Debug)]
pub struct HostReadiness {
    pub name: String,
    pub reachable: bool,
    pub cyrus_running: bool,
    /// For a replica: does its sync_server answer?
    pub sync_server_answers: Option<bool>,
}

/// One channel (master -> replica) as the rules see it.
#[derive(Clone, Debug)]
pub struct ChannelFacts {
    pub master: String,
    pub replica: String,
    /// The rolling client's pid and whether it is stopped (SIGSTOP).
    pub client: Option<(u32, bool)>,
    pub pending: u64,
    /// Held files, described ("held-bob (4 entries)").
    pub held: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Facts {
    pub hosts: Vec<HostReadiness>,
    pub channels: Vec<ChannelFacts>,
    /// Users/mailboxes failing right now (see `failing_now`).
    pub failing: Vec<String>,
    pub max_pending: u64,
    /// Held entries are accepted (`failover --allow-held`).
    pub allow_held: bool,
}

/// A rule's outcome: whether it passes, and what it says either way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub ok: bool,
    pub what: String,
}

fn rule(ok: bool, what: String) -> Rule {
    Rule { ok, what }
}

/// The stuck rule: a user or mailbox blocks a failover while it keeps
/// failing now (an error within RECENT_SECS of `now`). One that failed
/// earlier and has healed since does not; held entries are their own rule.
pub fn failing_now(stuck: &[StuckEntry], now: i64) -> Vec<String> {
    let mut v: Vec<String> = stuck
        .iter()
        .filter(|s| s.attempts > 0 && s.last_seen.is_some_and(|t| now - t <= RECENT_SECS))
        .map(|s| s.subject().to_string())
        .collect();
    v.sort();
    v.dedup();
    v
}

/// Every rule, passing or not, in a stable order.
pub fn rules(f: &Facts) -> Vec<Rule> {
    let mut out = Vec::new();
    for h in &f.hosts {
        out.push(if !h.reachable {
            rule(false, format!("{} is unreachable", h.name))
        } else {
            rule(
                h.cyrus_running,
                format!(
                    "Cyrus {}running on {}",
                    if h.cyrus_running { "" } else { "NOT " },
                    h.name
                ),
            )
        });
        if let Some(a) = h.sync_server_answers.filter(|_| h.reachable) {
            out.push(rule(
                a,
                format!(
                    "sync_server {} on {}",
                    if a { "answers" } else { "does not answer" },
                    h.name
                ),
            ));
        }
    }
    for c in &f.channels {
        out.push(match c.client {
            None => rule(false, format!("no rolling client on {}", c.master)),
            Some((pid, true)) => rule(
                false,
                format!("rolling client {pid} on {} is stopped (SIGSTOP?)", c.master),
            ),
            Some((pid, false)) => rule(
                true,
                format!("rolling client {pid} running on {}", c.master),
            ),
        });
        out.push(rule(
            c.pending <= f.max_pending,
            format!(
                "{} entries pending to {} (bound {})",
                c.pending, c.replica, f.max_pending
            ),
        ));
        out.push(match (c.held.is_empty(), f.allow_held) {
            (true, _) => rule(true, format!("nothing held for {}", c.replica)),
            (false, allow) => rule(
                allow,
                format!(
                    "held for {}: {}{}",
                    c.replica,
                    c.held.join(", "),
                    if allow {
                        " (allowed by --allow-held)"
                    } else {
                        " (--allow-held to go on)"
                    }
                ),
            ),
        });
    }
    out.push(if f.failing.is_empty() {
        rule(true, "no user or mailbox failing now".into())
    } else {
        rule(
            false,
            format!(
                "{} failing now: {}",
                f.failing.len(),
                f.failing
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
    });
    out
}

impl Facts {
    /// What status knows of a pair, at `now` (the report's time).
    pub fn of_pair(pair: &PairStatus, now: i64) -> Facts {
        Facts {
            hosts: pair
                .hosts
                .iter()
                .map(|h| HostReadiness {
                    name: h.name.clone(),
                    reachable: h.reachable,
                    cyrus_running: h.master_running,
                    sync_server_answers: (h.role == "replica")
                        .then(|| h.sync_server.as_ref().map(|s| s.answered))
                        .flatten(),
                })
                .collect(),
            channels: pair
                .channels
                .iter()
                .map(|c| ChannelFacts {
                    master: c.master.clone(),
                    replica: c.replica.clone(),
                    client: c.client.pid.map(|p| (p, c.client.stopped())),
                    pending: c.queue.pending,
                    held: c
                        .queue
                        .held
                        .iter()
                        .map(|h| format!("{} ({} entries)", h.name, h.lines))
                        .collect(),
                })
                .collect(),
            failing: failing_now(&pair.stuck, now),
            max_pending: pair.failover_max_pending,
            allow_held: false,
        }
    }
}

/// What the verdict needs of a check: the console's own, or the one
/// `cyrdeck check` recorded (read at start, so the question is answered
/// with no key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckFacts {
    pub finished_at: i64,
    pub mailboxes: u64,
    pub divergences: u64,
    pub unreadable: u64,
    /// Read from `last-check-PAIR.json`, not run in this console.
    pub recorded: bool,
}

impl CheckFacts {
    pub fn in_sync(&self) -> bool {
        self.divergences == 0 && self.unreadable == 0
    }
}

impl From<&CheckResult> for CheckFacts {
    fn from(c: &CheckResult) -> Self {
        CheckFacts {
            finished_at: c.finished_at,
            mailboxes: c.mailboxes_checked,
            divergences: c.divergent().count() as u64,
            unreadable: c.errors.len() as u64,
            recorded: false,
        }
    }
}

impl From<&LastCheck> for CheckFacts {
    fn from(c: &LastCheck) -> Self {
        CheckFacts {
            finished_at: c.finished_at,
            mailboxes: c.mailboxes_checked,
            divergences: c.divergences,
            unreadable: c.unreadable,
            recorded: true,
        }
    }
}

/// Why the last check no longer proves the pair identical, if it does not:
/// a backlog that is not draining (the client stopped or stalled, nothing
/// drained over the window, or the oldest entry over RECENT_SECS old) means
/// the replica differs now, whatever the check found then. A trickle that
/// flows does not void it: a busy pair always has a few entries.
pub fn check_voided(pair: &PairStatus, check: &CheckFacts, now: i64) -> Option<String> {
    let age = (now - check.finished_at).max(0) as u64;
    // held entries are changes the replica has not got: whatever the check
    // found, the pair is not identical while they are held (issue 30, item 4)
    let held: Vec<String> = pair
        .channels
        .iter()
        .filter(|c| !c.queue.held.is_empty())
        .map(|c| format!("{} held file(s) for {}", c.queue.held.len(), c.replica))
        .collect();
    if !held.is_empty() {
        return Some(format!(
            "entries held by a quarantine ({}) have not reached the replica (check at {})",
            held.join(", "),
            clock(check.finished_at)
        ));
    }
    let backlog: u64 = pair
        .channels
        .iter()
        .filter(|c| c.queue.pending > 0)
        .filter(|c| {
            c.client.stopped()
                || !c.client.running
                || c.queue
                    .log_run_unchanged_secs
                    .is_some_and(|s| s >= super::health::LOG_RUN_STALL_SECS)
                || c.queue.drain_rate_per_sec.is_some_and(|r| r == 0.0)
                || c.queue
                    .oldest_pending_age_secs
                    .is_some_and(|a| a >= RECENT_SECS as u64)
        })
        .map(|c| c.queue.pending)
        .sum();
    (backlog > 0).then(|| {
        format!(
            "{backlog} entries pending and not draining (check at {}, {} ago)",
            clock(check.finished_at),
            secs(age as f64)
        )
    })
}

/// The console's verdict: the shared rules over what status knows, then
/// the last check (its age, and entries logged since it).
pub fn failover_readiness(pair: &PairStatus, check: Option<&CheckFacts>, now: i64) -> Readiness {
    let mut reasons: Vec<String> = rules(&Facts::of_pair(pair, now))
        .into_iter()
        .filter(|r| !r.ok)
        .map(|r| r.what)
        .collect();
    if let Some(c) = check.filter(|c| !c.in_sync()) {
        reasons.push(if c.divergences > 0 {
            format!("last check found {} difference(s)", c.divergences)
        } else {
            format!("last check could not read {} mailbox(es)", c.unreadable)
        });
    }
    // two rules (or two channels) can say the same words: once is enough
    let mut seen = std::collections::BTreeSet::new();
    reasons.retain(|r| seen.insert(r.clone()));
    if !reasons.is_empty() {
        return Readiness {
            verdict: Verdict::NotSafe,
            reasons,
        };
    }
    let unproven = match check {
        None => Some("no integrity check run yet".to_string()),
        Some(c) => check_voided(pair, c, now),
    };
    match unproven {
        Some(why) => Readiness {
            verdict: Verdict::Unproven,
            reasons: vec![why],
        },
        None => Readiness {
            verdict: Verdict::Safe,
            reasons: vec![],
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stuck(user: &str, last_seen: i64, attempts: u64) -> StuckEntry {
        StuckEntry {
            host: "m".into(),
            channel: None,
            user: Some(user.into()),
            mailbox: None,
            first_seen: Some(last_seen - 100),
            last_seen: Some(last_seen),
            attempts,
            last_error: "SYNCERROR".into(),
            held_file: None,
            held_entries: 0,
        }
    }

    fn facts(pending: u64, client: Option<(u32, bool)>, failing: Vec<String>) -> Facts {
        Facts {
            hosts: vec![HostReadiness {
                name: "r".into(),
                reachable: true,
                cyrus_running: true,
                sync_server_answers: Some(true),
            }],
            channels: vec![ChannelFacts {
                master: "m".into(),
                replica: "r".into(),
                client,
                pending,
                held: vec![],
            }],
            failing,
            max_pending: crate::model::health::DEFAULT_MAX_PENDING,
            allow_held: false,
        }
    }

    fn failed(f: &Facts) -> Vec<String> {
        rules(f)
            .into_iter()
            .filter(|r| !r.ok)
            .map(|r| r.what)
            .collect()
    }

    #[test]
    fn a_healed_user_does_not_block_one_failing_now_does() {
        let now = 10_000;
        let s = vec![stuck("bob", now - 300, 40), stuck("carol", now - 5, 3)];
        assert_eq!(failing_now(&s, now), vec!["carol".to_string()]);
        let f = facts(0, Some((7, false)), failing_now(&s, now));
        assert_eq!(failed(&f), vec!["1 failing now: carol"]);
    }

    #[test]
    fn one_pending_bound_and_a_stopped_client_blocks() {
        // the bound is the pair's (default 100,000), for console and precheck alike
        assert!(failed(&facts(1809, Some((7, false)), vec![])).is_empty());
        assert_eq!(
            failed(&facts(100_001, Some((7, false)), vec![])),
            vec!["100001 entries pending to r (bound 100000)"]
        );
        assert_eq!(
            failed(&facts(3, Some((7, true)), vec![])),
            vec!["rolling client 7 on m is stopped (SIGSTOP?)"]
        );
        assert_eq!(
            failed(&facts(3, None, vec![])),
            vec!["no rolling client on m"]
        );
    }

    #[test]
    fn held_entries_block_unless_allowed() {
        let mut f = facts(0, Some((7, false)), vec![]);
        f.channels[0].held = vec!["held-bob (4 entries)".into()];
        assert_eq!(
            failed(&f),
            vec!["held for r: held-bob (4 entries) (--allow-held to go on)"]
        );
        f.allow_held = true;
        assert!(failed(&f).is_empty());
    }
}
