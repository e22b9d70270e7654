//! cyrdeck doctor against the real pair: the lab's config is clean; each
//! anti-pattern planted in the master's real config files is named.

mod common;

use common::*;
use cyrdeck::lab::layout::Role;
use serde_json::Value;
use std::process::Command;

fn doctor() -> (i32, Value) {
    let out = Command::new(bin())
        .arg("--config")
        .arg(lab().layout.config_file())
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    (out.status.code().unwrap_or(-1), v)
}

/// Puts a file back as it was, also when the test fails.
struct Restore(std::path::PathBuf, Vec<u8>);
impl Drop for Restore {
    fn drop(&mut self) {
        let _ = std::fs::write(&self.0, &self.1);
    }
}

/// The findings a lab of mixed releases has by design (scripts/versions.sh
/// runs this on a 3.6 master + 3.10 replica): the upgrade direction, named.
fn expected_by_design() -> Vec<&'static str> {
    let [m, r] = lab().cyrus_versions();
    let release = |v: Option<String>| cyrdeck::lab::roots::release_of(&v.unwrap_or_default());
    if release(m) == release(r) {
        vec![]
    } else {
        vec!["mixed_releases"]
    }
}

fn codes(v: &Value) -> Vec<&str> {
    let mut c: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    c.sort();
    c
}

#[test]
fn doctor_finds_nothing_on_the_lab_and_names_planted_anti_patterns() {
    let _g = lock();
    let by_design = expected_by_design();
    let (code, v) = doctor();
    assert_eq!(code, if by_design.is_empty() { 0 } else { 1 }, "{v:#}");
    assert_eq!(codes(&v), by_design, "{v:#}");

    // only the files change (cyr_info and the doctor read them; the running
    // master is not signalled), and both are restored on drop
    let m = lab().layout.instance(Role::Master);
    let imapd = std::fs::read(&m.imapd_conf).unwrap();
    let cyrus = std::fs::read(m.cyrus_conf.clone()).unwrap();
    let _a = Restore(m.imapd_conf.clone(), imapd.clone());
    let _b = Restore(m.cyrus_conf.clone(), cyrus.clone());
    let text = String::from_utf8(imapd).unwrap();
    let planted: String = text
        .lines()
        .filter(|l| {
            !l.starts_with("sync_shutdown_file:")
                && !l.starts_with("sync_try_imap:")
                && !l.starts_with("sync_reconnect_maxwait:")
        })
        .map(|l| format!("{l}\n"))
        .collect::<String>()
        + "sync_reconnect_maxwait: 30m\n";
    std::fs::write(&m.imapd_conf, planted).unwrap();
    let conf = String::from_utf8(cyrus).unwrap();
    let start_mode = conf.replace("DAEMON {", "START {");
    assert_ne!(start_mode, conf);
    std::fs::write(m.cyrus_conf.clone(), start_mode).unwrap();

    let (code, v) = doctor();
    assert_eq!(code, 1, "{v:#}");
    let mut expected = vec![
        "client_in_start",
        "no_shutdown_file",
        "slow_reconnect",
        "sync_try_imap",
    ];
    expected.extend(&by_design);
    expected.sort();
    assert_eq!(codes(&v), expected, "{v:#}");
    assert!(v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| !by_design.contains(&f["code"].as_str().unwrap()))
        .all(|f| f["host"] == "master"));
}

/// Removes a planted file, also when the test fails.
struct Unplant(std::path::PathBuf);
impl Drop for Unplant {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A shell startup file that makes every command slow (as a host root's
/// `pyenv init` waiting on a stale lock once did) is named, on that host
/// only. The lab's root has a home of its own (lab/accounts.rs), so the
/// `.bashrc` planted there reaches only the lab's sessions.
#[test]
fn doctor_names_a_slow_shell_startup() {
    let _g = lock();
    let bashrc = lab().layout.root_home().join(".bashrc");
    let _u = Unplant(bashrc.clone());
    // only for the replica's sessions: both hosts share the lab's root home
    let replica = Role::Replica.address();
    std::fs::write(
        &bashrc,
        format!("case \"$SSH_CONNECTION\" in *' {replica} '*) sleep 2.5;; esac\n"),
    )
    .unwrap();
    let (code, v) = doctor();
    assert_eq!(code, 1, "{v:#}");
    let slow: Vec<&Value> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "slow_session_start")
        .collect();
    assert_eq!(slow.len(), 1, "{v:#}");
    assert_eq!(slow[0]["host"], "replica", "{v:#}");
    println!("{}", slow[0]["problem"]);
    drop(_u);
    let (_, v) = doctor();
    assert!(!codes(&v).contains(&"slow_session_start"), "{v:#}");
}
