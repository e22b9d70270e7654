//! Help overlay generated from the active keymap for the current view:
//! one line per command (all its keys), this view's first, in two columns
//! when one does not fit.

use crate::console::app::App;
use crate::console::help::{self, Row};
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};
use ratatui::Frame;

/// The help's lines, descriptions cut to `width`, styled.
fn lines<'a>(app: &App, theme: &Theme, width: usize) -> Vec<Line<'a>> {
    let rows = help::rows(
        &app.keymap,
        app.view.context(),
        app.observe,
        &app.data.runbooks.available,
        width,
    );
    rows.into_iter()
        .map(|r| match r {
            Row::Keyed { keys, text } => Line::from(vec![
                Span::styled(format!("{keys:<12}"), theme.accent()),
                Span::raw(text),
            ]),
            Row::Title(t) => Line::styled(t, theme.title()),
            Row::Command { cmd, text } => Line::from(vec![
                Span::styled(format!("{cmd} "), theme.accent()),
                Span::raw(text),
            ]),
            Row::Plain(t) => Line::raw(t),
        })
        .collect()
}

fn line_count(app: &App) -> usize {
    help::line_count(
        &app.keymap,
        app.view.context(),
        app.observe,
        &app.data.runbooks.available,
    )
}

/// The first key bound to `c` in this view, for the footer.
fn keys_of(app: &App, c: Command) -> String {
    help::entries(&app.keymap, app.view.context())
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
