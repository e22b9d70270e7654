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

/// `user.alice.Sent` -> `user/alice/Sent` (and `^` back to `.`).
pub fn internal_to_external(internal: &str) -> String {
    internal
        .split('.')
        .map(|p| p.replace('^', "."))
        .collect::<Vec<_>>()
        .join("/")
}

/// `user/alice/Sent` -> `user.alice.Sent`.
pub fn external_to_internal(external: &str) -> String {
    external
        .split('/')
        .map(|p| p.replace('.', "^"))
        .collect::<Vec<_>>()
        .join(".")
}

/// The user a mailbox belongs to (`user.alice.Sent` -> `alice`).
pub fn owner_of(internal: &str) -> Option<&str> {
    let rest = internal.strip_prefix("user.")?;
    Some(rest.split('.').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(owner_of("user.bob.Sent"), Some("bob"));
        assert_eq!(owner_of("user.bob"), Some("bob"));
        assert_eq!(owner_of("shared.x"), None);
    }
}
