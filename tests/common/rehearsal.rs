//! What the failover tests and the fault matrix share: a copy of the lab's
//! config with a hook that keeps a "VIP" file naming the serving host, a
//! journal dir of its own, a deliverer sending to the VIP all the time, and
//! the check that every accepted message is on both hosts.

use super::*;
use cyrdeck::config::Config;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::Component;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A config copy + journal dir for one test; the lab restored on drop.
pub struct Rehearsal {
    pub config: PathBuf,
    pub state: PathBuf,
    pub target: PathBuf,
}

impl Rehearsal {
    pub fn new(tag: &str, hook: Option<&str>) -> Rehearsal {
        Self::from_config(tag, hook, &lab().layout.config_file())
    }

    /// A rehearsal on a copy of `source` (the lab's sudo account's config).
    pub fn from_config(tag: &str, hook: Option<&str>, source: &std::path::Path) -> Rehearsal {
        let dir = lab_dir().join(format!("failover-{tag}-{}", super::run_id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        let target = dir.join("target");
        std::fs::write(&target, "master").unwrap();
        let default_hook = format!(
            "case $CYRDECK_PHASE in start-writes) printf %s \"$CYRDECK_NEW_MASTER\" > {t};; undo) printf %s \"$CYRDECK_OLD_MASTER\" > {t};; esac; echo phase $CYRDECK_PHASE",
            t = target.display()
        );
        let hook = hook.map(str::to_string).unwrap_or(default_hook);
        let text = std::fs::read_to_string(source).unwrap();
        let config = dir.join("cyrdeck.toml");
        std::fs::write(
            &config,
            format!("{text}failover_hook = {}\n", toml::Value::String(hook)),
        )
        .unwrap();
        Rehearsal {
            config,
            state: dir.join("state"),
            target,
        }
    }

    pub fn command(&self, args: &[&str]) -> std::process::Command {
        let mut c = std::process::Command::new(bin());
        c.arg("--config")
            .arg(&self.config)
            .args(args)
            .env("XDG_STATE_HOME", &self.state);
        c
    }

    pub fn run(&self, args: &[&str]) -> (i32, String) {
        let out = self.command(args).output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code().unwrap_or(-1), text)
    }

    pub fn master(&self) -> String {
        Config::load(&self.config).unwrap().pairs["lab"]
            .master
            .clone()
    }

    /// The failover's journal: `failover-lab-lab-<config hash>.json`.
    pub fn journal(&self) -> PathBuf {
        let name = cyrdeck::ops::journal::path("failover", "lab", "lab", &self.config);
        self.state
            .join("cyrdeck/journal")
            .join(name.file_name().unwrap())
    }

    /// The finished journals, oldest first.
    pub fn done(&self) -> Vec<serde_json::Value> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.state.join("cyrdeck/journal/done"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v.iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap())
            .collect()
    }

    /// Resume the open run until none is left (`--retry` after a failed
    /// step; an undo cut short; a lock to give back): each resume's output.
    pub fn resume_until_closed(&self) -> Vec<String> {
        let mut resumes = Vec::new();
        for _ in 0..4 {
            let (_, list) = self.run(&["runbook", "list"]);
            if list.contains("no unfinished runbook") {
                break;
            }
            let (_, last) = self.run(&["runbook", "resume", "--yes"]);
            let out = if last.contains("--retry") && !last.contains("resuming") {
                self.run(&["runbook", "resume", "--yes", "--retry"]).1
            } else {
                last
            };
            resumes.push(out);
        }
        resumes
    }

    /// Wait until replication has caught up with now: the master's queue
    /// empty, or (mail keeps arriving, so the queue is seldom empty at the
    /// moment it is sampled) a canary delivered to the master now has
    /// reached the replica: the client works through its log in order, so
    /// everything queued before the canary went first. On a timeout the
    /// panic shows the last status, so a CI failure says why.
    pub fn wait_drained(&self) {
        let pending = |text: &str| -> Option<serde_json::Value> {
            let v: serde_json::Value = serde_json::from_str(text).ok()?;
            Some(v["pairs"][0]["channels"][0]["queue"]["pending"].clone())
        };
        let (_, text) = self.run(&["status", "--json"]);
        if pending(&text) == Some(serde_json::json!(0)) {
            return;
        }
        let master = role_of(&self.master());
        let replica = if master == Role::Master {
            Role::Replica
        } else {
            Role::Master
        };
        // a user of its own: a canary in the heartbeat INBOX would read as a beat
        let user = "cyrdeck-drain";
        let i = lab().layout.instance(master);
        if let Ok(mut admin) =
            cyrdeck::lab::mail::Imap::login(master.address(), i.imap_port, "admin")
        {
            let _ = admin.create(&format!("user/{user}"));
            admin.logout();
        }
        let canary = unique("drain-canary");
        let mut last = text;
        let mut delivered = false;
        let caught_up = wait_for(Duration::from_secs(90), || {
            delivered = delivered || deliver_to(&self.master(), user, &canary);
            if delivered && by_msgid(replica, &format!("user/{user}")).contains_key(&canary) {
                return Some(());
            }
            let (_, text) = self.run(&["status", "--json"]);
            let drained = pending(&text) == Some(serde_json::json!(0));
            last = text;
            drained.then_some(())
        });
        if caught_up.is_none() {
            let (_, human) = self.run(&["status"]);
            panic!(
                "replication did not catch up within 90 s (canary delivered to {}: {delivered}); \
                 last status --json:\n{last}\nstatus:\n{human}",
                master.name()
            );
        }
    }
}

