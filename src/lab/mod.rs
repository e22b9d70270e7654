//! The rehearsal lab: a REAL Cyrus master/replica pair, one sshd per host and
//! a syslog receiver, all on loopback, all under one directory.

pub mod layout;
pub mod mail;
pub mod process;
pub mod seed;
pub mod templates;

use color_eyre::eyre::{bail, eyre, Context, Result};
use layout::{Instance, Layout, Role};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub const CYRUS_BIN: &str = "/usr/lib/cyrus/bin";

/// Packages the lab needs, with a file that proves each is installed.
const NEEDED: &[(&str, &str)] = &[
    ("/usr/lib/cyrus/bin/master", "cyrus-imapd"),
    ("/usr/lib/cyrus/bin/sync_client", "cyrus-replication"),
    ("/usr/bin/cyradm", "cyrus-admin"),
    ("/usr/sbin/sshd", "openssh-server"),
    ("/usr/bin/ssh-keygen", "openssh-client"),
    ("/usr/sbin/rsyslogd", "rsyslog"),
    ("/usr/sbin/saslauthd", "sasl2-bin"),
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
    Cyrus(Role),
    Sshd(Role),
}

impl Component {
    pub fn all() -> Vec<Component> {
        let mut v = vec![Component::Syslog];
        // replica first: a master started first finds no sync_server and
        // its client backs off for 15 s
        for r in [Role::Replica, Role::Master] {
            v.push(Component::Cyrus(r));
            v.push(Component::Sshd(r));
        }
        v
    }
    pub fn name(self) -> String {
        match self {
            Component::Syslog => "syslog".into(),
            Component::Cyrus(r) => format!("{}-cyrus", r.name()),
            Component::Sshd(r) => format!("{}-sshd", r.name()),
        }
    }
    pub fn parse(s: &str) -> Result<Component> {
        Component::all()
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<String> = Component::all().iter().map(|c| c.name()).collect();
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
        let state = Layout::new(&dir, 0).state_file();
        let recorded: Option<u16> = std::fs::read_to_string(&state).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("base_port = "))
                .and_then(|v| v.trim().parse().ok())
        });
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
        Ok(Lab {
            layout: Layout::new(&dir, port),
        })
    }

    fn marker(&self, c: Component) -> String {
        let l = &self.layout;
        match c {
            Component::Syslog => l.syslog_conf().display().to_string(),
            Component::Cyrus(r) => l.instance(r).cyrus_conf.display().to_string(),
            Component::Sshd(r) => l.instance(r).sshd_config().display().to_string(),
        }
    }

    fn pidfile(&self, c: Component) -> PathBuf {
        match c {
            Component::Syslog => self.layout.syslog_pidfile(),
            Component::Cyrus(r) => self.layout.instance(r).master_pidfile,
            Component::Sshd(r) => self.layout.instance(r).sshd_pidfile(),
        }
    }

    pub fn pid(&self, c: Component) -> Option<i32> {
        process::live_pid(&self.pidfile(c), &self.marker(c))
    }

    pub fn up(&self) -> Result<()> {
        require_root()?;
        if let Some(cmd) = missing_packages_command() {
            bail!("missing Debian packages for the lab; install them with:\n  {cmd}");
        }
        self.write_files()?;
        for c in Component::all() {
            if self.pid(c).is_none() {
                self.start(c, true)
                    .wrap_err_with(|| format!("starting {}", c.name()))?;
            }
        }
        for role in Role::ALL {
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
        self.create_heartbeat_mailbox()
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
            None => Component::all().into_iter().rev().collect(),
        };
        for c in targets {
            if c == Component::Syslog && only.is_none() && other_labs_running(&self.layout) {
                continue; // the receiver serves other labs too
            }
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
        Ok(())
    }

    pub fn status(&self) -> LabStatus {
        let l = &self.layout;
        LabStatus {
            dir: l.dir.clone(),
            base_port: l.base_port,
            config: l.config_file(),
            components: Component::all()
                .into_iter()
                .map(|c| {
                    let pid = self.pid(c).or_else(|| {
                        // the shared receiver may belong to another lab
                        (c == Component::Syslog).then(shared_receiver_pid).flatten()
                    });
                    ComponentStatus {
                        name: c.name(),
                        running: pid.is_some(),
                        pid,
                    }
                })
                .collect(),
            instances: Role::ALL
                .iter()
                .map(|&r| {
                    let i = l.instance(r);
                    InstanceStatus {
                        role: r.name(),
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
        std::fs::write(
            l.state_file(),
            format!("# cyrdeck lab state\nbase_port = {}\n", l.base_port),
        )?;
        // cyrus must traverse the lab dir to reach its config and spool
        set_mode(&l.dir, 0o755)?;
        if !l.operator_key().exists() {
            keygen(&l.operator_key(), "cyrdeck-operator")?;
        }
        if !l.observer_key().exists() {
            keygen(&l.observer_key(), "cyrdeck-observer")?;
        }
        let mut authorized = std::fs::read_to_string(l.operator_key().with_extension("pub"))?;
        authorized.push_str(&std::fs::read_to_string(
            l.observer_key().with_extension("pub"),
        )?);
        std::fs::write(l.authorized_keys(), authorized)?;
        // replace atomically: a running sshd may be executing it right now
        let tmp = l.recorder().with_extension("tmp");
        std::fs::write(&tmp, templates::RECORDER)?;
        set_mode(&tmp, 0o755)?;
        std::fs::rename(&tmp, l.recorder())?;
        let mut known = String::new();
        for role in Role::ALL {
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
            std::fs::write(inst.sshd_config(), templates::sshd_config(l, &inst))?;
        }
        std::fs::write(l.known_hosts(), known)?;
        std::fs::write(l.syslog_conf(), templates::rsyslog_conf(l))?;
        std::fs::write(l.config_file(), templates::cyrdeck_toml(l))?;
        Ok(())
    }

    fn prepare_instance(&self, inst: &Instance) -> Result<()> {
        for sub in [
            "db", "socket", "log", "msg", "user", "quota", "lock", "proc", "sync",
        ] {
            std::fs::create_dir_all(inst.config_dir.join(sub))?;
        }
        std::fs::create_dir_all(&inst.partition)?;
        std::fs::create_dir_all(&inst.run_dir)?;
        std::fs::write(&inst.imapd_conf, templates::imapd_conf(&self.layout, inst))?;
        std::fs::write(&inst.cyrus_conf, templates::cyrus_conf(inst))?;
        run(Command::new("chown")
            .args(["-R", "cyrus:mail"])
            .arg(&inst.root))?;
        set_mode(&inst.root, 0o755)?;
        set_mode(&inst.sync_dir(), 0o700)?;
        Ok(())
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
            Component::Syslog => vec![],
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
                if shared_receiver_pid().is_some() {
                    return Ok(()); // another lab's receiver already serves /dev/log
                }
                std::fs::create_dir_all(layout::SYSLOG_DIR)?;
                run(Command::new("/usr/sbin/rsyslogd")
                    .arg("-f")
                    .arg(l.syslog_conf())
                    .arg("-i")
                    .arg(l.syslog_pidfile()))?;
                process::wait_until(Duration::from_secs(10), || self.pid(c).is_some())
                    .then_some(())
                    .ok_or_else(|| eyre!("rsyslogd did not start"))
            }
            Component::Cyrus(r) => {
                let inst = l.instance(r);
                let _ = std::fs::remove_file(&inst.master_pidfile);
                // a failover cut short leaves these: the client would exit
                // at once and users would be refused (configs are rewritten
                // from the templates by write_files)
                if fresh {
                    let _ = std::fs::remove_file(inst.shutdown_file());
                    let _ = std::fs::remove_file(inst.config_dir.join("msg/shutdown"));
                }
                run(Command::new(format!("{CYRUS_BIN}/master"))
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
                std::fs::create_dir_all("/run/sshd")?;
                run(Command::new("/usr/sbin/sshd")
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

/// A lab receiver (any lab's rsyslogd) that already owns /dev/log.
fn shared_receiver_pid() -> Option<i32> {
    process::pids_matching("/syslog/rsyslog.conf")
        .into_iter()
        .find(|&p| process::cmdline(p).is_some_and(|c| c.contains("rsyslogd")))
}

/// Another lab's Cyrus master is running (so the shared receiver must stay).
fn other_labs_running(mine: &Layout) -> bool {
    let own = mine.dir.display().to_string();
    process::pids_matching("/cyrus.conf").into_iter().any(|p| {
        process::cmdline(p).is_some_and(|c| {
            c.contains("/master ") && c.contains("-p ") && !c.contains(&format!("{own}/"))
        })
    })
}

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
