//! Hard failover against the REAL pair: the master's Cyrus dies with
//! entries queued (its rolling client frozen), the replica is promoted and
//! takes mail, the old master comes back holding mail never replicated —
//! messages that clash by UID, a folder and a user only it has — and
//! reintegrate copies all of it back before replication runs new -> old.
//! Mail is delivered to whichever host is master all along.

mod common;

use common::rehearsal::*;
use common::*;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::Component;
use std::collections::BTreeSet;
use std::time::Duration;

const LAB_NAME: &str = "hardfo";
const LAB_PORT: u16 = 26300;

/// As the user (an admin cannot write into user folders): create the
/// folder `INBOX/<name>` and append one message.
fn folder_with_message(role: Role, user: &str, name: &str, msgid: &str) {
    let i = lab().layout.instance(role);
    let mut imap = cyrdeck::lab::mail::Imap::login(role.address(), i.imap_port, user).unwrap();
    let folder = format!("INBOX/{name}");
    imap.create(&folder).unwrap();
    imap.append(&folder, &cyrdeck::lab::mail::message(msgid, user, "body"))
        .unwrap();
    imap.logout();
}

/// Message-IDs and GUIDs of a mailbox on both hosts must be the same set,
/// holding every accepted Message-ID.
fn same_on_both(mailbox: &str, accepted: &[String]) {
    let (m, r) = (
        by_msgid(Role::Master, mailbox),
        by_msgid(Role::Replica, mailbox),
    );
    for id in accepted {
        assert!(
            m.contains_key(id),
            "{mailbox}: accepted {id} missing on master"
        );
        assert!(
            r.contains_key(id),
            "{mailbox}: accepted {id} missing on replica"
        );
    }
    let gm: BTreeSet<&String> = m.values().collect();
    let gr: BTreeSet<&String> = r.values().collect();
    assert_eq!(gm, gr, "{mailbox}: GUIDs differ between the hosts");
}

/// The hard failover's world: a user with mail on both sides, a folder
/// and a user only the old master has, the deliverer running throughout.
struct Scenario {
    t: Rehearsal,
    alice: String,
    olduser: String,
    inbox_ids: Vec<String>,
    folder_id: String,
    olduser_id: String,
    d: Deliverer,
    /// reintegrate's `--uid-policy`.
    policy: &'static str,
}

/// Mail the master takes while its client is frozen (never replicated),
/// then its Cyrus dies.
fn crash_with_unreplicated_mail(tag: &str) -> Scenario {
    crash_with(tag, &[], |_| {})
}

/// The same; `more_users` exist on both hosts from the start, and
/// `while_frozen` runs on the master while its client is frozen, just
/// before the crash (given the rehearsal).
fn crash_with(tag: &str, more_users: &[String], while_frozen: impl FnOnce(&Rehearsal)) -> Scenario {
    crash_with_config(tag, &lab().layout.config_file(), more_users, while_frozen)
}

/// The same, cyrdeck run with the config `source` (the sudo account's).
fn crash_with_config(
    tag: &str,
    source: &std::path::Path,
    more_users: &[String],
    while_frozen: impl FnOnce(&Rehearsal),
) -> Scenario {
    let t = Rehearsal::from_config(tag, None, source);
    let pid = run_id();
    let (alice, olduser) = (format!("hfa{pid}{tag}"), format!("hfo{pid}{tag}"));
    let mut users = vec![alice.clone()];
    users.extend(more_users.iter().cloned());
    create_users(&users);
    t.wait_drained();
    let mut inbox_ids: Vec<String> = Vec::new();
    let d = Deliverer::start(&alice, &t.target);
    std::thread::sleep(Duration::from_secs(1));
    // INBOX messages (their UIDs clash with what the promoted replica
    // assigns next), a folder and a whole user only the old master has
    let paused = Paused::new();
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..3 {
        let id = unique(&format!("unrepl{i}"));
        assert!(deliver_to("master", &alice, &id));
        inbox_ids.push(id);
    }
    {
        let i = lab().layout.instance(Role::Master);
        let mut admin =
            cyrdeck::lab::mail::Imap::login(Role::Master.address(), i.imap_port, "admin").unwrap();
        admin.create(&format!("user/{olduser}")).unwrap();
        admin.logout();
    }
    let folder_id = unique("onlyold");
    folder_with_message(Role::Master, &alice, "OnlyOld", &folder_id);
    let olduser_id = unique("olduser");
    assert!(deliver_to("master", &olduser, &olduser_id));
    while_frozen(&t);
    stop(Component::Cyrus(Role::Master));
    drop(paused);
    Scenario {
        t,
        alice,
        olduser,
        inbox_ids,
        folder_id,
        olduser_id,
        d,
        policy: "easy",
    }
}

/// How a case interrupts a runbook at a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    KillBefore,
    KillAfter,
    /// The operator answers no at the step's prompt.
    Abort,
    /// The sshd of the host the step acts on goes away mid-step.
    SshDrop,
    /// The step cannot succeed: the Cyrus it needs is stopped.
    StepFails,
    /// The old master's host goes away again mid-step (its sshd and its
    /// Cyrus together, 0.3 s in), then comes back as it was left.
    HostGone,
}

