//! Step 1 of the failover: read-only prechecks, each verdict printed, and
//! the roles every later step acts on (recorded in the memo).

use super::roles::{now, Roles};
use crate::check::Scope;
use crate::config::ReplicaConfig;
use crate::cyrus::host_facts::{self, answers, held, sync_endpoint, Fence};
use crate::cyrus::probe::{self, LogCursor, ProbeReport};
use crate::model::readiness::{self, ChannelFacts, Facts, HostReadiness};
use crate::ops::error::StepError;
use crate::ops::host_probe::{client_pids, master_pid};
use crate::ops::StepContext;
use std::time::Duration;

/// A host's probe with the newest part of its Cyrus log: the readiness
/// rules need who is failing now, as the console knows it from its history.
async fn probe_with_log(
    cx: &StepContext<'_>,
    host: &str,
) -> Result<(ProbeReport, Vec<crate::cyrus::loglines::LogEvent>), StepError> {
    let conn = cx.connection(host)?;
    let o = conn
        .exec(&probe::command(conn.config(), &LogCursor::default(), None))
        .await
        .map_err(|e| format!("{host}: {e}"))?;
    let r = probe::parse(&o.stdout).map_err(|e| format!("{host}: {e}"))?;
    let clock = crate::cyrus::logtime::LineClock {
        now: r.now as i64,
        zone: r.zone.clone().unwrap_or_default(),
    };
    let events = r
        .log
        .as_ref()
        .map(|c| {
            crate::cyrus::loglines::classify_chunk(
                &c.text,
                conn.config().syslog_prefix.as_deref(),
                &clock,
            )
        })
        .unwrap_or_default();
    Ok((r, events))
}

/// Reads a sync_server's banner from another host (bash: /dev/tcp).
pub(crate) const REACH: &str = include_str!("reach.bash");

/// A host's configured `sync_address` ("host:port"), if any.
pub(crate) fn address_of(
    cx: &StepContext<'_>,
    host: &str,
) -> Result<Option<(String, u16)>, StepError> {
    let Some(a) = &cx.connection(host)?.config().sync_address else {
        return Ok(None);
    };
    let (h, p) = a
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_string(), p.parse().ok()?)))
        .ok_or_else(|| format!("{host}: sync_address {a:?} is not host:port"))?;
    Ok(Some((h, p)))
}

/// `host`'s sync_server endpoint: its configured sync_address, else the
/// listen= of its sync_server service in `rep` (a wildcard meaning the
/// host cyrdeck reaches it by).
pub(crate) fn sync_server_of(
    cx: &StepContext<'_>,
    host: &str,
    rep: &ProbeReport,
) -> Result<(String, u16), StepError> {
    if let Some(a) = address_of(cx, host)? {
        return Ok(a);
    }
    sync_endpoint(rep, &cx.connection(host)?.config().target.host).ok_or_else(|| {
        format!(
            "{host}'s sync_server endpoint not found (no listen= for sync_server, no sync_address)"
        )
        .into()
    })
}

/// Does `from` reach a sync_server at host:port? Its banner line.
pub(crate) async fn reaches(
    cx: &StepContext<'_>,
    from: &str,
    host: &str,
    port: u16,
) -> Result<String, StepError> {
    let conn = cx.connection(from)?;
    let cmd = crate::remote::RemoteCommand::read([
        "bash".to_string(),
        "-c".into(),
        // sync_server's greeting: capability lines ("* SASL …"), then "* OK"
        REACH.into(),
        host.to_string(),
        port.to_string(),
    ]);
    // the remote `timeout` (remote_line) bounds it: 5 s for a banner
    let o = conn
        .exec_timeout(&cmd, std::time::Duration::from_secs(5))
        .await
        .map_err(|e| format!("{from}: {e}"))?;
    let line = String::from_utf8_lossy(&o.stdout).trim().to_string();
    if o.success() && line.starts_with("* OK") {
        Ok(line.chars().take(60).collect())
    } else {
        Err(if line.is_empty() {
            "no banner (connection refused or filtered)".into()
        } else {
            format!("unexpected banner {line:?}").into()
        })
    }
}

