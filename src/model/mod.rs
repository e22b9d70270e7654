//! Snapshots the UI and status show (plain data, serde), the history that
//! successive refreshes build, and the health verdict.

pub mod conflicts;
pub mod doctor;
pub mod health;
pub mod heartbeat;
pub mod history;
pub mod human;
pub mod last_check;
pub mod queue_age;
pub mod readiness;
pub mod releases;
pub mod snapshot;
pub mod stuck;
