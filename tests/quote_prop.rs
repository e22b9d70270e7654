//! The remote command builder (src/remote/quote.rs) against a real shell:
//! arbitrary arguments — quotes, `$()`, backticks, `;`, newlines, NUL,
//! leading `-`, non-ASCII, 255+ bytes — go through `remote_line` (the very
//! line a host runs: `timeout … ARGV`) into `/bin/sh -c`; ARGV is a helper
//! (`sh -c 'printf "%s\0" "$@"'`) that prints the argv it received,
//! NUL-separated. What arrives must be exactly what was meant, or the builder
//! refuses (NUL cannot be passed in an argv: refused, never truncated).
//! Non-UTF-8 cannot be meant at all: argv are `String`s (checked below).
//! Cases: CYRDECK_QUOTE_CASES or CYRDECK_FUZZ_CASES (default 256). No lab.

mod hostile_args;

use cyrdeck::remote::quote::{quote_arg, remote_line};
use hostile_args::{argument, judge, marker, printing_argv, received};
use proptest::prelude::*;
use std::process::Command;

/// CYRDECK_QUOTE_CASES, else CYRDECK_FUZZ_CASES, else 256 (each case runs
/// two processes: the long run gives this one fewer cases).
fn cases() -> u32 {
    ["CYRDECK_QUOTE_CASES", "CYRDECK_FUZZ_CASES"]
        .iter()
        .find_map(|k| std::env::var(k).ok().and_then(|v| v.parse().ok()))
        .unwrap_or(256)
}

/// The argv `args` arrive as, through the line a host would run.
fn arrives(args: &[String]) -> Result<Vec<Vec<u8>>, String> {
    let line = remote_line(&printing_argv(args), None, 10.0).map_err(|e| e.to_string())?;
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
    Ok(received(&out.stdout, args.len()))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_argument_arrives_exactly_or_is_refused(args in prop::collection::vec(argument(), 0..6)) {
        let outcome = arrives(&args);
        if let Err(e) = &outcome {
            prop_assert!(e.contains("refused"), "{e}");
        }
        judge(&args, outcome)?;
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
