//! reintegrate's "soft" UID policy: keep the UID the owner was shown on the
//! new master, give only the old master's message of a clash a new UID.
//!
//! Cyrus sync cannot do it (it renumbers both messages of a clash, or
//! expunges one as stale: docs/cyrus-behaviour.md "the soft UID policy"), so for a
//! user who takes this policy nothing of the user is synced from the old
//! master. Instead (lab-rehearsed on 3.6 to 3.12):
//! 1. copy-back, with writes paused on the new master: each message only
//!    the old master holds is read from its spool file there, checked
//!    against its GUID (sha1 of the bytes), and written into the same
//!    mailbox's spool on the new master as `N.` above its LAST_UID, then
//!    `reconstruct MAILBOX` takes it in as UID N with the same GUID (and
//!    sync-logs it). The old UID is kept when it is free above LAST_UID.
//!    Folders only the old master has are copied with `sync_client -m`
//!    (the new master has no such mailbox: nothing there can be lost);
//! 2. once every GUID of the user on the old master is verified on the new
//!    one (read from both servers, right before), `sync_reset -f USER` on
//!    the fenced old master and `sync_client -u USER` from the new master
//!    recreate the user there with the new master's UIDs.
//!
//! The user's side of the old master that is NOT carried over: flags and
//! `\Seen` changed there after the last replication (an injected message
//! arrives unflagged: unread for its owner), its subscriptions and sieve
//! scripts (the new master's win), annotations. A user with a clash whose
//! old-master UID was shown takes the easy policy instead: a live mailbox
//! cannot take a record below its LAST_UID, so that UID cannot be kept.

use super::divergence::{Clash, Divergence};
use crate::ops::error::StepError;
use std::collections::{BTreeMap, BTreeSet};

pub(crate) const SCRIPT: &str = include_str!("spool.pl");

/// The users who take the soft policy (a clash, none shown on the old
/// master) and, for the others with clashes, why not.
pub fn choose(d: &Divergence) -> (Vec<String>, Vec<String>) {
    let mut by_user: BTreeMap<&str, Vec<&Clash>> = BTreeMap::new();
    for c in &d.clashes {
        if let Some(u) = d.owners.get(&c.mailbox) {
            by_user.entry(u.as_str()).or_default().push(c);
        }
    }
    let (mut soft, mut easy) = (Vec::new(), Vec::new());
    for (user, clashes) in by_user {
        match clashes.iter().find(|c| c.seen_on_old) {
            Some(c) => easy.push(format!(
                "{user}: easy policy (UID {} of {} was shown to the owner on the old master: \
                 a live mailbox cannot take a UID below its LAST_UID)",
                c.uid, c.mailbox
            )),
            None => soft.push(user.to_string()),
        }
    }
    (soft, easy)
}

/// One message file: the UID it had (or wants), its mtime (Cyrus's
/// internaldate on reconstruct), its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub uid: u32,
    pub mtime: u64,
    pub bytes: Vec<u8>,
}

/// `perl -e SCRIPT fetch|inject CONF BINDIR MAILBOX ARGS...`
pub fn argv(
    h: &crate::config::HostConfig,
    mode: &str,
    mailbox: &str,
    args: &[String],
) -> Vec<String> {
    let mut v = vec![
        "perl".to_string(),
        "-e".into(),
        SCRIPT.into(),
        mode.into(),
        h.imapd_conf.display().to_string(),
        h.bin_dir.display().to_string(),
        mailbox.into(),
    ];
    v.extend(args.iter().cloned());
    v
}

/// The frames as inject reads them.
pub fn encode(frames: &[Frame]) -> Vec<u8> {
    let mut v = Vec::new();
    for f in frames {
        v.extend_from_slice(format!("M\t{}\t{}\t{}\n", f.uid, f.mtime, f.bytes.len()).as_bytes());
        v.extend_from_slice(&f.bytes);
    }
    v
}

/// fetch's output: the frames, or the first file it could not read.
pub fn decode(mut b: &[u8]) -> Result<Vec<Frame>, StepError> {
    let mut v = Vec::new();
    loop {
        let nl = b
            .iter()
            .position(|&c| c == b'\n')
            .ok_or("spool fetch: output cut off (no @@end)")?;
        let line = String::from_utf8_lossy(&b[..nl]).into_owned();
        b = &b[nl + 1..];
        if line == "@@end" {
            return Ok(v);
        }
        if let Some(e) = line.strip_prefix("@@error ") {
            return Err(format!("spool fetch: {e}").into());
        }
        if let Some(e) = line.strip_prefix("E\t") {
            let (uid, why) = e.split_once('\t').unwrap_or((e, ""));
            return Err(format!("spool fetch: UID {uid}: {why}").into());
        }
        let f: Vec<&str> = line.split('\t').collect();
        let num = |i: usize| -> Result<u64, StepError> {
            f.get(i)
                .and_then(|x| x.parse().ok())
                .ok_or_else(|| format!("spool fetch: bad frame {line:?}").into())
        };
        if f.len() != 4 || f[0] != "M" {
            return Err(format!("spool fetch: bad frame {line:?}").into());
        }
        let (uid, mtime, size) = (num(1)?, num(2)?, num(3)? as usize);
        if b.len() < size {
            return Err(format!("spool fetch: UID {uid}: cut off").into());
        }
        v.push(Frame {
            uid: u32::try_from(uid).map_err(|_| format!("spool fetch: UID {uid}"))?,
            mtime,
            bytes: b[..size].to_vec(),
        });
        b = &b[size..];
    }
}

