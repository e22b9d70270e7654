//! A fleet (issue 13) against the real lab, in one run: the lab's own
//! 1-pair config against 20 pairs pointing at the same lab under other
//! names — refresh latency (median) and round trips per host per refresh;
//! then one host of the 20 black-holed (its own sshd and sessions
//! SIGSTOPped): the refresh latency and the other pairs' data age, with the
//! console's bound (report after one refresh interval) and without it.
//! Prints figures; asserts only one round trip per host per refresh.
//! Own lab (CYRDECK_FLEET_LAB, default /var/tmp/cyrdeck-fleet-lab, 27100).

mod support;
use support::{fleet, median};

use cyrdeck::config::Config;
use cyrdeck::lab::Lab;
use cyrdeck::poll::Poller;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Refreshes measured: 1 pair, 20 pairs (each is a dozen seconds on a
/// 2-core box where all 40 "hosts" share the CPU).
const REFRESHES: (usize, usize) = (10, 5);
const PAIRS: usize = 20;
const ALT_PORT: u16 = 27125;

struct Figures {
    latency_ms: f64,
    /// Median of the hosts' own probe time (exec only, no permit wait).
    probe_ms: f64,
    trips_min: f64,
    trips_max: f64,
    hosts: usize,
}

fn measure(rt: &tokio::runtime::Runtime, cfg: Arc<Config>, refreshes: usize) -> Figures {
    let mut poller = Poller::new(cfg.clone(), true);
    // connect + first log window, not measured; every host must answer
    let r = rt.block_on(poller.refresh());
    for p in &r.pairs {
        for h in &p.hosts {
            assert!(h.reachable, "{}: {:?}", h.name, h.error);
        }
    }
    let names: Vec<String> = cfg.hosts.keys().cloned().collect();
    let execs = |p: &Poller| -> Vec<u64> {
        names
            .iter()
            .map(|h| rt.block_on(p.connection(h).unwrap().stats()).execs)
            .collect()
    };
    let before = execs(&poller);
    let (mut lat, mut probe) = (Vec::new(), Vec::new());
    for _ in 0..refreshes {
        let t = Instant::now();
        let r = rt.block_on(poller.refresh());
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        let ms = r.pairs.iter().flat_map(|p| p.hosts.iter());
        probe.extend(ms.filter_map(|h| h.probe_ms).map(|m| m as f64));
        std::thread::sleep(Duration::from_millis(200));
    }
    let trips: Vec<f64> = execs(&poller)
        .iter()
        .zip(&before)
        .map(|(a, b)| (a - b) as f64 / refreshes as f64)
        .collect();
    assert!(
        trips.iter().all(|t| *t == 1.0),
        "round trips per host per refresh: {trips:?}"
    );
    Figures {
        latency_ms: median(lat),
        probe_ms: median(probe),
        trips_min: trips.iter().cloned().fold(f64::MAX, f64::min),
        trips_max: trips.iter().cloned().fold(0.0, f64::max),
        hosts: names.len(),
    }
}

/// With p00's replica black-holed: each refresh's latency and the oldest
/// data among the other pairs' hosts (median over `n` refreshes).
fn black_holed(rt: &tokio::runtime::Runtime, poller: &mut Poller, n: usize) -> (f64, f64) {
    let (mut lat, mut age) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let r = rt.block_on(poller.refresh());
        lat.push(t.elapsed().as_secs_f64());
        let oldest = r
            .pairs
            .iter()
            .filter(|p| p.name != fleet::FIRST)
            .flat_map(|p| p.hosts.iter())
            .map(|h| h.data_age_secs.unwrap_or(f64::MAX))
            .fold(0.0, f64::max);
        age.push(oldest);
        std::thread::sleep(Duration::from_millis(200));
    }
    (median(lat), median(age))
}

