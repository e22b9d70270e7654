//! `supervise --metrics-listen` against the real pair: a scrape during a
//! backlog and during a stuck-user hot loop shows the values of the status
//! report of the same refresh (supervise prints it), and the stable ones
//! equal a `status --json` taken right after the scrape.

mod common;

use common::*;
use cyrdeck::metrics::parse::{parse, Sample};
use serde_json::Value;
use std::io::{BufRead, Read, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Supervise {
    child: std::process::Child,
    reports: Arc<Mutex<Vec<Value>>>,
    addr: String,
}

impl Supervise {
    fn start() -> Supervise {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let mut child = std::process::Command::new(bin())
            .arg("--config")
            .arg(lab().layout.config_file())
            .args([
                "--observe",
                "supervise",
                "--interval",
                "1",
                "--metrics-listen",
                &addr,
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let reports = Arc::new(Mutex::new(vec![]));
        let r = reports.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    r.lock().unwrap().push(v);
                }
            }
        });
        Supervise {
            child,
            reports,
            addr,
        }
    }

    fn scrape(&self) -> Vec<Sample> {
        let mut s = std::net::TcpStream::connect(&self.addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        parse(body).unwrap_or_else(|e| panic!("{e}\n{body}"))
    }

    /// A scrape and the report of the refresh it shows.
    fn scrape_with_report(&self) -> (Vec<Sample>, Value) {
        let samples = self.scrape();
        let at = value(&samples, "cyrdeck_last_refresh_timestamp_seconds", &[]).unwrap() as i64;
        let report = wait_for(Duration::from_secs(5), || {
            self.reports
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|r| r["generated_at"] == at)
                .cloned()
        })
        .expect("supervise printed the report the scrape shows");
        (samples, report)
    }

    fn wait_report(&self, f: impl Fn(&Value) -> bool) -> Value {
        wait_for(Duration::from_secs(60), || {
            self.reports
                .lock()
                .unwrap()
                .last()
                .filter(|r| f(r))
                .cloned()
        })
        .expect("supervise never reported the expected state")
    }
}

impl Drop for Supervise {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

const CH: [(&str, &str); 2] = [("pair", "lab"), ("channel", "default")];

/// Lines of the master's default-channel queue (`log-run` + `log`) on disk.
fn master_queue_lines() -> u64 {
    let dir = lab()
        .layout
        .instance(cyrdeck::lab::layout::Role::Master)
        .sync_dir();
    ["log-run", "log"]
        .iter()
        .map(|f| {
            // newlines, as the probe's `wc -l` counts
            std::fs::read(dir.join(f))
                .map(|t| t.iter().filter(|&&b| b == b'\n').count() as u64)
                .unwrap_or(0)
        })
        .sum()
}

/// Every channel and pair value the report has, equal in the scrape.
fn assert_matches(samples: &[Sample], report: &Value) {
    let p = &report["pairs"][0];
    let c = &p["channels"][0];
    let q = &c["queue"];
    let num = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"));
    assert_eq!(
        value(samples, "cyrdeck_health", &[]),
        Some(num(&report["exit_code"]))
    );
    assert_eq!(
        value(samples, "cyrdeck_channel_pending_entries", &CH),
        Some(num(&q["pending"]))
    );
    assert_eq!(
        value(samples, "cyrdeck_channel_oldest_pending_age_seconds", &CH),
        Some(q["oldest_pending_age_secs"].as_f64().unwrap_or(0.0))
    );
    assert_eq!(
        value(samples, "cyrdeck_channel_client_running", &CH),
        Some(if c["client"]["running"] == true {
            1.0
        } else {
            0.0
        })
    );
    let held: u64 = q["held"]
        .as_array()
        .map(|h| h.iter().map(|f| f["lines"].as_u64().unwrap()).sum())
        .unwrap_or(0);
    assert_eq!(
        value(samples, "cyrdeck_channel_held_entries", &CH),
        Some(held as f64)
    );
    let mut stuck: Vec<String> = p["stuck"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["user"]
                .as_str()
                .or(s["mailbox"].as_str())
                .unwrap_or("")
                .to_string()
        })
        .collect();
    stuck.sort();
    stuck.dedup();
    assert_eq!(
        value(samples, "cyrdeck_pair_stuck_users", &[("pair", "lab")]),
        Some(stuck.len() as f64)
    );
    for h in p["hosts"].as_array().unwrap() {
        let l = [("pair", "lab"), ("host", h["name"].as_str().unwrap())];
        assert_eq!(
            value(samples, "cyrdeck_host_reachable", &l),
            Some(if h["reachable"] == true { 1.0 } else { 0.0 })
        );
    }
    let health = |v: &Value| match v.as_str().unwrap() {
        "ok" => 0.0,
        "warning" => 1.0,
        "critical" => 2.0,
        _ => 3.0,
    };
    assert_eq!(
        value(samples, "cyrdeck_pair_health", &[("pair", "lab")]),
        Some(health(&p["health"]))
    );
    assert_eq!(
        value(samples, "cyrdeck_channel_health", &CH),
        Some(health(&c["health"]))
    );
}

