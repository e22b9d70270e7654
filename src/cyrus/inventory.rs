//! One host's mailboxes in bulk: ONE exec lists every mailbox
//! (`ctl_mboxlist -d`, tombstones included) with its cyrus.index header,
//! and the master's pending sync-log lines; a second exec fetches the full
//! index (and user-flag names) of only the mailboxes that differ. The
//! remote side is a read-only perl script (inventory.pl).

use super::hex::unhex;
use super::index::{self, IndexHeader, IndexRecord};
use super::user_state::{annotation_shown, hex_text, is_inbox, UserState};

use crate::config::HostConfig;
use crate::remote::RemoteCommand;
use std::collections::BTreeMap;

pub const SCRIPT: &str = include_str!("inventory.pl");

#[derive(Clone, Debug, PartialEq)]
pub struct MailboxEntry {
    /// Internal name (`user.alice.Sent`).
    pub name: String,
    pub uniqueid: String,
    pub partition: String,
    /// ctl_mboxlist's type: `e` email, then flags (`d` deleted, `i`
    /// intermediate, `l` legacy directories, ...).
    pub mbtype: String,
    /// Deleted (tombstone) or intermediate: no index to compare.
    pub tombstone: bool,
    /// The mailbox's ACL as mailboxes.db holds it: identifier -> rights.
    pub acl: BTreeMap<String, String>,
    pub header: Result<IndexHeader, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    pub mailboxes: Vec<MailboxEntry>,
    /// (channel, distinct pending sync-log line).
    pub pending: Vec<(String, String)>,
    /// Channel -> how many distinct pending lines were left out (the list
    /// is cut at [`PENDING_CAP`] per channel).
    pub pending_cut: PendingCut,
}

/// Channel -> distinct pending lines not listed.
pub type PendingCut = BTreeMap<String, u64>;

/// At most this many distinct pending lines per channel are listed: a
/// backlog's distinct lines are bounded by the site's mailboxes and users,
/// so this covers a large site's whole queue; beyond it the check says
/// what it could not read instead of guessing.
pub const PENDING_CAP: u64 = 250_000;

/// Full records of one mailbox, with its user-flag names.
#[derive(Clone, Debug, PartialEq)]
pub struct MailboxRecords {
    pub header: IndexHeader,
    pub records: Vec<IndexRecord>,
    /// Expunged records still in the index (uid, guid).
    pub expunged: Vec<(u32, String)>,
    pub flag_names: Vec<String>,
    /// Message annotations (its cyrus.annotations), or why they could not
    /// be read.
    pub annotations: Result<MessageAnnotations, String>,
}

/// (uid, entry, userid) -> value as shown ("" shared, "[.OwNeR.]" the
/// owner's private).
pub type MessageAnnotations = BTreeMap<(u32, String, String), String>;

fn perl(h: &HostConfig, mode: &str, args: impl IntoIterator<Item = String>) -> RemoteCommand {
    let mut argv = vec![
        "perl".to_string(),
        "-e".to_string(),
        SCRIPT.to_string(),
        h.imapd_conf.display().to_string(),
        h.bin_dir.display().to_string(),
        mode.to_string(),
    ];
    argv.extend(args);
    RemoteCommand::read(argv)
}

/// `filter`: `user:<INBOX>` or `mailbox:<name>` (internal names) lists
/// only that scope's mailboxes and per-user state (check::Scope builds it).
pub fn headers_command(h: &HostConfig, filter: Option<&str>) -> RemoteCommand {
    let mut args = vec![PENDING_CAP.to_string()];
    args.extend(filter.map(str::to_string));
    perl(h, "headers", args)
}

/// Only the master's pending sync-log lines (for waiting on the queue).
pub fn pending_command(h: &HostConfig) -> RemoteCommand {
    perl(h, "pending", [PENDING_CAP.to_string()])
}

