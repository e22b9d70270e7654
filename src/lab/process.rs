//! Lab processes are found by pidfile and only touched after their command
//! line proves they are ours (it names a file inside the lab directory).

use std::path::Path;
use std::time::{Duration, Instant};

pub fn read_pid(pidfile: &Path) -> Option<i32> {
    std::fs::read_to_string(pidfile).ok()?.trim().parse().ok()
}

pub fn cmdline(pid: i32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .replace('\0', " ")
            .trim()
            .to_string(),
    )
}

fn is_zombie(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// The pid from `pidfile` if that process is alive and its command line
/// contains `marker`.
pub fn live_pid(pidfile: &Path, marker: &str) -> Option<i32> {
    let pid = read_pid(pidfile)?;
    let cmd = cmdline(pid)?;
    (cmd.contains(marker) && !is_zombie(pid)).then_some(pid)
}

/// Every live process whose command line contains `marker`.
pub fn pids_matching(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me)
        .filter(|&pid| cmdline(pid).is_some_and(|c| c.contains(marker)) && !is_zombie(pid))
        .collect()
}

/// Direct children of `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit(')')
                        .next()?
                        .split_whitespace()
                        .nth(1)?
                        .parse::<i32>()
                        .ok()
                })
                == Some(pid)
        })
        .collect()
}

fn signal(pid: i32, sig: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, sig);
    }
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

/// SIGTERM, wait up to `grace`, then SIGKILL.
pub fn terminate(pids: &[i32], grace: Duration) {
    for &p in pids {
        signal(p, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && pids.iter().any(|&p| alive(p)) {
        std::thread::sleep(Duration::from_millis(100));
    }
    for &p in pids {
        if alive(p) {
            signal(p, libc::SIGKILL);
        }
    }
}

/// Send a signal to a pid proven ours.
pub fn send(pid: i32, sig: i32) {
    signal(pid, sig)
}

/// Poll `f` every 100 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Wait until something accepts TCP connections on addr:port.
pub fn wait_for_port(addr: &str, port: u16, timeout: Duration) -> bool {
    let Ok(sock) = format!("{addr}:{port}").parse() else {
        return false;
    };
    wait_until(timeout, || {
        std::net::TcpStream::connect_timeout(&sock, Duration::from_millis(300)).is_ok()
    })
}

/// Is `pid` in a mount namespace holding a mount whose source is `tag`
/// (a lab host's private /dev: see private_ns.sh)?
pub fn mount_tagged(pid: i32, tag: &str) -> bool {
    let needle = format!(" {tag} ");
    std::fs::read_to_string(format!("/proc/{pid}/mountinfo"))
        .is_ok_and(|m| m.lines().any(|l| l.contains(&needle)))
}

/// Every live process in a namespace tagged with one of `tags`.
pub fn pids_mount_tagged(tags: &[String]) -> Vec<i32> {
    let me = std::process::id() as i32;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| pid != me && !is_zombie(pid))
        .filter(|&pid| tags.iter().any(|t| mount_tagged(pid, t)))
        .collect()
}
