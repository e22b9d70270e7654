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

#[test]
fn replace_the_only_replica_under_delivery_with_no_gap() {
    use_private_lab_with_spare(LAB_NAME, LAB_PORT);
    let _g = lock();
    assert_eq!(lab().layout.spare_role(), Some(Role::Replica2));
    let t = Rehearsal::new("replace", None);
    let user = format!("rep{}", run_id());
    create_users(std::slice::from_ref(&user));
    t.wait_drained();

    // the dry run: the precheck and the plan, nothing changed
    let conf_before = master_conf();
    let (code, out) = t.run(&["run", "replace-replica", TARGET, "--dry-run"]);
    assert_eq!(code, 0, "{}", failed_first(&out));
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
    assert_eq!(code, 0, "{}", failed_first(&out));
    println!("{out}");
    println!("replace-replica took {took:.1?}");
    assert!(out.contains("checks clean"), "{out}");
    assert!(out.contains("old queue archived"), "{out}");
    // the initial sync's progress bar ends full: every user counted on the
    // master was copied (sync_client -v prints each)
    let bar = out
        .lines()
        .rfind(|l| l.contains(" users ") && l.trim_start().starts_with('['))
        .unwrap_or_else(|| panic!("no progress bar: {out}"));
    let counts = bar
        .split_whitespace()
        .find(|w| w.contains('/') && w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .and_then(|w| w.split_once('/'))
        .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()))
        .unwrap_or_else(|| panic!("no count in {bar:?}"));
    assert!(counts.1 >= 5 && counts.0 >= counts.1, "{bar}");
    assert!(bar.contains("[####################]"), "{bar}");
    std::thread::sleep(Duration::from_secs(2));
    let (accepted, refused, why) = d.finish_explained();
    let (samples, missing) = sampler.finish();
    println!(
        "{} accepted ({refused} refused) during the run; {samples} samples, {} message(s) on no replica",
        accepted.len(),
        missing.len()
    );
    assert!(accepted.len() > 40, "the deliverer hardly ran");
    // a replica change refuses no mail (but for Cyrus's own SIGHUP tempfail)
    assert!(
        only_sighup_tempfails(refused, &why),
        "refused {refused}: {why:#?}"
    );
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
    // never CRITICAL; a WARNING only for the last minute's log (a client
    // ended by this run, or a previous test's connect failures), which
    // reads "recovered" and clears once that minute has passed
    let mut last = (0, String::new());
    let settled = wait_for(Duration::from_secs(75), || {
        last = t.run(&["status"]);
        assert!(!last.1.contains("CRITICAL"), "{}", last.1);
        (last.0 == 0).then_some(())
    });
    let (code, status) = last;
    assert!(settled.is_some(), "exit {code}: {status}");
    assert!(status.contains("channel replica2 -> replica2"), "{status}");
    restore_after_replace(&t);
}

#[test]
#[ignore = "CI time: scripts/matrix.sh (and versions.sh, size.sh) run it"]
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
    // the pair settles as it was (a slow machine may still show the
    // SIGHUP's client restart for a few seconds)
    let mut last = (0, String::new());
    let settled = wait_for(Duration::from_secs(60), || {
        last = t.run(&["status"]);
        (last.0 == 0).then_some(())
    });
    let (code, status) = last;
    assert!(
        settled.is_some() || status.contains("bailed out"),
        "exit {code}: {status}\n{out}"
    );
    assert!(!status.contains("CRITICAL"), "{status}");
    assert!(status.contains("channel default -> replica"), "{status}");
    restore_after_replace(&t);
}