/// (channel, distinct pending line) and what each cut channel left out.
pub fn parse_pending(out: &str) -> Result<(Vec<(String, String)>, PendingCut), String> {
    let mut pending = Vec::new();
    let mut cut = PendingCut::new();
    for (n, line) in framed(out)?.enumerate() {
        if let Some(rest) = line.strip_prefix("P\t") {
            let (ch, entry) = rest
                .split_once('\t')
                .ok_or(format!("line {}: bad pending line", n + 2))?;
            pending.push((ch.to_string(), entry.to_string()));
        } else if let Some(rest) = line.strip_prefix("@@pending_cut\t") {
            let (ch, n) = cut_line(rest).ok_or(format!("line {}: bad pending_cut line", n + 2))?;
            cut.insert(ch, n);
        }
    }
    Ok((pending, cut))
}

/// `<channel>\t<count>` of a `@@pending_cut` line.
fn cut_line(rest: &str) -> Option<(String, u64)> {
    let (ch, n) = rest.split_once('\t')?;
    Some((ch.to_string(), n.trim().parse().ok()?))
}

/// `records` reads its mailboxes from stdin ([`records_input`]): the list
/// grows with the site, and one exec request (one SSH packet: OpenSSH drops
/// a session whose packet is over 256 KB) or one argument list must not.
pub fn records_command(h: &HostConfig) -> RemoteCommand {
    perl(h, "records", [])
}

/// One line per mailbox, `PARTITION:UNIQUEID:MBTYPE:HEXNAME` (the name in
/// hex: whatever bytes a hostile name holds, it stays one field of one line).
pub fn records_input(mailboxes: &[&MailboxEntry]) -> Vec<u8> {
    let mut input = Vec::new();
    for m in mailboxes {
        input.extend_from_slice(format!("{}:{}:{}:", m.partition, m.uniqueid, m.mbtype).as_bytes());
        for b in m.name.bytes() {
            input.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        input.push(b'\n');
    }
    input
}

/// What reading `m`'s whole index is expected to print (hex doubles it): a
/// batch of mailboxes is cut to stay well under one exec's output cap.
pub fn records_output_estimate(m: &MailboxEntry) -> u64 {
    let body = match &m.header {
        Ok(h) => u64::from(h.start_offset) + u64::from(h.num_records) * u64::from(h.record_size),
        Err(_) => 0,
    };
    2 * body + 4096
}

fn framed(out: &str) -> Result<impl Iterator<Item = &str>, String> {
    let mut lines = out.lines();
    match lines.next() {
        Some("@@inventory 1") => {}
        other => {
            return Err(format!(
                "inventory output does not start with its header (got {other:?})"
            ))
        }
    }
    if let Some(e) = out.lines().find_map(|l| l.strip_prefix("@@error ")) {
        return Err(e.to_string());
    }
    if !out.lines().any(|l| l == "@@end") {
        return Err("inventory output is truncated (no @@end)".into());
    }
    Ok(lines)
}

#[derive(serde::Deserialize)]
struct ListEntry {
    uniqueid: Option<String>,
    acl: Option<BTreeMap<String, String>>,
    mbtype: Option<String>,
    partition: Option<String>,
}

fn is_tombstone(mbtype: &str) -> bool {
    mbtype.chars().skip(1).any(|c| c == 'd' || c == 'i')
}

/// The `headers` output of one host read as it comes: complete lines are
/// parsed at once, one mailbox (its list line, then its index header line)
/// is handed out as soon as its header has been seen. Nothing of the output
/// is kept but the current partial line, the mailbox waiting for its
/// header, and the (bounded) pending sync-log lines.
#[derive(Default)]
pub struct HeadersReader {
    /// Bytes of a line not yet complete.
    partial: Vec<u8>,
    /// Lines seen (for messages: line 1 is the frame header).
    lines: usize,
    started: bool,
    ended: bool,
    /// `@@error` from the script: it goes to the operator as it is.
    error: Option<String>,
    /// The first list line (what a failing ctl_mboxlist said) and the first
    /// list line that did not read as an entry.
    first_list_line: Option<String>,
    bad_list_line: Option<String>,
    list_exit: Option<i32>,
    /// The mailbox listed last, and its header once its line came.
    current: Option<(MailboxEntry, Option<Result<IndexHeader, String>>)>,
    pending: Vec<(String, String)>,
    pending_cut: PendingCut,
    user_state: UserState,
}

/// What a host's `headers` output says besides its mailboxes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HeadersTail {
    pub pending: Vec<(String, String)>,
    pub pending_cut: PendingCut,
    /// Quota roots and subscriptions (user_state.rs).
    pub user_state: UserState,
}