type Events = Vec<crate::cyrus::loglines::LogEvent>;
type Verdicts = Vec<(bool, String)>;
type SyncEndpoint = Option<(String, u16)>;

/// What the precheck read from every host of the pair, once.
struct Survey<'a> {
    pair: &'a crate::config::PairConfig,
    /// The replica to promote.
    replica: &'a ReplicaConfig,
    /// The pair's other replicas: re-pointed at the new master, each on its
    /// own channel, so they must be as current as the target.
    others: Vec<&'a ReplicaConfig>,
    master: (ProbeReport, Events),
    target: (ProbeReport, Events),
    other_reps: Vec<(ProbeReport, Events)>,
}

impl Survey<'_> {
    /// The channel of the replica to promote.
    fn channel(&self) -> &str {
        self.replica.channel.as_str()
    }
    /// Every channel the pair replicates on: the target's first.
    fn channels(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.channel()).chain(self.others.iter().map(|o| o.channel.as_str()))
    }
    /// The other replicas with their probes.
    fn others_with_reports(&self) -> impl Iterator<Item = (&ReplicaConfig, &ProbeReport)> {
        self.others
            .iter()
            .copied()
            .zip(self.other_reps.iter().map(|(r, _)| r))
    }
}

pub(super) async fn precheck(
    cx: &StepContext<'_>,
    out: &mut Vec<String>,
    memo: &mut super::roles::Memo,
) -> Result<String, StepError> {
    let s = survey(cx).await?;
    let allow_held = memo.allow_held;
    let mut verdicts: Verdicts = vec![reachable_verdict(&s)];
    let facts = readiness_facts(cx, &s, allow_held);
    verdicts.extend(readiness::rules(&facts).into_iter().map(|r| (r.ok, r.what)));
    verdicts.push((
        answers(&s.master.0),
        format!(
            "sync_server answers on {} (the new master will replicate to it)",
            s.pair.master
        ),
    ));
    role_verdicts(cx, &s, &mut verdicts);
    let (old_sync, new_sync) = endpoint_verdicts(cx, &s, &mut verdicts).await?;
    let other_roles = other_replica_verdicts(cx, &s, &mut verdicts).await;
    let mut ok = verdicts.iter().all(|(ok, _)| *ok);
    if ok {
        ok = check_verdict(cx, &mut verdicts).await?;
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
        return Err(format!("precheck failed: {first}; nothing was changed").into());
    }
    let r = roles_of(&s, old_sync, new_sync, other_roles, allow_held);
    memo.save_roles(&r);
    Ok(format!(
        "all prechecks pass: {} -> {}",
        r.old_master, r.new_master
    ))
}

/// Every host of the pair probed with its newest log (master and target
/// at once, then the other replicas).
async fn survey<'a>(cx: &StepContext<'a>) -> Result<Survey<'a>, StepError> {
    let pair = cx.pair;
    let replica = chosen_replica(pair, cx.target)?;
    let others: Vec<&ReplicaConfig> = pair
        .replicas
        .iter()
        .filter(|r| r.host != replica.host)
        .collect();
    if pair.heartbeat.is_none() {
        return Err(
            "the canary needs the pair's heartbeat_user (a dedicated user on both hosts)".into(),
        );
    }
    let (m, rp) = tokio::join!(
        probe_with_log(cx, &pair.master),
        probe_with_log(cx, &replica.host)
    );
    let (master, target) = (m?, rp?);
    let mut other_reps = Vec::new();
    for o in &others {
        other_reps.push(probe_with_log(cx, &o.host).await?);
    }
    Ok(Survey {
        pair,
        replica,
        others,
        master,
        target,
        other_reps,
    })
}

