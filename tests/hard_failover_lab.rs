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

#[test]
fn promote_then_reintegrate_loses_no_accepted_message() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("hard", None);
    let pid = std::process::id();
    let (alice, olduser) = (format!("hfa{pid}"), format!("hfo{pid}"));
    create_users(std::slice::from_ref(&alice));
    t.wait_drained();
    let inbox = format!("user/{alice}");
    let folder = format!("user/{alice}/OnlyOld");
    let mut inbox_ids: Vec<String> = Vec::new();

    let d = Deliverer::start(&alice, &t.target);
    std::thread::sleep(Duration::from_secs(1));
    // the master takes mail its frozen client never replicates: INBOX
    // messages (their UIDs clash with what the promoted replica assigns
    // next), a folder and a whole user only it will have
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
    // the master dies with all of that queued
    stop(Component::Cyrus(Role::Master));
    drop(paused);

    let (code, out) = t.run(&["run", "promote", "lab", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("RISK"), "{out}");
    assert!(out.contains("master fenced"), "{out}");
    assert_eq!(t.master(), "replica", "{out}");
    // the new master takes mail (clashing UIDs in alice's INBOX)
    for i in 0..3 {
        let id = unique(&format!("promoted{i}"));
        assert!(deliver_to("replica", &alice, &id));
        inbox_ids.push(id);
    }
    std::thread::sleep(Duration::from_secs(1));

    // the old master comes back as it was left: fenced, no client
    lab().start_as_left(Component::Cyrus(Role::Master)).unwrap();
    assert!(
        !deliver_to("master", &alice, &unique("split")),
        "the old master accepted a write after it came back"
    );

    let (code, out) = t.run(&["run", "reintegrate", "lab", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("user only on master: {olduser}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("mailbox only on master: {folder}")),
        "{out}"
    );
    let clashes = out.matches("GUID CONFLICT").count();
    assert!(clashes >= 3, "{clashes} clashes reported:\n{out}");
    assert!(out.contains("canary reached master"), "{out}");
    assert!(
        !deliver_to("master", &alice, &unique("split2")),
        "the old master (now replica) accepted a write"
    );

    let (accepted, refused) = d.finish();
    println!(
        "deliverer: {} accepted, {refused} refused; {clashes} GUID conflicts reported",
        accepted.len()
    );
    inbox_ids.extend(accepted);
    t.wait_drained();
    std::thread::sleep(Duration::from_secs(2));
    same_on_both(&inbox, &inbox_ids);
    same_on_both(&folder, std::slice::from_ref(&folder_id));
    same_on_both(
        &format!("user/{olduser}"),
        std::slice::from_ref(&olduser_id),
    );
    // the whole pair checks clean from the new roles
    let (code, out) = t.run(&["check"]);
    assert_eq!(code, 0, "{out}");
}
