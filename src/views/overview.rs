//! Overview: every pair, host and channel; answers "is replication flowing",
//! "how far behind", "is it safe to fail over" with no keystroke, and
//! points at the views that answer the rest.

use super::format::{clock, fit, secs, wrap};
use crate::console::app::App;
use crate::console::theme::Theme;
use crate::model::health::channel_label;
use crate::model::readiness::{check_voided, failover_readiness, CheckFacts, Verdict};
use crate::model::snapshot::{ChannelStatus, Health, HostStatus, PairStatus};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;
use std::collections::VecDeque;

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The last `width` samples as bars scaled to their maximum, with that
/// scale and the time they span ("max 1809, 2m"): bars alone say nothing.
pub fn sparkline(samples: Option<&VecDeque<(i64, u64)>>, width: usize) -> Option<String> {
    let s = samples.filter(|s| s.len() >= 2)?;
    let tail: Vec<(i64, u64)> = s.iter().rev().take(width).rev().copied().collect();
    let max = tail.iter().map(|(_, v)| *v).max().unwrap_or(0);
    let bars: String = tail
        .iter()
        .map(|&(_, v)| BARS[(v * 7).checked_div(max).unwrap_or(0) as usize])
        .collect();
    let span = tail.last()?.0 - tail.first()?.0;
    Some(format!(
        "{bars} max {max}, last {}",
        secs(span.max(0) as f64)
    ))
}

/// Is replication flowing on this channel, in a few words. Current
/// evidence first: a stopped client, an empty queue after bail-outs.
pub fn flow(c: &ChannelStatus) -> (String, Health) {
    let q = &c.queue;
    let (word, h) = if !c.client.running {
        ("NO CLIENT".to_string(), Health::Critical)
    } else if c.client.stopped() {
        ("STOPPED".to_string(), Health::Critical)
    } else if q.pending == 0 && c.client.recent_bailouts > 0 {
        let until = c
            .client
            .last_bailout_at
            .map(|t| format!("; bailed out until {}", clock(t)))
            .unwrap_or_default();
        (format!("recovered{until}"), Health::Warning)
    } else if c.health == Health::Critical {
        ("NOT FLOWING".to_string(), Health::Critical)
    } else if q.pending == 0 {
        ("in sync".to_string(), Health::Ok)
    } else if q
        .log_run_unchanged_secs
        .is_some_and(|s| s >= crate::model::health::LOG_RUN_STALL_SECS)
    {
        ("STALLED".to_string(), Health::Warning)
    } else if q.drain_rate_per_sec.is_some_and(|r| r > 0.0) {
        ("flowing".to_string(), Health::Ok)
    } else if q.drain_rate_per_sec.is_some() {
        ("not draining".to_string(), Health::Warning)
    } else {
        ("pending".to_string(), Health::Warning)
    };
    (word, h)
}

/// How far behind, and what it rests on: the heartbeat while beats are
/// written, else the oldest pending entry's age (a stale beat proves
/// nothing: nobody wrote one since).
pub fn lag(c: &ChannelStatus) -> String {
    let oldest = c.queue.oldest_pending_age_secs.unwrap_or(0) as f64;
    let Some(hb) = &c.heartbeat else {
        return secs(oldest);
    };
    let beat = hb
        .beat_age_secs
        .map(|a| secs(a as f64))
        .unwrap_or_else(|| "?".into());
    match hb.lag_secs {
        Some(_) if hb.stale => format!("{} (oldest entry; beat {beat} old)", secs(oldest)),
        Some(l) => format!("{} (hb {beat} ago)", secs(l as f64)),
        None => secs(oldest),
    }
}

/// Why the client is not moving the queue, if it is not.
fn client_words(c: &ChannelStatus) -> String {
    let mut s = match (c.client.pid, c.client.age_secs) {
        (Some(pid), Some(age)) => format!("client {pid} up {}", secs(age as f64)),
        _ => "no client".into(),
    };
    if c.client.stopped() {
        s.push_str(&format!(
            " but STOPPED (state {})",
            c.client.state.as_deref().unwrap_or("T")
        ));
    }
    if let Some(p) = c.client.secs_since_progress.filter(|p| *p > 0) {
        s.push_str(&format!(", no progress for {}", secs(p as f64)));
    }
    s.push_str(&format!(", restarts {}", c.client.restarts_seen));
    s
}

