//! The console config (TOML): hosts, pairs, SSH and Cyrus paths.
//! Every error names the file, the line and the key.

use crate::remote::ssh_config;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
        }
        if !self.key.is_empty() {
            write!(f, ": key `{}`", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    identity: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    ssh_config: Option<PathBuf>,
    refresh_secs: Option<Spanned<f64>>,
    exec_timeout_secs: Option<Spanned<u64>>,
    connect_timeout_secs: Option<Spanned<u64>>,
    probe_concurrency: Option<Spanned<u64>>,
    audit_log: Option<PathBuf>,
    warn_pending: Option<u64>,
    warn_lag_secs: Option<u64>,
    crit_lag_secs: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    ssh: Spanned<String>,
    identity: Option<PathBuf>,
    known_hosts: Option<PathBuf>,
    imapd_conf: Option<PathBuf>,
    cyrus_conf: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
    syslog_file: Option<PathBuf>,
    syslog_prefix: Option<String>,
    log_source: Option<Spanned<String>>,
    #[serde(default)]
    sudo: bool,
    sudo_user: Option<String>,
    /// Where the root-owned helper scripts are installed (sudo mode).
    helper_dir: Option<PathBuf>,
    #[serde(default)]
    observe: bool,
    /// How the other host of a pair reaches this host's sync_server
    /// ("host:port"), when its cyrus.conf listen= does not say.
    sync_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplica {
    host: Spanned<String>,
    #[serde(default)]
    channel: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    master: Spanned<String>,
    replicas: Spanned<Vec<RawReplica>>,
    #[serde(default)]
    observe: bool,
    /// A dedicated user whose INBOX receives the heartbeat (its mail is
    /// deleted at every beat).
    heartbeat_user: Option<Spanned<String>>,
    heartbeat_secs: Option<Spanned<u64>>,
    auto_quarantine_secs: Option<u64>,
    failover_hook: Option<String>,
    failover_max_pending: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    hosts: BTreeMap<String, RawHost>,
    #[serde(default)]
    pairs: BTreeMap<String, RawPair>,
}

/// Where a host's Cyrus lines are read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum LogSource {
    /// `syslog_file` (rsyslog, syslog-ng...: RFC 3339 or traditional lines).
    #[default]
    File,
    /// The systemd journal, through `journalctl` (entries whose
    /// SYSLOG_IDENTIFIER starts with `syslog_prefix/`, default `cyrus/`).
    Journal,
}

impl HostConfig {
    /// The identifier prefix Cyrus logs under (its `syslog_prefix`
    /// option; Cyrus's default is "cyrus").
    pub fn log_prefix(&self) -> &str {
        self.syslog_prefix.as_deref().unwrap_or("cyrus")
    }
    /// Is any log source configured?
    pub fn reads_log(&self) -> bool {
        self.log_source == LogSource::Journal || self.syslog_file.is_some()
    }
}

/// Where and as whom to reach a host over SSH.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshTarget {
    pub user: String,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for SshTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct HostConfig {
    pub name: String,
    pub target: SshTarget,
    /// None: use ssh-agent.
    pub identity: Option<PathBuf>,
    pub known_hosts: PathBuf,
    pub imapd_conf: PathBuf,
    pub cyrus_conf: PathBuf,
    pub bin_dir: PathBuf,
    pub syslog_file: Option<PathBuf>,
    pub syslog_prefix: Option<String>,
    /// Where Cyrus's log lines are read: the syslog file, or the journal.
    pub log_source: LogSource,
    /// Sudo mode (a non-root account): every command is an installed
    /// helper or a Cyrus tool run through `sudo -n -u <sudo_user>` (root
    /// for the failover helper); see remote::helpers.
    pub sudo_user: Option<String>,
    /// The installed helpers (`cyrdeck helpers install`), sudo mode.
    pub helper_dir: PathBuf,
    pub observe: bool,
    /// "host:port" of this host's sync_server as the other host reaches it.
    pub sync_address: Option<String>,
    pub connect_timeout: Duration,
    pub exec_timeout: Duration,
}

#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    pub host: String,
    /// Sync log channel; "" is the default channel (`sync/log`).
    pub channel: String,
}

/// Measured lag: a message delivered to `user`'s INBOX on the master every
/// `interval`; the replica's copy of its append time tells how far behind it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeartbeatConfig {
    pub user: String,
    pub interval: Duration,
}

