//! SSH transport: one connection per host, strict host keys, exec with timeout.

pub mod quote;
