//! The last finished integrity check of each pair, on disk: `cyrdeck check`
//! writes `last-check-<pair>.json` (when it ran, differences counted by
//! kind) into cyrdeck's state directory, the one holding the runbook
//! journals (`$XDG_STATE_HOME/cyrdeck`); `supervise` reads it for the
//! metrics, so "when did a check last prove the pair identical" can be
//! alerted on. Only a whole-pair check that finished is recorded: a check
//! scoped to one user or mailbox says nothing about the rest of the pair,
//! and a check that could not run writes nothing (the old record stays and
//! ages). Written to a temporary file, synced, then renamed.

use std::path::{Path, PathBuf};

pub use crate::model::last_check::LastCheck;

/// `DIR/last-check-<pair>.json`; characters other than ASCII letters,
/// digits, `-` and `.` become `_` (the record names its pair, so two pairs
/// that map to one file name are told apart on load).
pub fn path(dir: &Path, pair: &str) -> PathBuf {
    let safe: String = pair
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("last-check-{safe}.json"))
}

pub fn save(dir: &Path, rec: &LastCheck) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = path(dir, &rec.pair);
    let bytes = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
    crate::state::write_atomic(&path, &bytes, None)?;
    Ok(path)
}

/// The pair's record, if there is a readable one that names this pair.
pub fn load(dir: &Path, pair: &str) -> Option<LastCheck> {
    let bytes = std::fs::read(path(dir, pair)).ok()?;
    serde_json::from_slice::<LastCheck>(&bytes)
        .ok()
        .filter(|r| r.pair == pair)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conflicts::Difference;
    use crate::model::conflicts::{CheckResult, DiffKind};

    fn diff(kind: DiffKind) -> Difference {
        Difference {
            mailbox: "user/bob".into(),
            kind,
            uid: None,
            master: None,
            replica: None,
            detail: String::new(),
        }
    }

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("cyrdeck-last-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn counts_every_kind_and_divergences() {
        let r = CheckResult {
            pair: "main".into(),
            finished_at: 1_795_905_000,
            mailboxes_checked: 12,
            differences: vec![
                diff(DiffKind::FlagsDiffer),
                diff(DiffKind::FlagsDiffer),
                diff(DiffKind::InFlight),
            ],
            errors: vec![],
            mailboxes: vec![],
        };
        let rec = LastCheck::of(&r);
        assert_eq!(rec.exit_code, 1);
        assert_eq!(rec.divergences, 2);
        assert_eq!(rec.differences.len(), DiffKind::ALL.len());
        assert_eq!(rec.differences["flags_differ"], 2);
        assert_eq!(rec.differences["in_flight"], 1);
        assert_eq!(rec.differences["guid_conflict"], 0);
    }

    #[test]
    fn save_then_load_and_the_pair_must_match() {
        let d = scratch("roundtrip");
        let rec = LastCheck::of(&CheckResult {
            pair: "a/b".into(),
            finished_at: 7,
            ..Default::default()
        });
        let p = save(&d, &rec).unwrap();
        assert_eq!(p.file_name().unwrap(), "last-check-a_b.json");
        assert_eq!(load(&d, "a/b"), Some(rec));
        // same file name, other pair: not its record
        assert_eq!(load(&d, "a_b"), None);
        assert_eq!(load(&d, "nosuch"), None);
        // nothing left behind but the record
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        assert_eq!(path(&d, "../x"), d.join("last-check-.._x.json"));
        let _ = std::fs::remove_dir_all(&d);
    }
}
