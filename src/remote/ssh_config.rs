//! Just enough of ~/.ssh/config to resolve a Host alias the way OpenSSH does:
//! HostName, Port, User and IdentityFile, first value wins, `Host` patterns
//! with `*`, `?` and `!` negation. `Match` blocks are skipped (never guessed).

use std::path::{Path, PathBuf};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HostEntry {
    pub host_name: Option<String>,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub identity_file: Option<PathBuf>,
}

/// Glob match of OpenSSH patterns (`*`, `?`).
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    fn rec(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('*') => (0..=t.len()).any(|i| rec(&p[1..], &t[i..])),
            Some('?') => !t.is_empty() && rec(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && rec(&p[1..], &t[1..]),
        }
    }
    rec(&p, &t)
}

fn host_matches(patterns: &[String], host: &str) -> bool {
    let mut matched = false;
    for p in patterns {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg, host) {
                return false;
            }
        } else if glob(p, host) {
            matched = true;
        }
    }
    matched
}

fn expand_tilde(p: &str) -> PathBuf {
    match p.strip_prefix("~/") {
        Some(rest) => dirs::home_dir().unwrap_or_default().join(rest),
        None => PathBuf::from(p),
    }
}

/// Resolve `alias` against config text.
pub fn resolve_text(text: &str, alias: &str) -> HostEntry {
    let mut entry = HostEntry::default();
    let mut active = true; // options before any Host line apply to all
    for raw in text.lines() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = match line.split_once(|c: char| c.is_whitespace() || c == '=') {
            Some((k, v)) => (
                k.to_ascii_lowercase(),
                v.trim_start_matches([' ', '\t', '=']).trim(),
            ),
            None => continue,
        };
        let value = value.trim_matches('"');
        match key.as_str() {
            "host" => {
                let pats: Vec<String> = value.split_whitespace().map(str::to_string).collect();
                active = host_matches(&pats, alias);
            }
            "match" => active = false,
            _ if !active => {}
            "hostname" if entry.host_name.is_none() => {
                entry.host_name = Some(value.replace("%h", alias))
            }
            "port" if entry.port.is_none() => entry.port = value.parse().ok(),
            "user" if entry.user.is_none() => entry.user = Some(value.to_string()),
            "identityfile" if entry.identity_file.is_none() => {
                entry.identity_file = Some(expand_tilde(value))
            }
            _ => {}
        }
    }
    entry
}

/// Resolve `alias` from a config file; a missing file resolves to nothing.
pub fn resolve(path: &Path, alias: &str) -> HostEntry {
    std::fs::read_to_string(path)
        .map(|t| resolve_text(&t, alias))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CFG: &str = "\
# comment
Host replica1 r1
    HostName 10.9.8.7
    Port 2222
    User ops
    IdentityFile ~/.ssh/cyrus_ops
Host *.example.org !bad.example.org
    User wild
    Port 22
Match host foo
    User never
Host *
    User fallback
    Port 2200
";

    #[test]
    fn alias_resolves_first_value_wins() {
        let e = resolve_text(CFG, "r1");
        assert_eq!(e.host_name.as_deref(), Some("10.9.8.7"));
        assert_eq!(e.port, Some(2222));
        assert_eq!(e.user.as_deref(), Some("ops"));
        assert!(e.identity_file.unwrap().ends_with(".ssh/cyrus_ops"));
    }

    #[test]
    fn wildcards_negation_and_match_blocks() {
        let e = resolve_text(CFG, "mx.example.org");
        assert_eq!((e.user.as_deref(), e.port), (Some("wild"), Some(22)));
        let bad = resolve_text(CFG, "bad.example.org");
        assert_eq!(
            (bad.user.as_deref(), bad.port),
            (Some("fallback"), Some(2200))
        );
        assert_eq!(resolve_text(CFG, "foo").user.as_deref(), Some("fallback"));
    }

    #[test]
    fn garbage_is_ignored_not_fatal() {
        let e = resolve_text("Host x\n Port notanumber\n\u{0}\u{1}\nHostName\n", "x");
        assert_eq!(e.port, None);
    }
}
