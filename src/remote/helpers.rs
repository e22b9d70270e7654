//! How the scripts cyrdeck runs on a host become least privilege: the
//! registry's types (the registry itself, naming every script, is
//! src/scripts.rs, passed in), sudo mode's helpers and rules.
//!
//! As root over SSH a script travels inline (`sh -c BODY ARG0 ARGS`). A
//! non-root account cannot be allowed "`sh` as cyrus" (that is every power
//! of cyrus), so in sudo mode each script is an installed, root-owned file
//! `HELPER_DIR/NAME` (`cyrdeck helpers install`) and sudo rules name those
//! files, with the arguments that come from the config pinned
//! (`cyrdeck sudoers`). The installed file runs exactly the body cyrdeck
//! would have sent, with the same `$0`, so both modes run the same code.

use crate::config::HostConfig;
use sha2::{Digest, Sha256};

/// Which interpreter a script is written for (and how it is invoked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interp {
    /// `sh -c BODY ARG0 ARGS`
    Sh,
    /// `bash -c BODY ARG0 ARGS`
    Bash,
    /// `perl -e BODY ARGS`
    Perl,
}

impl Interp {
    /// The inline form's first two words.
    fn inline(self) -> [&'static str; 2] {
        match self {
            Interp::Sh => ["sh", "-c"],
            Interp::Bash => ["bash", "-c"],
            Interp::Perl => ["perl", "-e"],
        }
    }
    fn path(self) -> &'static str {
        match self {
            Interp::Sh => "/bin/sh",
            Interp::Bash => "/bin/bash",
            Interp::Perl => "/usr/bin/perl",
        }
    }
}

/// Who sudo runs a command as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunAs {
    /// The host's `sudo_user` (default `cyrus`): Cyrus's files and tools.
    Cyrus,
    /// root: only what edits root-owned config and signals Cyrus master.
    Root,
}

