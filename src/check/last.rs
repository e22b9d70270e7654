//! The last finished integrity check of each pair, on disk: `cyrdeck check`
//! writes `last-check-<pair>.json` (when it ran, differences counted by
//! kind) into cyrdeck's state directory, the one holding the runbook
//! journals (`$XDG_STATE_HOME/cyrdeck`); `supervise` reads it for the
//! metrics, so "when did a check last prove the pair identical" can be
//! alerted on. Only a whole-pair check that finished is recorded: a check
//! scoped to one user or mailbox says nothing about the rest of the pair,
//! and a check that could not run writes nothing (the old record stays and
//! ages). Written to a temporary file, synced, then renamed.

use crate::config::Config;
use std::path::{Path, PathBuf};

pub use crate::model::last_check::LastCheck;

/// A pair as its saved state is keyed: its name, and what it is (the
/// config file and its hosts' SSH targets), so another config's pair of
/// the same name (a test lab's `lab` beside the demo's) is never read as
/// this one (issue 30, item 4). The hosts are sorted: a failover swaps
/// roles, not the pair, and identical is symmetric.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairRef {
    pub name: String,
    pub key: String,
}

impl PairRef {
    pub fn of(cfg: &Config, name: &str) -> PairRef {
        let file = std::fs::canonicalize(&cfg.file).unwrap_or_else(|_| cfg.file.clone());
        let mut hosts: Vec<String> = cfg
            .pairs
            .get(name)
            .map(|p| {
                std::iter::once(&p.master)
                    .chain(p.replicas.iter().map(|r| &r.host))
                    .map(|h| {
                        cfg.hosts
                            .get(h)
                            .map(|c| c.target.to_string())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        hosts.sort();
        PairRef {
            name: name.to_string(),
            key: format!("{} {name}: {}", file.display(), hosts.join(" ")),
        }
    }

    /// Every pair of the config.
    pub fn all(cfg: &Config) -> Vec<PairRef> {
        cfg.pairs.keys().map(|p| PairRef::of(cfg, p)).collect()
    }
}

/// `DIR/last-check-<pair>-<16 hex of the key>.json`; characters other than
/// ASCII letters, digits, `-` and `.` become `_` (the record names its pair
/// and key, so two that map to one file name are told apart on load).
pub fn path(dir: &Path, pair: &str, key: &str) -> PathBuf {
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
    dir.join(format!("last-check-{safe}-{:016x}.json", fnv1a(key)))
}

/// FNV-1a, 64 bits: a stable file name for a key (not a secret).
fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn save(dir: &Path, rec: &LastCheck) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = path(dir, &rec.pair, &rec.key);
    let bytes = serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?;
    crate::state::write_atomic(&path, &bytes, None)?;
    Ok(path)
}

/// Save a whole-pair check of `pair` (a scoped one says nothing about the
/// rest of the pair; the caller decides). Every whole-pair check is saved:
/// the CLI's, the console's, a failover's final check.
pub fn record(cfg: &Config, r: &crate::model::conflicts::CheckResult) -> std::io::Result<PathBuf> {
    let mut rec = LastCheck::of(r);
    rec.key = PairRef::of(cfg, &r.pair).key;
    save(&crate::state::dir(), &rec)
}

/// The pair's record, if there is a readable one that names this pair and key.
pub fn load(dir: &Path, pair: &PairRef) -> Option<LastCheck> {
    let bytes = std::fs::read(path(dir, &pair.name, &pair.key)).ok()?;
    serde_json::from_slice::<LastCheck>(&bytes)
        .ok()
        .filter(|r| r.pair == pair.name && r.key == pair.key)
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
    fn save_then_load_and_the_pair_and_its_key_must_match() {
        let d = scratch("roundtrip");
        let mut rec = LastCheck::of(&CheckResult {
            pair: "a/b".into(),
            finished_at: 7,
            ..Default::default()
        });
        rec.key = "/etc/cyrdeck.toml a/b: root@m:22 root@r:22".into();
        let p = save(&d, &rec).unwrap();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("last-check-a_b-") && name.ends_with(".json"),
            "{name}"
        );
        let me = PairRef {
            name: "a/b".into(),
            key: rec.key.clone(),
        };
        assert_eq!(load(&d, &me), Some(rec.clone()));
        // another config's pair of the same name: not its record
        let other = PairRef {
            key: "/var/tmp/lab/cyrdeck.toml a/b: root@127.0.0.1:24320".into(),
            ..me.clone()
        };
        assert_eq!(load(&d, &other), None);
        // same file name, other pair: not its record
        let renamed = PairRef {
            name: "a_b".into(),
            ..me.clone()
        };
        assert_eq!(load(&d, &renamed), None);
        // nothing left behind but the record
        let names: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        assert!(path(&d, "../x", "").starts_with(&d));
        let _ = std::fs::remove_dir_all(&d);
    }
}
