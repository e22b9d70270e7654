//! What Cyrus keeps per user besides messages, as one host's `headers`
//! inventory lists it (inventory.pl): quota roots with their limits, and
//! each user's subscriptions. Where it lives (3.6 to 3.12, the same):
//! - quota: `quota_db: quotalegacy` (the default), one file per root,
//!   `<cfg>/quota/<h>/<root>` (a domain's under `<cfg>/domain/<h>/<dom>/`),
//!   one line `%(S (used limit) M (used) AS (0) NF (2) MODSEQ 3)`: a
//!   resource without a limit has only its usage. Replication carries the
//!   limits (sync_client -u sends QUOTA); usage is counted on each host.
//! - subscriptions: `subscription_db: flat` (the default), the user's
//!   `sub.db` beside the INBOX's uniqueid (`<cfg>/user/uuid/<a>/<b>/<id>/`,
//!   the layout since 3.6) or legacy `<cfg>/user/<h>/<local>.sub`; one
//!   `<key>\t<value>` line per folder, the key `N` + the folder relative
//!   to the user with 0x1f between levels (`NINBOX\x1fWork`), after a
//!   `\x1fVER\x1f` line. sync_client -u makes the replica's equal to the
//!   master's (SUB/UNSUB), lab-measured on 3.6.1.
//! - sieve: since 3.6 the scripts are messages of the user's `#sieve`
//!   mailbox (compared as a mailbox: GUID = the script's sha1; the active
//!   one \Flagged), compiled by each host into `<sievedir>/uuid/<a>/<b>/
//!   <INBOX uniqueid>/NAME.bc`; `defaultbc` links to the one lmtpd runs.
//!   The .bc files are each host's own cache (lab, 3.6.1: a sync that
//!   deactivates a script removes its .bc on the replica only), so only the
//!   link and hand-placed `.script` sources (with their sha1) are compared.
//! - seen state of folders a user does not own (an owner's own is the
//!   \Seen flag in the index): `seenstate_db: twoskip` (the default), the
//!   user's `seen.db` beside the INBOX's uniqueid (legacy `<local>.seen`),
//!   key the folder's uniqueid, value `1 <lastread> <lastuid> <lastchange>
//!   <seenuids>` (imap/seen_db.c). inventory.pl walks the twoskip file
//!   itself (one cyr_dbtool per user would cost a process each).
//!   sync_client -u carries it (APPLY SEEN).

use std::collections::{BTreeMap, BTreeSet};

/// One quota root's resources: name (`STORAGE`, `MESSAGE`, ...) -> limit
/// (`None`: no limit set).
pub type QuotaLimits = BTreeMap<String, Option<u64>>;

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserState {
    /// Users' INBOXes listed (internal names): only users on both hosts
    /// are compared (one on one side is already a mailbox difference).
    pub users: BTreeSet<String>,
    /// Quota root (internal name) -> its limits.
    pub quota: BTreeMap<String, QuotaLimits>,
    /// INBOX (internal name) -> subscribed folders, as the user sees them
    /// (`INBOX`, `INBOX/Work`).
    pub subscriptions: BTreeMap<String, BTreeSet<String>>,
    /// INBOX (internal name) -> its sieve directory's state.
    pub sieve: BTreeMap<String, Sieve>,
    /// Mailbox (internal name; "" for the server) -> its annotations in
    /// annotations.db: (entry, userid) -> value as shown.
    pub annotations: BTreeMap<String, BTreeMap<(String, String), String>>,
    /// Reader's INBOX (internal name) -> folder uniqueid -> that user's
    /// seen state of it.
    pub seen: BTreeMap<String, BTreeMap<String, SeenState>>,
    /// What could not be read: (store, why), and (INBOX, store, why).
    pub unread: Vec<(String, String)>,
    pub unread_users: Vec<(String, String, String)>,
}

/// What a user's sieve directory holds that matters after a failover.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sieve {
    /// The script lmtpd runs (`defaultbc`'s target without `.bc`).
    pub active: Option<String>,
    /// Script sources in the directory (name without `.script`) -> sha1.
    pub sources: BTreeMap<String, String>,
}

