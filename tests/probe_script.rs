//! The probe run locally on a scratch sync directory (no Cyrus needed):
//! the Queue view's window (distinct entries in queue order with the line
//! of their first occurrence) and the per-user counts over the WHOLE queue
//! that let a filter reach beyond the window, read back by the parser.

use cyrdeck::cyrus::probe::{parse, SCRIPT};
use std::path::PathBuf;
use std::process::Command;

fn scratch() -> PathBuf {
    let d = std::env::temp_dir().join(format!("cyrdeck-probe-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("config/sync")).unwrap();
    std::fs::write(
        d.join("imapd.conf"),
        format!("configdirectory: {}\n", d.join("config").display()),
    )
    .unwrap();
    d
}

#[test]
fn per_user_counts_cover_the_whole_queue_beyond_the_window() {
    let d = scratch();
    let sync = d.join("config/sync");
    std::fs::write(sync.join("log-run"), "APPEND user.alice\nUSER bob\n").unwrap();
    let mut log = String::new();
    // 600 distinct entries: more than the 500 the window lists
    for i in 0..600 {
        log.push_str(&format!("APPEND user.u{i:04}\n"));
    }
    // bu0690 only beyond the window, in every entry form the probe reads
    log.push_str("APPEND user.bu0690\nMAILBOX \"user.bu0690.Sent Items\"\n");
    log.push_str("SEEN bu0690 user.bu0690\nAPPEND user.bu0690\nAPPEND user.alice.Sent\n");
    log.push_str("QUOTA user.carol\n");
    // a virtual-domain user, as Cyrus logs one (issue 24: it counted for no one)
    log.push_str("APPEND example.com!user.dora\nMAILBOX example.com!user.dora.Sent\n");
    std::fs::write(sync.join("log"), &log).unwrap();
    let out = Command::new("sh")
        .args(["-c", SCRIPT, "cyrdeck-probe"])
        .arg(d.join("imapd.conf"))
        .args([
            "/nonexistent/cyrus.conf",
            "/nonexistent/bin",
            "",
            "",
            "0",
            "0",
        ])
        .args(["1000", "", ""])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let r = parse(&out.stdout).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let groups = &r.pending_groups[""];
    assert_eq!(groups.len(), 500, "the window");
    assert_eq!(r.pending_distinct[""], 609);
    // count, line of the first occurrence (log-run then log), entry
    assert_eq!(groups[0], (1, 1, "APPEND user.alice".to_string()));
    assert_eq!(groups[1], (1, 2, "USER bob".to_string()));
    assert_eq!(groups[2], (1, 3, "APPEND user.u0000".to_string()));
    assert!(!groups.iter().any(|g| g.2.contains("bu0690")));
    let users: std::collections::BTreeMap<&str, u64> = r.pending_users[""]
        .iter()
        .map(|(n, u)| (u.as_str(), *n))
        .collect();
    assert_eq!(users["bu0690"], 4, "{users:?}");
    assert_eq!(users["alice"], 2);
    assert_eq!(users["bob"], 1);
    assert_eq!(users["carol"], 1);
    assert_eq!(users["dora@example.com"], 2, "{users:?}");
    assert_eq!(r.pending_users_total[""], 605);
    // busiest first
    let counts: Vec<u64> = r.pending_users[""].iter().map(|(n, _)| *n).collect();
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    let _ = std::fs::remove_dir_all(&d);
}
