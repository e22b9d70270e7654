//! One real lab shared by every integration test of a run: started once
//! (idempotent `lab up`), tests that disturb it hold LAB_LOCK and restore it.

#![allow(dead_code)]

pub mod rehearsal;
pub mod sudo_log;
pub mod tmux;

use cyrdeck::config::Config;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::{Component, Lab};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

pub const BASE_PORT: u16 = 24300;

/// A test binary that changes the pair's roles (failover) runs on a lab of
/// its own, wiped at start: other tests' leftovers (planted differences)
/// would fail its precheck, and its role changes must not reach them.
static PRIVATE: OnceLock<(PathBuf, u16)> = OnceLock::new();

/// The private lab's journal host (`lab up --journal-host`), if any.
static JOURNAL_HOST: OnceLock<Role> = OnceLock::new();

/// A private lab whose `role` logs to a private systemd-journald.
pub fn use_private_journal_lab(name: &str, base_port: u16, role: Role) {
    JOURNAL_HOST.get_or_init(|| role);
    use_private_lab(name, base_port);
}

/// A private lab whose hosts run these releases whatever the environment
/// asks (a mixed pair for the upgrade test).
static FIXED_RELEASES: OnceLock<(&'static str, &'static str)> = OnceLock::new();

pub fn use_private_lab_with_releases(
    name: &str,
    base_port: u16,
    master: &'static str,
    replica: &'static str,
) {
    FIXED_RELEASES.get_or_init(|| (master, replica));
    use_private_lab(name, base_port);
}

/// How many replicas the private lab runs (`lab up --replicas N`).
static REPLICAS: OnceLock<usize> = OnceLock::new();

pub fn use_private_lab_with_replicas(name: &str, base_port: u16, replicas: usize) {
    REPLICAS.get_or_init(|| replicas);
    use_private_lab(name, base_port);
}

/// A private lab built with the site profile (`lab up --profile site`):
/// virtual domains, altnamespace, two partitions, archive partitions.
static SITE: OnceLock<bool> = OnceLock::new();

pub fn use_private_site_lab(name: &str, base_port: u16) {
    SITE.get_or_init(|| true);
    use_private_lab(name, base_port);
}

/// The lab's seed: the four named users, or the site profile's domain
/// users and shared folders.
pub fn seed_lab(lab: &Lab) {
    if lab.layout.profile == cyrdeck::lab::layout::Profile::Site {
        cyrdeck::lab::seed::site(lab, 2).expect("seed site lab");
    } else {
        cyrdeck::lab::seed::seed(lab, 2).expect("seed lab");
    }
}

/// A private lab with one replica and a spare host (`lab up --spare`).
static SPARE: OnceLock<bool> = OnceLock::new();

pub fn use_private_lab_with_spare(name: &str, base_port: u16) {
    SPARE.get_or_init(|| true);
    use_private_lab(name, base_port);
}

/// Call before anything else in such a binary.
pub fn use_private_lab(name: &str, base_port: u16) {
    PRIVATE.get_or_init(|| {
        (
            PathBuf::from(format!("/var/tmp/cyrdeck-{name}-lab")),
            base_port,
        )
    });
}

pub fn lab_dir() -> PathBuf {
    if let Some((d, _)) = PRIVATE.get() {
        return d.clone();
    }
    std::env::var_os("CYRDECK_TEST_LAB")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/cyrdeck-test-lab"))
}

/// The Cyrus releases the tests' labs run (master, replica):
/// `CYRDECK_TEST_CYRUS=3.10` for both, or `CYRDECK_TEST_MASTER_CYRUS` /
/// `CYRDECK_TEST_REPLICA_CYRUS` for a mixed pair; unset: the host's own.
/// scripts/versions.sh runs the core scenarios this way on each release.
pub fn releases() -> (Option<String>, Option<String>) {
    if let Some((m, r)) = FIXED_RELEASES.get() {
        return (Some(m.to_string()), Some(r.to_string()));
    }
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let both = var("CYRDECK_TEST_CYRUS");
    (
        var("CYRDECK_TEST_MASTER_CYRUS").or(both.clone()),
        var("CYRDECK_TEST_REPLICA_CYRUS").or(both),
    )
}

static LAB: OnceLock<Lab> = OnceLock::new();
static LAB_LOCK: Mutex<()> = Mutex::new(());