/// `head` then `text` (in `style`) wrapped to `width`, continuation lines
/// indented: at 80 columns the words that matter are not cut.
fn wrapped<'a>(
    head: Vec<Span<'a>>,
    text: &str,
    style: Style,
    width: usize,
    indent: usize,
) -> Vec<Line<'a>> {
    let used: usize = head.iter().map(|s| s.width()).sum();
    let first = width.saturating_sub(used).max(10);
    let mut parts = wrap(text, first).into_iter();
    let mut spans = head;
    spans.push(Span::styled(parts.next().unwrap_or_default(), style));
    let mut out = vec![Line::from(spans)];
    let rest: String = parts.collect::<Vec<_>>().join(" ");
    if !rest.is_empty() {
        out.extend(
            wrap(&rest, width.saturating_sub(indent).max(10))
                .into_iter()
                .map(|l| Line::from(vec![Span::raw(" ".repeat(indent)), Span::styled(l, style)])),
        );
    }
    out
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
    // a fleet: worst first, and the count per health above them (the
    // pairs below the screen's edge are counted even when not shown)
    let mut pairs: Vec<&PairStatus> = report.pairs.iter().collect();
    pairs.sort_by_key(|p| (std::cmp::Reverse(p.health.rank()), p.name.clone()));
    if pairs.len() > 1 {
        fleet_line(theme, &pairs, width, &mut lines);
    }
    for p in pairs {
        pair_lines(app, theme, p, width, age_extra, &mut lines);
    }
    let height = area.height.saturating_sub(2) as usize;
    let lines = scrolled(theme, lines, app.overview_scroll, height);
    let p = Paragraph::new(lines).block(Block::bordered().title(" Overview "));
    f.render_widget(p, area);
}

/// The lines that fit `height` from `scroll` on: when some do not fit, a
/// marker line says how many are above or below and which keys scroll
/// (at 80x24 two faults' problems would otherwise vanish unmentioned).
pub fn scrolled<'a>(
    theme: &Theme,
    mut lines: Vec<Line<'a>>,
    scroll: usize,
    height: usize,
) -> Vec<Line<'a>> {
    while lines.last().is_some_and(|l| l.width() == 0) {
        lines.pop();
    }
    if lines.len() <= height || height < 3 {
        return lines;
    }
    // each marker takes a line of its own
    let max_first = lines.len() - (height - 1);
    let first = scroll.min(max_first);
    let top = (first > 0).then(|| {
        Line::styled(
            format!(" ▲ {first} more line(s) above (k / PgUp)"),
            theme.dim(),
        )
    });
    let room = height - usize::from(top.is_some());
    let below = lines.len().saturating_sub(first + room);
    let shown = if below > 0 { room - 1 } else { room };
    let below = lines.len() - first - shown;
    let mut out: Vec<Line> = top.into_iter().collect();
    out.extend(lines.drain(first..first + shown));
    if below > 0 {
        out.push(Line::styled(
            format!(" ▼ {below} more line(s) below (j / PgDn)"),
            theme.health(Health::Warning),
        ));
    }
    out
}

/// "fleet: 20 pairs  1 CRITICAL (f07)  19 OK", worst first.
fn fleet_line(theme: &Theme, pairs: &[&PairStatus], width: usize, out: &mut Vec<Line>) {
    let mut spans = vec![Span::raw(format!(" fleet: {} pairs ", pairs.len()))];
    for h in [
        Health::Critical,
        Health::Unknown,
        Health::Warning,
        Health::Ok,
    ] {
        let names: Vec<&str> = pairs
            .iter()
            .filter(|p| p.health == h)
            .map(|p| p.name.as_str())
            .collect();
        if names.is_empty() {
            continue;
        }
        let which = if h == Health::Ok {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        };
        spans.push(Span::styled(
            format!(" {} {}{which}", names.len(), h.label()),
            theme.health(h),
        ));
    }
    let text: String = spans.iter().map(|s| s.content.as_ref()).collect();
    if text.chars().count() <= width {
        out.push(Line::from(spans));
    } else {
        out.extend(wrapped(vec![], &text, Style::default(), width, 3));
    }
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

/// One pair's block: its hosts, channels, failover verdict, check, stuck
/// entries, problems and config findings, then a blank line.
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
        out.push(host_line(theme, h, age_extra));
    }
    let now = app
        .data
        .report
        .as_ref()
        .map(|r| r.generated_at)
        .unwrap_or(app.now);
    for c in &p.channels {
        out.extend(channel_lines(app, theme, p, c, width));
    }
    let check = app.check_facts(&p.name);
    let check = check.as_ref();
    out.extend(failover_lines(theme, p, check, now, width));
    out.extend(identical_lines(app, theme, p, check, now, width));
    out.push(stuck_line(theme, p, now));
    out.extend(problem_lines(theme, p, width));
    out.extend(note_lines(theme, p, width));
    doctor_lines(app, theme, p, width, out);
    out.push(Line::raw(""));
}

