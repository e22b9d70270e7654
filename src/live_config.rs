//! The config as its file says now. A failover, a promote or a
//! replace-replica rewrites the roles in the file; a long-running console
//! (or `supervise`) that kept the roles it started with would call the new
//! master's missing DAEMON client of the old channel CRITICAL (issue 30,
//! item 2). Readers take a snapshot (`get`) for one refresh or one run.

use crate::config::Config;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

pub struct LiveConfig {
    file: PathBuf,
    current: RwLock<Arc<Config>>,
    /// The file's text as last read (a reload compares it, not mtimes:
    /// two rewrites in one second are still seen).
    text: Mutex<Option<String>>,
}

/// What a reload found.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    /// Applied; one line per change ("pair lab: master mx1 -> mx2").
    Applied(Vec<String>),
    /// The file changed but is not applied (it does not parse, or its
    /// hosts changed: connections are made at start).
    Refused(String),
}

impl LiveConfig {
    pub fn new(cfg: Arc<Config>) -> Arc<LiveConfig> {
        let text = std::fs::read_to_string(&cfg.file).ok();
        Arc::new(LiveConfig {
            file: cfg.file.clone(),
            current: RwLock::new(cfg),
            text: Mutex::new(text),
        })
    }

    pub fn get(&self) -> Arc<Config> {
        match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Re-read the file if its text changed since the last read.
    pub fn reload_if_changed(&self) -> Reload {
        let Ok(text) = std::fs::read_to_string(&self.file) else {
            // a rewrite in progress (rename) or a vanished file: keep what
            // was read, the next refresh looks again
            return Reload::Unchanged;
        };
        let mut last = self.text.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() == Some(text.as_str()) {
            return Reload::Unchanged;
        }
        *last = Some(text);
        let new = match Config::load(&self.file) {
            Ok(c) => c,
            Err(e) => {
                return Reload::Refused(format!(
                    "the config changed on disk but does not load ({e}): still using the roles read before"
                ))
            }
        };
        let old = self.get();
        if old.hosts != new.hosts {
            return Reload::Refused(
                "the config's hosts changed on disk: restart cyrdeck to connect with them (roles are followed, hosts are not)".into(),
            );
        }
        let changes = role_changes(&old, &new);
        match self.current.write() {
            Ok(mut c) => *c = Arc::new(new),
            Err(p) => *p.into_inner() = Arc::new(new),
        }
        Reload::Applied(changes)
    }
}

/// Each pair whose master or replicas differ, in words.
pub fn role_changes(old: &Config, new: &Config) -> Vec<String> {
    let replicas = |c: &Config, p: &str| -> String {
        c.pairs
            .get(p)
            .map(|p| {
                p.replicas
                    .iter()
                    .map(|r| r.host.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for (name, n) in &new.pairs {
        let Some(o) = old.pairs.get(name) else {
            out.push(format!("pair {name}: new"));
            continue;
        };
        if o.master != n.master {
            out.push(format!("pair {name}: master {} -> {}", o.master, n.master));
        }
        let (ro, rn) = (replicas(old, name), replicas(new, name));
        if ro != rn {
            out.push(format!("pair {name}: replicas {ro} -> {rn}"));
        }
    }
    for name in old.pairs.keys().filter(|p| !new.pairs.contains_key(*p)) {
        out.push(format!("pair {name}: removed"));
    }
    if out.is_empty() {
        out.push("settings only (no role changed)".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_HOSTS: &str = r#"
[defaults]
known_hosts = "/tmp/kh"
[hosts.mx1]
ssh = "root@127.0.0.1:2201"
[hosts.mx2]
ssh = "root@127.0.0.1:2202"
[pairs.lab]
master = "mx1"
replicas = [ { host = "mx2" } ]
"#;

    fn write(dir: &std::path::Path, text: &str) -> PathBuf {
        let p = dir.join("cyrdeck.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn follows_a_role_swap_and_refuses_what_it_cannot_apply() {
        let dir = std::env::temp_dir().join(format!("cyrdeck-live-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = write(&dir, TWO_HOSTS);
        let live = LiveConfig::new(Arc::new(Config::load(&p).unwrap()));
        assert_eq!(live.reload_if_changed(), Reload::Unchanged);
        crate::config::set_roles(&p, "lab", "mx2", "mx1").unwrap();
        assert_eq!(
            live.reload_if_changed(),
            Reload::Applied(vec![
                "pair lab: master mx1 -> mx2".into(),
                "pair lab: replicas mx2 -> mx1".into()
            ])
        );
        assert_eq!(live.get().pairs["lab"].master, "mx2");
        assert_eq!(live.reload_if_changed(), Reload::Unchanged);
        // garbage: refused once, the roles read before stay
        std::fs::write(&p, "[pairs.lab\n").unwrap();
        assert!(
            matches!(live.reload_if_changed(), Reload::Refused(m) if m.contains("does not load"))
        );
        assert_eq!(live.reload_if_changed(), Reload::Unchanged);
        assert_eq!(live.get().pairs["lab"].master, "mx2");
        // a host's address changed: not applied (connections are made once)
        std::fs::write(&p, TWO_HOSTS.replace("2202", "2203")).unwrap();
        assert!(
            matches!(live.reload_if_changed(), Reload::Refused(m) if m.contains("hosts changed"))
        );
        assert_eq!(live.get().pairs["lab"].master, "mx2");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
