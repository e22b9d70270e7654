//! A rolling client that dies under cyrus.conf START (nobody restarts it)
//! is detected, and the restart runbook brings replication back.

mod common;

use common::*;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::{process, Component};
use std::time::Duration;

/// Puts the master's cyrus.conf back, kills clients started outside master,
/// and SIGHUPs master so its DAEMON client returns — also when the test fails.
struct BackToDaemon {
    conf: std::path::PathBuf,
    original: Vec<u8>,
}

impl Drop for BackToDaemon {
    fn drop(&mut self) {
        let imapd = lab().layout.instance(Role::Master).imapd_conf;
        for pid in process::pids_matching(&format!("sync_client -C {} -r", imapd.display())) {
            process::send(pid, libc::SIGTERM);
        }
        let _ = std::fs::write(&self.conf, &self.original);
        if let Some(m) = lab().pid(Component::Cyrus(Role::Master)) {
            process::send(m, libc::SIGHUP);
        }
        let _ = wait_for(Duration::from_secs(30), client_pid);
    }
}

#[test]
fn a_dead_start_mode_client_is_detected_and_restarted() {
    let _g = lock();
    let m = lab().layout.instance(Role::Master);
    let original = std::fs::read(&m.cyrus_conf).unwrap();
    let text = String::from_utf8(original.clone()).unwrap();
    let start_mode = text.replace("DAEMON {", "START {");
    assert_ne!(start_mode, text);
    let _restore = BackToDaemon {
        conf: m.cyrus_conf.clone(),
        original,
    };
    std::fs::write(&m.cyrus_conf, start_mode).unwrap();
    let master = lab()
        .pid(Component::Cyrus(Role::Master))
        .expect("master running");
    process::send(master, libc::SIGHUP);
    std::thread::sleep(Duration::from_secs(2));
    // the running client survives the SIGHUP; once it dies nobody restarts it
    let client = client_pid().expect("client still running after SIGHUP");
    process::send(client, libc::SIGTERM);
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(client_pid(), None, "master restarted a START-mode client");

    // detected
    let user = format!("rst{}", run_id());
    create_users(std::slice::from_ref(&user));
    deliver(&user, &unique("while-dead"));
    let (code, v) = status_json();
    assert_eq!(code, 2, "{v:#}");
    let problems = v["pairs"][0]["problems"].to_string();
    assert!(problems.contains("is not running"), "{problems}");
    let (code, doc) = cli(&["doctor"]);
    assert_eq!(code, 1);
    assert!(doc.contains("client_in_start"), "{doc}");

    // restarted: the queue drains and the user arrives on the replica —
    // first cut short by a SIGKILL right after the client was started
    // (the run is journalled under the pair lock): the resumed start step
    // finds it running and starts no second one
    let (code, out) = cli_env(
        &["run", "restart", "default", "--yes"],
        &[("CYRDECK_FAULT", "2:kill-after")],
    );
    assert!(code.is_none() && out.contains("fault injection"), "{out}");
    let (code, out) = cli(&["runbook", "resume", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("already running"), "{out}");
    assert!(out.contains("step 3 done: client"), "{out}");
    let (_, list) = cli(&["runbook", "list"]);
    assert!(list.contains("no unfinished runbook"), "{list}");
    assert!(!m.config_dir.join("cyrdeck-runbook.lock").exists());
    wait_drained();
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(code, 0, "{v:#}");
    // and a second restart does not start a second client
    let (code, out) = cli(&["run", "restart", "default", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("nothing to restart"), "{out}");
    let imapd = m.imapd_conf.display().to_string();
    assert_eq!(
        process::pids_matching(&format!("sync_client -C {imapd} -r")).len(),
        1
    );
}
