//! One shared SSH connection per host: exec with a timeout that always closes
//! the channel, exit status and signal captured, reconnect with backoff, and
//! the observe-mode gate (the ONE place mutating commands are refused).

use super::error::RemoteError;
use super::helpers;
use super::quote::remote_line;
use super::session::{self, Handle};
use crate::config::HostConfig;
use russh::ChannelMsg;
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
    state: Mutex<ConnState>,
}

/// Counters of what the transport did, for benchmarks and status.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct TransportStats {
    pub connects: u64,
    /// Commands started (round trips).
    pub execs: u64,
}

impl HostConnection {
    pub fn new(cfg: HostConfig, observe: bool) -> Self {
        HostConnection {
            observe: observe || cfg.observe,
            cfg,
            state: Mutex::new(ConnState::default()),
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
        TransportStats {
            connects: st.connects,
            execs: st.execs,
        }
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
            Some(_) => Some(helpers::privileged(&cmd.argv, &self.cfg).map_err(unsendable)?),
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
        let started = Instant::now();
        // Nothing has run until the channel opens, so a stale session may be
        // replaced and the open retried once.
        let mut attempt = 0;
        let (handle, mut channel) = loop {
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
        let mut out = ExecOutput::default();
        let run = async {
            channel.exec(true, line.as_bytes()).await?;
            // keep reading after Eof: ExitStatus may follow it
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => out.stdout.extend_from_slice(&data),
                    ChannelMsg::ExtendedData { data, .. } => out.stderr.extend_from_slice(&data),
                    ChannelMsg::ExitStatus { exit_status } => out.exit_status = Some(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        out.exit_signal = Some(format!("{signal_name:?}"))
                    }
                    _ => {}
                }
                if out.stdout.len() + out.stderr.len() > MAX_OUTPUT {
                    break;
                }
            }
            Ok::<(), russh::Error>(())
        };
        let result = tokio::time::timeout(timeout, run).await;
        // always close: a dropped channel sends nothing and sshd's
        // MaxSessions would run out
        let _ = tokio::time::timeout(Duration::from_secs(2), channel.close()).await;
        out.elapsed = started.elapsed();
        match result {
            Err(_) => Err(RemoteError::Timeout {
                endpoint: self.endpoint(),
                what: format!("`{}`", cmd.argv.first().map(String::as_str).unwrap_or("")),
                after: timeout,
            }),
            Ok(Err(e)) => {
                self.forget(&handle).await;
                Err(RemoteError::Disconnected {
                    endpoint: self.endpoint(),
                    detail: e.to_string(),
                })
            }
            Ok(Ok(())) if out.stdout.len() + out.stderr.len() > MAX_OUTPUT => {
                Err(RemoteError::Disconnected {
                    endpoint: self.endpoint(),
                    detail: format!("output over {MAX_OUTPUT} bytes; cut off"),
                })
            }
            Ok(Ok(())) if out.exit_status.is_none() && out.exit_signal.is_none() => {
                if handle.is_closed() {
                    self.forget(&handle).await;
                    return Err(RemoteError::Disconnected {
                        endpoint: self.endpoint(),
                        detail: "session closed before the command finished".into(),
                    });
                }
                Ok(out)
            }
            Ok(Ok(())) => match privileged.as_ref().and_then(|p| self.sudo_refusal(p, &out)) {
                Some(e) => Err(e),
                None => Ok(out),
            },
        }
    }

    /// sudo itself said no (exit 1 and its own words on stderr, nothing
    /// run): name the rule that was missing, or the helper not installed.
    fn sudo_refusal(&self, p: &helpers::Privileged, out: &ExecOutput) -> Option<RemoteError> {
        if out.exit_status != Some(1) || !out.stdout.is_empty() {
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
                    helpers::rule_for(p, &self.cfg, account),
                    self.cfg.name
                )
            },
        })
    }
}
