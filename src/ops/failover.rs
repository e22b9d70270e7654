//! Runbook "failover PAIR": a guided soft failover that proves every event
//! of the old master reached the replica before the roles change (models:
//! Patroni switchover, repmgr standby switchover, orchestrator graceful
//! takeover). Target = the pair's name. Steps use the roles recorded in the
//! memo at the precheck, never the config (step 9 rewrites it), so a resumed
//! run acts on the same hosts; every mutating step is idempotent, because a
//! step interrupted mid-way is run again on resume.
//!
//! Cyrus facts (verified in the lab, see ARCHITECTURE.md):
//! - `{configdirectory}/msg/shutdown` stops writes without touching cyrus.conf:
//!   imapd says `BYE [ALERT]` to every non-admin command (open sessions too),
//!   lmtpd answers 421 (the MTA keeps the mail), `deliver` exits 75;
//!   sync_server is not affected. Left on the ex-master it keeps users off a
//!   replica (no split brain).
//! - removing SERVICES entries + SIGHUP is NOT safe: master reuses freed slots
//!   and the sync_server listener failed to rebind;
//! - commenting out the DAEMON sync_client + SIGHUP stops it for good and keeps
//!   every listener; touching sync_shutdown_file makes the running one exit;
//! - a replica becomes a master with sync_log: 1, sync_host/port pointing at the
//!   old master's sync_server and a DAEMON `sync_client -R`, then SIGHUP.

use super::runbook::{RunbookSpec, StepSpec, StepState};
use super::supervise::{probe_host, probe_host_with, queue_lines};
use super::StepContext;
use crate::check::Scope;
use crate::cyrus::probe::{HeartbeatRead, ProbeReport};
use crate::model::health::{channel_clients, cyrus_master};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

const SCRIPT: &str = include_str!("failover.sh");

pub const SPEC: RunbookSpec = RunbookSpec {
    id: "failover",
    title: "Soft failover to the replica",
    summary: "stop writes, drain, prove identical, swap roles, canary new -> old, record the roles",
    target: "pair",
    steps: &[
        StepSpec {
            title: "Precheck: both reachable, replica healthy, queue bounded, nothing held, check clean",
            mutating: false,
        },
        StepSpec {
            title: "Stop writes on the master (msg/shutdown; hook stop-writes)",
            mutating: true,
        },
        StepSpec {
            title: "Drain the queue to zero (stops and restores writes if the replica fails)",
            mutating: true,
        },
        StepSpec {
            title: "Final check: the pair must be identical",
            mutating: true,
        },
        StepSpec {
            title: "Stop the master's rolling client (DAEMON entry out, sync_log 0)",
            mutating: true,
        },
        StepSpec {
            title: "Make the replica the master, replicating to the old master's sync_server",
            mutating: true,
        },
        StepSpec {
            title: "Start writes on the new master (hook start-writes)",
            mutating: true,
        },
        StepSpec {
            title: "Canary: a message on the new master reaches the old one",
            mutating: true,
        },
        StepSpec {
            title: "Record the new roles in the config",
            mutating: true,
        },
    ],
};

/// From this step on (the old master's client is stopped), a failure is
/// not undone: the run stays open and the step can be retried.
pub const FIRST_STEP_WITHOUT_UNDO: usize = 5;

/// Most pending entries the precheck lets through by default.
pub const DEFAULT_MAX_PENDING: u64 = 100_000;
/// The drain gives up when the queue does not shrink for this long.
const DRAIN_STALL: Duration = Duration::from_secs(60);
const DRAIN_LIMIT: Duration = Duration::from_secs(1800);
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// What the precheck found and every later step acts on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Roles {
    pub old_master: String,
    pub new_master: String,
    pub channel: String,
    /// The old master's sync_server (the new master's client connects to it).
    pub old_sync: (String, u16),
    /// The replica's sync_server, as the old master's config names it (undo).
    pub new_sync: (String, u16),
    pub started_at: f64,
    pub writes_stopped_at: Option<f64>,
    pub writes_started_at: Option<f64>,
    /// Precheck override: held entries do not stop the failover.
    #[serde(default)]
    pub allow_held: bool,
    /// Per host, read at the precheck: configdirectory and
    /// sync_shutdown_file (the scripts' paths; they do not change mid-run).
    #[serde(default)]
    pub dirs: std::collections::BTreeMap<String, (String, String)>,
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn roles(memo: &serde_json::Value) -> Result<Roles, String> {
    serde_json::from_value(memo.get("roles").cloned().unwrap_or_default())
        .map_err(|_| "no roles recorded: the precheck has not run".to_string())
}

