//! The interactive console: keymap, state/update (no I/O), and the runner
//! that owns the terminal, the poller task and the runbook task.

pub mod app;
pub mod cmdline;
pub mod filter;
pub mod help;
pub mod keymap;
pub mod rows;
pub mod run;
pub mod theme;
pub mod view_id;
