//! Integrity-check cost on an in-sync pair of USERS users x 5 folders x
//! PER_FOLDER messages (default 1,000 x 5 x 20: 5,000 mailboxes, 100,000
//! messages; `CYRDECK_BENCH_USERS`, `CYRDECK_BENCH_PER_FOLDER` change it,
//! `CYRDECK_BENCH_LAB` / `CYRDECK_BENCH_PORT` pick the lab), in one run:
//! (1) cyrdeck check; (2) `sync_client -A` (Cyrus's own pass over every
//! user); (3) one raw read of every cyrus.index on each host over one SSH
//! exec (the floor: no check can read less); (4) a naive `ssh host
//! mbexamine MAILBOX` per mailbox on each side, 50 mailboxes timed and
//! extrapolated; (5) the peak resident memory of `cyrdeck check --json` run
//! as a child process (wait4's ru_maxrss), per mailbox. Prints times and
//! ratios (targets: (1) <= 0.25 x (2), (1) <= 1.5 x (3), (5) < 1 KB per
//! mailbox). The pair is seeded once and kept (DIR/check-bench-seeded
//! records the size; another size seeds on top: resumable;
//! `CYRDECK_BENCH_SEED_ONLY=1` seeds and stops).

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

const FOLDERS: [&str; 4] = ["Sent", "Drafts", "Archive", "Trash"];

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v:?}: not a number"))
        })
        .unwrap_or(default)
}

fn seed(lab: &Lab, users: usize, per_folder: usize) {
    let marker = lab.layout.dir.join("check-bench-seeded");
    let size = format!("seeded users={users} per_folder={per_folder}\n");
    if std::fs::read_to_string(&marker).is_ok_and(|s| s == size) {
        return;
    }
    // resumable: CREATE of an existing mailbox is fine, and a folder only
    // gets the messages it still lacks
    let m = lab.layout.instance(Role::Master);
    let (addr, port) = (Role::Master.address(), m.imap_port);
    let started = Instant::now();
    let mut admin = Imap::login(addr, port, "admin").unwrap();
    for u in 0..users {
        admin.create(&format!("user/cb{u:04}")).unwrap();
    }
    admin.logout();
    let threads: Vec<_> = (0..2)
        .map(|t| {
            std::thread::spawn(move || {
                for u in (t..users).step_by(2) {
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
                        for i in have..per_folder {
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
        users * 5 * per_folder,
        started.elapsed()
    );
    std::fs::write(marker, size).unwrap();
}

fn main() {
    let dir =
        std::env::var("CYRDECK_BENCH_LAB").unwrap_or_else(|_| "/var/tmp/cyrdeck-bench-lab".into());
    let port = env_or("CYRDECK_BENCH_PORT", 24500) as u16;
    let (users, per_folder) = (
        env_or("CYRDECK_BENCH_USERS", 1000),
        env_or("CYRDECK_BENCH_PER_FOLDER", 20),
    );
    let lab = Lab::open(std::path::Path::new(&dir), Some(port)).expect("open lab");
    lab.up().expect("lab up");
    seed(&lab, users, per_folder);
    if std::env::var_os("CYRDECK_BENCH_SEED_ONLY").is_some() {
        return;
    }
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
        list_mailboxes: false,
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
                r.mailboxes_checked >= (users * 5) as u64,
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
    // (5) peak resident memory of `cyrdeck check --json` (a child process:
    // its own ru_maxrss, nothing of this process counted), 3 runs
    let peak_kb = median_of(3, || check_child_rss_kb(&lab)) as u64;
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
        "integrity check, in-sync pair: {mailboxes} mailboxes ({users} users x 5 folders), {} messages ({per_folder} per folder)",
        users * 5 * per_folder
    );
    println!("| method | time |");
    println!("|---|---|");
    println!("| (1) cyrdeck check (levels 1+2, both hosts) | {t_check:.2} s |");
    println!("| (2) sync_client -A | {t_sync:.2} s |");
    println!("| (3) raw read of every cyrus.index, both hosts at once | {t_raw:.2} s |");
    println!("| (4) ssh + mbexamine per mailbox, both sides | {per_mailbox:.3} s/mailbox, ~{t_naive:.0} s in all |");
    println!(
        "| (5) peak RSS of `cyrdeck check --json` | {:.1} MB, {:.0} bytes per mailbox |",
        peak_kb as f64 / 1024.0,
        peak_kb as f64 * 1024.0 / mailboxes as f64
    );
    println!(
        "ratios: check/sync_client -A = {:.3} (target <= 0.25); check/raw read = {:.2} (target <= 1.5, issue 25); naive/check = {:.0}x",
        t_check / t_sync,
        t_check / t_raw,
        t_naive / t_check
    );
}

/// Run `cyrdeck check --json` on the lab's pair as a child and return its
/// peak resident set (KB, wait4's ru_maxrss). Its last-check record goes to
/// the lab's directory, not the operator's state dir.
// reaped by wait4 below (std's wait gives no rusage)
#[allow(clippy::zombie_processes)]
fn check_child_rss_kb(lab: &Lab) -> f64 {
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_cyrdeck"))
        .arg("--config")
        .arg(lab.layout.config_file())
        .args(["check", "--json", "--drain-wait", "60"])
        .env("XDG_STATE_HOME", lab.layout.dir.join("bench-state"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run cyrdeck check");
    let pid = child.id() as libc::pid_t;
    let mut stdout = child.stdout.expect("stdout");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut out).unwrap();
    let mut status = 0;
    // SAFETY: an all-zero rusage is valid; wait4 fills it for our own child
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let v: serde_json::Value = serde_json::from_str(&out).expect("check JSON");
    assert_eq!(v["exit_code"], 0, "check not clean: {out}");
    ru.ru_maxrss as f64
}