impl Drop for Rehearsal {
    fn drop(&mut self) {
        // configs back from the templates, stale shutdown files removed
        let _ = lab().down(Some(Component::Cyrus(Role::Master)));
        let _ = lab().down(Some(Component::Cyrus(Role::Replica)));
        for name in ["log", "log-run"] {
            let _ =
                std::fs::remove_file(lab().layout.instance(Role::Replica).sync_dir().join(name));
        }
        lab().up().expect("lab up after the failover test");
    }
}

/// The lab role a config host name stands for (the lab names hosts after
/// their roles).
/// `cmd` stops the lab's `what` (`master-sshd`, `replica-cyrus`, ...)
/// just before step `step`'s remote action (`CYRDECK_FAULT=STEP:exec`);
/// `mid_step`: 0.3 s later, in the background, so the step's own
/// connection drops mid-way.
pub fn lab_down_at_step(cmd: &mut std::process::Command, step: usize, what: &str, mid_step: bool) {
    let down = format!(
        "{} lab down --dir {} --only {what}",
        super::bin(),
        super::lab_dir().display()
    );
    let line = if mid_step {
        format!("(sleep 0.3; {down}) </dev/null >/dev/null 2>&1 &")
    } else {
        down
    };
    cmd.env("CYRDECK_FAULT", format!("{step}:exec"))
        .env("CYRDECK_FAULT_CMD", line);
}

pub fn role_of(host: &str) -> Role {
    [Role::Master, Role::Replica, Role::Replica2, Role::Replica3]
        .into_iter()
        .find(|r| r.name() == host)
        .unwrap_or(Role::Replica)
}

pub fn deliver_to(host: &str, user: &str, msgid: &str) -> bool {
    deliver_explained(host, user, msgid).is_ok()
}

/// One LMTP delivery; why it was refused (the server's reply or the
/// connection error) when it was.
pub fn deliver_explained(host: &str, user: &str, msgid: &str) -> Result<(), String> {
    let role = role_of(host);
    let i = lab().layout.instance(role);
    cyrdeck::lab::mail::lmtp_deliver(
        role.address(),
        i.lmtp_port,
        &[user],
        &cyrdeck::lab::mail::message(msgid, "failover", "body"),
    )
    .map_err(|e| format!("{host}: {e:#}"))
}

/// Message-ID -> GUID of a mailbox on one host (mbexamine: the envelope's
/// last string is the Message-ID).
pub fn by_msgid(role: Role, mailbox: &str) -> BTreeMap<String, String> {
    let text = mbexamine(role, mailbox);
    let mut m = BTreeMap::new();
    let mut guid = None;
    for l in text.lines() {
        if let Some(i) = l.find("GUID:") {
            guid = l[i + 5..].split_whitespace().next().map(str::to_string);
        }
        if l.trim_start().starts_with("Envel>") {
            let id = l
                .rsplit_once("\"<")
                .and_then(|(_, r)| r.split_once(">\""))
                .map(|(id, _)| id);
            if let (Some(id), Some(g)) = (id, guid.take()) {
                m.insert(id.to_string(), g);
            }
        }
    }
    m
}

