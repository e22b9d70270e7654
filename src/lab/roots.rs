//! Cyrus releases the lab can rehearse, and the cached root filesystems that
//! hold the ones the host does not have.
//!
//! A lab host runs the host's own Cyrus when the host's package is the asked
//! release (Debian 12: 3.6), otherwise its Cyrus AND its sshd run chrooted in
//! a minimal root made by `debootstrap` (private_ns.sh): everything cyrdeck
//! runs over SSH then meets that release's tools, as on a real host of it.
//! Roots are built once into `roots_dir()` (a build goes to `NAME.partial`
//! and is renamed when complete) and shared by every lab; `cyrdeck lab roots`
//! lists them with their size.
//!
//! Where each release comes from (checked here, 2026-12):
//! - 3.10: Debian 13 (trixie) main, 3.10.2; a root takes ~70 s and ~460 MB;
//! - 3.12: trixie-backports, 3.12.3 (a copy of the 3.10 root, its Cyrus
//!   upgraded with `apt-get -t trixie-backports`: no second debootstrap);
//! - 3.8: Ubuntu 24.04 (noble) universe, 3.8.2, from archive.ubuntu.com
//!   (~400 MB); Debian 12's debootstrap has no `noble` script: `gutsy` is the
//!   one every later Ubuntu suite links to; Ubuntu's archive key comes from
//!   Debian 13's `ubuntu-keyring` package (fetch_ubuntu_keyring);
//! - 3.6: Debian 12 (bookworm), the host's release here; a root only when the
//!   host has another.
//!   cyrus-common's postinst wants an MTA: nullmailer is the smallest.

use color_eyre::eyre::{bail, eyre, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The releases a lab host can run, oldest first.
pub const RELEASES: [&str; 4] = ["3.6", "3.8", "3.10", "3.12"];

/// What one release's root is made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RootRecipe {
    /// Directory name under roots_dir().
    pub name: &'static str,
    pub suite: &'static str,
    pub mirror: &'static str,
    pub components: &'static str,
    /// Install Cyrus from this suite (backports) after the base system.
    pub cyrus_from: Option<&'static str>,
    /// debootstrap script to use instead of the suite's own.
    pub script: Option<&'static str>,
    /// A keyring file in roots_dir() (fetched by fetch_ubuntu_keyring).
    pub keyring: Option<&'static str>,
    /// Start from a copy of this release's root (same suite) instead of a
    /// new debootstrap: saves the download when both are wanted.
    pub based_on: Option<&'static str>,
}

/// Ubuntu's archive key, which Debian 12 does not package: taken from
/// Debian 13's `ubuntu-keyring` package, downloaded by the 3.10 root's own
/// apt (so verified through Debian's signed archive), kept in roots_dir().
const UBUNTU_KEYRING: &str = "ubuntu-archive-keyring.gpg";

/// Everything a lab host needs inside a root: Cyrus, its replication tools,
/// an sshd, sudo (the least-privilege accounts), ps/kill, perl (inventory).
const BASE_PACKAGES: &str = "nullmailer,openssh-server,sudo,procps,perl,util-linux";
const CYRUS_PACKAGES: [&str; 4] = [
    "cyrus-imapd",
    "cyrus-replication",
    "cyrus-clients",
    "cyrus-admin",
];

