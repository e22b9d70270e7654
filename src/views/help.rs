//! Help overlay generated from the active keymap for the current view:
//! one line per command (all its keys), this view's first, in two columns
//! when one does not fit.

use super::format::fit;
use crate::console::app::App;
use crate::console::keymap::{Command, Context};
use crate::console::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
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
    let list = entries(app);
    let two = list.len() > inner.height as usize;
    let cols: Vec<Rect> = if two {
        Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
            .split(inner)
            .to_vec()
    } else {
        vec![inner]
    };
    let per = list.len().div_ceil(cols.len());
    for (chunk, col) in list.chunks(per.max(1)).zip(cols) {
        let width = col.width as usize;
        let lines: Vec<Line> = chunk
            .iter()
            .map(|e| {
                let keys = fit(&e.keys.join(" "), 11);
                let mut desc = e.desc.clone();
                if e.from != Context::Global {
                    desc = format!("{desc} (here)");
                }
                if app.observe && e.command.may_mutate() {
                    desc.push_str(" [RO: writes refused]");
                }
                Line::from(vec![
                    Span::styled(format!("{keys:<12}"), theme.accent()),
                    Span::raw(fit(&desc, width.saturating_sub(13))),
                ])
            })
            .collect();
        f.render_widget(Paragraph::new(lines), col);
    }
}
