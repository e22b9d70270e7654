//! What Cyrus keeps per user besides messages, compared between master and
//! replica: quota limits per root and each user's subscriptions, from both
//! hosts' `headers` output (cyrus/user_state.rs reads it). Only users whose
//! INBOX both hosts hold are compared: a user on one side is already a
//! mailbox difference. Quota usage is not compared: each host counts its
//! own, and a usage that differs follows from messages the check already
//! names; the limits are what replication must carry.

use crate::cyrus::inventory::MessageAnnotations;
use crate::cyrus::names::external;
use crate::cyrus::user_state::{QuotaLimits, SeenState, Sieve, UserState};
use crate::model::conflicts::{DiffKind, Difference};
use std::collections::{BTreeMap, BTreeSet};

/// Differences and what could not be read, in the scope `within` accepts.
/// `one_sided`: mailboxes (internal names) only one host holds, already
/// differences of their own: their annotations are not named again.
pub fn compare(
    master: &UserState,
    replica: &UserState,
    within: &(dyn Fn(&str) -> bool + Sync),
    one_sided: &BTreeSet<String>,
    replica_name: &str,
) -> (Vec<Difference>, Vec<String>) {
    let mut diffs = Vec::new();
    let mut errors = Vec::new();
    for (host, s) in [("master", master), (replica_name, replica)] {
        for (store, why) in &s.unread {
            errors.push(format!(
                "{host}: {store} not compared: {why} (only the default store is read)"
            ));
        }
        for (inbox, store, why) in s.unread_users.iter().filter(|u| within(&u.0)) {
            errors.push(format!("{}: {host}: {store}: {why}", external(inbox)));
        }
    }
    let on_both = |name: &str| match inbox_of(name) {
        Some(inbox) => master.users.contains(&inbox) && replica.users.contains(&inbox),
        None => true,
    };
    let roots: BTreeSet<&String> = master.quota.keys().chain(replica.quota.keys()).collect();
    for root in roots.into_iter().filter(|r| within(r) && on_both(r)) {
        let (m, r) = (master.quota.get(root), replica.quota.get(root));
        if let Some(detail) = quota_detail(m, r) {
            diffs.push(difference(root, DiffKind::QuotaDiffers, detail));
        }
    }
    let none = BTreeSet::new();
    for inbox in master.users.intersection(&replica.users) {
        if !within(inbox) {
            continue;
        }
        let m = master.subscriptions.get(inbox).unwrap_or(&none);
        let r = replica.subscriptions.get(inbox).unwrap_or(&none);
        if m != r {
            let detail = format!(
                "only on the master: {}; only on the replica: {}",
                listed(m.difference(r)),
                listed(r.difference(m))
            );
            diffs.push(difference(inbox, DiffKind::SubscriptionsDiffer, detail));
        }
    }
    let no_sieve = Sieve::default();
    for inbox in master.users.intersection(&replica.users) {
        if !within(inbox) {
            continue;
        }
        let m = master.sieve.get(inbox).unwrap_or(&no_sieve);
        let r = replica.sieve.get(inbox).unwrap_or(&no_sieve);
        if let Some(detail) = sieve_detail(m, r) {
            diffs.push(difference(inbox, DiffKind::SieveDiffers, detail));
        }
    }
    let boxes: BTreeSet<&String> = master
        .annotations
        .keys()
        .chain(replica.annotations.keys())
        .collect();
    let none = BTreeMap::new();
    for name in boxes {
        if !within(name) || one_sided.contains(name) {
            continue;
        }
        let m = master.annotations.get(name).unwrap_or(&none);
        let r = replica.annotations.get(name).unwrap_or(&none);
        if let Some(detail) = annotations_detail(m, r) {
            let mut d = difference(name, DiffKind::AnnotationsDiffer, detail);
            if name.is_empty() {
                d.mailbox = "(server)".into();
            }
            diffs.push(d);
        }
    }
    let no_seen = BTreeMap::new();
    for inbox in master.users.intersection(&replica.users) {
        if !within(inbox) {
            continue;
        }
        let m = master.seen.get(inbox).unwrap_or(&no_seen);
        let r = replica.seen.get(inbox).unwrap_or(&no_seen);
        if let Some(detail) = seen_detail(m, r, one_sided) {
            diffs.push(difference(inbox, DiffKind::SeenDiffers, detail));
        }
    }
    (diffs, errors)
}

