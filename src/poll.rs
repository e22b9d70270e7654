//! One refresh: every host probed concurrently (ONE exec each, at most
//! `probe_concurrency` at once), history updated, every pair evaluated.
//! Hosts that fail keep their last data. With `wait_at_most` (console,
//! supervise) a refresh stops waiting for a slow or dead host: its probe
//! goes on and is read by a later refresh, so one host never holds back
//! the fleet's other pairs.

use crate::config::Config;
use crate::cyrus::host_facts::{channel_clients, service_channel};
use crate::cyrus::loglines::{child_exit, classify_chunk};
use crate::cyrus::logtime::LineClock;
use crate::cyrus::probe::{self, ProbeReport};
use crate::model::health::{self, HostView};
use crate::model::history::HostHistory;
use crate::model::snapshot::{Health, StatusReport};
use crate::remote::{ExecOutput, HostConnection, RemoteError};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::{Id, JoinSet};

/// A finished probe: host, result, the exec's time (not a permit's wait).
type Probed = (String, Result<ExecOutput, RemoteError>, Duration);

#[derive(Default, Clone)]
struct ProbeMeta {
    error: Option<String>,
    ms: Option<u64>,
    bytes: Option<usize>,
}

pub struct Poller {
    cfg: Arc<Config>,
    conns: BTreeMap<String, Arc<HostConnection>>,
    hist: BTreeMap<String, HostHistory>,
    meta: BTreeMap<String, ProbeMeta>,
    /// Some when this poller acts by itself (console, supervise): writes the
    /// pairs' heartbeats and runs the autopilot.
    heartbeats: Option<crate::ops::heartbeat::Heartbeats>,
    autopilot: Option<crate::ops::autopilot::Autopilot>,
    /// Probes on their way, kept across refreshes (one per host at most).
    probes: JoinSet<Probed>,
    in_flight: BTreeMap<Id, (String, Instant)>,
    permits: Arc<Semaphore>,
    wait: Option<Duration>,
}

impl Poller {
    pub fn new(cfg: Arc<Config>, observe: bool) -> Self {
        let conns = cfg
            .hosts
            .iter()
            .map(|(n, h)| {
                (
                    n.clone(),
                    Arc::new(HostConnection::new(
                        h.clone(),
                        observe,
                        crate::scripts::all(),
                    )),
                )
            })
            .collect();
        Poller {
            permits: Arc::new(Semaphore::new(cfg.probe_concurrency.max(1))),
            cfg,
            conns,
            hist: BTreeMap::new(),
            meta: BTreeMap::new(),
            heartbeats: None,
            autopilot: None,
            probes: JoinSet::new(),
            in_flight: BTreeMap::new(),
            wait: None,
        }
    }

    /// A refresh reports after at most `d`: hosts still probing keep their
    /// last data (none yet: "no answer yet"). Without it (one-shot
    /// `status`), a refresh waits for every host's answer or exec timeout.
    pub fn wait_at_most(mut self, d: Duration) -> Self {
        self.wait = Some(d);
        self
    }

    /// After each refresh, write each pair's heartbeat once its interval has
    /// passed and let the autopilot act (never in observe mode: the
    /// transport has no write capability).
    pub fn supervising(mut self) -> Self {
        self.heartbeats = Some(Default::default());
        self.autopilot = Some(Default::default());
        self
    }

    /// Re-read the config file if it changed and follow its roles; the
    /// reload's outcome for the caller to say. The hosts are the same
    /// (`LiveConfig` refuses otherwise), so connections and history stay.
    pub fn follow(&mut self, live: &crate::live_config::LiveConfig) -> crate::live_config::Reload {
        let r = live.reload_if_changed();
        if matches!(r, crate::live_config::Reload::Applied(_)) {
            self.cfg = live.get();
        }
        r
    }

    /// Every host's shared connection (runbooks reuse them).
    pub fn connections(&self) -> BTreeMap<String, Arc<HostConnection>> {
        self.conns.clone()
    }

    pub fn connection(&self, host: &str) -> Option<Arc<HostConnection>> {
        self.conns.get(host).cloned()
    }

