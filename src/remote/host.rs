//! One shared SSH connection per host: exec with a timeout that always closes
//! the channel, exit status and signal captured, reconnect with backoff, and
//! the observe-mode gate (the ONE place mutating commands are refused).

use super::error::RemoteError;
use super::helpers;
use super::quote::remote_line;
use super::session::{self, Handle};
use crate::config::HostConfig;
use russh::ChannelMsg;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// Proof that mutating commands are allowed. Only
/// [`HostConnection::write_capability`] makes one, and not in observe mode.
#[derive(Debug)]
pub struct WriteCapability {
    _private: (),
}

/// A remote command: an argv (quoted by the one quoting function) and
/// whether it changes state.
#[derive(Clone, Debug)]
pub struct RemoteCommand {
    argv: Vec<String>,
    mutating: bool,
}

impl RemoteCommand {
    pub fn read<S: Into<String>>(argv: impl IntoIterator<Item = S>) -> Self {
        RemoteCommand {
            argv: argv.into_iter().map(Into::into).collect(),
            mutating: false,
        }
    }
    pub fn write<S: Into<String>>(
        argv: impl IntoIterator<Item = S>,
        _cap: &WriteCapability,
    ) -> Self {
        RemoteCommand {
            argv: argv.into_iter().map(Into::into).collect(),
            mutating: true,
        }
    }
    pub fn argv(&self) -> &[String] {
        &self.argv
    }
    pub fn is_mutating(&self) -> bool {
        self.mutating
    }
}

#[derive(Clone, Debug, Default)]
pub struct ExecOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_status: Option<u32>,
    pub exit_signal: Option<String>,
    pub elapsed: Duration,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.exit_status == Some(0)
    }
}

/// Largest output kept from one command; a runaway producer is cut off.
const MAX_OUTPUT: usize = 64 << 20;
/// The largest command line one exec sends: the biggest remote script
/// (failover.sh, about 15 KB) with its arguments fits many times over.
pub const MAX_COMMAND_LINE: usize = 96 << 10;

#[derive(Default)]
struct ConnState {
    handle: Option<Arc<Handle>>,
    failures: u32,
    next_attempt: Option<Instant>,
    last_error: Option<RemoteError>,
    connects: u64,
    execs: u64,
}

pub struct HostConnection {
    cfg: HostConfig,
    observe: bool,
    /// Every command cyrdeck sends, by name (sudo mode's helpers).
    scripts: &'static [helpers::Helper],
    state: Mutex<ConnState>,
    /// Bytes sent (command lines, stdin) and received (stdout, stderr):
    /// what a step moves, printed with its time (atomics: read without
    /// waiting for a command in flight).
    sent: AtomicU64,
    received: AtomicU64,
}

