//! The integrity check against the real pair: every kind of difference is
//! planted on purpose and the check must report exactly what was planted.

mod common;

use common::*;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::mail::{lmtp_deliver, message};
use serde_json::Value;
use std::collections::BTreeSet;

fn lmtp(role: Role, user: &str, msgid: &str) {
    let i = lab().layout.instance(role);
    lmtp_deliver(
        role.address(),
        i.lmtp_port,
        &[user],
        &message(msgid, "check", msgid),
    )
    .expect("LMTP delivery");
}

type Found = BTreeSet<(String, String, Option<u64>)>;

fn found(v: &Value, prefix: &str) -> Found {
    v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["mailbox"].as_str().unwrap().starts_with(prefix))
        .map(|d| {
            (
                d["mailbox"].as_str().unwrap().to_string(),
                d["kind"].as_str().unwrap().to_string(),
                d["uid"].as_u64(),
            )
        })
        .collect()
}

#[test]
fn check_reports_exactly_what_was_planted() {
    let _g = lock();
    let tag = format!("chk{}", run_id());
    let u = |k: &str| format!("{tag}{k}");
    let users: Vec<String> = [
        "only", "flag", "expg", "fold", "guid", "uidv", "mfold", "inflt", "ok",
    ]
    .iter()
    .map(|k| u(k))
    .collect();
    let mut admin = login(Role::Master, "admin");
    for user in &users {
        admin.create(&format!("user/{user}")).unwrap();
    }
    admin.logout();
    for user in &users {
        for i in 0..2 {
            lmtp(Role::Master, user, &format!("{user}-{i}@check"));
        }
    }
    wait_drained();
    let (code, v) = check_json(&["--user", &u("ok")]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["mailboxes_checked"], 1);

    // on the replica only (the master logs nothing of these)
    lmtp(
        Role::Replica,
        &u("only"),
        &format!("{}-replica@check", u("only")),
    );
    let mut i = login(Role::Replica, &u("flag"));
    i.command("SELECT INBOX").unwrap();
    i.command("UID STORE 1 +FLAGS (\\Flagged)").unwrap();
    i.logout();
    expunge_on_replica(&u("expg"), 2);
    let mut i = login(Role::Replica, &u("fold"));
    i.create("INBOX/OnlyHere").unwrap();
    i.logout();
    // a new UIDVALIDITY on the replica: plain reconstruct of a lost index.
    // Once (a fast local run) it came out equal to the master's: the
    // reconstruct ran within a second or so of the folder's creation, and
    // UIDVALIDITY values are times in seconds. Two seconds pass first
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let rconf = lab().layout.instance(Role::Replica).imapd_conf;
    let mbpath = lab()
        .cyrus_tool(Role::Replica, "mbpath")
        .arg("-C")
        .arg(&rconf)
        .args(["-M", &format!("user/{}", u("uidv"))])
        .output()
        .unwrap();
    let dir = String::from_utf8_lossy(&mbpath.stdout).trim().to_string();
    std::fs::remove_file(format!("{dir}/cyrus.index")).unwrap();
    let rc = lab()
        .cyrus_tool(Role::Replica, "reconstruct")
        .arg("-C")
        .arg(&rconf)
        .arg(format!("user/{}", u("uidv")))
        .output()
        .unwrap();
    assert!(rc.status.success(), "{rc:?}");

    // with replication paused: a UID clash, a master-only folder whose log
    // lines are lost, and a delivery still in the queue
    let paused = Paused::new();
    lmtp(Role::Master, &u("guid"), &format!("{}-A@check", u("guid")));
    lmtp(Role::Replica, &u("guid"), &format!("{}-B@check", u("guid")));
    let mut i = login(Role::Master, &u("mfold"));
    i.create("INBOX/MasterOnly").unwrap();
    i.logout();
    forget_pending(&[u("guid"), u("mfold")]);
    lmtp(
        Role::Master,
        &u("inflt"),
        &format!("{}-pending@check", u("inflt")),
    );

    let (code, v) = check_json(&[]);
    let p = |s: &str| format!("user/{}", u(s));
    let planted: Found = [
        (p("only"), "missing_on_master", Some(3)),
        (p("flag"), "flags_differ", Some(1)),
        (p("expg"), "missing_on_replica", Some(2)),
        (
            format!("{}/OnlyHere", p("fold")),
            "mailbox_only_on_replica",
            None,
        ),
        (p("guid"), "guid_conflict", Some(3)),
        (p("uidv"), "uidvalidity_differs", None),
        (
            format!("{}/MasterOnly", p("mfold")),
            "mailbox_only_on_master",
            None,
        ),
        (p("inflt"), "in_flight", Some(3)),
    ]
    .into_iter()
    .map(|(m, k, uid)| (m, k.to_string(), uid))
    .collect();
    // exactly this test's users: the other tests' users share the tag
    // as a prefix (chkNNNqs, chkNNNsv, chkNNNacl)
    let mine = |v: &Value| -> Found {
        found(v, &format!("user/{tag}"))
            .into_iter()
            .filter(|(m, _, _)| {
                users
                    .iter()
                    .any(|u| *m == format!("user/{u}") || m.starts_with(&format!("user/{u}/")))
            })
            .collect()
    };
    assert_eq!(mine(&v), planted, "{v:#}");
    // nothing else differs (a reused lab may hold users earlier runs of
    // the lab tests planted: chk*, stk*, cix*, obs*, and the runbook
    // matrix's and resync's users of a run that failed, each followed by
    // its run's id: common::run_id)
    let earlier = regex::Regex::new(r"^user/(chk|stk|cix|obs|rpm|rbm|rsx)[0-9]+").unwrap();
    let others: Vec<_> = found(&v, "user/")
        .into_iter()
        .filter(|(m, _, _)| !earlier.is_match(m))
        .collect();
    assert!(others.is_empty(), "unexpected differences: {others:?}");
    assert_eq!(code, 1);
    assert_eq!(v["in_sync"], false);
    let flag = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "flags_differ" && d["mailbox"] == p("flag"))
        .unwrap();
    assert_eq!(flag["replica"]["flags"][0], "\\Flagged");
    assert_eq!(flag["master"]["guid"], flag["replica"]["guid"]);
    let clash = v["differences"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == "guid_conflict" && d["mailbox"] == p("guid"))
        .unwrap();
    assert_ne!(clash["master"]["guid"], clash["replica"]["guid"]);

    // scoped checks see only their scope
    let (code, v) = check_json(&["--mailbox", &format!("{}/OnlyHere", p("fold"))]);
    assert_eq!(code, 1);
    assert_eq!(found(&v, "user/").len(), 1, "{v:#}");
    let (code, v) = check_json(&["--user", &u("ok")]);
    assert_eq!((code, found(&v, "user/").len()), (0, 0), "{v:#}");
    drop(paused);
    // the delivery in flight arrives: no longer a difference
    wait_drained();
    let (code, v) = check_json(&["--user", &u("inflt")]);
    assert_eq!((code, found(&v, "user/").len()), (0, 0), "{v:#}");

    // repair: what each side holds before, read with mbexamine (not the
    // check's own index reader)
    let boxes: Vec<String> = ["only", "flag", "expg", "guid", "uidv"]
        .iter()
        .map(|k| p(k))
        .chain([format!("{}/MasterOnly", p("mfold"))])
        .collect();
    let before: Vec<(String, Vec<String>, Vec<String>)> = boxes
        .iter()
        .map(|b| (b.clone(), guids(Role::Master, b), guids(Role::Replica, b)))
        .collect();
    // observe mode plans but refuses to change anything
    let out = cli(&["--observe", "repair", "--user", &u("expg"), "--yes"]);
    assert_eq!(out.0, 3, "{}", out.1);
    assert!(out.1.contains("step 2 refused"), "{}", out.1);
    assert_eq!(
        guids(Role::Replica, &p("expg")),
        before[2].2,
        "observe mode changed the replica"
    );
    for k in ["only", "flag", "expg", "fold", "guid", "uidv", "mfold"] {
        let (code, text) = cli(&["repair", "--user", &u(k), "--yes"]);
        assert_eq!(code, 0, "repair {k}:\n{text}");
        assert!(text.contains("step 4 done: in sync"), "repair {k}:\n{text}");
    }
    let (_, v) = check_json(&[]);
    let left: Found = [(
        format!("{}/OnlyHere", p("fold")),
        "mailbox_only_on_replica".to_string(),
        None,
    )]
    .into_iter()
    .collect();
    assert_eq!(mine(&v), left, "{v:#}");
    // nothing lost: each side now holds the union of both sides before
    for (b, m, r) in &before {
        let (am, ar) = (guids(Role::Master, b), guids(Role::Replica, b));
        for g in m.iter().chain(r) {
            let need = m
                .iter()
                .filter(|x| *x == g)
                .count()
                .max(r.iter().filter(|x| *x == g).count());
            assert!(
                am.iter().filter(|x| *x == g).count() >= need,
                "{b}: master lost {g}"
            );
            assert!(
                ar.iter().filter(|x| *x == g).count() >= need,
                "{b}: replica lost {g}"
            );
        }
    }
    let audit = std::fs::read_to_string(lab().layout.audit_log()).unwrap();
    assert!(
        audit.contains(&format!("\"-u\",\"{}\"", u("guid"))),
        "sync_client -u not audited"
    );
    assert!(audit.contains("/unexpunge\""), "unexpunge not audited");
}