impl HeadersReader {
    /// Take the next piece of output (cut anywhere); mailboxes complete so
    /// far go to `out`. An error is final: the output cannot be read.
    pub fn push(
        &mut self,
        chunk: &[u8],
        out: &mut impl Extend<MailboxEntry>,
    ) -> Result<(), String> {
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(i);
            rest = &after[1..];
            if self.partial.is_empty() {
                self.line(line, out)?;
            } else {
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                self.line(&whole, out)?;
            }
        }
        self.partial.extend_from_slice(rest);
        Ok(())
    }

    /// The output ended: the last mailbox goes to `out`, then the verdict
    /// on the whole (framing, ctl_mboxlist's exit, unreadable list lines).
    pub fn finish(mut self, out: &mut impl Extend<MailboxEntry>) -> Result<HeadersTail, String> {
        // a last line without its newline: only the frame's own lines
        // count (a cut-off mailbox line is the truncation said below)
        let last = std::mem::take(&mut self.partial);
        if !last.is_empty()
            && (!self.started || last.strip_suffix(b"\r").unwrap_or(&last) == b"@@end")
        {
            self.line(&last, out)?;
        }
        if !self.started {
            return Err("inventory output does not start with its header (got None)".into());
        }
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if !self.ended {
            return Err("inventory output is truncated (no @@end)".into());
        }
        if self.list_exit != Some(0) {
            return Err(format!(
                "ctl_mboxlist -d failed (exit {:?}): {}",
                self.list_exit,
                self.first_list_line.as_deref().unwrap_or("")
            ));
        }
        if let Some(e) = self.bad_list_line.take() {
            return Err(format!("ctl_mboxlist -d output unreadable: {e}"));
        }
        self.flush(out);
        Ok(HeadersTail {
            pending: self.pending,
            pending_cut: self.pending_cut,
            user_state: self.user_state,
        })
    }

    fn flush(&mut self, out: &mut impl Extend<MailboxEntry>) {
        if let Some((mut m, h)) = self.current.take() {
            m.header = match h {
                Some(h) => h,
                None if m.tombstone => Err("no index (deleted or intermediate)".into()),
                None => Err("no index header read".into()),
            };
            if !m.tombstone && is_inbox(&m.name) {
                self.user_state.users.insert(m.name.clone());
            }
            out.extend(std::iter::once(m));
        }
    }

    fn line(&mut self, raw: &[u8], out: &mut impl Extend<MailboxEntry>) -> Result<(), String> {
        self.lines += 1;
        let line = String::from_utf8_lossy(raw);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if !self.started {
            if line != "@@inventory 1" {
                return Err(format!(
                    "inventory output does not start with its header (got {:?})",
                    Some(line)
                ));
            }
            self.started = true;
            return Ok(());
        }
        if self.ended || self.error.is_some() {
            // after @@end nothing counts; after @@error, only that error
            return Ok(());
        }
        let n = self.lines;
        if let Some(e) = line.strip_prefix("@@error ") {
            self.error = Some(e.to_string());
        } else if line == "@@end" {
            self.ended = true;
        } else if let Some(l) = line.strip_prefix("L\t") {
            self.flush(out);
            if self.first_list_line.is_none() {
                self.first_list_line = Some(l.to_string());
            }
            if self.bad_list_line.is_none() {
                match list_line(l) {
                    Ok(Some(m)) => self.current = Some((m, None)),
                    Ok(None) => {}
                    Err(e) => self.bad_list_line = Some(format!("line {n}: {e}")),
                }
            }
        } else if let Some(rest) = line.strip_prefix("H\t") {
            let (u, hex) = rest
                .split_once('\t')
                .ok_or(format!("line {n}: bad header line"))?;
            self.header(u, unhex(hex).and_then(|b| index::parse_header(&b)));
        } else if let Some(rest) = line.strip_prefix("E\t") {
            let (u, why) = rest.split_once('\t').unwrap_or((rest, "unreadable"));
            self.header(u, Err(why.to_string()));
        } else if let Some(code) = line.strip_prefix("@@mboxlist_exit ") {
            self.flush(out);
            self.list_exit = code.trim().parse::<i32>().ok();
        } else if let Some(rest) = line.strip_prefix("P\t") {
            let (ch, entry) = rest
                .split_once('\t')
                .ok_or(format!("line {n}: bad pending line"))?;
            self.pending.push((ch.to_string(), entry.to_string()));
        } else if let Some(rest) = line.strip_prefix("@@pending_cut\t") {
            let (ch, left_out) = cut_line(rest).ok_or(format!("line {n}: bad pending_cut line"))?;
            self.pending_cut.insert(ch, left_out);
        } else {
            self.user_state
                .line(line)
                .map_err(|e| format!("line {n}: {e}"))?;
        }
        Ok(())
    }

    /// A header line belongs to the mailbox listed just before it.
    fn header(&mut self, uniqueid: &str, h: Result<IndexHeader, String>) {
        if let Some((m, slot @ None)) = self.current.as_mut() {
            if m.uniqueid == uniqueid {
                *slot = Some(h);
            }
        }
    }
}

