//! A fleet on one lab (issue 13), shared by benches/fleet.rs and
//! tests/fleet_lab.rs: N pairs under their own names, all pointing at the
//! lab's two hosts; optionally the first pair's replica reached through a
//! second sshd of the lab's replica (its own port, same namespace), so that
//! host alone can be black-holed: SIGSTOP on that sshd and its sessions is
//! what a hung machine looks like (TCP still accepts, nothing answers).

use cyrdeck::lab::layout::Role;
use cyrdeck::lab::{process, Lab};
use std::path::PathBuf;
use std::time::Duration;

/// The first pair's name (the one whose replica can be black-holed).
pub const FIRST: &str = "p00";

pub fn pair_name(i: usize) -> String {
    format!("p{i:02}")
}

/// A second sshd for the lab's replica, listening on `port`; its pid.
/// `lab down` ends it (it runs in the replica's namespace).
pub fn extra_sshd(lab: &Lab, port: u16) -> i32 {
    let r = lab.layout.instance(Role::Replica);
    let dir = lab.layout.dir.join("ssh/fleet");
    std::fs::create_dir_all(&dir).unwrap();
    let pidfile = dir.join("sshd.pid");
    if let Some(pid) = process::read_pid(&pidfile).filter(|p| alive(*p)) {
        return pid;
    }
    let conf: String = std::fs::read_to_string(r.sshd_config())
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with("ListenAddress ") {
                format!("ListenAddress {}:{port}", Role::Replica.address())
            } else if l.starts_with("PidFile ") {
                format!("PidFile {}", pidfile.display())
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    let path = dir.join("sshd_config");
    std::fs::write(&path, conf).unwrap();
    let st = lab
        .in_namespace(Role::Replica, "/usr/sbin/sshd")
        .arg("-f")
        .arg(&path)
        .arg("-E")
        .arg(dir.join("sshd.log"))
        .status()
        .unwrap();
    assert!(st.success(), "extra sshd: {st:?}");
    for _ in 0..100 {
        if let Some(pid) = process::read_pid(&pidfile).filter(|p| alive(*p)) {
            return pid;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("extra sshd did not start; see {}", dir.display());
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// `sig` to `pid` and every process under it (the listener and its
/// sessions: stopping only the listener leaves sessions answering).
pub fn signal_tree(pid: i32, sig: i32) {
    for c in process::children(pid) {
        signal_tree(c, sig);
    }
    process::send(pid, sig);
}

/// The lab's config as `n` pairs p00.. (hosts pNN-master, pNN-replica),
/// written as `LABDIR/NAME`; `alt_port`: p00's replica through that port
/// (its host key added to a copy of known_hosts). `extra` lines go into
/// `[defaults]`.
pub fn config(lab: &Lab, n: usize, alt_port: Option<u16>, extra: &str, name: &str) -> PathBuf {
    let text = std::fs::read_to_string(lab.layout.config_file()).unwrap();
    let mut t: toml::Table = text.parse().unwrap();
    let hosts = t["hosts"].as_table().unwrap().clone();
    let pair = t["pairs"]
        .as_table()
        .unwrap()
        .values()
        .next()
        .unwrap()
        .clone();
    let defaults = t.get_mut("defaults").unwrap().as_table_mut().unwrap();
    let extra: toml::Table = extra.parse().unwrap();
    defaults.extend(extra);
    if let Some(port) = alt_port {
        let kh = PathBuf::from(defaults["known_hosts"].as_str().unwrap());
        let known = std::fs::read_to_string(&kh).unwrap();
        let r = lab.layout.instance(Role::Replica);
        let prefix = format!("[{}]:{} ", Role::Replica.address(), r.ssh_port);
        let line = known
            .lines()
            .find(|l| l.starts_with(&prefix))
            .expect("the replica's host key");
        let alt = line.replacen(
            &prefix,
            &format!("[{}]:{port} ", Role::Replica.address()),
            1,
        );
        let copy = lab.layout.dir.join(format!("{name}.known_hosts"));
        std::fs::write(&copy, format!("{known}{alt}\n")).unwrap();
        defaults.insert("known_hosts".into(), copy.display().to_string().into());
    }
    let (mut fleet_hosts, mut pairs) = (toml::Table::new(), toml::Table::new());
    for i in 0..n {
        let p = pair_name(i);
        let (m, r) = (format!("{p}-master"), format!("{p}-replica"));
        fleet_hosts.insert(m.clone(), hosts["master"].clone());
        let mut replica = hosts["replica"].as_table().unwrap().clone();
        if let (0, Some(port)) = (i, alt_port) {
            let ssh = replica["ssh"].as_str().unwrap();
            let (user_host, _) = ssh.rsplit_once(':').unwrap();
            replica.insert("ssh".into(), format!("{user_host}:{port}").into());
        }
        fleet_hosts.insert(r.clone(), replica.into());
        let mut pc = pair.as_table().unwrap().clone();
        pc.insert("master".into(), m.into());
        let mut rep = pc["replicas"].as_array().unwrap()[0]
            .as_table()
            .unwrap()
            .clone();
        rep.insert("host".into(), r.into());
        pc.insert("replicas".into(), toml::Value::Array(vec![rep.into()]));
        pairs.insert(p, pc.into());
    }
    t.insert("hosts".into(), fleet_hosts.into());
    t.insert("pairs".into(), pairs.into());
    let path = lab.layout.dir.join(name);
    std::fs::write(&path, toml::to_string(&t).unwrap()).unwrap();
    path
}