fn main() {
    let dir =
        std::env::var("CYRDECK_FLEET_LAB").unwrap_or_else(|_| "/var/tmp/cyrdeck-fleet-lab".into());
    let lab = Lab::open(std::path::Path::new(&dir), Some(27100)).expect("open lab");
    lab.up().expect("lab up");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let one = Arc::new(Config::load(&lab.layout.config_file()).unwrap());
    let path = fleet::config(&lab, PAIRS, None, "", "fleet-bench.toml");
    let many = Arc::new(Config::load(&path).unwrap());
    let t = Instant::now();
    let a = measure(&rt, one.clone(), REFRESHES.0);
    let b = measure(&rt, many.clone(), REFRESHES.1);
    eprintln!("healthy runs took {:.0}s", t.elapsed().as_secs_f64());

    // one host black-holed: p00's replica through its own sshd
    let sshd = fleet::extra_sshd(&lab, ALT_PORT);
    let path = fleet::config(&lab, PAIRS, Some(ALT_PORT), "", "fleet-bench-dead.toml");
    let dead = Arc::new(Config::load(&path).unwrap());
    let interval = dead.refresh.max(Duration::from_secs(1));
    // every host answered once (40 sessions open at 8 at a time)
    let warm = |p: &mut Poller| {
        let t = Instant::now();
        while !rt
            .block_on(p.refresh())
            .pairs
            .iter()
            .all(|p| p.hosts.iter().all(|h| h.reachable))
        {
            assert!(t.elapsed() < Duration::from_secs(60), "fleet not reachable");
        }
    };
    let mut bounded = Poller::new(dead.clone(), true).wait_at_most(interval);
    let mut unbounded = Poller::new(dead.clone(), true);
    warm(&mut bounded);
    warm(&mut unbounded);
    // the same bound with every host answering: what the black hole adds
    let healthy = black_holed(&rt, &mut bounded, 5);
    fleet::signal_tree(sshd, libc::SIGSTOP);
    let with_bound = black_holed(&rt, &mut bounded, 5);
    let without = black_holed(&rt, &mut unbounded, 2);
    fleet::signal_tree(sshd, libc::SIGCONT);
    fleet::signal_tree(sshd, libc::SIGTERM);

    let exec = dead.hosts.values().next().unwrap().exec_timeout;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "fleet refresh against the real lab ({} / {} refreshes, median; {} CPUs, load {}):",
        REFRESHES.0,
        REFRESHES.1,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "{:>8} {:>6} {:>18} {:>12} {:>12} {:>14}",
        "pairs", "hosts", "round trips/host", "latency ms", "per host ms", "probe ms/host"
    );
    for (n, f) in [(1, &a), (PAIRS, &b)] {
        println!(
            "{n:>8} {:>6} {:>18} {:>12.1} {:>12.1} {:>14.1}",
            f.hosts,
            format!("{}..{}", f.trips_min, f.trips_max),
            f.latency_ms,
            f.latency_ms / f.hosts as f64,
            f.probe_ms
        );
    }
    println!(
        "ratio {PAIRS} pairs / 1 pair: latency x{:.2} for x{} hosts (probe_concurrency {})",
        b.latency_ms / a.latency_ms,
        b.hosts / a.hosts,
        many.probe_concurrency
    );
    println!(
        "one of {} hosts black-holed (sshd + sessions SIGSTOPped; exec timeout {:.0}s):",
        b.hosts,
        exec.as_secs_f64()
    );
    println!(
        "  healthy, same bound:               refresh {:.2}s, other pairs' oldest data {:.1}s",
        healthy.0, healthy.1
    );
    println!(
        "  console bound (report after {:.0}s): refresh {:.2}s, other pairs' oldest data {:.1}s",
        interval.as_secs_f64(),
        with_bound.0,
        with_bound.1
    );
    println!(
        "  no bound (one-shot status):        refresh {:.2}s, other pairs' oldest data {:.1}s",
        without.0, without.1
    );
    println!(
        "  ratio to the healthy {PAIRS}-pair refresh: x{:.1} with the bound, x{:.1} without",
        with_bound.0 * 1000.0 / b.latency_ms,
        without.0 * 1000.0 / b.latency_ms
    );
}
