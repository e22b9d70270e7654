//! Key bindings: `keymap.toml` (embedded) with a user file merged over it.
//! A key bound twice in one section is an error naming both entries unless
//! the later entry says `override = true`; a bad user file never panics: its
//! errors are returned and the defaults are kept.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use toml::Spanned;

pub const DEFAULT_KEYMAP: &str = include_str!("../../keymap.toml");

/// Everything a key can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Command {
    Quit,
    Help,
    NextView,
    PrevView,
    ViewOverview,
    ViewQueue,
    ViewStuck,
    ViewConflicts,
    ViewLog,
    ViewRunbooks,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Filter,
    CommandLine,
    Back,
    Refresh,
    Open,
    CycleSeverity,
    CycleHost,
    RunStep,
    AbortRunbook,
    RunCheck,
    RunDoctor,
}

impl Command {
    pub const ALL: &'static [(Command, &'static str)] = &[
        (Command::Quit, "quit"),
        (Command::Help, "help"),
        (Command::NextView, "next_view"),
        (Command::PrevView, "prev_view"),
        (Command::ViewOverview, "view_overview"),
        (Command::ViewQueue, "view_queue"),
        (Command::ViewStuck, "view_stuck"),
        (Command::ViewConflicts, "view_conflicts"),
        (Command::ViewLog, "view_log"),
        (Command::ViewRunbooks, "view_runbooks"),
        (Command::Up, "up"),
        (Command::Down, "down"),
        (Command::PageUp, "page_up"),
        (Command::PageDown, "page_down"),
        (Command::Top, "top"),
        (Command::Bottom, "bottom"),
        (Command::Filter, "filter"),
        (Command::CommandLine, "command_line"),
        (Command::Back, "back"),
        (Command::Refresh, "refresh"),
        (Command::Open, "open"),
        (Command::CycleSeverity, "cycle_severity"),
        (Command::CycleHost, "cycle_host"),
        (Command::RunStep, "run_step"),
        (Command::AbortRunbook, "abort_runbook"),
        (Command::RunCheck, "run_check"),
        (Command::RunDoctor, "run_doctor"),
    ];

    pub fn name(self) -> &'static str {
        Command::ALL
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }

    pub fn from_name(s: &str) -> Option<Command> {
        Command::ALL.iter().find(|(_, n)| *n == s).map(|(c, _)| *c)
    }

    /// Commands that may change a host (refused by the transport in observe
    /// mode; the help marks them).
    pub fn may_mutate(self) -> bool {
        matches!(self, Command::RunStep)
    }
}

/// A keymap section: global, or one per view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Context {
    Global,
    Overview,
    Queue,
    Stuck,
    Conflicts,
    Log,
    Runbooks,
}

impl Context {
    pub const ALL: &'static [(Context, &'static str)] = &[
        (Context::Global, "global"),
        (Context::Overview, "overview"),
        (Context::Queue, "queue"),
        (Context::Stuck, "stuck"),
        (Context::Conflicts, "conflicts"),
        (Context::Log, "log"),
        (Context::Runbooks, "runbooks"),
    ];
    pub fn name(self) -> &'static str {
        Context::ALL
            .iter()
            .find(|(c, _)| *c == self)
            .map(|(_, n)| *n)
            .unwrap_or("?")
    }
}

/// One key with modifiers; characters carry their own case (no SHIFT).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub code: KeyCode,
    pub mods: KeyModifiers,
}

impl Key {
    pub fn from_event(ev: &KeyEvent) -> Key {
        let mut mods =
            ev.modifiers & (KeyModifiers::CONTROL | KeyModifiers::ALT | KeyModifiers::SHIFT);
        let code = match ev.code {
            KeyCode::BackTab => {
                mods |= KeyModifiers::SHIFT;
                KeyCode::Tab
            }
            c => c,
        };
        if let KeyCode::Char(_) = code {
            mods -= KeyModifiers::SHIFT;
        }
        Key { code, mods }
    }

