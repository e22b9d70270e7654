//! The CLI's subcommands that need more than a few lines (main.rs holds the
//! schema and the dispatch).

pub mod runbook;
