//! The console binary in a tmux session: keys in, screen text out.

use super::bin;
use std::process::Command;
use std::time::{Duration, Instant};

/// A tmux session running the console; killed on drop.
pub struct Tmux {
    pub name: String,
}

impl Tmux {
    /// The console with this test binary's own journals (never the
    /// operator's state directory).
    pub fn start(args: &[&str], w: u16, h: u16) -> Tmux {
        let state = super::state_dir().display().to_string();
        Tmux::start_env(&[("XDG_STATE_HOME", &state)], args, w, h)
    }

    /// With environment variables for the console (`env K=V cyrdeck …`:
    /// a running tmux server would not pass ours on).
    pub fn start_env(env: &[(&str, &str)], args: &[&str], w: u16, h: u16) -> Tmux {
        let name = format!(
            "cyrdeck-test-{}-{}",
            std::process::id(),
            args.len() + w as usize
        );
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &name])
            .stderr(std::process::Stdio::null())
            .status();
        let mut cmd = vec!["env".to_string()];
        cmd.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
        cmd.push(bin().to_string());
        cmd.extend(args.iter().map(|a| a.to_string()));
        let line = cmd
            .iter()
            .map(|a| cyrdeck::remote::quote::quote_arg(a))
            .collect::<Vec<_>>()
            .join(" ");
        let st = Command::new("tmux")
            .args([
                "new-session",
                "-d",
                "-s",
                &name,
                "-x",
                &w.to_string(),
                "-y",
                &h.to_string(),
            ])
            .arg(format!("{line}; sleep 30"))
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux (apt-get install tmux)");
        assert!(st.success(), "tmux new-session failed");
        Tmux { name }
    }

    /// Send keys one at a time (tmux key names: Enter, Escape, Tab, C-r).
    pub fn keys(&self, keys: &[&str]) {
        for k in keys {
            let st = Command::new("tmux")
                .args(["send-keys", "-t", &self.name, k])
                .status()
                .expect("tmux send-keys");
            assert!(st.success());
            // Esc followed at once by a key reads as Alt-key
            std::thread::sleep(Duration::from_millis(120));
        }
    }

    pub fn text(&self, s: &str) {
        let st = Command::new("tmux")
            .args(["send-keys", "-t", &self.name, "-l", s])
            .status()
            .expect("tmux send-keys");
        assert!(st.success());
        std::thread::sleep(Duration::from_millis(120));
    }

    pub fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-t", &self.name])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let s = self.capture();
            if pred(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("screen never showed {what} within {timeout:?}:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.name])
            .status();
    }
}
