//! A list of rows where only the visible window is ever built, so a view
//! over 100,000 rows costs what its screen holds.

use super::format::window;
use crate::console::app::ListState;
use crate::console::theme::Theme;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table, Wrap};
use ratatui::Frame;

pub struct Columns<'a> {
    pub title: Line<'a>,
    pub titles: &'a [&'a str],
    pub widths: &'a [Constraint],
    /// Shown instead of the table when there are no rows at all.
    pub empty: &'a str,
    /// Rows before filtering: when some exist and none passes, the panel
    /// says "0 of N match" (never that there is nothing).
    pub total: usize,
    /// Said after "0 of N match …": what else limits the rows.
    pub note: &'a str,
    /// Said in the bottom border after the position: what columns mean.
    pub legend: &'a str,
}

/// Render `list` (indices into the view's rows) with `row(i)` building the
/// cells of row i, and `detail(i)` the full text of the selected row in a
/// panel below (what narrow columns cut off).
pub fn render<'r>(
    f: &mut Frame,
    area: Rect,
    theme: &Theme,
    cols: Columns<'r>,
    list: &ListState,
    row: impl Fn(usize) -> Row<'r>,
    detail: impl Fn(usize) -> Vec<Line<'r>>,
) {
    let lines = list.selected_row().map(&detail).unwrap_or_default();
    let area = if lines.is_empty() || area.height < 12 {
        area
    } else {
        let inner = area.width.saturating_sub(2).max(1) as usize;
        let wrapped: usize = lines.iter().map(|l| l.width().div_ceil(inner).max(1)).sum();
        let h = (wrapped as u16 + 2).min(area.height / 2);
        let [top, bottom] =
            Layout::vertical([Constraint::Min(5), Constraint::Length(h)]).areas(area);
        f.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(Block::bordered().border_style(theme.dim())),
            bottom,
        );
        top
    };
    let block = Block::bordered().title(cols.title.clone());
    let inner_height = area.height.saturating_sub(3) as usize; // borders + header
    if list.matched.is_empty() {
        let text = if cols.total > 0 {
            format!(
                "0 of {} match{}{}. Esc clears the filter.",
                cols.total,
                list.filter
                    .as_ref()
                    .map(|f| format!(" /{}/", f.text))
                    .unwrap_or_default(),
                cols.note
            )
        } else {
            cols.empty.to_string()
        };
        let p = Paragraph::new(text)
            .style(theme.dim())
            .block(block)
            .wrap(Wrap { trim: true });
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
            " {}/{} {}",
            list.selected + 1,
            list.matched.len(),
            if cols.legend.is_empty() {
                String::new()
            } else {
                format!("· {} ", cols.legend)
            }
        ))));
    f.render_widget(table, area);
}
