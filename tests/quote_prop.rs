//! The remote command builder (src/remote/quote.rs) against a real shell:
//! arbitrary arguments — quotes, `$()`, backticks, `;`, newlines, NUL,
//! leading `-`, non-ASCII, 255+ bytes — go through `remote_line` (the very
//! line a host runs: `timeout … ARGV`) into `/bin/sh -c`; ARGV is a helper
//! (`sh -c 'printf "%s\0" "$@"'`) that prints the argv it received,
//! NUL-separated. What arrives must be exactly what was meant, or the builder
//! refuses (NUL cannot be passed in an argv: refused, never truncated).
//! Non-UTF-8 cannot be meant at all: argv are `String`s (checked below).
//! Cases: CYRDECK_QUOTE_CASES or CYRDECK_FUZZ_CASES (default 256). No lab.

use cyrdeck::remote::quote::{quote_arg, remote_line};
use proptest::prelude::*;
use std::path::PathBuf;
use std::process::Command;

/// CYRDECK_QUOTE_CASES, else CYRDECK_FUZZ_CASES, else 256 (each case runs
/// two processes: the long run gives this one fewer cases).
fn cases() -> u32 {
    ["CYRDECK_QUOTE_CASES", "CYRDECK_FUZZ_CASES"]
        .iter()
        .find_map(|k| std::env::var(k).ok().and_then(|v| v.parse().ok()))
        .unwrap_or(256)
}

/// A file that exists only if a payload ran.
fn marker() -> PathBuf {
    std::env::temp_dir().join(format!("cyrdeck-quote-pwned-{}", std::process::id()))
}

/// Pieces a shell treats specially, to be glued together.
fn nasty() -> impl Strategy<Value = String> {
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

fn argument() -> impl Strategy<Value = String> {
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

/// The argv `args` arrive as, through the line a host would run.
fn arrives(args: &[String]) -> Result<Vec<Vec<u8>>, String> {
    let mut argv: Vec<String> = vec![
        "/bin/sh".into(),
        "-c".into(),
        r#"printf '%s\0' "$@""#.into(),
        "helper".into(),
    ];
    argv.extend(args.iter().cloned());
    let line = remote_line(&argv, None, 10.0).map_err(|e| e.to_string())?;
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(&line)
        .output()
        .expect("run /bin/sh");
    assert!(
        out.status.success(),
        "sh failed ({:?}) on {line:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<Vec<u8>> = out.stdout.split(|&b| b == 0).map(<[u8]>::to_vec).collect();
    // printf's output ends with a NUL per argument: drop the empty tail
    assert_eq!(got.pop(), Some(Vec::new()), "output not NUL-terminated");
    if args.is_empty() {
        // printf with no argument still prints its format once
        assert_eq!(got, vec![Vec::<u8>::new()]);
        got.clear();
    }
    Ok(got)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_argument_arrives_exactly_or_is_refused(args in prop::collection::vec(argument(), 0..6)) {
        let has_nul = args.iter().any(|a| a.contains('\0'));
        match arrives(&args) {
            Err(e) => {
                prop_assert!(has_nul, "refused without a NUL: {e}");
                prop_assert!(e.contains("NUL") && e.contains("refused"), "{e}");
            }
            Ok(got) => {
                prop_assert!(!has_nul, "a NUL argument was sent");
                let meant: Vec<Vec<u8>> = args.iter().map(|a| a.as_bytes().to_vec()).collect();
                prop_assert_eq!(got, meant);
            }
        }
        prop_assert!(!marker().exists(), "a payload ran");
    }

    /// One argument with a NUL anywhere: always refused, never cut short.
    #[test]
    fn nul_anywhere_is_refused(before in "[ -~]{0,20}", after in "[ -~]{0,20}") {
        let arg = format!("{before}\0{after}");
        let e = arrives(&[arg]).unwrap_err();
        prop_assert!(e.contains("NUL"), "{}", e);
    }

    /// Quoting is injective: two different arguments never quote alike.
    #[test]
    fn different_arguments_quote_differently(a in argument(), b in argument()) {
        prop_assume!(a != b);
        prop_assert_ne!(quote_arg(&a), quote_arg(&b));
    }
}

#[test]
fn non_utf8_cannot_be_meant() {
    // the builder takes Strings: invalid UTF-8 cannot even be handed to it
    for bytes in [&b"\xff"[..], b"user/\xe9t\xe9", b"\xc3\x28"] {
        assert!(String::from_utf8(bytes.to_vec()).is_err());
    }
}

#[test]
fn long_and_many_arguments_arrive() {
    let long = "é'$(x)`;\n".repeat(2000);
    let many: Vec<String> = (0..500).map(|i| format!("-{i}'")).collect();
    assert_eq!(
        arrives(std::slice::from_ref(&long)).unwrap(),
        vec![long.into_bytes()]
    );
    let got = arrives(&many).unwrap();
    assert_eq!(got.len(), 500);
    assert_eq!(got[499], b"-499'");
    assert!(!marker().exists());
}