#[derive(Clone, Debug)]
pub struct PairConfig {
    pub name: String,
    pub master: String,
    pub replicas: Vec<ReplicaConfig>,
    pub observe: bool,
    pub heartbeat: Option<HeartbeatConfig>,
    /// Quarantine a user failing with entries pending this long (off: None).
    pub auto_quarantine: Option<Duration>,
    /// Local command run by the failover when writes stop and start
    /// (VIP, DNS, proxy), with CYRDECK_PHASE and the host names in its env.
    pub failover_hook: Option<String>,
    /// The failover precheck's bound on pending entries.
    pub failover_max_pending: Option<u64>,
}

#[derive(Clone, Debug)]
pub struct Thresholds {
    pub warn_pending: u64,
    /// Lag (oldest pending entry, heartbeat) that makes a channel WARNING.
    pub warn_lag: Duration,
    pub crit_lag: Duration,
}

/// Below the lab sshd's MaxStartups (30) and OpenSSH's default (10:30:100
/// drops some connections past 10 unauthenticated): a fleet's first refresh
/// opens every session at once.
pub const DEFAULT_PROBE_CONCURRENCY: usize = 8;

#[derive(Clone, Debug)]
pub struct Config {
    pub file: PathBuf,
    pub hosts: BTreeMap<String, HostConfig>,
    pub pairs: BTreeMap<String, PairConfig>,
    pub refresh: Duration,
    /// Probes in flight at once, over all hosts (a fleet of pairs).
    pub probe_concurrency: usize,
    pub audit_log: Option<PathBuf>,
    pub thresholds: Thresholds,
}

/// `$XDG_CONFIG_HOME/cyrdeck/cyrdeck.toml`.
pub fn default_path() -> PathBuf {
    dirs::config_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("cyrdeck")
        .join("cyrdeck.toml")
}

/// Errors that name the file, the line of a span and the key.
struct ErrAt<'a> {
    path: &'a Path,
    text: &'a str,
}

impl ErrAt<'_> {
    fn err(&self, span: Option<std::ops::Range<usize>>, key: &str, message: String) -> ConfigError {
        ConfigError {
            file: self.path.to_path_buf(),
            line: span.map(|s| line_of(self.text, s.start)),
            key: key.to_string(),
            message,
        }
    }
}

/// `[defaults]`' timeouts, refresh and probe concurrency, checked.
struct Timings {
    exec_timeout: Duration,
    connect_timeout: Duration,
    refresh: Duration,
    probe_concurrency: usize,
}

impl Timings {
    fn of(d: &RawDefaults, at: &ErrAt<'_>) -> Result<Timings, ConfigError> {
        let secs = |v: &Option<Spanned<u64>>, key: &str, dflt: u64| match v {
            Some(s) if *s.get_ref() == 0 => {
                Err(at.err(Some(s.span()), key, "must be at least 1".into()))
            }
            Some(s) => Ok(Duration::from_secs(*s.get_ref())),
            None => Ok(Duration::from_secs(dflt)),
        };
        let exec_timeout = secs(&d.exec_timeout_secs, "defaults.exec_timeout_secs", 10)?;
        let probe_concurrency = match &d.probe_concurrency {
            Some(s) if !(1..=1024).contains(s.get_ref()) => {
                return Err(at.err(
                    Some(s.span()),
                    "defaults.probe_concurrency",
                    "must be between 1 and 1024".into(),
                ))
            }
            Some(s) => *s.get_ref() as usize,
            None => DEFAULT_PROBE_CONCURRENCY,
        };
        let connect_timeout = secs(&d.connect_timeout_secs, "defaults.connect_timeout_secs", 5)?;
        let refresh = match &d.refresh_secs {
            Some(s) if !(0.2..=3600.0).contains(s.get_ref()) => {
                return Err(at.err(
                    Some(s.span()),
                    "defaults.refresh_secs",
                    "must be between 0.2 and 3600".into(),
                ))
            }
            Some(s) => Duration::from_secs_f64(*s.get_ref()),
            None => Duration::from_secs(2),
        };
        Ok(Timings {
            exec_timeout,
            connect_timeout,
            refresh,
            probe_concurrency,
        })
    }
}