    /// Let the autopilot's actions and the beats in flight finish (before
    /// exiting).
    pub async fn settle(&mut self) {
        if let Some(ap) = &self.autopilot {
            ap.settle(std::time::Duration::from_secs(300)).await;
        }
        if let Some(hb) = &mut self.heartbeats {
            hb.settle().await;
        }
    }

    /// Hosts that take part in a pair (others are never contacted).
    fn hosts_in_pairs(&self) -> BTreeSet<String> {
        self.cfg
            .pairs
            .values()
            .flat_map(|p| {
                std::iter::once(p.master.clone()).chain(p.replicas.iter().map(|r| r.host.clone()))
            })
            .collect()
    }

    /// Channels each host serves as a master.
    fn master_channels(&self, host: &str) -> BTreeSet<String> {
        self.cfg
            .pairs
            .values()
            .filter(|p| p.master == host)
            .flat_map(|p| p.replicas.iter().map(|r| r.channel.clone()))
            .collect()
    }

    /// The heartbeat user the probe of `host` reads (its first pair with one).
    fn heartbeat_user(&self, host: &str) -> Option<String> {
        self.cfg
            .pairs
            .values()
            .filter(|p| p.master == host || p.replicas.iter().any(|r| r.host == host))
            .find_map(|p| p.heartbeat.as_ref().map(|h| h.user.clone()))
    }

    pub async fn refresh(&mut self) -> StatusReport {
        let busy: BTreeSet<String> = self.in_flight.values().map(|(n, _)| n.clone()).collect();
        for name in self.hosts_in_pairs().difference(&busy) {
            let conn = self.conns[name].clone();
            let cursor = self
                .hist
                .get(name)
                .map(|h| h.cursor.clone())
                .unwrap_or_default();
            let hb_user = self.heartbeat_user(name);
            let permits = self.permits.clone();
            let host = name.clone();
            let started = Instant::now();
            let task = self.probes.spawn(async move {
                // a semaphore never closed: the permit always comes
                let _permit = permits.acquire_owned().await;
                let cmd = probe::command(conn.config(), &cursor, hb_user.as_deref());
                let t = Instant::now();
                let res = conn.exec(&cmd).await;
                (host, res, t.elapsed())
            });
            self.in_flight.insert(task.id(), (name.clone(), started));
        }
        let deadline = self.wait.map(|w| tokio::time::Instant::now() + w);
        loop {
            let next = match deadline {
                None => self.probes.join_next_with_id().await,
                Some(d) => {
                    match tokio::time::timeout_at(d, self.probes.join_next_with_id()).await {
                        Ok(next) => next,
                        Err(_) => break,
                    }
                }
            };
            let Some(joined) = next else { break };
            let (name, res, elapsed) = match joined {
                Ok((id, done)) => {
                    self.in_flight.remove(&id);
                    done
                }
                Err(e) => {
                    // a panicked probe: its host is probed again next time
                    if let Some((name, _)) = self.in_flight.remove(&e.id()) {
                        self.meta.insert(
                            name,
                            ProbeMeta {
                                error: Some(format!("probe task failed: {e}")),
                                ..Default::default()
                            },
                        );
                    }
                    continue;
                }
            };
            let meta = self.read_probe(&name, res, elapsed);
            self.meta.insert(name, meta);
        }
        // still probing and never answered: say so, not "no data"
        for (name, since) in self.in_flight.values() {
            if self.hist.get(name).is_none_or(|h| h.last_report.is_none()) {
                self.meta.insert(
                    name.clone(),
                    ProbeMeta {
                        error: Some(format!(
                            "no answer yet (probe running for {:.0}s)",
                            since.elapsed().as_secs_f64()
                        )),
                        ..Default::default()
                    },
                );
            }
        }
        let report = self.evaluate();
        if let Some(ap) = &mut self.autopilot {
            ap.act(&self.cfg, &self.conns, &report);
        }
        // after the probe, so the next one sees the beat replicated; on
        // their own tasks, so a dead master delays no report
        if let Some(hb) = &mut self.heartbeats {
            hb.tick(&self.cfg, &self.conns, &report);
        }
        report
    }

