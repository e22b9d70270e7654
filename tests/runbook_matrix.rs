//! The interruption matrix for the other writing runbooks against the REAL
//! pair: quarantine, release and repair, each writing step with cyrdeck SIGKILLed
//! before and after the step's remote action (the engine's fault injection,
//! src/ops/fault.rs), then `cyrdeck runbook resume`. After every case: the
//! run is over, the pair lock is free, and no message was lost — the
//! quarantined user's entries are held (quarantine) or replayed and in sync
//! (release), everyone else replicated; repair's protected message once on
//! each host.

mod common;

use common::*;
use cyrdeck::lab::layout::Role;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// `cyrdeck ARGS`, with a fault when given.
fn cyrdeck(args: &[&str], fault: Option<&str>) -> (Option<i32>, String) {
    match fault {
        Some(f) => cli_env(args, &[("CYRDECK_FAULT", f)]),
        None => cli_env(args, &[]),
    }
}

/// The replica mailbox made unreadable (the client bails out on it) while
/// alive; readable again on drop, also when the test fails.
struct Broken(String, u32);
impl Broken {
    fn new(dir: &str) -> Broken {
        let mode = std::fs::metadata(dir).unwrap().permissions().mode();
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o000)).unwrap();
        Broken(dir.to_string(), mode)
    }
}
impl Drop for Broken {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(self.1));
    }
}

fn sync_file(name: &str) -> std::path::PathBuf {
    lab().layout.instance(Role::Master).sync_dir().join(name)
}

