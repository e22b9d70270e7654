//! What a runbook step asks a host about its Cyrus, through the step's
//! connection: the status probe (without its log read) and the processes
//! it found (the recognising itself is cyrus/host_facts.rs).

use super::error::StepError;
use super::StepContext;
use crate::cyrus::host_facts::{channel_clients, cyrus_master};
use crate::cyrus::probe::{self, LogCursor, ProbeReport};

/// The status probe, minus its syslog read (processes, queue files and the
/// sync_server banner are all these steps need; the log chunk can be 256 KiB).
pub async fn probe_host(cx: &StepContext<'_>, host: &str) -> Result<ProbeReport, StepError> {
    probe_host_with(cx, host, None).await
}

/// probe_host, reading `heartbeat_user`'s INBOX append time too.
pub async fn probe_host_with(
    cx: &StepContext<'_>,
    host: &str,
    heartbeat_user: Option<&str>,
) -> Result<ProbeReport, StepError> {
    let conn = cx.connection(host)?;
    let mut no_log = conn.config().clone();
    no_log.syslog_file = None;
    no_log.log_source = crate::config::LogSource::File;
    let o = conn
        .exec(&probe::command(
            &no_log,
            &LogCursor::default(),
            heartbeat_user,
        ))
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    probe::parse(&o.stdout).map_err(|e| format!("{host}: {e}").into())
}

pub fn client_pids(cx: &StepContext<'_>, host: &str, r: &ProbeReport, channel: &str) -> Vec<u32> {
    let conf = cx
        .connection(host)
        .map(|c| c.config().imapd_conf.display().to_string())
        .unwrap_or_default();
    channel_clients(r, &conf, channel).map(|p| p.pid).collect()
}

/// This host's Cyrus master (see host_facts::cyrus_master).
pub fn master_pid(cx: &StepContext<'_>, host: &str, r: &ProbeReport) -> Option<u32> {
    let conf = cx
        .connection(host)
        .ok()?
        .config()
        .imapd_conf
        .display()
        .to_string();
    cyrus_master(r, &conf).map(|p| p.pid)
}
