//! The rehearsal lab: a REAL Cyrus master/replica pair, one sshd per host and
//! a syslog receiver, all on loopback, all under one directory.

pub mod accounts;
mod files;
use files::write_atomic;
pub mod layout;
pub mod mail;
pub mod process;
pub mod roots;
pub mod seed;
pub mod templates;

use color_eyre::eyre::{bail, eyre, Context, Result};
use layout::{Instance, Layout, Role};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const CYRUS_BIN: &str = "/usr/lib/cyrus/bin";

/// Builds a host's private mount namespace (its own /dev/log).
const NS_SCRIPT: &str = include_str!("private_ns.sh");

/// Packages the lab needs, with a file that proves each is installed.
const NEEDED: &[(&str, &str)] = &[
    ("/usr/lib/cyrus/bin/master", "cyrus-imapd"),
    ("/usr/lib/cyrus/bin/sync_client", "cyrus-replication"),
    ("/usr/bin/cyradm", "cyrus-admin"),
    ("/usr/sbin/sshd", "openssh-server"),
    ("/usr/bin/ssh-keygen", "openssh-client"),
    ("/usr/sbin/rsyslogd", "rsyslog"),
    ("/usr/sbin/saslauthd", "sasl2-bin"),
    ("/usr/bin/unshare", "util-linux"),
    ("/usr/bin/sudo", "sudo"),
    ("/lib/systemd/systemd-journald", "systemd"),
];

/// The exact apt-get command for whatever is missing, or None.
pub fn missing_packages_command() -> Option<String> {
    let missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(f, _)| !Path::new(f).exists())
        .map(|(_, p)| *p)
        .collect();
    (!missing.is_empty()).then(|| format!("apt-get install -y {}", missing.join(" ")))
}

/// One thing the lab runs, stoppable on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Component {
    Syslog,
    /// The private systemd-journald of a journal host.
    Journal(Role),
    Cyrus(Role),
    Sshd(Role),
}

impl Component {
    /// A lab's components in start order (`journal`: its journal host;
    /// `roles`: its hosts, master first).
    pub fn all_for(journal: Option<Role>, roles: &[Role]) -> Vec<Component> {
        let mut v = vec![Component::Syslog];
        // replicas first: a master started first finds no sync_server and
        // its client backs off for 15 s
        for &r in roles.iter().rev() {
            if journal == Some(r) {
                v.push(Component::Journal(r));
            }
            v.push(Component::Cyrus(r));
            v.push(Component::Sshd(r));
        }
        v
    }
    /// Every component any lab can have (a journal on any host): `lab down
    /// --only` takes these names (its help lists them from here).
    pub fn every() -> Vec<Component> {
        let mut v = Component::all_for(None, &Role::ALL);
        v.extend(Role::ALL.map(Component::Journal));
        v
    }
    pub fn name(self) -> String {
        match self {
            Component::Syslog => "syslog".into(),
            Component::Journal(r) => format!("{}-journal", r.name()),
            Component::Cyrus(r) => format!("{}-cyrus", r.name()),
            Component::Sshd(r) => format!("{}-sshd", r.name()),
        }
    }
    pub fn parse(s: &str) -> Result<Component> {
        let every = Component::every();
        every
            .iter()
            .copied()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<String> = every.iter().map(|c| c.name()).collect();
                eyre!("unknown lab component {s:?}; one of: {}", names.join(", "))
            })
    }
}

pub struct Lab {
    pub layout: Layout,
}

#[derive(Serialize)]
pub struct ComponentStatus {
    pub name: String,
    pub running: bool,
    pub pid: Option<i32>,
}

#[derive(Serialize)]
pub struct InstanceStatus {
    pub role: &'static str,
    /// Its cyrus-imapd package version (the root's, when it runs from one).
    pub cyrus_version: Option<String>,
    pub fs_root: Option<PathBuf>,
    pub address: &'static str,
    pub imapd_conf: PathBuf,
    pub cyrus_conf: PathBuf,
    pub imap_port: u16,
    pub lmtp_port: u16,
    pub sync_port: u16,
    pub ssh_port: u16,
    pub syslog_file: PathBuf,
}

