//! Hostile arguments for the quoting property tests (tests/quote_prop.rs
//! through a local sh, tests/quote_lab.rs through the lab's sshd): pieces a
//! shell treats specially, glued together, and arbitrary strings.

#![allow(dead_code)]

use proptest::prelude::*;
use std::path::PathBuf;

/// A file that exists only if a payload ran.
pub fn marker() -> PathBuf {
    std::env::temp_dir().join(format!("cyrdeck-quote-pwned-{}", std::process::id()))
}

/// Pieces a shell treats specially, to be glued together.
pub fn nasty() -> impl Strategy<Value = String> {
    let m = marker().display().to_string();
    prop_oneof![
        Just("'".to_string()),
        Just("\"".to_string()),
        Just("'\\''".to_string()),
        Just(format!("$(touch {m})")),
        Just(format!("`touch {m}`")),
        Just(format!(";touch {m};")),
        Just(format!("\ntouch {m}\n")),
        Just(format!("&& touch {m}")),
        Just(format!("| touch {m}")),
        Just("$HOME".to_string()),
        Just("${IFS}".to_string()),
        Just("\\".to_string()),
        Just("-".to_string()),
        Just("--help".to_string()),
        Just("-C/etc/passwd".to_string()),
        Just("*".to_string()),
        Just("?[a]".to_string()),
        Just("~".to_string()),
        Just("!".to_string()),
        Just("#".to_string()),
        Just("{a,b}".to_string()),
        Just("<>".to_string()),
        Just(" ".to_string()),
        Just("\t".to_string()),
        Just("\r".to_string()),
        Just("Entwürfe 日本 😀".to_string()),
        Just("\u{7f}\u{1b}[31m".to_string()),
        Just("x".repeat(300)),
        "[ -~]{0,8}",
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

pub fn argument() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(nasty(), 0..6).prop_map(|v| v.concat()),
        // arbitrary bytes, as far as a String can hold them
        prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        any::<String>(),
        // control characters too (any::<String>() draws printable ones only)
        prop::collection::vec(any::<char>(), 0..40).prop_map(String::from_iter),
    ]
}

/// A helper that prints the argv it receives, NUL-separated, then `args`.
pub fn printing_argv(args: &[String]) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "/bin/sh".into(),
        "-c".into(),
        r#"printf '%s\0' "$@""#.into(),
        "helper".into(),
    ];
    argv.extend(args.iter().cloned());
    argv
}

/// The argv the helper received, from its output.
pub fn received(stdout: &[u8], nargs: usize) -> Vec<Vec<u8>> {
    let mut got: Vec<Vec<u8>> = stdout.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    // printf's output ends with a NUL per argument: drop the empty tail
    assert_eq!(got.pop(), Some(Vec::new()), "output not NUL-terminated");
    if nargs == 0 {
        // printf with no argument still prints its format once
        assert_eq!(got, vec![Vec::<u8>::new()]);
        got.clear();
    }
    got
}

/// The property: what was meant arrived exactly, or the builder refused an
/// argument holding a NUL (it cannot be passed in an argv) — and no payload
/// ran.
pub fn judge(args: &[String], outcome: Result<Vec<Vec<u8>>, String>) -> Result<(), TestCaseError> {
    let has_nul = args.iter().any(|a| a.contains('\0'));
    match outcome {
        Err(e) => {
            prop_assert!(has_nul, "refused without a NUL: {e}");
            prop_assert!(e.contains("NUL"), "{e}");
        }
        Ok(got) => {
            prop_assert!(!has_nul, "a NUL argument was sent");
            let meant: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
            prop_assert_eq!(got, meant);
        }
    }
    prop_assert!(!marker().exists(), "a payload ran");
    Ok(())
}
