//! What a host's probe says about its part in replication, read in one
//! place: is it logging (`sync_log`), does it run a rolling client and is
//! that client a cyrus.conf DAEMON entry, does its sync_server answer, is
//! it fenced (`msg/shutdown`), what is queued. The failover's undo and
//! resume decide from these facts, never from what a journal remembers.
//! Recognising Cyrus's processes in `ps` lines lives here too (the health
//! rules, the poller and the runbooks all ask the same questions).

use super::probe::{ProbeReport, Proc};
use serde::Serialize;

/// The first line cyrdeck writes to `{configdirectory}/msg/shutdown` (Cyrus
/// shows it to users it refuses). Older cyrdecks wrote the same prefix
/// without a run id.
pub const FENCE_PREFIX: &str = "cyrdeck failover";

/// `{configdirectory}/msg/shutdown` as the probe saw it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "detail")]
pub enum Fence {
    /// No file: Cyrus accepts writes.
    Open,
    /// cyrdeck's, written by this run.
    Ours,
    /// cyrdeck's, written by another (earlier) run; its first line.
    OtherRun(String),
    /// Somebody else's (a site's own maintenance message); its first line.
    Foreign(String),
}

impl Fence {
    pub fn of(report: &ProbeReport, run_id: &str) -> Fence {
        match &report.shutdown {
            None => Fence::Open,
            Some(l) if l.starts_with(FENCE_PREFIX) => {
                if !run_id.is_empty() && l.contains(&format!("(run {run_id})")) {
                    Fence::Ours
                } else {
                    Fence::OtherRun(l.clone())
                }
            }
            Some(l) => Fence::Foreign(l.clone()),
        }
    }
    pub fn refuses_writes(&self) -> bool {
        *self != Fence::Open
    }
}

/// One host's replication facts for one channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HostFacts {
    pub host: String,
    pub cyrus_running: bool,
    /// `sync_log` is on in imapd.conf (new processes log changes).
    pub sync_log: bool,
    /// The channel's rolling client is an active DAEMON entry.
    pub daemon_client: bool,
    /// Pids of the channel's running clients.
    pub clients: Vec<u32>,
    pub sync_server_answers: bool,
    pub fence: Fence,
    /// Entries in `log` and `log-run` of the channel.
    pub pending: u64,
}

impl HostFacts {
    pub fn read(report: &ProbeReport, host: &str, conf: &str, channel: &str, run_id: &str) -> Self {
        HostFacts {
            host: host.to_string(),
            cyrus_running: cyrus_master(report, conf).is_some(),
            sync_log: sync_log_on(report),
            daemon_client: daemon_client(report, channel),
            clients: channel_clients(report, conf, channel)
                .map(|p| p.pid)
                .collect(),
            sync_server_answers: answers(report),
            fence: Fence::of(report, run_id),
            pending: queue_lines(report, channel),
        }
    }
    /// Acts as a master: logs changes or replicates them.
    pub fn master_like(&self) -> bool {
        self.sync_log || self.daemon_client || !self.clients.is_empty()
    }
    /// A master that replicates everything it accepts: logging, a DAEMON
    /// client configured and running.
    pub fn replicating_master(&self) -> bool {
        self.sync_log && self.daemon_client && !self.clients.is_empty()
    }
    /// One line for the operator.
    pub fn summary(&self) -> String {
        format!(
            "{}: sync_log {}, client {}{}, writes {}, {} pending",
            self.host,
            if self.sync_log { "on" } else { "off" },
            if self.clients.is_empty() {
                "not running"
            } else {
                "running"
            },
            if self.daemon_client {
                " (DAEMON entry)"
            } else {
                ""
            },
            match &self.fence {
                Fence::Open => "accepted".to_string(),
                Fence::Ours => "refused (this run's fence)".to_string(),
                Fence::OtherRun(_) => "refused (an earlier cyrdeck fence)".to_string(),
                Fence::Foreign(l) => format!("refused (msg/shutdown: {l})"),
            },
            self.pending
        )
    }
}

/// `sync_log` as Cyrus reads a switch.
pub fn sync_log_on(report: &ProbeReport) -> bool {
    report.conf.get("sync_log").is_some_and(|v| {
        matches!(
            v.to_ascii_lowercase().as_str(),
            "1" | "yes" | "on" | "true" | "t"
        )
    })
}