/// The lab, brought up (and seeded) once per test binary; a private lab
/// starts from nothing.
pub fn lab() -> &'static Lab {
    LAB.get_or_init(|| {
        let port = PRIVATE.get().map(|(_, p)| *p).unwrap_or(BASE_PORT);
        if PRIVATE.get().is_some() {
            if let Ok(old) = Lab::open(&lab_dir(), Some(port)) {
                let _ = old.down(None);
            }
            let _ = std::fs::remove_dir_all(lab_dir());
        }
        let mut lab = Lab::open(&lab_dir(), Some(port)).expect("open lab");
        // the releases first: a lab that ran others starts from nothing,
        // and what this binary asks of its lab is set on that one (set
        // before, a profile or a spare was lost with the old lab)
        let (m, r) = releases();
        let recorded = lab.layout.hosts.clone();
        lab.set_releases(m.as_deref(), r.as_deref())
            .expect("CYRDECK_TEST_*CYRUS");
        if lab.layout.hosts != recorded {
            // the shared lab ran other releases: start it again from nothing
            let _ = lab.down(None);
            let _ = std::fs::remove_dir_all(lab_dir());
            lab = Lab::open(&lab_dir(), Some(port)).expect("open lab");
            lab.set_releases(m.as_deref(), r.as_deref()).unwrap();
        }
        if let Some(r) = JOURNAL_HOST.get() {
            lab.set_journal_host(Some(*r));
        }
        if let Some(n) = REPLICAS.get() {
            lab.set_replicas(*n).expect("replicas");
        }
        if SPARE.get().is_some() {
            lab.set_spare(true).expect("spare");
        }
        if SITE.get().is_some() {
            lab.set_profile(cyrdeck::lab::layout::Profile::Site)
                .expect("site profile");
        }
        // again, now that a journal host is known (it must run the host's
        // own release)
        lab.set_releases(m.as_deref(), r.as_deref())
            .expect("CYRDECK_TEST_*CYRUS");
        lab.up().expect("lab up");
        seed_lab(&lab);
        lab
    })
}

/// Serialise tests that touch the lab; a panicking test must not poison the rest.
pub fn lock() -> MutexGuard<'static, ()> {
    let g = LAB_LOCK.lock().unwrap_or_else(|e| {
        fresh_mail_data();
        e.into_inner()
    });
    // whatever a previous test left stopped comes back
    lab().up().expect("lab up");
    g
}

/// A test panicked holding the lock: it may have left the pair anywhere
/// (a fence, half a reintegration, mailboxes on one side only), and every
/// later test would fail for it. Those start from fresh Cyrus data instead
/// (configs, host keys and accounts kept).
fn fresh_mail_data() {
    let lab = lab();
    eprintln!("a test failed mid-scenario: the lab's Cyrus data starts afresh");
    let _ = lab.down(None);
    for role in lab.layout.roles() {
        let i = lab.layout.instance(role);
        let _ = std::fs::remove_dir_all(&i.config_dir);
        let _ = std::fs::remove_dir_all(&i.partition);
    }
    lab.up().expect("lab up with fresh data");
    seed_lab(lab);
    // the seed replicated before the next test pauses the client (CI: a
    // resync test found bob's INBOX not yet on the replica after a reset)
    let steady = wait_for(Duration::from_secs(90), || {
        (status_json().0 == 0).then_some(())
    });
    if steady.is_none() {
        eprintln!("the fresh lab did not become steady within 90 s");
    }
}

pub fn config() -> Config {
    Config::load(&lab().layout.config_file()).expect("lab config")
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_cyrdeck")
}

pub fn deliver(user: &str, msgid: &str) {
    let m = lab().layout.instance(Role::Master);
    cyrdeck::lab::mail::lmtp_deliver(
        Role::Master.address(),
        m.lmtp_port,
        &[user],
        &cyrdeck::lab::mail::message(msgid, "test", "body"),
    )
    .expect("LMTP delivery");
}

/// The master's rolling sync_client pid.
pub fn client_pid() -> Option<i32> {
    let conf = lab().layout.instance(Role::Master).imapd_conf;
    cyrdeck::lab::process::pids_matching(&format!("sync_client -C {}", conf.display()))
        .into_iter()
        .next()
}

/// Pause replication without a respawn (SIGSTOP the client); resumes on drop.
pub struct Paused(i32);
impl Paused {
    pub fn new() -> Paused {
        let pid = wait_for(Duration::from_secs(30), client_pid).expect("sync_client running");
        cyrdeck::lab::process::send(pid, libc::SIGSTOP);
        Paused(pid)
    }
}
impl Drop for Paused {
    fn drop(&mut self) {
        cyrdeck::lab::process::send(self.0, libc::SIGCONT);
    }
}

pub fn stop(c: Component) {
    lab().down(Some(c)).expect("stop component");
}

pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Run `cyrdeck status --json` and return (exit code, parsed JSON).
pub fn status_json() -> (i32, serde_json::Value) {
    let out = std::process::Command::new(bin())
        .args(["--config"])
        .arg(lab().layout.config_file())
        .args(["status", "--json"])
        .output()
        .expect("run cyrdeck");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "status JSON: {e}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// This test process's id in the names it plants on a lab: a lab outlives
/// the run (CI's machine keeps /var/tmp/cyrdeck-test-lab and every user
/// earlier runs planted), and a pid alone repeats across runs (the same
/// boot sequence), so the start time follows it. Digits only: the tests'
/// patterns for earlier runs' users are `PREFIX[0-9]+`.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        format!("{}{:06}", std::process::id(), secs % 1_000_000)
    })
}

