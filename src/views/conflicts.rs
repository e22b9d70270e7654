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
        let name = d.replica_host().unwrap_or("replica");
        v.push(Line::from(side(name, d.replica.as_ref())));
    }
    v
}

/// When a reintegrate report holds GUID conflicts: every GUID conflict
/// known (report and checks) with what was done, in a panel at the bottom
/// (at most half the area); returns the area left for the check's table.
fn with_guid_panel(app: &App, theme: &Theme, f: &mut Frame, area: Rect) -> Rect {
    let all = app.guid_conflicts();
    if !all.iter().any(|c| c.source.starts_with("reintegrate")) {
        return area;
    }
    let want = all.len() as u16 + 3;
    let h = want.min(area.height / 2).max(4);
    let [top, bottom] =
        ratatui::layout::Layout::vertical([Constraint::Fill(1), Constraint::Length(h)]).areas(area);
    // narrow: GUIDs cut to 10, the sides named in the header, no source
    let wide = area.width >= 160;
    // `*`: the UID was shown to the mailbox's owner on that side
    let g = |side: &str, guid: &str, shown: bool| {
        let mark = if shown { "*" } else { "" };
        match wide {
            true => format!("{side}{mark} {guid}"),
            false => fit(&format!("{mark}{guid}"), 10),
        }
    };
    let shown = |c: &crate::check::guid_conflicts::GuidConflict, side: &str| matches!(c.shown_to_owner.as_deref(), Some(s) if s == side || s == "both");
    let rows: Vec<Row> = all
        .iter()
        .map(|c| {
            let mut cells = vec![
                Cell::from(c.mailbox.clone()),
                Cell::from(c.uid.to_string()),
                Cell::from(g(&c.side_a, &c.guid_a, shown(c, &c.side_a))),
                Cell::from(g(&c.side_b, &c.guid_b, shown(c, &c.side_b))),
                Cell::from(c.done.clone()).style(if c.uids_now.is_some() {
                    theme.dim()
                } else {
                    theme.health(Health::Warning)
                }),
            ];
            if wide {
                cells.push(Cell::from(c.source.clone()));
            }
            Row::new(cells)
        })
        .collect();
    let (widths, header): (Vec<Constraint>, Vec<&str>) = if wide {
        (
            vec![
                Constraint::Fill(1),
                Constraint::Length(5),
                Constraint::Length(52),
                Constraint::Length(52),
                Constraint::Fill(2),
                Constraint::Length(32),
            ],
            vec!["mailbox", "uid", "GUID a", "GUID b", "done", "source"],
        )
    } else {
        (
            vec![
                Constraint::Fill(1),
                Constraint::Length(5),
                Constraint::Length(10),
                Constraint::Length(10),
                Constraint::Fill(3),
            ],
            vec!["mailbox", "uid", "old/master", "new/replica", "done"],
        )
    };
    let t = ratatui::widgets::Table::new(rows, widths)
        .header(Row::new(header).style(theme.dim()))
        .block(Block::bordered().title(format!(
            " GUID conflicts: {} (same UID, two GUIDs; *: UID shown to the owner there; `cyrdeck conflicts --json`) ",
            all.len()
        )));
    f.render_widget(t, bottom);
    top
}

/// No check in this console, but a saved one (the CLI's, a failover's, or
/// this console's before a restart): what it counted, by kind. The
/// Overview's "identical: NO (4 Conflicts)" leads here (issue 30, item 4:
/// this view said no check had run).
fn saved_summary(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let mut lines = Vec::new();
    for c in app.data.saved_checks.values() {
        let kinds: Vec<String> = c
            .differences
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        lines.push(Line::from(format!(
            "Pair {}: last whole-pair check saved at {}: {} mailboxes, {}{}.",
            c.pair,
            clock(c.finished_at),
            c.mailboxes_checked,
            match c.divergences {
                0 => "no divergence".to_string(),
                n => format!("{n} difference(s)"),
            },
            match c.unreadable {
                0 => String::new(),
                n => format!(", {n} mailbox(es) unreadable"),
            }
        )));
        if !kinds.is_empty() {
            lines.push(Line::from(format!("  by kind: {}", kinds.join(", "))));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        "It ran outside this console (cyrdeck check, a failover, or before a restart): only its \
         counts are kept. Press c (or :check [user | mailbox]) to check again here and list each \
         difference; it only reads.",
        theme.dim(),
    ));
    let p = Paragraph::new(lines)
        .wrap(ratatui::widgets::Wrap { trim: true })
        .block(Block::bordered().title(" Conflicts: saved check "));
    f.render_widget(p, area);
}

pub fn render(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let area = match app.detail {
        Some(_) => area,
        None => with_guid_panel(app, theme, f, area),
    };
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
        if !app.data.saved_checks.is_empty() {
            return saved_summary(app, theme, f, area);
        }
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
    // with several replicas the table names the one compared
    let replica = list
        .matched
        .first()
        .and_then(|&i| rows[i].diff.replica_host())
        .filter(|h| {
            list.matched
                .iter()
                .all(|&i| rows[i].diff.replica_host() == Some(*h))
        })
        .unwrap_or("replica");
    let (rguid, rflags) = (format!("{replica} guid"), format!("{replica} flags"));
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
            &rguid,
            &rflags,
            "kind",
        ],
        widths: &[
            Constraint::Length(6),
            Constraint::Length(12),
            Constraint::Fill(1),
            // "replica2 guid" is wider than a cut GUID
            Constraint::Length(rguid.chars().count().max(12) as u16),
            Constraint::Fill(1),
            Constraint::Length(20),
        ],
    };
    table::render(
        f,
        area,
        theme,
        Columns {
            title: Line::from(format!(" {mailbox}: master | {replica} (Esc back) ")),
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
