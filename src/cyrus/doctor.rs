//! `cyrdeck doctor`: each host's EFFECTIVE replication config (`cyr_info
//! conf-all`, defaults included) and its cyrus.conf, in one read-only exec
//! per host; the anti-patterns are judged in model::doctor.

use super::probe::{parse_cyrus_conf, ServiceEntry};
use crate::config::{HostConfig, PairConfig};
use crate::model::doctor::Finding;
use crate::remote::{HostConnection, RemoteCommand};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A pair's doctor run: findings, and the hosts that could not be read.
#[derive(Clone, Debug, Serialize)]
pub struct DoctorReport {
    pub pair: String,
    pub findings: Vec<Finding>,
    pub errors: Vec<String>,
}

impl DoctorReport {
    /// 0 none, 1 findings, 2 a host could not be read.
    pub fn exit_code(&self) -> i32 {
        if !self.errors.is_empty() {
            2
        } else if self.findings.is_empty() {
            0
        } else {
            1
        }
    }
}

/// Read every host of `pair` (one exec each) and judge it.
pub async fn run(conns: &BTreeMap<String, Arc<HostConnection>>, pair: &PairConfig) -> DoctorReport {
    let mut facts = BTreeMap::new();
    let mut errors = Vec::new();
    for h in std::iter::once(&pair.master).chain(pair.replicas.iter().map(|r| &r.host)) {
        let Some(c) = conns.get(h) else {
            errors.push(format!("{h}: not configured"));
            continue;
        };
        match c.exec(&command(c.config())).await {
            Ok(o) => match parse(&String::from_utf8_lossy(&o.stdout)) {
                Ok(mut f) => {
                    f.session_start = session_start(c).await;
                    facts.insert(h.clone(), f);
                }
                Err(e) => errors.push(format!("{h}: {e}")),
            },
            Err(e) => errors.push(format!("{h}: {e}")),
        }
    }
    DoctorReport {
        pair: pair.name.clone(),
        findings: crate::model::doctor::diagnose(pair, &facts),
        errors,
    }
}

/// What a trivial command costs on an open connection (the faster of two
/// `true`s): the account's shell and its startup files run for each one.
async fn session_start(c: &HostConnection) -> Option<std::time::Duration> {
    let mut best = None;
    for _ in 0..2 {
        let t = std::time::Instant::now();
        c.exec(&RemoteCommand::read(["true"])).await.ok()?;
        let took = t.elapsed();
        best = Some(best.map_or(took, |b: std::time::Duration| b.min(took)));
    }
    best
}

pub(crate) const SCRIPT: &str = include_str!("doctor.sh");

#[derive(Clone, Debug, Default, PartialEq)]
pub struct HostFacts {
    /// Effective values, defaults included.
    pub conf: BTreeMap<String, String>,
    pub services: Vec<ServiceEntry>,
    /// "none", "readable" or "unreadable".
    pub syslog: String,
    /// `cyr_info version`'s line ("cyrus-imapd 3.10.2-Debian-...").
    pub version: Option<String>,
    /// How long a trivial command took, start to exit (None: not measured).
    pub session_start: Option<std::time::Duration>,
}

pub fn command(h: &HostConfig) -> RemoteCommand {
    RemoteCommand::read([
        "sh".to_string(),
        "-c".into(),
        SCRIPT.into(),
        h.bin_dir.display().to_string(),
        h.imapd_conf.display().to_string(),
        h.cyrus_conf.display().to_string(),
        match h.log_source {
            crate::config::LogSource::Journal => "journal:".into(),
            crate::config::LogSource::File => h
                .syslog_file
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        },
    ])
}

pub fn parse(out: &str) -> Result<HostFacts, String> {
    let mut lines = out.lines();
    if lines.next() != Some("@@doctor 1") {
        return Err("doctor output does not start with its header".into());
    }
    if !out.lines().any(|l| l == "@@end") {
        return Err("doctor output is truncated".into());
    }
    let mut facts = HostFacts::default();
    let mut section = "conf";
    let mut cyrus_conf = String::new();
    for line in lines {
        match line {
            "@@cyrusconf" => section = "cyrusconf",
            "@@syslog" => section = "syslog",
            "@@version" => section = "version",
            "@@end" => break,
            l => match section {
                "conf" => {
                    if let Some((k, v)) = l.split_once(':') {
                        facts
                            .conf
                            .insert(k.trim().to_string(), v.trim().to_string());
                    }
                }
                "cyrusconf" => {
                    cyrus_conf.push_str(l);
                    cyrus_conf.push('\n');
                }
                "version" => facts.version = Some(l.trim().to_string()),
                _ => facts.syslog = l.trim().to_string(),
            },
        }
    }
    if facts.conf.is_empty() {
        return Err("cyr_info conf-all printed no replication settings".into());
    }
    facts.services = parse_cyrus_conf(&cyrus_conf);
    Ok(facts)
}
