//! The lab is a guest on its machine: a syslog receiver that already owns
//! the "host's" /dev/log keeps receiving across `lab up`, the lab's use and
//! `lab down`, never gets a Cyrus line of the lab, and nothing the lab
//! started outlives `lab down`. Also: `lab up && status` exits 0 on five
//! fresh labs in a row (lab up returns only once the pair is steady).
//!
//! The "host" here is a mount namespace whose /dev/log is this test's own
//! datagram socket (built with the lab's private_ns.sh), so the test never
//! touches the real machine's /dev/log either.

use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const DIR: &str = "/var/tmp/cyrdeck-iso-lab";
const PORT: u16 = 25500;
const LAB_TAG: &str = "cyrlab25500";

fn dev_log_identity() -> Option<(u64, u64, u32)> {
    std::fs::symlink_metadata("/dev/log")
        .ok()
        .map(|m| (m.dev(), m.ino(), m.mode()))
}

#[test]
fn host_syslog_keeps_receiving_and_lab_down_leaves_nothing() {
    let bin = env!("CARGO_BIN_EXE_cyrdeck");
    let _ = std::process::Command::new(bin)
        .args(["lab", "down", "--dir", DIR])
        .status();
    let _ = std::fs::remove_dir_all(DIR);
    let before = dev_log_identity();

    let scratch = std::path::PathBuf::from("/var/tmp/cyrdeck-iso-host");
    let _ = std::fs::remove_dir_all(&scratch);
    std::fs::create_dir_all(&scratch).unwrap();
    let sock = scratch.join("host-dev-log.sock");
    let recv = UnixDatagram::bind(&sock).unwrap();
    // cyrus (the lab drops to it) must be able to write: the test's
    // receiver stands for a host daemon's world-writable /dev/log
    std::fs::set_permissions(&sock, std::os::unix::fs::PermissionsExt::from_mode(0o666)).unwrap();
    recv.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let got = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (got, stop) = (got.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                if let Ok(n) = recv.recv(&mut buf) {
                    got.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
        })
    };

    let script = format!(
        r#"set -u
logger -t isohost before
for i in 1 2 3 4 5; do
  rm -rf {DIR}
  "$0" lab up --dir {DIR} --base-port {PORT} >/dev/null || echo "lab-up-failed $i"
  "$0" --config {DIR}/cyrdeck.toml status >/dev/null; echo "status-exit $i $?"
  if [ "$i" = 1 ]; then
    logger -t isohost during
    "$0" lab seed --dir {DIR} --messages 1 >/dev/null || echo seed-failed
    logger -t isohost seeded
    cp {DIR}/syslog/{LAB_TAG}-master.log {scratch}/lab-master.log
  fi
  "$0" lab down --dir {DIR} || echo "lab-down-failed $i"
done
logger -t isohost after
"#,
        scratch = scratch.display()
    );
    let ns = concat!(env!("CARGO_MANIFEST_DIR"), "/src/lab/private_ns.sh");
    let out = std::process::Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            ns,
            "cyrdeck-isotest",
        ])
        .arg(scratch.join("ns"))
        .arg(&sock)
        // no journal, no root (the host's own release), so no lab dir to bind
        .args(["none", "-", "-", "--", "sh", "-c", &script, bin])
        .output()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    reader.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");

    // lab up && status: exit 0, five fresh labs in a row
    let exits: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("status-exit"))
        .collect();
    assert_eq!(
        exits,
        (1..=5)
            .map(|i| format!("status-exit {i} 0"))
            .collect::<Vec<_>>(),
        "{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("failed"), "{stdout}\n{stderr}");

    // the host's receiver got its own lines throughout, and no lab line
    let got = got.lock().unwrap().clone();
    for want in ["before", "during", "seeded", "after"] {
        assert!(
            got.iter()
                .any(|l| l.contains("isohost") && l.ends_with(want)),
            "the host's syslog lost {want:?}: {got:#?}"
        );
    }
    let leaked: Vec<&String> = got.iter().filter(|l| l.contains(LAB_TAG)).collect();
    assert!(
        leaked.is_empty(),
        "lab lines reached the host's /dev/log: {leaked:#?}"
    );
    // ... while the lab's own receiver had Cyrus's lines
    let lab_lines = std::fs::read_to_string(scratch.join("lab-master.log")).unwrap();
    assert!(
        lab_lines.contains(&format!("{LAB_TAG}-master/")),
        "the lab's Cyrus lines did not reach the lab's receiver"
    );

    // nothing the lab started still runs; the machine's /dev/log is as it was
    let ours: Vec<i32> = cyrdeck::lab::process::pids_matching(DIR);
    assert!(ours.is_empty(), "lab processes left: {ours:?}");
    let tags: Vec<String> = ["master", "replica"]
        .iter()
        .map(|r| format!("cyrdeck-{LAB_TAG}-{r}"))
        .collect();
    let in_ns = cyrdeck::lab::process::pids_mount_tagged(&tags);
    assert!(
        in_ns.is_empty(),
        "processes left in the lab's namespaces: {in_ns:?}"
    );
    assert_eq!(dev_log_identity(), before, "the machine's /dev/log changed");
    let _ = std::fs::remove_dir_all(&scratch);
    let _ = std::fs::remove_dir_all(DIR);
}
