//! Conflicts: what the last integrity check found; Enter opens a mailbox
//! into a side-by-side UID / GUID / flags table.

use super::format::{clock, fit};
use super::table::{self, Columns};
use crate::console::app::{App, ListState, ViewId};
use crate::console::theme::Theme;
use crate::model::conflicts::{DiffKind, MessageSide};
use crate::model::snapshot::Health;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Cell, Paragraph, Row};
use ratatui::Frame;

fn severity(k: DiffKind) -> Health {
    match k {
        DiffKind::InFlight | DiffKind::DeletedPurgedOnOneSide => Health::Ok,
        DiffKind::FlagsDiffer | DiffKind::MetadataDiffers => Health::Warning,
        _ => Health::Critical,
    }
}

fn side(s: Option<&MessageSide>) -> (String, String) {
    match s {
        Some(m) => (fit(&m.guid, 12), m.flags.join(" ")),
        None => ("—".into(), String::new()),
    }
}

fn diff_detail(d: &crate::model::conflicts::Difference) -> Vec<Line<'static>> {
    let side = |name: &str, s: Option<&MessageSide>| match s {
        Some(m) => format!(
            "{name}: UID {} GUID {} modseq {} flags [{}]",
            m.uid,
            m.guid,
            m.modseq,
            m.flags.join(" ")
        ),
        None => format!("{name}: —"),
    };
    let mut v = vec![Line::from(format!(
        "{} {} {}",
        d.kind.label(),
        d.mailbox,
        d.detail
    ))];
    if d.master.is_some() || d.replica.is_some() {
        v.push(Line::from(side("master ", d.master.as_ref())));
        v.push(Line::from(side("replica", d.replica.as_ref())));
    }
    v
}

pub fn render(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    if let Some(p) = &app.data.check_progress {
        if app.data.check.is_none() || app.detail.is_none() {
            let p = Paragraph::new(vec![
                Line::from(format!("Checking… {p}")),
                Line::from(""),
                Line::styled("Esc cancels the check (it only reads).", theme.dim()),
            ])
            .style(theme.accent())
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(Block::bordered().title(" Conflicts: check running (Esc cancels) "));
            f.render_widget(p, area);
            return;
        }
    }
    let Some(check) = &app.data.check else {
        let p = Paragraph::new(
            "No integrity check has run in this console yet, so whether the pair is identical is \
             not known. The check (level 1: every mailbox's UIDVALIDITY, LAST_UID, HIGHESTMODSEQ, \
             SYNC_CRC; level 2: every message of the mailboxes that differ) fills this view: press c \
             (or :check [user | mailbox]) to run it now; it only reads.",
        )
        .style(theme.dim())
        .wrap(ratatui::widgets::Wrap { trim: true })
        .block(Block::bordered().title(" Conflicts "));
        f.render_widget(p, area);
        return;
    };
    if let Some(mailbox) = &app.detail {
        return detail(app, theme, f, area, mailbox);
    }
    let title = format!(
        " Conflicts: pair {} checked {} mailboxes at {}: {} ",
        check.pair,
        check.mailboxes_checked,
        clock(check.finished_at),
        if check.in_sync() {
            "IN SYNC".to_string()
        } else {
            format!("{} differences", check.divergent().count())
        }
    );
    let cols = Columns {
        title: Line::default(),
        empty: "",
        total: 0,
        note: "",
        legend: "",
        titles: &["kind", "mailbox", "uid", "master", "replica", "detail"],
        widths: &[
            Constraint::Length(22),
            Constraint::Fill(2),
            Constraint::Length(6),
            Constraint::Length(12),
            Constraint::Length(12),
            Constraint::Fill(2),
        ],
    };
    let rows = &app.rows.conflicts;
    table::render(
        f,
        area,
        theme,
        Columns {
            title: Line::from(title),
            empty: "The pair is identical: no differences.",
            total: rows.len(),
            ..cols
        },
        app.list(ViewId::Conflicts),
        |i| {
            let d = &rows[i].diff;
            Row::new(vec![
                Cell::from(d.kind.label()).style(theme.health(severity(d.kind))),
                Cell::from(d.mailbox.clone()),
                Cell::from(d.uid.map(|u| u.to_string()).unwrap_or_default()),
                Cell::from(side(d.master.as_ref()).0),
                Cell::from(side(d.replica.as_ref()).0),
                Cell::from(d.detail.clone()),
            ])
        },
        |i| diff_detail(&rows[i].diff),
    );
}

fn detail(app: &App, theme: &Theme, f: &mut Frame, area: Rect, mailbox: &str) {
    let rows = &app.rows.conflicts;
    let list = ListState {
        matched: (0..rows.len())
            .filter(|&i| rows[i].diff.mailbox == mailbox)
            .collect(),
        ..Default::default()
    };
    let cols = Columns {
        title: Line::default(),
        empty: "",
        total: 0,
        note: "",
        legend: "",
        titles: &[
            "uid",
            "master guid",
            "master flags",
            "replica guid",
            "replica flags",
            "kind",
        ],
        widths: &[
            Constraint::Length(6),
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Length(20),
        ],
    };
    table::render(
        f,
        area,
        theme,
        Columns {
            title: Line::from(format!(" {mailbox}: master | replica (Esc back) ")),
            empty: "No message-level differences in this mailbox.",
            ..cols
        },
        &list,
        |i| {
            let d = &rows[i].diff;
            let (mg, mf) = side(d.master.as_ref());
            let (rg, rf) = side(d.replica.as_ref());
            Row::new(vec![
                Cell::from(d.uid.map(|u| u.to_string()).unwrap_or_default()),
                Cell::from(mg),
                Cell::from(mf),
                Cell::from(rg),
                Cell::from(rf),
                Cell::from(d.kind.label()).style(theme.health(severity(d.kind))),
            ])
        },
        |i| diff_detail(&rows[i].diff),
    );
}
