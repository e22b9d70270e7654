//! Pure render functions: text for the headless commands, and the
//! console's screens `fn render(&App, &Theme, &mut Frame)`.

pub mod check_text;
pub mod conflicts;
pub mod format;
pub mod help;
pub mod log;
pub mod overview;
pub mod queue;
pub mod runbooks;
pub mod status_text;
pub mod stuck;
mod table;

use crate::console::app::{App, Mode, ViewId};
use crate::console::keymap::Command;
use crate::console::theme::Theme;
use crate::model::snapshot::Health;
use format::secs;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Rows the chrome takes (header, tabs, footer): the list area is the rest.
pub const CHROME_ROWS: u16 = 3;

pub fn render(app: &App, theme: &Theme, f: &mut Frame) {
    let [header, tabs, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(f.area());
    render_header(app, theme, f, header);
    render_tabs(app, theme, f, tabs);
    match app.view {
        ViewId::Overview => overview::render(app, theme, f, body),
        ViewId::Queue => queue::render(app, theme, f, body),
        ViewId::Stuck => stuck::render(app, theme, f, body),
        ViewId::Conflicts => conflicts::render(app, theme, f, body),
        ViewId::Log => log::render(app, theme, f, body),
        ViewId::Runbooks => runbooks::render(app, theme, f, body),
    }
    render_footer(app, theme, f, footer);
    if app.help {
        help::render(app, theme, f, body);
    }
}

fn render_header(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let mut spans = vec![Span::styled("cyrdeck", theme.title())];
    if app.observe {
        spans.push(Span::raw(" "));
        spans.push(Span::styled(" RO ", theme.badge()));
    }
    match &app.data.report {
        None => spans.push(Span::styled(
            "  waiting for the first refresh…",
            theme.dim(),
        )),
        Some(r) => {
            // up to 3 pairs by name; a fleet as counts, worst first
            if r.pairs.len() <= 3 {
                for p in &r.pairs {
                    spans.push(Span::raw(format!("  {} ", p.name)));
                    spans.push(Span::styled(p.health.label(), theme.health(p.health)));
                }
            } else {
                spans.push(Span::raw(format!("  {} pairs", r.pairs.len())));
                for h in [
                    Health::Critical,
                    Health::Unknown,
                    Health::Warning,
                    Health::Ok,
                ] {
                    let n = r.pairs.iter().filter(|p| p.health == h).count();
                    if n > 0 {
                        spans.push(Span::styled(format!(" {n} {}", h.label()), theme.health(h)));
                    }
                }
            }
            let age = (app.now - r.generated_at).max(0) as f64;
            spans.push(Span::styled(
                format!("  updated {} ago", secs(age)),
                theme.dim(),
            ));
        }
    }
    if let Some(e) = &app.data.refresh_error {
        spans.push(Span::styled(
            format!("  refresh failed: {e}"),
            theme.health(crate::model::snapshot::Health::Critical),
        ));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_tabs(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let mut spans = Vec::new();
    for (i, v) in ViewId::ALL.iter().enumerate() {
        let label = format!(" {} {} ", i + 1, v.title());
        if *v == app.view {
            spans.push(Span::styled(label, theme.selected()));
        } else {
            spans.push(Span::raw(label));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_footer(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let (prefix, input) = match &app.mode {
        Mode::Filter { input, .. } => ("/", Some(input)),
        Mode::Command(input) => (":", Some(input)),
        Mode::Normal => ("", None),
    };
    if let Some(input) = input {
        let width = area.width.saturating_sub(1) as usize;
        let scroll = input.visual_scroll(width);
        let text: String = input.value().chars().skip(scroll).collect();
        let mut spans = vec![Span::styled(prefix, theme.title()), Span::raw(text)];
        if let Some(m) = &app.message {
            spans.push(Span::styled(format!("   {m}"), theme.dim()));
        }
        f.render_widget(Paragraph::new(Line::from(spans)), area);
        let x = area.x + 1 + (input.visual_cursor().saturating_sub(scroll)) as u16;
        f.set_cursor_position((x.min(area.right().saturating_sub(1)), area.y));
        return;
    }
    if let Some(m) = &app.message {
        f.render_widget(
            Paragraph::new(Span::styled(m.as_str(), theme.accent())),
            area,
        );
        return;
    }
    let ctx = app.view.context();
    let hint = |c: Command, what: &str| app.keymap.key_for(ctx, c).map(|k| format!("{k} {what}"));
    let mut hints: Vec<String> = [
        hint(Command::Help, "help"),
        hint(Command::NextView, "view"),
        hint(Command::Filter, "filter"),
        hint(Command::CommandLine, "cmd"),
        hint(Command::Refresh, "refresh"),
        hint(Command::Quit, "quit"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if let Some(filter) = &app.list(app.view).filter {
        hints.insert(0, format!("filter: {}", filter.text));
    }
    f.render_widget(
        Paragraph::new(Span::styled(hints.join("  "), theme.dim())),
        area,
    );
}
