//! Mailbox names. Cyrus keeps INTERNAL names with `.` as separator
//! (`user.alice.Sent`); with `unixhierarchysep: yes` clients and most tools
//! (mbexamine, mbpath, `sync_client -m`) use EXTERNAL names with `/`
//! (`user/alice/Sent`). A `.` inside a folder name is stored as `^`.
//! On the wire and in the sync log, non-ASCII is modified UTF-7 (RFC 3501).

/// Encode a Unicode name as IMAP modified UTF-7.
pub fn to_mutf7(s: &str) -> String {
    let mut out = String::new();
    let mut pending: Vec<u16> = Vec::new();
    let flush = |pending: &mut Vec<u16>, out: &mut String| {
        if pending.is_empty() {
            return;
        }
        let bytes: Vec<u8> = pending.iter().flat_map(|u| u.to_be_bytes()).collect();
        out.push('&');
        out.push_str(&b64_encode(&bytes));
        out.push('-');
        pending.clear();
    };
    for c in s.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut buf = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut buf));
        }
    }
    flush(&mut pending, &mut out);
    out
}

/// Decode modified UTF-7; None if malformed.
pub fn from_mutf7(s: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after.find('-')?;
        let chunk = &after[..end];
        if chunk.is_empty() {
            out.push('&');
        } else {
            let bytes = b64_decode(chunk)?;
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            out.push_str(&String::from_utf16(&units).ok()?);
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

fn b64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        let chars = n + 1;
        for k in 0..chars {
            out.push(B64[((v >> (18 - 6 * k)) & 63) as usize] as char);
        }
    }
    out
}

fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut bits = 0u32;
    let mut nbits = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        bits = bits << 6 | v;
        nbits += 6;
        if nbits >= 8 {
            nbits -= 8;
            out.push((bits >> nbits) as u8);
            bits &= (1 << nbits) - 1;
        }
    }
    Some(out)
}

/// A virtual domain's internal prefix: `example.com!user.alice` ->
/// (Some("example.com"), "user.alice"). Cyrus keeps `DOMAIN!` in front of
/// every internal name of a domain (`virtdomains: userid`); its external
/// form puts `@DOMAIN` at the end instead (`user/alice@example.com`).
pub fn split_domain(internal: &str) -> (Option<&str>, &str) {
    match internal.split_once('!') {
        Some((d, rest)) if !d.is_empty() => (Some(d), rest),
        _ => (None, internal),
    }
}

/// `user.alice.Sent` -> `user/alice/Sent` (and `^` back to `.`);
/// `example.com!user.alice.Sent` -> `user/alice/Sent@example.com`.
pub fn internal_to_external(internal: &str) -> String {
    let (domain, local) = split_domain(internal);
    let ext = local
        .split('.')
        .map(|p| p.replace('^', "."))
        .collect::<Vec<_>>()
        .join("/");
    match domain {
        Some(d) => format!("{ext}@{d}"),
        None => ext,
    }
}

/// `user/alice/Sent` -> `user.alice.Sent`; `user/alice@example.com` ->
/// `example.com!user.alice`.
pub fn external_to_internal(external: &str) -> String {
    let (local, domain) = match external.rsplit_once('@') {
        Some((l, d)) if !d.is_empty() && !d.contains('/') => (l, Some(d)),
        _ => (external, None),
    };
    let int = local
        .split('/')
        .map(|p| p.replace('.', "^"))
        .collect::<Vec<_>>()
        .join(".");
    match domain {
        Some(d) => format!("{d}!{int}"),
        None => int,
    }
}

/// A user's INBOX as an internal name: `alice` -> `user.alice`,
/// `alice@example.com` -> `example.com!user.alice` (a `.` in the local
/// part is stored as `^`).
pub fn user_root(user: &str) -> String {
    let (local, domain) = match user.rsplit_once('@') {
        Some((l, d)) if !d.is_empty() => (l, Some(d)),
        _ => (user, None),
    };
    let root = format!("user.{}", local.replace('.', "^"));
    match domain {
        Some(d) => format!("{d}!{root}"),
        None => root,
    }
}

/// The user a mailbox belongs to, as Cyrus names users (`sync_client -u`,
/// the sync log's USER entries): `user.alice.Sent` -> `alice`,
/// `example.com!user.alice.Sent` -> `alice@example.com`; a shared folder
/// (`shared.support`) has none. A `^` (a `.` in the name) is kept as is.
pub fn owner_of(internal: &str) -> Option<String> {
    let (domain, local) = split_domain(internal);
    let rest = local.strip_prefix("user.")?;
    let user = rest.split('.').next().unwrap_or(rest);
    Some(match domain {
        Some(d) => format!("{user}@{d}"),
        None => user.to_string(),
    })
}

/// What a name passed to a Cyrus tool names (for the error message).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameKind {
    User,
    Mailbox,
    Channel,
}

