//! Cyrus knowledge: names, the probe script and its parsers, log classification.

pub mod names;
