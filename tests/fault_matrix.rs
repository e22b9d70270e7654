//! The failover's fault matrix against the REAL pair: every step, interrupted
//! every way — the operator stopping it, cyrdeck SIGKILLed before and after
//! the step's remote action, the SSH connection to the host the step acts on
//! dropped, the step failing (a host's Cyrus stopped, the config not
//! writable) — then resumed or undone, with a deliverer sending to the
//! serving host all the time. After every case the pair is in exactly one of
//! two states (old master serving and replicating to the replica, or the new
//! one serving and replicating to the old), the lock is free, and every
//! message any server accepted so far is on both hosts.
//!
//! Two invariants are sampled all along, from the hosts' own files (the lab
//! is local): never two hosts with `sync_log` on, and no delivery accepted by
//! a host that does not replicate (sync_log on and a DAEMON client entry),
//! checked right after each accepted delivery.
//!
//! CI runs a slice (one case per step, the interruption kinds rotated);
//! `CYRDECK_MATRIX=full` (scripts/matrix.sh) runs all of them.

mod common;

use common::rehearsal::*;
use common::*;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::Component;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const LAB_NAME: &str = "matrix";
const LAB_PORT: u16 = 24900;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// The operator answers no at the step's prompt.
    Abort,
    KillBefore,
    KillAfter,
    /// The sshd of the host the step acts on goes away (sessions too).
    SshDrop,
    /// The step cannot succeed: the replica-side Cyrus stopped (steps 1-8),
    /// the config file not writable (step 9).
    StepFails,
    /// The replica's whole host goes 0.3 s into the step (its sshd and its
    /// Cyrus together), then comes back as it was left.
    ReplicaGone,
}

const ALL: [Fault; 6] = [
    Fault::Abort,
    Fault::KillBefore,
    Fault::KillAfter,
    Fault::SshDrop,
    Fault::StepFails,
    Fault::ReplicaGone,
];

fn cases() -> Vec<(usize, Fault)> {
    if std::env::var("CYRDECK_MATRIX").is_ok_and(|v| v == "full") {
        (1..=9)
            .flat_map(|s| ALL.iter().map(move |f| (s, *f)))
            // step 1 has no prompt: nothing to answer no to
            .filter(|(s, f)| !(*s == 1 && *f == Fault::Abort))
            .collect()
    } else {
        // each kind of interruption once, before and after the switch
        // (CI time: 45 min; scripts/matrix.sh runs all 53)
        vec![
            (2, Fault::Abort),
            (4, Fault::SshDrop),
            (6, Fault::StepFails),
            (7, Fault::KillBefore),
            (8, Fault::KillAfter),
            // the replica vanishing mid-drain
            (3, Fault::ReplicaGone),
        ]
    }
}

/// What a host's own files and process table say (read directly: the lab
/// is local, and the harness must not trust cyrdeck to tell it).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Facts {
    sync_log: bool,
    daemon_client: bool,
    client_running: bool,
    fenced: bool,
}

fn conf_says_sync_log(role: Role) -> bool {
    let conf = lab().layout.instance(role).imapd_conf;
    std::fs::read_to_string(conf)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().split_once(':'))
        .rfind(|(k, _)| k.trim().eq_ignore_ascii_case("sync_log"))
        .is_some_and(|(_, v)| matches!(v.trim(), "1" | "yes" | "on" | "true"))
}

fn daemon_entry(role: Role) -> bool {
    let conf = lab().layout.instance(role).cyrus_conf;
    let text = std::fs::read_to_string(conf).unwrap_or_default();
    let mut in_daemon = false;
    text.lines().any(|l| {
        let t = l.trim();
        if t.starts_with("DAEMON") && t.ends_with('{') {
            in_daemon = true;
        } else if t.starts_with('}') {
            in_daemon = false;
        }
        in_daemon && !t.starts_with('#') && t.contains("sync_client")
    })
}

