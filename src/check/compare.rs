//! Pure comparison of two hosts' mailbox inventories (level 1: per-mailbox
//! index header fields) and of two mailboxes' records (level 2: per
//! message UID, GUID, flags, modseq).

use crate::cyrus::index::IndexRecord;
use crate::cyrus::names::external;
use crate::model::conflicts::{DiffKind, Difference, MessageSide};
use std::collections::{BTreeMap, BTreeSet};

fn side(r: &IndexRecord, flag_names: &[String]) -> MessageSide {
    MessageSide {
        uid: r.uid,
        guid: r.guid.clone(),
        flags: r.flag_names(flag_names),
        modseq: r.modseq,
    }
}

/// One mailbox's records on both sides (expunged records already dropped)
/// -> per-message differences. If everything matches although level 1 saw
/// a difference, one `metadata_differs` entry says so (annotations, modseqs).
/// Details that tell a deletion from a copy that never arrived.
pub const EXPUNGED_ON_REPLICA: &str = "expunged on the replica";
pub const EXPUNGED_ON_MASTER: &str = "expunged on the master";

/// One side of a mailbox for level 2: live records, user-flag names, and
/// the expunged (uid, guid) pairs it still keeps.
pub struct Side<'a> {
    pub live: &'a [IndexRecord],
    pub flag_names: &'a [String],
    pub expunged: &'a [(u32, String)],
}

pub fn level2(mailbox: &str, master: Side, replica: Side) -> Vec<Difference> {
    let mm: BTreeMap<u32, &IndexRecord> = master.live.iter().map(|r| (r.uid, r)).collect();
    let rm: BTreeMap<u32, &IndexRecord> = replica.live.iter().map(|r| (r.uid, r)).collect();
    let uids: BTreeSet<u32> = mm.keys().chain(rm.keys()).copied().collect();
    let ext = external(mailbox);
    let mut out = Vec::new();
    for uid in uids {
        let a = mm.get(&uid).map(|r| side(r, master.flag_names));
        let b = rm.get(&uid).map(|r| side(r, replica.flag_names));
        let expunged_on = |s: &Side, m: &Option<MessageSide>| {
            m.as_ref()
                .is_some_and(|m| s.expunged.iter().any(|(u, g)| *u == m.uid && *g == m.guid))
        };
        let (kind, detail) = match (&a, &b) {
            (Some(_), None) if expunged_on(&replica, &a) => {
                (DiffKind::MissingOnReplica, EXPUNGED_ON_REPLICA.to_string())
            }
            (Some(_), None) => (DiffKind::MissingOnReplica, String::new()),
            (None, Some(_)) if expunged_on(&master, &b) => {
                (DiffKind::MissingOnMaster, EXPUNGED_ON_MASTER.to_string())
            }
            (None, Some(_)) => (DiffKind::MissingOnMaster, String::new()),
            (Some(x), Some(y)) if x.guid != y.guid => {
                (DiffKind::GuidConflict, "same UID, two GUIDs".to_string())
            }
            (Some(x), Some(y)) if x.flags != y.flags => {
                let only = |p: &MessageSide, q: &MessageSide| {
                    p.flags
                        .iter()
                        .filter(|f| !q.flags.contains(f))
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(" ")
                };
                let (om, or) = (only(x, y), only(y, x));
                let mut d = Vec::new();
                if !om.is_empty() {
                    d.push(format!("{om} only on master"));
                }
                if !or.is_empty() {
                    d.push(format!("{or} only on replica"));
                }
                (DiffKind::FlagsDiffer, d.join("; "))
            }
            _ => continue,
        };
        out.push(Difference {
            mailbox: ext.clone(),
            kind,
            uid: Some(uid),
            master: a,
            replica: b,
            detail,
        });
    }
    out
}