/// One user's seen state of a folder they do not own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SeenState {
    /// The folder's internal name, when the listing held it (a scoped
    /// check lists only its own mailboxes).
    pub mailbox: String,
    pub last_uid: u32,
    /// Seen UIDs as Cyrus keeps them (`1:3,5`).
    pub uids: String,
}

/// Is this internal name a user's INBOX (`user.bob`, `example.com!user.bob`)?
pub fn is_inbox(name: &str) -> bool {
    let local = name.split_once('!').map_or(name, |(_, l)| l);
    local
        .strip_prefix("user.")
        .is_some_and(|u| !u.is_empty() && !u.contains('.'))
}

impl UserState {
    /// One line of the inventory's per-user part (its prefix taken off by
    /// the caller: `Q`, `S`, `X` or `@@unread`). Returns false for a line
    /// that is none of these.
    pub fn line(&mut self, line: &str) -> Result<bool, String> {
        if let Some(rest) = line.strip_prefix("Q\t") {
            let (root, text) = rest.split_once('\t').ok_or("bad quota line")?;
            self.quota.insert(root.to_string(), parse_quota(text)?);
        } else if let Some(rest) = line.strip_prefix("S\t") {
            let (inbox, hex) = rest.split_once('\t').ok_or("bad subscription line")?;
            let key = super::hex::unhex(hex)?;
            self.subscriptions
                .entry(inbox.to_string())
                .or_default()
                .insert(subscription_name(&key));
        } else if let Some(rest) = line.strip_prefix("A\t") {
            let (inbox, hex) = rest.split_once('\t').ok_or("bad sieve link line")?;
            let target = shown(&super::hex::unhex(hex)?);
            let name = target.strip_suffix(".bc").unwrap_or(&target).to_string();
            self.sieve.entry(inbox.to_string()).or_default().active = Some(name);
        } else if let Some(rest) = line.strip_prefix("V\t") {
            let mut f = rest.splitn(3, '\t');
            let (Some(inbox), Some(hex), Some(sha1)) = (f.next(), f.next(), f.next()) else {
                return Err("bad sieve script line".into());
            };
            let file = shown(&super::hex::unhex(hex)?);
            let name = file.strip_suffix(".script").unwrap_or(&file).to_string();
            self.sieve
                .entry(inbox.to_string())
                .or_default()
                .sources
                .insert(name, sha1.to_string());
        } else if let Some(rest) = line.strip_prefix("N\t") {
            let f: Vec<&str> = rest.splitn(4, '\t').collect();
            let [mailbox, entry, userid, value] = f[..] else {
                return Err("bad annotation line".into());
            };
            self.annotations
                .entry(mailbox.to_string())
                .or_default()
                .insert(
                    (hex_text(entry)?, hex_text(userid)?),
                    annotation_shown(value)?,
                );
        } else if let Some(rest) = line.strip_prefix("W\t") {
            let f: Vec<&str> = rest.splitn(5, '\t').collect();
            let [inbox, id, mailbox, last, uids] = f[..] else {
                return Err("bad seen line".into());
            };
            let last_uid = last
                .parse()
                .map_err(|_| format!("bad last seen UID {last:?}"))?;
            self.seen.entry(inbox.to_string()).or_default().insert(
                id.to_string(),
                SeenState {
                    mailbox: mailbox.to_string(),
                    last_uid,
                    uids: uids.to_string(),
                },
            );
        } else if let Some(rest) = line.strip_prefix("X\t") {
            let mut f = rest.splitn(3, '\t');
            let (inbox, store, why) = (f.next(), f.next(), f.next());
            let (Some(i), Some(s), Some(w)) = (inbox, store, why) else {
                return Err("bad unread line".into());
            };
            self.unread_users
                .push((i.to_string(), s.to_string(), w.to_string()));
        } else if let Some(rest) = line.strip_prefix("@@unread\t") {
            let (store, why) = rest.split_once('\t').unwrap_or((rest, ""));
            self.unread.push((store.to_string(), why.to_string()));
        } else {
            return Ok(false);
        }
        Ok(true)
    }
}