#[derive(Serialize)]
pub struct LabStatus {
    pub dir: PathBuf,
    pub base_port: u16,
    pub config: PathBuf,
    pub components: Vec<ComponentStatus>,
    pub instances: Vec<InstanceStatus>,
}

impl Lab {
    /// Open the lab in `dir`. The base port is remembered in DIR/lab.toml;
    /// asking for a different one for an existing lab is an error.
    pub fn open(dir: &Path, base_port: Option<u16>) -> Result<Lab> {
        let dir = absolute(dir)?;
        let state = std::fs::read_to_string(Layout::new(&dir, 0).state_file()).unwrap_or_default();
        let value = |key: &str| {
            state
                .lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix(" = "))
                .map(|v| v.trim().trim_matches('"').to_string())
        };
        let recorded: Option<u16> = value("base_port").and_then(|v| v.parse().ok());
        let journal_host = value("journal_host").and_then(|v| Role::parse(&v));
        let replicas: usize = value("replicas").and_then(|v| v.parse().ok()).unwrap_or(1);
        let spare = value("spare").is_some_and(|v| v == "true");
        let port = match (recorded, base_port) {
            (Some(r), Some(b)) if r != b => bail!(
                "lab in {} uses base port {r}, not {b}; run `cyrdeck lab down --dir {}` and remove it first",
                dir.display(),
                dir.display()
            ),
            (Some(r), _) => r,
            (None, Some(b)) => b,
            (None, None) => DEFAULT_BASE_PORT,
        };
        if !(1024..=65000).contains(&port) {
            bail!("base port {port} out of range 1024..65000");
        }
        let mut layout = Layout::new(&dir, port);
        layout.journal_host = journal_host;
        layout.replicas = replicas.clamp(1, layout::MAX_REPLICAS);
        layout.spare = spare && layout.replicas < layout::MAX_REPLICAS;
        layout.profile = value("profile")
            .and_then(|p| layout::Profile::parse(&p))
            .unwrap_or_default();
        let mut lab = Lab { layout };
        lab.set_releases(
            value("master_cyrus").as_deref(),
            value("replica_cyrus").as_deref(),
        )?;
        Ok(lab)
    }

    /// Which Cyrus release each host runs (None: the host's own packages).
    /// A release the host does not have runs from a root (roots.rs), built
    /// at the next `up` if it is not cached. Takes effect at the next `up`
    /// of a stopped lab (recorded in DIR/lab.toml).
    pub fn set_releases(&mut self, master: Option<&str>, replica: Option<&str>) -> Result<()> {
        for (role, release) in [(Role::Master, master), (Role::Replica, replica)] {
            let fs_root = match release {
                Some(r) if !roots::host_has(r) => {
                    Some(roots::roots_dir().join(roots::recipe(r)?.name))
                }
                Some(r) => {
                    roots::recipe(r)?;
                    None
                }
                None => None,
            };
            if fs_root.is_some() && self.layout.journal_host == Some(role) {
                bail!(
                    "the {} runs Cyrus {} from a root; a journal host runs the host's own release",
                    role.name(),
                    release.unwrap_or_default()
                );
            }
            self.layout.hosts[role.index()] = layout::HostRelease {
                release: release.map(str::to_string),
                fs_root,
            };
        }
        Ok(())
    }

    /// How many replicas the lab runs (1..=3). A running lab must be
    /// downed first: its master's channels and clients are set at start.
    pub fn set_replicas(&mut self, n: usize) -> Result<()> {
        if !(1..=layout::MAX_REPLICAS).contains(&n) {
            bail!("a lab runs 1 to {} replicas, not {n}", layout::MAX_REPLICAS);
        }
        if n != self.layout.replicas && self.pid(Component::Cyrus(Role::Master)).is_some() {
            bail!(
                "the lab in {} runs {} replica(s); `cyrdeck lab down --dir {}` first",
                self.layout.dir.display(),
                self.layout.replicas,
                self.layout.dir.display()
            );
        }
        self.layout.replicas = n;
        self.layout.spare = self.layout.spare && n < layout::MAX_REPLICAS;
        Ok(())
    }

    /// The lab's profile (`lab up --profile site`): fixed when the lab is
    /// first built (the namespace is in every mailbox name), so a lab that
    /// has data keeps its own.
    pub fn set_profile(&mut self, profile: layout::Profile) -> Result<()> {
        if profile != self.layout.profile && self.rendered() {
            bail!(
                "the lab in {} was built with the {} profile; `cyrdeck lab down --dir {}` and remove that directory to build a {} one",
                self.layout.dir.display(),
                self.layout.profile.name(),
                self.layout.dir.display(),
                profile.name()
            );
        }
        self.layout.profile = profile;
        Ok(())
    }

    /// Run a spare host too (`lab up --spare`): Cyrus and sshd, in the
    /// console config's hosts, replicating from nobody.
    pub fn set_spare(&mut self, spare: bool) -> Result<()> {
        if spare && self.layout.replicas >= layout::MAX_REPLICAS {
            bail!(
                "a lab of {} replicas has no room for a spare host",
                layout::MAX_REPLICAS
            );
        }
        self.layout.spare = spare;
        Ok(())
    }

    /// A Cyrus tool of `role`'s release, run as that host would (chrooted
    /// in its root when it has one: the host's own binary would read
    /// another release's files). Tests and the lab's own seeding use it.
    pub fn cyrus_tool(&self, role: Role, tool: &str) -> Command {
        let path = format!("{CYRUS_BIN}/{tool}");
        // what the lab records NOW (an upgrade_host since this value was
        // opened changes it)
        let now = Lab::open(&self.layout.dir, None).ok();
        let hosts = now.as_ref().map_or(&self.layout.hosts, |l| &l.layout.hosts);
        match &hosts[role.index()].fs_root {
            Some(root) => {
                // the lab dir is bound into the root in a namespace of the
                // tool's own (the lab hosts' namespaces are theirs)
                let mut c = Command::new("unshare");
                c.args(["--mount", "--propagation", "private", "/bin/sh", "-c"])
                    .arg(
                        "r=$1 l=$2; shift 2; mkdir -p \"$r$l\" && \
                         mount --bind \"$l\" \"$r$l\" && exec chroot \"$r\" \"$@\"",
                    )
                    .arg("sh")
                    .arg(root)
                    .arg(&self.layout.dir)
                    .arg(path);
                c
            }
            None => Command::new(path),
        }
    }

    /// The same as one shell command line (for hooks the tests write).
    pub fn cyrus_tool_line(&self, role: Role, tool: &str) -> String {
        let c = self.cyrus_tool(role, tool);
        std::iter::once(c.get_program())
            .chain(c.get_args())
            .map(|a| crate::remote::quote::quote_arg(&a.to_string_lossy()))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Rehearse a package upgrade of one host: stop its Cyrus and sshd,
    /// hand its spool and config to the new release's cyrus user (a real
    /// upgrade keeps the user; a root's uid differs from the host's), and
    /// start both again from `release`'s root AS LEFT (configs a failover
    /// edited stay). Cyrus itself upgrades the files it opens.
    pub fn upgrade_host(&self, role: Role, release: &str) -> Result<()> {
        require_root()?;
        let mut next = Lab::open(&self.layout.dir, None)?;
        let mut asked: Vec<Option<String>> = next
            .layout
            .hosts
            .iter()
            .map(|h| h.release.clone())
            .collect();
        asked[role.index()] = Some(release.to_string());
        next.set_releases(asked[0].as_deref(), asked[1].as_deref())?;
        if let Some(r) = &next.layout.hosts[role.index()].release {
            if next.layout.hosts[role.index()].fs_root.is_some() {
                roots::ensure(r)?;
            }
        }
        for c in [Component::Sshd(role), Component::Cyrus(role)] {
            self.down(Some(c))?;
        }
        next.write_state()?;
        accounts::write_etc(&next.layout, role)?;
        let inst = next.layout.instance(role);
        let (uid, gid) = roots::cyrus_ids(&next.layout.etc_prefix(role))?;
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(&inst.root))?;
        for c in [Component::Cyrus(role), Component::Sshd(role)] {
            next.start_as_left(c)?;
        }
        Ok(())
    }

    /// The Cyrus version each host runs (its package's version), master first.
    pub fn cyrus_versions(&self) -> [Option<String>; 2] {
        self.layout.hosts.clone().map(|h| match h.fs_root {
            Some(root) => roots::root_cyrus_version(&root),
            None => roots::host_cyrus_version(),
        })
    }

    /// Make `role` (or no host) the journal host: its Cyrus logs to a
    /// private systemd-journald, read with `log_source = "journal"`. Takes
    /// effect at the next `up` (recorded in DIR/lab.toml).
    pub fn set_journal_host(&mut self, role: Option<Role>) {
        self.layout.journal_host = role;
    }

    pub fn components(&self) -> Vec<Component> {
        Component::all_for(self.layout.journal_host, &self.layout.roles())
    }

    /// The name of a host's private /dev tmpfs: it appears in the
    /// mountinfo of every process in that host's namespaces.
    fn ns_tag(&self, role: Role) -> String {
        format!("cyrdeck-{}-{}", self.layout.lab_id(), role.name())
    }

    /// `program args` started in a new mount namespace with the host's
    /// private /dev/log (see private_ns.sh). Public: tests and benches
    /// start an extra process there, which `lab down` ends with the rest.
    pub fn in_namespace(&self, role: Role, program: &str) -> Command {
        let inst = self.layout.instance(role);
        let journal = self.layout.journal_host == Some(role);
        let log: PathBuf = if journal {
            "/run/systemd/journal/dev-log".into()
        } else {
            inst.log_socket()
        };
        let mut cmd = Command::new("unshare");
        cmd.args(["--mount", "--propagation", "private", "/bin/sh"])
            .arg(self.layout.ns_script())
            .arg(self.ns_tag(role))
            .arg(&inst.ns_dir)
            .arg(log)
            .arg(if journal { "journal" } else { "none" })
            .arg(inst.fs_root.as_deref().unwrap_or(Path::new("-")))
            .arg(&self.layout.dir)
            .arg("--")
            .arg(program);
        cmd
    }

    fn marker(&self, c: Component) -> String {
        let l = &self.layout;
        match c {
            Component::Syslog => l.syslog_conf().display().to_string(),
            Component::Journal(_) => "systemd-journald".into(),
            Component::Cyrus(r) => l.instance(r).cyrus_conf.display().to_string(),
            Component::Sshd(r) => l.instance(r).sshd_config().display().to_string(),
        }
    }

    fn pidfile(&self, c: Component) -> PathBuf {
        match c {
            Component::Syslog => self.layout.syslog_pidfile(),
            Component::Journal(r) => self.layout.instance(r).ns_dir.join("journald.pid"),
            Component::Cyrus(r) => self.layout.instance(r).master_pidfile,
            Component::Sshd(r) => self.layout.instance(r).sshd_pidfile(),
        }
    }

    pub fn pid(&self, c: Component) -> Option<i32> {
        let pid = process::live_pid(&self.pidfile(c), &self.marker(c))?;
        match c {
            // its command line names nothing of ours: its namespace does
            Component::Journal(r) => process::mount_tagged(pid, &self.ns_tag(r)).then_some(pid),
            _ => Some(pid),
        }
    }

    pub fn up(&self) -> Result<()> {
        require_root()?;
        if let Some(cmd) = missing_packages_command() {
            bail!("missing Debian packages for the lab; install them with:\n  {cmd}");
        }
        for h in &self.layout.hosts {
            if let (Some(r), Some(_)) = (&h.release, &h.fs_root) {
                roots::ensure(r)?;
            }
        }
        self.write_files()?;
        for c in self.components() {
            if self.pid(c).is_none() {
                self.start(c, true)
                    .wrap_err_with(|| format!("starting {}", c.name()))?;
            }
        }
        for role in self.layout.roles() {
            let inst = self.layout.instance(role);
            for (what, port) in [
                ("imap", inst.imap_port),
                ("lmtp", inst.lmtp_port),
                ("sync_server", inst.sync_port),
                ("sshd", inst.ssh_port),
            ] {
                if !process::wait_for_port(role.address(), port, Duration::from_secs(30)) {
                    bail!(
                        "{} {what} did not listen on {}:{port} within 30 s; see {}",
                        role.name(),
                        role.address(),
                        inst.master_stderr.display()
                    );
                }
            }
        }
        self.create_heartbeat_mailbox()?;
        self.initial_sync_of_added_replicas()
    }

    /// A replica added to a lab (`--replicas` raised) starts empty and its
    /// channel logs only what changes from now: one `sync_client -n CH -A`
    /// copies everything else, once (a marker in its dir). A replica
    /// dropped from the lab loses its marker: it missed changes meanwhile.
    fn initial_sync_of_added_replicas(&self) -> Result<()> {
        let marker = |r: Role| self.layout.instance(r).root.join("initial-sync-done");
        for r in Role::REPLICAS.into_iter().skip(self.layout.replicas) {
            let _ = std::fs::remove_file(marker(r));
        }
        let m = self.layout.instance(Role::Master);
        for r in self.layout.replica_roles().into_iter().skip(1) {
            if marker(r).exists() {
                continue;
            }
            let mut cmd = self.in_namespace(Role::Master, "timeout");
            cmd.arg("300")
                .arg(format!("{CYRUS_BIN}/sync_client"))
                .arg("-C")
                .arg(&m.imapd_conf)
                .args(["-n", r.channel(), "-A"]);
            run(&mut cmd).wrap_err_with(|| format!("initial sync of {}", r.name()))?;
            std::fs::write(marker(r), "sync_client -A done\n")?;
        }
        Ok(())
    }

    /// The heartbeat user's INBOX on the master (replicated from there).
    fn create_heartbeat_mailbox(&self) -> Result<()> {
        let m = self.layout.instance(Role::Master);
        let mut admin = mail::Imap::login(Role::Master.address(), m.imap_port, "admin")
            .wrap_err("IMAP login as admin")?;
        admin.create(&format!("user/{}", templates::HEARTBEAT_USER))?;
        admin.logout();
        Ok(())
    }

    /// Stop the lab (or one component). Only processes proven ours are touched.
    pub fn down(&self, only: Option<Component>) -> Result<()> {
        require_root()?;
        let targets = match only {
            Some(c) => vec![c],
            // a journal component of an earlier `up` may still run
            // every host any lab can have: an earlier `up` may have run more
            None => Component::every().into_iter().rev().collect(),
        };
        for c in targets {
            let mut pids: Vec<i32> = self.pid(c).into_iter().collect();
            if let Component::Sshd(_) = c {
                // a host going down takes its established sessions with it
                let listeners = pids.clone();
                pids.extend(listeners.iter().flat_map(|&p| process::children(p)));
            }
            if let Component::Cyrus(r) = c {
                // children (sync_client, imapd...) name the instance's imapd.conf
                let conf = self.layout.instance(r).imapd_conf.display().to_string();
                pids.extend(process::pids_matching(&conf));
            }
            pids.sort_unstable();
            pids.dedup();
            process::terminate(&pids, Duration::from_secs(10));
        }
        if only.is_none() {
            // whatever else still lives in the lab's namespaces: ssh
            // sessions, clients started over SSH, tools they ran
            let tags: Vec<String> = Role::ALL.iter().map(|&r| self.ns_tag(r)).collect();
            let rest = process::pids_mount_tagged(&tags);
            process::terminate(&rest, Duration::from_secs(10));
            let left = process::pids_mount_tagged(&tags);
            if !left.is_empty() {
                bail!("lab processes still running after SIGKILL: {left:?}");
            }
        }
        Ok(())
    }

    pub fn status(&self) -> LabStatus {
        let l = &self.layout;
        LabStatus {
            dir: l.dir.clone(),
            base_port: l.base_port,
            config: l.config_file(),
            components: self
                .components()
                .into_iter()
                .map(|c| {
                    let pid = self.pid(c);
                    ComponentStatus {
                        name: c.name(),
                        running: pid.is_some(),
                        pid,
                    }
                })
                .collect(),
            instances: l
                .roles()
                .into_iter()
                .map(|r| {
                    let i = l.instance(r);
                    InstanceStatus {
                        role: r.name(),
                        cyrus_version: self.cyrus_versions()[r.index()].clone(),
                        fs_root: i.fs_root.clone(),
                        address: r.address(),
                        syslog_file: i.syslog_file(),
                        imapd_conf: i.imapd_conf,
                        cyrus_conf: i.cyrus_conf,
                        imap_port: i.imap_port,
                        lmtp_port: i.lmtp_port,
                        sync_port: i.sync_port,
                        ssh_port: i.ssh_port,
                    }
                })
                .collect(),
        }
    }

    fn write_files(&self) -> Result<()> {
        let l = &self.layout;
        for d in [l.dir.join("ssh"), l.dir.join("syslog")] {
            std::fs::create_dir_all(&d)?;
        }
        self.write_state()?;
        std::fs::create_dir_all(l.dir.join("ns"))?;
        write_atomic(l.ns_script(), NS_SCRIPT)?;
        // cyrus must traverse the lab dir to reach its config and spool
        set_mode(&l.dir, 0o755)?;
        if !l.operator_key().exists() {
            keygen(&l.operator_key(), "cyrdeck-operator")?;
        }
        if !l.observer_key().exists() {
            keygen(&l.observer_key(), "cyrdeck-observer")?;
        }
        for (key, comment) in [
            (l.writer_key(), "cyrdeck-sudo-writer"),
            (l.readonly_key(), "cyrdeck-sudo-readonly"),
        ] {
            if !key.exists() {
                keygen(&key, comment)?;
            }
        }
        let mut authorized = String::new();
        for key in [
            l.operator_key(),
            l.observer_key(),
            l.writer_key(),
            l.readonly_key(),
        ] {
            authorized.push_str(&std::fs::read_to_string(key.with_extension("pub"))?);
        }
        write_atomic(l.authorized_keys(), authorized)?;
        // replace atomically: a running sshd may be executing it right now
        let tmp = l.recorder().with_extension("tmp");
        write_atomic(&tmp, templates::RECORDER)?;
        set_mode(&tmp, 0o755)?;
        std::fs::rename(&tmp, l.recorder())?;
        let mut known = String::new();
        for role in l.roles() {
            let inst = l.instance(role);
            self.prepare_instance(&inst)?;
            std::fs::create_dir_all(&inst.ssh_dir)?;
            if !inst.host_key().exists() {
                keygen(&inst.host_key(), &format!("{}-{}", l.lab_id(), role.name()))?;
            }
            let public = std::fs::read_to_string(inst.host_key().with_extension("pub"))?;
            let mut f = public.split_whitespace();
            let (kt, kb) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
            known.push_str(&format!(
                "[{}]:{} {kt} {kb}\n",
                role.address(),
                inst.ssh_port
            ));
            write_atomic(inst.sshd_config(), templates::sshd_config(l, &inst))?;
        }
        write_atomic(l.known_hosts(), known)?;
        write_atomic(l.syslog_conf(), templates::rsyslog_conf(l))?;
        let root_config = templates::cyrdeck_toml(l);
        write_atomic(l.config_file(), &root_config)?;
        accounts::prepare(l, &root_config)
    }

    /// DIR/lab.toml: the base port, journal host and releases.
    fn write_state(&self) -> Result<()> {
        let l = &self.layout;
        let mut state = format!("# cyrdeck lab state\nbase_port = {}\n", l.base_port);
        if let Some(r) = l.journal_host {
            state.push_str(&format!("journal_host = \"{}\"\n", r.name()));
        }
        if l.replicas > 1 {
            state.push_str(&format!("replicas = {}\n", l.replicas));
        }
        if l.spare {
            state.push_str("spare = true\n");
        }
        if l.profile != layout::Profile::Plain {
            state.push_str(&format!("profile = \"{}\"\n", l.profile.name()));
        }
        for role in [Role::Master, Role::Replica] {
            if let Some(r) = &l.hosts[role.index()].release {
                state.push_str(&format!("{}_cyrus = \"{r}\"\n", role.name()));
            }
        }
        write_atomic(l.state_file(), state)?;
        Ok(())
    }

    fn prepare_instance(&self, inst: &Instance) -> Result<()> {
        for sub in [
            "db", "socket", "log", "msg", "user", "quota", "lock", "proc", "sync",
        ] {
            std::fs::create_dir_all(inst.config_dir.join(sub))?;
        }
        for d in [
            &inst.partition,
            &inst.partition2,
            &inst.archive,
            &inst.archive2,
            &inst.sieve_dir,
        ] {
            std::fs::create_dir_all(d)?;
        }
        std::fs::create_dir_all(&inst.run_dir)?;
        write_atomic(&inst.imapd_conf, templates::imapd_conf(&self.layout, inst))?;
        write_atomic(&inst.cyrus_conf, templates::cyrus_conf(&self.layout, inst))?;
        // ITS cyrus: a root's uid differs from the host's
        let (uid, gid) = roots::cyrus_ids(&self.layout.etc_prefix(inst.role))?;
        run(Command::new("chown")
            .arg("-R")
            .arg(format!("{uid}:{gid}"))
            .arg(&inst.root))?;
        set_mode(&inst.root, 0o755)?;
        set_mode(&inst.sync_dir(), 0o700)?;
        Ok(())
    }

    /// Stop `role`'s Cyrus and remove its data (config directory with
    /// mailboxes.db, spools, archives, sieve): the next `up` starts it as
    /// an empty Cyrus. A spare host reused by the next replace-replica
    /// rehearsal must be empty (the runbook refuses one that holds mail).
    pub fn wipe_host_data(&self, role: Role) -> Result<()> {
        self.down(Some(Component::Cyrus(role)))?;
        let inst = self.layout.instance(role);
        for d in [
            &inst.config_dir,
            &inst.partition,
            &inst.partition2,
            &inst.archive,
            &inst.archive2,
            &inst.sieve_dir,
        ] {
            // the lab's own directories only
            if d.starts_with(&self.layout.dir) && d.exists() {
                std::fs::remove_dir_all(d)?;
            }
        }
        Ok(())
    }

    /// This lab has been brought up before (its files are rendered).
    pub fn rendered(&self) -> bool {
        self.layout.config_file().exists()
    }

    /// `lab up` on a lab that exists: every stopped component started AS
    /// IT WAS LEFT (no config re-rendered, no fence removed), as a crashed
    /// host comes back. Re-rendering (which puts the lab's first roles
    /// back) is `lab up --reset`. Returns the components started.
    pub fn resume(&self) -> Result<Vec<String>> {
        require_root()?;
        let mut started = Vec::new();
        for c in self.components() {
            if self.pid(c).is_none() {
                self.start_as_left(c)?;
                started.push(c.name());
            }
        }
        Ok(started)
    }

    /// Start one stopped component again AS IT WAS LEFT: no config
    /// re-rendered, no fence or shutdown file removed (a host coming back
    /// after a crash, in the fault matrix). Waits for its ports.
    pub fn start_as_left(&self, c: Component) -> Result<()> {
        require_root()?;
        if self.pid(c).is_none() {
            self.start(c, false)
                .wrap_err_with(|| format!("starting {}", c.name()))?;
        }
        let wait: Vec<(Role, u16)> = match c {
            Component::Cyrus(r) => {
                let i = self.layout.instance(r);
                vec![(r, i.imap_port), (r, i.lmtp_port), (r, i.sync_port)]
            }
            Component::Sshd(r) => vec![(r, self.layout.instance(r).ssh_port)],
            Component::Syslog | Component::Journal(_) => vec![],
        };
        for (r, port) in wait {
            if !process::wait_for_port(r.address(), port, Duration::from_secs(30)) {
                bail!(
                    "{} did not listen on {}:{port} within 30 s",
                    c.name(),
                    r.address()
                );
            }
        }
        Ok(())
    }

    /// `fresh`: a lab coming up (stale failover files removed); otherwise
    /// the component starts with whatever its files say.
    fn start(&self, c: Component, fresh: bool) -> Result<()> {
        let l = &self.layout;
        match c {
            Component::Syslog => {
                run(Command::new("/usr/sbin/rsyslogd")
                    .arg("-f")
                    .arg(l.syslog_conf())
                    .arg("-i")
                    .arg(l.syslog_pidfile()))?;
                process::wait_until(Duration::from_secs(10), || {
                    self.pid(c).is_some()
                        && l.roles()
                            .iter()
                            .all(|&r| l.instance(r).log_socket().exists())
                })
                .then_some(())
                .ok_or_else(|| eyre!("rsyslogd did not start (or made no sockets)"))
            }
            Component::Journal(r) => {
                let inst = l.instance(r);
                std::fs::create_dir_all(&inst.ns_dir)?;
                let pidfile = self.pidfile(c);
                let _ = std::fs::remove_file(&pidfile);
                let mut cmd = Command::new("setsid");
                let ns = self.in_namespace(r, "/lib/systemd/systemd-journald");
                cmd.arg("-f")
                    .arg(ns.get_program())
                    .args(ns.get_args())
                    .env("CYRDECK_PIDFILE", &pidfile)
                    .stdin(std::process::Stdio::null())
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                run(&mut cmd)?;
                let sock = inst.ns_dir.join("journal-sock").join("dev-log");
                process::wait_until(Duration::from_secs(10), || {
                    self.pid(c).is_some() && sock.exists()
                })
                .then_some(())
                .ok_or_else(|| eyre!("systemd-journald ({}) did not start", r.name()))
            }
            Component::Cyrus(r) => {
                let inst = l.instance(r);
                let _ = std::fs::remove_file(&inst.master_pidfile);
                // a failover cut short leaves these: the client would exit
                // at once and users would be refused (configs are rewritten
                // from the templates by write_files)
                if fresh {
                    for r in Role::REPLICAS {
                        let _ = std::fs::remove_file(inst.channel_shutdown_file(r.channel()));
                    }
                    let _ = std::fs::remove_file(inst.config_dir.join("msg/shutdown"));
                }
                std::fs::create_dir_all(&inst.ns_dir)?;
                run(self
                    .in_namespace(r, &format!("{CYRUS_BIN}/master"))
                    .arg("-C")
                    .arg(&inst.imapd_conf)
                    .arg("-M")
                    .arg(&inst.cyrus_conf)
                    .arg("-p")
                    .arg(&inst.master_pidfile)
                    .arg("-d")
                    .arg("-L")
                    .arg(&inst.master_stderr))?;
                process::wait_until(Duration::from_secs(20), || self.pid(c).is_some())
                    .then_some(())
                    .ok_or_else(|| {
                        eyre!(
                            "cyrus master ({}) did not start; see {}",
                            r.name(),
                            inst.master_stderr.display()
                        )
                    })
            }
            Component::Sshd(r) => {
                let inst = l.instance(r);
                std::fs::create_dir_all(&inst.ns_dir)?;
                run(self
                    .in_namespace(r, "/usr/sbin/sshd")
                    .arg("-f")
                    .arg(inst.sshd_config())
                    .arg("-E")
                    .arg(inst.sshd_log()))?;
                process::wait_until(Duration::from_secs(10), || self.pid(c).is_some())
                    .then_some(())
                    .ok_or_else(|| {
                        eyre!(
                            "sshd ({}) did not start; see {}",
                            r.name(),
                            inst.sshd_log().display()
                        )
                    })
            }
        }
    }
}

pub const DEFAULT_BASE_PORT: u16 = 24100;

fn require_root() -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        bail!("the lab must run as root: it starts sshd and Cyrus (which drop to user cyrus)");
    }
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(p).wrap_err_with(|| format!("creating {}", p.display()))?;
    std::fs::canonicalize(p).wrap_err_with(|| format!("resolving {}", p.display()))
}

/// Replace a file whole (temp + rename): `lab up` re-renders configs that
/// tests, consoles and Cyrus tools of the running lab read at any moment,
/// and a plain write is seen empty or half-written by them.
fn set_mode(p: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .wrap_err_with(|| format!("chmod {mode:o} {}", p.display()))
}

fn keygen(path: &Path, comment: &str) -> Result<()> {
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path))
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd
        .output()
        .wrap_err_with(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