/// What pending entries name (a difference in a mailbox one names, or
/// whose user a USER/META entry names, is in flight), as sets: a backlog of many thousand entries
/// is looked up once per difference, not scanned.
#[derive(Default)]
pub struct PendingCover {
    mailboxes: std::collections::HashSet<String>,
    users: std::collections::HashSet<String>,
}

impl PendingCover {
    pub fn new(pending: &[crate::cyrus::synclog::SyncEntry]) -> Self {
        let mut c = PendingCover::default();
        for e in pending {
            if let Some(m) = e.external_mailbox() {
                c.mailboxes.insert(m);
            }
            if matches!(e.kind.as_str(), "USER" | "META") {
                if let Some(u) = e.user() {
                    c.users.insert(u);
                }
            }
        }
        c
    }

    pub fn covers(&self, mailbox_internal: &str) -> bool {
        self.mailboxes.contains(&external(mailbox_internal))
            || crate::cyrus::names::owner_of(mailbox_internal)
                .is_some_and(|o| self.users.contains(&o))
    }
}

#[cfg(test)]
mod tests {
    use super::super::join::level1;
    use super::*;
    use crate::cyrus::inventory::Inventory;

    fn covered(mailbox_internal: &str, pending: &[crate::cyrus::synclog::SyncEntry]) -> bool {
        PendingCover::new(pending).covers(mailbox_internal)
    }
    use crate::cyrus::index::IndexHeader;
    use crate::cyrus::inventory::MailboxEntry;

    fn hdr(uidvalidity: u32, last_uid: u32, modseq: u64, crc: u32) -> IndexHeader {
        IndexHeader {
            minor_version: 17,
            start_offset: 160,
            record_size: 112,
            num_records: last_uid,
            last_uid,
            uidvalidity,
            highestmodseq: modseq,
            exists: last_uid,
            sync_crc_basic: crc,
            sync_crc_annot: 12_345_678,
            recentuid: 0,
        }
    }

    fn mb(name: &str, h: Result<IndexHeader, String>, tombstone: bool) -> MailboxEntry {
        MailboxEntry {
            acl: Default::default(),
            name: name.into(),
            uniqueid: format!("u-{name}"),
            partition: "default".into(),
            mbtype: if tombstone { "ed".into() } else { "e".into() },
            tombstone,
            header: h,
        }
    }

    fn inv(v: Vec<MailboxEntry>) -> Inventory {
        Inventory {
            mailboxes: v,
            ..Default::default()
        }
    }

    /// Defect 13: a delayed-delete mailbox purged on one host only
    /// (`cyr_expire -D 0` on the master alone) is its own kind, not live
    /// divergence.
    #[test]
    fn delayed_delete_mailboxes_on_one_side_are_not_divergence() {
        let m = inv(vec![
            mb("DELETED.user.a.Trash.692E1A2B", Ok(hdr(1, 2, 3, 1)), false),
            mb(
                "example.com!DELETED.user.b.Old.692E1A2C",
                Ok(hdr(1, 2, 3, 1)),
                false,
            ),
            mb("user.a", Ok(hdr(1, 1, 1, 1)), false),
        ]);
        let r = inv(vec![mb("user.a", Ok(hdr(1, 1, 1, 1)), false)]);
        let l = level1(&m, &r, &|_| true);
        let kinds: Vec<DiffKind> = l.diffs.iter().map(|d| d.kind).collect();
        assert_eq!(kinds, vec![DiffKind::DeletedPurgedOnOneSide; 2]);
        assert!(l.diffs[0].detail.contains("only on the master"));
        let result = crate::model::conflicts::CheckResult {
            differences: l.diffs,
            ..Default::default()
        };
        assert!(result.in_sync(), "purge timing is not divergence");
        assert_eq!(result.exit_code(), 0);
    }