/// `[hosts.NAME]`, defaults applied.
fn parse_host(
    name: &str,
    h: RawHost,
    d: &RawDefaults,
    ssh_config: &Path,
    t: &Timings,
    at: &ErrAt<'_>,
) -> Result<HostConfig, ConfigError> {
    let key = format!("hosts.{name}.ssh");
    let (target, alias_identity) = parse_destination(h.ssh.get_ref(), ssh_config)
        .map_err(|m| at.err(Some(h.ssh.span()), &key, m))?;
    let log_source = log_source_of(name, &h, at)?;
    let known_hosts = h.known_hosts.or(d.known_hosts.clone()).unwrap_or_else(|| {
        dirs::home_dir()
            .unwrap_or_default()
            .join(".ssh/known_hosts")
    });
    Ok(HostConfig {
        name: name.to_string(),
        target,
        identity: h.identity.or(alias_identity).or(d.identity.clone()),
        known_hosts,
        imapd_conf: h.imapd_conf.unwrap_or_else(|| "/etc/imapd.conf".into()),
        cyrus_conf: h.cyrus_conf.unwrap_or_else(|| "/etc/cyrus.conf".into()),
        bin_dir: h.bin_dir.unwrap_or_else(|| "/usr/lib/cyrus/bin".into()),
        syslog_file: h.syslog_file,
        syslog_prefix: h.syslog_prefix,
        log_source,
        sudo_user: h
            .sudo
            .then(|| h.sudo_user.unwrap_or_else(|| "cyrus".into())),
        helper_dir: h
            .helper_dir
            .unwrap_or_else(|| "/usr/local/lib/cyrdeck".into()),
        observe: h.observe,
        sync_address: h.sync_address,
        connect_timeout: t.connect_timeout,
        exec_timeout: t.exec_timeout,
    })
}

/// `log_source`: "file" (the default) or "journal" (then no syslog_file).
fn log_source_of(name: &str, h: &RawHost, at: &ErrAt<'_>) -> Result<LogSource, ConfigError> {
    match h
        .log_source
        .as_ref()
        .map(|s| (s.get_ref().as_str(), s.span()))
    {
        None | Some(("file", _)) => Ok(LogSource::File),
        Some(("journal", _)) if h.syslog_file.is_some() => Err(at.err(
            h.log_source.as_ref().map(|s| s.span()),
            &format!("hosts.{name}.log_source"),
            "\"journal\" reads no file: remove syslog_file".into(),
        )),
        Some(("journal", _)) => Ok(LogSource::Journal),
        Some((other, span)) => Err(at.err(
            Some(span),
            &format!("hosts.{name}.log_source"),
            format!("{other:?}: must be \"file\" or \"journal\""),
        )),
    }
}

/// `[pairs.NAME]`: its hosts configured, its replicas and heartbeat checked.
fn parse_pair(
    name: String,
    p: &RawPair,
    hosts: &BTreeMap<String, HostConfig>,
    at: &ErrAt<'_>,
) -> Result<PairConfig, ConfigError> {
    let master = known_host(hosts, &p.master, &format!("pairs.{name}.master"), at)?;
    if p.replicas.get_ref().is_empty() {
        return Err(at.err(
            Some(p.replicas.span()),
            &format!("pairs.{name}.replicas"),
            "a pair needs at least one replica".into(),
        ));
    }
    let replicas = parse_replicas(&name, p, &master, hosts, at)?;
    let heartbeat = parse_heartbeat(&name, p, at)?;
    Ok(PairConfig {
        name,
        master,
        replicas,
        observe: p.observe,
        heartbeat,
        auto_quarantine: p.auto_quarantine_secs.map(Duration::from_secs),
        failover_hook: p.failover_hook.clone(),
        failover_max_pending: p.failover_max_pending,
    })
}

/// A host a pair names, which `[hosts]` must have.
fn known_host(
    hosts: &BTreeMap<String, HostConfig>,
    s: &Spanned<String>,
    key: &str,
    at: &ErrAt<'_>,
) -> Result<String, ConfigError> {
    if hosts.contains_key(s.get_ref()) {
        Ok(s.get_ref().clone())
    } else {
        Err(at.err(
            Some(s.span()),
            key,
            format!("no host named {:?} in [hosts]", s.get_ref()),
        ))
    }
}