fn save_roles(memo: &mut serde_json::Value, r: &Roles) {
    if !memo.is_object() {
        *memo = serde_json::json!({});
    }
    memo["roles"] = serde_json::to_value(r).unwrap_or_default();
}

pub async fn execute(
    step: usize,
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut serde_json::Value,
) -> StepState {
    if step == 0 {
        return super::state_of(precheck(cx, out, memo).await);
    }
    let mut r = match roles(memo) {
        Ok(r) => r,
        Err(e) => return StepState::Failed(e),
    };
    // run again (resumed or retried): an undo may have restored writes
    // before the interruption, so stop them again before going on
    if cx.attempt > 1 && (2..=4).contains(&step) {
        if let Err(e) = script(cx, &r.old_master, "stop-writes", &r, &r.old_sync, out).await {
            return super::state_of(Err(e));
        }
    }
    let res = match step {
        1 => stop_writes(cx, &mut r, out).await,
        2 => drain(cx, &r, out).await,
        3 => final_check(cx, &r, out).await,
        4 => stop_client(cx, &r, out).await,
        5 => become_master(cx, &r, out).await,
        6 => start_writes(cx, &mut r, out).await,
        7 => canary(cx, &r, out).await,
        8 => record_roles(cx, &r, out).await,
        _ => Err(format!("no step {}", step + 1)),
    };
    // a step that did not finish before writes were stopped for good
    // restores them: the old master keeps serving
    let res = match res {
        Err(e) if e != super::OBSERVE_REFUSAL && (1..=4).contains(&step) => {
            Err(undo(cx, &r, step == 4, e, out).await)
        }
        other => other,
    };
    save_roles(memo, &r);
    super::state_of(res)
}

/// A host's configured `sync_address` ("host:port"), if any.
fn address_of(cx: &StepContext<'_>, host: &str) -> Result<Option<(String, u16)>, String> {
    let Some(a) = &cx.connection(host)?.config().sync_address else {
        return Ok(None);
    };
    let (h, p) = a
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?)))
        .ok_or_else(|| format!("{host}: sync_address {a:?} is not host:port"))?;
    Ok(Some((h, p)))
}

/// Is the channel's client a DAEMON entry of cyrus.conf (master restarts
/// it; the failover comments it out)?
fn daemon_client(r: &ProbeReport, channel: &str) -> bool {
    r.services.iter().any(|s| {
        let w: Vec<&str> = s.cmd.split_whitespace().collect();
        let ch = w
            .iter()
            .position(|x| *x == "-n")
            .and_then(|i| w.get(i + 1))
            .copied()
            .unwrap_or("");
        s.section == "DAEMON"
            && w.first().is_some_and(|p| p.ends_with("sync_client"))
            && ch == channel
    })
}

/// Does `from` reach a sync_server at host:port? Its banner line.
async fn reaches(
    cx: &StepContext<'_>,
    from: &str,
    host: &str,
    port: u16,
) -> Result<String, String> {
    let conn = cx.connection(from)?;
    let cmd = crate::remote::RemoteCommand::read([
        "timeout".to_string(),
        "5".into(),
        "bash".into(),
        "-c".into(),
        // sync_server's greeting: capability lines ("* SASL …"), then "* OK"
        r#"exec 3<>"/dev/tcp/$0/$1" || exit 1; n=0; while [ $n -lt 5 ] && IFS= read -r -t 3 l <&3; do case $l in "* OK"*) printf '%s\n' "$l"; exit 0;; esac; n=$((n+1)); done; exit 1"#.into(),
        host.to_string(),
        port.to_string(),
    ]);
    let o = conn.exec(&cmd).await.map_err(|e| format!("{from}: {e}"))?;
    let line = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if o.success() && line.starts_with("* OK") {
        Ok(line.chars().take(60).collect())
    } else {
        Err(if line.is_empty() {
            "no banner (connection refused or filtered)".into()
        } else {
            format!("unexpected banner {line:?}")
        })
    }
}