/// One line of `ctl_mboxlist -d` (`"NAME": {...},`); its braces alone
/// (`{`, `}`) are `None`. The header is filled in when its line comes.
fn list_line(l: &str) -> Result<Option<MailboxEntry>, String> {
    let t = l.trim();
    if matches!(t, "" | "{" | "}" | "{}") {
        return Ok(None);
    }
    let t = t.strip_suffix(',').unwrap_or(t);
    let one: BTreeMap<String, ListEntry> =
        serde_json::from_str(&format!("{{{t}}}")).map_err(|e| e.to_string())?;
    let Some((name, e)) = one.into_iter().next() else {
        return Ok(None);
    };
    let mbtype = e.mbtype.unwrap_or_else(|| "e".into());
    Ok(Some(MailboxEntry {
        name,
        uniqueid: e.uniqueid.unwrap_or_default(),
        partition: e.partition.unwrap_or_else(|| "default".into()),
        tombstone: is_tombstone(&mbtype),
        mbtype,
        acl: e.acl.unwrap_or_default(),
        header: Err("no index header read".into()),
    }))
}

/// A whole `headers` output at once (what the hard failover reads): every
/// mailbox by name (one entry per name, the last listed), and the pending
/// lines.
pub fn parse_headers(out: &str) -> Result<Inventory, String> {
    let mut r = HeadersReader::default();
    let mut boxes = Vec::new();
    r.push(out.as_bytes(), &mut boxes)?;
    let tail = r.finish(&mut boxes)?;
    Ok(Inventory::from_entries(boxes, tail))
}

impl Inventory {
    /// Every mailbox by name (one entry per name, the last listed).
    pub fn from_entries(boxes: Vec<MailboxEntry>, tail: HeadersTail) -> Self {
        let by_name: BTreeMap<String, MailboxEntry> =
            boxes.into_iter().map(|m| (m.name.clone(), m)).collect();
        Inventory {
            mailboxes: by_name.into_values().collect(),
            pending: tail.pending,
            pending_cut: tail.pending_cut,
        }
    }
}

