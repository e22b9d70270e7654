//! Guided soft failover against the REAL pair: with mail delivered all the
//! time, with the console killed at every step and resumed, and with the
//! replica stopped during the drain. Each test works on its own copy of the
//! lab's config (the runbook rewrites the roles in it) and journal dir, and
//! puts the lab back (configs from the templates, Cyrus restarted) at the end.

mod common;

use common::rehearsal::*;
use common::*;
use cyrdeck::lab::layout::Role;
use std::time::{Duration, Instant};

/// The failover tests' own lab (see common::use_private_lab).
const LAB_NAME: &str = "failover";
const LAB_PORT: u16 = 24700;

#[test]
fn failover_and_back_with_continuous_deliveries_loses_no_accepted_message() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("deliver", None);
    let user = format!("fov{}", run_id());
    create_users(std::slice::from_ref(&user));
    t.wait_drained();

    // the dry run changes nothing and shows the plan
    let (code, out) = t.run(&["failover", "--dry-run"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    assert!(out.contains("[ok] level-1 check clean"), "{out}");
    assert!(
        out.contains("become-master (sync_log: 1, sync_host: 127.0.0.1"),
        "{out}"
    );
    assert_eq!(t.master(), "master");

    // observe mode: the precheck runs, the first write is refused
    let (code, out) = t.run(&["--observe", "failover", "--yes"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("step 2 refused"), "{out}");
    // defect 6: the local hook is a write too: never in observe mode, and
    // nothing was left open (no undo to run, no lock taken)
    assert!(!out.contains("hook: phase"), "{out}");
    assert!(!out.contains("cyrdeck-lock"), "{out}");
    let (_, list) = t.run(&["runbook", "list"]);
    assert!(list.contains("no unfinished runbook"), "{list}");
    assert!(!lab()
        .layout
        .instance(Role::Master)
        .config_dir
        .join("msg/shutdown")
        .exists());
    assert_eq!(t.master(), "master");

    let d = Deliverer::start(&user, &t.target);
    std::thread::sleep(Duration::from_secs(2));
    let (code, out) = t.run(&["failover", "--yes"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    assert_eq!(t.master(), "replica", "{out}");
    assert!(out.contains("canary reached master"), "{out}");
    let window = figure(&out, "writes unavailable ").expect("window printed");
    let total = figure(&out, "failover took ").expect("total printed");
    println!("failover (deliveries running): total {total:.1}s, writes unavailable {window:.1}s");
    // its final check is the pair's record (issue 30, item 4: only a CLI
    // check was, so the console said "NOT SAFE" from an older one)
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - total as i64
        - 5;
    let saved: Vec<serde_json::Value> = std::fs::read_dir(t.state.join("cyrdeck"))
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("last-check-lab-")
        })
        .map(|e| serde_json::from_slice(&std::fs::read(e.path()).unwrap()).unwrap())
        .collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(saved[0]["exit_code"], 0, "{saved:?}");
    assert!(
        saved[0]["finished_at"].as_i64().unwrap() >= started,
        "{saved:?}"
    );
    assert!(
        saved[0]["key"]
            .as_str()
            .unwrap()
            .contains("cyrdeck.toml lab:"),
        "{saved:?}"
    );
    // the ex-master refuses users: no split brain
    assert!(!deliver_to("master", &user, &unique("split")));
    std::thread::sleep(Duration::from_secs(2));

    let (code, out) = t.run(&["failover", "--yes"]);
    assert_eq!(code, 0, "fail back: {}", failed_first(&out));
    assert_eq!(t.master(), "master");
    std::thread::sleep(Duration::from_secs(2));
    let (accepted, refused) = d.finish();
    println!(
        "deliverer: {} accepted, {refused} refused while writes were stopped",
        accepted.len()
    );
    assert!(
        accepted.len() > 40,
        "the deliverer hardly ran: {}",
        accepted.len()
    );
    t.wait_drained();
    assert_on_both(&user, &accepted);
    let audit = std::fs::read_to_string(lab().layout.audit_log()).unwrap();
    for action in [
        "stop-writes",
        "stop-client",
        "become-master",
        "start-writes",
    ] {
        assert!(audit.contains(action), "audit log lacks {action}");
    }
}

#[test]
fn replica_stopped_during_the_drain_stops_before_switching_and_the_master_keeps_serving() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let m = lab().layout.instance(Role::Master);
    // the hook (run right after writes stop) queues an entry and takes the
    // replica down: the drain cannot finish
    let hook = format!(
        "if [ \"$CYRDECK_PHASE\" = stop-writes ]; then {} -C {} -u alice && {} lab down --dir {} --only replica-cyrus >/dev/null; fi",
        lab().cyrus_tool_line(Role::Master, "cyr_synclog"),
        m.imapd_conf.display(),
        bin(),
        lab_dir().display()
    );
    let t = Rehearsal::new("drain", Some(&hook));
    t.wait_drained();
    let (code, out) = t.run(&["failover", "--yes"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("stopped during the drain"), "{out}");
    assert!(out.contains("Undone: roles unchanged"), "{out}");
    assert!(out.contains("master keeps serving as master"), "{out}");
    assert!(!out.contains("-- step 4"), "went past the drain: {out}");
    assert_eq!(t.master(), "master");
    // writes accepted again on the master, its client still there
    assert!(deliver_to("master", "bob", &unique("after-undo")));
    assert!(client_pid().is_some());
    assert!(!m.config_dir.join("msg/shutdown").exists());
    // a failed run is finished: nothing to resume
    let (code, out) = t.run(&["runbook", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("no unfinished runbook"), "{out}");
}

#[test]
fn console_killed_at_each_step_resumes_without_repeating_a_completed_step() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("kill", None);
    let user = format!("fok{}", run_id());
    create_users(std::slice::from_ref(&user));
    t.wait_drained();
    let steps = cyrdeck::ops::failover::SPEC.steps.len();
    let mut delivered = Vec::new();
    for k in 0..steps {
        let master = t.master();
        let id = unique(&format!("k{k}"));
        assert!(deliver_to(&master, &user, &id), "delivery to {master}");
        delivered.push(id);
        // the operator confirms every step before k; the console dies at
        // k: while it asks (between steps), or during the read-only
        // precheck (mid-step: it runs again)
        let mut child = t
            .command(&["failover"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let prompts = {
            let (tx, rx) = std::sync::mpsc::channel::<String>();
            let err = child.stderr.take().unwrap();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut r = std::io::BufReader::new(err);
                let mut buf = String::new();
                let mut b = [0u8; 256];
                while let Ok(n) = r.read(&mut b) {
                    if n == 0 {
                        break;
                    }
                    buf.push_str(&String::from_utf8_lossy(&b[..n]));
                    while let Some(i) = buf.find("[y/N] ") {
                        let _ = tx.send(buf[..i].to_string());
                        buf.drain(..i + 6);
                    }
                }
            });
            rx
        };
        let started = Instant::now();
        if k == 0 {
            loop {
                let j: Option<serde_json::Value> = std::fs::read(t.journal())
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok());
                if j.is_some_and(|j| j["steps"][0]["state"] == "running") {
                    break;
                }
                assert!(
                    started.elapsed() < Duration::from_secs(60),
                    "precheck never started"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        } else {
            loop {
                let p = prompts
                    .recv_timeout(Duration::from_secs(120))
                    .unwrap_or_else(|_| panic!("no prompt for step {}", k + 1));
                if p.contains(&format!("step {}:", k + 1)) {
                    break;
                }
                use std::io::Write;
                writeln!(stdin, "y").unwrap();
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let (code, out) = t.run(&["runbook", "resume", "--yes"]);
        assert_eq!(code, 0, "resume after a kill at step {}: {out}", k + 1);
        let done = t.done();
        let j = done.last().expect("journal archived");
        let attempts: Vec<u64> = j["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_u64().unwrap())
            .collect();
        for (i, a) in attempts.iter().enumerate() {
            assert_eq!(j["steps"][i]["state"], "done", "step {}: {j:#}", i + 1);
            if i < k {
                assert_eq!(
                    *a,
                    1,
                    "step {} completed before the kill and ran again",
                    i + 1
                );
            } else {
                assert!(*a <= 2, "step {} ran {a} times", i + 1);
            }
        }
        assert_ne!(
            t.master(),
            master,
            "roles swapped after the resume (kill at {})",
            k + 1
        );
    }
    if t.master() != "master" {
        let (code, out) = t.run(&["failover", "--yes"]);
        assert_eq!(code, 0, "{}", failed_first(&out));
    }
    t.wait_drained();
    assert_on_both(&user, &delivered);
}

/// The console on the rehearsal's config and journals, the failover of
/// pair lab started (no step run yet); the tmux session and the config path.
fn console_failover(t: &Rehearsal) -> (common::tmux::Tmux, String) {
    console_failover_at(t, 140, 45)
}

/// [`console_failover`] on a terminal of `w` x `h`.
fn console_failover_at(t: &Rehearsal, w: u16, h: u16) -> (common::tmux::Tmux, String) {
    t.wait_drained();
    let cfg = t.config.display().to_string();
    let state = t.state.display().to_string();
    let tm =
        common::tmux::Tmux::start_env(&[("XDG_STATE_HOME", &state)], &["--config", &cfg], w, h);
    tm.wait_for("the first refresh", Duration::from_secs(30), |s| {
        s.contains("updated")
    });
    tm.keys(&[":"]);
    tm.text("failover lab");
    tm.keys(&["Enter"]);
    (tm, cfg)
}

#[test]
fn failover_from_the_console_survives_a_killed_console() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("console", None);
    let (tm, cfg) = console_failover(&t);
    tm.keys(&["Enter"]);
    let s = tm.wait_for("the precheck", Duration::from_secs(60), |s| {
        s.contains("1. done") || s.contains("FAILED")
    });
    assert!(s.contains("1. done"), "{s}");
    tm.keys(&["Enter"]);
    tm.wait_for("writes stopped", Duration::from_secs(60), |s| {
        s.contains("2. done")
    });
    tm.keys(&["Enter"]);
    tm.wait_for("the drain", Duration::from_secs(60), |s| {
        s.contains("3. done")
    });
    // the console dies (SIGKILL: no cleanup of any kind) with writes stopped
    let pids = cyrdeck::lab::process::pids_matching(&format!("--config {cfg}"));
    assert!(!pids.is_empty());
    for p in pids {
        cyrdeck::lab::process::send(p, libc::SIGKILL);
    }
    let m = lab().layout.instance(Role::Master);
    assert!(
        m.config_dir.join("msg/shutdown").exists(),
        "writes should still be stopped"
    );
    let (code, out) = t.run(&["runbook", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains("failover lab on lab: 3/9 steps done"), "{out}");
    let (code, out) = t.run(&["runbook", "resume", "--yes"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    assert!(
        !out.contains("-- step 1:") && !out.contains("-- step 3:"),
        "a completed step ran again: {out}"
    );
    assert_eq!(t.master(), "replica");
    let j = t.done().pop().expect("journal archived");
    assert_eq!(
        j["attempts"],
        serde_json::json!([1, 1, 1, 1, 1, 1, 1, 1, 1]),
        "{j:#}"
    );
    let (code, out) = t.run(&["failover", "--yes"]);
    assert_eq!(code, 0, "fail back: {}", failed_first(&out));
}

#[test]
fn the_operator_stopping_after_writes_stopped_gets_them_back() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("abort", None);
    t.wait_drained();
    let mut child = t
        .command(&["failover"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        // yes to "stop writes", no to "drain"
        child.stdin.take().unwrap().write_all(b"y\nn\n").unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(out.contains("step 2 done"), "{out}");
    assert!(
        out.contains("aborted by the operator. Undone: roles unchanged"),
        "{out}"
    );
    assert!(
        out.contains("writes restored: master keeps serving as master"),
        "{out}"
    );
    let m = lab().layout.instance(Role::Master);
    assert!(!m.config_dir.join("msg/shutdown").exists());
    assert!(deliver_to("master", "bob", &unique("after-abort")));
    assert_eq!(t.master(), "master");
    let (_, list) = t.run(&["runbook", "list"]);
    assert!(list.contains("no unfinished runbook"), "{list}");
    let j = t.done().pop().expect("journal archived");
    assert_eq!(j["steps"][2]["state"], "aborted", "{j:#}");
    assert_eq!(j["undo"]["state"], "done", "{j:#}");
}

/// The operator stopping the failover in the console (`x`) after the
/// replica was promoted (step 6 done): the undo reads both hosts, stops the
/// promoted replica first, gives the old master its client and then its
/// writes back (defect 2, through the console's runner).
#[test]
fn console_x_after_the_switch_undoes_it_from_what_the_hosts_say() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("console-x", None);
    let (tm, _cfg) = console_failover(&t);
    for k in 1..=6 {
        tm.keys(&["Enter"]);
        let s = tm.wait_for(&format!("step {k}"), Duration::from_secs(90), |s| {
            s.contains(&format!("{k}. done")) || s.contains("FAILED")
        });
        assert!(s.contains(&format!("{k}. done")), "{s}");
    }
    // the replica now logs and replicates, both hosts fenced
    let (m, r) = (
        lab().layout.instance(Role::Master),
        lab().layout.instance(Role::Replica),
    );
    let sync_log_on = |conf: &std::path::Path| {
        std::fs::read_to_string(conf)
            .unwrap()
            .lines()
            .any(|l| l.trim() == "sync_log: 1")
    };
    assert!(sync_log_on(&r.imapd_conf) && !sync_log_on(&m.imapd_conf));
    tm.keys(&["x"]);
    let s = tm.wait_for("the undo", Duration::from_secs(120), |s| {
        s.contains("Undone") || s.contains("UNDO FAILED")
    });
    assert!(s.contains("Undone"), "{s}");
    // exactly the state before the run, as the hosts say it
    assert!(sync_log_on(&m.imapd_conf), "the old master logs again");
    assert!(!sync_log_on(&r.imapd_conf), "the replica stopped logging");
    assert!(!m.config_dir.join("msg/shutdown").exists());
    assert!(!r.config_dir.join("msg/shutdown").exists());
    assert_eq!(t.master(), "master");
    // quitting waits for the run's end (lock given back, journal archived)
    tm.keys(&["q"]);
    let ended = wait_for(Duration::from_secs(30), || {
        let (_, list) = t.run(&["runbook", "list"]);
        list.contains("no unfinished runbook").then_some(())
    });
    let (_, list) = t.run(&["runbook", "list"]);
    assert!(ended.is_some(), "the run was left open: {list}");
    assert!(deliver_to("master", "bob", &unique("after-console-x")));
    t.wait_drained();
    let j = t.done().pop().expect("journal archived");
    assert_eq!(j["undo"]["state"], "done", "{j:#}");
}

/// Issue 30 (item 2): the console that ran a failover kept its old roles
/// and called the new master's missing client of the old direction
/// CRITICAL. At 80x24, the whole failover from the console, then the
/// Overview: the new roles, no CRITICAL, the new replica's fence said as
/// normal; then a fail back run elsewhere (the CLI) is followed too.
#[test]
fn the_console_that_ran_a_failover_shows_the_new_roles() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("console-roles", None);
    let (tm, _cfg) = console_failover_at(&t, 80, 24);
    for k in 1..=9 {
        tm.keys(&["Enter"]);
        let s = tm.wait_for(&format!("step {k}"), Duration::from_secs(90), |s| {
            s.contains(&format!("{k}. done")) || s.contains("FAILED") || s.contains("refused ")
        });
        assert!(s.contains(&format!("{k}. done")), "{s}");
    }
    assert_eq!(t.master(), "replica", "the config names the new master");
    tm.keys(&["1"]);
    // the new roles, settled: the new master's client running, no CRITICAL
    let settled = |want_master: &str, want_replica: &str| {
        let until = Instant::now() + Duration::from_secs(60);
        let mut last = String::new();
        while Instant::now() < until {
            let s = tm.capture();
            let roles = s.contains(&format!(" master  {want_master:<9} up"))
                && s.contains(&format!(" replica {want_replica:<9} up"));
            if roles && !s.contains("CRITICAL") && !s.contains("NO CLIENT") {
                return s;
            }
            last = s;
            std::thread::sleep(Duration::from_millis(500));
        }
        panic!("the Overview did not settle on master {want_master}: {last}");
    };
    let mut s = settled("replica", "master");
    // the ex-master's fence is a note, not a problem (scroll to it if the
    // 80x24 Overview has more lines below)
    for _ in 0..10 {
        if s.contains("normal for an ex-master") {
            break;
        }
        assert!(
            s.contains("more line(s) below"),
            "no fence note and nothing below: {s}"
        );
        tm.keys(&["j"]);
        std::thread::sleep(Duration::from_millis(300));
        s = tm.capture();
    }
    assert!(s.contains("normal for an ex-master"), "{s}");
    // issue 26 (item 3): a cyrdeck whose config still has the old roles
    // (the lab's own file) is refused before it locks the ex-master
    let stale = std::process::Command::new(bin())
        .arg("--config")
        .arg(lab().layout.config_file())
        .args(["repair", "--user", "alice", "--yes"])
        .env("XDG_STATE_HOME", &t.state)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&stale.stdout),
        String::from_utf8_lossy(&stale.stderr)
    );
    assert_ne!(stale.status.code(), Some(0), "{said}");
    assert!(
        said.contains("the config says master master; the servers say replica"),
        "{said}"
    );
    // a fail back run by another cyrdeck rewrites the file: followed too
    let (code, out) = t.run(&["failover", "--yes"]);
    assert_eq!(code, 0, "fail back: {}", failed_first(&out));
    tm.keys(&["k", "k", "k", "k", "k", "k", "k", "k", "k", "k"]);
    settled("master", "replica");
    tm.keys(&["q"]);
}

/// Least privilege: the whole failover and the fail back through the lab's
/// `cyrdeck` account and its sudo rules, with mail delivered throughout.
/// sudo's own log on each host shows every command allowed, the config
/// edits (the failover helper) as root and nothing else as root.
#[test]
fn failover_and_back_through_the_sudo_account_loses_nothing() {
    use common::sudo_log;
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let l = &lab().layout;
    let t = Rehearsal::from_config("sudo", None, &l.sudo_config_file());
    let user = format!("fos{}", run_id());
    create_users(std::slice::from_ref(&user));
    t.wait_drained();
    let sudo_before = sudo_log::offsets();
    let d = Deliverer::start(&user, &t.target);
    std::thread::sleep(Duration::from_secs(2));
    let (code, out) = t.run(&["failover", "--yes"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    assert_eq!(t.master(), "replica", "{out}");
    assert!(out.contains("canary reached master"), "{out}");
    std::thread::sleep(Duration::from_secs(2));
    let (code, out) = t.run(&["failover", "--yes"]);
    assert_eq!(code, 0, "fail back: {}", failed_first(&out));
    assert_eq!(t.master(), "master");
    std::thread::sleep(Duration::from_secs(2));
    let (accepted, _) = d.finish();
    assert!(accepted.len() > 20, "the deliverer hardly ran");
    t.wait_drained();
    assert_on_both(&user, &accepted);

    let entries = sudo_log::since(&sudo_before);
    let refused: Vec<_> = entries.iter().filter(|e| e.refused.is_some()).collect();
    assert!(refused.is_empty(), "sudo refused: {refused:#?}");
    assert!(entries
        .iter()
        .all(|e| e.account == cyrdeck::lab::accounts::WRITER));
    let helper = |name: &str| format!("{}/{name} ", l.helper_dir().display());
    for e in &entries {
        let as_root = e.command.starts_with(&helper("failover"));
        assert_eq!(e.run_as == "root", as_root, "{e:?}");
    }
    for action in [
        "stop-writes",
        "stop-client",
        "become-master",
        "start-writes",
    ] {
        assert!(
            entries.iter().any(|e| e.run_as == "root"
                && e.command
                    .starts_with(&format!("{}cyrdeck-failover {action} ", helper("failover")))),
            "no {action} through sudo"
        );
    }
    // the canary: a heartbeat through its helper as cyrus
    assert!(entries
        .iter()
        .any(|e| e.command.starts_with(&helper("heartbeat"))));
}