/// Entries queued for the channel (`log` + `log-run`).
pub fn queue_lines(report: &ProbeReport, channel: &str) -> u64 {
    report
        .sync_files
        .iter()
        .filter(|f| f.channel == channel && (f.name == "log" || f.name == "log-run"))
        .map(|f| f.lines)
        .sum()
}

/// Is the channel's client a cyrus.conf DAEMON entry (master restarts it;
/// the failover comments it out)?
pub fn daemon_client(r: &ProbeReport, channel: &str) -> bool {
    r.services.iter().any(|s| {
        let w: Vec<&str> = s.cmd.split_whitespace().collect();
        let ch = w
            .iter()
            .position(|x| *x == "-n")
            .and_then(|i| w.get(i + 1))
            .copied()
            .unwrap_or("");
        s.section == "DAEMON"
            && w.first().is_some_and(|p| p.ends_with("sync_client"))
            && ch == channel
    })
}

/// Did the host's own sync_server answer the probe with its banner?
pub fn answers(r: &ProbeReport) -> bool {
    r.sync_server.as_ref().is_some_and(|s| s.answered)
}

/// (address, port) of a host's sync_server from its cyrus.conf `listen=`;
/// a bare port means the host's SSH address.
pub fn sync_endpoint(report: &ProbeReport, ssh_host: &str) -> Option<(String, u16)> {
    let s = report.services.iter().find(|s| {
        s.section == "SERVICES"
            && s.cmd
                .split_whitespace()
                .next()
                .is_some_and(|c| c.ends_with("sync_server"))
    })?;
    let listen = s.listen.as_deref()?;
    let (addr, port) = match listen.rsplit_once(':') {
        Some((a, p)) => (a.trim_matches(['[', ']']).to_string(), p),
        None => (ssh_host.to_string(), listen),
    };
    let port = port.parse().ok().or(match port {
        "csync" => Some(2005),
        _ => None,
    })?;
    let addr = if matches!(addr.as_str(), "*" | "0.0.0.0" | "::") {
        ssh_host.to_string()
    } else {
        addr
    };
    Some((addr, port))
}

/// Held files (quarantined users) of the channel with their entry counts.
pub fn held(report: &ProbeReport, channel: &str) -> Vec<String> {
    report
        .sync_files
        .iter()
        .filter(|f| {
            f.channel == channel
                && (f.name.starts_with("held-") || f.name.starts_with("releasing-"))
                && f.lines > 0
        })
        .map(|f| format!("{} ({} entries)", f.name, f.lines))
        .collect()
}

// ---- Cyrus processes in the probe's `ps` lines

/// The sync_client processes of `report` serving `channel` for the
/// instance configured by `conf`.
pub fn channel_clients<'r>(
    report: &'r ProbeReport,
    conf: &'r str,
    channel: &'r str,
) -> impl Iterator<Item = &'r Proc> + 'r {
    report.processes.iter().filter(move |p| {
        is_program(&p.args, &["sync_client"])
            && uses_conf(&p.args, conf)
            && client_channel(&p.args) == channel
    })
}

/// The channel of the sync_client a cyrus.conf entry named `service`
/// starts (its `-n`; "" without); none for another program or name.
pub fn service_channel(report: &ProbeReport, service: &str) -> Option<String> {
    report
        .services
        .iter()
        .find(|s| s.name == service && is_program(&s.cmd, &["sync_client"]))
        .map(|s| client_channel(&s.cmd))
}

/// This instance's Cyrus master: `cyrmaster` (Debian's name) or a `master`
/// that is Cyrus's (its path says so, or it is the parent of a sync_server
/// or sync_client) — Postfix's master has the same name and no `-C`.
pub fn cyrus_master<'r>(report: &'r ProbeReport, conf: &str) -> Option<&'r Proc> {
    let parents: std::collections::BTreeSet<u32> = report
        .processes
        .iter()
        .filter(|p| is_program(&p.args, &["sync_server", "sync_client"]))
        .map(|p| p.ppid)
        .collect();
    report.processes.iter().find(|p| {
        let prog = p.args.split_whitespace().next().unwrap_or("");
        let cyrus = is_program(&p.args, &["cyrmaster"])
            || (is_program(&p.args, &["master"])
                && (prog.contains("cyrus") || parents.contains(&p.pid)));
        cyrus && uses_conf(&p.args, conf)
    })
}

