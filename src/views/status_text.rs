//! `cyrdeck status` as text for a terminal or a log.

use super::format::secs;
use crate::model::health::channel_label;
use crate::model::snapshot::{PairStatus, StatusReport};
use std::fmt::Write;

pub fn render(report: &StatusReport) -> String {
    let mut out = String::new();
    for p in &report.pairs {
        render_pair(&mut out, p);
    }
    for a in &report.actions {
        let _ = writeln!(out, "ACTION   {a}");
    }
    out
}

fn render_pair(out: &mut String, p: &PairStatus) {
    let _ = writeln!(out, "{:<8} pair {}", p.health.label(), p.name);
    for h in &p.hosts {
        let state = if h.reachable {
            let v = h
                .cyrus_version
                .as_deref()
                .unwrap_or("Cyrus version unknown");
            match h.master_pid {
                Some(pid) => format!("up; {v}; master pid {pid}"),
                None => format!("up; {v}; Cyrus master NOT running"),
            }
        } else {
            format!(
                "UNREACHABLE: {}{}",
                h.error.as_deref().unwrap_or("no data"),
                h.data_age_secs
                    .map(|a| format!(" (showing data {} old)", secs(a)))
                    .unwrap_or_default()
            )
        };
        let _ = writeln!(out, "  {:<7} {:<10} {:<24} {state}", h.role, h.name, h.ssh);
    }
    for note in &p.notes {
        let _ = writeln!(out, "  NOTE    {note}");
    }
    for c in &p.channels {
        let cl = &c.client;
        let client = match (cl.pid, cl.age_secs) {
            (Some(pid), Some(age)) => format!("client pid {pid} up {}", secs(age as f64)),
            _ => "client NOT running".into(),
        };
        let q = &c.queue;
        let mut line = format!(
            "  channel {} -> {}: {client}, restarts {}; pending {} (log {}, log-run {})",
            channel_label(&c.channel),
            c.replica,
            cl.restarts_seen,
            q.pending,
            q.log_lines,
            q.log_run_lines
        );
        if let Some(a) = q.oldest_pending_age_secs {
            let _ = write!(line, "; oldest {}", secs(a as f64));
        }
        if let Some(r) = q.drain_rate_per_sec {
            let _ = write!(line, "; drain {}", crate::model::human::rate(r));
        }
        if let Some(t) = q.time_to_drain_secs {
            let _ = write!(line, "; empty in ~{}", secs(t));
        }
        match &c.heartbeat {
            // nobody wrote a beat lately: its lag proves nothing
            Some(h) if h.stale => {
                let age = h.beat_age_secs.map(|a| secs(a as f64)).unwrap_or_default();
                let _ = write!(line, "; heartbeat stale (newest beat {age} old)");
            }
            Some(h) if h.master_at.is_none() => {
                let _ = write!(line, "; no heartbeat written yet");
            }
            Some(h) => {
                if let Some(l) = h.lag_secs {
                    let _ = write!(line, "; heartbeat lag {}", secs(l as f64));
                }
            }
            None => {}
        }
        if let Some(b) = cl.backoff_secs {
            let _ = write!(line, "; backoff {b}s");
        }
        let _ = writeln!(out, "{line}");
    }
    for pr in &p.problems {
        let _ = writeln!(out, "  {:<8} {}", pr.severity.label(), pr.message);
    }
}
