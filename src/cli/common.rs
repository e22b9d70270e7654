//! What the command handlers share: the runtime, writing to stdout, the
//! pair a command acts on.

use color_eyre::eyre::{bail, Result};
use cyrdeck::config::{Config, PairConfig};

/// Write to stdout; a reader that stopped early (`| head`) is no error.
pub fn print_all(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

/// `--pair`, or the only pair configured.
pub fn only_pair(cfg: &Config, pair: Option<String>) -> Result<String> {
    match pair {
        Some(p) if cfg.pairs.contains_key(&p) => Ok(p),
        Some(p) => bail!(
            "no pair {p:?} in the config (pairs: {:?})",
            cfg.pairs.keys().collect::<Vec<_>>()
        ),
        None if cfg.pairs.len() == 1 => Ok(cfg.pairs.keys().next().cloned().unwrap_or_default()),
        None => bail!(
            "several pairs configured, name one with --pair: {:?}",
            cfg.pairs.keys().collect::<Vec<_>>()
        ),
    }
}

/// `--pair` (or the only pair) and its config.
pub fn pair_config(cfg: &Config, pair: Option<String>) -> Result<(String, &PairConfig)> {
    let pair = only_pair(cfg, pair)?;
    let p = cfg
        .pairs
        .get(&pair)
        .ok_or_else(|| color_eyre::eyre::eyre!("no pair {pair:?}"))?;
    Ok((pair, p))
}
