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
    let user = format!("two{}", std::process::id());
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
    let user = format!("dif{}", std::process::id());
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
