//! The names and storage real sites use (issue 24), on a lab built with
//! `--profile site`: `virtdomains: userid` (users `alice@example.com`),
//! `altnamespace: yes`, a second partition (carol@example.org lives there)
//! and archive partitions, shared folders with group ACLs. Before, the
//! survey, copy-back and verify took a mailbox into account only when its
//! name started with `user.`: a shared folder or a domain user that only
//! the dead master held was reported and never copied back.

mod common;

use common::rehearsal::*;
use common::*;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::Component;
use std::time::Duration;

const LAB_NAME: &str = "site";
const LAB_PORT: u16 = 28100;

fn admin(role: Role) -> cyrdeck::lab::mail::Imap {
    login(role, "admin")
}

/// Message-ID -> GUID of a mailbox (admin namespace, as the tools take it).
fn ids(role: Role, mailbox: &str) -> std::collections::BTreeMap<String, String> {
    by_msgid(role, mailbox)
}

#[test]
fn site_profile_pair_is_steady_and_the_check_reads_domains_shared_folders_and_partitions() {
    use_private_site_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    wait_drained();
    let conf = std::fs::read_to_string(lab().layout.instance(Role::Master).imapd_conf).unwrap();
    for line in [
        "virtdomains: userid",
        "altnamespace: yes",
        "partition-second:",
        "archive_enabled: yes",
    ] {
        assert!(conf.contains(line), "{line} missing:\n{conf}");
    }
    wait_steady();
    let (code, v) = check_json(&[]);
    assert_eq!(code, 0, "{v:#}");
    // every seeded mailbox compared: 3 users x 3, 2 shared, the heartbeat
    assert!(v["mailboxes_checked"].as_u64().unwrap() >= 12, "{v:#}");

    // on the replica only: a message in a domain user's folder on the
    // second partition, and one in a domain's shared folder (its own, made
    // for this: on 3.6 nothing mends it, and it is removed below)
    let carol = "user/carol/Sent@example.org";
    let support = "plant@example.com";
    let mut a = admin(Role::Master);
    a.create(support).unwrap();
    a.set_acl(support, "admin", "lrswipkxtecda").unwrap();
    a.logout();
    wait_drained();
    let mut a = admin(Role::Replica);
    for m in [carol, support] {
        a.set_acl(m, "admin", "lrswipkxtecda").unwrap();
        a.append(
            m,
            &cyrdeck::lab::mail::message(&unique("replica-only"), "x", "y"),
        )
        .unwrap();
    }
    a.logout();
    let (code, v) = check_json(&[]);
    assert_eq!(code, 1, "{v:#}");
    let named: Vec<String> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mailbox"].as_str().unwrap_or("").to_string())
        .collect();
    for m in [carol, support] {
        assert!(named.iter().any(|n| n == m), "{m} not named: {v:#}");
    }
    // repair mends the domain user on the second partition (the master
    // wins: the replica-only message goes)
    let (code, out) = cli(&["repair", "--user", "carol@example.org", "--yes"]);
    assert_eq!(code, 0, "repair carol@example.org:\n{out}");
    // the shared folder: Cyrus 3.6 cannot sync a change to one (cyrus-imapd
    // #4611, lab-measured here): repair fails and says why; 3.8+ mends it
    let (code, out) = cli(&["repair", "--mailbox", support, "--yes"]);
    let v36 = status_json().1.to_string().contains("cyrus-imapd 3.6");
    if v36 {
        assert_eq!(code, 1, "repair {support} on 3.6:\n{out}");
        assert!(out.contains("cyrus-imapd issue #4611"), "{out}");
        // and the check still names that folder, and only it
        let (code, v) = check_json(&[]);
        assert_eq!(code, 1, "{v:#}");
        // (delayed-delete copies other tests of this lab left are no
        // divergence: each host purges its own)
        let left: Vec<&str> = v["differences"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] != "deleted_purged_on_one_side")
            .map(|d| d["mailbox"].as_str().unwrap_or(""))
            .collect();
        assert!(left.iter().all(|m| *m == support), "{v:#}");
        // the 3.6 way out: the folder deleted on both hosts with the client
        // paused and its sync-log lines dropped (a sync of the delete would
        // assert too); what the other tests of this lab find is identical
        {
            let _paused = Paused::new();
            // a second apart: each host's delayed-delete copy is named by
            // the time of its delete, and copies of one name would be compared
            for role in [Role::Replica, Role::Master] {
                let mut a = admin(role);
                a.command(&format!("DELETE {support}")).unwrap();
                a.logout();
                std::thread::sleep(Duration::from_millis(1100));
            }
            forget_pending(&["plant".to_string()]);
        }
        wait_drained();
        let (code, v) = check_json(&[]);
        assert_eq!(code, 0, "{v:#}");
    } else {
        assert_eq!(code, 0, "repair {support}:\n{out}");
        wait_drained();
        let (code, v) = check_json(&[]);
        assert_eq!(code, 0, "{v:#}");
    }
}