/// A host's role and name, whether it answers and runs Cyrus, and how old
/// the data shown for it is.
fn host_line(theme: &Theme, h: &HostStatus, age_extra: f64) -> Line<'static> {
    let age = h
        .data_age_secs
        .map(|a| format!("data {} old", secs(a + age_extra)))
        .unwrap_or_else(|| "no data".into());
    let state = if h.reachable {
        let up = match (&h.cyrus_version, h.master_running) {
            (_, false) => Span::styled("up, Cyrus NOT running", theme.health(Health::Critical)),
            (Some(v), true) => Span::raw(format!("up, {}", v.trim_start_matches("Cyrus IMAP "))),
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
    Line::from(spans)
}

/// A channel: is it flowing and why not, its backlog, lag and drain rate,
/// and the pending sparkline when there are samples.
fn channel_lines(
    app: &App,
    theme: &Theme,
    p: &PairStatus,
    c: &ChannelStatus,
    width: usize,
) -> Vec<Line<'static>> {
    // a master that never answered (a hung sshd): nothing is known of
    // its queue or client, and zeros would read as "in sync, no client"
    let unknown = p
        .hosts
        .iter()
        .find(|h| h.name == c.master)
        .filter(|h| !h.reachable && h.data_age_secs.is_none());
    if let Some(m) = unknown {
        return wrapped(
            vec![
                Span::raw(format!(
                    " channel {} → {}: ",
                    channel_label(&c.channel),
                    c.replica
                )),
                Span::styled("UNKNOWN", theme.health(Health::Unknown)),
                Span::raw("  "),
            ],
            &format!(
                "no data from master {} yet: pending, lag and client unknown",
                m.name
            ),
            theme.dim(),
            width,
            3,
        );
    }
    let (word, h) = flow(c);
    let mut out = wrapped(
        vec![
            Span::raw(format!(
                " channel {} → {}: ",
                channel_label(&c.channel),
                c.replica
            )),
            Span::styled(word, theme.health(h)),
            Span::raw("  "),
        ],
        &client_words(c),
        theme.dim(),
        width,
        3,
    );
    let q = &c.queue;
    let rate = q
        .drain_rate_per_sec
        .map(crate::model::human::rate)
        .unwrap_or_else(|| "?".into());
    let ttd = q
        .time_to_drain_secs
        .filter(|_| q.pending > 0)
        .map(|t| format!(" ttd {}", secs(t)))
        .unwrap_or_default();
    out.extend(wrapped(
        vec![Span::raw("   ")],
        &format!(
            "pending {}  lag {}  drain {rate}{ttd} (last {})",
            q.pending,
            lag(c),
            secs(crate::model::history::DRAIN_WINDOW_SECS as f64)
        ),
        Style::default(),
        width,
        5,
    ));
    if let Some(spark) = sparkline(app.data.spark.get(&format!("{}/{}", p.name, c.channel)), 20) {
        out.push(Line::from(vec![
            Span::raw("   pending "),
            Span::styled(spark, theme.accent()),
        ]));
    }
    out
}