/// inject's "I\tWANT\tUID\tnew|same" lines: old UID -> UID given.
pub fn given_uids(stdout: &str) -> BTreeMap<u32, u32> {
    stdout
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            match f.as_slice() {
                ["I", want, uid, _] => Some((want.parse().ok()?, uid.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

/// A message's GUID as Cyrus computes it: the sha1 of its file.
pub fn guid_of(bytes: &[u8]) -> String {
    use sha1::{Digest, Sha1};
    Sha1::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What of `user` the old master holds that the new master must get by
/// injection: mailbox -> (old UID, GUID), for mailboxes on both hosts.
pub fn to_inject(d: &Divergence, user: &str) -> BTreeMap<String, Vec<(u32, String)>> {
    let only_old: BTreeSet<&str> = d.mailboxes_only_on_old.iter().map(String::as_str).collect();
    let mut m: BTreeMap<String, Vec<(u32, String)>> = BTreeMap::new();
    for (mb, uid, guid) in &d.messages_only_on_old {
        if only_old.contains(mb.as_str()) || d.owners.get(mb).map(String::as_str) != Some(user) {
            continue;
        }
        m.entry(mb.clone()).or_default().push((*uid, guid.clone()));
    }
    m
}

/// The user's folders only the old master has (copied with `-m`).
pub fn folders_only_on_old<'a>(d: &'a Divergence, user: &str) -> Vec<&'a str> {
    d.mailboxes_only_on_old
        .iter()
        .filter(|m| d.owners.get(*m).map(String::as_str) == Some(user))
        .map(String::as_str)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clash(mailbox: &str, uid: u32, old: bool, new: bool) -> Clash {
        Clash {
            mailbox: mailbox.into(),
            uid,
            old_guid: "a".into(),
            new_guid: "b".into(),
            uids_now: None,
            seen_on_old: old,
            seen_on_new: new,
        }
    }

    #[test]
    fn a_user_goes_soft_unless_a_clash_was_shown_on_the_old_master() {
        let mut d = Divergence::default();
        for (mb, u) in [
            ("user/alice", "alice"),
            ("user/alice/F", "alice"),
            ("user/bob", "bob"),
            ("user/carol", "carol"),
        ] {
            d.owners.insert(mb.into(), u.into());
        }
        d.clashes = vec![
            clash("user/alice", 3, false, true),
            clash("user/alice/F", 1, false, false),
            clash("user/bob", 2, false, true),
            clash("user/bob", 4, true, true),
            clash("user/carol", 9, true, false),
        ];
        let (soft, easy) = choose(&d);
        assert_eq!(soft, vec!["alice".to_string()]);
        assert_eq!(easy.len(), 2);
        assert!(
            easy[0].starts_with("bob: easy policy (UID 4 of user/bob"),
            "{easy:?}"
        );
        assert!(easy[1].starts_with("carol: easy policy (UID 9"), "{easy:?}");
    }

    #[test]
    fn frames_go_through_fetch_and_inject_byte_for_byte() {
        let frames = vec![
            Frame {
                uid: 7,
                mtime: 1_700_000_000,
                bytes: b"Subject: x\r\n\r\nbinary \x00\xff\n@@end\n".to_vec(),
            },
            Frame {
                uid: 12,
                mtime: 1,
                bytes: Vec::new(),
            },
        ];
        let mut out = encode(&frames);
        out.extend_from_slice(b"@@end\n");
        assert_eq!(decode(&out).unwrap(), frames);
        // cut off, an unreadable file, garbage: errors, never frames
        assert!(decode(&out[..out.len() - 8]).is_err());
        let e = decode(b"E\t7\t/x/7.: No such file or directory\n@@end\n").unwrap_err();
        assert!(e.to_string().contains("UID 7: /x/7.: No such file"), "{e}");
        assert!(decode(b"M\t7\tx\t3\nabc@@end\n").is_err());
        assert!(decode(b"@@error mbpath names no directory\n").is_err());
    }

    #[test]
    fn inject_reports_the_uids_it_gave() {
        let got = given_uids("I\t7\t31\tnew\nI\t9\t9\tsame\nuser/alice: reconstructed\n");
        assert_eq!(got, BTreeMap::from([(7, 31), (9, 9)]));
    }

    #[test]
    fn a_guid_is_the_sha1_of_the_file() {
        assert_eq!(guid_of(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }

    #[test]
    fn only_the_users_messages_in_mailboxes_on_both_hosts_are_injected() {
        let mut d = Divergence::default();
        for (mb, u) in [
            ("user/alice", "alice"),
            ("user/alice/Old", "alice"),
            ("user/bob", "bob"),
        ] {
            d.owners.insert(mb.into(), u.into());
        }
        d.mailboxes_only_on_old = vec!["user/alice/Old".into()];
        d.messages_only_on_old = vec![
            ("user/alice".into(), 2, "g2".into()),
            ("user/alice".into(), 5, "g5".into()),
            ("user/alice/Old".into(), 1, "go".into()),
            ("user/bob".into(), 1, "gb".into()),
        ];
        let m = to_inject(&d, "alice");
        assert_eq!(
            m,
            BTreeMap::from([(
                "user/alice".to_string(),
                vec![(2, "g2".to_string()), (5, "g5".into())]
            )])
        );
        assert_eq!(folders_only_on_old(&d, "alice"), vec!["user/alice/Old"]);
    }
}
