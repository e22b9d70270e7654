//! Upgrading a pair through replication, on a REAL mixed pair: a Cyrus 3.6
//! master (Debian 12) and a 3.10 replica (a Debian 13 root), mail delivered
//! all the time. `upgrade-via-failover` proves the direction, fails over to
//! the newer host and says what to do with the old one; the old master is
//! then upgraded in place (the lab swaps its Cyrus for 3.10 on the same
//! spool), the pair checks identical, the runbook now refuses (nothing left
//! to upgrade) and the fail back loses nothing.

mod common;

use common::rehearsal::*;
use common::*;
use cyrdeck::lab::layout::Role;
use std::time::Duration;

const LAB_NAME: &str = "upgrade";
const LAB_PORT: u16 = 26700;

#[test]
#[ignore = "CI time (45 min): scripts/versions.sh runs it with the mixed pair; CI rehearses 3.10 and 3.12 pairs"]
fn upgrade_via_failover_on_a_mixed_pair_then_upgrade_the_old_master_and_fail_back() {
    use_private_lab_with_releases(LAB_NAME, LAB_PORT, "3.6", "3.10");
    let _g = lock();
    let t = Rehearsal::new("upgrade", None);
    let user = format!("upg{}", run_id());
    create_users(std::slice::from_ref(&user));
    t.wait_drained();

    // the mixed pair is said: upgrade direction
    let (_, status) = t.run(&["status"]);
    assert!(status.contains("mixed releases"), "{status}");
    assert!(status.contains("replica newer"), "{status}");
    let (code, doctor) = t.run(&["doctor"]);
    assert_ne!(code, 0, "{doctor}");
    assert!(doctor.contains("mixed_releases"), "{doctor}");

    let d = Deliverer::start(&user, &t.target);
    std::thread::sleep(Duration::from_secs(2));
    let (code, out) = t.run(&["run", "upgrade-via-failover", "lab", "--yes"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    assert!(
        out.contains("upgrade direction: master (3.6.1) -> replica (3.10.2)"),
        "{out}"
    );
    assert!(out.contains("canary reached master"), "{out}");
    assert!(out.contains("upgrade master (3.6"), "{out}");
    assert_eq!(t.master(), "replica", "{out}");
    // the new master replicates to an older release: a problem until fixed
    let (_, status) = t.run(&["status"]);
    assert!(status.contains("OLDER than master"), "{status}");

    // the operator upgrades the old master: same spool, Cyrus 3.10
    lab()
        .upgrade_host(Role::Master, "3.10")
        .expect("upgrade the old master");
    std::thread::sleep(Duration::from_secs(3));
    t.wait_drained();
    let (_, status) = t.run(&["status"]);
    assert!(!status.contains("OLDER"), "{status}");
    assert!(!status.contains("mixed releases"), "{status}");
    let (code, check) = t.run(&["check"]);
    assert_eq!(code, 0, "the upgraded pair must check identical: {check}");

    // nothing left to upgrade: refused before anything changes
    let (code, out) = t.run(&["run", "upgrade-via-failover", "lab", "--yes"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("same release"), "{out}");
    assert_eq!(t.master(), "replica");
    let (_, list) = t.run(&["runbook", "list"]);
    assert!(list.contains("no unfinished runbook"), "{list}");

    // the fail back, under delivery
    let (code, out) = t.run(&["failover", "--yes"]);
    assert_eq!(code, 0, "fail back: {}", failed_first(&out));
    assert_eq!(t.master(), "master");
    std::thread::sleep(Duration::from_secs(2));
    let (accepted, refused) = d.finish();
    println!(
        "upgrade: {} accepted, {refused} refused while writes were stopped",
        accepted.len()
    );
    assert!(
        accepted.len() > 40,
        "the deliverer hardly ran: {}",
        accepted.len()
    );
    t.wait_drained();
    assert_on_both(&user, &accepted);
    // the rehearsal's restore would start the lab from its first releases:
    // this lab ends here (scripts/test.sh downs it)
    let _ = cyrdeck::lab::Lab::open(&lab_dir(), None).and_then(|l| l.down(None));
    std::mem::forget(t);
}
