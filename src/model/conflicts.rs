//! What an integrity check finds: per-mailbox and per-message differences
//! between a master and a replica. The check itself fills this (integrity
//! check issue); the console's Conflicts view renders it.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    GuidConflict,
    UidvalidityDiffers,
    MailboxOnlyOnMaster,
    MailboxOnlyOnReplica,
    MissingOnReplica,
    MissingOnMaster,
    FlagsDiffer,
    /// Same messages and flags, but the mailbox state (HIGHESTMODSEQ,
    /// annotations) differs.
    MetadataDiffers,
    /// Still covered by pending sync-log entries: not (yet) a divergence.
    InFlight,
    /// A delayed-delete mailbox (`DELETED.*`) on one side only: `cyr_expire`
    /// purges it on each host on its own schedule (purges are not
    /// replicated). Not live mail: never a divergence, never blocks a
    /// failover.
    DeletedPurgedOnOneSide,
    /// The mailbox's ACL differs (mailboxes.db): who may read or change it
    /// after a failover.
    AclDiffers,
    /// The same name with another mailbox uniqueid: deleted and created
    /// again on one side.
    MailboxRecreated,
    /// A quota root's limits differ (or the root is on one side only):
    /// after a failover the user would be held to the other limit.
    QuotaDiffers,
    /// A user's subscribed folders differ: what their client shows.
    SubscriptionsDiffer,
    /// The sieve script lmtpd runs for a user differs (or a script source
    /// in the sieve directory): filters and vacation replies.
    SieveDiffers,
    /// A mailbox's annotations (METADATA) in annotations.db differ: the
    /// entry, whose, and both values.
    AnnotationsDiffer,
    /// A user's seen state of a folder they do not own (the user's seen
    /// db; an owner's own is the \Seen flag): the folder and both sides'
    /// seen UIDs.
    SeenDiffers,
}

impl DiffKind {
    /// Every kind, in declaration order (the metrics export each one, zero
    /// included). `all_is_complete` below fails to compile when a kind is
    /// added without being listed here.
    pub const ALL: [DiffKind; 17] = [
        DiffKind::GuidConflict,
        DiffKind::UidvalidityDiffers,
        DiffKind::MailboxOnlyOnMaster,
        DiffKind::MailboxOnlyOnReplica,
        DiffKind::MissingOnReplica,
        DiffKind::MissingOnMaster,
        DiffKind::FlagsDiffer,
        DiffKind::MetadataDiffers,
        DiffKind::InFlight,
        DiffKind::DeletedPurgedOnOneSide,
        DiffKind::AclDiffers,
        DiffKind::MailboxRecreated,
        DiffKind::QuotaDiffers,
        DiffKind::SubscriptionsDiffer,
        DiffKind::SieveDiffers,
        DiffKind::AnnotationsDiffer,
        DiffKind::SeenDiffers,
    ];

    pub fn label(self) -> &'static str {
        match self {
            DiffKind::GuidConflict => "guid_conflict",
            DiffKind::UidvalidityDiffers => "uidvalidity_differs",
            DiffKind::MailboxOnlyOnMaster => "mailbox_only_on_master",
            DiffKind::MailboxOnlyOnReplica => "mailbox_only_on_replica",
            DiffKind::MissingOnReplica => "missing_on_replica",
            DiffKind::MissingOnMaster => "missing_on_master",
            DiffKind::FlagsDiffer => "flags_differ",
            DiffKind::MetadataDiffers => "metadata_differs",
            DiffKind::InFlight => "in_flight",
            DiffKind::DeletedPurgedOnOneSide => "deleted_purged_on_one_side",
            DiffKind::AclDiffers => "acl_differs",
            DiffKind::MailboxRecreated => "mailbox_recreated",
            DiffKind::QuotaDiffers => "quota_differs",
            DiffKind::SubscriptionsDiffer => "subscriptions_differ",
            DiffKind::SieveDiffers => "sieve_differs",
            DiffKind::AnnotationsDiffer => "annotations_differ",
            DiffKind::SeenDiffers => "seen_differs",
        }
    }
    /// Live data differs (what repair, readiness and exit codes care about).
    pub fn is_divergence(self) -> bool {
        !matches!(self, DiffKind::InFlight | DiffKind::DeletedPurgedOnOneSide)
    }
}

