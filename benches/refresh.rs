//! Refresh cost against the real lab with 10 and with 100,000 pending queue
//! entries: round trips per host (must be 1), median refresh latency, bytes
//! per refresh. Prints figures; asserts only the round-trip invariant.
//!
//! The queue is filled by appending to the master's sync log while its
//! rolling client is SIGSTOPped, and restored byte for byte before SIGCONT.

mod support;
use support::median;

use cyrdeck::config::Config;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::{process, Lab};
use cyrdeck::poll::Poller;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const REFRESHES: usize = 15;

fn main() {
    let dir =
        std::env::var("CYRDECK_BENCH_LAB").unwrap_or_else(|_| "/var/tmp/cyrdeck-bench-lab".into());
    let lab = Lab::open(std::path::Path::new(&dir), Some(24500)).expect("open lab");
    lab.up().expect("lab up");
    cyrdeck::lab::seed::seed(&lab, 1).expect("seed");
    let m = lab.layout.instance(Role::Master);
    let conf = m.imapd_conf.display().to_string();
    let client = process::pids_matching(&format!("sync_client -C {conf}"))
        .into_iter()
        .next()
        .expect("sync_client running");
    let log = m.sync_dir().join("log");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let cfg = Arc::new(Config::load(&lab.layout.config_file()).unwrap());

    process::send(client, libc::SIGSTOP);
    let original = std::fs::read(&log).ok();
    let mut results = Vec::new();
    for n in [10usize, 100_000] {
        let mut body = original.clone().unwrap_or_default();
        for i in 0..n {
            writeln!(body, "APPEND user.bench{}.Folder{}", i % 1000, i % 5).unwrap();
        }
        std::fs::write(&log, &body).unwrap();
        let mut poller = Poller::new(cfg.clone(), true);
        rt.block_on(poller.refresh()); // connect + first log window, not measured
        let before: Vec<u64> = ["master", "replica"]
            .iter()
            .map(|h| rt.block_on(poller.connection(h).unwrap().stats()).execs)
            .collect();
        let mut lat = Vec::new();
        let mut bytes = Vec::new();
        for _ in 0..REFRESHES {
            let t = Instant::now();
            let r = rt.block_on(poller.refresh());
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            let total: usize = r.pairs[0].hosts.iter().filter_map(|h| h.probe_bytes).sum();
            bytes.push(total as f64);
            assert_eq!(
                r.pairs[0].channels[0].queue.pending as usize,
                n + original
                    .as_ref()
                    .map(|o| o.iter().filter(|&&b| b == b'\n').count())
                    .unwrap_or(0)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let trips: Vec<f64> = ["master", "replica"]
            .iter()
            .zip(&before)
            .map(|(h, b)| {
                (rt.block_on(poller.connection(h).unwrap().stats()).execs - b) as f64
                    / REFRESHES as f64
            })
            .collect();
        assert!(
            trips.iter().all(|t| *t == 1.0),
            "round trips per host per refresh: {trips:?}"
        );
        results.push((n, trips, median(lat), median(bytes)));
    }
    match &original {
        Some(o) => std::fs::write(&log, o).unwrap(),
        None => {
            let _ = std::fs::remove_file(&log);
        }
    }
    process::send(client, libc::SIGCONT);

    println!("refresh cost against the real lab ({REFRESHES} refreshes each, median):");
    println!(
        "{:>10} {:>22} {:>14} {:>16}",
        "pending", "round trips/host", "latency ms", "bytes/refresh"
    );
    for (n, trips, lat, bytes) in &results {
        println!(
            "{n:>10} {:>22} {lat:>14.1} {bytes:>16.0}",
            format!("{trips:?}")
        );
    }
    let (a, b) = (&results[0], &results[1]);
    println!(
        "ratio 100k/10: latency x{:.2}, bytes x{:.2}",
        b.2 / a.2,
        b.3 / a.3
    );
}
