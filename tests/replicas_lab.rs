//! Two replicas at once, on a REAL lab of three hosts (`lab up --replicas
//! 2`): the master logs two sync-log channels (the default one and
//! `replica2`, with `""` listed so the default survives) and runs a rolling
//! client per channel. One replica going away stops nothing else: the other
//! stays current, status names the one that lags, and it catches up alone
//! when it returns; the check compares the master with each.

mod common;

use common::*;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::Component;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const LAB_NAME: &str = "replicas";
const LAB_PORT: u16 = 27300;

/// The channel of `replica` in a status --json.
fn channel<'a>(v: &'a serde_json::Value, replica: &str) -> &'a serde_json::Value {
    v["pairs"][0]["channels"]
        .as_array()
        .expect("channels")
        .iter()
        .find(|c| c["replica"] == replica)
        .unwrap_or_else(|| panic!("no channel to {replica}: {v}"))
}

/// Message-ID -> GUID of `user`'s INBOX on one host.
fn inbox(role: Role, user: &str) -> BTreeMap<String, String> {
    common::rehearsal::by_msgid(role, &format!("user/{user}"))
}

/// Wait until every id is on `role` with the master's GUID.
fn wait_on(role: Role, user: &str, ids: &[String], limit: Duration) -> Duration {
    let started = Instant::now();
    let master = inbox(Role::Master, user);
    wait_for(limit, || {
        let there = inbox(role, user);
        ids.iter()
            .all(|id| master.contains_key(id) && there.get(id) == master.get(id))
            .then_some(())
    })
    .unwrap_or_else(|| {
        let there = inbox(role, user);
        let missing: Vec<&String> = ids.iter().filter(|id| !there.contains_key(*id)).collect();
        panic!(
            "{} lacks {} of {} messages after {limit:?}: {missing:?}",
            role.name(),
            missing.len(),
            ids.len()
        )
    });
    started.elapsed()
}

#[test]
fn one_replica_down_the_other_stays_current_and_the_first_catches_up_on_return() {
    use_private_lab_with_replicas(LAB_NAME, LAB_PORT, 2);
    let _g = lock();
    assert_eq!(lab().layout.roles().len(), 3);
    let user = format!("two{}", run_id());
    create_users(std::slice::from_ref(&user));
    let mut ids: Vec<String> = (0..5).map(|i| unique(&format!("both-{i}"))).collect();
    for id in &ids {
        deliver(&user, id);
    }
    for r in [Role::Replica, Role::Replica2] {
        wait_on(r, &user, &ids, Duration::from_secs(30));
    }
    let (code, v) = status_json();
    assert_eq!(code, 0, "{v}");
    for r in ["replica", "replica2"] {
        assert_eq!(channel(&v, r)["queue"]["pending"], 0, "{v}");
        assert_eq!(channel(&v, r)["client"]["running"], true, "{v}");
    }
    assert_eq!(channel(&v, "replica2")["channel"], "replica2");
    assert_eq!(channel(&v, "replica")["channel"], "");

    // replica2 goes away: the first replica keeps up
    stop(Component::Cyrus(Role::Replica2));
    let while_down: Vec<String> = (0..20).map(|i| unique(&format!("one-{i}"))).collect();
    for id in &while_down {
        deliver(&user, id);
    }
    ids.extend(while_down.iter().cloned());
    let took = wait_on(Role::Replica, &user, &ids, Duration::from_secs(30));
    println!("replica current {took:?} after the deliveries, replica2 down");
    let down_inbox = inbox(Role::Master, &user);
    assert!(
        while_down.iter().all(|id| down_inbox.contains_key(id)),
        "the master accepted them"
    );
    // status names the lagging channel, not the healthy one
    let v = wait_for(Duration::from_secs(30), || {
        let (_, v) = status_json();
        let p = channel(&v, "replica2")["queue"]["pending"]
            .as_u64()
            .unwrap_or(0);
        (p > 0).then_some(v)
    })
    .expect("replica2's channel queues while it is down");
    assert_eq!(channel(&v, "replica")["queue"]["pending"], 0, "{v}");
    assert_ne!(channel(&v, "replica2")["health"], "ok", "{v}");
    // its client's log lines count on its channel only, by the pid that
    // wrote them (issue 30, item 3: they were shown on the default one)
    let from_log = |p: &serde_json::Value| {
        let m = p["message"].as_str().unwrap_or("");
        m.contains("connect") || m.contains("bailed out")
    };
    let v = wait_for(Duration::from_secs(60), || {
        let (_, v) = status_json();
        let problems = v["pairs"][0]["problems"].as_array()?;
        problems
            .iter()
            .any(|p| p["channel"] == "replica2" && from_log(p))
            .then_some(v)
    })
    .unwrap_or_else(|| {
        panic!(
            "replica2's client's failures never shown: {}",
            status_json().1
        )
    });
    let problems = v["pairs"][0]["problems"].as_array().unwrap();
    assert!(
        !problems.iter().any(|p| p["channel"] == "" && from_log(p)),
        "the default channel's client is fine: {v:#}"
    );
    assert_eq!(channel(&v, "replica")["health"], "ok", "{v:#}");
    let (code, human) = cli(&["status"]);
    assert_ne!(code, 0, "{human}");
    assert!(human.contains("replica2"), "{human}");
    // replica2's files are still readable (its sshd is up): what it lacks
    // is in flight on its channel, named
    let (_, check) = cli(&["check", "--drain-wait", "2"]);
    assert!(
        check.contains(&format!("user/{user} on replica2")),
        "the check names the replica that lags: {check}"
    );
    assert!(
        !check.contains(" on replica "),
        "the first replica is current: {check}"
    );

    // it comes back and catches up by itself (its client's reconnect wait)
    lab().up().expect("replica2 back");
    let took = wait_on(Role::Replica2, &user, &ids, Duration::from_secs(90));
    println!("replica2 caught up {took:?} after its return");
    // the client's connect errors stay "recent" for a minute after the last
    wait_for(Duration::from_secs(90), || {
        let (code, _) = status_json();
        (code == 0).then_some(())
    })
    .unwrap_or_else(|| panic!("status never OK again: {}", cli(&["status"]).1));
    let (code, v) = check_json(&[]);
    assert_eq!(code, 0, "the pair with both replicas checks clean: {v}");
    let checked = v["mailboxes_checked"].as_u64().unwrap_or(0);
    let on_master = inbox(Role::Master, &user).len();
    assert!(on_master >= ids.len());
    assert!(checked >= 2, "both replicas compared: {v}");
}

