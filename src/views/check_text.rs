//! `cyrdeck check` as text.

use crate::model::conflicts::{CheckResult, DiffKind};
use std::fmt::Write;

pub fn render(r: &CheckResult) -> String {
    let mut out = String::new();
    let verdict = match r.exit_code() {
        0 => "IN SYNC",
        1 => "DIFFERENCES",
        _ => "UNDECIDED",
    };
    let _ = writeln!(
        out,
        "{verdict}: pair {}, {} mailboxes compared, {} difference(s), {} in flight, {} deleted mailbox(es) purged on one host only",
        r.pair,
        r.mailboxes_checked,
        r.divergent().count(),
        r.count(DiffKind::InFlight),
        r.count(DiffKind::DeletedPurgedOnOneSide)
    );
    for d in &r.differences {
        let uid = d.uid.map(|u| format!(" uid {u}")).unwrap_or_default();
        let side = |s: &Option<crate::model::conflicts::MessageSide>| match s {
            Some(m) => format!(
                "{} [{}]",
                &m.guid[..m.guid.len().min(12)],
                m.flags.join(" ")
            ),
            None => "-".into(),
        };
        let _ = write!(out, "  {:<22} {}{uid}", d.kind.label(), d.mailbox);
        if d.master.is_some() || d.replica.is_some() {
            let _ = write!(
                out,
                "  master {}  replica {}",
                side(&d.master),
                side(&d.replica)
            );
        }
        if !d.detail.is_empty() {
            let _ = write!(out, "  {}", d.detail);
        }
        out.push('\n');
    }
    for e in &r.errors {
        let _ = writeln!(out, "  ERROR {e}");
    }
    out
}
