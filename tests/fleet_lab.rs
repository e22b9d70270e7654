//! A fleet (issue 13): six pairs on the real lab under their own names, one
//! of whose replicas is reached through a second sshd; that sshd is
//! black-holed (SIGSTOP on it and its sessions). The others' reports keep
//! coming: every refresh returns well inside the exec timeout (which is
//! what the black-holed probe waits for) with the others' data fresh; the
//! dead host is then said unreachable, and answers again on SIGCONT. The
//! console launched meanwhile shows the other pairs before the dead host's
//! probe could time out.
//! Own lab (27100).

mod common;
#[path = "../benches/support/fleet.rs"]
mod fleet;

use common::*;
use cyrdeck::config::Config;
use cyrdeck::poll::Poller;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PAIRS: usize = 6;
// long enough that "the others were held back by the dead probe" (data
// as old as this) and "a slow machine probed 11 hosts in two waves" stay
// apart. CI once saw a live host's data 9 s old here, then 16 s with a 30 s
// timeout: not the poller but the host root's bash, whose pyenv rehash lock
// serialised every lab session (lab sessions now have a home of their own,
// lab/accounts.rs)
const EXEC_TIMEOUT: u64 = 16;
const ALT_PORT: u16 = 27125;

/// Restarts the black-holed sshd, also when the test fails.
struct Resume(i32);
impl Drop for Resume {
    fn drop(&mut self) {
        fleet::signal_tree(self.0, libc::SIGCONT);
    }
}

#[test]
fn a_black_holed_host_does_not_hold_back_the_other_pairs() {
    use_private_lab("fleet", 27100);
    let _g = lock();
    let sshd = fleet::extra_sshd(lab(), ALT_PORT);
    let path = fleet::config(
        lab(),
        PAIRS,
        Some(ALT_PORT),
        &format!("exec_timeout_secs = {EXEC_TIMEOUT}\nconnect_timeout_secs = {EXEC_TIMEOUT}"),
        "fleet-test.toml",
    );
    let cfg = Arc::new(Config::load(&path).unwrap());
    assert_eq!(cfg.pairs.len(), PAIRS);
    let wait = Duration::from_secs(2);
    let rt = rt();
    let mut poller = Poller::new(cfg.clone(), true).wait_at_most(wait);
    // every host answers (the first refresh opens 12 sessions)
    wait_for(Duration::from_secs(60), || {
        let r = rt.block_on(poller.refresh());
        r.pairs
            .iter()
            .all(|p| p.hosts.iter().all(|h| h.reachable))
            .then_some(())
    })
    .expect("every host of the fleet reachable");

    let dead = format!("{}-replica", fleet::FIRST);
    let resume = Resume(sshd);
    fleet::signal_tree(sshd, libc::SIGSTOP);
    let bound = Duration::from_secs(EXEC_TIMEOUT / 2);
    // the console launched now shows the other pairs while the dead
    // host's first probe still hangs (it would wait EXEC_TIMEOUT)
    let t0 = Instant::now();
    let path_s = path.display().to_string();
    let console = common::tmux::Tmux::start(&["--observe", "--config", &path_s], 120, 40);
    let s = console.wait_for("the other pairs", bound, |s| {
        s.contains("fleet: 6 pairs") && s.contains("pair p01")
    });
    assert!(t0.elapsed() < bound, "{s}");
    drop(console);
    let t0 = Instant::now();
    let mut said_unreachable = false;
    // past the exec timeout, so the dead probe's own end is read too
    while t0.elapsed() < Duration::from_secs(EXEC_TIMEOUT + 8) {
        let t = Instant::now();
        let r = rt.block_on(poller.refresh());
        let took = t.elapsed();
        // without the bound a refresh waits for the dead probe: >= EXEC_TIMEOUT
        assert!(took < bound, "a refresh took {took:?} (bound {bound:?})");
        for p in r.pairs.iter().filter(|p| p.name != fleet::FIRST) {
            for h in &p.hosts {
                assert!(h.reachable, "{}: {h:?}", p.name);
                let age = h.data_age_secs.unwrap_or(f64::MAX);
                assert!(age < bound.as_secs_f64(), "{} data {age}s old", h.name);
            }
        }
        let first = r.pairs.iter().find(|p| p.name == fleet::FIRST).unwrap();
        let d = first.hosts.iter().find(|h| h.name == dead).unwrap();
        said_unreachable |= !d.reachable;
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        said_unreachable,
        "the black-holed host was never said unreachable"
    );

    // back: it answers again (a new session: the old one timed out)
    drop(resume);
    wait_for(Duration::from_secs(60), || {
        let r = rt.block_on(poller.refresh());
        let first = r.pairs.iter().find(|p| p.name == fleet::FIRST).unwrap();
        first.hosts.iter().all(|h| h.reachable).then_some(())
    })
    .expect("the host answers again after SIGCONT");
    fleet::signal_tree(sshd, libc::SIGTERM);
}
