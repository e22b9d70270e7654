//! Help overlay generated from the active keymap for the current view:
//! one line per command (all its keys), this view's first, in two columns
//! when one does not fit.

use super::format::fit;
use crate::console::app::App;
use crate::console::cmdline;
use crate::console::keymap::{Command, Context};
use crate::console::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use ratatui::Frame;

struct Entry {
    keys: Vec<String>,
    command: Command,
    desc: String,
    from: Context,
}

fn entries(app: &App) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for (b, from) in app.keymap.active(app.view.context()) {
        match out
            .iter_mut()
            .find(|e| e.command == b.command && e.from == from)
        {
            Some(e) => e.keys.push(b.keys_label()),
            None => out.push(Entry {
                keys: vec![b.keys_label()],
                command: b.command,
                desc: b.desc.clone(),
                from,
            }),
        }
    }
    out
}

pub fn render(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let w = area.width.min(120);
    let popup = Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y,
        width: w,
        height: area.height,
    };
    f.render_widget(Clear, popup);
    let block = Block::bordered().title(format!(" Keys: {} (any key closes) ", app.view.title()));
    let inner = block.inner(popup);
    f.render_widget(block, popup);
    let mut lines: Vec<Line> = Vec::new();
    let keys = entries(app);
    let key_width = inner.width as usize
        / if keys.len() + 12 > inner.height as usize {
            2
        } else {
            1
        };
    for e in &keys {
        let mut desc = e.desc.clone();
        if e.from != Context::Global {
            desc = format!("{desc} (here)");
        }
        if app.observe && e.command.may_mutate() {
            desc.push_str(" [RO: writes refused]");
        }
        lines.push(Line::from(vec![
            Span::styled(
                format!("{:<12}", fit(&e.keys.join(" "), 11)),
                theme.accent(),
            ),
            Span::raw(fit(&desc, key_width.saturating_sub(13))),
        ]));
    }
    lines.push(Line::styled(
        "Commands (: then Enter; Tab completes)",
        theme.title(),
    ));
    let runbooks: Vec<(String, String)> = app
        .data
        .runbooks
        .available
        .iter()
        .map(|s| {
            let mut d = s.title.to_string();
            if app.observe && s.steps.iter().any(|st| st.mutating) {
                d.push_str(" [RO: writes refused]");
            }
            (format!(":{} {}", s.id, s.target.to_uppercase()), d)
        })
        .collect();
    for (cmd, desc) in cmdline::HELP
        .iter()
        .map(|(c, d)| (c.to_string(), d.to_string()))
        .chain(runbooks)
    {
        lines.push(Line::from(vec![
            Span::styled(format!("{cmd} "), theme.accent()),
            Span::raw(desc),
        ]));
    }
    let two = lines.len() > inner.height as usize;
    let cols: Vec<Rect> = if two {
        Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
            .split(inner)
            .to_vec()
    } else {
        vec![inner]
    };
    let per = lines.len().div_ceil(cols.len());
    let mut rest = lines.into_iter();
    for col in cols {
        let chunk: Vec<Line> = rest.by_ref().take(per.max(1)).collect();
        f.render_widget(Paragraph::new(chunk).wrap(Wrap { trim: false }), col);
    }
}
