//! Integrity-check cost on an in-sync pair of 1,000 users x 5 folders x 20
//! messages (5,000 mailboxes, 100,000 messages), in one run:
//! (1) cyrdeck check; (2) `sync_client -A` (Cyrus's own pass over every
//! user); (3) one raw read of every cyrus.index on each host over one SSH
//! exec (the floor: no check can read less); (4) a naive `ssh host
//! mbexamine MAILBOX` per mailbox on each side, 50 mailboxes timed and
//! extrapolated. Prints times and ratios (targets: (1) <= 0.25 x (2),
//! (1) <= 2 x (3)). The pair is seeded once and kept (DIR/check-bench-seeded).

mod support;
use support::median_of;

use cyrdeck::check::{self, CheckOptions, Scope};
use cyrdeck::config::Config;
use cyrdeck::lab::layout::Role;
use cyrdeck::lab::mail::{message, Imap};
use cyrdeck::lab::Lab;
use cyrdeck::poll::Poller;
use cyrdeck::remote::RemoteCommand;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USERS: usize = 1000;
const FOLDERS: [&str; 4] = ["Sent", "Drafts", "Archive", "Trash"];
const PER_FOLDER: usize = 20;

fn seed(lab: &Lab) {
    let marker = lab.layout.dir.join("check-bench-seeded");
    if marker.exists() {
        return;
    }
    let m = lab.layout.instance(Role::Master);
    let (addr, port) = (Role::Master.address(), m.imap_port);
    let started = Instant::now();
    let mut admin = Imap::login(addr, port, "admin").unwrap();
    for u in 0..USERS {
        admin.create(&format!("user/cb{u:04}")).unwrap();
    }
    admin.logout();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            std::thread::spawn(move || {
                for u in (t..USERS).step_by(2) {
                    let user = format!("cb{u:04}");
                    let mut imap = Imap::login(addr, port, &user).unwrap();
                    let mut boxes = vec!["INBOX".to_string()];
                    for f in FOLDERS {
                        let name = format!("INBOX/{f}");
                        imap.create(&name).unwrap();
                        boxes.push(name);
                    }
                    for b in &boxes {
                        // resumable: append only what a folder still lacks
                        let have = imap.message_count(b).unwrap().unwrap_or(0) as usize;
                        for i in have..PER_FOLDER {
                            let id = format!("cb-{user}-{}-{i}@bench", b.len());
                            imap.append(b, &message(&id, "bench", &id)).unwrap();
                        }
                    }
                    imap.logout();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    eprintln!(
        "seeded {} messages in {:.0?}",
        USERS * 5 * PER_FOLDER,
        started.elapsed()
    );
    std::fs::write(marker, "seeded\n").unwrap();
}

fn main() {
    let dir =
        std::env::var("CYRDECK_BENCH_LAB").unwrap_or_else(|_| "/var/tmp/cyrdeck-bench-lab".into());
    let lab = Lab::open(std::path::Path::new(&dir), Some(24500)).expect("open lab");
    lab.up().expect("lab up");
    seed(&lab);
    let cfg = Config::load(&lab.layout.config_file()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let conns = Poller::new(Arc::new(cfg.clone()), false).connections();
    let opts = CheckOptions {
        drain_wait: Duration::from_secs(120),
        exec_timeout: Duration::from_secs(600),
    };
    // wait until replication caught up and the pair checks clean
    let deadline = Instant::now() + Duration::from_secs(900);
    let run_check = || {
        rt.block_on(check::run(
            &cfg,
            &conns,
            "lab",
            &Scope::default(),
            &opts,
            &|_| {},
        ))
        .unwrap()
    };
    loop {
        let r = run_check();
        if r.in_sync() && r.differences.is_empty() {
            assert!(
                r.mailboxes_checked >= (USERS * 5) as u64,
                "{} mailboxes",
                r.mailboxes_checked
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pair never in sync: {} differences",
            r.differences.len()
        );
        std::thread::sleep(Duration::from_secs(5));
    }
    let exec = |host: &str, argv: Vec<String>| -> f64 {
        let c = &conns[host];
        let t = Instant::now();
        let o = rt
            .block_on(c.exec_timeout(&RemoteCommand::read(argv), Duration::from_secs(900)))
            .unwrap();
        assert!(o.success(), "{}", String::from_utf8_lossy(&o.stderr));
        t.elapsed().as_secs_f64()
    };
    // (1) cyrdeck check, 3 runs
    let mut mailboxes = 0;
    let t_check = median_of(3, || {
        let t = Instant::now();
        let r = run_check();
        mailboxes = r.mailboxes_checked;
        assert!(r.in_sync());
        t.elapsed().as_secs_f64()
    });
    // (2) sync_client -A on the master (every user), 3 runs
    let m = cfg.host("master");
    let t_sync = median_of(3, || {
        exec(
            "master",
            vec![
                format!("{}/sync_client", m.bin_dir.display()),
                "-C".into(),
                m.imapd_conf.display().to_string(),
                "-A".into(),
            ],
        )
    });
    // (3) raw read of every cyrus.index, each host, concurrently (as the check reads)
    let raw = |role: Role| {
        let spool = lab.layout.instance(role).partition.display().to_string();
        vec![
            "sh".to_string(),
            "-c".into(),
            "find \"$0\" -name cyrus.index -print0 | xargs -0 cat | wc -c".into(),
            spool,
        ]
    };
    let t_raw = median_of(3, || {
        let t = Instant::now();
        std::thread::scope(|s| {
            let a = s.spawn(|| exec("master", raw(Role::Master)));
            let b = s.spawn(|| exec("replica", raw(Role::Replica)));
            (a.join().unwrap(), b.join().unwrap())
        });
        t.elapsed().as_secs_f64()
    });
    // (4) naive: ssh + mbexamine per mailbox per side, 50 mailboxes
    let ssh = |role: Role, mailbox: &str| {
        let i = lab.layout.instance(role);
        let conf = i.imapd_conf.display().to_string();
        let st = std::process::Command::new("ssh")
            .args(["-i", &lab.layout.operator_key().display().to_string()])
            .args([
                "-o",
                &format!("UserKnownHostsFile={}", lab.layout.known_hosts().display()),
            ])
            .args(["-o", "BatchMode=yes", "-p", &i.ssh_port.to_string()])
            .arg(format!("root@{}", role.address()))
            .arg(format!("/usr/lib/cyrus/bin/mbexamine -C {conf} {mailbox}"))
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(st.success());
    };
    let t = Instant::now();
    for u in 0..50 {
        let mb = format!("user/cb{:04}", u * 7);
        ssh(Role::Master, &mb);
        ssh(Role::Replica, &mb);
    }
    let per_mailbox = t.elapsed().as_secs_f64() / 50.0;
    let t_naive = per_mailbox * mailboxes as f64;

    println!(
        "integrity check, in-sync pair: {mailboxes} mailboxes, {} messages",
        USERS * 5 * PER_FOLDER
    );
    println!("| method | time |");
    println!("|---|---|");
    println!("| (1) cyrdeck check (levels 1+2, both hosts) | {t_check:.2} s |");
    println!("| (2) sync_client -A | {t_sync:.2} s |");
    println!("| (3) raw read of every cyrus.index, both hosts at once | {t_raw:.2} s |");
    println!("| (4) ssh + mbexamine per mailbox, both sides | {per_mailbox:.3} s/mailbox, ~{t_naive:.0} s in all |");
    println!(
        "ratios: check/sync_client -A = {:.3} (target <= 0.25); check/raw read = {:.2} (target <= 2); naive/check = {:.0}x",
        t_check / t_sync,
        t_check / t_raw,
        t_naive / t_check
    );
}
