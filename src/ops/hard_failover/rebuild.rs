//! The soft policy's second half (soft_uid.rs): each of its users is
//! recreated on the fenced old master from the new one, so the old
//! master's clashing UIDs go and the new master's stay. Nothing is
//! deleted before every live GUID of the user on the old master is read
//! on the new master in the same mailbox (live, or expunged there: a
//! deletion since the promotion).
//!
//! Cyrus facts (3.6 sync_reset.c, the same in 3.8-3.12): `sync_reset -f
//! USER` deletes every mailbox of the user at once (MBOXLIST_DELETE_FORCE
//! and LOCALONLY: no delayed delete, no tombstone left), its
//! subscriptions and its user data; with sync_log 0 (fenced) nothing of
//! it is logged. `sync_client -u USER` from the new master then creates
//! the user there with the new master's uniqueids, UIDVALIDITYs and UIDs.

use super::common::{Memo, CHECK_TIMEOUT, COPY_TIMEOUT};
use super::divergence::user_of;
use crate::check;
use crate::cyrus::inventory::{Inventory, MailboxEntry};
use crate::cyrus::names::external;
use crate::ops::error::StepError;
use crate::ops::failover::{self, Roles};
use crate::ops::host_probe::probe_host;
use crate::ops::StepContext;
use std::collections::{BTreeMap, BTreeSet};

type UidGuids = BTreeMap<String, BTreeMap<u32, String>>;

pub async fn on_old_master(
    cx: &StepContext<'_>,
    r: &mut Roles,
    out: &mut Vec<String>,
    memo: &Memo,
) -> Result<String, StepError> {
    let soft = memo.soft_users.clone();
    if soft.is_empty() {
        return Ok("nothing to rebuild: no user took the soft UID policy".into());
    }
    let rep = probe_host(cx, &r.old_master).await?;
    if crate::ops::host_probe::master_pid(cx, &r.old_master, &rep).is_none() {
        return Err(format!(
            "{}'s Cyrus is not running: start it (it comes up fenced, without a client) and resume",
            r.old_master
        )
        .into());
    }
    r.old_sync = failover::precheck::sync_server_of(cx, &r.old_master, &rep)?;
    super::common::sync_server_answers(cx, &r.new_master, &r.old_master, out).await?;
    for user in &soft {
        let user = crate::cyrus::names::user_arg(user)?;
        let (old, new) = read_user(cx, r, &user, true).await?;
        if !old.is_empty() {
            let missing = missing_on_new(&old, &new);
            if !missing.is_empty() {
                for m in missing.iter().take(20) {
                    out.push(format!("  NOT on {}: {m}", r.new_master));
                }
                return Err(format!(
                    "{user}: {} message(s) of {} are not on {}: nothing deleted there",
                    missing.len(),
                    r.old_master,
                    r.new_master
                )
                .into());
            }
            let h = cx.connection(&r.old_master)?.config();
            let argv = vec![
                format!("{}/sync_reset", h.bin_dir.display()),
                "-C".into(),
                h.imapd_conf.display().to_string(),
                "-f".into(),
                user.clone(),
            ];
            let o = cx
                .write(&r.old_master, argv, None, COPY_TIMEOUT, out)
                .await?;
            if !o.success() {
                return Err(format!(
                    "{user}: sync_reset exit {:?} on {}: {}",
                    o.exit_status,
                    r.old_master,
                    String::from_utf8_lossy(&o.stderr).trim()
                )
                .into());
            }
        }
        let mut argv = cx.sync_client_on(&r.new_master, &r.channel, Some(&r.old_sync))?;
        argv.extend(["-u".into(), user.clone()]);
        let o = cx
            .write(&r.new_master, argv, None, COPY_TIMEOUT, out)
            .await?;
        if !o.success() {
            return Err(format!(
                "{user}: sync_client -u from {} exit {:?} (its reason is in its syslog); resume runs it again",
                r.new_master, o.exit_status
            ).into());
        }
        let (old, new) = read_user(cx, r, &user, false).await?;
        let differ = differing(&old, &new.0);
        if !differ.is_empty() {
            return Err(format!(
                "{user}: after the rebuild {} differs from {} in {differ:?}",
                r.old_master, r.new_master
            )
            .into());
        }
        out.push(format!(
            "  {user}: rebuilt on {} from {}: {} mailbox(es), {} message(s), every UID as on {}",
            r.old_master,
            r.new_master,
            old.len(),
            old.values().map(BTreeMap::len).sum::<usize>(),
            r.new_master
        ));
    }
    Ok(format!(
        "{} user(s) rebuilt on {} with {}'s UIDs",
        soft.len(),
        r.old_master,
        r.new_master
    ))
}

