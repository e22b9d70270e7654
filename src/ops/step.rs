//! What a runbook step works with: its context (pair, target, options,
//! connections) and the one audited write path, who is writing (`Actor`),
//! how a step's result becomes its state, and how long argument lists are
//! cut to a bounded command size.

use super::audit;
use super::error::StepError;
use super::fault;
use super::runbook::{option_value, RunbookSpec, StepKind, StepState};
use crate::config::{Config, PairConfig};
use crate::remote::{ExecOutput, HostConnection};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// How many bytes of names one command may carry: a list that grows with
/// the site (users, folders, UIDs) is cut into commands of at most this
/// much, well under one exec's command-line bound
/// (`remote::MAX_COMMAND_LINE`, OpenSSH's packet and Linux's argument
/// limits).
pub const ARGS_BUDGET: usize = 24 << 10;

/// `args` in runs whose lengths (plus quoting) add up to at most
/// [`ARGS_BUDGET`]; each run holds at least one.
pub fn arg_chunks<S: AsRef<str>>(args: &[S]) -> Vec<&[S]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, a) in args.iter().enumerate() {
        // quoted: at worst every byte escaped, plus quotes and a space
        let cost = 2 * a.as_ref().len() + 3;
        if i > start && bytes + cost > ARGS_BUDGET {
            out.push(&args[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += cost;
    }
    if start < args.len() {
        out.push(&args[start..]);
    }
    out
}

/// A step's result: refused when nothing was attempted.
pub fn state_of(res: Result<String, StepError>) -> StepState {
    match res {
        Ok(m) => StepState::Done(m),
        Err(e) if e.is_refusal() => StepState::Refused(e.to_string()),
        Err(e) => StepState::Failed(e.to_string()),
    }
}

/// Who writes through a StepContext: a runbook, or one of the writers that
/// are not runbooks. Its label names the writer in the audit log, the pair
/// lock and the failover hook's environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    Runbook(RunbookSpec),
    Heartbeat,
    Autopilot,
    /// `cyrdeck runbook unlock`.
    Unlock,
}

impl Actor {
    pub fn label(self) -> &'static str {
        match self {
            Actor::Runbook(s) => s.id(),
            Actor::Heartbeat => "heartbeat",
            Actor::Autopilot => "autopilot",
            Actor::Unlock => "unlock",
        }
    }
}

/// What a step needs: the pair, the target it was started on, connections.
pub struct StepContext<'a> {
    pub cfg: &'a Config,
    pub pair: &'a PairConfig,
    pub target: &'a str,
    pub actor: Actor,
    pub(super) conns: &'a BTreeMap<String, Arc<HostConnection>>,
    /// Live lines of a long step (the drain's count), as they happen.
    pub(super) progress: &'a (dyn Fn(&str) + Send + Sync),
    /// 1 the first time a step runs; more when it runs again (resumed after
    /// an interruption, or retried).
    pub attempt: u32,
    /// The run's id (pair lock, failover fence).
    pub run_id: &'a str,
    /// The operator's choices for the run (RunbookSpec::options).
    pub options: &'a BTreeMap<String, String>,
}

static NO_OPTIONS: BTreeMap<String, String> = BTreeMap::new();

impl<'a> StepContext<'a> {
    pub fn new(
        cfg: &'a Config,
        pair: &'a PairConfig,
        target: &'a str,
        actor: Actor,
        conns: &'a BTreeMap<String, Arc<HostConnection>>,
    ) -> Self {
        StepContext {
            cfg,
            pair,
            target,
            actor,
            conns,
            progress: &|_| {},
            attempt: 1,
            run_id: "",
            options: &NO_OPTIONS,
        }
    }

    /// Option `name` of this run: chosen, else the runbook's default.
    pub fn option(&self, name: &str) -> &str {
        match self.actor {
            Actor::Runbook(s) => option_value(&s, self.options, name),
            _ => "",
        }
    }

    pub fn progress(&self, line: &str) {
        (self.progress)(line)
    }

    pub fn connections(&self) -> &BTreeMap<String, Arc<HostConnection>> {
        self.conns
    }

    pub fn connection(&self, host: &str) -> Result<&HostConnection, StepError> {
        self.conns
            .get(host)
            .map(|c| c.as_ref())
            .ok_or_else(|| format!("host {host} is not configured").into())
    }

    /// Run a command that changes `host`: it needs the transport's write
    /// capability (none in observe mode: refused), is shown as `host$ argv`
    /// (or as `shown`, for long scripts); its intent is written (fsynced) to
    /// the audit log BEFORE it is sent — no log, no write — and its result
    /// after. The caller judges the exit status.
    pub async fn write(
        &self,
        host: &str,
        argv: Vec<String>,
        shown: Option<Vec<String>>,
        timeout: std::time::Duration,
        out: &mut Vec<String>,
    ) -> Result<ExecOutput, StepError> {
        self.write_with_input(host, argv, shown, None, timeout, out)
            .await
    }

