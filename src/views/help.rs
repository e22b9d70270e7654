//! Help overlay generated from the active keymap for the current view:
//! one line per command (all its keys), this view's first, in two columns
//! when one does not fit.

use super::format::{fit, wrap};
use crate::console::app::App;
use crate::console::cmdline;
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

/// The help's lines, descriptions cut to `width` (keys take 12 columns).
fn lines<'a>(app: &App, theme: &Theme, width: usize) -> Vec<Line<'a>> {
    let mut lines: Vec<Line> = Vec::new();
    for e in &entries(app) {
        let mut desc = e.desc.clone();
        if e.from != Context::Global {
            desc = format!("{desc} (here)");
        }
        if app.observe && e.command.may_mutate() {
            desc.push_str(" [RO: writes refused]");
        }
        // long descriptions wrap under themselves (never cut)
        for (i, part) in wrap(&desc, width.saturating_sub(12))
            .into_iter()
            .enumerate()
        {
            let keys = if i == 0 {
                fit(&e.keys.join(" "), 11)
            } else {
                String::new()
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{keys:<12}"), theme.accent()),
                Span::raw(part),
            ]));
        }
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
            (format!(":{} {}", s.id(), s.target.to_uppercase()), d)
        })
        .collect();
    for (cmd, desc) in cmdline::HELP
        .iter()
        .map(|(c, d)| (c.to_string(), d.to_string()))
        .chain(runbooks)
    {
        let first = width.saturating_sub(cmd.chars().count() + 1).max(10);
        let mut parts = wrap(&desc, first).into_iter();
        lines.push(Line::from(vec![
            Span::styled(format!("{cmd} "), theme.accent()),
            Span::raw(parts.next().unwrap_or_default()),
        ]));
        let rest: Vec<String> = parts.collect();
        for part in wrap(&rest.join(" "), width.saturating_sub(4)) {
            if !part.is_empty() {
                lines.push(Line::raw(format!("    {part}")));
            }
        }
    }
    lines
}

/// How many lines the help has at 80 columns (the console bounds its
/// scrolling so; wider screens wrap less and the renderer clamps).
pub fn line_count(app: &App) -> usize {
    lines(app, &Theme { color: false }, 78).len()
}

/// The first key bound to `c` in this view, for the footer.
fn keys_of(app: &App, c: Command) -> String {
    entries(app)
        .into_iter()
        .find(|e| e.command == c)
        .and_then(|e| e.keys.first().cloned())
        .unwrap_or_default()
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
    let inner_w = w.saturating_sub(2);
    let height = area.height.saturating_sub(2) as usize;
    let total = line_count(app);
    // one column when it fits; two when they fit and are wide enough;
    // else one column that scrolls (its keys in the footer)
    let two = total > height && total <= 2 * height && inner_w >= 100;
    let scrolls = total > height && !two;
    let width = if two { inner_w / 2 } else { inner_w } as usize;
    let mut all = lines(app, theme, width);
    let total = all.len();
    let mut block =
        Block::bordered().title(format!(" Keys: {} (any key closes) ", app.view.title()));
    if scrolls {
        let first = app.help_scroll.min(total.saturating_sub(height));
        all = all.into_iter().skip(first).take(height).collect();
        block = block.title_bottom(format!(
            " {}-{}/{total} · {} {} scroll · {} {} page · other keys close ",
            first + 1,
            first + height,
            keys_of(app, Command::Down),
            keys_of(app, Command::Up),
            keys_of(app, Command::PageDown),
            keys_of(app, Command::PageUp),
        ));
    }
    let inner = block.inner(popup);
    f.render_widget(block, popup);
    let cols: Vec<Rect> = if two {
        Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)])
            .split(inner)
            .to_vec()
    } else {
        vec![inner]
    };
    let per = all.len().div_ceil(cols.len());
    let mut rest = all.into_iter();
    for col in cols {
        let chunk: Vec<Line> = rest.by_ref().take(per.max(1)).collect();
        f.render_widget(Paragraph::new(chunk), col);
    }
}