/// Hex of bytes, as text (invalid UTF-8 replaced).
pub fn hex_text(h: &str) -> Result<String, String> {
    super::hex::unhex(h).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// An annotation value as inventory.pl sends it (hex, or `len:<n>:sum:<s>`
/// for a long one), as the operator reads it: quoted, or `(<n>:sum:<s>)`.
pub fn annotation_shown(value: &str) -> Result<String, String> {
    Ok(match value.strip_prefix("len:") {
        Some(long) => format!("({long})"),
        None => format!("{:?}", hex_text(value)?),
    })
}

/// `%(S (0 5555) M (12) MODSEQ 3)` -> {S: 5555, M: none}: each resource
/// is followed by `(usage [limit])`; MODSEQ and anything unknown that is
/// not a parenthesised list are skipped.
pub fn parse_quota(text: &str) -> Result<QuotaLimits, String> {
    let body = text
        .trim()
        .strip_prefix("%(")
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("quota line not %(...): {text:?}"))?;
    let mut out = QuotaLimits::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let (word, after) = rest.split_once(' ').unwrap_or((rest, ""));
        let after = after.trim_start();
        if let Some(inner) = after.strip_prefix('(') {
            let (list, tail) = inner
                .split_once(')')
                .ok_or_else(|| format!("unclosed list in quota line {text:?}"))?;
            let nums: Vec<&str> = list.split_whitespace().collect();
            let limit = match nums.as_slice() {
                [_usage] => None,
                [_usage, limit] => Some(
                    limit
                        .parse::<i64>()
                        .map_err(|_| format!("bad limit {limit:?} in {text:?}"))?,
                )
                // Cyrus writes -1 for "no limit" in some releases
                .filter(|l| *l >= 0)
                .map(|l| l as u64),
                _ => return Err(format!("bad resource list ({list}) in {text:?}")),
            };
            out.insert(resource_name(word), limit);
            rest = tail.trim_start();
        } else {
            // `MODSEQ 3`: a word and its value
            let (_, tail) = after.split_once(' ').unwrap_or((after, ""));
            rest = tail.trim_start();
        }
    }
    Ok(out)
}

/// The IMAP name of a quotalegacy resource letter.
fn resource_name(code: &str) -> String {
    match code {
        "S" => "STORAGE",
        "M" => "MESSAGE",
        "AS" => "X-ANNOTATION-STORAGE",
        "NF" => "X-NUM-FOLDERS",
        other => other,
    }
    .to_string()
}

/// A sub.db key as the user sees the folder: `NINBOX\x1fWork` ->
/// `INBOX/Work`; bytes that are not printable stay visible as `\xNN`.
fn subscription_name(key: &[u8]) -> String {
    shown(key.strip_prefix(b"N").unwrap_or(key))
}