    /// `write`, `input` (when given) sent as the command's stdin; the
    /// audit log records its size, never its bytes.
    pub async fn write_with_input(
        &self,
        host: &str,
        argv: Vec<String>,
        shown: Option<Vec<String>>,
        input: Option<&[u8]>,
        timeout: std::time::Duration,
        out: &mut Vec<String>,
    ) -> Result<ExecOutput, StepError> {
        let io = match input {
            Some(i) => WriteIo::Stdin(i),
            None => WriteIo::Collect,
        };
        self.audited(host, argv, shown, io, timeout, out).await
    }

    /// `write`, its stdout handed to `on_line` line by line as it comes
    /// (a long command's progress); the output returned has no stdout.
    pub async fn write_lines(
        &self,
        host: &str,
        argv: Vec<String>,
        timeout: std::time::Duration,
        out: &mut Vec<String>,
        mut on_line: impl FnMut(&str) + Send,
    ) -> Result<ExecOutput, StepError> {
        self.audited(host, argv, None, WriteIo::Lines(&mut on_line), timeout, out)
            .await
    }

    /// THE audited write: the write capability (none in observe mode:
    /// refused), the intent fsynced to the audit log BEFORE anything is
    /// sent (no log, no write), the command shown, run, its result logged.
    async fn audited(
        &self,
        host: &str,
        argv: Vec<String>,
        shown: Option<Vec<String>>,
        io: WriteIo<'_>,
        timeout: std::time::Duration,
        out: &mut Vec<String>,
    ) -> Result<ExecOutput, StepError> {
        let conn = self.connection(host)?;
        let cap = conn
            .write_capability()
            .ok_or_else(StepError::observe_mode)?;
        let mut shown = shown.unwrap_or_else(|| argv.clone());
        if let WriteIo::Stdin(i) = &io {
            shown.push(format!("<stdin: {} bytes>", i.len()));
        }
        let path = self.audit_path();
        let id =
            audit::intent(&path, host, &shown, self.actor.label(), self.run_id).map_err(|e| {
                format!(
                    "{host}: not changed: the audit log {} cannot be written ({e}); \
                 cyrdeck records every change before making it",
                    path.display()
                )
            })?;
        fault::after_audit_intent();
        out.push(format!("{host}$ {}", audit::redact(&shown.join(" "))));
        let cmd = crate::remote::RemoteCommand::write(argv, &cap);
        let res = match io {
            WriteIo::Collect => conn.exec_timeout(&cmd, timeout).await,
            WriteIo::Stdin(i) => conn.exec_input(&cmd, i, timeout).await,
            WriteIo::Lines(on_line) => stream_lines(conn, &cmd, timeout, on_line).await,
        };
        if let Err(e) = audit::result(&path, &id, host, self.actor.label(), &res) {
            out.push(format!(
                "WARNING: the command ran but its result is not in the audit log {}: {e}",
                path.display()
            ));
        }
        res.map_err(|error| StepError::Remote {
            host: host.to_string(),
            error: Box::new(error),
        })
    }

    /// A finding (nothing written) in the audit log; a log that cannot
    /// be written is said in the output, never silently.
    pub fn audit_finding(&self, host: &str, what: &[String], detail: &str, out: &mut Vec<String>) {
        if let Err(e) = audit::finding(
            &self.audit_path(),
            host,
            what,
            detail,
            self.actor.label(),
            self.run_id,
        ) {
            out.push(format!(
                "  WARNING: the audit log {} cannot be written: {e}",
                self.audit_path().display()
            ));
        }
    }

    fn audit_path(&self) -> std::path::PathBuf {
        self.cfg
            .audit_log
            .clone()
            .unwrap_or_else(crate::state::audit_log)
    }

    /// `sync_client -C CONF [-n CHANNEL]` on the master.
    pub fn sync_client_argv(&self, channel: &str) -> Result<Vec<String>, StepError> {
        self.sync_client_on(&self.pair.master, channel, None)
    }