/// A pair's replicas: configured hosts, not the master, one channel each
/// (a plain word: it reaches `sync_client -n`).
fn parse_replicas(
    name: &str,
    p: &RawPair,
    master: &str,
    hosts: &BTreeMap<String, HostConfig>,
    at: &ErrAt<'_>,
) -> Result<Vec<ReplicaConfig>, ConfigError> {
    let mut replicas = Vec::new();
    for (i, r) in p.replicas.get_ref().iter().enumerate() {
        let key = format!("pairs.{name}.replicas[{i}].host");
        let host = known_host(hosts, &r.host, &key, at)?;
        if host == master {
            return Err(at.err(Some(r.host.span()), &key, "replica is the master".into()));
        }
        if replicas
            .iter()
            .any(|x: &ReplicaConfig| x.channel == r.channel)
        {
            return Err(at.err(
                Some(r.host.span()),
                &format!("pairs.{name}.replicas[{i}].channel"),
                format!("channel {:?} used twice", r.channel),
            ));
        }
        let as_option = !r.channel.is_empty()
            && crate::cyrus::names::check_name(crate::cyrus::names::NameKind::Channel, &r.channel)
                .is_err();
        if r.channel.contains(['/', ' ', '.']) || as_option {
            return Err(at.err(
                Some(r.host.span()),
                &format!("pairs.{name}.replicas[{i}].channel"),
                "a channel name is a plain word (not starting with -)".into(),
            ));
        }
        replicas.push(ReplicaConfig {
            host,
            channel: r.channel.clone(),
        });
    }
    Ok(replicas)
}

/// `heartbeat_user` (a plain name: it ends up in an ipurge pattern, and
/// after mbpath -u / deliver, never as an option) and `heartbeat_secs`.
fn parse_heartbeat(
    name: &str,
    p: &RawPair,
    at: &ErrAt<'_>,
) -> Result<Option<HeartbeatConfig>, ConfigError> {
    let Some(u) = &p.heartbeat_user else {
        return Ok(None);
    };
    let key = format!("pairs.{name}.heartbeat_user");
    let plain = crate::cyrus::names::check_name(crate::cyrus::names::NameKind::User, u.get_ref())
        .is_ok()
        && u.get_ref()
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !plain {
        return Err(at.err(
            Some(u.span()),
            &key,
            "a heartbeat user is a plain name (letters, digits, - and _; not starting with -)"
                .into(),
        ));
    }
    let secs = p
        .heartbeat_secs
        .as_ref()
        .map(|s| *s.get_ref())
        .unwrap_or(10);
    if secs == 0 {
        let span = p.heartbeat_secs.as_ref().map(|s| s.span());
        return Err(at.err(
            span,
            &format!("pairs.{name}.heartbeat_secs"),
            "must be at least 1".into(),
        ));
    }
    Ok(Some(HeartbeatConfig {
        user: u.get_ref().clone(),
        interval: Duration::from_secs(secs),
    }))
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            line: None,
            key: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        let ssh_cfg = dirs::home_dir()
            .unwrap_or_default()
            .join(".ssh")
            .join("config");
        Self::parse(path, &text, &ssh_cfg)
    }

    /// Parse config text; `ssh_config` resolves Host aliases.
    pub fn parse(path: &Path, text: &str, ssh_config: &Path) -> Result<Config, ConfigError> {
        let at = ErrAt { path, text };
        let raw: RawConfig =
            toml::from_str(text).map_err(|e| at.err(e.span(), "", e.message().to_string()))?;
        let d = raw.defaults;
        let ssh_config = d
            .ssh_config
            .clone()
            .unwrap_or_else(|| ssh_config.to_path_buf());
        let t = Timings::of(&d, &at)?;
        let mut hosts = BTreeMap::new();
        for (name, h) in raw.hosts {
            let host = parse_host(&name, h, &d, &ssh_config, &t, &at)?;
            hosts.insert(name, host);
        }
        let mut pairs = BTreeMap::new();
        for (name, p) in raw.pairs {
            let pair = parse_pair(name.clone(), &p, &hosts, &at)?;
            pairs.insert(name, pair);
        }
        if pairs.is_empty() {
            return Err(at.err(None, "pairs", "no pairs configured".into()));
        }
        // an observed pair observes its hosts: the transport enforces it
        for p in pairs.values().filter(|p| p.observe) {
            for h in std::iter::once(&p.master).chain(p.replicas.iter().map(|r| &r.host)) {
                if let Some(hc) = hosts.get_mut(h) {
                    hc.observe = true;
                }
            }
        }
        Ok(Config {
            file: path.to_path_buf(),
            hosts,
            pairs,
            refresh: t.refresh,
            probe_concurrency: t.probe_concurrency,
            audit_log: d.audit_log,
            thresholds: Thresholds {
                warn_pending: d.warn_pending.unwrap_or(1000),
                warn_lag: Duration::from_secs(d.warn_lag_secs.unwrap_or(60)),
                crit_lag: Duration::from_secs(d.crit_lag_secs.unwrap_or(300)),
            },
        })
    }

    pub fn host(&self, name: &str) -> &HostConfig {
        &self.hosts[name]
    }
}

