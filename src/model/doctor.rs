//! Replication anti-patterns in a pair's effective configuration, each
//! with its fix. Pure: facts in, findings out.

use crate::config::{PairConfig, ReplicaConfig};
use crate::cyrus::doctor::EffectiveConfig;
use crate::model::health::channel_label;
use crate::model::releases::{self, Mix};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub host: String,
    /// Short stable name, for scripts.
    pub code: &'static str,
    pub problem: String,
    pub fix: String,
}

/// A trivial command slower than this start to exit is the shell's
/// startup files, not the network (lab on loopback: ~10 ms). Measured once:
/// a host root's `.bashrc` with `pyenv init` waiting on a stale lock made
/// every command take up to a minute (docs/cyrus-behaviour.md, "The lab's root sessions").
pub const SLOW_SESSION_START: std::time::Duration = std::time::Duration::from_secs(2);

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "1" | "yes" | "on" | "true" | "t"
        )
    })
}

/// "20m", "1200", "30s", "2h", "1d" -> seconds. Too large to count
/// saturates at u64::MAX (longer than any limit): a value from a host's
/// config must never wrap to a small one.
pub fn duration_secs(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len()));
    if num.is_empty() {
        return None;
    }
    let n = num
        .bytes()
        .try_fold(0u64, |n, d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .unwrap_or(u64::MAX);
    let per = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return None,
    };
    Some(n.saturating_mul(per))
}

/// A reconnect wait longer than this makes catch-up after an outage slow.
const MAX_RECONNECT_WAIT: u64 = 300;

/// `sync_client ... -r` (or -R, or a cluster like -Rl): the rolling client.
fn is_rolling_client(cmd: &str) -> bool {
    let mut w = cmd.split_whitespace();
    let prog = w.next().unwrap_or("");
    (prog == "sync_client" || prog.ends_with("/sync_client"))
        && w.any(|a| {
            a.len() >= 2
                && a.starts_with('-')
                && !a.starts_with("--")
                && a[1..].chars().all(|c| c.is_ascii_alphabetic())
                && a[1..].contains(['r', 'R'])
        })
}

/// The pair's replication anti-patterns, each with its fix: the master's
/// rules first, then each replica's, then each host's.
pub fn diagnose(pair: &PairConfig, facts: &BTreeMap<String, EffectiveConfig>) -> Vec<Finding> {
    let mut out = Vec::new();
    let master = pair.master.as_str();
    if let Some(m) = facts.get(master) {
        let ctx = MasterCtx {
            pair,
            master,
            facts: m,
        };
        rolling_client_rules(&ctx, &mut out);
        master_setting_rules(&ctx, &mut out);
        channel_rules(&ctx, &logged_channels(m), &mut out);
    }
    for r in &pair.replicas {
        release_rule(pair, facts, r, &mut out);
        replica_logging_rule(facts, r, &mut out);
    }
    for (host, f) in facts {
        host_rules(host, f, &mut out);
    }
    out
}

/// What the master's rules read: the pair, and the master's effective
/// configuration.
struct MasterCtx<'a> {
    pair: &'a PairConfig,
    master: &'a str,
    facts: &'a EffectiveConfig,
}

/// Records one finding; every rule reports through it, in rule order.
fn add(out: &mut Vec<Finding>, host: &str, code: &'static str, problem: String, fix: String) {
    out.push(Finding {
        host: host.to_string(),
        code,
        problem,
        fix,
    });
}

/// The master must start a rolling sync_client, and under DAEMON: else
/// nothing replays the sync log (or nothing after the client's first exit).
fn rolling_client_rules(ctx: &MasterCtx, out: &mut Vec<Finding>) {
    let master = ctx.master;
    let rolling: Vec<_> = ctx
        .facts
        .services
        .iter()
        .filter(|s| is_rolling_client(&s.cmd))
        .collect();
    if rolling.is_empty() {
        add(
            out,
            master,
            "no_rolling_client",
            "cyrus.conf starts no rolling sync_client (-r/-R): nothing replays the sync log".into(),
            "add to cyrus.conf: DAEMON { syncclient cmd=\"sync_client -r\" } and SIGHUP master"
                .into(),
        );
    }
    for s in rolling.iter().filter(|s| s.section == "START") {
        add(
            out,
            master,
            "client_in_start",
            format!(
                "the rolling client `{}` is under START: when it exits nobody restarts it",
                s.name
            ),
            format!(
                "move it to the DAEMON section (DAEMON {{ {} cmd=\"{}\" }}), which master restarts",
                s.name, s.cmd
            ),
        );
    }
}