#[derive(Clone, Copy, Debug)]
struct Fault {
    step: usize,
    kind: Kind,
}

/// The lab host a step of `runbook` acts on (old master = Role::Master,
/// new master = Role::Replica all along), and the one whose Cyrus its
/// failing needs stopped.
fn acted_on(runbook: &str, step: usize) -> (Role, Role) {
    match (runbook, step) {
        ("promote", 2) => (Role::Master, Role::Replica),
        ("promote", _) => (Role::Replica, Role::Replica),
        // reintegrate: fence and copy-back act on the old master, and the
        // copy-back needs the new master's sync_server; the rebuild, the
        // start and the canary need the old master's Cyrus
        (_, 1 | 3) => (Role::Master, Role::Replica),
        (_, 5) => (Role::Master, Role::Master),
        _ => (Role::Replica, Role::Master),
    }
}

impl Scenario {
    /// `cyrdeck run RUNBOOK lab`, interrupted as `fault` says, then
    /// resumed (or, stopped before it wrote anything, run again) until no
    /// run is left; the runbook must have ended done.
    fn run(&self, runbook: &str, fault: Option<Fault>) -> String {
        let mut args = vec!["run", runbook, "lab", "--yes"];
        if runbook == "reintegrate" {
            args.extend(["--uid-policy", self.policy]);
        }
        let Some(f) = fault else {
            let (code, out) = self.t.run(&args);
            assert_eq!(code, 0, "{}", failed_first(&out));
            return out;
        };
        if f.kind == Kind::Abort {
            args.retain(|a| *a != "--yes");
        }
        let mut cmd = self.t.command(&args);
        let (host, needs) = acted_on(runbook, f.step);
        let name = |r: Role| {
            if r == Role::Master {
                "master"
            } else {
                "replica"
            }
        };
        let mut restore: Option<Box<dyn Fn()>> = None;
        match f.kind {
            Kind::KillBefore => {
                cmd.env("CYRDECK_FAULT", format!("{}:kill-before", f.step));
            }
            Kind::KillAfter => {
                cmd.env("CYRDECK_FAULT", format!("{}:kill-after", f.step));
            }
            Kind::Abort => {}
            Kind::SshDrop => {
                lab_down_at_step(&mut cmd, f.step, &format!("{}-sshd", name(host)), true);
                restore = Some(Box::new(move || {
                    std::thread::sleep(Duration::from_millis(800));
                    lab().start_as_left(Component::Sshd(host)).unwrap();
                }));
            }
            Kind::HostGone => {
                let down = |what: &str| {
                    format!(
                        "{} lab down --dir {} --only {what}",
                        bin(),
                        lab_dir().display()
                    )
                };
                cmd.env("CYRDECK_FAULT", format!("{}:exec", f.step)).env(
                    "CYRDECK_FAULT_CMD",
                    format!(
                        "(sleep 0.3; {}; {}) </dev/null >/dev/null 2>&1 &",
                        down("master-sshd"),
                        down("master-cyrus")
                    ),
                );
                restore = Some(Box::new(|| {
                    std::thread::sleep(Duration::from_millis(800));
                    lab().start_as_left(Component::Sshd(Role::Master)).unwrap();
                    lab().start_as_left(Component::Cyrus(Role::Master)).unwrap();
                }));
            }
            Kind::StepFails => {
                lab_down_at_step(&mut cmd, f.step, &format!("{}-cyrus", name(needs)), false);
                restore = Some(Box::new(move || {
                    lab().start_as_left(Component::Cyrus(needs)).unwrap();
                }));
            }
        }
        cmd.stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        {
            use std::io::Write;
            let mut answers = String::new();
            if f.kind == Kind::Abort {
                // a prompt per writing step: yes until this one
                let spec = if runbook == "promote" {
                    &cyrdeck::ops::hard_failover::PROMOTE
                } else {
                    &cyrdeck::ops::hard_failover::REINTEGRATE
                };
                for s in &spec.steps[..f.step - 1] {
                    if s.mutating {
                        answers.push_str("y\n");
                    }
                }
                answers.push_str("n\n");
            }
            let _ = child.stdin.take().unwrap().write_all(answers.as_bytes());
        }
        let o = child.wait_with_output().unwrap();
        let first =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        let code = o.status.code();
        let what = format!("{runbook} step {} {:?}", f.step, f.kind);
        match f.kind {
            Kind::Abort => assert!(
                code == Some(3) && first.contains(&format!("stopped before step {}", f.step)),
                "{what}: exit {code:?}\n{first}"
            ),
            Kind::KillBefore | Kind::KillAfter => assert!(
                code.is_none() && first.contains("fault injection: SIGKILL"),
                "{what}: exit {code:?}\n{first}"
            ),
            Kind::SshDrop | Kind::StepFails | Kind::HostGone => assert!(
                first.contains("fault injection: `"),
                "{what}: exit {code:?}\n{first}"
            ),
        }
        if let Some(r) = &restore {
            r();
        }
        let mut all = vec![first];
        all.extend(self.t.resume_until_closed());
        let (_, list) = self.t.run(&["runbook", "list"]);
        assert!(
            list.contains("no unfinished runbook"),
            "{what}: still open:\n{list}\n{}",
            all.join("\n----\n")
        );
        // stopped before anything was written: that run ended; a new one
        if f.kind == Kind::Abort && all.len() == 1 {
            let yes: Vec<&str> = args.iter().copied().chain(["--yes"]).collect();
            let (code, out) = self.t.run(&yes);
            assert_eq!(code, 0, "{what}, run again: {}", failed_first(&out));
            all.push(out);
        }
        all.join("\n--- resumed:\n")
    }