pub fn recipe(release: &str) -> Result<RootRecipe> {
    const DEBIAN: &str = "http://deb.debian.org/debian";
    let r = match release {
        "3.6" => RootRecipe {
            name: "debian12-cyrus3.6",
            suite: "bookworm",
            mirror: DEBIAN,
            components: "main",
            cyrus_from: None,
            script: None,
            keyring: None,
            based_on: None,
        },
        "3.8" => RootRecipe {
            name: "ubuntu2404-cyrus3.8",
            suite: "noble",
            mirror: "http://archive.ubuntu.com/ubuntu",
            components: "main,universe",
            cyrus_from: None,
            script: Some("/usr/share/debootstrap/scripts/gutsy"),
            keyring: Some(UBUNTU_KEYRING),
            based_on: None,
        },
        "3.10" => RootRecipe {
            name: "debian13-cyrus3.10",
            suite: "trixie",
            mirror: DEBIAN,
            components: "main",
            cyrus_from: None,
            script: None,
            keyring: None,
            based_on: None,
        },
        "3.12" => RootRecipe {
            name: "debian13-cyrus3.12",
            suite: "trixie",
            mirror: DEBIAN,
            components: "main",
            cyrus_from: Some("trixie-backports"),
            script: None,
            keyring: None,
            based_on: Some("3.10"),
        },
        other => bail!(
            "unknown Cyrus release {other:?}; the lab rehearses {}",
            RELEASES.join(", ")
        ),
    };
    Ok(r)
}

/// Where roots are cached (`CYRDECK_LAB_ROOTS`, default /var/tmp/cyrdeck-roots):
/// outside every lab directory, so wiping a lab keeps them.
pub fn roots_dir() -> PathBuf {
    std::env::var_os("CYRDECK_LAB_ROOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/cyrdeck-roots"))
}

/// The host's own cyrus-imapd version (dpkg), e.g. "3.6.1-4+deb12u5".
/// Asked once per process: Lab::open (and so every Lab::cyrus_tool) needs it.
pub fn host_cyrus_version() -> Option<String> {
    static VERSION: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    VERSION
        .get_or_init(|| {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f", "${Version}", "cyrus-imapd"])
                .output()
                .ok()?;
            let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
            (out.status.success() && !v.is_empty()).then_some(v)
        })
        .clone()
}

/// "3.6" for "3.6.1-4+deb12u5" (an epoch is skipped).
pub fn release_of(package_version: &str) -> String {
    let v = package_version
        .split_once(':')
        .map_or(package_version, |(_, v)| v);
    v.split('.').take(2).collect::<Vec<_>>().join(".")
}

/// True when `release` is the host's own Cyrus (no root needed).
pub fn host_has(release: &str) -> bool {
    host_cyrus_version().is_some_and(|v| release_of(&v) == release)
}

/// The root for `release`, None when the host's own Cyrus is that release.
/// Builds it (debootstrap; minutes, downloads) when it is not cached.
pub fn ensure(release: &str) -> Result<Option<PathBuf>> {
    let r = recipe(release)?;
    if host_has(release) {
        return Ok(None);
    }
    let dir = roots_dir().join(r.name);
    if ready(&dir) {
        return Ok(Some(dir));
    }
    build(&r, &dir)
        .wrap_err_with(|| format!("building the Cyrus {release} root {}", dir.display()))?;
    Ok(Some(dir))
}

/// A complete root has its marker (written last).
pub fn ready(root: &Path) -> bool {
    root.join(MARKER).is_file()
}

const MARKER: &str = "etc/cyrdeck-root";

/// The Cyrus version installed in a root (its marker's first line).
pub fn root_cyrus_version(root: &Path) -> Option<String> {
    let text = std::fs::read_to_string(root.join(MARKER)).ok()?;
    text.lines().next().map(|l| l.trim().to_string())
}

