//! `cyrdeck lab`: the local rehearsal pair (real Cyrus + sshd on loopback).

use super::args::{LabAction, UpArgs};
use super::common::runtime;
use color_eyre::eyre::Result;
use cyrdeck::config::Config;
use cyrdeck::lab::{self, Component, Lab};
use cyrdeck::poll::Poller;
use std::sync::Arc;

/// `lab up` returns when `status` would exit 0: the heartbeat mailbox
/// replicated, the queue drained, every service answering.
fn wait_until_steady(config: &std::path::Path) -> Result<()> {
    let cfg = Arc::new(Config::load(config)?);
    let rt = runtime()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let report = rt.block_on(Poller::new(cfg.clone(), true).refresh());
        if report.exit_code == 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            let problems: Vec<String> = report
                .pairs
                .iter()
                .flat_map(|p| p.problems.iter().map(|q| q.message.clone()))
                .collect();
            color_eyre::eyre::bail!(
                "the lab is up but not steady after 60 s: {}",
                problems.join("; ")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

pub fn run(action: LabAction) -> Result<()> {
    match action {
        LabAction::Up(a) => up(a)?,
        LabAction::Roots { build } => {
            if let Some(r) = build {
                match lab::roots::ensure(&r)? {
                    Some(p) => println!("Cyrus {r}: {}", p.display()),
                    None => println!("Cyrus {r} is the host's own: no root needed"),
                }
            }
            println!("roots in {}:", lab::roots::roots_dir().display());
            for (name, version, bytes) in lab::roots::list() {
                println!(
                    "  {name:<24} cyrus-imapd {version:<20} {} MB",
                    bytes / 1_000_000
                );
            }
        }
        LabAction::Down { lab, only } => {
            let l = Lab::open(&lab.dir, None)?;
            let only = only.as_deref().map(Component::parse).transpose()?;
            l.down(only)?;
        }
        LabAction::Status { lab, json } => {
            let st = Lab::open(&lab.dir, None)?.status();
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                for c in &st.components {
                    let state = match c.pid {
                        Some(p) => format!("running (pid {p})"),
                        None => "stopped".into(),
                    };
                    println!("{:<14} {state}", c.name);
                }
                for i in &st.instances {
                    println!(
                        "{:<8} cyrus {} {} imap {} lmtp {} sync {} ssh {}  {}",
                        i.role,
                        i.cyrus_version.as_deref().unwrap_or("?"),
                        i.address,
                        i.imap_port,
                        i.lmtp_port,
                        i.sync_port,
                        i.ssh_port,
                        i.imapd_conf.display()
                    );
                }
            }
        }
        LabAction::Seed {
            lab,
            messages,
            users,
            folders,
        } => {
            let l = Lab::open(&lab.dir, None)?;
            match users {
                Some(n) => {
                    let report = lab::seed::bulk(&l, n, folders, messages)?;
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
                None if l.layout.profile == lab::layout::Profile::Site => {
                    let report = lab::seed::site(&l, messages)?;
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
                None => {
                    let report = lab::seed::seed(&l, messages)?;
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
            }
        }
    }
    Ok(())
}

/// `lab up`: resume a lab as it was left, or lay it out (again) as asked.
fn up(a: UpArgs) -> Result<()> {
    let UpArgs {
        lab,
        base_port,
        journal_host,
        cyrus,
        master_cyrus,
        replica_cyrus,
        replicas,
        spare,
        reset,
        profile,
    } = a;
    let mut l = Lab::open(&lab.dir, base_port)?;
    if let Some(p) = &profile {
        let p = lab::layout::Profile::parse(p)
            .ok_or_else(|| color_eyre::eyre::eyre!("--profile: plain or site, not {p:?}"))?;
        l.set_profile(p)?;
    }
    let layout_asked = base_port.is_some()
        || profile.is_some()
        || replicas.is_some()
        || spare
        || journal_host.is_some()
        || cyrus.is_some()
        || master_cyrus.is_some()
        || replica_cyrus.is_some();
    if l.rendered() && !reset && !layout_asked {
        let started = l.resume()?;
        println!(
            "lab in {}: {} (as left: no config re-rendered, no fence removed; `lab up --reset` renders it afresh)",
            l.layout.dir.display(),
            if started.is_empty() {
                "everything was running".to_string()
            } else {
                format!("started {}", started.join(", "))
            }
        );
        return Ok(());
    }
    if let Some(n) = replicas {
        l.set_replicas(n as usize)?;
    }
    if spare {
        l.set_spare(true)?;
    }
    match journal_host.as_deref() {
        None => {}
        Some("none") => l.set_journal_host(None),
        Some(r) => l.set_journal_host(Some(lab::layout::Role::parse(r).ok_or_else(|| {
            color_eyre::eyre::eyre!("--journal-host: master, replica or none, not {r:?}")
        })?)),
    }
    let asked = match (cyrus, master_cyrus, replica_cyrus) {
        (Some(c), _, _) => Some((Some(c.clone()), Some(c))),
        (None, None, None) => None,
        (None, m, r) => Some((m, r)),
    };
    if let Some((m, r)) = asked {
        let before = l.layout.hosts.clone();
        l.set_releases(m.as_deref(), r.as_deref())?;
        let running = l.components().into_iter().any(|c| l.pid(c).is_some());
        if running && l.layout.hosts != before {
            color_eyre::eyre::bail!(
                "the lab in {} runs other Cyrus releases; `cyrdeck lab down --dir {}` first",
                l.layout.dir.display(),
                l.layout.dir.display()
            );
        }
    }
    l.up()?;
    wait_until_steady(&l.layout.config_file())?;
    println!(
        "lab up in {}; console config: {}",
        l.layout.dir.display(),
        l.layout.config_file().display()
    );
    Ok(())
}