/// Issue 26 (item 7): a NEW that holds mailboxes (a reused old replica,
/// an ex-master) would get `sync_client -A`, which copies its records back
/// to the live master. The precheck refuses it, naming what it holds, and
/// nothing changes on the master; emptied, the same NEW passes.
#[test]
fn a_new_replica_that_holds_mailboxes_is_refused() {
    use_private_lab_with_spare(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("replace-full", None);
    let spare = lab().layout.spare_role().expect("the lab's spare");
    let left = format!("left{}", run_id());
    let mut admin = login(spare, "admin");
    admin.create(&format!("user/{left}")).unwrap();
    admin.logout();
    let conf_before = master_conf();
    let (code, out) = t.run(&["run", "replace-replica", TARGET, "--dry-run"]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(&format!("replica2 already holds mailboxes (user/{left}")),
        "{out}"
    );
    assert_eq!(master_conf(), conf_before, "a refused run changes nothing");
    lab().wipe_host_data(spare).unwrap();
    lab().up().unwrap();
    let (code, out) = t.run(&["run", "replace-replica", TARGET, "--dry-run"]);
    assert_eq!(code, 0, "emptied, the spare passes: {}", failed_first(&out));
}

#[test]
fn killed_after_the_initial_sync_the_run_resumes_to_the_end() {
    use_private_lab_with_spare(LAB_NAME, LAB_PORT);
    let _g = lock();
    let t = Rehearsal::new("replace-kill", None);
    let user = format!("rek{}", run_id());
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
    assert_eq!(code, 0, "{}", failed_first(&out));
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
    restore_after_replace(&t);
}

/// How a case interrupts the run at its step.
#[derive(Clone, Copy, Debug)]
enum Fault {
    KillBefore,
    KillAfter,
    /// The master's sshd stopped just before the step's remote action.
    SshDrop,
    /// The operator answers "no" at the step's prompt.
    Abort,
    /// The OLD replica's host goes away mid-step (its sshd and its Cyrus
    /// together, 0.3 s in), as when a replica is replaced because its host
    /// is dying: nothing of the run needs it, so it goes on to the end.
    OldGone,
}

const ALL_FAULTS: [Fault; 5] = [
    Fault::KillBefore,
    Fault::KillAfter,
    Fault::SshDrop,
    Fault::Abort,
    Fault::OldGone,
];

/// One case, mail delivered throughout: the run interrupted at `step`
/// (1-based), then resumed (kill), resumed after the sshd is back (drop),
/// or left (abort). Returns whether the pair ended replaced (else as before).
fn case(step: usize, fault: Fault) -> bool {
    let t = Rehearsal::new(&format!("rm-{step}-{fault:?}"), None);
    let user = format!("rm{step}{}", format!("{fault:?}").to_lowercase());
    create_users(std::slice::from_ref(&user));
    let d = Deliverer::start(&user, &t.target);
    std::thread::sleep(Duration::from_secs(1));
    let mut first = t.command(&["run", "replace-replica", TARGET]);
    match fault {
        Fault::KillBefore => {
            first.env("CYRDECK_FAULT", format!("{step}:kill-before"));
        }
        Fault::KillAfter => {
            first.env("CYRDECK_FAULT", format!("{step}:kill-after"));
        }
        Fault::SshDrop => {
            let down = format!(
                "{} lab down --dir {} --only master-sshd",
                bin(),
                lab().layout.dir.display()
            );
            first
                .env("CYRDECK_FAULT", format!("{step}:exec"))
                .env("CYRDECK_FAULT_CMD", down);
        }
        Fault::Abort => {}
        Fault::OldGone => {
            let down = |what: &str| {
                format!(
                    "{} lab down --dir {} --only {what}",
                    bin(),
                    lab().layout.dir.display()
                )
            };
            first.env("CYRDECK_FAULT", format!("{step}:exec")).env(
                "CYRDECK_FAULT_CMD",
                format!(
                    "(sleep 0.3; {}; {}) </dev/null >/dev/null 2>&1 &",
                    down("replica-sshd"),
                    down("replica-cyrus")
                ),
            );
        }
    }
    // "y" to every writing step before `step`, then "n" (abort) or "y"
    let answers: String = (2..=5)
        .map(|s| {
            if s == step && matches!(fault, Fault::Abort) {
                "n\n"
            } else {
                "y\n"
            }
        })
        .collect();
    let mut child = first
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(answers.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let mut log = format!("--- first run (exit {:?}):\n{text}", o.status.code());
    match fault {
        Fault::KillBefore | Fault::KillAfter => {
            assert_eq!(o.status.code(), None, "{log}");
            let (code, out) = t.run(&["runbook", "resume", "--yes"]);
            log.push_str(&format!("--- resume (exit {code}):\n{out}"));
            assert_eq!(code, 0, "{log}");
        }
        Fault::SshDrop => {
            assert_ne!(o.status.code(), Some(0), "{log}");
            // only the sshd, as it was: `lab up` would re-render the
            // master's configs and hide what the run left there
            lab()
                .start_as_left(cyrdeck::lab::Component::Sshd(Role::Master))
                .expect("sshd back");
            // a failure before the point of no return was (or is now) undone;
            // past it the step is run again
            let retry = if step >= 5 { vec!["--retry"] } else { vec![] };
            let mut args = vec!["runbook", "resume", "--yes"];
            args.extend(retry);
            let (_, list) = t.run(&["runbook", "list"]);
            if !list.contains("no unfinished runbook") {
                let (code, out) = t.run(&args);
                log.push_str(&format!("--- resume (exit {code}):\n{out}"));
                // 0 finished, 1 its failed step now undone, 3 undone/stopped:
                // the end state below is what counts
                assert!(matches!(code, 0 | 1 | 3), "{log}");
            }
        }
        Fault::Abort => assert_eq!(o.status.code(), Some(3), "{log}"),
        Fault::OldGone => {
            assert_eq!(o.status.code(), Some(0), "{log}");
            let gone = wait_for(Duration::from_secs(10), || {
                lab()
                    .pid(cyrdeck::lab::Component::Sshd(Role::Replica))
                    .is_none()
                    .then_some(())
            });
            assert!(gone.is_some(), "the old replica's host never went:\n{log}");
        }
    }
    let (_, list) = t.run(&["runbook", "list"]);
    assert!(list.contains("no unfinished runbook"), "{list}\n{log}");
    let lock = lab()
        .layout
        .instance(Role::Master)
        .config_dir
        .join("cyrdeck-runbook.lock");
    assert!(!lock.exists(), "the pair lock is still held:\n{log}");
    std::thread::sleep(Duration::from_secs(1));
    let (accepted, refused, why) = d.finish_explained();
    assert!(
        only_sighup_tempfails(refused, &why),
        "refused {refused}: {why:#?}\n{log}"
    );
    // the config and the master agree on where the pair replicates
    let replicas = replicas_in(&t);
    let conf = master_conf();
    let replaced = replicas == vec![("replica2".to_string(), "replica2".to_string())];
    if replaced {
        assert!(
            conf.contains("sync_log_channels: replica2"),
            "{conf}\n{log}"
        );
    } else {
        assert_eq!(
            replicas,
            vec![("replica".to_string(), String::new())],
            "{log}"
        );
        assert!(!conf.contains("sync_log_channels"), "{conf}\n{log}");
        assert!(!conf.contains("replica2_sync"), "{conf}\n{log}");
    }
    // every accepted message on the master and on the pair's replica
    let replica = if replaced {
        Role::Replica2
    } else {
        Role::Replica
    };
    t.wait_drained();
    let mailbox = format!("user/{user}");
    let limit = Instant::now() + Duration::from_secs(60);
    loop {
        let (m, r) = (
            by_msgid(Role::Master, &mailbox),
            by_msgid(replica, &mailbox),
        );
        let missing: Vec<&String> = accepted
            .iter()
            .filter(|id| !m.contains_key(*id) || m.get(*id) != r.get(*id))
            .collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < limit,
            "{} of {} accepted not on master and {}: {missing:?}\n{log}",
            missing.len(),
            accepted.len(),
            replica.name()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    println!(
        "case step {step} {fault:?}: {} accepted, ends {}",
        accepted.len(),
        if replaced { "replaced" } else { "as before" }
    );
    restore_after_replace(&t);
    replaced
}

/// Every writing step (2-5) x {killed before / after its remote action,
/// SSH to the master dropped, operator abort, the old replica's host
/// gone}: 20 cases with
/// CYRDECK_REPLACE_MATRIX=full (scripts/matrix.sh); CI runs one.
#[test]
fn replace_replica_fault_matrix() {
    use_private_lab_with_spare(LAB_NAME, LAB_PORT);
    let _g = lock();
    let full = std::env::var("CYRDECK_REPLACE_MATRIX").is_ok_and(|v| v == "full");
    // one case: CYRDECK_REPLACE_CASE=5:SshDrop
    let one: Option<(usize, Fault)> = std::env::var("CYRDECK_REPLACE_CASE").ok().and_then(|v| {
        let (s, f) = v.split_once(':')?;
        let f = ALL_FAULTS.into_iter().find(|x| format!("{x:?}") == f)?;
        Some((s.parse().ok()?, f))
    });
    let cases: Vec<(usize, Fault)> = if let Some(c) = one {
        vec![c]
    } else if full {
        (2..=5).flat_map(|s| ALL_FAULTS.map(|f| (s, f))).collect()
    } else {
        // the other tests here cover "no" and a kill at step 3 (CI time:
        // two cases; scripts/matrix.sh runs all 20)
        vec![(4, Fault::SshDrop), (3, Fault::OldGone)]
    };
    let started = Instant::now();
    let mut ends = Vec::new();
    for (step, fault) in &cases {
        let replaced = case(*step, *fault);
        // kills go on to the end; an abort, or a drop before the point of
        // no return (step 5), undoes
        let expect = match fault {
            Fault::KillBefore | Fault::KillAfter | Fault::OldGone => true,
            Fault::Abort => false,
            Fault::SshDrop => *step >= 5,
        };
        assert_eq!(replaced, expect, "step {step} {fault:?}");
        ends.push(replaced);
    }
    println!(
        "replace-replica matrix: {} cases in {:.0?}, {} replaced, {} as before, no accepted message lost",
        cases.len(),
        started.elapsed(),
        ends.iter().filter(|r| **r).count(),
        ends.iter().filter(|r| !**r).count()
    );
}