#[test]
fn the_check_names_the_replica_that_differs() {
    use_private_lab_with_replicas(LAB_NAME, LAB_PORT, 2);
    let _g = lock();
    let user = format!("dif{}", run_id());
    create_users(std::slice::from_ref(&user));
    let ids: Vec<String> = (0..3).map(|i| unique(&format!("dif-{i}"))).collect();
    for id in &ids {
        deliver(&user, id);
    }
    for r in [Role::Replica, Role::Replica2] {
        wait_on(r, &user, &ids, Duration::from_secs(30));
    }
    // expunge UID 2 on replica2 alone (as the user there): a divergence of
    // that replica only
    let mut i = login(Role::Replica2, &user);
    i.command("SELECT INBOX").unwrap();
    i.command("UID STORE 2 +FLAGS (\\Deleted)").unwrap();
    i.command("EXPUNGE").unwrap();
    i.logout();
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(code, 1, "{v}");
    let diffs = v["differences"].as_array().expect("differences");
    assert!(!diffs.is_empty(), "{v}");
    for d in diffs {
        let detail = d["detail"].as_str().unwrap_or("");
        assert!(
            detail.starts_with("[replica2]"),
            "only replica2 differs: {v}"
        );
    }
    // repair it back from the master
    let (code, out) = cli(&["repair", "--user", &user, "--yes"]);
    assert_eq!(code, 0, "{out}");
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(code, 0, "repaired: {v}");
}

/// `sync_log` as the host's own imapd.conf says it (its last line of it):
/// read directly, the harness must not trust cyrdeck to tell it.
fn logs_changes(role: Role) -> bool {
    let conf = std::fs::read_to_string(lab().layout.instance(role).imapd_conf).unwrap();
    conf.lines()
        .filter_map(|l| l.trim().strip_prefix("sync_log:"))
        .next_back()
        .is_some_and(|v| v.trim() == "1")
}

/// The pair's master and replicas (host, channel) in a rehearsal's config.
fn topology(t: &common::rehearsal::Rehearsal) -> (String, Vec<(String, String)>) {
    let c = cyrdeck::config::Config::load(&t.config).unwrap();
    let p = &c.pairs["lab"];
    (
        p.master.clone(),
        p.replicas
            .iter()
            .map(|r| (r.host.clone(), r.channel.clone()))
            .collect(),
    )
}