    #[test]
    fn level1_kinds_and_scope() {
        let m = inv(vec![
            mb("user.a", Ok(hdr(1, 5, 9, 7)), false),
            mb("user.a.Sent", Ok(hdr(1, 2, 3, 1)), false),
            mb("user.b", Ok(hdr(1, 2, 3, 1)), false),
            mb("user.c", Ok(hdr(1, 2, 3, 1)), false),
            mb("user.d.Gone", Err("x".into()), true),
            mb("user.e", Ok(hdr(1, 1, 1, 1)), false),
        ]);
        let r = inv(vec![
            mb("user.a", Ok(hdr(1, 5, 9, 8)), false), // same counts, other CRC: split brain
            mb("user.a.Sent", Ok(hdr(1, 2, 3, 1)), false),
            mb("user.b", Ok(hdr(2, 2, 3, 1)), false),
            mb("user.d.Gone", Ok(hdr(1, 1, 1, 1)), false),
            mb("user.e", Err("permission denied".into()), false),
        ]);
        let l = level1(&m, &r, &|_| true);
        assert_eq!(
            l.differing,
            vec!["user.a".to_string(), "user.b".to_string()]
        );
        let kinds: Vec<(DiffKind, &str)> = l
            .diffs
            .iter()
            .map(|d| (d.kind, d.mailbox.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (DiffKind::UidvalidityDiffers, "user/b"),
                (DiffKind::MailboxOnlyOnMaster, "user/c"),
                (DiffKind::MailboxOnlyOnReplica, "user/d/Gone"),
            ]
        );
        assert!(l.diffs[2].detail.contains("tombstone"));
        assert_eq!(l.unreadable.len(), 1);
        assert_eq!(l.compared, 4);
        let only_a = level1(&m, &r, &|n| n.starts_with("user.a"));
        assert_eq!(only_a.differing, vec!["user.a".to_string()]);
        assert!(only_a.diffs.is_empty());
    }

    fn rec(uid: u32, guid: char, flags: u32) -> IndexRecord {
        IndexRecord {
            uid,
            guid: guid.to_string().repeat(40),
            modseq: uid as u64,
            system_flags: flags,
            user_flags: [0; 4],
        }
    }

    #[test]
    fn level2_kinds() {
        let m = [
            rec(1, 'a', 0),
            rec(2, 'b', 0),
            rec(3, 'c', 16),
            rec(5, 'e', 0),
        ];
        let r = [
            rec(1, 'a', 0),
            rec(2, 'x', 0),
            rec(3, 'c', 0),
            rec(4, 'd', 0),
        ];
        let none: &[(u32, String)] = &[];
        let sd = |live| Side {
            live,
            flag_names: &[],
            expunged: none,
        };
        let d = level2("user.a", sd(&m), sd(&r));
        let kinds: Vec<(DiffKind, Option<u32>)> = d.iter().map(|d| (d.kind, d.uid)).collect();
        assert_eq!(
            kinds,
            vec![
                (DiffKind::GuidConflict, Some(2)),
                (DiffKind::FlagsDiffer, Some(3)),
                (DiffKind::MissingOnMaster, Some(4)),
                (DiffKind::MissingOnReplica, Some(5)),
            ]
        );
        assert_eq!(d[1].detail, "\\Seen only on master");
        assert!(level2("user.a", sd(&m), sd(&m)).is_empty());
        // a message the replica expunged (still in its index) says so
        let gone = [(5, "e".repeat(40))];
        let r2 = Side {
            live: &r,
            flag_names: &[],
            expunged: &gone,
        };
        let d = level2("user.a", sd(&m), r2);
        assert_eq!(d[3].detail, EXPUNGED_ON_REPLICA);
    }

    #[test]
    fn pending_entries_cover_their_mailbox_or_user() {
        let p: Vec<_> = ["APPEND user.a.Sent", "USER b"]
            .iter()
            .filter_map(|l| crate::cyrus::synclog::parse_entry(l))
            .collect();
        assert!(covered("user.a.Sent", &p));
        assert!(!covered("user.a", &p));
        assert!(covered("user.b.Trash", &p));
        assert!(!covered("user.c", &p));
    }
}
