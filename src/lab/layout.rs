//! Where everything of one rehearsal lab lives: paths and ports, derived from
//! the lab directory and a base port so two labs never collide.

use std::path::{Path, PathBuf};

/// The Cyrus hosts of a lab: a master and one to three replicas
/// (`lab up --replicas N`). The first replica reads the master's default
/// sync-log channel; replica2 and replica3 read channels of their own name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Master,
    Replica,
    Replica2,
    Replica3,
}

/// Most replicas a lab runs.
pub const MAX_REPLICAS: usize = 3;

impl Role {
    /// Every role a lab can have (which ones it runs: `Layout::roles`).
    pub const ALL: [Role; 4] = [Role::Master, Role::Replica, Role::Replica2, Role::Replica3];
    pub const REPLICAS: [Role; MAX_REPLICAS] = [Role::Replica, Role::Replica2, Role::Replica3];

    pub fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Replica => "replica",
            Role::Replica2 => "replica2",
            Role::Replica3 => "replica3",
        }
    }

    /// Distinct loopback addresses keep the "hosts" apart.
    pub fn address(self) -> &'static str {
        match self {
            Role::Master => "127.0.0.1",
            Role::Replica => "127.0.0.2",
            Role::Replica2 => "127.0.0.3",
            Role::Replica3 => "127.0.0.4",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == s)
    }

    /// The master's sync-log channel this replica reads ("" = default).
    pub fn channel(self) -> &'static str {
        match self {
            Role::Master | Role::Replica => "",
            other => other.name(),
        }
    }

    /// Its release slot (`Layout::hosts`): the master's, or the replicas'
    /// (every replica of a lab runs the same release).
    pub fn index(self) -> usize {
        match self {
            Role::Master => 0,
            _ => 1,
        }
    }

    fn port_offset(self) -> u16 {
        // +20..+25 are the sshds (and the fleet lab's second one)
        match self {
            Role::Master => 0,
            Role::Replica => 10,
            Role::Replica2 => 30,
            Role::Replica3 => 40,
        }
    }

    fn ssh_offset(self) -> u16 {
        match self {
            Role::Master => 20,
            Role::Replica => 21,
            Role::Replica2 => 22,
            Role::Replica3 => 23,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Layout {
    pub dir: PathBuf,
    pub base_port: u16,
    /// The host whose Cyrus logs to a private systemd-journald instead of
    /// the lab's rsyslogd (`lab up --journal-host`), as on a Debian host
    /// without rsyslog.
    pub journal_host: Option<Role>,
    /// Each host's Cyrus release and the root it runs from (None: the
    /// host's own packages), master first; see roots.rs.
    pub hosts: [HostRelease; 2],
    /// How many replicas it runs (1..=MAX_REPLICAS).
    pub replicas: usize,
    /// One more host, running Cyrus and sshd but replicating from nobody
    /// (in the console config's hosts, in no pair): the new replica of a
    /// replace-replica rehearsal.
    pub spare: bool,
    /// The names and storage real sites use (`lab up --profile site`):
    /// virtual domains, the alternate namespace, a second partition and
    /// archive partitions. Fixed when the lab is first built.
    pub profile: Profile,
}

/// How a lab's Cyrus names and stores mailboxes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// `user.*` only, one partition (the tests' default).
    #[default]
    Plain,
    /// `virtdomains: userid` (`alice@example.com`), `altnamespace: yes`,
    /// `unixhierarchysep: yes`, partitions `default` and `second`, each
    /// with an archive partition (`archive_enabled: yes`, `archive_days:
    /// 1`); shared folders with group ACLs are seeded.
    Site,
}

impl Profile {
    pub fn name(self) -> &'static str {
        match self {
            Profile::Plain => "plain",
            Profile::Site => "site",
        }
    }
    pub fn parse(s: &str) -> Option<Profile> {
        [Profile::Plain, Profile::Site]
            .into_iter()
            .find(|p| p.name() == s)
    }
}

/// Which Cyrus a lab host runs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostRelease {
    /// The release asked for ("3.10"); None: whatever the host has.
    pub release: Option<String>,
    /// The root filesystem it runs chrooted in; None: the host's own.
    pub fs_root: Option<PathBuf>,
}