/// Each folder whose seen state differs, with both sides' seen UIDs. A
/// record of a folder its host no longer lists is stale (Cyrus leaves
/// it when the folder goes) and a folder on one side only is already a
/// difference of its own: neither is named. No record and a record of
/// nothing seen are the same to the user.
fn seen_detail(
    m: &BTreeMap<String, SeenState>,
    r: &BTreeMap<String, SeenState>,
    one_sided: &BTreeSet<String>,
) -> Option<String> {
    let live = |s: &SeenState| !s.mailbox.is_empty() && !one_sided.contains(&s.mailbox);
    let ids: BTreeSet<&String> = m
        .iter()
        .chain(r.iter())
        .filter(|(_, s)| live(s))
        .map(|(id, _)| id)
        .collect();
    let state = |s: Option<&SeenState>| match s.filter(|s| live(s)) {
        Some(s) if s.last_uid != 0 || !s.uids.is_empty() => Some((s.last_uid, s.uids.clone())),
        _ => None,
    };
    let shown = |s: &Option<(u32, String)>| match s {
        Some((last, uids)) if uids.is_empty() => format!("none seen (last UID {last})"),
        Some((last, uids)) => format!("{uids} (last UID {last})"),
        None => "none".to_string(),
    };
    let parts: Vec<String> = ids
        .into_iter()
        .filter_map(|id| {
            let (a, b) = (m.get(id), r.get(id));
            let (sa, sb) = (state(a), state(b));
            if sa == sb {
                return None;
            }
            let folder = a.or(b).map(|s| external(&s.mailbox)).unwrap_or_default();
            Some(format!(
                "seen in {folder}: master {}, replica {}",
                shown(&sa),
                shown(&sb)
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The mailboxes (external names) whose HIGHESTMODSEQ these differences
/// account for: one whose annotation differs, and (3.12, lab-measured) a
/// folder subscribed on one side only. A metadata_differs there that is
/// only the modseq says nothing more.
pub fn explained_modseq(
    master: &UserState,
    replica: &UserState,
    diffs: &[Difference],
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let none = BTreeSet::new();
    for d in diffs {
        match d.kind {
            DiffKind::AnnotationsDiffer => {
                out.insert(d.mailbox.clone());
            }
            DiffKind::SubscriptionsDiffer => {
                let Some(inbox) = master.users.iter().find(|i| external(i) == d.mailbox) else {
                    continue;
                };
                let m = master.subscriptions.get(inbox).unwrap_or(&none);
                let r = replica.subscriptions.get(inbox).unwrap_or(&none);
                for folder in m.symmetric_difference(r) {
                    out.insert(external(&folder_of(inbox, folder)));
                }
            }
            _ => {}
        }
    }
    out
}

/// The internal name of a subscribed folder as the user sees it
/// (`INBOX/Work` of `user.bob` -> `user.bob.Work`).
fn folder_of(inbox: &str, shown: &str) -> String {
    match shown.strip_prefix("INBOX") {
        Some("") => inbox.to_string(),
        Some(rest) if rest.starts_with('/') => {
            format!("{inbox}{}", rest.replace('.', "^").replace('/', "."))
        }
        _ => shown.replace('.', "^").replace('/', "."),
    }
}

type Annotations = BTreeMap<(String, String), String>;

/// Message annotations that differ, one difference per UID, for messages
/// both sides hold (one on one side only is already a difference; its
/// annotations go with it). `mailbox`: internal name.
pub fn message_annotation_diffs(
    mailbox: &str,
    m: &MessageAnnotations,
    r: &MessageAnnotations,
    on_both: &BTreeSet<u32>,
) -> Vec<Difference> {
    let per_uid = |a: &MessageAnnotations| {
        let mut by: BTreeMap<u32, Annotations> = BTreeMap::new();
        for ((uid, entry, userid), v) in a {
            by.entry(*uid)
                .or_default()
                .insert((entry.clone(), userid.clone()), v.clone());
        }
        by
    };
    let (mb, rb) = (per_uid(m), per_uid(r));
    let none = Annotations::new();
    let uids: BTreeSet<&u32> = mb.keys().chain(rb.keys()).collect();
    uids.into_iter()
        .filter(|u| on_both.contains(u))
        .filter_map(|uid| {
            let detail =
                annotations_detail(mb.get(uid).unwrap_or(&none), rb.get(uid).unwrap_or(&none))?;
            let mut d = difference(
                mailbox,
                DiffKind::AnnotationsDiffer,
                format!("message: {detail}"),
            );
            d.uid = Some(*uid);
            Some(d)
        })
        .collect()
}

/// Each entry whose value differs: whose it is and both values.
fn annotations_detail(m: &Annotations, r: &Annotations) -> Option<String> {
    let keys: BTreeSet<&(String, String)> = m.keys().chain(r.keys()).collect();
    let parts: Vec<String> = keys
        .into_iter()
        .filter(|k| m.get(*k) != r.get(*k))
        .map(|(entry, userid)| {
            let whose = match userid.as_str() {
                "" => "shared".to_string(),
                "[.OwNeR.]" => "the owner's private".to_string(),
                u => format!("{u}'s private"),
            };
            let k = (entry.clone(), userid.clone());
            let v = |a: &Annotations| a.get(&k).cloned().unwrap_or_else(|| "-".into());
            format!("{entry} ({whose}): master {}, replica {}", v(m), v(r))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// The active script on each side and each source that differs; `None`
/// when the same.
fn sieve_detail(m: &Sieve, r: &Sieve) -> Option<String> {
    let mut parts = Vec::new();
    if m.active != r.active {
        let or_none = |a: &Option<String>| a.clone().unwrap_or_else(|| "none".into());
        parts.push(format!(
            "active script: master {}, replica {}",
            or_none(&m.active),
            or_none(&r.active)
        ));
    }
    let names: BTreeSet<&String> = m.sources.keys().chain(r.sources.keys()).collect();
    for n in names {
        let short =
            |s: Option<&String>| s.map_or("-".to_string(), |h| h.chars().take(12).collect());
        let (a, b) = (m.sources.get(n), r.sources.get(n));
        if a != b {
            parts.push(format!(
                "script source {n}.script: master {}, replica {}",
                short(a),
                short(b)
            ));
        }
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

fn difference(internal: &str, kind: DiffKind, detail: String) -> Difference {
    Difference {
        mailbox: external(internal),
        kind,
        uid: None,
        master: None,
        replica: None,
        detail,
    }
}

/// The user INBOX an internal name belongs to (`example.com!user.bob.Sent`
/// -> `example.com!user.bob`); none for shared folders.
fn inbox_of(name: &str) -> Option<String> {
    let (dom, local) = match name.split_once('!') {
        Some((d, l)) => (Some(d), l),
        None => (None, name),
    };
    let user = local.strip_prefix("user.")?.split('.').next()?;
    Some(match dom {
        Some(d) => format!("{d}!user.{user}"),
        None => format!("user.{user}"),
    })
}

/// Each resource whose limit differs, with both sides' limits; `None`
/// when the limits are the same.
fn quota_detail(m: Option<&QuotaLimits>, r: Option<&QuotaLimits>) -> Option<String> {
    let limit = |q: Option<&QuotaLimits>, k: &str| match q.and_then(|q| q.get(k)).copied().flatten()
    {
        Some(l) => l.to_string(),
        None => "none".to_string(),
    };
    let mut parts = Vec::new();
    match (m, r) {
        (Some(_), None) => parts.push("a quota root only on the master".to_string()),
        (None, Some(_)) => parts.push("a quota root only on the replica".to_string()),
        _ => {}
    }
    let keys: BTreeSet<&String> = m.into_iter().chain(r).flat_map(|q| q.keys()).collect();
    for k in keys {
        let (a, b) = (limit(m, k), limit(r, k));
        if a != b {
            parts.push(format!("{k} limit: master {a}, replica {b}"));
        }
    }
    // a root on one side whose every limit is none limits nothing either
    (parts.len() > 1 || (parts.len() == 1 && m.is_some() && r.is_some())).then(|| parts.join("; "))
}

/// Up to 20 names, then how many more; `-` for none.
fn listed<'a>(names: impl Iterator<Item = &'a String>) -> String {
    let all: Vec<&String> = names.collect();
    if all.is_empty() {
        return "-".into();
    }
    let mut s = all
        .iter()
        .take(20)
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    if all.len() > 20 {
        s.push_str(&format!(" and {} more", all.len() - 20));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cyrus::user_state::parse_quota;

    fn state(lines: &[&str], users: &[&str]) -> UserState {
        let mut s = UserState::default();
        for l in lines {
            assert!(s.line(l).unwrap());
        }
        s.users = users.iter().map(|u| u.to_string()).collect();
        s
    }

    #[test]
    fn limits_and_subscriptions_are_named_with_both_sides() {
        let all = |_: &str| true;
        let m = state(
            &[
                "Q\tuser.a\t%(S (10 5555) M (1))",
                "S\tuser.a\t4e494e424f58",
                "S\tuser.b\t4e494e424f58",
                "Q\tuser.gone\t%(S (0 1))",
            ],
            &["user.a", "user.b", "user.gone"],
        );
        let r = state(
            &[
                "Q\tuser.a\t%(S (99 7777) M (1 100))",
                "S\tuser.a\t4e494e424f581f576f726b",
                "S\tuser.b\t4e494e424f58",
                "Q\tuser.b\t%(S (0 50))",
            ],
            &["user.a", "user.b"],
        );
        let (d, e) = compare(&m, &r, &all, &BTreeSet::new(), "replica");
        assert!(e.is_empty());
        let got: Vec<(&str, DiffKind, &str)> = d
            .iter()
            .map(|d| (d.mailbox.as_str(), d.kind, d.detail.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "user/a",
                    DiffKind::QuotaDiffers,
                    "MESSAGE limit: master none, replica 100; STORAGE limit: master 5555, replica 7777"
                ),
                (
                    "user/b",
                    DiffKind::QuotaDiffers,
                    "a quota root only on the replica; STORAGE limit: master none, replica 50"
                ),
                (
                    "user/a",
                    DiffKind::SubscriptionsDiffer,
                    "only on the master: INBOX; only on the replica: INBOX/Work"
                ),
            ]
        );
        // usage alone is no difference; a scope leaves the rest out
        let r2 = state(&["Q\tuser.a\t%(S (99 5555) M (7))"], &["user.a"]);
        let m2 = state(&["Q\tuser.a\t%(S (10 5555) M (1))"], &["user.a"]);
        assert!(compare(&m2, &r2, &all, &BTreeSet::new(), "replica")
            .0
            .is_empty());
        let only_b = |n: &str| n.starts_with("user.b");
        assert_eq!(
            compare(&m, &r, &only_b, &BTreeSet::new(), "replica")
                .0
                .len(),
            1
        );
    }

    #[test]
    fn a_root_without_limits_on_one_side_limits_nothing() {
        let q = parse_quota("%(S (0) M (0))").unwrap();
        assert_eq!(quota_detail(Some(&q), None), None);
        assert_eq!(
            inbox_of("example.com!user.bob.Sent").as_deref(),
            Some("example.com!user.bob")
        );
        assert_eq!(inbox_of("shared.x"), None);
    }

    #[test]
    fn the_sieve_script_run_and_hand_placed_sources_are_named() {
        let m = state(&["A\tuser.a\t617761792e6263"], &["user.a"]);
        let r = state(
            &["V\tuser.a\t68616e642e736372697074\t278dfea7730b1f6249f4238c77ab90b4b78c6d06"],
            &["user.a"],
        );
        let (d, _) = compare(&m, &r, &|_: &str| true, &BTreeSet::new(), "replica");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].kind, DiffKind::SieveDiffers);
        assert_eq!(
            d[0].detail,
            "active script: master away, replica none; script source hand.script: master -, replica 278dfea7730b"
        );
        assert!(
            compare(&m, &m, &|_: &str| true, &BTreeSet::new(), "replica")
                .0
                .is_empty()
        );
    }

    #[test]
    fn annotations_are_named_by_entry_and_owner_unless_the_mailbox_is_one_sided() {
        let m = state(&["N\tuser.a\t2f636f6d6d656e74\t\t6d"], &["user.a"]);
        let r = state(
            &[
                "N\tuser.a\t2f636f6d6d656e74\t\t72",
                "N\tuser.a\t2f636f6d6d656e74\t5b2e4f774e65522e5d\t78",
                "N\tuser.a.New\t2f636f6d6d656e74\t\t78",
            ],
            &["user.a"],
        );
        let one_sided: BTreeSet<String> = ["user.a.New".to_string()].into();
        let (d, _) = compare(&m, &r, &|_: &str| true, &one_sided, "replica");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].kind, DiffKind::AnnotationsDiffer);
        assert_eq!(
            d[0].detail,
            "/comment (shared): master \"m\", replica \"r\"; /comment (the owner's private): master -, replica \"x\""
        );
    }

    #[test]
    fn a_differing_subscription_or_annotation_explains_the_modseq() {
        let m = state(&["S\tuser.a\t4e494e424f58"], &["user.a"]);
        let r = state(
            &[
                "S\tuser.a\t4e494e424f58",
                "S\tuser.a\t4e494e424f581f576f2e726b",
            ],
            &["user.a"],
        );
        let (d, _) = compare(&m, &r, &|_: &str| true, &BTreeSet::new(), "replica");
        let x = explained_modseq(&m, &r, &d);
        assert_eq!(x.into_iter().collect::<Vec<_>>(), ["user/a/Wo.rk"]);
    }

    #[test]
    fn seen_state_of_others_folders_is_named_unless_stale_or_one_sided() {
        let m = state(
            &[
                "W\tuser.a\tid-team\tshared.team\t5\t1:5",
                "W\tuser.a\tid-gone\t\t3\t1:3",
                "W\tuser.a\tid-new\tshared.new\t2\t1:2",
                "W\tuser.a\tid-same\tuser.b\t4\t2",
            ],
            &["user.a"],
        );
        let r = state(
            &[
                "W\tuser.a\tid-team\tshared.team\t5\t1:3",
                "W\tuser.a\tid-same\tuser.b\t4\t2",
                "W\tuser.a\tid-empty\tshared.x\t0\t",
            ],
            &["user.a"],
        );
        let one_sided: BTreeSet<String> = ["shared.new".to_string()].into();
        let (d, _) = compare(&m, &r, &|_: &str| true, &one_sided, "replica");
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (d[0].kind, d[0].mailbox.as_str()),
            (DiffKind::SeenDiffers, "user/a")
        );
        assert_eq!(
            d[0].detail,
            "seen in shared/team: master 1:5 (last UID 5), replica 1:3 (last UID 5)"
        );
        // a record only one side has is named against "none"
        let (d, _) = compare(
            &r,
            &state(&[], &["user.a"]),
            &|_: &str| true,
            &one_sided,
            "replica",
        );
        assert_eq!(d.len(), 1, "{d:?}");
        assert!(d[0].detail.ends_with("replica none"), "{}", d[0].detail);
    }

    #[test]
    fn message_annotations_are_named_per_uid_on_messages_both_sides_hold() {
        let k = |uid: u32, who: &str| (uid, "/comment".to_string(), who.to_string());
        let m: MessageAnnotations = [
            (k(1, ""), "\"a\"".to_string()),
            (k(2, ""), "\"same\"".to_string()),
            (k(9, ""), "\"only here\"".to_string()),
        ]
        .into();
        let r: MessageAnnotations = [
            (k(1, ""), "\"b\"".to_string()),
            (k(2, ""), "\"same\"".to_string()),
            (k(2, "[.OwNeR.]"), "\"mine\"".to_string()),
        ]
        .into();
        let d = message_annotation_diffs("user.a", &m, &r, &[1, 2].into());
        let got: Vec<(Option<u32>, &str)> = d.iter().map(|d| (d.uid, d.detail.as_str())).collect();
        assert_eq!(
            got,
            [
                (
                    Some(1),
                    "message: /comment (shared): master \"a\", replica \"b\""
                ),
                (
                    Some(2),
                    "message: /comment (the owner's private): master -, replica \"mine\""
                ),
            ]
        );
        assert!(d
            .iter()
            .all(|d| d.kind == DiffKind::AnnotationsDiffer && d.mailbox == "user/a"));
    }

    #[test]
    fn a_store_not_read_makes_the_check_undecided() {
        let m = state(&["@@unread\tquota\tquota_db twoskip"], &[]);
        let (_, e) = compare(
            &m,
            &UserState::default(),
            &|_: &str| true,
            &BTreeSet::new(),
            "replica",
        );
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].contains("quota_db twoskip"), "{e:?}");
    }
}