#[test]
fn check_of_an_unreachable_replica_is_an_error() {
    let _g = lock();
    stop(cyrdeck::lab::Component::Sshd(Role::Replica));
    let (code, v) = check_json(&[]);
    lab().up().unwrap();
    assert_eq!(code, 2, "{v:#}");
    assert!(v["error"].as_str().unwrap().contains("replica"), "{v:#}");
}

/// Defect 3 of the runbook-engine issue: `resync` pushed with
/// `sync_client -m` without repair's protect step, so a message expunged
/// only on the replica (higher modseq there) was expunged on the master too.
#[test]
fn resync_keeps_a_message_only_the_replica_expunged() {
    let _g = lock();
    let user = format!("rsx{}", run_id());
    let mut admin = login(Role::Master, "admin");
    admin.create(&format!("user/{user}")).unwrap();
    admin.logout();
    for i in 0..2 {
        lmtp(Role::Master, &user, &format!("{user}-{i}@resync"));
    }
    wait_drained();
    let mailbox = format!("user/{user}");
    let before = guids(Role::Master, &mailbox);
    assert_eq!(before.len(), 2);
    expunge_on_replica(&user, 2);
    let (code, out) = cli(&["run", "resync", &mailbox, "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("restored on the replica"), "{out}");
    wait_drained();
    let (m, r) = (
        guids(Role::Master, &mailbox),
        guids(Role::Replica, &mailbox),
    );
    for g in &before {
        assert!(m.contains(g), "the master lost {g}: {m:?}\n{out}");
        assert!(r.contains(g), "the replica lacks {g}: {r:?}\n{out}");
    }
    assert_eq!(m, r);
}

/// Issue 25: with 20,001 distinct entries pending for other mailboxes, a
/// message expunged on the replica only was reported `in_flight`, exit 0:
/// the inventory cut the queue at 20,000 lines and a cut queue made every
/// difference in flight. Now the queue is read whole up to a cap per
/// channel far above that, and only an entry naming the mailbox or its
/// user covers a difference.
#[test]
fn a_long_backlog_for_other_mailboxes_never_makes_a_real_difference_in_flight() {
    let _g = lock();
    let user = format!("chk{}bl", run_id());
    let mut admin = login(Role::Master, "admin");
    admin.create(&format!("user/{user}")).unwrap();
    admin.logout();
    for i in 0..2 {
        lmtp(Role::Master, &user, &format!("{user}-{i}@backlog"));
    }
    wait_drained();
    expunge_on_replica(&user, 2);
    let fake = format!("{user}-none");
    let (code, v) = {
        let _paused = Paused::new();
        // 25,000 distinct entries naming mailboxes that exist nowhere
        let log = lab().layout.instance(Role::Master).sync_dir().join("log");
        let mut lines = String::new();
        for i in 0..25_000 {
            lines.push_str(&format!("MAILBOX user.{fake}{i:05}\n"));
        }
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&log)
            .unwrap();
        std::io::Write::write_all(&mut f, lines.as_bytes()).unwrap();
        drop(f);
        // a log this test created must be Cyrus's (the client opens it for
        // writing to lock it: a root-owned one stops replication)
        use std::os::unix::fs::MetadataExt;
        let dir = std::fs::metadata(log.parent().unwrap()).unwrap();
        std::os::unix::fs::chown(&log, Some(dir.uid()), Some(dir.gid())).unwrap();
        let got = check_json(&[]);
        // the client never sees them
        forget_pending(std::slice::from_ref(&fake));
        got
    };
    let mine = found(&v, &format!("user/{user}"));
    let expected: Found = [(format!("user/{user}"), "missing_on_replica".into(), Some(2))]
        .into_iter()
        .collect();
    assert_eq!(mine, expected, "{v:#}");
    assert_ne!(code, 0, "{v:#}");
    // leave the pair as found: the master's copy goes back to the replica
    let (code, out) = cli(&["repair", "--user", &user, "--yes"]);
    assert_eq!(code, 0, "{out}");
    wait_drained();
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(code, 0, "{v:#}");
}

/// A fresh user (INBOX and `folders`) with one message, replicated: the
/// frame of the tests that plant one kind on each side.
fn fresh_user(tag: &str, folders: &[&str]) -> (String, String) {
    let user = format!("chk{}{tag}", run_id());
    let mailbox = format!("user/{user}");
    let mut admin = login(Role::Master, "admin");
    admin.create(&mailbox).unwrap();
    for f in folders {
        admin.create(&format!("{mailbox}/{f}")).unwrap();
    }
    admin.logout();
    lmtp(Role::Master, &user, &format!("{user}-0@{tag}"));
    wait_drained();
    (user, mailbox)
}

/// `change` made on `side` only: on the master with the client held and
/// its log lines dropped afterwards (a lost log), so it stays there.
fn planted_on(side: Role, user: &str, change: impl FnOnce()) {
    let paused = (side == Role::Master).then(Paused::new);
    change();
    if paused.is_some() {
        forget_pending(&[user.to_string()]);
    }
}

/// `repair --user` succeeds (its output for more checks) and the user's
/// check is clean once the queue drained.
fn repaired_clean(user: &str) -> String {
    let (code, out) = cli(&["repair", "--user", user, "--yes"]);
    assert_eq!(code, 0, "{out}");
    wait_drained();
    let (code, v) = check_json(&["--user", user]);
    assert_eq!(code, 0, "after the repair: {v:#}");
    out
}

/// Issue 25: `SETACL user/B bob lrs` on the replica only was reported as
/// "metadata differs" (or not at all): after a failover bob reads B's mail.
/// The check names the identifier with both sides' rights; repair pushes
/// the master's ACL and the check is clean again. Planted once on each
/// side.
#[test]
fn an_acl_planted_on_either_side_is_named_and_repaired() {
    let _g = lock();
    let (user, mailbox) = fresh_user("acl", &[]);
    for (side, who) in [(Role::Replica, "bob"), (Role::Master, "carol")] {
        planted_on(side, &user, || {
            let mut a = login(side, "admin");
            a.set_acl(&mailbox, who, "lrs").unwrap();
            a.logout();
        });
        let (code, v) = check_json(&["--user", &user]);
        let d: Vec<&Value> = v["differences"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == "acl_differs")
            .collect();
        let want = if side == Role::Replica {
            format!("{who}: master -, replica lrs")
        } else {
            format!("{who}: master lrs, replica -")
        };
        assert_eq!(d.len(), 1, "{v:#}");
        assert_eq!(d[0]["mailbox"], mailbox.as_str(), "{v:#}");
        assert!(d[0]["detail"].as_str().unwrap().contains(&want), "{v:#}");
        assert_eq!(code, 1, "{v:#}");
        repaired_clean(&user);
    }
}

/// Issue 25: a quota limit and a subscription changed on one side only
/// (the replica, then the master with its log lines lost): each named
/// with both sides' values, nothing else; repair makes them equal.
#[test]
fn quota_and_subscriptions_planted_on_either_side_are_named_and_repaired() {
    let _g = lock();
    let (user, mailbox) = fresh_user("qs", &["Work"]);
    let mut admin = login(Role::Master, "admin");
    admin
        .command(&format!("SETQUOTA {mailbox} (STORAGE 5000)"))
        .unwrap();
    admin.logout();
    wait_drained();
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(code, 0, "{v:#}");
    for (side, limit) in [(Role::Replica, "7777"), (Role::Master, "9000")] {
        planted_on(side, &user, || {
            let mut a = login(side, "admin");
            a.command(&format!("SETQUOTA {mailbox} (STORAGE {limit})"))
                .unwrap();
            a.logout();
            let mut u = login(side, &user);
            u.command("SUBSCRIBE INBOX/Work").unwrap();
            u.logout();
        });
        let (code, v) = check_json(&["--user", &user]);
        let by_kind = |k: &str| -> Vec<String> {
            v["differences"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"] == k && d["mailbox"] == mailbox.as_str())
                .map(|d| d["detail"].as_str().unwrap().to_string())
                .collect()
        };
        let (quota, subs) = if side == Role::Replica {
            (
                "STORAGE limit: master 5000, replica 7777".to_string(),
                "only on the master: -; only on the replica: INBOX/Work",
            )
        } else {
            (
                "STORAGE limit: master 9000, replica 5000".to_string(),
                "only on the master: INBOX/Work; only on the replica: -",
            )
        };
        assert_eq!(by_kind("quota_differs"), [quota], "{v:#}");
        assert_eq!(by_kind("subscriptions_differ"), [subs], "{v:#}");
        assert_eq!(v["differences"].as_array().unwrap().len(), 2, "{v:#}");
        assert_eq!(code, 1, "{v:#}");
        let out = repaired_clean(&user);
        assert!(out.contains("quota limits pushed"), "{out}");
    }
}

/// Issue 25: the sieve script lmtpd runs. On the replica, a script placed
/// by hand in the user's sieve directory (source, compiled, linked as
/// defaultbc); on the master, one put with ManageSieve while its log lines
/// are lost. Each is named with both sides; repair makes the replica's
/// the master's (lab, 3.6.1: sync_client -u removes the hand-placed files
/// from the replica), naming what the replica loses.
#[test]
fn sieve_scripts_differing_on_either_side_are_named() {
    let _g = lock();
    let (user, mailbox) = fresh_user("sv", &[]);
    let sieve_kind = |v: &Value| -> Vec<String> {
        v["differences"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["kind"] == "sieve_differs" && d["mailbox"] == mailbox.as_str())
            .map(|d| d["detail"].as_str().unwrap().to_string())
            .collect()
    };

    // the replica: by hand, as the issue's operator did
    let rconf = lab().layout.instance(Role::Replica).imapd_conf;
    let out = lab()
        .cyrus_tool(Role::Replica, "mbpath")
        .arg("-C")
        .arg(&rconf)
        .args(["-u", "-S", &user])
        .output()
        .unwrap();
    let dir = std::path::PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(dir.is_absolute(), "mbpath -u -S: {out:?}");
    std::fs::create_dir_all(&dir).unwrap();
    let script = "require [\"vacation\"];\nvacation :days 1 \"away\";\n";
    std::fs::write(dir.join("hand.script"), script).unwrap();
    let rc = lab()
        .cyrus_tool(Role::Replica, "sievec")
        .arg("-C")
        .arg(&rconf)
        .arg(dir.join("hand.script"))
        .arg(dir.join("hand.bc"))
        .output()
        .unwrap();
    assert!(rc.status.success(), "sievec: {rc:?}");
    std::os::unix::fs::symlink("hand.bc", dir.join("defaultbc")).unwrap();
    // as Cyrus's own files: its user (a root-owned directory would stop
    // every later sync of this user's scripts: "Permission denied")
    let top = lab().layout.instance(Role::Replica).sieve_dir;
    let owner = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(&top).unwrap();
        format!("{}:{}", m.uid(), m.gid())
    };
    let rc = std::process::Command::new("chown")
        .args(["-hR", &owner])
        .arg(&top)
        .status()
        .unwrap();
    assert!(rc.success());
    let sha1 = {
        let o = std::process::Command::new("sha1sum")
            .arg(dir.join("hand.script"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout)[..12].to_string()
    };
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(
        sieve_kind(&v),
        [format!(
            "active script: master none, replica hand; script source hand.script: master -, replica {sha1}"
        )],
        "{v:#}"
    );
    assert_eq!(v["differences"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(code, 1, "{v:#}");
    let (code, out) = cli(&["repair", "--user", &user, "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("a script only the replica had is REMOVED"),
        "{out}"
    );
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "the replica's sieve directory: {left:?}");
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(code, 0, "{v:#}");

    // the master: a vacation script put by the user, its log lines lost
    let paused = Paused::new();
    let i = lab().layout.instance(Role::Master);
    cyrdeck::lab::mail::sieve_put_active(
        Role::Master.address(),
        i.sieve_port,
        &user,
        "away",
        script,
    )
    .unwrap();
    forget_pending(std::slice::from_ref(&user));
    drop(paused);
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(
        sieve_kind(&v),
        ["active script: master away, replica none"],
        "{v:#}"
    );
    // the rest is the #sieve mailbox itself (its message: the script)
    let sieve_box = format!("{mailbox}/#sieve");
    for d in v["differences"].as_array().unwrap() {
        assert!(
            d["kind"] == "sieve_differs" || d["mailbox"] == sieve_box.as_str(),
            "{v:#}"
        );
    }
    assert_eq!(code, 1, "{v:#}");
    let (code, out) = cli(&["repair", "--user", &user, "--yes"]);
    assert_eq!(code, 0, "{out}");
    wait_drained();
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(code, 0, "after the repair: {v:#}");
}

/// Issue 25: a mailbox annotation (METADATA) set on one side only, the
/// replica's then the master's (its log lines lost): named with the
/// entry, whose it is and both values, and nothing else (no
/// metadata_differs: the annotation explains the modseq); repaired (the
/// side changed last wins, as for flags: lab, 3.6.1).
#[test]
fn an_annotation_set_on_either_side_is_named_and_repaired() {
    let _g = lock();
    let (user, mailbox) = fresh_user("an", &[]);
    for (side, value) in [
        (Role::Replica, "from the replica"),
        (Role::Master, "from the master"),
    ] {
        planted_on(side, &user, || {
            let mut u = login(side, &user);
            u.command(&format!("SETMETADATA INBOX (/private/comment \"{value}\")"))
                .unwrap();
            u.logout();
        });
        let (code, v) = check_json(&["--user", &user]);
        let want = if side == Role::Replica {
            format!("/comment (the owner's private): master -, replica \"{value}\"")
        } else {
            // the first repair took the replica's value to the master (its
            // change was the later one)
            format!(
                "/comment (the owner's private): master \"{value}\", replica \"from the replica\""
            )
        };
        let d = v["differences"].as_array().unwrap();
        assert_eq!(d.len(), 1, "{v:#}");
        assert_eq!(d[0]["kind"], "annotations_differ", "{v:#}");
        assert_eq!(d[0]["mailbox"], mailbox.as_str(), "{v:#}");
        assert_eq!(d[0]["detail"], want.as_str(), "{v:#}");
        assert_eq!(code, 1, "{v:#}");
        let out = repaired_clean(&user);
        assert!(
            out.contains("the annotations of the side changed last win"),
            "{out}"
        );
    }
}

/// Issue 25: seen state kept apart from the owner's flags: a reader with
/// rights on another user's folder keeps what they have read in their own
/// seen db. Marked read on one side only (the replica's, then the master's
/// with its log lines lost), it is named on the reader with the folder and
/// both sides' seen UIDs, and nothing else; repair (sync_client -u of the
/// reader) writes the master's to the replica.
#[test]
fn seen_state_of_another_users_folder_is_named_and_repaired() {
    let _g = lock();
    let (owner, mailbox) = fresh_user("sno", &["Team"]);
    let (reader, _) = fresh_user("snr", &[]);
    let team = format!("{mailbox}/Team");
    let mut admin = login(Role::Master, "admin");
    admin.set_acl(&team, &reader, "lrsw").unwrap();
    admin.logout();
    let mut o = login(Role::Master, &owner);
    for i in 0..3 {
        o.append(
            "INBOX/Team",
            &message(&format!("{reader}-t{i}@sn"), "team", "t"),
        )
        .unwrap();
    }
    o.logout();
    let mark = |side: Role, uid: u32| {
        let mut r = login(side, &reader);
        r.command(&format!("SELECT \"{team}\"")).unwrap();
        r.command(&format!("UID STORE {uid} +FLAGS (\\Seen)"))
            .unwrap();
        r.logout();
    };
    // the reader read the first message on the master: a seen record on both
    mark(Role::Master, 1);
    wait_drained();
    let (code, v) = check_json(&["--user", &reader]);
    assert_eq!(code, 0, "replicated seen state differs: {v:#}");
    for (side, uid, want) in [
        (
            Role::Replica,
            2,
            "master 1 (last UID 3), replica 1:2 (last UID 3)",
        ),
        (
            Role::Master,
            3,
            "master 1,3 (last UID 3), replica 1 (last UID 3)",
        ),
    ] {
        planted_on(side, &reader, || mark(side, uid));
        let (code, v) = check_json(&["--user", &reader]);
        let d = v["differences"].as_array().unwrap();
        assert_eq!(d.len(), 1, "{v:#}");
        assert_eq!(d[0]["kind"], "seen_differs", "{v:#}");
        assert_eq!(d[0]["mailbox"], format!("user/{reader}").as_str(), "{v:#}");
        assert_eq!(
            d[0]["detail"],
            format!("seen in {team}: {want}").as_str(),
            "{v:#}"
        );
        assert_eq!(code, 1, "{v:#}");
        let out = repaired_clean(&reader);
        assert!(out.contains("the master's seen state"), "{out}");
    }
    // the owner's own check holds nothing of the reader's
    let (code, v) = check_json(&["--mailbox", &team]);
    assert_eq!(code, 0, "{v:#}");
}

/// Issue 25: a message annotation (RFC 5257 ANNOTATION, kept in the
/// mailbox's own cyrus.annotations) set on one side only: named on its
/// UID with the entry, whose it is and both values, and nothing else;
/// repaired like flags (the side changed last wins).
#[test]
fn a_message_annotation_set_on_either_side_is_named_on_its_uid_and_repaired() {
    let _g = lock();
    let (user, mailbox) = fresh_user("man", &[]);
    for (side, value) in [
        (Role::Replica, "from the replica"),
        (Role::Master, "from the master"),
    ] {
        planted_on(side, &user, || {
            let mut u = login(side, &user);
            u.command("SELECT INBOX").unwrap();
            u.command(&format!(
                "UID STORE 1 ANNOTATION (/comment (value.shared \"{value}\"))"
            ))
            .unwrap();
            u.logout();
        });
        let (code, v) = check_json(&["--user", &user]);
        let want = if side == Role::Replica {
            format!("message: /comment (shared): master -, replica \"{value}\"")
        } else {
            format!("message: /comment (shared): master \"{value}\", replica \"from the replica\"")
        };
        let d = v["differences"].as_array().unwrap();
        assert_eq!(d.len(), 1, "{v:#}");
        assert_eq!(d[0]["kind"], "annotations_differ", "{v:#}");
        assert_eq!(d[0]["mailbox"], mailbox.as_str(), "{v:#}");
        assert_eq!(d[0]["uid"], 1, "{v:#}");
        assert_eq!(d[0]["detail"], want.as_str(), "{v:#}");
        assert_eq!(code, 1, "{v:#}");
        repaired_clean(&user);
    }
}

/// Issue 25: the same name with another mailbox uniqueid (deleted and
/// created again on the replica only, as a half-finished split brain
/// leaves it): named mailbox_recreated with both uniqueids, beside only
/// what follows from it (the new folder's UIDVALIDITY and the messages it
/// lacks). sync_client cannot settle two mailboxes under one name (lab,
/// 3.6.1: `sync_client -u` exits 1), so the mend is the operator's, as the
/// repair plan says: the replica's copy deleted, then repair recreates the
/// master's there.
#[test]
fn a_folder_deleted_and_created_again_on_the_replica_is_named_recreated_and_repaired() {
    let _g = lock();
    let (user, mailbox) = fresh_user("rec", &["Work"]);
    let work = format!("{mailbox}/Work");
    let mut o = login(Role::Master, &user);
    for i in 0..2 {
        o.append(
            "INBOX/Work",
            &message(&format!("{user}-w{i}@rec"), "work", "w"),
        )
        .unwrap();
    }
    o.logout();
    wait_drained();
    planted_on(Role::Replica, &user, || {
        let mut a = login(Role::Replica, "admin");
        a.set_acl(&work, "admin", "lrswipkxtecda").unwrap();
        a.command(&format!("DELETE \"{work}\"")).unwrap();
        a.create(&work).unwrap();
        a.logout();
    });
    let (code, v) = check_json(&["--user", &user]);
    assert_eq!(code, 1, "{v:#}");
    let d = v["differences"].as_array().unwrap();
    let recreated: Vec<&Value> = d
        .iter()
        .filter(|d| d["kind"] == "mailbox_recreated")
        .collect();
    assert_eq!(recreated.len(), 1, "{v:#}");
    assert_eq!(recreated[0]["mailbox"], work.as_str(), "{v:#}");
    let detail = recreated[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains("on master") && detail.contains("on replica"),
        "{v:#}"
    );
    for x in d {
        let k = x["kind"].as_str().unwrap();
        assert!(
            x["mailbox"] == work.as_str()
                && [
                    "mailbox_recreated",
                    "uidvalidity_differs",
                    "missing_on_replica"
                ]
                .contains(&k),
            "only what follows from the re-creation: {v:#}"
        );
    }
    // delayed delete names the deleted copy by the second: not the first's
    std::thread::sleep(std::time::Duration::from_secs(2));
    let mut a = login(Role::Replica, "admin");
    a.set_acl(&work, "admin", "lrswipkxtecda").unwrap();
    a.command(&format!("DELETE \"{work}\"")).unwrap();
    a.logout();
    repaired_clean(&user);
}

/// Issue 30 (6): a user or mailbox neither host has is a clear error
/// (exit 2), not "IN SYNC, 0 mailboxes"; the dotted form Cyrus's log lines
/// use names the mailbox it is.
#[test]
fn a_name_neither_host_has_is_an_error_and_a_dotted_name_is_understood() {
    let _g = lock();
    let (user, _) = fresh_user("dot", &["Sent"]);
    for args in [
        vec!["--user".to_string(), format!("{user}x")],
        vec!["--mailbox".to_string(), format!("user/{user}/Nope")],
    ] {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, v) = check_json(&a);
        assert_eq!(code, 2, "{args:?}: {v:#}");
        assert!(v["error"].as_str().unwrap().starts_with("no "), "{v:#}");
    }
    let (code, v) = check_json(&["--mailbox", &format!("user.{user}.Sent")]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["mailboxes_checked"], 1, "{v:#}");
    // resync of a mailbox no host has says so
    let (code, out) = cli(&["run", "resync", &format!("user/{user}/Nope"), "--yes"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(&format!("no mailbox user/{user}/Nope there")),
        "{out}"
    );
}
