//! The audit trail against the real pair: the intent is on disk before a
//! write is sent (a cyrdeck killed right after it leaves "NO RESULT", and
//! the host unchanged), a log that cannot be written stops the write, and
//! `cyrdeck audit` reads it all back (text, JSON, --since).

mod common;

use common::*;
use cyrdeck::lab::layout::Role;
use std::path::{Path, PathBuf};

/// The lab's config with its audit log moved to `audit`.
fn config_with_audit(audit: &Path) -> PathBuf {
    let text = std::fs::read_to_string(lab().layout.config_file()).unwrap();
    let old = format!("audit_log = \"{}\"", lab().layout.audit_log().display());
    assert!(text.contains(&old), "lab config names its audit log");
    let new = text.replace(&old, &format!("audit_log = \"{}\"", audit.display()));
    let path = state_dir().join(format!("audit-test-{}.toml", unique("cfg")));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, new).unwrap();
    path
}

fn run(config: &Path, args: &[&str], fault: Option<&str>) -> (Option<i32>, String) {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("--config").arg(config).args(args);
    if let Some(f) = fault {
        cmd.env("CYRDECK_FAULT", f);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn heartbeat_guids() -> Vec<String> {
    guids(Role::Master, "user/cyrdeck-heartbeat")
}

#[test]
fn intent_before_every_write_no_log_no_write_and_audit_reads_it_back() {
    let _g = lock();
    let dir = state_dir().join(unique("audit"));
    std::fs::create_dir_all(&dir).unwrap();

    // an audit log that cannot be written: the beat is refused, nothing sent
    let before = heartbeat_guids();
    let blocked = dir.join("not-a-dir");
    std::fs::write(&blocked, "a file where the log's directory should be").unwrap();
    let cfg = config_with_audit(&blocked.join("audit.log"));
    let (code, out) = run(&cfg, &["heartbeat"], None);
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("audit log") && out.contains("not changed"),
        "{out}"
    );
    assert_eq!(
        heartbeat_guids(),
        before,
        "the heartbeat was written anyway"
    );

    // killed right after the intent: the log tells, the host is unchanged
    let log = dir.join("audit.log");
    let cfg = config_with_audit(&log);
    let (code, out) = run(&cfg, &["heartbeat"], Some("write:kill-after-intent"));
    assert_eq!(code, None, "should have been killed: {out}");
    assert_eq!(heartbeat_guids(), before, "the command was sent after all");
    // heartbeats are routine: counted, listed only with --all
    let (code, out) = run(&cfg, &["audit"], None);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("(1 heartbeat write(s) not shown: --all shows them)")
            && !out.contains("NO RESULT"),
        "{out}"
    );
    let (code, out) = run(&cfg, &["audit", "--all"], None);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("NO RESULT") && out.contains("on master"),
        "{out}"
    );

    // a beat that runs: intent + result, read back as JSON
    let (code, out) = run(&cfg, &["heartbeat"], None);
    assert_eq!(code, Some(0), "{out}");
    assert_ne!(heartbeat_guids(), before);
    let (code, out) = run(&cfg, &["audit", "--all", "--json", "--since", "1h"], None);
    assert_eq!(code, Some(0), "{out}");
    let entries: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(entries.len(), 2, "{out}");
    assert!(entries[0]["result"].is_null());
    assert_eq!(entries[1]["result"]["exit_status"], 0);
    assert_eq!(entries[1]["intent"]["host"], "master");
    assert_eq!(entries[1]["intent"]["runbook"], "heartbeat");
    assert!(entries[1]["intent"]["argv"][0].as_str().is_some());
    // intents precede results in the file itself
    let text = std::fs::read_to_string(&log).unwrap();
    let phases: Vec<&str> = text
        .lines()
        .map(|l| {
            if l.contains("\"phase\":\"intent\"") {
                "intent"
            } else {
                "result"
            }
        })
        .collect();
    assert_eq!(phases, ["intent", "intent", "result"]);
    let (_, out) = run(&cfg, &["audit", "--since", "2099-01-01T00:00:00Z"], None);
    assert!(out.trim().is_empty(), "{out}");
}

/// The master's heartbeat INBOX's last UID (one per delivered beat).
fn last_heartbeat_uid() -> u64 {
    let conf = lab().layout.instance(Role::Master).imapd_conf;
    let out = lab()
        .cyrus_tool(Role::Master, "mbexamine")
        .arg("-C")
        .arg(&conf)
        .arg("user/cyrdeck-heartbeat")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("Last UID:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no Last UID in {text}"))
}

/// One heartbeat writer per pair: two `supervise` on the same pair write
/// about one beat per interval between them, not one each.
#[test]
fn two_supervisors_write_one_heartbeat_per_interval_between_them() {
    let _g = lock();
    let dir = state_dir().join(unique("beats"));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("audit.log");
    let cfg = config_with_audit(&log);
    let interval = config().pairs["lab"].heartbeat.as_ref().unwrap().interval;
    let run_for = std::time::Duration::from_secs(25);
    let before = last_heartbeat_uid();
    let mut children: Vec<std::process::Child> = (0..2)
        .map(|_| {
            std::process::Command::new(bin())
                .arg("--config")
                .arg(&cfg)
                .args(["supervise", "--interval", "1"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(run_for);
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    // beats delivered = how far the heartbeat INBOX's last UID moved
    let beats = last_heartbeat_uid() - before;
    let one_writer = run_for.as_secs() / interval.as_secs() + 1;
    println!("two supervisors, {}s, interval {}s: {beats} beats (one writer: ~{one_writer}, one each: ~{})", run_for.as_secs(), interval.as_secs(), 2 * one_writer);
    assert!(beats >= 2, "hardly any beat written: {beats}");
    assert!(
        beats <= one_writer + 2,
        "{beats} beats in {}s: each supervisor wrote its own",
        run_for.as_secs()
    );
}
