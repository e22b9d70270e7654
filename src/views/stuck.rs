//! Stuck: users and mailboxes that keep failing, and what is held.

use super::format::{clock, fit};
use super::table::{self, Columns};
use crate::console::app::{App, ViewId};
use crate::console::theme::Theme;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::Row;
use ratatui::Frame;

pub fn render(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let cols = Columns {
        title: Line::default(),
        empty: "",
        total: 0,
        note: "",
        legend: "",
        titles: &[
            "user/mailbox",
            "host",
            "channel",
            "tries",
            "last",
            "held",
            "last error",
        ],
        widths: &[
            Constraint::Fill(2),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Length(8),
            Constraint::Length(12),
            Constraint::Fill(3),
        ],
    };
    let rows = &app.rows.stuck;
    let t = |x: Option<i64>| x.map(clock).unwrap_or_else(|| "-".into());
    table::render(
        f,
        area,
        theme,
        Columns {
            title: Line::from(format!(
                " Stuck: {} that keep failing or are held (Enter: their log lines) ",
                rows.len()
            )),
            empty: "Nothing stuck: no user or mailbox failed repeatedly and nothing is held.",
            total: rows.len(),
            ..cols
        },
        app.list(ViewId::Stuck),
        |i| {
            let e = &rows[i].entry;
            let held = match &e.held_file {
                Some(h) => format!("{} ({})", fit(h, 7), e.held_entries),
                None => "-".into(),
            };
            Row::new(vec![
                e.subject().to_string(),
                e.host.clone(),
                channel(e),
                e.attempts.to_string(),
                t(e.last_seen),
                held,
                e.last_error.clone(),
            ])
        },
        |i| {
            let e = &rows[i].entry;
            let mut v = vec![Line::from(match &e.held_file {
                Some(h) => format!(
                    "{}: {} entries held in {h} on {}{} since {}",
                    e.subject(),
                    e.held_entries,
                    e.host,
                    on_channel(e),
                    t(e.last_seen)
                ),
                None => format!(
                    "{}: {} failures on {}{} from {} to {}",
                    e.subject(),
                    e.attempts,
                    e.host,
                    on_channel(e),
                    t(e.first_seen),
                    t(e.last_seen)
                ),
            })];
            if !e.last_error.is_empty() {
                v.push(Line::from(format!("why: {}", e.last_error)));
            }
            v
        },
    );
}

/// The channel whose client failed or whose queue holds it ("-" when the
/// log line could not be tied to one client).
fn channel(e: &crate::model::snapshot::StuckEntry) -> String {
    e.channel
        .as_deref()
        .map(crate::model::health::channel_label)
        .unwrap_or_else(|| "-".into())
}

/// " (channel X)" when the entry is tied to a channel.
fn on_channel(e: &crate::model::snapshot::StuckEntry) -> String {
    e.channel
        .as_deref()
        .map(|c| format!(" (channel {})", crate::model::health::channel_label(c)))
        .unwrap_or_default()
}