/// Paths and ports of one Cyrus instance and its sshd.
#[derive(Clone, Debug)]
pub struct Instance {
    pub role: Role,
    pub root: PathBuf,
    pub imapd_conf: PathBuf,
    pub cyrus_conf: PathBuf,
    pub config_dir: PathBuf,
    pub partition: PathBuf,
    /// The site profile's second partition, and each partition's archive
    /// partition (created on every lab; configured only in that profile).
    pub partition2: PathBuf,
    pub archive: PathBuf,
    pub archive2: PathBuf,
    /// Each host's own `sievedir` (Cyrus's default, /usr/sieve, is the
    /// machine's: a lab must not write there, and two lab hosts sharing
    /// one would always look the same to the check).
    pub sieve_dir: PathBuf,
    pub run_dir: PathBuf,
    pub master_pidfile: PathBuf,
    pub master_stderr: PathBuf,
    pub imap_port: u16,
    pub lmtp_port: u16,
    pub sync_port: u16,
    /// ManageSieve (timsieved): users put and activate sieve scripts.
    pub sieve_port: u16,
    pub ssh_port: u16,
    pub ssh_dir: PathBuf,
    pub syslog_prefix: String,
    /// The lab's syslog directory (its rsyslogd's sockets and files).
    pub syslog_dir: PathBuf,
    /// Scratch of this host's mount namespaces (the private /dev is built
    /// here; a journal host's journal lives here too).
    pub ns_dir: PathBuf,
    /// The root its Cyrus and sshd run chrooted in (None: the host's).
    pub fs_root: Option<PathBuf>,
}

impl Instance {
    pub fn sshd_config(&self) -> PathBuf {
        self.ssh_dir.join("sshd_config")
    }
    pub fn sshd_pidfile(&self) -> PathBuf {
        self.ssh_dir.join("sshd.pid")
    }
    pub fn sshd_log(&self) -> PathBuf {
        self.ssh_dir.join("sshd.log")
    }
    /// Every command this sshd ran, recorded by the ForceCommand wrapper:
    /// `epoch<TAB>keytype key<TAB>base64(command)` per line. Tests read it to
    /// prove from the remote side what the console sent.
    pub fn command_log(&self) -> PathBuf {
        self.ssh_dir.join("commands.log")
    }
    pub fn host_key(&self) -> PathBuf {
        self.ssh_dir.join("ssh_host_ed25519_key")
    }
    pub fn sync_dir(&self) -> PathBuf {
        self.config_dir.join("sync")
    }
    pub fn shutdown_file(&self) -> PathBuf {
        self.config_dir.join("sync").join("shutdown")
    }
    /// The shutdown file of a named channel's client (its own, so one
    /// replica's client can be stopped alone).
    pub fn channel_shutdown_file(&self, channel: &str) -> PathBuf {
        if channel.is_empty() {
            return self.shutdown_file();
        }
        self.config_dir.join("sync").join(channel).join("shutdown")
    }
    /// The file the lab's rsyslogd writes this instance's Cyrus lines to
    /// (RFC 3339 timestamps: rsyslog's file format).
    pub fn syslog_file(&self) -> PathBuf {
        self.syslog_dir.join(format!("{}.log", self.syslog_prefix))
    }
    /// The same lines in the traditional format (`Dec  2 01:24:21 host
    /// tag[pid]: ...`: no year, local time), as many sites still write them.
    pub fn traditional_syslog_file(&self) -> PathBuf {
        self.syslog_dir
            .join(format!("{}.trad.log", self.syslog_prefix))
    }
    /// The datagram socket that is `/dev/log` inside this host's private
    /// mount namespace (the lab's rsyslogd listens on it).
    pub fn log_socket(&self) -> PathBuf {
        self.syslog_dir.join(format!("{}.sock", self.role.name()))
    }
    /// Where journald keeps a journal host's files (`journalctl --directory`).
    pub fn journal_dir(&self) -> PathBuf {
        self.ns_dir.join("journal-data")
    }
}

impl Layout {
    pub fn new(dir: &Path, base_port: u16) -> Self {
        Layout {
            dir: dir.to_path_buf(),
            base_port,
            journal_host: None,
            hosts: Default::default(),
            replicas: 1,
            spare: false,
            profile: Profile::Plain,
        }
    }

