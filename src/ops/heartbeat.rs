//! Writing the heartbeat on a pair's master (see model::heartbeat for how the
//! lag is read). A mutation like any other: needs the write capability (none
//! in observe mode) and is audited. Cyrus facts (checked in the lab):
//! `deliver` reaches lmtpd over the `lmtpsocket` unix socket, so the master
//! needs an LMTP unix service (Debian's default cyrus.conf has `lmtpunix`);
//! `ipurge -d 0` removes every message, and keeps the mailbox's last append
//! date, which sync_server copies to the replica.

use super::StepContext;
use crate::config::{Config, PairConfig};
use crate::remote::HostConnection;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) const SCRIPT: &str = include_str!("heartbeat.sh");

/// One beat on `pair`'s master; the master's clock at the beat.
pub async fn beat(
    cfg: &Config,
    conns: &BTreeMap<String, Arc<HostConnection>>,
    pair: &PairConfig,
) -> Result<u64, String> {
    let cx = StepContext::new(cfg, pair, "", "heartbeat", conns);
    beat_on(&cx, &pair.master).await
}

/// One beat (or a failover's canary) delivered on `host`; its clock then.
pub async fn beat_on(cx: &StepContext<'_>, host: &str) -> Result<u64, String> {
    let pair = cx.pair;
    let hb = pair
        .heartbeat
        .as_ref()
        .ok_or_else(|| format!("pair {} has no heartbeat_user configured", pair.name))?;
    let h = cx.connection(host)?.config().clone();
    // checked at config load; again here, where it becomes an argument
    crate::cyrus::names::user_arg(&hb.user)?;
    let argv = vec![
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
        "cyrdeck-heartbeat".into(),
        h.imapd_conf.display().to_string(),
        h.bin_dir.display().to_string(),
        hb.user.clone(),
    ];
    let shown = vec!["cyrdeck-heartbeat".into(), hb.user.clone()];
    let mut out = Vec::new();
    let res = cx
        .write(host, argv, Some(shown), h.exec_timeout, &mut out)
        .await?;
    let text = String::from_utf8_lossy(&res.stdout);
    if !res.success() {
        let err = String::from_utf8_lossy(&res.stderr);
        return Err(format!(
            "heartbeat on {host} failed: {}",
            err.trim().lines().last().unwrap_or("no error text")
        ));
    }
    text.trim()
        .parse()
        .map_err(|_| format!("heartbeat on {host}: unexpected output {text:?}"))
}

/// Beats each pair with a heartbeat once its interval has passed; skipped
/// in observe mode. Remembers the last failure per pair to show it.
#[derive(Default)]
pub struct Heartbeats {
    last: BTreeMap<String, Instant>,
    pub errors: BTreeMap<String, String>,
}

impl Heartbeats {
    pub async fn tick(&mut self, cfg: &Config, conns: &BTreeMap<String, Arc<HostConnection>>) {
        for pair in cfg.pairs.values() {
            let Some(hb) = &pair.heartbeat else { continue };
            let writable = conns
                .get(&pair.master)
                .is_some_and(|c| c.write_capability().is_some());
            let due = self
                .last
                .get(&pair.name)
                .is_none_or(|t| t.elapsed() + Duration::from_millis(200) >= hb.interval);
            if !writable || !due {
                continue;
            }
            self.last.insert(pair.name.clone(), Instant::now());
            match beat(cfg, conns, pair).await {
                Ok(_) => self.errors.remove(&pair.name),
                Err(e) => self.errors.insert(pair.name.clone(), e),
            };
        }
    }
}
