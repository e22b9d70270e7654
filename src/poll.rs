//! One refresh: every host probed concurrently (ONE exec each), history
//! updated, every pair evaluated. Hosts that fail keep their last data.

use crate::config::Config;
use crate::cyrus::loglines::classify_chunk;
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
        }
    }

    /// Every host's shared connection (runbooks reuse them).
    pub fn connections(&self) -> BTreeMap<String, Arc<HostConnection>> {
        self.conns.clone()
    }

    pub fn connection(&self, host: &str) -> Option<Arc<HostConnection>> {
        self.conns.get(host).cloned()
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

    pub async fn refresh(&mut self) -> StatusReport {
        let mut set = JoinSet::new();
        for name in self.hosts_in_pairs() {
            let conn = self.conns[&name].clone();
            let cursor = self.hist.get(&name).map(|h| h.cursor).unwrap_or_default();
            set.spawn(async move {
                let cmd = probe::command(conn.config(), cursor);
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
        self.evaluate()
    }

    fn absorb(&mut self, name: &str, report: ProbeReport) {
        let host = self.cfg.host(name);
        let conf = host.imapd_conf.display().to_string();
        let prefix = host.syslog_prefix.clone();
        let channels = self.master_channels(name);
        let h = self.hist.entry(name.to_string()).or_default();
        if let Some(chunk) = &report.log {
            let aligned = chunk.start == 0 || chunk.start == h.cursor.offset;
            let text = if aligned {
                chunk.text.as_str()
            } else {
                // started mid-line (first read or cut to the size limit)
                chunk.text.split_once('\n').map(|(_, r)| r).unwrap_or("")
            };
            h.push_events(classify_chunk(text, prefix.as_deref()));
            h.cursor = chunk.cursor;
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
            .map(|p| health::evaluate_pair(&self.cfg, p, &view))
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
        }
    }
}
