//! Replacing a replica with no gap, on a REAL lab: a master, its replica
//! (default channel) and a spare host (`lab up --spare`: replica2, Cyrus + sshd, in
//! no pair). `replace-replica replica:replica2` adds a channel for the
//! spare beside the replica's, copies every user to it, checks it clean and
//! only then retires the old channel. Mail is delivered all the time, and
//! a sampler proves that at every sampled moment each message accepted a
//! few seconds earlier is on at least one replica of the pair. Also: the
//! dry run changes nothing; the operator stopping after the channel was
//! added gets it taken back (decided from the master's files); a cyrdeck
//! killed mid-run resumes to the end.

mod common;

use common::rehearsal::*;
use common::*;
use cyrdeck::config::Config;
use cyrdeck::lab::layout::Role;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LAB_NAME: &str = "replace";
const LAB_PORT: u16 = 27500;
const TARGET: &str = "replica:replica2";

fn replicas_in(t: &Rehearsal) -> Vec<(String, String)> {
    Config::load(&t.config).unwrap().pairs["lab"]
        .replicas
        .iter()
        .map(|r| (r.host.clone(), r.channel.clone()))
        .collect()
}

fn master_conf() -> String {
    std::fs::read_to_string(lab().layout.instance(Role::Master).imapd_conf).unwrap()
}

fn master_cyrus_conf() -> String {
    std::fs::read_to_string(lab().layout.instance(Role::Master).cyrus_conf).unwrap()
}

/// Every `period`, the messages accepted until then must be, `grace`
/// later, on the replica or the spare: (samples, violations).
struct Sampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(u32, Vec<String>)>,
}

impl Sampler {
    fn start(accepted: impl Fn() -> Vec<String> + Send + 'static, user: &str) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let mailbox = format!("user/{user}");
        let handle = std::thread::spawn(move || {
            let (mut samples, mut bad) = (0u32, Vec::new());
            while !s.load(Ordering::SeqCst) {
                let before = accepted();
                std::thread::sleep(Duration::from_secs(3));
                let on: Vec<_> = [Role::Replica, Role::Replica2]
                    .iter()
                    .map(|&r| by_msgid(r, &mailbox))
                    .collect();
                for id in &before {
                    if !on.iter().any(|m| m.contains_key(id)) {
                        bad.push(id.clone());
                    }
                }
                samples += 1;
            }
            (samples, bad)
        });
        Sampler { stop, handle }
    }
    fn finish(self) -> (u32, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().unwrap()
    }
}

/// The lab as `lab up` makes it again (the master's channels from the
/// templates), its Cyrus restarted to read them; no pair lock left.
fn restore(t: &Rehearsal) {
    let _ = t.run(&["runbook", "unlock", "--pair", "lab", "--yes"]);
    let _ = lab().down(Some(cyrdeck::lab::Component::Cyrus(Role::Master)));
    lab().up().expect("lab up");
}