    pub fn parse(s: &str) -> Result<Key, String> {
        let mut chars = s.chars();
        if let (Some(c), None) = (chars.next(), chars.next()) {
            return Ok(Key {
                code: KeyCode::Char(c),
                mods: KeyModifiers::NONE,
            });
        }
        let inner = s
            .strip_prefix('<')
            .and_then(|r| r.strip_suffix('>'))
            .ok_or_else(|| format!("bad key {s:?}: a single character or <Name>, e.g. <C-r>"))?;
        let mut mods = KeyModifiers::NONE;
        let mut name = inner;
        while let Some((m, rest)) = name.split_once('-').filter(|(_, r)| !r.is_empty()) {
            mods |= match m {
                "C" => KeyModifiers::CONTROL,
                "A" | "M" => KeyModifiers::ALT,
                "S" => KeyModifiers::SHIFT,
                _ => return Err(format!("bad key {s:?}: unknown modifier {m:?} (C, A, S)")),
            };
            name = rest;
        }
        let code = match name {
            "Tab" => KeyCode::Tab,
            "Esc" => KeyCode::Esc,
            "Enter" | "CR" => KeyCode::Enter,
            "Space" => KeyCode::Char(' '),
            "Backspace" | "BS" => KeyCode::Backspace,
            "Up" => KeyCode::Up,
            "Down" => KeyCode::Down,
            "Left" => KeyCode::Left,
            "Right" => KeyCode::Right,
            "PageUp" => KeyCode::PageUp,
            "PageDown" => KeyCode::PageDown,
            "Home" => KeyCode::Home,
            "End" => KeyCode::End,
            "Delete" | "Del" => KeyCode::Delete,
            f if f.starts_with('F')
                && f[1..].parse::<u8>().is_ok_and(|n| (1..=12).contains(&n)) =>
            {
                KeyCode::F(f[1..].parse().unwrap_or(1))
            }
            c if c.chars().count() == 1 => KeyCode::Char(c.chars().next().unwrap_or(' ')),
            _ => return Err(format!("bad key {s:?}: unknown key name {name:?}")),
        };
        if let KeyCode::Char(c) = code {
            if mods.contains(KeyModifiers::SHIFT) {
                mods -= KeyModifiers::SHIFT;
                return Ok(Key {
                    code: KeyCode::Char(c.to_ascii_uppercase()),
                    mods,
                });
            }
        }
        Ok(Key { code, mods })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) if self.mods.is_empty() => return write!(f, "{c}"),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            other => format!("{other:?}"),
        };
        let mut m = String::new();
        if self.mods.contains(KeyModifiers::CONTROL) {
            m.push_str("C-");
        }
        if self.mods.contains(KeyModifiers::ALT) {
            m.push_str("A-");
        }
        if self.mods.contains(KeyModifiers::SHIFT) {
            m.push_str("S-");
        }
        write!(f, "<{m}{name}>")
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Binding {
    pub keys: Vec<Key>,
    pub command: Command,
    pub desc: String,
    /// `file:line` of the entry, for error messages.
    pub origin: String,
}

