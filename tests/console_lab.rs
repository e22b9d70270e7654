//! The console binary in tmux against the real lab: what the operator sees
//! (capture-pane), and what the hosts received (the lab sshd's recording
//! ForceCommand), never the console's own word.

mod common;

use base64::Engine as _;
use common::tmux::Tmux;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The lab config, but authenticating with the lab's observer key, so the
/// command logs can tell this test's sessions from everything else.
fn observer_config() -> (PathBuf, String) {
    let l = &lab().layout;
    let text = std::fs::read_to_string(l.config_file()).unwrap();
    let op = l.operator_key().display().to_string();
    let ob = l.observer_key().display().to_string();
    assert!(text.contains(&op));
    let path = l.dir.join("observer.toml");
    std::fs::write(&path, text.replace(&op, &ob)).unwrap();
    let public = std::fs::read_to_string(l.observer_key().with_extension("pub")).unwrap();
    let key: Vec<&str> = public.split_whitespace().take(2).collect();
    (path, key.join(" "))
}

/// Commands the observer key ran on a host since `offset` of its log.
fn recorded(log: &Path, offset: u64, key: &str) -> Vec<String> {
    let data = std::fs::read(log).unwrap_or_default();
    let data = &data[(offset as usize).min(data.len())..];
    String::from_utf8_lossy(data)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(3, '\t').collect();
            (f.len() == 3 && f[1] == key).then(|| {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(f[2])
                    .unwrap_or_default();
                String::from_utf8_lossy(&raw).into_owned()
            })
        })
        .collect()
}

fn log_sizes() -> Vec<(PathBuf, u64)> {
    use cyrdeck::lab::layout::Role;
    Role::ALL
        .iter()
        .map(|r| {
            let p = lab().layout.instance(*r).command_log();
            let n = std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
            (p, n)
        })
        .collect()
}

/// Read-only commands the console sends: the probe, and mbexamine.
fn is_read_only(cmd: &str) -> bool {
    let probe = cmd.contains("sh -c '# cyrdeck probe:") && cmd.contains("cyrdeck-probe ");
    let mbexamine = cmd.contains("/mbexamine -C ");
    let inventory = cmd.contains("perl -e '# cyrdeck inventory: READ-ONLY.");
    let doctor = cmd.contains("@@doctor 1") && cmd.contains("conf-all");
    // doctor times a trivial command (slow_session_start): exactly `true`
    let timing = cmd
        .strip_prefix("timeout -k 2 ")
        .and_then(|r| r.split_once(' '))
        .is_some_and(|(secs, rest)| secs.parse::<f64>().is_ok() && rest == "true");
    // the runbooks' small read scripts (sed/cat/awk/grep/tail/wc)
    let reader = cmd.contains("' cyrdeck-read ")
        && ![
            "mv ",
            "rm ",
            "chown",
            "chmod",
            "cyr_synclog",
            "sync_client",
            ">>",
        ]
        .iter()
        .any(|w| cmd.contains(w));
    probe || mbexamine || inventory || doctor || timing || reader
}

#[test]
fn queue_view_shows_entries_appear_and_drain_on_screen() {
    let _g = lock();
    let cfg = lab().layout.config_file().display().to_string();
    let t = Tmux::start(&["--config", &cfg], 120, 36);
    t.wait_for("the first refresh", Duration::from_secs(30), |s| {
        s.contains("updated")
    });
    // the doctor panel (read at start) and the heartbeat the console writes
    t.wait_for("the doctor panel", Duration::from_secs(30), |s| {
        s.contains("config: no replication anti-patterns")
    });
    t.wait_for("the measured lag", Duration::from_secs(30), |s| {
        s.contains("(hb ")
    });
    t.keys(&["2"]);
    t.wait_for("the Queue view", Duration::from_secs(5), |s| {
        s.contains("Queue:")
    });
    let paused = Paused::new();
    for i in 0..5 {
        deliver("dave", &unique(&format!("tmux{i}")));
    }
    let s = t.wait_for("dave's pending entries", Duration::from_secs(30), |s| {
        s.lines()
            .any(|l| l.contains("dave") && l.contains("user/dave"))
    });
    assert!(!s.contains("Queue: 0 pending"), "{s}");
    drop(paused);
    t.wait_for("the queue drained", Duration::from_secs(60), |s| {
        s.contains("Queue empty") && s.contains("Queue: 0 pending")
    });
    // the integrity check from the console, against the same pair
    t.keys(&["4", "c"]);
    t.wait_for("the check's result", Duration::from_secs(60), |s| {
        s.contains("Conflicts: pair lab checked")
    });
    t.keys(&["q"]);
    t.wait_for(
        "the console to exit and restore the terminal",
        Duration::from_secs(10),
        |s| !s.contains("Queue:"),
    );
}

