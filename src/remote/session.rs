//! Opening one authenticated SSH session: strict known_hosts, then key file
//! or ssh-agent.

use super::error::RemoteError;
use super::known_hosts::{self, KnownHosts, TrustDecision, Verdict};
use crate::config::HostConfig;
use russh::client;
use russh::keys::{self, HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the host-key check decided about the offered key, kept so a
/// refused handshake can say why (and `trust` can see the key).
#[derive(Clone, Debug)]
enum KeyVerdict {
    Judged(PublicKey, Verdict),
    Error(String),
}

pub struct Verifier {
    host: String,
    port: u16,
    known: Arc<KnownHosts>,
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
                KeyVerdict::Judged(key.clone(), self.known.verdict(&self.host, self.port, key))
            }
            PublicKeyOrCertificate::Certificate(_) => {
                KeyVerdict::Error("host certificates are not supported; list the plain key".into())
            }
        };
        let ok = matches!(verdict, KeyVerdict::Judged(_, Verdict::Known { .. }));
        *self.verdict.lock().unwrap() = Some(verdict);
        Ok(ok)
    }
}

pub type Handle = client::Handle<Verifier>;

pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

fn ssh_config(h: &HostConfig, known: &KnownHosts) -> client::Config {
    let default = russh::Preferred::DEFAULT;
    let key = known.preferred_order(&h.target.host, h.target.port, &default.key);
    client::Config {
        preferred: russh::Preferred {
            key: key.into(),
            ..default
        },
        // a dead peer is noticed within ~45 s even with no command running
        keepalive_interval: Some(Duration::from_secs(15)),
        keepalive_max: 3,
        inactivity_timeout: None,
        nodelay: true,
        ..Default::default()
    }
}

type Connected = Result<Result<Handle, russh::Error>, tokio::time::error::Elapsed>;

/// TCP connect and key exchange against `known`, within the connect
/// timeout; returns the outcome and the host-key verdict.
async fn handshake(h: &HostConfig, known: Arc<KnownHosts>) -> (Connected, Option<KeyVerdict>) {
    let verdict = Arc::new(Mutex::new(None));
    let config = ssh_config(h, &known);
    let verifier = Verifier {
        host: h.target.host.clone(),
        port: h.target.port,
        known,
        verdict: verdict.clone(),
    };
    let addr = (h.target.host.clone(), h.target.port);
    let connected = tokio::time::timeout(
        h.connect_timeout,
        client::connect(Arc::new(config), addr, verifier),
    )
    .await;
    let v = verdict.lock().unwrap().clone();
    (connected, v)
}

/// The host's known_hosts, read once per handshake (an unreadable file is
/// a refusal, never an empty one).
#[allow(clippy::result_large_err)] // the RemoteError every transport call returns
fn load_known(h: &HostConfig) -> Result<Arc<KnownHosts>, RemoteError> {
    KnownHosts::load(&h.known_hosts)
        .map(Arc::new)
        .map_err(|detail| RemoteError::HostKeyCheck {
            endpoint: h.target.to_string(),
            detail,
        })
}

/// The refusal for a key the file does not accept.
fn refusal(h: &HostConfig, known: &KnownHosts, key: &PublicKey, v: Verdict) -> RemoteError {
    let endpoint = h.target.to_string();
    let key_type = key.algorithm().to_string();
    match v {
        Verdict::Unknown | Verdict::Known { .. } => RemoteError::UnknownHostKey {
            endpoint,
            host: h.target.host.clone(),
            port: h.target.port,
            short: key_type.trim_start_matches("ssh-").to_string(),
            key_type,
            fingerprint: fingerprint(key),
            known_hosts: h.known_hosts.clone(),
        },
        Verdict::Changed { stored } => RemoteError::ChangedHostKey {
            endpoint,
            key_type,
            fingerprint: fingerprint(key),
            stored: known.describe(&stored),
            lookup: known_hosts::lookup_name(&h.target.host, h.target.port),
            known_hosts: h.known_hosts.clone(),
        },
        Verdict::Revoked { line } => RemoteError::RevokedHostKey {
            endpoint,
            key_type,
            fingerprint: fingerprint(key),
            known_hosts: h.known_hosts.clone(),
            line,
        },
    }
}

/// Open and authenticate a session to `h`, within its connect timeout.
pub async fn open(h: &HostConfig) -> Result<Handle, RemoteError> {
    let endpoint = h.target.to_string();
    let known = load_known(h)?;
    let (connected, verdict) = handshake(h, known.clone()).await;
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
                Some(KeyVerdict::Judged(key, v)) if !matches!(v, Verdict::Known { .. }) => {
                    refusal(h, &known, &key, v)
                }
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

/// Fetch the key a server offers without trusting it (for `cyrdeck
/// trust`), asking for the algorithms already recorded for it first, and
/// what its known_hosts says about that key.
pub async fn scan_host_key(h: &HostConfig) -> Result<(PublicKey, TrustDecision), RemoteError> {
    let known = load_known(h)?;
    match handshake(h, known.clone()).await.1 {
        Some(KeyVerdict::Judged(k, _)) => {
            let decision = known.trust_decision(&h.target.host, h.target.port, &k);
            Ok((k, decision))
        }
        Some(KeyVerdict::Error(detail)) => Err(RemoteError::HostKeyCheck {
            endpoint: h.target.to_string(),
            detail,
        }),
        None => Err(RemoteError::Connect {
            endpoint: h.target.to_string(),
            detail: "no host key received".into(),
        }),
    }
}
