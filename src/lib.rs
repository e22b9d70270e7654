//! cyrdeck: a console for operators of Cyrus IMAP replication.
//! See ARCHITECTURE.md for the layout and data flow.

pub mod check;
pub mod config;
pub mod console;
pub mod cyrus;
pub mod lab;
pub mod live_config;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod poll;
pub mod remote;
pub mod scripts;
pub mod state;
pub mod views;
