//! Issue 15, option injection: a user or mailbox name that starts with `-`
//! would change a Cyrus tool's mode (`sync_client -u -x`, `mbexamine
//! --help`). Every entry point that takes one refuses it with an error
//! naming the value, before any command is built: the hosts here are a
//! listener that records whether anyone connected. No lab.

mod console_support;
mod kit;
use kit::ConfigText;

use cyrdeck::check::{CheckOptions, Scope};
use cyrdeck::config::Config;
use cyrdeck::model::snapshot::StuckEntry;
use cyrdeck::ops::autopilot::Autopilot;
use cyrdeck::ops::engine::Engine;
use cyrdeck::ops::journal::Journal;
use cyrdeck::ops::runbook::{RunbookRun, StepState};
use cyrdeck::ops::{self, repair, resync};
use cyrdeck::poll::Poller;
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

const HOSTILE: [&str; 3] = ["-x", "--help", "-C/etc/passwd"];

/// A config whose hosts are `listener`; scratch state and audit log.
fn config(listener: &TcpListener, tag: &str) -> (Config, PathBuf) {
    let port = listener.local_addr().unwrap().port();
    let dir = kit::scratch_dir(&format!("optinj-{tag}"));
    let ssh = format!("root@127.0.0.1:{port}");
    let cfg = ConfigText::new()
        .defaults(&format!("known_hosts = \"{}/known_hosts\"", dir.display()))
        .defaults("connect_timeout_secs = 2")
        .defaults(&format!("audit_log = \"{}/audit.log\"", dir.display()))
        .host("master", &ssh, &[])
        .host("replica", &ssh, &[])
        .pair("lab", "master", &[("replica", "")], &[])
        .write(&dir);
    (cfg, dir)
}

fn listener() -> TcpListener {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.set_nonblocking(true).unwrap();
    l
}

/// Nobody connected: no command was sent anywhere.
fn nobody_connected(l: &TcpListener) {
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("a connection was made: {other:?}"),
    }
}

fn refused(e: &str, name: &str) {
    assert!(
        e.contains(&format!("{name:?}")) && e.contains("option") && e.contains("refused"),
        "not a clear refusal of {name:?}: {e}"
    );
}

#[test]
fn every_runbook_refuses_an_option_like_target_when_opened() {
    let l = listener();
    let (cfg, _) = config(&l, "open");
    let cfg = Arc::new(cfg);
    let conns = Poller::new(cfg.clone(), false).connections();
    for spec in ops::registry::available() {
        if spec.target == "pair" {
            continue; // failover, promote, reintegrate: a configured pair
        }
        for name in HOSTILE {
            let e = Engine::open(cfg.clone(), conns.clone(), spec, "lab", name)
                .err()
                .unwrap_or_else(|| panic!("{} {name:?} opened", spec.id()));
            refused(&e, name);
            assert!(e.starts_with(spec.id()), "{e}");
        }
    }
    // repair takes a mailbox too; resync only a mailbox
    for name in ["-x/y", "-user/alice"] {
        let spec = repair::SPEC;
        refused(
            &Engine::open(cfg.clone(), conns.clone(), spec, "lab", name)
                .err()
                .unwrap(),
            name,
        );
    }
    nobody_connected(&l);
}

#[test]
fn every_step_refuses_it_too_and_builds_no_command() {
    let l = listener();
    let (cfg, _) = config(&l, "steps");
    let conns = Poller::new(Arc::new(cfg.clone()), false).connections();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for spec in ops::registry::available() {
        if spec.target == "pair" {
            continue;
        }
        for name in HOSTILE {
            for idx in 0..spec.steps.len() {
                let mut run = RunbookRun::new(spec, "lab", name);
                rt.block_on(ops::registry::run_step(&cfg, &conns, &mut run, idx));
                match &run.steps[idx] {
                    StepState::Failed(e) => refused(e, name),
                    other => panic!("{} step {} on {name:?}: {other:?}", spec.id(), idx + 1),
                }
            }
        }
    }
    nobody_connected(&l);
}

