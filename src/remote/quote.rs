//! The ONE place where a remote command line is built from an argv.
//!
//! SSH carries a single string that the remote user's login shell parses, so
//! every argument (mailbox names are user-controlled: `$(...)`, quotes, `;`,
//! newlines) is wrapped in single quotes, with embedded single quotes written
//! as `'\''`. Inside single quotes a POSIX shell expands nothing.

/// Quote one argument for a POSIX shell.
pub fn quote_arg(arg: &str) -> String {
    let safe = !arg.is_empty()
        && arg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b));
    if safe {
        return arg.to_string();
    }
    let mut out = String::with_capacity(arg.len() + 2);
    out.push('\'');
    for c in arg.chars() {
        if c == '\'' {
            out.push_str("'\\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}

/// Build the command line for `argv`; `sudo_user` prefixes `sudo -n -u USER --`.
pub fn command_line<S: AsRef<str>>(argv: &[S], sudo_user: Option<&str>) -> String {
    let mut parts: Vec<String> = Vec::with_capacity(argv.len() + 5);
    if let Some(user) = sudo_user {
        for p in ["sudo", "-n", "-u", user, "--"] {
            parts.push(quote_arg(p));
        }
    }
    parts.extend(argv.iter().map(|a| quote_arg(a.as_ref())));
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Round-trip through a real shell: what arrives as argv must equal what we sent.
    fn through_sh(args: &[&str]) -> Vec<String> {
        let mut argv = vec!["printf", "%s\\0"];
        argv.extend_from_slice(args);
        let line = command_line(&argv, None);
        let out = Command::new("sh").arg("-c").arg(&line).output().unwrap();
        assert!(out.status.success(), "sh failed on {line}");
        let s = String::from_utf8(out.stdout).unwrap();
        s.split('\0')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn hostile_arguments_arrive_verbatim_and_nothing_runs() {
        let marker = std::env::temp_dir().join(format!("cyrdeck-pwned-{}", std::process::id()));
        let payload = format!("$(touch {})", marker.display());
        let hostile = [
            "user/alice/With Space",
            "it's",
            "\"dq\"",
            payload.as_str(),
            "a;b",
            "`id`",
            "line1\nline2",
            "Entwürfe",
            "back\\slash",
            "glob*?[x]",
            "~",
            "$HOME",
        ];
        assert_eq!(through_sh(&hostile), hostile.to_vec());
        assert!(!marker.exists(), "a hostile argument was executed");
    }

    #[test]
    fn empty_argument_is_kept() {
        assert_eq!(quote_arg(""), "''");
    }

    #[test]
    fn sudo_prefix_is_quoted_too() {
        assert_eq!(
            command_line(&["mbexamine", "a b"], Some("cyrus")),
            "sudo -n -u cyrus -- mbexamine 'a b'"
        );
    }
}
