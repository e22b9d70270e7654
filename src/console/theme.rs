//! Styles, with colour only when NO_COLOR is unset (https://no-color.org):
//! without colour, emphasis falls back to bold/reverse so nothing is lost.

use crate::model::snapshot::Health;
use ratatui::style::{Color, Modifier, Style};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Theme {
    pub color: bool,
}

impl Theme {
    pub fn from_env() -> Theme {
        Theme {
            color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
        }
    }
    fn fg(&self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    pub fn health(&self, h: Health) -> Style {
        match h {
            Health::Ok => self.fg(Color::Green),
            Health::Warning => self.fg(Color::Yellow).add_modifier(Modifier::BOLD),
            Health::Unknown => self.fg(Color::Magenta).add_modifier(Modifier::BOLD),
            Health::Critical => self.fg(Color::Red).add_modifier(Modifier::BOLD),
        }
    }
    pub fn dim(&self) -> Style {
        if self.color {
            Style::default().fg(Color::DarkGray)
        } else {
            Style::default()
        }
    }
    pub fn title(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    pub fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    pub fn badge(&self) -> Style {
        if self.color {
            Style::default()
                .fg(Color::Black)
                .bg(Color::Yellow)
                .add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        }
    }
    pub fn accent(&self) -> Style {
        self.fg(Color::Cyan)
    }
}
