//! Prometheus metrics of `supervise`: the latest StatusReport (+ each
//! pair's last check) rendered once per refresh, then served at
//! `GET /metrics` (`--metrics-listen`) and/or written for node-exporter's
//! textfile collector (`--metrics-textfile`). A scrape reads the rendered
//! text: it never triggers SSH.

pub mod exposition;
pub mod parse;
pub mod serve;
pub mod textfile;

use crate::check::last::{self, LastCheck};
use crate::model::snapshot::StatusReport;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

pub struct Exporter {
    latest: watch::Sender<Option<Arc<str>>>,
    textfile: Option<PathBuf>,
    /// Pairs whose last check is exported, and where the records are.
    pairs: Vec<last::PairRef>,
    state_dir: PathBuf,
    listening: Option<SocketAddr>,
    _server: Option<tokio::task::JoinHandle<()>>,
}

impl Exporter {
    /// Binds `listen` now (a port in use fails supervise at start, not later).
    pub async fn start(
        listen: Option<SocketAddr>,
        textfile: Option<PathBuf>,
        pairs: Vec<last::PairRef>,
    ) -> std::io::Result<Exporter> {
        let (latest, rx) = watch::channel(None);
        let (server, listening) = match listen {
            Some(addr) => {
                let l = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                    std::io::Error::new(e.kind(), format!("--metrics-listen {addr}: {e}"))
                })?;
                let bound = l.local_addr()?;
                (Some(serve::spawn(l, rx)), Some(bound))
            }
            None => (None, None),
        };
        Ok(Exporter {
            latest,
            textfile,
            pairs,
            state_dir: crate::state::dir(),
            listening,
            _server: server,
        })
    }

    /// The address the listener is bound to (port 0 resolved).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listening
    }

    /// Render `report` for the next scrapes and write the textfile. An
    /// error writing the textfile is returned (the listener has the new
    /// text already).
    pub fn publish(&self, report: &StatusReport) -> std::io::Result<()> {
        let checks: Vec<LastCheck> = self
            .pairs
            .iter()
            .filter_map(|p| last::load(&self.state_dir, p))
            .collect();
        let text: Arc<str> = exposition::render(report, &checks).into();
        self.latest.send_replace(Some(text.clone()));
        match &self.textfile {
            Some(p) => textfile::write(p, &text).map_err(|e| {
                std::io::Error::new(e.kind(), format!("--metrics-textfile {}: {e}", p.display()))
            }),
            None => Ok(()),
        }
    }
}