fn reachable_verdict(s: &Survey<'_>) -> (bool, String) {
    let (pair, replica) = (s.pair, s.replica);
    (
        true,
        if s.others.is_empty() {
            format!(
                "both hosts reachable ({} and {})",
                pair.master, replica.host
            )
        } else {
            format!(
                "every host reachable ({}, {} the new master, {})",
                pair.master,
                replica.host,
                s.others
                    .iter()
                    .map(|o| o.host.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        },
    )
}

/// The facts the console's "failover now" verdict judges, read fresh.
fn readiness_facts(cx: &StepContext<'_>, s: &Survey<'_>, allow_held: bool) -> Facts {
    let (pair, replica) = (s.pair, s.replica);
    let (m, m_events) = &s.master;
    let (rp, rp_events) = &s.target;
    let stuck = crate::model::stuck::stuck_entries(
        m_events
            .iter()
            .map(|e| (pair.master.as_str(), e))
            .chain(rp_events.iter().map(|e| (replica.host.as_str(), e)))
            .chain(
                s.others
                    .iter()
                    .zip(&s.other_reps)
                    .flat_map(|(o, (_, ev))| ev.iter().map(|e| (o.host.as_str(), e))),
            ),
        &[],
        None,
    );
    let stopped = |pid: u32| m.processes.iter().any(|p| p.pid == pid && p.stopped());
    let mut facts = Facts {
        hosts: vec![
            HostReadiness {
                name: pair.master.clone(),
                reachable: true,
                cyrus_running: master_pid(cx, &pair.master, m).is_some(),
                sync_server_answers: None,
            },
            HostReadiness {
                name: replica.host.clone(),
                reachable: true,
                cyrus_running: master_pid(cx, &replica.host, rp).is_some(),
                sync_server_answers: Some(answers(rp)),
            },
        ],
        channels: std::iter::once(replica)
            .chain(s.others.iter().copied())
            .map(|r| ChannelFacts {
                master: pair.master.clone(),
                replica: r.host.clone(),
                client: client_pids(cx, &pair.master, m, &r.channel)
                    .first()
                    .map(|p| (*p, stopped(*p))),
                pending: host_facts::queue_lines(m, &r.channel),
                held: held(m, &r.channel),
            })
            .collect(),
        failing: readiness::failing_now(&stuck, m.now as i64),
        max_pending: pair
            .failover_max_pending
            .unwrap_or(crate::model::health::DEFAULT_MAX_PENDING),
        allow_held,
    };
    for (o, rep) in s.others_with_reports() {
        facts.hosts.push(HostReadiness {
            name: o.host.clone(),
            reachable: true,
            cyrus_running: master_pid(cx, &o.host, rep).is_some(),
            sync_server_answers: Some(answers(rep)),
        });
    }
    facts
}

/// Exactly one master before anything changes: the replicas neither log
/// nor replicate, the master is not fenced (a fenced "master" is an
/// ex-master an earlier failover left as a replica), its clients are
/// DAEMON entries, and no host logs for a channel outside the pair's.
fn role_verdicts(cx: &StepContext<'_>, s: &Survey<'_>, verdicts: &mut Verdicts) {
    let conf_of = |h: &str| {
        cx.connection(h)
            .map(|c| c.config().imapd_conf.display().to_string())
            .unwrap_or_default()
    };
    let m = &s.master.0;
    for (host, rep) in std::iter::once((&s.replica.host, &s.target.0))
        .chain(s.others_with_reports().map(|(o, r)| (&o.host, r)))
    {
        // a client of any of the pair's channels makes a host master-like
        let master_like = s
            .channels()
            .any(|c| host_facts::HostFacts::read(rep, host, &conf_of(host), c, "").master_like());
        verdicts.push((
            !master_like,
            format!(
                "{host} acts as a replica only (sync_log {}, {} rolling client)",
                if host_facts::sync_log_on(rep) {
                    "ON"
                } else {
                    "off"
                },
                if master_like { "a" } else { "no" }
            ),
        ));
    }
    let mfence = Fence::of(m, "");
    verdicts.push((
        !mfence.refuses_writes(),
        match &mfence {
            Fence::Open => format!("{} accepts writes (no msg/shutdown)", s.pair.master),
            _ => format!(
                "{} refuses writes already (msg/shutdown: {:?})",
                s.pair.master,
                l_of(m)
            ),
        },
    ));
    for c in s.channels() {
        let daemon = host_facts::daemon_client(m, c);
        verdicts.push((
            daemon,
            format!(
                "{}'s rolling client{} is a cyrus.conf DAEMON entry (one under START or started by hand cannot be stopped for good)",
                s.pair.master,
                if c.is_empty() { String::new() } else { format!(" of channel {c}") }
            ),
        ));
    }
    // the channels the new master takes over: the pair's, no other
    let pair_channels: Vec<String> = s
        .channels()
        .map(|c| {
            if c.is_empty() {
                "\"\"".to_string()
            } else {
                c.to_string()
            }
        })
        .collect();
    for (host, r) in [(&s.pair.master, m), (&s.replica.host, &s.target.0)] {
        let other = r.conf.get("sync_log_channels").is_some_and(|v| {
            v.split_whitespace()
                .any(|c| !pair_channels.iter().any(|p| p == c))
        });
        verdicts.push((
            !other,
            format!(
                "{host} logs for no channel outside the pair's ({})",
                pair_channels.join(" ")
            ),
        ));
    }
}

/// Where the new master's client will connect (the old master's
/// sync_server, as configured or as its listen= says) and whether the
/// target reaches it; and what an undo puts back (the old master's own
/// sync_host/sync_port).
async fn endpoint_verdicts(
    cx: &StepContext<'_>,
    s: &Survey<'_>,
    verdicts: &mut Verdicts,
) -> Result<(SyncEndpoint, SyncEndpoint), StepError> {
    let (pair, replica) = (s.pair, s.replica);
    let (m, rp) = (&s.master.0, &s.target.0);
    let old_sync = address_of(cx, &pair.master)?
        .or_else(|| sync_endpoint(m, &cx.connection(&pair.master).ok()?.config().target.host));
    verdicts.push((
        old_sync.is_some(),
        match &old_sync {
            Some((h, p)) => format!("{}'s sync_server endpoint: {h}:{p}", pair.master),
            None => format!(
                "{}'s sync_server endpoint: not found (no sync_server listen= in its cyrus.conf, no sync_address)",
                pair.master
            ),
        },
    ));
    let new_sync = match configured_sync(m, s.channel()) {
        Some(s) => Some(s),
        None => sync_endpoint(rp, &cx.connection(&replica.host)?.config().target.host),
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
    Ok((old_sync, new_sync))
}

/// The other replicas: where the old master sends their channel now (its
/// CH_sync_host/port), which the new master must reach.
async fn other_replica_verdicts(
    cx: &StepContext<'_>,
    s: &Survey<'_>,
    verdicts: &mut Verdicts,
) -> Vec<super::roles::OtherReplica> {
    let mut other_roles = Vec::new();
    for (o, rep) in s.others_with_reports() {
        let sync = configured_sync(&s.master.0, &o.channel)
            .or_else(|| sync_endpoint(rep, &cx.connection(&o.host).ok()?.config().target.host));
        let Some((h, p)) = sync else {
            verdicts.push((
                false,
                format!("{}'s sync_server endpoint: not found", o.host),
            ));
            continue;
        };
        let reach = reaches(cx, &s.replica.host, &h, p).await;
        verdicts.push((
            reach.is_ok(),
            match reach {
                Ok(banner) => format!(
                    "{} reaches {}'s sync_server {h}:{p} ({banner}): channel {} moves over",
                    s.replica.host,
                    o.host,
                    shown_channel(&o.channel)
                ),
                Err(e) => format!(
                    "{} cannot reach {}'s sync_server {h}:{p}: {e}",
                    s.replica.host, o.host
                ),
            },
        ));
        other_roles.push(super::roles::OtherReplica {
            host: o.host.clone(),
            channel: o.channel.clone(),
            sync: (h, p),
        });
    }
    other_roles
}

/// The whole-pair level-1 check, once every other verdict passed.
async fn check_verdict(cx: &StepContext<'_>, verdicts: &mut Verdicts) -> Result<bool, StepError> {
    let c = cx
        // no wait for the queue: what it still covers is in flight;
        // the drain waits for it with writes stopped
        .scoped_check(&Scope::default(), Duration::ZERO)
        .await?;
    let div: Vec<String> = c
        .divergent()
        .take(5)
        .map(|d| format!("{} {}", d.mailbox, d.kind.label()))
        .chain(c.errors.iter().take(3).cloned())
        .collect();
    let in_flight = format!(
        "{} in flight, {} deleted mailbox(es) purged on one host only",
        c.count(crate::model::conflicts::DiffKind::InFlight),
        c.count(crate::model::conflicts::DiffKind::DeletedPurgedOnOneSide)
    );
    let clean = div.is_empty();
    verdicts.push((
        clean,
        if clean {
            format!(
                "level-1 check clean: {} mailboxes ({in_flight})",
                c.mailboxes_checked
            )
        } else {
            format!("check NOT clean: {}", div.join("; "))
        },
    ));
    Ok(clean)
}

/// The roles every later step acts on.
fn roles_of(
    s: &Survey<'_>,
    old_sync: SyncEndpoint,
    new_sync: SyncEndpoint,
    others: Vec<super::roles::OtherReplica>,
    allow_held: bool,
) -> Roles {
    Roles {
        old_master: s.pair.master.clone(),
        new_master: s.replica.host.clone(),
        channel: s.channel().to_string(),
        old_sync: old_sync.unwrap_or_default(),
        new_sync: new_sync.unwrap_or_default(),
        started_at: now(),
        allow_held,
        dirs: [
            (&s.pair.master, &s.master.0),
            (&s.replica.host, &s.target.0),
        ]
        .into_iter()
        .map(|(h, rep)| {
            let get = |k: &str| rep.conf.get(k).cloned().unwrap_or_default();
            (
                h.clone(),
                (get("configdirectory"), get("sync_shutdown_file")),
            )
        })
        .collect(),
        new_fenced_before: Fence::of(&s.target.0, "").refuses_writes(),
        others,
        ..Default::default()
    }
}

/// The replica the failover promotes: `PAIR:HOST`'s HOST, else the pair's
/// only replica (a pair with several must name one).
pub(crate) fn chosen_replica<'a>(
    pair: &'a crate::config::PairConfig,
    target: &str,
) -> Result<&'a crate::config::ReplicaConfig, StepError> {
    let hosts = || {
        pair.replicas
            .iter()
            .map(|r| r.host.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match target.split_once(':') {
        Some((_, host)) => pair
            .replicas
            .iter()
            .find(|r| r.host == host)
            .ok_or_else(|| {
                format!(
                    "{host} is not a replica of pair {} (its replicas: {}); nothing was changed",
                    pair.name,
                    hosts()
                )
                .into()
            }),
        None => match &pair.replicas[..] {
            [r] => Ok(r),
            rs => Err(format!(
                "pair {} has {} replicas ({}): choose the new master, `failover {}:HOST` (CLI: --to HOST); nothing was changed",
                pair.name,
                rs.len(),
                hosts(),
                pair.name
            ).into()),
        },
    }
}

/// A channel as the operator reads it (`""`: the default channel).
pub(crate) fn shown_channel(c: &str) -> &str {
    if c.is_empty() {
        "\"\""
    } else {
        c
    }
}

/// The master's configured `[CH_]sync_host`/`sync_port` (2005 unset).
fn configured_sync(m: &ProbeReport, channel: &str) -> Option<(String, u16)> {
    let prefix = if channel.is_empty() {
        String::new()
    } else {
        format!("{channel}_")
    };
    let host = m.conf.get(&format!("{prefix}sync_host")).cloned()?;
    let port = m
        .conf
        .get(&format!("{prefix}sync_port"))
        .and_then(|p| p.parse::<u16>().ok())
        .unwrap_or(2005);
    Some((host, port))
}

fn l_of(r: &crate::cyrus::probe::ProbeReport) -> String {
    r.shutdown.clone().unwrap_or_default()
}
