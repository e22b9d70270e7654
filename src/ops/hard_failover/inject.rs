//! The soft policy's copy-back (soft_uid.rs): what only the old master
//! holds of a user goes into the new master without syncing that user
//! from the old master, so no UID the new master has changes.

use super::common::{pause_writes_on_new, CHECK_TIMEOUT, COPY_TIMEOUT};
use super::soft_uid::{self, Frame};
use crate::check;
use crate::cyrus::inventory::{Inventory, MailboxEntry};
use crate::cyrus::names::external;
use crate::cyrus::names::mailbox_arg;
use crate::ops::error::StepError;
use crate::ops::failover::Roles;
use crate::ops::StepContext;
use crate::remote::RemoteCommand;
use std::collections::{BTreeMap, BTreeSet};

/// Messages moved per fetch/inject round trip (bounds the memory held).
const BATCH: usize = 16;

/// Copy back every soft user: folders only the old master has with
/// `sync_client -m`, then, with writes paused on the new master, every
/// other message only the old master holds by spool injection. Returns
/// the users that failed (the others are done); an error stops the step.
/// The caller has seen the new master's sync_server answer.
pub async fn soft_users(
    cx: &StepContext<'_>,
    r: &Roles,
    d: &super::divergence::Divergence,
    soft: &[String],
    out: &mut Vec<String>,
) -> Result<Vec<String>, StepError> {
    let mut failed = Vec::new();
    for user in soft {
        for folder in soft_uid::folders_only_on_old(d, user) {
            // the new master has no such mailbox: nothing there can be
            // expunged, and the UIDs are the old master's
            let mut argv = cx.sync_client_on(&r.old_master, &r.channel, None)?;
            argv.extend(["-m".into(), mailbox_arg(folder)?]);
            match cx.write(&r.old_master, argv, None, COPY_TIMEOUT, out).await {
                Ok(o) if o.success() => out.push(format!("  {folder}: copied back")),
                Ok(o) => {
                    out.push(format!(
                        "  {folder}: sync_client exit {:?} (its reason is in {}'s syslog)",
                        o.exit_status, r.old_master
                    ));
                    failed.push(user.clone());
                }
                Err(e) if e.is_refusal() => return Err(e),
                Err(e) => {
                    out.push(format!("  {folder}: {e}"));
                    failed.push(user.clone());
                }
            }
        }
    }
    // LAST_UID must not move under the injection: an LMTP delivery taking
    // the same UID would overwrite the file (the MTA keeps the mail)
    pause_writes_on_new(cx, r, out, true).await?;
    let todo: Vec<&String> = soft.iter().filter(|u| !failed.contains(u)).collect();
    let res = inject_users(cx, r, d, &todo, out).await;
    let lifted = pause_writes_on_new(cx, r, out, false).await;
    res?;
    lifted?;
    failed.dedup();
    Ok(failed)
}

/// With writes paused: every listed user's messages, mailbox by mailbox.
/// One mailbox list for the step (a mailbox's uniqueid does not change
/// under it); each mailbox's records are read afresh per batch.
async fn inject_users(
    cx: &StepContext<'_>,
    r: &Roles,
    d: &super::divergence::Divergence,
    users: &[&String],
    out: &mut Vec<String>,
) -> Result<(), StepError> {
    let inv = check::inventory(cx.connections(), &r.new_master, CHECK_TIMEOUT).await?;
    for user in users {
        for (mailbox, msgs) in soft_uid::to_inject(d, user) {
            mailbox_messages(cx, r, &inv, &mailbox, &msgs, out).await?;
        }
    }
    Ok(())
}

fn entry<'a>(inv: &'a Inventory, mailbox: &str) -> Option<&'a MailboxEntry> {
    inv.mailboxes
        .iter()
        .find(|m| !m.tombstone && external(&m.name) == mailbox)
}

