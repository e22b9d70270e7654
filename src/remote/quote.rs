//! The ONE place where a remote command line is built from an argv.
//!
//! SSH carries a single string that the remote user's login shell parses, so
//! every argument (mailbox names are user-controlled: `$(...)`, quotes, `;`,
//! newlines) is wrapped in single quotes, with embedded single quotes written
//! as `'\''`. Inside single quotes a POSIX shell expands nothing.
//!
//! What cannot be passed: NUL (sshd hands the line to the shell as a C
//! string, and execve's argv are C strings: an argument would be cut short
//! silently), so [`command_line`] refuses it. Non-UTF-8 bytes cannot reach
//! this module at all: argv are Rust `String`s (names from hosts are decoded
//! lossily before they get here). tests/quote_prop.rs sends arbitrary
//! arguments through a real `sh -c` and compares the argv that arrives.

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

/// An argument no command line can carry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("argument {index} ({shown}) contains a NUL byte, which no remote command can receive: refused, nothing sent")]
pub struct NulInArgument {
    pub index: usize,
    /// The argument up to 60 characters, escaped.
    pub shown: String,
}

/// Build the command line for `argv`; `sudo_user` prefixes `sudo -n -u USER --`.
/// An argument with NUL is refused (it would arrive truncated).
pub fn command_line<S: AsRef<str>>(
    argv: &[S],
    sudo_user: Option<&str>,
) -> Result<String, NulInArgument> {
    let mut parts: Vec<String> = Vec::with_capacity(argv.len() + 5);
    if let Some(user) = sudo_user {
        for p in ["sudo", "-n", "-u", user, "--"] {
            parts.push(quote_arg(p));
        }
    }
    for (index, a) in argv.iter().map(AsRef::as_ref).enumerate() {
        if a.contains('\0') {
            let shown: String = a.chars().take(60).collect();
            return Err(NulInArgument {
                index,
                shown: format!("{shown:?}"),
            });
        }
        parts.push(quote_arg(a));
    }
    Ok(parts.join(" "))
}

/// The line a host runs: `timeout -k 2 LIMIT [sudo -n -u USER --] ARGV...`.
/// `timeout` stays outside sudo so sudoers rules for Cyrus tools still match.
pub fn remote_line<S: AsRef<str>>(
    argv: &[S],
    sudo_user: Option<&str>,
    limit_secs: f64,
) -> Result<String, NulInArgument> {
    let limit = format!("{limit_secs:.1}");
    Ok(format!(
        "{} {}",
        command_line(&["timeout", "-k", "2", &limit], None)?,
        command_line(argv, sudo_user)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Round-trip through a real shell: what arrives as argv must equal what we sent.
    fn through_sh(args: &[&str]) -> Vec<String> {
        let mut argv = vec!["printf", "%s\\0"];
        argv.extend_from_slice(args);
        let line = command_line(&argv, None).unwrap();
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
            command_line(&["mbexamine", "a b"], Some("cyrus")).unwrap(),
            "sudo -n -u cyrus -- mbexamine 'a b'"
        );
    }

    #[test]
    fn nul_is_refused_not_truncated() {
        let e = command_line(&["mbexamine", "user/a\0--help"], None).unwrap_err();
        assert_eq!(e.index, 1);
        assert!(
            e.to_string().contains("NUL") && e.to_string().contains("refused"),
            "{e}"
        );
        assert!(remote_line(&["x\0"], None, 5.0).is_err());
        assert_eq!(
            remote_line(&["true"], Some("cyrus"), 5.0).unwrap(),
            "timeout -k 2 5.0 sudo -n -u cyrus -- true"
        );
    }
}
