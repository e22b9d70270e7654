//! `cyrdeck status`: one refresh (or `--watch`), text or JSON; exit = worst health.

use color_eyre::eyre::Result;
use cyrdeck::config::Config;
use cyrdeck::poll::Poller;
use std::sync::Arc;

pub async fn run(
    cfg: Config,
    observe: bool,
    json: bool,
    watch: bool,
    interval: Option<f64>,
    count: Option<u64>,
) -> Result<i32> {
    let every = interval
        .map(std::time::Duration::from_secs_f64)
        .unwrap_or(cfg.refresh);
    let mut poller = Poller::new(Arc::new(cfg), observe);
    if watch {
        // one slow host does not hold back the others' frames
        poller = poller.wait_at_most(every.max(std::time::Duration::from_secs(1)));
    }
    let mut n = 0u64;
    loop {
        let started = std::time::Instant::now();
        let report = poller.refresh().await;
        n += 1;
        if json {
            // one JSON document per line in watch mode (jq-friendly)
            if watch {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
        } else {
            if watch {
                println!(
                    "--- {}",
                    cyrdeck::model::human::date_time(report.generated_at)
                );
            }
            print!("{}", cyrdeck::views::status_text::render(&report));
        }
        if !watch || count.is_some_and(|c| n >= c) {
            return Ok(report.exit_code);
        }
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}