/// Rewrite `[pairs.PAIR]` of the config file so `master` is the master and
/// `replica` its (only) replica: only those two values change (spans from
/// the parser), the rest of the file stays byte for byte. Idempotent; the
/// previous file is kept as FILE.bak. The result is re-read to prove it.
pub fn set_roles(path: &Path, pair: &str, master: &str, replica: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let p = raw
        .pairs
        .get(pair)
        .ok_or_else(|| format!("{}: no pair {pair:?}", path.display()))?;
    let [r] = &p.replicas.get_ref()[..] else {
        return Err(format!("pair {pair} does not have exactly one replica"));
    };
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut edits = [
        (p.master.span(), quote(master)),
        (r.host.span(), quote(replica)),
    ];
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut new = text.clone();
    for (span, value) in edits {
        new.replace_range(span, &value);
    }
    if new != text {
        replace_keeping_backup(path, &new)?;
    }
    let ssh_cfg = dirs::home_dir().unwrap_or_default().join(".ssh/config");
    let c = Config::parse(path, &new, &ssh_cfg).map_err(|e| e.to_string())?;
    let got = &c.pairs[pair];
    if got.master != master || got.replicas[0].host != replica {
        return Err(format!("{}: roles not recorded as asked", path.display()));
    }
    Ok(())
}

/// Replace the config file whole (temp + rename), the previous one kept
/// as FILE.bak: set_roles and set_replicas.
fn replace_keeping_backup(path: &Path, new: &str) -> Result<(), String> {
    std::fs::copy(path, path.with_extension("toml.bak")).map_err(|e| format!("backup: {e}"))?;
    crate::state::write_atomic(path, new.as_bytes(), None)
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Record `replicas` (host, channel) as pair `pair`'s replicas: only the
/// `replicas = [...]` value changes (its span from the parser), the rest
/// of the file stays byte for byte. Idempotent; FILE.bak keeps the previous
/// file; the result is re-read to prove it (replace-replica).
pub fn set_replicas(path: &Path, pair: &str, replicas: &[(String, String)]) -> Result<(), String> {
    edit_topology(path, pair, None, replicas)
}

/// `set_replicas` and the master too (a failover of a pair with several
/// replicas): the two values change, nothing else.
pub fn set_master_and_replicas(
    path: &Path,
    pair: &str,
    master: &str,
    replicas: &[(String, String)],
) -> Result<(), String> {
    edit_topology(path, pair, Some(master), replicas)
}

fn edit_topology(
    path: &Path,
    pair: &str,
    master: Option<&str>,
    replicas: &[(String, String)],
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let raw: RawConfig = toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let p = raw
        .pairs
        .get(pair)
        .ok_or_else(|| format!("{}: no pair {pair:?}", path.display()))?;
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let value = format!(
        "[ {} ]",
        replicas
            .iter()
            .map(|(h, c)| format!("{{ host = {}, channel = {} }}", quote(h), quote(c)))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut edits = vec![(p.replicas.span(), value)];
    if let Some(m) = master {
        edits.push((p.master.span(), quote(m)));
    }
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    let mut new = text.clone();
    for (span, value) in edits {
        new.replace_range(span, &value);
    }
    let ssh_cfg = dirs::home_dir().unwrap_or_default().join(".ssh/config");
    let c = Config::parse(path, &new, &ssh_cfg).map_err(|e| e.to_string())?;
    let got: Vec<(String, String)> = c.pairs[pair]
        .replicas
        .iter()
        .map(|r| (r.host.clone(), r.channel.clone()))
        .collect();
    if got != replicas || master.is_some_and(|m| c.pairs[pair].master != m) {
        return Err(format!("{}: roles not recorded as asked", path.display()));
    }
    if new != text {
        replace_keeping_backup(path, &new)?;
    }
    Ok(())
}

/// `user@host:port`, `host:port`, `host`, `[v6]:port`, or a Host alias from
/// the ssh config (HostName, Port, User, IdentityFile honoured). Explicit
/// parts of the destination win over the alias.
pub fn parse_destination(
    dest: &str,
    ssh_config: &Path,
) -> Result<(SshTarget, Option<PathBuf>), String> {
    if dest.trim().is_empty() || dest.contains(char::is_whitespace) {
        return Err(format!(
            "bad SSH destination {dest:?}: expected user@host:port"
        ));
    }
    let (user, hostport) = match dest.rsplit_once('@') {
        Some((u, h)) if !u.is_empty() => (Some(u.to_string()), h),
        Some(_) => return Err(format!("bad SSH destination {dest:?}: empty user")),
        None => (None, dest),
    };
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("bad SSH destination {dest:?}: unclosed ["))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p),
            None if after.is_empty() => None,
            None => return Err(format!("bad SSH destination {dest:?}")),
        };
        (h.to_string(), port)
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("bad SSH destination {dest:?}: empty host"));
    }
    let port = port
        .map(|p| {
            p.parse::<u16>()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| format!("bad SSH destination {dest:?}: port {p:?} is not 1-65535"))
        })
        .transpose()?;
    let alias = ssh_config::resolve(ssh_config, &host);
    let target = SshTarget {
        user: user
            .or(alias.user)
            .or_else(|| std::env::var("USER").ok())
            .unwrap_or_else(|| "root".into()),
        host: alias.host_name.unwrap_or(host),
        port: port.or(alias.port).unwrap_or(22),
    };
    Ok((target, alias.identity_file))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[defaults]