impl NameKind {
    fn label(self) -> &'static str {
        match self {
            NameKind::User => "user",
            NameKind::Mailbox => "mailbox",
            NameKind::Channel => "channel",
        }
    }
}

/// THE check for a user, mailbox or channel name that ends up in a Cyrus
/// tool's argv (`sync_client -u/-m/-n`, mbexamine, unexpunge, mbpath,
/// deliver, the runbooks' scripts). Cyrus tools parse options with getopt,
/// which takes an argument starting with `-` as an option wherever it
/// stands (GNU getopt permutes), so such a name would change the tool's
/// mode; `--` is not relied on. Also refused: empty (a tool without its
/// name works on everything, e.g. ipurge) and control characters (NUL
/// cannot be passed in an argv; a newline splits lines in logs and scripts).
/// Called where a name comes in AND where an argv is built.
pub fn check_name(kind: NameKind, name: &str) -> Result<&str, String> {
    let what = kind.label();
    if name.is_empty() {
        return Err(format!("{what} name is empty: refused"));
    }
    if name.starts_with('-') {
        return Err(format!(
            "{what} {name:?} starts with '-': a Cyrus tool would read it as an option; refused"
        ));
    }
    if let Some(c) = name.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{what} {name:?} contains the control character {c:?}: refused"
        ));
    }
    Ok(name)
}

/// A mailbox as Cyrus tools take it (external, modified UTF-7), checked.
pub fn mailbox_arg(mailbox: &str) -> Result<String, String> {
    check_name(NameKind::Mailbox, mailbox).map(to_mutf7)
}

/// A user as Cyrus tools take it (`-u USER`), checked.
pub fn user_arg(user: &str) -> Result<String, String> {
    check_name(NameKind::User, user).map(str::to_string)
}

/// `user.alice.Entw&APw-rfe` -> `user/alice/Entwürfe`.
pub fn external(internal: &str) -> String {
    let ext = internal_to_external(internal);
    from_mutf7(&ext).unwrap_or(ext)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_be_options_are_refused() {
        for bad in ["-x", "--help", "-C/etc/passwd", "-", ""] {
            for kind in [NameKind::User, NameKind::Mailbox, NameKind::Channel] {
                let e = check_name(kind, bad).unwrap_err();
                assert!(e.contains(&format!("{bad:?}")) || bad.is_empty(), "{e}");
                assert!(e.contains("refused"), "{e}");
            }
        }
        for bad in ["a\0b", "a\nb", "a\rb", "tab\there", "del\u{7f}"] {
            assert!(check_name(NameKind::Mailbox, bad).is_err(), "{bad:?}");
        }
        for good in [
            "alice",
            "user/alice/-draft",
            "a-b",
            "Entwürfe",
            "it's",
            "$(x)",
            "x y",
        ] {
            assert_eq!(check_name(NameKind::Mailbox, good), Ok(good));
        }
    }

    #[test]
    fn mutf7_round_trips() {
        for s in ["Entwürfe", "日本語", "a&b", "plain", "mix ü and &", "😀"] {
            assert_eq!(from_mutf7(&to_mutf7(s)).as_deref(), Some(s), "{s}");
        }
        assert_eq!(to_mutf7("Entwürfe"), "Entw&APw-rfe");
        assert_eq!(to_mutf7("a&b"), "a&-b");
    }

    #[test]
    fn malformed_mutf7_is_none() {
        assert_eq!(from_mutf7("&unterminated"), None);
        assert_eq!(from_mutf7("&*!-"), None);
    }

    #[test]
    fn names_convert() {
        assert_eq!(internal_to_external("user.alice.v1^2"), "user/alice/v1.2");
        assert_eq!(external_to_internal("user/alice/v1.2"), "user.alice.v1^2");
        assert_eq!(owner_of("user.bob.Sent").as_deref(), Some("bob"));
        assert_eq!(owner_of("user.bob").as_deref(), Some("bob"));
        assert_eq!(owner_of("shared.x"), None);
        // virtual domains: the user as Cyrus names it
        assert_eq!(
            owner_of("example.com!user.alice.Sent").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(owner_of("example.com!shared.support"), None);
        assert_eq!(user_root("alice@example.com"), "example.com!user.alice");
        assert_eq!(user_root("a.b"), "user.a^b");
        for u in ["alice@example.com", "bob", "a^b"] {
            assert_eq!(owner_of(&user_root(u)).as_deref(), Some(u));
        }
        for (int, ext) in [
            ("example.com!user.alice.Sent", "user/alice/Sent@example.com"),
            ("example.com!user.a^b", "user/a.b@example.com"),
            ("example.com!shared.support", "shared/support@example.com"),
            ("shared.support", "shared/support"),
        ] {
            assert_eq!(internal_to_external(int), ext);
            assert_eq!(external_to_internal(ext), int);
        }
    }
}