/// "failover now: SAFE (check 2m old)": the readiness verdict and what it
/// rests on (the check's age when safe, else the reasons it is not).
fn failover_lines(
    theme: &Theme,
    p: &PairStatus,
    check: Option<&CheckFacts>,
    now: i64,
    width: usize,
) -> Vec<Line<'static>> {
    let ready = failover_readiness(p, check, now);
    // SAFE names where to: the replica a failover goes to by default
    // (issue 30, item 4)
    let target = p
        .hosts
        .iter()
        .find(|h| h.role == "replica")
        .map(|h| h.name.clone())
        .unwrap_or_default();
    let (word, h) = match ready.verdict {
        Verdict::Safe if !target.is_empty() => (format!("SAFE to {target}"), Health::Ok),
        Verdict::Safe => ("SAFE".to_string(), Health::Ok),
        Verdict::Unproven => ("UNPROVEN".to_string(), Health::Warning),
        Verdict::NotSafe => ("NOT SAFE".to_string(), Health::Critical),
    };
    // a recorded check says so: it was not run in this console
    let saved = if check.is_some_and(|c| c.recorded) {
        "saved "
    } else {
        ""
    };
    let why = match (ready.verdict, check) {
        (Verdict::Safe, Some(c)) => {
            format!(
                "({saved}check {} old)",
                secs((now - c.finished_at).max(0) as f64)
            )
        }
        _ => ready.reasons.join("; "),
    };
    wrapped(
        vec![
            Span::raw(" failover now: "),
            Span::styled(word, theme.health(h)),
            Span::raw(" "),
        ],
        &why,
        Style::default(),
        width,
        3,
    )
}

/// "identical: …": what the latest check says about master and replica
/// holding the same mail (running, never run, voided, yes, unknown, no).
fn identical_lines(
    app: &App,
    theme: &Theme,
    p: &PairStatus,
    check: Option<&CheckFacts>,
    now: i64,
    width: usize,
) -> Vec<Line<'static>> {
    let identical = match check {
        _ if app.data.check_progress.is_some() => {
            Span::styled("checking… (4 Conflicts)", theme.accent())
        }
        None => Span::styled("not checked yet (c: check now)", theme.dim()),
        Some(c) if c.in_sync() => match check_voided(p, c, now) {
            Some(why) => Span::styled(
                format!("no longer known: {why} (c: check again)"),
                theme.health(Health::Warning),
            ),
            None => Span::styled(
                format!(
                    "yes, {} mailboxes at {} ({} ago{})",
                    c.mailboxes,
                    clock(c.finished_at),
                    secs((now - c.finished_at).max(0) as f64),
                    if c.recorded { ", saved" } else { "" }
                ),
                theme.health(Health::Ok),
            ),
        },
        Some(c) if c.divergences == 0 => Span::styled(
            format!(
                "UNKNOWN: {} mailboxes unreadable at {} (4 Conflicts)",
                c.unreadable,
                clock(c.finished_at)
            ),
            theme.health(Health::Critical),
        ),
        Some(c) => Span::styled(
            format!(
                "NO: {} differences at {} (4 Conflicts)",
                c.divergences,
                clock(c.finished_at)
            ),
            theme.health(Health::Critical),
        ),
    };
    wrapped(
        vec![Span::raw(" identical: ")],
        &identical.content,
        identical.style,
        width,
        3,
    )
}

/// "stuck: …": how many users/mailboxes keep failing, and how many of
/// them fail now.
fn stuck_line(theme: &Theme, p: &PairStatus, now: i64) -> Line<'static> {
    // the list keeps who failed; what blocks is who fails now (readiness)
    let stuck = p.stuck.len();
    let failing = crate::model::readiness::failing_now(&p.stuck, now).len();
    Line::from(vec![
        Span::raw(" stuck: "),
        match (stuck, failing) {
            (0, _) => Span::styled("none", theme.health(Health::Ok)),
            (n, 0) => Span::styled(
                format!("{n}, none failing now (3 Stuck)"),
                theme.health(Health::Ok),
            ),
            (n, f) => Span::styled(
                format!("{n}, {f} failing now (3 Stuck)"),
                theme.health(Health::Warning),
            ),
        },
    ])
}

/// The pair's problems, each under its severity, wrapped to `width`.
fn problem_lines(theme: &Theme, p: &PairStatus, width: usize) -> Vec<Line<'static>> {
    p.problems
        .iter()
        .flat_map(|pr| {
            wrapped(
                vec![Span::styled(
                    format!(" {:<8} ", pr.severity.label()),
                    theme.health(pr.severity),
                )],
                &pr.message,
                Style::default(),
                width,
                10,
            )
        })
        .collect()
}

/// Notes: normal states worth knowing (a replica's fence after a
/// failover), said as such so they are not mistaken for problems.
fn note_lines(theme: &Theme, p: &PairStatus, width: usize) -> Vec<Line<'static>> {
    p.notes
        .iter()
        .flat_map(|n| {
            wrapped(
                vec![Span::styled(" note     ", theme.dim())],
                n,
                theme.dim(),
                width,
                10,
            )
        })
        .collect()
}