pub fn unique(tag: &str) -> String {
    format!(
        "{tag}-{}-{}@cyrdeck-test",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

/// Run the cyrdeck binary on the lab's config: (exit code, stdout+stderr).
/// This test binary's own state directory (journals).
pub fn state_dir() -> PathBuf {
    lab_dir().join(format!("state-{}", run_id()))
}

/// `cyrdeck ARGS` with extra environment (the fault injection); None as
/// the exit code when a signal ended it.
pub fn cli_env(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = std::process::Command::new(bin())
        .arg("--config")
        .arg(lab().layout.config_file())
        .args(args)
        .env("XDG_STATE_HOME", state_dir())
        .envs(env.iter().copied())
        .output()
        .expect("run cyrdeck");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

pub fn cli(args: &[&str]) -> (i32, String) {
    cli_config(&lab().layout.config_file(), args)
}

/// `cli` with another config (the lab's sudo accounts' configs).
pub fn cli_config(config: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(bin())
        .arg("--config")
        .arg(config)
        .args(args)
        // runbook journals of this test binary, apart from the operator's
        .env("XDG_STATE_HOME", state_dir())
        .output()
        .expect("run cyrdeck");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

/// `cyrdeck check --json` (drain wait 3 s) with extra arguments.
pub fn check_json(args: &[&str]) -> (i32, serde_json::Value) {
    let mut all = vec!["check", "--json", "--drain-wait", "3"];
    all.extend_from_slice(args);
    let out = std::process::Command::new(bin())
        .arg("--config")
        .arg(lab().layout.config_file())
        .args(&all)
        .output()
        .expect("run cyrdeck check");
    let v = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "check JSON: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

/// Remove the master's pending sync-log lines that contain any of `words`
/// (users, names), in place (owner and mode kept): what a crash that lost
/// the log would leave.
pub fn forget_pending(words: &[String]) {
    let sync = lab().layout.instance(Role::Master).sync_dir();
    for f in ["log", "log-run"] {
        let p = sync.join(f);
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        let kept: String = text
            .lines()
            .filter(|l| !words.iter().any(|w| l.contains(w.as_str())))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(&p, kept).unwrap();
    }
}

/// Until `status` says OK (a minute and a half at most): a test that broke
/// a user leaves the pair as it found it (bail-outs count for 60 s).
pub fn wait_steady() {
    let ok = wait_for(Duration::from_secs(90), || {
        (status_json().0 == 0).then_some(())
    });
    assert!(
        ok.is_some(),
        "the pair never got steady: {:#}",
        status_json().1
    );
}

/// Wait until the master's queue is empty.
pub fn wait_drained() {
    wait_for(Duration::from_secs(90), || {
        let (_, v) = status_json();
        (v["pairs"][0]["channels"][0]["queue"]["pending"] == 0).then_some(())
    })
    .expect("queue drained");
}

pub fn login(role: Role, user: &str) -> cyrdeck::lab::mail::Imap {
    let i = lab().layout.instance(role);
    cyrdeck::lab::mail::Imap::login(role.address(), i.imap_port, user).expect("IMAP login")
}

/// A mailbox's directory on the replica (mbpath -M).
pub fn replica_dir(mailbox: &str) -> String {
    let conf = lab().layout.instance(Role::Replica).imapd_conf;
    let out = lab()
        .cyrus_tool(Role::Replica, "mbpath")
        .arg("-C")
        .arg(&conf)
        .args(["-M", mailbox])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Expunge `uid` of `user`'s INBOX on the replica alone (logged in as the
/// user there): a plain sync would carry the deletion to the master.
pub fn expunge_on_replica(user: &str, uid: u32) {
    let mut i = login(Role::Replica, user);
    i.command("SELECT INBOX").unwrap();
    i.command(&format!("UID STORE {uid} +FLAGS (\\Deleted)"))
        .unwrap();
    i.command("EXPUNGE").unwrap();
    i.logout();
}

/// Create users on the master (admin IMAP).
pub fn create_users(users: &[String]) {
    let mut admin = login(Role::Master, "admin");
    for u in users {
        admin.create(&format!("user/{u}")).expect("create user");
    }
    admin.logout();
}

/// Live GUIDs of a mailbox on one host, sorted, via mbexamine (none if the
/// mailbox does not exist there).
/// `mbexamine MAILBOX` (internal name) on one lab host, with that host's
/// Cyrus release: its stdout.
pub fn mbexamine(role: Role, mailbox: &str) -> String {
    let conf = lab().layout.instance(role).imapd_conf;
    let out = lab()
        .cyrus_tool(role, "mbexamine")
        .arg("-C")
        .arg(&conf)
        .arg(mailbox)
        .output()
        .expect("mbexamine");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn guids(role: Role, mailbox: &str) -> Vec<String> {
    let text = mbexamine(role, &cyrdeck::cyrus::names::to_mutf7(mailbox));
    if text.trim().is_empty() {
        return vec![];
    }
    let mut v: Vec<String> = cyrdeck::cyrus::mbexamine::parse(&text)
        .unwrap_or_else(|e| panic!("{mailbox} on {role:?}: {e}"))
        .messages
        .into_iter()
        .map(|(_, g)| g)
        .collect();
    v.sort();
    v
}

/// A user's replica mailbox made unreadable (chmod 000: the client's hot
/// loop); readable again on drop, also when the test fails.
pub struct Unreadable(String);

impl Unreadable {
    pub fn replica_mailbox(user: &str) -> Unreadable {
        use std::os::unix::fs::PermissionsExt;
        let dir = replica_dir(&format!("user/{user}"));
        assert!(!dir.is_empty(), "no replica directory for {user}");
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o000)).unwrap();
        Unreadable(dir)
    }
}

impl Drop for Unreadable {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700));
    }
}

/// Goal d's "shows when it doesn't", read from whatever log source `cfg`
/// names for the master: a replica mailbox made unreadable puts the client
/// in a hot loop; a poller (observe mode) must show the hot loop and name
/// the user, then — once the mailbox is readable again — clear the warning
/// on its own 60 s after the last bail-out (not before, not much later).
/// Returns (seconds from the last bail-out to OK, refreshes taken).
pub fn hot_loop_shown_named_and_cleared(cfg: Config, tag: &str) -> (i64, usize) {
    let x = format!("{tag}{}", run_id());
    create_users(std::slice::from_ref(&x));
    deliver(&x, &unique("before"));
    wait_drained();
    let restore = Unreadable::replica_mailbox(&x);
    deliver(&x, &unique("blocked"));

    let cfg = Arc::new(cfg);
    let rt = rt();
    let mut poller = cyrdeck::poll::Poller::new(cfg.clone(), true);
    let mut seen = None;
    for _ in 0..40 {
        let r = rt.block_on(poller.refresh());
        let p = &r.pairs[0];
        let hot = p.problems.iter().any(|q| q.message.contains("hot loop"));
        let named = p
            .stuck
            .iter()
            .any(|s| s.user.as_deref() == Some(x.as_str()));
        if hot && named {
            seen = Some(r);
            break;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    let r = seen.unwrap_or_else(|| {
        panic!(
            "hot loop on {x} never shown (log source of {:?})",
            cfg.host("master").log_source
        )
    });
    assert_eq!(
        r.pairs[0].health,
        cyrdeck::model::snapshot::Health::Critical
    );
    drop(restore);
    wait_drained();

    // the last bail-out the poller read, then OK exactly a minute later
    let mut last_bailout = 0i64;
    let mut refreshes = 0;
    let ok_at = loop {
        let r = rt.block_on(poller.refresh());
        refreshes += 1;
        for e in &r.pairs[0].events {
            if e.event.kind == cyrdeck::cyrus::loglines::LineKind::BailingOut {
                last_bailout = last_bailout.max(e.event.time.expect("bail-out line has a time"));
            }
        }
        assert!(last_bailout > 0, "no timed bail-out was read");
        let now = r.generated_at;
        if r.pairs[0].health == cyrdeck::model::snapshot::Health::Ok {
            break now;
        }
        assert!(
            now < last_bailout + 90,
            "still not OK 90 s after the last bail-out: {:#?}",
            r.pairs[0].problems
        );
        std::thread::sleep(Duration::from_secs(1));
    };
    let after = ok_at - last_bailout;
    assert!(
        (59..=75).contains(&after),
        "OK {after} s after the last bail-out (expected about 60)"
    );
    (after, refreshes)
}

/// A runbook's output for an assertion message, what went wrong first: CI
/// shows only the start of a long failure, and a runbook's output begins
/// with the steps that went well.
pub fn failed_first(out: &str) -> String {
    let lines: Vec<&str> = out.lines().collect();
    let bad: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            [
                "fail",
                "error",
                "missing",
                "refus",
                "timed out",
                "panick",
                "not ",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .take(25)
        .collect();
    let tail = &lines[lines.len().saturating_sub(30)..];
    format!(
        "--- lines that say what went wrong:\n{}\n--- the last {} lines:\n{}\n--- all of it:\n{out}",
        bad.join("\n"),
        tail.len(),
        tail.join("\n")
    )
}
