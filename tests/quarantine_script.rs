//! quarantine.sh run locally on a scratch sync directory (no Cyrus needed):
//! the user's lines are held, every other distinct line is requeued in ONE
//! locked append to `log` — also on a large backlog (defect 8 of the
//! runbook-engine issue: one `cyr_synclog` per line was killed by the step's
//! 300 s limit on a large queue and left its set-aside files behind) — the
//! count is verified and nothing is left aside.

use std::path::PathBuf;
use std::process::Command;

const SCRIPT: &str = include_str!("../src/ops/quarantine.sh");

fn scratch(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cyrdeck-qs-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(dir: &PathBuf, user: &str) -> (i32, String) {
    // no Cyrus here: the binary dir does not exist, so a script that still
    // shelled out to cyr_synclog per line would fail
    let out = Command::new("sh")
        .args([
            "-c",
            SCRIPT,
            "cyrdeck-quarantine",
            "/nonexistent/imapd.conf",
            "/nonexistent/bin",
        ])
        .arg(dir)
        .arg(user)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn a_large_backlog_is_requeued_in_one_pass_and_nothing_is_left_aside() {
    let d = scratch("big");
    let mut log = String::new();
    for i in 0..60_000 {
        log.push_str(&format!("APPEND user.u{i}\n"));
        if i % 1000 == 0 {
            log.push_str("APPEND user.alice\nMAILBOX \"user.alice.Sent Items\"\n");
        }
    }
    // duplicates of other users' lines are requeued once
    log.push_str("APPEND user.u7\nAPPEND user.u7\n");
    std::fs::write(d.join("log-run"), "USER alice\nAPPEND user.bob\n").unwrap();
    std::fs::write(d.join("log"), &log).unwrap();
    let (code, out) = run(&d, "alice");
    assert_eq!(code, 0, "{out}");
    let held = std::fs::read_to_string(d.join("held-alice")).unwrap();
    assert_eq!(held.lines().count(), 1 + 2 * 60, "{out}");
    assert!(held.lines().all(|l| l.contains("alice")));
    let requeued = std::fs::read_to_string(d.join("log")).unwrap();
    assert_eq!(requeued.lines().count(), 60_000 + 1, "{out}");
    assert!(!requeued.contains("alice"));
    assert!(
        out.contains("requeued 60001 distinct other entries"),
        "{out}"
    );
    let left: Vec<_> = std::fs::read_dir(&d)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("quarantine-") || n == "log-run")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 24: a virtual-domain user's entries are logged as
/// `example.com!user.bob...` (and `USER bob@example.com`): the script held
/// none of them ("0 pending entries name bob@example.com"), so the
/// quarantine of a domain user let the broken mailbox block everyone.
/// Another domain's bob, and a bob without a domain, are not his.
#[test]
fn a_domain_users_entries_are_held_and_no_one_elses() {
    let d = scratch("domain");
    std::fs::write(
        d.join("log"),
        "APPEND example.com!user.bob\nMAILBOX \"example.com!user.bob.Sent Items\"\nUSER bob@example.com\n\
         SEEN bob@example.com example.com!shared.support\n\
         APPEND example.org!user.bob\nAPPEND user.bob\nAPPEND example.com!user.bobby\n\
         APPEND example.com!user.j^doe\n",
    )
    .unwrap();
    let (code, out) = run(&d, "bob@example.com");
    assert_eq!(code, 0, "{out}");
    let held = std::fs::read_to_string(d.join("held-bob@example.com")).unwrap();
    assert_eq!(held.lines().count(), 4, "{held}");
    let requeued = std::fs::read_to_string(d.join("log")).unwrap();
    for l in [
        "APPEND example.org!user.bob",
        "APPEND user.bob",
        "APPEND example.com!user.bobby",
    ] {
        assert!(
            requeued.lines().any(|r| r == l),
            "{l} not requeued: {requeued}"
        );
    }
    // a dot in the local part is logged as ^
    let (code, out) = run(&d, "j.doe@example.com");
    assert_eq!(code, 0, "{out}");
    let held = std::fs::read_to_string(d.join("held-j.doe@example.com")).unwrap();
    assert_eq!(held.trim(), "APPEND example.com!user.j^doe", "{out}");
    let _ = std::fs::remove_dir_all(&d);
}

/// Issue 30 (5): nothing of the user's pending (it drained meanwhile): no
/// empty held file is left (release would refuse it, status would keep
/// listing it), and every other entry is still requeued.
#[test]
fn nothing_pending_leaves_no_empty_held_file() {
    let d = scratch("none");
    std::fs::write(d.join("log"), "APPEND user.bob\nAPPEND user.carol\n").unwrap();
    let (code, out) = run(&d, "alice");
    assert_eq!(code, 0, "{out}");
    assert!(!d.join("held-alice").exists(), "{out}");
    assert!(out.contains("no held file left"), "{out}");
    let requeued = std::fs::read_to_string(d.join("log")).unwrap();
    assert_eq!(requeued.lines().count(), 2, "{out}");
    let _ = std::fs::remove_dir_all(&d);
}