/// Bytes for the operator: 0x1f (Cyrus's level separator) as `/`, 0x1d
/// as `!`, other control bytes and invalid UTF-8 as `\xNN`.
fn shown(key: &[u8]) -> String {
    let mut out = String::new();
    for chunk in key.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\x1f' => out.push('/'),
                '\x1d' => out.push('!'),
                c if c.is_control() => out.push_str(&format!("\\x{:02x}", c as u32)),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_lines_as_cyrus_writes_them() {
        let q = parse_quota("%(S (0 5555) M (0) AS (0) NF (2) MODSEQ 3)").unwrap();
        assert_eq!(q["STORAGE"], Some(5555));
        assert_eq!(q["MESSAGE"], None);
        assert_eq!(q["X-NUM-FOLDERS"], None);
        let q = parse_quota("%(S (120 7777) M (3 100) MODSEQ 5)").unwrap();
        assert_eq!((q["STORAGE"], q["MESSAGE"]), (Some(7777), Some(100)));
        assert_eq!(parse_quota("%(S (1 -1))").unwrap()["STORAGE"], None);
        for bad in ["S (0 1)", "%(S (0 1 2))", "%(S (0 x))", "%(S (0 1)"] {
            assert!(parse_quota(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn subscriptions_read_as_the_user_sees_them() {
        let mut s = UserState::default();
        for l in [
            "S\tuser.qa\t4e494e424f58",
            "S\tuser.qa\t4e494e424f581f576f726b",
            "S\tuser.qa\t4e494e424f581f0aff",
            "Q\tuser.qa\t%(S (0 10))",
            "X\tuser.qb\tsubscriptions\t/x/sub.db: Permission denied",
            "@@unread\tquota\tquota_db twoskip",
        ] {
            assert!(s.line(l).unwrap(), "{l}");
        }
        assert!(!s.line("P\t\tAPPEND user.qa").unwrap());
        assert!(s.line("S\tuser.qa\tzz").is_err());
        let subs: Vec<&String> = s.subscriptions["user.qa"].iter().collect();
        assert_eq!(subs, ["INBOX", "INBOX/Work", "INBOX/\\x0a\\xff"]);
        assert_eq!(s.quota["user.qa"]["STORAGE"], Some(10));
        assert_eq!(s.unread_users[0].0, "user.qb");
        assert_eq!(s.unread[0].1, "quota_db twoskip");
    }

    #[test]
    fn annotations_are_read_with_who_they_belong_to() {
        let mut s = UserState::default();
        for l in [
            "N\tuser.qa\t2f636f6d6d656e74\t\t736861726564206f6e65",
            "N\tuser.qa\t2f636f6d6d656e74\t5b2e4f774e65522e5d\t68656c6c6f09746162",
            "N\t\t2f6d6f7464\t\tlen:600:sum:12345",
        ] {
            assert!(s.line(l).unwrap(), "{l}");
        }
        let qa = &s.annotations["user.qa"];
        assert_eq!(qa[&("/comment".into(), "".into())], "\"shared one\"");
        assert_eq!(
            qa[&("/comment".into(), "[.OwNeR.]".into())],
            "\"hello\\ttab\""
        );
        assert_eq!(
            s.annotations[""][&("/motd".into(), "".into())],
            "(600:sum:12345)"
        );
        assert!(s.line("N\tuser.qa\tzz\t\t00").is_err());
        assert!(s.line("N\tuser.qa\t00").is_err());
    }

    #[test]
    fn the_active_script_and_sources_are_read() {
        let mut s = UserState::default();
        for l in [
            "A\tuser.qa\t7265706f6e6c792e6263",
            "V\tuser.qa\t68616e642e736372697074\t278dfea7730b1f6249f4238c77ab90b4b78c6d06",
        ] {
            assert!(s.line(l).unwrap(), "{l}");
        }
        let v = &s.sieve["user.qa"];
        assert_eq!(v.active.as_deref(), Some("reponly"));
        assert_eq!(
            v.sources["hand"],
            "278dfea7730b1f6249f4238c77ab90b4b78c6d06"
        );
        assert!(s.line("V\tuser.qa\t00").is_err());
    }

    #[test]
    fn seen_state_is_read_per_reader_and_folder() {
        let mut s = UserState::default();
        assert!(s
            .line("W\tuser.qa\t8e1c0a3f-uid\tshared.team\t5\t1:3,5")
            .unwrap());
        assert!(s.line("W\tuser.qa\tother-uid\t\t0\t").unwrap());
        let qa = &s.seen["user.qa"];
        assert_eq!(qa["8e1c0a3f-uid"].mailbox, "shared.team");
        assert_eq!(
            (
                qa["8e1c0a3f-uid"].last_uid,
                qa["8e1c0a3f-uid"].uids.as_str()
            ),
            (5, "1:3,5")
        );
        assert_eq!(qa["other-uid"].uids, "");
        assert!(s.line("W\tuser.qa\tx\tshared.team\tfive\t1").is_err());
        assert!(s.line("W\tuser.qa\tx").is_err());
    }

    #[test]
    fn inboxes_are_user_roots_only() {
        for y in ["user.bob", "example.com!user.bob", "user.b^ob"] {
            assert!(is_inbox(y), "{y}");
        }
        for n in ["user.bob.Sent", "shared", "user.", "example.com!shared.x"] {
            assert!(!is_inbox(n), "{n}");
        }
    }
}