    /// Promoted, the new master takes mail, the old one comes back as it
    /// was left (fenced, no client) and refuses mail; reintegrated.
    fn promote_and_reintegrate(
        &mut self,
        promote_fault: Option<Fault>,
        reint_fault: Option<Fault>,
    ) -> String {
        self.promote_and_reintegrate_with(promote_fault, reint_fault, |_| {})
    }

    /// The same, with `before_reintegrate` run once the old master is back.
    fn promote_and_reintegrate_with(
        &mut self,
        promote_fault: Option<Fault>,
        reint_fault: Option<Fault>,
        before_reintegrate: impl FnOnce(&Self),
    ) -> String {
        let out = self.run("promote", promote_fault);
        assert!(out.contains("RISK"), "{out}");
        assert_eq!(self.t.master(), "replica", "{out}");
        for i in 0..3 {
            let id = unique(&format!("promoted{i}"));
            assert!(deliver_to("replica", &self.alice, &id));
            self.inbox_ids.push(id);
        }
        std::thread::sleep(Duration::from_secs(1));
        lab().start_as_left(Component::Cyrus(Role::Master)).unwrap();
        assert!(
            !deliver_to("master", &self.alice, &unique("split")),
            "the old master accepted a write after it came back"
        );
        before_reintegrate(self);
        let out = self.run("reintegrate", reint_fault);
        assert!(out.contains("canary reached master"), "{out}");
        assert!(
            !deliver_to("master", &self.alice, &unique("split2")),
            "the old master (now replica) accepted a write"
        );
        out
    }

    /// Every accepted message, and the union of GUIDs, on both hosts; the
    /// pair checks clean from its new roles.
    fn assert_nothing_lost(self) {
        let Scenario {
            t,
            alice,
            olduser,
            mut inbox_ids,
            folder_id,
            olduser_id,
            d,
            ..
        } = self;
        let (accepted, refused) = d.finish();
        println!("deliverer: {} accepted, {refused} refused", accepted.len());
        inbox_ids.extend(accepted);
        t.wait_drained();
        std::thread::sleep(Duration::from_secs(2));
        same_on_both(&format!("user/{alice}"), &inbox_ids);
        same_on_both(
            &format!("user/{alice}/OnlyOld"),
            std::slice::from_ref(&folder_id),
        );
        same_on_both(
            &format!("user/{olduser}"),
            std::slice::from_ref(&olduser_id),
        );
        let (code, out) = t.run(&["check"]);
        assert_eq!(code, 0, "{}", failed_first(&out));
    }
}

