//! Failover figures on the real pair (its own lab, fresh): total time and
//! the write-unavailable window (writes stopped on the old master -> writes
//! started on the new one), with an empty queue and with 10,000 entries
//! pending when writes stop (the rolling client is paused until then, so
//! the drain does the catching up inside the window). Each failover is
//! followed by a fail back, also measured.

use cyrdeck::lab::layout::Role;
use cyrdeck::lab::mail::{lmtp_deliver, message, Imap};
use cyrdeck::lab::Lab;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const USERS: usize = 100;
const PENDING: usize = 10_000;

struct Run {
    total: f64,
    window: f64,
    drain: String,
}

fn figure(out: &str, what: &str) -> f64 {
    let i = out
        .find(what)
        .unwrap_or_else(|| panic!("no {what:?} in:\n{out}"))
        + what.len();
    out[i..].split('s').next().unwrap().trim().parse().unwrap()
}

fn client_pid(conf: &Path) -> Option<i32> {
    cyrdeck::lab::process::pids_matching(&format!("sync_client -C {}", conf.display()))
        .into_iter()
        .next()
}

/// One failover of the pair in `config`; `paused`: the client pid to
/// resume as soon as writes are stopped.
fn failover(config: &Path, state: &Path, paused: Option<i32>) -> Run {
    let child = Command::new(env!("CARGO_BIN_EXE_cyrdeck"))
        .arg("--config")
        .arg(config)
        .args(["failover", "--yes"])
        .env("XDG_STATE_HOME", state)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(pid) = paused {
        let journal = state.join("cyrdeck/journal/failover-lab-lab.json");
        let started = Instant::now();
        loop {
            let j: Option<serde_json::Value> = std::fs::read(&journal)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok());
            if j.is_some_and(|j| j["steps"][1]["state"] == "done") {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "writes never stopped"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        cyrdeck::lab::process::send(pid, libc::SIGCONT);
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "failover failed:\n{text}");
    let drain = text
        .lines()
        .find(|l| l.contains("queue empty after"))
        .map(|l| l.split(": ").last().unwrap_or(l).to_string())
        .unwrap_or_default();
    Run {
        total: figure(&text, "failover took "),
        window: figure(&text, "writes unavailable "),
        drain,
    }
}

fn main() {
    let dir = PathBuf::from(
        std::env::var("CYRDECK_FAILOVER_BENCH_LAB")
            .unwrap_or_else(|_| "/var/tmp/cyrdeck-failover-bench-lab".into()),
    );
    if let Ok(old) = Lab::open(&dir, Some(24900)) {
        let _ = old.down(None);
    }
    let _ = std::fs::remove_dir_all(&dir);
    let lab = Lab::open(&dir, Some(24900)).expect("open lab");
    lab.up().expect("lab up");
    let m = lab.layout.instance(Role::Master);
    let users: Vec<String> = (0..USERS).map(|u| format!("fb{u:03}")).collect();
    let mut admin = Imap::login(Role::Master.address(), m.imap_port, "admin").unwrap();
    for u in &users {
        admin.create(&format!("user/{u}")).unwrap();
    }
    admin.logout();
    let state = dir.join("state");
    let config = dir.join("bench.toml");
    std::fs::copy(lab.layout.config_file(), &config).unwrap();
    std::thread::sleep(Duration::from_secs(3));

    let empty = failover(&config, &state, None);
    let empty_back = failover(&config, &state, None);

    // 10,000 entries pending when writes stop: the client paused, messages
    // to 100 users each until the sync log holds 10,000 lines (a delivery
    // logs two per recipient)
    let pid = client_pid(&m.imapd_conf).expect("rolling client");
    cyrdeck::lab::process::send(pid, libc::SIGSTOP);
    let rcpts: Vec<&str> = users.iter().map(String::as_str).collect();
    let queued = || -> usize {
        ["log", "log-run"]
            .iter()
            .map(|f| {
                std::fs::read_to_string(m.sync_dir().join(f))
                    .map(|t| t.lines().count())
                    .unwrap_or(0)
            })
            .sum()
    };
    let mut i = 0;
    while queued() < PENDING {
        let id = format!("fb-{i}@bench");
        lmtp_deliver(
            Role::Master.address(),
            m.lmtp_port,
            &rcpts,
            &message(&id, "bench", "x"),
        )
        .unwrap();
        i += 1;
    }
    let queued = queued();
    let loaded = failover(&config, &state, Some(pid));
    let loaded_back = failover(&config, &state, None);

    println!("failover on the real pair (lab), {USERS} users");
    println!("| queue when writes stop | total | write-unavailable window | drain |");
    println!("|---|---|---|---|");
    for (label, r) in [
        ("empty", &empty),
        ("empty (fail back)", &empty_back),
        (&*format!("{queued} entries"), &loaded),
        ("empty (fail back)", &loaded_back),
    ] {
        println!(
            "| {label} | {:.1} s | {:.1} s | {} |",
            r.total, r.window, r.drain
        );
    }
    println!(
        "window with {queued} pending / empty: x{:.2}",
        loaded.window / empty.window.max(0.001)
    );
    lab.down(None).unwrap();
}
