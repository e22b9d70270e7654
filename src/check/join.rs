//! Level 1 over two streams of mailboxes (one per host), joined by name as
//! they come: a mailbox is compared as soon as both hosts have listed it,
//! then dropped; only what differs is kept. Both hosts list their
//! mailboxes.db in its own key order (the same order for the same names),
//! and the driver reads the two streams in step ([`Join::ahead`]), so what
//! waits for its other half is bounded by the differences plus a small
//! slack, not by the number of mailboxes. The join itself does not rely on
//! any order: streams in different orders give the same answer, only with
//! more waiting entries. Pure: fed by `check::level1_streamed` from SSH and
//! by `compare::level1` from whole inventories.

use crate::cyrus::index::IndexHeader;
use crate::cyrus::inventory::Inventory;
use crate::cyrus::inventory::MailboxEntry;
use crate::cyrus::names::external;
use crate::model::conflicts::{is_delayed_delete, DiffKind, Difference};
use std::collections::HashMap;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Host {
    Master,
    Replica,
}

/// The join in progress.
pub struct Join<'a> {
    within: &'a (dyn Fn(&str) -> bool + Sync),
    list_names: bool,
    /// Entries (in scope) whose name the other host has not listed yet.
    waiting: [HashMap<String, MailboxEntry>; 2],
    taken: [u64; 2],
    peak_waiting: usize,
    compared: u64,
    /// (internal name, difference): sorted by name at the end.
    diffs: Vec<(String, Difference)>,
    unreadable: Vec<(String, (String, String))>,
    differing: Vec<(MailboxEntry, MailboxEntry)>,
    names: Vec<String>,
}

/// What the join found: level 1, the entries of the mailboxes level 2
/// reads, the master's live mailboxes (if asked) and how many entries
/// waited at most.
#[derive(Debug, Default, PartialEq)]
pub struct Joined {
    pub level1: Level1,
    /// (master, replica) entry of each `level1.differing` mailbox, same order.
    pub boxes: Vec<(MailboxEntry, MailboxEntry)>,
    /// The master's live mailboxes, internal names, sorted (empty unless
    /// asked for: the console's Tab completion).
    pub names: Vec<String>,
    pub peak_waiting: usize,
}

fn idx(h: Host) -> usize {
    match h {
        Host::Master => 0,
        Host::Replica => 1,
    }
}

fn diff(mailbox: &str, kind: DiffKind, detail: String) -> Difference {
    Difference {
        mailbox: external(mailbox),
        kind,
        uid: None,
        master: None,
        replica: None,
        detail,
    }
}

/// Headers agree on everything replication keeps equal.
pub(crate) fn same_state(a: &IndexHeader, b: &IndexHeader) -> bool {
    a.last_uid == b.last_uid
        && a.highestmodseq == b.highestmodseq
        && a.exists == b.exists
        && a.sync_crc_basic == b.sync_crc_basic
        && a.sync_crc_annot == b.sync_crc_annot
}

impl<'a> Join<'a> {
    /// `within` limits the comparison to names it accepts (a user or one
    /// mailbox); `list_names` keeps the master's live mailbox names.
    pub fn new(within: &'a (dyn Fn(&str) -> bool + Sync), list_names: bool) -> Self {
        Join {
            within,
            list_names,
            waiting: [HashMap::new(), HashMap::new()],
            taken: [0, 0],
            peak_waiting: 0,
            compared: 0,
            diffs: Vec::new(),
            unreadable: Vec::new(),
            differing: Vec::new(),
            names: Vec::new(),
        }
    }

    /// How many more entries `host` has handed in than the other host
    /// (negative: fewer). The driver reads the side behind.
    pub fn ahead(&self, host: Host) -> i64 {
        let (a, b) = (self.taken[idx(host)], self.taken[1 - idx(host)]);
        a as i64 - b as i64
    }

    /// Entries waiting for their other half now.
    pub fn waiting(&self) -> usize {
        self.waiting[0].len() + self.waiting[1].len()
    }