/// uniqueid -> its records (or why they could not be read).
pub fn parse_records(
    out: &str,
) -> Result<BTreeMap<String, Result<MailboxRecords, String>>, String> {
    let mut index: BTreeMap<String, Result<index::Records, String>> = BTreeMap::new();
    let mut flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut annotations: BTreeMap<String, Result<MessageAnnotations, String>> = BTreeMap::new();
    for line in framed(out)? {
        let mut f = line.splitn(3, '\t');
        let (tag, u, rest) = (f.next(), f.next(), f.next().unwrap_or(""));
        let Some(u) = u else { continue };
        match tag {
            Some("R") => {
                index.insert(u.into(), unhex(rest).and_then(|b| index::parse_records(&b)));
            }
            Some("C") => {
                flags.insert(
                    u.into(),
                    unhex(rest)
                        .map(|b| index::user_flag_names(&b))
                        .unwrap_or_default(),
                );
            }
            Some("E") => {
                index.insert(u.into(), Err(rest.to_string()));
            }
            Some("M") => {
                let a = annotations.entry(u.into()).or_insert(Ok(BTreeMap::new()));
                match (message_annotation(rest), a) {
                    (Ok((k, v)), Ok(map)) => {
                        map.insert(k, v);
                    }
                    (Err(e), a) => *a = Err(e),
                    (Ok(_), Err(_)) => {}
                }
            }
            Some("X") => {
                let why = rest.split_once('\t').map_or(rest, |(_, w)| w);
                annotations.insert(u.into(), Err(why.to_string()));
            }
            _ => {}
        }
    }
    Ok(index
        .into_iter()
        .map(|(u, r)| {
            let names = flags.remove(&u).unwrap_or_default();
            let notes = annotations.remove(&u).unwrap_or(Ok(BTreeMap::new()));
            let v = r.map(|r| MailboxRecords {
                header: r.header,
                records: r.live,
                expunged: r.expunged,
                flag_names: names,
                annotations: notes,
            });
            (u, v)
        })
        .collect())
}