/// A failover of a pair with two replicas, under continuous delivery: the
/// operator must choose the new master; "no" after the switch undoes it on
/// both channels; SIGKILLed after the switch and resumed, it goes to
/// replica2 and the other replica follows on its own channel (canary on
/// each); then back to the master. Every accepted message on all three.
#[test]
fn failover_of_a_pair_with_two_replicas_moves_the_other_replica_along() {
    use common::rehearsal::*;
    use_private_lab_with_replicas(LAB_NAME, LAB_PORT, 2);
    let _g = lock();
    let t = Rehearsal::new("two", None);
    let user = format!("fo2r{}", run_id());
    create_users(std::slice::from_ref(&user));
    let d = Deliverer::start(&user, &t.target);
    std::thread::sleep(Duration::from_secs(1));

    // which replica is not the tool's guess
    let (code, out) = t.run(&["failover", "--dry-run"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("has 2 replicas") && out.contains("--to HOST"),
        "{out}"
    );
    let (code, out) = t.run(&["failover", "--dry-run", "--to", "replica2"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    assert!(out.contains("moves over"), "{out}");

    // "no" at step 7 (writes about to start on replica2, both of its
    // channels' clients running): undone from what the hosts say
    let mut cmd = t.command(&["failover", "--to", "replica2"]);
    cmd.stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let answers = "y\n".repeat(5) + "n\n";
        let _ = child.stdin.take().unwrap().write_all(answers.as_bytes());
    }
    let o = child.wait_with_output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{}", failed_first(&out));
    assert!(out.contains("stopped before step 7"), "{out}");
    assert!(out.contains("roles unchanged"), "{}", failed_first(&out));
    assert_eq!(topology(&t).0, "master");
    assert!(logs_changes(Role::Master));
    assert!(!logs_changes(Role::Replica2) && !logs_changes(Role::Replica));
    let (_, v) = status_json();
    for r in ["replica", "replica2"] {
        assert_eq!(channel(&v, r)["client"]["running"], true, "{r}: {v}");
    }

    // killed right after the switch on replica2, resumed: forward
    let o = t
        .command(&["failover", "--to", "replica2", "--yes"])
        .env("CYRDECK_FAULT", "6:kill-after")
        .output()
        .unwrap();
    let first =
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.code().is_none() && first.contains("fault injection: SIGKILL"),
        "{first}"
    );
    let (code, out) = t.run(&["runbook", "resume", "--yes"]);
    assert_eq!(
        code,
        0,
        "{}",
        failed_first(&format!("{first}\n--- resume:\n{out}"))
    );
    assert!(out.contains("canary reached master"), "{out}");
    assert!(out.contains("canary reached replica "), "{out}");
    assert_eq!(
        topology(&t),
        (
            "replica2".to_string(),
            vec![
                ("master".to_string(), "replica2".to_string()),
                ("replica".to_string(), String::new())
            ]
        ),
        "the old master took replica2's channel, the replica kept its own"
    );
    assert!(logs_changes(Role::Replica2));
    assert!(!logs_changes(Role::Master) && !logs_changes(Role::Replica));
    let conf2 = std::fs::read_to_string(lab().layout.instance(Role::Replica2).imapd_conf).unwrap();
    let channels = conf2
        .lines()
        .filter_map(|l| l.trim().strip_prefix("sync_log_channels:"))
        .next_back()
        .unwrap_or_default()
        .to_string();
    let mut words: Vec<&str> = channels.split_whitespace().collect();
    words.sort();
    assert_eq!(
        words,
        ["\"\"", "replica2"],
        "replica2's sync_log_channels: {conf2}"
    );
    std::thread::sleep(Duration::from_secs(2));

    // and back once the precheck passes, as an operator would: a sync error
    // of the switch itself (the deliverer's user, e.g. "Mailbox has changed
    // since last sync") blocks a failover for RECENT_SECS (CI run, 2026-12-03)
    let ready = wait_for(Duration::from_secs(120), || {
        (t.run(&["failover", "--to", "master", "--dry-run"]).0 == 0).then_some(())
    });
    assert!(
        ready.is_some(),
        "{}",
        t.run(&["failover", "--to", "master", "--dry-run"]).1
    );
    // the master chosen among replica2's two replicas
    let (code, out) = t.run(&["failover", "--to", "master", "--yes"]);
    assert_eq!(code, 0, "fail back: {}", failed_first(&out));
    assert!(
        out.contains("canary reached replica2") && out.contains("canary reached replica "),
        "{out}"
    );
    assert_eq!(
        topology(&t),
        (
            "master".to_string(),
            vec![
                ("replica2".to_string(), "replica2".to_string()),
                ("replica".to_string(), String::new())
            ]
        )
    );
    assert!(logs_changes(Role::Master));
    assert!(!logs_changes(Role::Replica2) && !logs_changes(Role::Replica));

    let (accepted, refused) = d.finish();
    println!(
        "failover with two replicas: {} accepted, {refused} refused (writes stopped)",
        accepted.len()
    );
    assert!(accepted.len() > 20, "deliveries ran throughout");
    for r in [Role::Replica, Role::Replica2] {
        wait_on(r, &user, &accepted, Duration::from_secs(60));
    }
    let on_master = inbox(Role::Master, &user);
    assert!(accepted.iter().all(|id| on_master.contains_key(id)));
    // the lab as it was for the next test: every Cyrus from its templates,
    // no queue left from replica2's time as master
    stop(Component::Cyrus(Role::Replica2));
    let sync = lab().layout.instance(Role::Replica2).sync_dir();
    for f in ["log", "log-run", "replica2/log", "replica2/log-run"] {
        let _ = std::fs::remove_file(sync.join(f));
    }
}

/// How a case interrupts the failover of the three-host pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cut {
    Abort,
    KillBefore,
    KillAfter,
}

