//! The shared test kit for tests that need no lab: configs built in code
//! (instead of TOML text copied between files) and scratch directories.
//! The lab's own helpers are tests/common; the console's fixtures are
//! tests/console_support.
#![allow(dead_code)]

use cyrdeck::config::Config;
use std::path::{Path, PathBuf};

/// A cyrdeck.toml written by the test: `[defaults]` lines, hosts, pairs.
#[derive(Default)]
pub struct ConfigText {
    defaults: Vec<String>,
    hosts: Vec<(String, Vec<String>)>,
    pairs: Vec<(String, Vec<String>)>,
}

impl ConfigText {
    pub fn new() -> Self {
        Self::default()
    }

    /// A `[defaults]` line (`key = value`).
    pub fn defaults(mut self, line: &str) -> Self {
        self.defaults.push(line.to_string());
        self
    }

    /// `[hosts.NAME]` with `ssh = SSH` and more lines.
    pub fn host(mut self, name: &str, ssh: &str, more: &[&str]) -> Self {
        let mut lines = vec![format!("ssh = \"{ssh}\"")];
        lines.extend(more.iter().map(|l| l.to_string()));
        self.hosts.push((name.to_string(), lines));
        self
    }

    /// `[pairs.NAME]`: `master`, `replicas` as (host, channel) ("": the
    /// default channel, written out), and more lines.
    pub fn pair(
        mut self,
        name: &str,
        master: &str,
        replicas: &[(&str, &str)],
        more: &[&str],
    ) -> Self {
        let list: Vec<String> = replicas
            .iter()
            .map(|(h, c)| {
                if c.is_empty() {
                    format!("{{ host = \"{h}\" }}")
                } else {
                    format!("{{ host = \"{h}\", channel = \"{c}\" }}")
                }
            })
            .collect();
        let mut lines = vec![
            format!("master = \"{master}\""),
            format!("replicas = [ {} ]", list.join(", ")),
        ];
        lines.extend(more.iter().map(|l| l.to_string()));
        self.pairs.push((name.to_string(), lines));
        self
    }

    pub fn text(&self) -> String {
        let mut t = String::new();
        if !self.defaults.is_empty() {
            t.push_str("[defaults]\n");
            for l in &self.defaults {
                t.push_str(&format!("{l}\n"));
            }
        }
        for (section, table) in [("hosts", &self.hosts), ("pairs", &self.pairs)] {
            for (name, lines) in table {
                t.push_str(&format!("\n[{section}.{name}]\n"));
                for l in lines {
                    t.push_str(&format!("{l}\n"));
                }
            }
        }
        t
    }

    /// Parsed as `t.toml` (no ssh_config read).
    pub fn parse(&self) -> Config {
        Config::parse(Path::new("t.toml"), &self.text(), Path::new("/nonexistent"))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.text()))
    }

    /// Written to `DIR/cyrdeck.toml` (and an empty `DIR/known_hosts`),
    /// then parsed as that file.
    pub fn write(&self, dir: &Path) -> Config {
        std::fs::create_dir_all(dir).unwrap();
        let path = dir.join("cyrdeck.toml");
        std::fs::write(&path, self.text()).unwrap();
        let kh = dir.join("known_hosts");
        if !kh.exists() {
            std::fs::write(&kh, "").unwrap();
        }
        Config::parse(&path, &self.text(), Path::new("/nonexistent"))
            .unwrap_or_else(|e| panic!("{e}\n{}", self.text()))
    }
}

/// A scratch directory of this test process: `cyrdeck-TAG-PID`.
pub fn scratch_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cyrdeck-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
