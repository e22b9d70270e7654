//! One refresh: every host probed concurrently (ONE exec each), history
//! updated, every pair evaluated. Hosts that fail keep their last data.

use crate::config::Config;
use crate::cyrus::loglines::classify_chunk;
use crate::cyrus::logtime::LineClock;
use crate::cyrus::probe::{self, ProbeReport};
use crate::model::health::{self, channel_clients, HostView};
use crate::model::history::HostHistory;
use crate::model::snapshot::{Health, StatusReport};
use crate::remote::HostConnection;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;
use tokio::task::JoinSet;

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
}

impl Poller {
    pub fn new(cfg: Arc<Config>, observe: bool) -> Self {
        let conns = cfg
            .hosts
            .iter()
            .map(|(n, h)| (n.clone(), Arc::new(HostConnection::new(h.clone(), observe))))
            .collect();
        Poller {
            cfg,
            conns,
            hist: BTreeMap::new(),
            meta: BTreeMap::new(),
            heartbeats: None,
            autopilot: None,
        }
    }

    /// After each refresh, write each pair's heartbeat once its interval has
    /// passed and let the autopilot act (never in observe mode: the
    /// transport has no write capability).
    pub fn supervising(mut self) -> Self {
        self.heartbeats = Some(Default::default());
        self.autopilot = Some(Default::default());
        self
    }

    /// Every host's shared connection (runbooks reuse them).
    pub fn connections(&self) -> BTreeMap<String, Arc<HostConnection>> {
        self.conns.clone()
    }

    pub fn connection(&self, host: &str) -> Option<Arc<HostConnection>> {
        self.conns.get(host).cloned()
    }

    /// Let the autopilot's actions in flight finish (before exiting).
    pub async fn settle(&self) {
        if let Some(ap) = &self.autopilot {
            ap.settle(std::time::Duration::from_secs(300)).await;
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
        let mut set = JoinSet::new();
        for name in self.hosts_in_pairs() {
            let conn = self.conns[&name].clone();
            let cursor = self
                .hist
                .get(&name)
                .map(|h| h.cursor.clone())
                .unwrap_or_default();
            let hb_user = self.heartbeat_user(&name);
            set.spawn(async move {
                let cmd = probe::command(conn.config(), &cursor, hb_user.as_deref());
                let started = Instant::now();
                let res = conn.exec(&cmd).await;
                (name, res, started.elapsed())
            });
        }
        while let Some(joined) = set.join_next().await {
            let Ok((name, res, elapsed)) = joined else {
                continue;
            };
            let meta = match res {
                Err(e) => ProbeMeta {
                    error: Some(e.to_string()),
                    ..Default::default()
                },
                Ok(out) => {
                    let bytes = out.stdout.len() + out.stderr.len();
                    let ms = Some(elapsed.as_millis() as u64);
                    match probe::parse(&out.stdout) {
                        Ok(report) => {
                            self.absorb(&name, report);
                            ProbeMeta {
                                error: None,
                                ms,
                                bytes: Some(bytes),
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
                            bytes: Some(bytes),
                        },
                    }
                }
            };
            self.meta.insert(name, meta);
        }
        let report = self.evaluate();
        if let Some(ap) = &mut self.autopilot {
            ap.act(&self.cfg, &self.conns, &report);
        }
        // after the probe, so the next one sees the beat replicated
        if let Some(hb) = &mut self.heartbeats {
            hb.tick(&self.cfg, &self.conns, &report).await;
        }
        report
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