/// (address, port) of a host's sync_server from its cyrus.conf `listen=`;
/// a bare port means the host's SSH address.
fn sync_endpoint(report: &ProbeReport, ssh_host: &str) -> Option<(String, u16)> {
    let s = report.services.iter().find(|s| {
        s.section == "SERVICES"
            && s.cmd
                .split_whitespace()
                .next()
                .is_some_and(|c| c.ends_with("sync_server"))
    })?;
    let listen = s.listen.as_deref()?;
    let (addr, port) = match listen.rsplit_once(':') {
        Some((a, p)) => (a.trim_matches(['[', ']']).to_string(), p),
        None => (ssh_host.to_string(), listen),
    };
    let port = port.parse().ok().or(match port {
        "csync" => Some(2005),
        _ => None,
    })?;
    let addr = if matches!(addr.as_str(), "*" | "0.0.0.0" | "::") {
        ssh_host.to_string()
    } else {
        addr
    };
    Some((addr, port))
}

fn held(report: &ProbeReport, channel: &str) -> Vec<String> {
    report
        .sync_files
        .iter()
        .filter(|f| f.channel == channel && f.name.starts_with("held-") && f.lines > 0)
        .map(|f| format!("{} ({} entries)", f.name, f.lines))
        .collect()
}

fn client_pids(cx: &StepContext<'_>, host: &str, r: &ProbeReport, channel: &str) -> Vec<u32> {
    let conf = cx
        .connection(host)
        .map(|c| c.config().imapd_conf.display().to_string())
        .unwrap_or_default();
    channel_clients(r, &conf, channel).map(|p| p.pid).collect()
}

/// This host's Cyrus master (see health::cyrus_master).
fn master_pid(cx: &StepContext<'_>, host: &str, r: &ProbeReport) -> Option<u32> {
    let conf = cx
        .connection(host)
        .ok()?
        .config()
        .imapd_conf
        .display()
        .to_string();
    cyrus_master(r, &conf).map(|p| p.pid)
}

fn answers(r: &ProbeReport) -> bool {
    r.sync_server.as_ref().is_some_and(|s| s.answered)
}

