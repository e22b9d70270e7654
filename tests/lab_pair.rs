//! Foundation tests against the REAL lab pair: two Cyrus 3.6 instances,
//! one sshd per host, rsyslog, all on loopback (see tests/common).

mod common;

use common::*;
use cyrdeck::config::HostConfig;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::Component;
use cyrdeck::model::snapshot::Health;
use cyrdeck::poll::Poller;
use cyrdeck::remote::{HostConnection, RemoteCommand, RemoteError};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn host(name: &str) -> HostConfig {
    config().host(name).clone()
}

/// Wait (with refreshes) until status is OK; the lab heals on its own.
fn wait_ok(timeout: Duration) -> serde_json::Value {
    let mut last = None;
    wait_for(timeout, || {
        let (code, v) = status_json();
        last = Some(v.clone());
        (code == 0).then_some(v)
    })
    .unwrap_or_else(|| panic!("status never became OK: {:#}", last.unwrap()))
}

/// GUID of the message with `msgid` in `mailbox` on `host`, via mbexamine over SSH.
fn guid_of(conn: &HostConnection, mailbox: &str, msgid: &str) -> Option<String> {
    let h = conn.config();
    let cmd = RemoteCommand::read([
        format!("{}/mbexamine", h.bin_dir.display()),
        "-C".into(),
        h.imapd_conf.display().to_string(),
        mailbox.to_string(),
    ]);
    let out = rt().block_on(conn.exec(&cmd)).expect("mbexamine over ssh");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut guid = None;
    for line in text.lines() {
        if let Some(i) = line.find("GUID:") {
            guid = line[i + 5..].split_whitespace().next().map(str::to_string);
        }
        if line.starts_with(" Envel>") && line.contains(&format!("<{msgid}>")) {
            return guid;
        }
    }
    None
}

#[test]
fn healthy_pair_is_ok() {
    let _g = lock();
    let v = wait_ok(Duration::from_secs(120));
    let pair = &v["pairs"][0];
    assert_eq!(pair["health"], "ok");
    let versions = lab().cyrus_versions();
    for h in pair["hosts"].as_array().unwrap() {
        assert_eq!(h["reachable"], true, "{h}");
        assert_eq!(h["master_running"], true, "{h}");
        // the release each lab host runs (its package's upstream version)
        let role = Role::parse(h["name"].as_str().unwrap()).expect("lab host name");
        let package = versions[role.index()].clone().expect("lab host version");
        let upstream = package.split('-').next().unwrap();
        assert!(
            h["cyrus_version"].as_str().unwrap().contains(upstream),
            "{h} runs {package}"
        );
    }
    let ch = &pair["channels"][0];
    assert_eq!(ch["client"]["running"], true);
    assert_eq!(ch["queue"]["pending"], 0);
    assert_eq!(v["exit_code"], 0);
}

#[test]
fn delivered_mail_is_queued_drains_and_has_the_same_guid_on_the_replica() {
    let _g = lock();
    wait_ok(Duration::from_secs(120));
    let msgid = unique("drain");
    {
        let _paused = Paused::new();
        deliver("carol", &msgid);
        let (_, v) = status_json();
        let q = &v["pairs"][0]["channels"][0]["queue"];
        assert!(q["pending"].as_u64().unwrap() >= 1, "{q}");
        let tops = q["top"].as_array().unwrap();
        assert!(
            tops.iter()
                .any(|t| t["user"] == "carol" && t["mailbox"] == "user/carol"),
            "{q}"
        );
    }
    wait_for(Duration::from_secs(60), || {
        let (_, v) = status_json();
        (v["pairs"][0]["channels"][0]["queue"]["pending"] == 0).then_some(())
    })
    .expect("queue drained");
    let cfg = config();
    let m = HostConnection::new(cfg.host("master").clone(), true, cyrdeck::scripts::all());
    let r = HostConnection::new(cfg.host("replica").clone(), true, cyrdeck::scripts::all());
    let gm = guid_of(&m, "user/carol", &msgid).expect("message on master");
    let gr = wait_for(Duration::from_secs(20), || {
        guid_of(&r, "user/carol", &msgid)
    })
    .expect("message on replica");
    assert_eq!(gm, gr);
    assert_eq!(gm.len(), 40);
}

