//! What a failover (and a promote or reintegrate) decides at its precheck
//! and carries from step to step: the roles, and the journalled memo.

use crate::ops::error::StepError;
use serde::{Deserialize, Serialize};

/// What the precheck found and every later step acts on.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Roles {
    pub old_master: String,
    pub new_master: String,
    pub channel: String,
    /// The old master's sync_server (the new master's client connects to it).
    pub old_sync: (String, u16),
    /// The replica's sync_server, as the old master's config names it (undo).
    pub new_sync: (String, u16),
    pub started_at: f64,
    pub writes_stopped_at: Option<f64>,
    pub writes_started_at: Option<f64>,
    /// Precheck override: held entries do not stop the failover.
    #[serde(default)]
    pub allow_held: bool,
    /// Per host, read at the precheck: configdirectory and
    /// sync_shutdown_file (the scripts' paths; they do not change mid-run).
    #[serde(default)]
    pub dirs: std::collections::BTreeMap<String, (String, String)>,
    /// The replica refused writes before the run (an earlier failover's
    /// fence): an undo leaves it fenced.
    #[serde(default)]
    pub new_fenced_before: bool,
    /// The new master's heartbeat INBOX last UID after the canary delivery
    /// (the token the old master must reach).
    #[serde(default)]
    pub canary_uid: Option<u32>,
    /// The pair's other replicas (a pair with several): each keeps its
    /// channel name and moves to the new master with it.
    #[serde(default)]
    pub others: Vec<OtherReplica>,
}

/// A replica of the pair that is not the failover's target.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct OtherReplica {
    pub host: String,
    pub channel: String,
    /// Its sync_server as the masters reach it (the old master's
    /// `CH_sync_host`/`_port`).
    pub sync: (String, u16),
}

impl Roles {
    /// These roles acting on another channel (an other replica's).
    pub(super) fn on_channel(&self, channel: &str) -> Roles {
        Roles {
            channel: channel.to_string(),
            ..self.clone()
        }
    }
    /// Every channel the pair replicates on: the target's first.
    pub fn channels(&self) -> Vec<String> {
        std::iter::once(self.channel.clone())
            .chain(self.others.iter().map(|o| o.channel.clone()))
            .collect()
    }
    /// Where `channel` sends on the old master: the target's sync_server
    /// for the target's channel, an other replica's for its own.
    pub(super) fn sync_of_channel(&self, channel: &str) -> (String, u16) {
        self.others
            .iter()
            .find(|o| o.channel == channel)
            .map(|o| o.sync.clone())
            .unwrap_or_else(|| self.new_sync.clone())
    }
    /// Every host that replicates from the new master afterwards.
    pub(super) fn new_replicas(&self) -> Vec<String> {
        std::iter::once(self.old_master.clone())
            .chain(self.others.iter().map(|o| o.host.clone()))
            .collect()
    }
}

pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// What the failover's steps leave for each other (journalled with the run).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Memo {
    /// The operator's `--allow-held`, fixed when the run starts.
    #[serde(default)]
    pub allow_held: bool,
    /// What the precheck decided; each later step updates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Roles>,
    /// upgrade-via-failover: the releases it moves between.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Releases>,
}

impl Memo {
    pub fn roles(&self) -> Result<Roles, StepError> {
        self.roles
            .clone()
            .ok_or_else(|| "no roles recorded: the precheck has not run".into())
    }
    pub fn save_roles(&mut self, r: &Roles) {
        self.roles = Some(r.clone());
    }
}

/// The releases an upgrade moves between (in the journal; for the operator
/// reading it).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Releases {
    pub from: String,
    pub to: String,
}