/// The user's live (UID -> GUID) per mailbox on the old master, and on the
/// new master both that and (when `expunged`) every GUID it holds
/// expunged, per mailbox.
async fn read_user(
    cx: &StepContext<'_>,
    r: &Roles,
    user: &str,
    expunged: bool,
) -> Result<(UidGuids, (UidGuids, BTreeMap<String, BTreeSet<String>>)), StepError> {
    let conns = cx.connections();
    // only this user's mailboxes listed: a whole listing per user was
    // 500 MB read for 4 users on a 50,000-mailbox pair
    let scope = check::Scope {
        user: Some(user.to_string()),
        mailbox: None,
    };
    let (oi, ni) = tokio::try_join!(
        check::inventory_of(conns, &r.old_master, &scope, CHECK_TIMEOUT),
        check::inventory_of(conns, &r.new_master, &scope, CHECK_TIMEOUT)
    )?;
    let (old, _) = user_records(cx, &r.old_master, &oi, user, false).await?;
    let new = user_records(cx, &r.new_master, &ni, user, expunged).await?;
    Ok((old, new))
}

async fn user_records(
    cx: &StepContext<'_>,
    host: &str,
    inv: &Inventory,
    user: &str,
    expunged: bool,
) -> Result<(UidGuids, BTreeMap<String, BTreeSet<String>>), StepError> {
    let boxes: Vec<&MailboxEntry> = inv
        .mailboxes
        .iter()
        .filter(|m| !m.tombstone && user_of(&m.name).as_deref() == Some(user))
        .collect();
    let recs = check::records(cx.connections(), host, &boxes, CHECK_TIMEOUT).await?;
    let (mut live, mut gone) = (UidGuids::new(), BTreeMap::new());
    for b in &boxes {
        let ext = external(&b.name);
        let x = match recs.get(&b.uniqueid) {
            Some(Ok(x)) => x,
            Some(Err(e)) => return Err(format!("{host}: {ext}: {e}").into()),
            None => return Err(format!("{host}: {ext}: not read").into()),
        };
        live.insert(
            ext.clone(),
            x.records.iter().map(|r| (r.uid, r.guid.clone())).collect(),
        );
        if expunged {
            gone.insert(ext, x.expunged.iter().map(|(_, g)| g.clone()).collect());
        }
    }
    Ok((live, gone))
}

/// "MAILBOX UID GUID" of every live message of `old` whose GUID the new
/// master has neither live nor expunged in that mailbox.
pub fn missing_on_new(
    old: &UidGuids,
    new: &(UidGuids, BTreeMap<String, BTreeSet<String>>),
) -> Vec<String> {
    let mut v = Vec::new();
    for (mb, msgs) in old {
        let live: BTreeSet<&String> = new
            .0
            .get(mb)
            .map(|m| m.values().collect())
            .unwrap_or_default();
        let gone = new.1.get(mb);
        for (uid, g) in msgs {
            if !live.contains(g) && !gone.is_some_and(|s| s.contains(g)) {
                v.push(format!("{mb} UID {uid} {g}"));
            }
        }
    }
    v
}

/// Mailboxes where the old master holds a UID the new master does not
/// hold with the same GUID, or lacks a mailbox of the new master (the new
/// master may have taken mail since: more there is fine).
pub fn differing(old: &UidGuids, new: &UidGuids) -> Vec<String> {
    let mut v: Vec<String> = new
        .keys()
        .filter(|mb| !old.contains_key(*mb))
        .cloned()
        .collect();
    for (mb, msgs) in old {
        let n = new.get(mb);
        if msgs
            .iter()
            .any(|(u, g)| n.and_then(|n| n.get(u)) != Some(g))
        {
            v.push(mb.clone());
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(list: &[(&str, &[(u32, &str)])]) -> UidGuids {
        list.iter()
            .map(|(mb, msgs)| {
                (
                    mb.to_string(),
                    msgs.iter().map(|(u, g)| (*u, g.to_string())).collect(),
                )
            })
            .collect()
    }

    #[test]
    fn nothing_is_deleted_while_a_guid_of_the_old_master_is_not_on_the_new() {
        let old = m(&[("user/a", &[(1, "x"), (2, "b"), (3, "d")])]);
        // b injected as UID 9, d deleted on the new master since
        let new = m(&[("user/a", &[(1, "x"), (2, "a"), (9, "b")])]);
        let gone = BTreeMap::from([("user/a".to_string(), BTreeSet::from(["d".to_string()]))]);
        assert!(missing_on_new(&old, &(new.clone(), gone)).is_empty());
        let missing = missing_on_new(&old, &(new, BTreeMap::new()));
        assert_eq!(missing, vec!["user/a UID 3 d".to_string()]);
        // another mailbox does not count
        let other = m(&[("user/a/F", &[(1, "x"), (2, "b"), (3, "d")])]);
        assert_eq!(missing_on_new(&old, &(other, BTreeMap::new())).len(), 3);
    }

    #[test]
    fn after_the_rebuild_the_old_master_holds_the_new_masters_uids() {
        let new = m(&[("user/a", &[(1, "x"), (2, "a"), (9, "b"), (10, "n")])]);
        // the new master took UID 10 since: fine
        let old = m(&[("user/a", &[(1, "x"), (2, "a"), (9, "b")])]);
        assert!(differing(&old, &new).is_empty());
        let clash_left = m(&[("user/a", &[(1, "x"), (2, "b")])]);
        assert_eq!(differing(&clash_left, &new), vec!["user/a".to_string()]);
        let folder_missing = m(&[]);
        assert_eq!(differing(&folder_missing, &new), vec!["user/a".to_string()]);
    }
}
