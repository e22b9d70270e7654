//! Our own known_hosts reader, because the verdict must be strict where
//! russh's helper is lenient: a key of ANOTHER algorithm for a host that has
//! keys is an alarm (a man in the middle offering ed25519 against an
//! RSA-only entry must not look like a first use), `@revoked` lines are
//! honoured, and hashed (`|1|salt|hash`), `[host]:port`, comma lists,
//! wildcards and `!negated` patterns match as OpenSSH matches them (sshd(8)
//! "SSH_KNOWN_HOSTS FILE FORMAT"). `@cert-authority` lines are read and
//! skipped: host certificates are not accepted (session.rs refuses them).
//!
//! Why not ssh-key's `known_hosts` module (0.7.0-rc.11, in Cargo.lock via
//! russh): it parses entries but does no matching (hashed hosts, wildcards,
//! negation, `[host]:port`), keeps no line numbers for the operator's
//! `ssh-keygen -R`, splits fields on single spaces only (OpenSSH allows
//! tabs), and fails a whole line whose key it cannot parse, which would
//! turn a changed-key alarm into a silent "first use". Writing entries
//! already goes through russh (`learn_known_hosts_path`, cli/trust.rs).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use russh::keys::{Algorithm, PublicKey};
use sha1::Sha1;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    Plain,
    Revoked,
    CertAuthority,
}

#[derive(Clone, Debug)]
struct Entry {
    line: usize,
    marker: Marker,
    patterns: String,
    /// The key type as written (kept when the key itself does not parse).
    key_type: String,
    key: Option<PublicKey>,
}

/// A key recorded for a host: where, and of which type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredKey {
    pub line: usize,
    pub key_type: String,
}

/// What the file says about the key a host offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The key is recorded for the host (line).
    Known { line: usize },
    /// The host has keys, none of them this one, whatever their algorithm.
    Changed { stored: Vec<StoredKey> },
    /// The key is marked `@revoked` for the host (line): never accepted.
    Revoked { line: usize },
    /// Nothing is recorded for the host: the first-use case.
    Unknown,
}

/// What `cyrdeck trust` may do with an offered key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustDecision {
    /// First use: add it (after the operator said yes).
    Add,
    /// Already recorded at this line: nothing to add.
    AlreadyKnown(usize),
    /// Refused, with the reason to print.
    Refuse(String),
}

#[derive(Clone, Debug, Default)]
pub struct KnownHosts {
    path: PathBuf,
    entries: Vec<Entry>,
}