#[test]
fn a_journal_naming_such_a_target_is_not_resumed() {
    let l = listener();
    let (cfg, dir) = config(&l, "journal");
    let cfg = Arc::new(cfg);
    let conns = Poller::new(cfg.clone(), false).connections();
    let run = RunbookRun::new(repair::SPEC, "lab", "--help");
    let path = dir.join("repair-lab-edited.json");
    Journal::of(&run, &cfg.file).save(&path).unwrap();
    let e = Engine::reopen(cfg, conns, path, false).err().unwrap();
    refused(&e, "--help");
    nobody_connected(&l);
}

#[test]
fn the_check_refuses_such_a_user_or_mailbox() {
    let l = listener();
    let (cfg, _) = config(&l, "check");
    let conns = Poller::new(Arc::new(cfg.clone()), false).connections();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for name in HOSTILE {
        for scope in [
            Scope {
                user: Some(name.into()),
                mailbox: None,
            },
            Scope {
                user: None,
                mailbox: Some(name.into()),
            },
        ] {
            let res = rt.block_on(cyrdeck::check::run(
                &cfg,
                &conns,
                "lab",
                &scope,
                &CheckOptions::default(),
                &|_| {},
            ));
            refused(&res.err().unwrap(), name);
        }
    }
    nobody_connected(&l);
}

#[test]
fn the_argv_builders_refuse_it_as_well() {
    let l = listener();
    let (cfg, _) = config(&l, "argv");
    let h = cfg.host("master");
    for name in HOSTILE {
        refused(
            &resync::examine_argv(h, name).unwrap_err().to_string(),
            name,
        );
        refused(
            &repair::unexpunge_argv(h, name, &[1])
                .unwrap_err()
                .to_string(),
            name,
        );
        for scope in [
            Scope {
                user: Some(name.into()),
                mailbox: None,
            },
            Scope {
                user: None,
                mailbox: Some(name.into()),
            },
        ] {
            refused(
                &repair::sync_target_args(&scope).unwrap_err().to_string(),
                name,
            );
        }
    }
    // ordinary hostile-looking names are not options: they pass (quoting
    // keeps them from the shell)
    let ok = resync::examine_argv(h, "user/alice/-draft $(x)").unwrap();
    assert_eq!(ok.last().unwrap(), "user/alice/-draft $(x)");
    assert_eq!(
        repair::sync_target_args(&Scope {
            user: Some("alice".into()),
            mailbox: None
        })
        .unwrap(),
        ["-u".to_string(), "alice".to_string()]
    );
}

#[test]
fn the_autopilot_does_not_quarantine_a_user_named_like_an_option() {
    let l = listener();
    let (cfg, _) = config(&l, "autopilot");
    let cfg = Arc::new(cfg);
    let conns = Poller::new(cfg.clone(), false).connections();
    // bob of the support report, renamed: held and failing again with
    // entries pending -> the autopilot decides at once
    let mut r = console_support::report(true, 10);
    let now = r.generated_at;
    for c in &mut r.pairs[0].channels {
        for g in c.queue.groups.iter_mut().chain(c.queue.top.iter_mut()) {
            if g.user.as_deref() == Some("bob") {
                g.user = Some("-x".into());
            }
        }
    }
    for s in &mut r.pairs[0].stuck {
        if s.user.as_deref() == Some("bob") {
            s.user = Some("-x".into());
        }
    }
    r.pairs[0].stuck.push(StuckEntry {
        host: "master".into(),
        channel: Some(String::new()),
        user: Some("-x".into()),
        mailbox: None,
        first_seen: None,
        last_seen: Some(now - 300),
        attempts: 0,
        last_error: String::new(),
        held_file: Some("held--x".into()),
        held_entries: 3,
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut ap = Autopilot::default();
    let outcomes = ap.outcomes.clone();
    rt.block_on(async {
        ap.act(&cfg, &conns, &r);
        ap.settle(std::time::Duration::from_secs(10)).await;
    });
    let said = outcomes.lock().unwrap().clone();
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].contains("not done"), "{said:?}");
    refused(&said[0], "-x");
    nobody_connected(&l);
}