impl Binding {
    pub fn keys_label(&self) -> String {
        self.keys
            .iter()
            .map(Key::to_string)
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OnField {
    One(String),
    Chord(Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    on: OnField,
    run: String,
    #[serde(default)]
    desc: String,
    #[serde(default, rename = "override")]
    override_: bool,
}

/// What the keys typed so far mean in a context.
#[derive(Debug, PartialEq, Eq)]
pub enum Lookup {
    Command(Command),
    /// The start of a chord: wait for the next key.
    Prefix,
    Unbound,
}

#[derive(Clone, Debug, Default)]
pub struct Keymap {
    sections: BTreeMap<Context, Vec<Binding>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn conflicts(a: &[Key], b: &[Key]) -> bool {
    let n = a.len().min(b.len());
    a[..n] == b[..n]
}

impl Keymap {
    /// The embedded defaults (a broken default file is a build-time bug,
    /// caught by the tests).
    pub fn defaults() -> Keymap {
        let mut k = Keymap::default();
        match k.merge("keymap.toml (built in)", DEFAULT_KEYMAP) {
            Ok(()) => k,
            Err(_) => Keymap::default(),
        }
    }

    /// Defaults merged with the user's file. On any error in that file the
    /// defaults are returned untouched with the errors.
    pub fn load(user: Option<&Path>, must_exist: bool) -> (Keymap, Vec<String>) {
        let defaults = Keymap::defaults();
        let Some(path) = user else {
            return (defaults, vec![]);
        };
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => {
                return (defaults, vec![])
            }
            Err(e) => return (defaults, vec![format!("{}: {e}", path.display())]),
        };
        let mut merged = defaults.clone();
        match merged.merge(&path.display().to_string(), &text) {
            Ok(()) => (merged, vec![]),
            Err(errors) => (defaults, errors),
        }
    }

    /// Merge `text` (named `file`) over this keymap; all errors at once.
    pub fn merge(&mut self, file: &str, text: &str) -> Result<(), Vec<String>> {
        let doc: BTreeMap<String, Vec<Spanned<Entry>>> = match toml::from_str(text) {
            Ok(d) => d,
            Err(e) => {
                let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
                return Err(vec![format!("{file}:{line}: {}", e.message())]);
            }
        };
        let mut errors = Vec::new();
        for (section, entries) in doc {
            let Some(&(ctx, _)) = Context::ALL.iter().find(|(_, n)| *n == section) else {
                let names: Vec<&str> = Context::ALL.iter().map(|(_, n)| *n).collect();
                errors.push(format!(
                    "{file}: unknown section [{section}] (sections: {})",
                    names.join(", ")
                ));
                continue;
            };
            for e in entries {
                let origin = format!("{file}:{}", line_of(text, e.span().start));
                let e = e.into_inner();
                match self.add(ctx, e, origin) {
                    Ok(()) => {}
                    Err(msg) => errors.push(msg),
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn add(&mut self, ctx: Context, e: Entry, origin: String) -> Result<(), String> {
        let command = Command::from_name(&e.run).ok_or_else(|| {
            format!(
                "{origin}: unknown command `{}` in [{}] (commands: {})",
                e.run,
                ctx.name(),
                Command::ALL
                    .iter()
                    .map(|(_, n)| *n)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?;
        let names = match e.on {
            OnField::One(s) => vec![s],
            OnField::Chord(v) => v,
        };
        if names.is_empty() {
            return Err(format!("{origin}: `on` names no key"));
        }
        let keys = names
            .iter()
            .map(|n| Key::parse(n))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|m| format!("{origin}: {m}"))?;
        let list = self.sections.entry(ctx).or_default();
        let clashing: Vec<usize> = (0..list.len())
            .filter(|&i| conflicts(&list[i].keys, &keys))
            .collect();
        if !clashing.is_empty() && !e.override_ {
            let other = &list[clashing[0]];
            return Err(format!(
                "{origin}: key {} (`{}`) in [{}] is already bound at {} (key {} `{}`); add `override = true` to rebind it",
                keys.iter().map(Key::to_string).collect::<Vec<_>>().join(" "),
                command.name(),
                ctx.name(),
                other.origin,
                other.keys_label(),
                other.command.name()
            ));
        }
        for i in clashing.into_iter().rev() {
            list.remove(i);
        }
        list.push(Binding {
            keys,
            command,
            desc: e.desc,
            origin,
        });
        Ok(())
    }

    /// Resolve the keys typed so far: the view's section first, then global.
    pub fn lookup(&self, ctx: Context, typed: &[Key]) -> Lookup {
        let mut prefix = false;
        for c in [ctx, Context::Global] {
            for b in self.sections.get(&c).into_iter().flatten() {
                if b.keys == typed {
                    return Lookup::Command(b.command);
                }
                if b.keys.len() > typed.len() && b.keys[..typed.len()] == *typed {
                    prefix = true;
                }
            }
            if prefix {
                return Lookup::Prefix;
            }
        }
        Lookup::Unbound
    }

    /// Bindings active in a view (its own, then the global ones it does not
    /// shadow), for the help overlay.
    pub fn active(&self, ctx: Context) -> Vec<(&Binding, Context)> {
        let own: Vec<&Binding> = self.sections.get(&ctx).into_iter().flatten().collect();
        let mut out: Vec<(&Binding, Context)> = own.iter().map(|b| (*b, ctx)).collect();
        if ctx != Context::Global {
            for b in self.sections.get(&Context::Global).into_iter().flatten() {
                if !own.iter().any(|o| conflicts(&o.keys, &b.keys)) {
                    out.push((b, Context::Global));
                }
            }
        }
        out
    }

    /// The first key sequence bound to `cmd` in `ctx` (for hints).
    pub fn key_for(&self, ctx: Context, cmd: Command) -> Option<String> {
        self.active(ctx)
            .into_iter()
            .find(|(b, _)| b.command == cmd)
            .map(|(b, _)| b.keys_label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(s: &str) -> Key {
        Key::parse(s).unwrap()
    }

    #[test]
    fn defaults_parse_cleanly() {
        let mut km = Keymap::default();
        km.merge("keymap.toml", DEFAULT_KEYMAP).unwrap();
        assert_eq!(
            km.lookup(Context::Queue, &[k("q")]),
            Lookup::Command(Command::Quit)
        );
        assert_eq!(km.lookup(Context::Queue, &[k("g")]), Lookup::Prefix);
        assert_eq!(
            km.lookup(Context::Queue, &[k("g"), k("g")]),
            Lookup::Command(Command::Top)
        );
        assert_eq!(km.lookup(Context::Queue, &[k("z")]), Lookup::Unbound);
        // a view section shadows global
        assert_eq!(
            km.lookup(Context::Runbooks, &[k("<Enter>")]),
            Lookup::Command(Command::RunStep)
        );
        assert_eq!(
            km.lookup(Context::Queue, &[k("<Enter>")]),
            Lookup::Command(Command::Open)
        );
    }

    #[test]
    fn key_names() {
        assert_eq!(k("<C-r>").mods, KeyModifiers::CONTROL);
        assert_eq!(k("<S-g>"), k("G"));
        assert_eq!(k("<S-Tab>").code, KeyCode::Tab);
        assert_eq!(k("<F5>").code, KeyCode::F(5));
        assert!(Key::parse("<Hyper-x>").is_err());
        assert!(Key::parse("<Nope>").is_err());
        assert!(Key::parse("ab").is_err());
        let back = KeyEvent::new(KeyCode::BackTab, KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&back), k("<S-Tab>"));
        let upper = KeyEvent::new(KeyCode::Char('G'), KeyModifiers::SHIFT);
        assert_eq!(Key::from_event(&upper), k("G"));
        assert_eq!(k("<C-r>").to_string(), "<C-r>");
    }
}
