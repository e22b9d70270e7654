//! Before a writing runbook takes the pair lock on the master: do the
//! servers agree with this cyrdeck's config about which host is master?
//! A console started before a failover (or another machine's older config)
//! would otherwise lock the ex-master, which is free, and repair or
//! unexpunge there beside a run on the real master (issue 26, item 3).
//!
//! A host acts as master when its Cyrus logs changes (`sync_log` on) and
//! no cyrdeck failover fence refuses its writes (an ex-master keeps both
//! off after a failover). The config is refused only when its master does
//! not act as one AND another host of the pair does: missing evidence (a
//! host that does not answer, no host acting) is left to the runbook's own
//! precheck, so a promote with the master gone still runs.

use super::host_probe::probe_host;
use super::StepContext;
use crate::cyrus::host_facts::{sync_log_on, Fence};
use crate::ops::error::{Refusal, StepError};

/// One host as the servers tell it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acting {
    pub host: String,
    pub sync_log: bool,
    /// A cyrdeck failover fence (`msg/shutdown`): an ex-master's.
    pub fenced: bool,
}

impl Acting {
    fn is_master(&self) -> bool {
        self.sync_log && !self.fenced
    }
    fn why_not(&self) -> &'static str {
        match (self.sync_log, self.fenced) {
            (false, true) => "logs no changes and is fenced",
            (false, false) => "logs no changes (sync_log off)",
            _ => "is fenced (a failover's msg/shutdown)",
        }
    }
}

/// The refusal's words when the servers say another host is master.
pub fn disagreement(config_master: &Acting, others: &[Acting]) -> Option<String> {
    if config_master.is_master() {
        return None;
    }
    let acting: Vec<&str> = others
        .iter()
        .filter(|a| a.is_master())
        .map(|a| a.host.as_str())
        .collect();
    if acting.is_empty() {
        return None;
    }
    Some(format!(
        "the config says master {m}; the servers say {a}: {m} {why}, {a} logs changes and takes writes. \
         Another cyrdeck changed the roles: reload (the console follows its config file; the CLI reads it at each start: check it); nothing was changed",
        m = config_master.host,
        a = acting.join(", "),
        why = config_master.why_not(),
    ))
}

async fn acting(cx: &StepContext<'_>, host: &str) -> Option<Acting> {
    let r = probe_host(cx, host).await.ok()?;
    Some(Acting {
        host: host.to_string(),
        sync_log: sync_log_on(&r),
        fenced: matches!(Fence::of(&r, cx.run_id), Fence::Ours | Fence::OtherRun(_)),
    })
}

/// Refused when the servers name another master than the config does.
pub async fn servers_agree(cx: &StepContext<'_>) -> Result<(), StepError> {
    let Some(master) = acting(cx, &cx.pair.master).await else {
        return Ok(());
    };
    if master.is_master() {
        return Ok(());
    }
    let mut others = Vec::new();
    for r in &cx.pair.replicas {
        if let Some(a) = acting(cx, &r.host).await {
            others.push(a);
        }
    }
    match disagreement(&master, &others) {
        Some(why) => Err(StepError::Refused(Refusal::Precondition(why))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(h: &str, sync_log: bool, fenced: bool) -> Acting {
        Acting {
            host: h.into(),
            sync_log,
            fenced,
        }
    }

    #[test]
    fn only_another_acting_master_refuses() {
        // the config's master acts as one: fine, whatever the replicas say
        assert_eq!(
            disagreement(&host("mx1", true, false), &[host("mx2", true, false)]),
            None
        );
        // a failover happened elsewhere: mx1 fenced and silent, mx2 master
        let why = disagreement(&host("mx1", false, true), &[host("mx2", true, false)]).unwrap();
        assert!(
            why.starts_with("the config says master mx1; the servers say mx2"),
            "{why}"
        );
        assert!(why.contains("logs no changes and is fenced"), "{why}");
        // nobody acts as master (a failover mid-way, Cyrus reconfigured by
        // hand): the runbook's own precheck decides
        assert_eq!(
            disagreement(&host("mx1", false, true), &[host("mx2", false, true)]),
            None
        );
        assert_eq!(disagreement(&host("mx1", true, true), &[]), None);
    }
}