/// The master's imapd.conf settings replication depends on: sync_log on,
/// sync_try_imap off, a shutdown file, a short reconnect wait.
fn master_setting_rules(ctx: &MasterCtx, out: &mut Vec<Finding>) {
    let (master, conf) = (ctx.master, &ctx.facts.conf);
    if !truthy(conf.get("sync_log")) {
        add(
            out,
            master,
            "master_not_logging",
            "sync_log is off on the master: no change is queued for replication".into(),
            "set sync_log: 1 in imapd.conf".into(),
        );
    }
    if truthy(conf.get("sync_try_imap")) {
        add(out, master, "sync_try_imap", "sync_try_imap is on: sync_client first speaks IMAP to sync_port, a sync_server port here, and falls back only after that fails".into(),
            "set sync_try_imap: no".into());
    }
    if conf.get("sync_shutdown_file").is_none_or(|v| v.is_empty()) {
        add(out, master, "no_shutdown_file", "no sync_shutdown_file: the rolling client cannot be stopped cleanly (after draining) before a failover".into(),
            "set sync_shutdown_file: <configdirectory>/sync/shutdown".into());
    }
    if let Some(w) = conf
        .get("sync_reconnect_maxwait")
        .and_then(|v| duration_secs(v))
    {
        if w > MAX_RECONNECT_WAIT {
            add(out, master, "slow_reconnect", format!("sync_reconnect_maxwait is {w} s: after a replica outage catch-up can wait that long"),
                "set sync_reconnect_maxwait: 60s (or a few minutes at most)".into());
        }
    }
}

