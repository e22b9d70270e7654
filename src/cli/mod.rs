//! The command line: `args` holds the clap types, one module per command
//! holds its handler, and `try_main` loads the config once and dispatches.
//! Every handler returns the process's exit code (documented in `--help`).

pub mod args;
mod audit;
mod check;
mod common;
mod conflicts;
mod doctor;
mod heartbeat;
mod helpers;
mod lab;
pub mod runbook;
mod status;
mod supervise;
mod trust;

use args::{Cli, Cmd, RunbookAction};
use clap::Parser;
use color_eyre::eyre::{bail, eyre, Result};
use common::{only_pair, runtime};
use cyrdeck::config::{self, Config};
use std::process::ExitCode;
use std::sync::Arc;

/// The command line's global choices and the config, loaded once.
struct Loaded {
    path: std::path::PathBuf,
    /// None: the command needs no config (lab, completions, man, helpers).
    loaded: Option<Result<Config, String>>,
    observe: bool,
}

impl Loaded {
    fn config(&self) -> Result<Config> {
        match &self.loaded {
            Some(Ok(c)) => Ok(c.clone()),
            Some(Err(e)) => Err(eyre!("{e}")),
            None => bail!("no config loaded"),
        }
    }
}

/// Parse the command line, run the command, return its exit code.
pub fn try_main() -> Result<ExitCode> {
    let cli = Cli::parse();
    let config_path = cli.config.clone().unwrap_or_else(config::default_path);
    // the one load; commands that need no config (lab, completions, man,
    // helpers) never read it, so a missing file does not stop them
    let needs_config = !matches!(
        cli.cmd,
        Some(Cmd::Lab { .. } | Cmd::Completions { .. } | Cmd::Man { .. } | Cmd::Helpers { .. })
    );
    let l = Loaded {
        loaded: needs_config.then(|| Config::load(&config_path).map_err(|e| e.to_string())),
        path: config_path,
        observe: cli.observe,
    };
    let Some(cmd) = cli.cmd else {
        let cfg = l.config()?;
        let observe = l.observe || cfg.hosts.values().all(|h| h.observe);
        runtime()?.block_on(cyrdeck::console::run::run(cyrdeck::console::run::Options {
            config: Arc::new(cfg),
            observe,
            keymap: cli.keymap,
        }))?;
        return Ok(ExitCode::SUCCESS);
    };
    let code = match cmd {
        Cmd::Repair { .. } | Cmd::Run { .. } | Cmd::Failover { .. } | Cmd::Runbook { .. } => {
            runbook_command(cmd, &l)?
        }
        Cmd::Lab { .. }
        | Cmd::Completions { .. }
        | Cmd::Man { .. }
        | Cmd::Helpers { .. }
        | Cmd::Sudoers { .. }
        | Cmd::Names { .. }
        | Cmd::Trust { .. } => setup_command(cmd, &l)?,
        _ => report_command(cmd, &l)?,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(1)))
}

/// The guided runbooks: `repair`, `run`, `failover`, `runbook ...`.
fn runbook_command(cmd: Cmd, l: &Loaded) -> Result<i32> {
    Ok(match cmd {
        Cmd::Repair {
            pair,
            user,
            mailbox,
            yes,
            replica_only,
        } => {
            let cfg = l.config()?;
            let kind = if mailbox.is_some() { "mailbox" } else { "user" };
            let target = user.or(mailbox).unwrap_or_default();
            let pair = only_pair(&cfg, pair)?;
            let options = replica_only
                .map(|v| ("replica-only".to_string(), v))
                .into_iter()
                .chain([("target".to_string(), kind.to_string())])
                .collect();
            runtime()?.block_on(runbook::run(
                cfg, l.observe, pair, "repair", target, yes, options,
            ))?
        }
        Cmd::Run {
            runbook,
            target,
            pair,
            yes,
            replica_only,
            uid_policy,
            dry_run,
        } => {
            let cfg = l.config()?;
            let pair = only_pair(&cfg, pair)?;
            if dry_run {
                runtime()?.block_on(runbook::dry_run(cfg, l.observe, pair, &runbook, target))?
            } else {
                let options = [("replica-only", replica_only), ("uid-policy", uid_policy)]
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v?)))
                    .collect();
                runtime()?.block_on(runbook::run(
                    cfg, l.observe, pair, &runbook, target, yes, options,
                ))?
            }
        }
        Cmd::Failover {
            pair,
            dry_run,
            yes,
            allow_held,
            to,
        } => {
            let cfg = l.config()?;
            let pair = only_pair(&cfg, pair)?;
            runtime()?.block_on(runbook::failover(
                cfg, l.observe, pair, to, dry_run, yes, allow_held,
            ))?
        }
        Cmd::Runbook {
            action: RunbookAction::Unlock { pair, yes },
        } => {
            let cfg = l.config()?;
            let pair = only_pair(&cfg, pair)?;
            runtime()?.block_on(runbook::unlock(cfg, l.observe, pair, yes))?
        }
        Cmd::Runbook { action } => {
            runtime()?.block_on(runbook::journalled(l.observe, &l.path, action))?
        }
        _ => unreachable!("not a runbook command"),
    })
}

