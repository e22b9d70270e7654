//! inventory.pl walks twoskip files itself (users' seen dbs, mailboxes'
//! cyrus.annotations): one cyr_dbtool per file would cost a process each
//! on a big site. Checked here against Cyrus's own reader on files Cyrus's
//! own writer made: sets, replacements and deletes in many transactions,
//! a repack, a key long enough for the 64-bit length field.

use cyrdeck::cyrus::inventory::SCRIPT;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const DBTOOL: &str = "/usr/lib/cyrus/bin/cyr_dbtool";

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cyrdeck-twoskip-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    // cyr_dbtool run as root becomes the cyrus user, who must write here
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::fs::write(
        d.join("imapd.conf"),
        format!("configdirectory: {}\n", d.display()),
    )
    .unwrap();
    d
}

/// Cyrus's writer: `lines` on stdin ("key\tvalue" for set, "key" for delete).
fn dbtool(d: &Path, action: &str, lines: &str) {
    let mut c = Command::new(DBTOOL)
        .arg("-C")
        .arg(d.join("imapd.conf"))
        .arg("-n")
        .arg(d.join("t.db"))
        .args(["twoskip", action])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{DBTOOL} (cyrus-common, installed by scripts/setup.sh): {e}"));
    use std::io::Write;
    c.stdin.take().unwrap().write_all(lines.as_bytes()).unwrap();
    assert!(c.wait().unwrap().success(), "cyr_dbtool {action}");
}

/// Cyrus's reader: every live record.
fn cyrus_view(d: &Path) -> BTreeMap<String, String> {
    let out = Command::new(DBTOOL)
        .arg("-C")
        .arg(d.join("imapd.conf"))
        .arg(d.join("t.db"))
        .args(["twoskip", "show"])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// inventory.pl's `twoskip` mode on DIR/t.db: what it printed.
fn dump(d: &Path) -> String {
    let out = Command::new("perl")
        .args(["-e", SCRIPT])
        .arg(d.join("imapd.conf"))
        .args(["/usr/lib/cyrus/bin", "twoskip"])
        .arg(d.join("t.db"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// inventory.pl's reader, records in file order.
fn our_view(d: &Path) -> Vec<(String, String)> {
    let text = dump(d);
    assert!(!text.contains("@@error"), "{text}");
    let unhex = |h: &str| {
        let b: Vec<u8> = (0..h.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
            .collect();
        String::from_utf8(b).unwrap()
    };
    text.lines()
        .filter_map(|l| l.strip_prefix("K\t"))
        .map(|l| {
            let (k, v) = l.split_once('\t').unwrap();
            (unhex(k), unhex(v))
        })
        .collect()
}

fn same(d: &Path, when: &str) -> usize {
    let ours = our_view(d);
    let keys: Vec<&String> = ours.iter().map(|(k, _)| k).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(keys.len(), sorted.len(), "{when}: a key listed twice");
    let ours: BTreeMap<String, String> = ours.into_iter().collect();
    let theirs = cyrus_view(d);
    assert_eq!(ours.len(), theirs.len(), "{when}: record counts");
    assert_eq!(ours, theirs, "{when}");
    theirs.len()
}

#[test]
fn the_perl_reader_sees_what_cyrus_sees_through_sets_replacements_deletes_and_a_repack() {
    let d = scratch("walk");
    let mut state: u64 = 7;
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut live = std::collections::BTreeSet::new();
    for round in 0..6 {
        // one batch of sets (new keys and replacements) per call
        let mut sets = String::new();
        for _ in 0..150 {
            let k = next() % 400;
            sets.push_str(&format!("key{k:04}\t1 {round} {k} {} 1:{k}\n", next() % 9));
            live.insert(k);
        }
        dbtool(&d, "set", &sets);
        // deletes, some of keys never set
        let mut dels = String::new();
        for _ in 0..40 {
            let k = next() % 450;
            if live.remove(&k) {
                dels.push_str(&format!("key{k:04}\n"));
            }
        }
        dbtool(&d, "delete", &dels);
        let n = same(&d, &format!("round {round}"));
        assert_eq!(n, live.len(), "round {round}");
    }
    dbtool(&d, "repack", "");
    assert_eq!(same(&d, "after repack"), live.len());
    // a key over 65,534 bytes takes twoskip's 64-bit length field
    // (as arguments: cyr_dbtool's stdin reader overflows on such a line)
    let long = "L".repeat(70_000);
    let st = Command::new(DBTOOL)
        .arg("-C")
        .arg(d.join("imapd.conf"))
        .arg(d.join("t.db"))
        .args(["twoskip", "set", &long, "long key"])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(same(&d, "long key"), live.len() + 1);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_file_that_is_not_twoskip_is_an_error_not_an_empty_list() {
    let d = scratch("garbage");
    std::fs::write(
        d.join("t.db"),
        b"\x00garbage that is not a twoskip header at all, long enough to read",
    )
    .unwrap();
    let text = dump(&d);
    assert!(
        text.contains("@@error") && text.contains("not a twoskip file"),
        "{text}"
    );
    assert!(!text.contains("K\t"), "{text}");
    let _ = std::fs::remove_dir_all(&d);
}
