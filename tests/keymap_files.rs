//! Keymap merge and conflict rules, with fixture files.

use cyrdeck::console::keymap::{Command, Context, Key, Keymap, Lookup};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keymaps")
        .join(name)
}

fn k(s: &str) -> Key {
    Key::parse(s).unwrap()
}

fn load(name: &str) -> (Keymap, Vec<String>) {
    Keymap::load(Some(&fixture(name)), true)
}

#[test]
fn user_file_merges_over_defaults() {
    let (km, errors) = load("rebind_ok.toml");
    assert!(errors.is_empty(), "{errors:?}");
    assert_eq!(
        km.lookup(Context::Queue, &[k("q")]),
        Lookup::Command(Command::Help)
    );
    assert_eq!(
        km.lookup(Context::Queue, &[k("<C-x>")]),
        Lookup::Command(Command::Refresh)
    );
    // only in [queue]
    assert_eq!(km.lookup(Context::Log, &[k("<C-x>")]), Lookup::Unbound);
    assert_eq!(
        km.lookup(Context::Log, &[k("e"), k("e")]),
        Lookup::Command(Command::CycleSeverity)
    );
    // defaults not rebound stay
    assert_eq!(
        km.lookup(Context::Queue, &[k("j")]),
        Lookup::Command(Command::Down)
    );
    assert_eq!(
        km.lookup(Context::Queue, &[k("<C-c>")]),
        Lookup::Command(Command::Quit)
    );
}

#[test]
fn rebinding_without_override_names_both_entries_and_keeps_defaults() {
    let (km, errors) = load("conflict.toml");
    assert_eq!(errors.len(), 1, "{errors:?}");
    let e = &errors[0];
    assert!(e.contains("conflict.toml:1"), "{e}");
    assert!(e.contains("keymap.toml (built in):"), "{e}");
    assert!(e.contains("`up`") && e.contains("`down`"), "{e}");
    assert!(e.contains("override = true"), "{e}");
    assert_eq!(
        km.lookup(Context::Global, &[k("j")]),
        Lookup::Command(Command::Down)
    );
}

#[test]
fn a_key_bound_twice_in_one_file_is_an_error() {
    let (_, errors) = load("twice_in_file.toml");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("twice_in_file.toml:5"), "{errors:?}");
    assert!(errors[0].contains("twice_in_file.toml:1"), "{errors:?}");
}

#[test]
fn a_key_that_shadows_a_chord_is_a_conflict() {
    let (km, errors) = load("chord_prefix.toml");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("g g"), "{errors:?}");
    assert_eq!(km.lookup(Context::Global, &[k("g")]), Lookup::Prefix);
}

#[test]
fn unknown_command_is_an_error_listing_the_commands() {
    let (km, errors) = load("unknown_command.toml");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("unknown command `format_disk`"),
        "{errors:?}"
    );
    assert!(errors[0].contains("quit"), "{errors:?}");
    assert_eq!(km.lookup(Context::Global, &[k("z")]), Lookup::Unbound);
}

#[test]
fn bad_key_and_unknown_section_are_both_reported() {
    let (_, errors) = load("bad_key_and_section.toml");
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors.iter().any(|e| e.contains("Hyper")), "{errors:?}");
    assert!(
        errors.iter().any(|e| e.contains("[nosuchview]")),
        "{errors:?}"
    );
}

#[test]
fn broken_files_never_panic_and_keep_defaults() {
    for name in ["not_toml.toml", "binary.toml", "does_not_exist.toml"] {
        let (km, errors) = load(name);
        assert!(!errors.is_empty(), "{name}: no error");
        assert!(errors[0].contains(name), "{name}: {errors:?}");
        assert_eq!(
            km.lookup(Context::Global, &[k("q")]),
            Lookup::Command(Command::Quit)
        );
    }
    // the XDG default path may be absent without complaint
    let (_, errors) = Keymap::load(Some(&fixture("does_not_exist.toml")), false);
    assert!(errors.is_empty());
}

#[test]
fn every_default_command_has_a_key_and_help_text() {
    let km = Keymap::defaults();
    for (ctx, _) in Context::ALL {
        for (b, _) in km.active(*ctx) {
            assert!(!b.desc.is_empty(), "{} has no description", b.keys_label());
        }
    }
    for cmd in [
        Command::Quit,
        Command::Help,
        Command::Filter,
        Command::CommandLine,
        Command::NextView,
        Command::Back,
    ] {
        assert!(
            km.key_for(Context::Overview, cmd).is_some(),
            "{cmd:?} unbound"
        );
    }
}
