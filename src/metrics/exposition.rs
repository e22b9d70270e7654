//! A StatusReport (+ the pairs' last checks) as Prometheus text exposition
//! format 0.0.4. Pure: no I/O, no clock (ages come from the report).
//! Each family's samples are contiguous after its HELP and TYPE lines; a
//! series (name + labels) appears at most once; label values are escaped
//! (backslash, double quote, newline); values the report does not know
//! (no heartbeat, first refresh's drain rate) are left out, not faked.

use crate::check::last::LastCheck;
use crate::model::health::channel_label;
use crate::model::snapshot::StatusReport;
use std::collections::BTreeSet;
use std::fmt::Write;

/// `Content-Type` of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Family {
    name: &'static str,
    kind: &'static str,
    help: &'static str,
    seen: BTreeSet<String>,
    lines: String,
}

impl Family {
    fn new(name: &'static str, kind: &'static str, help: &'static str) -> Family {
        Family {
            name,
            kind,
            help,
            seen: BTreeSet::new(),
            lines: String::new(),
        }
    }

    /// One sample; a second one with the same labels is dropped (the first
    /// wins), so the output never holds a duplicate series.
    fn add(&mut self, labels: &[(&str, &str)], value: f64) {
        let mut l = String::new();
        for (i, (k, v)) in labels.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(l, "{sep}{k}=\"{}\"", escape_label(v));
        }
        if !self.seen.insert(l.clone()) {
            return;
        }
        let labels = if l.is_empty() { l } else { format!("{{{l}}}") };
        let _ = writeln!(self.lines, "{}{labels} {}", self.name, value_text(value));
    }

    fn render(&self, out: &mut String) {
        if self.lines.is_empty() {
            return;
        }
        let _ = writeln!(out, "# HELP {} {}", self.name, escape_help(self.help));
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        out.push_str(&self.lines);
    }
}

