//! The pair lock: one writing runbook per pair at a time, across cyrdecks
//! on any machine. It lives ON the master host
//! (`{configdirectory}/cyrdeck-runbook.lock`, taken atomically by
//! pair_lock.sh), names its holder (operator, machine, runbook, run id,
//! start time), is taken before a runbook's first write and released at its
//! end. A run that crashed keeps it: resuming the same run (same run id)
//! takes it back; anyone else is refused, and `cyrdeck runbook unlock`
//! shows the holder and asks before breaking it. Never broken silently.
//!
//! A holder with no journal (the autopilot inside `supervise`) takes it as
//! a lease (`lease_until=`): if its process dies between acquire and
//! release, nothing would ever resume it, so the next acquirer takes over
//! a lease that has ended, under a mutex, and says whose it was (issue 26,
//! item 4). The lease is longer than the holder's bounded work, so a live
//! holder's never ends. Journalled runbooks take no lease: their crash
//! leaves the lock to `runbook resume`, by design.

use super::StepContext;
use crate::ops::error::StepError;
use crate::remote::{HostConnection, RemoteCommand};
use std::time::Duration;

pub(crate) const SCRIPT: &str = include_str!("pair_lock.sh");
const TIMEOUT: Duration = Duration::from_secs(20);

/// Who holds (or wants) the lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub run_id: String,
    pub operator: String,
    pub machine: String,
    pub runbook: String,
    pub pair: String,
    /// Epoch seconds.
    pub started: u64,
    /// Epoch seconds after which a dead holder's lock may be taken over.
    pub lease_until: Option<u64>,
}

impl Holder {
    pub fn new(run_id: &str, runbook: &str, pair: &str) -> Holder {
        Holder {
            run_id: run_id.to_string(),
            operator: super::audit::operator(),
            machine: super::audit::machine(),
            runbook: runbook.to_string(),
            pair: pair.to_string(),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            lease_until: None,
        }
    }

    /// The lock as a lease of `secs` from now (a holder with no journal).
    pub fn with_lease(mut self, secs: u64) -> Holder {
        self.lease_until = Some(self.started + secs);
        self
    }

    /// The lock file's text: `key=value` lines, values on one line.
    pub fn to_text(&self) -> String {
        let one = |s: &str| s.replace(['\n', '\r'], " ");
        let lease = self
            .lease_until
            .map(|t| format!("\nlease_until={t}"))
            .unwrap_or_default();
        format!(
            "cyrdeck-runbook-lock 1\nrun_id={}\noperator={}\nmachine={}\nrunbook={}\npair={}\nstarted={}{lease}",
            one(&self.run_id),
            one(&self.operator),
            one(&self.machine),
            one(&self.runbook),
            one(&self.pair),
            self.started
        )
    }

    /// Parse a lock file's text (also a one-line form, its lines joined by
    /// spaces, as a terminal may show it). None when it is not cyrdeck's.
    pub fn parse(text: &str) -> Option<Holder> {
        let mut h = Holder {
            run_id: String::new(),
            operator: String::new(),
            machine: String::new(),
            runbook: String::new(),
            pair: String::new(),
            started: 0,
            lease_until: None,
        };
        let mut fields = 0;
        // keys are fixed words: split on " key=" boundaries as well as lines
        let keys = [
            "run_id",
            "operator",
            "machine",
            "runbook",
            "pair",
            "started",
            "lease_until",
        ];
        let mut rest = text.replace('\n', " ");
        rest.insert(0, ' ');
        let mut spans: Vec<(usize, &str)> = keys
            .iter()
            .filter_map(|k| rest.find(&format!(" {k}=")).map(|i| (i, *k)))
            .collect();
        spans.sort();
        for (n, (i, k)) in spans.iter().enumerate() {
            let start = i + k.len() + 2;
            let end = spans.get(n + 1).map(|(j, _)| *j).unwrap_or(rest.len());
            let v = rest.get(start..end).unwrap_or("").trim().to_string();
            fields += 1;
            match *k {
                "run_id" => h.run_id = v,
                "operator" => h.operator = v,
                "machine" => h.machine = v,
                "runbook" => h.runbook = v,
                "pair" => h.pair = v,
                "lease_until" => h.lease_until = v.parse().ok(),
                _ => h.started = v.parse().unwrap_or(0),
            }
        }
        (fields > 0 && !h.run_id.is_empty()).then_some(h)
    }

    /// "failover by alice on deck1 since 2026-12-02 04:31:05 UTC (run …)".
    pub fn describe(&self) -> String {
        let lease = self
            .lease_until
            .map(|t| format!(", lease until {}", utc(t)))
            .unwrap_or_default();
        format!(
            "{} of pair {} by {} on {} since {} (run {}{lease})",
            self.runbook,
            self.pair,
            self.operator,
            self.machine,
            utc(self.started),
            self.run_id
        )
    }
}

fn utc(epoch: u64) -> String {
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    // civil from days (Howard Hinnant's algorithm)
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn argv(conf: &str, action: &str, run_id: &str, text: &str) -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        SCRIPT.into(),
        "cyrdeck-lock".into(),
        action.into(),
        conf.into(),
        run_id.into(),
        text.into(),
    ]
}

