//! Queue: pending sync-log entries per channel grouped by user and mailbox,
//! oldest first, with counts. Filterable.

use super::format::fit;
use super::table::{self, Columns};
use crate::console::app::{App, ViewId};
use crate::console::theme::Theme;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::Row;
use ratatui::Frame;

pub fn render(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let (pending, distinct) = app
        .data
        .report
        .iter()
        .flat_map(|r| r.pairs.iter())
        .flat_map(|p| p.channels.iter())
        .fold((0, 0), |(a, b), c| {
            (a + c.queue.pending, b + c.queue.distinct_entries)
        });
    // the probe sends the oldest 500 distinct entries per channel: a
    // filter searches only those, and says so
    let listed: u64 = app
        .data
        .report
        .iter()
        .flat_map(|r| r.pairs.iter())
        .flat_map(|p| p.channels.iter())
        .map(|c| c.queue.groups.len() as u64)
        .sum();
    let capped = listed < distinct;
    let list = app.list(ViewId::Queue);
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
            " among the oldest {listed} of {distinct} distinct entries (newer ones are not listed, so not searched)"
        )
    } else {
        String::new()
    };
    let cols = Columns {
        title: Line::default(),
        empty: "",
        total: 0,
        note: "",
        titles: &["#", "user", "mailbox", "kinds", "count", "channel"],
        widths: &[
            Constraint::Length(5),
            Constraint::Length(10),
            Constraint::Fill(3),
            Constraint::Fill(1),
            Constraint::Length(7),
            Constraint::Length(12),
        ],
    };
    let rows = &app.rows.queue;
    table::render(
        f,
        area,
        theme,
        Columns {
            title: Line::from(title),
            empty: "Queue empty: every logged change has reached the replica.",
            total: rows.len(),
            note: &note,
            ..cols
        },
        app.list(ViewId::Queue),
        |i| {
            let r = &rows[i];
            Row::new(vec![
                r.position.to_string(),
                fit(&r.user, 10),
                r.mailbox.clone(),
                r.kinds.clone(),
                r.count.to_string(),
                r.channel.clone(),
            ])
        },
        |i| {
            let r = &rows[i];
            vec![
                Line::from(format!("mailbox {}", r.mailbox)),
                Line::from(format!(
                    "user {}  kinds {}  {} entries  pair {} channel {}  (Enter: its log lines)",
                    if r.user.is_empty() { "-" } else { &r.user },
                    r.kinds,
                    r.count,
                    r.pair,
                    r.channel
                )),
            ]
        },
    );
}