/// Is this internal name a delayed-delete mailbox (`DELETED.user.x...`,
/// `domain!DELETED.user.x...`; Cyrus's default `deletedprefix`)?
pub fn is_delayed_delete(internal: &str) -> bool {
    let local = internal
        .rsplit_once('!')
        .map(|(_, l)| l)
        .unwrap_or(internal);
    local.starts_with("DELETED.")
}

/// One message as one side holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MessageSide {
    pub uid: u32,
    pub guid: String,
    pub flags: Vec<String>,
    pub modseq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Difference {
    /// External mailbox name (`user/alice/Sent`).
    pub mailbox: String,
    pub kind: DiffKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    pub master: Option<MessageSide>,
    pub replica: Option<MessageSide>,
    pub detail: String,
}

impl Difference {
    /// On a pair with several replicas, name the replica this difference
    /// is with: a `[host] ` prefix of the detail (its JSON shape is kept).
    pub fn tag_replica(&mut self, host: &str) {
        self.detail = format!("[{host}] {}", self.detail);
    }
    /// The replica `tag_replica` named, if any.
    pub fn replica_host(&self) -> Option<&str> {
        let rest = self.detail.strip_prefix('[')?;
        let (host, _) = rest.split_once("] ")?;
        (!host.is_empty() && !host.contains(char::is_whitespace)).then_some(host)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    pub pair: String,
    pub finished_at: i64,
    pub mailboxes_checked: u64,
    pub differences: Vec<Difference>,
    /// Mailboxes that could not be read (the check could not decide them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    /// The master's mailboxes as the check listed them (external,
    /// decoded): the console's Tab completion. Not part of the JSON shape.
    #[serde(skip)]
    pub mailboxes: Vec<String>,
}

impl CheckResult {
    /// Divergences (in-flight entries excluded).
    pub fn divergent(&self) -> impl Iterator<Item = &Difference> {
        self.differences.iter().filter(|d| d.kind.is_divergence())
    }
    pub fn count(&self, kind: DiffKind) -> usize {
        self.differences.iter().filter(|d| d.kind == kind).count()
    }
    pub fn in_sync(&self) -> bool {
        self.divergent().next().is_none() && self.errors.is_empty()
    }
    /// 0 in sync, 1 differences, 2 could not decide (errors).
    pub fn exit_code(&self) -> i32 {
        if !self.errors.is_empty() {
            2
        } else if self.divergent().next().is_some() {
            1
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tagged_replica_is_read_back() {
        let mut d = Difference {
            mailbox: "user/a".into(),
            kind: DiffKind::FlagsDiffer,
            uid: Some(1),
            master: None,
            replica: None,
            detail: "flags differ".into(),
        };
        assert_eq!(d.replica_host(), None);
        d.tag_replica("replica2");
        assert_eq!(d.replica_host(), Some("replica2"));
        assert_eq!(d.detail, "[replica2] flags differ");
    }

    /// Stops compiling when a kind is added: add it to `DiffKind::ALL` too.
    #[test]
    fn all_is_complete() {
        let pos = |k: DiffKind| match k {
            DiffKind::GuidConflict => 0,
            DiffKind::UidvalidityDiffers => 1,
            DiffKind::MailboxOnlyOnMaster => 2,
            DiffKind::MailboxOnlyOnReplica => 3,
            DiffKind::MissingOnReplica => 4,
            DiffKind::MissingOnMaster => 5,
            DiffKind::FlagsDiffer => 6,
            DiffKind::MetadataDiffers => 7,
            DiffKind::InFlight => 8,
            DiffKind::DeletedPurgedOnOneSide => 9,
            DiffKind::AclDiffers => 10,
            DiffKind::MailboxRecreated => 11,
            DiffKind::QuotaDiffers => 12,
            DiffKind::SubscriptionsDiffer => 13,
            DiffKind::SieveDiffers => 14,
            DiffKind::AnnotationsDiffer => 15,
            DiffKind::SeenDiffers => 16,
        };
        for (i, k) in DiffKind::ALL.iter().enumerate() {
            assert_eq!(pos(*k), i, "{k:?}");
        }
    }
}
