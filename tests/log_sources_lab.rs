//! Cyrus's lines wherever a site keeps them: the systemd journal (the lab's
//! master logs only to a private systemd-journald here) and a syslog file
//! that is rotated under cyrdeck's feet (renamed, or copied and truncated).
//! A private lab (port 25300): its master is a journal host.

mod common;

use common::*;
use cyrdeck::config::LogSource;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::Component;
use std::sync::Arc;
use std::time::Duration;

fn setup() {
    use_private_journal_lab("logsrc", 25300, Role::Master);
}

#[test]
fn journal_host_shows_the_hot_loop_names_the_user_and_clears_after_a_minute() {
    setup();
    let _g = lock();
    let cfg = config();
    assert_eq!(cfg.host("master").log_source, LogSource::Journal);
    assert!(cfg.host("master").syslog_file.is_none());
    // nothing of the master's reaches the lab's rsyslogd: only the journal has it
    let file = lab().layout.instance(Role::Master).syslog_file();
    assert!(!file.exists(), "{} should not exist", file.display());
    let (after, n) = hot_loop_shown_named_and_cleared(cfg, "jrn");
    eprintln!("journal: OK {after} s after the last bail-out ({n} refreshes)");
}

/// Lines sent through the lab's real rsyslogd as the replica's Cyrus would.
fn say(n: &str) {
    let inst = lab().layout.instance(Role::Replica);
    let st = std::process::Command::new("logger")
        .arg("-u")
        .arg(inst.log_socket())
        .arg("-t")
        .arg(format!("{}/sync_client", inst.syslog_prefix))
        .arg(format!("SYNCERROR: rotation-test {n}"))
        .status()
        .unwrap();
    assert!(st.success());
}

fn hup_rsyslogd() {
    let pid = lab().pid(Component::Syslog).expect("lab rsyslogd");
    cyrdeck::lab::process::send(pid, libc::SIGHUP);
}

#[test]
fn rotated_and_truncated_syslog_files_are_followed_without_loss_or_repeats() {
    setup();
    let _g = lock();
    let cfg = Arc::new(config());
    let file = cfg.host("replica").syslog_file.clone().unwrap();
    let rt = rt();
    let mut poller = cyrdeck::poll::Poller::new(cfg.clone(), true);
    rt.block_on(poller.refresh());
    let mut sent = vec![];
    let mut send = |tag: &str, k: usize| {
        for i in 0..k {
            let n = format!("{tag}-{i}-{}", run_id());
            say(&n);
            sent.push(n);
        }
    };
    let settle = || std::thread::sleep(Duration::from_millis(700));

    send("plain", 3);
    settle();
    rt.block_on(poller.refresh());
    // logrotate's default: rename, the daemon reopens on HUP. Lines written
    // before the HUP still land in the renamed file.
    send("before-rename", 2);
    settle();
    std::fs::rename(&file, file.with_extension("log.1")).unwrap();
    send("renamed-old-fd", 2);
    settle();
    hup_rsyslogd();
    std::thread::sleep(Duration::from_secs(1));
    send("new-file", 3);
    settle();
    rt.block_on(poller.refresh());
    // copytruncate: a copy beside it, then the file emptied in place
    send("before-copy", 3);
    settle();
    std::fs::copy(&file, file.with_extension("log.1")).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(0)
        .unwrap();
    send("after-truncate", 2);
    settle();
    let r = rt.block_on(poller.refresh());
    send("last", 2);
    settle();
    let r2 = rt.block_on(poller.refresh());

    let read: Vec<String> = r2.pairs[0]
        .events
        .iter()
        .filter(|e| e.host == "replica")
        .filter_map(|e| {
            e.event
                .text
                .strip_prefix("SYNCERROR: rotation-test ")
                .map(str::to_string)
        })
        .filter(|n| n.ends_with(&format!("-{}", run_id())))
        .collect();
    assert_eq!(
        read,
        sent,
        "every line once, in order (first report: {} events)",
        r.pairs[0].events.len()
    );
}

#[test]
fn doctor_reads_the_journal_host_as_a_log_source() {
    setup();
    let _g = lock();
    let (code, out) = cli(&["doctor"]);
    assert!(
        !out.contains("no syslog file is configured") && !out.contains("cannot be read"),
        "doctor does not see the master's journal (exit {code}): {out}"
    );
    // status reads it too: no log error for the journal host
    let (_, status) = status_json();
    let master = status["pairs"][0]["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "master")
        .cloned()
        .unwrap();
    assert!(master["log_error"].is_null(), "{master:#}");
}