/// Does `args` run with this host's imapd.conf? Without `-C` a tool uses
/// /etc/imapd.conf.
fn uses_conf(args: &str, conf: &str) -> bool {
    let words: Vec<&str> = args.split_whitespace().collect();
    match words.iter().position(|w| *w == "-C") {
        Some(i) => words.get(i + 1) == Some(&conf),
        None => conf == "/etc/imapd.conf",
    }
}

fn is_program(args: &str, names: &[&str]) -> bool {
    let first = args.split_whitespace().next().unwrap_or("");
    let base = first.rsplit('/').next().unwrap_or(first);
    names.contains(&base)
}

/// The channel a sync_client command line serves (`-n NAME`; none = "").
fn client_channel(args: &str) -> String {
    let words: Vec<&str> = args.split_whitespace().collect();
    words
        .iter()
        .position(|w| *w == "-n")
        .and_then(|i| words.get(i + 1))
        .map(|s| s.to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postfix_master_is_not_cyrus_master() {
        let proc_ = |pid, ppid, args: &str| Proc {
            pid,
            ppid,
            age_secs: 1,
            state: "S".into(),
            args: args.into(),
        };
        let mut r = ProbeReport {
            processes: vec![proc_(10, 1, "/usr/lib/postfix/sbin/master -w")],
            ..Default::default()
        };
        assert!(cyrus_master(&r, "/etc/imapd.conf").is_none());
        // Debian's cyrmaster, or a master whose child is a sync_server
        r.processes.push(proc_(20, 1, "/usr/sbin/cyrmaster -d"));
        assert_eq!(cyrus_master(&r, "/etc/imapd.conf").map(|p| p.pid), Some(20));
        r.processes = vec![
            proc_(10, 1, "/usr/lib/postfix/sbin/master -w"),
            proc_(30, 1, "/opt/bin/master -d"),
            proc_(31, 30, "sync_server"),
        ];
        assert_eq!(cyrus_master(&r, "/etc/imapd.conf").map(|p| p.pid), Some(30));
        // another instance's master (its own -C) is not this one's
        r.processes = vec![proc_(40, 1, "/usr/lib/cyrus/bin/master -C /x/imapd.conf")];
        assert!(cyrus_master(&r, "/etc/imapd.conf").is_none());
        assert!(cyrus_master(&r, "/x/imapd.conf").is_some());
    }

    #[test]
    fn conf_matching() {
        assert!(uses_conf(
            "sync_client -C /x/imapd.conf -R",
            "/x/imapd.conf"
        ));
        assert!(!uses_conf(
            "sync_client -C /y/imapd.conf -R",
            "/x/imapd.conf"
        ));
        assert!(uses_conf("/usr/sbin/cyrmaster -d", "/etc/imapd.conf"));
        assert_eq!(client_channel("sync_client -C c -n r2 -R"), "r2");
        assert_eq!(client_channel("sync_client -C c -R"), "");
    }

    #[test]
    fn fences_are_told_apart_by_run() {
        let mut r = ProbeReport::default();
        assert_eq!(Fence::of(&r, "a1"), Fence::Open);
        r.shutdown = Some("cyrdeck failover fence (run a1): no changes".into());
        assert_eq!(Fence::of(&r, "a1"), Fence::Ours);
        assert!(matches!(Fence::of(&r, "b2"), Fence::OtherRun(_)));
        r.shutdown =
            Some("cyrdeck failover in progress: this server does not accept changes".into());
        assert!(matches!(Fence::of(&r, "a1"), Fence::OtherRun(_)));
        r.shutdown = Some("maintenance until 6".into());
        assert!(matches!(Fence::of(&r, "a1"), Fence::Foreign(_)));
    }

    #[test]
    fn sync_log_reads_as_cyrus_switches_do() {
        let mut r = ProbeReport::default();
        assert!(!sync_log_on(&r));
        for (v, on) in [
            ("1", true),
            ("yes", true),
            ("On", true),
            ("0", false),
            ("no", false),
        ] {
            r.conf.insert("sync_log".into(), v.into());
            assert_eq!(sync_log_on(&r), on, "{v}");
        }
    }
}
