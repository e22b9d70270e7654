//! Replace-replica on the site profile (issue 24), on a lab of its own:
//! `--profile site` (virtual domains, altnamespace, a second partition and
//! archive partitions, shared folders with group ACLs) with a spare host,
//! the new replica. Its own lab: a spare beside the site lab's other tests
//! changed what they found (a full restore pass after a replacement trips
//! over cyrus-imapd 3.6's shared-folder assertion there).

mod common;

use common::rehearsal::*;
use common::*;
use cyrdeck::lab::layout::Role;
use std::time::Duration;

const LAB_NAME: &str = "site-replace";
const LAB_PORT: u16 = 28500;

/// Replace-replica on the site profile (issue 24): the spare becomes the
/// pair's replica while mail goes to a domain user, and the check of the
/// master against it is then clean: domains, shared folders with group
/// ACLs, both partitions and the archive partitions came along, and so
/// did a quota limit, a subscription and an active sieve script set just
/// before.
#[test]
fn replace_replica_carries_domains_shared_folders_partitions_and_user_state() {
    use_private_site_lab(LAB_NAME, LAB_PORT);
    use_private_lab_with_spare(LAB_NAME, LAB_PORT);
    let _g = lock();
    wait_drained();
    let user = "alice@example.com";
    let mut a = login(Role::Master, "admin");
    a.command("SETQUOTA user/alice@example.com (STORAGE 90000)")
        .unwrap();
    a.logout();
    let mut u = login(Role::Master, user);
    u.command("SUBSCRIBE INBOX").unwrap();
    u.logout();
    let i = lab().layout.instance(Role::Master);
    cyrdeck::lab::mail::sieve_put_active(
        Role::Master.address(),
        i.sieve_port,
        user,
        "away",
        "require [\"vacation\"];\nvacation :days 1 \"away\";\n",
    )
    .unwrap();
    wait_drained();
    let t = Rehearsal::new("site-replace", None);
    let d = Deliverer::start(user, &t.target);
    std::thread::sleep(Duration::from_secs(1));
    let (code, out) = t.run(&["run", "replace-replica", "replica:replica2", "--yes"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    std::thread::sleep(Duration::from_secs(1));
    let (accepted, refused, why) = d.finish_explained();
    assert!(
        only_sighup_tempfails(refused, &why),
        "refused {refused}: {why:#?}"
    );
    assert!(!accepted.is_empty());
    t.wait_drained();
    let mailbox = "user/alice@example.com";
    let on_both = wait_for(Duration::from_secs(60), || {
        let (m, r) = (
            by_msgid(Role::Master, mailbox),
            by_msgid(Role::Replica2, mailbox),
        );
        accepted
            .iter()
            .all(|id| m.contains_key(id) && m.get(id) == r.get(id))
            .then_some(())
    });
    assert!(
        on_both.is_some(),
        "not every accepted message is on the master and replica2"
    );
    let (code, out) = t.run(&["check"]);
    assert_eq!(code, 0, "master against the new replica:\n{out}");
    restore_after_replace_of(&t, &[user]);
    wait_steady();
}
