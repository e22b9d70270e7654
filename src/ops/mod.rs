//! Runbooks: step machines the console drives one confirmed step at a
//! time. Every mutating command needs the transport's WriteCapability (none
//! in observe mode) and is written to the audit log.

pub mod audit;
pub mod autopilot;
pub mod engine;
pub mod error;
pub mod failover;
pub mod fault;
pub mod hard_failover;
pub mod heartbeat;
pub mod host_probe;
pub mod journal;
pub mod pair_lock;
pub mod registry;
pub mod repair;
pub mod replace_replica;
pub mod restart;
pub mod resync;
pub mod roles_check;
pub mod runbook;
pub mod runner;
pub mod step;
pub mod stuck;

pub use step::{arg_chunks, state_of, Actor, StepContext, ARGS_BUDGET};
