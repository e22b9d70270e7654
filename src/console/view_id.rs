//! The console's views, and the keymap context each one has.

use super::keymap::Context;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ViewId {
    Overview,
    Queue,
    Stuck,
    Conflicts,
    Log,
    Runbooks,
}

impl ViewId {
    pub const ALL: [ViewId; 6] = [
        ViewId::Overview,
        ViewId::Queue,
        ViewId::Stuck,
        ViewId::Conflicts,
        ViewId::Log,
        ViewId::Runbooks,
    ];
    pub fn title(self) -> &'static str {
        match self {
            ViewId::Overview => "Overview",
            ViewId::Queue => "Queue",
            ViewId::Stuck => "Stuck",
            ViewId::Conflicts => "Conflicts",
            ViewId::Log => "Log",
            ViewId::Runbooks => "Runbooks",
        }
    }
    pub fn context(self) -> Context {
        match self {
            ViewId::Overview => Context::Overview,
            ViewId::Queue => Context::Queue,
            ViewId::Stuck => Context::Stuck,
            ViewId::Conflicts => Context::Conflicts,
            ViewId::Log => Context::Log,
            ViewId::Runbooks => Context::Runbooks,
        }
    }
    pub(crate) fn index(self) -> usize {
        ViewId::ALL.iter().position(|v| *v == self).unwrap_or(0)
    }
    pub fn from_name(s: &str) -> Option<ViewId> {
        ViewId::ALL
            .into_iter()
            .find(|v| v.title().eq_ignore_ascii_case(s))
    }
}
