//! `cyrdeck doctor` and the console's Doctor: every host of a pair read
//! (one read-only exec each, cyrus/doctor.rs) and judged (model/doctor.rs).

use crate::config::PairConfig;
use crate::cyrus::doctor;
use crate::model::doctor::{diagnose, Finding};
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
        match c.exec(&doctor::command(c.config())).await {
            Ok(o) => match doctor::parse(&String::from_utf8_lossy(&o.stdout)) {
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
        findings: diagnose(pair, &facts),
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
