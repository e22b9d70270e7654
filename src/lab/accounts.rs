//! The lab's least-privilege accounts: `cyrdeck` (the writing sudo rules)
//! and `cyrdeck-ro` (the read-only rules), as a site would set them up
//! with `cyrdeck helpers install` and `cyrdeck sudoers`.
//!
//! The lab is a guest: the accounts exist only inside each lab host's
//! mount namespace (private_ns.sh binds `ns/<role>/etc/{passwd,group,
//! sudoers}` over /etc), never in the host's /etc. The passwd and group
//! copies are the host's plus the accounts (no shadow entry: sshd runs
//! without PAM and sudo never asks for a password). The helpers are
//! installed root-owned in `DIR/helpers`; sudo logs what it allowed to
//! `ns/<role>/sudo.log`, which tests read as the server's own record.

use super::layout::{Layout, Role};
use crate::config::Config;
use crate::remote::helpers::{self, RuleSet};
use color_eyre::eyre::{eyre, Result, WrapErr};
use std::os::unix::fs::{chown, PermissionsExt};
use std::path::{Path, PathBuf};

/// Runs the runbooks through the writing rules.
pub const WRITER: &str = "cyrdeck";
/// Observe mode through the read-only rules: this account cannot write.
pub const OBSERVER: &str = "cyrdeck-ro";
const GROUP: &str = "cyrdeck-lab";

/// Root's passwd line inside a lab host: its home is in the lab. sshd runs
/// every command (the recorder included) through the account's shell, and
/// Debian's bash sources `~/.bashrc` for ssh commands: with the host's home,
/// the host root's dotfiles ran in every lab session and wrote where the
/// host keeps its own state. Measured on this project's machines: root's
/// `.bashrc` runs `pyenv init`, whose rehash takes a lock file in
/// `/root/.pyenv/shims`; a lab session killed by an exec timeout left it
/// behind, and from then on every bash on the host (lab sessions and the
/// host's own) waited up to a minute for it: every lab command timed out.
/// The shell stays root's own: bash runs a `-c` command in its own process,
/// so a command killed by a signal reaches sshd (and cyrdeck) as that
/// signal; dash forks and reports exit status 143 instead.
fn lab_root(passwd: &str, home: &Path) -> String {
    passwd
        .lines()
        .map(|line| {
            let mut f: Vec<&str> = line.split(':').collect();
            if f.len() == 7 && f[0] == "root" {
                let home = home.display().to_string();
                f[5] = &home;
                return f.join(":") + "\n";
            }
            format!("{line}\n")
        })
        .collect()
}

impl Layout {
    pub fn helper_dir(&self) -> PathBuf {
        self.dir.join("helpers")
    }
    /// The console config for the writing account.
    pub fn sudo_config_file(&self) -> PathBuf {
        self.dir.join("cyrdeck-sudo.toml")
    }
    /// The console config for the read-only account.
    pub fn observer_sudo_config_file(&self) -> PathBuf {
        self.dir.join("cyrdeck-sudo-ro.toml")
    }
    pub fn writer_key(&self) -> PathBuf {
        self.dir.join("ssh").join("writer_ed25519")
    }
    pub fn readonly_key(&self) -> PathBuf {
        self.dir.join("ssh").join("readonly_ed25519")
    }
    fn home(&self, account: &str) -> PathBuf {
        self.dir.join("home").join(account)
    }
    /// Root's home inside every lab host: empty, no dotfiles (see `lab_root`).
    pub fn root_home(&self) -> PathBuf {
        self.home("root")
    }
    /// What sudo on `role` allowed (its `logfile`).
    pub fn sudo_log(&self, role: Role) -> PathBuf {
        self.instance(role).ns_dir.join("sudo.log")
    }
    fn etc_overlay(&self, role: Role) -> PathBuf {
        self.instance(role).ns_dir.join("etc")
    }
}

/// The first id free as both uid and gid on this machine and in the roots
/// the lab's hosts run from (from 64100).
fn free_id(l: &Layout) -> Result<u32> {
    let used = |file: &Path| -> Result<Vec<u32>> {
        Ok(std::fs::read_to_string(file)
            .wrap_err_with(|| format!("reading {}", file.display()))?
            .lines()
            .filter_map(|l| l.split(':').nth(2)?.parse().ok())
            .collect())
    };
    let (mut uids, mut gids) = (vec![], vec![]);
    for role in Role::ALL {
        let etc = l.etc_prefix(role).join("etc");
        uids.extend(used(&etc.join("passwd"))?);
        gids.extend(used(&etc.join("group"))?);
    }
    (64100..65000)
        .find(|i| !uids.contains(i) && !uids.contains(&(i + 1)) && !gids.contains(i))
        .ok_or_else(|| eyre!("no free uid/gid between 64100 and 65000"))
}

/// Ids chosen at the first `up`, kept in `DIR/home/ids` so a second `up`
/// does not pick others (file ownership depends on them).
fn ids(l: &Layout) -> Result<u32> {
    let f = l.dir.join("home").join("ids");
    if let Some(id) = std::fs::read_to_string(&f)
        .ok()
        .and_then(|t| t.trim().parse().ok())
    {
        return Ok(id);
    }
    let id = free_id(l)?;
    std::fs::create_dir_all(f.parent().unwrap())?;
    std::fs::write(&f, format!("{id}\n"))?;
    Ok(id)
}

