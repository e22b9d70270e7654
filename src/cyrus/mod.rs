//! Cyrus knowledge: names, the probe script and its parsers, log classification.

pub mod doctor;
pub mod hex;
pub mod host_facts;
pub mod index;
pub mod inventory;
pub mod journald;
pub mod known_bugs;
pub mod loglines;
pub mod logtime;
pub mod mbexamine;
pub mod names;
pub mod probe;
pub mod synclog;
pub mod user_state;
