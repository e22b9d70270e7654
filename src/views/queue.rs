//! Queue: pending sync-log entries per channel grouped by user and mailbox,
//! oldest first, with counts and an estimated age. Filterable; a filter
//! also reaches beyond the listed window through the per-user counts the
//! probe takes over the whole queue.

use super::format::{clock, fit, secs};
use super::table::{self, Columns};
use crate::console::app::{App, ViewId};
use crate::console::filter::Filter;
use crate::console::rows::QueueRow;
use crate::console::theme::Theme;
use crate::model::snapshot::ChannelStatus;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::Row;
use ratatui::Frame;

fn channels(app: &App) -> impl Iterator<Item = &ChannelStatus> {
    app.data
        .report
        .iter()
        .flat_map(|r| r.pairs.iter())
        .flat_map(|p| p.channels.iter())
}

/// Entries pending over the WHOLE queue for users whose name the filter
/// matches (as their INBOX row would read), and how many such users; None
/// when the host's per-user counts name nobody the filter matches.
fn whole_queue(app: &App, f: &Filter) -> Option<(u64, usize)> {
    let (mut entries, mut users) = (0, 0);
    for c in channels(app) {
        for (n, u) in &c.queue.users {
            if f.matches(&format!("{u} user/{u} ")) {
                entries += n;
                users += 1;
            }
        }
    }
    (users > 0).then_some((entries, users))
}

/// What the per-user counts say beyond the window.
fn whose(entries: u64, users: usize) -> String {
    if users == 1 {
        format!("{entries} entries pending for the matching user in the whole queue")
    } else {
        format!("{entries} entries pending for {users} matching users in the whole queue")
    }
}

pub fn render(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let texts = header_texts(app);
    let rows = &app.rows.queue;
    let generated = app
        .data
        .report
        .as_ref()
        .map(|r| r.generated_at)
        .unwrap_or(app.now);
    let now = app.now.max(generated) as u64;
    let w = column_widths(rows, now, area.width);
    table::render(
        f,
        area,
        theme,
        Columns {
            title: Line::from(texts.title),
            empty: "Queue empty: every logged change has reached the replica.",
            total: rows.len(),
            note: &texts.note,
            legend: texts.legend.trim_end(),
            titles: &["#", "age", "user", "mailbox", "kinds", "count", "channel"],
            widths: &w.constraints,
        },
        app.list(ViewId::Queue),
        |i| queue_row(&rows[i], now, &w),
        |i| detail_lines(&rows[i]),
    );
}

/// The panel's title, the note said when nothing matches the filter, and
/// the bottom legend.
struct HeaderTexts {
    title: String,
    note: String,
    legend: String,
}

/// Totals over every channel, and what the filter can and cannot see:
/// the probe lists only the oldest entries, the per-user counts reach
/// beyond them.
fn header_texts(app: &App) -> HeaderTexts {
    let (pending, distinct) = channels(app).fold((0, 0), |(a, b), c| {
        (a + c.queue.pending, b + c.queue.distinct_entries)
    });
    // the probe sends the oldest 500 distinct entries per channel: a
    // filter searches only those, and says so
    let listed: u64 = channels(app).map(|c| c.queue.groups.len() as u64).sum();
    let capped = listed < distinct;
    let list = app.list(ViewId::Queue);
    let whole = list
        .filter
        .as_ref()
        .filter(|_| capped)
        .and_then(|f| whole_queue(app, f));
    let matching = if list.filter.is_some() {
        format!(
            "{} of {} rows match; ",
            list.matched.len(),
            app.rows.queue.len()
        )
    } else {
        String::new()
    };
    let title = if capped {
        format!(" Queue: {matching}{pending} pending; oldest {listed} of {distinct} distinct entries shown ")
    } else {
        format!(" Queue: {matching}{pending} pending, {distinct} distinct entries, oldest first ")
    };
    let note = if capped {
        format!(
            " among the oldest {listed} of {distinct} distinct entries (newer ones are not listed){}",
            match whole {
                Some((e, u)) => format!("; {} (counted on the host)", whose(e, u)),
                None => "; no user with entries pending matches it either".into(),
            }
        )
    } else {
        String::new()
    };
    let legend = if whole.is_some() && !list.matched.is_empty() {
        let (e, u) = whole.unwrap_or_default();
        format!("{} ", whose(e, u))
    } else {
        "#: place in the queue, 1 syncs next · age: estimated from its file ".into()
    };
    HeaderTexts {
        title,
        note,
        legend,
    }
}

/// Column widths, and the two that cut their cells (user, kinds).
struct Widths {
    user: usize,
    kinds: usize,
    constraints: [Constraint; 7],
}

/// Widths follow the terminal (`area_width`) and the content: kinds are
/// not cut until they would take a third of the row.
fn column_widths(rows: &[QueueRow], now: u64, area_width: u16) -> Widths {
    let inner = area_width.saturating_sub(2 + 6) as usize;
    let longest = |g: &dyn Fn(usize) -> usize| (0..rows.len()).map(g).max().unwrap_or(0);
    let pos_w = longest(&|i| rows[i].position.to_string().len()).max(1);
    let age_w = longest(&|i| age(&rows[i], now).chars().count()).max(3);
    let user_w = longest(&|i| rows[i].user.chars().count()).clamp(4, (inner / 6).max(8));
    let kinds_w = longest(&|i| rows[i].kinds.len()).clamp(5, (inner / 3).max(5));
    let count_w = longest(&|i| rows[i].count.to_string().len()).max(5);
    let chan_w = longest(&|i| rows[i].channel.chars().count()).max(7);
    Widths {
        user: user_w,
        kinds: kinds_w,
        constraints: [
            Constraint::Length(pos_w as u16),
            Constraint::Length(age_w as u16),
            Constraint::Length(user_w as u16),
            Constraint::Fill(1),
            Constraint::Length(kinds_w as u16),
            Constraint::Length(count_w as u16),
            Constraint::Length(chan_w as u16),
        ],
    }
}

/// The estimated age of a row's oldest entry at `now` ("~3m"), "?" when
/// its file gave no bounds.
fn age(r: &QueueRow, now: u64) -> String {
    r.written
        .as_ref()
        .map(|w| format!("~{}", secs(now.saturating_sub(w.estimate()) as f64)))
        .unwrap_or_else(|| "?".into())
}

/// One row's cells, user and kinds cut to their columns.
fn queue_row(r: &QueueRow, now: u64, w: &Widths) -> Row<'static> {
    Row::new(vec![
        r.position.to_string(),
        age(r, now),
        fit(&r.user, w.user),
        r.mailbox.clone(),
        fit(&r.kinds, w.kinds),
        r.count.to_string(),
        r.channel.clone(),
    ])
}

/// The selected row in full, and where its entry sits in which queue file.
fn detail_lines(r: &QueueRow) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(format!("mailbox {}", r.mailbox)),
        Line::from(format!(
            "user {}  kinds {}  {} entries  pair {} channel {}  (Enter: its log lines)",
            if r.user.is_empty() { "-" } else { &r.user },
            r.kinds,
            r.count,
            r.pair,
            r.channel
        )),
    ];
    if let Some(w) = &r.written {
        // the sync log stamps no time: say where the bounds come from
        lines.push(Line::from(format!(
            "#{}: line {} of {} in {}, written between {} and {} (its birth and last write); ~{} by position",
            r.position,
            w.line,
            w.lines,
            w.file,
            clock(w.after as i64),
            clock(w.before as i64),
            clock(w.estimate() as i64)
        )));
    }
    lines
}
