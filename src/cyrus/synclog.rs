//! Sync log entries (the replication queue): one event per line, e.g.
//! `APPEND user.alice`, `MAILBOX "user.alice.With Space"`, `USER alice`,
//! `RENAME a b`. Names holding spaces are double-quoted (seen in the lab:
//! `APPEND "user.alice.$(touch .tmp.pwned)"` for the folder
//! `user/alice/$(touch /tmp/pwned)`: the `/` became the `.` separator).
//! Non-ASCII names are modified UTF-7 (`user.alice.Entw&APw-rfe`).

use super::names::{from_mutf7, internal_to_external, owner_of};
use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SyncEntry {
    pub kind: String,
    pub args: Vec<String>,
}

impl SyncEntry {
    /// The user this entry replicates, whatever its kind.
    pub fn user(&self) -> Option<String> {
        let first = self.args.first()?;
        match self.kind.as_str() {
            "USER" | "UNUSER" | "META" | "SIEVE" => Some(first.clone()),
            "SEEN" | "SUB" | "UNSUB" => Some(first.clone()),
            _ => owner_of(first),
        }
    }

    /// The mailbox's internal name as logged (`user.alice.Entw&APw-rfe`),
    /// if the entry names one.
    pub fn internal_mailbox(&self) -> Option<&str> {
        match self.kind.as_str() {
            "APPEND" | "MAILBOX" | "QUOTA" | "ANNOTATION" | "UNMAILBOX" => self.args.first(),
            "SEEN" | "SUB" | "UNSUB" => self.args.get(1),
            _ => None,
        }
        .map(String::as_str)
    }

    /// The mailbox as a user sees it (`user/alice/Entwürfe`), if the entry names one.
    pub fn external_mailbox(&self) -> Option<String> {
        let name = self.internal_mailbox()?;
        let ext = internal_to_external(name);
        Some(from_mutf7(&ext).unwrap_or(ext))
    }
}

/// Space-separated words, `"quoted"` ones with backslash escapes — the
/// quoting of sync-log lines and of cyrus.header's atom lists. None for an
/// unbalanced quote.
pub fn split_words(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut chars = line.trim_end_matches(['\r', '\n']).chars().peekable();
    loop {
        while chars.peek() == Some(&' ') {
            chars.next();
        }
        let Some(&c) = chars.peek() else { break };
        let mut w = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => w.push(chars.next()?),
                    '"' => {
                        closed = true;
                        break;
                    }
                    _ => w.push(c),
                }
            }
            if !closed {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == ' ' {
                    break;
                }
                w.push(c);
                chars.next();
            }
        }
        words.push(w);
    }
    Some(words)
}

/// Parse one line; None for a blank or malformed line (unbalanced quote).
pub fn parse_entry(line: &str) -> Option<SyncEntry> {
    let words = split_words(line)?;
    let mut it = words.into_iter();
    let kind = it.next()?;
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_uppercase()) {
        return None;
    }
    Some(SyncEntry {
        kind,
        args: it.collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_hostile_entries() {
        let e = parse_entry("APPEND \"user.alice.$(touch .tmp.pwned)\"").unwrap();
        assert_eq!(e.args, vec!["user.alice.$(touch .tmp.pwned)"]);
        assert_eq!(e.user().as_deref(), Some("alice"));
        assert_eq!(
            e.external_mailbox().as_deref(),
            Some("user/alice/$(touch /tmp/pwned)")
        );
        let e = parse_entry("MAILBOX \"user.alice.With Space\"").unwrap();
        assert_eq!(
            e.external_mailbox().as_deref(),
            Some("user/alice/With Space")
        );
        let e = parse_entry("APPEND user.alice.it's").unwrap();
        assert_eq!(e.external_mailbox().as_deref(), Some("user/alice/it's"));
        let e = parse_entry("MAILBOX user.alice.Entw&APw-rfe").unwrap();
        assert_eq!(e.external_mailbox().as_deref(), Some("user/alice/Entwürfe"));
        let e = parse_entry("USER dave").unwrap();
        assert_eq!(
            (e.user().as_deref(), e.external_mailbox()),
            (Some("dave"), None)
        );
    }

    #[test]
    fn malformed_lines() {
        assert_eq!(parse_entry(""), None);
        assert_eq!(parse_entry("APPEND \"unterminated"), None);
        assert_eq!(parse_entry("lower case"), None);
        assert_eq!(parse_entry("APPEND \"x\\"), None);
    }
}