/// One argument of a sudo rule, in order; the rule ends with ` *`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pin {
    Lit(&'static str),
    /// The host's imapd.conf.
    Conf,
    /// The host's cyrus.conf.
    CyrusConf,
    /// The host's Cyrus bin directory.
    BinDir,
    /// `BINDIR/<tool>`.
    Tool(&'static str),
}

impl Pin {
    fn value(self, h: &HostConfig) -> String {
        match self {
            Pin::Lit(s) => s.to_string(),
            Pin::Conf => h.imapd_conf.display().to_string(),
            Pin::CyrusConf => h.cyrus_conf.display().to_string(),
            Pin::BinDir => h.bin_dir.display().to_string(),
            Pin::Tool(t) => format!("{}/{t}", h.bin_dir.display()),
        }
    }
}

/// One allowed shape of a command: its leading arguments, then anything.
#[derive(Clone, Copy, Debug)]
pub struct Pattern {
    pub pins: &'static [Pin],
    /// In the writing set only (observe-mode accounts never get it).
    pub writes: bool,
}

/// A pattern of the read-only set.
pub const fn read(pins: &'static [Pin]) -> Pattern {
    Pattern {
        pins,
        writes: false,
    }
}
/// A pattern of the writing set only.
pub const fn write(pins: &'static [Pin]) -> Pattern {
    Pattern { pins, writes: true }
}

/// What runs on a host: an installed script or a Cyrus tool.
#[derive(Clone, Copy, Debug)]
pub enum Body {
    Script(Interp, &'static str),
    /// `BINDIR/<name>`, run as is.
    Tool,
    /// An absolute system command (`/usr/bin/kill`).
    System(&'static str),
}

#[derive(Clone, Debug)]
pub struct Helper {
    /// The installed file's name (scripts) or the tool's name.
    pub name: &'static str,
    pub body: Body,
    pub run_as: RunAs,
    pub patterns: Vec<Pattern>,
}

impl Helper {
    /// Where this command lives on `h`.
    pub fn path(&self, h: &HostConfig) -> String {
        match self.body {
            Body::Script(..) => format!("{}/{}", h.helper_dir.display(), self.name),
            Body::Tool => format!("{}/{}", h.bin_dir.display(), self.name),
            Body::System(p) => p.to_string(),
        }
    }

    /// The installed file's text (scripts only): runs exactly the body
    /// cyrdeck sends inline, with the caller's `$0`, from a root-owned file.
    pub fn installed_text(&self) -> Option<String> {
        let Body::Script(interp, body) = self.body else {
            return None;
        };
        let quoted = super::quote::quote_arg(body);
        let who = match self.run_as {
            RunAs::Cyrus => "the Cyrus user",
            RunAs::Root => "root",
        };
        Some(format!(
            "#!/bin/sh\n\
             # cyrdeck helper {name} {version} (run by sudo as {who}): installed by\n\
             # `cyrdeck helpers install`; the body is exactly what cyrdeck sends inline.\n\
             exec {interp} {flag} {quoted} \"$@\"\n",
            name = self.name,
            version = self.version().unwrap_or_default(),
            interp = interp.path(),
            flag = interp.inline()[1],
        ))
    }

    /// sha256 of the body (first 16 hex digits): tells installed versions apart.
    pub fn version(&self) -> Option<String> {
        let Body::Script(_, body) = self.body else {
            return None;
        };
        let d = Sha256::digest(body.as_bytes());
        Some(d.iter().take(8).map(|b| format!("{b:02x}")).collect())
    }

    /// The rule lines' commands for this helper on `h` (`PATH PIN... *`).
    pub fn rule_commands(&self, h: &HostConfig, writes: bool) -> Vec<String> {
        self.patterns
            .iter()
            .filter(|p| writes || !p.writes)
            .map(|p| {
                let mut words = vec![sudoers_escape(&self.path(h))];
                words.extend(p.pins.iter().map(|pin| sudoers_escape(&pin.value(h))));
                words.push("*".into());
                words.join(" ")
            })
            .collect()
    }
}

/// A sudoers command word: `\` before the characters sudoers reads
/// specially (`,` `:` `=` `\` and the glob characters).
fn sudoers_escape(word: &str) -> String {
    let mut out = String::with_capacity(word.len());
    for c in word.chars() {
        if matches!(c, ',' | ':' | '=' | '\\' | '*' | '?' | '[' | ']' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A command as sudo mode sends it: who it runs as and the argv.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Privileged {
    pub helper: &'static str,
    pub run_as: RunAs,
    pub argv: Vec<String>,
}

/// Turn an argv cyrdeck built (inline script or tool) into what a sudo
/// account runs: the installed helper with the same arguments. Anything
/// not in the registry is refused: sudo mode never runs a shell.
pub fn privileged(
    argv: &[String],
    h: &HostConfig,
    registry: &[Helper],
) -> Result<Privileged, String> {
    let first = argv.first().map(String::as_str).unwrap_or("");
    for helper in registry {
        let found = match helper.body {
            Body::Script(interp, body) => {
                argv.len() >= 3
                    && interp.inline() == [argv[0].as_str(), argv[1].as_str()]
                    && argv[2] == body
            }
            Body::Tool => first == helper.path(h),
            Body::System(p) => first == helper.name || first == p,
        };
        if !found {
            continue;
        }
        let rest = match helper.body {
            Body::Script(..) => &argv[3..],
            _ => &argv[1..],
        };
        let mut out = vec![helper.path(h)];
        out.extend(rest.iter().cloned());
        return Ok(Privileged {
            helper: helper.name,
            run_as: helper.run_as,
            argv: out,
        });
    }
    Err(format!(
        "{first:?} is not one of cyrdeck's helpers or Cyrus tools: refused (sudo mode runs nothing else)"
    ))
}

/// The rule a refused command needed, for the error: the pattern its
/// arguments fit, or (none fits: a path differs from the config) the
/// rule for its first pattern and why.
pub fn rule_for(p: &Privileged, h: &HostConfig, account: &str, registry: &[Helper]) -> String {
    let who = run_as_user(p.run_as, h);
    let Some(helper) = registry.iter().find(|x| x.name == p.helper) else {
        return format!("{account} ALL=({who}) NOPASSWD: {} *", p.argv[0]);
    };
    let rules = helper.rule_commands(h, true);
    let fits = helper
        .patterns
        .iter()
        .position(|pat| pat.fits(&p.argv[1..], h));
    match fits {
        Some(i) => format!("{account} ALL=({who}) NOPASSWD: {}", rules[i]),
        None => format!(
            "{account} ALL=({who}) NOPASSWD: {} (these arguments fit none of cyrdeck's rules for {}: \
             do imapd_conf, cyrus_conf and bin_dir in the config name this host's paths?)",
            rules.first().cloned().unwrap_or_default(),
            helper.name
        ),
    }
}

impl Pattern {
    /// Do `args` (after the command) start with this pattern's pins?
    pub fn fits(&self, args: &[String], h: &HostConfig) -> bool {
        args.len() >= self.pins.len()
            && self
                .pins
                .iter()
                .zip(args)
                .all(|(pin, a)| pin.value(h) == *a)
    }
}

pub fn run_as_user(r: RunAs, h: &HostConfig) -> String {
    match r {
        RunAs::Cyrus => h.sudo_user.clone().unwrap_or_else(|| "cyrus".into()),
        RunAs::Root => "root".into(),
    }
}

/// Which rules `cyrdeck sudoers` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleSet {
    /// Observe mode: status, console, doctor, check.
    Observe,
    /// Everything, runbooks included.
    Write,
}

/// The sudoers text for `account` on host `h`: one `Cmnd_Alias` per run-as
/// user, then the rules. Paths with whitespace cannot be written as rules.
pub fn sudoers(
    h: &HostConfig,
    account: &str,
    set: RuleSet,
    registry: &[Helper],
) -> Result<String, String> {
    for p in [&h.imapd_conf, &h.cyrus_conf, &h.bin_dir, &h.helper_dir] {
        if p.display().to_string().chars().any(char::is_whitespace) {
            return Err(format!(
                "{}: a path with whitespace cannot be named in a sudo rule",
                p.display()
            ));
        }
    }
    if account.is_empty()
        || !account
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(format!("{account:?} is not an account name"));
    }
    let writes = set == RuleSet::Write;
    let tag = format!(
        "CYRDECK_{}_{}",
        h.name
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            })
            .collect::<String>(),
        if writes { "WRITE" } else { "READ" }
    );
    let mut out = format!(
        "# cyrdeck {} rules for host {} (account {account}), generated by `cyrdeck sudoers`.\n\
         # Helpers: {} (install with `cyrdeck helpers install`, root-owned).\n\
         Defaults:{account} !requiretty, env_reset\n",
        if writes {
            "writing (runbooks)"
        } else {
            "read-only (observe mode)"
        },
        h.name,
        h.helper_dir.display()
    );
    for run_as in [RunAs::Cyrus, RunAs::Root] {
        let cmds: Vec<String> = registry
            .iter()
            .filter(|x| x.run_as == run_as)
            .flat_map(|x| x.rule_commands(h, writes))
            .collect();
        if cmds.is_empty() {
            continue;
        }
        let who = run_as_user(run_as, h);
        let alias = format!("{tag}_{}", who.to_ascii_uppercase().replace('-', "_"));
        out.push_str(&format!("Cmnd_Alias {alias} = \\\n    "));
        out.push_str(&cmds.join(", \\\n    "));
        out.push_str(&format!("\n{account} ALL=({who}) NOPASSWD: {alias}\n"));
    }
    Ok(out)
}

/// Write every helper into `dir` (as root on the mail host: the files
/// must be root's, or the account could change what sudo runs). Each file
/// is replaced atomically; returns what was written.
pub fn install(
    dir: &std::path::Path,
    registry: &[Helper],
) -> std::io::Result<Vec<std::path::PathBuf>> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    let mut written = Vec::new();
    for h in registry {
        let Some(text) = h.installed_text() else {
            continue;
        };
        let path = dir.join(h.name);
        crate::state::write_atomic(&path, text.as_bytes(), Some(0o755))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scripts::all;

    fn host() -> HostConfig {
        let cfg = crate::config::Config::parse(
            std::path::Path::new("t.toml"),
            "[hosts.m]\nssh = \"cyrdeck@m\"\nsudo = true\n[hosts.r]\nssh = \"r\"\n\
             [pairs.p]\nmaster = \"m\"\nreplicas = [{ host = \"r\" }]\n",
            std::path::Path::new("/nonexistent"),
        )
        .unwrap();
        cfg.hosts["m"].clone()
    }

    #[test]
    fn every_inline_script_becomes_its_installed_helper_with_the_same_arguments() {
        let h = host();
        let cursor = crate::cyrus::probe::LogCursor::default();
        let argv = crate::cyrus::probe::command(&h, &cursor, None)
            .argv()
            .to_vec();
        let p = privileged(&argv, &h, all()).unwrap();
        assert_eq!(p.argv[0], "/usr/local/lib/cyrdeck/probe");
        assert_eq!(p.argv[1..], argv[3..]);
        assert_eq!(p.run_as, RunAs::Cyrus);
        // a tool keeps its argv
        let t = vec!["/usr/lib/cyrus/bin/sync_client".to_string(), "-C".into()];
        assert_eq!(privileged(&t, &h, all()).unwrap().argv, t);
        // a shell line that is not a helper is refused, never run
        let e = privileged(&["sh".into(), "-c".into(), "id".into()], &h, all()).unwrap_err();
        assert!(e.contains("refused"), "{e}");
        let e = privileged(&["/usr/lib/cyrus/bin/reconstruct".into()], &h, all()).unwrap_err();
        assert!(e.contains("refused"), "{e}");
    }

    #[test]
    fn observe_rules_hold_no_writing_command() {
        let h = host();
        let ro = sudoers(&h, "cyrdeck-ro", RuleSet::Observe, all()).unwrap();
        for w in [
            "quarantine",
            "release",
            "heartbeat",
            "failover",
            "sync_client",
            "unexpunge",
            "kill",
            "acquire",
        ] {
            assert!(!ro.contains(w), "{w} in\n{ro}");
        }
        assert!(ro.contains("/usr/local/lib/cyrdeck/probe cyrdeck-probe /etc/imapd.conf /etc/cyrus.conf /usr/lib/cyrus/bin *"), "{ro}");
        assert!(!ro.contains("(root)"), "{ro}");
        let rw = sudoers(&h, "cyrdeck", RuleSet::Write, all()).unwrap();
        assert!(rw.contains("cyrdeck ALL=(root) NOPASSWD:"), "{rw}");
        assert!(
            rw.contains("failover cyrdeck-failover stop-writes /etc/imapd.conf /etc/cyrus.conf *")
        );
        assert!(sudoers(&h, "a b", RuleSet::Write, all()).is_err());
    }

    #[test]
    fn sudoers_specials_are_escaped() {
        assert_eq!(sudoers_escape("/a,b:c=d*"), "/a\\,b\\:c\\=d\\*");
    }

    #[test]
    fn installed_text_runs_the_same_body() {
        for x in all() {
            if let Some(t) = x.installed_text() {
                assert!(t.starts_with("#!/bin/sh\n"));
                assert!(t.ends_with("\"$@\"\n"));
            }
        }
    }
}
