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
    let shown: usize = app.rows.queue.len();
    let mut title =
        format!(" Queue: {pending} pending, {distinct} distinct entries, oldest first ");
    if (shown as u64) < distinct && distinct > 500 {
        title = format!(" Queue: {pending} pending; oldest 500 of {distinct} distinct entries ");
    }
    let cols = Columns {
        title: Line::default(),
        empty: "",
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