    /// The next mailbox `host` listed.
    pub fn push(&mut self, host: Host, e: MailboxEntry) {
        let i = idx(host);
        self.taken[i] += 1;
        if self.list_names && host == Host::Master && !e.tombstone {
            self.names.push(e.name.clone());
        }
        if !(self.within)(&e.name) {
            return;
        }
        match self.waiting[1 - i].remove(&e.name) {
            Some(other) => match host {
                Host::Master => self.matched(Some(e), Some(other)),
                Host::Replica => self.matched(Some(other), Some(e)),
            },
            None => {
                // a name listed twice: the last one counts
                self.waiting[i].insert(e.name.clone(), e);
                self.peak_waiting = self.peak_waiting.max(self.waiting());
            }
        }
    }

    /// Both streams ended: what is left waiting is on one host only.
    pub fn finish(mut self) -> Joined {
        let m = std::mem::take(&mut self.waiting[0]);
        let r = std::mem::take(&mut self.waiting[1]);
        for e in m.into_values() {
            self.matched(Some(e), None);
        }
        for e in r.into_values() {
            self.matched(None, Some(e));
        }
        // the order of the whole-inventory comparison: by internal name
        self.diffs.sort_by(|a, b| a.0.cmp(&b.0));
        self.unreadable.sort_by(|a, b| a.0.cmp(&b.0));
        self.differing.sort_by(|a, b| a.0.name.cmp(&b.0.name));
        self.names.sort();
        self.names.dedup();
        let level1 = Level1 {
            differing: self.differing.iter().map(|(m, _)| m.name.clone()).collect(),
            diffs: self.diffs.into_iter().map(|(_, d)| d).collect(),
            compared: self.compared,
            unreadable: self.unreadable.into_iter().map(|(_, u)| u).collect(),
        };
        Joined {
            level1,
            boxes: self.differing,
            names: self.names,
            peak_waiting: self.peak_waiting,
        }
    }

    /// One name, as each host has it (`None`: not listed there).
    fn matched(&mut self, m: Option<MailboxEntry>, r: Option<MailboxEntry>) {
        let live = |e: &Option<MailboxEntry>| e.as_ref().is_some_and(|e| !e.tombstone);
        let tomb = |e: &Option<MailboxEntry>| e.as_ref().is_some_and(|e| e.tombstone);
        let name = match (&m, &r) {
            (Some(e), _) | (None, Some(e)) => e.name.clone(),
            (None, None) => return,
        };
        let note = |other_tomb: bool| {
            if other_tomb {
                "the other side has it deleted (tombstone)".to_string()
            } else {
                String::new()
            }
        };
        let d = match (live(&m), live(&r)) {
            (true, false) | (false, true) if is_delayed_delete(&name) => diff(
                &name,
                DiffKind::DeletedPurgedOnOneSide,
                format!(
                    "delayed-delete mailbox only on the {}: purged on the other host by its own cyr_expire (not replicated, not live mail)",
                    if live(&m) { "master" } else { "replica" }
                ),
            ),
            (true, false) => diff(&name, DiffKind::MailboxOnlyOnMaster, note(tomb(&r))),
            (false, true) => diff(&name, DiffKind::MailboxOnlyOnReplica, note(tomb(&m))),
            (false, false) => return,
            (true, true) => {
                let (Some(a), Some(b)) = (m, r) else { return };
                self.compared += 1;
                let (ha, hb) = match (&a.header, &b.header) {
                    (Ok(x), Ok(y)) => (x, y),
                    (Err(e), _) => {
                        self.unreadable
                            .push((name.clone(), (external(&name), format!("master: {e}"))));
                        return;
                    }
                    (_, Err(e)) => {
                        self.unreadable
                            .push((name.clone(), (external(&name), format!("replica: {e}"))));
                        return;
                    }
                };
                if a.acl != b.acl {
                    let d = diff(&name, DiffKind::AclDiffers, acl_detail(&a.acl, &b.acl));
                    self.diffs.push((name.clone(), d));
                }
                if !a.uniqueid.is_empty() && !b.uniqueid.is_empty() && a.uniqueid != b.uniqueid {
                    let d = diff(
                        &name,
                        DiffKind::MailboxRecreated,
                        format!(
                            "mailbox uniqueid {} on master, {} on replica: deleted and created again on one side (UIDVALIDITY {} vs {})",
                            a.uniqueid, b.uniqueid, ha.uidvalidity, hb.uidvalidity
                        ),
                    );
                    self.diffs.push((name, d));
                    self.differing.push((a, b));
                } else if ha.uidvalidity != hb.uidvalidity {
                    let d = diff(
                        &name,
                        DiffKind::UidvalidityDiffers,
                        format!(
                            "UIDVALIDITY {} on master, {} on replica",
                            ha.uidvalidity, hb.uidvalidity
                        ),
                    );
                    self.diffs.push((name, d));
                    self.differing.push((a, b));
                } else if !same_state(ha, hb) {
                    self.differing.push((a, b));
                }
                return;
            }
        };
        self.diffs.push((name, d));
    }
}

