//! The failover's remote script run locally on scratch copies of
//! imapd.conf and cyrus.conf (no Cyrus needed): what it writes, that running
//! an action twice changes nothing more (a resumed runbook does that), and
//! that it never signals a process that is not Cyrus master.

use std::path::PathBuf;
use std::process::Command;

const SCRIPT: &str = include_str!("../src/ops/failover/failover.sh");

struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new(tag: &str, imapd: &str, cyrus: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("cyrdeck-fs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("config/sync")).unwrap();
        std::fs::write(dir.join("imapd.conf"), imapd).unwrap();
        std::fs::write(dir.join("cyrus.conf"), cyrus).unwrap();
        Scratch { dir }
    }

    /// Run ACTION with `pid` as "Cyrus master": (exit code, stderr).
    fn run(&self, action: &str, channel: &str, pid: u32) -> (i32, String) {
        self.run_as(action, channel, pid, "run1", "own")
    }

    /// Run ACTION for run `run_id` in fence MODE.
    fn run_as(
        &self,
        action: &str,
        channel: &str,
        pid: u32,
        run_id: &str,
        mode: &str,
    ) -> (i32, String) {
        let conf = self.dir.join("imapd.conf");
        let out = Command::new("sh")
            .args(["-c", SCRIPT, "cyrdeck-failover", action])
            .arg(&conf)
            .arg(self.dir.join("cyrus.conf"))
            .arg(self.dir.join("config"))
            .arg(pid.to_string())
            .arg(self.dir.join("config/sync/shutdown"))
            .arg(channel)
            .args(["10.0.0.1", "2005"])
            .arg(if channel.is_empty() {
                format!("sync_client -C {} -R", conf.display())
            } else {
                format!("sync_client -C {} -R -n {channel}", conf.display())
            })
            .args([run_id, mode, "/nonexistent/bin"])
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn read(&self, f: &str) -> String {
        std::fs::read_to_string(self.dir.join(f)).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A process that is certainly not Cyrus master.
fn not_master() -> (std::process::Child, u32) {
    let c = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = c.id();
    (c, pid)
}

const MASTER_CYRUS: &str = "START {\n  recover cmd=\"ctl_cyrusdb -r\"\n}\nSERVICES {\n  imap cmd=\"imapd\" listen=\"imap\"\n}\nDAEMON {\n  syncclient cmd=\"sync_client -R\"\n  #syncold cmd=\"sync_client -r -n repl\"\n}\n";

#[test]
fn stop_client_comments_out_only_the_channels_client_and_is_idempotent() {
    let s = Scratch::new(
        "stop",
        "configdirectory: /x\n  SYNC_LOG : 1\nsync_host: r\n",
        MASTER_CYRUS,
    );
    let (mut c, pid) = not_master();
    let (code, err) = s.run("stop-client", "", pid);
    // the files are changed, but the signal is refused: not Cyrus master
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("is not Cyrus master"), "{err}");
    let cyrus = s.read("cyrus.conf");
    assert!(
        cyrus.contains("#cyrdeck-failover#   syncclient cmd=\"sync_client -R\""),
        "{cyrus}"
    );
    assert!(
        cyrus.contains("\n  #syncold cmd="),
        "a comment was touched: {cyrus}"
    );
    let imapd = s.read("imapd.conf");
    // the key, whatever its case and indentation, is there exactly once
    assert_eq!(
        imapd.to_lowercase().matches("sync_log").count(),
        1,
        "{imapd}"
    );
    assert!(imapd.contains("sync_log: 0"), "{imapd}");
    assert!(s.dir.join("config/sync/shutdown").exists());
    assert!(s.dir.join("imapd.conf.cyrdeck-orig").exists());
    let (first_cyrus, first_imapd) = (cyrus, imapd);
    s.run("stop-client", "", pid);
    assert_eq!(s.read("cyrus.conf"), first_cyrus);
    assert_eq!(s.read("imapd.conf"), first_imapd);
    c.kill().unwrap();
}

#[test]
fn become_master_restores_the_commented_client_or_adds_one_with_a_valid_name() {
    let (mut c, pid) = not_master();
    // after a stop-client: the marked line comes back
    let s = Scratch::new("back", "configdirectory: /x\nsync_log: 0\n", MASTER_CYRUS);
    s.run("stop-client", "", pid);
    s.run("become-master", "", pid);
    let cyrus = s.read("cyrus.conf");
    assert_eq!(cyrus, MASTER_CYRUS, "not restored as it was");
    let imapd = s.read("imapd.conf");
    for want in ["sync_log: 1", "sync_host: 10.0.0.1", "sync_port: 2005"] {
        assert_eq!(imapd.matches(want).count(), 1, "{want}: {imapd}");
    }
    assert!(!s.dir.join("config/sync/shutdown").exists());

    // a replica without DAEMON section, on a named channel: Cyrus allows
    // only letters and digits in a service name
    let plain = "SERVICES {\n  syncserver cmd=\"sync_server\" listen=\"csync\"\n}\n";
    let r = Scratch::new("named", "configdirectory: /x\n", plain);
    r.run("become-master", "repl-1", pid);
    let cyrus = r.read("cyrus.conf");
    assert!(cyrus.starts_with(plain), "{cyrus}");
    assert!(
        cyrus.contains("DAEMON {\n  syncclientrepl1 cmd=\"sync_client -C "),
        "{cyrus}"
    );
    assert!(cyrus.contains(" -R -n repl-1\"\n}"), "{cyrus}");
    let imapd = r.read("imapd.conf");
    assert!(imapd.contains("repl-1_sync_host: 10.0.0.1"), "{imapd}");
    assert!(imapd.contains("sync_log_channels: repl-1"), "{imapd}");
    let once = (r.read("cyrus.conf"), r.read("imapd.conf"));
    r.run("become-master", "repl-1", pid);
    assert_eq!(
        (r.read("cyrus.conf"), r.read("imapd.conf")),
        once,
        "not idempotent"
    );
    c.kill().unwrap();
}

#[test]
fn stop_and_start_writes_leave_a_foreign_shutdown_message_alone() {
    let s = Scratch::new("writes", "configdirectory: /x\n", MASTER_CYRUS);
    let msg = s.dir.join("config/msg/shutdown");
    assert_eq!(s.run("stop-writes", "", 0).0, 0);
    assert!(std::fs::read_to_string(&msg)
        .unwrap()
        .starts_with("cyrdeck failover"));
    assert_eq!(s.run("stop-writes", "", 0).0, 0, "twice is fine");
    assert_eq!(s.run("start-writes", "", 0).0, 0);
    assert!(!msg.exists());
    // the site's own maintenance message is never removed or replaced
    std::fs::write(&msg, "maintenance until 6:00\n").unwrap();
    let (code, err) = s.run("stop-writes", "", 0);
    assert_eq!(code, 4, "{err}");
    let (code, err) = s.run("start-writes", "", 0);
    assert_eq!(code, 4, "{err}");
    assert_eq!(
        std::fs::read_to_string(&msg).unwrap(),
        "maintenance until 6:00\n"
    );
}

#[test]
fn fences_name_their_run_and_another_runs_fence_is_never_adopted() {
    // defect 4: stop-writes used to adopt any cyrdeck msg/shutdown as its own
    let s = Scratch::new("fence", "configdirectory: /x\n", MASTER_CYRUS);
    let msg = s.dir.join("config/msg/shutdown");
    assert_eq!(s.run_as("stop-writes", "", 0, "run-a", "own").0, 0);
    assert!(std::fs::read_to_string(&msg)
        .unwrap()
        .contains("(run run-a)"));
    // a second run finds the first run's fence on "its" master: refused
    let (code, err) = s.run_as("stop-writes", "", 0, "run-b", "own");
    assert_eq!(code, 5, "{err}");
    // and cannot lift it in its own undo
    let (code, err) = s.run_as("start-writes", "", 0, "run-b", "own");
    assert_eq!(code, 5, "{err}");
    assert!(std::fs::read_to_string(&msg)
        .unwrap()
        .contains("(run run-a)"));
    // an ex-master fenced by an earlier run: a new run may take the fence
    // over (replace) and the new master's start-writes lifts any cyrdeck fence
    assert_eq!(s.run_as("stop-writes", "", 0, "run-b", "replace").0, 0);
    assert!(std::fs::read_to_string(&msg)
        .unwrap()
        .contains("(run run-b)"));
    assert_eq!(s.run_as("start-writes", "", 0, "run-c", "any").0, 0);
    assert!(!msg.exists());
}

#[test]
fn replay_leftovers_keeps_a_snapshot_whose_replay_failed() {
    // defect 9: entries logged after the client stopped are replayed from a
    // renamed snapshot; a failed replay deletes nothing
    let s = Scratch::new("replay", "configdirectory: /x\n", MASTER_CYRUS);
    let sync = s.dir.join("config/sync");
    std::fs::write(sync.join("log"), "APPEND user.alice\n").unwrap();
    let (code, err) = s.run_as("replay-leftovers", "", 0, "run-a", "own");
    assert_eq!(code, 6, "{err}");
    assert!(!sync.join("log").exists(), "the queue file was renamed");
    assert_eq!(
        std::fs::read_to_string(sync.join("log-cyrdeck-replay-run-a")).unwrap(),
        "APPEND user.alice\n",
        "the snapshot is kept when its replay failed"
    );
}

/// A "sync_client" of this instance (its args as ps shows them), that
/// ignores SIGTERM like a client stuck in a wait.
fn fake_client(args: &str) -> std::process::Child {
    Command::new("perl")
        .args([
            "-e",
            &format!(
                "$0 = '/usr/lib/cyrus/bin/sync_client {args}'; $SIG{{TERM}} = 'IGNORE'; sleep 60"
            ),
        ])
        .spawn()
        .unwrap()
}

#[test]
fn end_client_kills_only_this_channels_clients_even_when_they_ignore_sigterm() {
    let s = Scratch::new("end", "configdirectory: /x\n", MASTER_CYRUS);
    let conf = s.dir.join("imapd.conf").display().to_string();
    let mut mine = fake_client(&format!("-C {conf} -R"));
    let mut other_channel = fake_client(&format!("-C {conf} -R -n repl"));
    let mut other_instance = fake_client("-C /etc/imapd.conf -R");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (code, err) = s.run("end-client", "", 0);
    assert_eq!(code, 0, "{err}");
    // SIGKILLed before end-client returned; reaped here, which under load
    // may take a moment (CI: try_wait right away raced it once)
    let gone = (0..30).any(|_| {
        let exited = mine.try_wait().unwrap().is_some();
        if !exited {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        exited
    });
    assert!(gone, "the channel's client is gone");
    assert!(
        other_channel.try_wait().unwrap().is_none(),
        "another channel's stays"
    );
    assert!(
        other_instance.try_wait().unwrap().is_none(),
        "another instance's stays"
    );
    let _ = other_channel.kill();
    let _ = other_instance.kill();
    // nothing left: says so
    let (code, _) = s.run("end-client", "", 0);
    assert_eq!(code, 0);
}
