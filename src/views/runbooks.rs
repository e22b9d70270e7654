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
    let avail_height = (board.available.len() as u16 * 2 + 2)
        .min(area.height / 2)
        .max(3);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(avail_height), Constraint::Min(3)]).areas(area);
    render_list(app, theme, f, top);
    render_run(app, theme, f, bottom);
}

/// The runbooks available, two lines each, the selected one in view.
fn render_list(app: &App, theme: &Theme, f: &mut Frame, top: Rect) {
    let board = &app.data.runbooks;
    let list = app.list(ViewId::Runbooks);
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
    // at 80x24 the list shows a few of the runbooks: say so, and how to
    // see the rest
    let title = if list.matched.len() > fits {
        format!(
            " Runbooks {}/{} (j/k: the others, Enter: start) ",
            list.selected + 1,
            list.matched.len()
        )
    } else {
        " Runbooks (Enter: start) ".to_string()
    };
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(title)),
        top,
    );
}

/// The run in progress: its steps around the current one, its output.
fn render_run(app: &App, theme: &Theme, f: &mut Frame, bottom: Rect) {
    let board = &app.data.runbooks;
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
    // the step the operator is at: the next to run, else the last that moved
    let focus_step = run.next_step().unwrap_or_else(|| {
        run.steps
            .iter()
            .rposition(|s| !matches!(s, StepState::Pending))
            .unwrap_or(0)
    });
    let mut focus = 0;
    for (i, (spec, state)) in run.spec.steps.iter().zip(&run.steps).enumerate() {
        if i == focus_step {
            focus = lines.len();
        }
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
    // steps beyond the panel: a window that keeps the current step in
    // view, with how many are above and below; the output keeps a third
    let inner = (bottom.height as usize).saturating_sub(2);
    let output_room = if run.output.is_empty() {
        0
    } else {
        (run.output.len() + 1).min(inner / 3)
    };
    let mut lines = focus_window(theme, lines, focus, inner - output_room);
    let room = inner.saturating_sub(lines.len() + 1);
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

/// `lines` cut to `height` around line `focus`, a marker line for what is
/// hidden above and below (it always shows the step the run is at).
pub fn focus_window<'a>(
    theme: &Theme,
    lines: Vec<Line<'a>>,
    focus: usize,
    height: usize,
) -> Vec<Line<'a>> {
    if lines.len() <= height || height < 3 {
        return lines;
    }
    // a step's detail line follows it: keep it in view too
    let r = super::format::window(lines.len(), (focus + 1).min(lines.len() - 1), height - 2);
    let mut out = Vec::new();
    if r.start > 0 {
        out.push(Line::styled(
            format!(" ▲ {} line(s) above", r.start),
            theme.dim(),
        ));
    }
    let (start, end, total) = (r.start, r.end, lines.len());
    out.extend(lines.into_iter().skip(start).take(end - start));
    if end < total {
        out.push(Line::styled(
            format!(" ▼ {} line(s) below", total - end),
            theme.dim(),
        ));
    }
    out
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