#[test]
fn replica_cyrus_stopped_is_critical_within_two_refreshes_and_heals_by_itself() {
    let _g = lock();
    wait_ok(Duration::from_secs(120));
    let rt = rt();
    let mut poller = Poller::new(Arc::new(config()), true);
    rt.block_on(poller.refresh());
    stop(Component::Cyrus(Role::Replica));
    deliver("alice", &unique("down1"));
    let first = rt.block_on(poller.refresh());
    std::thread::sleep(Duration::from_secs(2));
    let second = rt.block_on(poller.refresh());
    assert!(
        first.health == Health::Critical || second.health == Health::Critical,
        "not critical within 2 refreshes"
    );
    let pair = &second.pairs[0];
    assert!(pair.problems.iter().any(|p| p.severity == Health::Critical
        && p.channel.as_deref() == Some("default")
        && p.message.contains("replica")));
    let before = pair.channels[0].queue.pending;
    deliver("bob", &unique("down2"));
    deliver("dave", &unique("down3"));
    // the client backs off between connect attempts (15 s, doubling)
    let mut backoff = None;
    let mut after = 0;
    for _ in 0..25 {
        std::thread::sleep(Duration::from_secs(2));
        let r = rt.block_on(poller.refresh());
        assert_eq!(r.health, Health::Critical);
        let ch = &r.pairs[0].channels[0];
        after = ch.queue.pending;
        if let Some(b) = ch.client.backoff_secs {
            backoff = Some(b);
            break;
        }
    }
    assert!(after > before, "pending did not grow: {before} -> {after}");
    assert!(
        backoff.is_some_and(|b| b >= 10),
        "no backoff seen: {backoff:?}"
    );

    // bring the replica back and do nothing else
    lab().up().unwrap();
    let healed = wait_for(Duration::from_secs(150), || {
        std::thread::sleep(Duration::from_secs(2));
        let r = rt.block_on(poller.refresh());
        (r.health == Health::Ok).then_some(r)
    })
    .expect("pair healed by itself");
    assert_eq!(healed.pairs[0].channels[0].queue.pending, 0);
}