/// The channels the master logs (sync_log_channels; unset or blank: the
/// default channel only, `""` naming it).
fn logged_channels(m: &EffectiveConfig) -> Vec<String> {
    match m
        .conf
        .get("sync_log_channels")
        .filter(|v| !v.trim().is_empty())
    {
        None => vec![String::new()],
        Some(v) => v
            .split_whitespace()
            .map(|c| {
                if c == "\"\"" {
                    String::new()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    }
}

/// Logged channels and replicas must match: a replica on an unlogged
/// channel gets nothing, a logged channel nobody reads grows forever.
fn channel_rules(ctx: &MasterCtx, logged: &[String], out: &mut Vec<Finding>) {
    let master = ctx.master;
    for r in &ctx.pair.replicas {
        if !logged.contains(&r.channel) {
            add(
                out,
                master,
                "channel_not_logged",
                format!(
                    "replica {} is configured on channel {}, which the master does not log",
                    r.host,
                    channel_label(&r.channel)
                ),
                format!(
                    "add it to sync_log_channels (now: {})",
                    logged
                        .iter()
                        .map(|c| channel_label(c))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            );
        }
    }
    for c in logged {
        if !ctx.pair.replicas.iter().any(|r| &r.channel == c) {
            add(out, master, "channel_unconsumed", format!("the master logs channel {} but no configured replica reads it: its log grows forever", channel_label(c)),
                "remove it from sync_log_channels, or configure its replica".into());
        }
    }
}

/// Master and replica on different releases: finish an upgrade, or fix a
/// replica older than its master (unsupported).
fn release_rule(
    pair: &PairConfig,
    facts: &BTreeMap<String, EffectiveConfig>,
    r: &ReplicaConfig,
    out: &mut Vec<Finding>,
) {
    let master = pair.master.as_str();
    let versions = facts
        .get(master)
        .and_then(|m| m.version.as_deref())
        .zip(facts.get(&r.host).and_then(|f| f.version.as_deref()));
    if let Some(mix) = versions.and_then(|(m, v)| releases::assess(m, v)) {
        let text = releases::describe(&mix, master, &r.host);
        match (mix, text) {
            (Mix::Upgrade { .. }, Some(t)) => add(out, &r.host, "mixed_releases", t,
                format!("finish the upgrade: `cyrdeck run upgrade-via-failover {}` fails over to {}; then upgrade {master}", pair.name, r.host)),
            (Mix::Downgrade { .. }, Some(t)) => add(out, &r.host, "replica_older", t,
                format!("upgrade {} to the master's release (or newer) before relying on it", r.host)),
            _ => {}
        }
    }
}

/// A replica must not log: it would queue changes nothing replays.
fn replica_logging_rule(
    facts: &BTreeMap<String, EffectiveConfig>,
    r: &ReplicaConfig,
    out: &mut Vec<Finding>,
) {
    if let Some(f) = facts.get(&r.host) {
        if truthy(f.conf.get("sync_log")) {
            add(out, &r.host, "replica_logging", "sync_log is on at the replica: it queues its own changes that nothing replays (harmless only mid role swap)".into(),
                "set sync_log: 0 on the replica".into());
        }
    }
}

/// Every host: a slow SSH session start (each command pays it), and
/// Cyrus's syslog being readable (else its errors stay invisible).
fn host_rules(host: &str, f: &EffectiveConfig, out: &mut Vec<Finding>) {
    if let Some(t) = f.session_start.filter(|t| *t >= SLOW_SESSION_START) {
        add(out, host, "slow_session_start", format!("every command takes {:.1} s to start here before it runs: the SSH account's shell and its startup files (~/.bashrc) run for each one, and each refresh and runbook step pays it", t.as_secs_f64()),
            "make the account's startup files return at once when not interactive (`case $- in *i*) ;; *) return;; esac` at the top of ~/.bashrc), or give cyrdeck an account without them".into());
    }
    match f.syslog.as_str() {
        "readable" => {}
        "unreadable" => add(out, host, "syslog_unreadable", "the configured syslog file (or the journal) cannot be read: Cyrus's errors stay invisible".into(),
            "grant read access to the syslog file (journal: the systemd-journal group) for the SSH user (or its sudo user)".into()),
        _ => add(out, host, "no_syslog", "no syslog file is configured for this host: Cyrus's errors stay invisible".into(),
            "set syslog_file (and syslog_prefix) for the host in cyrdeck.toml and make syslog write Cyrus's lines there, or log_source = \"journal\" where they go to the systemd journal".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ReplicaConfig;
    use crate::cyrus::probe::ServiceEntry;

    fn facts(conf: &[(&str, &str)], services: &[(&str, &str)]) -> EffectiveConfig {
        EffectiveConfig {
            conf: conf
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            services: services
                .iter()
                .map(|(sec, cmd)| ServiceEntry {
                    section: sec.to_string(),
                    name: "syncclient".into(),
                    cmd: cmd.to_string(),
                    listen: None,
                })
                .collect(),
            syslog: "readable".into(),
            version: None,
            session_start: Some(std::time::Duration::from_millis(20)),
        }
    }

    #[test]
    fn a_slow_session_start_is_named_with_its_cost() {
        let mut f = BTreeMap::new();
        let mut slow = facts(&[], &[]);
        slow.session_start = Some(std::time::Duration::from_millis(3400));
        f.insert("r".to_string(), slow);
        let found = diagnose(&pair(), &f);
        let s: Vec<_> = found
            .iter()
            .filter(|x| x.code == "slow_session_start")
            .collect();
        assert_eq!(s.len(), 1, "{found:?}");
        assert_eq!(s[0].host, "r");
        assert!(s[0].problem.contains("3.4 s"), "{}", s[0].problem);
        let mut quick = facts(&[], &[]);
        quick.session_start = Some(std::time::Duration::from_millis(1900));
        f.insert("r".to_string(), quick);
        assert!(!diagnose(&pair(), &f)
            .iter()
            .any(|x| x.code == "slow_session_start"));
    }

    fn pair() -> PairConfig {
        PairConfig {
            name: "p".into(),
            master: "m".into(),
            replicas: vec![ReplicaConfig {
                host: "r".into(),
                channel: String::new(),
            }],
            observe: false,
            heartbeat: None,
            auto_quarantine: None,
            failover_hook: None,
            failover_max_pending: None,
        }
    }

    #[test]
    fn healthy_config_has_no_findings() {
        let mut f = BTreeMap::new();
        f.insert(
            "m".into(),
            facts(
                &[
                    ("sync_log", "1"),
                    ("sync_try_imap", "no"),
                    ("sync_shutdown_file", "/x"),
                    ("sync_reconnect_maxwait", "20s"),
                ],
                &[("DAEMON", "sync_client -C /c -R -l")],
            ),
        );
        f.insert("r".into(), facts(&[("sync_log", "no")], &[]));
        assert_eq!(diagnose(&pair(), &f), vec![]);
    }

    #[test]
    fn mixed_releases_say_which_direction_is_supported() {
        let healthy_master = || {
            facts(
                &[
                    ("sync_log", "1"),
                    ("sync_try_imap", "no"),
                    ("sync_shutdown_file", "/x"),
                ],
                &[("DAEMON", "sync_client -C /c -R -l")],
            )
        };
        let with = |f: EffectiveConfig, v: &str| EffectiveConfig {
            version: Some(v.into()),
            ..f
        };
        let run = |m: &str, r: &str| {
            let mut f = BTreeMap::new();
            f.insert("m".into(), with(healthy_master(), m));
            f.insert("r".into(), with(facts(&[], &[]), r));
            diagnose(&pair(), &f)
                .into_iter()
                .map(|x| (x.code, x.problem))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            run("cyrus-imapd 3.10.2-Debian", "cyrus-imapd 3.10.1"),
            vec![]
        );
        let up = run("cyrus-imapd 3.6.1-Debian", "cyrus-imapd 3.10.2-Debian");
        assert_eq!(up.len(), 1, "{up:?}");
        assert_eq!(up[0].0, "mixed_releases");
        assert!(up[0].1.contains("replica newer"), "{up:?}");
        let down = run("cyrus-imapd 3.12.3", "cyrus-imapd 3.6.1");
        assert_eq!(down[0].0, "replica_older", "{down:?}");
    }

    #[test]
    fn every_anti_pattern_is_named_with_a_fix() {
        let mut f = BTreeMap::new();
        f.insert(
            "m".into(),
            facts(
                &[
                    ("sync_log", "0"),
                    ("sync_try_imap", "yes"),
                    ("sync_shutdown_file", ""),
                    ("sync_reconnect_maxwait", "20m"),
                    ("sync_log_channels", "other"),
                ],
                &[("START", "sync_client -r")],
            ),
        );
        let mut r = facts(&[("sync_log", "1")], &[]);
        r.syslog = "none".into();
        f.insert("r".into(), r);
        let codes: Vec<&str> = diagnose(&pair(), &f).iter().map(|x| x.code).collect();
        for c in [
            "client_in_start",
            "master_not_logging",
            "sync_try_imap",
            "no_shutdown_file",
            "slow_reconnect",
            "channel_not_logged",
            "channel_unconsumed",
            "replica_logging",
            "no_syslog",
        ] {
            assert!(codes.contains(&c), "{c} missing from {codes:?}");
        }
        assert!(diagnose(&pair(), &f).iter().all(|x| !x.fix.is_empty()));
    }

    #[test]
    fn durations() {
        assert_eq!(duration_secs("20m"), Some(1200));
        assert_eq!(duration_secs("1200"), Some(1200));
        assert_eq!(duration_secs("30s"), Some(30));
        assert_eq!(duration_secs("x"), None);
    }

    /// Issue 15: `n * 86400` overflowed: in release it wrapped to a small
    /// value, so an absurd reconnect wait went unreported (these two wrap to
    /// 128 s and 4 s). Too large saturates: longer than any limit.
    #[test]
    fn huge_durations_saturate_never_wrap() {
        for v in ["94368760191893771d", "3381903080180084463m"] {
            assert_eq!(duration_secs(v), Some(u64::MAX), "{v}");
            let mut f = BTreeMap::new();
            f.insert("m".into(), facts(&[("sync_reconnect_maxwait", v)], &[]));
            let codes: Vec<&str> = diagnose(&pair(), &f).iter().map(|x| x.code).collect();
            assert!(codes.contains(&"slow_reconnect"), "{v}: {codes:?}");
        }
        assert_eq!(
            duration_secs(&format!("{}h", u64::MAX / 3600 + 1)),
            Some(u64::MAX)
        );
        assert_eq!(duration_secs("99999999999999999999999999s"), Some(u64::MAX));
        let most = u64::MAX / 86400;
        assert_eq!(duration_secs(&format!("{most}d")), Some(most * 86400));
    }
}