fn lines(name: &str) -> usize {
    std::fs::read_to_string(sync_file(name))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// Interrupted as `fault`, resumed; the run must then be over with the lock
/// given back. Returns both outputs.
fn interrupted_then_resumed(runbook: &str, args: &[&str], fault: &str) -> String {
    let (code, first) = cyrdeck(args, Some(fault));
    assert!(
        code.is_none() && first.contains("fault injection: SIGKILL"),
        "{args:?} {fault}: exit {code:?}\n{first}"
    );
    let (_, list) = cyrdeck(&["runbook", "list"], None);
    assert!(list.contains(runbook), "journalled: {list}");
    let (code, resumed) = cyrdeck(&["runbook", "resume", "--yes"], None);
    assert_eq!(
        code,
        Some(0),
        "{args:?} {fault}:\n{first}\n--- resume:\n{resumed}"
    );
    let (_, list) = cyrdeck(&["runbook", "list"], None);
    assert!(list.contains("no unfinished runbook"), "{list}");
    let lock = lab()
        .layout
        .instance(Role::Master)
        .config_dir
        .join("cyrdeck-runbook.lock");
    assert!(!lock.exists(), "the pair lock is still held:\n{resumed}");
    format!("{first}\n--- resume:\n{resumed}")
}

/// x blocked again: one more message for it, taken by the client, which
/// then bails out on it.
fn block(x: &str) {
    deliver(x, &unique("blocked"));
    wait_for(Duration::from_secs(30), || {
        sync_file("log-run").exists().then_some(())
    })
    .expect("the client never took x's entry");
    std::thread::sleep(Duration::from_secs(1));
}

#[test]
fn quarantine_and_release_survive_a_kill_at_every_writing_step() {
    let _g = lock();
    let tag = format!("rbm{}", run_id());
    let x = format!("{tag}x");
    let others = [format!("{tag}a"), format!("{tag}b")];
    let everyone: Vec<String> = std::iter::once(x.clone()).chain(others.clone()).collect();
    create_users(&everyone);
    for u in &everyone {
        deliver(u, &unique(&format!("{u}-0")));
    }
    wait_drained();
    let dir = replica_dir(&format!("user/{x}"));
    let held = format!("held-{x}");
    let mut cases = Vec::new();

    // quarantine: step 2 (take the entries aside) and 3 (unstick)
    for fault in ["2:kill-before", "2:kill-after", "3:kill-after"] {
        let broken = Broken::new(&dir);
        block(&x);
        for u in &others {
            deliver(u, &unique(&format!("{u}-behind")));
        }
        let before = lines(&held);
        let out =
            interrupted_then_resumed("quarantine", &["run", "quarantine", &x, "--yes"], fault);
        assert!(lines(&held) > before, "x's entry is held: {out}");
        // everyone else replicates again, x still broken
        for u in &others {
            let (code, v) = check_json(&["--user", u]);
            assert_eq!(code, 0, "{u} after quarantine {fault}: {v:#}");
        }
        cases.push(format!("quarantine {fault}"));
        drop(broken);
        // release it plainly, so the next case starts from a clean pair
        let (code, out) = cyrdeck(&["run", "release", &x, "--yes"], None);
        assert_eq!(code, Some(0), "{out}");
    }

    // release: step 2 (replay) and 4 (remove the snapshot)
    for fault in [
        "2:kill-before",
        "2:kill-after",
        "4:kill-before",
        "4:kill-after",
    ] {
        {
            let _broken = Broken::new(&dir);
            block(&x);
            let (code, out) = cyrdeck(&["run", "quarantine", &x, "--yes"], None);
            assert_eq!(code, Some(0), "{out}");
            assert!(lines(&held) > 0);
        }
        let out = interrupted_then_resumed("release", &["run", "release", &x, "--yes"], fault);
        assert!(!sync_file(&held).exists(), "{out}");
        assert!(!sync_file(&format!("releasing-{x}")).exists(), "{out}");
        let (code, v) = check_json(&["--user", &x]);
        assert_eq!(code, 0, "x after release {fault}: {v:#}\n{out}");
        cases.push(format!("release {fault}"));
    }

    // nothing lost: every message of everyone, the same on both hosts
    wait_drained();
    for u in &everyone {
        let mailbox = format!("user/{u}");
        assert_eq!(
            guids(Role::Master, &mailbox),
            guids(Role::Replica, &mailbox),
            "{u}"
        );
    }
    let x_messages = guids(Role::Replica, &format!("user/{x}")).len();
    assert_eq!(
        x_messages,
        1 + 3 + 4,
        "x's messages: the first, one per case"
    );
    println!(
        "runbook matrix: {} cases: {}",
        cases.len(),
        cases.join(", ")
    );
}

/// repair: protect (unexpunge on the replica what only it expunged) and
/// sync, each killed before and after its remote action, then resumed. A
/// protect run twice must not restore the message twice (it re-plans).
#[test]
fn repair_survives_a_kill_at_every_writing_step() {
    let _g = lock();
    let mut cases = Vec::new();
    for (n, fault) in [
        "2:kill-before",
        "2:kill-after",
        "3:kill-before",
        "3:kill-after",
    ]
    .into_iter()
    .enumerate()
    {
        let user = format!("rpm{}n{n}", run_id());
        create_users(std::slice::from_ref(&user));
        for i in 0..2 {
            deliver(&user, &unique(&format!("{user}-{i}")));
        }
        wait_drained();
        let mailbox = format!("user/{user}");
        let before = guids(Role::Master, &mailbox);
        assert_eq!(before.len(), 2);
        // expunged on the replica alone: a plain sync would expunge it on
        // the master too
        expunge_on_replica(&user, 2);
        let out = interrupted_then_resumed("repair", &["repair", "--user", &user, "--yes"], fault);
        wait_drained();
        let (m, r) = (
            guids(Role::Master, &mailbox),
            guids(Role::Replica, &mailbox),
        );
        assert_eq!(m, before, "repair {fault}: the master's messages\n{out}");
        assert_eq!(
            r, before,
            "repair {fault}: the replica's messages, once each\n{out}"
        );
        cases.push(format!("repair {fault}"));
    }
    println!(
        "runbook matrix: {} cases: {}",
        cases.len(),
        cases.join(", ")
    );
}
