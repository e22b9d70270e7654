//! failover.sh, the one script that changes a host's replication role
//! (fence, unfence, stop or end the rolling client, become master, add a
//! channel, replay or archive the queue), and what runs around it: the
//! typed call that becomes its argv, the operator's hook, and waiting for
//! a host's rolling client to come or go.

use super::roles::Roles;
use crate::config::HostConfig;
use crate::cyrus::probe::ProbeReport;
use crate::ops::error::StepError;
use crate::ops::host_probe::{client_pids, master_pid, probe_host};
use crate::ops::StepContext;
use std::time::{Duration, Instant};

pub(crate) const SCRIPT: &str = include_str!("failover.sh");
pub(crate) const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// One run of failover.sh: the struct that becomes its argv, in its
/// positional order, in one place (failover.sh's header documents them).
pub(crate) struct FailoverCall<'a> {
    pub act: Act,
    /// The host it runs on (its imapd.conf, cyrus.conf, bin dir).
    pub host: &'a HostConfig,
    /// `configdirectory` (msg/shutdown, the sync dirs).
    pub cfgdir: String,
    /// Cyrus master's pid for a SIGHUP; 0: none running or none needed.
    pub master_pid: u32,
    /// `sync_shutdown_file` ("" when unset).
    pub shutdown_file: String,
    pub channel: &'a str,
    /// The channel's sync_server (`CH_sync_host`/`_port`).
    pub sync: &'a (String, u16),
    pub run_id: &'a str,
}

impl FailoverCall<'_> {
    pub(crate) fn argv(&self) -> Vec<String> {
        let h = self.host;
        let conf = h.imapd_conf.display().to_string();
        vec![
            "sh".into(),
            "-c".into(),
            SCRIPT.into(),
            "cyrdeck-failover".into(),
            self.act.name().into(),
            conf.clone(),
            h.cyrus_conf.display().to_string(),
            self.cfgdir.clone(),
            self.master_pid.to_string(),
            self.shutdown_file.clone(),
            self.channel.to_string(),
            self.sync.0.clone(),
            self.sync.1.to_string(),
            client_cmd(&conf, self.channel),
            self.run_id.to_string(),
            self.act.mode().into(),
            h.bin_dir.display().to_string(),
        ]
    }
}

pub(crate) fn client_cmd(conf: &str, channel: &str) -> String {
    let mut c = format!("sync_client -C {conf} -R");
    if !channel.is_empty() {
        c.push_str(&format!(" -n {channel}"));
    }
    c
}

/// One action of failover.sh (see its header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Act {
    /// Fence: `replace` takes over another cyrdeck run's fence (the
    /// replica an earlier failover fenced); otherwise that is refused.
    StopWrites {
        replace: bool,
    },
    /// Unfence: `any` removes any cyrdeck fence, otherwise only this run's.
    StartWrites {
        any: bool,
    },
    StopClient,
    /// SIGTERM (then SIGKILL) the channel's clients that outlived StopClient.
    EndClient,
    BecomeMaster,
    /// Promote: sync_log 1, no client (reintegrate starts replication).
    BecomeMasterHeld,
    ReplayLeftovers,
    /// Reintegrate: the old master's leftover queue renamed aside.
    ArchiveQueue,
    /// Another channel beside the ones listed (`""` too): its sync host,
    /// its DAEMON client; replace-replica and a failover's other replicas.
    AddChannel,
    /// replace-replica: a channel unlisted, its client out (`undo`: the
    /// run's own new channel taken back).
    RetireChannel {
        undo: bool,
    },
    /// replace-replica: a retired channel's queue files kept aside.
    ArchiveRetiredQueue,
}

impl Act {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Act::StopWrites { .. } => "stop-writes",
            Act::StartWrites { .. } => "start-writes",
            Act::StopClient => "stop-client",
            Act::EndClient => "end-client",
            Act::BecomeMaster | Act::BecomeMasterHeld => "become-master",
            Act::ReplayLeftovers => "replay-leftovers",
            Act::ArchiveQueue | Act::ArchiveRetiredQueue => "archive-queue",
            Act::AddChannel => "add-channel",
            Act::RetireChannel { .. } => "retire-channel",
        }
    }
    pub(crate) fn mode(self) -> &'static str {
        match self {
            Act::StopWrites { replace: true } => "replace",
            Act::StartWrites { any: true } => "any",
            Act::BecomeMasterHeld => "held",
            Act::RetireChannel { undo: true } => "undo",
            Act::ArchiveRetiredQueue => "retired",
            _ => "own",
        }
    }
    /// Signals Cyrus master (needs its live pid).
    fn needs_hup(self) -> bool {
        matches!(
            self,
            Act::StopClient | Act::BecomeMaster | Act::BecomeMasterHeld | Act::AddChannel
        )
    }
}

/// Run failover.sh `act` on `host` (its Cyrus must run when `act` signals it).
pub(crate) async fn script(
    cx: &StepContext<'_>,
    host: &str,
    act: Act,
    r: &Roles,
    sync: &(String, u16),
    out: &mut Vec<String>,
) -> Result<String, StepError> {
    script_on(cx, host, act, r, sync, out, false).await
}

