//! What the old master holds that the new master does not, after a hard
//! failover: the read-only report reintegrate acts on.
//!
//! Compared per mailbox by GUID (never by counts: split brain can leave
//! LAST_UID, HIGHESTMODSEQ and counts equal while the messages differ):
//! - only on the old master: its mailboxes (and users) the new one lacks,
//!   its live messages whose GUID the new master has neither live nor
//!   expunged in that mailbox (expunged on the new master = deleted there
//!   after the promotion: a deletion, not a loss);
//! - clashes: the same UID holding different GUIDs (Cyrus gives both new
//!   UIDs when it syncs the mailbox: the "easy" UID policy; soft_uid.rs
//!   keeps the new master's where the owner saw it);
//! - what the old master's leftover sync log still lists (never replicated).
//!
//! The users to copy back are those with any of these; `must_survive` is
//! every live GUID of their mailboxes on either host, verified on the new
//! master before replication starts.

use crate::cyrus::index::IndexRecord;
use crate::cyrus::inventory::{Inventory, MailboxRecords};
use crate::cyrus::names::owner_of;
use crate::cyrus::synclog::parse_entry;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One same-UID, different-GUID pair.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clash {
    pub mailbox: String,
    pub uid: u32,
    pub old_guid: String,
    pub new_guid: String,
    /// The UIDs the old and the new master's message carry after the
    /// copy-back, read back on the new master by the verify step.
    #[serde(default)]
    pub uids_now: Option<(u32, u32)>,
    /// The UID was shown to the mailbox's owner on that side: at or below
    /// the mailbox's RECENTUID there (an owner's SELECT raises it), or the
    /// message has `\Seen` there. Other users' seen state (seen.db) and
    /// EXAMINE-only or POP sessions are not counted. Which side's UID a
    /// "soft" UID policy would keep.
    #[serde(default)]
    pub seen_on_old: bool,
    #[serde(default)]
    pub seen_on_new: bool,
}

