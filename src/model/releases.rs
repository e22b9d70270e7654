//! Mixed Cyrus releases in one pair. Upstream's position: a pair runs one
//! release; a replica NEWER than its master is supported only while
//! upgrading through replication (upgrade the replica, fail over to it,
//! upgrade the old master). Replicating to an OLDER release is not
//! supported: the newer sync protocol and mailbox formats may not be
//! understood (3.10 writes cyrus.index minor 19, which 3.6 cannot read).

use std::cmp::Ordering;

/// (major, minor, patch) from what a host reports: `cyr_info version`'s
/// "3.10.2-Debian-3.10.2-1+deb13u2", or a package version "3.6.1-4+deb12u5".
pub fn parse(version: &str) -> Option<(u32, u32, u32)> {
    // the probe's line is "cyrus-imapd 3.10.2-Debian-..."
    let version = version
        .split_whitespace()
        .find(|t| t.contains(|c: char| c.is_ascii_digit()) && t.contains('.'))?;
    let v = version.split_once(':').map_or(version, |(_, v)| v);
    let head = v.split(['-', '~', '+', ' ']).next()?;
    let mut it = head.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

/// "3.6.1" for any form parse() reads (else the text as given).
pub fn short(version: &str) -> String {
    parse(version).map_or_else(
        || version.to_string(),
        |v| format!("{}.{}.{}", v.0, v.1, v.2),
    )
}

/// How a master's and a replica's releases relate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mix {
    /// The same major.minor (patch levels may differ).
    Same,
    /// Replica newer: the upgrade direction, supported while upgrading.
    Upgrade { master: String, replica: String },
    /// Replica older: not supported.
    Downgrade { master: String, replica: String },
}

pub fn assess(master: &str, replica: &str) -> Option<Mix> {
    let (m, r) = (parse(master)?, parse(replica)?);
    let short = |v: (u32, u32, u32)| format!("{}.{}.{}", v.0, v.1, v.2);
    Some(match (m.0, m.1).cmp(&(r.0, r.1)) {
        Ordering::Equal => Mix::Same,
        Ordering::Less => Mix::Upgrade {
            master: short(m),
            replica: short(r),
        },
        Ordering::Greater => Mix::Downgrade {
            master: short(m),
            replica: short(r),
        },
    })
}

/// The operator's sentence for a mixed pair (None: one release).
pub fn describe(mix: &Mix, master_host: &str, replica_host: &str) -> Option<String> {
    match mix {
        Mix::Same => None,
        Mix::Upgrade { master, replica } => Some(format!(
            "mixed releases: master {master_host} runs Cyrus {master}, replica {replica_host} {replica} \
             (replica newer: supported only while upgrading; fail over to {replica_host}, then upgrade {master_host})"
        )),
        Mix::Downgrade { master, replica } => Some(format!(
            "replica {replica_host} runs Cyrus {replica}, OLDER than master {master_host}'s {master}: \
             replication to an older release is not supported upstream; upgrade {replica_host}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_as_hosts_report_them() {
        assert_eq!(parse("3.10.2-Debian-3.10.2-1+deb13u2"), Some((3, 10, 2)));
        assert_eq!(parse("3.6.1-4+deb12u5"), Some((3, 6, 1)));
        assert_eq!(
            parse("cyrus-imapd 3.6.1-Debian-3.6.1-4+deb12u5"),
            Some((3, 6, 1))
        );
        assert_eq!(parse("1:3.8.2-1"), Some((3, 8, 2)));
        assert_eq!(parse("3.12.3-1~bpo13+1"), Some((3, 12, 3)));
        assert_eq!(parse("3.8"), Some((3, 8, 0)));
        assert_eq!(parse("garbage"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn direction_of_a_mixed_pair() {
        assert_eq!(assess("3.6.1-4", "3.6.2"), Some(Mix::Same));
        // 3.10 > 3.6: numeric, not lexical
        let up = assess("3.6.1", "3.10.2-Debian").unwrap();
        assert!(matches!(up, Mix::Upgrade { .. }));
        let text = describe(&up, "m", "r").unwrap();
        assert!(text.contains("supported only while upgrading"), "{text}");
        let down = assess("3.12.3", "3.10.2").unwrap();
        let text = describe(&down, "m", "r").unwrap();
        assert!(
            text.contains("OLDER") && text.contains("not supported"),
            "{text}"
        );
        assert_eq!(assess("x", "3.6.1"), None);
    }
}
