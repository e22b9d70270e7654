//! `cyrdeck completions SHELL` and `cyrdeck man`, run as the built binary:
//! no config, no lab, nothing on stderr.

use std::process::Command;

fn run(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_cyrdeck"))
        .args(args)
        // the commands must not read any config
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    assert!(out.stderr.is_empty(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool} >/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn bash_completion_names_the_subcommands_and_parses() {
    let script = run(&["completions", "bash"]);
    for word in [
        "failover",
        "supervise",
        "status",
        "check",
        "--metrics-listen",
    ] {
        assert!(script.contains(word), "{word} missing");
    }
    let dir = std::env::temp_dir().join(format!("cyrdeck-cli-shell-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("cyrdeck.bash");
    std::fs::write(&file, &script).unwrap();
    let ok = Command::new("bash").arg("-n").arg(&file).status().unwrap();
    assert!(ok.success(), "bash -n rejects the script");
    // sourced, it registers the completion function
    let registered = Command::new("bash")
        .args(["-c", "source \"$0\" && complete -p cyrdeck"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(registered.status.success(), "{registered:?}");
    // --pair and a failover's TARGET complete from the config's names
    // (issue 30, item 9: bash offered no pair or host name)
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "[defaults]\nknown_hosts = \"/tmp/kh\"\n[hosts.mx1]\nssh = \"root@127.0.0.1:2201\"\n\
         [hosts.mx2]\nssh = \"root@127.0.0.1:2202\"\n[pairs.east]\nmaster = \"mx1\"\n\
         replicas = [ { host = \"mx2\" } ]\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_cyrdeck");
    let bin_dir = std::path::Path::new(bin).parent().unwrap();
    let complete = |words: &str| -> String {
        let script = format!(
            "source \"$0\"; COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
             _cyrdeck_config_names cyrdeck; printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let o = Command::new("bash")
            .args(["-c", &script])
            .arg(&file)
            .env("PATH", format!("{}:/usr/bin:/bin", bin_dir.display()))
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let c = cfg.display();
    assert_eq!(
        complete(&format!("cyrdeck --config {c} status --pair e")),
        "east\n"
    );
    assert_eq!(
        complete(&format!("cyrdeck --config {c} run failover ''")),
        "east\n"
    );
    assert_eq!(
        complete(&format!("cyrdeck --config {c} run replace-replica mx")),
        "mx1\nmx2\n"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 30 (9): `run --help` listed four runbooks of ten and completion
/// offered none: both now come from the registry.
#[test]
fn run_help_and_completion_name_every_runbook_of_the_registry() {
    let help = run(&["run", "--help"]);
    let bash = run(&["completions", "bash"]);
    for spec in cyrdeck::ops::registry::available() {
        assert!(
            help.contains(&format!("- {}:", spec.id())),
            "{} missing from run --help:\n{help}",
            spec.id()
        );
        assert!(
            bash.contains(spec.id()),
            "{} missing from completion",
            spec.id()
        );
    }
    assert!(!help.contains("the only policy"), "{help}");
    assert!(run(&["run", "--help"]).contains("[possible values: easy, soft]"));
}

#[test]
fn zsh_and_fish_completions() {
    let zsh = run(&["completions", "zsh"]);
    assert!(
        zsh.starts_with("#compdef cyrdeck"),
        "{}",
        &zsh[..40.min(zsh.len())]
    );
    assert!(zsh.contains("supervise"));
    let fish = run(&["completions", "fish"]);
    assert!(fish.contains("complete -c cyrdeck"));
    assert!(fish.contains("failover"));
    for (shell, script) in [("zsh", &zsh), ("fish", &fish)] {
        if !have(shell) {
            continue;
        }
        let flag = if shell == "fish" {
            "--no-execute"
        } else {
            "-n"
        };
        let mut child = Command::new(shell)
            .arg(flag)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(
            child.wait().unwrap().success(),
            "{shell} rejects its script"
        );
    }
}

#[test]
fn unknown_shell_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_cyrdeck"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_page_is_roff_and_names_the_commands() {
    let page = run(&["man"]);
    // the first request after roff's quote-character preamble (`.ie`/`.el`
    // defining \*(Aq, which clap_mangen always puts first) is the title
    let first = page
        .lines()
        .find(|l| !l.starts_with(".ie ") && !l.starts_with(".el "))
        .unwrap_or_default();
    assert!(first.starts_with(".TH cyrdeck 1"), "{first:?}");
    assert!(page.contains("\n.SH NAME\n"));
    for word in ["supervise", "failover", "check"] {
        assert!(page.contains(word), "{word} missing");
    }
    if have("man") {
        let dir = std::env::temp_dir().join(format!("cyrdeck-man-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("cyrdeck.1");
        std::fs::write(&file, &page).unwrap();
        let out = Command::new("man")
            .arg("-l")
            .arg(&file)
            .env("MANPAGER", "cat")
            .env("PAGER", "cat")
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        // man may be a stub (minimized images): only a real one is checked
        if out.status.success() && !out.stdout.is_empty() {
            assert!(String::from_utf8_lossy(&out.stdout).contains("supervise"));
        }
    }
}

#[test]
fn man_dir_writes_a_page_per_command() {
    let dir = std::env::temp_dir().join(format!("cyrdeck-man-dir-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    run(&["man", "--dir", dir.to_str().unwrap()]);
    let page = std::fs::read_to_string(dir.join("cyrdeck-supervise.1")).unwrap();
    assert!(page.contains("metrics\\-listen"), "{page}");
    assert!(dir.join("cyrdeck.1").exists());
    assert!(dir.join("cyrdeck-lab-up.1").exists());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 30 (7): an error is one plain line on stderr into a pipe (no
/// colour codes, no "Location:" nor backtrace: it is not a crash) and
/// exit 2, never 1 (which means "findings").
#[test]
fn an_error_is_one_plain_line_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("cyrdeck-cli-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("cyrdeck.toml");
    std::fs::write(
        &cfg,
        "[hosts.a]\nssh = \"root@127.0.0.1:1\"\nimapd_conf = \"/etc/imapd.conf\"\n\n[hosts.b]\nssh = \"root@127.0.0.2:1\"\nimapd_conf = \"/etc/imapd.conf\"\n\n[pairs.p]\nmaster = \"a\"\nreplicas = [ { host = \"b\", channel = \"\" } ]\n",
    )
    .unwrap();
    for args in [
        vec!["--config", "/nonexistent/cyrdeck.toml", "conflicts"],
        vec![
            "--config",
            cfg.to_str().unwrap(),
            "doctor",
            "--pair",
            "nosuch",
        ],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cyrdeck"))
            .args(&args)
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("cyrdeck: "), "{args:?}: {err}");
        assert!(
            !err.contains('\x1b') && !err.contains("Location"),
            "{args:?}: {err}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}
