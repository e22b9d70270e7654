//! `cyrdeck check` as text.

use crate::model::conflicts::{CheckResult, DiffKind};
use std::fmt::Write;

/// The replica a difference is about, on a pair with several ("[host] ...").
fn replica_tag(detail: &str) -> Option<&str> {
    detail.strip_prefix('[')?.split_once("] ").map(|(h, _)| h)
}

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
    // entries in flight: one line per mailbox (and replica, when the pair
    // has several: the detail starts "[host] "), not per UID
    let mut in_flight: Vec<(String, usize)> = Vec::new();
    for d in r
        .differences
        .iter()
        .filter(|d| d.kind == DiffKind::InFlight)
    {
        let key = match replica_tag(&d.detail) {
            Some(h) => format!("{} on {h}", d.mailbox),
            None => d.mailbox.clone(),
        };
        match in_flight.iter_mut().find(|(m, _)| *m == key) {
            Some((_, n)) => *n += 1,
            None => in_flight.push((key, 1)),
        }
    }
    if !in_flight.is_empty() {
        let _ = writeln!(
            out,
            "  the queue did not drain during the check: {} mailbox(es) still had entries on their way (re-check once it drains)",
            in_flight.len()
        );
        for (m, n) in &in_flight {
            let _ = writeln!(
                out,
                "  {:<22} {m}  ({n} difference(s) covered by pending entries)",
                DiffKind::InFlight.label()
            );
        }
    }
    for d in r
        .differences
        .iter()
        .filter(|d| d.kind != DiffKind::InFlight)
    {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::conflicts::{CheckResult, Difference};

    #[test]
    fn entries_in_flight_are_one_line_per_mailbox() {
        let d = |mailbox: &str, uid| Difference {
            mailbox: mailbox.into(),
            kind: DiffKind::InFlight,
            uid: Some(uid),
            master: None,
            replica: None,
            detail: "pending entries cover it".into(),
        };
        let r = CheckResult {
            pair: "p".into(),
            finished_at: 0,
            mailboxes_checked: 3,
            errors: vec![],
            mailboxes: vec![],
            differences: (1..=40)
                .map(|u| d("user/alice", u))
                .chain([d("user/bob", 1)])
                .collect(),
        };
        let text = render(&r);
        assert_eq!(text.lines().count(), 4, "{text}");
        assert!(
            text.contains("did not drain during the check: 2 mailbox(es)"),
            "{text}"
        );
        assert!(text.contains("user/alice  (40 difference(s)"), "{text}");
    }

    #[test]
    fn with_several_replicas_entries_in_flight_name_their_replica() {
        let d = |host: &str, uid| Difference {
            mailbox: "user/alice".into(),
            kind: DiffKind::InFlight,
            uid: Some(uid),
            master: None,
            replica: None,
            detail: format!("[{host}] pending entries cover it"),
        };
        let r = CheckResult {
            pair: "p".into(),
            differences: vec![d("replica2", 1), d("replica2", 2), d("r1", 1)],
            ..Default::default()
        };
        let text = render(&r);
        assert!(
            text.contains("user/alice on replica2  (2 difference(s)"),
            "{text}"
        );
        assert!(
            text.contains("user/alice on r1  (1 difference(s)"),
            "{text}"
        );
        assert!(text.contains("2 mailbox(es)"), "{text}");
    }
}