fn build(r: &RootRecipe, dir: &Path) -> Result<()> {
    if !Path::new("/usr/sbin/debootstrap").exists() {
        bail!("debootstrap is needed to build a root: apt-get install -y debootstrap");
    }
    std::fs::create_dir_all(roots_dir())?;
    let keyring = match r.keyring {
        Some(k) => Some(fetch_ubuntu_keyring(k)?),
        None => None,
    };
    // not with_extension: "debian13-cyrus3.10" has one
    let partial = sibling(dir, ".partial");
    if partial.exists() {
        std::fs::remove_dir_all(&partial)
            .wrap_err_with(|| format!("removing an unfinished root {}", partial.display()))?;
    }
    let mut include = BASE_PACKAGES.to_string();
    if r.cyrus_from.is_none() {
        for p in CYRUS_PACKAGES {
            include.push(',');
            include.push_str(p);
        }
    }
    let log = sibling(dir, ".log");
    let _ = std::fs::remove_file(&log);
    if let Some(base) = r.based_on {
        let from = ensure(base)?.ok_or_else(|| {
            eyre!(
                "Cyrus {base} is the host's own: no root to start {} from",
                r.name
            )
        })?;
        run_logged(Command::new("cp").arg("-a").arg(&from).arg(&partial), &log)?;
        std::fs::remove_file(partial.join(MARKER))?;
    } else {
        let mut cmd = Command::new("debootstrap");
        cmd.arg("--variant=minbase")
            .arg(format!("--components={}", r.components))
            .arg(format!("--include={include}"));
        if let Some(k) = &keyring {
            cmd.arg(format!("--keyring={}", k.display()));
        }
        cmd.arg(r.suite).arg(&partial).arg(r.mirror);
        if let Some(s) = r.script {
            cmd.arg(s);
        }
        run_logged(&mut cmd, &log)?;
    }
    if let Some(suite) = r.cyrus_from {
        install_from(&partial, r, suite, &log)?;
    }
    // nothing in a root may start at boot or by a package's postinst: the
    // lab starts Cyrus and sshd itself, with its own configs
    let version = chroot_output(
        &partial,
        &["dpkg-query", "-W", "-f", "${Version}", "cyrus-imapd"],
    )?;
    std::fs::write(
        partial.join(MARKER),
        format!("{version}\n# cyrdeck lab root {} ({})\n", r.name, r.suite),
    )?;
    std::fs::rename(&partial, dir)?;
    Ok(())
}

