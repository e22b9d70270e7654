//! Log: classified Cyrus lines from every host, newest first; `s` errors
//! only, `h` one host, `/` any regex.

use super::format::clock;
use super::table::{self, Columns};
use crate::console::app::{App, LogFilter, ViewId};
use crate::console::rows::LogRow;
use crate::console::theme::Theme;
use crate::cyrus::loglines::LineKind;
use crate::model::snapshot::Health;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row};
use ratatui::Frame;

fn kind_label(k: LineKind) -> (&'static str, Health) {
    match k {
        LineKind::GuidMismatch => ("GUID", Health::Critical),
        LineKind::BailingOut => ("BAILOUT", Health::Critical),
        LineKind::SyncError => ("SYNCERR", Health::Warning),
        LineKind::IoError => ("IOERROR", Health::Warning),
        LineKind::ConnectFailure => ("CONNECT", Health::Warning),
        LineKind::SyncNotice => ("notice", Health::Ok),
    }
}

pub fn render(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let rows = &app.rows.log;
    let widths = column_widths(rows);
    let note = limits_note(&app.log_filter);
    table::render(
        f,
        area,
        theme,
        Columns {
            title: Line::from(title(app)),
            empty: "No classified Cyrus lines yet (sync errors, bail-outs, IOERRORs, connect failures, notices).",
            total: rows.len(),
            note: &note,
            widths: &widths,
            legend: if rows.len() < app.rows.log_lines {
                "×N: N identical lines, the newest shown"
            } else {
                ""
            },
            titles: &["newest", "host", "kind", "×", "user", "line"],
        },
        app.list(ViewId::Log),
        |i| log_row(theme, &rows[i]),
        |i| detail_lines(&rows[i]),
    );
}

/// " Log: 12 of 40 lines, newest 22:21:58, errors only, all hosts ": how
/// many lines and rows are shown, and the filters in force.
fn title(app: &App) -> String {
    let lf = &app.log_filter;
    let list = app.list(ViewId::Log);
    let lines = app.rows.log_lines;
    let rows_n = app.rows.log.len();
    let shown = match (list.matched.len() == rows_n, rows_n == lines) {
        (true, true) => format!("{lines} lines"),
        (false, true) => format!("{} of {lines} lines", list.matched.len()),
        (true, false) => format!("{lines} lines, {rows_n} rows"),
        (false, false) => format!("{} of {rows_n} rows ({lines} lines)", list.matched.len()),
    };
    let newest = app
        .rows
        .log
        .iter()
        .filter_map(|r| r.event.event.time)
        .max()
        .map(|t| format!(", newest {}", clock(t)))
        .unwrap_or_default();
    format!(
        " Log: {shown}{newest}, {}, {} ",
        if lf.errors_only {
            "errors only"
        } else {
            "all severities"
        },
        lf.host
            .as_deref()
            .map(|h| format!("host {h}"))
            .unwrap_or_else(|| "all hosts".into())
    )
}

/// Fixed widths but for the "×N" count, as wide as the largest needs.
fn column_widths(rows: &[LogRow]) -> [Constraint; 6] {
    let count_w = rows
        .iter()
        .map(|r| r.count.to_string().len() + 1)
        .max()
        .unwrap_or(1);
    [
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(7),
        Constraint::Length(count_w as u16),
        Constraint::Length(10),
        Constraint::Fill(1),
    ]
}

/// Said after "0 of N match": the view's own filters (`s`, `h`) in force.
fn limits_note(lf: &LogFilter) -> String {
    let mut limits: Vec<String> = Vec::new();
    if lf.errors_only {
        limits.push("errors only (s)".into());
    }
    if let Some(h) = &lf.host {
        limits.push(format!("host {h} (h)"));
    }
    if limits.is_empty() {
        String::new()
    } else {
        format!(" with {}", limits.join(", "))
    }
}

/// One row's cells: time, host, kind in its health's style, ×N, user, text.
fn log_row(theme: &Theme, r: &LogRow) -> Row<'static> {
    let e = &r.event;
    let (k, h) = kind_label(e.event.kind);
    Row::new(vec![
        Cell::from(e.event.time.map(clock).unwrap_or_default()),
        Cell::from(e.host.clone()),
        Cell::from(k).style(theme.health(h)),
        Cell::from(if r.count > 1 {
            format!("×{}", r.count)
        } else {
            String::new()
        }),
        Cell::from(e.event.user.clone().unwrap_or_default()),
        Cell::from(e.event.text.clone()),
    ])
}

/// The selected row in full: where the line came from, and the span of
/// identical lines it stands for.
fn detail_lines(r: &LogRow) -> Vec<Line<'static>> {
    let e = &r.event;
    let mut lines = vec![Line::from(format!(
        "{} {}/{}[{}] {}",
        e.host,
        r.pair,
        e.event.service,
        e.event.pid.map(|p| p.to_string()).unwrap_or_default(),
        e.event.text
    ))];
    if r.count > 1 {
        lines.push(Line::from(format!(
            "{} identical lines, {} to {}",
            r.count,
            r.oldest.map(clock).unwrap_or_else(|| "?".into()),
            e.event.time.map(clock).unwrap_or_else(|| "?".into())
        )));
    }
    lines
}
