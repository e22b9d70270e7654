//! What the help overlay says, as plain rows: one per command of the
//! active keymap (all its keys; this view's first), then the `:` commands
//! and the runbooks, descriptions wrapped to a width. The console bounds
//! its scrolling by their count; views/help.rs styles and lays them out.

use super::cmdline;
use super::keymap::{Command, Context, Keymap};
use crate::ops::runbook::RunbookSpec;
use crate::views::format::{fit, wrap};

pub struct Entry {
    pub keys: Vec<String>,
    pub command: Command,
    pub desc: String,
    pub from: Context,
}

/// The commands bound in `context` (and globally), each with all its keys.
pub fn entries(keymap: &Keymap, context: Context) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for (b, from) in keymap.active(context) {
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

/// One line of the help.
pub enum Row {
    /// Keys (already fitted to 11 columns, or empty under a wrapped line) and text.
    Keyed {
        keys: String,
        text: String,
    },
    Title(&'static str),
    /// A `:` command and the first part of its description.
    Command {
        cmd: String,
        text: String,
    },
    /// A wrapped continuation.
    Plain(String),
}

/// What the help shows, descriptions cut to `width` (keys take 12 columns).
pub fn rows(
    keymap: &Keymap,
    context: Context,
    observe: bool,
    runbooks: &[RunbookSpec],
    width: usize,
) -> Vec<Row> {
    let mut rows = Vec::new();
    for e in &entries(keymap, context) {
        let mut desc = e.desc.clone();
        if e.from != Context::Global {
            desc = format!("{desc} (here)");
        }
        if observe && e.command.may_mutate() {
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
            rows.push(Row::Keyed { keys, text: part });
        }
    }
    rows.push(Row::Title("Commands (: then Enter; Tab completes)"));
    let runbooks: Vec<(String, String)> = runbooks
        .iter()
        .map(|s| {
            let mut d = s.title.to_string();
            if observe && s.steps.iter().any(|st| st.mutating) {
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
        rows.push(Row::Command {
            cmd,
            text: parts.next().unwrap_or_default(),
        });
        let rest: Vec<String> = parts.collect();
        for part in wrap(&rest.join(" "), width.saturating_sub(4)) {
            if !part.is_empty() {
                rows.push(Row::Plain(format!("    {part}")));
            }
        }
    }
    rows
}

/// How many lines the help has at 80 columns (the console bounds its
/// scrolling so; wider screens wrap less and the renderer clamps).
pub fn line_count(
    keymap: &Keymap,
    context: Context,
    observe: bool,
    runbooks: &[RunbookSpec],
) -> usize {
    rows(keymap, context, observe, runbooks, 78).len()
}