/// Label values: `\` `"` and newline escaped (exposition format 0.0.4).
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text: `\` and newline escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn value_text(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn flag(b: bool) -> f64 {
    if b {
        1.0
    } else {
        0.0
    }
}

/// Every metric family, in output order: (name, type, help). docs/monitoring.md's
/// metric list is this table.
pub const FAMILIES: &[(&str, &str, &str)] = &[
    ("cyrdeck_last_refresh_timestamp_seconds", "gauge", "When the status these metrics show was produced (epoch seconds)."),
    ("cyrdeck_health", "gauge", "Overall health = the exit code of cyrdeck status: 0 ok, 1 warning, 2 critical, 3 unknown."),
    ("cyrdeck_pair_health", "gauge", "Pair health: 0 ok, 1 warning, 2 critical, 3 unknown."),
    ("cyrdeck_pair_stuck_users", "gauge", "Distinct users (or mailboxes naming no user) that keep failing to replicate or have entries held."),
    ("cyrdeck_host_info", "gauge", "Always 1; the host's role in the pair as a label."),
    ("cyrdeck_host_reachable", "gauge", "1 when the host's last probe succeeded, else 0."),
    ("cyrdeck_host_probe_duration_seconds", "gauge", "Duration of the host's last probe (one SSH exec)."),
    ("cyrdeck_host_data_age_seconds", "gauge", "Age of the host data shown (grows while the host is unreachable)."),
    ("cyrdeck_channel_info", "gauge", "Always 1; the channel's master and replica hosts as labels."),
    ("cyrdeck_channel_health", "gauge", "Channel health: 0 ok, 1 warning, 2 critical, 3 unknown."),
    ("cyrdeck_channel_pending_entries", "gauge", "Sync log entries waiting on the master (log + log-run)."),
    ("cyrdeck_channel_oldest_pending_age_seconds", "gauge", "Age of the oldest pending entry (0 when nothing is pending)."),
    ("cyrdeck_channel_heartbeat_lag_seconds", "gauge", "Measured lag from the heartbeat mailbox (0 = the replica has the newest heartbeat)."),
    ("cyrdeck_channel_drain_rate_per_second", "gauge", "Pending entries drained per second between the last two refreshes (a lower bound)."),
    ("cyrdeck_channel_client_running", "gauge", "1 when a rolling sync_client runs for the channel, else 0."),
    ("cyrdeck_channel_client_restarts_total", "counter", "Distinct sync_client processes seen for the channel minus one, since this cyrdeck started."),
    ("cyrdeck_channel_recent_bailouts", "gauge", "sync_client bail-out lines logged on the channel's master in the last 60 s: the count the hot-loop rule uses (shared by channels of one master)."),
    ("cyrdeck_channel_held_entries", "gauge", "Sync log entries set aside in held files (quarantined users)."),
    ("cyrdeck_check_last_run_timestamp_seconds", "gauge", "When the last whole-pair integrity check (cyrdeck check) finished (epoch seconds)."),
    ("cyrdeck_check_exit_code", "gauge", "Exit code of the last whole-pair check: 0 in sync, 1 differences, 2 mailboxes unreadable."),
    ("cyrdeck_check_differences", "gauge", "Differences the last whole-pair check found, by kind (in_flight and deleted_purged_on_one_side are not divergences)."),
    ("cyrdeck_check_divergences", "gauge", "Differences of the last whole-pair check that are divergences (all kinds but in_flight and deleted_purged_on_one_side)."),
];

struct Families(Vec<Family>);

impl Families {
    /// A sample of the family `name` (one of FAMILIES: the tests render
    /// every family, so a misspelt name cannot pass them).
    fn add(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        match self.0.iter_mut().find(|f| f.name == name) {
            Some(f) => f.add(labels, value),
            None => debug_assert!(false, "unknown metric family {name}"),
        }
    }
}

/// The exposition of `report`, with `checks` (the pairs' last checks; a
/// check of a pair the report does not show is exported too).
pub fn render(report: &StatusReport, checks: &[LastCheck]) -> String {
    let mut m = Families(
        FAMILIES
            .iter()
            .map(|(n, k, h)| Family::new(n, k, h))
            .collect(),
    );
    m.add(
        "cyrdeck_last_refresh_timestamp_seconds",
        &[],
        report.generated_at as f64,
    );
    m.add("cyrdeck_health", &[], report.health.exit_code() as f64);
    for p in &report.pairs {
        let pair = p.name.as_str();
        let l = [("pair", pair)];
        m.add("cyrdeck_pair_health", &l, p.health.exit_code() as f64);
        let stuck: BTreeSet<&str> = p.stuck.iter().map(|s| s.subject()).collect();
        m.add("cyrdeck_pair_stuck_users", &l, stuck.len() as f64);
        for h in &p.hosts {
            let l = [("pair", pair), ("host", h.name.as_str())];
            m.add("cyrdeck_host_info", &[l[0], l[1], ("role", h.role)], 1.0);
            m.add("cyrdeck_host_reachable", &l, flag(h.reachable));
            if let Some(ms) = h.probe_ms {
                m.add(
                    "cyrdeck_host_probe_duration_seconds",
                    &l,
                    ms as f64 / 1000.0,
                );
            }
            if let Some(a) = h.data_age_secs {
                m.add("cyrdeck_host_data_age_seconds", &l, a);
            }
        }
        for c in &p.channels {
            let label = channel_label(&c.channel);
            let l = [("pair", pair), ("channel", label.as_str())];
            let info = [l[0], l[1], ("master", &c.master), ("replica", &c.replica)];
            m.add("cyrdeck_channel_info", &info, 1.0);
            m.add("cyrdeck_channel_health", &l, c.health.exit_code() as f64);
            let q = &c.queue;
            m.add("cyrdeck_channel_pending_entries", &l, q.pending as f64);
            let oldest = match q.oldest_pending_age_secs {
                Some(a) => Some(a as f64),
                None if q.pending == 0 => Some(0.0),
                None => None,
            };
            if let Some(a) = oldest {
                m.add("cyrdeck_channel_oldest_pending_age_seconds", &l, a);
            }
            if let Some(lag) = c.heartbeat.as_ref().and_then(|h| h.lag_secs) {
                m.add("cyrdeck_channel_heartbeat_lag_seconds", &l, lag as f64);
            }
            if let Some(r) = q.drain_rate_per_sec {
                m.add("cyrdeck_channel_drain_rate_per_second", &l, r);
            }
            m.add("cyrdeck_channel_client_running", &l, flag(c.client.running));
            let restarts = c.client.restarts_seen as f64;
            m.add("cyrdeck_channel_client_restarts_total", &l, restarts);
            // the count the hot-loop rule used (the report's event list is
            // capped at 200 per host: a hot loop overflows it)
            let bailouts = c.client.recent_bailouts;
            m.add("cyrdeck_channel_recent_bailouts", &l, bailouts as f64);
            let held: u64 = q.held.iter().map(|f| f.lines).sum();
            m.add("cyrdeck_channel_held_entries", &l, held as f64);
        }
    }
    for k in checks {
        let l = [("pair", k.pair.as_str())];
        let t = k.finished_at as f64;
        m.add("cyrdeck_check_last_run_timestamp_seconds", &l, t);
        m.add("cyrdeck_check_exit_code", &l, k.exit_code as f64);
        m.add("cyrdeck_check_divergences", &l, k.divergences as f64);
        for (kind, n) in &k.differences {
            m.add(
                "cyrdeck_check_differences",
                &[l[0], ("kind", kind)],
                *n as f64,
            );
        }
    }
    let mut out = String::new();
    for f in &m.0 {
        f.render(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::parse::{parse, Sample};
    use crate::model::snapshot::HeartbeatStatus;
    use crate::model::snapshot::StuckEntry;
    use crate::model::snapshot::*;
    use std::collections::BTreeMap;

    const NOW: i64 = 1_795_905_000;
    /// A pair name no label value may break.
    const HOSTILE: &str = "we\"ird\\pair\nx} 1 {";

    fn host(name: &str, role: &'static str, reachable: bool) -> HostStatus {
        HostStatus {
            name: name.into(),
            role,
            ssh: format!("root@{name}:22"),
            reachable,
            error: None,
            data_age_secs: Some(if reachable { 0.5 } else { 95.0 }),
            cyrus_version: None,
            master_running: true,
            master_pid: Some(1),
            services: vec![],
            sync_server: None,
            log_error: None,
            log_quiet_secs: None,
            probe_ms: reachable.then_some(180),
            probe_bytes: None,
            writes_refused: None,
        }
    }

    fn channel(name: &str, pending: u64) -> ChannelStatus {
        ChannelStatus {
            channel: name.into(),
            master: "m1".into(),
            replica: "r1".into(),
            health: Health::Warning,
            client: ClientStatus {
                running: pending < 100,
                pid: Some(7),
                age_secs: Some(5),
                restarts_seen: 3,
                backoff_secs: None,
                last_connect_failure: None,
                recent_bailouts: 3,
                last_bailout_at: None,
                state: Some("S".into()),
                secs_since_progress: None,
            },
            queue: QueueStatus {
                pending,
                log_lines: pending,
                log_run_lines: 0,
                files: vec![],
                held: vec![
                    FileStatus {
                        name: "held-bob".into(),
                        lines: 4,
                        bytes: 80,
                        mtime: 0,
                    },
                    FileStatus {
                        name: "held-carol".into(),
                        lines: 6,
                        bytes: 80,
                        mtime: 0,
                    },
                ],
                oldest_entry: None,
                oldest_pending_age_secs: (pending > 0).then_some(184),
                drain_rate_per_sec: Some(2.5),
                time_to_drain_secs: None,
                log_run_unchanged_secs: None,
                top: vec![],
                groups: vec![],
                distinct_entries: 0,
                users: vec![],
                users_total: 0,
            },
            heartbeat: Some(HeartbeatStatus {
                user: "hb".into(),
                master_at: None,
                replica_at: None,
                lag_secs: Some(12),
                beat_age_secs: Some(5),
                stale: false,
            }),
        }
    }

    fn stuck(user: &str, host: &str) -> StuckEntry {
        StuckEntry {
            host: host.into(),
            channel: None,
            user: Some(user.into()),
            mailbox: None,
            first_seen: None,
            last_seen: None,
            attempts: 2,
            last_error: String::new(),
            held_file: None,
            held_entries: 0,
        }
    }

    fn report() -> StatusReport {
        let main = PairStatus {
            name: "main".into(),
            health: Health::Critical,
            notes: vec![],
            hosts: vec![host("m1", "master", true), host("r1", "replica", false)],
            channels: vec![channel("", 0), channel("bulk", 1200)],
            problems: vec![],
            events: vec![],
            // bob twice (two hosts) counts once
            stuck: vec![stuck("bob", "m1"), stuck("bob", "r1"), stuck("carol", "m1")],
            failover_max_pending: 100_000,
        };
        let mut hostile = main.clone();
        hostile.name = HOSTILE.into();
        hostile.health = Health::Unknown;
        hostile.hosts[0].name = "h\\\"\n".into();
        hostile.channels.truncate(1);
        hostile.channels[0].channel = "c\"h\\n\nl".into();
        hostile.channels[0].heartbeat = None;
        hostile.channels[0].queue.drain_rate_per_sec = None;
        hostile.hosts[1].data_age_secs = None;
        // the same channel twice: one series
        hostile.channels.push(hostile.channels[0].clone());
        StatusReport {
            generated_at: NOW,
            health: Health::Critical,
            exit_code: 2,
            pairs: vec![main, hostile],
            actions: vec![],
        }
    }

    fn checks() -> Vec<LastCheck> {
        let differences: BTreeMap<String, u64> = crate::model::conflicts::DiffKind::ALL
            .iter()
            .map(|k| (k.label().to_string(), 0))
            .chain([("flags_differ".to_string(), 3)])
            .collect();
        vec![LastCheck {
            pair: "main".into(),
            key: String::new(),
            finished_at: NOW - 7200,
            exit_code: 1,
            mailboxes_checked: 40,
            unreadable: 0,
            divergences: 3,
            differences,
            guid_conflicts: vec![],
        }]
    }

    fn value(s: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let found: Vec<f64> = s
            .iter()
            .filter(|x| x.name == name && x.labels == want)
            .map(|x| x.value)
            .collect();
        assert!(found.len() <= 1, "{name} {labels:?} twice");
        found.first().copied()
    }

    #[test]
    fn every_family_once_typed_and_parsable() {
        let text = render(&report(), &checks());
        let samples = parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        for (name, kind, _) in FAMILIES {
            assert!(text.contains(&format!("# TYPE {name} {kind}\n")), "{name}");
            assert_eq!(
                text.matches(&format!("# HELP {name} ")).count(),
                1,
                "{name}"
            );
            assert!(
                samples.iter().any(|s| s.name == *name),
                "no sample of {name}"
            );
        }
        let mut series = std::collections::BTreeSet::new();
        for s in &samples {
            assert!(
                series.insert((s.name.clone(), s.labels.clone())),
                "{s:?} twice"
            );
        }
        // families nobody defined never appear
        assert!(samples
            .iter()
            .all(|s| FAMILIES.iter().any(|(n, _, _)| *n == s.name)));
    }

    #[test]
    fn values_are_the_reports() {
        let s = parse(&render(&report(), &checks())).unwrap();
        let v = |n: &str, l: &[(&str, &str)]| value(&s, n, l);
        assert_eq!(
            v("cyrdeck_last_refresh_timestamp_seconds", &[]),
            Some(NOW as f64)
        );
        assert_eq!(v("cyrdeck_health", &[]), Some(2.0));
        let p = [("pair", "main")];
        assert_eq!(v("cyrdeck_pair_health", &p), Some(2.0));
        assert_eq!(v("cyrdeck_pair_stuck_users", &p), Some(2.0));
        let m1 = [("pair", "main"), ("host", "m1")];
        let r1 = [("pair", "main"), ("host", "r1")];
        assert_eq!(
            v("cyrdeck_host_info", &[m1[0], m1[1], ("role", "master")]),
            Some(1.0)
        );
        assert_eq!(v("cyrdeck_host_reachable", &m1), Some(1.0));
        assert_eq!(v("cyrdeck_host_reachable", &r1), Some(0.0));
        assert_eq!(v("cyrdeck_host_probe_duration_seconds", &m1), Some(0.18));
        assert_eq!(v("cyrdeck_host_probe_duration_seconds", &r1), None);
        assert_eq!(v("cyrdeck_host_data_age_seconds", &m1), Some(0.5));
        assert_eq!(v("cyrdeck_host_data_age_seconds", &r1), Some(95.0));
        let def = [("pair", "main"), ("channel", "default")];
        let bulk = [("pair", "main"), ("channel", "bulk")];
        let info = [def[0], def[1], ("master", "m1"), ("replica", "r1")];
        assert_eq!(v("cyrdeck_channel_info", &info), Some(1.0));
        assert_eq!(v("cyrdeck_channel_health", &def), Some(1.0));
        assert_eq!(v("cyrdeck_channel_pending_entries", &def), Some(0.0));
        assert_eq!(v("cyrdeck_channel_pending_entries", &bulk), Some(1200.0));
        assert_eq!(
            v("cyrdeck_channel_oldest_pending_age_seconds", &def),
            Some(0.0)
        );
        assert_eq!(
            v("cyrdeck_channel_oldest_pending_age_seconds", &bulk),
            Some(184.0)
        );
        assert_eq!(
            v("cyrdeck_channel_heartbeat_lag_seconds", &bulk),
            Some(12.0)
        );
        assert_eq!(v("cyrdeck_channel_drain_rate_per_second", &bulk), Some(2.5));
        assert_eq!(v("cyrdeck_channel_client_running", &def), Some(1.0));
        assert_eq!(v("cyrdeck_channel_client_running", &bulk), Some(0.0));
        assert_eq!(v("cyrdeck_channel_client_restarts_total", &bulk), Some(3.0));
        assert_eq!(v("cyrdeck_channel_recent_bailouts", &def), Some(3.0));
        assert_eq!(v("cyrdeck_channel_held_entries", &def), Some(10.0));
        assert_eq!(
            v("cyrdeck_check_last_run_timestamp_seconds", &p),
            Some((NOW - 7200) as f64)
        );
        assert_eq!(v("cyrdeck_check_exit_code", &p), Some(1.0));
        assert_eq!(v("cyrdeck_check_divergences", &p), Some(3.0));
        let k = |kind| [("pair", "main"), ("kind", kind)];
        assert_eq!(
            v("cyrdeck_check_differences", &k("flags_differ")),
            Some(3.0)
        );
        assert_eq!(
            v("cyrdeck_check_differences", &k("guid_conflict")),
            Some(0.0)
        );
        let kinds = s
            .iter()
            .filter(|x| x.name == "cyrdeck_check_differences")
            .count();
        assert_eq!(kinds, crate::model::conflicts::DiffKind::ALL.len());
    }

    #[test]
    fn hostile_label_values_come_back_intact() {
        let text = render(&report(), &[]);
        // a raw newline inside a label would start a new line: none does
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("cyrdeck_"), "{line:?}");
        }
        let s = parse(&text).unwrap();
        let p = [("pair", HOSTILE)];
        assert_eq!(value(&s, "cyrdeck_pair_health", &p), Some(3.0));
        let h = [("pair", HOSTILE), ("host", "h\\\"\n")];
        assert_eq!(value(&s, "cyrdeck_host_reachable", &h), Some(1.0));
        let c = [("pair", HOSTILE), ("channel", "c\"h\\n\nl")];
        assert_eq!(value(&s, "cyrdeck_channel_pending_entries", &c), Some(0.0));
        // unknown values are left out, not zero
        assert_eq!(value(&s, "cyrdeck_channel_heartbeat_lag_seconds", &c), None);
        assert_eq!(value(&s, "cyrdeck_channel_drain_rate_per_second", &c), None);
        let r = [("pair", HOSTILE), ("host", "r1")];
        assert_eq!(value(&s, "cyrdeck_host_data_age_seconds", &r), None);
        assert!(text.contains(r#"pair="we\"ird\\pair\nx} 1 {""#));
        // no checks recorded: no check families at all
        assert!(!text.contains("cyrdeck_check_"));
    }

    #[test]
    fn values_in_the_formats_grammar() {
        assert_eq!(value_text(3.0), "3");
        assert_eq!(value_text(0.25), "0.25");
        assert_eq!(value_text(-2.0), "-2");
        assert_eq!(value_text(f64::NAN), "NaN");
        assert_eq!(value_text(f64::INFINITY), "+Inf");
        assert_eq!(value_text(f64::NEG_INFINITY), "-Inf");
        assert_eq!(value_text(1e300).parse::<f64>().unwrap(), 1e300);
    }
}