/// `msgs` (old UID, GUID) of `mailbox` into the new master, batch by
/// batch, each batch read from the servers first: what the new master
/// has (live or expunged: deleted there since) is not sent again.
async fn mailbox_messages(
    cx: &StepContext<'_>,
    r: &Roles,
    inv: &Inventory,
    mailbox: &str,
    msgs: &[(u32, String)],
    out: &mut Vec<String>,
) -> Result<(), StepError> {
    let conns = cx.connections();
    let arg = mailbox_arg(mailbox)?;
    let m = entry(inv, mailbox)
        .ok_or_else(|| format!("{}: {mailbox} is not there", r.new_master))?
        .clone();
    let mut rounds = 0;
    loop {
        let recs = check::records(conns, &r.new_master, &[&m], CHECK_TIMEOUT).await?;
        let x = match recs.get(&m.uniqueid) {
            Some(Ok(x)) => x,
            Some(Err(e)) => return Err(format!("{}: {mailbox}: {e}", r.new_master).into()),
            None => return Err(format!("{}: {mailbox}: not read", r.new_master).into()),
        };
        let present: BTreeSet<&str> = x
            .records
            .iter()
            .map(|r| r.guid.as_str())
            .chain(x.expunged.iter().map(|(_, g)| g.as_str()))
            .collect();
        let todo: Vec<&(u32, String)> = msgs
            .iter()
            .filter(|(_, g)| !present.contains(g.as_str()))
            .collect();
        if todo.is_empty() {
            return Ok(());
        }
        rounds += 1;
        if rounds > msgs.len().div_ceil(BATCH) + 1 {
            return Err(format!(
                "{mailbox}: {} message(s) injected but not taken in by reconstruct on {} (see its output)",
                todo.len(),
                r.new_master
            ).into());
        }
        let batch: Vec<&(u32, String)> = todo.into_iter().take(BATCH).collect();
        let frames = fetch(cx, r, &arg, &batch).await?;
        let argv = soft_uid::argv(
            cx.connection(&r.new_master)?.config(),
            "inject",
            &arg,
            &[x.header.last_uid.to_string()],
        );
        let shown = vec![
            "cyrdeck-spool".into(),
            "inject".into(),
            arg.clone(),
            format!("above-UID {}", x.header.last_uid),
        ];
        let o = cx
            .write_with_input(
                &r.new_master,
                argv,
                Some(shown),
                Some(&soft_uid::encode(&frames)),
                COPY_TIMEOUT,
                out,
            )
            .await?;
        let said = String::from_utf8_lossy(&o.stdout);
        if !o.success() {
            return Err(format!(
                "{}: inject into {mailbox} failed (exit {:?}): {}",
                r.new_master,
                o.exit_status,
                said.lines()
                    .chain(String::from_utf8_lossy(&o.stderr).lines())
                    .last()
                    .unwrap_or("")
            )
            .into());
        }
        let given = soft_uid::given_uids(&said);
        for (uid, guid) in &batch {
            out.push(format!(
                "  {mailbox}: {}'s UID {uid} (GUID {guid}) injected into {} as UID {}",
                r.old_master,
                r.new_master,
                given.get(uid).map_or("?".into(), u32::to_string)
            ));
        }
    }
}

/// The batch's files from the old master, each checked against its GUID
/// (Cyrus's GUID is the sha1 of the file: a file changed on disk, or
/// the wrong one, is never injected).
async fn fetch(
    cx: &StepContext<'_>,
    r: &Roles,
    arg: &str,
    batch: &[&(u32, String)],
) -> Result<Vec<Frame>, StepError> {
    let conn = cx.connection(&r.old_master)?;
    let uids: Vec<String> = batch.iter().map(|(u, _)| u.to_string()).collect();
    let cmd = RemoteCommand::read(soft_uid::argv(conn.config(), "fetch", arg, &uids));
    let o = conn
        .exec_timeout(&cmd, COPY_TIMEOUT)
        .await
        .map_err(|e| format!("{}: {e}", r.old_master))?;
    if !o.success() {
        return Err(format!(
            "{}: spool fetch exit {:?}: {}",
            r.old_master,
            o.exit_status,
            String::from_utf8_lossy(&o.stderr).trim()
        )
        .into());
    }
    let frames = soft_uid::decode(&o.stdout).map_err(|e| format!("{}: {e}", r.old_master))?;
    let want: BTreeMap<u32, &str> = batch.iter().map(|(u, g)| (*u, g.as_str())).collect();
    for f in &frames {
        let guid = soft_uid::guid_of(&f.bytes);
        if want.get(&f.uid) != Some(&guid.as_str()) {
            return Err(format!(
                "{}: {arg} UID {}: the file's sha1 is {guid}, its record says {:?}: not injected",
                r.old_master,
                f.uid,
                want.get(&f.uid)
            )
            .into());
        }
    }
    if frames.len() != batch.len() {
        return Err(format!(
            "{}: {arg}: {} of {} message file(s) read",
            r.old_master,
            frames.len(),
            batch.len()
        )
        .into());
    }
    Ok(frames)
}