#[test]
fn observe_mode_sends_no_mutating_command_through_every_view_and_runbook() {
    let _g = lock();
    let diverged = flagged_on_replica_only();
    let (cfg, key) = observer_config();
    let before = log_sizes();
    observe_tour(&cfg, &diverged);
    // what the hosts received from this session
    let mut all = Vec::new();
    for (log, offset) in before {
        all.extend(recorded(&log, offset, &key));
    }
    assert!(
        all.iter().filter(|c| c.contains("cyrdeck probe")).count() >= 4,
        "the console probed too little (is the lab sshd older than its recorder? run lab down): {} commands",
        all.len()
    );
    assert!(
        all.iter().any(|c| c.contains("/mbexamine")),
        "the runbook's first step ran no mbexamine"
    );
    let mutating: Vec<&String> = all.iter().filter(|c| !is_read_only(c)).collect();
    assert!(mutating.is_empty(), "observe mode sent: {mutating:#?}");
    // leave the pair as found
    let out = Command::new(bin())
        .arg("--config")
        .arg(lab().layout.config_file())
        .args(["repair", "--user", &diverged, "--yes"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Every view with its keys, the check, and every runbook up to its first
/// write (refused: observe mode), through the console with `cfg`.
fn observe_tour(cfg: &Path, diverged: &str) {
    let cfg = cfg.display().to_string();
    let t = Tmux::start(&["--observe", "--config", &cfg], 120, 40);
    let s = t.wait_for("the first refresh", Duration::from_secs(30), |s| {
        s.contains("updated")
    });
    assert!(s.contains(" RO "), "no RO badge:\n{s}");
    // every view, with its keys
    for view in ["1", "2", "3", "4", "5", "6"] {
        t.keys(&[view, "j", "k", "G", "g", "g", "?"]);
        t.keys(&["Escape"]);
        t.keys(&["/"]);
        t.text("a");
        t.keys(&["Enter", "Enter", "Escape", "C-r"]);
    }
    t.keys(&["5", "s", "h", "h", "h", "s"]);
    // the integrity check (read-only) runs in observe mode too
    t.keys(&["4", "c"]);
    t.wait_for("the check's result", Duration::from_secs(60), |s| {
        s.contains("Conflicts: pair lab checked")
    });
    // every runbook's first step (and an attempt at the mutating second)
    t.keys(&["6", "Enter"]);
    t.text("user/alice");
    t.keys(&["Enter"]);
    t.wait_for("the runbook", Duration::from_secs(5), |s| {
        s.contains("resync user/alice on lab")
    });
    t.keys(&["Enter"]);
    t.wait_for("step 1 done", Duration::from_secs(30), |s| {
        s.contains("1. done")
    });
    t.keys(&["Enter"]);
    let s = t.wait_for("step 2 refused", Duration::from_secs(30), |s| {
        s.contains("2. refused")
    });
    assert!(s.contains("observe mode"), "{s}");
    // the repair runbook on a user that needs one: its plan runs, the
    // first step that would write is refused
    t.keys(&[":"]);
    t.text(&format!("repair {diverged}"));
    t.keys(&["Enter"]);
    t.wait_for("the repair runbook", Duration::from_secs(5), |s| {
        s.contains(&format!("repair {diverged} on lab"))
    });
    t.keys(&["Enter"]);
    let s = t.wait_for("the plan", Duration::from_secs(60), |s| {
        s.contains("1. done")
    });
    assert!(s.contains("flags of the side changed last win"), "{s}");
    // the first writing step is refused before anything is sent (even
    // the pair lock is a write), however little it would have done
    t.keys(&["Enter"]);
    let s = t.wait_for("step 2 refused", Duration::from_secs(30), |s| {
        s.contains("2. refused")
    });
    assert!(s.contains("observe mode"), "{s}");
    assert!(s.contains("3. aborted") || s.contains("3. pending"), "{s}");
    // quarantine: the evidence is read, the move is refused
    t.keys(&[":"]);
    t.text(&format!("quarantine {diverged}"));
    t.keys(&["Enter", "Enter"]);
    t.wait_for("the evidence", Duration::from_secs(30), |s| {
        s.contains(&format!("quarantine {diverged} on lab")) && s.contains("1. done")
    });
    t.keys(&["Enter"]);
    t.wait_for("quarantine refused", Duration::from_secs(30), |s| {
        s.contains("2. refused")
    });
    // release: its diagnosis reads (and finds nothing held)
    t.keys(&[":"]);
    t.text(&format!("release {diverged}"));
    t.keys(&["Enter", "Enter"]);
    t.wait_for("the diagnosis", Duration::from_secs(30), |s| {
        s.contains(&format!("release {diverged} on lab")) && s.contains("nothing to release")
    });
    // restart: its precheck reads (the client runs: nothing to restart)
    t.keys(&[":"]);
    t.text("restart default");
    t.keys(&["Enter", "Enter"]);
    t.wait_for("the precheck", Duration::from_secs(30), |s| {
        s.contains("restart default on lab") && s.contains("nothing to restart")
    });
    t.keys(&["q"]);
    std::thread::sleep(Duration::from_secs(1));
}

/// A fresh user whose one message is \Flagged on the replica only.
fn flagged_on_replica_only() -> String {
    use cyrdeck::lab::layout::Role;
    use cyrdeck::lab::mail::Imap;
    // one fresh user per call (two tests of this binary diverge one each)
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let user = format!("obs{}x{n}", run_id());
    let login = |role: Role, u: &str| {
        let i = lab().layout.instance(role);
        Imap::login(role.address(), i.imap_port, u).unwrap()
    };
    let mut admin = login(Role::Master, "admin");
    admin.create(&format!("user/{user}")).unwrap();
    admin.logout();
    deliver(&user, &unique("observe"));
    wait_for(Duration::from_secs(60), || {
        let (_, v) = status_json();
        (v["pairs"][0]["channels"][0]["queue"]["pending"] == 0).then_some(())
    })
    .expect("queue drained");
    let mut r = login(Role::Replica, &user);
    r.command("SELECT INBOX").unwrap();
    r.command("UID STORE 1 +FLAGS (\\Flagged)").unwrap();
    r.logout();
    user
}

/// The control for the test above (the recorder does see mutations), and
/// the resync runbook repairing a real difference.
#[test]
fn resync_runbook_pushes_a_mailbox_the_rolling_client_has_not() {
    let _g = lock();
    let (cfg, key) = observer_config();
    let before = log_sizes();
    let paused = Paused::new();
    deliver("bob", &unique("resync"));
    let cfg = cfg.display().to_string();
    let t = Tmux::start(&["--config", &cfg], 120, 40);
    t.wait_for("the first refresh", Duration::from_secs(30), |s| {
        s.contains("updated")
    });
    t.keys(&[":"]);
    t.text("resync user/bob");
    t.keys(&["Enter", "Enter"]);
    let s = t.wait_for("step 1", Duration::from_secs(30), |s| s.contains("1. done"));
    assert!(s.contains("differs") && s.contains("1 missing"), "{s}");
    t.keys(&["Enter"]);
    t.wait_for("step 2", Duration::from_secs(60), |s| s.contains("2. done"));
    t.keys(&["Enter"]);
    let s = t.wait_for("step 3", Duration::from_secs(30), |s| {
        s.contains("3. done") || s.contains("FAILED")
    });
    assert!(s.contains("3. done") && s.contains("identical"), "{s}");
    drop(paused);
    t.keys(&["q"]);
    let mut all = Vec::new();
    for (log, offset) in before {
        all.extend(recorded(&log, offset, &key));
    }
    let pushes: Vec<&String> = all.iter().filter(|c| c.contains("/sync_client")).collect();
    assert_eq!(pushes.len(), 1, "{pushes:#?}");
    assert!(pushes[0].contains(" -m user/bob"), "{}", pushes[0]);
    assert!(!is_read_only(pushes[0]));
    // and the audit log has it
    let audit = std::fs::read_to_string(lab().layout.audit_log()).unwrap();
    assert!(
        audit
            .lines()
            .any(|l| l.contains("\"runbook\":\"resync\"") && l.contains("user/bob")),
        "{audit}"
    );
}

fn descendants(pid: i32) -> Vec<i32> {
    let mut all = vec![pid];
    let mut i = 0;
    while i < all.len() {
        all.extend(cyrdeck::lab::process::children(all[i]));
        i += 1;
    }
    all
}

/// A host's sshd and its sessions stopped (SIGSTOP: TCP open, nothing
/// answers) until the returned guard is dropped.
struct Thaw(Vec<i32>);

impl Drop for Thaw {
    fn drop(&mut self) {
        for p in &self.0 {
            cyrdeck::lab::process::send(*p, libc::SIGCONT);
        }
    }
}

fn freeze_sshd(role: cyrdeck::lab::layout::Role) -> Thaw {
    let sshd = lab()
        .pid(cyrdeck::lab::Component::Sshd(role))
        .expect("the host's sshd");
    let frozen = descendants(sshd);
    for p in &frozen {
        cyrdeck::lab::process::send(*p, libc::SIGSTOP);
    }
    Thaw(frozen)
}

/// A hung SSH call (the replica's sshd and its sessions frozen: TCP open,
/// nothing answers) never freezes the screen: keys act at once, the data
/// shows its growing age, the host turns UNREACHABLE, then recovers.
#[test]
fn a_hung_host_never_freezes_the_screen() {
    use cyrdeck::lab::layout::Role;
    let _g = lock();
    let cfg = lab().layout.config_file().display().to_string();
    let t = Tmux::start(&["--config", &cfg], 120, 36);
    t.wait_for("the first refresh", Duration::from_secs(30), |s| {
        s.contains("updated") && s.contains(" replica replica   up")
    });
    let thaw = freeze_sshd(Role::Replica);
    // keys act while a refresh hangs
    for (key, shows) in [("5", "Log:"), ("2", "Queue:"), ("1", "pair lab")] {
        let t0 = Instant::now();
        t.keys(&[key]);
        t.wait_for(shows, Duration::from_secs(2), |s| s.contains(shows));
        assert!(t0.elapsed() < Duration::from_secs(2));
    }
    // the report stays fresh (a refresh waits one interval at most for a
    // host): the replica's own data is what ages
    t.wait_for(
        "the replica's data age growing",
        Duration::from_secs(15),
        |s| {
            s.lines().any(|l| {
                l.contains(" replica replica")
                    && (4..=30).any(|n| l.contains(&format!("data {n}s old")))
            })
        },
    );
    t.keys(&["3", "1"]);
    t.wait_for("the replica unreachable", Duration::from_secs(40), |s| {
        s.contains("UNREACHABLE")
    });
    drop(thaw);
    t.wait_for("the replica back", Duration::from_secs(60), |s| {
        s.contains(" replica replica   up") && !s.contains("UNREACHABLE")
    });
    t.keys(&["q"]);
}

/// A master whose sshd hangs from the console's start: nothing is known of
/// its queue or client, and the channel says so instead of `pending 0`,
/// `lag 0s` and `NO CLIENT` (issue 30, item 8: red before).
#[test]
fn a_master_that_never_answered_is_unknown_not_zeros() {
    use cyrdeck::lab::layout::Role;
    let _g = lock();
    let cfg = lab().layout.config_file().display().to_string();
    let thaw = freeze_sshd(Role::Master);
    let t = Tmux::start(&["--config", &cfg], 80, 24);
    let s = t.wait_for("the first refresh", Duration::from_secs(30), |s| {
        s.contains("updated") && s.contains("channel default")
    });
    let channel: Vec<&str> = s
        .lines()
        .skip_while(|l| !l.contains("channel default"))
        .take(2)
        .collect();
    let channel = channel.join("\n");
    assert!(channel.contains("UNKNOWN"), "{s}");
    assert!(
        !channel.contains("NO CLIENT") && !channel.contains("pending 0"),
        "zeros for a host that never answered: {s}"
    );
    t.keys(&["q"]);
    drop(thaw);
}

/// SIGTERM leaves the terminal restored (alternate screen off).
#[test]
fn sigterm_restores_the_terminal() {
    let cfg = lab().layout.config_file().display().to_string();
    let t = Tmux::start(&["--config", &cfg], 100, 30);
    t.wait_for("the console", Duration::from_secs(30), |s| {
        s.contains("1 Overview")
    });
    let alt = |t: &Tmux| {
        let out = Command::new("tmux")
            .args(["display-message", "-p", "-t", &t.name, "#{alternate_on}"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(alt(&t), "1", "the console runs on the alternate screen");
    let out = Command::new("tmux")
        .args(["display-message", "-p", "-t", &t.name, "#{pane_pid}"])
        .output()
        .unwrap();
    let shell: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let console = cyrdeck::lab::process::children(shell);
    assert_eq!(console.len(), 1, "{console:?}");
    cyrdeck::lab::process::send(console[0], libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while alt(&t) != "0" {
        assert!(
            Instant::now() < deadline,
            "terminal not restored after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The read-only sudo account: the whole observe tour goes through the
/// read-only rules (the sshd recorder and sudo's own log say so); the same
/// account without --observe cannot write, and the error names the rule it
/// lacks; the writing account repairs what the tour found.
#[test]
fn least_privilege_accounts_observe_through_read_rules_and_repair_through_write_rules() {
    use common::sudo_log;
    let _g = lock();
    let l = &lab().layout;
    let diverged = flagged_on_replica_only();
    let ro_cfg = l.observer_sudo_config_file();
    let public = std::fs::read_to_string(l.readonly_key().with_extension("pub")).unwrap();
    let ro_key: Vec<&str> = public.split_whitespace().take(2).collect();
    let ro_key = ro_key.join(" ");
    let helpers = l.helper_dir().display().to_string();
    let before = log_sizes();
    let sudo_before = sudo_log::offsets();
    observe_tour(&ro_cfg, &diverged);
    let (code, out) = cli_config(&ro_cfg, &["--observe", "doctor"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = cli_config(&ro_cfg, &["--observe", "check"]);
    // the tour's flagged message is a real difference: exit 1, found
    assert_eq!(code, 1, "{out}");
    assert!(out.contains(&diverged), "{out}");

    // what the hosts received from the read-only account: each command
    // an installed read helper (or mbexamine) through sudo as cyrus
    let mut sent = Vec::new();
    for (log, offset) in &before {
        sent.extend(recorded(log, *offset, &ro_key));
    }
    assert!(sent.len() >= 10, "too few commands: {sent:#?}");
    let read_helpers = ["probe", "doctor", "inventory", "stuck-read", "reach"];
    for c in &sent {
        let via = c
            .split_once(" sudo -n -u cyrus -- ")
            .map(|(_, cmd)| cmd)
            .unwrap_or_else(|| panic!("not through sudo as cyrus: {c}"));
        let allowed = read_helpers
            .iter()
            .any(|h| via.starts_with(&format!("{helpers}/{h} ")))
            || via.starts_with("/usr/lib/cyrus/bin/mbexamine -C ")
            || via.starts_with(&format!("{helpers}/pair-lock cyrdeck-lock read "));
        assert!(allowed, "not a read-only helper: {via}");
        assert!(!c.contains("sh -c"), "{c}");
    }
    let entries: Vec<_> = sudo_log::since(&sudo_before)
        .into_iter()
        .filter(|e| e.account == cyrdeck::lab::accounts::OBSERVER)
        .collect();
    assert_eq!(
        entries.len(),
        sent.len(),
        "sudo logged another number of commands than sshd ran"
    );
    let refused: Vec<_> = entries.iter().filter(|e| e.refused.is_some()).collect();
    assert!(
        refused.is_empty(),
        "sudo refused during the tour: {refused:#?}"
    );
    assert!(entries.iter().all(|e| e.run_as == "cyrus"));

    // without --observe the account still cannot write: sudo refuses the
    // first write (the pair lock) and the error names the missing rule
    let (code, out) = cli_config(&ro_cfg, &["repair", "--user", &diverged, "--yes"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("sudo refused"), "{out}");
    let rule = format!(
        "cyrdeck-ro ALL=(cyrus) NOPASSWD: {helpers}/pair-lock cyrdeck-lock acquire {} *",
        lab()
            .layout
            .instance(cyrdeck::lab::layout::Role::Master)
            .imapd_conf
            .display()
    );
    assert!(out.contains(&rule), "the rule is not named: {out}");

    // the writing account repairs it through the writing rules
    let sudo_before = sudo_log::offsets();
    let (code, out) = cli_config(
        &l.sudo_config_file(),
        &["repair", "--user", &diverged, "--yes"],
    );
    assert_eq!(code, 0, "{out}");
    let entries = sudo_log::since(&sudo_before);
    assert!(
        entries
            .iter()
            .all(|e| e.refused.is_none() && e.account == cyrdeck::lab::accounts::WRITER),
        "{entries:#?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e.command.starts_with("/usr/lib/cyrus/bin/sync_client -C ")),
        "the repair ran no sync_client through sudo: {entries:#?}"
    );
    let (code, out) = cli(&["check", "--user", &diverged]);
    assert_eq!(code, 0, "{out}");
}
