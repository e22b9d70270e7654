//! Writing the heartbeat on a pair's master (see model::heartbeat for how the
//! lag is read). A mutation like any other: needs the write capability (none
//! in observe mode) and is audited. Cyrus facts (checked in the lab):
//! `deliver` reaches lmtpd over the `lmtpsocket` unix socket, so the master
//! needs an LMTP unix service (Debian's default cyrus.conf has `lmtpunix`);
//! `ipurge -d 0` removes every message, and keeps the mailbox's last append
//! date, which sync_server copies to the replica.

use super::StepContext;
use crate::config::{Config, PairConfig};
use crate::ops::error::StepError;
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
) -> Result<u64, StepError> {
    beat_unless_fresh(cfg, conns, pair, 0).await
}

/// A beat on `pair`'s master unless its newest beat (by anyone) is younger
/// than `min_age_secs`, checked on the master just before writing (0:
/// always write). Ok(the master's clock, or the fresh beat's time).
pub async fn beat_unless_fresh(
    cfg: &Config,
    conns: &BTreeMap<String, Arc<HostConnection>>,
    pair: &PairConfig,
    min_age_secs: u64,
) -> Result<u64, StepError> {
    let cx = StepContext::new(cfg, pair, "", super::Actor::Heartbeat, conns);
    write_beat(&cx, &pair.master, min_age_secs).await
}

/// One beat (or a failover's canary) delivered on `host`; its clock then.
pub async fn beat_on(cx: &StepContext<'_>, host: &str) -> Result<u64, StepError> {
    write_beat(cx, host, 0).await
}

async fn write_beat(cx: &StepContext<'_>, host: &str, min_age_secs: u64) -> Result<u64, StepError> {
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
        min_age_secs.to_string(),
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
        )
        .into());
    }
    // "fresh T": another writer's beat at T is young enough: none written
    let t = text.trim();
    t.strip_prefix("fresh ")
        .unwrap_or(t)
        .parse()
        .map_err(|_| format!("heartbeat on {host}: unexpected output {text:?}").into())
}

/// Beats each pair with a heartbeat once its interval has passed; skipped
/// in observe mode. Remembers the last failure per pair to show it.
///
/// One writer per pair, whoever it is: a beat is written only when the
/// master's newest beat (this refresh's probe: `beat_age_secs`) is at
/// least an interval old. Two consoles and a `supervise` on one pair then
/// write about one beat per interval between them, not one each (two
/// consoles used to double the beats and fill the audit log).
#[derive(Default)]
pub struct Heartbeats {
    last: BTreeMap<String, Instant>,
    pub errors: BTreeMap<String, String>,
    /// Beats being written, one task per pair: a dead master holds back
    /// only its own pair's next beat, never the refresh (a fleet).
    writing: tokio::task::JoinSet<(String, Result<u64, StepError>)>,
    busy: std::collections::BTreeSet<String>,
}

/// Is a beat due? `own_elapsed`: since this writer's last beat (None:
/// never); `newest_age`: age of the master's newest beat by anyone (None:
/// unknown, e.g. the master's probe failed).
pub fn due(own_elapsed: Option<Duration>, newest_age: Option<u64>, interval: Duration) -> bool {
    let own_due = own_elapsed.is_none_or(|e| e + Duration::from_millis(200) >= interval);
    // another writer's beat younger than the interval makes this one moot
    let fresh = newest_age.is_some_and(|a| a + 1 < interval.as_secs().max(1));
    own_due && !fresh
}

impl Heartbeats {
    /// Wait for the beats being written (before exiting).
    pub async fn settle(&mut self) {
        while let Some(done) = self.writing.join_next().await {
            let Ok((pair, res)) = done else { continue };
            self.busy.remove(&pair);
            match res {
                Ok(_) => self.errors.remove(&pair),
                Err(e) => self.errors.insert(pair, e.to_string()),
            };
        }
    }

    pub fn tick(
        &mut self,
        cfg: &Arc<Config>,
        conns: &BTreeMap<String, Arc<HostConnection>>,
        report: &crate::model::snapshot::StatusReport,
    ) {
        // the beats that finished since the last refresh
        while let Some(done) = self.writing.try_join_next() {
            let Ok((pair, res)) = done else { continue };
            self.busy.remove(&pair);
            match res {
                Ok(_) => self.errors.remove(&pair),
                Err(e) => self.errors.insert(pair, e.to_string()),
            };
        }
        for pair in cfg.pairs.values() {
            let Some(hb) = &pair.heartbeat else { continue };
            if self.busy.contains(&pair.name) {
                continue;
            }
            let writable = conns
                .get(&pair.master)
                .is_some_and(|c| c.write_capability().is_some());
            let newest_age = report
                .pairs
                .iter()
                .find(|p| p.name == pair.name)
                .and_then(|p| {
                    p.channels
                        .iter()
                        .filter_map(|c| c.heartbeat.as_ref()?.beat_age_secs)
                        .min()
                });
            let own = self.last.get(&pair.name).map(Instant::elapsed);
            if !writable || !due(own, newest_age, hb.interval) {
                continue;
            }
            self.last.insert(pair.name.clone(), Instant::now());
            // the master checks again right before writing: another
            // writer's beat that landed after this refresh's probe wins
            let min_age = hb.interval.as_secs().saturating_sub(1);
            let (cfg, conns, pair) = (cfg.clone(), conns.clone(), pair.clone());
            self.busy.insert(pair.name.clone());
            self.writing.spawn(async move {
                let res = beat_unless_fresh(&cfg, &conns, &pair, min_age).await;
                (pair.name, res)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::due;
    use std::time::Duration;

    #[test]
    fn one_writer_per_pair_a_fresh_beat_by_anyone_makes_a_beat_moot() {
        let i = Duration::from_secs(5);
        // never beat here, nothing known of the master: beat
        assert!(due(None, None, i));
        // another console beat 2 s ago: not now
        assert!(!due(None, Some(2), i));
        // the newest beat is an interval old: due
        assert!(due(None, Some(5), i));
        // this writer beat 1 s ago: not yet, whatever the master says
        assert!(!due(Some(Duration::from_secs(1)), Some(9), i));
        assert!(due(Some(Duration::from_secs(5)), Some(6), i));
    }
}
