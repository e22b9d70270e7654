//! Measured lag from the heartbeat (like pt-heartbeat for MySQL): the
//! master's heartbeat INBOX gets a message every interval; sync_server copies
//! the master's "last append date" into the replica's index header, so the
//! replica's value is the time of the newest heartbeat that reached it.
//! Pure: no I/O.

use super::snapshot::{Health, HeartbeatStatus, Problem};
use crate::cyrus::probe::HeartbeatRead;

/// What the heartbeat is measured against.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub warn_lag_secs: u64,
    pub crit_lag_secs: u64,
    /// How often beats are written.
    pub interval_secs: u64,
}

impl Bounds {
    /// A beat older than this means nobody writes them.
    pub fn stale_after(&self) -> u64 {
        (3 * self.interval_secs).max(self.warn_lag_secs)
    }
}

/// The heartbeat of one channel, with the problem it shows, if any.
pub fn evaluate(
    user: &str,
    master: Option<HeartbeatRead>,
    replica: Option<HeartbeatRead>,
    now: u64,
    bounds: Bounds,
    hosts: (&str, &str),
) -> (HeartbeatStatus, Option<Problem>) {
    // an INBOX nothing was ever appended to has append time 0: no beat
    // yet, not one 56 years old
    let at = |r: Option<HeartbeatRead>| match r {
        Some(HeartbeatRead::Seen {
            appended_at,
            last_uid,
        }) if appended_at > 0 && last_uid > 0 => Some(appended_at),
        _ => None,
    };
    let (m, r) = (at(master), at(replica));
    let lag_secs = match (m, r) {
        (Some(m), Some(r)) if r >= m => Some(0),
        (Some(_), Some(r)) => Some(now.saturating_sub(r)),
        _ => None,
    };
    let missing = |host: &str| {
        Problem {
        severity: Health::Warning,
        host: Some(host.to_string()),
        channel: None,
        message: format!(
            "heartbeat mailbox of user {user} is missing on {host} (create it on the master: cm user/{user})"
        ),
    }
    };
    let problem = if master == Some(HeartbeatRead::Missing) {
        Some(missing(hosts.0))
    } else if m.is_some() && replica == Some(HeartbeatRead::Missing) {
        Some(missing(hosts.1))
    } else {
        lag_secs
            .filter(|l| *l >= bounds.warn_lag_secs)
            .map(|l| Problem {
                severity: if l >= bounds.crit_lag_secs {
                    Health::Critical
                } else {
                    Health::Warning
                },
                host: Some(hosts.1.to_string()),
                channel: None,
                message: format!("heartbeat: replica {} is {l}s behind", hosts.1),
            })
    };
    let beat_age_secs = m.map(|m| now.saturating_sub(m));
    let status = HeartbeatStatus {
        user: user.to_string(),
        master_at: m,
        replica_at: r,
        lag_secs,
        beat_age_secs,
        stale: beat_age_secs.is_some_and(|a| a > bounds.stale_after()),
    };
    (status, problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Bounds = Bounds {
        warn_lag_secs: 60,
        crit_lag_secs: 300,
        interval_secs: 10,
    };

    fn seen(t: u64) -> Option<HeartbeatRead> {
        Some(HeartbeatRead::Seen {
            appended_at: t,
            last_uid: 1,
        })
    }

    #[test]
    fn caught_up_is_zero_behind_is_age_of_replica_copy() {
        let (s, p) = evaluate("hb", seen(100), seen(100), 105, B, ("m", "r"));
        assert_eq!(s.lag_secs, Some(0));
        assert!(p.is_none());
        let (s, p) = evaluate("hb", seen(200), seen(100), 205, B, ("m", "r"));
        assert_eq!(s.lag_secs, Some(105));
        // over warn_lag_secs (60): a warning on lag itself
        assert_eq!(p.map(|p| p.severity), Some(Health::Warning));
        let (_, p) = evaluate("hb", seen(200), seen(180), 205, B, ("m", "r"));
        assert!(p.is_none());
        let (s, p) = evaluate("hb", seen(600), seen(100), 700, B, ("m", "r"));
        assert_eq!(s.lag_secs, Some(600));
        let p = p.expect("critical lag");
        assert_eq!(p.severity, Health::Critical);
        assert!(p.message.contains("600s behind"), "{}", p.message);
    }

    #[test]
    fn missing_mailbox_names_the_host() {
        let (s, p) = evaluate("hb", Some(HeartbeatRead::Missing), None, 5, B, ("m", "r"));
        assert_eq!(s.lag_secs, None);
        assert!(p.unwrap().message.contains("missing on m"));
        let (_, p) = evaluate(
            "hb",
            seen(1),
            Some(HeartbeatRead::Missing),
            5,
            B,
            ("m", "r"),
        );
        assert!(p.unwrap().message.contains("missing on r"));
        // an unreadable replica is not a heartbeat problem (reachability says it)
        let (s, p) = evaluate("hb", seen(1), None, 5, B, ("m", "r"));
        assert_eq!((s.lag_secs, p.is_none()), (None, true));
    }

    #[test]
    fn a_beat_nobody_wrote_recently_is_stale() {
        // caught up, but the newest beat is 25 min old: lag 0 proves nothing
        let (s, p) = evaluate("hb", seen(100), seen(100), 1600, B, ("m", "r"));
        assert_eq!(s.lag_secs, Some(0));
        assert_eq!(s.beat_age_secs, Some(1500));
        assert!(s.stale);
        assert!(p.is_none());
        let (s, _) = evaluate("hb", seen(100), seen(100), 125, B, ("m", "r"));
        assert!(!s.stale, "{s:?}");
        // a heartbeat INBOX no beat was ever appended to
        let empty = Some(HeartbeatRead::Seen {
            appended_at: 0,
            last_uid: 0,
        });
        let (s, p) = evaluate("hb", empty, empty, 1_700_000_000, B, ("m", "r"));
        assert_eq!((s.master_at, s.beat_age_secs, s.stale), (None, None, false));
        assert!(p.is_none());
    }
}