/// Every kind the check plants on the lab's `user.*` names (check_lab),
/// planted in a domain user and in a domain's shared folder: each found
/// with its UID, nothing else named; repair mends the user (the
/// replica-only folder copied back) and loses nothing.
#[test]
fn every_planted_kind_is_found_in_a_domain_user_and_a_shared_folder() {
    use_private_site_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    wait_drained();
    let tag = format!("kin{}", run_id());
    let user = format!("{tag}@example.com");
    let inbox = format!("user/{tag}@example.com");
    let only_here = format!("user/{tag}/OnlyHere@example.com");
    let shared = format!("{tag}sh@example.com");
    let mut a = admin(Role::Master);
    a.create(&inbox).unwrap();
    a.create(&shared).unwrap();
    for m in [&inbox, &shared] {
        a.set_acl(m, "admin", "lrswipkxtecda").unwrap();
    }
    for i in 0..2 {
        let msg = cyrdeck::lab::mail::message(&unique(&format!("shared{i}")), "x", "y");
        a.append(&shared, &msg).unwrap();
    }
    a.logout();
    for _ in 0..3 {
        assert!(deliver_to("master", &user, &unique("kin")));
    }
    wait_drained();
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(code, 0, "{v:#}");

    // on the replica only: a flag and an expunge in both, a message and a
    // folder in the user's
    let mut a = admin(Role::Replica);
    for m in [&inbox, &shared] {
        a.command(&format!("SELECT \"{m}\"")).unwrap();
        a.command("UID STORE 1 +FLAGS (\\Flagged)").unwrap();
        a.command("UID STORE 2 +FLAGS (\\Deleted)").unwrap();
        a.command("EXPUNGE").unwrap();
    }
    a.command("CLOSE").unwrap();
    a.append(
        &inbox,
        &cyrdeck::lab::mail::message(&unique("replica-only"), "x", "y"),
    )
    .unwrap();
    a.create(&only_here).unwrap();
    a.logout();
    // with replication paused: the shared folder's UID 3 taken on both
    // hosts by different messages, the master's log line lost
    let paused = Paused::new();
    for role in [Role::Master, Role::Replica] {
        let mut a = admin(role);
        let msg = cyrdeck::lab::mail::message(&unique(&format!("{role:?}")), "x", "y");
        a.append(&shared, &msg).unwrap();
        a.logout();
    }
    forget_pending(std::slice::from_ref(&tag));

    let (code, v) = check_json(&[]);
    let found: std::collections::BTreeSet<(String, String, Option<u64>)> = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["mailbox"].as_str().unwrap_or("").contains(&tag))
        .map(|d| {
            (
                d["mailbox"].as_str().unwrap().to_string(),
                d["kind"].as_str().unwrap().to_string(),
                d["uid"].as_u64(),
            )
        })
        .collect();
    let planted: std::collections::BTreeSet<_> = [
        (&inbox, "flags_differ", Some(1)),
        (&inbox, "missing_on_replica", Some(2)),
        (&inbox, "missing_on_master", Some(4)),
        (&only_here, "mailbox_only_on_replica", None),
        (&shared, "flags_differ", Some(1)),
        (&shared, "missing_on_replica", Some(2)),
        (&shared, "guid_conflict", Some(3)),
    ]
    .into_iter()
    .map(|(m, k, uid)| (m.to_string(), k.to_string(), uid))
    .collect();
    assert_eq!(found, planted, "{v:#}");
    assert_eq!(code, 1, "{v:#}");
    drop(paused);
    wait_drained();

    // repair the user, the replica-only folder copied back: nothing lost
    let before = (guids(Role::Master, &inbox), guids(Role::Replica, &inbox));
    let (code, out) = cli(&[
        "repair",
        "--user",
        &user,
        "--replica-only",
        "copy-back",
        "--yes",
    ]);
    assert_eq!(code, 0, "repair {user}:\n{out}");
    let after = guids(Role::Master, &inbox);
    for g in before.0.iter().chain(&before.1) {
        assert!(after.contains(g), "{inbox}: the master lost {g}");
    }
    wait_drained();
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(code, 0, "{v:#}");
    // the shared folder: 3.8+ repairs it; 3.6 cannot sync a change to a
    // shared folder (#4611): it is removed on both hosts, as above
    let v36 = status_json().1.to_string().contains("cyrus-imapd 3.6");
    if v36 {
        let _paused = Paused::new();
        for role in [Role::Replica, Role::Master] {
            let mut a = admin(role);
            a.command(&format!("DELETE \"{shared}\"")).unwrap();
            a.logout();
            std::thread::sleep(Duration::from_millis(1100));
        }
        forget_pending(std::slice::from_ref(&tag));
    } else {
        let (code, out) = cli(&["repair", "--mailbox", &shared, "--yes"]);
        assert_eq!(code, 0, "repair {shared}:\n{out}");
    }
    wait_drained();
    let (code, v) = check_json(&[]);
    assert_eq!(code, 0, "{v:#}");
    wait_steady();
}

