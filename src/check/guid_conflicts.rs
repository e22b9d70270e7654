//! Every GUID conflict (same UID, two GUIDs) cyrdeck knows of, in one
//! shape for the console's Conflicts view and `cyrdeck conflicts --json`:
//! from the newest reintegrate report of each pair (what the copy-back
//! did: both messages renumbered, their new UIDs read back on the new
//! master by reintegrate's verify step) and from the last whole-pair check
//! (not acted on yet: `repair` renumbers both).

use super::last::LastCheck;
use crate::model::conflicts::{CheckResult, DiffKind};
use crate::ops::hard_failover::divergence::Divergence;
use serde::Serialize;
use std::path::Path;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GuidConflict {
    pub pair: String,
    /// `check` or `reintegrate RUNID`.
    pub source: String,
    pub mailbox: String,
    pub uid: u32,
    /// What the two sides are (`master`/`replica`, `old master`/`new master`).
    pub side_a: String,
    pub guid_a: String,
    pub side_b: String,
    pub guid_b: String,
    /// The UIDs the two messages carry now, once known (a GUID kept where
    /// it was keeps `uid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uids_now: Option<(u32, u32)>,
    /// What was done, in words.
    pub done: String,
    /// Where the clashing UID was shown to the mailbox's owner: `old
    /// master`, `new master`, `both` or `neither` (reintegrate reads both
    /// hosts' RECENTUID and `\Seen`; divergence.rs). Unknown for a check's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shown_to_owner: Option<String>,
}

/// The GUID conflicts of a check (kind GuidConflict).
pub fn from_check(c: &CheckResult) -> Vec<GuidConflict> {
    c.differences
        .iter()
        .filter(|d| d.kind == DiffKind::GuidConflict)
        .map(|d| {
            let g = |s: &Option<crate::model::conflicts::MessageSide>| {
                s.as_ref().map(|m| m.guid.clone()).unwrap_or_default()
            };
            conflict_of_check(
                &c.pair,
                &d.mailbox,
                d.uid.unwrap_or(0),
                g(&d.master),
                g(&d.replica),
            )
        })
        .collect()
}

/// The GUID conflicts a saved last check recorded.
pub fn from_last_check(l: &LastCheck) -> Vec<GuidConflict> {
    l.guid_conflicts
        .iter()
        .map(|(m, uid, a, b)| conflict_of_check(&l.pair, m, *uid, a.clone(), b.clone()))
        .collect()
}

fn conflict_of_check(pair: &str, mailbox: &str, uid: u32, a: String, b: String) -> GuidConflict {
    GuidConflict {
        pair: pair.to_string(),
        source: "check".into(),
        mailbox: mailbox.to_string(),
        uid,
        side_a: "master".into(),
        guid_a: a,
        side_b: "replica".into(),
        guid_b: b,
        uids_now: None,
        done: "nothing yet (repair renumbers both)".into(),
        shown_to_owner: None,
    }
}

/// The clashes of a reintegrate report and what the copy-back did.
pub fn from_report(pair: &str, run_id: &str, d: &Divergence) -> Vec<GuidConflict> {
    d.clashes
        .iter()
        .map(|c| GuidConflict {
            pair: pair.to_string(),
            source: format!("reintegrate {run_id}"),
            mailbox: c.mailbox.clone(),
            uid: c.uid,
            side_a: "old master".into(),
            guid_a: c.old_guid.clone(),
            side_b: "new master".into(),
            guid_b: c.new_guid.clone(),
            uids_now: c.uids_now,
            done: match c.uids_now {
                Some((a, b)) if a == c.uid || b == c.uid => {
                    format!("UID {} kept; the other now UID {}", c.uid, a.max(b))
                }
                Some((a, b)) => format!("both renumbered to UIDs {a}/{b}"),
                None => "reported; not copied back yet".into(),
            },
            shown_to_owner: Some(c.shown_side().into()),
        })
        .collect()
}

/// Every GUID conflict of `pairs` known in the state dir `dir`: the newest
/// reintegrate report's, then the last check's.
pub fn collect(dir: &Path, pairs: &[super::last::PairRef]) -> Vec<GuidConflict> {
    let mut out = Vec::new();
    for keyed in pairs {
        let pair = &keyed.name;
        if let Some((run, path)) = crate::state::newest_reintegrate_report(dir, pair) {
            if let Some(d) = std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Divergence>(&b).ok())
            {
                out.extend(from_report(pair, &run, &d));
            }
        }
        if let Some(l) = super::last::load(dir, keyed) {
            out.extend(from_last_check(&l));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::hard_failover::divergence::Clash;

    #[test]
    fn report_clashes_say_what_was_done() {
        let clash = |uid, now| Clash {
            mailbox: "user/a".into(),
            uid,
            old_guid: "o".repeat(40),
            new_guid: "n".repeat(40),
            uids_now: now,
            seen_on_old: false,
            seen_on_new: uid == 4,
        };
        let d = Divergence {
            clashes: vec![
                clash(4, Some((9, 10))),
                clash(5, Some((5, 11))),
                clash(6, None),
            ],
            ..Default::default()
        };
        let v = from_report("lab", "r1", &d);
        assert_eq!(v[0].done, "both renumbered to UIDs 9/10");
        assert_eq!(v[1].done, "UID 5 kept; the other now UID 11");
        assert_eq!(v[2].done, "reported; not copied back yet");
        assert_eq!(v[0].source, "reintegrate r1");
        assert_eq!(v[0].shown_to_owner.as_deref(), Some("new master"));
        assert_eq!(v[1].shown_to_owner.as_deref(), Some("neither"));
        let dir = std::env::temp_dir().join(format!("cyrdeck-gc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("reintegrate-lab-r1.json"),
            serde_json::to_vec(&d).unwrap(),
        )
        .unwrap();
        std::fs::write(dir.join("reintegrate-other-r2.json"), b"{}").unwrap();
        let lab = crate::check::last::PairRef {
            name: "lab".into(),
            key: String::new(),
        };
        let all = collect(&dir, &[lab]);
        assert_eq!(all.len(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
