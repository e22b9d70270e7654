//! One host's mailboxes in bulk: ONE exec lists every mailbox
//! (`ctl_mboxlist -d`, tombstones included) with its cyrus.index header,
//! and the master's pending sync-log lines; a second exec fetches the full
//! index (and user-flag names) of only the mailboxes that differ. The
//! remote side is a read-only perl script (inventory.pl).

use super::index::{self, IndexHeader, IndexRecord};

use crate::config::HostConfig;
use crate::remote::RemoteCommand;
use std::collections::BTreeMap;

pub(crate) const SCRIPT: &str = include_str!("inventory.pl");

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
    pub header: Result<IndexHeader, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Inventory {
    pub mailboxes: Vec<MailboxEntry>,
    /// (channel, distinct pending sync-log line).
    pub pending: Vec<(String, String)>,
    pub pending_truncated: bool,
}

/// Full records of one mailbox, with its user-flag names.
#[derive(Clone, Debug, PartialEq)]
pub struct MailboxRecords {
    pub header: IndexHeader,
    pub records: Vec<IndexRecord>,
    /// Expunged records still in the index (uid, guid).
    pub expunged: Vec<(u32, String)>,
    pub flag_names: Vec<String>,
}

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

pub fn headers_command(h: &HostConfig) -> RemoteCommand {
    perl(h, "headers", [])
}

/// Only the master's pending sync-log lines (for waiting on the queue).
pub fn pending_command(h: &HostConfig) -> RemoteCommand {
    perl(h, "pending", [])
}

/// (channel, distinct pending line) and whether the list was cut.
pub fn parse_pending(out: &str) -> Result<(Vec<(String, String)>, bool), String> {
    let mut pending = Vec::new();
    let mut truncated = false;
    for (n, line) in framed(out)?.enumerate() {
        if let Some(rest) = line.strip_prefix("P\t") {
            let (ch, entry) = rest
                .split_once('\t')
                .ok_or(format!("line {}: bad pending line", n + 2))?;
            pending.push((ch.to_string(), entry.to_string()));
        } else if line == "@@pending_truncated" {
            truncated = true;
        }
    }
    Ok((pending, truncated))
}

pub fn records_command(h: &HostConfig, mailboxes: &[&MailboxEntry]) -> RemoteCommand {
    perl(
        h,
        "records",
        mailboxes
            .iter()
            .map(|m| format!("{}:{}:{}:{}", m.partition, m.uniqueid, m.mbtype, m.name)),
    )
}

/// Strict hex: byte pairs of `0-9a-fA-F` only. Works on bytes, never on
/// string positions (remote output may hold any UTF-8: slicing `&s[i..i+2]`
/// panicked inside a multi-byte character), and refuses what
/// `from_str_radix` would let through (`+f`).
fn unhex(s: &str) -> Result<Vec<u8>, String> {
    fn nibble(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let b = s.as_bytes();
    if !b.len().is_multiple_of(2) {
        return Err("odd hex length".into());
    }
    b.chunks_exact(2)
        .map(|p| match (nibble(p[0]), nibble(p[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err("bad hex".to_string()),
        })
        .collect()
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
    mbtype: Option<String>,
    partition: Option<String>,
}

fn is_tombstone(mbtype: &str) -> bool {
    mbtype.chars().skip(1).any(|c| c == 'd' || c == 'i')
}

pub fn parse_headers(out: &str) -> Result<Inventory, String> {
    let mut json = String::new();
    let mut headers: BTreeMap<&str, Result<IndexHeader, String>> = BTreeMap::new();
    let mut inv = Inventory::default();
    let mut list_exit = None;
    for (n, line) in framed(out)?.enumerate() {
        if let Some(l) = line.strip_prefix("L\t") {
            json.push_str(l);
            json.push('\n');
        } else if let Some(rest) = line.strip_prefix("H\t") {
            let (u, hex) = rest
                .split_once('\t')
                .ok_or(format!("line {}: bad header line", n + 2))?;
            headers.insert(u, unhex(hex).and_then(|b| index::parse_header(&b)));
        } else if let Some(rest) = line.strip_prefix("E\t") {
            let (u, why) = rest.split_once('\t').unwrap_or((rest, "unreadable"));
            headers.insert(u, Err(why.to_string()));
        } else if let Some(code) = line.strip_prefix("@@mboxlist_exit ") {
            list_exit = code.trim().parse::<i32>().ok();
        }
    }
    (inv.pending, inv.pending_truncated) = parse_pending(out)?;
    if list_exit != Some(0) {
        return Err(format!(
            "ctl_mboxlist -d failed (exit {list_exit:?}): {}",
            json.lines().next().unwrap_or("")
        ));
    }
    let list: BTreeMap<String, ListEntry> = if json.trim().is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&json)
            .map_err(|e| format!("ctl_mboxlist -d output unreadable: {e}"))?
    };
    for (name, e) in list {
        let mbtype = e.mbtype.unwrap_or_else(|| "e".into());
        let uniqueid = e.uniqueid.unwrap_or_default();
        let tombstone = is_tombstone(&mbtype);
        let header = match headers.remove(uniqueid.as_str()) {
            Some(h) => h,
            None if tombstone => Err("no index (deleted or intermediate)".into()),
            None => Err("no index header read".into()),
        };
        inv.mailboxes.push(MailboxEntry {
            name,
            uniqueid,
            partition: e.partition.unwrap_or_else(|| "default".into()),
            mbtype,
            tombstone,
            header,
        });
    }
    Ok(inv)
}

/// uniqueid -> its records (or why they could not be read).
pub fn parse_records(
    out: &str,
) -> Result<BTreeMap<String, Result<MailboxRecords, String>>, String> {
    let mut index: BTreeMap<String, Result<index::Records, String>> = BTreeMap::new();
    let mut flags: BTreeMap<String, Vec<String>> = BTreeMap::new();
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
            _ => {}
        }
    }
    Ok(index
        .into_iter()
        .map(|(u, r)| {
            let names = flags.remove(&u).unwrap_or_default();
            let v = r.map(|r| MailboxRecords {
                header: r.header,
                records: r.live,
                expunged: r.expunged,
                flag_names: names,
            });
            (u, v)
        })
        .collect())
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
}
