//! `cyrdeck heartbeat`: write the pair's heartbeat on its master, once or `--every`.

use super::common::pair_config;
use color_eyre::eyre::Result;
use cyrdeck::config::Config;
use cyrdeck::poll::Poller;
use std::sync::Arc;

pub async fn run(
    cfg: Config,
    observe: bool,
    pair: Option<String>,
    every: Option<f64>,
    count: Option<u64>,
) -> Result<i32> {
    let (_, p) = pair_config(&cfg, pair)?;
    let conns = Poller::new(Arc::new(cfg.clone()), observe).connections();
    let mut n = 0u64;
    loop {
        let started = std::time::Instant::now();
        n += 1;
        match cyrdeck::ops::heartbeat::beat(&cfg, &conns, p).await {
            Ok(t) => println!("heartbeat written on {} at {t}", p.master),
            Err(e) if e.is_refusal() => {
                eprintln!("heartbeat: {e}");
                return Ok(3);
            }
            Err(e) => {
                eprintln!("heartbeat: {e}");
                if every.is_none() {
                    return Ok(1);
                }
            }
        }
        let Some(s) = every else { return Ok(0) };
        if count.is_some_and(|c| n >= c) {
            return Ok(0);
        }
        tokio::time::sleep(std::time::Duration::from_secs_f64(s).saturating_sub(started.elapsed()))
            .await;
    }
}