/// Every accepted Message-ID reaches both hosts with one GUID within
/// `limit` (replication is asynchronous: the last ones may be in flight).
pub fn assert_on_both_within(user: &str, accepted: &[String], limit: Duration) {
    let mailbox = format!("user/{user}");
    let started = std::time::Instant::now();
    loop {
        let (m, r) = (
            by_msgid(Role::Master, &mailbox),
            by_msgid(Role::Replica, &mailbox),
        );
        let all = accepted
            .iter()
            .all(|id| m.contains_key(id) && m.get(id) == r.get(id));
        if all || started.elapsed() > limit {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_on_both(user, accepted)
}

/// Every accepted Message-ID is on both hosts with one GUID.
pub fn assert_on_both(user: &str, accepted: &[String]) {
    let mailbox = format!("user/{user}");
    let (m, r) = (
        by_msgid(Role::Master, &mailbox),
        by_msgid(Role::Replica, &mailbox),
    );
    for id in accepted {
        let (gm, gr) = (m.get(id), r.get(id));
        assert!(
            gm.is_some(),
            "accepted {id} missing on master ({} there)",
            m.len()
        );
        assert_eq!(gm, gr, "accepted {id}: master {gm:?} replica {gr:?}");
    }
}

/// Delivers to the host the hook names (the "VIP") every 50 ms and keeps
/// the Message-IDs the server accepted (LMTP 250).
pub struct Deliverer {
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<String>>>,
    refused: Arc<Mutex<u64>>,
    /// the first refusals' reasons, for a failing test's message
    reasons: Arc<Mutex<Vec<String>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Deliverer {
    pub fn start(user: &str, target: &Path) -> Deliverer {
        Deliverer::start_checked(user, target, |_| {})
    }

    /// start, calling `accepted_by(host)` right after each accepted delivery
    /// (the fault matrix checks that host replicates at that moment).
    pub fn start_checked(
        user: &str,
        target: &Path,
        accepted_by: impl Fn(&str) + Send + 'static,
    ) -> Deliverer {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let refused = Arc::new(Mutex::new(0));
        let reasons = Arc::new(Mutex::new(Vec::new()));
        let (s, a, r, why, u, t) = (
            stop.clone(),
            accepted.clone(),
            refused.clone(),
            reasons.clone(),
            user.to_string(),
            target.to_path_buf(),
        );
        let started = std::time::Instant::now();
        let handle = std::thread::spawn(move || {
            let mut i = 0;
            while !s.load(Ordering::Relaxed) {
                let host = std::fs::read_to_string(&t).unwrap_or_default();
                let id = unique(&format!("fo{i}"));
                match deliver_explained(host.trim(), &u, &id) {
                    Ok(()) => {
                        accepted_by(host.trim());
                        a.lock().unwrap().push(id);
                    }
                    Err(e) => {
                        *r.lock().unwrap() += 1;
                        let mut why = why.lock().unwrap();
                        if why.len() < 10 {
                            why.push(format!("{:.1}s {id}: {e}", started.elapsed().as_secs_f64()));
                        }
                    }
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Deliverer {
            stop,
            accepted,
            refused,
            reasons,
            handle: Some(handle),
        }
    }

    /// The live list of accepted Message-IDs (for a sampling thread).
    pub fn accepted_handle(&self) -> Arc<Mutex<Vec<String>>> {
        self.accepted.clone()
    }

    /// The Message-IDs accepted until now.
    pub fn accepted_so_far(&self) -> Vec<String> {
        self.accepted.lock().unwrap().clone()
    }

    pub fn finish(self) -> (Vec<String>, u64) {
        let (a, r, _) = self.finish_explained();
        (a, r)
    }

    /// finish, with the first refusals' reasons (time since start, id, why).
    pub fn finish_explained(mut self) -> (Vec<String>, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.join().unwrap();
        }
        let a = self.accepted.lock().unwrap().clone();
        let r = *self.refused.lock().unwrap();
        let why = self.reasons.lock().unwrap().clone();
        (a, r, why)
    }
}

impl Drop for Deliverer {
    /// A test that fails mid-way must not leave it delivering forever.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// True when every refusal was a `421` (a temporary failure: the MTA keeps
/// the message and retries) and there were few. Measured on Cyrus 3.6: a
/// SIGHUP to the Cyrus master, which every channel change sends, is passed
/// to each service child, and an lmtpd in the middle of a session answers
/// `421 4.4.1 bye Interrupted system call` (1 in ~40 SIGHUPs under a
/// delivery every 20 ms). Nothing accepted is lost; a 5xx or a refused
/// connection still fails the test.
pub fn only_sighup_tempfails(refused: u64, why: &[String]) -> bool {
    refused <= 3 && why.len() as u64 == refused && why.iter().all(|w| w.contains(": 421 "))
}

pub fn figure(out: &str, what: &str) -> Option<f64> {
    let i = out.find(what)? + what.len();
    out[i..].split('s').next()?.trim().parse().ok()
}

/// The lab as `lab up` makes it again (the master's channels from the
/// templates), its Cyrus restarted to read them; no pair lock left.
pub fn restore_after_replace(t: &Rehearsal) {
    restore_after_replace_of(t, &[])
}

/// [`restore_after_replace`] when only `users` changed since OLD's channel
/// was retired: they are synced to it (`-u`), not the whole site (on the
/// site profile a full pass on 3.6 trips over what other tests left: a
/// delayed-delete copy of a shared folder, cyrus-imapd #4611's assertion).
pub fn restore_after_replace_of(t: &Rehearsal, users: &[&str]) {
    let _ = t.run(&["runbook", "unlock", "--pair", "lab", "--yes"]);
    let _ = lab().down(Some(cyrdeck::lab::Component::Cyrus(Role::Master)));
    // the spare was the new replica: the next rehearsal needs it empty
    // (replace-replica refuses a NEW that holds mailboxes)
    if let Some(spare) = lab().layout.spare_role() {
        lab().wipe_host_data(spare).expect("wipe the spare");
    }
    lab().up().expect("lab up");
    // the old replica missed what came after its channel was retired: one
    // full pass brings it back (the master's own sync_client, in its
    // namespace: its log lines go to the lab's syslog)
    let conf = lab().layout.instance(Role::Master).imapd_conf;
    let mut c = lab().in_namespace(Role::Master, "timeout");
    c.arg("300")
        .arg(format!("{}/sync_client", cyrdeck::lab::CYRUS_BIN))
        .arg("-C")
        .arg(&conf);
    if users.is_empty() {
        c.arg("-A");
    } else {
        c.arg("-u").args(users);
    }
    let ok = c.status().is_ok_and(|s| s.success());
    assert!(ok, "sync_client after the restore ({users:?})");
}
