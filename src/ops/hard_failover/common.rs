//! What the hard failover's steps share: their timeouts, the sync_server
//! check before a one-shot sync_client, and pausing writes on the new
//! master.

use super::divergence::Divergence;
use crate::ops::error::StepError;
use crate::ops::failover::{self, Act, Roles};
use crate::ops::host_probe::probe_host;
use crate::ops::StepContext;
use serde::{Deserialize, Serialize};
use std::time::Duration;

pub(crate) const CHECK_TIMEOUT: Duration = Duration::from_secs(300);
pub(crate) const COPY_TIMEOUT: Duration = Duration::from_secs(600);

/// `to`'s sync_server must answer `from` before a one-shot sync_client
/// runs there: sync_client (3.6 to 3.12) retries a refused connection
/// forever (15 s doubling; its `-o` "connect once" is parsed and never
/// read), so the step would wait out its whole timeout (lab: the hard
/// matrix's copy-back with the new master's Cyrus stopped).
pub(crate) async fn sync_server_answers(
    cx: &StepContext<'_>,
    from: &str,
    to: &str,
    out: &mut Vec<String>,
) -> Result<(), StepError> {
    let rep = probe_host(cx, to).await?;
    let (host, port) = failover::precheck::sync_server_of(cx, to, &rep)?;
    match failover::precheck::reaches(cx, from, &host, port).await {
        Ok(banner) => {
            out.push(format!("  {to}'s sync_server {host}:{port} answers {from}: {banner}"));
            Ok(())
        }
        Err(e) => Err(format!(
            "{to}'s sync_server {host}:{port} does not answer {from} ({e}): nothing synced; start it, then resume"
        ).into()),
    }
}

/// This run's fence on the new master (`pause`), or lifted (only this
/// run's: a fence of anything else stays).
pub(crate) async fn pause_writes_on_new(
    cx: &StepContext<'_>,
    r: &Roles,
    out: &mut Vec<String>,
    pause: bool,
) -> Result<String, StepError> {
    let act = if pause {
        Act::StopWrites { replace: false }
    } else {
        Act::StartWrites { any: false }
    };
    failover::script(cx, &r.new_master, act, r, &r.old_sync, out).await
}

/// What promote and reintegrate leave for their later steps (journalled).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Memo {
    /// Who is master now and what each host's config is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Roles>,
    /// reintegrate: the survey's report (copy-back and verify act on it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<Divergence>,
    /// reintegrate, soft UID policy: the users copy-back injected, which
    /// the rebuild re-syncs on the old master.
    #[serde(default)]
    pub soft_users: Vec<String>,
}

impl Memo {
    pub(super) fn roles(&self) -> Result<Roles, StepError> {
        self.roles
            .clone()
            .ok_or_else(|| "no roles recorded: the precheck has not run".into())
    }
    pub(super) fn save_roles(&mut self, r: &Roles) {
        self.roles = Some(r.clone());
    }
}
