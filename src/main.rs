mod cli;

use clap::{Parser, Subcommand};
use color_eyre::eyre::{bail, eyre, Result, WrapErr};
use cyrdeck::config::{self, Config};
use cyrdeck::lab::{self, Component, Lab};
use cyrdeck::poll::Poller;
use cyrdeck::remote::helpers;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "cyrdeck",
    version,
    about = "Console for Cyrus IMAP replication"
)]
struct Cli {
    /// Config file (default: $XDG_CONFIG_HOME/cyrdeck/cyrdeck.toml).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Read-only: the transport refuses every mutating command.
    #[arg(long, global = true)]
    observe: bool,
    /// Key bindings merged over the defaults (default:
    /// $XDG_CONFIG_HOME/cyrdeck/keymap.toml when it exists).
    #[arg(long, global = true)]
    keymap: Option<PathBuf>,
    /// Without a command: the interactive console.
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Replication health per pair. Exit 0 OK, 1 warning, 2 critical, 3 unknown.
    Status {
        #[arg(long)]
        json: bool,
        /// Refresh every interval until interrupted (or --count refreshes).
        #[arg(long)]
        watch: bool,
        /// Seconds between refreshes (default: the config's refresh_secs).
        #[arg(long)]
        interval: Option<f64>,
        /// With --watch: stop after this many refreshes.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Integrity check of a pair (read-only). Exit 0 in sync, 1 differences,
    /// 2 error (a host or mailbox could not be read).
    Check {
        /// Pair to check (default: the only pair configured).
        #[arg(long)]
        pair: Option<String>,
        /// Only this user's mailboxes.
        #[arg(long, conflicts_with = "mailbox")]
        user: Option<String>,
        /// Only this mailbox (external name, e.g. user/alice/Sent).
        #[arg(long)]
        mailbox: Option<String>,
        #[arg(long)]
        json: bool,
        /// Seconds to wait for the queue to drain before re-checking differences.
        #[arg(long, default_value_t = 60)]
        drain_wait: u64,
    },
    /// Guided repair of one user or mailbox: plan (a check), protect what
    /// only the replica deleted, sync_client, verify nothing was lost. Asks
    /// before each step that changes a host unless --yes. Exit 0 repaired,
    /// 1 a step failed, 3 stopped by the operator or refused (observe mode).
    Repair {
        #[arg(long)]
        pair: Option<String>,
        #[arg(long, conflicts_with = "mailbox", required_unless_present = "mailbox")]
        user: Option<String>,
        #[arg(long)]
        mailbox: Option<String>,
        /// Run every step without asking.
        #[arg(long)]
        yes: bool,
        /// A folder or user only the replica has: keep reporting it, or
        /// copy it back to the master (sync_client run on the replica;
        /// every GUID verified on the master).
        /// (default report)
        #[arg(long, value_parser = ["report", "copy-back"])]
        replica_only: Option<String>,
    },
    /// Run any runbook headless, step by step: resync MAILBOX, repair
    /// USER|MAILBOX, quarantine USER, release USER. Asks before each step
    /// that changes a host unless --yes. Exit 0 done, 1 a step failed, 3
    /// stopped by the operator or refused (observe mode).
    Run {
        runbook: String,
        target: String,
        #[arg(long)]
        pair: Option<String>,
        #[arg(long)]
        yes: bool,
        /// repair: a folder or user only the replica has (report|copy-back).
        #[arg(long)]
        replica_only: Option<String>,
        /// reintegrate: a same-UID/different-GUID pair gets new UIDs on both
        /// sides (easy; the only policy so far).
        #[arg(long)]
        uid_policy: Option<String>,
        /// Only the read-only precheck and the steps that would run.
        #[arg(long)]
        dry_run: bool,
    },
    /// Replication anti-patterns in each host's effective config, with the
    /// fix (read-only). Exit 0 none, 1 findings, 2 a host could not be read.
    Doctor {
        #[arg(long)]
        pair: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Guided soft failover of a pair to its replica (see README). Asks
    /// before each step that changes a host unless --yes; journalled, so
    /// `runbook resume` continues after a crash. Exit 0 done, 1 a step
    /// failed (the output says what state the pair is in), 3 stopped.
    Failover {
        #[arg(long)]
        pair: Option<String>,
        /// Only the prechecks and the exact steps and commands.
        #[arg(long)]
        dry_run: bool,
        #[arg(long)]
        yes: bool,
        /// Go on although entries are held (quarantined users).
        #[arg(long)]
        allow_held: bool,
        /// The replica to promote (a pair with several replicas); the
        /// others move to the new master on their own channels.
        #[arg(long, value_name = "HOST")]
        to: Option<String>,
    },
    /// Journalled runbooks (failover): list, resume after a crash, discard.
    Runbook {
        #[command(subcommand)]
        action: RunbookAction,
    },
    /// Run unattended (a systemd unit): refresh every interval, write the
    /// heartbeats, re-quarantine held users that fail again and, with
    /// auto_quarantine_secs, quarantine users that block. Prints one JSON
    /// status per refresh with what it did under "actions".
    Supervise {
        #[arg(long)]
        interval: Option<f64>,
        /// Stop after this many refreshes (waits for actions in flight).
        #[arg(long)]
        count: Option<u64>,
        /// Serve Prometheus metrics at http://ADDR/metrics (e.g.
        /// 127.0.0.1:9839), rendered from the latest refresh.
        #[arg(long, value_name = "ADDR")]
        metrics_listen: Option<std::net::SocketAddr>,
        /// After each refresh, write the metrics to PATH (atomically) for
        /// node-exporter's textfile collector (PATH should end in .prom).
        #[arg(long, value_name = "PATH")]
        metrics_textfile: Option<PathBuf>,
    },
    /// Write the pair's heartbeat on its master (a message to the configured
    /// heartbeat_user; status then shows the replica's lag in seconds). Once,
    /// or every S seconds with --every (the console writes it by itself).
    /// Exit 0 written, 1 failed, 3 refused (observe mode).
    Heartbeat {
        #[arg(long)]
        pair: Option<String>,
        #[arg(long)]
        every: Option<f64>,
        /// With --every: stop after this many beats.
        #[arg(long)]
        count: Option<u64>,
    },
    /// Every GUID conflict (same UID, two GUIDs) known: the newest
    /// reintegrate report's (with what the copy-back did: the UIDs both
    /// messages carry now) and the last whole-pair check's (read-only; no
    /// host is contacted). Exit 0 none, 1 some.
    Conflicts {
        #[arg(long)]
        pair: Option<String>,
        /// A JSON array of {pair, source, mailbox, uid, side_a, guid_a,
        /// side_b, guid_b, uids_now, done}.
        #[arg(long)]
        json: bool,
    },
    /// Read the audit log: every change cyrdeck made (or set out to make) on a
    /// host, its intent and its result; a command with no result was cut short
    /// (check that host). Exit 0, or 1 when the log has unreadable lines.
    Audit {
        /// Only commands since: 30m, 2h, 7d, or an RFC 3339 time.
        #[arg(long)]
        since: Option<String>,
        /// One JSON object per command ({intent, result}).
        #[arg(long)]
        json: bool,
        /// Heartbeat writes too (by default they are counted in one line:
        /// they are routine, and would drown the operators' changes).
        #[arg(long)]
        all: bool,
    },
    /// Fetch a host's SSH key, show its fingerprint, and add it to known_hosts
    /// (trust on first use, only when you say so).
    Trust {
        host: String,
        /// Add without asking (you verified the fingerprint out of band).
        #[arg(long)]
        yes: bool,
    },
    /// Least privilege: print the exact sudo rules a non-root SSH account
    /// needs on HOST for every command cyrdeck runs there (--observe: the
    /// read-only set). Put them in /etc/sudoers.d/cyrdeck (visudo -c).
    Sudoers {
        host: String,
        /// The SSH account (default: the host's configured SSH user).
        #[arg(long)]
        account: Option<String>,
        /// Only what observe mode runs (status, console, doctor, check).
        #[arg(long)]
        observe: bool,
    },
    /// The helper scripts sudo mode runs (root-owned files the sudo rules name).
    Helpers {
        #[command(subcommand)]
        action: HelpersAction,
    },
    /// The local rehearsal pair (real Cyrus + sshd on loopback).
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff): `cyrdeck man | man -l -`.
    Man {
        /// Instead, write every page (cyrdeck.1, cyrdeck-status.1, ...) into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum HelpersAction {
    /// Write them into DIR (run as root on the mail host).
    Install {
        #[arg(default_value = "/usr/local/lib/cyrdeck")]
        dir: PathBuf,
    },
    /// Name, version and run-as user of each.
    List,
}

#[derive(Subcommand)]
enum RunbookAction {
    List,
    Resume {
        #[arg(long)]
        yes: bool,
        /// Run a failed step again (after fixing its cause).
        #[arg(long)]
        retry: bool,
    },
    Discard,
    /// Show who holds the pair's runbook lock (on its master) and break it
    /// after asking: only when that run is gone for good.
    Unlock {
        #[arg(long)]
        pair: Option<String>,
        /// Break it without asking.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(clap::Args)]
struct LabArgs {
    /// Directory holding the lab's configs, keys, spools and pidfiles.
    #[arg(long, default_value = "/var/tmp/cyrdeck-lab")]
    dir: PathBuf,
}

#[derive(Subcommand)]
enum LabAction {
    /// Start whatever part of the lab is not running (idempotent).
    Up {
        #[command(flatten)]
        lab: LabArgs,
        /// First of the lab's ports (it uses base..base+21).
        #[arg(long)]
        base_port: Option<u16>,
        /// master or replica: that host's Cyrus logs to a private
        /// systemd-journald (read with log_source = "journal"), as on a
        /// host without rsyslog; none: both log to the lab's rsyslogd.
        /// Remembered by the lab.
        #[arg(long)]
        journal_host: Option<String>,
        /// Cyrus release of both hosts: 3.6, 3.8, 3.10 or 3.12. One the
        /// host's packages are not runs from a cached debootstrap root
        /// (built on first use; `lab roots` lists them). Remembered.
        #[arg(long)]
        cyrus: Option<String>,
        /// The master's release (a mixed pair: replica newer, to rehearse an upgrade).
        #[arg(long, conflicts_with = "cyrus")]
        master_cyrus: Option<String>,
        /// The replica's release.
        #[arg(long, conflicts_with = "cyrus")]
        replica_cyrus: Option<String>,
        /// How many replicas (1 to 3): each its own host (address, sshd,
        /// Cyrus); the second and third read sync-log channels named
        /// replica2 and replica3. Remembered.
        #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
        replicas: Option<u8>,
        /// One more host (Cyrus + sshd, in the console config, in no pair):
        /// the new replica of a `run replace-replica` rehearsal. Remembered.
        #[arg(long)]
        spare: bool,
        /// Render every config afresh and remove failover files: the lab's
        /// first roles back. Without it, a lab that exists starts what is
        /// stopped as it was left (a crashed host coming back after a
        /// promote stays fenced, its roles as the runbooks left them).
        #[arg(long)]
        reset: bool,
        /// plain (default) or site: virtual domains (`alice@example.com`),
        /// altnamespace, a second partition and archive partitions, shared
        /// folders with group ACLs once seeded. Fixed when the lab is built.
        #[arg(long)]
        profile: Option<String>,
    },
    /// The cached root filesystems (one per Cyrus release the host lacks)
    /// and the disk each takes; --build RELEASE makes one now.
    Roots {
        #[arg(long)]
        build: Option<String>,
    },
    /// Stop the lab's own processes (or one component).
    Down {
        #[command(flatten)]
        lab: LabArgs,
        /// syslog, master-cyrus, replica-cyrus, master-sshd, replica-sshd,
        /// master-journal, replica-journal
        #[arg(long)]
        only: Option<String>,
    },
    /// What runs, and each instance's config, addresses and ports.
    Status {
        #[command(flatten)]
        lab: LabArgs,
        #[arg(long)]
        json: bool,
    },
    /// Create users and folders (hostile names too) and deliver mail.
    Seed {
        #[command(flatten)]
        lab: LabArgs,
        /// Messages delivered per user over LMTP.
        #[arg(long, default_value_t = 3)]
        messages: usize,
        /// A site's shape instead of the four named users: this many users
        /// (bu00000...), each with INBOX and --folders folders, --messages
        /// messages in each INBOX (pipelined IMAP CREATEs, LMTP to 100
        /// recipients at once).
        #[arg(long)]
        users: Option<usize>,
        /// Folders per bulk user (with --users).
        #[arg(long, default_value_t = 4, requires = "users")]
        folders: usize,
    },
}

fn main() -> Result<()> {
    color_eyre::install()?;
    let cli = Cli::parse();
    let config_path = cli.config.clone().unwrap_or_else(config::default_path);
    let Some(cmd) = cli.cmd else {
        let cfg = Config::load(&config_path)?;
        let observe = cli.observe || cfg.hosts.values().all(|h| h.observe);
        return runtime()?.block_on(cyrdeck::console::run::run(cyrdeck::console::run::Options {
            config: Arc::new(cfg),
            observe,
            keymap: cli.keymap,
        }));
    };
    match cmd {
        Cmd::Lab { action } => run_lab(action),
        Cmd::Status {
            json,
            watch,
            interval,
            count,
        } => {
            let cfg = match Config::load(&config_path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("UNKNOWN: {e}");
                    std::process::exit(3);
                }
            };
            let code =
                runtime()?.block_on(status(cfg, cli.observe, json, watch, interval, count))?;
            std::process::exit(code);
        }
        Cmd::Check {
            pair,
            user,
            mailbox,
            json,
            drain_wait,
        } => {
            let cfg = match Config::load(&config_path) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("check: {e}");
                    std::process::exit(2);
                }
            };
            let scope = cyrdeck::check::Scope { user, mailbox };
            let code = runtime()?.block_on(check(cfg, cli.observe, pair, scope, json, drain_wait));
            std::process::exit(code);
        }
        Cmd::Repair {
            pair,
            user,
            mailbox,
            yes,
            replica_only,
        } => {
            let cfg = Config::load(&config_path)?;
            let kind = if mailbox.is_some() { "mailbox" } else { "user" };
            let target = user.or(mailbox).unwrap_or_default();
            let code = runtime()?.block_on(cli::runbook::run(
                cfg.clone(),
                cli.observe,
                only_pair(&cfg, pair)?,
                "repair",
                target,
                yes,
                replica_only
                    .map(|v| ("replica-only".to_string(), v))
                    .into_iter()
                    .chain([("target".to_string(), kind.to_string())])
                    .collect(),
            ))?;
            std::process::exit(code);
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
            let cfg = Config::load(&config_path)?;
            if dry_run {
                let pair = only_pair(&cfg, pair)?;
                let code = runtime()?.block_on(cli::runbook::dry_run(
                    cfg,
                    cli.observe,
                    pair,
                    &runbook,
                    target,
                ))?;
                std::process::exit(code);
            }
            let options = [("replica-only", replica_only), ("uid-policy", uid_policy)]
                .into_iter()
                .filter_map(|(k, v)| Some((k.to_string(), v?)))
                .collect();
            let code = runtime()?.block_on(cli::runbook::run(
                cfg.clone(),
                cli.observe,
                only_pair(&cfg, pair)?,
                &runbook,
                target,
                yes,
                options,
            ))?;
            std::process::exit(code);
        }
        Cmd::Doctor { pair, json } => {
            let cfg = Config::load(&config_path)?;
            let code = runtime()?.block_on(doctor(cfg, cli.observe, pair, json))?;
            std::process::exit(code);
        }
        Cmd::Failover {
            pair,
            dry_run,
            yes,
            allow_held,
            to,
        } => {
            let cfg = Config::load(&config_path)?;
            let code = runtime()?.block_on(cli::runbook::failover(
                cfg.clone(),
                cli.observe,
                only_pair(&cfg, pair)?,
                to,
                dry_run,
                yes,
                allow_held,
            ))?;
            std::process::exit(code);
        }
        Cmd::Runbook {
            action: RunbookAction::Unlock { pair, yes },
        } => {
            let cfg = Config::load(&config_path)?;
            let pair = only_pair(&cfg, pair)?;
            let code = runtime()?.block_on(cli::runbook::unlock(cfg, cli.observe, pair, yes))?;
            std::process::exit(code);
        }
        Cmd::Runbook { action } => {
            let code = runtime()?.block_on(cli::runbook::journalled(cli.observe, action))?;
            std::process::exit(code);
        }
        Cmd::Supervise {
            interval,
            count,
            metrics_listen,
            metrics_textfile,
        } => {
            let cfg = Config::load(&config_path)?;
            let metrics = (metrics_listen, metrics_textfile);
            runtime()?.block_on(supervise(cfg, cli.observe, interval, count, metrics))
        }
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cmd, "cyrdeck", &mut out);
            print_all(&out)
        }
        Cmd::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(<Cli as clap::CommandFactory>::command(), &dir)?;
            Ok(())
        }
        Cmd::Man { dir: None } => {
            let man = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
            let mut out = Vec::new();
            man.render(&mut out)?;
            print_all(&out)
        }
        Cmd::Heartbeat { pair, every, count } => {
            let cfg = Config::load(&config_path)?;
            let code = runtime()?.block_on(heartbeat(cfg, cli.observe, pair, every, count))?;
            std::process::exit(code);
        }
        Cmd::Conflicts { pair, json } => {
            let cfg = Config::load(&config_path)?;
            let pairs: Vec<String> = match pair {
                Some(p) => vec![only_pair(&cfg, Some(p))?],
                None => cfg.pairs.keys().cloned().collect(),
            };
            let all = cyrdeck::model::guid_conflicts::collect(&cyrdeck::check::last::dir(), &pairs);
            if json {
                println!("{}", serde_json::to_string_pretty(&all)?);
            } else if all.is_empty() {
                println!("no GUID conflict known (newest reintegrate report, last check)");
            } else {
                for c in &all {
                    println!(
                        "{} {} UID {}: {} {} / {} {}: {} [{}]",
                        c.pair,
                        c.mailbox,
                        c.uid,
                        c.side_a,
                        c.guid_a,
                        c.side_b,
                        c.guid_b,
                        c.done,
                        c.source
                    );
                }
            }
            std::process::exit(i32::from(!all.is_empty()));
        }
        Cmd::Audit { since, json, all } => {
            let path = Config::load(&config_path)
                .ok()
                .and_then(|c| c.audit_log)
                .unwrap_or_else(cyrdeck::ops::audit::default_path);
            std::process::exit(audit(&path, since.as_deref(), json, all)?);
        }
        Cmd::Sudoers {
            host,
            account,
            observe,
        } => {
            let cfg = Config::load(&config_path)?;
            let Some(h) = cfg.hosts.get(&host) else {
                bail!("no host {host:?} in {}", config_path.display());
            };
            let account = account.unwrap_or_else(|| h.target.user.clone());
            let set = if observe {
                helpers::RuleSet::Observe
            } else {
                helpers::RuleSet::Write
            };
            let text = helpers::sudoers(h, &account, set).map_err(|e| eyre!(e))?;
            print_all(text.as_bytes())?;
            Ok(())
        }
        Cmd::Helpers {
            action: HelpersAction::Install { dir },
        } => {
            for p in helpers::install(&dir)
                .wrap_err_with(|| format!("installing helpers into {}", dir.display()))?
            {
                println!("{}", p.display());
            }
            Ok(())
        }
        Cmd::Helpers {
            action: HelpersAction::List,
        } => {
            for h in helpers::all() {
                if let Some(v) = h.version() {
                    let who = match h.run_as {
                        helpers::RunAs::Cyrus => "cyrus",
                        helpers::RunAs::Root => "root",
                    };
                    println!("{:<14} {v}  runs as {who}", h.name);
                }
            }
            Ok(())
        }
        Cmd::Trust { host, yes } => {
            let cfg = Config::load(&config_path)?;
            runtime()?.block_on(trust(&cfg, &host, yes))
        }
    }
}