fn facts(role: Role) -> Facts {
    let i = lab().layout.instance(role);
    let running = std::process::Command::new("pgrep")
        .args(["-f"])
        .arg(format!("sync_client -C {} ", i.imapd_conf.display()))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    Facts {
        sync_log: conf_says_sync_log(role),
        daemon_client: daemon_entry(role),
        client_running: running,
        fenced: i.config_dir.join("msg/shutdown").exists(),
    }
}

fn replicating(f: &Facts) -> bool {
    f.sync_log && f.daemon_client
}

/// Background samplers of the two invariants; violations with a time.
struct Invariants {
    stop: Arc<AtomicBool>,
    violations: Arc<Mutex<Vec<String>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Invariants {
    fn start() -> Invariants {
        let stop = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(Mutex::new(Vec::new()));
        let (s, v) = (stop.clone(), violations.clone());
        let handle = std::thread::spawn(move || {
            let t0 = Instant::now();
            while !s.load(Ordering::Relaxed) {
                if conf_says_sync_log(Role::Master) && conf_says_sync_log(Role::Replica) {
                    v.lock().unwrap().push(format!(
                        "{:.1}s: both hosts have sync_log on",
                        t0.elapsed().as_secs_f64()
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Invariants {
            stop,
            violations,
            handle: Some(handle),
        }
    }
    fn finish(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        let v = self.violations.lock().unwrap().clone();
        v
    }
}

/// Deliveries that a host accepted while it did not replicate.
fn unreplicated_accepts() -> Arc<Mutex<Vec<String>>> {
    static V: std::sync::OnceLock<Arc<Mutex<Vec<String>>>> = std::sync::OnceLock::new();
    V.get_or_init(|| Arc::new(Mutex::new(Vec::new()))).clone()
}

fn role_name(r: Role) -> &'static str {
    r.name()
}

/// The host a step acts on (whose sshd a drop takes away): the old master
/// until its client is stopped, then the new master; step 9 is local, its
/// end gives the pair lock back on the old master.
fn host_of(step: usize, old: Role, new: Role) -> Role {
    match step {
        1..=5 | 9 => old,
        _ => new,
    }
}

/// The other host of the (one-replica) matrix pair.
fn other(r: Role) -> Role {
    if r == Role::Master {
        Role::Replica
    } else {
        Role::Master
    }
}

/// One case: the failover with `fault` at `step`, then resumed until no run
/// is left; returns the serving host afterwards and a line for the table.
fn run_case(t: &Rehearsal, step: usize, fault: Fault) -> (Role, String) {
    let old = role_of(&t.master());
    let new = other(old);
    let mut cmd = match fault {
        Fault::Abort => t.command(&["failover"]),
        _ => t.command(&["failover", "--yes"]),
    };
    let mut restore: Option<Box<dyn Fn()>> = None;
    match fault {
        Fault::Abort => {}
        Fault::KillBefore => {
            cmd.env("CYRDECK_FAULT", format!("{step}:kill-before"));
        }
        Fault::KillAfter => {
            cmd.env("CYRDECK_FAULT", format!("{step}:kill-after"));
        }
        Fault::SshDrop => {
            let h = host_of(step, old, new);
            // 0.3 s into the step: its connection drops mid-way (the
            // listener and every session of that sshd die). Step 9 is
            // local and quick: its host drops before it, or the run could
            // end before the drop
            lab_down_at_step(&mut cmd, step, &format!("{}-sshd", role_name(h)), step < 9);
            restore = Some(Box::new(move || {
                // a drop still pending must land before the host comes back
                std::thread::sleep(Duration::from_millis(800));
                lab().start_as_left(Component::Sshd(h)).unwrap();
            }));
        }
        Fault::StepFails if step == 9 => {
            let c = t.config.display().to_string();
            cmd.env("CYRDECK_FAULT", "9:exec")
                .env("CYRDECK_FAULT_CMD", format!("mv {c} {c}.away && mkdir {c}"));
            let c2 = t.config.clone();
            restore = Some(Box::new(move || {
                let away = c2.with_extension("toml.away");
                if away.exists() {
                    let _ = std::fs::remove_dir(&c2);
                    std::fs::rename(&away, &c2).unwrap();
                }
            }));
        }
        Fault::ReplicaGone => {
            let down = |what: String| {
                format!(
                    "{} lab down --dir {} --only {what}",
                    bin(),
                    lab_dir().display()
                )
            };
            cmd.env("CYRDECK_FAULT", format!("{step}:exec")).env(
                "CYRDECK_FAULT_CMD",
                format!(
                    "(sleep 0.3; {}; {}) </dev/null >/dev/null 2>&1 &",
                    down(format!("{}-sshd", role_name(new))),
                    down(format!("{}-cyrus", role_name(new)))
                ),
            );
            restore = Some(Box::new(move || {
                std::thread::sleep(Duration::from_millis(800));
                lab().start_as_left(Component::Sshd(new)).unwrap();
                lab().start_as_left(Component::Cyrus(new)).unwrap();
            }));
        }
        Fault::StepFails => {
            // the replica side: the new master's Cyrus stops
            lab_down_at_step(&mut cmd, step, &format!("{}-cyrus", role_name(new)), false);
            restore = Some(Box::new(move || {
                lab().start_as_left(Component::Cyrus(new)).unwrap();
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
        if fault == Fault::Abort {
            // prompts come for steps 2..=9: yes until this one
            for _ in 2..step {
                answers.push_str("y\n");
            }
            answers.push_str("n\n");
        }
        let _ = child.stdin.take().unwrap().write_all(answers.as_bytes());
    }
    let o = child.wait_with_output().unwrap();
    let first = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let code = o.status.code();
    // the case really reached its step and the interruption happened
    match fault {
        Fault::Abort => assert!(
            code == Some(3) && first.contains(&format!("stopped before step {step}")),
            "step {step} {fault:?}: exit {code:?}\n{first}"
        ),
        Fault::KillBefore | Fault::KillAfter => assert!(
            code.is_none() && first.contains("fault injection: SIGKILL"),
            "step {step} {fault:?}: exit {code:?}\n{first}"
        ),
        Fault::SshDrop | Fault::StepFails | Fault::ReplicaGone => assert!(
            first.contains("fault injection: `"),
            "step {step} {fault:?}: exit {code:?}\n{first}"
        ),
    }
    if let Some(r) = &restore {
        r();
    }
    // resume until nothing is left open (an undo cut short, a retry, a lock)
    let resumes = t.resume_until_closed();
    let (_, list) = t.run(&["runbook", "list"]);
    assert!(
        list.contains("no unfinished runbook"),
        "step {step} {fault:?}: still open after resuming:\n{list}\nfirst run:\n{first}\nresumes:\n{}",
        resumes.join("\n----\n")
    );
    // exactly one of the two safe states, the config and the VIP agreeing
    let serving = role_of(&t.master());
    let (s, p) = (facts(serving), facts(other(serving)));
    let ctx = || {
        format!(
            "step {step} {fault:?} (exit {code:?}): serving {serving:?} {s:?}, other {p:?}\nfirst run:\n{first}\nresumes:\n{}",
            resumes.join("\n----\n")
        )
    };
    assert!(replicating(&s) && !s.fenced, "serving host: {}", ctx());
    assert!(
        !p.sync_log && !p.daemon_client && !p.client_running,
        "other host acts as a master: {}",
        ctx()
    );
    let vip = std::fs::read_to_string(&t.target).unwrap_or_default();
    assert_eq!(vip.trim(), role_name(serving), "VIP: {}", ctx());
    for r in [Role::Master, Role::Replica] {
        assert!(
            !lab()
                .layout
                .instance(r)
                .config_dir
                .join("cyrdeck-runbook.lock")
                .exists(),
            "the pair lock is still held on {r:?}: {}",
            ctx()
        );
    }
    let ended = if serving == old {
        "old master"
    } else {
        "new master"
    };
    (
        serving,
        format!(
            "step {step} {fault:?}: exit {code:?}, {} resume(s), {ended} serving",
            resumes.len()
        ),
    )
}

#[test]
fn failover_fault_matrix_leaves_one_master_and_loses_nothing() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("matrix", None);
    let user = format!("fm{}", run_id());
    create_users(std::slice::from_ref(&user));
    t.wait_drained();
    let inv = Invariants::start();
    let bad = unreplicated_accepts();
    let d = Deliverer::start_checked(&user, &t.target, move |host| {
        let r = role_of(host);
        if !(conf_says_sync_log(r) && daemon_entry(r)) {
            bad.lock()
                .unwrap()
                .push(format!("{host} accepted a delivery while not replicating"));
        }
    });
    let mut table = Vec::new();
    let started = Instant::now();
    for (step, fault) in cases() {
        let (_, line) = run_case(&t, step, fault);
        println!("{line}");
        table.push(line);
        // every message accepted so far, on both hosts
        let so_far = d.accepted_so_far();
        assert_on_both_within(&user, &so_far, Duration::from_secs(60));
    }
    let (accepted, refused) = d.finish();
    assert_on_both_within(&user, &accepted, Duration::from_secs(60));
    let violations = inv.finish();
    let unreplicated = unreplicated_accepts().lock().unwrap().clone();
    println!(
        "fault matrix: {} cases in {:.0}s; {} messages accepted (all on both hosts), {refused} refused while writes were stopped",
        table.len(),
        started.elapsed().as_secs_f64(),
        accepted.len()
    );
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(unreplicated.is_empty(), "{unreplicated:#?}");
}

#[test]
fn two_operators_start_a_failover_at_once_and_exactly_one_proceeds() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("race", None);
    t.wait_drained();
    let before = t.master();
    // a second operator: same pair, another state directory (machine)
    let other_state = t.state.with_file_name("state-b");
    std::fs::create_dir_all(&other_state).unwrap();
    let spawn = |state: &std::path::Path| {
        let mut c = t.command(&["failover", "--yes"]);
        c.env("XDG_STATE_HOME", state)
            .env(
                "USER",
                state.file_name().unwrap().to_string_lossy().to_string(),
            )
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let a = spawn(&t.state);
    let b = spawn(&other_state);
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let (ta, tb) = (text(&a), text(&b));
    let codes = (a.status.code(), b.status.code());
    let (winner, loser) = match codes {
        (Some(0), Some(3)) => (&ta, &tb),
        (Some(3), Some(0)) => (&tb, &ta),
        _ => panic!("expected one 0 and one 3, got {codes:?}\nA:\n{ta}\nB:\n{tb}"),
    };
    assert!(winner.contains("canary reached"), "{winner}");
    assert!(loser.contains("pair locked on"), "{loser}");
    assert!(
        loser.contains("failover of pair lab by "),
        "names the holder: {loser}"
    );
    assert!(
        !loser.contains("-- step 2"),
        "the loser wrote nothing: {loser}"
    );
    assert_ne!(t.master(), before, "the roles changed once");
}

/// Defects 13 and 14: a live folder only on the replica fails the dry run
/// with exit 1 in plain words (no Rust debug text); once deleted there, the
/// delayed-delete copy (`DELETED.*`, purged on each host by its own
/// cyr_expire) is reported as its own kind and does not block the failover.
#[test]
fn dry_run_says_no_with_exit_1_and_a_purge_lag_does_not_block() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("dry", None);
    let user = format!("dr{}", run_id());
    create_users(std::slice::from_ref(&user));
    t.wait_drained();
    let folder = format!("user/{user}/OnlyHere");
    let mut admin = login(Role::Replica, "admin");
    admin.create(&folder).expect("create on the replica");
    // whatever happens below, the live replica-only folder must not outlive
    // this test (it would fail every later precheck)
    struct Gone(String);
    impl Drop for Gone {
        fn drop(&mut self) {
            let mut a = login(Role::Replica, "admin");
            let _ = a.command(&format!("SETACL {} admin lrswipkxtecda", self.0));
            let _ = a.command(&format!("DELETE {}", self.0));
            a.logout();
        }
    }
    let _gone = Gone(folder.clone());
    let (code, out) = t.run(&["failover", "--dry-run"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("check NOT clean"), "{out}");
    assert!(out.contains("mailbox_only_on_replica"), "{out}");
    for debug in ["MailboxOnlyOnReplica", "Some((", "(\"127."] {
        assert!(!out.contains(debug), "debug text {debug:?}: {out}");
    }
    assert!(!out.contains("the steps that would run"), "{out}");
    // deleted on the replica: a DELETED.* mailbox there only
    // an admin deletes a user's folder once it grants itself the right
    admin
        .command(&format!("SETACL {folder} admin lrswipkxtecda"))
        .unwrap();
    // command() fails on NO
    admin.command(&format!("DELETE {folder}")).unwrap();
    admin.logout();
    let (code, out) = t.run(&["check", "--json"]);
    assert_eq!(code, 0, "a purge lag is not divergence: {out}");
    assert!(out.contains("deleted_purged_on_one_side"), "{out}");
    let (code, out) = t.run(&["failover", "--dry-run"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
    assert!(out.contains("the steps that would run"), "{out}");
}

/// Defect 9: entries logged on the old master after the final check (an
/// admin session, an EVENTS job) had no client left to carry them. Here the
/// client is paused, a message delivered (its entry queued), and the
/// failover's `replay-leftovers` action run on the real master: the message
/// reaches the replica, the snapshot is gone, the queue is empty.
#[test]
fn leftovers_logged_after_the_drain_are_replayed() {
    use_private_lab(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("leftovers", None);
    let user = format!("lo{}", run_id());
    create_users(std::slice::from_ref(&user));
    t.wait_drained();
    let m = lab().layout.instance(Role::Master);
    let client = format!("sync_client -C {} ", m.imapd_conf.display());
    let signal = |sig: &str| {
        std::process::Command::new("pkill")
            .args([sig, "-f", &client])
            .status()
            .unwrap()
    };
    assert!(signal("-STOP").success(), "the master's client runs");
    struct Cont(String);
    impl Drop for Cont {
        fn drop(&mut self) {
            let _ = std::process::Command::new("pkill")
                .args(["-CONT", "-f", &self.0])
                .status();
        }
    }
    let _cont = Cont(client.clone());
    let id = unique("leftover");
    assert!(deliver_to("master", &user, &id));
    let sync = m.sync_dir();
    let queued = |f: &str| std::fs::read_to_string(sync.join(f)).unwrap_or_default();
    assert!(
        format!("{}{}", queued("log-run"), queued("log")).contains(&user),
        "the delivery is queued"
    );
    let script = include_str!("../src/ops/failover/failover.sh");
    let out = std::process::Command::new("sh")
        .args(["-c", script, "cyrdeck-failover", "replay-leftovers"])
        .arg(&m.imapd_conf)
        .arg(&m.cyrus_conf)
        .arg(&m.config_dir)
        .args([
            "0",
            "",
            "",
            "",
            "0",
            "-",
            "run-lo",
            "own",
            "/usr/lib/cyrus/bin",
        ])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("replayed"), "{said}");
    assert!(said.contains("queue after the replay: 0 entries"), "{said}");
    let on_replica = by_msgid(Role::Replica, &format!("user/{user}"));
    assert!(on_replica.contains_key(&id), "{said}\n{on_replica:?}");
    let left: Vec<_> = std::fs::read_dir(&sync)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("cyrdeck-replay"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