impl Clash {
    /// Where the clashing UID was shown to the owner, in a word or two:
    /// `old master`, `new master`, `both`, `neither`.
    pub fn shown_side(&self) -> &'static str {
        match (self.seen_on_old, self.seen_on_new) {
            (true, true) => "both",
            (true, false) => "old master",
            (false, true) => "new master",
            (false, false) => "neither",
        }
    }

    /// On which side the clashing UID was shown to the owner, in words.
    pub fn shown_on(&self, old: &str, new: &str) -> String {
        match (self.seen_on_old, self.seen_on_new) {
            (true, true) => format!("shown to the owner on {old} and on {new}"),
            (true, false) => format!("shown to the owner on {old} only"),
            (false, true) => format!("shown to the owner on {new} only"),
            (false, false) => "shown to the owner on neither host".into(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Divergence {
    /// Users whose INBOX exists only on the old master.
    pub users_only_on_old: Vec<String>,
    /// Mailboxes (external names) only on the old master.
    pub mailboxes_only_on_old: Vec<String>,
    /// (mailbox, uid, guid) live only on the old master.
    pub messages_only_on_old: Vec<(String, u32, String)>,
    pub clashes: Vec<Clash>,
    /// Messages the new master took since the promotion (only there).
    pub new_on_new_master: usize,
    /// Messages live on the old master but expunged on the new one.
    pub deleted_on_new_master: usize,
    /// Distinct entries of the old master's leftover sync log, and the
    /// users they name.
    pub old_queue_entries: usize,
    pub old_queue_users: Vec<String>,
    /// Distinct entries of that log not listed (the inventory cuts a
    /// channel's list): their users are copied only if they differ, which
    /// the survey finds by comparing both hosts anyway.
    #[serde(default)]
    pub old_queue_not_listed: u64,
    /// Users to copy back (sync from the old master, user by user).
    pub users_to_copy: Vec<String>,
    /// Mailboxes without an owner to copy back (`sync_client -m`, internal
    /// names): shared folders, in a virtual domain too.
    #[serde(default)]
    pub mailboxes_to_copy: Vec<String>,
    /// mailbox (external) -> every live GUID of it on either host, for the
    /// users copied back: each must be on the new master afterwards.
    pub must_survive: BTreeMap<String, BTreeSet<String>>,
    /// Mailboxes that could not be read on either side.
    pub unreadable: Vec<String>,
    /// Who owns each mailbox (external name) listed above: the user
    /// `sync_client -u` takes.
    #[serde(default)]
    pub owners: BTreeMap<String, String>,
}

impl Divergence {
    /// Lines for the operator (the runbook's output, the audit note).
    pub fn describe(&self, old: &str, new: &str) -> Vec<String> {
        let mut v = vec![format!(
            "  only on {old}: {} user(s), {} mailbox(es), {} message(s); {} same-UID clash(es); \
             {} message(s) new on {new}; {} deleted on {new} since",
            self.users_only_on_old.len(),
            self.mailboxes_only_on_old.len(),
            self.messages_only_on_old.len(),
            self.clashes.len(),
            self.new_on_new_master,
            self.deleted_on_new_master
        )];
        v.push(format!(
            "  {old}'s leftover sync log: {} entr(ies), users {:?}",
            self.old_queue_entries, self.old_queue_users
        ));
        if self.old_queue_not_listed > 0 {
            v.push(format!(
                "  {old}'s leftover sync log: {} more entr(ies) not listed (too long to read whole); what they changed differs and is copied as found",
                self.old_queue_not_listed
            ));
        }
        for u in &self.users_only_on_old {
            v.push(format!("  user only on {old}: {u}"));
        }
        for m in &self.mailboxes_only_on_old {
            v.push(format!("  mailbox only on {old}: {m}"));
        }
        for (m, uid, g) in &self.messages_only_on_old {
            v.push(format!("  message only on {old}: {m} UID {uid} GUID {g}"));
        }
        for c in &self.clashes {
            v.push(format!(
                "  GUID CONFLICT {} UID {}: {old} {} / {new} {} (both kept)",
                c.mailbox, c.uid, c.old_guid, c.new_guid
            ));
            v.push(format!("    UID {}: {}", c.uid, c.shown_on(old, new)));
        }
        for u in &self.unreadable {
            v.push(format!("  UNREADABLE: {u}"));
        }
        v.push(format!("  to copy back: users {:?}", self.users_to_copy));
        if !self.mailboxes_to_copy.is_empty() {
            let ext: Vec<String> = self
                .mailboxes_to_copy
                .iter()
                .map(|m| crate::cyrus::names::external(m))
                .collect();
            v.push(format!("  to copy back: shared folders {ext:?}"));
        }
        v
    }
}

/// The user a mailbox's internal name belongs to, as `sync_client -u`
/// takes it (`^` back to `.`).
pub(crate) fn user_of(internal: &str) -> Option<String> {
    owner_of(internal).map(|u| u.replace('^', "."))
}

/// Records of both hosts, by uniqueid (inventory::parse_records).
pub type Records = BTreeMap<String, Result<MailboxRecords, String>>;

/// Mailboxes (internal names) whose records need not be read: live on both
/// hosts as the same mailbox (uniqueid) with index headers that agree on
/// everything replication keeps equal (UIDVALIDITY, LAST_UID,
/// HIGHESTMODSEQ, EXISTS, the sync CRCs): nothing of them can be only on
/// the old master or clash. The survey reads records for the rest only (a
/// site's mailboxes are mostly unchanged), as the check does.
pub fn unchanged(old: &Inventory, new: &Inventory) -> BTreeSet<String> {
    let new_by_name: BTreeMap<&str, &crate::cyrus::inventory::MailboxEntry> = new
        .mailboxes
        .iter()
        .filter(|m| !m.tombstone)
        .map(|m| (m.name.as_str(), m))
        .collect();
    old.mailboxes
        .iter()
        .filter(|o| !o.tombstone)
        .filter(|o| {
            let Some(n) = new_by_name.get(o.name.as_str()) else {
                return false;
            };
            match (&o.header, &n.header) {
                (Ok(a), Ok(b)) => {
                    o.uniqueid == n.uniqueid
                        && a.uidvalidity == b.uidvalidity
                        && crate::check::join::same_state(a, b)
                }
                _ => false,
            }
        })
        .map(|o| o.name.clone())
        .collect()
}

/// Pure: inventories and records of both hosts -> the report. `channel`
/// selects the old master's leftover queue.
pub fn classify(
    old: &Inventory,
    new: &Inventory,
    old_recs: &Records,
    new_recs: &Records,
    channel: &str,
) -> Divergence {
    let (o, n) = (live(old), live(new));
    let mut d = Divergence::default();
    let touched = compare_mailboxes(&o, &n, old_recs, new_recs, &mut d);
    let (mut copy, mut shared) = what_to_copy(&touched, &mut d);
    old_queue(old, &o, channel, &mut d, &mut copy, &mut shared);
    must_survive(old, new, old_recs, new_recs, &copy, &shared, &mut d);
    d.users_to_copy = copy.into_iter().collect();
    d.mailboxes_to_copy = shared.into_iter().collect();
    d
}

/// Live mailboxes (internal name -> uniqueid). A delayed-delete copy
/// (`DELETED.*`, each host's named by the second of its delete) is no
/// one's live mail: never copied back (its `sync_client -m` fails, site
/// lab), as the check never counts it.
fn live(inv: &Inventory) -> BTreeMap<String, String> {
    inv.mailboxes
        .iter()
        .filter(|m| !m.tombstone && !crate::model::conflicts::is_delayed_delete(&m.name))
        .map(|m| (m.name.clone(), m.uniqueid.clone()))
        .collect()
}

/// Every live mailbox of the old master against the new one's: what is
/// only on the old, the clashes; returns the mailboxes that differ.
fn compare_mailboxes(
    o: &BTreeMap<String, String>,
    n: &BTreeMap<String, String>,
    old_recs: &Records,
    new_recs: &Records,
    d: &mut Divergence,
) -> BTreeSet<String> {
    let mut touched: BTreeSet<String> = BTreeSet::new();
    for (name, oid) in o {
        let ext = crate::cyrus::names::external(name);
        let Some(Ok(or)) = old_recs.get(oid) else {
            if old_recs.contains_key(oid) {
                d.unreadable.push(format!("{ext} (old master)"));
            }
            continue;
        };
        match n.get(name) {
            None => {
                let local = crate::cyrus::names::split_domain(name).1;
                if local.matches('.').count() == 1 && local.starts_with("user.") {
                    if let Some(u) = user_of(name) {
                        d.users_only_on_old.push(u);
                    }
                }
                d.mailboxes_only_on_old.push(ext.clone());
                for r in &or.records {
                    d.messages_only_on_old
                        .push((ext.clone(), r.uid, r.guid.clone()));
                }
                touched.insert(name.clone());
            }
            Some(nid) => {
                let Some(Ok(nr)) = new_recs.get(nid) else {
                    if new_recs.contains_key(nid) {
                        d.unreadable.push(format!("{ext} (new master)"));
                    }
                    continue;
                };
                if compare_records(&ext, or, nr, d) {
                    touched.insert(name.clone());
                }
            }
        }
    }
    touched
}

/// One mailbox on both hosts: its clashes (same UID, two GUIDs) and the
/// messages only the old master has. True when anything differs.
fn compare_records(
    ext: &str,
    or: &MailboxRecords,
    nr: &MailboxRecords,
    d: &mut Divergence,
) -> bool {
    let new_live: BTreeMap<u32, &IndexRecord> = nr.records.iter().map(|r| (r.uid, r)).collect();
    let new_guids: BTreeSet<&str> = new_live.values().map(|r| r.guid.as_str()).collect();
    let new_expunged: BTreeSet<&str> = nr.expunged.iter().map(|(_, g)| g.as_str()).collect();
    let old_guids: BTreeSet<&str> = or.records.iter().map(|r| r.guid.as_str()).collect();
    let mut differs = false;
    for r in &or.records {
        if let Some(n) = new_live.get(&r.uid) {
            if n.guid != r.guid {
                d.clashes.push(Clash {
                    mailbox: ext.to_string(),
                    uid: r.uid,
                    old_guid: r.guid.clone(),
                    new_guid: n.guid.clone(),
                    uids_now: None,
                    seen_on_old: r.uid <= or.header.recentuid || r.seen(),
                    seen_on_new: n.uid <= nr.header.recentuid || n.seen(),
                });
                differs = true;
            }
        }
        if new_guids.contains(r.guid.as_str()) {
            continue;
        }
        if new_expunged.contains(r.guid.as_str()) {
            d.deleted_on_new_master += 1;
            continue;
        }
        d.messages_only_on_old
            .push((ext.to_string(), r.uid, r.guid.clone()));
        differs = true;
    }
    d.new_on_new_master += nr
        .records
        .iter()
        .filter(|r| !old_guids.contains(r.guid.as_str()))
        .count();
    differs
}

/// The users to sync and the shared folders to copy as mailboxes (a
/// shared folder has no user to sync), from the mailboxes that differ.
fn what_to_copy(
    touched: &BTreeSet<String>,
    d: &mut Divergence,
) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut copy: BTreeSet<String> = BTreeSet::new();
    let mut shared: BTreeSet<String> = BTreeSet::new();
    for name in touched {
        match user_of(name) {
            Some(u) => {
                d.owners
                    .insert(crate::cyrus::names::external(name), u.clone());
                copy.insert(u);
            }
            None => {
                shared.insert(name.clone());
            }
        }
    }
    (copy, shared)
}

/// The old master's leftover queue on `channel`: a user it names is synced
/// too (harmless when nothing differs, and its leftover entries are then
/// served); a shared folder it names that the old master has is copied.
fn old_queue(
    old: &Inventory,
    o: &BTreeMap<String, String>,
    channel: &str,
    d: &mut Divergence,
    copy: &mut BTreeSet<String>,
    shared: &mut BTreeSet<String>,
) {
    let mut queue_users = BTreeSet::new();
    let mut entries = BTreeSet::new();
    for (c, line) in &old.pending {
        if c != channel {
            continue;
        }
        entries.insert(line.clone());
        let Some(e) = parse_entry(line) else { continue };
        match e.user() {
            Some(u) => {
                queue_users.insert(u.replace('^', "."));
            }
            // a shared folder the old master never replicated
            None => {
                if let Some(m) = e.internal_mailbox().filter(|m| o.contains_key(*m)) {
                    shared.insert(m.to_string());
                }
            }
        }
    }
    d.old_queue_entries = entries.len();
    d.old_queue_not_listed = old.pending_cut.get(channel).copied().unwrap_or(0);
    d.old_queue_users = queue_users.iter().cloned().collect();
    copy.extend(
        queue_users
            .into_iter()
            .filter(|u| o.keys().any(|m| user_of(m).as_deref() == Some(u.as_str()))),
    );
}

/// Every live GUID of the copied users' mailboxes (and the copied shared
/// folders) on the new master, and the old master's unless the new master
/// expunged it since: what verify proves is on the new master after.
fn must_survive(
    old: &Inventory,
    new: &Inventory,
    old_recs: &Records,
    new_recs: &Records,
    copy: &BTreeSet<String>,
    shared: &BTreeSet<String>,
    d: &mut Divergence,
) {
    let mut deleted_on_new: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (inv, recs, is_new) in [(new, new_recs, true), (old, old_recs, false)] {
        for m in inv.mailboxes.iter().filter(|m| !m.tombstone) {
            if !user_of(&m.name).is_some_and(|u| copy.contains(&u)) && !shared.contains(&m.name) {
                continue;
            }
            let Some(Ok(r)) = recs.get(&m.uniqueid) else {
                continue;
            };
            let ext = crate::cyrus::names::external(&m.name);
            if is_new {
                deleted_on_new
                    .entry(ext.clone())
                    .or_default()
                    .extend(r.expunged.iter().map(|(_, g)| g.clone()));
            }
            let gone = deleted_on_new.get(&ext);
            let keep = d.must_survive.entry(ext.clone()).or_default();
            for x in &r.records {
                if is_new || !gone.is_some_and(|g| g.contains(&x.guid)) || keep.contains(&x.guid) {
                    keep.insert(x.guid.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cyrus::index::{IndexHeader, IndexRecord};
    use crate::cyrus::inventory::MailboxEntry;

    fn entry(name: &str, id: &str) -> MailboxEntry {
        MailboxEntry {
            acl: Default::default(),
            name: name.into(),
            uniqueid: id.into(),
            partition: "default".into(),
            mbtype: "e".into(),
            tombstone: false,
            header: Ok(IndexHeader::default()),
        }
    }
    fn rec(uid: u32, g: char) -> IndexRecord {
        IndexRecord {
            uid,
            guid: std::iter::repeat_n(g, 40).collect(),
            modseq: 1,
            system_flags: 0,
            user_flags: [0; 4],
        }
    }
    fn recs(list: Vec<IndexRecord>, expunged: Vec<(u32, char)>) -> Result<MailboxRecords, String> {
        Ok(MailboxRecords {
            header: IndexHeader::default(),
            records: list,
            expunged: expunged
                .into_iter()
                .map(|(u, g)| (u, std::iter::repeat_n(g, 40).collect()))
                .collect(),
            flag_names: vec![],
            annotations: Ok(Default::default()),
        })
    }

    #[test]
    fn only_on_old_clashes_deletions_and_the_users_to_copy() {
        let old = Inventory {
            mailboxes: vec![
                entry("user.alice", "a"),
                entry("user.alice.Old", "ao"),
                entry("user.carol", "c"),
                entry("user.dave", "d"),
            ],
            pending: vec![
                ("".into(), "APPEND user.alice".into()),
                ("".into(), "MAILBOX user.eve".into()),
                ("other".into(), "USER zed".into()),
            ],
            pending_cut: Default::default(),
        };
        let new = Inventory {
            mailboxes: vec![
                entry("user.alice", "a"),
                entry("user.dave", "d"),
                entry("user.bob", "b"),
            ],
            ..Default::default()
        };
        let mut o = Records::new();
        // alice: 1 shared, 2 clashes (x on old, y on new), 3 only on old,
        // 4 deleted on the new master after the promotion
        o.insert(
            "a".into(),
            recs(
                vec![rec(1, '1'), rec(2, 'x'), rec(3, '3'), rec(4, '4')],
                vec![],
            ),
        );
        o.insert("ao".into(), recs(vec![rec(1, 'o')], vec![]));
        o.insert("c".into(), recs(vec![rec(1, 'c')], vec![]));
        o.insert("d".into(), recs(vec![rec(1, 'd')], vec![]));
        let mut n = Records::new();
        n.insert(
            "a".into(),
            recs(vec![rec(1, '1'), rec(2, 'y'), rec(5, '5')], vec![(4, '4')]),
        );
        // the owner SELECTed alice's INBOX on the new master since (its
        // RECENTUID covers UID 2); nobody was shown UID 2 on the old one
        if let Some(Ok(m)) = n.get_mut("a") {
            m.header.recentuid = 2;
        }
        n.insert("d".into(), recs(vec![rec(1, 'd'), rec(2, 'e')], vec![]));
        n.insert("b".into(), recs(vec![rec(1, 'b')], vec![]));
        let d = classify(&old, &new, &o, &n, "");
        assert_eq!(d.users_only_on_old, vec!["carol".to_string()]);
        assert_eq!(
            d.mailboxes_only_on_old,
            vec!["user/alice/Old".to_string(), "user/carol".into()]
        );
        assert_eq!(d.clashes.len(), 1);
        assert_eq!(d.clashes[0].uid, 2);
        assert_eq!(
            (d.clashes[0].seen_on_old, d.clashes[0].seen_on_new),
            (false, true)
        );
        let only: Vec<(String, u32)> = d
            .messages_only_on_old
            .iter()
            .map(|(m, u, _)| (m.clone(), *u))
            .collect();
        assert_eq!(
            only,
            vec![
                ("user/alice".to_string(), 2),
                ("user/alice".into(), 3),
                ("user/alice/Old".into(), 1),
                ("user/carol".into(), 1)
            ]
        );
        assert_eq!(d.deleted_on_new_master, 1);
        // dave: nothing only on old (the new master's extra message is new)
        assert_eq!(d.users_to_copy, vec!["alice".to_string(), "carol".into()]);
        assert_eq!(d.old_queue_entries, 2);
        assert_eq!(d.old_queue_users, vec!["alice".to_string(), "eve".into()]);
        // both clashing GUIDs, the old-only and the new ones must survive;
        // the one the new master expunged since need not
        let inbox = &d.must_survive["user/alice"];
        let guid = |g: char| std::iter::repeat_n(g, 40).collect::<String>();
        for g in ['1', 'x', 'y', '3', '5'] {
            assert!(inbox.contains(&guid(g)), "{g}");
        }
        assert!(!inbox.contains(&guid('4')));
        assert!(!d.must_survive.contains_key("user/dave"));
    }

    #[test]
    fn a_seen_flag_counts_as_shown_and_a_recentuid_below_the_clash_does_not() {
        let inv = Inventory {
            mailboxes: vec![entry("user.alice", "a")],
            ..Default::default()
        };
        let mut seen = rec(3, 'x');
        seen.system_flags = 1 << 4; // \Seen
        let mut o = Records::new();
        o.insert("a".into(), recs(vec![rec(1, '1'), seen], vec![]));
        let mut n = Records::new();
        n.insert("a".into(), recs(vec![rec(1, '1'), rec(3, 'y')], vec![]));
        if let Some(Ok(m)) = n.get_mut("a") {
            m.header.recentuid = 2;
        }
        let d = classify(&inv, &inv, &o, &n, "");
        let c = &d.clashes[0];
        assert_eq!((c.uid, c.seen_on_old, c.seen_on_new), (3, true, false));
        assert_eq!(c.shown_on("A", "B"), "shown to the owner on A only");
    }

    /// Issue 24: a shared folder and a virtual-domain user that only the
    /// old master held are copied back (before, only `user.*` was), and
    /// their GUIDs must survive; the unchanged mailbox is not read at all.
    #[test]
    fn shared_folders_and_domain_users_are_copied_back_too() {
        let old = Inventory {
            mailboxes: vec![
                entry("example.com!user.alice", "da"),
                entry("example.com!user.zed", "dz"),
                entry("shared.support", "ss"),
                entry("example.com!shared.sales", "sa"),
                entry("user.same", "sm"),
            ],
            pending: vec![("".into(), "APPEND example.com!shared.sales".into())],
            pending_cut: Default::default(),
        };
        let new = Inventory {
            mailboxes: vec![
                entry("example.com!user.alice", "da"),
                entry("example.com!shared.sales", "sa"),
                entry("user.same", "sm"),
            ],
            pending: vec![],
            pending_cut: Default::default(),
        };
        let same = unchanged(&old, &new);
        // equal headers (the fixture's default) and the same uniqueid
        assert!(same.contains("user.same"));
        let mut or = Records::new();
        or.insert("da".into(), recs(vec![rec(1, 'a'), rec(2, 'b')], vec![]));
        or.insert("dz".into(), recs(vec![rec(1, 'z')], vec![]));
        or.insert("ss".into(), recs(vec![rec(1, 's')], vec![]));
        or.insert("sa".into(), recs(vec![rec(1, 'q')], vec![]));
        let mut nr = Records::new();
        nr.insert("da".into(), recs(vec![rec(1, 'a')], vec![]));
        nr.insert("sa".into(), recs(vec![rec(1, 'q')], vec![]));
        let d = classify(&old, &new, &or, &nr, "");
        assert_eq!(
            d.users_to_copy,
            vec!["alice@example.com".to_string(), "zed@example.com".into()]
        );
        assert_eq!(d.users_only_on_old, vec!["zed@example.com".to_string()]);
        // shared.support only on old; the domain's shared folder named by
        // the old master's leftover queue
        assert_eq!(
            d.mailboxes_to_copy,
            vec![
                "example.com!shared.sales".to_string(),
                "shared.support".into()
            ]
        );
        let guid = |g: char| std::iter::repeat_n(g, 40).collect::<String>();
        assert!(d.must_survive["shared/support"].contains(&guid('s')));
        assert!(d.must_survive["shared/sales@example.com"].contains(&guid('q')));
        assert!(d.must_survive["user/alice@example.com"].contains(&guid('b')));
        assert!(!d.must_survive.contains_key("user/same"));
    }

    /// Site lab: a folder deleted on both hosts leaves a delayed-delete
    /// copy on each, named by the second of its delete, so each looks
    /// "only on" its host; reintegrate tried to copy the old master's back
    /// and failed. Not live mail: never copied.
    #[test]
    fn delayed_delete_copies_are_never_copied_back() {
        let old = Inventory {
            mailboxes: vec![
                entry("example.com!DELETED.plant.6B16A951", "p1"),
                entry("DELETED.user.bob.Sent.6B16A951", "p2"),
            ],
            ..Default::default()
        };
        let new = Inventory::default();
        let mut or = Records::new();
        or.insert("p1".into(), recs(vec![rec(1, 'a')], vec![]));
        or.insert("p2".into(), recs(vec![rec(1, 'b')], vec![]));
        let d = classify(&old, &new, &or, &Records::new(), "");
        assert!(d.mailboxes_only_on_old.is_empty(), "{d:?}");
        assert!(d.mailboxes_to_copy.is_empty(), "{d:?}");
        assert!(d.users_to_copy.is_empty(), "{d:?}");
        assert!(d.must_survive.is_empty(), "{d:?}");
    }
}
