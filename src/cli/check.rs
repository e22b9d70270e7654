//! `cyrdeck check`: the read-only integrity check of a pair, its record for the metrics.

use super::common::only_pair;
use cyrdeck::config::Config;
use cyrdeck::poll::Poller;
use std::sync::Arc;

pub async fn run(
    cfg: Config,
    observe: bool,
    pair: Option<String>,
    scope: cyrdeck::check::Scope,
    json: bool,
    drain_wait: u64,
) -> i32 {
    use std::io::{IsTerminal, Write};
    let pair = match only_pair(&cfg, pair) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("check: {e}");
            return 2;
        }
    };
    let poller = Poller::new(Arc::new(cfg.clone()), observe);
    let conns = poller.connections();
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let progress = move |line: String| {
        if tty {
            let mut e = std::io::stderr();
            let _ = write!(
                e,
                "\r\x1b[2K[{:>5.1}s] {line}",
                started.elapsed().as_secs_f64()
            );
            let _ = e.flush();
        }
    };
    let opts = cyrdeck::check::CheckOptions {
        drain_wait: std::time::Duration::from_secs(drain_wait),
        ..Default::default()
    };
    let res = cyrdeck::check::run(&cfg, &conns, &pair, &scope, &opts, &progress).await;
    if tty {
        eprint!("\r\x1b[2K");
    }
    match res {
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"pair": pair, "error": e, "exit_code": 2})
                );
            } else {
                eprintln!("check failed: {e}");
            }
            2
        }
        Ok(r) => {
            let code = r.exit_code();
            // a whole-pair check is the record the metrics export (a scoped
            // one says nothing about the rest of the pair)
            if scope == cyrdeck::check::Scope::default() {
                if let Err(e) = cyrdeck::check::last::record(&cfg, &r) {
                    eprintln!("check: result not recorded for the metrics: {e}");
                }
            }
            if json {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["in_sync"] = serde_json::json!(r.in_sync());
                v["exit_code"] = serde_json::json!(code);
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", cyrdeck::views::check_text::render(&r));
            }
            code
        }
    }
}