known_hosts = "/tmp/kh"
refresh_secs = 1.5

[hosts.m]
ssh = "root@127.0.0.1:2201"
imapd_conf = "/etc/imapd.conf"

[hosts.r]
ssh = "ops@replica.example:2202"
sudo = true

[pairs.main]
master = "m"
replicas = [ { host = "r" } ]
"#;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("test.toml"), text, Path::new("/nonexistent"))
    }

    #[test]
    fn probe_concurrency_defaults_and_is_bounded() {
        assert_eq!(
            parse(GOOD).unwrap().probe_concurrency,
            DEFAULT_PROBE_CONCURRENCY
        );
        let with = |n: &str| {
            parse(&GOOD.replace(
                "refresh_secs = 1.5",
                &format!("refresh_secs = 1.5\nprobe_concurrency = {n}"),
            ))
        };
        assert_eq!(with("3").unwrap().probe_concurrency, 3);
        for bad in ["0", "1025"] {
            let e = with(bad).unwrap_err();
            assert_eq!(e.key, "defaults.probe_concurrency", "{bad}: {e}");
            assert_eq!(e.line, Some(5), "{bad}: {e}");
        }
    }

    #[test]
    fn heartbeat_user_must_be_a_plain_name() {
        let with = |extra: &str| parse(&format!("{GOOD}{extra}"));
        let c = with("heartbeat_user = \"cyrdeck-hb\"\n").unwrap();
        let hb = c.pairs["main"].heartbeat.clone().unwrap();
        assert_eq!(
            (hb.user.as_str(), hb.interval.as_secs()),
            ("cyrdeck-hb", 10)
        );
        for bad in ["", "user/x", "*", "a b", "x%", "-x", "--help"] {
            let e = with(&format!("heartbeat_user = {bad:?}\n")).unwrap_err();
            assert_eq!(e.key, "pairs.main.heartbeat_user", "{bad:?}: {e}");
        }
        let e = with("heartbeat_user = \"hb\"\nheartbeat_secs = 0\n").unwrap_err();
        assert_eq!(e.key, "pairs.main.heartbeat_secs");
        assert!(parse(GOOD).unwrap().pairs["main"].heartbeat.is_none());
    }

    #[test]
    fn set_replicas_rewrites_only_the_list_and_proves_it() {
        let dir = std::env::temp_dir().join(format!("cyrdeck-reps-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        let text = format!("# keep me\n{GOOD}[hosts.n]\nssh = \"n.example\"\n");
        std::fs::write(&path, &text).unwrap();
        let want = vec![
            ("r".to_string(), String::new()),
            ("n".to_string(), "n".to_string()),
        ];
        set_replicas(&path, "main", &want).unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert!(new.starts_with("# keep me\n"), "{new}");
        assert!(
            new.contains(
                r#"replicas = [ { host = "r", channel = "" }, { host = "n", channel = "n" } ]"#
            ),
            "{new}"
        );
        set_replicas(&path, "main", &want).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), new);
        // a host that is not configured is refused, the file unchanged
        let bad = vec![("nosuch".to_string(), "x".to_string())];
        assert!(set_replicas(&path, "main", &bad).is_err());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), new);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn set_roles_swaps_only_the_two_values_and_is_idempotent() {
        let dir = std::env::temp_dir().join(format!("cyrdeck-roles-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.toml");
        let text = format!("# keep me\n{GOOD}heartbeat_user = \"hb\" # and me\n");
        std::fs::write(&path, &text).unwrap();
        set_roles(&path, "main", "r", "m").unwrap();
        let new = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            new,
            text.replace("master = \"m\"", "master = \"r\"")
                .replace("{ host = \"r\" }", "{ host = \"m\" }")
        );
        set_roles(&path, "main", "r", "m").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), new);
        assert_eq!(
            std::fs::read_to_string(path.with_extension("toml.bak")).unwrap(),
            text
        );
        assert!(set_roles(&path, "nosuch", "r", "m").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn good_config_parses() {
        let c = parse(GOOD).unwrap();
        assert_eq!(c.refresh, Duration::from_millis(1500));
        let r = c.host("r");
        assert_eq!(r.target.to_string(), "ops@replica.example:2202");
        assert_eq!(r.sudo_user.as_deref(), Some("cyrus"));
        assert_eq!(c.pairs["main"].replicas[0].channel, "");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let bad = GOOD.replace("master = \"m\"", "master = \"nosuch\"");
        let e = parse(&bad).unwrap_err().to_string();
        assert_eq!(
            e,
            "test.toml:15: key `pairs.main.master`: no host named \"nosuch\" in [hosts]"
        );
        let bad = GOOD.replace("root@127.0.0.1:2201", "root@127.0.0.1:99999");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.starts_with("test.toml:7: key `hosts.m.ssh`"), "{e}");
        let bad = GOOD.replace("sudo = true", "sudo = true\nsudoo = 1");
        let e = parse(&bad).unwrap_err().to_string();
        assert!(e.starts_with("test.toml:13") && e.contains("sudoo"), "{e}");
        let e = parse("[hosts.x\n").unwrap_err().to_string();
        assert!(e.starts_with("test.toml:1"), "{e}");
        let bad = GOOD.replace("refresh_secs = 1.5", "refresh_secs = 0");
        assert!(parse(&bad)
            .unwrap_err()
            .to_string()
            .contains("refresh_secs"));
    }

    #[test]
    fn destinations() {
        let none = Path::new("/nonexistent");
        let (t, _) = parse_destination("a@[::1]:2022", none).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 2022));
        let (t, _) = parse_destination("host", none).unwrap();
        assert_eq!(t.port, 22);
        for bad in ["", "a@", "@h", "h:x", "h:0", "[::1", "a b"] {
            assert!(parse_destination(bad, none).is_err(), "{bad}");
        }
    }

    #[test]
    fn alias_from_ssh_config() {
        let dir = std::env::temp_dir().join(format!("cyrdeck-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("config");
        std::fs::write(
            &f,
            "Host rep\n HostName 10.1.2.3\n Port 2222\n User ops\n IdentityFile /k\n",
        )
        .unwrap();
        let (t, id) = parse_destination("rep", &f).unwrap();
        assert_eq!(t.to_string(), "ops@10.1.2.3:2222");
        assert_eq!(id, Some(PathBuf::from("/k")));
        let (t, _) = parse_destination("root@rep:22", &f).unwrap();
        assert_eq!(t.to_string(), "root@10.1.2.3:22");
    }
}
