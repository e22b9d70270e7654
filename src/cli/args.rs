//! The command line: clap types only (the handlers are the other cli/ modules).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "cyrdeck",
    version,
    about = "Console for Cyrus IMAP replication"
)]
pub struct Cli {
    /// Config file (default: $XDG_CONFIG_HOME/cyrdeck/cyrdeck.toml).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Read-only: the transport refuses every mutating command.
    #[arg(long, global = true)]
    pub observe: bool,
    /// Key bindings merged over the defaults (default:
    /// $XDG_CONFIG_HOME/cyrdeck/keymap.toml when it exists).
    #[arg(long, global = true)]
    pub keymap: Option<PathBuf>,
    /// Without a command: the interactive console.
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

#[derive(Subcommand)]
pub enum Cmd {
    /// Replication health per pair. Exit 0 OK, 1 warning, 2 critical, 3 unknown.
    Status {
        /// Print the report as JSON (the same exit codes).
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
        /// Print the result as JSON (the same exit codes).
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
        /// The pair (default: the only pair configured).
        #[arg(long)]
        pair: Option<String>,
        /// Repair this user's mailboxes and per-user state.
        #[arg(long, conflicts_with = "mailbox", required_unless_present = "mailbox")]
        user: Option<String>,
        /// Repair this mailbox (external name, e.g. user/alice/Sent).
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
    /// Run any runbook headless, step by step (the runbooks and what each
    /// takes as TARGET: below, from the runbook registry). Asks before each
    /// step that changes a host unless --yes. Exit 0 done, 1 a step failed,
    /// 3 stopped by the operator or refused (observe mode).
    Run {
        /// The runbook to run.
        #[arg(value_parser = runbook_ids())]
        runbook: String,
        /// What it works on: a mailbox, a user, a pair, a channel, OLD:NEW
        /// (see RUNBOOK's values).
        target: String,
        /// The pair (default: the only pair configured).
        #[arg(long)]
        pair: Option<String>,
        /// Run every step without asking.
        #[arg(long)]
        yes: bool,
        /// repair: a folder or user only the replica has (report|copy-back).
        #[arg(long)]
        replica_only: Option<String>,
        /// reintegrate: a same-UID/different-GUID pair gets new UIDs on both
        /// sides (easy), or the new master's keeps its UID (soft).
        #[arg(long, value_parser = ["easy", "soft"])]
        uid_policy: Option<String>,
        /// Only the read-only precheck and the steps that would run.
        #[arg(long)]
        dry_run: bool,
    },
    /// Replication anti-patterns in each host's effective config, with the
    /// fix (read-only). Exit 0 none, 1 findings, 2 a host could not be read.
    Doctor {
        /// The pair (default: every pair configured).
        #[arg(long)]
        pair: Option<String>,
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Guided soft failover of a pair to its replica (docs/failover.md). Asks
    /// before each step that changes a host unless --yes; journalled, so
    /// `runbook resume` continues after a crash. Exit 0 done, 1 a step
    /// failed (the output says what state the pair is in), 3 stopped.
    Failover {
        /// The pair (default: the only pair configured).
        #[arg(long)]
        pair: Option<String>,
        /// Only the prechecks and the exact steps and commands.
        #[arg(long)]
        dry_run: bool,
        /// Run every step without asking.
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
    /// Journalled runbooks (every runbook that writes): list, resume after a
    /// crash, discard, unlock.
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
    /// Bash's completes --pair, --to and runbook targets from the config.
    Completions { shell: clap_complete::Shell },
    /// The config's pair or host names, one a line (bash completion's
    /// source; reads the config file only, contacts no host).
    #[command(hide = true)]
    Names {
        #[arg(value_parser = ["pairs", "hosts"])]
        what: String,
    },
    /// Print the man page (roff): `cyrdeck man | man -l -`.
    Man {
        /// Instead, write every page (cyrdeck.1, cyrdeck-status.1, ...) into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum HelpersAction {
    /// Write them into DIR (run as root on the mail host).
    Install {
        #[arg(default_value = "/usr/local/lib/cyrdeck")]
        dir: PathBuf,
    },
    /// Name, version and run-as user of each.
    List,
}

#[derive(Subcommand)]
pub enum RunbookAction {
    /// The unfinished runs of this config (another config's are named as such).
    List,
    /// Go on with the one unfinished run of this config, from its journal.
    Resume {
        /// Run every step without asking.
        #[arg(long)]
        yes: bool,
        /// Run a failed step again (after fixing its cause).
        #[arg(long)]
        retry: bool,
    },
    /// Drop the one unfinished run's journal (kept in done/); the hosts
    /// are NOT changed back.
    Discard,
    /// Show who holds the pair's runbook lock (on its master) and break it
    /// after asking: only when that run is gone for good.
    Unlock {
        /// The pair (default: the only pair configured).
        #[arg(long)]
        pair: Option<String>,
        /// Break it without asking.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(clap::Args)]
pub struct LabArgs {
    /// Directory holding the lab's configs, keys, spools and pidfiles.
    #[arg(long, default_value = "/var/tmp/cyrdeck-lab")]
    pub dir: PathBuf,
}

#[derive(Subcommand)]
pub enum LabAction {
    /// Start whatever part of the lab is not running (idempotent).
    Up(UpArgs),
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
        /// Only this component (the lab's rsyslogd, one host's Cyrus,
        /// sshd or journald).
        #[arg(long, value_parser = lab_components())]
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

/// `lab up`'s flags.
#[derive(clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub lab: LabArgs,
    /// First of the lab's ports (it uses base..base+43: each host's IMAP,
    /// LMTP, sync and sieve ports, and the sshds).
    #[arg(long)]
    pub base_port: Option<u16>,
    /// master or replica: that host's Cyrus logs to a private
    /// systemd-journald (read with log_source = "journal"), as on a
    /// host without rsyslog; none: both log to the lab's rsyslogd.
    /// Remembered by the lab.
    #[arg(long)]
    pub journal_host: Option<String>,
    /// Cyrus release of both hosts: 3.6, 3.8, 3.10 or 3.12. One the
    /// host's packages are not runs from a cached debootstrap root
    /// (built on first use; `lab roots` lists them). Remembered.
    #[arg(long)]
    pub cyrus: Option<String>,
    /// The master's release (a mixed pair: replica newer, to rehearse an upgrade).
    #[arg(long, conflicts_with = "cyrus")]
    pub master_cyrus: Option<String>,
    /// The replica's release.
    #[arg(long, conflicts_with = "cyrus")]
    pub replica_cyrus: Option<String>,
    /// How many replicas (1 to 3): each its own host (address, sshd,
    /// Cyrus); the second and third read sync-log channels named
    /// replica2 and replica3. Remembered.
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=3))]
    pub replicas: Option<u8>,
    /// One more host (Cyrus + sshd, in the console config, in no pair):
    /// the new replica of a `run replace-replica` rehearsal. Remembered.
    #[arg(long)]
    pub spare: bool,
    /// Render every config afresh and remove failover files: the lab's
    /// first roles back. Without it, a lab that exists starts what is
    /// stopped as it was left (a crashed host coming back after a
    /// promote stays fenced, its roles as the runbooks left them).
    #[arg(long)]
    pub reset: bool,
    /// plain (default) or site: virtual domains (`alice@example.com`),
    /// altnamespace, a second partition and archive partitions, shared
    /// folders with group ACLs once seeded. Fixed when the lab is built.
    #[arg(long)]
    pub profile: Option<String>,
}

/// Every lab component's name, from the lab (`lab down --only`).
fn lab_components() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(
        cyrdeck::lab::Component::every()
            .into_iter()
            // clap keeps 'static names; a handful, once per process
            .map(|c| clap::builder::PossibleValue::new(&*c.name().leak())),
    )
}

/// The runbook ids, each with what it takes as TARGET and its title: from
/// the registry, so `run --help` and completion cannot go stale (issue 30,
/// item 9).
fn runbook_ids() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(cyrdeck::ops::registry::available().into_iter().map(
        |s| {
            clap::builder::PossibleValue::new(s.id())
                .help(format!("TARGET: {}. {}", s.target, s.title))
        },
    ))
}
