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
    if shell == clap_complete::Shell::Bash {
        out.extend_from_slice(bash_names().as_bytes());
    }
    print_all(&out)
}

/// Bash: `--pair`, `--to` and a runbook's TARGET complete from the config
/// (`cyrdeck names`), which clap's static script cannot know. Which
/// runbooks take a pair or hosts comes from the registry.
fn bash_names() -> String {
    let ids = |word: &str| -> String {
        cyrdeck::ops::registry::available()
            .into_iter()
            .filter(|s| s.target.contains(word))
            .map(|s| s.id())
            .collect::<Vec<_>>()
            .join("|")
    };
    format!(
        r#"
# config names: pairs and hosts (cyrdeck names)
_cyrdeck_config_names() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local cfg="" what="" sub=0 i
    # the subcommand is the first word that is no option (nor --config's value)
    for ((i = 1; i < COMP_CWORD; i++)); do
        case "${{COMP_WORDS[i]}}" in
            --config) cfg="${{COMP_WORDS[i+1]}}"; ((i++)) ;;
            -*) ;;
            *) [[ $sub -eq 0 ]] && sub=$i ;;
        esac
    done
    case "$prev" in
        --pair) what=pairs ;;
        --to) what=hosts ;;
    esac
    if [[ -z $what && $sub -gt 0 && ${{COMP_WORDS[sub]}} == run && $COMP_CWORD -eq $((sub + 2)) ]]; then
        case "${{COMP_WORDS[sub+1]}}" in
            {pairs}) what=pairs ;;
            {hosts}) what=hosts ;;
        esac
    fi
    if [[ -n $what ]]; then
        local names
        names=$(cyrdeck ${{cfg:+--config "$cfg"}} names "$what" 2>/dev/null)
        mapfile -t COMPREPLY < <(compgen -W "$names" -- "$cur")
        return 0
    fi
    _cyrdeck "$@"
}}
complete -F _cyrdeck_config_names -o bashdefault -o default cyrdeck
"#,
        pairs = ids("pair"),
        hosts = ids("host"),
    )
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