#[test]
fn replica_sshd_stopped_is_unreachable_and_nothing_hangs() {
    let _g = lock();
    stop(Component::Sshd(Role::Replica));
    let t = Instant::now();
    let (code, v) = status_json();
    assert!(t.elapsed() < Duration::from_secs(15));
    assert_eq!(code, 2);
    let rep = &v["pairs"][0]["hosts"][1];
    assert_eq!(rep["reachable"], false);
    assert!(rep["error"].as_str().unwrap().contains("127.0.0.2"));
    assert_eq!(v["pairs"][0]["hosts"][0]["reachable"], true);
    lab().up().unwrap();

    // a black hole (sshd frozen: TCP accepted, no banner) times out too
    let pid = lab().pid(Component::Sshd(Role::Replica)).unwrap();
    cyrdeck::lab::process::send(pid, libc::SIGSTOP);
    let t = Instant::now();
    let (code, v) = status_json();
    let took = t.elapsed();
    cyrdeck::lab::process::send(pid, libc::SIGCONT);
    assert_eq!(code, 2);
    assert_eq!(v["pairs"][0]["hosts"][1]["reachable"], false);
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn watch_keeps_last_state_visible_and_reconnects() {
    let _g = lock();
    let rt = rt();
    let mut poller = Poller::new(Arc::new(config()), true);
    let ok = rt.block_on(poller.refresh());
    assert!(ok.pairs[0].hosts[1].reachable);
    stop(Component::Sshd(Role::Replica));
    let down = rt.block_on(poller.refresh());
    let rep = &down.pairs[0].hosts[1];
    assert!(!rep.reachable);
    // last known data stays, with its age
    assert!(rep.cyrus_version.is_some());
    assert!(rep.data_age_secs.is_some());
    lab().up().unwrap();
    let conn = poller.connection("replica").unwrap();
    rt.block_on(conn.retry_now());
    let back = rt.block_on(poller.refresh());
    assert!(
        back.pairs[0].hosts[1].reachable,
        "{:?}",
        back.pairs[0].hosts[1].error
    );
}

#[test]
fn unknown_changed_host_key_and_wrong_client_key_are_refused_clearly() {
    let _g = lock();
    let dir = lab().layout.dir.join("keytest");
    std::fs::create_dir_all(&dir).unwrap();
    let rt = rt();

    // unknown: empty known_hosts
    let mut h = host("replica");
    h.known_hosts = dir.join("empty_known_hosts");
    std::fs::write(&h.known_hosts, "").unwrap();
    let e = rt
        .block_on(
            HostConnection::new(h.clone(), true, cyrdeck::scripts::all())
                .exec(&RemoteCommand::read(["true"])),
        )
        .unwrap_err();
    assert!(matches!(e, RemoteError::UnknownHostKey { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("SHA256:") && msg.contains("cyrdeck trust"),
        "{msg}"
    );

    // changed: another key recorded for this host:port
    let other = dir.join("other_key");
    let _ = std::fs::remove_file(&other);
    let _ = std::fs::remove_file(other.with_extension("pub"));
    let st = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&other)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let mut f = public.split_whitespace();
    let line = format!(
        "[{}]:{} {} {}\n",
        h.target.host,
        h.target.port,
        f.next().unwrap(),
        f.next().unwrap()
    );
    std::fs::write(&h.known_hosts, line).unwrap();
    let e = rt
        .block_on(
            HostConnection::new(h.clone(), true, cyrdeck::scripts::all())
                .exec(&RemoteCommand::read(["true"])),
        )
        .unwrap_err();
    assert!(
        matches!(&e, RemoteError::ChangedHostKey { stored, .. } if stored.ends_with(":1")),
        "{e}"
    );
    assert!(e.to_string().contains("HOST KEY CHANGED"));

    // wrong client key: a key the server does not know
    let mut h = host("replica");
    h.identity = Some(other.clone());
    let e = rt
        .block_on(
            HostConnection::new(h, true, cyrdeck::scripts::all())
                .exec(&RemoteCommand::read(["true"])),
        )
        .unwrap_err();
    assert!(matches!(e, RemoteError::Auth { .. }), "{e}");
    assert!(e.to_string().contains("refused key"), "{e}");
}

/// sshd runs commands through root's shell, which reads root's dotfiles:
/// in the lab root's home is the lab's own, never the host's /root (a stale
/// pyenv lock there once timed every lab command out; lab/accounts.rs).
#[test]
fn a_lab_session_is_at_home_in_the_lab_not_in_the_hosts_root() {
    let _g = lock();
    let conn = HostConnection::new(host("master"), false, cyrdeck::scripts::all());
    let out = rt()
        .block_on(conn.exec(&RemoteCommand::read(["printenv", "HOME"])))
        .unwrap();
    let home = lab().layout.root_home();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        home.to_str().unwrap()
    );
}

#[test]
fn exec_reports_exit_status_signal_and_times_out_without_leaking_channels() {
    let _g = lock();
    let rt = rt();
    let conn = HostConnection::new(host("master"), false, cyrdeck::scripts::all());
    let cap = conn.write_capability().unwrap();
    let out = rt
        .block_on(conn.exec(&RemoteCommand::read([
            "sh",
            "-c",
            "echo out; echo err >&2; exit 7",
        ])))
        .unwrap();
    assert_eq!(out.exit_status, Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "out\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "err\n");
    let out = rt
        .block_on(conn.exec(&RemoteCommand::write(["sh", "-c", "kill -TERM $$"], &cap)))
        .unwrap();
    assert_eq!(out.exit_status, None);
    assert!(out.exit_signal.as_deref().unwrap().contains("TERM"));
    // more timeouts than sshd's MaxSessions: each channel must be closed
    for _ in 0..35 {
        let e = rt
            .block_on(conn.exec_timeout(
                &RemoteCommand::read(["sleep", "30"]),
                Duration::from_millis(200),
            ))
            .unwrap_err();
        assert!(matches!(e, RemoteError::Timeout { .. }), "{e}");
    }
    let out = rt
        .block_on(conn.exec(&RemoteCommand::read(["echo", "still fine"])))
        .unwrap();
    assert!(out.success());
    assert_eq!(
        rt.block_on(conn.stats()).connects,
        1,
        "one shared connection"
    );
}

#[test]
fn observe_mode_transport_refuses_mutating_commands() {
    let conn = HostConnection::new(host("master"), true, cyrdeck::scripts::all());
    assert!(conn.write_capability().is_none());
    let writer = HostConnection::new(host("master"), false, cyrdeck::scripts::all());
    let cap = writer.write_capability().unwrap();
    let e = rt()
        .block_on(conn.exec(&RemoteCommand::write(
            ["touch", "/tmp/cyrdeck-observe"],
            &cap,
        )))
        .unwrap_err();
    assert!(matches!(e, RemoteError::ObserveMode { .. }), "{e}");
}

#[test]
fn hostile_folder_names_are_listed_verbatim_and_never_executed() {
    let _g = lock();
    let _ = std::fs::remove_file(cyrdeck::lab::seed::PWNED_MARKER);
    wait_ok(Duration::from_secs(120));
    let m = lab().layout.instance(Role::Master);
    let hostile = cyrdeck::lab::seed::hostile_folders(cyrdeck::lab::seed::PWNED_MARKER);
    let mut accepted = Vec::new();
    {
        let _paused = Paused::new();
        let mut imap =
            cyrdeck::lab::mail::Imap::login(Role::Master.address(), m.imap_port, "alice").unwrap();
        for f in &hostile {
            let name = format!("INBOX/{f}");
            if imap.create(&name).is_ok() {
                imap.append(
                    &name,
                    &cyrdeck::lab::mail::message(&unique("hostile"), "h", "b"),
                )
                .unwrap();
                accepted.push(format!("user/alice/{f}"));
            }
        }
        imap.logout();
        // Cyrus 3.6 takes at least these; quotes, `;`, backticks, newlines are refused
        for must in ["With Space", "it's", "Entwürfe"] {
            assert!(accepted.iter().any(|a| a.ends_with(must)), "{must} refused");
        }
        assert!(accepted.iter().any(|a| a.contains("$(touch")));
        let (_, v) = status_json();
        let tops = v["pairs"][0]["channels"][0]["queue"]["top"]
            .as_array()
            .unwrap()
            .clone();
        let listed: Vec<String> = tops
            .iter()
            .filter_map(|t| t["mailbox"].as_str().map(str::to_string))
            .collect();
        for a in &accepted {
            assert!(listed.contains(a), "{a:?} not listed in {listed:?}");
        }
    }
    // hostile names as arguments of remote tools, through the one quoting function
    let conn = HostConnection::new(host("master"), true, cyrdeck::scripts::all());
    let h = conn.config().clone();
    for a in &accepted {
        let out = rt()
            .block_on(conn.exec(&RemoteCommand::read([
                format!("{}/mbexamine", h.bin_dir.display()),
                "-C".into(),
                h.imapd_conf.display().to_string(),
                // tools take the wire form: modified UTF-7
                cyrdeck::cyrus::names::to_mutf7(a),
            ])))
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("Mailbox Header Info"),
            "mbexamine {a:?}: {text}"
        );
    }
    assert!(
        !std::path::Path::new(cyrdeck::lab::seed::PWNED_MARKER).exists(),
        "a hostile folder name was executed"
    );
}

#[test]
fn unreadable_syslog_file_is_a_warning_not_silence() {
    let _g = lock();
    wait_ok(Duration::from_secs(120));
    let mut cfg = config();
    cfg.hosts.get_mut("replica").unwrap().syslog_file =
        Some(std::path::PathBuf::from("/nonexistent/cyrus.log"));
    let mut poller = Poller::new(Arc::new(cfg), true);
    let r = rt().block_on(poller.refresh());
    assert_eq!(r.health, Health::Warning, "{:?}", r.pairs[0].problems);
    let p = &r.pairs[0].problems[0];
    assert_eq!(p.host.as_deref(), Some("replica"));
    assert!(
        p.message.contains("/nonexistent/cyrus.log"),
        "{}",
        p.message
    );
}

fn heartbeat_of(report: &cyrdeck::model::snapshot::StatusReport) -> (u64, u64, u64) {
    let hb = report.pairs[0].channels[0]
        .heartbeat
        .clone()
        .expect("heartbeat configured in the lab");
    (
        hb.master_at.expect("master heartbeat read"),
        hb.replica_at.expect("replica heartbeat read"),
        hb.lag_secs.expect("lag computed"),
    )
}

#[test]
fn heartbeat_measures_lag_while_replication_is_paused_and_is_refused_in_observe_mode() {
    let _g = lock();
    wait_ok(Duration::from_secs(120));
    // observe mode: refused, nothing written
    let before = rt().block_on(Poller::new(Arc::new(config()), true).refresh());
    // a fresh lab may have no beat yet (its INBOX never appended to: 0)
    let m0 = before.pairs[0].channels[0]
        .heartbeat
        .as_ref()
        .and_then(|h| h.master_at)
        .unwrap_or(0);
    let (code, out) = cli(&["--observe", "heartbeat"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("observe mode"), "{out}");
    std::thread::sleep(Duration::from_millis(1100));
    let (code, out) = cli(&["heartbeat"]);
    assert_eq!(code, 0, "{out}");
    let rt = rt();
    let mut poller = Poller::new(Arc::new(config()), true);
    // on a fresh lab the replica has no heartbeat mailbox until this beat
    // is replicated: wait for it, not only for equal values
    let (m1, r1, lag) = wait_for(Duration::from_secs(20), || {
        let report = rt.block_on(poller.refresh());
        let hb = report.pairs[0].channels[0].heartbeat.as_ref()?;
        let beat = (hb.master_at?, hb.replica_at?, hb.lag_secs?);
        (beat.1 == beat.0).then_some(beat)
    })
    .expect("the beat reaches the replica");
    assert!(m1 > m0, "a new beat on the master ({m0} -> {m1})");
    assert_eq!((r1, lag), (m1, 0));

    // replication paused: the console's poller beats by itself; the
    // replica's copy stays behind and the lag grows with the clock
    let paused = Paused::new();
    let mut writer = Poller::new(Arc::new(config()), false).supervising();
    rt.block_on(writer.refresh()); // beats after its probe
    std::thread::sleep(Duration::from_secs(6)); // > heartbeat_secs = 5
    rt.block_on(writer.refresh());
    std::thread::sleep(Duration::from_secs(1));
    let report = rt.block_on(poller.refresh());
    let (m2, r2, lag2) = heartbeat_of(&report);
    assert!(m2 > m1, "the poller wrote heartbeats ({m1} -> {m2})");
    assert_eq!(r2, r1, "the replica cannot have a newer beat while paused");
    assert!(lag2 >= 6, "lag {lag2}s while paused for 7 s");
    drop(paused);
    let (_, _, lag3) = wait_for(Duration::from_secs(30), || {
        let hb = heartbeat_of(&rt.block_on(poller.refresh()));
        (hb.2 == 0).then_some(hb)
    })
    .expect("lag back to 0 after resuming");
    assert_eq!(lag3, 0);
}

/// Issue 30 (1): a master with a fence (`msg/shutdown`) takes no mail:
/// `status` is CRITICAL (exit 2, as Nagios reads it) and names the run
/// that fenced it and how long ago; the site's own message is named as
/// it is; on a replica a fence is the ex-master's normal state, a note.
#[test]
fn a_fenced_master_is_critical_and_names_the_run_a_fenced_replica_is_a_note() {
    let _g = lock();
    wait_ok(Duration::from_secs(120));
    let dir = |r: Role| lab().layout.instance(r).config_dir.join("msg");
    struct Unfence(Vec<std::path::PathBuf>);
    impl Drop for Unfence {
        fn drop(&mut self) {
            for p in &self.0 {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let _unfence = Unfence(vec![
        dir(Role::Master).join("shutdown"),
        dir(Role::Replica).join("shutdown"),
    ]);
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        - 600_000;
    let run = format!("vm-1-{started_ms}");
    for r in [Role::Master, Role::Replica] {
        std::fs::create_dir_all(dir(r)).unwrap();
    }
    std::fs::write(
        dir(Role::Master).join("shutdown"),
        format!("cyrdeck failover fence (run {run}): writes stopped\n"),
    )
    .unwrap();
    let (code, v) = status_json();
    let problems = v["pairs"][0]["problems"].to_string();
    assert_eq!(code, 2, "{v:#}");
    assert!(
        problems.contains("writes are stopped on master master"),
        "{problems}"
    );
    assert!(
        problems.contains(&run) && problems.contains("10m ago"),
        "{problems}"
    );
    std::fs::write(dir(Role::Master).join("shutdown"), "down for maintenance\n").unwrap();
    let (code, v) = status_json();
    assert_eq!(code, 2, "{v:#}");
    assert!(v["pairs"][0]["problems"]
        .to_string()
        .contains("down for maintenance"));
    std::fs::remove_file(dir(Role::Master).join("shutdown")).unwrap();
    std::fs::write(
        dir(Role::Replica).join("shutdown"),
        format!("cyrdeck failover fence (run {run}): writes stopped\n"),
    )
    .unwrap();
    let (code, v) = status_json();
    assert_eq!(code, 0, "a fenced replica alone: {v:#}");
    assert!(
        v["pairs"][0]["notes"]
            .to_string()
            .contains("normal for an ex-master"),
        "{v:#}"
    );
}