/// The read-only reports and the unattended loop.
fn report_command(cmd: Cmd, l: &Loaded) -> Result<i32> {
    Ok(match cmd {
        Cmd::Status {
            json,
            watch,
            interval,
            count,
        } => match l.config() {
            Ok(cfg) => {
                runtime()?.block_on(status::run(cfg, l.observe, json, watch, interval, count))?
            }
            Err(e) => {
                eprintln!("UNKNOWN: {e}");
                3
            }
        },
        Cmd::Check {
            pair,
            user,
            mailbox,
            json,
            drain_wait,
        } => match l.config() {
            Ok(cfg) => {
                let scope = cyrdeck::check::Scope::typed(user, mailbox);
                runtime()?.block_on(check::run(cfg, l.observe, pair, scope, json, drain_wait))
            }
            Err(e) => {
                eprintln!("check: {e}");
                2
            }
        },
        Cmd::Doctor { pair, json } => {
            runtime()?.block_on(doctor::run(l.config()?, l.observe, pair, json))?
        }
        Cmd::Supervise {
            interval,
            count,
            metrics_listen,
            metrics_textfile,
        } => {
            let metrics = (metrics_listen, metrics_textfile);
            runtime()?.block_on(supervise::run(
                l.config()?,
                l.observe,
                interval,
                count,
                metrics,
            ))?;
            0
        }
        Cmd::Heartbeat { pair, every, count } => {
            runtime()?.block_on(heartbeat::run(l.config()?, l.observe, pair, every, count))?
        }
        Cmd::Conflicts { pair, json } => conflicts::run(&l.config()?, pair, json)?,
        Cmd::Audit { since, json, all } => {
            // the audit log is readable without a config (its default path)
            let path = l
                .loaded
                .as_ref()
                .and_then(|c| c.as_ref().ok())
                .and_then(|c| c.audit_log.clone())
                .unwrap_or_else(cyrdeck::state::audit_log);
            audit::run(&path, since.as_deref(), json, all)?
        }
        _ => unreachable!("not a report command"),
    })
}

/// What sets a site or a machine up: the lab, shell completions, man
/// pages, helpers, sudo rules, host keys.
fn setup_command(cmd: Cmd, l: &Loaded) -> Result<i32> {
    Ok(match cmd {
        Cmd::Lab { action } => lab::run(action).map(|()| 0)?,
        Cmd::Completions { shell } => helpers::completions(shell).map(|()| 0)?,
        Cmd::Names { what } => {
            let cfg = l.config()?;
            let names: Vec<&String> = match what.as_str() {
                "pairs" => cfg.pairs.keys().collect(),
                _ => cfg.hosts.keys().collect(),
            };
            for n in names {
                println!("{n}");
            }
            0
        }
        Cmd::Man { dir } => helpers::man(dir).map(|()| 0)?,
        Cmd::Sudoers {
            host,
            account,
            observe,
        } => helpers::sudoers(&l.config()?, &l.path, &host, account, observe).map(|()| 0)?,
        Cmd::Helpers { action } => helpers::helpers(action).map(|()| 0)?,
        Cmd::Trust { host, yes } => {
            let cfg = l.config()?;
            runtime()?.block_on(trust::run(&cfg, &host, yes))?;
            0
        }
        _ => unreachable!("not a setup command"),
    })
}