/// The failover of the pair with two replicas, every writing step (2-9) x
/// {"no" at its prompt, SIGKILL before its remote action, SIGKILL after},
/// then resumed until nothing is open, mail delivered throughout; the
/// target alternates between replica2 and the master ("replica" stays a
/// replica). After each case: exactly one host logs, and it is the config's
/// master; each replica's channel has a running client there; the VIP
/// agrees; every accepted message is on all three hosts. Run by
/// scripts/matrix.sh (CI runs the two cases of the test above).
#[test]
#[ignore = "CI time: scripts/matrix.sh runs it; CI: an abort and a kill in the test above"]
fn failover_with_two_replicas_fault_matrix() {
    use common::rehearsal::*;
    use_private_lab_with_replicas(LAB_NAME, LAB_PORT, 2);
    let _g = lock();
    let t = Rehearsal::new("two-matrix", None);
    let user = format!("fo2m{}", run_id());
    create_users(std::slice::from_ref(&user));
    let d = Deliverer::start(&user, &t.target);
    let started = Instant::now();
    let mut table = Vec::new();
    for step in 2..=9usize {
        for cut in [Cut::Abort, Cut::KillBefore, Cut::KillAfter] {
            let (master, _) = topology(&t);
            let to = if master == "master" {
                "replica2"
            } else {
                "master"
            };
            // the precheck must pass first: a user that failed to sync in
            // the last minute (a client restarted by the previous case's
            // undo, mid-mailbox) blocks a failover by design; an operator
            // waits for it as this does
            let waited = Instant::now();
            let ready = wait_for(Duration::from_secs(120), || {
                let (code, _) = t.run(&["failover", "--dry-run", "--to", to]);
                (code == 0).then_some(())
            });
            assert!(
                ready.is_some(),
                "step {step} {cut:?}: the precheck never passed: {}",
                t.run(&["failover", "--dry-run", "--to", to]).1
            );
            if waited.elapsed() > Duration::from_secs(5) {
                println!(
                    "  (waited {:.0?} for the precheck before step {step} {cut:?})",
                    waited.elapsed()
                );
            }
            let mut cmd = match cut {
                Cut::Abort => t.command(&["failover", "--to", to]),
                _ => t.command(&["failover", "--to", to, "--yes"]),
            };
            match cut {
                Cut::KillBefore => {
                    cmd.env("CYRDECK_FAULT", format!("{step}:kill-before"));
                }
                Cut::KillAfter => {
                    cmd.env("CYRDECK_FAULT", format!("{step}:kill-after"));
                }
                Cut::Abort => {}
            }
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            {
                use std::io::Write;
                let answers = if cut == Cut::Abort {
                    "y\n".repeat(step - 2) + "n\n"
                } else {
                    String::new()
                };
                let _ = child.stdin.take().unwrap().write_all(answers.as_bytes());
            }
            let o = child.wait_with_output().unwrap();
            let first = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            match cut {
                Cut::Abort => assert!(
                    o.status.code() == Some(3)
                        && first.contains(&format!("stopped before step {step}")),
                    "step {step} {cut:?}: {}",
                    failed_first(&first)
                ),
                _ => assert!(
                    o.status.code().is_none() && first.contains("fault injection: SIGKILL"),
                    "step {step} {cut:?}: {}",
                    failed_first(&first)
                ),
            }
            let mut resumes = String::new();
            for _ in 0..4 {
                let (_, list) = t.run(&["runbook", "list"]);
                if list.contains("no unfinished runbook") {
                    break;
                }
                resumes += &t.run(&["runbook", "resume", "--yes"]).1;
            }
            let (_, list) = t.run(&["runbook", "list"]);
            assert!(
                list.contains("no unfinished runbook"),
                "step {step} {cut:?}: still open:\n{list}\n{}",
                failed_first(&format!("{first}\n--- resumes:\n{resumes}"))
            );
            // exactly one host logs: the config's master, the VIP's host
            let (now_master, replicas) = topology(&t);
            let logging: Vec<Role> = [Role::Master, Role::Replica, Role::Replica2]
                .into_iter()
                .filter(|r| logs_changes(*r))
                .collect();
            assert_eq!(
                logging,
                vec![role_of(&now_master)],
                "step {step} {cut:?}: hosts logging vs config master {now_master}"
            );
            assert_eq!(
                std::fs::read_to_string(&t.target).unwrap(),
                now_master,
                "step {step} {cut:?}: the VIP"
            );
            assert_eq!(replicas.len(), 2);
            // every replica's channel has its client running on the master
            let clients = wait_for(Duration::from_secs(30), || {
                let (_, text) = t.run(&["status", "--json"]);
                let v: serde_json::Value = serde_json::from_str(&text).ok()?;
                replicas
                    .iter()
                    .all(|(h, _)| channel(&v, h)["client"]["running"] == true)
                    .then_some(())
            });
            assert!(
                clients.is_some(),
                "step {step} {cut:?}: a channel without its client: {}",
                t.run(&["status"]).1
            );
            // every message accepted so far is on all three hosts
            let so_far = d.accepted_so_far();
            for r in [Role::Master, Role::Replica, Role::Replica2] {
                let mailbox = format!("user/{user}");
                let ok = wait_for(Duration::from_secs(60), || {
                    let there = common::rehearsal::by_msgid(r, &mailbox);
                    so_far.iter().all(|id| there.contains_key(id)).then_some(())
                });
                assert!(
                    ok.is_some(),
                    "step {step} {cut:?}: {} lacks accepted mail",
                    r.name()
                );
            }
            let moved = now_master == to;
            table.push(format!(
                "case step {step} {cut:?}: {}",
                if moved {
                    format!("moved to {to}")
                } else {
                    format!("as before ({now_master})")
                }
            ));
            println!("{}", table.last().unwrap());
        }
    }
    // back to the master for the next test, then nothing lost anywhere
    if topology(&t).0 != "master" {
        let (code, out) = t.run(&["failover", "--to", "master", "--yes"]);
        assert_eq!(code, 0, "{}", failed_first(&out));
    }
    let (accepted, refused) = d.finish();
    for r in [Role::Replica, Role::Replica2] {
        wait_on(r, &user, &accepted, Duration::from_secs(60));
    }
    let on_master = inbox(Role::Master, &user);
    assert!(accepted.iter().all(|id| on_master.contains_key(id)));
    let moved = table.iter().filter(|l| l.contains("moved")).count();
    println!(
        "failover with two replicas, fault matrix: {} cases in {:.0}s, {moved} moved / {} as before; {} accepted, {refused} refused, every one on all three hosts",
        table.len(),
        started.elapsed().as_secs_f64(),
        table.len() - moved,
        accepted.len()
    );
    stop(Component::Cyrus(Role::Replica2));
    let sync = lab().layout.instance(Role::Replica2).sync_dir();
    for f in ["log", "log-run", "replica2/log", "replica2/log-run"] {
        let _ = std::fs::remove_file(sync.join(f));
    }
}
