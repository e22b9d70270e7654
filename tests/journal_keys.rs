//! Issue 30 (4): runbook journals were keyed by pair name only, so a test
//! lab's pair `lab` and the demo's shared one, and `runbook list` showed a
//! run of a pair not in the config. A journal is now named by its config
//! too; `runbook list` shows another config's run as such, and `runbook
//! resume` never takes it up. No lab: the binary on two scratch configs.

mod kit;
use cyrdeck::config::Config;
use cyrdeck::ops::failover::SPEC;
use cyrdeck::ops::journal::{self, Journal};
use cyrdeck::ops::runbook::{RunbookRun, StepState};
use kit::ConfigText;
use std::path::Path;
use std::process::Command;

fn config(dir: &Path) -> Config {
    let conf = ["imapd_conf = \"/etc/imapd.conf\""];
    ConfigText::new()
        .defaults(&format!("known_hosts = \"{}/known_hosts\"", dir.display()))
        .defaults(&format!("audit_log = \"{}/audit.log\"", dir.display()))
        .host("m", "root@127.0.0.1:1", &conf)
        .host("r", "root@127.0.0.1:1", &conf)
        .pair("lab", "m", &[("r", "")], &[])
        .write(dir)
}

fn cyrdeck(state: &Path, cfg: &Config, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cyrdeck"))
        .arg("--config")
        .arg(&cfg.file)
        .args(args)
        .env("XDG_STATE_HOME", state)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

#[test]
fn another_configs_run_of_a_pair_of_the_same_name_is_not_this_ones() {
    let top = std::env::temp_dir().join(format!("cyrdeck-jkeys-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&top);
    let state = top.join("state");
    std::env::set_var("XDG_STATE_HOME", &state);
    let (demo, test_lab) = (config(&top.join("demo")), config(&top.join("testlab")));
    let (a, b) = (
        journal::path("failover", "lab", "lab", &demo.file),
        journal::path("failover", "lab", "lab", &test_lab.file),
    );
    assert_ne!(a, b, "one journal for two configs");
    // the test lab's failover stopped after its first step
    let mut run = RunbookRun::new(SPEC, "lab", "lab");
    run.steps[0] = StepState::Done("prechecked".into());
    run.attempts[0] = 1;
    Journal::of(&run, &test_lab.file).save(&b).unwrap();

    let (code, out) = cyrdeck(&state, &demo, &["runbook", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no unfinished runbook"), "{out}");
    assert!(out.contains("(another config,"), "{out}");
    assert!(out.contains("testlab"), "{out}");
    let (code, out) = cyrdeck(&state, &demo, &["runbook", "resume", "--yes"]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("0 unfinished runbooks"), "{out}");
    // its own config lists it as its own
    let (code, out) = cyrdeck(&state, &test_lab, &["runbook", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("failover lab on lab: 1/"), "{out}");
    assert!(!out.contains("another config"), "{out}");
    let _ = std::fs::remove_dir_all(&top);
}
