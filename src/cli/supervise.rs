//! `cyrdeck supervise`: the unattended loop (autopilot, heartbeats, metrics).

use color_eyre::eyre::Result;
use cyrdeck::config::Config;
use cyrdeck::live_config::Reload;
use cyrdeck::poll::Poller;
use std::path::PathBuf;
use std::sync::Arc;

pub async fn run(
    cfg: Config,
    observe: bool,
    interval: Option<f64>,
    count: Option<u64>,
    (metrics_listen, metrics_textfile): (Option<std::net::SocketAddr>, Option<PathBuf>),
) -> Result<()> {
    let every = interval
        .map(std::time::Duration::from_secs_f64)
        .unwrap_or(cfg.refresh);
    let exporter = if metrics_listen.is_some() || metrics_textfile.is_some() {
        let pairs = cyrdeck::check::last::PairRef::all(&cfg);
        Some(cyrdeck::metrics::Exporter::start(metrics_listen, metrics_textfile, pairs).await?)
    } else {
        None
    };
    let publish = |report: &cyrdeck::model::snapshot::StatusReport| {
        if let Some(Err(e)) = exporter.as_ref().map(|x| x.publish(report)) {
            eprintln!("supervise: metrics not written: {e}");
        }
    };
    let live = cyrdeck::live_config::LiveConfig::new(Arc::new(cfg));
    let mut poller = Poller::new(live.get(), observe)
        .supervising()
        .wait_at_most(every.max(std::time::Duration::from_secs(1)));
    let mut n = 0u64;
    loop {
        let started = std::time::Instant::now();
        // a failover run elsewhere rewrote the roles: follow them
        match poller.follow(&live) {
            Reload::Unchanged => {}
            Reload::Applied(changes) => {
                eprintln!("supervise: config re-read: {}", changes.join("; "))
            }
            Reload::Refused(why) => eprintln!("supervise: {why}"),
        }
        let report = poller.refresh().await;
        n += 1;
        publish(&report);
        println!("{}", serde_json::to_string(&report)?);
        if count.is_some_and(|c| n >= c) {
            poller.settle().await;
            let report = poller.refresh().await;
            publish(&report);
            println!("{}", serde_json::to_string(&report)?);
            poller.settle().await;
            return Ok(());
        }
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}
