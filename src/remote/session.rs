//! Opening one authenticated SSH session: strict known_hosts, then key file
//! or ssh-agent.

use super::error::RemoteError;
use crate::config::HostConfig;
use russh::client;
use russh::keys::{self, HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the host-key check decided, kept so a refused handshake can say why.
#[derive(Clone, Debug)]
enum KeyVerdict {
    Trusted,
    Unknown(PublicKey),
    Changed(PublicKey, usize),
    Error(String),
}

pub struct Verifier {
    host: String,
    port: u16,
    known_hosts: PathBuf,
    verdict: Arc<Mutex<Option<KeyVerdict>>>,
}

impl client::Handler for Verifier {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                match keys::check_known_hosts_path(&self.host, self.port, key, &self.known_hosts) {
                    Ok(true) => KeyVerdict::Trusted,
                    Ok(false) => KeyVerdict::Unknown(key.clone()),
                    Err(keys::Error::KeyChanged { line }) => KeyVerdict::Changed(key.clone(), line),
                    Err(e) => KeyVerdict::Error(e.to_string()),
                }
            }
            PublicKeyOrCertificate::Certificate(_) => {
                KeyVerdict::Error("host certificates are not supported; list the plain key".into())
            }
        };
        let ok = matches!(verdict, KeyVerdict::Trusted);
        *self.verdict.lock().unwrap() = Some(verdict);
        Ok(ok)
    }
}

pub type Handle = client::Handle<Verifier>;

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn ssh_config(_h: &HostConfig) -> client::Config {
    client::Config {
        // a dead peer is noticed within ~45 s even with no command running
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    }
}

type Connected = Result<Result<Handle, russh::Error>, tokio::time::error::Elapsed>;

/// TCP connect and key exchange against `known_hosts`, within the connect
/// timeout; returns the outcome and the host-key verdict.
async fn handshake(h: &HostConfig, known_hosts: PathBuf) -> (Connected, Option<KeyVerdict>) {
    let verdict = Arc::new(Mutex::new(None));
    let verifier = Verifier {
        host: h.target.host.clone(),
        port: h.target.port,
        known_hosts,
        verdict: verdict.clone(),
    };
    let addr = (h.target.host.clone(), h.target.port);
    let connected = tokio::time::timeout(
        h.connect_timeout,
        client::connect(Arc::new(ssh_config(h)), addr, verifier),
    )
    .await;
    let v = verdict.lock().unwrap().clone();
    (connected, v)
}

/// Open and authenticate a session to `h`, within its connect timeout.
pub async fn open(h: &HostConfig) -> Result<Handle, RemoteError> {
    let endpoint = h.target.to_string();
    let (connected, verdict) = handshake(h, h.known_hosts.clone()).await;
    let mut handle = match connected {
        Err(_) => {
            return Err(RemoteError::Timeout {
                endpoint,
                what: "connect".into(),
                after: h.connect_timeout,
            })
        }
        Ok(Ok(handle)) => handle,
        Ok(Err(e)) => {
            return Err(match verdict {
                Some(KeyVerdict::Unknown(key)) => RemoteError::UnknownHostKey {
                    endpoint,
                    host: h.target.host.clone(),
                    port: h.target.port,
                    key_type: key.algorithm().to_string(),
                    short: key
                        .algorithm()
                        .to_string()
                        .trim_start_matches("ssh-")
                        .to_string(),
                    fingerprint: fingerprint(&key),
                    known_hosts: h.known_hosts.clone(),
                },
                Some(KeyVerdict::Changed(key, line)) => RemoteError::ChangedHostKey {
                    endpoint,
                    key_type: key.algorithm().to_string(),
                    fingerprint: fingerprint(&key),
                    known_hosts: h.known_hosts.clone(),
                    line,
                },
                Some(KeyVerdict::Error(detail)) => RemoteError::HostKeyCheck { endpoint, detail },
                _ => RemoteError::Connect {
                    endpoint,
                    detail: e.to_string(),
                },
            });
        }
    };
    let auth = tokio::time::timeout(h.connect_timeout, authenticate(&mut handle, h)).await;
    match auth {
        Err(_) => Err(RemoteError::Timeout {
            endpoint,
            what: "authentication".into(),
            after: h.connect_timeout,
        }),
        Ok(Err(detail)) => Err(RemoteError::Auth { endpoint, detail }),
        Ok(Ok(())) => Ok(handle),
    }
}

async fn authenticate(handle: &mut Handle, h: &HostConfig) -> Result<(), String> {
    let user = h.target.user.clone();
    if let Some(path) = &h.identity {
        let key = keys::load_secret_key(path, None)
            .map_err(|e| format!("cannot load identity {}: {e}", path.display()))?;
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| e.to_string())?
            .flatten();
        let res = handle
            .authenticate_publickey(
                user.clone(),
                PrivateKeyWithHashAlg::new(Arc::new(key), hash),
            )
            .await
            .map_err(|e| e.to_string())?;
        return if res.success() {
            Ok(())
        } else {
            Err(format!(
                "the server refused key {} for user {user} (is its public key in that user's authorized_keys?)",
                path.display()
            ))
        };
    }
    let mut agent = keys::agent::client::AgentClient::connect_env()
        .await
        .map_err(|e| format!("no identity configured and no ssh-agent ({e})"))?;
    let ids = agent
        .request_identities()
        .await
        .map_err(|e| format!("ssh-agent: {e}"))?;
    for id in ids {
        let keys::agent::AgentIdentity::PublicKey { key, .. } = id else {
            continue;
        };
        let hash = handle
            .best_supported_rsa_hash()
            .await
            .map_err(|e| e.to_string())?
            .flatten();
        if let Ok(res) = handle
            .authenticate_publickey_with(user.clone(), key, hash, &mut agent)
            .await
        {
            if res.success() {
                return Ok(());
            }
        }
    }
    Err(format!("no key in ssh-agent was accepted for user {user}"))
}

/// Fetch the key a server offers without trusting it (for `cyrdeck trust`).
pub async fn scan_host_key(h: &HostConfig) -> Result<PublicKey, RemoteError> {
    // an empty known_hosts makes every key "unknown": the verdict carries it
    match handshake(h, PathBuf::from("/dev/null")).await.1 {
        Some(KeyVerdict::Unknown(k)) => Ok(k),
        _ => Err(RemoteError::Connect {
            endpoint: h.target.to_string(),
            detail: "no host key received".into(),
        }),
    }
}