    /// The hosts this lab runs: the master, its replicas, its spare.
    pub fn roles(&self) -> Vec<Role> {
        std::iter::once(Role::Master)
            .chain(Role::REPLICAS.into_iter().take(self.replicas))
            .chain(self.spare_role())
            .collect()
    }

    /// The spare host (the role after the replicas), if the lab has one.
    pub fn spare_role(&self) -> Option<Role> {
        Role::REPLICAS
            .get(self.replicas)
            .copied()
            .filter(|_| self.spare)
    }

    /// Its replicas, first one first.
    pub fn replica_roles(&self) -> Vec<Role> {
        Role::REPLICAS.into_iter().take(self.replicas).collect()
    }

    /// Short id used in syslog prefixes; unique per base port.
    pub fn lab_id(&self) -> String {
        format!("cyrlab{}", self.base_port)
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("lab.toml")
    }
    pub fn config_file(&self) -> PathBuf {
        self.dir.join("cyrdeck.toml")
    }
    pub fn operator_key(&self) -> PathBuf {
        self.dir.join("ssh").join("operator_ed25519")
    }
    /// A second client key the lab authorizes, for tests that must tell
    /// their own sessions apart in the command log.
    pub fn observer_key(&self) -> PathBuf {
        self.dir.join("ssh").join("observer_ed25519")
    }
    /// The ForceCommand wrapper that records, then runs, each command.
    pub fn recorder(&self) -> PathBuf {
        self.dir.join("ssh").join("record-command")
    }
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.join("ssh").join("authorized_keys")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("ssh").join("known_hosts")
    }
    /// The lab's own rsyslogd: its config, sockets and files live here
    /// (never /dev/log, never /var/log).
    pub fn syslog_dir(&self) -> PathBuf {
        self.dir.join("syslog")
    }
    pub fn syslog_conf(&self) -> PathBuf {
        self.syslog_dir().join("rsyslog.conf")
    }
    /// The script that builds a host's private mount namespace.
    /// A host's own /etc/passwd and /etc/group live under this prefix.
    pub fn etc_prefix(&self, role: Role) -> PathBuf {
        self.hosts[role.index()]
            .fs_root
            .clone()
            .unwrap_or_else(|| PathBuf::from("/"))
    }
    pub fn ns_script(&self) -> PathBuf {
        self.dir.join("ns").join("private_ns.sh")
    }
    pub fn syslog_pidfile(&self) -> PathBuf {
        self.dir.join("syslog").join("rsyslogd.pid")
    }
    pub fn audit_log(&self) -> PathBuf {
        self.dir.join("audit.log")
    }

    pub fn instance(&self, role: Role) -> Instance {
        let root = self.dir.join(role.name());
        let p = self.base_port + role.port_offset();
        let config_dir = root.join("config");
        Instance {
            role,
            imapd_conf: root.join("imapd.conf"),
            cyrus_conf: root.join("cyrus.conf"),
            partition: root.join("spool"),
            partition2: root.join("spool2"),
            archive: root.join("archive"),
            archive2: root.join("archive2"),
            sieve_dir: root.join("sieve"),
            run_dir: root.join("run"),
            master_pidfile: root.join("run").join("master.pid"),
            master_stderr: root.join("master.log"),
            config_dir,
            imap_port: p,
            lmtp_port: p + 1,
            sync_port: p + 2,
            sieve_port: p + 3,
            ssh_port: self.base_port + role.ssh_offset(),
            ssh_dir: self.dir.join("ssh").join(role.name()),
            syslog_prefix: format!("{}-{}", self.lab_id(), role.name()),
            syslog_dir: self.syslog_dir(),
            ns_dir: self.dir.join("ns").join(role.name()),
            fs_root: self.hosts[role.index()].fs_root.clone(),
            root,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `lab up --base-port`'s help says base..base+43: keep it true.
    #[test]
    fn ports_stay_within_the_span_the_help_states() {
        let l = Layout::new(Path::new("/nonexistent"), 1000);
        for r in Role::ALL {
            let i = l.instance(r);
            for p in [
                i.imap_port,
                i.lmtp_port,
                i.sync_port,
                i.sieve_port,
                i.ssh_port,
            ] {
                assert!((1000..=1043).contains(&p), "{r:?} port {p}");
            }
        }
        assert_eq!(l.instance(Role::Replica3).sieve_port, 1043);
    }
}