#[test]
fn promote_and_reintegrate_copy_back_a_domain_user_and_shared_folders_only_the_dead_master_held() {
    use_private_site_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("site", None);
    t.wait_drained();
    // on 3.6 the first test leaves shared/support@example.com differing
    // (#4611: nothing can mend it there); whatever differs before is known
    // and must be all that differs after, whichever test ran first
    let known_before = differing_mailboxes(&t);
    let zed = "zed@example.com";
    // a child of a domain's shared folder, a domain's top-level shared
    // folder, and one outside any domain. (Cyrus 3.6 answered "Mailbox
    // already exists" to CREATE shared/NEW@example.com once
    // shared/support@example.com existed, though LIST showed none: a
    // sibling under `shared` in a domain is not what this test is about.)
    let escalations = "shared/support/escalations@example.com";
    let sales = "sales@example.com";
    let news = "shared/news";
    let mut accepted: Vec<(String, String)> = Vec::new();
    {
        let _paused = Paused::new();
        std::thread::sleep(Duration::from_secs(1));
        let mut a = admin(Role::Master);
        a.create("user/zed@example.com").unwrap();
        for folder in [escalations, sales, news] {
            a.create(folder).unwrap();
            a.set_acl(folder, "group:staff", "lrs").unwrap();
            a.set_acl(folder, "admin", "lrswipkxtecda").unwrap();
            let id = unique("shared-only-old");
            a.append(folder, &cyrdeck::lab::mail::message(&id, "s", "b"))
                .unwrap();
            accepted.push((folder.to_string(), id));
        }
        a.logout();
        for u in [zed, "alice@example.com"] {
            let id = unique("unrepl");
            assert!(deliver_to("master", u, &id));
            accepted.push((u.to_string(), id));
        }
        stop(Component::Cyrus(Role::Master));
    }
    let (code, out) = t.run(&["run", "promote", "lab", "--yes"]);
    assert_eq!(code, 0, "promote:\n{out}");
    let id = unique("promoted");
    assert!(deliver_to("replica", "alice@example.com", &id));
    accepted.push(("alice@example.com".into(), id));
    lab().start_as_left(Component::Cyrus(Role::Master)).unwrap();
    let (code, out) = t.run(&["run", "reintegrate", "lab", "--yes"]);
    assert_eq!(code, 0, "reintegrate:\n{}", failed_first(&out));
    assert!(
        out.contains("mailbox only on master: user/zed@example.com"),
        "{out}"
    );
    assert!(out.contains("shared folders"), "{out}");
    assert!(out.contains("3 shared folder(s) copied back"), "{out}");
    // every accepted message on both hosts (admin namespace names)
    for (who, id) in &accepted {
        let mailbox = if !who.contains('@') || who.contains('/') || who == sales {
            who.clone()
        } else {
            let (l, d) = who.split_once('@').unwrap();
            format!("user/{l}@{d}")
        };
        for role in [Role::Master, Role::Replica] {
            let found = wait_for(Duration::from_secs(30), || {
                ids(role, &mailbox).contains_key(id).then_some(())
            });
            assert!(found.is_some(), "{id} not in {mailbox} on {role:?}");
        }
    }
    t.wait_drained();
    let (_, out) = t.run(&["check"]);
    let after = differing_mailboxes(&t);
    assert!(
        after.is_subset(&known_before),
        "check after reintegrate (differing before: {known_before:?}):\n{out}"
    );
    for (m, _) in &accepted {
        assert!(!known_before.iter().any(|k| k.contains(m.as_str())), "{m}");
    }
}