#[test]
fn scrape_matches_status_during_a_backlog_and_a_stuck_user() {
    let _g = lock();
    wait_drained();
    let sup = Supervise::start();

    // a backlog: the client stopped, 25 entries waiting
    let user = format!("met{}", run_id());
    create_users(std::slice::from_ref(&user));
    wait_drained();
    {
        let _paused = Paused::new();
        for i in 0..25 {
            deliver(&user, &unique(&format!("backlog-{i}")));
        }
        sup.wait_report(|r| r["pairs"][0]["channels"][0]["queue"]["pending"].as_u64() >= Some(25));
        let (samples, report) = sup.scrape_with_report();
        assert_matches(&samples, &report);
        let pending = value(&samples, "cyrdeck_channel_pending_entries", &CH).unwrap();
        assert!(pending >= 25.0, "{pending}");
        // status reads the queue as it is on the master: nothing drains
        // while the client is stopped, but Cyrus may still append (seen on
        // CI: 34 at the scrape, 50 at status), so it lies between the
        // lines on disk just before and just after it
        let before = master_queue_lines();
        let (_, status) = status_json();
        let after = master_queue_lines();
        let said = status["pairs"][0]["channels"][0]["queue"]["pending"]
            .as_u64()
            .unwrap();
        assert!(
            pending as u64 <= before && before <= said && said <= after,
            "scrape {pending}, on disk {before}..{after}, status {said}"
        );
    }
    wait_drained();

    // a stuck user: its replica mailbox unreadable, the client in a hot loop
    let restore = Unreadable::replica_mailbox(&user);
    deliver(&user, &unique("stuck"));
    // The user's error lines can be read before the client's bail-out line
    // (one refresh may end between them): wait for both.
    sup.wait_report(|r| {
        r["pairs"][0]["stuck"]
            .as_array()
            .is_some_and(|s| s.iter().any(|e| e["user"] == user.as_str()))
            && r["pairs"][0]["channels"][0]["client"]["recent_bailouts"].as_u64() >= Some(1)
    });
    let (samples, report) = sup.scrape_with_report();
    assert_matches(&samples, &report);
    assert!(value(&samples, "cyrdeck_pair_stuck_users", &[("pair", "lab")]).unwrap() >= 1.0);
    // the bail-outs the health rule counted
    let bailouts = value(&samples, "cyrdeck_channel_recent_bailouts", &CH).unwrap();
    let said = report["pairs"][0]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| {
            let m = p["message"].as_str()?;
            m.split_once("bailed out ")?
                .1
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .next();
    // no bail-out in the window: the rule says nothing, the gauge says 0
    assert_eq!(said, (bailouts > 0.0).then_some(bailouts), "{report:#}");
    assert_eq!(
        report["pairs"][0]["channels"][0]["client"]["recent_bailouts"].as_f64(),
        Some(bailouts)
    );
    drop(restore);
    wait_drained();
}