fn audit(path: &std::path::Path, since: Option<&str>, json: bool, all: bool) -> Result<i32> {
    use cyrdeck::ops::audit;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let since = since
        .map(|s| audit::parse_since(s, now))
        .transpose()
        .map_err(|e| color_eyre::eyre::eyre!(e))?;
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "no audit log at {} (nothing was changed yet)",
                path.display()
            );
            return Ok(0);
        }
        Err(e) => bail!("reading the audit log {}: {e}", path.display()),
    };
    let trail = audit::read(&text, since);
    let mut out = String::new();
    let beats = trail
        .entries
        .iter()
        .filter(|e| !all && audit::is_heartbeat(e))
        .count();
    for e in trail
        .entries
        .iter()
        .filter(|e| all || !audit::is_heartbeat(e))
    {
        if json {
            out.push_str(&serde_json::to_string(e)?);
        } else {
            out.push_str(&audit::describe(e));
        }
        out.push('\n');
    }
    print_all(out.as_bytes())?;
    if beats > 0 {
        eprintln!("({beats} heartbeat write(s) not shown: --all shows them)");
    }
    if !trail.unreadable.is_empty() {
        eprintln!(
            "{}: unreadable lines {:?}",
            path.display(),
            trail.unreadable
        );
        return Ok(1);
    }
    Ok(0)
}