/// Everything the accounts need, written before the hosts start.
/// `cyrdeck_toml`: the lab's root config text, rewritten for each account.
pub fn prepare(l: &Layout, cyrdeck_toml: &str) -> Result<()> {
    let base = ids(l)?;
    let gid = base;
    helpers::install(&l.helper_dir(), crate::scripts::all()).wrap_err("installing the helpers")?;
    let root_home = l.root_home();
    std::fs::create_dir_all(&root_home)?;
    std::fs::set_permissions(&root_home, std::fs::Permissions::from_mode(0o700))?;
    for (i, account) in [WRITER, OBSERVER].into_iter().enumerate() {
        let home = l.home(account);
        std::fs::create_dir_all(&home)?;
        chown(&home, Some(base + i as u32), Some(gid))?;
    }
    // the lab's command recorder runs as the account: it appends to the logs
    for role in l.roles() {
        let log = l.instance(role).command_log();
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        chown(&log, Some(0), Some(gid))?;
        std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o664))?;
    }
    let (writer_cfg, reader_cfg) = configs(l, cyrdeck_toml);
    super::files::write_atomic(l.sudo_config_file(), &writer_cfg)?;
    super::files::write_atomic(l.observer_sudo_config_file(), &reader_cfg)?;
    let cfg = Config::parse(
        &l.sudo_config_file(),
        &writer_cfg,
        Path::new("/nonexistent"),
    )
    .map_err(|e| eyre!("the lab's sudo config: {e}"))?;
    for role in l.roles() {
        write_etc_with(l, role, &cfg, base)?;
    }
    Ok(())
}

/// One host's /etc overlay (passwd, group, sudoers), from its OWN files (a
/// root's, when it runs from one): again after the host changes release.
pub fn write_etc(l: &Layout, role: Role) -> Result<()> {
    let text = std::fs::read_to_string(l.sudo_config_file())?;
    let cfg = Config::parse(&l.sudo_config_file(), &text, Path::new("/nonexistent"))
        .map_err(|e| eyre!("the lab's sudo config: {e}"))?;
    write_etc_with(l, role, &cfg, ids(l)?)
}

fn write_etc_with(l: &Layout, role: Role, cfg: &Config, base: u32) -> Result<()> {
    let gid = base;
    // the host's own accounts (a root's, when it runs from one) + ours
    let own = l.etc_prefix(role).join("etc");
    let mut passwd = lab_root(
        &std::fs::read_to_string(own.join("passwd"))?,
        &l.root_home(),
    );
    let mut group = std::fs::read_to_string(own.join("group"))?;
    for (i, account) in [WRITER, OBSERVER].into_iter().enumerate() {
        passwd.push_str(&format!(
            "{account}:*:{}:{gid}:cyrdeck lab account:{}:/bin/sh\n",
            base + i as u32,
            l.home(account).display()
        ));
    }
    group.push_str(&format!("{GROUP}:x:{gid}:{WRITER},{OBSERVER}\n"));
    let etc = l.etc_overlay(role);
    std::fs::create_dir_all(&etc)?;
    std::fs::write(etc.join("passwd"), &passwd)?;
    std::fs::write(etc.join("group"), &group)?;
    let host = cfg
        .hosts
        .get(role.name())
        .ok_or_else(|| eyre!("no host {} in the sudo config", role.name()))?;
    let mut sudoers = format!(
        "# generated by cyrdeck lab: this host's /etc/sudoers (its namespace only)\n\
         Defaults env_reset\n\
         Defaults secure_path=\"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"\n\
         Defaults !syslog, loglinelen=0, logfile=\"{}\"\n\
         root ALL=(ALL:ALL) ALL\n",
        l.sudo_log(role).display()
    );
    sudoers.push_str(
        &helpers::sudoers(host, WRITER, RuleSet::Write, crate::scripts::all())
            .map_err(|e| eyre!(e))?,
    );
    sudoers.push_str(
        &helpers::sudoers(host, OBSERVER, RuleSet::Observe, crate::scripts::all())
            .map_err(|e| eyre!(e))?,
    );
    let f = etc.join("sudoers");
    std::fs::write(&f, sudoers)?;
    chown(&f, Some(0), Some(0))?;
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o440))?;
    Ok(())
}

/// The root config rewritten for the writing account (sudo mode) and for
/// the read-only one (sudo mode, its own key).
fn configs(l: &Layout, root_toml: &str) -> (String, String) {
    let op = l.operator_key().display().to_string();
    let for_account = |account: &str, key: &Path| {
        root_toml
            .replace(&op, &key.display().to_string())
            .replace("ssh = \"root@", &format!("ssh = \"{account}@"))
            .replace(
                "sudo = false\n",
                &format!(
                    "sudo = true\nhelper_dir = \"{}\"\n",
                    l.helper_dir().display()
                ),
            )
    };
    (
        for_account(WRITER, &l.writer_key()),
        for_account(OBSERVER, &l.readonly_key()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_gets_a_home_in_the_lab_and_nothing_else_changes() {
        let host = "root:x:0:0:root:/root:/bin/bash\n\
                    daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                    rootless:x:1000:1000::/home/rootless:/bin/bash\n";
        let out = lab_root(host, Path::new("/var/tmp/lab/home/root"));
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "root:x:0:0:root:/var/tmp/lab/home/root:/bin/bash");
        assert_eq!(&lines[1..], &host.lines().collect::<Vec<_>>()[1..]);
        assert!(out.ends_with('\n'));
    }
}