    /// Every one-shot `sync_client` cyrdeck runs, on `host` (the master for
    /// repair and resync, the old master for reintegrate's copy-back, a
    /// replica for repair's copy-back): `-C CONF [-n CHANNEL] [-S HOST:PORT]`.
    /// `-S` overrides sync_host and carries the port (Cyrus 3.6
    /// backend_connect splits the server string at its FIRST `:`, so an
    /// IPv6 literal cannot be given: a name is needed); authentication is
    /// still the host's own sync_authname/sync_password (or the channel's).
    pub fn sync_client_on(
        &self,
        host: &str,
        channel: &str,
        server: Option<&(String, u16)>,
    ) -> Result<Vec<String>, StepError> {
        let h = self.connection(host)?.config();
        let mut argv = vec![
            format!("{}/sync_client", h.bin_dir.display()),
            "-C".into(),
            h.imapd_conf.display().to_string(),
        ];
        if !channel.is_empty() {
            argv.extend([
                "-n".into(),
                crate::cyrus::names::check_name(crate::cyrus::names::NameKind::Channel, channel)?
                    .to_string(),
            ]);
        }
        if let Some((addr, port)) = server {
            if addr.contains(':') || addr.starts_with('-') || addr.is_empty() {
                return Err(format!(
                    "sync_server address {addr:?}: sync_client -S takes a host name or IPv4 address (set the host's sync_address to NAME:PORT)"
                ).into());
            }
            argv.extend(["-S".into(), format!("{addr}:{port}")]);
        }
        Ok(argv)
    }

    /// The integrity check of one user or mailbox of this pair.
    pub async fn scoped_check(
        &self,
        scope: &crate::check::Scope,
        drain_wait: std::time::Duration,
    ) -> Result<crate::model::conflicts::CheckResult, StepError> {
        let opts = crate::check::CheckOptions {
            drain_wait,
            exec_timeout: std::time::Duration::from_secs(300),
            list_mailboxes: false,
        };
        crate::check::run(self.cfg, self.conns, &self.pair.name, scope, &opts, &|_| {})
            .await
            .map_err(StepError::from)
    }
}

/// One runbook: its steps as a type, its spec (derived from the steps),
/// what one step leaves for the next (`Memo`, journalled as JSON) and,
/// when it has one, its undo. The engine dispatches on `RunbookKind` to
/// the implementing type (ops::dispatch); nothing matches on ids or
/// step numbers.
pub trait Runbook {
    type Step: StepKind;
    /// Journalled with the run: `Default` when a run starts.
    type Memo: Serialize + serde::de::DeserializeOwned + Default + Send + Sync;
    const SPEC: RunbookSpec;

    /// Run one step to its end.
    fn execute(
        step: Self::Step,
        cx: &StepContext<'_>,
        out: &mut Vec<String>,
        memo: &mut Self::Memo,
    ) -> impl std::future::Future<Output = StepState> + Send;

    /// Undo what the servers say this run changed (a failure before the
    /// point of no return, or the operator's stop). None: the runbook has
    /// no undo.
    fn undo(
        _cx: &StepContext<'_>,
        _memo: &Self::Memo,
        _out: &mut Vec<String>,
    ) -> impl std::future::Future<Output = Option<Result<Undone, StepError>>> + Send {
        async { None }
    }
}

/// What an undo did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Undone {
    /// The pair is back in its state before the run (what was done).
    Restored(String),
    /// Past the point of no return after all: the run goes forward.
    Forward(String),
}

/// No memo: every step stands on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoMemo;

/// How an audited write talks to its command.
enum WriteIo<'a> {
    /// Its output collected.
    Collect,
    /// These bytes on its stdin (the audit log records their size only).
    Stdin(&'a [u8]),
    /// Its stdout handed on line by line as it comes.
    Lines(&'a mut (dyn FnMut(&str) + Send)),
}

/// Run `cmd`, `on_line` given each stdout line as it arrives.
async fn stream_lines(
    conn: &HostConnection,
    cmd: &crate::remote::RemoteCommand,
    timeout: std::time::Duration,
    on_line: &mut (dyn FnMut(&str) + Send),
) -> Result<ExecOutput, crate::remote::RemoteError> {
    let mut stream = conn.exec_stream(cmd, timeout).await?;
    let mut pending: Vec<u8> = Vec::new();
    while let Some(piece) = stream.next().await? {
        pending.extend_from_slice(&piece);
        while let Some(i) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=i).collect();
            on_line(String::from_utf8_lossy(&line).trim_end());
        }
    }
    stream.finish().await
}

#[cfg(test)]
mod arg_chunk_tests {
    use super::*;

    /// Thousands of users (replace-replica's resync) or UIDs (repair's
    /// unexpunge) go out in commands of a bounded size, none lost.
    #[test]
    fn long_lists_are_cut_into_bounded_commands() {
        let users: Vec<String> = (0..20_000).map(|i| format!("user{i:06}")).collect();
        let chunks = arg_chunks(&users);
        assert!(chunks.len() > 1);
        assert_eq!(chunks.concat(), users);
        for c in &chunks {
            let bytes: usize = c.iter().map(|u| 2 * u.len() + 3).sum();
            assert!(bytes <= ARGS_BUDGET);
        }
        // one name longer than the budget still goes, alone
        let long = vec!["x".repeat(ARGS_BUDGET), "y".into()];
        assert_eq!(arg_chunks(&long).len(), 2);
        assert!(arg_chunks::<String>(&[]).is_empty());
    }
}