async fn precheck(
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut serde_json::Value,
) -> Result<String, String> {
    let pair = cx.pair;
    let [replica] = &pair.replicas[..] else {
        return Err(format!(
            "pair {} has {} replicas: failover supports exactly one",
            pair.name,
            pair.replicas.len()
        ));
    };
    if pair.heartbeat.is_none() {
        return Err(
            "the canary needs the pair's heartbeat_user (a dedicated user on both hosts)".into(),
        );
    }
    let allow_held = memo
        .get("allow_held")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let (m, rp) = tokio::join!(probe_host(cx, &pair.master), probe_host(cx, &replica.host));
    let (m, rp) = (m?, rp?);
    let mut verdicts: Vec<(bool, String)> = Vec::new();
    let ch = replica.channel.as_str();
    verdicts.push((
        true,
        format!(
            "both hosts reachable ({} and {})",
            pair.master, replica.host
        ),
    ));
    let rep_master = master_pid(cx, &replica.host, &rp).is_some();
    verdicts.push((
        rep_master,
        format!("Cyrus master running on {}", replica.host),
    ));
    verdicts.push((
        answers(&rp),
        format!("sync_server answers on {}", replica.host),
    ));
    verdicts.push((
        answers(&m),
        format!(
            "sync_server answers on {} (the new master will replicate to it)",
            pair.master
        ),
    ));
    let clients = client_pids(cx, &pair.master, &m, ch);
    verdicts.push((
        !clients.is_empty(),
        format!("rolling client running on {}", pair.master),
    ));
    verdicts.push((
        master_pid(cx, &pair.master, &m).is_some(),
        format!("Cyrus master running on {}", pair.master),
    ));
    let max = cx.pair.failover_max_pending.unwrap_or(DEFAULT_MAX_PENDING);
    let n = queue_lines(&m, ch);
    verdicts.push((n <= max, format!("{n} entries pending (bound {max})")));
    let h = held(&m, ch);
    verdicts.push((
        h.is_empty() || allow_held,
        if h.is_empty() {
            "nothing held".to_string()
        } else {
            format!(
                "held: {}{}",
                h.join(", "),
                if allow_held {
                    " (allowed by --allow-held)"
                } else {
                    " (--allow-held to go on)"
                }
            )
        },
    ));
    let daemon = daemon_client(&m, ch);
    verdicts.push((
        daemon,
        format!(
            "{}'s rolling client is a cyrus.conf DAEMON entry (one under START or started by hand cannot be stopped for good)",
            pair.master
        ),
    ));
    for (host, r) in [(&pair.master, &m), (&replica.host, &rp)] {
        let other = r
            .conf
            .get("sync_log_channels")
            .is_some_and(|v| v.split_whitespace().any(|c| c != ch));
        verdicts.push((
            !other,
            format!("{host} logs for no other channel (sync_log_channels)"),
        ));
    }
    // where the new master's client will connect: the old master's
    // sync_server as configured (sync_address) or as its listen= says
    let old_sync = address_of(cx, &pair.master)?
        .or_else(|| sync_endpoint(&m, &cx.connection(&pair.master).ok()?.config().target.host));
    verdicts.push((
        old_sync.is_some(),
        format!("{}'s sync_server endpoint: {old_sync:?}", pair.master),
    ));
    // what an undo puts back: the old master's own sync_host/sync_port
    let prefix = if ch.is_empty() {
        String::new()
    } else {
        format!("{ch}_")
    };
    let configured = (
        m.conf.get(&format!("{prefix}sync_host")).cloned(),
        m.conf
            .get(&format!("{prefix}sync_port"))
            .and_then(|p| p.parse::<u16>().ok()),
    );
    let new_sync = match configured {
        (Some(h), p) => Some((h, p.unwrap_or(2005))),
        _ => sync_endpoint(&rp, &cx.connection(&replica.host)?.config().target.host),
    };
    if let Some((h, p)) = &old_sync {
        let reach = reaches(cx, &replica.host, h, *p).await;
        verdicts.push((
            reach.is_ok(),
            match reach {
                Ok(banner) => format!("{} reaches {h}:{p} ({banner})", replica.host),
                Err(e) => format!("{} cannot reach {h}:{p}: {e}", replica.host),
            },
        ));
    }
    let mut ok = verdicts.iter().all(|(ok, _)| *ok);
    if ok {
        let c = cx
            // no wait for the queue: what it still covers is in flight;
            // the drain waits for it with writes stopped
            .scoped_check(&Scope::default(), Duration::ZERO)
            .await?;
        let div: Vec<String> = c
            .divergent()
            .take(5)
            .map(|d| format!("{} {:?}", d.mailbox, d.kind))
            .chain(c.errors.iter().take(3).cloned())
            .collect();
        let in_flight = c.differences.len() - c.divergent().count();
        let clean = div.is_empty();
        verdicts.push((
            clean,
            if clean {
                format!(
                    "level-1 check clean: {} mailboxes ({in_flight} in flight)",
                    c.mailboxes_checked
                )
            } else {
                format!("check NOT clean: {}", div.join("; "))
            },
        ));
        ok = clean;
    }
    for (good, what) in &verdicts {
        out.push(format!("  [{}] {what}", if *good { "ok" } else { "NO" }));
    }
    if !ok {
        let first = verdicts
            .iter()
            .find(|(g, _)| !g)
            .map(|(_, w)| w.clone())
            .unwrap_or_default();
        return Err(format!("precheck failed: {first}; nothing was changed"));
    }
    let r = Roles {
        old_master: pair.master.clone(),
        new_master: replica.host.clone(),
        channel: ch.to_string(),
        old_sync: old_sync.unwrap_or_default(),
        new_sync: new_sync.unwrap_or_default(),
        started_at: now(),
        allow_held,
        dirs: [(&pair.master, &m), (&replica.host, &rp)]
            .into_iter()
            .map(|(h, rep)| {
                let get = |k: &str| rep.conf.get(k).cloned().unwrap_or_default();
                (
                    h.clone(),
                    (get("configdirectory"), get("sync_shutdown_file")),
                )
            })
            .collect(),
        ..Default::default()
    };
    save_roles(memo, &r);
    Ok(format!(
        "all prechecks pass: {} -> {}",
        r.old_master, r.new_master
    ))
}