#[test]
fn replace_the_only_replica_under_delivery_with_no_gap() {
    use_private_lab_with_spare(LAB_NAME, LAB_PORT);
    let _g = lock();
    assert_eq!(lab().layout.spare_role(), Some(Role::Replica2));
    let t = Rehearsal::new("replace", None);
    let user = format!("rep{}", std::process::id());
    create_users(std::slice::from_ref(&user));
    t.wait_drained();

    // the dry run: the precheck and the plan, nothing changed
    let conf_before = master_conf();
    let (code, out) = t.run(&["run", "replace-replica", TARGET, "--dry-run"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("add channel replica2 -> replica2"), "{out}");
    assert!(out.contains("answers the master"), "{out}");
    assert_eq!(master_conf(), conf_before, "a dry run changes nothing");

    let d = Deliverer::start(&user, &t.target);
    let accepted = {
        let so_far = d.accepted_handle();
        move || so_far.lock().unwrap().clone()
    };
    let sampler = Sampler::start(accepted, &user);
    std::thread::sleep(Duration::from_secs(2));
    let started = Instant::now();
    let (code, out) = t.run(&["run", "replace-replica", TARGET, "--yes"]);
    let took = started.elapsed();
    assert_eq!(code, 0, "{out}");
    println!("{out}");
    println!("replace-replica took {took:.1?}");
    assert!(out.contains("checks clean"), "{out}");
    assert!(out.contains("old queue archived"), "{out}");
    std::thread::sleep(Duration::from_secs(2));
    let (accepted, refused) = d.finish();
    let (samples, missing) = sampler.finish();
    println!(
        "{} accepted ({refused} refused) during the run; {samples} samples, {} message(s) on no replica",
        accepted.len(),
        missing.len()
    );
    assert!(accepted.len() > 40, "the deliverer hardly ran");
    assert_eq!(refused, 0, "a replica change refuses no mail");
    assert!(samples >= 3, "{samples} samples");
    assert!(
        missing.is_empty(),
        "accepted but on no replica: {missing:?}"
    );

    // the pair is now master -> replica2 only; the master says so too
    assert_eq!(
        replicas_in(&t),
        vec![("replica2".to_string(), "replica2".to_string())]
    );
    let conf = master_conf();
    assert!(conf.contains("sync_log_channels: replica2"), "{conf}");
    assert!(conf.contains("replica2_sync_port:"), "{conf}");
    let cyrus_conf = master_cyrus_conf();
    assert!(
        cyrus_conf.contains("syncclientreplica2 cmd="),
        "{cyrus_conf}"
    );
    assert!(
        cyrus_conf.contains("#cyrdeck-failover#   syncclient cmd="),
        "the old client's entry is commented out: {cyrus_conf}"
    );
    t.wait_drained();
    let mailbox = format!("user/{user}");
    let (m, n) = (
        by_msgid(Role::Master, &mailbox),
        by_msgid(Role::Replica2, &mailbox),
    );
    for id in &accepted {
        assert!(m.contains_key(id), "{id} not on the master");
        assert_eq!(m.get(id), n.get(id), "{id} not on the new replica");
    }
    let (code, check) = t.run(&["check"]);
    assert_eq!(code, 0, "{check}");
    let (code, status) = t.run(&["status"]);
    assert_eq!(code, 0, "{status}");
    assert!(status.contains("channel replica2 -> replica2"), "{status}");
    restore(&t);
}

#[test]
fn stopped_after_the_channel_was_added_the_master_is_as_before() {
    use_private_lab_with_spare(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("replace-undo", None);
    let (conf0, cyrus0) = (master_conf(), master_cyrus_conf());
    let replicas0 = replicas_in(&t);
    // step 2 (add the channel) yes, step 3 (the initial sync) no
    let mut c = t
        .command(&["run", "replace-replica", TARGET])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b"y\nn\n").unwrap();
    let o = c.wait_with_output().unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(o.status.code(), Some(3), "{out}");
    assert!(
        out.contains("channel replica2 taken off the master"),
        "{out}"
    );
    assert!(out.contains("out of the pair again"), "{out}");
    let conf = master_conf();
    assert!(!conf.contains("sync_log_channels"), "{conf}");
    assert!(!conf.contains("replica2_sync"), "{conf}");
    assert_eq!(replicas_in(&t), replicas0);
    assert!(
        !master_cyrus_conf().contains("\n  syncclientreplica2"),
        "no live client entry left: {}",
        master_cyrus_conf()
    );
    // the imapd.conf is as before, but for the order of rewritten keys
    let lines = |s: &str| {
        let mut v: Vec<String> = s.lines().map(str::to_string).collect();
        v.sort();
        v
    };
    assert_eq!(lines(&conf), lines(&conf0));
    assert!(cyrus0.contains("syncclient cmd="));
    let (code, status) = t.run(&["status"]);
    assert_eq!(code, 0, "{status}");
    restore(&t);
}

#[test]
fn killed_after_the_initial_sync_the_run_resumes_to_the_end() {
    use_private_lab_with_spare(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("replace-kill", None);
    let user = format!("rek{}", std::process::id());
    create_users(std::slice::from_ref(&user));
    for i in 0..5 {
        deliver(&user, &unique(&format!("rek-{i}")));
    }
    let mut c = t.command(&["run", "replace-replica", TARGET, "--yes"]);
    c.env("CYRDECK_FAULT", "3:kill-after");
    let o = c.output().unwrap();
    assert_eq!(
        o.status.code(),
        None,
        "killed by the fault injection: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let (_, list) = t.run(&["runbook", "list"]);
    assert!(list.contains("replace-replica"), "{list}");
    let (code, out) = t.run(&["runbook", "resume", "--yes"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("checks clean"), "{out}");
    assert_eq!(
        replicas_in(&t),
        vec![("replica2".to_string(), "replica2".to_string())]
    );
    let mailbox = format!("user/{user}");
    t.wait_drained();
    assert_eq!(
        by_msgid(Role::Master, &mailbox),
        by_msgid(Role::Replica2, &mailbox)
    );
    restore(&t);
}
