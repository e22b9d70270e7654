//! Fuzzing every parser of remote or operator input with proptest (cargo-fuzz
//! needs nightly; this runs on stable): arbitrary bytes AND structure-aware
//! mutations of real fixtures (tests/fixtures/*), asserting no panic and,
//! where meaningful, a property (parse(render(x)) == x; the probe's log
//! framing never reads outside its chunk, whatever the chunk holds).
//!
//! Cases per target: CYRDECK_FUZZ_CASES (default 256: the CI run takes a few
//! seconds). scripts/fuzz.sh runs the long version and prints, per target,
//! the executions and the time. No lab.

use cyrdeck::console::keymap::{Key, Keymap};
use cyrdeck::cyrus::logtime::{parse_rfc3339, parse_traditional, HostZone, LineClock};
use cyrdeck::cyrus::{doctor, index, inventory, journald, loglines, mbexamine, probe, synclog};
use cyrdeck::remote::known_hosts::KnownHosts;
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestCaseError, TestRunner};
use std::fmt::Debug;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

fn cases() -> u32 {
    std::env::var("CYRDECK_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Run `check` on `cases()` values of `strategy`; print executions and time
/// (scripts/fuzz.sh collects these lines). A panic inside is a failure that
/// proptest shrinks to a minimal input.
fn fuzz<S>(name: &str, strategy: S, check: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S: Strategy,
    S::Value: Debug,
{
    let mut runner = TestRunner::new(RunnerConfig {
        cases: cases(),
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let runs = AtomicU64::new(0);
    let started = Instant::now();
    let res = runner.run(&strategy, |v| {
        runs.fetch_add(1, Ordering::Relaxed);
        check(v)
    });
    eprintln!(
        "fuzz {name}: {} executions in {:.2} s",
        runs.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = res {
        panic!("fuzz {name}: {e}");
    }
}

// ---------------------------------------------------------------- mutations

const PROBE_MASTER: &[u8] = include_bytes!("fixtures/probe_master.txt");
const PROBE_DOWN: &[u8] = include_bytes!("fixtures/probe_replica_down.txt");
const SYSLOG_RFC3339: &str = include_str!("fixtures/syslog_replica_down.txt");
const SYSLOG_TRADITIONAL: &str = include_str!("fixtures/syslog_traditional.txt");
const JOURNAL: &str = include_str!("fixtures/journal_cyrus.json");
const KEYMAP_DEFAULT: &str = include_str!("../keymap.toml");
const KEYMAP_REBIND: &str = include_str!("fixtures/keymaps/rebind_ok.toml");
const KEYMAP_CHORD: &str = include_str!("fixtures/keymaps/chord_prefix.toml");
const KNOWN_HOSTS: &str = include_str!("fixtures/known_hosts/plain");
const KNOWN_HOSTS_HASHED: &str = include_str!("fixtures/known_hosts/hashed_by_ssh_keygen");
const KEYS: &str = include_str!("fixtures/known_hosts/keys.pub");

const CONFIG: &str = r#"# a realistic cyrdeck.toml
[defaults]
known_hosts = "/tmp/kh"
refresh_secs = 1.5
connect_timeout_secs = 4
exec_timeout_secs = 20
audit_log = "/tmp/audit.log"

[hosts.m]
ssh = "root@127.0.0.1:2201"
imapd_conf = "/etc/imapd.conf"
cyrus_conf = "/etc/cyrus.conf"
bin_dir = "/usr/lib/cyrus/bin"
syslog_file = "/var/log/mail.log"
syslog_prefix = "cyrus"

[hosts.r]
ssh = "ops@replica.example:2202"
sudo = true
log_source = "journal"

[pairs.main]
master = "m"
replicas = [ { host = "r", channel = "" } ]
heartbeat_user = "cyrdeck-hb"
heartbeat_secs = 10
auto_quarantine_secs = 120
"#;

/// Numbers a parser may overflow on, and look-alikes that are not numbers.
const EXTREMES: &[&str] = &[
    "0",
    "1",
    "-1",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999999999999",
    "",
    "x",
    "½",
    "１",
    "1e309",
    "0x10",
];

#[derive(Clone, Debug)]
enum Mutation {
    DeleteLine(usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    /// Replace the n-th run of digits with an extreme value.
    Number(usize, usize),
    Insert(usize, Vec<u8>),
    Flip(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let idx = any::<usize>();
    prop_oneof![
        idx.prop_map(Mutation::DeleteLine),
        idx.prop_map(Mutation::DuplicateLine),
        (idx, idx).prop_map(|(a, b)| Mutation::SwapLines(a, b)),
        (idx, 0..EXTREMES.len()).prop_map(|(a, b)| Mutation::Number(a, b)),
        (
            idx,
            prop_oneof![
                prop::collection::vec(any::<u8>(), 0..16),
                string().prop_map(String::into_bytes),
                Just(b"\n".to_vec()),
                Just(b"@@end\n".to_vec()),
                Just("é€😀".as_bytes().to_vec()),
            ]
        )
            .prop_map(|(a, b)| Mutation::Insert(a, b)),
        (idx, any::<u8>()).prop_map(|(a, b)| Mutation::Flip(a, b)),
        idx.prop_map(Mutation::Truncate),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    prop::collection::vec(mutation(), 0..8)
}

fn lines_of(b: &[u8]) -> Vec<Vec<u8>> {
    b.split_inclusive(|&c| c == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

fn apply(base: &[u8], muts: &[Mutation]) -> Vec<u8> {
    let mut b = base.to_vec();
    for m in muts {
        match m {
            Mutation::DeleteLine(i) | Mutation::DuplicateLine(i) | Mutation::SwapLines(i, _) => {
                let mut lines = lines_of(&b);
                if lines.is_empty() {
                    continue;
                }
                let n = lines.len();
                match m {
                    Mutation::DeleteLine(_) => {
                        lines.remove(i % n);
                    }
                    Mutation::DuplicateLine(_) => {
                        let l = lines[i % n].clone();
                        lines.insert(i % n, l);
                    }
                    Mutation::SwapLines(_, j) => lines.swap(i % n, j % n),
                    _ => unreachable!(),
                }
                b = lines.concat();
            }
            Mutation::Number(i, e) => {
                let mut runs = Vec::new();
                let mut k = 0;
                while k < b.len() {
                    if b[k].is_ascii_digit() {
                        let s = k;
                        while k < b.len() && b[k].is_ascii_digit() {
                            k += 1;
                        }
                        runs.push((s, k));
                    } else {
                        k += 1;
                    }
                }
                if let Some(&(s, e2)) = runs.get(i % runs.len().max(1)) {
                    b.splice(s..e2, EXTREMES[*e].bytes());
                }
            }
            Mutation::Insert(i, bytes) => {
                let at = i % (b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Mutation::Flip(i, v) => {
                if !b.is_empty() {
                    let n = b.len();
                    b[i % n] = *v;
                }
            }
            Mutation::Truncate(i) => {
                let at = i % (b.len() + 1);
                b.truncate(at);
            }
        }
    }
    b
}

/// Any string, control characters included (proptest's `any::<String>()`
/// draws only printable ones): chars, lossy bytes, printable text.
fn string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(any::<char>(), 0..64).prop_map(String::from_iter),
        prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        prop::collection::vec(
            prop_oneof![
                Just('\n'),
                Just('\r'),
                Just('\0'),
                Just(' '),
                Just('"'),
                Just('\\'),
                any::<char>()
            ],
            0..16
        )
        .prop_map(String::from_iter),
        any::<String>(),
    ]
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn utc_clock(now: i64) -> LineClock {
    LineClock {
        now,
        zone: HostZone::parse("Etc/UTC +0000").unwrap(),
    }
}

// -------------------------------------------------------------------- probe

#[test]
fn probe_output() {
    fuzz(
        "probe/arbitrary",
        (any::<bool>(), bytes(3000)),
        |(framed, b)| {
            let mut v = if framed {
                b"@@probe 1\n".to_vec()
            } else {
                Vec::new()
            };
            v.extend(b);
            let _ = probe::parse(&v);
            Ok(())
        },
    );
    fuzz(
        "probe/fixtures-mutated",
        (any::<bool>(), mutations()),
        |(which, m)| {
            let base = if which { PROBE_MASTER } else { PROBE_DOWN };
            let _ = probe::parse(&apply(base, &m));
            Ok(())
        },
    );
}

fn chunk() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            bytes(40),
            Just(b"\n".to_vec()),
            Just(b"@@end\n".to_vec()),
            Just(b"@@log 1 99 0 99 0\n".to_vec()),
            Just(b"@@shutdown forged\n".to_vec()),
            Just(b"@@journal 5 0\n".to_vec()),
            string().prop_map(String::into_bytes),
        ],
        0..30,
    )
    .prop_map(|v| v.concat())
}

/// Whatever the log chunk holds (`@@end`, forged sections, invalid UTF-8),
/// an exact count keeps the framing: what follows the chunk is read as
/// sections, and the cursor stays inside the chunk.
#[test]
fn probe_log_framing() {
    fuzz(
        "probe/log-framing",
        (
            chunk(),
            0u64..1 << 40,
            any::<u64>(),
            any::<bool>(),
            0u64..1000,
        ),
        |(c, start, inode, partial, spare)| {
            let count = c.len() as u64;
            let size = start + count + spare;
            let mut v = format!(
                "@@probe 1\n@@now 5\n@@log {inode} {size} {start} {count} {}\n",
                u8::from(partial)
            )
            .into_bytes();
            v.extend(&c);
            v.extend(b"@@shutdown MARK\n@@end\n");
            let r = probe::parse(&v).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(r.shutdown.as_deref(), Some("MARK"));
            let log = r.log.expect("a log chunk");
            prop_assert_eq!(log.cursor.inode, inode);
            prop_assert!(log.cursor.offset >= start && log.cursor.offset <= start + count);
            if !partial && c.ends_with(b"\n") {
                prop_assert_eq!(log.cursor.offset, start + count);
            }
            Ok(())
        },
    );
    fuzz(
        "probe/journal-framing",
        (chunk(), any::<bool>()),
        |(c, partial)| {
            let mut v = format!(
                "@@probe 1\n@@now 5\n@@journal {} {}\n",
                c.len(),
                u8::from(partial)
            )
            .into_bytes();
            v.extend(&c);
            v.extend(b"@@shutdown MARK\n@@end\n");
            let r = probe::parse(&v).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(r.shutdown.as_deref(), Some("MARK"));
            Ok(())
        },
    );
}

// ----------------------------------------------------------------- sync log

/// How a sync-log writer quotes a word (what split_words reads back).
fn render_word(w: &str) -> String {
    let plain = !w.is_empty()
        && w.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._&^+-'$!".contains(&b));
    if plain {
        return w.to_string();
    }
    let mut s = String::from("\"");
    for c in w.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

#[test]
fn sync_log_lines() {
    fuzz("synclog/arbitrary", string(), |line| {
        if let Some(e) = synclog::parse_entry(&line) {
            let _ = (e.user(), e.external_mailbox());
        }
        let _ = synclog::split_words(&line);
        Ok(())
    });
    fuzz(
        "synclog/round-trip",
        (
            "[A-Z]{1,12}",
            prop::collection::vec(
                prop_oneof![string(), "user\\.[a-z]{1,8}(\\.[ -~]{0,12})?"],
                0..5,
            ),
        ),
        |(kind, args)| {
            let line = std::iter::once(kind.clone())
                .chain(args.iter().map(|a| render_word(a)))
                .collect::<Vec<_>>()
                .join(" ");
            let e = synclog::parse_entry(&format!("{line}\n"));
            prop_assert_eq!(e, Some(synclog::SyncEntry { kind, args }));
            Ok(())
        },
    );
}

// ------------------------------------------------------ cyrus.index, header

#[derive(Clone, Debug)]
struct Rec {
    uid: u32,
    flags: u32,
    user: [u32; 4],
    guid: [u8; 20],
    modseq: u64,
}

fn rec() -> impl Strategy<Value = Rec> {
    (
        prop_oneof![Just(0u32), 1u32..1000, any::<u32>()],
        any::<u32>(),
        any::<[u32; 4]>(),
        any::<[u8; 20]>(),
        any::<u64>(),
    )
        .prop_map(|(uid, flags, user, guid, modseq)| Rec {
            uid,
            flags,
            user,
            guid,
            modseq,
        })
}

#[derive(Clone, Debug)]
struct Idx {
    minor: u32,
    gap: usize,
    last_uid: u32,
    uidvalidity: u32,
    modseq: u64,
    crc_basic: u32,
    crc_annot: u32,
    recs: Vec<Rec>,
}

fn idx() -> impl Strategy<Value = Idx> {
    (
        prop_oneof![Just(16u32), Just(17), Just(19)],
        prop_oneof![Just(0usize), 0usize..64],
        any::<(u32, u32, u64, u32, u32)>(),
        prop::collection::vec(rec(), 0..24),
    )
        .prop_map(
            |(minor, gap, (last_uid, uidvalidity, modseq, b, a), recs)| Idx {
                minor,
                gap,
                last_uid,
                uidvalidity,
                modseq,
                crc_basic: b,
                crc_annot: a,
                recs,
            },
        )
}

const EXPUNGED: u32 = 1 << 31;

fn live(x: &Idx) -> impl Iterator<Item = &Rec> {
    x.recs
        .iter()
        .filter(|r| r.uid != 0 && r.flags & EXPUNGED == 0)
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_be_bytes());
}

/// cyrus.index bytes (layout as src/cyrus/index.rs reads it), CRCs right.
fn render_index(x: &Idx) -> Vec<u8> {
    let start = 160 + x.gap;
    let mut h = vec![0u8; start];
    let (exists_at, modseq_at) = if x.minor == 19 { (60, 72) } else { (84, 68) };
    put32(&mut h, 8, x.minor);
    put32(&mut h, 12, start as u32);
    put32(&mut h, 16, 112);
    put32(&mut h, 20, x.recs.len() as u32);
    put32(&mut h, 28, x.last_uid);
    put32(&mut h, 44, x.uidvalidity);
    put64(&mut h, modseq_at, x.modseq);
    put32(&mut h, exists_at, live(x).count() as u32);
    put32(&mut h, 100, x.crc_basic);
    put32(&mut h, 120, x.crc_annot);
    let c = index::crc32(&h[..156]);
    put32(&mut h, 156, c);
    for r in &x.recs {
        let mut b = [0u8; 112];
        put32(&mut b, 0, r.uid);
        put32(&mut b, 32, r.flags);
        for (i, u) in r.user.iter().enumerate() {
            put32(&mut b, 36 + 4 * i, *u);
        }
        b[60..80].copy_from_slice(&r.guid);
        put64(&mut b, 80, r.modseq);
        let c = index::crc32(&b[..108]);
        put32(&mut b, 108, c);
        h.extend_from_slice(&b);
    }
    h
}

/// Re-CRC every header and record after a mutation: corrupt but
/// CRC-valid bytes, the case a CRC cannot catch.
fn recrc(b: &mut [u8]) {
    if b.len() >= 160 {
        let c = index::crc32(&b[..156]);
        put32(b, 156, c);
        let start = u32::from_be_bytes([b[12], b[13], b[14], b[15]]) as usize;
        let mut off = start;
        while off.checked_add(112).is_some_and(|e| e <= b.len()) {
            let c = index::crc32(&b[off..off + 108]);
            put32(b, off + 108, c);
            off += 112;
        }
    }
}

#[test]
fn cyrus_index() {
    fuzz("index/arbitrary", bytes(1200), |b| {
        let _ = index::parse_header(&b);
        let _ = index::parse_records(&b);
        Ok(())
    });
    fuzz("index/round-trip", idx(), |x| {
        let b = render_index(&x);
        let r = index::parse_records(&b).map_err(TestCaseError::fail)?;
        prop_assert_eq!(r.header.minor_version, x.minor);
        prop_assert_eq!(r.header.last_uid, x.last_uid);
        prop_assert_eq!(r.header.uidvalidity, x.uidvalidity);
        prop_assert_eq!(r.header.highestmodseq, x.modseq);
        prop_assert_eq!(r.header.sync_crc_basic, x.crc_basic);
        prop_assert_eq!(r.header.sync_crc_annot, x.crc_annot);
        let want: Vec<index::IndexRecord> = live(&x)
            .map(|r| index::IndexRecord {
                uid: r.uid,
                guid: r.guid.iter().map(|b| format!("{b:02x}")).collect(),
                modseq: r.modseq,
                system_flags: r.flags & 0xffff,
                user_flags: r.user,
            })
            .collect();
        prop_assert_eq!(r.live, want);
        let gone: Vec<u32> = x
            .recs
            .iter()
            .filter(|r| r.uid != 0 && r.flags & EXPUNGED != 0)
            .map(|r| r.uid)
            .collect();
        prop_assert_eq!(r.expunged.iter().map(|e| e.0).collect::<Vec<_>>(), gone);
        Ok(())
    });
    fuzz(
        "index/corrupt-crc-valid",
        (
            idx(),
            prop::collection::vec((any::<usize>(), any::<u32>()), 1..6),
            prop::option::of(any::<usize>()),
        ),
        |(x, pokes, cut)| {
            let mut b = render_index(&x);
            for (at, v) in pokes {
                // aligned 32-bit words: the header fields and record fields
                let at = (at % (b.len() / 4)) * 4;
                put32(&mut b, at, v);
            }
            recrc(&mut b);
            if let Some(c) = cut {
                b.truncate(c % (b.len() + 1));
            }
            let _ = index::parse_header(&b);
            if let Ok(r) = index::parse_records(&b) {
                prop_assert_eq!(r.live.len(), r.header.exists as usize);
                prop_assert!(r.live.iter().all(|l| l.uid != 0));
                prop_assert!(r.live.len() + r.expunged.len() <= r.header.num_records as usize);
            }
            Ok(())
        },
    );
}

const HEADER_MAGIC: &str = "\u{a1}\u{2}\u{8b}\rCyrus mailbox header\n\"The best thing about this system was that it had lots of goals.\"\n\t--Jim Morris on Andrew\n";

#[test]
fn cyrus_header() {
    fuzz("header/arbitrary", bytes(600), |b| {
        let _ = index::user_flag_names(&b);
        let mut with = HEADER_MAGIC.as_bytes().to_vec();
        with.extend(&b);
        let _ = index::user_flag_names(&with);
        Ok(())
    });
    // IMAP flag atoms (no atom-specials)
    fuzz(
        "header/round-trip",
        prop::collection::vec("[A-Za-z0-9$_.&'+!#-]{1,20}", 0..12),
        |names| {
            let dlist = format!(
                "{HEADER_MAGIC}%(T e N user.alice I abc U ({}))\n",
                names.join(" ")
            );
            prop_assert_eq!(index::user_flag_names(dlist.as_bytes()), names.clone());
            let old = format!(
                "{HEADER_MAGIC}user.alice\tabc\n{}\nalice\tlrs\t\n",
                names.join(" ")
            );
            let back = index::user_flag_names(old.as_bytes());
            if names.is_empty() {
                prop_assert_eq!(back, vec![String::new()]);
            } else {
                prop_assert_eq!(back, names);
            }
            Ok(())
        },
    );
}

// ---------------------------------------------------------------- mbexamine

fn render_mbexamine(uidvalidity: u32, last: u32, msgs: &[(u32, [u8; 20])]) -> String {
    let mut s = format!(
        "Examining user/alice... Mailbox Header Info:\n  UIDValidity: {uidvalidity}  Last UID: {last}\n\n Message Info:\n"
    );
    for (i, (uid, guid)) in msgs.iter().enumerate() {
        let g: String = guid.iter().map(|b| format!("{b:02x}")).collect();
        s.push_str(&format!(
            "{:06}> UID:{uid:08}   INT_DATE:1795907199 SIZE:480\n      > HDRSIZE:460 SYSFLAGS:00000000      > CACHEVER:11 GUID:{g} MODSEQ:2  THRID: 0\n",
            i + 1
        ));
    }
    s
}

#[test]
fn mbexamine_output() {
    fuzz("mbexamine/arbitrary", string(), |t| {
        let _ = mbexamine::parse(&t);
        let _ = mbexamine::parse(&format!("Mailbox Header Info\n{t}"));
        Ok(())
    });
    let msgs = || prop::collection::vec((any::<u32>(), any::<[u8; 20]>()), 0..20);
    fuzz(
        "mbexamine/round-trip",
        (any::<u32>(), any::<u32>(), msgs()),
        |(v, last, m)| {
            let e =
                mbexamine::parse(&render_mbexamine(v, last, &m)).map_err(TestCaseError::fail)?;
            prop_assert_eq!(e.uidvalidity, Some(v as u64));
            prop_assert_eq!(e.last_uid, Some(last as u64));
            let want: Vec<(u32, String)> = m
                .iter()
                .map(|(u, g)| (*u, g.iter().map(|b| format!("{b:02x}")).collect()))
                .collect();
            prop_assert_eq!(e.messages, want);
            Ok(())
        },
    );
    fuzz(
        "mbexamine/mutated",
        (any::<u32>(), any::<u32>(), msgs(), mutations()),
        |(v, last, m, muts)| {
            let base = render_mbexamine(v, last, &m);
            let _ = mbexamine::parse(&text(&apply(base.as_bytes(), &muts)));
            Ok(())
        },
    );
}

// ---------------------------------------------------- syslog, time, journal

const MESSAGES: &[&str] = &[
    "Error in do_sync(): bailing out! Bad protocol",
    "IOERROR: opening index failed: mailbox=<user.x> Permission denied",
    "SYNCERROR: guid mismatch: mailbox=<user.alice.Sent> uid=<8>",
    "connect(127.0.0.2) failed: Connection refused",
    "SYNCNOTICE: record only exists on replica user=<bob>",
];

#[test]
fn syslog_lines_every_format() {
    fuzz(
        "syslog/arbitrary",
        (string(), any::<i64>(), prop::option::of("[a-z]{1,6}")),
        |(line, now, prefix)| {
            let _ = loglines::classify(&line, prefix.as_deref(), &utc_clock(now));
            let _ = parse_rfc3339(&line);
            let _ = HostZone::parse(&line);
            Ok(())
        },
    );
    fuzz(
        "syslog/fixtures-mutated",
        (0..3usize, mutations(), any::<i64>()),
        |(which, m, now)| {
            let (rendered, _) = journald::render(JOURNAL);
            let base = [SYSLOG_RFC3339, SYSLOG_TRADITIONAL, rendered.as_str()][which];
            let t = text(&apply(base.as_bytes(), &m));
            let _ = loglines::classify_chunk(&t, None, &utc_clock(now));
            let _ = loglines::classify_chunk(&t, Some("cyrlab24300-master"), &utc_clock(now));
            Ok(())
        },
    );
    // 1970..9999: the range both syslog formats can write
    let when = 0i64..253_402_300_799;
    fuzz(
        "syslog/rfc3339-time",
        (
            when,
            0..MESSAGES.len(),
            "[a-z0-9-]{1,10}",
            any::<u32>(),
            string(),
        ),
        |(t, k, pfx, pid, tail)| {
            let ts = jiff::Timestamp::from_second(t).unwrap();
            let stamp = ts.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00").to_string();
            let line = format!(
                "{stamp} vm {pfx}/sync_client[{pid}]: {} {}",
                MESSAGES[k],
                tail.replace('\n', " ")
            );
            let e = loglines::classify(&line, Some(&pfx), &utc_clock(t))
                .ok_or_else(|| TestCaseError::fail(format!("not classified: {line:?}")))?;
            prop_assert_eq!(e.time, Some(t));
            prop_assert_eq!(e.pid, Some(pid));
            prop_assert_eq!(e.service.as_str(), "sync_client");
            Ok(())
        },
    );
    // 1971..9998: a year either side stays representable
    let when = 31_536_000i64..253_370_764_800;
    let zones = [
        "Etc/UTC",
        "Europe/Berlin",
        "America/New_York",
        "Australia/Lord_Howe",
        "Asia/Kolkata",
    ];
    fuzz(
        "syslog/traditional-time",
        (when, -86_000i64..300 * 86_400, 0..zones.len()),
        |(t, ahead, z)| {
            let zone = HostZone::parse(&format!("{} +0000", zones[z])).unwrap();
            let tz = jiff::tz::TimeZone::get(zones[z]).unwrap();
            let local = jiff::Timestamp::from_second(t)
                .unwrap()
                .to_zoned(tz.clone());
            let line = format!(
                "{} vm cyrus/sync_client[7]: x",
                local.strftime("%b %e %H:%M:%S")
            );
            let clock = LineClock {
                now: t.saturating_add(ahead),
                zone,
            };
            let (got, rest) = parse_traditional(&line, &clock)
                .ok_or_else(|| TestCaseError::fail(format!("not read: {line:?}")))?;
            prop_assert_eq!(rest, "vm cyrus/sync_client[7]: x");
            // the same wall-clock time (a repeated DST hour may map to its
            // other instant), at most a year back, at most a day ahead
            let back = jiff::Timestamp::from_second(got).unwrap().to_zoned(tz);
            prop_assert_eq!(back.datetime(), local.datetime());
            prop_assert!((got - t).abs() <= 3600, "{got} vs {t}");
            Ok(())
        },
    );
}

fn journal_entry() -> impl Strategy<Value = (i64, String, String, String, String)> {
    (
        0i64..253_402_300_799_000_000,
        prop_oneof!["[a-z0-9-]{1,10}", string()],
        prop_oneof!["[0-9]{1,7}", string()],
        prop_oneof!["[a-z]{1,8}", string()],
        string(),
    )
}

#[test]
fn journal_json() {
    fuzz("journal/arbitrary", string(), |t| {
        let (out, _) = journald::render(&t);
        let _ = loglines::classify_chunk(&out, None, &utc_clock(0));
        Ok(())
    });
    fuzz("journal/fixture-mutated", mutations(), |m| {
        let (out, cursor) = journald::render(&text(&apply(JOURNAL.as_bytes(), &m)));
        let _ = loglines::classify_chunk(&out, Some("cyrlab25300-master"), &utc_clock(0));
        let _ = cursor;
        Ok(())
    });
    // one entry, one line, whatever its fields hold: a field with a newline
    // must not forge a second log line
    fuzz(
        "journal/one-entry-one-line",
        journal_entry(),
        |(usec, ident, pid, host, msg)| {
            let e = serde_json::json!({
                "__CURSOR": "s=x;i=1",
                "__REALTIME_TIMESTAMP": usec.to_string(),
                "SYSLOG_IDENTIFIER": format!("pfx/{ident}"),
                "SYSLOG_PID": pid,
                "_HOSTNAME": host,
                "MESSAGE": format!("Error in do_sync(): bailing out! {msg}"),
            });
            let (out, cursor) = journald::render(&format!("{e}\n"));
            prop_assert_eq!(cursor.as_deref(), Some("s=x;i=1"));
            prop_assert_eq!(out.lines().count(), 1, "{:?}", out);
            let plain = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            if plain(&ident) && plain(&pid) {
                let ev = loglines::classify(out.trim_end(), Some("pfx"), &utc_clock(0))
                    .ok_or_else(|| TestCaseError::fail(format!("not classified: {out:?}")))?;
                prop_assert_eq!(ev.time, Some(usec.div_euclid(1_000_000)));
            }
            Ok(())
        },
    );
}

// ------------------------------------------------- inventory, doctor output

fn inventory_lines() -> impl Strategy<Value = String> {
    let line = prop_oneof![
        (string(), bytes(200)).prop_map(|(u, b)| {
            let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!("H\t{u}\t{hex}")
        }),
        (idx(), string()).prop_map(|(x, u)| {
            let hex: String = render_index(&x)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            format!("R\t{u}\t{hex}\nH\t{u}\t{}", &hex[..320.min(hex.len())])
        }),
        string().prop_map(|s| format!("H\tu\t{s}")),
        string().prop_map(|s| format!("R\tu\t{s}")),
        string().prop_map(|s| format!("C\tu\t{s}")),
        string().prop_map(|s| format!("E\tu\t{s}")),
        string().prop_map(|s| format!("P\t{s}")),
        string().prop_map(|s| format!("L\t{s}")),
        Just(r#"L	{"user.alice":{"uniqueid":"u","mbtype":"e","partition":"default"}}"#.to_string()),
        Just("@@pending_cut\t\t3".to_string()),
        string().prop_map(|s| format!("@@pending_cut\t{s}")),
        Just("@@mboxlist_exit 0".to_string()),
        string(),
    ];
    prop::collection::vec(line, 0..12).prop_map(|v| v.join("\n"))
}

#[test]
fn inventory_output() {
    fuzz(
        "inventory/structured",
        (inventory_lines(), any::<bool>()),
        |(body, end)| {
            let out = format!(
                "@@inventory 1\n{body}\n{}",
                if end { "@@end\n" } else { "" }
            );
            let _ = inventory::parse_headers(&out);
            let _ = inventory::parse_records(&out);
            let _ = inventory::parse_pending(&out);
            Ok(())
        },
    );
    fuzz("doctor/arbitrary", string(), |t| {
        let _ = doctor::parse(&t);
        let _ = doctor::parse(&format!("@@doctor 1\n{t}\n@@end\n"));
        Ok(())
    });
}

// ----------------------------------------------------- config, keymap, ssh

#[test]
fn config_files() {
    fuzz("config/mutated", mutations(), |m| {
        let t = text(&apply(CONFIG.as_bytes(), &m));
        if let Err(e) =
            cyrdeck::config::Config::parse(Path::new("f.toml"), &t, Path::new("/nonexistent"))
        {
            prop_assert!(!e.to_string().is_empty());
        }
        Ok(())
    });
    fuzz("config/arbitrary", string(), |t| {
        let _ = cyrdeck::config::Config::parse(Path::new("f.toml"), &t, Path::new("/nonexistent"));
        let _ = cyrdeck::remote::ssh_config::resolve_text(&t, "m");
        Ok(())
    });
}

#[test]
fn keymap_files() {
    fuzz("keymap/mutated", (0..3usize, mutations()), |(which, m)| {
        let base = [KEYMAP_DEFAULT, KEYMAP_REBIND, KEYMAP_CHORD][which];
        let mut k = Keymap::defaults();
        let _ = k.merge("k.toml", &text(&apply(base.as_bytes(), &m)));
        Ok(())
    });
    fuzz("keymap/arbitrary", string(), |t| {
        let mut k = Keymap::defaults();
        let _ = k.merge("k.toml", &t);
        Ok(())
    });
    fuzz(
        "keymap/key-round-trip",
        prop_oneof![
            string(),
            "<([CAMS]-){0,3}[A-Za-z0-9-]{1,8}>",
            any::<char>().prop_map(String::from),
        ],
        |s| {
            if let Ok(k) = Key::parse(&s) {
                prop_assert_eq!(Key::parse(&k.to_string()), Ok(k));
            }
            Ok(())
        },
    );
}

// ------------------------------------------------- known_hosts, /metrics

#[test]
fn known_hosts_files() {
    let key = russh::keys::parse_public_key_base64(
        KEYS.lines().next().unwrap().split(' ').nth(1).unwrap(),
    )
    .unwrap();
    fuzz(
        "known_hosts/mutated",
        (any::<bool>(), mutations(), "[a-z.]{1,12}", any::<u16>()),
        |(hashed, m, host, port)| {
            let base = if hashed {
                KNOWN_HOSTS_HASHED
            } else {
                KNOWN_HOSTS
            };
            let kh = KnownHosts::parse(Path::new("/kh"), &text(&apply(base.as_bytes(), &m)));
            let _ = kh.verdict(&host, port, &key);
            let _ = kh.trust_decision("ed.example", 22, &key);
            Ok(())
        },
    );
    fuzz(
        "known_hosts/arbitrary",
        (string(), string(), any::<u16>()),
        |(t, host, port)| {
            let kh = KnownHosts::parse(Path::new("/kh"), &t);
            let _ = kh.verdict(&host, port, &key);
            Ok(())
        },
    );
}

#[test]
fn metrics_request_heads() {
    fuzz(
        "metrics/request-head",
        prop_oneof![
            bytes(600),
            "(GET|HEAD|POST) /[ -~]{0,40} HTTP/1\\.[01]\r\n([A-Za-z-]{1,10}: [ -~]{0,20}\r\n){0,4}\r\n"
                .prop_map(String::into_bytes),
        ],
        |head: Vec<u8>| {
            let r = cyrdeck::metrics::serve::respond(&head, Some("m 1\n"));
            prop_assert!(r.starts_with(b"HTTP/1.1 "));
            Ok(())
        },
    );
}