/// The exact commands each later step runs (the dry run's plan).
pub fn plan(cx: &StepContext<'_>, memo: &serde_json::Value) -> Vec<String> {
    let Ok(r) = roles(memo) else {
        return vec!["(no plan: the precheck did not pass)".into()];
    };
    let hook = cx
        .pair
        .failover_hook
        .as_deref()
        .map(|h| format!("; local hook `{h}` with CYRDECK_PHASE=stop-writes"))
        .unwrap_or_default();
    let conf = |h: &str| {
        cx.connection(h)
            .map(|c| c.config().imapd_conf.display().to_string())
            .unwrap_or_default()
    };
    vec![
        format!("2. {}: cyrdeck-failover stop-writes (write {{configdirectory}}/msg/shutdown){hook}", r.old_master),
        format!("3. poll {} every 1 s until log and log-run are empty; stop (and restore writes) if {} stops answering or the queue stalls {}s", r.old_master, r.new_master, DRAIN_STALL.as_secs()),
        "4. integrity check of the whole pair: must be identical".into(),
        format!("5. {}: cyrdeck-failover stop-client (comment out the DAEMON sync_client in cyrus.conf, sync_log: 0, touch sync_shutdown_file, SIGHUP master)", r.old_master),
        format!("6. {}: cyrdeck-failover become-master (sync_log: 1, sync_host: {}, sync_port: {}, DAEMON `{}`, SIGHUP master)", r.new_master, r.old_sync.0, r.old_sync.1, client_cmd(&conf(&r.new_master), &r.channel)),
        format!("7. {}: cyrdeck-failover start-writes (remove a cyrdeck msg/shutdown){}", r.new_master, if cx.pair.failover_hook.is_some() { "; hook with CYRDECK_PHASE=start-writes" } else { "" }),
        format!("8. {}: deliver a canary to the heartbeat user; wait until {}'s copy has it", r.new_master, r.old_master),
        format!("9. {}: [pairs.{}] master = {:?}, replica = {:?}", cx.cfg.file.display(), cx.pair.name, r.new_master, r.old_master),
    ]
}

fn client_cmd(conf: &str, channel: &str) -> String {
    let mut c = format!("sync_client -C {conf} -R");
    if !channel.is_empty() {
        c.push_str(&format!(" -n {channel}"));
    }
    c
}

/// Run failover.sh ACTION on `host`.
async fn script(
    cx: &StepContext<'_>,
    host: &str,
    action: &str,
    r: &Roles,
    sync: &(String, u16),
    out: &mut Vec<String>,
) -> Result<String, String> {
    let h = cx.connection(host)?.config().clone();
    // stopping/starting writes needs no SIGHUP (and works with Cyrus down):
    // the paths from the precheck do, without another probe round trip
    let needs_hup = matches!(action, "stop-client" | "become-master");
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
                None if !needs_hup => 0,
                None => return Err(format!("{host}: Cyrus master is not running")),
            };
            let shutdown = report
                .conf
                .get("sync_shutdown_file")
                .cloned()
                .unwrap_or_default();
            (cfgdir, shutdown, pid)
        }
    };
    let conf = h.imapd_conf.display().to_string();
    let argv = vec![
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
        "cyrdeck-failover".into(),
        action.into(),
        conf.clone(),
        h.cyrus_conf.display().to_string(),
        cfgdir,
        pid.to_string(),
        shutdown,
        r.channel.clone(),
        sync.0.clone(),
        sync.1.to_string(),
        client_cmd(&conf, &r.channel),
    ];
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
        ));
    }
    out.push(format!("  {text}"));
    Ok(text)
}

/// The configured local hook (VIP, DNS, proxy), if any; its output is shown.
async fn hook(
    cx: &StepContext<'_>,
    r: &Roles,
    phase: &str,
    out: &mut Vec<String>,
) -> Result<(), String> {
    let Some(cmd) = &cx.pair.failover_hook else {
        return Ok(());
    };
    out.push(format!("local$ {cmd}   (CYRDECK_PHASE={phase})"));
    let child = tokio::process::Command::new("sh")
        .args(["-c", cmd])
        .env("CYRDECK_PHASE", phase)
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
        Err(format!("hook ({phase}) failed: {}", o.status))
    }
}

async fn stop_writes(
    cx: &StepContext<'_>,
    r: &mut Roles,
    out: &mut Vec<String>,
) -> Result<String, String> {
    let said = script(cx, &r.old_master, "stop-writes", r, &r.old_sync, out).await?;
    if r.writes_stopped_at.is_none() {
        r.writes_stopped_at = Some(now());
    }
    hook(cx, r, "stop-writes", out).await?;
    Ok(said)
}