/// The mailboxes a whole-pair check names (each difference's mailbox).
fn differing_mailboxes(t: &Rehearsal) -> std::collections::BTreeSet<String> {
    let o = t.command(&["check", "--json"]).output().unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("check --json: {e}: {o:?}"));
    v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["mailbox"].as_str().unwrap_or("").to_string())
        .collect()
}

/// `mbpath FLAG MAILBOX` on a lab host.
fn mbpath(role: Role, flag: &str, mailbox: &str) -> String {
    let conf = lab().layout.instance(role).imapd_conf;
    let o = lab()
        .cyrus_tool(role, "mbpath")
        .arg("-C")
        .arg(&conf)
        .args([flag, mailbox])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The soft UID policy reads a message where Cyrus keeps it: one the old
/// master archived (`cyr_expire -A`) is in its archive partition's
/// directory, not the data directory.
#[test]
fn the_soft_policy_takes_back_a_message_from_the_archive_partition() {
    use_private_site_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("site-archive", None);
    let user = format!("dana{}@example.com", run_id());
    let (local, domain) = user.split_once('@').unwrap();
    let inbox = format!("user/{local}@{domain}");
    {
        let mut a = admin(Role::Master);
        a.create(&inbox).unwrap();
        a.logout();
    }
    let first = unique("first");
    assert!(deliver_to("master", &user, &first));
    t.wait_drained();
    let archived = unique("archived");
    let promoted = unique("promoted");
    {
        let _paused = Paused::new();
        std::thread::sleep(Duration::from_secs(1));
        // an old message (its date years back), then archived on the master
        let mut u = login(Role::Master, &user);
        u.command(&format!(
            "APPEND INBOX \"01-Jan-2020 00:00:00 +0000\" {{{n}+}}\r\n{m}",
            m = cyrdeck::lab::mail::message(&archived, "old", "archive me"),
            n = cyrdeck::lab::mail::message(&archived, "old", "archive me").len()
        ))
        .unwrap();
        u.logout();
        let conf = lab().layout.instance(Role::Master).imapd_conf;
        let o = lab()
            .cyrus_tool(Role::Master, "cyr_expire")
            .arg("-C")
            .arg(&conf)
            .args(["-A", "1d"])
            .output()
            .unwrap();
        assert!(o.status.success(), "cyr_expire -A: {o:?}");
        let adir = mbpath(Role::Master, "-A", &inbox);
        let ddir = mbpath(Role::Master, "-D", &inbox);
        assert_ne!(adir, ddir, "no archive directory for {inbox}");
        assert!(
            std::path::Path::new(&format!("{adir}/2.")).exists()
                && !std::path::Path::new(&format!("{ddir}/2.")).exists(),
            "UID 2 not archived: {adir} / {ddir}"
        );
        stop(Component::Cyrus(Role::Master));
    }
    let (code, out) = t.run(&["run", "promote", "lab", "--yes"]);
    assert_eq!(code, 0, "promote:\n{out}");
    // the new master gives UID 2 to new mail: a clash the owner never saw
    // on the old master
    assert!(deliver_to("replica", &user, &promoted));
    lab().start_as_left(Component::Cyrus(Role::Master)).unwrap();
    let (code, out) = t.run(&["run", "reintegrate", "lab", "--yes", "--uid-policy", "soft"]);
    assert_eq!(
        code,
        0,
        "reintegrate --uid-policy soft:\n{}",
        failed_first(&out)
    );
    let line = out
        .lines()
        .find(|l| l.contains(&format!("{inbox}: master's UID 2")) && l.contains("injected"))
        .unwrap_or_else(|| panic!("no injection of UID 2:\n{out}"));
    assert!(!line.ends_with(" as UID 2"), "{line}");
    for id in [&first, &archived, &promoted] {
        for role in [Role::Master, Role::Replica] {
            let found = wait_for(Duration::from_secs(30), || {
                ids(role, &inbox).contains_key(id.as_str()).then_some(())
            });
            assert!(found.is_some(), "{id} not in {inbox} on {role:?}\n{out}");
        }
    }
}

/// A soft failover and its fail back on the site profile, with mail for a
/// domain user on the default partition and one on the second partition
/// delivered all along: nothing accepted is lost, the pair is identical.
#[test]
fn soft_failover_and_back_under_delivery_with_domain_users_on_two_partitions() {
    use_private_site_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("sitefo", None);
    t.wait_drained();
    // a test before this one may have left a user "failing now" (errors in
    // the last 60 s): the precheck refuses until it is over, as it should
    let ready = wait_for(Duration::from_secs(90), || {
        (t.run(&["failover", "--dry-run"]).0 == 0).then_some(())
    });
    assert!(ready.is_some(), "{}", t.run(&["failover", "--dry-run"]).1);
    let users = ["alice@example.com", "carol@example.org"];
    let feeds: Vec<Deliverer> = users
        .iter()
        .map(|u| Deliverer::start(u, &t.target))
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let (code, out) = t.run(&["failover", "--yes"]);
    assert_eq!(code, 0, "failover:\n{}", failed_first(&out));
    assert_eq!(t.master(), "replica", "{out}");
    std::thread::sleep(Duration::from_secs(2));
    let (code, out) = t.run(&["failover", "--yes"]);
    assert_eq!(code, 0, "fail back:\n{}", failed_first(&out));
    assert_eq!(t.master(), "master", "{out}");
    std::thread::sleep(Duration::from_secs(1));
    t.wait_drained();
    for (u, d) in users.iter().zip(feeds) {
        let (accepted, _) = d.finish();
        assert!(accepted.len() > 20, "{u}: the deliverer hardly ran");
        let (l, dom) = u.split_once('@').unwrap();
        let mailbox = format!("user/{l}@{dom}");
        // the last ones may still be on their way (the queue reads empty
        // while the client's batch is in flight)
        let all = wait_for(Duration::from_secs(30), || {
            let (m, r) = (ids(Role::Master, &mailbox), ids(Role::Replica, &mailbox));
            let missing: Vec<&String> = accepted
                .iter()
                .filter(|id| !m.contains_key(*id) || m.get(*id) != r.get(*id))
                .collect();
            missing.is_empty().then_some(())
        });
        assert!(all.is_some(), "{u}: accepted mail not on both hosts");
    }
    let (code, out) = t.run(&["check"]);
    assert_eq!(code, 0, "check after the fail back:\n{out}");
}

/// Puts a corrupted replica index right when the test fails half-way, so
/// the other tests of this lab still find a working pair.
struct Reconstruct(Option<String>);
impl Reconstruct {
    fn now(&mut self) {
        if let Some(m) = self.0.take() {
            let conf = lab().layout.instance(Role::Replica).imapd_conf;
            let out = lab()
                .cyrus_tool(Role::Replica, "reconstruct")
                .arg("-C")
                .arg(&conf)
                .args(["-M", &m])
                .output()
                .unwrap();
            assert!(out.status.success(), "reconstruct -M {m}: {out:?}");
        }
    }
}
impl Drop for Reconstruct {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.now()));
        }
    }
}

