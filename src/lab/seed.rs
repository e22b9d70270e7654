//! `cyrdeck lab seed`: users, folders (hostile names included) and mail on
//! the lab master. Idempotent: CREATE of an existing folder is accepted and
//! LMTP redelivery of the same Message-ID is suppressed by Cyrus's duplicate db.

use super::layout::Role;
use super::mail::{lmtp_deliver, message, Imap};
use super::Lab;
use color_eyre::eyre::{Result, WrapErr};
use serde::Serialize;

pub const USERS: &[&str] = &["alice", "bob", "carol", "dave"];

/// Folder names an attacker-controlled client could create. Each must be
/// stored, listed and passed to remote tools without ever being executed.
pub fn hostile_folders(marker: &str) -> Vec<String> {
    vec![
        "With Space".into(),
        "Quote\"d".into(),
        "it's".into(),
        format!("$(touch {marker})"),
        "semi;colon".into(),
        "back`tick`".into(),
        "Entwürfe".into(),
        "new\nline".into(),
    ]
}

/// The marker file hostile names try to create.
pub const PWNED_MARKER: &str = "/tmp/pwned";

#[derive(Serialize, Default)]
pub struct SeedReport {
    pub users: Vec<String>,
    pub folders_created: Vec<String>,
    /// Folders Cyrus refused, with its reason (e.g. control characters).
    pub folders_refused: Vec<(String, String)>,
    pub messages_delivered: usize,
}

pub fn seed(lab: &Lab, per_user: usize) -> Result<SeedReport> {
    let m = lab.layout.instance(Role::Master);
    let addr = Role::Master.address();
    let mut report = SeedReport::default();
    let mut admin = Imap::login(addr, m.imap_port, "admin").wrap_err("IMAP login as admin")?;
    for u in USERS {
        admin.create(&format!("user/{u}"))?;
        report.users.push(u.to_string());
    }
    admin.logout();

    for u in USERS {
        let mut imap = Imap::login(addr, m.imap_port, u)?;
        let mut folders = vec!["Sent".to_string(), "Archive".to_string()];
        if *u == "alice" {
            folders.extend(hostile_folders(PWNED_MARKER));
        }
        for f in folders {
            let name = format!("INBOX/{f}");
            match imap.create(&name) {
                Ok(()) => {
                    report.folders_created.push(format!("user/{u}/{f}"));
                    // APPEND is idempotent only per Message-ID at LMTP; keep
                    // folders to one seed message by checking emptiness.
                    if imap.message_count(&name)? == Some(0) {
                        let msg = message(
                            &format!("seed-folder-{u}-{}@lab", f.len()),
                            &format!("seed for {f}"),
                            "folder seed",
                        );
                        imap.append(&name, &msg)?;
                        report.messages_delivered += 1;
                    }
                }
                Err(e) => report
                    .folders_refused
                    .push((format!("user/{u}/{f}"), e.to_string())),
            }
        }
        imap.logout();
    }

    for i in 0..per_user {
        for u in USERS {
            let msg = message(
                &format!("seed-{i}-{u}@lab"),
                &format!("seed message {i}"),
                "hello from the lab",
            );
            lmtp_deliver(addr, m.lmtp_port, &[u], &msg)?;
            report.messages_delivered += 1;
        }
    }
    Ok(report)
}