/// Why the lock could not be taken or given back.
#[derive(Debug, PartialEq, Eq)]
pub enum LockError {
    /// Another run holds it (its text, parsed when it is cyrdeck's).
    Held(String),
    /// Observe mode, transport or script failure.
    Other(String),
}

impl LockError {
    pub fn message(&self, host: &str) -> String {
        match self {
            LockError::Held(t) => format!(
                "pair locked on {host}: {}; `cyrdeck runbook unlock --pair PAIR` if that run is gone",
                Holder::parse(t)
                    .map(|h| h.describe())
                    .unwrap_or_else(|| t.trim().to_string())
            ),
            LockError::Other(e) => e.clone(),
        }
    }
}

async fn write_action(
    cx: &StepContext<'_>,
    host: &str,
    action: &str,
    holder: &Holder,
    out: &mut Vec<String>,
) -> Result<String, LockError> {
    let conf = cx
        .connection(host)
        .map_err(|e| LockError::Other(e.to_string()))?
        .config()
        .imapd_conf
        .display()
        .to_string();
    let shown = vec![
        "cyrdeck-lock".into(),
        action.into(),
        format!("run_id={}", holder.run_id),
    ];
    let o = cx
        .write(
            host,
            argv(&conf, action, &holder.run_id, &holder.to_text()),
            Some(shown),
            TIMEOUT,
            out,
        )
        .await
        .map_err(|e| LockError::Other(e.to_string()))?;
    let text = String::from_utf8_lossy(&o.stdout).trim().to_string();
    match o.exit_status {
        Some(0) => Ok(text),
        Some(10) => Err(LockError::Held(text)),
        _ => Err(LockError::Other(format!(
            "{host}: lock {action} failed (exit {:?}): {}",
            o.exit_status,
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
    }
}

/// Take the pair lock on `host` for `holder` (already ours: fine).
pub async fn acquire(
    cx: &StepContext<'_>,
    host: &str,
    holder: &Holder,
    out: &mut Vec<String>,
) -> Result<(), LockError> {
    let said = write_action(cx, host, "acquire", holder, out).await?;
    // "taken-over" then the ended lease's text: whose lock this was
    match said.strip_prefix("taken-over") {
        Some(old) => out.push(format!(
            "  pair lock on {host}: taken over from {} (its lease had ended: its holder is gone)",
            Holder::parse(old)
                .map(|h| h.describe())
                .unwrap_or_else(|| old.trim().to_string())
        )),
        None => out.push(format!("  pair lock on {host}: {said}")),
    }
    Ok(())
}

/// Give the pair lock on `host` back (only if `holder` holds it).
pub async fn release(
    cx: &StepContext<'_>,
    host: &str,
    holder: &Holder,
    out: &mut Vec<String>,
) -> Result<(), LockError> {
    write_action(cx, host, "release", holder, out)
        .await
        .map(|said| out.push(format!("  pair lock on {host}: {said}")))
}

/// Break the lock the operator was shown (`run_id`), nothing else.
pub async fn break_lock(
    cx: &StepContext<'_>,
    host: &str,
    run_id: &str,
    out: &mut Vec<String>,
) -> Result<(), LockError> {
    let mut h = Holder::new(run_id, "unlock", &cx.pair.name);
    h.run_id = run_id.to_string();
    write_action(cx, host, "break", &h, out).await.map(|_| ())
}

/// The lock's text on `host` (None when free). Read-only.
pub async fn read(conn: &HostConnection) -> Result<Option<String>, StepError> {
    let conf = conn.config().imapd_conf.display().to_string();
    let o = conn
        .exec(&RemoteCommand::read(argv(&conf, "read", "-", "-")))
        .await
        .map_err(|e| e.to_string())?;
    if !o.success() {
        return Err(format!(
            "reading the lock failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )
        .into());
    }
    let t = String::from_utf8_lossy(&o.stdout).trim().to_string();
    Ok((!t.is_empty()).then_some(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_round_trips_through_the_file_and_the_probe_line() {
        let h = Holder {
            run_id: "deck1-42-1700000000123".into(),
            operator: "alice smith".into(),
            machine: "deck1".into(),
            runbook: "failover".into(),
            pair: "lab".into(),
            started: 1_764_650_000,
            lease_until: None,
        };
        assert_eq!(Holder::parse(&h.to_text()), Some(h.clone()));
        let leased = h.clone().with_lease(3600);
        assert_eq!(leased.lease_until, Some(1_764_653_600));
        assert_eq!(Holder::parse(&leased.to_text()), Some(leased.clone()));
        assert_eq!(
            Holder::parse(&leased.to_text().replace('\n', " ")),
            Some(leased.clone())
        );
        assert!(leased.describe().contains(", lease until 2025-12-02"));
        let probe_line = h.to_text().replace('\n', " ");
        assert_eq!(Holder::parse(&probe_line), Some(h.clone()));
        assert!(h
            .describe()
            .contains("by alice smith on deck1 since 2025-12-02"));
        assert_eq!(Holder::parse("somebody else's file"), None);
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
    }
}
