use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong reaching a host, each with what to do about it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    #[error(
        "host key of {endpoint} is not in {known_hosts}: refusing to connect.\n  \
         The server offered {key_type} {fingerprint}.\n  \
         Verify that fingerprint out of band (on the host: ssh-keygen -lf /etc/ssh/ssh_host_{short}_key.pub), then trust it with:\n    \
         cyrdeck trust <host>   (or: ssh-keyscan -p {port} {host} >> {known_hosts})"
    )]
    UnknownHostKey {
        endpoint: String,
        host: String,
        port: u16,
        key_type: String,
        short: String,
        fingerprint: String,
        known_hosts: PathBuf,
    },
    #[error(
        "HOST KEY CHANGED for {endpoint}: refusing to connect. The server offers {key_type} {fingerprint}, \
         but other keys are recorded for it: {stored}. Whatever its algorithm, a key that is not \
         recorded for a host that has keys may be a man in the middle (or a reinstalled host). \
         Do not trust it until verified out of band; then remove the old entries \
         (ssh-keygen -R '{lookup}' -f {known_hosts}) and run cyrdeck trust <host>."
    )]
    ChangedHostKey {
        endpoint: String,
        key_type: String,
        fingerprint: String,
        /// "ssh-rsa at FILE:3, ..."
        stored: String,
        /// The name the host is recorded under (`[host]:port`).
        lookup: String,
        known_hosts: PathBuf,
    },
    #[error(
        "HOST KEY REVOKED for {endpoint}: the server offers {key_type} {fingerprint}, which \
         {known_hosts} line {line} marks @revoked. Refusing to connect."
    )]
    RevokedHostKey {
        endpoint: String,
        key_type: String,
        fingerprint: String,
        known_hosts: PathBuf,
        line: usize,
    },
    #[error("cannot check host key of {endpoint}: {detail}")]
    HostKeyCheck { endpoint: String, detail: String },
    #[error("authentication to {endpoint} failed: {detail}")]
    Auth { endpoint: String, detail: String },
    #[error("cannot connect to {endpoint}: {detail}")]
    Connect { endpoint: String, detail: String },
    #[error("{endpoint}: {what} timed out after {after:?}")]
    Timeout {
        endpoint: String,
        what: String,
        after: Duration,
    },
    #[error("{endpoint}: connection lost: {detail}")]
    Disconnected { endpoint: String, detail: String },
    #[error("{endpoint} unreachable (next attempt in {retry_in:?}): {last}")]
    Backoff {
        endpoint: String,
        retry_in: Duration,
        last: String,
    },
    #[error("{host}: {detail}")]
    Unsendable { host: String, detail: String },
    #[error("sudo refused ({said}); {need}")]
    SudoRefused {
        host: String,
        said: String,
        need: String,
    },
    #[error("refused: {argv0} changes state and {host} is in observe mode")]
    ObserveMode { host: String, argv0: String },
}

impl RemoteError {
    /// Host-key problems are never retried automatically.
    pub fn is_host_key(&self) -> bool {
        matches!(
            self,
            RemoteError::UnknownHostKey { .. }
                | RemoteError::ChangedHostKey { .. }
                | RemoteError::RevokedHostKey { .. }
                | RemoteError::HostKeyCheck { .. }
        )
    }
}
