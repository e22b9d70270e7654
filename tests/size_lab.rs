//! A pair of a real site's size (issue 24): at least 6,000 mailboxes
//! (`CYRDECK_SIZE_USERS` users x 5 mailboxes; 1,200 by default, 10,000 in
//! the long script). Before the fix, reintegrate's survey sent every
//! mailbox's path in ONE exec request: on a 5,004-mailbox pair it was
//! 264,920 bytes, over OpenSSH's 256 KB packet limit, and the session died.
//! Here the master dies holding mail it never replicated, its host goes
//! away (sshd AND Cyrus: connections refused), promote takes the lock on
//! the survivor, mail goes to the new master, the old host comes back as
//! it was left, and reintegrate copies everything back: every accepted
//! message on both hosts, `check` clean. Each phase prints its figures.

mod common;

use common::rehearsal::*;
use common::*;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::Component;
use std::time::{Duration, Instant};

const LAB_NAME: &str = "size";
const LAB_PORT: u16 = 27900;
const FOLDERS: usize = 4;

fn users() -> usize {
    std::env::var("CYRDECK_SIZE_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_200)
}

/// `status --json` until the queue is empty and stays so, within `limit`.
fn wait_replicated(t: &Rehearsal, limit: Duration) {
    let started = Instant::now();
    let mut last = String::new();
    let mut empty_in_a_row = 0;
    while started.elapsed() < limit {
        let (_, text) = t.run(&["status", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if v["pairs"][0]["channels"][0]["queue"]["pending"] == serde_json::json!(0) {
            empty_in_a_row += 1;
            if empty_in_a_row >= 2 {
                return;
            }
        } else {
            empty_in_a_row = 0;
        }
        last = text;
        std::thread::sleep(Duration::from_secs(2));
    }
    panic!("the seed did not replicate within {limit:?}; last status:\n{last}");
}

/// The step lines (`step N ... done (...)`) and any line with a figure.
fn step_lines(out: &str) -> String {
    out.lines()
        .filter(|l| l.contains("survey:") || l.contains("took") || l.contains("writes unavailable"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn promote_and_reintegrate_a_pair_of_6000_mailboxes_with_the_master_host_gone() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let n = users();
    let seeded = cyrdeck::lab::seed::bulk(lab(), n, FOLDERS, 2).expect("bulk seed");
    println!(
        "seed: {} users, {} mailboxes, {} messages in {:.1}s",
        seeded.users, seeded.mailboxes_created, seeded.messages_delivered, seeded.seconds
    );
    assert!(seeded.mailboxes_created >= 6_000 || n < 1_200);
    let t = Rehearsal::new("size", None);
    let started = Instant::now();
    wait_replicated(&t, Duration::from_secs(900));
    println!("seed replicated in {:.1}s", started.elapsed().as_secs_f64());

    // the whole-pair check as the baseline for the survey's time
    let started = Instant::now();
    let (code, out) = t.run(&["check"]);
    let check_secs = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "check before the crash:\n{out}");
    println!("check: {check_secs:.1}s");

    // mail the master takes and never replicates (its client frozen),
    // spread over the site: first, middle and last users
    let victims: Vec<String> = [0, n / 2, n - 1]
        .iter()
        .map(|i| cyrdeck::lab::seed::bulk_user(*i))
        .collect();
    let mut accepted: Vec<(String, String)> = Vec::new();
    {
        let _paused = Paused::new();
        std::thread::sleep(Duration::from_secs(1));
        for u in &victims {
            let id = unique(&format!("unrepl-{u}"));
            assert!(deliver_to("master", u, &id));
            accepted.push((u.clone(), id));
        }
        // the host goes: Cyrus and sshd (connections refused)
        stop(Component::Cyrus(Role::Master));
        stop(Component::Sshd(Role::Master));
    }

    let started = Instant::now();
    let (code, out) = t.run(&["run", "promote", "lab", "--yes"]);
    assert_eq!(code, 0, "promote with the master host gone:\n{out}");
    assert!(out.contains("NOT fenced (unreachable"), "{out}");
    assert_eq!(t.master(), "replica", "{out}");
    println!(
        "promote (master host gone): {:.1}s\n{}",
        started.elapsed().as_secs_f64(),
        step_lines(&out)
    );
    // a duration, not an epoch
    let window = figure(&out, "writes unavailable at least ").expect("window printed");
    assert!(window < 600.0, "writes unavailable {window}s:\n{out}");

    // the new master takes mail for the same users: their UIDs clash
    for u in &victims {
        let id = unique(&format!("promoted-{u}"));
        assert!(deliver_to("replica", u, &id));
        accepted.push((u.clone(), id));
    }

    // the old host comes back as it was left. Promote could not reach it,
    // so nothing fenced it (no STONITH hook here): it takes mail again, and
    // its own client replays its log towards the new master. Whatever it
    // accepts now is accepted mail too: reintegrate fences it first and
    // must copy that back as well.
    lab().start_as_left(Component::Sshd(Role::Master)).unwrap();
    lab().start_as_left(Component::Cyrus(Role::Master)).unwrap();
    let split = unique("split");
    if deliver_to("master", &victims[0], &split) {
        println!("the unfenced old master accepted {split} after it came back");
        accepted.push((victims[0].clone(), split));
    }

    let started = Instant::now();
    let (code, out) = t.run(&["run", "reintegrate", "lab", "--yes"]);
    let reint_secs = started.elapsed().as_secs_f64();
    assert_eq!(code, 0, "reintegrate:\n{}", failed_first(&out));
    let survey = out
        .lines()
        .find(|l| l.contains("survey:"))
        .unwrap_or("(no survey line)")
        .to_string();
    println!("reintegrate: {reint_secs:.1}s\n{}", step_lines(&out));
    println!("survey vs check: {survey} / check {check_secs:.1}s");

    for u in &victims {
        let ids: Vec<String> = accepted
            .iter()
            .filter(|(x, _)| x == u)
            .map(|(_, id)| id.clone())
            .collect();
        assert_on_both_within(u, &ids, Duration::from_secs(60));
    }
    wait_replicated(&t, Duration::from_secs(300));
    let (code, out) = t.run(&["check"]);
    assert_eq!(code, 0, "check after reintegrate:\n{out}");
}