    fn read_probe(
        &mut self,
        name: &str,
        res: Result<ExecOutput, RemoteError>,
        elapsed: Duration,
    ) -> ProbeMeta {
        let out = match res {
            Err(e) => {
                return ProbeMeta {
                    error: Some(e.to_string()),
                    ..Default::default()
                }
            }
            Ok(out) => out,
        };
        let bytes = Some(out.stdout.len() + out.stderr.len());
        let ms = Some(elapsed.as_millis() as u64);
        match probe::parse(&out.stdout) {
            Ok(report) => {
                self.absorb(name, report);
                ProbeMeta {
                    error: None,
                    ms,
                    bytes,
                }
            }
            Err(e) => ProbeMeta {
                error: Some(format!(
                    "probe output unreadable: {e} (exit {:?}; stderr: {})",
                    out.exit_status,
                    String::from_utf8_lossy(&out.stderr)
                        .chars()
                        .take(200)
                        .collect::<String>()
                )),
                ms,
                bytes,
            },
        }
    }

    fn absorb(&mut self, name: &str, report: ProbeReport) {
        let host = self.cfg.host(name);
        let conf = host.imapd_conf.display().to_string();
        let prefix = host.syslog_prefix.clone();
        let channels = self.master_channels(name);
        let h = self.hist.entry(name.to_string()).or_default();
        if let Some(chunk) = &report.log {
            let clock = LineClock {
                now: report.now as i64,
                zone: report.zone.clone().unwrap_or_default(),
            };
            h.observe_log(report.now, !chunk.text.trim().is_empty());
            // a client's end ties its pid to its channel before its lines
            // are judged (a restart loop outlives no probe)
            for line in chunk.text.lines() {
                if let Some((service, pid)) = child_exit(line, prefix.as_deref(), &clock) {
                    if let Some(ch) = service_channel(&report, &service) {
                        h.observe_exit(pid, ch);
                    }
                }
            }
            h.push_events(classify_chunk(&chunk.text, prefix.as_deref(), &clock));
            // a journal read that found no new entry keeps the old cursor
            if chunk.cursor.journal.is_some() || h.cursor.journal.is_none() {
                h.cursor = chunk.cursor.clone();
            }
        }
        for ch in &channels {
            h.observe_queue(ch, report.now, &report.sync_files);
            let pids: Vec<u32> = channel_clients(&report, &conf, ch).map(|p| p.pid).collect();
            h.observe_client(ch, pids);
        }
        h.last_report = Some((report, Instant::now()));
    }

    fn evaluate(&self) -> StatusReport {
        let empty = HostHistory::default();
        let view = |name: &str| {
            let meta = self.meta.get(name).cloned().unwrap_or_default();
            HostView {
                cfg: self.cfg.host(name),
                error: meta.error,
                history: self.hist.get(name).unwrap_or(&empty),
                probe_ms: meta.ms,
                probe_bytes: meta.bytes,
            }
        };
        let pairs: Vec<_> = self
            .cfg
            .pairs
            .values()
            .map(|p| {
                let mut status = health::evaluate_pair(&self.cfg, p, &view);
                let failed = self.heartbeats.as_ref().and_then(|h| h.errors.get(&p.name));
                if let Some(e) = failed {
                    status.problems.push(crate::model::snapshot::Problem {
                        severity: Health::Warning,
                        host: Some(p.master.clone()),
                        channel: None,
                        message: format!("heartbeat not written: {e}"),
                    });
                    status.health = Health::worst(status.health, Health::Warning);
                }
                status
            })
            .collect();
        let health = pairs
            .iter()
            .fold(Health::Ok, |h, p| Health::worst(h, p.health));
        StatusReport {
            generated_at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0),
            health,
            exit_code: health.exit_code(),
            pairs,
            actions: self
                .autopilot
                .as_ref()
                .and_then(|a| a.outcomes.lock().ok().map(|o| o.clone()))
                .unwrap_or_default(),
        }
    }
}