/// Write to stdout; a reader that stopped early (`| head`) is no error.
fn print_all(bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => Ok(r?),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

async fn status(
    cfg: Config,
    observe: bool,
    json: bool,
    watch: bool,
    interval: Option<f64>,
    count: Option<u64>,
) -> Result<i32> {
    let every = interval
        .map(std::time::Duration::from_secs_f64)
        .unwrap_or(cfg.refresh);
    let mut poller = Poller::new(Arc::new(cfg), observe);
    if watch {
        // one slow host does not hold back the others' frames
        poller = poller.wait_at_most(every.max(std::time::Duration::from_secs(1)));
    }
    let mut n = 0u64;
    loop {
        let started = std::time::Instant::now();
        let report = poller.refresh().await;
        n += 1;
        if json {
            // one JSON document per line in watch mode (jq-friendly)
            if watch {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
        } else {
            if watch {
                println!(
                    "--- {}",
                    cyrdeck::model::human::date_time(report.generated_at)
                );
            }
            print!("{}", cyrdeck::views::status_text::render(&report));
        }
        if !watch || count.is_some_and(|c| n >= c) {
            return Ok(report.exit_code);
        }
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}

async fn check(
    cfg: Config,
    observe: bool,
    pair: Option<String>,
    scope: cyrdeck::check::Scope,
    json: bool,
    drain_wait: u64,
) -> i32 {
    use std::io::{IsTerminal, Write};
    let pair = match only_pair(&cfg, pair) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("check: {e}");
            return 2;
        }
    };
    let poller = Poller::new(Arc::new(cfg.clone()), observe);
    let conns = poller.connections();
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let progress = move |line: String| {
        if tty {
            let mut e = std::io::stderr();
            let _ = write!(
                e,
                "\r\x1b[2K[{:>5.1}s] {line}",
                started.elapsed().as_secs_f64()
            );
            let _ = e.flush();
        }
    };
    let opts = cyrdeck::check::CheckOptions {
        drain_wait: std::time::Duration::from_secs(drain_wait),
        ..Default::default()
    };
    let res = cyrdeck::check::run(&cfg, &conns, &pair, &scope, &opts, &progress).await;
    if tty {
        eprint!("\r\x1b[2K");
    }
    match res {
        Err(e) => {
            if json {
                println!(
                    "{}",
                    serde_json::json!({"pair": pair, "error": e, "exit_code": 2})
                );
            } else {
                eprintln!("check failed: {e}");
            }
            2
        }
        Ok(r) => {
            let code = r.exit_code();
            // a whole-pair check is the record the metrics export (a scoped
            // one says nothing about the rest of the pair)
            if scope == cyrdeck::check::Scope::default() {
                let rec = cyrdeck::check::last::LastCheck::of(&r);
                if let Err(e) = cyrdeck::check::last::save(&cyrdeck::check::last::dir(), &rec) {
                    eprintln!("check: result not recorded for the metrics: {e}");
                }
            }
            if json {
                let mut v = serde_json::to_value(&r).unwrap_or_default();
                v["in_sync"] = serde_json::json!(r.in_sync());
                v["exit_code"] = serde_json::json!(code);
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                print!("{}", cyrdeck::views::check_text::render(&r));
            }
            code
        }
    }
}

fn only_pair(cfg: &Config, pair: Option<String>) -> Result<String> {
    match pair {
        Some(p) => Ok(p),
        None if cfg.pairs.len() == 1 => Ok(cfg.pairs.keys().next().cloned().unwrap_or_default()),
        None => bail!(
            "several pairs configured, name one with --pair: {:?}",
            cfg.pairs.keys().collect::<Vec<_>>()
        ),
    }
}

async fn supervise(
    cfg: Config,
    observe: bool,
    interval: Option<f64>,
    count: Option<u64>,
    (metrics_listen, metrics_textfile): (Option<std::net::SocketAddr>, Option<PathBuf>),
) -> Result<()> {
    let every = interval
        .map(std::time::Duration::from_secs_f64)
        .unwrap_or(cfg.refresh);
    let exporter = if metrics_listen.is_some() || metrics_textfile.is_some() {
        let pairs = cfg.pairs.keys().cloned().collect();
        Some(cyrdeck::metrics::Exporter::start(metrics_listen, metrics_textfile, pairs).await?)
    } else {
        None
    };
    let publish = |report: &cyrdeck::model::snapshot::StatusReport| {
        if let Some(Err(e)) = exporter.as_ref().map(|x| x.publish(report)) {
            eprintln!("supervise: metrics not written: {e}");
        }
    };
    let mut poller = Poller::new(Arc::new(cfg), observe)
        .supervising()
        .wait_at_most(every.max(std::time::Duration::from_secs(1)));
    let mut n = 0u64;
    loop {
        let started = std::time::Instant::now();
        let report = poller.refresh().await;
        n += 1;
        publish(&report);
        println!("{}", serde_json::to_string(&report)?);
        if count.is_some_and(|c| n >= c) {
            poller.settle().await;
            let report = poller.refresh().await;
            publish(&report);
            println!("{}", serde_json::to_string(&report)?);
            poller.settle().await;
            return Ok(());
        }
        tokio::time::sleep(every.saturating_sub(started.elapsed())).await;
    }
}

async fn heartbeat(
    cfg: Config,
    observe: bool,
    pair: Option<String>,
    every: Option<f64>,
    count: Option<u64>,
) -> Result<i32> {
    let pair = only_pair(&cfg, pair)?;
    let p = cfg
        .pairs
        .get(&pair)
        .ok_or_else(|| color_eyre::eyre::eyre!("no pair {pair:?}"))?;
    let conns = Poller::new(Arc::new(cfg.clone()), observe).connections();
    let mut n = 0u64;
    loop {
        let started = std::time::Instant::now();
        n += 1;
        match cyrdeck::ops::heartbeat::beat(&cfg, &conns, p).await {
            Ok(t) => println!("heartbeat written on {} at {t}", p.master),
            Err(e) if e == cyrdeck::ops::OBSERVE_REFUSAL => {
                eprintln!("heartbeat: {e}");
                return Ok(3);
            }
            Err(e) => {
                eprintln!("heartbeat: {e}");
                if every.is_none() {
                    return Ok(1);
                }
            }
        }
        let Some(s) = every else { return Ok(0) };
        if count.is_some_and(|c| n >= c) {
            return Ok(0);
        }
        tokio::time::sleep(std::time::Duration::from_secs_f64(s).saturating_sub(started.elapsed()))
            .await;
    }
}

async fn doctor(cfg: Config, observe: bool, pair: Option<String>, json: bool) -> Result<i32> {
    let pair = only_pair(&cfg, pair)?;
    let p = cfg
        .pairs
        .get(&pair)
        .ok_or_else(|| color_eyre::eyre::eyre!("no pair {pair:?}"))?;
    let conns = Poller::new(Arc::new(cfg.clone()), observe).connections();
    let report = cyrdeck::cyrus::doctor::run(&conns, p).await;
    let code = report.exit_code();
    let (findings, errors) = (&report.findings, &report.errors);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "pair": pair, "findings": findings, "errors": errors, "exit_code": code
            }))?
        );
    } else {
        for e in errors {
            println!("ERROR {e}");
        }
        if findings.is_empty() && errors.is_empty() {
            println!("OK: no replication anti-patterns in pair {pair}");
        }
        for f in findings {
            println!("{}: {} [{}]\n  fix: {}", f.host, f.problem, f.code, f.fix);
        }
    }
    Ok(code)
}