/// `script`; `cyrus_may_be_down`: with Cyrus master not running the files
/// change without a SIGHUP (a hard failover fencing a dead master).
pub(crate) async fn script_on(
    cx: &StepContext<'_>,
    host: &str,
    act: Act,
    r: &Roles,
    sync: &(String, u16),
    out: &mut Vec<String>,
    cyrus_may_be_down: bool,
) -> Result<String, StepError> {
    let action = act.name();
    let h = cx.connection(host)?.config().clone();
    // stopping/starting writes needs no SIGHUP (and works with Cyrus down):
    // the paths from the precheck do, without another probe round trip
    let needs_hup = act.needs_hup();
    let (cfgdir, shutdown, pid) = match r.dirs.get(host) {
        Some((cfgdir, shutdown)) if !needs_hup && !cfgdir.is_empty() => {
            (cfgdir.clone(), shutdown.clone(), 0)
        }
        _ => {
            let report = probe_host(cx, host).await?;
            let cfgdir = report.conf.get("configdirectory").cloned().ok_or_else(|| {
                format!(
                    "{host}: configdirectory not found in {}",
                    h.imapd_conf.display()
                )
            })?;
            let pid = match master_pid(cx, host, &report) {
                Some(p) => p,
                None if !needs_hup || cyrus_may_be_down => 0,
                None => return Err(format!("{host}: Cyrus master is not running").into()),
            };
            let shutdown = report
                .conf
                .get("sync_shutdown_file")
                .cloned()
                .unwrap_or_default();
            (cfgdir, shutdown, pid)
        }
    };
    let argv = FailoverCall {
        act,
        host: &h,
        cfgdir,
        master_pid: pid,
        shutdown_file: shutdown,
        channel: &r.channel,
        sync,
        run_id: cx.run_id,
    }
    .argv();
    let shown = vec!["cyrdeck-failover".into(), action.into(), host.into()];
    let o = cx
        .write(host, argv, Some(shown), SCRIPT_TIMEOUT, out)
        .await?;
    let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if !o.success() {
        return Err(format!(
            "{host}: {action} failed (exit {:?}): {}",
            o.exit_status,
            String::from_utf8_lossy(&o.stderr).trim()
        )
        .into());
    }
    out.push(format!("  {text}"));
    Ok(text)
}

/// The configured local hook (VIP, DNS, proxy), if any; its output is shown.
pub(crate) async fn hook(
    cx: &StepContext<'_>,
    r: &Roles,
    phase: &str,
    out: &mut Vec<String>,
) -> Result<(), StepError> {
    let Some(cmd) = &cx.pair.failover_hook else {
        return Ok(());
    };
    // the hook moves traffic: a write like any other, never in observe mode
    if cx.connection(&r.old_master)?.write_capability().is_none() {
        return Err(StepError::observe_mode());
    }
    out.push(format!(
        "local$ {cmd}   (CYRDECK_PHASE={phase} CYRDECK_RUNBOOK={})",
        cx.actor.label()
    ));
    let child = tokio::process::Command::new("sh")
        .args(["-c", cmd])
        .env("CYRDECK_PHASE", phase)
        .env("CYRDECK_RUNBOOK", cx.actor.label())
        .env("CYRDECK_PAIR", &cx.pair.name)
        .env("CYRDECK_OLD_MASTER", &r.old_master)
        .env("CYRDECK_NEW_MASTER", &r.new_master)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let o = tokio::time::timeout(SCRIPT_TIMEOUT, child)
        .await
        .map_err(|_| format!("hook timed out after {}s", SCRIPT_TIMEOUT.as_secs()))?
        .map_err(|e| format!("hook: {e}"))?;
    for l in String::from_utf8_lossy(&o.stdout)
        .lines()
        .chain(String::from_utf8_lossy(&o.stderr).lines())
    {
        out.push(format!("  hook: {l}"));
    }
    if o.status.success() {
        Ok(())
    } else {
        Err(format!("hook ({phase}) failed: {}", o.status).into())
    }
}

pub(crate) async fn wait_client(
    cx: &StepContext<'_>,
    host: &str,
    channel: &str,
    running: bool,
) -> Result<ProbeReport, StepError> {
    wait_client_for(cx, host, channel, running, Duration::from_secs(30)).await
}

async fn wait_client_for(
    cx: &StepContext<'_>,
    host: &str,
    channel: &str,
    running: bool,
    limit: Duration,
) -> Result<ProbeReport, StepError> {
    let started = Instant::now();
    loop {
        let rep = probe_host(cx, host).await?;
        if client_pids(cx, host, &rep, channel).is_empty() != running {
            return Ok(rep);
        }
        if started.elapsed() > limit {
            return Err(format!(
                "{host}: rolling client still {} after {} s",
                if running { "absent" } else { "running" },
                limit.as_secs()
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Stop `host`'s rolling client for good (DAEMON entry out, sync_log 0,
/// shutdown file, SIGHUP) and wait until it is gone. A client asleep in its
/// reconnect wait (15 s doubling to sync_reconnect_maxwait, after its
/// replica was down: seen in the fault matrix) reads the shutdown file only
/// when it wakes: after 10 s it is ended with SIGTERM, then SIGKILL. Master
/// no longer restarts it, and whatever it had not sent stays in log-run for
/// the leftovers' replay.
pub(crate) async fn stop_client_on(
    cx: &StepContext<'_>,
    host: &str,
    r: &Roles,
    out: &mut Vec<String>,
) -> Result<(String, ProbeReport), StepError> {
    let said = script(cx, host, Act::StopClient, r, &r.new_sync, out).await?;
    if let Ok(rep) = wait_client_for(cx, host, &r.channel, false, Duration::from_secs(10)).await {
        return Ok((said, rep));
    }
    out.push(format!(
        "  {host}'s client did not exit on the shutdown file (asleep in its reconnect wait?): ending it"
    ));
    script(cx, host, Act::EndClient, r, &r.new_sync, out).await?;
    let rep = wait_client(cx, host, &r.channel, false).await?;
    Ok((said, rep))
}
