//! SSH transport: one connection per host, strict host keys, exec with timeout.

pub mod error;
pub mod helpers;
pub mod host;
pub mod known_hosts;
pub mod quote;
pub mod session;
pub mod ssh_config;

pub use error::RemoteError;
pub use host::{ExecOutput, ExecStream, HostConnection, RemoteCommand, WriteCapability};
