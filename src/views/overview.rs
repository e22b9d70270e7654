//! Overview: every pair, host and channel; answers "is replication flowing",
//! "how far behind", "is it safe to fail over" with no keystroke, and
//! points at the views that answer the rest.

use super::format::{clock, fit, secs};
use crate::console::app::App;
use crate::console::theme::Theme;
use crate::model::health::channel_label;
use crate::model::readiness::{failover_readiness, Verdict};
use crate::model::snapshot::{ChannelStatus, Health, PairStatus};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use std::collections::VecDeque;

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` samples as bars scaled to their maximum.
pub fn sparkline(samples: Option<&VecDeque<u64>>, width: usize) -> String {
    let Some(s) = samples else {
        return String::new();
    };
    let tail: Vec<u64> = s.iter().rev().take(width).rev().copied().collect();
    let max = tail.iter().copied().max().unwrap_or(0);
    tail.iter()
        .map(|&v| BARS[(v * 7).checked_div(max).unwrap_or(0) as usize])
        .collect()
}

/// Is replication flowing on this channel, in a word.
pub fn flow(c: &ChannelStatus) -> (&'static str, Health) {
    if !c.client.running {
        ("NO CLIENT", Health::Critical)
    } else if c.health == Health::Critical {
        ("NOT FLOWING", Health::Critical)
    } else if c.queue.pending == 0 {
        ("in sync", Health::Ok)
    } else if c.queue.drain_rate_per_sec.is_some_and(|r| r > 0.0) {
        ("flowing", Health::Ok)
    } else if c.queue.drain_rate_per_sec.is_some() {
        ("not draining", Health::Warning)
    } else {
        ("pending", Health::Warning)
    }
}

pub fn render(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let Some(report) = &app.data.report else {
        let p =
            Paragraph::new("Connecting to the hosts… (the first refresh has not come back yet)")
                .style(theme.dim())
                .block(Block::bordered().title(" Overview "));
        f.render_widget(p, area);
        return;
    };
    let width = area.width.saturating_sub(2) as usize;
    let age_extra = (app.now - report.generated_at).max(0) as f64;
    let mut lines: Vec<Line> = Vec::new();
    for p in &report.pairs {
        pair_lines(app, theme, p, width, age_extra, &mut lines);
    }
    let p = Paragraph::new(lines).block(Block::bordered().title(" Overview "));
    f.render_widget(p, area);
}

/// The config doctor panel: each finding with its fix.
fn doctor_lines(app: &App, theme: &Theme, p: &PairStatus, width: usize, out: &mut Vec<Line>) {
    let Some(d) = app.data.doctor.get(&p.name) else {
        out.push(Line::styled(
            " config: not read yet (D: doctor)",
            theme.dim(),
        ));
        return;
    };
    let (word, h) = match d.exit_code() {
        0 => ("no replication anti-patterns".to_string(), Health::Ok),
        1 => (
            format!("{} finding(s) (D: re-read)", d.findings.len()),
            Health::Warning,
        ),
        _ => (
            format!("could not read: {}", d.errors.join("; ")),
            Health::Unknown,
        ),
    };
    out.push(Line::from(vec![
        Span::raw(" config: "),
        Span::styled(fit(&word, width.saturating_sub(10)), theme.health(h)),
    ]));
    for f in &d.findings {
        out.push(Line::raw(fit(
            &format!("   {}: {} — fix: {}", f.host, f.problem, f.fix),
            width,
        )));
    }
}

fn pair_lines<'a>(
    app: &'a App,
    theme: &Theme,
    p: &'a PairStatus,
    width: usize,
    age_extra: f64,
    out: &mut Vec<Line<'a>>,
) {
    out.push(Line::from(vec![
        Span::styled(format!("pair {} ", p.name), theme.title()),
        Span::styled(p.health.label(), theme.health(p.health)),
    ]));
    for h in &p.hosts {
        let age = h
            .data_age_secs
            .map(|a| format!("data {} old", secs(a + age_extra)))
            .unwrap_or_else(|| "no data".into());
        let state = if h.reachable {
            let up = match (&h.cyrus_version, h.master_running) {
                (_, false) => Span::styled("up, Cyrus NOT running", theme.health(Health::Critical)),
                (Some(v), true) => {
                    Span::raw(format!("up, {}", v.trim_start_matches("Cyrus IMAP ")))
                }
                (None, true) => Span::raw("up"),
            };
            vec![up, Span::styled(format!("  {age}"), theme.dim())]
        } else {
            vec![Span::styled(
                format!(
                    "UNREACHABLE ({age}) {}",
                    h.error.as_deref().map(|e| fit(e, 60)).unwrap_or_default()
                ),
                theme.health(Health::Critical),
            )]
        };
        let mut spans = vec![Span::raw(format!(" {:<7} {:<9} ", h.role, fit(&h.name, 9)))];
        spans.extend(state);
        out.push(Line::from(spans));
    }
    for c in &p.channels {
        let (word, h) = flow(c);
        let client = match (c.client.pid, c.client.age_secs) {
            (Some(pid), Some(age)) => format!("client {pid} up {}", secs(age as f64)),
            _ => "no client".into(),
        };
        out.push(Line::from(vec![
            Span::raw(format!(
                " channel {} → {}: ",
                channel_label(&c.channel),
                c.replica
            )),
            Span::styled(word, theme.health(h)),
            Span::styled(
                format!("  {client}, restarts {}", c.client.restarts_seen),
                theme.dim(),
            ),
        ]));
        let q = &c.queue;
        let lag = q
            .oldest_pending_age_secs
            .map(|a| secs(a as f64))
            .unwrap_or_else(|| "0s".into());
        let rate = q
            .drain_rate_per_sec
            .map(|r| format!("{r:.0}/s"))
            .unwrap_or_else(|| "?".into());
        let ttd = q
            .time_to_drain_secs
            .map(|t| format!(" ttd {}", secs(t)))
            .unwrap_or_default();
        let spark = sparkline(app.data.spark.get(&format!("{}/{}", p.name, c.channel)), 20);
        // the heartbeat measures lag; without one it is the oldest entry's age
        let lag = match c.heartbeat.as_ref().and_then(|h| h.lag_secs) {
            Some(l) => format!("{} (hb)", secs(l as f64)),
            None => lag,
        };
        out.push(Line::from(vec![
            Span::raw(format!(
                "   pending {:<7} lag {lag:<5} drain {rate}{ttd} ",
                q.pending
            )),
            Span::styled(spark, theme.accent()),
        ]));
    }
    let check = app.data.check.as_ref().filter(|c| c.pair == p.name);
    let ready = failover_readiness(p, check);
    let (word, h) = match ready.verdict {
        Verdict::Safe => ("SAFE", Health::Ok),
        Verdict::Unproven => ("UNPROVEN", Health::Warning),
        Verdict::NotSafe => ("NOT SAFE", Health::Critical),
    };
    out.push(Line::from(vec![
        Span::raw(" failover now: "),
        Span::styled(word, theme.health(h)),
        Span::raw(format!(
            " {}",
            fit(&ready.reasons.join("; "), width.saturating_sub(24))
        )),
    ]));
    let identical = match check {
        _ if app.data.check_progress.is_some() => {
            Span::styled("checking… (4 Conflicts)", theme.accent())
        }
        None => Span::styled("not checked yet (c: check now)", theme.dim()),
        Some(c) if c.in_sync() => Span::styled(
            format!(
                "yes, {} mailboxes at {}",
                c.mailboxes_checked,
                clock(c.finished_at)
            ),
            theme.health(Health::Ok),
        ),
        Some(c) => Span::styled(
            format!("NO: {} differences (4 Conflicts)", c.divergent().count()),
            theme.health(Health::Critical),
        ),
    };
    out.push(Line::from(vec![Span::raw(" identical: "), identical]));
    let stuck = p.stuck.len();
    out.push(Line::from(vec![
        Span::raw(" stuck: "),
        if stuck == 0 {
            Span::styled("none", theme.health(Health::Ok))
        } else {
            Span::styled(format!("{stuck} (3 Stuck)"), theme.health(Health::Warning))
        },
    ]));
    for pr in &p.problems {
        out.push(Line::from(vec![
            Span::styled(
                format!(" {:<8} ", pr.severity.label()),
                theme.health(pr.severity),
            ),
            Span::raw(fit(&pr.message, width.saturating_sub(10))),
        ]));
    }
    doctor_lines(app, theme, p, width, out);
    out.push(Line::raw(""));
}
