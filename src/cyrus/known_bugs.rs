//! Cyrus bugs a site meets on a given release, recognised from what a tool
//! printed or logged, each with what to do. Lab-measured where it says so.

/// A known Cyrus bug behind a tool's failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KnownBug {
    /// What the tool prints (a substring of its stderr or syslog line).
    pub signature: &'static str,
    pub explanation: &'static str,
}

/// cyrus-imapd #4611 (3.6 only; fixed on 3.8 by the lock-ordering work of
/// #4359, not backported to Debian 12's 3.6.1): any change to a mailbox
/// with no owner (a shared folder, `shared.*` or a domain's) asserts in
/// mboxlist.c. Lab, Debian 12's 3.6.1-4+deb12u5: `sync_client -m` of a
/// shared folder that exists on both hosts dies with it (exit 70); the
/// rolling client dies on the same entry, and master restarts it until it
/// gives up, so ALL replication stops behind it. A shared folder only one
/// host has is copied whole and does not hit it.
pub const SHARED_FOLDER_ASSERT: KnownBug = KnownBug {
    signature: "user_isnamespacelocked",
    explanation: "Cyrus 3.6 cannot sync a change to a shared folder (cyrus-imapd issue #4611, \
                  fixed in 3.8; not in Debian 12's 3.6.1): the sync_client process dies on it. \
                  Upgrade both hosts to 3.8 or later, or copy the folder's messages by IMAP",
};

const ALL: &[KnownBug] = &[SHARED_FOLDER_ASSERT];

/// The known bug `text` (a tool's output) shows, if any.
pub fn recognise(text: &str) -> Option<&'static KnownBug> {
    ALL.iter().find(|b| text.contains(b.signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shared_folder_assertion_is_recognised() {
        let line = "Fatal error: Internal error: assertion failed: imap/mboxlist.c: 1088: user_isnamespacelocked(userid)";
        assert_eq!(recognise(line), Some(&SHARED_FOLDER_ASSERT));
        assert_eq!(recognise("sync_client: connection refused"), None);
    }
}