/// `user` SELECTs INBOX on `role` (an owner's read-write open: RECENTUID
/// covers every UID below the UIDNEXT it returns).
fn select_inbox(role: Role, user: &str) -> u64 {
    let mut i = login(role, user);
    let said = i.command("SELECT INBOX").unwrap().join("\n");
    i.logout();
    said.split("[UIDNEXT ")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .and_then(|n| n.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no UIDNEXT in {said}"))
}

/// The clashes of the newest reintegrate report (`conflicts --json`).
fn reported_clashes(t: &Rehearsal) -> Vec<serde_json::Value> {
    let (code, json) = t.run(&["conflicts", "--json"]);
    assert_eq!(code, 1, "{json}");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .filter(|c| c["source"].as_str().unwrap().starts_with("reintegrate"))
        .cloned()
        .collect()
}

#[test]
fn promote_then_reintegrate_loses_no_accepted_message() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let mut s = crash_with_unreplicated_mail("a");
    // alice opens her INBOX on the new master: the clashing UIDs below its
    // UIDNEXT then were shown to her there (RECENTUID), never on the old
    let mut uidnext = 0;
    let out = s.promote_and_reintegrate_with(None, None, |s| {
        uidnext = select_inbox(Role::Replica, &s.alice);
    });
    assert!(
        out.contains(&format!("user only on master: {}", s.olduser)),
        "{out}"
    );
    assert!(
        out.contains(&format!("mailbox only on master: user/{}/OnlyOld", s.alice)),
        "{out}"
    );
    let clashes = out.matches("GUID CONFLICT").count();
    assert!(clashes >= 3, "{clashes} clashes reported:\n{out}");
    println!("{clashes} GUID conflicts reported");
    // each one in the audit trail too
    let (code, audit) = s.t.run(&["audit"]);
    assert_eq!(code, 0, "{audit}");
    let inbox = format!("GUID conflict in user/{} UID", s.alice);
    assert_eq!(
        audit
            .lines()
            .filter(|l| l.contains("FOUND: ") && l.contains(&inbox))
            .count(),
        clashes,
        "{audit}"
    );
    // the Conflicts view's data: every clash with the UIDs both messages
    // carry now (easy policy: both renumbered above the old UID)
    let from_report = reported_clashes(&s.t);
    let json = serde_json::to_string(&from_report).unwrap();
    assert_eq!(from_report.len(), clashes, "{json}");
    for c in &from_report {
        let uid = c["uid"].as_u64().unwrap();
        let now = c["uids_now"].as_array().expect("uids_now");
        for u in now {
            assert!(u.as_u64().unwrap() > uid, "{c}");
        }
        assert!(
            c["done"].as_str().unwrap().starts_with("both renumbered"),
            "{c}"
        );
        let shown = c["shown_to_owner"].as_str().unwrap();
        if uid < uidnext {
            assert_eq!(shown, "new master", "{c}");
        } else {
            assert_eq!(shown, "neither", "{c}");
        }
    }
    let seen = from_report
        .iter()
        .filter(|c| c["uid"].as_u64().unwrap() < uidnext)
        .count();
    assert!(seen > 0, "no clash below UIDNEXT {uidnext}: {json}");
    assert!(out.contains("shown to the owner on replica only"), "{out}");
    println!("{seen} of {clashes} clashing UIDs shown to the owner on the new master (UIDNEXT {uidnext})");
    println!(
        "conflicts --json: {}",
        from_report
            .iter()
            .map(|c| format!("UID {} -> {}", c["uid"], c["uids_now"]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    s.assert_nothing_lost();
}

/// The soft UID policy: alice saw her INBOX on the new master, so every
/// clash keeps the new master's UID there and on the old master; only the
/// old master's messages get new UIDs. bob saw his clashing UID on the old
/// master: his user takes the easy policy. Nothing accepted is lost.
#[test]
fn reintegrate_with_the_soft_uid_policy_keeps_the_uids_the_owner_saw() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    // bob was shown his clashing UID on the old master (his SELECT there
    // before the crash): he takes the easy policy, and the run says why
    let bob = format!("hfb{}", run_id());
    let bob_ids = [unique("bob-old"), unique("bob-new")];
    let mut s = crash_with("s", std::slice::from_ref(&bob), |_| {
        assert!(deliver_to("master", &bob, &bob_ids[0]));
        select_inbox(Role::Master, &bob);
    });
    s.policy = "soft";
    let mut uidnext = 0;
    let out = s.promote_and_reintegrate_with(None, None, |s| {
        assert!(deliver_to("replica", &bob, &bob_ids[1]));
        uidnext = select_inbox(Role::Replica, &s.alice);
    });
    assert!(
        out.contains(&format!(
            "{bob}: easy policy (UID 1 of user/{bob} was shown to the owner on the old master"
        )),
        "{out}"
    );
    same_on_both(&format!("user/{bob}"), &bob_ids);
    assert!(out.contains("injected into replica as UID"), "{out}");
    for l in out
        .lines()
        .filter(|l| {
            l.contains("injected into") || l.contains("rebuilt on") || l.contains("cyrdeck-spool")
        })
        .take(6)
    {
        println!("{l}");
    }
    assert!(out.contains("rebuilt on master from replica"), "{out}");
    let inbox = format!("user/{}", s.alice);
    let (clashes, bobs): (Vec<_>, Vec<_>) = reported_clashes(&s.t)
        .into_iter()
        .partition(|c| c["mailbox"] == inbox.as_str());
    assert!(clashes.len() >= 3, "{clashes:?}");
    assert_eq!(bobs.len(), 1, "{bobs:?}");
    assert_eq!(bobs[0]["shown_to_owner"], "old master", "{bobs:?}");
    assert!(
        bobs[0]["done"]
            .as_str()
            .unwrap()
            .starts_with("both renumbered"),
        "{bobs:?}"
    );
    s.t.wait_drained();
    let (old, new) = (
        uid_guids(Role::Master, &inbox),
        uid_guids(Role::Replica, &inbox),
    );
    let mut kept = Vec::new();
    for c in &clashes {
        let uid = c["uid"].as_u64().unwrap() as u32;
        let now = c["uids_now"].as_array().expect("uids_now");
        let (o, n) = (
            now[0].as_u64().unwrap() as u32,
            now[1].as_u64().unwrap() as u32,
        );
        assert_eq!(n, uid, "the new master's message keeps UID {uid}: {c}");
        assert!(o > uid, "the old master's message gets a new UID: {c}");
        assert!(
            c["done"]
                .as_str()
                .unwrap()
                .starts_with(&format!("UID {uid} kept")),
            "{c}"
        );
        let shown = c["shown_to_owner"].as_str().unwrap();
        assert_ne!(shown, "old master", "{c}");
        assert_eq!(shown == "new master", (uid as u64) < uidnext, "{c}");
        // the same on both hosts: the UID alice saw holds what she saw
        let (ng, og) = (c["guid_b"].as_str().unwrap(), c["guid_a"].as_str().unwrap());
        assert_eq!(new.get(&uid).map(String::as_str), Some(ng), "{c}");
        assert_eq!(old.get(&uid).map(String::as_str), Some(ng), "{c}");
        assert_eq!(new.get(&o).map(String::as_str), Some(og), "{c}");
        kept.push(format!("UID {uid} kept, old master's message -> {o}"));
    }
    // the deliverer still runs: the new master may hold more by now
    for (uid, g) in &old {
        assert_eq!(
            new.get(uid),
            Some(g),
            "{inbox} UID {uid}: not the same on both hosts"
        );
    }
    println!(
        "soft UID policy: {} clashes: {}",
        clashes.len(),
        kept.join("; ")
    );
    s.assert_nothing_lost();
}

/// Least privilege: promote and the soft policy's reintegrate through the
/// lab's `cyrdeck` account and its sudo rules. sudo's own log shows the
/// spool helper (fetch on the old master, inject on the new one) and
/// sync_reset run as cyrus, nothing refused, only the failover helper as
/// root.
#[test]
#[ignore = "CI time: scripts/matrix.sh (and versions.sh, size.sh) run it"]
fn the_soft_policy_runs_through_the_sudo_account() {
    use common::sudo_log;
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let l = &lab().layout;
    let mut s = crash_with_config("sudo", &l.sudo_config_file(), &[], |_| {});
    s.policy = "soft";
    let before = sudo_log::offsets();
    let out = s.promote_and_reintegrate(None, None);
    assert!(out.contains("injected into replica as UID"), "{out}");
    assert!(out.contains("rebuilt on master from replica"), "{out}");
    let entries = sudo_log::since(&before);
    let refused: Vec<_> = entries.iter().filter(|e| e.refused.is_some()).collect();
    assert!(refused.is_empty(), "sudo refused: {refused:#?}");
    let helper = |name: &str| format!("{}/{name} ", l.helper_dir().display());
    for e in &entries {
        let as_root = e.command.starts_with(&helper("failover"));
        assert_eq!(e.run_as == "root", as_root, "{e:?}");
    }
    let ran = |what: &str| {
        entries
            .iter()
            .any(|e| e.run_as == "cyrus" && e.command.contains(what))
    };
    for what in [
        format!("{}fetch ", helper("spool")),
        format!("{}inject ", helper("spool")),
        "/sync_reset ".to_string(),
    ] {
        assert!(
            ran(&what),
            "{what} not run through sudo as cyrus: {entries:#?}"
        );
    }
    println!("{} commands through sudo, none refused", entries.len());
    s.assert_nothing_lost();
}

/// Every writing step of both runbooks interrupted every way: cyrdeck
/// SIGKILLed before and after its remote action, the operator answering
/// no, the SSH connection of the host it acts on dropped, the step failing
/// (the Cyrus it needs stopped); then resumed (or, stopped before it wrote
/// anything, run again): the same end state, nothing accepted lost. CI
/// runs a slice; `CYRDECK_HARD_MATRIX=full` (scripts/matrix.sh) every case.
#[test]
fn promote_and_reintegrate_survive_every_interruption_at_every_writing_step() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let full = std::env::var("CYRDECK_HARD_MATRIX").is_ok_and(|v| v == "full");
    // reintegrate: 1 fence, 3 copy-back, 5 the soft policy's rebuild (a
    // no-op under easy), 6 start replication, 7 canary
    use Kind::*;
    let mut cases: Vec<(&str, &'static str, usize, Kind)> = Vec::new();
    for (runbook, policy, steps, kinds) in [
        (
            "promote",
            "easy",
            &[2, 3, 4, 5][..],
            &[KillBefore, KillAfter, Abort][..],
        ),
        (
            "reintegrate",
            "easy",
            &[1, 3, 6, 7][..],
            &[KillBefore, KillAfter, Abort, SshDrop, HostGone][..],
        ),
        ("reintegrate", "easy", &[3, 6, 7][..], &[StepFails][..]),
        (
            "reintegrate",
            "soft",
            &[3, 5][..],
            &[KillBefore, KillAfter, Abort, SshDrop, StepFails, HostGone][..],
        ),
    ] {
        for &step in steps {
            for &kind in kinds {
                cases.push((runbook, policy, step, kind));
            }
        }
    }
    if !full {
        // CI time: three cases (a kill after the remote action under the
        // soft policy, the SSH connection dropped, the host gone; the
        // promote and reintegrate tests above run each step whole);
        // scripts/matrix.sh runs every case
        cases.retain(|c| {
            matches!(
                c,
                ("reintegrate", "soft", 5, KillAfter)
                    | ("reintegrate", "soft", 3, SshDrop)
                    | ("reintegrate", "easy", 3, HostGone)
            )
        });
    }
    // CYRDECK_HARD_MATRIX_FROM=N: start at case N (a long run resumed)
    let from: usize = std::env::var("CYRDECK_HARD_MATRIX_FROM")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let started = std::time::Instant::now();
    for (i, (runbook, policy, step, kind)) in cases.iter().enumerate().skip(from) {
        let fault = Some(Fault {
            step: *step,
            kind: *kind,
        });
        let mut s = crash_with_unreplicated_mail(&format!("m{i}"));
        s.policy = policy;
        let (pf, rf) = if *runbook == "promote" {
            (fault, None)
        } else {
            (None, fault)
        };
        let out = s.promote_and_reintegrate(pf, rf);
        if *policy == "soft" {
            assert!(out.contains("rebuilt on master from replica"), "{out}");
        }
        s.assert_nothing_lost();
        println!("case {runbook} ({policy}) step {step} {kind:?}: ok");
    }
    println!(
        "hard failover matrix: {} cases in {:.0}s",
        cases.len(),
        started.elapsed().as_secs_f64()
    );
}

/// In `t`'s console, `:ID lab OPTIONS` and Enter at every step until the
/// last is done.
fn console_runbook(t: &Rehearsal, id: &str, options: &str, steps: usize) {
    let cfg = t.config.display().to_string();
    let state = t.state.display().to_string();
    let tm =
        common::tmux::Tmux::start_env(&[("XDG_STATE_HOME", &state)], &["--config", &cfg], 160, 50);
    tm.wait_for("the first refresh", Duration::from_secs(30), |s| {
        s.contains("updated")
    });
    tm.keys(&[":"]);
    tm.text(&format!("{id} lab{options}"));
    tm.keys(&["Enter"]);
    tm.wait_for("the runbook", Duration::from_secs(10), |s| {
        s.contains(&format!("{id} lab on lab"))
    });
    for step in 1..=steps {
        tm.keys(&["Enter"]);
        let s = tm.wait_for(
            &format!("{id} step {step}"),
            Duration::from_secs(120),
            |s| s.contains(&format!("{step}. done")) || s.contains("FAILED"),
        );
        assert!(
            s.contains(&format!("{step}. done")),
            "{id} step {step}:\n{s}"
        );
    }
    tm.keys(&["q"]);
    std::thread::sleep(Duration::from_secs(1));
}

/// The console drives both runbooks step by step (Enter per step).
#[test]
fn the_console_drives_promote_and_reintegrate_step_by_step() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let mut s = crash_with_unreplicated_mail("c");
    console_runbook(
        &s.t,
        "promote",
        "",
        cyrdeck::ops::hard_failover::PROMOTE.steps.len(),
    );
    assert_eq!(s.t.master(), "replica");
    for i in 0..3 {
        let id = unique(&format!("promoted{i}"));
        assert!(deliver_to("replica", &s.alice, &id));
        s.inbox_ids.push(id);
    }
    lab().start_as_left(Component::Cyrus(Role::Master)).unwrap();
    // a new console: the roles changed in the config; the soft UID policy
    // (the easy one is driven from the CLI by the other tests)
    console_runbook(
        &s.t,
        "reintegrate",
        " --uid-policy soft",
        cyrdeck::ops::hard_failover::REINTEGRATE.steps.len(),
    );
    let clashes = reported_clashes(&s.t);
    assert!(!clashes.is_empty());
    for c in &clashes {
        let kept = format!("UID {} kept", c["uid"]);
        assert!(c["done"].as_str().unwrap().starts_with(&kept), "{c}");
    }
    s.assert_nothing_lost();
}

/// The other direction of copy-back: `repair` with a folder and a user
/// only the REPLICA has. Kept reporting by default (the master unchanged),
/// copied back with `--replica-only copy-back` (sync_client run on the
/// replica): every GUID on both hosts, subscriptions too, nothing expunged
/// on either side, the pair checks clean.
#[test]
fn repair_copies_a_replica_only_folder_and_user_back_when_asked() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let pid = run_id();
    let (bob, ronly) = (format!("rcb{pid}"), format!("rco{pid}"));
    create_users(std::slice::from_ref(&bob));
    let shared = unique("shared");
    deliver(&bob, &shared);
    wait_drained();
    let folder = format!("user/{bob}/RepOnly");
    let mut i = login(Role::Replica, &bob);
    i.create("INBOX/RepOnly").unwrap();
    for n in 0..2 {
        let m = cyrdeck::lab::mail::message(&unique(&format!("rep{n}")), "r", "b");
        i.append("INBOX/RepOnly", &m).unwrap();
    }
    i.logout();
    let mut admin = login(Role::Replica, "admin");
    admin.create(&format!("user/{ronly}")).unwrap();
    admin.logout();
    let mut i = login(Role::Replica, &ronly);
    i.create("INBOX/Sub").unwrap();
    i.append(
        "INBOX",
        &cyrdeck::lab::mail::message(&unique("ro1"), "r", "b"),
    )
    .unwrap();
    i.append(
        "INBOX/Sub",
        &cyrdeck::lab::mail::message(&unique("ro2"), "r", "b"),
    )
    .unwrap();
    i.command("SUBSCRIBE INBOX/Sub").unwrap();
    i.logout();
    // a message the master takes meanwhile stays where it is
    let later = unique("later");
    deliver(&bob, &later);
    wait_drained();
    let replica_folder = guids(Role::Replica, &folder);
    assert_eq!(replica_folder.len(), 2);

    // default: reported and left alone
    let (code, out) = cli(&["repair", "--user", &bob, "--yes"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    assert!(out.contains("--replica-only report"), "{out}");
    assert!(out.contains(&format!("{folder}: LEFT ALONE")), "{out}");
    assert!(guids(Role::Master, &folder).is_empty(), "{out}");

    // copy back the folder (its user exists on both: -m, folder by folder)
    let (code, out) = cli(&[
        "repair",
        "--user",
        &bob,
        "--replica-only",
        "copy-back",
        "--yes",
    ]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    assert!(out.contains("sync_client -C"), "{out}");
    assert!(out.contains(&format!(" -m {folder}")), "{out}");
    assert!(
        out.contains("1 mailbox(es) copied back to master, all 2 GUID(s) verified there"),
        "{out}"
    );
    assert_eq!(guids(Role::Master, &folder), replica_folder);
    let inbox = format!("user/{bob}");
    assert_eq!(guids(Role::Master, &inbox), guids(Role::Replica, &inbox));
    assert_eq!(guids(Role::Master, &inbox).len(), 2);

    // a user the master has nothing of: copied whole (-u), subscriptions too
    let (code, out) = cli(&[
        "repair",
        "--user",
        &ronly,
        "--replica-only",
        "copy-back",
        "--yes",
    ]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    assert!(out.contains(&format!(" -u {ronly}")), "{out}");
    for m in [format!("user/{ronly}"), format!("user/{ronly}/Sub")] {
        let g = guids(Role::Master, &m);
        assert_eq!(g.len(), 1, "{m}: {out}");
        assert_eq!(g, guids(Role::Replica, &m), "{m}");
    }
    let mut i = login(Role::Master, &ronly);
    let lsub = i.command("LSUB \"\" \"*\"").unwrap().join("\n");
    i.logout();
    assert!(lsub.contains("INBOX/Sub"), "{lsub}");
    let (code, out) = cli(&["check"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    println!("copied back: {folder} (2 messages), user {ronly} (2 folders, 2 messages)");
}

/// UID -> GUID of a mailbox's live messages on one host (mbexamine).
fn uid_guids(role: Role, mailbox: &str) -> std::collections::BTreeMap<u32, String> {
    cyrdeck::cyrus::mbexamine::parse(&mbexamine(role, mailbox))
        .unwrap_or_else(|e| panic!("{mailbox} on {role:?}: {e}"))
        .messages
        .into_iter()
        .collect()
}

/// Why Cyrus sync alone cannot keep a UID the owner saw, and reintegrate
/// needs its own `--uid-policy soft` (docs/cyrus-behaviour.md, "the soft UID
/// policy"): a clash (UID 2 = B on the master, A on the replica,
/// A's UID seen by the owner's SELECT) where the master first gives B a
/// new UID (an identical APPEND: same GUID, UID 3) and expunges UID 2 —
/// then `sync_client -u` from the master does NOT keep A at UID 2:
/// - expunged only: A renumbered to 4 on both hosts (`guid mismatch`);
/// - expunged and purged (`cyr_expire -X 0`): A EXPUNGED on the replica
///   (its modseq is below the master's deletedmodseq: "stale"), live on
///   neither host. Cyrus never places a record below a side's LAST_UID.
#[test]
fn cyrus_36_sync_cannot_keep_a_seen_uid_of_a_clash() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let pid = run_id();
    for purge in [false, true] {
        let user = format!("soft{pid}{}", if purge { "p" } else { "e" });
        let inbox = format!("user/{user}");
        create_users(std::slice::from_ref(&user));
        deliver(&user, &unique("base"));
        wait_drained();
        let paused = Paused::new();
        let (b, a) = (
            cyrdeck::lab::mail::message(&unique("B"), "b", "on the old side"),
            cyrdeck::lab::mail::message(&unique("A"), "a", "on the new side"),
        );
        let mut m = login(Role::Master, &user);
        m.append("INBOX", &b).unwrap();
        let mut r = login(Role::Replica, &user);
        r.append("INBOX", &a).unwrap();
        r.command("SELECT INBOX").unwrap(); // RECENTUID 2 there: A's UID seen
        r.logout();
        let (gb, ga) = (
            uid_guids(Role::Master, &inbox)[&2].clone(),
            uid_guids(Role::Replica, &inbox)[&2].clone(),
        );
        assert_ne!(ga, gb);
        // the master's B under a new UID (same bytes: same GUID), UID 2 gone
        m.append("INBOX", &b).unwrap();
        assert_eq!(uid_guids(Role::Master, &inbox).get(&3), Some(&gb));
        m.command("SELECT INBOX").unwrap();
        m.command("UID STORE 2 +FLAGS (\\Deleted)").unwrap();
        m.command("EXPUNGE").unwrap();
        m.logout();
        let conf = lab().layout.instance(Role::Master).imapd_conf;
        if purge {
            let st = lab()
                .cyrus_tool(Role::Master, "cyr_expire")
                .arg("-C")
                .arg(&conf)
                .args(["-X", "0", "-u", &user])
                .status()
                .unwrap();
            assert!(st.success());
        }
        let st = lab()
            .cyrus_tool(Role::Master, "sync_client")
            .arg("-C")
            .arg(&conf)
            .args(["-u", &user])
            .status()
            .unwrap();
        assert!(st.success());
        drop(paused);
        let (mm, rr) = (
            uid_guids(Role::Master, &inbox),
            uid_guids(Role::Replica, &inbox),
        );
        assert_eq!(mm, rr, "purge {purge}");
        assert_eq!(mm.get(&3), Some(&gb), "B kept its new UID");
        assert_eq!(mm.get(&2), None, "nobody keeps UID 2: {mm:?}");
        let a_uid = mm.iter().find(|(_, g)| **g == ga).map(|(u, _)| *u);
        if purge {
            assert_eq!(a_uid, None, "A expunged on the replica: {mm:?}");
        } else {
            assert_eq!(a_uid, Some(4), "A renumbered: {mm:?}");
        }
        println!("purge {purge}: A (seen at UID 2) -> {a_uid:?}, B -> 3");
    }
}

/// The building blocks a soft UID policy would use without IMAP
/// credentials (docs/cyrus-behaviour.md, "the soft UID policy"), rehearsed on
/// whatever release the lab runs: a spool file copied to a UID above
/// LAST_UID is taken in by `reconstruct` under that UID with its exact
/// GUID, and replicated; `cyr_virusscan -r -s 'UID N<CRLF>'` expunges that one
/// UID, also replicated. Nothing else of the mailbox changes.
#[test]
fn reconstruct_takes_a_spool_file_in_under_its_uid_and_guid_and_virusscan_expunges_one_uid() {
    use std::os::unix::fs::MetadataExt;
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let user = format!("inj{}", run_id());
    let inbox = format!("user/{user}");
    create_users(std::slice::from_ref(&user));
    for i in 0..2 {
        deliver(&user, &unique(&format!("inj{i}")));
    }
    wait_drained();
    let conf = lab().layout.instance(Role::Master).imapd_conf;
    // a Cyrus tool on the master: `TOOL -C CONF ARGS...`
    let tool = |name: &str, args: &[&str]| {
        let mut c = lab().cyrus_tool(Role::Master, name);
        c.arg("-C").arg(&conf).args(args);
        c
    };
    let before = uid_guids(Role::Master, &inbox);
    assert_eq!(before.len(), 2, "{before:?}");
    let last = *before.keys().max().unwrap();
    let out = tool("mbpath", &[&inbox]).output().unwrap();
    let dir = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let src = std::path::Path::new(&dir).join(format!("{}.", before.keys().next().unwrap()));
    let meta = std::fs::metadata(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    // a gap above LAST_UID, as a live mailbox needs (an LMTP delivery
    // taking the same UID would overwrite the file)
    let uid = last + 5;
    let dst = src.with_file_name(format!("{uid}."));
    std::fs::copy(&src, &dst).unwrap();
    std::os::unix::fs::chown(&dst, Some(meta.uid()), Some(meta.gid())).unwrap();
    let st = tool("reconstruct", &[&inbox]).status().unwrap();
    assert!(st.success());
    let after = uid_guids(Role::Master, &inbox);
    let first = before.values().next().unwrap().clone();
    assert_eq!(after.get(&uid), Some(&first), "{after:?}");
    assert_eq!(after.len(), 3, "{after:?}");
    for (u, g) in &before {
        assert_eq!(after.get(u), Some(g), "UID {u} unchanged");
    }
    wait_drained();
    assert_eq!(uid_guids(Role::Replica, &inbox), after, "replicated as is");
    // one UID expunged by a command-line tool, replicated. The search
    // string must end in CRLF (3.6.1: "UID 7" alone is "Invalid search
    // string"; the parser reads it as an IMAP command line)
    let search = format!("UID {uid}\r\n");
    let st = tool("cyr_virusscan", &["-r", "-s", &search, &inbox])
        .status()
        .unwrap();
    assert!(st.success());
    let left = uid_guids(Role::Master, &inbox);
    assert_eq!(left, before, "only UID {uid} expunged");
    wait_drained();
    assert_eq!(uid_guids(Role::Replica, &inbox), before);
    println!(
        "{}: file {uid}. taken in by reconstruct with GUID {first}, replicated; cyr_virusscan expunged UID {uid}",
        lab().cyrus_versions()[0].clone().unwrap_or_default()
    );
}