/// Each identifier whose rights differ, with both sides' rights (`-`:
/// none there).
fn acl_detail(
    m: &std::collections::BTreeMap<String, String>,
    r: &std::collections::BTreeMap<String, String>,
) -> String {
    let ids: std::collections::BTreeSet<&String> = m.keys().chain(r.keys()).collect();
    ids.into_iter()
        .filter(|id| m.get(*id) != r.get(*id))
        .map(|id| {
            let side = |a: &std::collections::BTreeMap<String, String>| {
                a.get(id).cloned().unwrap_or_else(|| "-".into())
            };
            format!("{id}: master {}, replica {}", side(m), side(r))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Feed two whole streams through a join the way the SSH driver does (the
/// side behind first, at most `slack` entries ahead): for whole inventories
/// and tests.
pub fn join_all(
    master: impl IntoIterator<Item = MailboxEntry>,
    replica: impl IntoIterator<Item = MailboxEntry>,
    within: &(dyn Fn(&str) -> bool + Sync),
    list_names: bool,
) -> Joined {
    let mut j = Join::new(within, list_names);
    let (mut m, mut r) = (
        master.into_iter().peekable(),
        replica.into_iter().peekable(),
    );
    loop {
        let side = match (m.peek().is_some(), r.peek().is_some()) {
            (false, false) => break,
            (true, false) => Host::Master,
            (false, true) => Host::Replica,
            (true, true) if j.ahead(Host::Master) <= 0 => Host::Master,
            (true, true) => Host::Replica,
        };
        let e = match side {
            Host::Master => m.next(),
            Host::Replica => r.next(),
        };
        if let Some(e) = e {
            j.push(side, e);
        }
    }
    j.finish()
}

/// What level 1 found.
#[derive(Debug, Default, PartialEq)]
pub struct Level1 {
    /// Mailboxes (internal names) on both sides whose headers differ: they
    /// need level 2.
    pub differing: Vec<String>,
    /// Mailbox-level differences (one side only, UIDVALIDITY).
    pub diffs: Vec<Difference>,
    /// Live mailboxes compared.
    pub compared: u64,
    /// Mailboxes whose index could not be read, with why.
    pub unreadable: Vec<(String, String)>,
}

/// `within` limits the comparison to names it accepts (a user or one mailbox).
/// Whole inventories through the same join the streamed check uses.
pub fn level1(
    master: &Inventory,
    replica: &Inventory,
    within: &(dyn Fn(&str) -> bool + Sync),
) -> Level1 {
    join_all(
        master.mailboxes.iter().cloned(),
        replica.mailboxes.iter().cloned(),
        within,
        false,
    )
    .level1
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cyrus::inventory::{HeadersReader, HeadersTail};

    fn hdr(uidvalidity: u32, last_uid: u32, crc: u32) -> IndexHeader {
        IndexHeader {
            minor_version: 17,
            start_offset: 160,
            record_size: 112,
            num_records: last_uid,
            last_uid,
            uidvalidity,
            highestmodseq: last_uid as u64,
            exists: last_uid,
            sync_crc_basic: crc,
            sync_crc_annot: 0,
            recentuid: 0,
        }
    }

    fn mb(name: &str, h: IndexHeader) -> MailboxEntry {
        MailboxEntry {
            acl: Default::default(),
            name: name.into(),
            uniqueid: format!("u{}", name.replace(['.', '^', '!'], "")),
            partition: "default".into(),
            mbtype: "e".into(),
            tombstone: false,
            header: Ok(h),
        }
    }

    fn tomb(name: &str) -> MailboxEntry {
        MailboxEntry {
            acl: Default::default(),
            mbtype: "ed".into(),
            tombstone: true,
            header: Err("no index (deleted or intermediate)".into()),
            ..mb(name, hdr(1, 1, 1))
        }
    }

    /// `n` users of 5 mailboxes each, in mailboxes.db order.
    fn pair_of(n: usize) -> Vec<MailboxEntry> {
        (0..n)
            .flat_map(|u| {
                let root = format!("user.u{u:06}");
                ["", ".Archive", ".Drafts", ".Sent", ".Trash"]
                    .map(|f| mb(&format!("{root}{f}"), hdr(1, 3, u as u32)))
            })
            .collect()
    }

    fn all(_: &str) -> bool {
        true
    }

    #[test]
    fn sorted_streams_in_sync_keep_nothing() {
        let side = pair_of(2_000);
        let j = join_all(side.clone(), side, &all, false);
        assert_eq!(j.level1.compared, 10_000);
        assert!(j.level1.diffs.is_empty() && j.level1.differing.is_empty());
        assert!(j.boxes.is_empty() && j.names.is_empty());
        // read in step: one entry waits at a time
        assert!(j.peak_waiting <= 1, "{}", j.peak_waiting);
    }

    #[test]
    fn one_side_missing_a_mailbox() {
        let m = pair_of(1_000);
        let mut r = m.clone();
        // gone on the replica: a folder, a user's INBOX (a tombstone there),
        // a delayed-delete mailbox; only on the replica: one more folder
        r.retain(|e| e.name != "user.u000010.Sent" && e.name != "user.u000500");
        r.insert(2_500, tomb("user.u000500"));
        r.push(mb("user.u000999.Zeta", hdr(1, 1, 1)));
        let mut m = m;
        m.insert(7, mb("DELETED.user.u000001.Trash.5F00AA", hdr(1, 1, 1)));
        // and one whose header differs
        r[42].header = Ok(hdr(1, 4, 9));
        let want_differing = r[42].name.clone();
        let j = join_all(m.clone(), r.clone(), &all, true);
        let kinds: Vec<(DiffKind, &str, &str)> = j
            .level1
            .diffs
            .iter()
            .map(|d| (d.kind, d.mailbox.as_str(), d.detail.as_str()))
            .collect();
        assert_eq!(
            kinds,
            vec![
                (
                    DiffKind::DeletedPurgedOnOneSide,
                    "DELETED/user/u000001/Trash/5F00AA",
                    "delayed-delete mailbox only on the master: purged on the other host by its own cyr_expire (not replicated, not live mail)"
                ),
                (DiffKind::MailboxOnlyOnMaster, "user/u000010/Sent", ""),
                (
                    DiffKind::MailboxOnlyOnMaster,
                    "user/u000500",
                    "the other side has it deleted (tombstone)"
                ),
                (DiffKind::MailboxOnlyOnReplica, "user/u000999/Zeta", ""),
            ]
        );
        assert_eq!(j.level1.differing, vec![want_differing.clone()]);
        assert_eq!(j.boxes.len(), 1);
        assert_eq!(j.boxes[0].0.name, want_differing);
        assert_eq!(j.boxes[0].1.header, Ok(hdr(1, 4, 9)));
        assert_eq!(j.level1.compared, 5_000 - 2);
        // the master's live mailboxes, sorted (tombstones are not listed)
        assert_eq!(j.names.len(), 5_001);
        assert!(j.names.windows(2).all(|w| w[0] < w[1]));
        // what waits is the differences (and the shift they cause), not
        // the mailboxes
        assert!(j.peak_waiting <= 8, "{}", j.peak_waiting);
        // the same answer whatever order the streams come in
        let (mut m2, mut r2) = (m, r);
        m2.reverse();
        r2.rotate_left(1234);
        let k = join_all(m2, r2, &all, true);
        assert_eq!(k.level1, j.level1);
        assert_eq!(k.boxes, j.boxes);
        assert_eq!(k.names, j.names);
    }

    #[test]
    fn scope_limits_what_is_compared_not_the_names() {
        let m = pair_of(10);
        let r: Vec<_> = m
            .iter()
            .filter(|e| !e.name.ends_with("Sent"))
            .cloned()
            .collect();
        let only = |n: &str| n == "user.u000003" || n.starts_with("user.u000003.");
        let j = join_all(m, r, &only, true);
        assert_eq!(j.level1.compared, 4);
        assert_eq!(j.level1.diffs.len(), 1);
        assert_eq!(j.level1.diffs[0].mailbox, "user/u000003/Sent");
        assert_eq!(j.names.len(), 50);
    }

    /// A host's `headers` output as inventory.pl prints it.
    fn output(boxes: &[MailboxEntry]) -> String {
        let mut o = String::from("@@inventory 1\nL\t{\n");
        for (i, b) in boxes.iter().enumerate() {
            let comma = if i + 1 < boxes.len() { "," } else { "" };
            o.push_str(&format!(
                "L\t\"{}\": {{\"name\": \"{}\", \"mbtype\": \"{}\", \"partition\": \"default\", \"uniqueid\": \"{}\"}}{comma}\n",
                b.name, b.name, b.mbtype, b.uniqueid
            ));
            if let Ok(h) = &b.header {
                let mut raw = [0u8; 160];
                let mut put =
                    |off: usize, v: u32| raw[off..off + 4].copy_from_slice(&v.to_be_bytes());
                put(8, h.minor_version);
                put(12, h.start_offset);
                put(16, h.record_size);
                put(20, h.num_records);
                put(28, h.last_uid);
                put(44, h.uidvalidity);
                put(72, h.highestmodseq as u32);
                put(84, h.exists);
                put(100, h.sync_crc_basic);
                put(120, h.sync_crc_annot);
                let c = crate::cyrus::index::crc32(&raw[..156]);
                raw[156..].copy_from_slice(&c.to_be_bytes());
                let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                o.push_str(&format!("H\t{}\t{hex}\n", b.uniqueid));
            }
        }
        o.push_str("L\t}\n@@mboxlist_exit 0\nP\t\tAPPEND user.u000001\n@@end\n");
        o
    }

    /// Read an output in pieces of `step` bytes (lines cut anywhere).
    fn read(out: &str, step: usize) -> Result<(Vec<MailboxEntry>, HeadersTail), String> {
        let mut r = HeadersReader::default();
        let mut boxes = Vec::new();
        for piece in out.as_bytes().chunks(step) {
            r.push(piece, &mut boxes)?;
        }
        let tail = r.finish(&mut boxes)?;
        Ok((boxes, tail))
    }

    #[test]
    fn streams_cut_anywhere_read_the_same() {
        let mut side = pair_of(30);
        side.insert(3, tomb("user.u000000.Old"));
        let out = output(&side);
        let (whole, tail) = read(&out, out.len()).unwrap();
        assert_eq!(whole.len(), 151);
        assert_eq!(
            tail.pending,
            vec![(String::new(), "APPEND user.u000001".into())]
        );
        assert!(whole[3].tombstone && whole[3].header.is_err());
        for step in [1, 2, 7, 64, 4096] {
            let (cut, t2) = read(&out, step).unwrap();
            assert_eq!(cut, whole, "pieces of {step}");
            assert_eq!(t2, tail);
        }
        // both hosts' streams joined: the parsed headers agree
        let j = join_all(whole.clone(), whole, &all, false);
        assert_eq!(j.level1.compared, 150);
        assert!(j.level1.diffs.is_empty() && j.level1.unreadable.is_empty());
    }

    #[test]
    fn garbage_on_either_side_is_a_clear_error() {
        let good = output(&pair_of(3));
        let cases: Vec<(String, &str)> =
            vec![
            ("Permission denied\n".into(), "does not start with its header"),
            (String::new(), "does not start with its header"),
            (
                "@@inventory 1\n@@error cannot read /etc/imapd.conf: No such file\n@@end\n".into(),
                "cannot read /etc/imapd.conf",
            ),
            (good[..good.len() / 2].to_string(), "truncated (no @@end)"),
            (
                good.replace("\"user.u000001.Sent\": {", "\"user.u000001.Sent\" {"),
                "ctl_mboxlist -d output unreadable: line",
            ),
            (
                good.replace("@@mboxlist_exit 0", "@@mboxlist_exit 75"),
                "ctl_mboxlist -d failed (exit Some(75)): {",
            ),
            (
                good.replacen("H\tuuseru000000\t", "H\tuuseru000000 ", 1),
                "bad header line",
            ),
            (
                "@@inventory 1\n\u{0}\u{1}\u{ff}binary\nL\t\u{7f}{{{\n@@mboxlist_exit 0\n@@end\n"
                    .into(),
                "ctl_mboxlist -d output unreadable",
            ),
        ];
        for (out, want) in &cases {
            for step in [1, 5, out.len().max(1)] {
                let e = read(out, step).expect_err(want);
                assert!(e.contains(want), "{want:?} not in {e:?} (pieces of {step})");
            }
        }
        // a header line naming another mailbox than the one just listed
        // does not attach to it
        let odd = good.replacen("H\tuuseru000000\t", "H\tsomeoneelse\t", 1);
        let (boxes, _) = read(&odd, 3).unwrap();
        assert_eq!(boxes[0].header, Err("no index header read".into()));
        assert!(boxes[1].header.is_ok());
    }

    /// Issue 25: the replica let bob read B's mail and the check said only
    /// "metadata differs"; a mailbox deleted and created again on one side
    /// read as a UIDVALIDITY difference. Each now names what differs.
    #[test]
    fn an_acl_and_a_recreated_mailbox_are_named_with_both_sides() {
        let h = hdr(7, 3, 9);
        let mut ma = mb("user.b", h.clone());
        ma.acl.insert("b".into(), "lrswipkxtecdan".into());
        let mut ra = ma.clone();
        ra.acl.insert("bob".into(), "lrs".into());
        let mr = mb("user.c", h.clone());
        let mut rr = mr.clone();
        rr.uniqueid = "other".into();
        rr.header = Ok(hdr(8, 1, 2));
        let j = join_all(vec![ma, mr], vec![ra, rr], &|_| true, false);
        let kinds: Vec<(DiffKind, &str)> = j
            .level1
            .diffs
            .iter()
            .map(|d| (d.kind, d.detail.as_str()))
            .collect();
        assert_eq!(kinds.len(), 2, "{kinds:?}");
        assert_eq!(
            kinds[0],
            (DiffKind::AclDiffers, "bob: master -, replica lrs")
        );
        assert_eq!(kinds[1].0, DiffKind::MailboxRecreated);
        assert!(
            kinds[1].1.contains("uuserc on master, other on replica"),
            "{kinds:?}"
        );
        // the recreated mailbox's messages are read (level 2), the ACL's not
        assert_eq!(j.level1.differing, vec!["user.c".to_string()]);
    }
}
