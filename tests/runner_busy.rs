//! Defect 1 of the runbook-engine issue: in the console, `x` started the
//! failover's undo in the background and Enter could meanwhile run the next
//! step. The console's runner now runs one step OR one undo at a time and
//! refuses both keys while either runs. Driven here against a host that
//! accepts TCP and never answers SSH (the step hangs in the handshake), so
//! "running" lasts as long as the test needs; no lab is involved.

mod kit;
use cyrdeck::config::Config;
use cyrdeck::ops::runbook::RunbookRun;
use cyrdeck::ops::runner::{Notify, Runner};
use cyrdeck::poll::Poller;
use kit::ConfigText;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The tests share the process environment (XDG_STATE_HOME): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// A config naming a silent host; the journal and audit log in a scratch
/// state dir (one per process: the tests share it).
fn config(port: u16) -> Config {
    let dir = std::env::temp_dir().join(format!("cyrdeck-busy-{}-{port}", std::process::id()));
    std::env::set_var("XDG_STATE_HOME", dir.join("state"));
    let ssh = format!("root@127.0.0.1:{port}");
    let conf = ["imapd_conf = \"/etc/imapd.conf\""];
    ConfigText::new()
        .defaults(&format!("known_hosts = \"{}/known_hosts\"", dir.display()))
        .defaults("connect_timeout_secs = 4")
        .defaults("exec_timeout_secs = 4")
        .defaults(&format!("audit_log = \"{}/audit.log\"", dir.display()))
        .host("m", &ssh, &conf)
        .host("r", &ssh, &conf)
        .pair("p", "m", &[("r", "")], &["heartbeat_user = \"hb\""])
        .write(&dir)
}

/// A TCP port that accepts and never speaks: the SSH handshake waits for
/// the connect timeout.
fn silent_host() -> u16 {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

/// A runner on `cfg`, and every run it reports, in order.
fn runner_on(cfg: &Arc<Config>) -> (Arc<Runner>, Arc<Mutex<Vec<RunbookRun>>>, Notify) {
    let conns = Poller::new(cfg.clone(), false).connections();
    let live = cyrdeck::live_config::LiveConfig::new(cfg.clone());
    let runner = Arc::new(Runner::new(live, conns));
    let seen: Arc<Mutex<Vec<RunbookRun>>> = Arc::default();
    let s = seen.clone();
    let notify: Notify = Arc::new(move |r| s.lock().unwrap().push(r));
    (runner, seen, notify)
}

/// Until the runner has no step or undo running (10 s at most).
async fn idle(runner: &Runner) {
    for _ in 0..100 {
        if !runner.busy() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn no_step_and_no_second_undo_while_a_step_runs() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let port = silent_host();
    let cfg = Arc::new(config(port));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (runner, seen, notify) = runner_on(&cfg);
        runner
            .start("failover", "p", "p", &[], notify.clone())
            .await;
        runner.step(notify.clone()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(runner.busy(), "the first step is still in its handshake");
        // Enter and x while it runs: both refused, nothing else started
        runner.step(notify.clone()).await;
        runner.abort(notify.clone()).await;
        let busy_notes = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.output.last().is_some_and(|l| l.starts_with("busy:")))
            .count();
        assert_eq!(busy_notes, 2, "both keys refused while the step runs");
        // the step ends (refused: the pair lock could not be taken), then
        // the runner takes keys again
        idle(&runner).await;
        assert!(!runner.busy());
        let last = seen.lock().unwrap().last().cloned().unwrap();
        assert_eq!(last.steps[0].label(), "refused", "{:?}", last.output);
        assert!(
            last.steps.iter().skip(1).all(|s| s.label() != "done"),
            "no later step ran: {:?}",
            last.steps
        );
    });
}

/// The defect itself: `x` while steps 1-2 are done runs the undo; Enter
/// during that undo must not start step 3.
#[test]
fn no_step_while_an_undo_runs() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    use cyrdeck::ops::failover::{Roles, SPEC};
    use cyrdeck::ops::journal::{self, Journal};
    use cyrdeck::ops::runbook::StepState;
    let port = silent_host();
    let cfg = Arc::new(config(port));
    // the journal of a failover with writes stopped (steps 1-2 done)
    let mut run = RunbookRun::new(SPEC, "p", "p");
    run.steps[0] = StepState::Done("prechecked".into());
    run.steps[1] = StepState::Done("writes stopped".into());
    run.attempts[0] = 1;
    run.attempts[1] = 1;
    run.lock_host = Some("m".into());
    let roles = Roles {
        old_master: "m".into(),
        new_master: "r".into(),
        ..Default::default()
    };
    run.memo = serde_json::json!({ "roles": roles });
    let path = journal::path("failover", "p", "p", &cfg.file);
    Journal::of(&run, &cfg.file).save(&path).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (runner, seen, notify) = runner_on(&cfg);
        runner
            .start("failover", "p", "p", &[], notify.clone())
            .await;
        assert_eq!(seen.lock().unwrap().last().unwrap().next_step(), Some(2));
        runner.abort(notify.clone()).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(runner.busy(), "the undo waits for the silent host");
        runner.step(notify.clone()).await;
        assert!(
            seen.lock()
                .unwrap()
                .last()
                .unwrap()
                .output
                .last()
                .is_some_and(|l| l.starts_with("busy:")),
            "Enter during the undo is refused"
        );
        idle(&runner).await;
        let last = seen.lock().unwrap().last().cloned().unwrap();
        // the undo could not reach the host: it failed, the run stays open,
        // and step 3 never started
        assert_eq!(last.steps[2], StepState::Pending, "{:?}", last.output);
        assert!(last.undo.pending(), "{:?}", last.undo);
        assert_eq!(last.attempts[2], 0);
    });
    // the journal says so too: resume goes on with the undo
    let j = Journal::load(&path).unwrap();
    assert!(j.undo.pending());
}

/// Issue 30 (5): starting the runbook again right after `x` was refused
/// ("another cyrdeck is running this runbook"): the console's runner still
/// held the stopped run's journal lock.
#[test]
fn a_runbook_starts_again_right_after_it_was_stopped() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let port = silent_host();
    let cfg = Arc::new(config(port));
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let (runner, seen, notify) = runner_on(&cfg);
        runner
            .start("failover", "p", "p", &[], notify.clone())
            .await;
        runner.abort(notify.clone()).await;
        idle(&runner).await;
        let stopped = seen.lock().unwrap().last().cloned().unwrap();
        assert!(stopped.finished(), "{:?}", stopped.steps);
        // what the stopped run held is given back at once: another cyrdeck
        // (the CLI) can take the runbook's journal while the console still
        // shows the stopped run (issue 30, item 5)
        let path = cyrdeck::ops::journal::path("failover", "p", "p", &cfg.file);
        assert!(
            cyrdeck::ops::journal::Lock::acquire(&path).is_ok(),
            "the console kept the stopped run's journal lock"
        );
        runner
            .start("failover", "p", "p", &[], notify.clone())
            .await;
        let again = seen.lock().unwrap().last().cloned().unwrap();
        assert!(
            !again.steps[0].label().contains("fail"),
            "{:?} {:?}",
            again.steps,
            again.output
        );
        assert!(again.next_step() == Some(0), "{:?}", again.steps);
        runner.leave(Duration::from_secs(10)).await;
    });
}
