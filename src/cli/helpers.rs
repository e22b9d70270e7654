//! The commands that print what is installed on a host or a shell: the
//! sudo rules, the helper scripts, shell completions and man pages.

use super::args::{Cli, HelpersAction};
use super::common::print_all;
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use cyrdeck::config::Config;
use cyrdeck::remote::helpers;
use std::path::{Path, PathBuf};

/// `cyrdeck sudoers HOST`: the exact rules a non-root account needs.
pub fn sudoers(
    cfg: &Config,
    config_path: &Path,
    host: &str,
    account: Option<String>,
    observe: bool,
) -> Result<()> {
    let Some(h) = cfg.hosts.get(host) else {
        bail!("no host {host:?} in {}", config_path.display());
    };
    let account = account.unwrap_or_else(|| h.target.user.clone());
    let set = if observe {
        helpers::RuleSet::Observe
    } else {
        helpers::RuleSet::Write
    };
    let text = helpers::sudoers(h, &account, set, cyrdeck::scripts::all()).map_err(|e| eyre!(e))?;
    print_all(text.as_bytes())
}

/// `cyrdeck helpers install DIR | list`.
pub fn helpers(action: HelpersAction) -> Result<()> {
    match action {
        HelpersAction::Install { dir } => {
            for p in helpers::install(&dir, cyrdeck::scripts::all())
                .wrap_err_with(|| format!("installing helpers into {}", dir.display()))?
            {
                println!("{}", p.display());
            }
        }
        HelpersAction::List => {
            for h in cyrdeck::scripts::all() {
                if let Some(v) = h.version() {
                    let who = match h.run_as {
                        helpers::RunAs::Cyrus => "cyrus",
                        helpers::RunAs::Root => "root",
                    };
                    println!("{:<14} {v}  runs as {who}", h.name);
                }
            }
        }
    }
    Ok(())
}

/// `cyrdeck completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> Result<()> {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "cyrdeck", &mut out);
    print_all(&out)
}

/// `cyrdeck man [--dir DIR]`: one page to stdout, or every page into DIR.
pub fn man(dir: Option<PathBuf>) -> Result<()> {
    let cmd = <Cli as clap::CommandFactory>::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(cmd, &dir)?;
            Ok(())
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out)?;
            print_all(&out)
        }
    }
}
