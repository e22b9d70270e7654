//! `cyrdeck doctor`: each host's EFFECTIVE replication config (`cyr_info
//! conf-all`, defaults included) and its cyrus.conf, in one read-only exec
//! per host (the script, its argv and its parser); the anti-patterns are
//! judged in model::doctor, the hosts read in check::doctor.

use super::probe::{parse_cyrus_conf, ServiceEntry};
use crate::config::HostConfig;
use crate::remote::RemoteCommand;
use std::collections::BTreeMap;

pub(crate) const SCRIPT: &str = include_str!("doctor.sh");

#[derive(Clone, Debug, Default, PartialEq)]
pub struct EffectiveConfig {
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

pub fn parse(out: &str) -> Result<EffectiveConfig, String> {
    let mut lines = out.lines();
    if lines.next() != Some("@@doctor 1") {
        return Err("doctor output does not start with its header".into());
    }
    if !out.lines().any(|l| l == "@@end") {
        return Err("doctor output is truncated".into());
    }
    let mut facts = EffectiveConfig::default();
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
