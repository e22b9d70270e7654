//! The record of a pair's last whole-pair check (what `cyrdeck check`
//! saves, check/last.rs, and the metrics and the failover readiness read).

use super::conflicts::{CheckResult, DiffKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastCheck {
    pub pair: String,
    /// What the pair is (check/last.rs `PairRef`): a record of another
    /// config's pair of the same name is not this pair's. Empty in records
    /// written before it was kept: those are never read as any pair's.
    #[serde(default)]
    pub key: String,
    /// When the check finished (epoch seconds).
    pub finished_at: i64,
    /// `check`'s exit code: 0 in sync, 1 differences, 2 mailboxes unreadable.
    pub exit_code: i32,
    pub mailboxes_checked: u64,
    /// Mailboxes that could not be read.
    pub unreadable: u64,
    /// Differences that are divergences (in-flight entries and delayed-delete
    /// purges excluded).
    pub divergences: u64,
    /// Every kind's label (`DiffKind::label`), zero included.
    pub differences: BTreeMap<String, u64>,
    /// The GUID conflicts: (mailbox, uid, master GUID, replica GUID), for
    /// `cyrdeck conflicts` and the console's Conflicts view.
    #[serde(default)]
    pub guid_conflicts: Vec<(String, u32, String, String)>,
}

impl LastCheck {
    pub fn of(r: &CheckResult) -> LastCheck {
        LastCheck {
            pair: r.pair.clone(),
            key: String::new(),
            finished_at: r.finished_at,
            exit_code: r.exit_code(),
            mailboxes_checked: r.mailboxes_checked,
            unreadable: r.errors.len() as u64,
            divergences: r.divergent().count() as u64,
            differences: DiffKind::ALL
                .iter()
                .map(|k| (k.label().to_string(), r.count(*k) as u64))
                .collect(),
            guid_conflicts: r
                .differences
                .iter()
                .filter(|d| d.kind == DiffKind::GuidConflict)
                .map(|d| {
                    let g = |s: &Option<crate::model::conflicts::MessageSide>| {
                        s.as_ref().map(|m| m.guid.clone()).unwrap_or_default()
                    };
                    (
                        d.mailbox.clone(),
                        d.uid.unwrap_or(0),
                        g(&d.master),
                        g(&d.replica),
                    )
                })
                .collect(),
        }
    }
}