/// Quarantine and release of a virtual-domain user (the held file is named
/// by `bob@example.com`): a corrupt replica index blocks everyone, the
/// quarantine lets the others through, `reconstruct -M` mends it, release
/// replays what was held. Nothing lost.
#[test]
#[ignore = "CI time: scripts/matrix.sh (and versions.sh, size.sh) run it"]
fn quarantine_and_release_a_domain_user() {
    use_private_site_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    wait_drained();
    let (bob, alice) = ("bob@example.com", "alice@example.com");
    let mut accepted: Vec<(&str, String)> = Vec::new();
    let dir = mbpath(Role::Replica, "-M", "user/bob@example.com");
    let p = format!("{dir}/cyrus.index");
    let mut b = std::fs::read(&p).unwrap();
    for x in b.iter_mut().take(64).skip(24) {
        *x ^= 0x5a;
    }
    std::fs::write(&p, b).unwrap();
    let mut fix = Reconstruct(Some("user/bob@example.com".into()));
    let id = unique("blocked");
    assert!(deliver_to("master", bob, &id));
    accepted.push((bob, id));
    let sync = lab().layout.instance(Role::Master).sync_dir();
    wait_for(Duration::from_secs(30), || {
        sync.join("log-run").exists().then_some(())
    })
    .expect("the client never took bob's entry");
    std::thread::sleep(Duration::from_secs(2));
    let id = unique("behind");
    assert!(deliver_to("master", alice, &id));
    accepted.push((alice, id));
    let (code, out) = cli(&["run", "quarantine", bob, "--yes"]);
    assert_eq!(code, 0, "quarantine {bob}:\n{out}");
    assert!(out.contains(&format!("held-{bob}")), "{out}");
    let id = unique("during");
    assert!(deliver_to("master", alice, &id));
    accepted.push((alice, id));
    wait_drained();
    let (code, v) = check_json(&["--user", alice]);
    assert_eq!(
        code, 0,
        "{alice} not replicated after the quarantine: {v:#}"
    );
    let (_, v) = status_json();
    let stuck = v["pairs"][0]["stuck"].as_array().unwrap();
    assert!(stuck.iter().any(|s| s["user"] == bob), "{stuck:#?}");
    fix.now();
    let (code, out) = cli(&["run", "release", bob, "--yes"]);
    assert_eq!(code, 0, "release {bob}:\n{out}");
    assert!(!sync.join(format!("held-{bob}")).exists());
    wait_drained();
    for (u, id) in &accepted {
        let (l, d) = u.split_once('@').unwrap();
        let mailbox = format!("user/{l}@{d}");
        let found = wait_for(Duration::from_secs(30), || {
            let (m, r) = (ids(Role::Master, &mailbox), ids(Role::Replica, &mailbox));
            (m.contains_key(id) && m.get(id) == r.get(id)).then_some(())
        });
        assert!(found.is_some(), "{id} not on both hosts in {mailbox}");
    }
    let (code, v) = check_json(&["--user", bob]);
    assert_eq!(code, 0, "{v:#}");
    // leave the pair steady for the other tests: the client's bail-outs
    // while bob was broken count against it for 60 s (and a failover's
    // precheck refuses a user failing now)
    wait_steady();
}
