//! Issue 17's on-call questions on the real pair, in tmux at 80x24, from
//! launch: is replication flowing, how far behind, which users are stuck,
//! is failover safe now (0 keys, within 10 s), and the Queue naming the
//! waiting users (1 key) — healthy, then with a backlog while the rolling
//! client is stopped (SIGSTOP), and just after a user's broken replica
//! mailbox was fixed (healed). A check `cyrdeck check` recorded answers
//! "is failover safe" at launch, with no key. Own lab (25700).

mod common;

use common::tmux::Tmux;
use common::*;
use cyrdeck::lab::layout::Role;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

/// Puts a directory's mode back, also when the test fails.
struct Mode(String, u32);
impl Drop for Mode {
    fn drop(&mut self) {
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(self.1));
    }
}

/// The console launched at 80x24; the screen once `ready` holds, and how
/// long that took.
fn launch(ready: impl Fn(&str) -> bool) -> (Tmux, String, Duration) {
    let cfg = lab().layout.config_file().display().to_string();
    let t0 = Instant::now();
    let t = Tmux::start(&["--config", &cfg], 80, 24);
    let s = t.wait_for("the answers", Duration::from_secs(10), ready);
    (t, s, t0.elapsed())
}

#[test]
fn the_on_call_questions_are_answered_from_launch_at_80x24() {
    use_private_lab("oncall", 25700);
    let _g = lock();
    let mut figures = Vec::new();

    // healthy: in sync, a measured lag, nothing stuck; failover is
    // unproven until a check ran: `c` runs it (1 key), `1` comes back (2)
    let t0 = Instant::now();
    let (t, s, _) =
        launch(|s| s.contains("channel default → replica: in sync") && s.contains("(hb "));
    assert!(s.contains("stuck: none"), "{s}");
    assert!(
        s.contains("failover now: UNPROVEN no integrity check run yet"),
        "{s}"
    );
    t.keys(&["c"]);
    let c = t.wait_for("the check's answer", Duration::from_secs(10), |s| {
        s.contains("Conflicts: pair lab checked")
    });
    assert!(c.contains("IN SYNC"), "{c}");
    t.keys(&["1"]);
    t.wait_for("safe to fail over", Duration::from_secs(3), |s| {
        s.contains("failover now: SAFE") && s.contains("identical: yes")
    });
    figures.push(("healthy, incl. the check", t0.elapsed()));
    t.keys(&["2"]);
    t.wait_for("the empty queue", Duration::from_secs(3), |s| {
        s.contains("Queue empty")
    });
    drop(t);

    // the check `cyrdeck check` records is read at launch: 0 keys
    let (code, out) = cli(&["check"]);
    assert_eq!(code, 0, "{out}");
    let (_t, s, took) = launch(|s| s.contains("failover now: SAFE to replica (saved check"));
    assert!(s.contains("identical: yes"), "{s}");
    assert!(s.contains(", saved)"), "{s}");
    figures.push(("healthy, recorded check", took));
    drop(_t);

    // backlog while the client is stopped: STOPPED, why, how far behind,
    // NOT SAFE; the Queue names the waiting user (1 key)
    let paused = Paused::new();
    for i in 0..20 {
        deliver("dave", &unique(&format!("oncall{i}")));
    }
    let (t, s, took) =
        launch(|s| s.contains("replica: STOPPED") && s.contains("failover now: NOT SAFE"));
    assert!(s.contains("pending "), "{s}");
    assert!(s.contains("lag "), "{s}");
    // the recorded check no longer proves anything
    assert!(!s.contains("identical: yes"), "{s}");
    figures.push(("stopped client", took));
    t.keys(&["2"]);
    let q = t.wait_for("dave in the queue", Duration::from_secs(3), |s| {
        s.lines().any(|l| l.contains("dave") && l.contains("~"))
    });
    assert!(q.contains("#: place in the queue"), "{q}");
    drop(t);
    drop(paused);
    wait_drained();

    // a user just healed: erin's replica mailbox unreadable (the client
    // bails out on her batch), then fixed; the queue drains. Not stuck,
    // not unsafe: nothing fails now and nothing waits.
    let erin = format!("erin{}", run_id());
    create_users(std::slice::from_ref(&erin));
    deliver(&erin, &unique("erin-0"));
    wait_drained();
    let dir = replica_dir(&format!("user/{erin}"));
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
    let fix = Mode(dir.clone(), mode);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).unwrap();
    deliver(&erin, &unique("erin-blocked"));
    let sync = lab().layout.instance(Role::Master).sync_dir();
    wait_for(Duration::from_secs(30), || {
        sync.join("log-run").exists().then_some(())
    })
    .expect("the client never took erin's entry");
    std::thread::sleep(Duration::from_secs(3));
    let (_, v) = status_json();
    assert!(
        v["pairs"][0]["channels"][0]["queue"]["pending"].as_u64() > Some(0),
        "erin's entry should be blocked: {v:#}"
    );
    drop(fix);
    wait_drained();
    let (t, s, took) = launch(|s| s.contains("failover now: SAFE"));
    figures.push(("a user just healed", took));
    assert!(!s.contains("NOT FLOWING"), "{s}");
    assert!(!s.contains("NOT SAFE"), "{s}");
    assert!(
        s.contains("stuck: none") || s.contains("none failing now"),
        "{s}"
    );
    // 1 key: the Stuck view does not list erin as failing
    t.keys(&["3"]);
    let st = t.wait_for("the Stuck view", Duration::from_secs(3), |s| {
        s.contains("Stuck: ") || s.contains("Nothing stuck")
    });
    assert!(
        st.contains("Nothing stuck") || !st.contains(&erin[..erin.len().min(8)]),
        "{st}"
    );
    drop(t);
    for (state, took) in figures {
        println!(
            "FIGURE answered from launch ({state}): {:.1}s",
            took.as_secs_f64()
        );
    }
}