/// The name a host is recorded under: `host`, or `[host]:port` off port 22
/// (lowercase: OpenSSH compares host names without case).
pub fn lookup_name(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

/// `|1|salt|hash` for `name` with `salt` (as `ssh-keygen -H` writes it).
pub fn hash_name(name: &str, salt: &[u8]) -> String {
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(salt).expect("HMAC takes any key");
    mac.update(name.as_bytes());
    let hash = mac.finalize().into_bytes();
    format!("|1|{}|{}", B64.encode(salt), B64.encode(hash))
}

fn hashed_matches(entry: &str, name: &str) -> bool {
    let mut parts = entry.split('|').skip(2);
    let (Some(salt), Some(hash), None) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (B64.decode(salt), B64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = <Hmac<Sha1> as KeyInit>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

/// `*` and `?` glob, without case.
fn glob(pattern: &[u8], name: &[u8]) -> bool {
    match pattern.split_first() {
        None => name.is_empty(),
        Some((b'*', rest)) => (0..=name.len()).any(|i| glob(rest, &name[i..])),
        Some((&p, rest)) => name.split_first().is_some_and(|(&n, name)| {
            (p == b'?' || p.eq_ignore_ascii_case(&n)) && glob(rest, name)
        }),
    }
}

/// Does a comma-separated pattern list match `name`? A matching negated
/// pattern excludes the line whatever else matches (OpenSSH).
fn patterns_match(list: &str, name: &str) -> bool {
    if list.starts_with("|1|") {
        return hashed_matches(list, name);
    }
    let mut positive = false;
    for p in list.split(',') {
        if let Some(neg) = p.strip_prefix('!') {
            if glob(neg.as_bytes(), name.as_bytes()) {
                return false;
            }
        } else if glob(p.as_bytes(), name.as_bytes()) {
            positive = true;
        }
    }
    positive
}

fn same_key(a: &PublicKey, b: &PublicKey) -> bool {
    a.key_data() == b.key_data()
}

/// RSA is one key whatever signature hash is negotiated.
fn same_family(a: &Algorithm, b: &Algorithm) -> bool {
    matches!((a, b), (Algorithm::Rsa { .. }, Algorithm::Rsa { .. })) || a == b
}

impl KnownHosts {
    /// Read `path`; a missing file is an empty one (every host unknown).
    pub fn load(path: &Path) -> Result<KnownHosts, String> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(KnownHosts::parse(path, &String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(KnownHosts {
                path: path.to_path_buf(),
                entries: Vec::new(),
            }),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    pub fn parse(path: &Path, text: &str) -> KnownHosts {
        let mut entries = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut f = line.split_ascii_whitespace();
            let mut first = f.next().unwrap_or("");
            let marker = match first {
                "@revoked" => Marker::Revoked,
                "@cert-authority" => Marker::CertAuthority,
                m if m.starts_with('@') => continue, // unknown marker: OpenSSH skips it
                _ => Marker::Plain,
            };
            if marker != Marker::Plain {
                first = f.next().unwrap_or("");
            }
            let (Some(key_type), Some(b64)) = (f.next(), f.next()) else {
                continue;
            };
            entries.push(Entry {
                line: i + 1,
                marker,
                patterns: first.to_string(),
                key_type: key_type.to_string(),
                key: russh::keys::parse_public_key_base64(b64).ok(),
            });
        }
        KnownHosts {
            path: path.to_path_buf(),
            entries,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn for_host(&self, host: &str, port: u16) -> impl Iterator<Item = &Entry> {
        let name = lookup_name(host, port);
        self.entries
            .iter()
            .filter(move |e| patterns_match(&e.patterns, &name))
    }

    /// The plain (not revoked, not CA) keys recorded for the host.
    pub fn stored(&self, host: &str, port: u16) -> Vec<StoredKey> {
        self.for_host(host, port)
            .filter(|e| e.marker == Marker::Plain)
            .map(|e| StoredKey {
                line: e.line,
                key_type: e.key_type.clone(),
            })
            .collect()
    }

    pub fn verdict(&self, host: &str, port: u16, offered: &PublicKey) -> Verdict {
        let entries: Vec<&Entry> = self.for_host(host, port).collect();
        let holds = |m: Marker| {
            entries
                .iter()
                .find(|e| e.marker == m && e.key.as_ref().is_some_and(|k| same_key(k, offered)))
        };
        if let Some(e) = holds(Marker::Revoked) {
            return Verdict::Revoked { line: e.line };
        }
        if let Some(e) = holds(Marker::Plain) {
            return Verdict::Known { line: e.line };
        }
        let stored = self.stored(host, port);
        if stored.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Changed { stored }
        }
    }

    /// Host-key algorithms to ask for, those recorded for the host first
    /// (as OpenSSH orders them): a host with an RSA entry that also has an
    /// ed25519 key then shows the RSA one, and an unrecorded algorithm
    /// is only ever offered by a host that lacks the recorded ones.
    pub fn preferred_order(&self, host: &str, port: u16, default: &[Algorithm]) -> Vec<Algorithm> {
        let recorded: Vec<Algorithm> = self
            .for_host(host, port)
            .filter(|e| e.marker == Marker::Plain)
            .filter_map(|e| e.key.as_ref().map(|k| k.algorithm()))
            .collect();
        let (mut first, rest): (Vec<Algorithm>, Vec<Algorithm>) = default
            .iter()
            .cloned()
            .partition(|a| recorded.iter().any(|r| same_family(a, r)));
        first.extend(rest);
        first
    }

    /// "ssh-rsa at FILE:3, ecdsa-sha2-nistp256 at FILE:7".
    pub fn describe(&self, stored: &[StoredKey]) -> String {
        stored
            .iter()
            .map(|s| format!("{} at {}:{}", s.key_type, self.path.display(), s.line))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What `cyrdeck trust` may do with `offered`: add it only on first use.
    pub fn trust_decision(&self, host: &str, port: u16, offered: &PublicKey) -> TrustDecision {
        let name = lookup_name(host, port);
        match self.verdict(host, port, offered) {
            Verdict::Unknown => TrustDecision::Add,
            Verdict::Known { line } => TrustDecision::AlreadyKnown(line),
            Verdict::Revoked { line } => TrustDecision::Refuse(format!(
                "the key {name} offers is marked @revoked at {}:{line}: refusing to trust it",
                self.path.display()
            )),
            Verdict::Changed { stored } => TrustDecision::Refuse(format!(
                "keys for {name} already exist: {}. The offered key is none of them: this may be \
                 a man in the middle. Nothing was added. If the host was reinstalled, verify the \
                 new key out of band, remove the old entries (ssh-keygen -R '{name}' -f {}) and \
                 run trust again",
                self.describe(&stored),
                self.path.display()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = include_str!("../../tests/fixtures/known_hosts/plain");
    /// `plain`'s hashable lines through `ssh-keygen -H` (OpenSSH 9), saved
    /// when these tests were written.
    const HASHED: &str = include_str!("../../tests/fixtures/known_hosts/hashed_by_ssh_keygen");
    const KEYS: &str = include_str!("../../tests/fixtures/known_hosts/keys.pub");

    /// a, b: ed25519; c: rsa; d: ecdsa (keys.pub, in that order).
    fn key(which: char) -> PublicKey {
        let i = (which as u8 - b'a') as usize;
        let b64 = KEYS.lines().nth(i).unwrap().split(' ').nth(1).unwrap();
        russh::keys::parse_public_key_base64(b64).unwrap()
    }

    fn kh(text: &str) -> KnownHosts {
        KnownHosts::parse(Path::new("/kh"), text)
    }

    fn key_types(v: &Verdict) -> Vec<(usize, &str)> {
        match v {
            Verdict::Changed { stored } => stored
                .iter()
                .map(|s| (s.line, s.key_type.as_str()))
                .collect(),
            other => panic!("not Changed: {other:?}"),
        }
    }

    #[test]
    fn globs_negation_and_ports() {
        assert!(patterns_match("a.example,b.example", "b.example"));
        assert!(patterns_match("*.example", "mail.example"));
        assert!(patterns_match("MAIL.example", "mail.example"));
        assert!(patterns_match("mail?.example", "mail1.example"));
        assert!(!patterns_match("*.example,!bad.example", "bad.example"));
        assert!(patterns_match("*.example,!bad.example", "good.example"));
        assert!(!patterns_match("!bad.example", "other"));
        assert!(patterns_match("[m]:2222", &lookup_name("m", 2222)));
        assert!(!patterns_match("m", &lookup_name("m", 2222)));
        assert!(!patterns_match("[m]:2222", &lookup_name("m", 22)));
        assert!(patterns_match("[m]:*", &lookup_name("m", 2022)));
        assert_eq!(lookup_name("Mail.Example", 22), "mail.example");
    }

    #[test]
    fn known_unknown_and_port_forms() {
        let f = kh(PLAIN);
        assert_eq!(
            f.verdict("rsa-only.example", 2222, &key('c')),
            Verdict::Known { line: 4 }
        );
        // comma list, tab separator, comment
        assert_eq!(
            f.verdict("ed.example", 22, &key('a')),
            Verdict::Known { line: 5 }
        );
        assert_eq!(
            f.verdict("10.9.8.7", 22, &key('a')),
            Verdict::Known { line: 5 }
        );
        assert_eq!(f.verdict("nobody.example", 22, &key('a')), Verdict::Unknown);
        // the same name on another port is another host
        assert_eq!(
            f.verdict("rsa-only.example", 22, &key('c')),
            Verdict::Unknown
        );
        assert_eq!(
            f.verdict("x.wild.example", 22, &key('a')),
            Verdict::Known { line: 10 }
        );
        assert_eq!(
            f.verdict("bad.wild.example", 22, &key('a')),
            Verdict::Unknown
        );
    }

    /// The man in the middle of issue 15: ed25519 offered against an
    /// RSA-only entry is an alarm, not a first use.
    #[test]
    fn another_algorithm_for_a_host_with_keys_is_changed() {
        let f = kh(PLAIN);
        let v = f.verdict("rsa-only.example", 2222, &key('a'));
        assert_eq!(key_types(&v), vec![(4, "ssh-rsa")]);
        // same algorithm, other key
        let v = f.verdict("ed.example", 22, &key('d'));
        assert_eq!(key_types(&v), vec![(5, "ssh-ed25519")]);
        // two stored keys: both named
        let v = f.verdict("two.example", 22, &key('a'));
        assert_eq!(
            key_types(&v),
            vec![(6, "ssh-rsa"), (7, "ecdsa-sha2-nistp256")]
        );
        assert_eq!(
            f.verdict("two.example", 22, &key('d')),
            Verdict::Known { line: 7 }
        );
        // an unparseable key still counts as a key the host has
        let v = f.verdict("broken.example", 22, &key('a'));
        assert_eq!(key_types(&v), vec![(11, "ssh-ed25519")]);
    }

    #[test]
    fn revoked_keys_are_refused_even_when_also_listed() {
        let f = kh(PLAIN);
        assert_eq!(
            f.verdict("anything.example", 22, &key('b')),
            Verdict::Revoked { line: 8 }
        );
        let both = format!(
            "{PLAIN}\nrevoked-too.example {}\n",
            KEYS.lines().nth(1).unwrap()
        );
        assert_eq!(
            kh(&both).verdict("revoked-too.example", 22, &key('b')),
            Verdict::Revoked { line: 8 }
        );
        // cert-authority lines are not plain keys
        assert_eq!(f.verdict("h.ca.example", 22, &key('a')), Verdict::Unknown);
    }

    #[test]
    fn hashed_entries_from_ssh_keygen_match() {
        let f = kh(HASHED);
        assert_eq!(
            f.verdict("rsa-only.example", 2222, &key('c')),
            Verdict::Known { line: 1 }
        );
        assert_eq!(
            f.verdict("10.9.8.7", 22, &key('a')),
            Verdict::Known { line: 3 }
        );
        assert_eq!(
            key_types(&f.verdict("ed.example", 22, &key('c'))),
            vec![(2, "ssh-ed25519")]
        );
        assert_eq!(
            key_types(&f.verdict("two.example", 22, &key('a'))),
            vec![(4, "ssh-rsa"), (5, "ecdsa-sha2-nistp256")]
        );
        assert_eq!(
            f.verdict("rsa-only.example", 22, &key('c')),
            Verdict::Unknown
        );
        // our HMAC gives ssh-keygen's hash for ssh-keygen's salt
        let first = HASHED.lines().next().unwrap().split(' ').next().unwrap();
        let salt = B64.decode(first.split('|').nth(2).unwrap()).unwrap();
        assert_eq!(hash_name("[rsa-only.example]:2222", &salt), first);
        // and a line hashed here is matched like theirs
        let ours = format!(
            "{} {}\n",
            hash_name("new.example", b"salt-of-twenty-bytes"),
            KEYS.lines().next().unwrap()
        );
        assert_eq!(
            kh(&ours).verdict("new.example", 22, &key('a')),
            Verdict::Known { line: 1 }
        );
        assert!(!patterns_match("|1|garbage|", "x"));
        assert!(!patterns_match("|1|", "x"));
    }

    #[test]
    fn recorded_algorithms_are_asked_for_first() {
        let f = kh(PLAIN);
        let default = [
            Algorithm::Ed25519,
            Algorithm::Ecdsa {
                curve: russh::keys::EcdsaCurve::NistP256,
            },
            Algorithm::Rsa {
                hash: Some(russh::keys::HashAlg::Sha512),
            },
        ];
        let order = f.preferred_order("rsa-only.example", 2222, &default);
        assert_eq!(order[0], default[2]);
        assert_eq!(order.len(), 3);
        assert_eq!(f.preferred_order("nobody", 22, &default), default.to_vec());
    }

    #[test]
    fn trust_adds_only_on_first_use() {
        let f = kh(PLAIN);
        assert_eq!(
            f.trust_decision("new.example", 22, &key('a')),
            TrustDecision::Add
        );
        assert_eq!(
            f.trust_decision("two.example", 22, &key('c')),
            TrustDecision::AlreadyKnown(6)
        );
        let TrustDecision::Refuse(why) = f.trust_decision("rsa-only.example", 2222, &key('a'))
        else {
            panic!("not refused")
        };
        assert!(
            why.contains("already exist") && why.contains("ssh-rsa at /kh:4"),
            "{why}"
        );
        assert!(why.contains("man in the middle"), "{why}");
        let TrustDecision::Refuse(why) = f.trust_decision("x", 22, &key('b')) else {
            panic!("not refused")
        };
        assert!(why.contains("@revoked at /kh:8"), "{why}");
    }

    #[test]
    fn a_missing_file_is_empty_an_unreadable_one_an_error() {
        let f = KnownHosts::load(Path::new("/nonexistent/known_hosts")).unwrap();
        assert_eq!(f.verdict("h", 22, &key('a')), Verdict::Unknown);
        assert!(KnownHosts::load(Path::new("/")).is_err());
    }
}
