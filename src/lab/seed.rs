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

/// What `lab seed --users N` built: the shape of a real site, quickly.
#[derive(Serialize, Default)]
pub struct BulkReport {
    pub users: usize,
    /// Mailboxes on the master afterwards (INBOXes and folders).
    pub mailboxes_created: usize,
    pub messages_delivered: usize,
    pub seconds: f64,
}

/// The name of bulk user `i` (`bu00042`): sorted as numbered.
pub fn bulk_user(i: usize) -> String {
    format!("bu{i:05}")
}

/// How many commands go out before their answers are read: one round trip
/// per window instead of one per mailbox.
const PIPELINE: usize = 200;
/// Recipients per LMTP transaction (one DATA for all).
const RCPTS: usize = 100;

/// `users` users (`bu00000`...), each with INBOX and `folders` folders
/// (`F1`...), and `messages` messages in each INBOX: admin CREATEs
/// pipelined on one IMAP connection, mail as LMTP transactions of 100
/// recipients. Idempotent: an existing mailbox is fine, a redelivered
/// Message-ID is suppressed by Cyrus's duplicate db.
pub fn bulk(lab: &Lab, users: usize, folders: usize, messages: usize) -> Result<BulkReport> {
    let started = std::time::Instant::now();
    let m = lab.layout.instance(Role::Master);
    let addr = Role::Master.address();
    let mut names = Vec::with_capacity(users * (folders + 1));
    for i in 0..users {
        let u = bulk_user(i);
        names.push(format!("user/{u}"));
        names.extend((1..=folders).map(|f| format!("user/{u}/F{f}")));
    }
    let mut admin = Imap::login(addr, m.imap_port, "admin").wrap_err("IMAP login as admin")?;
    for window in names.chunks(PIPELINE) {
        admin.create_many(window)?;
    }
    admin.logout();
    let mut delivered = 0;
    let all: Vec<String> = (0..users).map(bulk_user).collect();
    for (g, group) in all.chunks(RCPTS).enumerate() {
        let rcpts: Vec<&str> = group.iter().map(String::as_str).collect();
        for n in 0..messages {
            let msg = message(
                &format!("bulk-{n}-{g}@lab"),
                &format!("bulk message {n}"),
                "hello from the lab",
            );
            lmtp_deliver(addr, m.lmtp_port, &rcpts, &msg)?;
            delivered += rcpts.len();
        }
    }
    Ok(BulkReport {
        users,
        mailboxes_created: names.len(),
        messages_delivered: delivered,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The site profile's users: virtual-domain users, one on the second
/// partition (`lab up --profile site`).
pub const SITE_USERS: &[(&str, &str)] = &[
    ("alice@example.com", "default"),
    ("bob@example.com", "default"),
    ("carol@example.org", "second"),
];

/// The site profile's shared folders (admin namespace) and the group that
/// may read each: groups every Debian root has (Cyrus's unix auth refuses
/// a `group:` identifier the host does not know: "Invalid identifier").
pub const SITE_SHARED: &[(&str, &str)] = &[
    ("shared/support@example.com", "group:staff"),
    ("shared/announce", "group:users"),
];

/// `lab seed` on a site-profile lab: domain users (one on the second
/// partition) with folders, shared folders with group ACLs, mail in each.
pub fn site(lab: &Lab, per_user: usize) -> Result<SeedReport> {
    let m = lab.layout.instance(Role::Master);
    let addr = Role::Master.address();
    let mut report = SeedReport::default();
    let mut admin = Imap::login(addr, m.imap_port, "admin").wrap_err("IMAP login as admin")?;
    for (u, partition) in SITE_USERS {
        let (local, domain) = u.split_once('@').unwrap_or((u, ""));
        admin.create_on(&format!("user/{local}@{domain}"), partition)?;
        for f in ["Sent", "Archive"] {
            admin.create_on(&format!("user/{local}/{f}@{domain}"), partition)?;
            report
                .folders_created
                .push(format!("user/{local}/{f}@{domain}"));
        }
        report.users.push(u.to_string());
    }
    for (folder, group) in SITE_SHARED {
        admin.create(folder)?;
        admin.set_acl(folder, group, "lrs")?;
        // the admin posts into it (an admin holds no rights of its own there)
        admin.set_acl(folder, "admin", "lrswipkxtecda")?;
        if admin.message_count(folder)? == Some(0) {
            admin.append(
                folder,
                &message(&format!("seed-{folder}@lab"), "shared seed", "for the team"),
            )?;
            report.messages_delivered += 1;
        }
        report.folders_created.push(folder.to_string());
    }
    admin.logout();
    for i in 0..per_user {
        for (u, _) in SITE_USERS {
            let msg = message(
                &format!("seed-{i}-{u}"),
                &format!("seed message {i}"),
                "hello from the site lab",
            );
            lmtp_deliver(addr, m.lmtp_port, &[u], &msg)?;
            report.messages_delivered += 1;
        }
    }
    Ok(report)
}