async fn trust(cfg: &Config, host: &str, yes: bool) -> Result<()> {
    let Some(h) = cfg.hosts.get(host) else {
        bail!("no host named {host:?} in {}", cfg.file.display());
    };
    use cyrdeck::remote::known_hosts::TrustDecision;
    let (key, decision) = cyrdeck::remote::session::scan_host_key(h).await?;
    let fp = cyrdeck::remote::session::fingerprint(&key);
    println!("{} offers {} {fp}", h.target, key.algorithm());
    match decision {
        TrustDecision::Add => {}
        TrustDecision::AlreadyKnown(line) => {
            println!(
                "already trusted: {} line {line}; nothing added",
                h.known_hosts.display()
            );
            return Ok(());
        }
        TrustDecision::Refuse(why) => bail!("not trusted: {why}"),
    }
    if !yes {
        eprint!("Add it to {}? Type yes: ", h.known_hosts.display());
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if answer.trim() != "yes" {
            bail!("not trusted");
        }
    }
    russh::keys::known_hosts::learn_known_hosts_path(
        &h.target.host,
        h.target.port,
        &key,
        &h.known_hosts,
    )?;
    println!("added to {}", h.known_hosts.display());
    Ok(())
}

/// `lab up` returns when `status` would exit 0: the heartbeat mailbox
/// replicated, the queue drained, every service answering.
fn wait_until_steady(config: &std::path::Path) -> Result<()> {
    let cfg = Arc::new(Config::load(config)?);
    let rt = runtime()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let report = rt.block_on(Poller::new(cfg.clone(), true).refresh());
        if report.exit_code == 0 {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            let problems: Vec<String> = report
                .pairs
                .iter()
                .flat_map(|p| p.problems.iter().map(|q| q.message.clone()))
                .collect();
            color_eyre::eyre::bail!(
                "the lab is up but not steady after 60 s: {}",
                problems.join("; ")
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
}

fn run_lab(action: LabAction) -> Result<()> {
    match action {
        LabAction::Up {
            lab,
            base_port,
            journal_host,
            cyrus,
            master_cyrus,
            replica_cyrus,
            replicas,
            spare,
            reset,
            profile,
        } => {
            let mut l = Lab::open(&lab.dir, base_port)?;
            if let Some(p) = &profile {
                let p = lab::layout::Profile::parse(p).ok_or_else(|| {
                    color_eyre::eyre::eyre!("--profile: plain or site, not {p:?}")
                })?;
                l.set_profile(p)?;
            }
            let layout_asked = base_port.is_some()
                || profile.is_some()
                || replicas.is_some()
                || spare
                || journal_host.is_some()
                || cyrus.is_some()
                || master_cyrus.is_some()
                || replica_cyrus.is_some();
            if l.rendered() && !reset && !layout_asked {
                let started = l.resume()?;
                println!(
                    "lab in {}: {} (as left: no config re-rendered, no fence removed; `lab up --reset` renders it afresh)",
                    l.layout.dir.display(),
                    if started.is_empty() {
                        "everything was running".to_string()
                    } else {
                        format!("started {}", started.join(", "))
                    }
                );
                return Ok(());
            }
            if let Some(n) = replicas {
                l.set_replicas(n as usize)?;
            }
            if spare {
                l.set_spare(true)?;
            }
            match journal_host.as_deref() {
                None => {}
                Some("none") => l.set_journal_host(None),
                Some(r) => {
                    l.set_journal_host(Some(lab::layout::Role::parse(r).ok_or_else(|| {
                        color_eyre::eyre::eyre!(
                            "--journal-host: master, replica or none, not {r:?}"
                        )
                    })?))
                }
            }
            let asked = match (cyrus, master_cyrus, replica_cyrus) {
                (Some(c), _, _) => Some((Some(c.clone()), Some(c))),
                (None, None, None) => None,
                (None, m, r) => Some((m, r)),
            };
            if let Some((m, r)) = asked {
                let before = l.layout.hosts.clone();
                l.set_releases(m.as_deref(), r.as_deref())?;
                let running = l.components().into_iter().any(|c| l.pid(c).is_some());
                if running && l.layout.hosts != before {
                    color_eyre::eyre::bail!(
                        "the lab in {} runs other Cyrus releases; `cyrdeck lab down --dir {}` first",
                        l.layout.dir.display(),
                        l.layout.dir.display()
                    );
                }
            }
            l.up()?;
            wait_until_steady(&l.layout.config_file())?;
            println!(
                "lab up in {}; console config: {}",
                l.layout.dir.display(),
                l.layout.config_file().display()
            );
        }
        LabAction::Roots { build } => {
            if let Some(r) = build {
                match lab::roots::ensure(&r)? {
                    Some(p) => println!("Cyrus {r}: {}", p.display()),
                    None => println!("Cyrus {r} is the host's own: no root needed"),
                }
            }
            println!("roots in {}:", lab::roots::roots_dir().display());
            for (name, version, bytes) in lab::roots::list() {
                println!(
                    "  {name:<24} cyrus-imapd {version:<20} {} MB",
                    bytes / 1_000_000
                );
            }
        }
        LabAction::Down { lab, only } => {
            let l = Lab::open(&lab.dir, None)?;
            let only = only.as_deref().map(Component::parse).transpose()?;
            l.down(only)?;
        }
        LabAction::Status { lab, json } => {
            let st = Lab::open(&lab.dir, None)?.status();
            if json {
                println!("{}", serde_json::to_string_pretty(&st)?);
            } else {
                for c in &st.components {
                    let state = match c.pid {
                        Some(p) => format!("running (pid {p})"),
                        None => "stopped".into(),
                    };
                    println!("{:<14} {state}", c.name);
                }
                for i in &st.instances {
                    println!(
                        "{:<8} cyrus {} {} imap {} lmtp {} sync {} ssh {}  {}",
                        i.role,
                        i.cyrus_version.as_deref().unwrap_or("?"),
                        i.address,
                        i.imap_port,
                        i.lmtp_port,
                        i.sync_port,
                        i.ssh_port,
                        i.imapd_conf.display()
                    );
                }
            }
        }
        LabAction::Seed {
            lab,
            messages,
            users,
            folders,
        } => {
            let l = Lab::open(&lab.dir, None)?;
            match users {
                Some(n) => {
                    let report = lab::seed::bulk(&l, n, folders, messages)?;
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
                None if l.layout.profile == lab::layout::Profile::Site => {
                    let report = lab::seed::site(&l, messages)?;
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
                None => {
                    let report = lab::seed::seed(&l, messages)?;
                    println!("{}", serde_json::to_string_pretty(&report)?);
                }
            }
        }
    }
    Ok(())
}