/// `<uid>\t<hex entry>\t<hex userid>\t<value>` of an `M` line.
fn message_annotation(rest: &str) -> Result<((u32, String, String), String), String> {
    let f: Vec<&str> = rest.splitn(4, '\t').collect();
    let [uid, entry, userid, value] = f[..] else {
        return Err("bad message annotation line".into());
    };
    let uid = uid.parse().map_err(|_| format!("bad UID {uid:?}"))?;
    Ok((
        (uid, hex_text(entry)?, hex_text(userid)?),
        annotation_shown(value)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed_out(body: &str) -> String {
        format!("@@inventory 1\n{body}@@mboxlist_exit 0\n@@end\n")
    }

    /// Issue 15: the hex field was sliced on byte positions, so a multi-byte
    /// character panicked (not on a char boundary).
    #[test]
    fn non_ascii_hex_is_an_error_not_a_panic() {
        for hex in ["aé0a", "é0", "0é", "€a", "ab\u{7f}\u{80}", "+f", "-1", " f"] {
            assert!(unhex(hex).is_err(), "{hex:?}");
            let out = framed_out(&format!("H\tu1\t{hex}\n"));
            assert!(parse_headers(&out).is_ok(), "{hex:?}");
            let out = framed_out(&format!("R\tu1\t{hex}\nC\tu1\t{hex}\n"));
            let recs = parse_records(&out).unwrap();
            assert!(recs["u1"].is_err(), "{hex:?}");
        }
        assert_eq!(unhex("00ffA0").unwrap(), vec![0, 0xff, 0xa0]);
        assert_eq!(unhex("").unwrap(), Vec::<u8>::new());
        assert!(unhex("abc").is_err());
    }

    /// The real script on a config directory of its own: a channel's list
    /// is cut at the cap given, and what was left out is counted per channel.
    #[test]
    fn the_script_cuts_a_long_queue_per_channel_and_says_how_much() {
        let dir = std::env::temp_dir().join(format!("cyrdeck-pending-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sync/replica2")).unwrap();
        let conf = dir.join("imapd.conf");
        std::fs::write(&conf, format!("configdirectory: {}\n", dir.display())).unwrap();
        let mut log = String::new();
        for i in 0..30 {
            // each twice: the list is of distinct lines
            log.push_str(&format!("MAILBOX user.u{i}\nMAILBOX user.u{i}\n"));
        }
        std::fs::write(dir.join("sync/log"), &log).unwrap();
        std::fs::write(dir.join("sync/replica2/log"), "USER bob\n").unwrap();
        let out = std::process::Command::new("perl")
            .args(["-e", SCRIPT])
            .arg(&conf)
            .args(["/nonexistent", "pending", "10"])
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        let (pending, cut) = parse_pending(&String::from_utf8_lossy(&out.stdout)).unwrap();
        assert_eq!(pending.iter().filter(|(c, _)| c.is_empty()).count(), 10);
        assert_eq!(cut.get(""), Some(&20));
        assert!(pending.contains(&("replica2".into(), "USER bob".into())));
        assert_eq!(cut.get("replica2"), None);
    }

    /// The real script with a stand-in ctl_mboxlist listing `n` users: a
    /// scoped listing names only its user's mailboxes, quota root and
    /// subscriptions, and its size does not grow with the site.
    #[test]
    fn a_scoped_listing_carries_only_its_scope_whatever_the_site_size() {
        let run = |n: usize| -> String {
            // one name for both sizes: the output names its paths
            let dir = std::env::temp_dir().join(format!("cyrdeck-scoped-{}", std::process::id()));
            let bin = dir.join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::create_dir_all(dir.join("quota/b")).unwrap();
            let mut list = String::from("{\n");
            for i in 0..n {
                for name in [format!("user.u{i}"), format!("user.u{i}.Sent")] {
                    list.push_str(&format!(
                        "\"{name}\": {{\"mbtype\": \"e\", \"partition\": \"default\", \"uniqueid\": \"x{i}{}\"}},\n",
                        name.len()
                    ));
                }
                std::fs::write(dir.join(format!("quota/b/user.u{i}")), "%(S (0 10))\n").unwrap();
            }
            list.push_str("\"user.bob\": {\"mbtype\": \"e\", \"partition\": \"default\", \"uniqueid\": \"bobid\"},\n}\n");
            std::fs::write(dir.join("list"), &list).unwrap();
            std::fs::write(dir.join("quota/b/user.bob"), "%(S (0 7777))\n").unwrap();
            let tool = bin.join("ctl_mboxlist");
            std::fs::write(
                &tool,
                format!("#!/bin/sh\ncat {}\n", dir.join("list").display()),
            )
            .unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
            let conf = dir.join("imapd.conf");
            std::fs::write(
                &conf,
                format!(
                    "configdirectory: {0}\npartition-default: {0}/spool\n",
                    dir.display()
                ),
            )
            .unwrap();
            let out = std::process::Command::new("perl")
                .args(["-e", SCRIPT])
                .arg(&conf)
                .arg(&bin)
                .args(["headers", "10", "user:user.bob"])
                .output()
                .unwrap();
            std::fs::remove_dir_all(&dir).ok();
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let (small, big) = (run(10), run(1000));
        let inv = parse_headers(&big).unwrap();
        let names: Vec<&str> = inv.mailboxes.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["user.bob"], "{big}");
        assert!(big.contains("Q\tuser.bob\t%(S (0 7777))"), "{big}");
        assert!(!big.contains("user.u1"), "{big}");
        assert_eq!(
            small.len(),
            big.len(),
            "a scoped listing grew with the site:\n{small}\n{big}"
        );
    }
}
