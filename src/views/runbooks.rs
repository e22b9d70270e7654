//! Runbooks: the ones available, and the one in progress with its steps.

use super::format::fit;
use crate::console::app::{App, ViewId};
use crate::console::theme::Theme;
use crate::model::snapshot::Health;
use crate::ops::runbook::StepState;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

fn state_style(theme: &Theme, s: &StepState) -> ratatui::style::Style {
    match s {
        StepState::Done(_) => theme.health(Health::Ok),
        StepState::Failed(_) => theme.health(Health::Critical),
        StepState::Refused(_) | StepState::Aborted(_) => theme.health(Health::Warning),
        StepState::Running => theme.accent(),
        StepState::Pending => theme.dim(),
    }
}

pub fn render(app: &App, theme: &Theme, f: &mut Frame, area: Rect) {
    let board = &app.data.runbooks;
    let list = app.list(ViewId::Runbooks);
    let avail_height = (board.available.len() as u16 * 2 + 2)
        .min(area.height / 2)
        .max(3);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(avail_height), Constraint::Min(3)]).areas(area);
    let mut lines = Vec::new();
    // two lines a runbook; keep the selected one in view
    let fits = (top.height.saturating_sub(2) / 2).max(1) as usize;
    for pos in super::format::window(list.matched.len(), list.selected, fits) {
        let spec = &board.available[list.matched[pos]];
        let style = if pos == list.selected {
            theme.selected()
        } else {
            theme.title()
        };
        let writes = spec.steps.iter().filter(|s| s.mutating).count();
        let mut note = format!("  {} steps, {writes} change a host", spec.steps.len());
        if app.observe && writes > 0 {
            note.push_str(" (refused in observe mode)");
        }
        lines.push(Line::from(vec![
            Span::styled(format!(" {} <{}> ", spec.id(), spec.target), style),
            Span::styled(note, theme.dim()),
        ]));
        lines.push(Line::styled(format!("   {}", spec.summary), theme.dim()));
    }
    if lines.is_empty() {
        lines.push(Line::styled(" No runbooks available.", theme.dim()));
    }
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" Runbooks (Enter: start) ")),
        top,
    );
    let width = bottom.width.saturating_sub(2) as usize;
    let Some(run) = &board.active else {
        f.render_widget(
            Paragraph::new(" None in progress.")
                .style(theme.dim())
                .block(Block::bordered().title(" In progress ")),
            bottom,
        );
        return;
    };
    let mut lines = Vec::new();
    for (i, (spec, state)) in run.spec.steps.iter().zip(&run.steps).enumerate() {
        let mark = if spec.mutating {
            if app.observe {
                " [writes: refused, RO]"
            } else {
                " [writes]"
            }
        } else {
            " [read-only]"
        };
        lines.push(Line::from(vec![
            Span::raw(format!(" {}. ", i + 1)),
            Span::styled(format!("{:<8}", state.label()), state_style(theme, state)),
            Span::raw(format!(" {}", spec.title)),
            Span::styled(mark, theme.dim()),
        ]));
        if !state.detail().is_empty() {
            lines.push(Line::styled(
                format!("      {}", fit(state.detail(), width.saturating_sub(6))),
                theme.dim(),
            ));
        }
    }
    let room = (bottom.height as usize).saturating_sub(lines.len() + 3);
    if !run.output.is_empty() && room > 0 {
        lines.push(Line::raw(""));
        let skip = run.output.len().saturating_sub(room);
        lines.extend(
            run.output[skip..]
                .iter()
                .map(|l| Line::raw(format!(" {}", fit(l, width.saturating_sub(1))))),
        );
    }
    let hint = match run.next_step() {
        Some(i) => format!(" Enter: run step {}  x: abort ", i + 1),
        None if run.finished() => format!(" {} ", ending(run)),
        None => " running… ".to_string(),
    };
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .title(format!(
                    " {} {} on {} ",
                    run.spec.id(),
                    run.target,
                    run.pair
                ))
                .title_bottom(hint),
        ),
        bottom,
    );
}

/// How a run that goes no further ended, in words: "finished" only when
/// every step was done.
pub fn ending(run: &crate::ops::runbook::RunbookRun) -> String {
    // an undo that ended well is the news, whatever step it stopped at
    // (its "Undone:" output line may have scrolled out of the panel)
    if let crate::ops::runbook::UndoState::Done(_) = run.undo {
        return "stopped: aborted · Undone: the pair is as before the run".to_string();
    }
    let stop = run.steps.iter().enumerate().find_map(|(i, s)| match s {
        StepState::Refused(d) if d.contains("observe mode") => {
            Some("stopped: refused in observe mode".to_string())
        }
        StepState::Refused(d) => Some(format!("stopped: step {} refused ({})", i + 1, fit(d, 40))),
        StepState::Failed(_) => Some(format!("stopped: step {} failed", i + 1)),
        StepState::Aborted(_) => Some("stopped: aborted".to_string()),
        _ => None,
    });
    stop.unwrap_or_else(|| "finished".to_string())
}