/// roots_dir()/NAME: Ubuntu's archive keyring, from Debian 13's package.
fn fetch_ubuntu_keyring(name: &str) -> Result<PathBuf> {
    let out = roots_dir().join(name);
    if out.is_file() {
        return Ok(out);
    }
    let debian = ensure("3.10")?
        .ok_or_else(|| eyre!("the Debian 13 root is needed to fetch Ubuntu's keyring"))?;
    let work = sibling(&out, ".partial");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(work.join("lists/partial"))?;
    std::fs::create_dir_all(work.join("cache/archives/partial"))?;
    // apt's lists and download go to WORK (bound into the root), so the
    // cached root is not changed
    let script = format!(
        "mkdir -p {r}{w} && mount --bind {w} {r}{w} && chroot {r} sh -c \
         'cd {w} && o=\"-o Dir::State::Lists={w}/lists -o Dir::Cache={w}/cache\" && \
         apt-get -q $o update && apt-get -q $o download ubuntu-keyring' && \
         dpkg-deb -x {w}/ubuntu-keyring_*.deb {w}/x",
        r = debian.display(),
        w = work.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    run_logged(&mut cmd, &sibling(&work, ".log"))?;
    std::fs::copy(
        work.join("x/usr/share/keyrings/ubuntu-archive-keyring.gpg"),
        &out,
    )?;
    let _ = std::fs::remove_dir_all(&work);
    Ok(out)
}

/// Install Cyrus from another suite (backports) inside the root.
fn install_from(root: &Path, r: &RootRecipe, suite: &str, log: &Path) -> Result<()> {
    let list = root.join("etc/apt/sources.list.d/cyrdeck-backports.list");
    std::fs::write(
        &list,
        format!(
            "deb {} {suite} {}\n",
            r.mirror,
            r.components.replace(',', " ")
        ),
    )?;
    // postinsts must not start daemons in a root
    let policy = root.join("usr/sbin/policy-rc.d");
    std::fs::write(&policy, "#!/bin/sh\nexit 101\n")?;
    set_exec(&policy)?;
    let script = format!(
        "mount -t proc proc {r}/proc && trap 'umount {r}/proc' EXIT && \
         chroot {r} apt-get update && \
         DEBIAN_FRONTEND=noninteractive chroot {r} apt-get install -y --no-install-recommends -t {suite} {pkgs}",
        r = root.display(),
        pkgs = CYRUS_PACKAGES.join(" ")
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    run_logged(&mut cmd, log)?;
    std::fs::remove_file(&policy)?;
    Ok(())
}

/// `DIR` + suffix, beside it.
fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut s = dir.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn chroot_output(root: &Path, argv: &[&str]) -> Result<String> {
    let out = Command::new("chroot")
        .arg(root)
        .args(argv)
        .output()
        .wrap_err("running chroot")?;
    if !out.status.success() {
        bail!(
            "{argv:?} in {} failed: {}",
            root.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn run_logged(cmd: &mut Command, log: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    let status = cmd
        .stdout(file.try_clone()?)
        .stderr(file)
        .status()
        .wrap_err_with(|| format!("running {:?}", cmd.get_program()))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(eyre!(
            "{:?} failed ({status}); the end of {}:\n{}",
            cmd.get_program(),
            log.display(),
            tail.join("\n")
        ));
    }
    Ok(())
}

fn set_exec(p: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// The numeric uid of `cyrus` and gid of `mail` in a root's (or the
/// host's, root = "/") passwd and group: the files of a lab host are owned
/// by ITS cyrus (100 in Debian 13's root, 104 on this Debian 12 host).
pub fn cyrus_ids(root: &Path) -> Result<(u32, u32)> {
    let field = |file: &str, name: &str, idx: usize| -> Result<u32> {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path)
            .wrap_err_with(|| format!("reading {}", path.display()))?;
        text.lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.first() == Some(&name)).then(|| f.get(idx)?.parse().ok())?
            })
            .ok_or_else(|| eyre!("no {name} in {}", path.display()))
    };
    Ok((
        field("etc/passwd", "cyrus", 2)?,
        field("etc/group", "mail", 2)?,
    ))
}

/// (name, cyrus version, bytes) of every cached root.
pub fn list() -> Vec<(String, String, u64)> {
    let Ok(rd) = std::fs::read_dir(roots_dir()) else {
        return vec![];
    };
    let mut v: Vec<(String, String, u64)> = rd
        .flatten()
        .filter(|e| ready(&e.path()))
        .map(|e| {
            let p = e.path();
            (
                e.file_name().to_string_lossy().into_owned(),
                root_cyrus_version(&p).unwrap_or_default(),
                du_bytes(&p),
            )
        })
        .collect();
    v.sort();
    v
}

fn du_bytes(p: &Path) -> u64 {
    Command::new("du")
        .args(["-sx", "--block-size=1"])
        .arg(p)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_of_package_versions() {
        assert_eq!(release_of("3.6.1-4+deb12u5"), "3.6");
        assert_eq!(release_of("3.10.2-1+deb13u2"), "3.10");
        assert_eq!(release_of("3.12.3-1~bpo13+1"), "3.12");
        assert_eq!(release_of("1:3.8.2-1"), "3.8");
    }

    #[test]
    fn recipes_exist_for_every_release_and_unknown_is_refused() {
        for r in RELEASES {
            assert!(recipe(r).is_ok(), "{r}");
        }
        let e = recipe("3.4").unwrap_err().to_string();
        assert!(e.contains("3.6, 3.8, 3.10, 3.12"), "{e}");
    }

    #[test]
    fn cyrus_ids_read_from_a_root() {
        let d = std::env::temp_dir().join(format!("cyrdeck-ids-{}", std::process::id()));
        std::fs::create_dir_all(d.join("etc")).unwrap();
        std::fs::write(
            d.join("etc/passwd"),
            "root:x:0:0::/root:/bin/sh\ncyrus:x:100:8:Cyrus:/var/spool/cyrus:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(d.join("etc/group"), "root:x:0:\nmail:x:8:\n").unwrap();
        assert_eq!(cyrus_ids(&d).unwrap(), (100, 8));
        std::fs::write(d.join("etc/group"), "root:x:0:\n").unwrap();
        assert!(cyrus_ids(&d).is_err());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