async fn drain(cx: &StepContext<'_>, r: &Roles, _out: &mut Vec<String>) -> Result<String, String> {
    let started = Instant::now();
    let mut last = (u64::MAX, Instant::now());
    let mut first = None;
    loop {
        let (m, rp) = tokio::join!(probe_host(cx, &r.old_master), probe_host(cx, &r.new_master));
        let m = m?;
        let rp = rp.map_err(|e| {
            format!(
                "replica {} stopped answering during the drain: {e}",
                r.new_master
            )
        })?;
        if master_pid(cx, &r.new_master, &rp).is_none() || !answers(&rp) {
            return Err(format!(
                "replica {}'s Cyrus or sync_server stopped during the drain ({} entries left)",
                r.new_master,
                queue_lines(&m, &r.channel)
            ));
        }
        let n = queue_lines(&m, &r.channel);
        if n == 0 {
            return Ok(format!(
                "queue empty after {:.1}s (from {} entries)",
                started.elapsed().as_secs_f64(),
                first.unwrap_or(0)
            ));
        }
        first.get_or_insert(n);
        if client_pids(cx, &r.old_master, &m, &r.channel).is_empty() {
            return Err(format!(
                "the rolling client on {} is not running ({n} entries left)",
                r.old_master
            ));
        }
        if n < last.0 {
            last = (n, Instant::now());
            cx.progress(&format!("  {n} entries pending"));
        } else if last.1.elapsed() > DRAIN_STALL {
            return Err(format!(
                "the queue did not shrink for {}s ({n} entries)",
                DRAIN_STALL.as_secs()
            ));
        }
        if started.elapsed() > DRAIN_LIMIT {
            return Err(format!(
                "not drained after {}s ({n} entries)",
                DRAIN_LIMIT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn final_check(
    cx: &StepContext<'_>,
    _r: &Roles,
    out: &mut Vec<String>,
) -> Result<String, String> {
    let c = cx
        .scoped_check(&Scope::default(), Duration::from_secs(10))
        .await?;
    if !c.differences.is_empty() || !c.errors.is_empty() {
        for d in c.differences.iter().take(20) {
            out.push(format!("  {} {:?} {}", d.mailbox, d.kind, d.detail));
        }
        for e in c.errors.iter().take(5) {
            out.push(format!("  error: {e}"));
        }
        return Err(format!(
            "the pair is not identical after the drain ({} differences, {} errors)",
            c.differences.len(),
            c.errors.len()
        ));
    }
    Ok(format!("identical: {} mailboxes", c.mailboxes_checked))
}

async fn wait_client(
    cx: &StepContext<'_>,
    host: &str,
    channel: &str,
    running: bool,
) -> Result<ProbeReport, String> {
    let started = Instant::now();
    loop {
        let rep = probe_host(cx, host).await?;
        if client_pids(cx, host, &rep, channel).is_empty() != running {
            return Ok(rep);
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "{host}: rolling client still {} after 30 s",
                if running { "absent" } else { "running" }
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn stop_client(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
) -> Result<String, String> {
    let said = script(cx, &r.old_master, "stop-client", r, &r.new_sync, out).await?;
    let rep = wait_client(cx, &r.old_master, &r.channel, false).await?;
    if !answers(&rep) {
        return Err(format!("{}'s sync_server stopped answering", r.old_master));
    }
    Ok(format!("{said}; no client left, sync_server still answers"))
}

async fn become_master(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
) -> Result<String, String> {
    let said = script(cx, &r.new_master, "become-master", r, &r.old_sync, out).await?;
    let rep = wait_client(cx, &r.new_master, &r.channel, true).await?;
    let pid = client_pids(cx, &r.new_master, &rep, &r.channel);
    Ok(format!("{said}; client pid {pid:?}"))
}

async fn start_writes(
    cx: &StepContext<'_>,
    r: &mut Roles,
    out: &mut Vec<String>,
) -> Result<String, String> {
    let said = script(cx, &r.new_master, "start-writes", r, &r.old_sync, out).await?;
    hook(cx, r, "start-writes", out).await?;
    if r.writes_started_at.is_none() {
        r.writes_started_at = Some(now());
    }
    let window = r.writes_started_at.unwrap_or(0.0) - r.writes_stopped_at.unwrap_or(0.0);
    Ok(format!("{said}; writes were unavailable for {window:.1}s"))
}

async fn canary(cx: &StepContext<'_>, r: &Roles, out: &mut Vec<String>) -> Result<String, String> {
    let t = super::heartbeat::beat_on(cx, &r.new_master).await?;
    out.push(format!("  canary delivered on {} at {t}", r.new_master));
    let started = Instant::now();
    loop {
        let user = cx.pair.heartbeat.as_ref().map(|h| h.user.as_str());
        let rep = probe_host_with(cx, &r.old_master, user).await?.heartbeat;
        if let Some(HeartbeatRead::Seen { appended_at, .. }) = rep {
            if appended_at >= t {
                return Ok(format!(
                    "canary reached {} after {:.1}s: replication flows {} -> {}",
                    r.old_master,
                    started.elapsed().as_secs_f64(),
                    r.new_master,
                    r.old_master
                ));
            }
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(format!(
                "the canary did not reach {} within 60 s: replication {} -> {} is not proven (writes are on at {})",
                r.old_master, r.new_master, r.old_master, r.new_master
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn record_roles(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
) -> Result<String, String> {
    crate::config::set_roles(&cx.cfg.file, &cx.pair.name, &r.new_master, &r.old_master)?;
    out.push(format!(
        "  {}: [pairs.{}] master = {:?}",
        cx.cfg.file.display(),
        cx.pair.name,
        r.new_master
    ));
    let total = now() - r.started_at;
    let window = r.writes_started_at.unwrap_or(0.0) - r.writes_stopped_at.unwrap_or(0.0);
    // a console that ran this still holds the old roles in memory
    out.push("  a running console shows the new roles after a restart".into());
    Ok(format!(
        "roles recorded; failover took {total:.1}s, writes unavailable {window:.1}s"
    ))
}

/// A step from 2 to 5 failed: put the old master back in charge, say what
/// state the pair is in.
/// The operator stops the failover between steps: undo what can be
/// undone. Returns what state the pair is in, and whether the run is over
/// (false: the replica already took over, `runbook resume` finishes it).
pub async fn abort(
    cx: &StepContext<'_>,
    memo: &serde_json::Value,
    steps: &[StepState],
    out: &mut Vec<String>,
) -> (String, bool) {
    let done = |i: usize| matches!(steps.get(i), Some(StepState::Done(_)));
    let Ok(r) = roles(memo) else {
        return ("nothing was changed".into(), true);
    };
    if done(5) {
        return (
            format!(
                "{} already replicates to {} and cannot be given back automatically; `cyrdeck runbook resume` finishes the failover",
                r.new_master, r.old_master
            ),
            false,
        );
    }
    if !done(1) {
        return ("nothing was changed".into(), true);
    }
    let said = undo(cx, &r, done(4), "aborted by the operator".into(), out).await;
    (said, true)
}

/// Put the old master back in charge (its client too when it was stopped)
/// and say what state the pair is in.
async fn undo(
    cx: &StepContext<'_>,
    r: &Roles,
    client_stopped: bool,
    why: String,
    out: &mut Vec<String>,
) -> String {
    out.push(format!("  undo: {why}"));
    let mut said = vec![format!("{why}. Stopped before switching roles")];
    if client_stopped {
        let restored = script(cx, &r.old_master, "become-master", r, &r.new_sync, out).await;
        match restored {
            Ok(_) => said.push(format!("{}'s rolling client restored", r.old_master)),
            Err(e) => {
                // writes without replication would be lost to the replica:
                // they stay stopped
                said.push(format!(
                    "restoring {}'s client FAILED: {e}; writes stay STOPPED on {} until replication is back (then `cyrdeck-failover start-writes`: remove its msg/shutdown)",
                    r.old_master, r.old_master
                ));
                return said.join("; ");
            }
        }
    }
    match script(cx, &r.old_master, "start-writes", r, &r.old_sync, out).await {
        Ok(_) => said.push(format!(
            "writes restored: {} keeps serving as master",
            r.old_master
        )),
        Err(e) => said.push(format!(
            "restoring writes on {} FAILED: {e} (remove its msg/shutdown by hand)",
            r.old_master
        )),
    }
    if let Err(e) = hook(cx, r, "undo", out).await {
        said.push(e);
    }
    said.join("; ")
}
