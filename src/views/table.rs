//! A list of rows where only the visible window is ever built, so a view
//! over 100,000 rows costs what its screen holds.

use super::format::window;
use crate::console::app::ListState;
use crate::console::theme::Theme;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Row, Table};
use ratatui::Frame;

pub struct Columns<'a> {
    pub title: Line<'a>,
    pub titles: &'a [&'a str],
    pub widths: &'a [Constraint],
    /// Shown instead of the table when no row passes.
    pub empty: &'a str,
}

/// Render `list` (indices into the view's rows) with `row(i)` building the
/// cells of row i. Returns nothing; the title tells the position.
pub fn render<'r>(
    f: &mut Frame,
    area: Rect,
    theme: &Theme,
    cols: Columns<'r>,
    list: &ListState,
    row: impl Fn(usize) -> Row<'r>,
) {
    let block = Block::bordered().title(cols.title.clone());
    let inner_height = area.height.saturating_sub(3) as usize; // borders + header
    if list.matched.is_empty() {
        let p = ratatui::widgets::Paragraph::new(cols.empty.to_string())
            .style(theme.dim())
            .block(block)
            .wrap(ratatui::widgets::Wrap { trim: true });
        f.render_widget(p, area);
        return;
    }
    let range = window(list.matched.len(), list.selected, inner_height);
    let rows: Vec<Row> = range
        .clone()
        .map(|pos| {
            let r = row(list.matched[pos]);
            if pos == list.selected {
                r.style(theme.selected())
            } else {
                r
            }
        })
        .collect();
    let header = Row::new(cols.titles.iter().copied()).style(theme.title());
    let table = Table::new(rows, cols.widths.iter().copied())
        .header(header)
        .block(block.title_bottom(Line::from(format!(
            " {}/{} ",
            list.selected + 1,
            list.matched.len()
        ))));
    f.render_widget(table, area);
}