/// Counters of what the transport did, for benchmarks and status.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct TransportStats {
    pub connects: u64,
    /// Commands started (round trips).
    pub execs: u64,
    /// Payload bytes: command lines and stdin out, stdout and stderr in
    /// (SSH framing and compression not counted).
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl HostConnection {
    /// A connection to the host `cfg` names; `scripts` is the registry
    /// sudo mode turns commands into helpers with (crate::scripts::all).
    pub fn new(cfg: HostConfig, observe: bool, scripts: &'static [helpers::Helper]) -> Self {
        HostConnection {
            observe: observe || cfg.observe,
            scripts,
            cfg,
            state: Mutex::new(ConnState::default()),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &HostConfig {
        &self.cfg
    }

    pub fn observe(&self) -> bool {
        self.observe
    }

    pub fn write_capability(&self) -> Option<WriteCapability> {
        (!self.observe).then_some(WriteCapability { _private: () })
    }

    pub async fn stats(&self) -> TransportStats {
        let st = self.state.lock().await;
        let (bytes_sent, bytes_received) = self.bytes_moved();
        TransportStats {
            connects: st.connects,
            execs: st.execs,
            bytes_sent,
            bytes_received,
        }
    }

    /// (sent, received) payload bytes so far, without waiting on anything.
    pub fn bytes_moved(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }

    fn endpoint(&self) -> String {
        self.cfg.target.to_string()
    }

    /// The live session, connecting if needed (respecting the backoff).
    async fn handle(&self) -> Result<Arc<Handle>, RemoteError> {
        let mut st = self.state.lock().await;
        if let Some(h) = &st.handle {
            if !h.is_closed() {
                return Ok(h.clone());
            }
            st.handle = None;
        }
        if let (Some(at), Some(last)) = (st.next_attempt, &st.last_error) {
            let now = Instant::now();
            if at > now {
                if last.is_host_key() {
                    return Err(last.clone());
                }
                return Err(RemoteError::Backoff {
                    endpoint: self.endpoint(),
                    retry_in: at - now,
                    last: last.to_string(),
                });
            }
        }
        match session::open(&self.cfg).await {
            Ok(h) => {
                let h = Arc::new(h);
                st.handle = Some(h.clone());
                st.failures = 0;
                st.next_attempt = None;
                st.last_error = None;
                st.connects += 1;
                Ok(h)
            }
            Err(e) => {
                st.failures += 1;
                let backoff = Duration::from_millis(500 * (1u64 << st.failures.min(6)))
                    .min(Duration::from_secs(30));
                st.next_attempt = Some(Instant::now() + backoff);
                st.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    async fn forget(&self, h: &Arc<Handle>) {
        let mut st = self.state.lock().await;
        if st.handle.as_ref().is_some_and(|x| Arc::ptr_eq(x, h)) {
            st.handle = None;
        }
    }

    /// Reset the backoff so the next call reconnects at once.
    pub async fn retry_now(&self) {
        self.state.lock().await.next_attempt = None;
    }

    /// Run `cmd` with the host's exec timeout.
    pub async fn exec(&self, cmd: &RemoteCommand) -> Result<ExecOutput, RemoteError> {
        self.exec_timeout(cmd, self.cfg.exec_timeout).await
    }

    pub async fn exec_timeout(
        &self,
        cmd: &RemoteCommand,
        timeout: Duration,
    ) -> Result<ExecOutput, RemoteError> {
        let s = self.exec_stream(cmd, timeout).await?;
        self.collect(s).await
    }

    /// `exec_timeout` with `input` as the command's stdin (then EOF): the
    /// bytes of a message moved between hosts, which no argument could
    /// carry (Linux caps one argument at 128 KiB). The command must read
    /// its stdin before it writes much: its output is read only after.
    pub async fn exec_input(
        &self,
        cmd: &RemoteCommand,
        input: &[u8],
        timeout: Duration,
    ) -> Result<ExecOutput, RemoteError> {
        let mut s = self.exec_stream(cmd, timeout).await?;
        s.send_input(input).await?;
        self.collect(s).await
    }

    /// All of a started command's stdout, then its end (`finish`).
    async fn collect(&self, mut s: ExecStream<'_>) -> Result<ExecOutput, RemoteError> {
        let mut stdout = Vec::new();
        while let Some(data) = s.next().await? {
            stdout.extend_from_slice(&data);
            if stdout.len() + s.out.stderr.len() > MAX_OUTPUT {
                s.abort().await;
                return Err(RemoteError::Disconnected {
                    endpoint: self.endpoint(),
                    detail: format!("output over {MAX_OUTPUT} bytes; cut off"),
                });
            }
        }
        let mut out = s.finish().await?;
        out.stdout = stdout;
        Ok(out)
    }

    /// Start `cmd` and hand its stdout over as it comes ([`ExecStream::next`]),
    /// never held whole here: the same timeout (local and remote), channel
    /// close, status and error semantics as [`Self::exec_timeout`], which is
    /// built on it. Only stderr is kept (up to the same output limit).
    pub async fn exec_stream(
        &self,
        cmd: &RemoteCommand,
        timeout: Duration,
    ) -> Result<ExecStream<'_>, RemoteError> {
        if cmd.mutating && self.observe {
            return Err(RemoteError::ObserveMode {
                host: self.cfg.name.clone(),
                argv0: cmd.argv.first().cloned().unwrap_or_default(),
            });
        }
        // sshd keeps a session (counted against MaxSessions) until its
        // command exits and ignores signal requests here, so the remote side
        // enforces the timeout too; `timeout` stays outside sudo so sudoers
        // rules for Cyrus tools still match
        let unsendable = |detail: String| RemoteError::Unsendable {
            host: self.cfg.name.clone(),
            detail,
        };
        // sudo mode: the installed helper (or Cyrus tool) as its user
        let privileged = match self.cfg.sudo_user {
            Some(_) => {
                Some(helpers::privileged(&cmd.argv, &self.cfg, self.scripts).map_err(unsendable)?)
            }
            None => None,
        };
        let line = match &privileged {
            Some(p) => remote_line(
                &p.argv,
                Some(&helpers::run_as_user(p.run_as, &self.cfg)),
                timeout.as_secs_f64() + 1.0,
            ),
            None => remote_line(&cmd.argv, None, timeout.as_secs_f64() + 1.0),
        }
        .map_err(|e| unsendable(e.to_string()))?;
        // one exec request is one SSH packet: OpenSSH closes a session whose
        // packet is over 256 KB ("Bad packet length"), and Linux caps one
        // argument at 128 KiB. Nothing that grows with the site belongs in
        // a command line (lists go on stdin): refuse it here, named.
        if line.len() > MAX_COMMAND_LINE {
            return Err(unsendable(format!(
                "command line of {} bytes for `{}` is over the {} bytes one exec request may carry \
                 (OpenSSH drops a packet over 256 KB): a list that grows with the site must go on stdin",
                line.len(),
                cmd.argv.first().map(String::as_str).unwrap_or(""),
                MAX_COMMAND_LINE
            )));
        }
        let started = Instant::now();
        // Nothing has run until the channel opens, so a stale session may be
        // replaced and the open retried once.
        let mut attempt = 0;
        let (handle, channel) = loop {
            let h = self.handle().await?;
            // opening a channel is bounded by the connect timeout, not the
            // command's: a short command timeout must not condemn the session
            match tokio::time::timeout(self.cfg.connect_timeout, h.channel_open_session()).await {
                Ok(Ok(ch)) => break (h, ch),
                Ok(Err(_)) if attempt == 0 => {
                    // a stale session after a server restart: reconnect once
                    attempt += 1;
                    self.forget(&h).await;
                }
                Ok(Err(e)) => {
                    self.forget(&h).await;
                    return Err(RemoteError::Disconnected {
                        endpoint: self.endpoint(),
                        detail: e.to_string(),
                    });
                }
                Err(_) => {
                    self.forget(&h).await;
                    return Err(RemoteError::Timeout {
                        endpoint: self.endpoint(),
                        what: "opening a channel".into(),
                        after: self.cfg.connect_timeout,
                    });
                }
            }
        };
        self.state.lock().await.execs += 1;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut s = ExecStream {
            conn: self,
            channel: Some(channel),
            handle,
            deadline,
            timeout,
            what: format!("`{}`", cmd.argv.first().map(String::as_str).unwrap_or("")),
            privileged,
            started,
            out: ExecOutput::default(),
            stdout_bytes: 0,
            ended: false,
        };
        let sent = match s.channel.as_ref() {
            Some(ch) => tokio::time::timeout_at(deadline, ch.exec(true, line.as_bytes())).await,
            None => unreachable!("the channel was just opened"),
        };
        self.sent.fetch_add(line.len() as u64, Ordering::Relaxed);
        match sent {
            Ok(Ok(())) => Ok(s),
            Err(_) => Err(s.timed_out().await),
            Ok(Err(e)) => Err(s.broken(e).await),
        }
    }

    /// sudo itself said no (exit 1 and its own words on stderr, nothing
    /// run): name the rule that was missing, or the helper not installed.
    fn sudo_refusal(
        &self,
        p: &helpers::Privileged,
        out: &ExecOutput,
        stdout_bytes: u64,
    ) -> Option<RemoteError> {
        if out.exit_status != Some(1) || stdout_bytes != 0 {
            return None;
        }
        let err = String::from_utf8_lossy(&out.stderr);
        let said = err
            .lines()
            .find(|l| l.starts_with("sudo: ") || l.starts_with("Sorry, user "))?;
        let account = &self.cfg.target.user;
        let refused = said.contains("a password is required")
            || said.contains("is not allowed to execute")
            || said.contains("a terminal is required");
        let missing = said.contains("command not found") || said.contains("No such file");
        if !(refused || missing) {
            return None;
        }
        Some(RemoteError::SudoRefused {
            host: self.cfg.name.clone(),
            said: said.trim().to_string(),
            need: if missing {
                format!(
                    "{} is not installed on {}: run `cyrdeck helpers install {}` there (as root)",
                    p.argv[0],
                    self.cfg.name,
                    self.cfg.helper_dir.display()
                )
            } else {
                format!(
                    "the sudo rule {account} lacks: {} (all rules: `cyrdeck sudoers {} --account {account}`)",
                    helpers::rule_for(p, &self.cfg, account, self.scripts),
                    self.cfg.name
                )
            },
        })
    }
}

/// A command started by [`HostConnection::exec_stream`]: read its stdout
/// with [`next`](Self::next) until `None`, then [`finish`](Self::finish)
/// for the exit status (and stderr). Dropped early, its channel is still
/// closed (in the background).
pub struct ExecStream<'a> {
    conn: &'a HostConnection,
    channel: Option<russh::Channel<russh::client::Msg>>,
    handle: Arc<Handle>,
    deadline: tokio::time::Instant,
    timeout: Duration,
    what: String,
    privileged: Option<helpers::Privileged>,
    started: Instant,
    /// stderr, exit status and signal so far (stdout is handed out).
    out: ExecOutput,
    stdout_bytes: u64,
    ended: bool,
}

impl ExecStream<'_> {
    /// The next piece of stdout as it arrived (any size, lines cut
    /// anywhere); `None` once the command's channel ended. The command's
    /// timeout runs from its start: a read past it is a timeout error.
    pub async fn next(&mut self) -> Result<Option<Vec<u8>>, RemoteError> {
        loop {
            if self.ended {
                return Ok(None);
            }
            let Some(ch) = self.channel.as_mut() else {
                return Ok(None);
            };
            // keep reading after Eof: ExitStatus may follow it
            let msg = match tokio::time::timeout_at(self.deadline, ch.wait()).await {
                Err(_) => return Err(self.timed_out().await),
                Ok(None) => {
                    self.ended = true;
                    return Ok(None);
                }
                Ok(Some(m)) => m,
            };
            match msg {
                ChannelMsg::Data { data } => {
                    self.stdout_bytes += data.len() as u64;
                    self.conn
                        .received
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    return Ok(Some(Vec::from(data)));
                }
                ChannelMsg::ExtendedData { data, .. } => {
                    self.conn
                        .received
                        .fetch_add(data.len() as u64, Ordering::Relaxed);
                    self.out.stderr.extend_from_slice(&data);
                    if self.out.stderr.len() > MAX_OUTPUT {
                        self.abort().await;
                        return Err(RemoteError::Disconnected {
                            endpoint: self.conn.endpoint(),
                            detail: format!("output over {MAX_OUTPUT} bytes; cut off"),
                        });
                    }
                }
                ChannelMsg::ExitStatus { exit_status } => self.out.exit_status = Some(exit_status),
                ChannelMsg::ExitSignal { signal_name, .. } => {
                    self.out.exit_signal = Some(format!("{signal_name:?}"))
                }
                _ => {}
            }
        }
    }

    /// Write `input` to the command's stdin and end it (EOF), within the
    /// command's timeout.
    pub async fn send_input(&mut self, input: &[u8]) -> Result<(), RemoteError> {
        let Some(ch) = self.channel.as_ref() else {
            return Ok(());
        };
        self.conn
            .sent
            .fetch_add(input.len() as u64, Ordering::Relaxed);
        let sent = tokio::time::timeout_at(self.deadline, async {
            ch.data(input).await?;
            ch.eof().await
        })
        .await;
        match sent {
            Ok(Ok(())) => Ok(()),
            Err(_) => Err(self.timed_out().await),
            Ok(Err(e)) => Err(self.broken(e).await),
        }
    }

    /// stderr so far.
    pub fn stderr(&self) -> &[u8] {
        &self.out.stderr
    }

    /// Read to the end (stdout not kept), close the channel and judge the
    /// run as `exec_timeout` does; the output has no stdout.
    pub async fn finish(mut self) -> Result<ExecOutput, RemoteError> {
        while self.next().await?.is_some() {}
        self.close().await;
        let mut out = std::mem::take(&mut self.out);
        out.elapsed = self.started.elapsed();
        if out.exit_status.is_none() && out.exit_signal.is_none() {
            if self.handle.is_closed() {
                self.conn.forget(&self.handle).await;
                return Err(RemoteError::Disconnected {
                    endpoint: self.conn.endpoint(),
                    detail: "session closed before the command finished".into(),
                });
            }
            return Ok(out);
        }
        match self
            .privileged
            .as_ref()
            .and_then(|p| self.conn.sudo_refusal(p, &out, self.stdout_bytes))
        {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Stop reading and close the channel now.
    pub async fn abort(&mut self) {
        self.close().await;
    }

    /// Always close: a dropped channel sends nothing and sshd's MaxSessions
    /// would run out. The read half goes first: a session blocked handing
    /// this channel data it has no room for could not take the close.
    async fn close(&mut self) {
        if let Some(ch) = self.channel.take() {
            let (read, write) = ch.split();
            drop(read);
            let _ = tokio::time::timeout(Duration::from_secs(2), write.close()).await;
        }
        self.ended = true;
    }

    async fn timed_out(&mut self) -> RemoteError {
        self.close().await;
        RemoteError::Timeout {
            endpoint: self.conn.endpoint(),
            what: self.what.clone(),
            after: self.timeout,
        }
    }

    async fn broken(&mut self, e: russh::Error) -> RemoteError {
        self.close().await;
        self.conn.forget(&self.handle).await;
        RemoteError::Disconnected {
            endpoint: self.conn.endpoint(),
            detail: e.to_string(),
        }
    }
}

impl Drop for ExecStream<'_> {
    fn drop(&mut self) {
        if let Some(ch) = self.channel.take() {
            let (read, write) = ch.split();
            drop(read);
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(2), write.close()).await;
                });
            }
        }
    }
}
