//! `cyrdeck doctor`: replication anti-patterns in each host's effective config.

use super::common::pair_config;
use color_eyre::eyre::Result;
use cyrdeck::config::Config;
use cyrdeck::poll::Poller;
use std::sync::Arc;

pub async fn run(cfg: Config, observe: bool, pair: Option<String>, json: bool) -> Result<i32> {
    let (pair, p) = pair_config(&cfg, pair)?;
    let conns = Poller::new(Arc::new(cfg.clone()), observe).connections();
    let report = cyrdeck::check::doctor::run(&conns, p).await;
    let code = report.exit_code();
    let (findings, errors) = (&report.findings, &report.errors);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "pair": pair, "findings": findings, "errors": errors, "exit_code": code
            }))?
        );
    } else {
        for e in errors {
            println!("ERROR {e}");
        }
        if findings.is_empty() && errors.is_empty() {
            println!("OK: no replication anti-patterns in pair {pair}");
        }
        for f in findings {
            println!("{}: {} [{}]\n  fix: {}", f.host, f.problem, f.code, f.fix);
        }
    }
    Ok(code)
}
