//! The `:` command line: parsing and Tab completion (commands first, then
//! mailbox and user names seen in the data).

use super::keymap::Command;
use super::view_id::ViewId;

#[derive(Default)]
pub struct Words {
    pub runbooks: Vec<String>,
    /// Mailbox names (and users' INBOX forms).
    pub names: Vec<String>,
    pub users: Vec<String>,
    pub pairs: Vec<String>,
    pub hosts: Vec<String>,
    /// Sync log channels ("default" for `""`).
    pub channels: Vec<String>,
}

impl Words {
    /// What the argument of `verb` is: each runbook's from its spec's
    /// target (so a new runbook completes right with no change here), a
    /// view's filter and `:check` from the names.
    fn for_argument(&self, verb: &str) -> Vec<&str> {
        fn all(v: &[String]) -> Vec<&str> {
            v.iter().map(String::as_str).collect()
        }
        if let Some(spec) = crate::ops::registry::by_id(verb) {
            let t = spec.target;
            return if t.contains("pair") {
                all(&self.pairs)
            } else if t.contains("mailbox") {
                all(&self.names)
            } else if t.contains("user") {
                all(&self.users)
            } else if t.contains("channel") {
                all(&self.channels)
            } else if t.contains("host") {
                all(&self.hosts)
            } else {
                vec![]
            };
        }
        match verb {
            "user" => all(&self.users),
            "mailbox" | "check" => all(&self.names),
            v if ViewId::from_name(v).is_some() => all(&self.names),
            _ => vec![],
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Parsed {
    Command(Command),
    View(ViewId),
    /// Switch to a view with this filter.
    FilterIn(ViewId, String),
    Runbook {
        id: String,
        target: String,
        /// `--pair NAME` after the target (several pairs configured).
        pair: Option<String>,
        /// `--NAME VALUE` after the target: the runbook's options
        /// (RunbookSpec::options, e.g. `:repair bob --replica-only copy-back`).
        options: Vec<(String, String)>,
    },
    /// `:check`, `:check alice`, `:check user/alice/Sent`.
    Check(crate::check::Scope),
}

const VERBS: &[&str] = &[
    "quit",
    "help",
    "refresh",
    "doctor",
    "overview",
    "queue",
    "stuck",
    "conflicts",
    "log",
    "runbooks",
    "mailbox",
    "user",
];

/// The `:` commands with their arguments, for the help (runbooks are
/// listed from their specs: `:ID TARGET [--pair P] [--OPTION VALUE]`).
pub const HELP: &[(&str, &str)] = &[
    (
        ":VIEW [FILTER]",
        "a view (overview queue stuck conflicts log runbooks), filtered",
    ),
    (":user NAME", "the Queue filtered to a user"),
    (":mailbox NAME", "the Queue filtered to a mailbox"),
    (
        ":check [USER|MAILBOX]",
        "integrity check: the pair, a user, a mailbox",
    ),
    (":refresh", "refresh now"),
    (":doctor", "re-read the hosts' config"),
    (":help", "this help"),
    (":q  :quit", "quit"),
];

pub fn parse(line: &str, runbooks: &[String]) -> Result<Parsed, String> {
    let line = line.trim();
    // a command line typed over a prefilled one (`repair :repair alice`,
    // Enter on a runbook then `:` out of habit): the typed one is meant,
    // never a target named ":repair alice" (issue 30, item 5)
    const VERBS: [&str; 9] = [
        "q", "quit", "help", "refresh", "doctor", "check", "mailbox", "user", "failover",
    ];
    let verb_of = |t: &str| t.split_whitespace().next().unwrap_or("").to_string();
    let line = match line.split_once(" :") {
        Some((_, typed))
            if VERBS.contains(&verb_of(typed).as_str()) || runbooks.contains(&verb_of(typed)) =>
        {
            typed.trim()
        }
        _ => line.strip_prefix(':').unwrap_or(line).trim(),
    };
    let (verb, arg) = match line.split_once(char::is_whitespace) {
        Some((v, a)) => (v, a.trim()),
        None => (line, ""),
    };
    let need_arg = |what: &str| -> Result<String, String> {
        if arg.is_empty() {
            Err(format!(":{verb} needs a {what}"))
        } else {
            Ok(arg.to_string())
        }
    };
    Ok(match verb {
        "" => return Err("empty command".into()),
        "q" | "quit" => Parsed::Command(Command::Quit),
        "help" => Parsed::Command(Command::Help),
        "refresh" => Parsed::Command(Command::Refresh),
        "doctor" => Parsed::Command(Command::RunDoctor),
        "check" => Parsed::Check(if arg.is_empty() {
            crate::check::Scope::default()
        } else if arg.contains('/') {
            crate::check::Scope {
                mailbox: Some(arg.to_string()),
                user: None,
            }
        } else {
            crate::check::Scope {
                user: Some(arg.to_string()),
                mailbox: None,
            }
        }),
        "mailbox" => Parsed::FilterIn(ViewId::Queue, regex::escape(&need_arg("mailbox name")?)),
        "user" => Parsed::FilterIn(
            ViewId::Queue,
            format!("^{} ", regex::escape(&need_arg("user name")?)),
        ),
        v if ViewId::from_name(v).is_some() => {
            let view = ViewId::from_name(v).unwrap_or(ViewId::Overview);
            if arg.is_empty() {
                Parsed::View(view)
            } else {
                Parsed::FilterIn(view, arg.to_string())
            }
        }
        v if runbooks.iter().any(|r| r == v) => {
            let mut target = need_arg("target")?;
            let spec = crate::ops::registry::by_id(v);
            let (mut pair, mut options) = (None, Vec::new());
            // `--NAME VALUE` pairs peeled off the end (a target may hold
            // spaces, never ` --`)
            while let Some((t, tail)) = target.rsplit_once(" --") {
                let Some((name, value)) = tail.trim().split_once(' ') else {
                    break;
                };
                let value = value.trim().to_string();
                if value.is_empty() || value.contains(' ') {
                    break;
                }
                if name == "pair" {
                    pair = Some(value);
                } else if let Some(spec) = &spec {
                    spec.check_option(name, &value)?;
                    options.insert(0, (name.to_string(), value));
                } else {
                    break;
                }
                target = t.trim().to_string();
            }
            Parsed::Runbook {
                id: v.to_string(),
                target,
                pair,
                options,
            }
        }
        v => {
            return Err(format!(
                "unknown command :{v} (commands: {}, {})",
                VERBS.join(", "),
                runbooks.join(", ")
            ))
        }
    })
}

/// Tab on the command line: the line before the word being completed, the
/// new line and, when the word stays ambiguous, the candidates (further
/// Tabs cycle through them).
#[derive(Debug, PartialEq)]
pub struct Completion {
    pub head: String,
    pub line: String,
    pub candidates: Vec<String>,
}

/// Complete the last word of `line`: a command first, then a name.
pub fn complete(line: &str, words: &Words) -> Completion {
    let (head, last) = match line.rfind(' ') {
        Some(i) => (&line[..=i], &line[i + 1..]),
        None => ("", line),
    };
    let verb = head.split_whitespace().next().unwrap_or("");
    let prev = head.split_whitespace().last().unwrap_or("");
    // replace-replica's OLD:NEW: the part after the colon is a host too
    let host_pair = crate::ops::registry::by_id(verb).is_some_and(|s| s.target.contains("host"));
    let (head, last) = match last.rsplit_once(':') {
        Some((old, new)) if host_pair => (format!("{head}{old}:"), new),
        _ => (head.to_string(), last),
    };
    let head = head.as_str();
    let pool: Vec<&str> = if head.is_empty() {
        VERBS
            .iter()
            .copied()
            .chain(["check"])
            .chain(words.runbooks.iter().map(String::as_str))
            .collect()
    } else if prev == "--pair" {
        words.pairs.iter().map(String::as_str).collect()
    } else {
        words.for_argument(verb)
    };
    let mut cands: Vec<String> = pool
        .into_iter()
        .filter(|w| w.starts_with(last))
        .map(str::to_string)
        .collect();
    cands.sort();
    cands.dedup();
    let line = match cands.as_slice() {
        [] => line.to_string(),
        // a command takes an argument: the space comes with it
        [one] => format!("{head}{one}{}", if head.is_empty() { " " } else { "" }),
        many => {
            let mut prefix = many[0].clone();
            for c in &many[1..] {
                while !c.starts_with(&prefix) {
                    prefix.pop();
                }
            }
            format!("{head}{prefix}")
        }
    };
    if cands.len() < 2 {
        cands.clear();
    }
    Completion {
        head: head.to_string(),
        line,
        candidates: cands,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words() -> Words {
        Words {
            runbooks: vec!["resync".into(), "failover".into(), "quarantine".into()],
            names: vec![
                "user/alice".into(),
                "user/alice/Sent".into(),
                "user/bob".into(),
            ],
            users: vec!["alice".into(), "bob".into(), "carol".into()],
            pairs: vec!["lab".into(), "east".into()],
            hosts: vec!["replica".into(), "replica2".into(), "spare".into()],
            channels: vec!["default".into(), "replica2".into()],
        }
    }

    /// Issue 30 (9): Tab after `:failover` offered mailbox names, after
    /// `:user ca` nothing.
    #[test]
    fn each_argument_completes_from_its_own_kind() {
        assert_eq!(complete("failover l", &words()).line, "failover lab");
        assert_eq!(complete("failover u", &words()).line, "failover u");
        assert_eq!(complete("user ca", &words()).line, "user carol");
        assert_eq!(complete("quarantine b", &words()).line, "quarantine bob");
        assert_eq!(
            complete("quarantine bob --pair e", &words()).line,
            "quarantine bob --pair east"
        );
        assert_eq!(
            complete("replace-replica replica2:sp", &words()).line,
            "replace-replica replica2:spare"
        );
        assert_eq!(complete("restart re", &words()).line, "restart replica2");
        assert_eq!(complete("quit x", &words()).line, "quit x");
        assert_eq!(complete("che", &words()).line, "check ");
    }

    /// Issue 30 (5): Enter on a runbook prefilled `repair `; a reflexive
    /// `:repair alice` made ":repair alice" the mailbox to repair.
    #[test]
    fn a_command_typed_over_a_prefilled_line_is_the_command() {
        let rb = vec!["repair".to_string(), "resync".to_string()];
        let want = || Parsed::Runbook {
            id: "repair".into(),
            target: "user/alice".into(),
            pair: None,
            options: vec![],
        };
        assert_eq!(parse("repair :repair user/alice", &rb), Ok(want()));
        assert_eq!(parse(":repair user/alice", &rb), Ok(want()));
        // a name with " :" in it that is no command stays the name
        match parse("resync user/bob/a :b", &rb) {
            Ok(Parsed::Runbook { target, .. }) => assert_eq!(target, "user/bob/a :b"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn completes_commands_then_names() {
        assert_eq!(complete("que", &words()).line, "queue ");
        assert_eq!(complete("res", &words()).line, "resync ");
        let c = complete("resync user/a", &words());
        assert_eq!(c.line, "resync user/alice");
        assert_eq!(c.head, "resync ");
        assert_eq!(c.candidates, vec!["user/alice", "user/alice/Sent"]);
        assert_eq!(complete("resync user/b", &words()).line, "resync user/bob");
        assert_eq!(complete("zzz", &words()).line, "zzz");
    }

    #[test]
    fn runbook_options_after_the_target() {
        let rb = vec!["repair".to_string(), "reintegrate".to_string()];
        assert_eq!(
            parse(
                "repair user/bob/Old Stuff --replica-only copy-back --pair east",
                &rb
            ),
            Ok(Parsed::Runbook {
                id: "repair".into(),
                target: "user/bob/Old Stuff".into(),
                pair: Some("east".into()),
                options: vec![("replica-only".into(), "copy-back".into())],
            })
        );
        let e = parse("repair bob --replica-only maybe", &rb).unwrap_err();
        assert!(e.contains("report, copy-back"), "{e}");
        let e = parse("repair bob --uid-policy soft", &rb).unwrap_err();
        assert!(e.contains("no option --uid-policy"), "{e}");
        match parse("reintegrate lab --uid-policy easy", &rb) {
            Ok(Parsed::Runbook { options, .. }) => {
                assert_eq!(options, vec![("uid-policy".into(), "easy".into())])
            }
            other => panic!("{other:?}"),
        }
        match parse("reintegrate lab --uid-policy soft", &rb) {
            Ok(Parsed::Runbook { options, .. }) => {
                assert_eq!(options, vec![("uid-policy".into(), "soft".into())])
            }
            other => panic!("{other:?}"),
        }
        assert!(parse("reintegrate lab --uid-policy hard", &rb).is_err());
    }

    #[test]
    fn parses() {
        let rb = vec!["resync".to_string(), "quarantine".to_string()];
        assert_eq!(parse("q", &rb), Ok(Parsed::Command(Command::Quit)));
        assert_eq!(parse("queue", &rb), Ok(Parsed::View(ViewId::Queue)));
        assert_eq!(
            parse("log bob", &rb),
            Ok(Parsed::FilterIn(ViewId::Log, "bob".into()))
        );
        assert_eq!(
            parse("mailbox user/a.b", &rb),
            Ok(Parsed::FilterIn(ViewId::Queue, "user/a\\.b".into()))
        );
        assert_eq!(
            parse("resync user/alice/Sent Items", &rb),
            Ok(Parsed::Runbook {
                id: "resync".into(),
                target: "user/alice/Sent Items".into(),
                pair: None,
                options: vec![],
            })
        );
        assert_eq!(
            parse("quarantine alice --pair east", &rb),
            Ok(Parsed::Runbook {
                id: "quarantine".into(),
                target: "alice".into(),
                pair: Some("east".into()),
                options: vec![],
            })
        );
        assert!(parse("resync", &rb).is_err());
        assert!(parse("frobnicate", &rb)
            .unwrap_err()
            .contains("unknown command"));
    }
}
